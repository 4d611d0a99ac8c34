/*
 * test_col_probestats.c - the node probes' counters as /metrics serves
 * them: the latest post of each host, only the host as a label, names
 * and values checked, every bound held (hosts, values a host, a host
 * silent for an hour forgotten).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cJSON.h>

#include "../collector/probestats.h"
#include "tokentap/error.h"

#define T0 1700000000000000LL
#define HOUR (3600LL * 1000000)

static int put(tt_probestats *ps, const char *json, int64_t now)
{
	char err[160] = "";

	return tt_probestats_put(ps, json, strlen(json), now, err, sizeof(err));
}

static char *render(tt_probestats *ps, int64_t now, tt_buf *b)
{
	tt_buf_init(b, 1 << 20);
	assert_int_equal(tt_probestats_render(ps, now, b), 0);
	return b->data;
}

static void test_latest_post_per_host(void **state)
{
	tt_probestats *ps = tt_probestats_new(0);
	tt_buf b;
	char *m;

	(void)state;
	assert_int_equal(put(ps, "{\"host\":\"node-1\",\"counters\":{\"calls\":5,"
			 "\"dropped_events\":0},\"gauges\":{\"conns_live\":2}}", T0), 0);
	assert_int_equal(put(ps, "{\"host\":\"node-2\",\"counters\":{\"calls\":7}}", T0), 0);
	assert_int_equal(put(ps, "{\"host\":\"node-1\",\"counters\":{\"calls\":9,"
			 "\"dropped_events\":1},\"gauges\":{\"conns_live\":0}}", T0 + 10), 0);
	m = render(ps, T0 + 20, &b);
	assert_non_null(strstr(m, "# TYPE tokentap_probe_calls_total counter\n"));
	assert_non_null(strstr(m, "tokentap_probe_calls_total{host=\"node-1\"} 9\n"));
	assert_non_null(strstr(m, "tokentap_probe_calls_total{host=\"node-2\"} 7\n"));
	assert_non_null(strstr(m, "tokentap_probe_dropped_events_total{host=\"node-1\"} 1\n"));
	assert_non_null(strstr(m, "# TYPE tokentap_probe_conns_live gauge\n"));
	assert_non_null(strstr(m, "tokentap_probe_conns_live{host=\"node-1\"} 0\n"));
	assert_null(strstr(m, "} 5\n"));     /* the older post is gone */
	/* one TYPE line per family, however many hosts */
	assert_null(strstr(strstr(m, "# TYPE tokentap_probe_calls_total") + 1,
			   "# TYPE tokentap_probe_calls_total"));
	tt_buf_free(&b);
	tt_probestats_free(ps);
}

static void test_bad_documents_refused(void **state)
{
	static const char *const bad[] = {
		"", "[]", "{}", "{\"host\":\"\"}", "{\"host\":\"a b\"}",
		"{\"host\":\"x\\\"} 1\\n# evil\"}",
		"{\"host\":\"n\",\"counters\":[]}",
		"{\"host\":\"n\",\"counters\":{\"Calls\":1}}",
		"{\"host\":\"n\",\"counters\":{\"calls{x=\\\"1\\\"}\":1}}",
		"{\"host\":\"n\",\"counters\":{\"calls\":-1}}",
		"{\"host\":\"n\",\"counters\":{\"calls\":1.5}}",
		"{\"host\":\"n\",\"counters\":{\"calls\":\"1\"}}",
		"{\"host\":\"n\",\"counters\":{\"calls\":1e300}}",
		"{\"host\":\"n\",\"gauges\":{\"a_very_long_name_beyond_forty_characters_x\":1}}",
	};
	tt_probestats *ps = tt_probestats_new(0);
	tt_buf b;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(put(ps, bad[i], T0), TT_EINVAL);
	/* nothing of them reached /metrics */
	assert_null(strstr(render(ps, T0, &b), "{host="));
	tt_buf_free(&b);
	tt_probestats_free(ps);
}

static void test_bounds(void **state)
{
	tt_probestats *ps = tt_probestats_new(3);
	char doc[8192];
	size_t o;
	tt_buf b;
	char *m;

	(void)state;
	assert_int_equal(put(ps, "{\"host\":\"a\",\"counters\":{\"calls\":1}}", T0), 0);
	assert_int_equal(put(ps, "{\"host\":\"b\",\"counters\":{\"calls\":1}}", T0), 0);
	assert_int_equal(put(ps, "{\"host\":\"c\",\"counters\":{\"calls\":1}}", T0), 0);
	/* a fourth host: refused and counted */
	assert_int_equal(put(ps, "{\"host\":\"d\",\"counters\":{\"calls\":1}}", T0),
			 TT_ETRUNCATED);
	m = render(ps, T0, &b);
	assert_non_null(strstr(m, "tokentap_probe_hosts_refused_total 1\n"));
	assert_null(strstr(m, "host=\"d\""));
	tt_buf_free(&b);
	/* an hour later "a" is silent: its slot goes to "d", its series too */
	assert_int_equal(put(ps, "{\"host\":\"b\",\"counters\":{\"calls\":2}}", T0 + HOUR + 5), 0);
	assert_int_equal(put(ps, "{\"host\":\"c\",\"counters\":{\"calls\":2}}", T0 + HOUR + 5), 0);
	assert_int_equal(put(ps, "{\"host\":\"d\",\"counters\":{\"calls\":1}}", T0 + HOUR + 5), 0);
	m = render(ps, T0 + HOUR + 6, &b);
	assert_null(strstr(m, "host=\"a\""));
	assert_non_null(strstr(m, "tokentap_probe_calls_total{host=\"d\"} 1\n"));
	tt_buf_free(&b);
	/* 64 counters a host, not 65 */
	o = (size_t)snprintf(doc, sizeof(doc), "{\"host\":\"b\",\"counters\":{");
	for (int i = 0; i < 65; i++)
		o += (size_t)snprintf(doc + o, sizeof(doc) - o, "%s\"c_%c%c\":%d",
				      i ? "," : "", 'a' + i / 26, 'a' + i % 26, i);
	snprintf(doc + o, sizeof(doc) - o, "}}");
	assert_int_equal(put(ps, doc, T0 + HOUR + 7), TT_EINVAL);
	tt_probestats_free(ps);
}

