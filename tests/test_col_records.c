/*
 * test_col_records.c - record validation (collector/rec.c), the
 * POST /v1/records body splitter (collector/batch.c), and the agent's JSON
 * writer (common/record.c) read back by the collector.
 *
 * Every batch is fed whole, in random splits and one byte at a time, and
 * must give the same records and the same rejections each way.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../collector/batch.h"
#include "../collector/rec.h"
#include "tokentap/error.h"
#include "tokentap/record.h"

#define ID1 "0123456789abcdef0123456789abcdef"
#define ID2 "fedcba9876543210fedcba9876543210"
#define TLS_UNKNOWN "tls: unknown value (expected openssl, boringssl, gotls, rustls, plain)"
#define APP16 "@scope/app-name-"
#define APP128 APP16 APP16 APP16 APP16 APP16 APP16 APP16 APP16  /* one byte too many */

static const char *full_record =
	"{\"id\":\"" ID1 "\",\"source\":\"preload\",\"ts\":\"2026-01-02T03:04:05.123456Z\","
	"\"ttft_ms\":120.5,\"duration_ms\":900,\"pid\":42,\"tid\":43,\"comm\":\"python3\","
	"\"exe\":\"/usr/bin/python3.11\",\"cgroup\":\"/user.slice\",\"container_id\":null,"
	"\"pod_uid\":null,\"host\":\"api.openai.com\",\"method\":\"POST\","
	"\"path\":\"/v1/chat/completions\",\"http\":\"2\",\"status\":200,\"provider\":\"openai\","
	"\"api\":\"chat.completions\",\"model\":\"gpt-4o-mini-2024-07-18\","
	"\"request_model\":\"gpt-4o-mini\",\"stream\":true,\"max_tokens\":512,"
	"\"input_tokens\":1149,\"output_tokens\":353,\"cache_read_tokens\":1024,"
	"\"cache_write_tokens\":null,\"reasoning_tokens\":0,\"usage_source\":\"provider\","
	"\"task\":\"t-1\",\"tenant\":\"acme\",\"feature\":\"summarise\",\"prompt_hash\":null,"
	"\"prefix_hash\":null,\"request_bytes\":2048,\"response_bytes\":4096,\"error\":null,"
	"\"blocked\":false,\"side\":\"client\",\"app\":\"@google/gemini-cli\",\"tls\":\"boringssl\","
	"\"some_future_field\":[1,2,3]}";

/* Validate one JSON text; returns the rc and leaves the reason in err. */
static int validate(const char *json, tt_rec *r, tt_buf *arena, char *err, size_t errlen)
{
	return tt_rec_parse(json, strlen(json), arena, r, err, errlen);
}

static void test_full_record(void **state)
{
	tt_buf arena;
	tt_rec r;
	char err[128];
	size_t len;
	const char *s;

	tt_buf_init(&arena, 1 << 20);
	assert_int_equal(validate(full_record, &r, &arena, err, sizeof(err)), 0);
	/* 2026-01-02T03:04:05Z is 1767323045 (date -u -d ... +%s). */
	assert_true(r.v[TT_F_TS].i == INT64_C(1767323045123456));
	assert_true(r.v[TT_F_TTFT_MS].d == 120.5);
	assert_int_equal(r.v[TT_F_PID].i, 42);
	assert_int_equal(r.v[TT_F_STATUS].i, 200);
	assert_int_equal(r.v[TT_F_STREAM].i, 1);
	assert_int_equal(r.v[TT_F_BLOCKED].i, 0);
	assert_int_equal(r.v[TT_F_INPUT_TOKENS].i, 1149);
	assert_int_equal(r.v[TT_F_CACHE_READ_TOKENS].i, 1024);
	assert_true(tt_rec_is_null(&r, TT_F_CACHE_WRITE_TOKENS));
	assert_true(tt_rec_is_null(&r, TT_F_CONTAINER_ID));
	assert_false(tt_rec_is_null(&r, TT_F_REASONING_TOKENS));
	s = tt_rec_str(&r, TT_F_MODEL, &arena, &len);
	assert_int_equal(len, strlen("gpt-4o-mini-2024-07-18"));
	assert_memory_equal(s, "gpt-4o-mini-2024-07-18", len);
	s = tt_rec_str(&r, TT_F_FEATURE, &arena, &len);
	assert_memory_equal(s, "summarise", len);
	s = tt_rec_str(&r, TT_F_APP, &arena, &len);
	assert_int_equal(len, strlen("@google/gemini-cli"));
	assert_memory_equal(s, "@google/gemini-cli", len);
	s = tt_rec_str(&r, TT_F_TLS, &arena, &len);
	assert_int_equal(len, strlen("boringssl"));
	assert_memory_equal(s, "boringssl", len);
	tt_buf_free(&arena);
}

