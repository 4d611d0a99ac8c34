/*
 * bench_rollup.c - /v1/usage over many records: hourly buckets against a
 * scan, concurrent readers, and what the buckets cost at ingest.
 *
 * Fills a temporary database with BENCH_RECORDS records (default
 * 10,000,000) spread over 30 days, through the store's own API in
 * batches of BENCH_BATCH (default 5000; synchronous=FULL, as tokentapd),
 * serves it with the daemon's HTTP server on a Unix socket, and prints
 * side by side:
 *   - ingest records/s with the buckets on, and off (BENCH_OFF_RECORDS,
 *     default 1,000,000, into a second database);
 *   - GET /v1/usage?by=model for 30 days and for 24 hours (each window
 *     starting inside an hour): median of 7, over HTTP; the same in
 *     process by buckets and by a full scan (usage.h's scan), and their ratio;
 *   - 4 concurrent queries against one, alone and while a writer ingests.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "collector/config.h"
#include "collector/metrics.h"
#include "collector/prices.h"
#include "collector/rec.h"
#include "collector/rollup.h"
#include "collector/server.h"
#include "collector/store.h"
#include "collector/usage.h"

#define DAY_US ((int64_t)86400 * 1000000)

static char tmpdir[] = "/tmp/tt-bench-rollup-XXXXXX";
static char sock[200];
static tt_prices *prices;
static int64_t t_end;  /* the last record's time: "now" for the windows */

static const char *const models[] = {"gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "o3",
	"o4-mini", "claude-sonnet-4-5", "claude-haiku-4-5", "gemini-2.5-pro", "gemini-2.5-flash",
	"deepseek-chat", "llama3.1:8b"};
static const char *const providers[] = {"openai", "openai", "openai", "openai", "openai",
	"openai", "anthropic", "anthropic", "gemini", "gemini", "deepseek", "ollama"};
static const char *const exes[] = {"/usr/bin/python3.11", "/usr/bin/node", "/usr/local/bin/bun",
	"/usr/bin/java", "/opt/app/server", "/usr/bin/ruby"};
static const char *const apps[] = {"claude", "@google/gemini-cli", "codex", "aider", "server",
	"batch-job", "notebook", "crawler"};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long env_long(const char *name, long dflt)
{
	const char *v = getenv(name);

	return v && *v ? strtol(v, NULL, 10) : dflt;
}

static void set_str(tt_rec *r, int f, tt_buf *arena, const char *s, size_t len)
{
	r->v[f].s.off = (uint32_t)arena->len;
	r->v[f].s.len = (uint32_t)len;
	tt_buf_add(arena, s, len);
	r->null &= ~((uint64_t)1 << f);
}

static void set_int(tt_rec *r, int f, int64_t v)
{
	r->v[f].i = v;
	r->null &= ~((uint64_t)1 << f);
}

