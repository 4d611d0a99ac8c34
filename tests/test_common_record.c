/*
 * test_common_record.c - the record's defaults, its id and its JSON writer
 * (common/record.c): the exact bytes of a full and of an empty record (the
 * form every earlier tokentap wrote, but that \n \r \t are now escaped by
 * name, as json.h does, where the writer of decoder/record.c wrote \u000a
 * \u000d \u0009), TT_ENOSPACE at every short buffer, cuts at a UTF-8
 * boundary, and ids.  A new field in record_fields.h changes these bytes:
 * add it to fill(), full_json and empty_json.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tokentap/error.h"
#include "tokentap/record.h"

/* Every field set; strings that need escaping, and UTF-8. */
static void fill(tt_record *rec)
{
	tt_record_init(rec);
	TT_RECORD_SET(rec, id, "0123456789abcdef0123456789abcdef", -1);
	TT_RECORD_SET(rec, source, "preload", -1);
	rec->ts_us = INT64_C(1767323045000042);
	rec->ttft_ms = 120.5;
	rec->duration_ms = 0.0004;
	rec->pid = 4242;
	rec->tid = 4243;
	TT_RECORD_SET(rec, comm, "node", -1);
	TT_RECORD_SET(rec, exe, "/usr/bin/node", -1);
	TT_RECORD_SET(rec, cgroup, "/kubepods/pod1", -1);
	TT_RECORD_SET(rec, container_id, "c0ffee", -1);
	TT_RECORD_SET(rec, pod_uid, "1-2-3", -1);
	TT_RECORD_SET(rec, host, "api.anthropic.com", -1);
	TT_RECORD_SET(rec, method, "POST", -1);
	TT_RECORD_SET(rec, path, "/v1/messages", -1);
	TT_RECORD_SET(rec, http, "1.1", -1);
	rec->status = 200;
	TT_RECORD_SET(rec, provider, "anthropic", -1);
	TT_RECORD_SET(rec, api, "messages", -1);
	TT_RECORD_SET(rec, model, "claude-sonnet-4-5-20250929", -1);
	TT_RECORD_SET(rec, request_model, "claude-sonnet-4-5", -1);
	rec->stream = 0;
	rec->max_tokens = 1024;
	rec->input_tokens = 3000;
	rec->output_tokens = 400;
	rec->cache_read_tokens = 2000;
	rec->cache_write_tokens = 500;
	rec->reasoning_tokens = 0;
	TT_RECORD_SET(rec, usage_source, "provider", -1);
	TT_RECORD_SET(rec, task, "t \"1\" \\ / \x01\x1f\x7f caf\xc3\xa9", -1);
	TT_RECORD_SET(rec, tenant, "line\nfeed\rtab\t", -1);
	TT_RECORD_SET(rec, feature, "summarise", -1);
	TT_RECORD_SET(rec, prompt_hash, "ffffffffffffffffffffffffffffffff", -1);
	TT_RECORD_SET(rec, prefix_hash, "00000000000000000000000000000000", -1);
	rec->request_bytes = 2048;
	rec->response_bytes = INT64_MAX;
	TT_RECORD_SET(rec, error, "truncated", -1);
	rec->blocked = 1;
	TT_RECORD_SET(rec, side, "client", -1);
	TT_RECORD_SET(rec, app, "claude", -1);
	TT_RECORD_SET(rec, tls, "boringssl", -1);
}

static const char full_json[] =
	"{\"id\":\"0123456789abcdef0123456789abcdef\",\"source\":\"preload\","
	"\"ts\":\"2026-01-02T03:04:05.000042Z\",\"ttft_ms\":120.500,\"duration_ms\":0.000,"
	"\"pid\":4242,\"tid\":4243,\"comm\":\"node\",\"exe\":\"/usr/bin/node\","
	"\"cgroup\":\"/kubepods/pod1\",\"container_id\":\"c0ffee\",\"pod_uid\":\"1-2-3\","
	"\"host\":\"api.anthropic.com\",\"method\":\"POST\",\"path\":\"/v1/messages\","
	"\"http\":\"1.1\",\"status\":200,\"provider\":\"anthropic\",\"api\":\"messages\","
	"\"model\":\"claude-sonnet-4-5-20250929\",\"request_model\":\"claude-sonnet-4-5\","
	"\"stream\":false,\"max_tokens\":1024,\"input_tokens\":3000,\"output_tokens\":400,"
	"\"cache_read_tokens\":2000,\"cache_write_tokens\":500,\"reasoning_tokens\":0,"
	"\"usage_source\":\"provider\","
	"\"task\":\"t \\\"1\\\" \\\\ / \\u0001\\u001f\x7f caf\xc3\xa9" "\","
	"\"tenant\":\"line\\nfeed\\rtab\\t\",\"feature\":\"summarise\","
	"\"prompt_hash\":\"ffffffffffffffffffffffffffffffff\","
	"\"prefix_hash\":\"00000000000000000000000000000000\",\"request_bytes\":2048,"
	"\"response_bytes\":9223372036854775807,\"error\":\"truncated\",\"blocked\":true,"
	"\"side\":\"client\",\"app\":\"claude\",\"tls\":\"boringssl\"}";

