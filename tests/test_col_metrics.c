/*
 * test_col_metrics.c - GET /metrics from the in-memory series
 * (collector/metrics.c), fed the way tokentapd feeds it: records go
 * through the batch parser, the prices and the store, whose "added"
 * callback is tt_metrics_add; a second tt_metrics is loaded from the same
 * database, as after a restart, and must say the same.
 *
 * The cases are the adversarial ones of issue 14: token totals at the
 * documented maximum (2^53 a record, 1,100 records), a NUL in a label
 * already in an old database, blocked calls, label sets past the cap, and
 * series that go idle.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "../collector/batch.h"
#include "../collector/config.h"
#include "../collector/metrics.h"
#include "../collector/prices.h"
#include "../collector/store.h"
#include "common/clock.h"
#include "tokentap/error.h"

static char dir[] = "/tmp/tt-metrics-test-XXXXXX";
static char path[128];

static int setup(void **state)
{
	if (!mkdtemp(dir))
		return -1;
	return 0;
}

static void remove_db(void)
{
	char p[160];

	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
	unlink(path);
}

static int teardown(void **state)
{
	rmdir(dir);
	return 0;
}

/* A fresh database for each test, named after it. */
static tt_store *open_store(const char *name)
{
	struct tt_store_opts o = {.sync_full = 0};
	char err[256];
	tt_store *s;

	snprintf(path, sizeof(path), "%s/%s.db", dir, name);
	remove_db();
	assert_int_equal(tt_store_open(path, &o, &s, err, sizeof(err)), 0);
	return s;
}

static void close_store(tt_store *s)
{
	tt_store_close(s);
	remove_db();
}

static tt_prices *prices(void)
{
	tt_prices *p = tt_prices_new();
	char err[256];

	assert_non_null(p);
	assert_int_equal(tt_config_apply(p, NULL, 0, NULL, err, sizeof(err)), 0);
	return p;
}

/* Parse, price and store the JSON Lines body; every record must be new and valid. */
static void ingest(tt_store *s, const tt_prices *p, const char *body, size_t len)
{
	tt_batch b;
	int64_t acc, dup;

	tt_batch_init(&b, 64u << 20);
	tt_batch_feed(&b, body, len);
	tt_batch_finish(&b);
	assert_int_equal(b.nrejected, 0);
	for (size_t i = 0; i < b.nrecs; i++)
		tt_prices_apply(p, &b.recs[i], &b.arena);
	assert_int_equal(tt_store_insert(s, b.recs, b.nrecs, &b.arena, tt_real_us(), &acc, &dup),
			 0);
	assert_int_equal(acc, (int64_t)b.nrecs);
	tt_batch_free(&b);
}

/* The exposition, NUL-terminated (caller frees). */
static char *render(tt_metrics *m, tt_store *s, size_t *len)
{
	struct tt_metrics_counters c = {0};
	tt_buf out;

	tt_buf_init(&out, 256u << 20);
	assert_int_equal(tt_metrics_render(m, s, &c, &out), 0);
	assert_int_equal(tt_buf_add(&out, "", 1), 0);
	if (len)
		*len = out.len - 1;
	return out.data;
}

/* The value of the sample whose name and labels are exactly `series`, as text. */
static const char *sample(const char *text, const char *series, char *val, size_t cap)
{
	size_t n = strlen(series);

	for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL)
		if (strncmp(l, series, n) == 0 && l[n] == ' ') {
			size_t k = strcspn(l + n + 1, "\n");

			snprintf(val, cap, "%.*s", (int)k, l + n + 1);
			return val;
		}
	return NULL;
}

/* The sum of every sample of `name` (with labels), and how many there are. */
static double sum_family(const char *text, const char *name, size_t *count)
{
	size_t n = strlen(name);
	double sum = 0;

	*count = 0;
	for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL)
		if (strncmp(l, name, n) == 0 && l[n] == '{') {
			const char *sp = strchr(l, '}');

			sp = strchr(sp, ' ');
			sum += strtod(sp + 1, NULL);
			(*count)++;
		}
	return sum;
}

static void expect_sample(const char *text, const char *series, const char *want)
{
	char val[64];

	if (!sample(text, series, val, sizeof(val)))
		fail_msg("no sample %s in:\n%.2000s", series, text);
	if (strcmp(val, want) != 0)
		fail_msg("%s is %s, want %s", series, val, want);
}

#define LABELS(model, tenant) \
	"{provider=\"openai\",model=\"" model "\",tenant=\"" tenant "\",feature=\"\",pod=\"\"}"