/* Record number `seq` of `total` over the 30 days before t_end. */
static void make_rec(tt_rec *r, tt_buf *arena, uint64_t seq, uint64_t total, int64_t span)
{
	char s[64];
	uint64_t x = seq * 0x9e3779b97f4a7c15ULL;
	int m = (int)(x >> 60) % 12, n;

	memset(r, 0, sizeof(*r));
	r->null = ~(uint64_t)0;
	n = snprintf(s, sizeof(s), "%032llx", (unsigned long long)seq + 1);
	set_str(r, TT_F_ID, arena, s, (size_t)n);
	set_int(r, TT_F_TS, t_end - span + (int64_t)((double)seq / (double)total * (double)span));
	set_str(r, TT_F_SIDE, arena, "client", 6);
	set_str(r, TT_F_MODEL, arena, models[m], strlen(models[m]));
	set_str(r, TT_F_PROVIDER, arena, providers[m], strlen(providers[m]));
	n = snprintf(s, sizeof(s), "tenant-%d", (int)(x >> 20 & 63) % 40);
	set_str(r, TT_F_TENANT, arena, s, (size_t)n);
	n = snprintf(s, sizeof(s), "feature-%d", (int)(x >> 30 & 15));
	set_str(r, TT_F_FEATURE, arena, s, (size_t)n);
	n = snprintf(s, sizeof(s), "task-%llu", (unsigned long long)seq / 40);
	set_str(r, TT_F_TASK, arena, s, (size_t)n);
	n = snprintf(s, sizeof(s), "pod-%02d", (int)(x >> 36 & 63));
	set_str(r, TT_F_POD_UID, arena, s, (size_t)n);
	set_str(r, TT_F_EXE, arena, exes[(x >> 42) % 6], strlen(exes[(x >> 42) % 6]));
	set_str(r, TT_F_APP, arena, apps[(x >> 45) % 8], strlen(apps[(x >> 45) % 8]));
	set_int(r, TT_F_INPUT_TOKENS, 500 + (int64_t)(x >> 48 & 8191));
	set_int(r, TT_F_CACHE_READ_TOKENS, (int64_t)(x >> 50 & 255));
	set_int(r, TT_F_OUTPUT_TOKENS, 50 + (int64_t)(x >> 40 & 1023));
	set_int(r, TT_F_STATUS, 200);
	set_int(r, TT_F_BLOCKED, (x & 1023) == 7);
	tt_prices_apply(prices, r, arena);
}

/* Insert records [from, to) of total in batches; returns the seconds it took. */
static double fill(tt_store *s, uint64_t from, uint64_t to, uint64_t total, int64_t span,
		   size_t batch)
{
	tt_rec *recs = calloc(batch, sizeof(*recs));
	tt_buf arena;
	double t0 = now_s();

	tt_buf_init(&arena, (size_t)1 << 30);
	for (uint64_t i = from; i < to;) {
		size_t n = 0;
		int64_t acc, dup;

		tt_buf_reset(&arena);
		for (; n < batch && i < to; n++, i++)
			make_rec(&recs[n], &arena, i, total, span);
		if (tt_store_insert(s, recs, n, &arena, t_end, &acc, &dup) || acc != (int64_t)n) {
			fprintf(stderr, "bench_rollup: insert failed\n");
			exit(1);
		}
	}
	tt_buf_free(&arena);
	free(recs);
	return now_s() - t0;
}

static size_t discard(char *p, size_t sz, size_t n, void *u)
{
	return sz * n;
}

