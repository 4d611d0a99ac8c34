/*
 * test_agent_enforce.c - enforce mode's write path (agent/enforce*.c) and
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
 *  - not an LLM call: passed through untouched, and the next request on
 *    the keep-alive connection is checked again; a chunked LLM call is
 *    passed unchecked;
 *  - a held request whose real write fails: the write that completed it
 *    fails with the same return;
 *  - HTTP/2: each write is decoded before it leaves; an allowed one goes
 *    out once, a refused one fails with an OpenSSL error naming tokentap,
 *    and so does every later write on the connection.
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
#include <openssl/err.h>

#include "../agent/enforce.h"
#include "../agent/lease.h"
#include "../agent/resolve.h"
#include "support/h2_build.h"
#include "support/split.h"
#include "tokentap/decoder.h"

static char wire[65536];
static size_t wire_len;
static int fake_fd = -1;
static tt_record shipped[8];
static int nshipped;

static int fail_writes;  /* the fake SSL_write fails (SSL_ERROR_SSL) */

static int fake_write(void *ssl, const void *buf, int num)
{
	(void)ssl;
	if (fail_writes)
		return -1;
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
static tt_decoder *h2dec;
static int64_t cur_us;

static void sent_fn(void *ssl, const void *buf, size_t len)
{
	(void)ssl;
	memcpy(sent + sent_len, buf, len);
	sent_len += len;
	if (h2dec)  /* what the agent's observe does */
		assert_int_equal(tt_decoder_feed(h2dec, TT_DIR_SENT, buf, len, cur_us), 0);
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
	tt_lease_setup("off", NULL, 0, 100);
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

static void test_not_llm_passes(void **state)
{
	static const char get[] = "GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n";
	static const char post[] = "POST /upload HTTP/1.1\r\nHost: example.com\r\n"
				   "Content-Length: 5\r\n\r\nhello";
	static const char tls[] = "\x16\x03\x01\x02\x00";

	(void)state;
	tt_lease_setup("off", NULL, 1, 100);  /* closed: an LLM call would be refused */
	for (int mode = 0; mode < SPLIT_MODES; mode++) {
		const char *cases[] = {get, post, tls};
		size_t lens[] = {sizeof(get) - 1, sizeof(post) - 1, sizeof(tls) - 1};

		for (int c = 0; c < 3; c++) {
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
	size_t len = request(req, sizeof(req), "/v1/chat/completions?api-version=1",
			     "X-Tokentap-Task: header-task\r\n");

	(void)state;
	tt_lease_setup("off", NULL, 1, 100);
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
		/* The request's fields from the decoder's full parse. */
		assert_string_equal(shipped[0].http, "1.1");
		assert_string_equal(shipped[0].path, "/v1/chat/completions");
		assert_int_equal(strlen(shipped[0].prompt_hash), 32);
		assert_int_equal(shipped[0].request_bytes, (int64_t)strlen(BODY));
		assert_string_equal(shipped[0].error, "blocked");
		assert_int_equal(shipped[0].input_tokens, 0);
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
	tt_lease_setup("off", NULL, 1, 100);
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

/* A POST that is not an LLM call, its body in pieces, then an LLM call
 * on the same keep-alive connection: the first passes untouched, the
 * second is checked (and refused: fail closed). */
static void test_keepalive_checks_next(void **state)
{
	static const char upload[] = "POST /upload HTTP/1.1\r\nHost: example.com\r\n"
				     "Content-Length: 11\r\n\r\nhello world";
	char req[4096];
	size_t len = request(req, sizeof(req), "/v1/chat/completions", "");

	(void)state;
	tt_lease_setup("off", NULL, 1, 100);
	for (int mode = 0; mode < SPLIT_MODES; mode++) {
		tt_enforce *e = tt_enforce_new();
		int sp[2];
		long last = 0;

		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
		fake_fd = sp[0];
		reset();
		feed(e, upload, sizeof(upload) - 1, mode, &last);
		assert_int_equal(wire_len, sizeof(upload) - 1);
		assert_memory_equal(wire, upload, sizeof(upload) - 1);
		feed(e, req, len, mode, &last);
		assert_int_equal(wire_len, sizeof(upload) - 1);  /* the call did not leave */
		assert_int_equal(nshipped, 1);
		assert_true(shipped[0].blocked);
		tt_enforce_free(e);
		close(sp[0]);
		close(sp[1]);
	}
	fake_fd = -1;
}

/* A chunked LLM request cannot be checked: it passes, exactly once, even
 * with the collector unreachable and fail closed. */
static void test_chunked_passes_unchecked(void **state)
{
	static const char chunked[] = "POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\n"
				      "Transfer-Encoding: chunked\r\n\r\n"
				      "a\r\n{\"model\":1}\r\n0\r\n\r\n";

	(void)state;
	tt_lease_setup("off", NULL, 1, 100);
	for (int mode = 0; mode < SPLIT_MODES; mode++) {
		tt_enforce *e = tt_enforce_new();
		long last = 0;

		reset();
		feed(e, chunked, sizeof(chunked) - 1, mode, &last);
		assert_true(last > 0);
		assert_int_equal(wire_len, sizeof(chunked) - 1);
		assert_memory_equal(wire, chunked, sizeof(chunked) - 1);
		assert_int_equal(sent_len, sizeof(chunked) - 1);
		assert_int_equal(nshipped, 0);
		tt_enforce_free(e);
	}
}

/* An allowed request held in pieces whose real write fails: the write
 * that completed it returns the failure. */
static void test_flush_failure_fails_write(void **state)
{
	char req[4096];
	size_t len = request(req, sizeof(req), "/v1/chat/completions", "");

	(void)state;
	tt_lease_setup("off", NULL, 0, 100);
	for (int mode = 1; mode < SPLIT_MODES; mode++) {
		tt_enforce *e = tt_enforce_new();
		splitter sp;
		const char *p;
		size_t n, fed = 0;
		long ret = 0;

		reset();
		split_init(&sp, req, len, mode);
		while (split_next(&sp, &p, &n)) {
			if (n == 0)
				continue;
			fed += n;
			fail_writes = fed == len;  /* only the flush of the whole request */
			assert_int_equal(tt_enforce_write(e, (void *)0x1, p, n, &ret),
					 TT_ENFORCE_DONE);
			if (fed < len)
				assert_int_equal(ret, (long)n);  /* held */
		}
		fail_writes = 0;
		assert_int_equal(ret, -1);
		assert_int_equal(wire_len, 0);
		assert_int_equal(sent_len, 0);  /* the decoder saw nothing go out */
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

/* ---- HTTP/2 -------------------------------------------------------------
 *
 * A real decoder fed the way the agent feeds it: tt_enforce_write gives
 * each client write to h2_feed before the fake SSL_write sees it, the
 * decoder's on_request goes to tt_enforce_request, its records through
 * tt_enforce_settle.  Transcripts are built with nghttp2's encoder and
 * played whole, in random splits and byte by byte, each write also
 * retried after a failed real write (WANT_WRITE) and cut by a partial one.
 */

#define H2_HOST "api.openai.com"

static tt_enforce *h2enf;
static tt_record h2recs[16];
static int nh2recs, nrequests;

static void h2_on_record(const tt_record *rec, void *user)
{
	tt_record r = *rec;

	(void)user;
	if (tt_enforce_settle(h2enf, &r))
		return;  /* a blocked call's own copy */
	assert_true(nh2recs < 16);
	h2recs[nh2recs++] = r;
}

static void h2_on_request(const tt_record *rec, void *user)
{
	(void)user;
	nrequests++;
	tt_enforce_request(h2enf, rec);
}

static void h2_feed(void *ssl, const void *buf, size_t len)
{
	(void)ssl;
	assert_int_equal(tt_decoder_feed(h2dec, TT_DIR_SENT, buf, len, cur_us), 0);
}

static void h2_start(void)
{
	tt_decoder_config cfg;

	tt_decoder_config_init(&cfg);
	cfg.on_record = h2_on_record;
	cfg.on_request = h2_on_request;
	h2dec = tt_decoder_new(&cfg);
	assert_non_null(h2dec);
	h2enf = tt_enforce_new();
	assert_non_null(h2enf);
	tt_enforce_set_feed(h2_feed);
	reset();
	nh2recs = nrequests = 0;
}

static void h2_end(void)
{
	tt_decoder_close(h2dec, cur_us + 1000);  /* open exchanges are delivered */
	tt_decoder_free(h2dec);
	h2dec = NULL;
	tt_enforce_free(h2enf);
	h2enf = NULL;
}

/* How each write meets the fake SSL_write. */
enum { W_PLAIN, W_RETRY, W_PARTIAL, W_WAYS };

struct h2play {
	int way;
	int refused;         /* writes that returned -1 */
	int sent_after;      /* writes let out after the first refusal */
	int err_ok;          /* each refusal left the expected OpenSSL error */
	const char *task;
};

/* The error a refused write leaves on this thread's queue. */
static int check_error(const char *task)
{
	const char *data = NULL, *reason;
	char want[200];
	int flags = 0, ok;
	unsigned long e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags);

	if (!e)
		return 0;
	reason = ERR_reason_error_string(e);
	snprintf(want, sizeof(want), "call blocked by budget rule \"fail-closed\" for task \"%s\"",
		 task);
	ok = ERR_lib_error_string(e) && strcmp(ERR_lib_error_string(e), "tokentap") == 0 &&
	     reason && strcmp(reason, want) == 0 && data && (flags & ERR_TXT_STRING) &&
	     strncmp(data, "tokentap: call blocked", 22) == 0;
	ERR_clear_error();
	return ok;
}

/* One client write of n bytes at p, as the hooks make it. */
static void h2_write_once(struct h2play *pl, const uint8_t *p, size_t n)
{
	long ret = 0;
	int h = tt_enforce_write(h2enf, (void *)0x1, p, n, &ret);

	if (h == TT_ENFORCE_DONE) {
		assert_int_equal(ret, ret < 0 ? -1 : (long)n);  /* refused, or held */
		if (ret < 0) {
			pl->refused++;
			pl->err_ok += check_error(pl->task);
		}
		return;
	}
	assert_int_equal(h, TT_ENFORCE_PREFED);  /* HTTP/2 is never passed unchecked */
	if (pl->refused)
		pl->sent_after++;
	if (pl->way == W_RETRY) {
		/* The real write wants the socket: nothing sent, same bytes again. */
		tt_enforce_sent(h2enf, 0);
		h = tt_enforce_write(h2enf, (void *)0x1, p, n, &ret);
		assert_int_equal(h, TT_ENFORCE_PREFED);
	} else if (pl->way == W_PARTIAL && n > 1) {
		/* A partial write (SSL_MODE_ENABLE_PARTIAL_WRITE): the rest follows. */
		fake_write(NULL, p, (int)(n / 2));
		tt_enforce_sent(h2enf, n / 2);
		h = tt_enforce_write(h2enf, (void *)0x1, p + n / 2, n - n / 2, &ret);
		assert_int_equal(h, TT_ENFORCE_PREFED);
		p += n / 2;
		n -= n / 2;
	}
	fake_write(NULL, p, (int)n);
	tt_enforce_sent(h2enf, n);
}

static int h2_play_cb(void *user, int from_client, const uint8_t *p, size_t n, int64_t at_us)
{
	cur_us = at_us;
	if (!from_client)
		assert_int_equal(tt_decoder_feed(h2dec, TT_DIR_RECV, p, n, at_us), 0);
	else
		h2_write_once(user, p, n);
	return 0;
}

/* Segments [from, to) of b, played one way. */
static void h2_play_part(const h2b *b, size_t from, size_t to, int mode, struct h2play *pl)
{
	h2b part = *b;

	part.segs = b->segs + from;
	part.nsegs = to - from;
	assert_int_equal(h2b_play(&part, mode, 7u + (unsigned)mode, h2_play_cb, pl), 0);
}

/* The client's bytes of segments [0, to). */
static size_t client_bytes(const h2b *b, size_t to, char *out, size_t cap)
{
	size_t n = 0;

	for (size_t i = 0; i < to; i++) {
		if (!b->segs[i].from_client)
			continue;
		assert_true(n + b->segs[i].len <= cap);
		memcpy(out + n, b->segs[i].data, b->segs[i].len);
		n += b->segs[i].len;
	}
	return n;
}

static void h2_open(h2b *b)
{
	const uint16_t id[] = {0x3, 0x4};
	const uint32_t val[] = {100, 1u << 20};

	h2b_preface(b);
	h2b_settings(b, 1, id, val, 2);
	h2b_window_update(b, 1, 0, 1u << 24);
	h2b_settings(b, 0, id, val, 2);
	h2b_settings_ack(b, 0);
	h2b_settings_ack(b, 1);
}

static void h2_request(h2b *b, uint32_t sid, const char *task)
{
	nghttp2_nv nv[] = {
		H2B_NV(":method", "POST"),
		H2B_NV(":scheme", "https"),
		H2B_NV(":path", "/v1/chat/completions"),
		H2B_NV(":authority", H2_HOST),
		H2B_NV("content-type", "application/json"),
		{(uint8_t *)"x-tokentap-task", (uint8_t *)task, 15, strlen(task), 0},
	};
	h2b_headers(b, 1, sid, nv, sizeof(nv) / sizeof(nv[0]), NULL);
	h2b_data(b, 1, sid, BODY, strlen(BODY), 1, 0, 0);
}

static void h2_response(h2b *b, uint32_t sid, int in, int out)
{
	nghttp2_nv nv[] = {
		H2B_NV(":status", "200"),
		H2B_NV("content-type", "application/json"),
	};
	char body[256];
	int n = snprintf(body, sizeof(body),
			 "{\"id\":\"c%u\",\"object\":\"chat.completion\",\"model\":\"gpt-4o-mini\","
			 "\"choices\":[],\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,"
			 "\"total_tokens\":%d}}", sid, in, out, in + out);

	h2b_headers(b, 0, sid, nv, 2, NULL);
	h2b_data(b, 0, sid, body, (size_t)n, 1, 0, 0);
}

/* Allowed: every client byte leaves exactly once, in order; each request
 * is decided once (retries and partial writes are not fed again); one
 * record per call, out of order streams included; nothing blocked. */
static void test_h2_allowed_exactly_once(void **state)
{
	static char want[65536];
	h2b b;
	size_t wl;

	(void)state;
	h2b_init(&b);
	h2_open(&b);
	h2_request(&b, 1, "h2-task");
	h2_response(&b, 1, 11, 7);
	h2_request(&b, 3, "h2-task");
	h2_request(&b, 5, "other-task");  /* the same write as stream 3's, when whole */
	h2_response(&b, 5, 13, 9);
	h2_response(&b, 3, 12, 8);
	wl = client_bytes(&b, b.nsegs, want, sizeof(want));
	tt_lease_setup("off", NULL, 0, 100);  /* no collector, fail open: allowed */
	for (int way = 0; way < W_WAYS; way++) {
		for (int mode = 0; mode < 3; mode++) {
			struct h2play pl = {.way = way, .task = "h2-task"};

			h2_start();
			h2_play_part(&b, 0, b.nsegs, mode, &pl);
			assert_int_equal(pl.refused, 0);
			assert_int_equal(wire_len, wl);
			assert_memory_equal(wire, want, wl);
			/* Fed after its write: only a preface held in pieces. */
			assert_true(sent_len < 24);
			assert_memory_equal(sent, want, sent_len);
			assert_int_equal(nrequests, 3);
			assert_int_equal(nshipped, 0);
			assert_int_equal(nh2recs, 3);
			for (int i = 0; i < 3; i++) {
				assert_false(h2recs[i].blocked);
				assert_int_equal(h2recs[i].status, 200);
				assert_string_equal(h2recs[i].http, "2");
			}
			assert_int_equal(h2recs[0].input_tokens, 11);
			assert_int_equal(h2recs[1].input_tokens, 13);  /* stream 5 ended first */
			assert_string_equal(h2recs[1].task, "other-task");
			assert_int_equal(h2recs[2].input_tokens, 12);
			h2_end();
		}
	}
	h2b_free(&b);
}

/* Denied: the write that completes the request fails with the OpenSSL
 * error, so does every later one (never fed); what went out is a prefix
 * of the client's bytes without the request's end; one blocked record
 * from the request's fields, and the decoder's own copy is dropped. */
static void test_h2_denied_fails_writes(void **state)
{
	static char want[65536];
	h2b b;
	size_t open_segs, req_end;

	(void)state;
	h2b_init(&b);
	h2_open(&b);
	h2b_cut(&b);
	open_segs = b.nsegs;
	h2_request(&b, 1, "h2-task");
	h2b_cut(&b);
	req_end = client_bytes(&b, b.nsegs, want, sizeof(want));
	h2b_ping(&b, 1, 0);
	h2_request(&b, 3, "h2-task");
	client_bytes(&b, b.nsegs, want, sizeof(want));
	for (int way = 0; way < W_WAYS; way++) {
		for (int mode = 0; mode < 3; mode++) {
			struct h2play pl = {.way = way, .task = "h2-task"};

			h2_start();
			tt_lease_setup("off", NULL, 0, 100);
			h2_play_part(&b, 0, open_segs, mode, &pl);
			tt_lease_setup("off", NULL, 1, 100);  /* fail closed: refused */
			h2_play_part(&b, open_segs, b.nsegs, mode, &pl);
			assert_true(pl.refused >= 2);  /* the request's last write and the next */
			assert_int_equal(pl.err_ok, pl.refused);
			assert_int_equal(pl.sent_after, 0);
			assert_true(wire_len < req_end);
			assert_memory_equal(wire, want, wire_len);
			assert_int_equal(nrequests, 1);  /* stream 3 never reached the decoder */
			assert_int_equal(nshipped, 1);
			assert_true(shipped[0].blocked);
			assert_string_equal(shipped[0].error, "blocked");
			assert_string_equal(shipped[0].http, "2");
			assert_string_equal(shipped[0].task, "h2-task");
			assert_string_equal(shipped[0].provider, "openai");
			assert_string_equal(shipped[0].path, "/v1/chat/completions");
			assert_string_equal(shipped[0].request_model, "gpt-4o-mini");
			assert_int_equal(shipped[0].max_tokens, 77);
			assert_int_equal(shipped[0].request_bytes, (int64_t)strlen(BODY));
			assert_int_equal(shipped[0].status, TT_NULL);
			assert_int_equal(shipped[0].input_tokens, 0);
			h2_end();
			assert_int_equal(nh2recs, 0);  /* the decoder's connection_closed copy */
		}
	}
	h2b_free(&b);
}

/* A call already sent when a later one is refused still gets its answer
 * and its record; the refused one only its blocked record. */
static void test_h2_denied_after_allowed(void **state)
{
	h2b b;
	size_t first;

	(void)state;
	h2b_init(&b);
	h2_open(&b);
	h2_request(&b, 1, "h2-task");
	h2b_cut(&b);
	first = b.nsegs;
	h2_request(&b, 3, "h2-task");
	h2_response(&b, 1, 11, 7);
	for (int way = 0; way < W_WAYS; way++) {
		for (int mode = 0; mode < 3; mode++) {
			struct h2play pl = {.way = way, .task = "h2-task"};

			h2_start();
			tt_lease_setup("off", NULL, 0, 100);
			h2_play_part(&b, 0, first, mode, &pl);
			tt_lease_setup("off", NULL, 1, 100);
			h2_play_part(&b, first, b.nsegs, mode, &pl);
			assert_int_equal(pl.refused, 1);
			assert_int_equal(pl.err_ok, 1);
			assert_int_equal(nrequests, 2);
			assert_int_equal(nshipped, 1);
			assert_true(shipped[0].blocked);
			h2_end();
			assert_int_equal(nh2recs, 1);
			assert_false(h2recs[0].blocked);
			assert_int_equal(h2recs[0].status, 200);
			assert_int_equal(h2recs[0].output_tokens, 7);
		}
	}
	h2b_free(&b);
}

/* Error strings: a library of our own named tokentap; one reason per
 * sentence, the same code for the same sentence. */
static void test_h2_error_strings(void **state)
{
	unsigned long a, b2, c;
	char buf[256];

	(void)state;
	ERR_clear_error();
	assert_int_equal(tt_enforce_raise("cap", "t1", "why"), 0);
	a = ERR_get_error();
	assert_int_equal(tt_enforce_raise("cap", "t1", "why"), 0);
	b2 = ERR_get_error();
	assert_int_equal(tt_enforce_raise("cap", "t2", "why"), 0);
	c = ERR_get_error();
	assert_true(a != 0 && a == b2 && c != a);
	ERR_error_string_n(c, buf, sizeof(buf));
	assert_non_null(strstr(buf, ":tokentap:"));
	assert_non_null(strstr(buf, "call blocked by budget rule \"cap\" for task \"t2\""));
	assert_int_equal(ERR_get_error(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_allowed_passes_bytes_exactly),
		cmocka_unit_test(test_not_llm_passes),
		cmocka_unit_test(test_denied_never_written),
		cmocka_unit_test(test_denied_without_socket_fails_write),
		cmocka_unit_test(test_keepalive_checks_next),
		cmocka_unit_test(test_chunked_passes_unchecked),
		cmocka_unit_test(test_flush_failure_fails_write),
		cmocka_unit_test(test_response_shapes),
		cmocka_unit_test(test_lease_answer),
		cmocka_unit_test(test_h2_allowed_exactly_once),
		cmocka_unit_test(test_h2_denied_fails_writes),
		cmocka_unit_test(test_h2_denied_after_allowed),
		cmocka_unit_test(test_h2_error_strings),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