static void rec_line(tt_buf *b, unsigned id, const char *tenant, const char *extra)
{
	assert_int_equal(tt_buf_printf(b, "{\"id\":\"%032x\",\"provider\":\"openai\","
				       "\"model\":\"gpt-4o-mini\",\"tenant\":\"%s\"%s}\n", id,
				       tenant, extra), 0);
}

/*
 * Issue 14 #3: 1,100 records of 2^53 input and output tokens, the most a
 * record may carry, sum to 1100 * 2^53 = 9907919180215091200, past
 * INT64_MAX: the counter is unsigned 64-bit and exact there, live and after
 * a restart, and the daemon's load does not fail on it.
 */
static void test_huge_tokens(void **state)
{
	tt_store *s = open_store("huge");
	tt_prices *p = prices();
	tt_metrics *m = tt_metrics_new(), *m2 = tt_metrics_new();
	tt_buf body;
	char *text;

	assert_non_null(m);
	assert_non_null(m2);
	tt_store_on_added(s, tt_metrics_add, m);
	tt_buf_init(&body, 1 << 20);
	for (unsigned i = 0; i < 1100; i++)
		rec_line(&body, i + 1, "big", ",\"input_tokens\":9007199254740992,"
			 "\"output_tokens\":9007199254740992,\"reasoning_tokens\":1");
	ingest(s, p, body.data, body.len);
	tt_buf_free(&body);

	for (int pass = 0; pass < 2; pass++) {
		text = render(pass ? m2 : m, s, NULL);
		expect_sample(text, "tokentap_calls_total" LABELS("gpt-4o-mini", "big"), "1100");
		expect_sample(text, "tokentap_tokens_total{provider=\"openai\",model=\"gpt-4o-mini\","
			      "tenant=\"big\",feature=\"\",pod=\"\",type=\"input\"}",
			      "9907919180215091200");
		expect_sample(text, "tokentap_tokens_total{provider=\"openai\",model=\"gpt-4o-mini\","
			      "tenant=\"big\",feature=\"\",pod=\"\",type=\"output\"}",
			      "9907919180215091200");
		expect_sample(text, "tokentap_tokens_total{provider=\"openai\",model=\"gpt-4o-mini\","
			      "tenant=\"big\",feature=\"\",pod=\"\",type=\"reasoning\"}", "1100");
		assert_null(strstr(text, " -"));  /* nothing negative anywhere */
		free(text);
		if (!pass)
			assert_int_equal(tt_metrics_load(m2, s), 0);  /* the restart */
	}
	tt_metrics_free(m);
	tt_metrics_free(m2);
	tt_prices_free(p);
	close_store(s);
}

/*
 * Whatever the database holds, the load starts the daemon: sums past
 * 2^64 stick at the largest value, negative or non-numeric values count
 * as 0, never as a negative counter.
 */
static void test_load_garbage(void **state)
{
	tt_store *s = open_store("garbage");
	tt_prices *p = prices();
	tt_metrics *m = tt_metrics_new();
	tt_buf body;
	sqlite3 *db;
	char *text;

	tt_buf_init(&body, 1 << 20);
	for (unsigned i = 0; i < 4; i++)
		rec_line(&body, i + 1, "g", ",\"input_tokens\":1,\"output_tokens\":1");
	ingest(s, p, body.data, body.len);
	tt_buf_free(&body);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE records SET input_tokens = 9223372036854775807, "
				      "output_tokens = -5, cache_read_tokens = 'lots'", NULL, NULL,
				      NULL), SQLITE_OK);
	sqlite3_close(db);

	assert_int_equal(tt_metrics_load(m, s), 0);
	text = render(m, s, NULL);
	expect_sample(text, "tokentap_calls_total" LABELS("gpt-4o-mini", "g"), "4");
	expect_sample(text, "tokentap_tokens_total{provider=\"openai\",model=\"gpt-4o-mini\","
		      "tenant=\"g\",feature=\"\",pod=\"\",type=\"input\"}", "18446744073709551615");
	expect_sample(text, "tokentap_tokens_total{provider=\"openai\",model=\"gpt-4o-mini\","
		      "tenant=\"g\",feature=\"\",pod=\"\",type=\"output\"}", "0");
	assert_null(strstr(text, " -"));
	free(text);
	tt_metrics_free(m);
	tt_prices_free(p);
	close_store(s);
}

/*
 * Issue 14 #10: a NUL inside a label value must not shift the labels.  New
 * records with one are refused (test_col_records.c); a database written
 * before that may still hold one, and its series keeps its five labels,
 * the NUL shown as U+FFFD.  Backslash, quote and newline are escaped as
 * the text format says.
 */
