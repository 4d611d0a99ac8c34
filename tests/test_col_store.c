/*
 * test_col_store.c - the SQLite store and the roll-ups (collector/store.c,
 * usage.c): duplicates inside one batch and across batches count once,
 * server-side records do not count, since/until bound the window, rows
 * come biggest cost first, and the figures are the hand-made sums.  A
 * database made by the first schema is migrated (kept rows, new columns,
 * the version raised) and read as it is by a read-only open.  Every field
 * of the record's list goes from the agent's writer through the collector
 * into its column.
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
#include <sqlite3.h>

#include "../collector/batch.h"
#include "../collector/prices.h"
#include "../collector/config.h"
#include "../collector/store.h"
#include "../collector/usage.h"
#include "tokentap/error.h"
#include "tokentap/record.h"

static char dir[] = "/tmp/tt-store-test-XXXXXX";
static char path[128];

static int setup(void **state)
{
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/t.db", dir);
	return 0;
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
	char old[160];

	snprintf(old, sizeof(old), "%s/old.db", dir);
	remove_db(old);
	remove_db(path);
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

/* The records table as the first tokentapd (schema 1) created it. */
static const char schema_v1[] =
	"CREATE TABLE records (\n"
	"  seq INTEGER PRIMARY KEY,\n"
	"  id BLOB NOT NULL UNIQUE,\n"
	"  source TEXT, ts_us INTEGER NOT NULL, ttft_ms REAL, duration_ms REAL,\n"
	"  pid INTEGER, tid INTEGER, comm TEXT, exe TEXT, cgroup TEXT, container_id TEXT,\n"
	"  pod_uid TEXT, host TEXT, method TEXT, path TEXT, http TEXT, status INTEGER,\n"
	"  provider TEXT, api TEXT, model TEXT, request_model TEXT, stream INTEGER,\n"
	"  max_tokens INTEGER, input_tokens INTEGER, output_tokens INTEGER,\n"
	"  cache_read_tokens INTEGER, cache_write_tokens INTEGER, reasoning_tokens INTEGER,\n"
	"  usage_source TEXT, task TEXT, tenant TEXT, feature TEXT, prompt_hash TEXT,\n"
	"  prefix_hash TEXT, request_bytes INTEGER, response_bytes INTEGER, error TEXT,\n"
	"  blocked INTEGER, side TEXT,\n"
	"  cost_usd REAL, cache_savings_usd REAL, received_us INTEGER NOT NULL\n"
	");\n"
	"CREATE INDEX records_ts ON records(ts_us);\n"
	"CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);\n"
	"INSERT INTO meta VALUES ('schema', '1');\n"
	/* Two calls of gpt-4o, $2.50 and $10, stored before app existed. */
	"INSERT INTO records (id, ts_us, provider, model, input_tokens, output_tokens, feature,\n"
	"  side, cost_usd, received_us) VALUES\n"
	" (x'000000000000000000000000000000f1', 1767225600000000, 'openai', 'gpt-4o', 1000000, 0,\n"
	"  'chat', 'client', 2.5, 1767225600000000),\n"
	" (x'000000000000000000000000000000f2', 1767225600000000, 'openai', 'gpt-4o', 0, 1000000,\n"
	"  'chat', 'client', 10.0, 1767225600000000);\n";

