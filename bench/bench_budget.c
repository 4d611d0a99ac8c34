/*
 * bench_budget.c - what the budget check adds to an LLM call's request
 * path in the agent, side by side:
 *
 *   off       monitor mode: the hook's flag test only
 *   on/none   enforce mode, no deny rule for the call (unlimited lease)
 *   on/usd    enforce mode, a dollar budget: the call's worst case is
 *             reserved from a local lease, settled after "the response"
 *
 * Each "on" iteration runs the whole request path of one call: the
 * request (head and body in one SSL_write) is parsed, routed, its model
 * and max_tokens read, the worst case reserved, and the reservation
 * settled with the real counts.  SSL_write itself is a no-op fake; the
 * collector is a real tokentapd (BENCH_TOKENTAPD, default build/tokentapd)
 * on a temporary Unix socket.  Also printed: how many lease requests went
 * to the collector (background, off the call's path) and the latency of
 * one synchronous lease round trip, for comparison.
 *
 *   build/bench/bench_budget [iterations]      (default 200000)
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../agent/enforce.h"
#include "../agent/lease.h"
#include "../agent/resolve.h"

static int fake_write(void *ssl, const void *buf, int num)
{
	(void)ssl, (void)buf;
	return num;
}

static void key_fn(tt_lease_key *k)
{
	(void)k;
}

static void ship_fn(tt_record *rec)
{
	(void)rec;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static volatile int flag_sink;

static double run(const char *req, size_t len, const char *task, long iters, int on)
{
	tt_enforce *e = tt_enforce_new();
	tt_record rec;
	double t0, t1;
	long ret;
	char head[8192];
	int n;

	tt_record_init(&rec);
	rec.input_tokens = 12;
	rec.output_tokens = 40;
	n = snprintf(head, sizeof(head), "%.*sX-Tokentap-Task: %s\r\n%s", (int)(strstr(req, "\r\n") - req + 2),
		     req, task, strstr(req, "\r\n") + 2);
	len = (size_t)n;
	/* Warm up: the first call fetches the lease. */
	if (on) {
		tt_enforce_write(e, (void *)0x1, head, len, &ret);
		tt_enforce_settle(e, &rec);
	}
	t0 = now_s();
	for (long i = 0; i < iters; i++) {
		if (on) {
			if (tt_enforce_write(e, (void *)0x1, head, len, &ret)) {
				fprintf(stderr, "bench_budget: a call was blocked or held\n");
				exit(1);
			}
			tt_enforce_settle(e, &rec);
		} else {
			flag_sink = tt_enforce_on;  /* what monitor mode adds */
		}
	}
	t1 = now_s();
	tt_enforce_free(e);
	return (t1 - t0) / (double)iters * 1e9;
}

int main(int argc, char **argv)
{
	const char *bin = getenv("BENCH_TOKENTAPD") ? getenv("BENCH_TOKENTAPD") : "build/tokentapd";
	long iters = argc > 1 ? strtol(argv[1], NULL, 10) : 200000;
	char dir[] = "/tmp/tt-bench-budget-XXXXXX", sock[128], cfg[128], db[128], coll[160];
	static const char body[] = "{\"model\":\"gpt-4o-mini\",\"max_tokens\":64,\"messages\":"
				   "[{\"role\":\"user\",\"content\":\"What is the capital of France?\"}]}";
	char req[1024];
	pid_t pid;
	FILE *f;
	int len;

	if (iters <= 0)
		iters = 200000;
	if (access(bin, X_OK)) {
		fprintf(stderr, "bench_budget: %s not found (run make, or set BENCH_TOKENTAPD)\n", bin);
		return 1;
	}
	if (!mkdtemp(dir))
		return 1;
	snprintf(sock, sizeof(sock), "%s/c.sock", dir);
	snprintf(cfg, sizeof(cfg), "%s/c.json", dir);
	snprintf(db, sizeof(db), "%s/c.db", dir);
	f = fopen(cfg, "w");
	if (!f)
		return 1;
	/* A budget far above what the benchmark spends: never denies. */
	fprintf(f, "{\"budgets\": [{\"name\": \"big\", \"scope\": {\"task\": \"limited\"}, "
		   "\"limit\": {\"usd\": 1000000}, \"window\": \"day\", \"action\": \"deny\"}], "
		   "\"leases\": {\"fraction\": 0.001}}\n");
	fclose(f);
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", 1);

		dup2(null, 1);
		char lst[200];
		snprintf(lst, sizeof(lst), "unix:%s", sock);
		execl(bin, bin, "--listen", lst, "--db", db, "--config", cfg, "--sync", "normal",
		      (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 100; i++) {
		struct stat st;

		if (stat(sock, &st) == 0)
			break;
		usleep(50000);
	}
	snprintf(coll, sizeof(coll), "unix:%s", sock);
	tt_real_cache[TT_REAL_SSL_write] = (void *)fake_write;
	tt_enforce_setup(key_fn, ship_fn, NULL);
	tt_lease_setup(coll, NULL, 0, 2000);
	len = snprintf(req, sizeof(req),
		       "POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\n"
		       "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
		       strlen(body), body);

	double off = run(req, (size_t)len, "x", iters, 0);
	tt_enforce_on = 1;
	double none = run(req, (size_t)len, "unlimited", iters, 1);
	uint64_t r0, h0, r1, h1;
	tt_lease_stats(&r0, &h0);
	double usd = run(req, (size_t)len, "limited", iters, 1);
	tt_lease_stats(&r1, &h1);

	/* One synchronous lease round trip, for comparison (fresh key each). */
	double t0 = now_s();
	int rounds = 40;
	for (int i = 0; i < rounds; i++) {
		tt_lease_key k;
		tt_reservation r;
		char why[384], rule[64];

		memset(&k, 0, sizeof(k));
		snprintf(k.task, sizeof(k.task), "limited");
		snprintf(k.model, sizeof(k.model), "gpt-4o-mini-%d", i % 60);
		snprintf(k.feature, sizeof(k.feature), "rt-%d", i);
		tt_lease_reserve(&k, 10, 10, &r, why, sizeof(why), rule, sizeof(rule));
		tt_lease_settle(&r, 10, 10);
	}
	double rt = (now_s() - t0) / rounds * 1e6;

	printf("%-34s %12s\n", "request path, per call", "added");
	printf("%-34s %9.1f ns\n", "budgets off (monitor mode)", off);
	printf("%-34s %9.1f ns\n", "enforce, no deny rule", none);
	printf("%-34s %9.1f ns\n", "enforce, $ budget (lease)", usd);
	printf("%-34s %12llu of %ld calls (background)\n", "lease requests to the collector",
	       (unsigned long long)(r1 - r0), iters);
	printf("%-34s %9.1f us (what every call would pay without leases)\n",
	       "one lease round trip", rt);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	unlink(sock);
	unlink(cfg);
	char p[160];
	snprintf(p, sizeof(p), "%s-wal", db);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", db);
	unlink(p);
	unlink(db);
	rmdir(dir);
	return 0;
}