static void test_labels_nul_and_escapes(void **state)
{
	tt_store *s = open_store("nul");
	tt_prices *p = prices();
	tt_metrics *m = tt_metrics_new(), *live = tt_metrics_new();
	tt_buf body;
	sqlite3 *db;
	char *text;

	tt_store_on_added(s, tt_metrics_add, live);
	tt_buf_init(&body, 1 << 20);
	rec_line(&body, 1, "x", ",\"input_tokens\":1000000,\"output_tokens\":0");
	rec_line(&body, 2, "q\\\"uote\\\\back\\nline", "");
	ingest(s, p, body.data, body.len);
	tt_buf_free(&body);
	/* What an older tokentapd stored for "model":"gpt-4o-mini\u0000acme". */
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE records SET model = CAST(x'6770742d346f2d6d696e69"
				      "0061636d65' AS TEXT), tenant = NULL WHERE tenant = 'x'", NULL,
				      NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	assert_int_equal(tt_metrics_load(m, s), 0);
	text = render(m, s, NULL);
	expect_sample(text, "tokentap_calls_total" LABELS("gpt-4o-mini\xef\xbf\xbd" "acme", ""), "1");
	assert_null(strstr(text, "tenant=\"acme\""));
	expect_sample(text, "tokentap_calls_total" LABELS("gpt-4o-mini", "q\\\"uote\\\\back\\nline"),
		      "1");
	free(text);
	text = render(live, s, NULL);
	expect_sample(text, "tokentap_calls_total" LABELS("gpt-4o-mini", "q\\\"uote\\\\back\\nline"),
		      "1");
	free(text);
	tt_metrics_free(m);
	tt_metrics_free(live);
	tt_prices_free(p);
	close_store(s);
}

/*
 * Issue 14 #12: a blocked call never reached the provider: it is not in
 * tokentap_calls_total (nor unpriced, nor the histograms) but in
 * tokentap_blocked_calls_total, live and after a restart.
 */
static void test_blocked_calls(void **state)
{
	tt_store *s = open_store("blocked");
	tt_prices *p = prices();
	tt_metrics *m = tt_metrics_new(), *m2 = tt_metrics_new();
	tt_buf body;
	char *text;

	tt_store_on_added(s, tt_metrics_add, m);
	tt_buf_init(&body, 1 << 20);
	rec_line(&body, 1, "b", ",\"input_tokens\":10,\"output_tokens\":5,\"duration_ms\":100");
	rec_line(&body, 2, "b", ",\"input_tokens\":10,\"output_tokens\":5,\"duration_ms\":100");
	for (unsigned i = 3; i <= 5; i++)
		rec_line(&body, i, "b", ",\"input_tokens\":0,\"output_tokens\":0,\"usage_source\":"
			 "\"none\",\"error\":\"blocked\",\"blocked\":true,\"duration_ms\":1");
	/* An older agent's blocked record: the error says it, the flag is absent. */
	rec_line(&body, 6, "b", ",\"error\":\"blocked\"");
	ingest(s, p, body.data, body.len);
	tt_buf_free(&body);
	assert_int_equal(tt_metrics_load(m2, s), 0);

	for (int pass = 0; pass < 2; pass++) {
		text = render(pass ? m2 : m, s, NULL);
		expect_sample(text, "tokentap_calls_total" LABELS("gpt-4o-mini", "b"), "2");
		expect_sample(text, "tokentap_blocked_calls_total" LABELS("gpt-4o-mini", "b"), "4");
		expect_sample(text, "tokentap_unpriced_calls_total" LABELS("gpt-4o-mini", "b"), "0");
		expect_sample(text, "tokentap_duration_seconds_count" LABELS("gpt-4o-mini", "b"), "2");
		free(text);
	}
	tt_metrics_free(m);
	tt_metrics_free(m2);
	tt_prices_free(p);
	close_store(s);
}

static void config_metrics(const char *json)
{
	tt_prices *p = tt_prices_new();
	char err[256];

	assert_int_equal(tt_config_apply(p, json, strlen(json), NULL, err, sizeof(err)), 0);
	tt_prices_free(p);
}

static void config_error(const char *json, const char *want)
{
	tt_prices *p = tt_prices_new();
	char err[256];

	assert_int_equal(tt_config_apply(p, json, strlen(json), NULL, err, sizeof(err)), TT_EINVAL);
	if (!strstr(err, want))
		fail_msg("config %s: error \"%s\", want \"%s\"", json, err, want);
	tt_prices_free(p);
}

#define OVERFLOW "{provider=\"_overflow\",model=\"_overflow\",tenant=\"_overflow\"," \
	"feature=\"_overflow\",pod=\"_overflow\"}"

/*
 * Issue 14 #4: 1,000 tenants against a cap of 100 label sets: 100 series
 * and the overflow one, the 900 others counted as dropped, and the totals
 * still the sums of every record.  The same after a restart.
 */
static void test_series_cap(void **state)
{
	tt_store *s = open_store("cap");
	tt_prices *p = prices();
	tt_metrics *m, *m2;
	tt_buf body;
	char *text, t[32];
	size_t n, len;

	config_metrics("{\"metrics\": {\"max_series\": 100, \"series_idle_s\": 3600}}");
	m = tt_metrics_new();
	m2 = tt_metrics_new();
	config_metrics("{}");  /* the defaults again, for the other tests */
	tt_store_on_added(s, tt_metrics_add, m);
	tt_buf_init(&body, 1 << 20);
	for (unsigned i = 0; i < 1000; i++) {
		snprintf(t, sizeof(t), "tenant-%u", i);
		rec_line(&body, i + 1, t, ",\"input_tokens\":3,\"output_tokens\":2");
	}
	ingest(s, p, body.data, body.len);
	tt_buf_free(&body);
	assert_int_equal(tt_metrics_load(m2, s), 0);

	for (int pass = 0; pass < 2; pass++) {
		text = render(pass ? m2 : m, s, &len);
		expect_sample(text, "tokentap_series", "101");
		expect_sample(text, "tokentap_metrics_series_max", "100");
		expect_sample(text, "tokentap_metrics_series_dropped_total", "900");
		expect_sample(text, "tokentap_calls_total" OVERFLOW, "900");
		assert_true(sum_family(text, "tokentap_calls_total", &n) == 1000);
		assert_int_equal(n, 101);
		assert_true(sum_family(text, "tokentap_tokens_total", &n) == 5000);
		assert_true(len < 101 * 4096);  /* about 3.8 KB a label set */
		free(text);
	}
	tt_metrics_free(m);
	tt_metrics_free(m2);
	tt_prices_free(p);
	close_store(s);
}

static void test_config_metrics(void **state)
{
	config_error("{\"metrics\": {\"max_series\": 0}}", "metrics.max_series: expected");
	config_error("{\"metrics\": {\"max_series\": 1.5}}", "metrics.max_series: expected");
	config_error("{\"metrics\": {\"series_idle_s\": -1}}", "metrics.series_idle_s: expected");
	config_error("{\"metrics\": {\"series_idle_s\": 30}}", "metrics.series_idle_s: expected");
	config_error("{\"metrics\": {\"max_serie\": 3}}", "metrics.max_serie: unknown key");
	config_error("{\"metrics\": 3}", "metrics: expected an object");
	config_metrics("{\"metrics\": {\"series_idle_s\": 0}}");
	config_metrics("{}");
}

static void add_one(tt_metrics *m, const char *tenant, int64_t now_us)
{
	char json[256];
	tt_buf arena;
	tt_rec r;
	char err[128];

	snprintf(json, sizeof(json), "{\"id\":\"%032x\",\"provider\":\"openai\",\"model\":\"m\","
		 "\"tenant\":\"%s\",\"input_tokens\":1}", 1, tenant);
	tt_buf_init(&arena, 1 << 16);
	assert_int_equal(tt_rec_parse(json, strlen(json), &arena, &r, err, sizeof(err)), 0);
	tt_metrics_add_at(m, &r, &arena, now_us);
	tt_buf_free(&arena);
}

/*
 * A series without a record for series_idle_s is dropped and counted as
 * expired; its label set coming back starts a new series.  A full table
 * makes room from idle series before it sends a new label set to the
 * overflow.
 */
static void test_series_expiry(void **state)
{
	/* Far ahead of the clock, so that the scrape's own sweep removes nothing. */
	const int64_t hour = INT64_C(3600000000), t0 = tt_real_us() + 100 * 8766 * hour;
	struct tt_metrics_opts o = {.max_series = 2, .idle_us = hour};
	tt_metrics *m = tt_metrics_new_opts(&o);
	tt_store *s = open_store("expiry");
	char *text;

	add_one(m, "a", t0);
	add_one(m, "a", t0 + 1);
	add_one(m, "b", t0 + hour / 2);
	assert_int_equal(tt_metrics_expire(m, t0 + hour + 2), 1);
	text = render(m, s, NULL);
	assert_null(strstr(text, "tenant=\"a\""));
	expect_sample(text, "tokentap_calls_total{provider=\"openai\",model=\"m\",tenant=\"b\","
		      "feature=\"\",pod=\"\"}", "1");
	expect_sample(text, "tokentap_metrics_series_expired_total", "1");
	expect_sample(text, "tokentap_series", "1");
	free(text);

	/* Full (b, c); at t0 + 2 h b is idle: d takes its place, not the overflow. */
	add_one(m, "c", t0 + hour + 10);
	add_one(m, "d", t0 + 2 * hour);
	add_one(m, "a", t0 + 2 * hour);  /* full again, nothing idle: overflow */
	text = render(m, s, NULL);
	assert_null(strstr(text, "tenant=\"b\""));
	expect_sample(text, "tokentap_calls_total{provider=\"openai\",model=\"m\",tenant=\"d\","
		      "feature=\"\",pod=\"\"}", "1");
	expect_sample(text, "tokentap_calls_total" OVERFLOW, "1");
	expect_sample(text, "tokentap_metrics_series_expired_total", "2");
	expect_sample(text, "tokentap_metrics_series_dropped_total", "1");
	free(text);
	tt_metrics_free(m);
	close_store(s);
}

/*
 * The scrape stays under its byte budget whatever the labels: label sets
 * at the longest values a record takes, every byte to be escaped, fill the
 * budget long before max_series, and the rest go to the overflow.
 */
static void test_series_bytes_cap(void **state)
{
	struct tt_metrics_opts o = {.max_series = 100000, .max_bytes = 1 << 20};
	tt_metrics *m = tt_metrics_new_opts(&o);
	tt_store *s = open_store("bytes");
	char json[2048], q127[260], b127[260], n120[250], b31[70], q39[90], *text;
	size_t len, n, nseries;
	char val[32];

	memset(q127, 0, sizeof(q127));
	for (int i = 0; i < 127; i++)
		memcpy(q127 + 2 * i, "\\\"", 2);
	for (int i = 0; i < 127; i++)
		memcpy(b127 + 2 * i, "\\\\", 2);
	b127[254] = 0;
	for (int i = 0; i < 120; i++)
		memcpy(n120 + 2 * i, "\\n", 2);
	n120[240] = 0;
	for (int i = 0; i < 31; i++)
		memcpy(b31 + 2 * i, "\\\\", 2);
	b31[62] = 0;
	for (int i = 0; i < 39; i++)
		memcpy(q39 + 2 * i, "\\\"", 2);
	q39[78] = 0;
	for (unsigned i = 0; i < 2000; i++) {
		tt_buf arena;
		tt_rec r;
		char err[128];

		snprintf(json, sizeof(json), "{\"id\":\"%032x\",\"provider\":\"%s\",\"model\":\"%s\","
			 "\"tenant\":\"%07u%s\",\"feature\":\"%s\",\"pod_uid\":\"%s\","
			 "\"input_tokens\":1}", i + 1, b31, b127, i, n120, q127, q39);
		tt_buf_init(&arena, 1 << 16);
		assert_int_equal(tt_rec_parse(json, strlen(json), &arena, &r, err, sizeof(err)), 0);
		tt_metrics_add(m, &r, &arena);
		tt_buf_free(&arena);
	}
	text = render(m, s, &len);
	assert_true(len <= o.max_bytes + 16384);  /* the HELP lines and process counters */
	nseries = (size_t)strtoul(sample(text, "tokentap_series", val, sizeof(val)), NULL, 10);
	assert_true(nseries > 10 && nseries < 100);
	assert_true(sum_family(text, "tokentap_calls_total", &n) == 2000);
	assert_int_equal(n, nseries);
	snprintf(val, sizeof(val), "%zu", 2000 - (nseries - 1));
	expect_sample(text, "tokentap_metrics_series_dropped_total", val);
	printf("1 MiB budget: %zu series at the longest labels, %zu bytes\n", nseries, len);
	free(text);
	tt_metrics_free(m);
	close_store(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_huge_tokens),
		cmocka_unit_test(test_load_garbage),
		cmocka_unit_test(test_labels_nul_and_escapes),
		cmocka_unit_test(test_blocked_calls),
		cmocka_unit_test(test_config_metrics),
		cmocka_unit_test(test_series_cap),
		cmocka_unit_test(test_series_expiry),
		cmocka_unit_test(test_series_bytes_cap),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