/* Run sql on the database file db with a connection of the test's own. */
static void sql_exec(const char *db, const char *sql)
{
	sqlite3 *h;

	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
	if (sqlite3_exec(h, sql, NULL, NULL, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(h));
	sqlite3_close(h);
}

/* The first column of the first row of sql, as text ("" when none or null). */
static void sql_text(const char *db, const char *sql, char *out, size_t cap)
{
	sqlite3_stmt *st;
	sqlite3 *h;

	out[0] = '\0';
	assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(h));
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		snprintf(out, cap, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(h);
}

static const cJSON *row_of(const cJSON *usage, const char *key)
{
	const cJSON *r;

	cJSON_ArrayForEach(r, cJSON_GetObjectItem(usage, "rows")) {
		const cJSON *k = cJSON_GetObjectItem(r, "key");

		if (key ? cJSON_IsString(k) && strcmp(k->valuestring, key) == 0 : cJSON_IsNull(k))
			return r;
	}
	fail_msg("no row for key %s", key ? key : "null");
	return NULL;
}

#define SORTED_COLUMNS \
	"SELECT group_concat(name, ' ') FROM " \
	"(SELECT name FROM pragma_table_info('records') ORDER BY name)"

/* A new database starts at the current schema; its columns, sorted, in out. */
static void new_database_columns(char *out, size_t cap)
{
	struct tt_store_opts o = {.sync_full = 1};
	char err[256], v[64], fresh[160];
	tt_store *s;

	snprintf(fresh, sizeof(fresh), "%s/fresh.db", dir);
	assert_int_equal(tt_store_open(fresh, &o, &s, err, sizeof(err)), 0);
	tt_store_close(s);
	sql_text(fresh, "SELECT value FROM meta WHERE key = 'schema'", v, sizeof(v));
	assert_string_equal(v, "2");
	sql_text(fresh, SORTED_COLUMNS, out, cap);
	assert_non_null(strstr(out, " app "));
	assert_non_null(strstr(out, " tls "));
	remove_db(fresh);
}

#define APP_REC(id, app, tls, in, out) \
	"{\"id\":\"" id "\",\"ts\":\"2026-01-05T00:00:00Z\",\"provider\":\"openai\"," \
	"\"model\":\"gpt-4o\",\"input_tokens\":" #in ",\"output_tokens\":" #out ","     \
	"\"app\":" app ",\"tls\":" tls "}\n"

static void test_migrate_schema_1(void **state)
{
	struct tt_store_opts rw = {.sync_full = 1}, ro = {.readonly = 1};
	tt_prices *p = tt_prices_new();
	char old[160], err[256], v[64], want[2048], got[2048];
	const cJSON *r;
	tt_store *s;
	cJSON *u;

	assert_int_equal(tt_config_apply(p, NULL, 0, NULL, err, sizeof(err)), 0);
	snprintf(old, sizeof(old), "%s/old.db", dir);
	sql_exec(old, schema_v1);

	/* Read-only (tokentap report --db): no migration, the new columns read as null. */
	assert_int_equal(tt_store_open(old, &ro, &s, err, sizeof(err)), 0);
	u = usage(s, "app", INT64_MIN, INT64_MAX);
	r = row_of(u, NULL);
	assert_true(num(r, "calls") == 2);
	assert_true(num(r, "cost_usd") == 12.5);
	cJSON_Delete(u);
	tt_store_close(s);
	sql_text(old, "SELECT count(*) FROM pragma_table_info('records') WHERE name = 'app'", v,
		 sizeof(v));
	assert_string_equal(v, "0");
	sql_text(old, "SELECT value FROM meta WHERE key = 'schema'", v, sizeof(v));
	assert_string_equal(v, "1");

	/* Read-write: migrated, the old rows kept, records with app and tls taken. */
	assert_int_equal(tt_store_open(old, &rw, &s, err, sizeof(err)), 0);
	assert_int_equal(tt_store_count(s), 2);
	sql_text(old, "SELECT value FROM meta WHERE key = 'schema'", v, sizeof(v));
	assert_string_equal(v, "2");
	sql_text(old, "SELECT group_concat(name, ' ') FROM pragma_table_info('records') "
		      "WHERE name IN ('app', 'tls')", v, sizeof(v));
	assert_string_equal(v, "app tls");
	/* gpt-4o: $2.50 / $10 per 1M tokens. */
	ingest(s, p,
	       APP_REC(A, "\"@google/gemini-cli\"", "\"boringssl\"", 1000000, 0)
	       APP_REC(B, "\"@google/gemini-cli\"", "\"boringssl\"", 1000000, 1000000)
	       APP_REC(C, "\"summarise\"", "\"openssl\"", 2000000, 0)
	       APP_REC(D, "null", "\"plain\"", 1000, 0),
	       4, 0);
	u = usage(s, "app", INT64_MIN, INT64_MAX);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(u, "rows")), 3);
	r = cJSON_GetArrayItem(cJSON_GetObjectItem(u, "rows"), 0);
	assert_string_equal(cJSON_GetObjectItem(r, "key")->valuestring, "@google/gemini-cli");
	assert_true(num(r, "calls") == 2);
	assert_true(num(r, "input_tokens") == 2000000);
	assert_true(num(r, "cost_usd") == 15.0);
	r = row_of(u, NULL);  /* the two old rows and D */
	assert_true(num(r, "calls") == 3);
	assert_true(num(r, "input_tokens") == 1001000);
	assert_true(num(r, "cost_usd") == 12.5 + 0.0025);
	r = row_of(u, "summarise");
	assert_true(num(r, "cost_usd") == 5.0);
	assert_true(num(cJSON_GetObjectItem(u, "total"), "calls") == 6);
	cJSON_Delete(u);
	tt_store_close(s);
	sql_text(old, "SELECT tls FROM records WHERE app = 'summarise'", v, sizeof(v));
	assert_string_equal(v, "openssl");

	/* Opened again: nothing left to migrate, nothing lost; the columns are a
	 * new database's. */
	assert_int_equal(tt_store_open(old, &rw, &s, err, sizeof(err)), 0);
	assert_int_equal(tt_store_count(s), 6);
	tt_store_close(s);
	sql_text(old, SORTED_COLUMNS, got, sizeof(got));
	new_database_columns(want, sizeof(want));
	assert_string_equal(got, want);
	tt_prices_free(p);
}