/* A 127-byte app, and every tls DESIGN.md names, are accepted. */
static void test_app_and_tls(void **state)
{
	static const char *const tls[] = {"openssl", "boringssl", "gotls", "rustls", "plain"};
	char json[512], app[128], err[128];
	tt_buf arena;
	size_t len;
	tt_rec r;

	tt_buf_init(&arena, 1 << 16);
	memset(app, 'a', sizeof(app) - 1);
	app[sizeof(app) - 1] = '\0';
	for (size_t i = 0; i < sizeof(tls) / sizeof(tls[0]); i++) {
		snprintf(json, sizeof(json), "{\"id\":\"" ID1 "\",\"app\":\"%s\",\"tls\":\"%s\"}", app,
			 tls[i]);
		assert_int_equal(validate(json, &r, &arena, err, sizeof(err)), 0);
		assert_non_null(tt_rec_str(&r, TT_F_APP, &arena, &len));
		assert_int_equal(len, 127);
		assert_memory_equal(tt_rec_str(&r, TT_F_TLS, &arena, &len), tls[i], strlen(tls[i]));
		assert_int_equal(len, strlen(tls[i]));
	}
	/* null and missing are null; the empty string is a value, and no tls. */
	assert_int_equal(validate("{\"id\":\"" ID1 "\",\"app\":null}", &r, &arena, err,
				  sizeof(err)), 0);
	assert_true(tt_rec_is_null(&r, TT_F_APP));
	assert_true(tt_rec_is_null(&r, TT_F_TLS));
	assert_int_equal(validate("{\"id\":\"" ID1 "\",\"tls\":\"\"}", &r, &arena, err,
				  sizeof(err)), TT_EINVAL);
	assert_string_equal(err, TLS_UNKNOWN);
	tt_buf_free(&arena);
}

static void test_minimal_record(void **state)
{
	tt_buf arena;
	tt_rec r;
	char err[128];

	tt_buf_init(&arena, 1 << 20);
	/* Only id is required; everything else missing is null. */
	assert_int_equal(validate("{\"id\":\"" ID2 "\"}", &r, &arena, err, sizeof(err)), 0);
	for (int f = 1; f < TT_REC_NFIELDS; f++)
		assert_true(tt_rec_is_null(&r, f));
	tt_buf_free(&arena);
}

struct bad_case {
	const char *json;
	const char *error;  /* exact message */
};