/* One GET over the Unix socket; seconds. */
static double http_get(const char *path)
{
	CURL *c = curl_easy_init();
	char url[512];
	long code = 0;
	double t0 = now_s(), t;

	snprintf(url, sizeof(url), "http://x%s", path);
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	if (curl_easy_perform(c) != CURLE_OK ||
	    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK || code != 200) {
		fprintf(stderr, "bench_rollup: GET %s: %ld\n", path, code);
		exit(1);
	}
	t = now_s() - t0;
	curl_easy_cleanup(c);
	return t;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median_get(const char *path, int n)
{
	double v[16];

	http_get(path);  /* warm */
	for (int i = 0; i < n; i++)
		v[i] = http_get(path);
	qsort(v, (size_t)n, sizeof(v[0]), cmp_d);
	return v[n / 2];
}

static double in_process_once(tt_store *s, int64_t since, int scan)
{
	struct tt_usage_query q = {.by = "model", .since_us = since, .until_us = INT64_MAX,
				   .scan = scan};
	char err[256];
	tt_buf out;
	double t0 = now_s();

	tt_buf_init(&out, 1 << 24);
	if (tt_usage_json(s, &q, &out, err, sizeof(err))) {
		fprintf(stderr, "bench_rollup: usage: %s\n", err);
		exit(1);
	}
	tt_buf_free(&out);
	return now_s() - t0;
}

/* Median of 5 (buckets), or one run (a scan takes seconds). */
static double in_process(tt_store *s, int64_t since, int scan)
{
	double v[5];
	int n = scan ? 1 : 5;

	for (int i = 0; i < n; i++)
		v[i] = in_process_once(s, since, scan);
	qsort(v, (size_t)n, sizeof(v[0]), cmp_d);
	return v[n / 2];
}

struct conc {
	const char *path;
	pthread_barrier_t *go;
	double done;
};

static void *conc_main(void *p)
{
	struct conc *c = p;

	pthread_barrier_wait(c->go);
	http_get(c->path);
	c->done = now_s();
	return NULL;
}

/* Wall time of 4 simultaneous GETs (median of n rounds). */
static double four_at_once(const char *path, int n)
{
	double v[16];

	for (int k = 0; k < n; k++) {
		pthread_barrier_t go;
		pthread_t th[4];
		struct conc c[4];
		double t0, end = 0;

		pthread_barrier_init(&go, NULL, 5);
		for (int i = 0; i < 4; i++) {
			c[i] = (struct conc){.path = path, .go = &go};
			pthread_create(&th[i], NULL, conc_main, &c[i]);
		}
		pthread_barrier_wait(&go);
		t0 = now_s();
		for (int i = 0; i < 4; i++) {
			pthread_join(th[i], NULL);
			end = c[i].done > end ? c[i].done : end;
		}
		pthread_barrier_destroy(&go);
		v[k] = end - t0;
	}
	qsort(v, (size_t)n, sizeof(v[0]), cmp_d);
	return v[n / 2];
}

struct writer {
	tt_store *s;
	uint64_t next, total;
	int stop;
	size_t batch;
};

static void *writer_main(void *p)
{
	struct writer *w = p;

	while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE)) {
		fill(w->s, w->next, w->next + w->batch, w->total, 30 * DAY_US, w->batch);
		w->next += w->batch;
	}
	return NULL;
}

static void path_for(char *out, size_t cap, const char *by, int64_t since)
{
	char ts[40];

	tt_rec_format_ts(since, ts, sizeof(ts));
	snprintf(out, cap, "/v1/usage?by=%s&since=%s", by, ts);
}

