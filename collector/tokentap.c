/*
 * tokentap.c - the command a person types.
 *
 *	tokentap report [--by feature|...] [--since T] [--until T] [--top N]
 *	                [--collector URL | --db PATH] [--json]
 *	tokentap run [--task T] [--tenant X] [--feature F] [--collector URL]
 *	             [--out FILE] [--enforce] -- CMD ARGS...
 */
#include <errno.h>
#include <getopt.h>
#include <langinfo.h>
#include <limits.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/addr.h"
#include "config.h"
#include "exekind.h"
#include "report.h"
#include "store.h"
#include "ship/client.h"
#include "tokentap/error.h"
#include "usage.h"

#ifndef TT_PREFIX
#define TT_PREFIX "/usr/local"
#endif
#define DEFAULT_COLLECTOR TT_DEFAULT_COLLECTOR
#define QUERY_TIMEOUT_MS 30000  /* a roll-up over a big database takes a while */

static void usage_main(FILE *f)
{
	fprintf(f, "Usage: tokentap COMMAND [OPTIONS]\n"
		   "\n"
		   "  report   print where the money goes (tokentap report --help)\n"
		   "  run      run a program under the tokentap agent (tokentap run --help)\n"
		   "  help     this text\n");
}

static void usage_report(FILE *f)
{
	fprintf(f,
		"Usage: tokentap report [OPTIONS]\n"
		"Print the cost of LLM calls grouped by one field, biggest first, with each\n"
		"row's share and the cumulative share, unpriced calls and cache savings.\n"
		"\n"
		"  --by FIELD        feature (default), model, task, tenant, pod, provider,\n"
		"                    process (the executable), app (the script or package an\n"
		"                    interpreter runs, else the executable's name)\n"
		"  --since T         from T: RFC 3339, YYYY-MM-DD, epoch seconds, or an age\n"
		"                    such as 24h, 7d, 2w\n"
		"  --until T         up to T (same forms)\n"
		"  --top N           show N rows, sum the rest in one line (default 10; 0: all)\n"
		"  --collector URL   unix:/path.sock or http://HOST:PORT (default\n"
		"                    $TOKENTAP_COLLECTOR, else " DEFAULT_COLLECTOR ")\n"
		"  --token-file PATH bearer token for an http:// collector\n"
		"  --db PATH         read this tokentapd database directly instead\n"
		"  --json            print the collector's JSON roll-up as it is\n"
		"  --help            this text\n");
}

static void usage_run(FILE *f)
{
	fprintf(f,
		"Usage: tokentap run [OPTIONS] -- CMD [ARGS...]\n"
		"Run CMD with the tokentap agent (libtokentap.so) preloaded, so that every\n"
		"LLM call it makes is measured.\n"
		"\n"
		"  --task T          attribute the calls to task T (TOKENTAP_TASK)\n"
		"  --tenant X        ... to tenant X (TOKENTAP_TENANT)\n"
		"  --feature F       ... to feature F (TOKENTAP_FEATURE)\n"
		"  --collector URL   where records go (TOKENTAP_COLLECTOR): unix:/path.sock,\n"
		"                    http://HOST:PORT or off\n"
		"  --out FILE        also append every record to FILE (TOKENTAP_OUT)\n"
		"  --enforce         block the calls of a task that is over budget\n"
		"                    (TOKENTAP_MODE=enforce)\n"
		"  --help            this text\n"
		"\n"
		"The agent is looked up next to this program, then in " TT_PREFIX "/lib/tokentap/.\n"
		"It reaches the OpenSSL a program loads: a static program, a Go program, a\n"
		"Bun build (Claude Code) or a program with OpenSSL linked in (NodeSource's\n"
		"node) keeps its TLS inside, so CMD runs with a warning; tokentap-probe sees\n"
		"those.\n");
}

static int attr_ok(const char *opt, const char *v)
{
	size_t n = strlen(v);

	if (n == 0 || n > 127) {
		fprintf(stderr, "tokentap run: %s: expected 1 to 127 bytes\n", opt);
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f) {
			fprintf(stderr, "tokentap run: %s: control characters are not allowed\n", opt);
			return 0;
		}
	return 1;
}