static void test_rejections(void **state)
{
	static const struct bad_case cases[] = {
		{"{}", "id: required"},
		{"{\"id\":null}", "id: required"},
		{"{\"id\":\"abc\"}", "id: expected 32 hexadecimal characters"},
		{"{\"id\":\"0123456789abcdef0123456789abcdeg\"}", "id: expected 32 hexadecimal characters"},
		{"{\"id\":\"0123456789abcdef0123456789abcdef0\"}", "id: longer than 32 bytes"},
		{"{\"id\":12}", "id: expected string"},
		{"[1]", "record: expected a JSON object"},
		{"{\"id\":\"" ID1 "\",\"input_tokens\":\"12\"}", "input_tokens: expected integer"},
		{"{\"id\":\"" ID1 "\",\"input_tokens\":1.5}", "input_tokens: expected integer"},
		{"{\"id\":\"" ID1 "\",\"input_tokens\":-1}", "input_tokens: must not be negative"},
		{"{\"id\":\"" ID1 "\",\"input_tokens\":1e300}", "input_tokens: larger than 9007199254740992"},
		{"{\"id\":\"" ID1 "\",\"status\":1000}", "status: larger than 999"},
		{"{\"id\":\"" ID1 "\",\"ttft_ms\":\"fast\"}", "ttft_ms: expected number"},
		{"{\"id\":\"" ID1 "\",\"duration_ms\":-3}", "duration_ms: must not be negative"},
		{"{\"id\":\"" ID1 "\",\"stream\":1}", "stream: expected true, false or null"},
		{"{\"id\":\"" ID1 "\",\"side\":\"both\"}", "side: unknown value (expected client, server)"},
		{"{\"id\":\"" ID1 "\",\"usage_source\":\"guess\"}",
		 "usage_source: unknown value (expected provider, estimated, none)"},
		{"{\"id\":\"" ID1 "\",\"source\":\"kernel\"}", "source: unknown value (expected preload, ebpf)"},
		{"{\"id\":\"" ID1 "\",\"tls\":\"schannel\"}", TLS_UNKNOWN},
		{"{\"id\":\"" ID1 "\",\"tls\":\"OpenSSL\"}", TLS_UNKNOWN},
		{"{\"id\":\"" ID1 "\",\"tls\":true}", "tls: expected string"},
		{"{\"id\":\"" ID1 "\",\"app\":\"" APP128 "\"}", "app: longer than 127 bytes"},
		{"{\"id\":\"" ID1 "\",\"app\":7}", "app: expected string"},
		{"{\"id\":\"" ID1 "\",\"app\":\"caf\xc3\"}", "app: not valid UTF-8"},
		{"{\"id\":\"" ID1 "\",\"comm\":\"0123456789abcdefX\"}", "comm: longer than 16 bytes"},
		{"{\"id\":\"" ID1 "\",\"model\":\"\xff" "x\"}", "model: not valid UTF-8"},
		{"{\"id\":\"" ID1 "\",\"ts\":\"yesterday\"}",
		 "ts: not an RFC 3339 date-time (e.g. 2026-01-02T03:04:05.000000Z)"},
		{"{\"id\":\"" ID1 "\",\"ts\":\"2026-02-30T00:00:00Z\"}",
		 "ts: not an RFC 3339 date-time (e.g. 2026-01-02T03:04:05.000000Z)"},
		{"{\"id\":\"" ID1 "\",\"input_tokens\":10,\"cache_read_tokens\":8,\"cache_write_tokens\":3}",
		 "cache_read_tokens: cache_read_tokens + cache_write_tokens exceed input_tokens"},
		{"{\"id\":\"" ID1 "\",\"output_tokens\":10,\"reasoning_tokens\":11}",
		 "reasoning_tokens: exceeds output_tokens"},
		{"{\"id\":\"" ID1 "\",\"model\":\"\\udc00\"}", "malformed JSON at byte 51 of the record"},
		{"{\"id\":\"" ID1 "\",\"model\":\"a\tb\"}", "malformed JSON at byte 52 of the record"},
		{"{\"id\":\"" ID1 "\",}", "malformed JSON at byte 42 of the record"},
		{"{\"id\":\"" ID1 "\"} x", "malformed JSON at byte 43 of the record"},
		{"{\"id\":\"" ID1 "\",\"x\":[1,{\"a\":tru]}", "malformed JSON at byte 54 of the record"},
		{"{\"id\":\"" ID1 "\",\"input_tokens\":01}", "malformed JSON at byte 58 of the record"},
		{"{\"id\":\"" ID1 "\",\"pid\":{\"a\":1}}", "pid: expected integer"},
	};
	tt_buf arena;
	tt_rec r;
	char err[128];

	tt_buf_init(&arena, 1 << 20);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = validate(cases[i].json, &r, &arena, err, sizeof(err));

		if (rc != TT_EINVAL || strcmp(err, cases[i].error) != 0)
			fail_msg("case %zu %s: rc %d, error '%s', want '%s'", i, cases[i].json, rc, err,
				 cases[i].error);
		assert_int_equal(arena.len, 0);  /* a rejected record leaves nothing behind */
	}
	tt_buf_free(&arena);
}

/*
 * Issue 14 #10: "gpt-4o-mini\u0000acme" is valid JSON, but a NUL ends the
 * string for every C reader downstream (the price lookup took it for
 * gpt-4o-mini) and split the labels of /metrics.  No honest writer sends
 * one (the agent's fields are C strings): the record is refused, in every
 * string field, with a reason that names the field.  Other control
 * characters are kept as sent (escaped where a format needs it).
 */
