/*
 * tokentapd.c - the collector daemon: ingest, store, price, serve.
 *
 * Startup order: configuration (prices) -> database -> listeners; any
 * error stops the start with a message that names the flag or key.  The
 * daemon then waits for SIGINT/SIGTERM, finishes the requests in flight,
 * and closes the database cleanly.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alert.h"
#include "budget.h"
#include "common/addr.h"
#include "common/clock.h"
#include "common/token.h"
#include "config.h"
#include "detect.h"
#include "server.h"
#include "store.h"
#include "tokentap/error.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: tokentapd [OPTIONS]\n"
		"Collects tokentap usage records, prices them and serves roll-ups.\n"
		"\n"
		"  --listen ADDR        unix:/path.sock or http://127.0.0.1:PORT (repeatable;\n"
		"                       port 0 picks a free port and prints it).\n"
		"                       Default: " TT_DEFAULT_COLLECTOR "\n"
		"  --db PATH            SQLite database. Default: /var/lib/tokentap/tokentap.db\n"
		"                       as root, else $XDG_STATE_HOME/tokentap/tokentap.db\n"
		"  --config PATH        JSON configuration: prices, budgets, leases, detectors,\n"
		"                       alerts (see collector/README.md)\n"
		"  --check-config       load the configuration, report errors, and exit\n"
		"  --allow-remote       allow TCP listeners on non-loopback addresses\n"
		"  --token-file PATH    require \"Authorization: Bearer <token>\" on TCP listeners\n"
		"  --sync full|normal   SQLite synchronous mode (default full: an acknowledged\n"
		"                       record survives power loss; normal: survives a crash)\n"
		"  --body-max BYTES     largest POST body (default 16777216)\n"
		"  --timeout SECONDS    idle connection timeout (default 10)\n"
		"  --header-timeout SECONDS\n"
		"                       a request's headers must be in within this (default:\n"
		"                       --timeout), however slowly they arrive\n"
		"  --max-connections N  connections per listener (default 512); past it the\n"
		"                       one waiting longest for its headers is closed, or the\n"
		"                       new one is answered 503\n"
		"  --help               this text\n"
		"\n"
		"API: POST /v1/records, POST /v1/lease, GET /v1/usage?by=..., GET /v1/verdict,\n"
		"GET /v1/alerts, GET /metrics, GET /healthz.\n");
}

static int mkdirs(const char *path, mode_t mode)
{
	char tmp[4096];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(tmp))
		return -1;
	memcpy(tmp, path, len + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, mode) && errno != EEXIST)
		return -1;
	return 0;
}

static int default_db(char *out, size_t cap)
{
	const char *state = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	char dir[4000];  /* leaves room for "/tokentap.db" in a 4096-byte out */

	if (geteuid() == 0)
		snprintf(dir, sizeof(dir), "/var/lib/tokentap");
	else if (state && state[0] == '/')
		snprintf(dir, sizeof(dir), "%s/tokentap", state);
	else if (home && home[0] == '/')
		snprintf(dir, sizeof(dir), "%s/.local/state/tokentap", home);
	else
		return -1;
	if (mkdirs(dir, 0700))
		return -1;
	snprintf(out, cap, "%s/tokentap.db", dir);
	return 0;
}

struct hooks {
	tt_metrics *metrics;
	tt_budget *budget;
	tt_detect *detect;
};

/* Every committed record: the metrics, then the budgets and detectors. */
static void on_added(void *arg, const tt_rec *r, const tt_buf *arena)
{
	struct hooks *h = arg;

	if (h->metrics)
		tt_metrics_add(h->metrics, r, arena);
	tt_budget_add_rec(h->budget, r, arena);
	tt_detect_add_rec(h->detect, r, arena);
}

/* Budgets and detectors only: the metrics load their own sums. */
static void on_replayed(void *arg, const tt_rec *r, const tt_buf *arena)
{
	struct hooks *h = arg;

	tt_budget_add_rec(h->budget, r, arena);
	tt_detect_add_rec(h->detect, r, arena);
}

/* The policy sections of the config: budgets, leases, detectors, alerts. */
static int load_policy(const char *config, cJSON **pol, tt_budget *budget, tt_detect *detect,
		       char *err, size_t errlen)
{
	char *text = NULL;
	size_t len;
	int rc;

	*pol = NULL;
	if (!config)
		return 0;
	if ((rc = tt_config_read_file(config, TT_CONFIG_MAX, &text, &len)))
		return rc;
	rc = tt_config_policy(text, len, pol);
	free(text);
	if (rc)
		return rc;
	rc = tt_budget_config(budget, cJSON_GetObjectItemCaseSensitive(*pol, "budgets"),
			      cJSON_GetObjectItemCaseSensitive(*pol, "leases"), err, errlen);
	if (!rc)
		rc = tt_detect_config(detect, cJSON_GetObjectItemCaseSensitive(*pol, "detectors"),
				      err, errlen);
	if (!rc)
		rc = tt_alerts_check_config(cJSON_GetObjectItemCaseSensitive(*pol, "alerts"), err,
					    errlen);
	return rc;
}

