/*
 * test_agent_enforce.c - enforce mode's write path (agent/enforce.c) and
 * the lease answer parser (agent/lease.c), with OpenSSL's functions
 * replaced by fakes through the resolver's cache: every request is fed
 * whole, in random splits and one byte at a time, and
 *  - allowed (no collector, fail open): the bytes that reach the fake
 *    SSL_write plus those the caller writes itself are the request,
 *    exactly, once, in order; nothing is shipped;
 *  - denied (fail closed): nothing is written, the caller's writes all
 *    "succeed", one blocked record is shipped, and reads return a 403 in
 *    the provider's JSON shape naming tokentap, the rule and the task,
 *    then EOF; the socket under the SSL was swapped for a readable one;
 *  - denied with no socket (memory BIO): the write that completes the
 *    request fails;
 *  - not an LLM call, or HTTP/2: passed through untouched.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cJSON.h>
#include <cmocka.h>

#include "../agent/enforce.h"
#include "../agent/lease.h"
#include "../agent/resolve.h"
#include "support/split.h"

static char wire[65536];
static size_t wire_len;
static int fake_fd = -1;
static tt_record shipped[8];
static int nshipped;

static int fake_write(void *ssl, const void *buf, int num)
{
	(void)ssl;
	assert_true(wire_len + (size_t)num <= sizeof(wire));
	memcpy(wire + wire_len, buf, (size_t)num);
	wire_len += (size_t)num;
	return num;
}

static int fake_get_error(const void *ssl, int r)
{
	(void)ssl, (void)r;
	return 1; /* SSL_ERROR_SSL: not retried */
}

static int fake_get_fd(const void *ssl)
{
	(void)ssl;
	return fake_fd;
}

static void key_fn(tt_lease_key *k)
{
	snprintf(k->task, sizeof(k->task), "env-task");
}

static void ship_fn(tt_record *rec)
{
	assert_true(nshipped < 8);
	shipped[nshipped++] = *rec;
}

static char sent[65536];
static size_t sent_len;

static void sent_fn(void *ssl, const void *buf, size_t len)
{
	(void)ssl;
	memcpy(sent + sent_len, buf, len);
	sent_len += len;
}

static int setup(void **state)
{
	(void)state;
	tt_real_cache[TT_REAL_SSL_write] = (void *)fake_write;
	tt_real_cache[TT_REAL_SSL_get_error] = (void *)fake_get_error;
	tt_real_cache[TT_REAL_SSL_get_fd] = (void *)fake_get_fd;
	tt_enforce_setup(key_fn, ship_fn, sent_fn);
	return 0;
}

static const char BODY[] =
	"{\"model\":\"gpt-4o-mini\",\"max_tokens\":77,\"messages\":[{\"role\":\"user\","
	"\"content\":\"hello there\"}]}";

static size_t request(char *out, size_t cap, const char *path, const char *extra)
{
	int n = snprintf(out, cap,
			 "POST %s HTTP/1.1\r\nHost: api.openai.com\r\nContent-Type: application/json\r\n"
			 "Content-Length: %zu\r\n%s\r\n%s", path, strlen(BODY), extra, BODY);

	assert_true(n > 0 && (size_t)n < cap);
	return (size_t)n;
}

/* Feed req in pieces; the caller's own writes (return 0) go to the wire. */
static long feed(tt_enforce *e, const char *req, size_t len, int mode, long *last)
{
	splitter s;
	const char *p;
	size_t n;
	long handled_total = 0;

	split_init(&s, req, len, mode);
	while (split_next(&s, &p, &n)) {
		long ret = 0;

		if (n == 0)
			continue;  /* SSL_write(ssl, buf, 0) is never passed to us */
		if (tt_enforce_write(e, (void *)0x1, p, n, &ret)) {
			*last = ret;
			if (ret > 0) {
				assert_int_equal(ret, (long)n);
				handled_total += ret;
			}
		} else {
			fake_write(NULL, p, (int)n);
			sent_fn(NULL, p, n);
			*last = (long)n;
		}
	}
	return handled_total;
}

static void reset(void)
{
	wire_len = sent_len = 0;
	nshipped = 0;
}