/* The largest value a probe may send, 2^53, comes out exactly. */
static void test_largest_value(void **state)
{
	tt_probestats *ps = tt_probestats_new(0);
	tt_buf b;

	(void)state;
	assert_int_equal(put(ps, "{\"host\":\"n\",\"counters\":{\"bytes\":9007199254740992}}",
			     T0), 0);
	assert_non_null(strstr(render(ps, T0, &b),
			       "tokentap_probe_bytes_total{host=\"n\"} 9007199254740992\n"));
	tt_buf_free(&b);
	assert_int_equal(put(ps, "{\"host\":\"n\",\"counters\":{\"bytes\":9007199254740994}}",
			     T0), TT_EINVAL);
	tt_probestats_free(ps);
}

/* "unhooked": the paths go to GET /v1/probe's document, never to /metrics. */
static void test_unhooked_paths(void **state)
{
	tt_probestats *ps = tt_probestats_new(0);
	char many[4096], path[300];
	size_t o;
	tt_buf b;
	cJSON *doc, *list;

	(void)state;
	assert_int_equal(put(ps, "{\"host\":\"n1\",\"counters\":{\"tls_unhooked\":3},"
			 "\"unhooked\":[\"/opt/a b/agent\",\"/usr/bin/q\\\"x\"]}", T0), 0);
	tt_buf_init(&b, 1 << 20);
	assert_int_equal(tt_probestats_json(ps, T0, &b), 0);
	assert_non_null(b.data);
	doc = cJSON_Parse(b.data);
	assert_non_null(doc);
	list = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "probes"), 0),
				   "unhooked");
	assert_int_equal(cJSON_GetArraySize(list), 2);
	assert_string_equal(cJSON_GetArrayItem(list, 0)->valuestring, "/opt/a b/agent");
	assert_string_equal(cJSON_GetArrayItem(list, 1)->valuestring, "/usr/bin/q\"x");
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(
		cJSON_GetObjectItem(doc, "probes"), 0), "counters"), "tls_unhooked")->valueint, 3);
	cJSON_Delete(doc);
	tt_buf_free(&b);
	assert_null(strstr(render(ps, T0, &b), "agent"));
	assert_non_null(strstr(b.data, "tokentap_probe_tls_unhooked_total{host=\"n1\"} 3"));
	tt_buf_free(&b);

	/* refused: not an array, not strings, control bytes, too long, too many */
	assert_int_equal(put(ps, "{\"host\":\"n1\",\"unhooked\":\"/x\"}", T0), TT_EINVAL);
	assert_int_equal(put(ps, "{\"host\":\"n1\",\"unhooked\":[1]}", T0), TT_EINVAL);
	assert_int_equal(put(ps, "{\"host\":\"n1\",\"unhooked\":[\"\"]}", T0), TT_EINVAL);
	assert_int_equal(put(ps, "{\"host\":\"n1\",\"unhooked\":[\"/a\\nb\"]}", T0), TT_EINVAL);
	memset(path, 'p', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	snprintf(many, sizeof(many), "{\"host\":\"n1\",\"unhooked\":[\"/%s\"]}", path);
	assert_int_equal(put(ps, many, T0), TT_EINVAL);
	o = (size_t)snprintf(many, sizeof(many), "{\"host\":\"n1\",\"unhooked\":[");
	for (int i = 0; i < 17; i++)
		o += (size_t)snprintf(many + o, sizeof(many) - o, "%s\"/p%d\"", i ? "," : "", i);
	snprintf(many + o, sizeof(many) - o, "]}");
	assert_int_equal(put(ps, many, T0), TT_EINVAL);
	many[o - strlen(",\"/p16\"")] = '\0'; /* 16 of them: kept */
	strcat(many, "]}");
	assert_int_equal(put(ps, many, T0), 0);
	tt_probestats_free(ps);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_latest_post_per_host),
		cmocka_unit_test(test_bad_documents_refused),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_largest_value),
		cmocka_unit_test(test_unhooked_paths),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