static void test_nul_refused(void **state)
{
	static const struct bad_case cases[] = {
		{"{\"id\":\"" ID1 "\",\"model\":\"gpt-4o-mini\\u0000acme\"}",
		 "model: contains a NUL character (\\u0000)"},
		{"{\"id\":\"" ID1 "\",\"tenant\":\"\\u0000\"}",
		 "tenant: contains a NUL character (\\u0000)"},
		{"{\"id\":\"" ID1 "\",\"pod_uid\":\"a\\u0000\"}",
		 "pod_uid: contains a NUL character (\\u0000)"},
		{"{\"id\":\"" ID1 "\",\"exe\":\"/bin/x\\u0000/y\"}",
		 "exe: contains a NUL character (\\u0000)"},
	};
	const char *ok = "{\"id\":\"" ID1 "\",\"tenant\":\"a\\u0001\\tb\\nc\"}";
	tt_buf arena;
	tt_rec r;
	char err[128];
	size_t len;
	const char *s;

	tt_buf_init(&arena, 1 << 20);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = validate(cases[i].json, &r, &arena, err, sizeof(err));

		if (rc != TT_EINVAL || strcmp(err, cases[i].error) != 0)
			fail_msg("case %zu %s: rc %d, error '%s', want '%s'", i, cases[i].json, rc, err,
				 cases[i].error);
		assert_int_equal(arena.len, 0);
	}
	assert_int_equal(validate(ok, &r, &arena, err, sizeof(err)), 0);
	s = tt_rec_str(&r, TT_F_TENANT, &arena, &len);
	assert_int_equal(len, 6);
	assert_memory_equal(s, "a\001\tb\nc", 6);
	tt_buf_free(&arena);
}

static void test_json_details(void **state)
{
	tt_buf arena;
	tt_rec r;
	char err[128];
	size_t len;
	const char *s;

	tt_buf_init(&arena, 1 << 16);
	/* Escapes are decoded (a surrogate pair too); unknown members of any shape
	 * are skipped; the first of a repeated key wins; keys match exactly. */
	assert_int_equal(validate(" {\"Model\":1, \"id\":\"" ID1 "\",\"task\":\"caf\\u00e9 \\ud83d\\ude00\\n\","
				  "\"x\":{\"y\":[true,false,null,-1.5e-3,\"z\",{}],\"w\":[]},"
				  "\"input_tokens\":7,\"input_tokens\":\"no\",\"ttft_ms\":1e2} ",
				  &r, &arena, err, sizeof(err)), 0);
	s = tt_rec_str(&r, TT_F_TASK, &arena, &len);
	assert_int_equal(len, 11);
	assert_memory_equal(s, "caf\xc3\xa9 \xf0\x9f\x98\x80\n", 11);
	assert_int_equal(r.v[TT_F_INPUT_TOKENS].i, 7);
	assert_true(r.v[TT_F_TTFT_MS].d == 100.0);
	assert_true(tt_rec_is_null(&r, TT_F_MODEL));
	/* 1.0 and 1e3 are integers; 9007199254740993 is beyond 2^53 */
	assert_int_equal(validate("{\"id\":\"" ID1 "\",\"input_tokens\":1e3,\"output_tokens\":1.0}",
				  &r, &arena, err, sizeof(err)), 0);
	assert_int_equal(r.v[TT_F_INPUT_TOKENS].i, 1000);
	assert_int_equal(r.v[TT_F_OUTPUT_TOKENS].i, 1);
	assert_int_equal(validate("{\"id\":\"" ID1 "\",\"input_tokens\":9007199254740993}",
				  &r, &arena, err, sizeof(err)), TT_EINVAL);
	assert_string_equal(err, "input_tokens: larger than 9007199254740992");
	tt_buf_free(&arena);
}