static void test_allowed_passes_bytes_exactly(void **state)
{
	char req[4096], two[8192];
	size_t len = request(req, sizeof(req), "/v1/chat/completions", "");

	(void)state;
	tt_lease_setup("off", 0, 100);
	/* Two requests on one keep-alive connection. */
	memcpy(two, req, len);
	for (int mode = 0; mode < SPLIT_MODES; mode++) {
		tt_enforce *e = tt_enforce_new();
		long last = 0;

		reset();
		feed(e, req, len, mode, &last);
		feed(e, req, len, mode, &last);
		assert_true(last > 0);
		assert_int_equal(wire_len, 2 * len);
		assert_memory_equal(wire, req, len);
		assert_memory_equal(wire + len, req, len);
		/* The decoder sees exactly what went out. */
		assert_int_equal(sent_len, 2 * len);
		assert_int_equal(nshipped, 0);
		tt_enforce_free(e);
	}
}

static void test_not_llm_and_h2_pass(void **state)
{
	static const char get[] = "GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n";
	static const char post[] = "POST /upload HTTP/1.1\r\nHost: example.com\r\n"
				   "Content-Length: 5\r\n\r\nhello";
	static const char h2[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	static const char tls[] = "\x16\x03\x01\x02\x00";

	(void)state;
	tt_lease_setup("off", 1, 100);  /* closed: an LLM call would be refused */
	for (int mode = 0; mode < SPLIT_MODES; mode++) {
		const char *cases[] = {get, post, h2, tls};
		size_t lens[] = {sizeof(get) - 1, sizeof(post) - 1, sizeof(h2) - 1, sizeof(tls) - 1};

		for (int c = 0; c < 4; c++) {
			tt_enforce *e = tt_enforce_new();
			long last = 0;

			reset();
			feed(e, cases[c], lens[c], mode, &last);
			feed(e, cases[c], lens[c], mode, &last);
			assert_int_equal(wire_len, 2 * lens[c]);
			assert_memory_equal(wire, cases[c], lens[c]);
			assert_memory_equal(wire + lens[c], cases[c], lens[c]);
			assert_int_equal(nshipped, 0);
			tt_enforce_free(e);
		}
	}
}

static void test_denied_never_written(void **state)
{
	char req[4096], resp[8192];
	size_t len = request(req, sizeof(req), "/v1/chat/completions",
			     "X-Tokentap-Task: header-task\r\n");

	(void)state;
	tt_lease_setup("off", 1, 100);
	for (int mode = 0; mode < SPLIT_MODES; mode++) {
		tt_enforce *e = tt_enforce_new();
		int sp[2];
		long last = 0, total;
		size_t got, rl = 0;

		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
		fake_fd = sp[0];
		reset();
		total = feed(e, req, len, mode, &last);
		assert_int_equal(total, (long)len);  /* every write "succeeded" */
		assert_int_equal(wire_len, 0);       /* nothing left the process */
		assert_int_equal(sent_len, 0);
		assert_int_equal(nshipped, 1);
		assert_true(shipped[0].blocked);
		assert_int_equal(shipped[0].status, 403);
		assert_string_equal(shipped[0].task, "header-task");
		assert_string_equal(shipped[0].request_model, "gpt-4o-mini");
		assert_int_equal(shipped[0].max_tokens, 77);
		assert_string_equal(shipped[0].provider, "openai");
		/* A later write on the connection is swallowed. */
		assert_int_equal(tt_enforce_write(e, (void *)0x1, "x", 1, &last), 1);
		assert_int_equal(last, 1);
		/* The descriptor now polls readable (a client waiting on it wakes). */
		struct pollfd pf = {.fd = sp[0], .events = POLLIN};
		assert_int_equal(poll(&pf, 1, 0), 1);
		/* Reads: the synthetic response, in small pieces, then EOF. */
		for (;;) {
			char piece[7];

			assert_int_equal(tt_enforce_read(e, piece, sizeof(piece), &got, 0), 1);
			if (got == 0)
				break;
			memcpy(resp + rl, piece, got);
			rl += got;
		}
		resp[rl] = '\0';
		assert_true(strncmp(resp, "HTTP/1.1 403 ", 13) == 0);
		const char *body = strstr(resp, "\r\n\r\n") + 4;
		char cl[64];
		snprintf(cl, sizeof(cl), "Content-Length: %zu\r\n", strlen(body));
		assert_non_null(strstr(resp, cl));
		cJSON *j = cJSON_Parse(body);
		assert_non_null(j);
		const char *msg = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "message")->valuestring;
		assert_true(strncmp(msg, "tokentap:", 9) == 0);
		assert_non_null(strstr(msg, "\"fail-closed\""));
		assert_non_null(strstr(msg, "\"header-task\""));
		cJSON_Delete(j);
		tt_enforce_free(e);
		close(sp[0]);
		close(sp[1]);
	}
	fake_fd = -1;
}