/*
 * The token clients must send (common/token.h reads it as they do).  The
 * daemon's own rule on top: at least 16 characters, a token worth the name.
 */
static int read_token(const char *path, char **out)
{
	char tok[TT_TOKEN_BUF], err[300];
	int loose, len = tt_token_read(path, tok, sizeof(tok), &loose, err, sizeof(err));

	if (len < 0) {
		fprintf(stderr, "tokentapd: --token-file %s\n", err);
		return -1;
	}
	if (len < 16) {
		explicit_bzero(tok, sizeof(tok));
		fprintf(stderr, "tokentapd: --token-file %s: expected at least 16 characters\n",
			path);
		return -1;
	}
	if (loose)
		fprintf(stderr, "tokentapd: warning: --token-file %s is readable by others "
			"(chmod 600 it)\n", path);
	*out = strdup(tok);
	explicit_bzero(tok, sizeof(tok));
	return *out ? 0 : -1;
}

enum { O_DB = 256, O_CONFIG, O_ALLOW_REMOTE, O_TOKEN_FILE, O_SYNC, O_BODY_MAX, O_TIMEOUT,
       O_CHECK, O_HEADER_TIMEOUT, O_MAX_CONNS };

/* A numeric option from 1 to its maximum; says why on stderr when not. */
static int number_opt(int c, const char *arg, unsigned long long *v)
{
	static const struct { int opt; const char *name; unsigned long long max; } t[] = {
		{O_BODY_MAX, "body-max", 1ULL << 30}, {O_TIMEOUT, "timeout", 3600},
		{O_HEADER_TIMEOUT, "header-timeout", 3600}, {O_MAX_CONNS, "max-connections", 100000},
	};
	char *end;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (t[i].opt != c)
			continue;
		errno = 0;
		*v = strtoull(arg, &end, 10);
		if (errno || *end || arg[0] == '-' || *v == 0 || *v > t[i].max) {
			fprintf(stderr, "tokentapd: --%s: expected a number from 1 to %llu\n",
				t[i].name, t[i].max);
			return -1;
		}
		return 0;
	}
	return -1;
}

