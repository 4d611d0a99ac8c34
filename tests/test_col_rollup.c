/*
 * test_col_rollup.c - the hourly buckets (collector/rollup.c) answer what a
 * full scan answers: random records (duplicates, server-side, blocked,
 * unpriced, without ts, null keys, exe or only comm) in several batches,
 * then many random windows - open, on hour boundaries, inside hours,
 * shorter than an hour, empty - for every `by`, each compared with the
 * test's own sums of the records it generated and with usage.c's scan.
 * The buckets are then rebuilt at open (dropped by hand, and after a
 * writer that kept none) and compared again; readers run while a writer
 * commits.
 *
 * Dollars: a sum of n non-negative doubles has a relative error of at most
 * (n - 1) * 2^-53 (recursive summation, Higham 4.2), whatever the order.
 * Two orders (bucket by bucket, record by record) differ by at most twice
 * that; JSON carries 12 significant digits (usage.c's %.12g), 5e-12
 * relative.  So two figures agree when |a - b| <= (2 n 2^-53 + 1e-11) x
 * max(|a|, |b|), n the records in the window.  Tokens and calls are exact.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>
#include <cmocka.h>
#include <float.h>
#include <math.h>
#include <sqlite3.h>

#include "../collector/batch.h"
#include "../collector/config.h"
#include "../collector/prices.h"
#include "../collector/rollup.h"
#include "../collector/store.h"
#include "../collector/usage.h"
#include "tokentap/error.h"

#define NREC 6000
#define HOUR TT_ROLLUP_HOUR_US
#define T0 ((int64_t)1767225600 * 1000000)  /* 2026-01-01T00:00:00Z */
#define SPAN (5 * 24 * HOUR)
#define NOW_US (T0 + 3 * 24 * HOUR + 1234567)  /* the stored ts of records without one */

static char dir[] = "/tmp/tt-rollup-test-XXXXXX";
static char path[128];

/* What the test generated, and the price the store gave it. */
struct gen {
	int64_t ts;      /* as stored */
	int server, blocked;
	const char *key[8];  /* per dimension, NULL: null */
	int64_t tok[TT_ROLLUP_NTOK];
	int priced;
	double cost, savings;
};

static struct gen recs[NREC];
static size_t nrecs;
static tt_prices *prices;

static const char *const models[] = {"gpt-4o", "gpt-4o-mini", "mystery-model", NULL};
static const char *const tenants[] = {"acme", "globex", "initech", NULL};
static const char *const features[] = {"chat", "search", "summarize", "agent", NULL};
static const char *const providers[] = {"openai", "anthropic", NULL};
static const char *const pods[] = {"pod-a", "pod-b", NULL};
static const char *const exes[] = {"/usr/bin/python3", "/usr/bin/node", NULL};
static const char *const comms[] = {"python3", "node", NULL};
static const char *const apps[] = {"claude", "@google/gemini-cli", NULL};

#define PICK(a) (a[(size_t)rand() % (sizeof(a) / sizeof(a[0]))])

static int setup(void **state)
{
	char err[256];

	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/r.db", dir);
	prices = tt_prices_new();
	return tt_config_apply(prices, NULL, 0, NULL, err, sizeof(err));
}

static void remove_db(const char *db)
{
	char p[160];

	snprintf(p, sizeof(p), "%s-wal", db);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", db);
	unlink(p);
	unlink(db);
}

static int teardown(void **state)
{
	remove_db(path);
	rmdir(dir);
	tt_prices_free(prices);
	return 0;
}

static void add_str(tt_buf *b, const char *name, const char *v)
{
	if (v)
		tt_buf_printf(b, ",\"%s\":\"%s\"", name, v);
	else
		tt_buf_printf(b, ",\"%s\":null", name);
}

