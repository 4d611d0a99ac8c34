/*
 * test_col_store.c - the SQLite store and the roll-ups (collector/store.c,
 * usage.c): duplicates inside one batch and across batches count once,
 * server-side records do not count, since/until bound the window, rows
 * come biggest cost first, and the figures are the hand-made sums.
 */
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

#include "../collector/batch.h"
#include "../collector/prices.h"
#include "../collector/config.h"
#include "../collector/store.h"
#include "../collector/usage.h"
#include "tokentap/error.h"

static char dir[] = "/tmp/tt-store-test-XXXXXX";
static char path[128];

static int setup(void **state)
{
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/t.db", dir);
	return 0;
}

static int teardown(void **state)
{
	char p[160];

	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
	unlink(path);
	rmdir(dir);
	return 0;
}

static void ingest(tt_store *s, const tt_prices *p, const char *body, int64_t want_acc,
		   int64_t want_dup)
{
	tt_batch b;
	int64_t acc, dup;

	tt_batch_init(&b, 1 << 20);
	tt_batch_feed(&b, body, strlen(body));
	tt_batch_finish(&b);
	assert_int_equal(b.nrejected, 0);
	for (size_t i = 0; i < b.nrecs; i++)
		tt_prices_apply(p, &b.recs[i], &b.arena);
	assert_int_equal(tt_store_insert(s, b.recs, b.nrecs, &b.arena, 1000, &acc, &dup), 0);
	assert_int_equal(acc, want_acc);
	assert_int_equal(dup, want_dup);
	tt_batch_free(&b);
}

#define REC(id, ts, model, in, out, feature, side) \
	"{\"id\":\"" id "\",\"ts\":\"" ts "\",\"provider\":\"openai\",\"model\":\"" model \
	"\",\"input_tokens\":" #in ",\"output_tokens\":" #out ",\"feature\":" feature \
	",\"side\":\"" side "\"}\n"
#define A "0000000000000000000000000000000a"
#define B "0000000000000000000000000000000b"
#define C "0000000000000000000000000000000c"
#define D "0000000000000000000000000000000d"
#define E "0000000000000000000000000000000e"

static cJSON *usage(tt_store *s, const char *by, int64_t since, int64_t until)
{
	struct tt_usage_query q = {.by = by, .since_us = since, .until_us = until};
	char err[256];
	tt_buf out;
	cJSON *j;

	tt_buf_init(&out, 1 << 20);
	assert_int_equal(tt_usage_json(s, &q, &out, err, sizeof(err)), 0);
	j = cJSON_Parse(out.data);
	assert_non_null(j);
	tt_buf_free(&out);
	return j;
}

static double num(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItem(o, k);

	assert_true(cJSON_IsNumber(v));
	return v->valuedouble;
}