/*
 * Every connection is a descriptor, and each listener may hold
 * max-connections plus a reserve: raise the soft limit to the hard one so
 * that a flood on one listener does not exhaust the others' descriptors.
 */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"listen", required_argument, NULL, 'l'},
		{"db", required_argument, NULL, O_DB},
		{"config", required_argument, NULL, O_CONFIG},
		{"check-config", no_argument, NULL, O_CHECK},
		{"allow-remote", no_argument, NULL, O_ALLOW_REMOTE},
		{"token-file", required_argument, NULL, O_TOKEN_FILE},
		{"sync", required_argument, NULL, O_SYNC},
		{"body-max", required_argument, NULL, O_BODY_MAX},
		{"timeout", required_argument, NULL, O_TIMEOUT},
		{"header-timeout", required_argument, NULL, O_HEADER_TIMEOUT},
		{"max-connections", required_argument, NULL, O_MAX_CONNS},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct tt_server_opts so = {0};
	struct tt_store_opts sto = {.sync_full = 1};
	const char *db = NULL, *config = NULL, *token_file = NULL;
	char dbbuf[4096], err[512];
	char *token = NULL;
	tt_prices *prices = NULL;
	tt_store *store = NULL;
	tt_metrics *metrics = NULL;
	tt_server *srv = NULL;
	tt_budget *budget = NULL;
	tt_detect *detect = NULL;
	tt_alerts *alerts = NULL;
	cJSON *pol = NULL;
	struct hooks hooks = {0};
	sigset_t set;
	int c, sig, check = 0, rc = 1;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		unsigned long long v;

		switch (c) {
		case 'l':
			if (so.nlisten == TT_SERVER_MAX_LISTEN) {
				fprintf(stderr, "tokentapd: at most %d --listen\n", TT_SERVER_MAX_LISTEN);
				return 2;
			}
			so.listen[so.nlisten++] = optarg;
			break;
		case O_DB: db = optarg; break;
		case O_CONFIG: config = optarg; break;
		case O_CHECK: check = 1; break;
		case O_ALLOW_REMOTE: so.allow_remote = 1; break;
		case O_TOKEN_FILE: token_file = optarg; break;
		case O_SYNC:
			if (strcmp(optarg, "full") == 0)
				sto.sync_full = 1;
			else if (strcmp(optarg, "normal") == 0)
				sto.sync_full = 0;
			else {
				fprintf(stderr, "tokentapd: --sync: expected full or normal\n");
				return 2;
			}
			break;
		case O_BODY_MAX:
		case O_TIMEOUT:
		case O_HEADER_TIMEOUT:
		case O_MAX_CONNS:
			if (number_opt(c, optarg, &v))
				return 2;
			if (c == O_BODY_MAX)
				so.body_max = (size_t)v;
			else if (c == O_TIMEOUT)
				so.timeout_s = (unsigned)v;
			else if (c == O_HEADER_TIMEOUT)
				so.header_timeout_s = (unsigned)v;
			else
				so.max_conns = (unsigned)v;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "tokentapd: unexpected argument '%s' (see --help)\n", argv[optind]);
		return 2;
	}

	prices = tt_prices_new();
	if (!prices)
		goto oom;
	if (config)
		c = tt_config_load(prices, config, err, sizeof(err));
	else
		c = tt_config_apply(prices, NULL, 0, NULL, err, sizeof(err));
	if (c) {
		fprintf(stderr, "tokentapd: %s%s\n", config ? "" : "", err);
		goto out;
	}
	budget = tt_budget_new();
	detect = tt_detect_new();
	if (!budget || !detect)
		goto oom;
	if ((c = load_policy(config, &pol, budget, detect, err, sizeof(err)))) {
		fprintf(stderr, "tokentapd: %s\n", err[0] ? err : "config: cannot read it");
		goto out;
	}
	if (check) {
		printf("tokentapd: configuration OK (%zu model prices, %zu budgets)\n",
		       tt_prices_count(prices), tt_budget_rule_count(budget));
		rc = 0;
		goto out;
	}
	if (token_file && read_token(token_file, &token))
		goto out;
	so.token = token;
	if (!db) {
		if (default_db(dbbuf, sizeof(dbbuf))) {
			fprintf(stderr, "tokentapd: no default database folder; use --db PATH\n");
			goto out;
		}
		db = dbbuf;
	}
	if (so.nlisten == 0)
		so.listen[so.nlisten++] = TT_DEFAULT_COLLECTOR;

	raise_nofile();
	/* Signals are taken by sigwait() below; every thread inherits the mask. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	if (tt_store_open(db, &sto, &store, err, sizeof(err))) {
		fprintf(stderr, "tokentapd: --db: %s\n", err);
		goto out;
	}
	/* The metrics start from the database, then follow every commit. */
	metrics = tt_metrics_new();
	if (!metrics)
		goto oom;
	if (tt_metrics_load(metrics, store)) {
		fprintf(stderr, "tokentapd: --db: cannot read the records for /metrics\n");
		goto out;
	}
	if (tt_alerts_open(db, cJSON_GetObjectItemCaseSensitive(pol, "alerts"), 1, &alerts, err,
			   sizeof(err))) {
		fprintf(stderr, "tokentapd: %s\n", err);
		goto out;
	}
	tt_budget_on_alert(budget, tt_alerts_raise, alerts);
	tt_detect_on_alert(detect, tt_alerts_raise, alerts);
	hooks.metrics = metrics;
	hooks.budget = budget;
	hooks.detect = detect;
	/* Spend so far, from the records: windows and alerts carry on. */
	if ((tt_budget_rule_count(budget) || tt_detect_enabled(detect)) &&
	    tt_budget_replay(store, on_replayed, &hooks)) {
		fprintf(stderr, "tokentapd: --db: cannot read the records for the budgets\n");
		goto out;
	}
	tt_store_on_added(store, on_added, &hooks);
	so.store = store;
	so.budget = budget;
	so.alerts = alerts;
	so.prices = prices;
	so.metrics = metrics;
	if (tt_server_start(&so, &srv, err, sizeof(err))) {
		fprintf(stderr, "tokentapd: %s\n", err);
		goto out;
	}
	printf("tokentapd: ready (database %s, %lld records, %zu model prices)\n", db,
	       (long long)tt_store_count(store), tt_prices_count(prices));
	fflush(stdout);
	/* Windows end and leases expire with time, not only with records. */
	for (;;) {
		struct timespec one = {1, 0};

		sig = sigtimedwait(&set, NULL, &one);
		if (sig == SIGINT || sig == SIGTERM)
			break;
		tt_budget_tick(budget, tt_real_us());
		tt_detect_tick(detect, tt_real_us());
	}
	fprintf(stderr, "tokentapd: %s, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
	rc = 0;
out:
	tt_server_stop(srv);
	tt_store_close(store);
	tt_alerts_close(alerts);
	tt_budget_free(budget);
	tt_detect_free(detect);
	cJSON_Delete(pol);
	tt_metrics_free(metrics);
	tt_prices_free(prices);
	free(token);
	return rc;
oom:
	fprintf(stderr, "tokentapd: out of memory\n");
	goto out;
}