/* A random record, its JSON appended to b (id from seq). */
static void gen_one(struct gen *g, uint64_t seq, tt_buf *b)
{
	static const char *const tok_names[] = {"input_tokens", "output_tokens",
		"cache_read_tokens", "cache_write_tokens", "reasoning_tokens"};
	const char *exe = PICK(exes), *comm = PICK(comms);
	int no_ts = rand() % 50 == 0;
	char ts[40];

	memset(g, 0, sizeof(*g));
	g->ts = no_ts ? NOW_US : T0 + (int64_t)((double)rand() / RAND_MAX * SPAN);
	if (!no_ts && rand() % 5 == 0)  /* at an hour's first or last microsecond */
		g->ts = (g->ts / HOUR + rand() % 2) * HOUR - rand() % 2;
	g->server = rand() % 15 == 0;
	g->blocked = rand() % 10 == 0;
	g->key[0] = rand() % 8 ? NULL : "task-x";
	if (rand() % 3)
		g->key[0] = rand() % 2 ? "task-1" : "task-2";
	g->key[1] = PICK(tenants);
	g->key[2] = PICK(features);
	g->key[3] = PICK(models);
	g->key[4] = PICK(providers);
	g->key[5] = PICK(pods);
	g->key[6] = exe ? exe : comm;
	g->key[7] = PICK(apps);
	g->tok[0] = rand() % 3 ? rand() % 200000 : 0;
	g->tok[1] = rand() % 5000;
	g->tok[2] = g->tok[0] ? rand() % (g->tok[0] / 2 + 1) : 0;
	g->tok[3] = g->tok[0] ? rand() % (g->tok[0] / 2 + 1) : 0;
	g->tok[4] = g->tok[1] ? rand() % (g->tok[1] + 1) : 0;
	tt_rec_format_ts(g->ts, ts, sizeof(ts));
	tt_buf_printf(b, "{\"id\":\"%032llx\"", (unsigned long long)seq);
	if (!no_ts)
		tt_buf_printf(b, ",\"ts\":\"%s\"", ts);
	add_str(b, "side", g->server ? "server" : (rand() % 2 ? "client" : NULL));
	if (g->blocked)
		tt_buf_printf(b, rand() % 2 ? ",\"blocked\":true,\"error\":\"blocked\"" :
				 ",\"error\":\"blocked\"");
	add_str(b, "task", g->key[0]);
	add_str(b, "tenant", g->key[1]);
	add_str(b, "feature", g->key[2]);
	add_str(b, "model", g->key[3]);
	add_str(b, "provider", g->key[4]);
	add_str(b, "pod_uid", g->key[5]);
	add_str(b, "exe", exe);
	add_str(b, "comm", comm);
	add_str(b, "app", g->key[7]);
	for (int t = 0; t < TT_ROLLUP_NTOK; t++)
		if (g->tok[t] || rand() % 2)
			tt_buf_printf(b, ",\"%s\":%lld", tok_names[t], (long long)g->tok[t]);
	tt_buf_adds(b, "}\n");
}

/* Store the JSON lines in b; the accepted ones' prices go into recs[first..]. */
static void store_body(tt_store *s, const tt_buf *body, size_t first, size_t want_new)
{
	tt_batch bt;
	int64_t acc, dup;

	tt_batch_init(&bt, 1 << 26);
	tt_batch_feed(&bt, body->data, body->len);
	tt_batch_finish(&bt);
	assert_int_equal(bt.nrejected, 0);
	for (size_t i = 0; i < bt.nrecs; i++) {
		tt_prices_apply(prices, &bt.recs[i], &bt.arena);
		if (first + i < nrecs) {
			recs[first + i].priced = bt.recs[i].priced;
			recs[first + i].cost = bt.recs[i].priced ? bt.recs[i].cost_usd : 0;
			recs[first + i].savings = bt.recs[i].priced ? bt.recs[i].cache_savings_usd : 0;
		}
	}
	assert_int_equal(tt_store_insert(s, bt.recs, bt.nrecs, &bt.arena, NOW_US, &acc, &dup), 0);
	assert_int_equal(acc, (int64_t)want_new);
	tt_batch_free(&bt);
}

/* Records [from, to) in one batch, plus `dups` of the earlier ones again. */
static void ingest_range(tt_store *s, size_t from, size_t to, size_t dups)
{
	tt_buf body;

	tt_buf_init(&body, 1 << 26);
	for (size_t i = from; i < to; i++)
		gen_one(&recs[i], i + 1, &body);
	nrecs = to;
	store_body(s, &body, from, to - from);
	tt_buf_reset(&body);
	/* Duplicates: the same ids again (their values do not matter). */
	for (size_t i = 0; i < dups && from; i++) {
		struct gen junk;

		gen_one(&junk, (uint64_t)rand() % from + 1, &body);
	}
	if (dups && from)
		store_body(s, &body, SIZE_MAX / 2, 0);
	tt_buf_free(&body);
}

/* ---- the test's own roll-up ---- */

struct want {
	const char *key;
	int64_t calls, blocked, priced, unpriced, tok[TT_ROLLUP_NTOK];
	double cost, savings, abs;
	int64_t n;
};