int main(void)
{
	uint64_t total = (uint64_t)env_long("BENCH_RECORDS", 10000000);
	uint64_t off_n = (uint64_t)env_long("BENCH_OFF_RECORDS", 1000000);
	size_t batch = (size_t)env_long("BENCH_BATCH", 5000);
	struct tt_store_opts on = {.sync_full = 1}, off = {.sync_full = 1, .no_rollup = 1};
	struct tt_server_opts so = {.nlisten = 1, .quiet = 1};
	char db_on[160], db_off[160], err[256], p30[200], p24[200];
	double t_on1, t_on, t_off, h30, h24, b30, b24, s30, s24, one, four, four_w;
	int64_t since30, since24;
	tt_store *son, *soff;
	tt_server *srv;
	struct writer w;
	pthread_t wth;
	struct stat st;

	if (!mkdtemp(tmpdir))
		return 1;
	snprintf(db_on, sizeof(db_on), "%s/on.db", tmpdir);
	snprintf(db_off, sizeof(db_off), "%s/off.db", tmpdir);
	snprintf(sock, sizeof(sock), "%s/d.sock", tmpdir);
	prices = tt_prices_new();
	if (tt_config_apply(prices, NULL, 0, NULL, err, sizeof(err)))
		return 1;
	t_end = (int64_t)time(NULL) / 3600 * 3600 * 1000000 - 7 * 60 * 1000000;
	curl_global_init(CURL_GLOBAL_ALL);

	/* Buckets off, then on: the same records into fresh databases. */
	if (tt_store_open(db_off, &off, &soff, err, sizeof(err)) ||
	    tt_store_open(db_on, &on, &son, err, sizeof(err))) {
		fprintf(stderr, "bench_rollup: %s\n", err);
		return 1;
	}
	t_off = fill(soff, 0, off_n, total, 30 * DAY_US, batch);
	tt_store_close(soff);
	t_on1 = fill(son, 0, off_n < total ? off_n : total, total, 30 * DAY_US, batch);
	fprintf(stderr, "bench_rollup: filling %llu records ...\n", (unsigned long long)total);
	t_on = t_on1 + (off_n < total ? fill(son, off_n, total, total, 30 * DAY_US, batch) : 0);

	so.listen[0] = strcat(strcpy(malloc(strlen(sock) + 6), "unix:"), sock);
	so.store = son;
	so.prices = prices;
	so.metrics = tt_metrics_new();
	if (tt_server_start(&so, &srv, err, sizeof(err))) {
		fprintf(stderr, "bench_rollup: %s\n", err);
		return 1;
	}
	/* Windows that start inside an hour: buckets plus two edges of records. */
	since30 = t_end - 30 * DAY_US + 17 * 60 * 1000000;
	since24 = t_end - DAY_US + 17 * 60 * 1000000;
	path_for(p30, sizeof(p30), "model", since30);
	path_for(p24, sizeof(p24), "model", since24);
	h30 = median_get(p30, 7);
	h24 = median_get(p24, 7);
	b30 = in_process(son, since30, 0);
	b24 = in_process(son, since24, 0);
	s30 = in_process(son, since30, 1);
	s24 = in_process(son, since24, 1);
	one = median_get(p30, 5);
	four = four_at_once(p30, 5);
	w = (struct writer){.s = son, .next = total, .total = total, .batch = batch};
	pthread_create(&wth, NULL, writer_main, &w);
	four_w = four_at_once(p30, 5);
	__atomic_store_n(&w.stop, 1, __ATOMIC_RELEASE);
	pthread_join(wth, NULL);

	printf("bench_rollup: %llu records over 30 days (%llu bucket-free), batches of %zu, "
	       "synchronous=FULL\n", (unsigned long long)total, (unsigned long long)off_n, batch);
	stat(db_on, &st);
	printf("  database                          %10.0f MB\n", (double)st.st_size / 1e6);
	printf("  ingest, buckets off (%llu)        %10.0f records/s\n",
	       (unsigned long long)off_n, (double)off_n / t_off);
	printf("  ingest, buckets on  (%llu)        %10.0f records/s   (goal >= 100000)\n",
	       (unsigned long long)off_n, (double)(off_n < total ? off_n : total) / t_on1);
	printf("  ingest, buckets on  (all)         %10.0f records/s\n", (double)total / t_on);
	printf("                                      30 days      24 hours\n");
	printf("  GET /v1/usage?by=model (HTTP)   %8.2f ms   %8.2f ms   (goal < 50 ms)\n",
	       h30 * 1e3, h24 * 1e3);
	printf("  in process, buckets             %8.2f ms   %8.2f ms\n", b30 * 1e3, b24 * 1e3);
	printf("  in process, full scan           %8.0f ms   %8.0f ms\n", s30 * 1e3, s24 * 1e3);
	printf("  scan / buckets                  %8.0fx     %8.0fx\n", s30 / b30, s24 / b24);
	printf("  30 days: 1 query %.2f ms, 4 at once %.2f ms (%.2fx, goal <= 2.5x), "
	       "4 at once while ingesting %.2f ms (%.2fx; %llu records written meanwhile)\n",
	       one * 1e3, four * 1e3, four / one, four_w * 1e3, four_w / one,
	       (unsigned long long)(w.next - total));
	tt_server_stop(srv);
	tt_store_close(son);
	tt_metrics_free(so.metrics);
	tt_prices_free(prices);
	for (const char *f = "on.db\0on.db-wal\0on.db-shm\0off.db\0off.db-wal\0off.db-shm\0"; *f;
	     f += strlen(f) + 1) {
		char p[200];

		snprintf(p, sizeof(p), "%s/%s", tmpdir, f);
		unlink(p);
	}
	rmdir(tmpdir);
	return 0;
}