static void test_timestamps(void **state)
{
	int64_t us;

	assert_int_equal(tt_rec_parse_ts("1970-01-01T00:00:00Z", 20, &us), 0);
	assert_true(us == 0);
	/* An offset: 03:04:05+02:00 is 01:04:05Z = 1767315845. */
	assert_int_equal(tt_rec_parse_ts("2026-01-02T03:04:05+02:00", 25, &us), 0);
	assert_true(us == INT64_C(1767315845) * 1000000);
	/* Leap day, fractional digits beyond microseconds are cut. */
	assert_int_equal(tt_rec_parse_ts("2024-02-29T23:59:59.1234567Z", 28, &us), 0);
	assert_true(us == INT64_C(1709251199) * 1000000 + 123456);
	assert_int_equal(tt_rec_parse_ts("2023-02-29T00:00:00Z", 20, &us), TT_EINVAL);
	assert_int_equal(tt_rec_parse_ts("2026-01-02T03:04:05", 19, &us), TT_EINVAL);
	assert_int_equal(tt_rec_parse_ts("2026-01-02T03:04:05.Z", 21, &us), TT_EINVAL);
	{
		char buf[40];

		tt_rec_format_ts(INT64_C(1709251199) * 1000000 + 123456, buf, sizeof(buf));
		assert_string_equal(buf, "2024-02-29T23:59:59.123456Z");
	}
}

/* --- the agent's writer, read back --------------------------------------- */

/* Field f of r holds exactly `want`; an empty want means null. */
static void expect_str(const tt_rec *r, int f, const tt_buf *arena, const char *want)
{
	size_t len;
	const char *got = tt_rec_str(r, f, arena, &len);

	if (!want[0]) {
		if (got)
			fail_msg("%s: '%.*s', want null", tt_rec_fields[f].name, (int)len, got);
		return;
	}
	if (!got || len != strlen(want) || memcmp(got, want, len) != 0)
		fail_msg("%s: '%.*s', want '%s'", tt_rec_fields[f].name, got ? (int)len : 6,
			 got ? got : "(null)", want);
}

static void fill_record(tt_record *rec)
{
	tt_record_init(rec);
	tt_record_new_id(rec);
	TT_RECORD_SET(rec, source, "preload", -1);
	rec->ts_us = INT64_C(1767323045123456);
	rec->ttft_ms = 120.5;
	rec->pid = 4242;
	TT_RECORD_SET(rec, comm, "node", -1);
	TT_RECORD_SET(rec, exe, "/usr/bin/node", -1);
	TT_RECORD_SET(rec, host, "generativelanguage.googleapis.com", -1);
	TT_RECORD_SET(rec, method, "POST", -1);
	TT_RECORD_SET(rec, http, "2", -1);
	rec->status = 200;
	TT_RECORD_SET(rec, provider, "gemini", -1);
	TT_RECORD_SET(rec, model, "gemini-2.5-pro", -1);
	rec->stream = 1;
	rec->input_tokens = 1000;
	rec->cache_read_tokens = 400;
	rec->output_tokens = 50;
	rec->reasoning_tokens = 20;
	TT_RECORD_SET(rec, usage_source, "provider", -1);
	/* Quotes, a backslash, a control character and UTF-8 survive the trip. */
	TT_RECORD_SET(rec, task, "t \"1\" \\ \x01 caf\xc3\xa9", -1);
	TT_RECORD_SET(rec, side, "client", -1);
	TT_RECORD_SET(rec, app, "@google/gemini-cli", -1);
	TT_RECORD_SET(rec, tls, "boringssl", -1);
}