static const char empty_json[] =
	"{\"id\":null,\"source\":null,\"ts\":null,\"ttft_ms\":null,\"duration_ms\":null,"
	"\"pid\":null,\"tid\":null,\"comm\":null,\"exe\":null,\"cgroup\":null,"
	"\"container_id\":null,\"pod_uid\":null,\"host\":null,\"method\":null,\"path\":null,"
	"\"http\":null,\"status\":null,\"provider\":null,\"api\":null,\"model\":null,"
	"\"request_model\":null,\"stream\":null,\"max_tokens\":null,\"input_tokens\":null,"
	"\"output_tokens\":null,\"cache_read_tokens\":null,\"cache_write_tokens\":null,"
	"\"reasoning_tokens\":null,\"usage_source\":null,\"task\":null,\"tenant\":null,"
	"\"feature\":null,\"prompt_hash\":null,\"prefix_hash\":null,\"request_bytes\":null,"
	"\"response_bytes\":null,\"error\":null,\"blocked\":false,\"side\":null,\"app\":null,"
	"\"tls\":null}";

static void test_full_record_bytes(void **state)
{
	char json[TT_RECORD_JSON_MAX];
	tt_record rec;

	(void)state;
	fill(&rec);
	assert_int_equal(tt_record_to_json(&rec, json, sizeof(json)), strlen(full_json));
	assert_string_equal(json, full_json);
}

/* Absent is null, never left out; blocked starts false. */
static void test_empty_record_bytes(void **state)
{
	char json[TT_RECORD_JSON_MAX];
	tt_record rec;

	(void)state;
	tt_record_init(&rec);
	assert_int_equal(tt_record_to_json(&rec, json, sizeof(json)), strlen(empty_json));
	assert_string_equal(json, empty_json);
	assert_true(rec.ts_us == 0 && rec.ttft_ms < 0 && rec.duration_ms < 0);
	assert_true(rec.pid == TT_NULL && rec.status == TT_NULL && rec.max_tokens == TT_NULL);
	assert_true(rec.stream == TT_TRI_NULL && rec.blocked == 0 && rec.id[0] == '\0');
}

/* Every value below its absent sentinel is null too; a huge duration is null. */
static void test_negative_is_null(void **state)
{
	char json[TT_RECORD_JSON_MAX];
	tt_record rec;

	(void)state;
	tt_record_init(&rec);
	rec.ts_us = -5;
	rec.ttft_ms = -0.5;
	rec.duration_ms = 1e300;
	rec.input_tokens = -7;
	rec.status = -2;
	rec.stream = -3;
	rec.blocked = -1;
	tt_record_to_json(&rec, json, sizeof(json));
	assert_non_null(strstr(json, "\"ts\":null,\"ttft_ms\":null,\"duration_ms\":null,"));
	assert_non_null(strstr(json, "\"input_tokens\":null,"));
	assert_non_null(strstr(json, "\"status\":null,"));
	assert_non_null(strstr(json, "\"stream\":null,"));
	assert_non_null(strstr(json, "\"blocked\":null,"));
}

/* A buffer one byte short of the text and its NUL, or any shorter, is refused. */
static void test_every_short_buffer(void **state)
{
	size_t n = strlen(full_json);
	char *buf = malloc(n + 1);
	tt_record rec;

	(void)state;
	assert_non_null(buf);
	fill(&rec);
	for (size_t cap = 0; cap <= n; cap++)
		assert_int_equal(tt_record_to_json(&rec, buf, cap), TT_ENOSPACE);
	assert_int_equal(tt_record_to_json(&rec, buf, n + 1), n);
	assert_string_equal(buf, full_json);
	free(buf);
}

static void test_set_cuts_at_utf8_boundary(void **state)
{
	tt_record rec;

	(void)state;
	tt_record_init(&rec);
	/* http holds 3 bytes: "a" and the two bytes of "é" fit, the next "é" does not. */
	TT_RECORD_SET(&rec, http, "a\xc3\xa9\xc3\xa9", -1);
	assert_string_equal(rec.http, "a\xc3\xa9");
	TT_RECORD_SET(&rec, http, "ab\xc3\xa9", -1);
	assert_string_equal(rec.http, "ab");
	TT_RECORD_SET(&rec, http, "abcdef", 2);
	assert_string_equal(rec.http, "ab");
	TT_RECORD_SET(&rec, http, NULL, 0);
	assert_string_equal(rec.http, "");
}

static void test_new_id(void **state)
{
	tt_record a, b;

	(void)state;
	tt_record_new_id(&a);
	tt_record_new_id(&b);
	assert_int_equal(strlen(a.id), 32);
	assert_int_equal(strspn(a.id, "0123456789abcdef"), 32);
	assert_string_not_equal(a.id, b.id);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_record_bytes),
		cmocka_unit_test(test_empty_record_bytes),
		cmocka_unit_test(test_negative_is_null),
		cmocka_unit_test(test_every_short_buffer),
		cmocka_unit_test(test_set_cuts_at_utf8_boundary),
		cmocka_unit_test(test_new_id),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