static void test_store_and_usage(void **state)
{
	struct tt_store_opts o = {.sync_full = 1};
	tt_prices *p = tt_prices_new();
	char err[256];
	tt_store *s;
	cJSON *u, *rows, *r;

	assert_int_equal(tt_config_apply(p, NULL, 0, NULL, err, sizeof(err)), 0);
	assert_int_equal(tt_store_open(path, &o, &s, err, sizeof(err)), 0);
	/* A twice in one batch: once.  gpt-4o $2.50 / $10 per 1M. */
	ingest(s, p,
	       REC(A, "2026-01-01T00:00:00Z", "gpt-4o", 1000000, 0, "\"chat\"", "client")
	       REC(A, "2026-01-01T00:00:00Z", "gpt-4o", 1000000, 0, "\"chat\"", "client")
	       REC(B, "2026-01-02T00:00:00Z", "gpt-4o", 0, 1000000, "\"search\"", "client"),
	       2, 1);
	/* B again (upper case id is the same id), C unpriced, D server-side, E no feature. */
	ingest(s, p,
	       REC("0000000000000000000000000000000B", "2026-01-02T00:00:00Z", "gpt-4o", 0,
		   1000000, "\"search\"", "client")
	       REC(C, "2026-01-03T00:00:00Z", "mystery", 10, 10, "\"chat\"", "client")
	       REC(D, "2026-01-03T00:00:00Z", "gpt-4o", 5000000, 0, "\"chat\"", "server")
	       REC(E, "2026-01-04T00:00:00Z", "gpt-4o-mini", 1000000, 0, "null", "client"),
	       3, 1);
	assert_int_equal(tt_store_count(s), 5);

	u = usage(s, "feature", INT64_MIN, INT64_MAX);
	rows = cJSON_GetObjectItem(u, "rows");
	assert_int_equal(cJSON_GetArraySize(rows), 3);
	/* search $10, chat $2.50 (+1 unpriced), null $0.15 */
	r = cJSON_GetArrayItem(rows, 0);
	assert_string_equal(cJSON_GetObjectItem(r, "key")->valuestring, "search");
	assert_true(num(r, "cost_usd") == 10.0);
	assert_true(num(r, "calls") == 1);
	r = cJSON_GetArrayItem(rows, 1);
	assert_string_equal(cJSON_GetObjectItem(r, "key")->valuestring, "chat");
	assert_true(num(r, "calls") == 2);
	assert_true(num(r, "input_tokens") == 1000010);
	assert_true(num(r, "cost_usd") == 2.5);
	assert_true(num(r, "unpriced_calls") == 1);
	r = cJSON_GetArrayItem(rows, 2);
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(r, "key")));
	assert_true(num(r, "cost_usd") == 0.15);
	r = cJSON_GetObjectItem(u, "total");
	assert_true(num(r, "calls") == 4);  /* D is server-side */
	assert_true(num(r, "cost_usd") == 12.65);
	cJSON_Delete(u);

	/* [2026-01-02, 2026-01-04): B and C only */
	{
		int64_t since, until;

		assert_int_equal(tt_usage_parse_time("2026-01-02", 0, &since), 0);
		assert_int_equal(tt_usage_parse_time("2026-01-04T00:00:00Z", 0, &until), 0);
		u = usage(s, "model", since, until);
		r = cJSON_GetObjectItem(u, "total");
		assert_true(num(r, "calls") == 2);
		rows = cJSON_GetObjectItem(u, "rows");
		assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(rows, 1), "key")->valuestring,
				    "mystery");
		assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(rows, 1), "cost_usd")));
		cJSON_Delete(u);
	}
	tt_store_close(s);

	/* Reopened: everything is still there, the count too. */
	assert_int_equal(tt_store_open(path, &o, &s, err, sizeof(err)), 0);
	assert_int_equal(tt_store_count(s), 5);
	ingest(s, p, REC(A, "2026-01-01T00:00:00Z", "gpt-4o", 1, 1, "\"chat\"", "client"), 0, 1);
	tt_store_close(s);
	tt_prices_free(p);
}

static void test_parse_time(void **state)
{
	int64_t t, now = INT64_C(1767323045) * 1000000;

	assert_int_equal(tt_usage_parse_time("24h", now, &t), 0);
	assert_true(t == now - INT64_C(86400) * 1000000);
	assert_int_equal(tt_usage_parse_time("2w", now, &t), 0);
	assert_true(t == now - INT64_C(14) * 86400 * 1000000);
	assert_int_equal(tt_usage_parse_time("1767323045", now, &t), 0);
	assert_true(t == now);
	assert_int_equal(tt_usage_parse_time("1970-01-02", now, &t), 0);
	assert_true(t == INT64_C(86400) * 1000000);
	assert_int_equal(tt_usage_parse_time("yesterday", now, &t), TT_EINVAL);
	assert_int_equal(tt_usage_parse_time("5y", now, &t), TT_EINVAL);
	assert_int_equal(tt_usage_parse_time("", now, &t), TT_EINVAL);
	assert_null(tt_usage_column("pid"));
	assert_string_equal(tt_usage_column("pod"), "pod_uid");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_store_and_usage),
		cmocka_unit_test(test_parse_time),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