static void test_writer_round_trip(void **state)
{
	char json[TT_RECORD_JSON_MAX], err[128];
	tt_record rec;
	tt_buf arena;
	tt_rec r;
	int n;

	tt_buf_init(&arena, 1 << 16);
	fill_record(&rec);
	n = tt_record_to_json(&rec, json, sizeof(json));
	assert_true(n > 0);
	assert_int_equal(tt_rec_parse(json, (size_t)n, &arena, &r, err, sizeof(err)), 0);
	expect_str(&r, TT_F_ID, &arena, rec.id);
	expect_str(&r, TT_F_EXE, &arena, rec.exe);
	expect_str(&r, TT_F_MODEL, &arena, rec.model);
	expect_str(&r, TT_F_TASK, &arena, rec.task);
	expect_str(&r, TT_F_SIDE, &arena, rec.side);
	expect_str(&r, TT_F_APP, &arena, "@google/gemini-cli");
	expect_str(&r, TT_F_TLS, &arena, "boringssl");
	expect_str(&r, TT_F_TENANT, &arena, "");
	assert_true(r.v[TT_F_TS].i == rec.ts_us);
	assert_true(r.v[TT_F_TTFT_MS].d == 120.5);
	assert_true(tt_rec_is_null(&r, TT_F_DURATION_MS));
	assert_int_equal(r.v[TT_F_INPUT_TOKENS].i, 1000);
	assert_int_equal(r.v[TT_F_REASONING_TOKENS].i, 20);
	assert_true(tt_rec_is_null(&r, TT_F_CACHE_WRITE_TOKENS));
	assert_int_equal(r.v[TT_F_STREAM].i, 1);

	/* Absent app and tls are written as null, never left out. */
	rec.app[0] = rec.tls[0] = '\0';
	n = tt_record_to_json(&rec, json, sizeof(json));
	assert_non_null(strstr(json, ",\"app\":null,"));
	assert_non_null(strstr(json, ",\"tls\":null"));
	assert_int_equal(tt_rec_parse(json, (size_t)n, &arena, &r, err, sizeof(err)), 0);
	assert_true(tt_rec_is_null(&r, TT_F_APP));
	assert_true(tt_rec_is_null(&r, TT_F_TLS));

	/* A value the collector refuses is refused whoever wrote it. */
	TT_RECORD_SET(&rec, tls, "nss", -1);
	n = tt_record_to_json(&rec, json, sizeof(json));
	assert_int_equal(tt_rec_parse(json, (size_t)n, &arena, &r, err, sizeof(err)), TT_EINVAL);
	assert_string_equal(err, TLS_UNKNOWN);
	tt_buf_free(&arena);
}

/* Each kind of field at its longest: strings at their cap, every byte a
 * control character (\u0001), numbers at their largest. */
#define LONGEST_STR(m)   (memset((m), 1, sizeof(m) - 1), (m)[sizeof(m) - 1] = 0)
#define LONGEST_TS(m)    ((m) = INT64_C(253402300799999999))  /* 9999-12-31T23:59:59.999999Z */
#define LONGEST_MS(m)    ((m) = 1e26)                         /* 31 characters with %.3f */
#define LONGEST_INT64(m) ((m) = INT64_MAX)
#define LONGEST_INT(m)   ((m) = INT32_MAX)
#define LONGEST_BOOL(m)  ((m) = 0)
#define LONGEST_FLAG(m)  ((m) = 0)

/* The largest record there can be fits in TT_RECORD_JSON_MAX, with room. */
static void test_writer_worst_case(void **state)
{
	static char json[TT_RECORD_JSON_MAX];
	tt_record rec;
	int n, keys;

	/* The keys' share: an all-null record is keys, "null"s and punctuation. */
	tt_record_init(&rec);
	n = tt_record_to_json(&rec, json, sizeof(json));
	keys = n - 4 * TT_REC_NFIELDS;
	assert_true(keys > 0 && keys < 2048);

#define LONGEST(e, name, kind, bound, flags, allowed) LONGEST_##kind(rec.TT_RECORD_NAME_##kind(name));
	TT_RECORD_FIELDS(LONGEST)
#undef LONGEST
	n = tt_record_to_json(&rec, json, sizeof(json));
	print_message("worst-case record: %d bytes of JSON (keys %d), TT_RECORD_JSON_MAX %d\n", n,
		      keys, TT_RECORD_JSON_MAX);
	assert_true(n > 15000 && n < TT_RECORD_JSON_MAX);
	assert_int_equal(strlen(json), n);

	/* A duration too large to print is null, not a cut number. */
	rec.duration_ms = 1e300;
	n = tt_record_to_json(&rec, json, sizeof(json));
	assert_true(n > 0);
	assert_non_null(strstr(json, "\"duration_ms\":null,"));
	assert_int_equal(tt_record_to_json(&rec, json, 100), TT_ENOSPACE);
}

/* --- batches ------------------------------------------------------------ */

enum mode { WHOLE, RANDOM, BYTES };