/* --- every field of the list: writer -> collector -> column ------------- */

#define STRING(s) STRING_(s)
#define STRING_(s) #s

enum kind { K_STR, K_TS, K_MS, K_INT64, K_INT, K_BOOL, K_FLAG };

/* TT_RECORD_FIELDS as this test walks it: each field and its tt_record member. */
static const struct field {
	int id;                     /* TT_F_... */
	const char *name, *member;  /* the JSON key; the member, which is the column */
	enum kind kind;
	size_t off, size;           /* of the member */
	unsigned flags;
	const char *const *allowed;
} fields[] = {
#define FIELD(e, name, kind, bound, flags, allowed)                                         \
	{TT_F_##e, #name, STRING(TT_RECORD_NAME_##kind(name)), K_##kind,                      \
	 offsetof(tt_record, TT_RECORD_NAME_##kind(name)),                                    \
	 sizeof(((tt_record *)0)->TT_RECORD_NAME_##kind(name)), flags, allowed},
	TT_RECORD_FIELDS(FIELD)
#undef FIELD
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))
#define TS_BASE INT64_C(1767323045123456)

/* Field i (= f's index) set to a value no other field has, which the collector takes. */
static void set_field(tt_record *rec, const struct field *f, size_t i)
{
	char *m = (char *)rec + f->off, s[64];
	int64_t i64 = (int64_t)i + 1;
	double d = (double)i + 0.25;
	int one = 1, n = (int)i + 1;

	switch (f->kind) {
	case K_STR:
		if (f->allowed)
			snprintf(s, sizeof(s), "%s", f->allowed[0]);
		else if (f->flags & TT_RF_HEX)
			for (size_t k = 0; k < sizeof(s); k++)
				s[k] = k + 1 < f->size ? "0123456789abcdef"[(k + i) % 16] : '\0';
		else  /* the name, and what must be escaped, cut at the member's size */
			snprintf(s, sizeof(s), "%s \"\\\t\xc3\xa9", f->name);
		tt_record_set(m, f->size, s, (size_t)-1);
		return;
	case K_TS:
		i64 = TS_BASE + (int64_t)i;
		/* fall through */
	case K_INT64:
		memcpy(m, &i64, sizeof(i64));
		return;
	case K_MS:
		memcpy(m, &d, sizeof(d));
		return;
	case K_INT:
		memcpy(m, &n, sizeof(n));
		return;
	case K_BOOL:
	case K_FLAG:
		memcpy(m, &one, sizeof(one));  /* true: neither absent nor a default */
		return;
	}
}

/* Field f of the parsed record holds what the tt_record held. */
static void expect_parsed(const tt_rec *r, const tt_buf *arena, const tt_record *rec,
			  const struct field *f, size_t i)
{
	const char *m = (const char *)rec + f->off, *got;
	int64_t i64;
	double d;
	int n;
	size_t len;

	if (f->id != (int)i || strcmp(tt_rec_fields[i].name, f->name) != 0 ||
	    strcmp(tt_rec_fields[i].column, f->member) != 0)
		fail_msg("field %zu %s: the collector's table has %s (column %s)", i, f->name,
			 tt_rec_fields[i].name, tt_rec_fields[i].column);
	if (tt_rec_is_null(r, (int)i))
		fail_msg("%s: null after the collector read it", f->name);
	switch (f->kind) {
	case K_STR:
		got = tt_rec_str(r, (int)i, arena, &len);
		if (len != strlen(m) || memcmp(got, m, len) != 0)
			fail_msg("%s: '%.*s', want '%s'", f->name, (int)len, got, m);
		return;
	case K_TS:
	case K_INT64:
		memcpy(&i64, m, sizeof(i64));
		break;
	case K_INT:
	case K_BOOL:
	case K_FLAG:
		memcpy(&n, m, sizeof(n));
		i64 = n;
		break;
	case K_MS:
		memcpy(&d, m, sizeof(d));
		if (r->v[i].d != d)
			fail_msg("%s: %g, want %g", f->name, r->v[i].d, d);
		return;
	}
	if (r->v[i].i != i64)
		fail_msg("%s: %lld, want %lld", f->name, (long long)r->v[i].i, (long long)i64);
}

/* Field f's column holds what the tt_record held, with its SQL type. */
static void expect_column(const char *db, const tt_record *rec, const struct field *f)
{
	static const char *const type[] = {[K_STR] = "text", [K_TS] = "integer", [K_MS] = "real",
					   [K_INT64] = "integer", [K_INT] = "integer",
					   [K_BOOL] = "integer", [K_FLAG] = "integer"};
	const char *m = (const char *)rec + f->off;
	char sql[160], got[512], want[512];
	int64_t i64;
	double d;
	int n;

	snprintf(sql, sizeof(sql), "SELECT typeof(%s) FROM records", f->member);
	sql_text(db, sql, got, sizeof(got));
	/* The id is kept as its 16 bytes. */
	if (strcmp(got, f->id == TT_F_ID ? "blob" : type[f->kind]) != 0)
		fail_msg("column %s: type '%s'", f->member, got);
	snprintf(sql, sizeof(sql), f->id == TT_F_ID ? "SELECT lower(hex(%s)) FROM records"
						    : "SELECT %s FROM records", f->member);
	sql_text(db, sql, got, sizeof(got));
	switch (f->kind) {
	case K_STR:
		snprintf(want, sizeof(want), "%s", m);
		break;
	case K_TS:
	case K_INT64:
		memcpy(&i64, m, sizeof(i64));
		snprintf(want, sizeof(want), "%lld", (long long)i64);
		break;
	case K_INT:
	case K_BOOL:
	case K_FLAG:
		memcpy(&n, m, sizeof(n));
		snprintf(want, sizeof(want), "%d", n);
		break;
	case K_MS:
		memcpy(&d, m, sizeof(d));
		snprintf(want, sizeof(want), "%g", d);
		break;
	}
	if (strcmp(got, want) != 0)
		fail_msg("column %s: '%s', want '%s'", f->member, got, want);
}

/*
 * Every field of TT_RECORD_FIELDS, set, is written by the agent's writer,
 * taken by the collector and stored in its own column: a field that one of
 * them left out, or put elsewhere, fails here.
 */
static void test_every_field_round_trips(void **state)
{
	struct tt_store_opts o = {.sync_full = 1};
	char json[TT_RECORD_JSON_MAX], err[256], key[64], db[160], v[64];
	int64_t acc, dup;
	tt_record rec;
	tt_store *s;
	tt_buf arena;
	tt_rec r;
	int n;

	assert_int_equal(NFIELDS, TT_REC_NFIELDS);
	tt_record_init(&rec);
	for (size_t i = 0; i < NFIELDS; i++)
		set_field(&rec, &fields[i], i);
	/* DESIGN.md: input_tokens holds the cached ones, output_tokens the reasoning. */
	rec.input_tokens = rec.output_tokens = 1000000;

	n = tt_record_to_json(&rec, json, sizeof(json));
	assert_true(n > 0);
	for (size_t i = 0; i < NFIELDS; i++) {
		const char *at;

		snprintf(key, sizeof(key), "\"%s\":", fields[i].name);
		at = strstr(json, key);
		if (!at || strstr(at + 1, key))
			fail_msg("%s: written %s", fields[i].name, at ? "twice" : "never");
		if (strncmp(at + strlen(key), "null", 4) == 0)
			fail_msg("%s: written as null", fields[i].name);
	}

	tt_buf_init(&arena, 1 << 16);
	if (tt_rec_parse(json, (size_t)n, &arena, &r, err, sizeof(err)))
		fail_msg("the collector refused the writer's record: %s\n%s", err, json);
	for (size_t i = 0; i < NFIELDS; i++)
		expect_parsed(&r, &arena, &rec, &fields[i], i);

	snprintf(db, sizeof(db), "%s/every.db", dir);
	assert_int_equal(tt_store_open(db, &o, &s, err, sizeof(err)), 0);
	assert_int_equal(tt_store_insert(s, &r, 1, &arena, 1000, &acc, &dup), 0);
	assert_int_equal(acc, 1);
	tt_store_close(s);
	tt_buf_free(&arena);
	for (size_t i = 0; i < NFIELDS; i++)
		expect_column(db, &rec, &fields[i]);
	/* A column per field, and seq, cost_usd, cache_savings_usd, received_us. */
	sql_text(db, "SELECT count(*) FROM pragma_table_info('records')", v, sizeof(v));
	snprintf(key, sizeof(key), "%zu", NFIELDS + 4);
	assert_string_equal(v, key);
	remove_db(db);
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
	assert_string_equal(tt_usage_column("app"), "app");
}

/* 1,100 records at the documented maximum, 2^53 tokens each (issue 14, #3). */
#define MAX53 "9007199254740992"
#define SUM1100 "9907919180215091200"  /* 1100 * 2^53 > 2^63 - 1 */

static void ingest_max(tt_store *s, const tt_prices *p)
{
	tt_buf body;

	tt_buf_init(&body, 1 << 24);
	for (int i = 0; i < 1100; i++)
		tt_buf_printf(&body, "{\"id\":\"%032x\",\"ts\":\"2026-02-0%dT%02d:%02d:00Z\","
				     "\"provider\":\"openai\",\"model\":\"gpt-4o\",\"input_tokens\":"
				     MAX53 ",\"output_tokens\":" MAX53 ",\"cache_read_tokens\":" MAX53
				     ",\"reasoning_tokens\":" MAX53 ",\"feature\":\"big\"}\n",
			      0x100000 + i, 1 + i % 2, i % 24, i % 60);
	ingest(s, p, body.data, 1100, 0);
	tt_buf_free(&body);
}

static void expect_exact_sums(tt_store *s, int scan, int64_t since, int64_t until)
{
	struct tt_usage_query q = {.by = "model", .since_us = since, .until_us = until,
				   .scan = scan};
	char err[256];
	tt_buf out;

	tt_buf_init(&out, 1 << 20);
	if (tt_usage_json(s, &q, &out, err, sizeof(err)))
		fail_msg("usage: %s", err);
	assert_non_null(strstr(out.data, "\"calls\":1100,\"input_tokens\":" SUM1100
					 ",\"output_tokens\":" SUM1100 ",\"cache_read_tokens\":"
					 SUM1100 ",\"cache_write_tokens\":0,\"reasoning_tokens\":"
					 SUM1100));
	tt_buf_free(&out);
}

static int read_sum(sqlite3 *db, void *arg)
{
	sqlite3_stmt *st;
	int rc = -1;

	/* What tokentapd reads at start (metrics.c): SUM() over every record. */
	if (sqlite3_prepare_v2(db, "SELECT SUM(input_tokens), SUM(1) FROM records", -1, &st,
			       NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW) {
		*(int64_t *)arg = sqlite3_column_int64(st, 0);
		rc = sqlite3_column_int(st, 1) == 1100 ? 0 : -1;
	}
	sqlite3_finalize(st);
	return rc;
}

static void test_sums_at_the_maxima(void **state)
{
	struct tt_store_opts o = {.sync_full = 0};
	tt_prices *p = tt_prices_new();
	char err[256];
	int64_t sum = 0;
	tt_store *s;

	remove_db(path);
	assert_int_equal(tt_config_apply(p, NULL, 0, NULL, err, sizeof(err)), 0);
	assert_int_equal(tt_store_open(path, &o, &s, err, sizeof(err)), 0);
	ingest_max(s, p);
	expect_exact_sums(s, 0, INT64_MIN, INT64_MAX);
	expect_exact_sums(s, 1, INT64_MIN, INT64_MAX);
	/* Edges inside hours: records and buckets together. */
	expect_exact_sums(s, 0, 1769904000000000 - 1, 1770076800000000 + 1);
	/* Readers get an answer from SUM() too: saturated, never an error. */
	assert_int_equal(tt_store_read(s, read_sum, &sum), 0);
	assert_true(sum == INT64_MAX);
	tt_store_close(s);

	/* It opens again (buckets rebuilt from scratch too), and read-only. */
	sql_exec(path, "DELETE FROM meta WHERE key = 'rollup'");
	assert_int_equal(tt_store_open(path, &o, &s, err, sizeof(err)), 0);
	expect_exact_sums(s, 0, INT64_MIN, INT64_MAX);
	tt_store_close(s);
	o.readonly = 1;
	assert_int_equal(tt_store_open(path, &o, &s, err, sizeof(err)), 0);
	expect_exact_sums(s, 0, INT64_MIN, INT64_MAX);
	tt_store_close(s);
	remove_db(path);
	tt_prices_free(p);
}

/* Blocked calls never reached the provider: not in calls (issue 14, #12). */
static void test_blocked_calls_apart(void **state)
{
	struct tt_store_opts o = {.sync_full = 0};
	tt_prices *p = tt_prices_new();
	char err[256];
	tt_store *s;
	cJSON *u;
	const cJSON *r;

	remove_db(path);
	assert_int_equal(tt_config_apply(p, NULL, 0, NULL, err, sizeof(err)), 0);
	assert_int_equal(tt_store_open(path, &o, &s, err, sizeof(err)), 0);
	ingest(s, p,
	       REC(A, "2026-01-01T00:00:00Z", "gpt-4o", 1000, 100, "\"chat\"", "client")
	       "{\"id\":\"" B "\",\"ts\":\"2026-01-01T00:00:01Z\",\"model\":\"gpt-4o\","
	       "\"input_tokens\":0,\"output_tokens\":0,\"error\":\"blocked\",\"blocked\":true,"
	       "\"feature\":\"chat\"}\n"
	       "{\"id\":\"" C "\",\"ts\":\"2026-01-01T00:00:02Z\",\"model\":\"mystery\","
	       "\"error\":\"blocked\",\"feature\":\"chat\"}\n"
	       "{\"id\":\"" D "\",\"ts\":\"2026-01-01T00:00:03Z\",\"model\":\"gpt-4o\","
	       "\"blocked\":true,\"feature\":\"chat\"}\n",
	       4, 0);
	for (int scan = 0; scan < 2; scan++) {
		struct tt_usage_query q = {.by = "feature", .since_us = INT64_MIN,
					   .until_us = INT64_MAX, .scan = scan};
		tt_buf out;

		tt_buf_init(&out, 1 << 20);
		assert_int_equal(tt_usage_json(s, &q, &out, err, sizeof(err)), 0);
		u = cJSON_Parse(out.data);
		tt_buf_free(&out);
		r = row_of(u, "chat");
		assert_true(num(r, "calls") == 1);
		assert_true(num(r, "blocked_calls") == 3);
		assert_true(num(r, "unpriced_calls") == 0);  /* C was blocked, not unpriced */
		assert_true(num(r, "input_tokens") == 1000);
		r = cJSON_GetObjectItem(u, "total");
		assert_true(num(r, "calls") == 1);
		assert_true(num(r, "blocked_calls") == 3);
		cJSON_Delete(u);
	}
	tt_store_close(s);
	remove_db(path);
	tt_prices_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_store_and_usage),
		cmocka_unit_test(test_migrate_schema_1),
		cmocka_unit_test(test_every_field_round_trips),
		cmocka_unit_test(test_parse_time),
		cmocka_unit_test(test_sums_at_the_maxima),
		cmocka_unit_test(test_blocked_calls_apart),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