static int find_agent(char *out, size_t cap)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n > 0) {
		char *slash;

		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			snprintf(out, cap, "%s/libtokentap.so", self);
			if (access(out, R_OK) == 0)
				return 0;
		}
	}
	snprintf(out, cap, "%s/lib/tokentap/libtokentap.so", TT_PREFIX);
	if (access(out, R_OK) == 0)
		return 0;
	return -1;
}

/*
 * LD_PRELOAD reaches only the OpenSSL a program loads: say so before
 * running a program whose TLS is elsewhere, rather than record nothing.
 */
static void warn_unreachable(const char *cmd)
{
	char path[PATH_MAX];
	tt_exe_kind k = tt_exe_kind_of(cmd, path, sizeof(path));
	const char *name = tt_exe_kind_name(k);

	if (!name)
		return;
	fprintf(stderr,
		"tokentap run: %s is %s: %s, so the agent will see none of its "
		"LLM calls; tokentap-probe (as root) sees them\n",
		path,
		k == TT_EXE_STATIC ? "a static program" : k == TT_EXE_GO ? "a Go program"
		: k == TT_EXE_BUN ? "a Bun program" : "a program with its own OpenSSL",
		k == TT_EXE_STATIC ? "ld.so never runs, LD_PRELOAD with it"
		: k == TT_EXE_OWN_SSL ? "its calls to it bind inside the executable"
				      : "its TLS code is inside the executable");
}

static int cmd_run(int argc, char **argv)
{
	enum { O_TASK = 256, O_TENANT, O_FEATURE, O_COLLECTOR, O_OUT, O_ENFORCE };
	static const struct option longopts[] = {
		{"task", required_argument, NULL, O_TASK},
		{"tenant", required_argument, NULL, O_TENANT},
		{"feature", required_argument, NULL, O_FEATURE},
		{"collector", required_argument, NULL, O_COLLECTOR},
		{"out", required_argument, NULL, O_OUT},
		{"enforce", no_argument, NULL, O_ENFORCE},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *task = NULL, *tenant = NULL, *feature = NULL, *collector = NULL, *outf = NULL;
	const char *old;
	char lib[PATH_MAX + 32], *preload;
	int c, enforce = 0;
	size_t plen;

	/* '+': stop at the first non-option, the command. */
	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		switch (c) {
		case O_TASK: task = optarg; break;
		case O_TENANT: tenant = optarg; break;
		case O_FEATURE: feature = optarg; break;
		case O_COLLECTOR: collector = optarg; break;
		case O_OUT: outf = optarg; break;
		case O_ENFORCE: enforce = 1; break;
		case 'h': usage_run(stdout); return 0;
		default: usage_run(stderr); return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "tokentap run: no command given (tokentap run [OPTIONS] -- CMD ...)\n");
		return 2;
	}
	if ((task && !attr_ok("--task", task)) || (tenant && !attr_ok("--tenant", tenant)) ||
	    (feature && !attr_ok("--feature", feature)))
		return 2;
	if (collector && strcmp(collector, "off") != 0) {
		tt_addr a;
		char why[300];

		if (tt_addr_parse(collector, &a, why, sizeof(why))) {
			fprintf(stderr, "tokentap run: --collector %s, or off\n", why);
			return 2;
		}
	}
	if (find_agent(lib, sizeof(lib))) {
		fprintf(stderr, "tokentap run: libtokentap.so not found next to this program nor in "
			TT_PREFIX "/lib/tokentap/ (build it with make, or make install)\n");
		return 1;
	}
	old = getenv("LD_PRELOAD");
	plen = strlen(lib) + (old ? strlen(old) : 0) + 2;
	preload = malloc(plen);
	if (!preload) {
		fprintf(stderr, "tokentap run: out of memory\n");
		return 1;
	}
	/* ld.so takes ':' or ' ' between entries; ours goes first, once. */
	if (old && old[0] && !strstr(old, lib))
		snprintf(preload, plen, "%s:%s", lib, old);
	else if (old && old[0])
		snprintf(preload, plen, "%s", old);
	else
		snprintf(preload, plen, "%s", lib);
	if (setenv("LD_PRELOAD", preload, 1) ||
	    (task && setenv("TOKENTAP_TASK", task, 1)) ||
	    (tenant && setenv("TOKENTAP_TENANT", tenant, 1)) ||
	    (feature && setenv("TOKENTAP_FEATURE", feature, 1)) ||
	    (collector && setenv("TOKENTAP_COLLECTOR", collector, 1)) ||
	    (outf && setenv("TOKENTAP_OUT", outf, 1)) ||
	    (enforce && setenv("TOKENTAP_MODE", "enforce", 1))) {
		fprintf(stderr, "tokentap run: cannot set the environment: %s\n", strerror(errno));
		free(preload);
		return 1;
	}
	free(preload);
	warn_unreachable(argv[optind]);
	execvp(argv[optind], argv + optind);
	fprintf(stderr, "tokentap run: cannot run %s: %s\n", argv[optind], strerror(errno));
	return errno == ENOENT ? 127 : 126;
}