static int same_key(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static size_t expect(int dim, int64_t since, int64_t until, struct want *w, size_t cap)
{
	size_t nw = 0;

	for (size_t i = 0; i < nrecs; i++) {
		const struct gen *g = &recs[i];
		struct want *x = NULL;

		if (g->server || g->ts < since || g->ts >= until)
			continue;
		for (size_t k = 0; k < nw && !x; k++)
			if (same_key(w[k].key, g->key[dim]))
				x = &w[k];
		if (!x) {
			assert_true(nw < cap);
			x = &w[nw++];
			memset(x, 0, sizeof(*x));
			x->key = g->key[dim];
		}
		x->calls += !g->blocked;
		x->blocked += g->blocked;
		x->priced += g->priced;
		x->unpriced += !g->priced && !g->blocked;
		for (int t = 0; t < TT_ROLLUP_NTOK; t++)
			x->tok[t] += g->tok[t];
		x->cost += g->cost;
		x->savings += g->savings;
		x->abs += fabs(g->savings);
		x->n++;
	}
	return nw;
}

static double num(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItem(o, k);

	assert_non_null(v);
	return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static void near(double a, double b, double scale, int64_t n)
{
	double tol = (2.0 * (double)n * DBL_EPSILON / 2 + 1e-11) * scale + 1e-15;

	if (fabs(a - b) > tol)
		fail_msg("%.17g vs %.17g (tolerance %.3g)", a, b, tol);
}

static const cJSON *row_of(const cJSON *rows, const char *key)
{
	const cJSON *r;

	cJSON_ArrayForEach(r, rows) {
		const cJSON *k = cJSON_GetObjectItem(r, "key");

		if ((!key && cJSON_IsNull(k)) || (key && cJSON_IsString(k) && !strcmp(k->valuestring, key)))
			return r;
	}
	return NULL;
}

static void check_row(const cJSON *r, const struct want *w)
{
	static const char *const tok[] = {"input_tokens", "output_tokens", "cache_read_tokens",
		"cache_write_tokens", "reasoning_tokens"};

	assert_non_null(r);
	assert_true(num(r, "calls") == (double)w->calls);
	assert_true(num(r, "blocked_calls") == (double)w->blocked);
	assert_true(num(r, "unpriced_calls") == (double)w->unpriced);
	for (int t = 0; t < TT_ROLLUP_NTOK; t++)
		assert_true(num(r, tok[t]) == (double)w->tok[t]);
	if (w->priced)
		near(num(r, "cost_usd"), w->cost, w->cost, w->n);
	else
		assert_true(cJSON_IsNull(cJSON_GetObjectItem(r, "cost_usd")));
	near(num(r, "cache_savings_usd"), w->savings, w->abs, w->n);
}

static cJSON *usage(tt_store *s, int dim, int64_t since, int64_t until, int scan)
{
	struct tt_usage_query q = {.by = tt_rollup_dims[dim].by, .since_us = since,
				   .until_us = until, .scan = scan};
	char err[256];
	tt_buf out;
	cJSON *j;

	tt_buf_init(&out, 1 << 24);
	if (tt_usage_json(s, &q, &out, err, sizeof(err)))
		fail_msg("usage: %s", err);
	j = cJSON_Parse(out.data);
	assert_non_null(j);
	tt_buf_free(&out);
	return j;
}

/* The answer has exactly the expected rows, sorted biggest cost first. */
static void check_answer(const cJSON *u, const struct want *w, size_t nw)
{
	const cJSON *rows = cJSON_GetObjectItem(u, "rows"), *r, *prev = NULL;
	struct want total = {0};

	assert_int_equal(cJSON_GetArraySize(rows), (int)nw);
	for (size_t k = 0; k < nw; k++) {
		check_row(row_of(rows, w[k].key), &w[k]);
		total.calls += w[k].calls;
		total.blocked += w[k].blocked;
		total.priced += w[k].priced;
		total.unpriced += w[k].unpriced;
		for (int t = 0; t < TT_ROLLUP_NTOK; t++)
			total.tok[t] += w[k].tok[t];
		total.cost += w[k].cost;
		total.savings += w[k].savings;
		total.abs += w[k].abs;
		total.n += w[k].n;
	}
	check_row(cJSON_GetObjectItem(u, "total"), &total);
	cJSON_ArrayForEach(r, rows) {
		if (prev && !cJSON_IsNull(cJSON_GetObjectItem(r, "cost_usd")))
			assert_true(num(prev, "cost_usd") >= num(r, "cost_usd") * (1 - 1e-9));
		prev = r;
	}
}

static int64_t random_bound(int open_end, int64_t open)
{
	int64_t h = T0 / HOUR + rand() % (int)(SPAN / HOUR + 4) - 2;

	switch (rand() % 6) {
	case 0: return open_end ? open : T0;
	case 1: return h * HOUR;                                   /* on the hour */
	case 2: return h * HOUR + rand() % 2 * (HOUR - 1);         /* just inside */
	default: return h * HOUR + (int64_t)rand() % HOUR;          /* anywhere */
	}
}

static void check_windows(tt_store *s, int nwin)
{
	struct want *w = calloc(64, sizeof(*w));

	for (int i = 0; i < nwin; i++) {
		int64_t since = random_bound(1, INT64_MIN), until = random_bound(1, INT64_MAX);

		if (i % 7 == 0)  /* shorter than an hour, often inside one */
			until = since == INT64_MIN ? INT64_MAX : since + rand() % HOUR;
		for (int d = 0; d < tt_rollup_ndims; d++) {
			size_t nw = expect(d, since, until, w, 64);
			cJSON *a = usage(s, d, since, until, 0), *b = usage(s, d, since, until, 1);

			check_answer(a, w, nw);
			check_answer(b, w, nw);
			cJSON_Delete(a);
			cJSON_Delete(b);
		}
	}
	free(w);
}

static void sql(const char *db, const char *text)
{
	sqlite3 *h;

	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, text, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
}

static void test_buckets_match_scan(void **state)
{
	struct tt_store_opts o = {.sync_full = 0};
	char err[256];
	tt_store *s;

	srand(14);
	assert_int_equal(tt_store_open(path, &o, &s, err, sizeof(err)), 0);
	ingest_range(s, 0, NREC / 3, 0);
	ingest_range(s, NREC / 3, 2 * NREC / 3, 200);
	check_windows(s, 60);
	tt_store_close(s);

	/* A writer without buckets adds records: the next open rolls up again. */
	o.no_rollup = 1;
	assert_int_equal(tt_store_open(path, &o, &s, err, sizeof(err)), 0);
	ingest_range(s, 2 * NREC / 3, 5 * NREC / 6, 50);
	check_windows(s, 5);  /* scans: no buckets to trust */
	tt_store_close(s);
	o.no_rollup = 0;
	assert_int_equal(tt_store_open(path, &o, &s, err, sizeof(err)), 0);
	check_windows(s, 30);
	tt_store_close(s);

	/* Buckets dropped by hand: rebuilt at open, then kept up to date. */
	sql(path, "DELETE FROM rollup; DELETE FROM meta WHERE key = 'rollup'");
	assert_int_equal(tt_store_open(path, &o, &s, err, sizeof(err)), 0);
	ingest_range(s, 5 * NREC / 6, NREC, 100);
	check_windows(s, 30);
	tt_store_close(s);

	/* tokentap report --db: read-only, the same answers. */
	o.readonly = 1;
	assert_int_equal(tt_store_open(path, &o, &s, err, sizeof(err)), 0);
	check_windows(s, 10);
	tt_store_close(s);
}

/* ---- readers beside a writer ---- */

struct reader_arg {
	tt_store *s;
	int stop, queries, errors;
};

static void *reader_main(void *p)
{
	struct reader_arg *a = p;
	struct tt_usage_query q = {.by = "model", .since_us = INT64_MIN, .until_us = INT64_MAX};
	char err[256];
	tt_buf out;

	tt_buf_init(&out, 1 << 24);
	while (!__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE)) {
		tt_buf_reset(&out);
		if (tt_usage_json(a->s, &q, &out, err, sizeof(err)))
			__atomic_add_fetch(&a->errors, 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(&a->queries, 1, __ATOMIC_RELAXED);
	}
	tt_buf_free(&out);
	return NULL;
}

static void test_concurrent_readers(void **state)
{
	struct tt_store_opts o = {.sync_full = 0};
	struct reader_arg a = {0};
	pthread_t th[4];
	char err[256];

	srand(41);
	remove_db(path);
	nrecs = 0;
	assert_int_equal(tt_store_open(path, &o, &a.s, err, sizeof(err)), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, reader_main, &a), 0);
	for (size_t i = 0; i < NREC; i += NREC / 10)
		ingest_range(a.s, i, i + NREC / 10, 0);
	__atomic_store_n(&a.stop, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(a.errors, 0);
	assert_true(a.queries > 0);
	check_windows(a.s, 5);
	tt_store_close(a.s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buckets_match_scan),
		cmocka_unit_test(test_concurrent_readers),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