/* A printable summary of a batch's outcome, to compare feeding modes. */
static void summarize(const tt_batch *b, char *out, size_t cap)
{
	size_t n = 0;

	n += (size_t)snprintf(out + n, cap - n, "recs=%zu rejected=%zu fatal=[%s]", b->nrecs,
			      b->nrejected, b->fatal);
	for (size_t i = 0; i < b->nrecs && n < cap; i++) {
		size_t len;
		const char *id = tt_rec_str(&b->recs[i], TT_F_ID, &b->arena, &len);

		n += (size_t)snprintf(out + n, cap - n, " %.*s/%lld", (int)len, id,
				      (long long)tt_rec_int(&b->recs[i], TT_F_INPUT_TOKENS, -1));
	}
	for (size_t i = 0; i < b->nrejects && n < cap; i++)
		n += (size_t)snprintf(out + n, cap - n, " [L%u I%lld %s]", b->rejects[i].line,
				      (long long)b->rejects[i].index, b->rejects[i].error);
}

static void run_batch(const char *body, size_t len, enum mode m, unsigned seed, tt_batch *b)
{
	size_t at = 0;

	srand(seed);
	tt_batch_init(b, 16u << 20);
	while (at < len) {
		size_t n = m == WHOLE ? len - at : m == BYTES ? 1 : 1 + (size_t)rand() % 97;

		if (n > len - at)
			n = len - at;
		assert_int_equal(tt_batch_feed(b, body + at, n), 0);
		at += n;
	}
	assert_int_equal(tt_batch_finish(b), 0);
}

/* Feed body every way; all must agree; return the summary of the whole feed. */
static void check_all_ways(const char *body, size_t len, char *summary, size_t cap)
{
	char other[8192];
	tt_batch b;

	run_batch(body, len, WHOLE, 1, &b);
	summarize(&b, summary, cap);
	tt_batch_free(&b);
	for (unsigned seed = 1; seed <= 20; seed++) {
		run_batch(body, len, RANDOM, seed, &b);
		summarize(&b, other, sizeof(other));
		tt_batch_free(&b);
		assert_string_equal(other, summary);
	}
	run_batch(body, len, BYTES, 1, &b);
	summarize(&b, other, sizeof(other));
	tt_batch_free(&b);
	assert_string_equal(other, summary);
}

#define R(id, in) "{\"id\":\"" id "\",\"input_tokens\":" #in "}"

static void test_batch_lines(void **state)
{
	const char *body = R(ID1, 1) "\n"
			   "\n"                                   /* blank: skipped */
			   "{\"id\":\"short\"}\r\n"               /* line 3: rejected */
			   "{not json\n"                          /* line 4: rejected */
			   "  " R(ID2, 2) "  \r\n"                /* spaces and CRLF */
			   R(ID1, 3);                             /* no final newline */
	char s[8192];

	check_all_ways(body, strlen(body), s, sizeof(s));
	assert_string_equal(s, "recs=3 rejected=2 fatal=[] " ID1 "/1 " ID2 "/2 " ID1 "/3"
			       " [L3 I-1 id: expected 32 hexadecimal characters]"
			       " [L4 I-1 malformed JSON at byte 2 of the record]");
}

static void test_batch_array(void **state)
{
	const char *body = " [\n " R(ID1, 1) ",\n"
			   "  {\"id\":\"" ID2 "\",\"model\":\"a,]}[{\\\"\",\"input_tokens\":\"x\"},\n"
			   "  " R(ID2, 7) "\n]\n ";
	char s[8192];

	check_all_ways(body, strlen(body), s, sizeof(s));
	/* The string with brackets, commas and an escaped quote does not split the array. */
	assert_string_equal(s, "recs=2 rejected=1 fatal=[] " ID1 "/1 " ID2 "/7"
			       " [L3 I1 input_tokens: expected integer]");
}

static void test_batch_array_edges(void **state)
{
	char s[8192];

	check_all_ways("[]", 2, s, sizeof(s));
	assert_string_equal(s, "recs=0 rejected=0 fatal=[]");
	check_all_ways("[" R(ID1, 1) ",]", strlen("[" R(ID1, 1) ",]"), s, sizeof(s));
	assert_string_equal(s, "recs=1 rejected=1 fatal=[] " ID1 "/1 [L1 I1 empty array element]");
	{
		const char *body = "[" R(ID1, 1) "," R(ID2, 2);

		check_all_ways(body, strlen(body), s, sizeof(s));
		assert_string_equal(s, "recs=1 rejected=1 fatal=[unterminated JSON array (no closing ']')] "
				       ID1 "/1 [L1 I1 record cut off: the array never closes]");
	}
	{
		const char *body = "[" R(ID1, 1) "] trailing";

		check_all_ways(body, strlen(body), s, sizeof(s));
		assert_string_equal(s, "recs=1 rejected=0 fatal=[unexpected data after the closing "
				       "']' (line 1)] " ID1 "/1");
	}
}