/* &name=value, the value percent-encoded (RFC 3986: unreserved kept). */
static int append_arg(char *q, size_t cap, const char *name, const char *value)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(q);
	int w = snprintf(q + n, cap - n, "&%s=", name);

	if (w < 0 || (size_t)w >= cap - n)
		return -1;
	n += (size_t)w;
	for (const unsigned char *v = (const unsigned char *)value; *v; v++) {
		int plain = (*v >= 'a' && *v <= 'z') || (*v >= 'A' && *v <= 'Z') ||
			    (*v >= '0' && *v <= '9') || strchr("-._~", *v);

		if (n + 4 > cap)
			return -1;
		if (plain) {
			q[n++] = (char)*v;
		} else {
			q[n++] = '%';
			q[n++] = hex[*v >> 4];
			q[n++] = hex[*v & 15];
		}
	}
	q[n] = '\0';
	return 0;
}

/* GET path from the collector into body; the HTTP status, or -1 with err. */
static int query(const char *collector, const char *token_file, const char *path,
		 tt_buf *body, char *err, size_t errlen)
{
	tt_client *c = tt_client_new(collector, err, errlen);
	int st;

	if (!c)
		return -1;
	if (token_file && tt_client_token_file(c, token_file, err, errlen)) {
		tt_client_free(c);
		return -1;
	}
	st = tt_client_request(c, "GET", path, NULL, NULL, 0, QUERY_TIMEOUT_MS, body, err,
			       errlen);
	tt_client_free(c);
	return st > 0 ? st : -1;
}