static void test_denied_without_socket_fails_write(void **state)
{
	char req[4096];
	size_t len = request(req, sizeof(req), "/v1/messages", "anthropic-version: 2023-06-01\r\n");

	(void)state;
	tt_lease_setup("off", 1, 100);
	fake_fd = -1;
	for (int mode = 0; mode < SPLIT_MODES; mode++) {
		tt_enforce *e = tt_enforce_new();
		long last = 0;

		reset();
		feed(e, req, len, mode, &last);
		assert_int_equal(last, -1);
		assert_int_equal(wire_len, 0);
		assert_int_equal(nshipped, 1);
		assert_string_equal(shipped[0].task, "env-task");
		assert_string_equal(shipped[0].provider, "anthropic");
		tt_enforce_free(e);
	}
}

static void test_response_shapes(void **state)
{
	char out[4096];
	const char *body;
	cJSON *j;
	int n;

	(void)state;
	n = tt_enforce_response("anthropic", "r1", "t1", "why", out, sizeof(out));
	assert_true(n > 0 && (size_t)n == strlen(out));
	body = strstr(out, "\r\n\r\n") + 4;
	j = cJSON_Parse(body);
	assert_string_equal(cJSON_GetObjectItem(j, "type")->valuestring, "error");
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "type")->valuestring,
			    "tokentap_budget_exceeded");
	cJSON_Delete(j);
	n = tt_enforce_response("gemini", "r1", "t\"1", "why", out, sizeof(out));
	body = strstr(out, "\r\n\r\n") + 4;
	j = cJSON_Parse(body);
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "code")->valueint, 403);
	assert_non_null(strstr(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "message")
				       ->valuestring, "task \"t\"1\""));
	cJSON_Delete(j);
	assert_int_equal(tt_enforce_response("openai", "r", "t", "w", out, 40), -1);
}

static void test_lease_answer(void **state)
{
	static const char ok[] = "{\"allow\":true,\"reason\":null,\"rule\":null,\"grant\":{\"usd\":0.5,"
				 "\"tokens\":null,\"calls\":3},\"price\":{\"input\":1.5e-07,\"output\":null},"
				 "\"ttl_ms\":20000,\"max_output_tokens\":999}";
	static const char no[] = "{\"allow\":false,\"reason\":\"over\",\"rule\":\"cap\"}";
	struct tt_lease_grant g;
	char why[64], rule[16];

	(void)state;
	assert_int_equal(tt_lease_parse_answer(ok, sizeof(ok) - 1, &g, why, sizeof(why), rule,
					       sizeof(rule)), 1);
	assert_true(g.usd == 0.5);
	assert_int_equal(g.tokens, -1);
	assert_int_equal(g.calls, 3);
	assert_true(g.price_in == 1.5e-07);
	assert_true(g.price_out < 0);
	assert_int_equal(g.ttl_ms, 20000);
	assert_int_equal(g.max_output, 999);
	assert_int_equal(tt_lease_parse_answer(no, sizeof(no) - 1, &g, why, sizeof(why), rule,
					       sizeof(rule)), 0);
	assert_string_equal(why, "over");
	assert_string_equal(rule, "cap");
	assert_int_equal(tt_lease_parse_answer("{", 1, &g, why, sizeof(why), rule, sizeof(rule)), -1);
	assert_int_equal(tt_enforce_input_estimate(100), 66);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_allowed_passes_bytes_exactly),
		cmocka_unit_test(test_not_llm_and_h2_pass),
		cmocka_unit_test(test_denied_never_written),
		cmocka_unit_test(test_denied_without_socket_fails_write),
		cmocka_unit_test(test_response_shapes),
		cmocka_unit_test(test_lease_answer),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