static void test_batch_oversized_record(void **state)
{
	/* A record over TT_BATCH_RECORD_MAX is rejected alone; its neighbours stay. */
	size_t pad = TT_BATCH_RECORD_MAX + 10, n = 0, cap = pad + 512;
	char *body = malloc(cap), s[8192];

	assert_non_null(body);
	n += (size_t)snprintf(body + n, cap - n, "%s\n{\"id\":\"%s\",\"comm\":\"", R(ID1, 1), ID2);
	memset(body + n, 'x', pad);
	n += pad;
	n += (size_t)snprintf(body + n, cap - n, "\"}\n%s\n", R(ID2, 5));
	check_all_ways(body, n, s, sizeof(s));
	assert_string_equal(s, "recs=2 rejected=1 fatal=[] " ID1 "/1 " ID2 "/5"
			       " [L2 I-1 record larger than 65536 bytes]");
	free(body);
}

static void test_batch_many_rejects(void **state)
{
	/* Every rejection is counted; the first TT_BATCH_REJECTS_KEPT keep a reason. */
	tt_batch b;

	tt_batch_init(&b, 1 << 20);
	for (int i = 0; i < 250; i++)
		tt_batch_feed(&b, "{}\n", 3);
	tt_batch_finish(&b);
	assert_int_equal(b.nrejected, 250);
	assert_int_equal(b.nrejects, TT_BATCH_REJECTS_KEPT);
	assert_int_equal(b.rejects[99].line, 100);
	tt_batch_free(&b);
}

static void test_batch_record_cap(void **state)
{
	/* Beyond TT_BATCH_MAX_RECORDS kept records, the rest are rejected, counted. */
	char line[80];
	tt_batch b;

	tt_batch_init(&b, 64u << 20);
	for (int i = 0; i < TT_BATCH_MAX_RECORDS + 5; i++) {
		int n = snprintf(line, sizeof(line), "{\"id\":\"%032x\"}\n", i);

		assert_int_equal(tt_batch_feed(&b, line, (size_t)n), 0);
	}
	tt_batch_finish(&b);
	assert_int_equal(b.nrecs, TT_BATCH_MAX_RECORDS);
	assert_int_equal(b.nrejected, 5);
	assert_int_equal(b.rejects[0].line, TT_BATCH_MAX_RECORDS + 1);
	assert_string_equal(b.rejects[0].error,
			    "more than 100000 records in one batch; send smaller batches");
	tt_batch_free(&b);
}

static void test_batch_arena_cap(void **state)
{
	/* A tiny arena: records whose strings do not fit are rejected, never overflow. */
	const char *body = "{\"id\":\"" ID1 "\",\"model\":\"gpt-4o\"}\n";
	tt_batch b;

	tt_batch_init(&b, 40);
	tt_batch_feed(&b, body, strlen(body));
	tt_batch_feed(&b, body, strlen(body));
	tt_batch_finish(&b);
	assert_int_equal(b.nrecs, 1);
	assert_int_equal(b.nrejected, 1);
	assert_string_equal(b.rejects[0].error, "batch too large to hold in memory");
	tt_batch_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_record),
		cmocka_unit_test(test_minimal_record),
		cmocka_unit_test(test_rejections),
		cmocka_unit_test(test_nul_refused),
		cmocka_unit_test(test_json_details),
		cmocka_unit_test(test_timestamps),
		cmocka_unit_test(test_app_and_tls),
		cmocka_unit_test(test_writer_round_trip),
		cmocka_unit_test(test_writer_worst_case),
		cmocka_unit_test(test_batch_lines),
		cmocka_unit_test(test_batch_array),
		cmocka_unit_test(test_batch_array_edges),
		cmocka_unit_test(test_batch_oversized_record),
		cmocka_unit_test(test_batch_many_rejects),
		cmocka_unit_test(test_batch_record_cap),
		cmocka_unit_test(test_batch_arena_cap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