static int cmd_report(int argc, char **argv)
{
	enum { O_BY = 256, O_SINCE, O_UNTIL, O_TOP, O_COLLECTOR, O_DB, O_JSON, O_TOKEN_FILE };
	static const struct option longopts[] = {
		{"by", required_argument, NULL, O_BY},
		{"since", required_argument, NULL, O_SINCE},
		{"until", required_argument, NULL, O_UNTIL},
		{"top", required_argument, NULL, O_TOP},
		{"collector", required_argument, NULL, O_COLLECTOR},
		{"db", required_argument, NULL, O_DB},
		{"json", no_argument, NULL, O_JSON},
		{"token-file", required_argument, NULL, O_TOKEN_FILE},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct tt_usage_query q = {.by = "feature", .since_us = INT64_MIN, .until_us = INT64_MAX};
	struct tt_report_opts ro = {.top = 10};
	const char *since = NULL, *until = NULL, *collector = getenv("TOKENTAP_COLLECTOR");
	const char *db = NULL, *token_file = NULL;
	char err[512], path[1024];
	struct timespec now;
	int64_t now_us;
	int c, json = 0, rc = 1;
	tt_buf body;

	clock_gettime(CLOCK_REALTIME, &now);
	now_us = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		char *end;
		long v;

		switch (c) {
		case O_BY: q.by = optarg; break;
		case O_SINCE: since = optarg; break;
		case O_UNTIL: until = optarg; break;
		case O_TOP:
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || v < 0 || v > 100000) {
				fprintf(stderr, "tokentap report: --top: expected a number from 0 to 100000\n");
				return 2;
			}
			ro.top = (int)v;
			break;
		case O_COLLECTOR: collector = optarg; break;
		case O_DB: db = optarg; break;
		case O_JSON: json = 1; break;
		case O_TOKEN_FILE: token_file = optarg; break;
		case 'h': usage_report(stdout); return 0;
		default: usage_report(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "tokentap report: unexpected argument '%s' (see --help)\n",
			argv[optind]);
		return 2;
	}
	if (!tt_usage_column(q.by)) {
		fprintf(stderr, "tokentap report: --by %s: expected one of " TT_USAGE_BY_LIST "\n",
			q.by);
		return 2;
	}
	if ((since && tt_usage_parse_time(since, now_us, &q.since_us)) ||
	    (until && tt_usage_parse_time(until, now_us, &q.until_us))) {
		fprintf(stderr, "tokentap report: --%s %s: expected RFC 3339, YYYY-MM-DD, epoch "
			"seconds or an age such as 24h or 7d\n",
			since && tt_usage_parse_time(since, now_us, &q.since_us) ? "since" : "until",
			since && tt_usage_parse_time(since, now_us, &q.since_us) ? since : until);
		return 2;
	}
	if (!collector || !collector[0] || strcmp(collector, "off") == 0)
		collector = DEFAULT_COLLECTOR;
	tt_buf_init(&body, 256u << 20);

	if (db) {
		struct tt_store_opts so = {.readonly = 1};
		tt_store *s = NULL;

		if (access(db, R_OK)) {
			fprintf(stderr, "tokentap report: --db %s: %s\n", db, strerror(errno));
			goto out;
		}
		if (tt_store_open(db, &so, &s, err, sizeof(err)) ||
		    tt_usage_json(s, &q, &body, err, sizeof(err))) {
			fprintf(stderr, "tokentap report: --db %s: %s\n", db, err);
			tt_store_close(s);
			goto out;
		}
		tt_store_close(s);
	} else {
		int status;

		/* Absolute bounds, so that "24h" means the same here and there. */
		snprintf(path, sizeof(path), "/v1/usage?by=%s", q.by);
		if (since) {
			char ts[40];

			tt_rec_format_ts(q.since_us, ts, sizeof(ts));
			append_arg(path, sizeof(path), "since", ts);
		}
		if (until) {
			char ts[40];

			tt_rec_format_ts(q.until_us, ts, sizeof(ts));
			append_arg(path, sizeof(path), "until", ts);
		}
		status = query(collector, token_file, path, &body, err, sizeof(err));
		if (status < 0) {
			fprintf(stderr, "tokentap report: %s (is tokentapd running? try --collector or "
				"--db)\n", err);
			goto out;
		}
		if (status != 200) {
			fprintf(stderr, "tokentap report: the collector answered %d: %s\n", status,
				body.data ? body.data : "");
			goto out;
		}
	}
	if (json) {
		fwrite(body.data, 1, body.len, stdout);
		if (body.len && body.data[body.len - 1] != '\n')
			fputc('\n', stdout);
		rc = 0;
		goto out;
	}
	setlocale(LC_CTYPE, "");
	ro.unicode = isatty(STDOUT_FILENO) && strcmp(nl_langinfo(CODESET), "UTF-8") == 0;
	if (tt_report_render(body.data, body.len, &ro, stdout, err, sizeof(err))) {
		fprintf(stderr, "tokentap report: %s\n", err);
		goto out;
	}
	rc = 0;
out:
	tt_buf_free(&body);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage_main(stderr);
		return 2;
	}
	if (strcmp(argv[1], "report") == 0)
		return cmd_report(argc - 1, argv + 1);
	if (strcmp(argv[1], "run") == 0)
		return cmd_run(argc - 1, argv + 1);
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0) {
		usage_main(stdout);
		return 0;
	}
	fprintf(stderr, "tokentap: unknown command '%s'\n", argv[1]);
	usage_main(stderr);
	return 2;
}
