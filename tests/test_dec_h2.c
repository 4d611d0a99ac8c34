/*
 * test_dec_h2.c - HTTP/2 framing and HPACK in the decoder (decoder/h2.c).
 *
 * Every transcript is built with nghttp2's own HPACK encoder (so header
 * blocks are real HPACK, dynamic table references included) and fed to the
 * decoder whole, in random splits and one byte at a time; the records must
 * come out identical.  Expected figures come from the bodies the tests put
 * on the wire, never from the code under test.
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
#include <cJSON.h>
#include <zlib.h>

#include "decoder/h2.h"
#include "support/h2_build.h"
#include "support/h2_peer.h"
#include "support/tbuf.h"
#include "support/wire.h"
#include "tokentap/decoder.h"
#include "tokentap/record.h"

/* ---- running a transcript ------------------------------------------- */

struct cap {
	tt_decoder *d;
	int server_view;        /* fed as the server end would see it */
	h2b_lines recs;
	int err;
};

static void on_record(const tt_record *rec, void *user)
{
	struct cap *c = user;
	char buf[TT_RECORD_JSON_MAX];
	tt_record r = *rec;
	int n;

	assert_string_equal(r.side, c->server_view ? "server" : "client");
	assert_int_equal(strlen(r.id), 32);
	r.id[0] = '\0'; /* random by design */
	TT_RECORD_SET(&r, side, "", 0); /* checked above; compared apart */
	n = tt_record_to_json(&r, buf, sizeof(buf));
	assert_true(n > 0);
	h2b_lines_add(&c->recs, buf);
}

static int feed_cb(void *user, int from_client, const uint8_t *p, size_t n,
		   int64_t at_us)
{
	struct cap *c = user;
	/* The client end writes what the client sends; the server reads it. */
	tt_dir dir = (from_client != 0) == (c->server_view == 0) ? TT_DIR_SENT :
								  TT_DIR_RECV;
	int rc = tt_decoder_feed(c->d, dir, p, n, at_us);

	if (rc && !c->err)
		c->err = rc;
	if (rc)
		assert_int_equal(rc, c->err); /* sticky: the same error again */
	return 0;
}

#define MAX_RECS 32

struct result {
	cJSON *recs[MAX_RECS];
	size_t n;
	int err;
	unsigned llm;
	char *json; /* all records, one a line */
};

static void result_free(struct result *r)
{
	for (size_t i = 0; i < r->n; i++)
		cJSON_Delete(r->recs[i]);
	free(r->json);
	memset(r, 0, sizeof(*r));
}

/*
 * Feed b through the public decoder whole, in random splits (several
 * seeds) and byte by byte, as the client end and as the server end would
 * see it; every way must give the same records and the same error.
 * cfg may be NULL for the defaults.
 */
static void run_modes(const h2b *b, const tt_decoder_config *cfg, int close,
		      int quick, struct result *out)
{
	static const unsigned seeds[] = { 1, 7, 1234567, 0xdeadbeef };
	char *ref = NULL;
	int ref_err = 0;
	unsigned ref_llm = 0;

	memset(out, 0, sizeof(*out));
	for (int mode = 0; mode < 12; mode++) {
		int m = mode % 6;
		/* quick: whole, one random split, bytes; the server end whole. */
		if (quick && (m == 2 || m == 3 || m == 4 || (mode >= 6 && m)))
			continue;
		int way = m == 0 ? 0 : m == 5 ? 2 : 1;
		tt_decoder_config local;
		struct cap c;
		char *j;

		memset(&c, 0, sizeof(c));
		c.server_view = mode >= 6;
		if (cfg)
			local = *cfg;
		else
			tt_decoder_config_init(&local);
		local.on_record = on_record;
		local.user = &c;
		c.d = tt_decoder_new(&local);
		assert_non_null(c.d);
		h2b_play(b, way, way == 1 ? seeds[m - 1] : 0, feed_cb, &c);
		if (close)
			tt_decoder_close(c.d, b->clock_us + 1000);
		unsigned llm = tt_decoder_llm_exchanges(c.d);
		tt_decoder_free(c.d);
		j = h2b_lines_join(&c.recs);
		h2b_lines_free(&c.recs);
		if (!ref) {
			ref = j;
			ref_err = c.err;
			ref_llm = llm;
			continue;
		}
		if (strcmp(ref, j) != 0)
			print_message("mode %d differs:\n%s\nvs whole:\n%s\n",
				      mode, j, ref);
		assert_string_equal(ref, j);
		assert_int_equal(ref_err, c.err);
		assert_int_equal(ref_llm, llm);
		free(j);
	}
	out->err = ref_err;
	out->llm = ref_llm;
	out->json = ref;
	for (char *line = ref; *line;) {
		char *nl = strchr(line, '\n');
		assert_non_null(nl);
		*nl = '\0';
		assert_true(out->n < MAX_RECS);
		out->recs[out->n] = cJSON_Parse(line);
		assert_non_null(out->recs[out->n]);
		out->n++;
		*nl = '\n';
		line = nl + 1;
	}
}

static void run_all(const h2b *b, const tt_decoder_config *cfg, int close,
		    struct result *out)
{
	run_modes(b, cfg, close, 0, out);
}

static const char *rs(const cJSON *rec, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, key);

	assert_non_null(v);
	return cJSON_IsString(v) ? v->valuestring : "(null)";
}

static int64_t ri(const cJSON *rec, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, key);

	assert_non_null(v);
	return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : -1;
}

static void assert_null_str(const cJSON *rec, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, key);

	assert_non_null(v);
	if (!cJSON_IsNull(v))
		fail_msg("%s is %s, expected null", key,
			 cJSON_IsString(v) ? v->valuestring : "(non-string)");
}

/* The record whose path is path. */
static const cJSON *by_path(const struct result *r, const char *path)
{
	for (size_t i = 0; i < r->n; i++) {
		const char *p = rs(r->recs[i], "path");
		if (p && strcmp(p, path) == 0)
			return r->recs[i];
	}
	fail_msg("no record for %s in:\n%s", path, r->json);
	return NULL;
}

/* ---- transcripts ---------------------------------------------------- */

#define SECRET "sk-test-NEVER-IN-A-RECORD-41c7"
#define HOST "api.openai.com"
#define MODEL "gpt-4o-mini"

static const char REQ_BODY[] =
	"{\"model\":\"" MODEL "\",\"messages\":[{\"role\":\"user\","
	"\"content\":\"Say hi\"}],\"max_tokens\":64}";
static const char REQ_BODY_STREAM[] =
	"{\"model\":\"" MODEL "\",\"stream\":true,\"stream_options\":"
	"{\"include_usage\":true},\"messages\":[{\"role\":\"user\","
	"\"content\":\"Count to three\"}]}";

static void open_conn(h2b *b)
{
	const uint16_t cid[] = { 0x3, 0x4, 0x2 };
	const uint32_t cval[] = { 100, 1u << 20, 0 };
	const uint16_t sid[] = { 0x3, 0x5 };
	const uint32_t sval[] = { 128, 16384 };

	h2b_preface(b);
	h2b_settings(b, 1, cid, cval, 3);
	h2b_window_update(b, 1, 0, 1u << 24);
	h2b_settings(b, 0, sid, sval, 2);
	h2b_settings_ack(b, 0);
	h2b_settings_ack(b, 1);
}

/* The request head of a chat completion on stream sid. */
static size_t req_head(h2b *b, uint32_t sid, const char *path,
		       const h2b_hopts *o)
{
	nghttp2_nv nv[] = {
		H2B_NV(":method", "POST"),
		H2B_NV(":scheme", "https"),
		{ (uint8_t *)":path", (uint8_t *)path, 5, strlen(path), 0 },
		H2B_NV(":authority", HOST),
		H2B_NV("content-type", "application/json"),
		H2B_NV("authorization", "Bearer " SECRET),
		H2B_NV("user-agent", "OpenAI/Python 1.54.0"),
		H2B_NV("accept", "application/json"),
	};
	return h2b_headers(b, 1, sid, nv, sizeof(nv) / sizeof(nv[0]), o);
}

static void request(h2b *b, uint32_t sid, const char *path, const char *body)
{
	req_head(b, sid, path, NULL);
	h2b_data(b, 1, sid, body, strlen(body), 1, 0, 0);
}

static size_t resp_head(h2b *b, uint32_t sid, const char *status,
			const char *ctype, const h2b_hopts *o)
{
	nghttp2_nv nv[] = {
		{ (uint8_t *)":status", (uint8_t *)status, 7, strlen(status),
		  0 },
		H2B_NV("date", "Tue, 01 Oct 2024 10:00:00 GMT"),
		{ (uint8_t *)"content-type", (uint8_t *)ctype, 12,
		  strlen(ctype), 0 },
		H2B_NV("openai-processing-ms", "312"),
		H2B_NV("x-request-id", "req_7f3a9c"),
	};
	return h2b_headers(b, 0, sid, nv, sizeof(nv) / sizeof(nv[0]), o);
}

/* A non-streamed chat completion body with these usage figures. */
static char *chat_json(int in, int out)
{
	char *s = malloc(512);

	assert_non_null(s);
	snprintf(s, 512,
		 "{\"id\":\"chatcmpl-9\",\"object\":\"chat.completion\","
		 "\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{"
		 "\"index\":0,\"message\":{\"role\":\"assistant\","
		 "\"content\":\"Hi!\"},\"finish_reason\":\"stop\"}],"
		 "\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,"
		 "\"total_tokens\":%d}}",
		 in, out, in + out);
	return s;
}

/* The i-th of n SSE events of a streamed chat completion. */
static char *chat_event(int i, int n, int in, int out)
{
	char *s = malloc(512);

	assert_non_null(s);
	if (i < n - 2)
		snprintf(s, 512,
			 "data: {\"id\":\"c\",\"object\":\"chat.completion."
			 "chunk\",\"model\":\"gpt-4o-mini-2024-07-18\","
			 "\"choices\":[{\"index\":0,\"delta\":{\"content\":"
			 "\"%d \"},\"finish_reason\":null}],\"usage\":null}"
			 "\n\n",
			 i);
	else if (i == n - 2)
		snprintf(s, 512,
			 "data: {\"id\":\"c\",\"object\":\"chat.completion."
			 "chunk\",\"model\":\"gpt-4o-mini-2024-07-18\","
			 "\"choices\":[],\"usage\":{\"prompt_tokens\":%d,"
			 "\"completion_tokens\":%d,\"total_tokens\":%d}}\n\n",
			 in, out, in + out);
	else
		snprintf(s, 512, "data: [DONE]\n\n");
	return s;
}

static void check_chat(const cJSON *rec, const char *path, int status,
		       int in, int out, size_t req_len, size_t resp_len)
{
	assert_string_equal(rs(rec, "http"), "2");
	assert_string_equal(rs(rec, "method"), "POST");
	assert_string_equal(rs(rec, "path"), path);
	assert_string_equal(rs(rec, "host"), HOST);
	assert_int_equal(ri(rec, "status"), status);
	assert_string_equal(rs(rec, "provider"), "openai");
	assert_string_equal(rs(rec, "api"), "chat.completions");
	assert_string_equal(rs(rec, "request_model"), MODEL);
	assert_int_equal(ri(rec, "input_tokens"), in);
	assert_int_equal(ri(rec, "output_tokens"), out);
	assert_string_equal(rs(rec, "usage_source"), "provider");
	assert_int_equal(ri(rec, "request_bytes"), (int64_t)req_len);
	assert_int_equal(ri(rec, "response_bytes"), (int64_t)resp_len);
}

static void assert_no_secret(const struct result *r)
{
	if (r->json && strstr(r->json, SECRET))
		fail_msg("the API key leaked into a record:\n%s", r->json);
}

/* ---- tests ---------------------------------------------------------- */

/*
 * One exchange, with PING, WINDOW_UPDATE, PRIORITY and frame types this
 * decoder does not know (RFC 9113 §5.5: ignored) in between.
 */
static void test_single_exchange(void **state)
{
	struct result r;
	h2b b;
	char *resp = chat_json(11, 7);

	h2b_init(&b);
	open_conn(&b);
	request(&b, 1, "/v1/chat/completions", REQ_BODY);
	h2b_ping(&b, 1, 0);
	h2b_priority(&b, 1, 1);
	h2b_frame(&b, 1, 0x2, 0, 1, "abc", 3); /* bad PRIORITY: a stream error */
	h2b_frame(&b, 1, 0x10, 0, 0, "\0\0\0\1u=1", 7); /* PRIORITY_UPDATE */
	h2b_ping(&b, 0, 1);
	h2b_frame(&b, 0, 0xa, 0, 0, "\0\0", 2); /* ALTSVC, unknown here */
	h2b_window_update(&b, 0, 1, 65535);
	resp_head(&b, 1, "200", "application/json", NULL);
	h2b_window_update(&b, 1, 1, 100000);
	h2b_data(&b, 0, 1, resp, strlen(resp), 1, 0, 0);
	h2b_goaway(&b, 1, 0, 0, "bye");
	run_all(&b, NULL, 1, &r);

	assert_int_equal(r.err, 0);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.llm, 1);
	check_chat(r.recs[0], "/v1/chat/completions", 200, 11, 7,
		   strlen(REQ_BODY), strlen(resp));
	assert_string_equal(rs(r.recs[0], "model"), "gpt-4o-mini-2024-07-18");
	assert_int_equal(ri(r.recs[0], "max_tokens"), 64);
	assert_null_str(r.recs[0], "error");
	assert_no_secret(&r);
	result_free(&r);
	h2b_free(&b);
	free(resp);
	(void)state;
}

/*
 * The same headers twice on one connection: the second request and
 * response heads are mostly indexed references into the dynamic table
 * (RFC 7541 §2.3.2), which only a per-connection, in-order inflater reads.
 */
/*
 * An HTTP/2 server often writes its SETTINGS before it has read the
 * client's preface: the decoder must hold those bytes until the preface
 * shows what the connection is, at either end.
 */
static void test_server_settings_first(void **state)
{
	struct result r;
	h2b b;
	char *resp = chat_json(5, 3);
	static const uint16_t id[] = { 0x3 };
	static const uint32_t val[] = { 100 };

	h2b_init(&b);
	h2b_settings(&b, 0, id, val, 1);
	open_conn(&b);
	request(&b, 1, "/v1/chat/completions", REQ_BODY);
	resp_head(&b, 1, "200", "application/json", NULL);
	h2b_data(&b, 0, 1, resp, strlen(resp), 1, 0, 0);
	run_all(&b, NULL, 1, &r);

	assert_int_equal(r.err, 0);
	assert_int_equal(r.n, 1);
	check_chat(r.recs[0], "/v1/chat/completions", 200, 5, 3,
		   strlen(REQ_BODY), strlen(resp));
	result_free(&r);
	h2b_free(&b);
	free(resp);
	(void)state;
}

/*
 * curl closes the connection once a response reached its content-length,
 * without reading the empty DATA frame that carries END_STREAM: the
 * record is complete, not "connection_closed".  Without a content-length
 * the same cut is an error.
 */
static void test_content_length_ends_response(void **state)
{
	for (int with_length = 1; with_length >= 0; with_length--) {
		struct result r;
		h2b b;
		char *resp = chat_json(8, 4);
		char len[24];

		snprintf(len, sizeof(len), "%zu", strlen(resp));
		h2b_init(&b);
		open_conn(&b);
		request(&b, 1, "/v1/chat/completions", REQ_BODY);
		nghttp2_nv nv[] = {
			H2B_NV(":status", "200"),
			H2B_NV("content-type", "application/json"),
			{ (uint8_t *)"content-length", (uint8_t *)len, 14, strlen(len), 0 },
		};
		h2b_headers(&b, 0, 1, nv, with_length ? 3 : 2, NULL);
		h2b_data(&b, 0, 1, resp, strlen(resp), 0, 0, 0);
		run_all(&b, NULL, 1, &r);

		assert_int_equal(r.n, 1);
		check_chat(r.recs[0], "/v1/chat/completions", 200, 8, 4,
			   strlen(REQ_BODY), strlen(resp));
		if (with_length)
			assert_null_str(r.recs[0], "error");
		else
			assert_string_equal(rs(r.recs[0], "error"), "connection_closed");
		result_free(&r);
		h2b_free(&b);
		free(resp);
	}
	(void)state;
}

static void test_dynamic_table(void **state)
{
	struct result r;
	h2b b;
	char *r1 = chat_json(21, 3), *r2 = chat_json(22, 4);
	size_t q1, q2, s1, s2;

	h2b_init(&b);
	open_conn(&b);
	q1 = req_head(&b, 1, "/v1/chat/completions", NULL);
	h2b_data(&b, 1, 1, REQ_BODY, strlen(REQ_BODY), 1, 0, 0);
	s1 = resp_head(&b, 1, "200", "application/json", NULL);
	h2b_data(&b, 0, 1, r1, strlen(r1), 1, 0, 0);
	q2 = req_head(&b, 3, "/v1/chat/completions", NULL);
	h2b_data(&b, 1, 3, REQ_BODY, strlen(REQ_BODY), 1, 0, 0);
	s2 = resp_head(&b, 3, "200", "application/json", NULL);
	h2b_data(&b, 0, 3, r2, strlen(r2), 1, 0, 0);
	/* Indexed (nghttp2 never indexes :path or authorization). */
	assert_true(q2 + 40 < q1);
	assert_true(s2 * 4 < s1);
	run_all(&b, NULL, 1, &r);

	assert_int_equal(r.err, 0);
	assert_int_equal(r.n, 2);
	check_chat(r.recs[0], "/v1/chat/completions", 200, 21, 3,
		   strlen(REQ_BODY), strlen(r1));
	check_chat(r.recs[1], "/v1/chat/completions", 200, 22, 4,
		   strlen(REQ_BODY), strlen(r2));
	assert_no_secret(&r);
	result_free(&r);
	h2b_free(&b);
	free(r1);
	free(r2);
	(void)state;
}

/* PADDED and PRIORITY HEADERS, CONTINUATION, padded DATA in small frames. */
static void test_padding_continuation(void **state)
{
	const h2b_hopts rq = { .pad = 17, .priority = 1, .fragment = 5 };
	const h2b_hopts rp = { .pad = 3, .fragment = 2 };
	struct result r;
	h2b b;
	char *resp = chat_json(5, 9);

	h2b_init(&b);
	open_conn(&b);
	req_head(&b, 1, "/v1/chat/completions", &rq);
	h2b_data(&b, 1, 1, REQ_BODY, strlen(REQ_BODY), 1, 9, 20);
	resp_head(&b, 1, "200", "application/json", &rp);
	h2b_data(&b, 0, 1, resp, strlen(resp), 0, 255, 300);
	h2b_data(&b, 0, 1, "", 0, 1, 4, 0); /* END_STREAM on an empty frame */
	run_all(&b, NULL, 0, &r);

	assert_int_equal(r.err, 0);
	assert_int_equal(r.n, 1);
	check_chat(r.recs[0], "/v1/chat/completions", 200, 5, 9,
		   strlen(REQ_BODY), strlen(resp));
	assert_null_str(r.recs[0], "error");
	result_free(&r);
	h2b_free(&b);
	free(resp);
	(void)state;
}

/*
 * Big frames: the server allows 1 MiB frames; one 200 KB DATA frame
 * straddles many reads in every split.
 */
static void test_large_frames(void **state)
{
	const uint16_t id[] = { 0x5 };
	const uint32_t val[] = { 1u << 20 };
	struct result r;
	h2b b;
	size_t n = 200 * 1000;
	char *big = malloc(n + 1), *resp = chat_json(40000, 2);
	const char head[] = "{\"model\":\"" MODEL "\",\"messages\":[{\"role\":"
			    "\"user\",\"content\":\"";

	assert_non_null(big);
	memcpy(big, head, sizeof(head) - 1);
	memset(big + sizeof(head) - 1, 'a', n - (sizeof(head) - 1) - 4);
	memcpy(big + n - 4, "\"}]}", 5);

	h2b_init(&b);
	open_conn(&b);
	h2b_settings(&b, 0, id, val, 1);
	h2b_settings_ack(&b, 1);
	req_head(&b, 1, "/v1/chat/completions", NULL);
	h2b_data(&b, 1, 1, big, n, 1, 0, 1u << 20);
	resp_head(&b, 1, "200", "application/json", NULL);
	h2b_data(&b, 0, 1, resp, strlen(resp), 1, 0, 0);
	run_all(&b, NULL, 0, &r);

	assert_int_equal(r.err, 0);
	assert_int_equal(r.n, 1);
	check_chat(r.recs[0], "/v1/chat/completions", 200, 40000, 2, n,
		   strlen(resp));
	result_free(&r);
	h2b_free(&b);
	free(big);
	free(resp);
	(void)state;
}

/* Three streamed exchanges whose frames interleave, ending out of order. */
static void test_interleaved_streams(void **state)
{
	const uint32_t ids[] = { 1, 3, 5 };
	const char *paths[] = { "/v1/chat/completions",
				"/openai/v1/chat/completions",
				"/proxy/v1/chat/completions" };
	const int in[] = { 100, 200, 300 }, out[] = { 7, 8, 9 };
	const int nev[] = { 6, 9, 4 };
	size_t sent[3] = { 0, 0, 0 };
	struct result r;
	h2b b;

	h2b_init(&b);
	open_conn(&b);
	for (int s = 0; s < 3; s++) {
		req_head(&b, ids[s], paths[s], NULL);
		h2b_data(&b, 1, ids[s], REQ_BODY_STREAM,
			 strlen(REQ_BODY_STREAM), 1, 0, 0);
	}
	for (int s = 2; s >= 0; s--)
		resp_head(&b, ids[s], "200", "text/event-stream; charset=utf-8",
			  NULL);
	/* Round robin, one event per stream per turn; 5 ends first. */
	for (int i = 0; i < 9; i++) {
		for (int s = 2; s >= 0; s--) {
			if (i >= nev[s])
				continue;
			char *ev = chat_event(i, nev[s], in[s], out[s]);
			h2b_data(&b, 0, ids[s], ev, strlen(ev), i == nev[s] - 1,
				 0, 0);
			sent[s] += strlen(ev);
			free(ev);
			if (i % 3 == 0)
				h2b_window_update(&b, 1, ids[s], 1000);
		}
	}
	run_all(&b, NULL, 0, &r);

	assert_int_equal(r.err, 0);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.llm, 3);
	for (int s = 0; s < 3; s++) {
		const cJSON *rec = by_path(&r, paths[s]);
		check_chat(rec, paths[s], 200, in[s], out[s],
			   strlen(REQ_BODY_STREAM), sent[s]);
		assert_true(cJSON_IsTrue(
			cJSON_GetObjectItemCaseSensitive(rec, "stream")));
		assert_null_str(rec, "error");
	}
	/* Wire order of completion: 5 (4 events), then 1 (6), then 3 (9). */
	assert_string_equal(rs(r.recs[0], "path"), paths[2]);
	assert_string_equal(rs(r.recs[1], "path"), paths[0]);
	assert_string_equal(rs(r.recs[2], "path"), paths[1]);
	result_free(&r);
	h2b_free(&b);
	(void)state;
}

/*
 * A client that hangs up once the stream's last event is in: Codex resets
 * its HTTP/2 stream after "data: [DONE]" without waiting for the server's
 * END_STREAM.  The answer is whole: no error.  The same reset one event
 * earlier (usage in, [DONE] not) still says "stream_reset".
 */
static void test_rst_after_last_event(void **state)
{
	struct result r;
	h2b b;
	char *ev[3], *early[2];

	for (int i = 0; i < 3; i++)
		ev[i] = chat_event(i, 3, 17, 9);
	for (int i = 0; i < 2; i++)
		early[i] = chat_event(i, 3, 23, 5);
	h2b_init(&b);
	open_conn(&b);
	req_head(&b, 1, "/done/v1/chat/completions", NULL);
	h2b_data(&b, 1, 1, REQ_BODY_STREAM, strlen(REQ_BODY_STREAM), 1, 0, 0);
	req_head(&b, 3, "/early/v1/chat/completions", NULL);
	h2b_data(&b, 1, 3, REQ_BODY_STREAM, strlen(REQ_BODY_STREAM), 1, 0, 0);
	resp_head(&b, 1, "200", "text/event-stream", NULL);
	resp_head(&b, 3, "200", "text/event-stream", NULL);
	for (int i = 0; i < 3; i++)
		h2b_data(&b, 0, 1, ev[i], strlen(ev[i]), 0, 0, 0);
	for (int i = 0; i < 2; i++)
		h2b_data(&b, 0, 3, early[i], strlen(early[i]), 0, 0, 0);
	h2b_rst(&b, 1, 1, 0x8); /* CANCEL */
	h2b_rst(&b, 1, 3, 0x8);
	run_all(&b, NULL, 0, &r);

	assert_int_equal(r.err, 0);
	assert_int_equal(r.n, 2);
	const cJSON *done = by_path(&r, "/done/v1/chat/completions");
	assert_null_str(done, "error");
	assert_int_equal(ri(done, "input_tokens"), 17);
	assert_int_equal(ri(done, "output_tokens"), 9);
	const cJSON *cut = by_path(&r, "/early/v1/chat/completions");
	assert_string_equal(rs(cut, "error"), "stream_reset");
	assert_int_equal(ri(cut, "input_tokens"), 23);
	result_free(&r);
	h2b_free(&b);
	for (int i = 0; i < 3; i++)
		free(ev[i]);
	for (int i = 0; i < 2; i++)
		free(early[i]);
	(void)state;
}

/*
 * RST_STREAM mid-body gives a record with error "stream_reset"; frames
 * still in flight for the reset stream are skipped; a RST_STREAM(NO_ERROR)
 * after a complete response (RFC 9113 §8.1) ends the exchange cleanly.
 */
static void test_rst_stream(void **state)
{
	struct result r;
	h2b b;
	char *ev0 = chat_event(0, 4, 1, 1), *ev1 = chat_event(1, 4, 1, 1);
	char *resp = chat_json(31, 4), *resp5 = chat_json(50, 5);

	h2b_init(&b);
	open_conn(&b);
	req_head(&b, 1, "/a/v1/chat/completions", NULL);
	h2b_data(&b, 1, 1, REQ_BODY_STREAM, strlen(REQ_BODY_STREAM), 1, 0, 0);
	req_head(&b, 3, "/b/v1/chat/completions", NULL);
	h2b_data(&b, 1, 3, REQ_BODY, strlen(REQ_BODY), 1, 0, 0);
	resp_head(&b, 1, "200", "text/event-stream", NULL);
	h2b_data(&b, 0, 1, ev0, strlen(ev0), 0, 0, 0);
	h2b_rst(&b, 1, 1, 0x8); /* CANCEL */
	h2b_data(&b, 0, 1, ev1, strlen(ev1), 0, 0, 0); /* in flight */
	resp_head(&b, 3, "200", "application/json", NULL);
	h2b_data(&b, 0, 3, resp, strlen(resp), 1, 0, 0);
	/* Stream 5: answered before its request ended, then reset. */
	req_head(&b, 5, "/c/v1/chat/completions", NULL);
	h2b_data(&b, 1, 5, REQ_BODY, strlen(REQ_BODY), 0, 0, 0);
	resp_head(&b, 5, "200", "application/json", NULL);
	h2b_data(&b, 0, 5, resp5, strlen(resp5), 1, 0, 0);
	h2b_rst(&b, 0, 5, 0x0);
	h2b_data(&b, 1, 5, "", 0, 1, 0, 0); /* late: stream is closed */
	run_all(&b, NULL, 1, &r);

	assert_int_equal(r.err, 0);
	assert_int_equal(r.n, 3);
	const cJSON *a = by_path(&r, "/a/v1/chat/completions");
	assert_string_equal(rs(a, "error"), "stream_reset");
	assert_int_equal(ri(a, "status"), 200);
	assert_int_equal(ri(a, "response_bytes"), (int64_t)strlen(ev0));
	const cJSON *c = by_path(&r, "/b/v1/chat/completions");
	check_chat(c, "/b/v1/chat/completions", 200, 31, 4, strlen(REQ_BODY),
		   strlen(resp));
	assert_null_str(c, "error");
	const cJSON *d = by_path(&r, "/c/v1/chat/completions");
	assert_null_str(d, "error");
	assert_int_equal(ri(d, "input_tokens"), 50);
	assert_int_equal(ri(d, "output_tokens"), 5);
	result_free(&r);
	h2b_free(&b);
	free(ev0);
	free(ev1);
	free(resp);
	free(resp5);
	(void)state;
}

/*
 * GOAWAY: streams above the last stream the server processed never get an
 * answer (record "stream_reset"); the ones at or below it complete.
 */
static void test_goaway(void **state)
{
	struct result r;
	h2b b;
	char *resp = chat_json(12, 34);

	h2b_init(&b);
	open_conn(&b);
	request(&b, 1, "/one/v1/chat/completions", REQ_BODY);
	request(&b, 3, "/three/v1/chat/completions", REQ_BODY);
	h2b_goaway(&b, 0, 1, 0x0, "graceful shutdown");
	/* Sent before the client saw the GOAWAY: never processed either. */
	request(&b, 5, "/five/v1/chat/completions", REQ_BODY);
	resp_head(&b, 1, "200", "application/json", NULL);
	h2b_data(&b, 0, 1, resp, strlen(resp), 1, 0, 0);
	run_all(&b, NULL, 1, &r);

	assert_int_equal(r.err, 0);
	assert_int_equal(r.n, 3);
	assert_string_equal(rs(by_path(&r, "/five/v1/chat/completions"), "error"),
			    "stream_reset");
	const cJSON *one = by_path(&r, "/one/v1/chat/completions");
	check_chat(one, "/one/v1/chat/completions", 200, 12, 34,
		   strlen(REQ_BODY), strlen(resp));
	assert_null_str(one, "error");
	const cJSON *three = by_path(&r, "/three/v1/chat/completions");
	assert_string_equal(rs(three, "error"), "stream_reset");
	assert_int_equal(ri(three, "status"), -1);
	/* The refused request still tells what it asked for. */
	assert_string_equal(rs(three, "request_model"), MODEL);
	result_free(&r);
	h2b_free(&b);
	free(resp);
	(void)state;
}

/*
 * PUSH_PROMISE carries a header block in the server's HPACK context: it
 * must be inflated (and dropped) or every later server head is garbage.
 * The pushed stream itself is no exchange.
 */
static void test_push_promise(void **state)
{
	const h2b_hopts push = { .promised = 2, .pad = 6, .fragment = 4 };
	nghttp2_nv pushed_req[] = {
		H2B_NV(":method", "GET"),
		H2B_NV(":scheme", "https"),
		H2B_NV(":path", "/static/app.js"),
		H2B_NV(":authority", HOST),
		H2B_NV("x-push-marker", "only-in-the-pushed-block-1234567890"),
	};
	nghttp2_nv pushed_resp[] = {
		H2B_NV(":status", "200"),
		H2B_NV("content-type", "application/javascript"),
		H2B_NV("x-push-marker", "only-in-the-pushed-block-1234567890"),
	};
	nghttp2_nv resp_nv[] = {
		H2B_NV(":status", "200"),
		H2B_NV("content-type", "application/json"),
		H2B_NV("x-push-marker", "only-in-the-pushed-block-1234567890"),
	};
	struct result r;
	h2b b;
	char *resp = chat_json(8, 16);

	h2b_init(&b);
	open_conn(&b);
	request(&b, 1, "/v1/chat/completions", REQ_BODY);
	h2b_headers(&b, 0, 1, pushed_req, 5, &push);
	h2b_headers(&b, 0, 2, pushed_resp, 3, NULL);
	h2b_data(&b, 0, 2, "console.log(1)", 14, 1, 0, 0);
	/* Refers to the marker the push block added to the table. */
	h2b_headers(&b, 0, 1, resp_nv, 3, NULL);
	h2b_data(&b, 0, 1, resp, strlen(resp), 1, 0, 0);
	run_all(&b, NULL, 1, &r);

	assert_int_equal(r.err, 0);
	assert_int_equal(r.n, 1);
	check_chat(r.recs[0], "/v1/chat/completions", 200, 8, 16,
		   strlen(REQ_BODY), strlen(resp));
	result_free(&r);
	h2b_free(&b);
	free(resp);
	(void)state;
}

/*
 * Interim 1xx heads are skipped; trailers end the stream; a final head
 * with END_STREAM and no body is a complete response.
 */
static void test_interim_trailers_nobody(void **state)
{
	const h2b_hopts end = { .end_stream = 1 };
	nghttp2_nv cont[] = { H2B_NV(":status", "100") };
	nghttp2_nv early[] = { H2B_NV(":status", "103"),
			       H2B_NV("link", "</x>; rel=preload") };
	nghttp2_nv trailers[] = { H2B_NV("x-usage-note", "final"),
				  H2B_NV("grpc-status", "0") };
	nghttp2_nv limited[] = { H2B_NV(":status", "429"),
				 H2B_NV("retry-after", "20") };
	struct result r;
	h2b b;
	char *resp = chat_json(3, 30);

	h2b_init(&b);
	open_conn(&b);
	req_head(&b, 1, "/x/v1/chat/completions", NULL);
	h2b_headers(&b, 0, 1, cont, 1, NULL);
	h2b_data(&b, 1, 1, REQ_BODY, strlen(REQ_BODY), 1, 0, 0);
	h2b_headers(&b, 0, 1, early, 2, NULL);
	resp_head(&b, 1, "200", "application/json", NULL);
	h2b_data(&b, 0, 1, resp, strlen(resp), 0, 0, 0);
	h2b_headers(&b, 0, 1, trailers, 2, &end);
	request(&b, 3, "/y/v1/chat/completions", REQ_BODY);
	h2b_headers(&b, 0, 3, limited, 2, &end);
	/* The client ends its request with trailers instead of a DATA flag. */
	req_head(&b, 5, "/z/v1/chat/completions", NULL);
	h2b_data(&b, 1, 5, REQ_BODY, strlen(REQ_BODY), 0, 0, 0);
	h2b_headers(&b, 1, 5, trailers, 2, &end);
	resp_head(&b, 5, "200", "application/json", NULL);
	h2b_data(&b, 0, 5, resp, strlen(resp), 1, 0, 0);
	run_all(&b, NULL, 0, &r); /* no close: all must end by themselves */

	assert_int_equal(r.err, 0);
	assert_int_equal(r.n, 3);
	const cJSON *z = by_path(&r, "/z/v1/chat/completions");
	check_chat(z, "/z/v1/chat/completions", 200, 3, 30, strlen(REQ_BODY),
		   strlen(resp));
	assert_null_str(z, "error");
	const cJSON *x = by_path(&r, "/x/v1/chat/completions");
	check_chat(x, "/x/v1/chat/completions", 200, 3, 30, strlen(REQ_BODY),
		   strlen(resp));
	assert_null_str(x, "error");
	const cJSON *y = by_path(&r, "/y/v1/chat/completions");
	assert_int_equal(ri(y, "status"), 429);
	assert_int_equal(ri(y, "response_bytes"), 0);
	result_free(&r);
	h2b_free(&b);
	free(resp);
	(void)state;
}

/*
 * SETTINGS_HEADER_TABLE_SIZE announced by the client binds the server's
 * encoder once the server acknowledges it.  Raised to 64 KiB, the server
 * keeps three 2000-byte headers in its table and refers to them later: an
 * inflater left at 4096 would have evicted them.  Lowered to 0 afterwards,
 * the server opens its next block with a table size update.
 */
static void test_table_size_settings(void **state)
{
	const uint16_t id[] = { 0x1 };
	const uint32_t big[] = { 65536 }, zero[] = { 0 };
	static char v1[2001], v2[2001], v3[2001];
	struct result r;
	h2b b;
	char *ra = chat_json(1, 2), *rb = chat_json(3, 4), *rc = chat_json(5, 6);

	memset(v1, 'a', 2000);
	memset(v2, 'b', 2000);
	memset(v3, 'c', 2000);
	nghttp2_nv nv[] = {
		H2B_NV(":status", "200"),
		H2B_NV("content-type", "application/json"),
		{ (uint8_t *)"x-a", (uint8_t *)v1, 3, 2000, 0 },
		{ (uint8_t *)"x-b", (uint8_t *)v2, 3, 2000, 0 },
		{ (uint8_t *)"x-c", (uint8_t *)v3, 3, 2000, 0 },
	};
	size_t first, second, third;

	h2b_init(&b);
	open_conn(&b);
	h2b_settings(&b, 1, id, big, 1);
	h2b_settings_ack(&b, 0);
	h2b_encoder_table(&b, 0, 65536); /* the server obeys on its ACK */
	request(&b, 1, "/a/v1/chat/completions", REQ_BODY);
	first = h2b_headers(&b, 0, 1, nv, 5, NULL);
	h2b_data(&b, 0, 1, ra, strlen(ra), 1, 0, 0);
	request(&b, 3, "/b/v1/chat/completions", REQ_BODY);
	second = h2b_headers(&b, 0, 3, nv, 5, NULL);
	h2b_data(&b, 0, 3, rb, strlen(rb), 1, 0, 0);
	assert_true(first > 3000);
	assert_true(second < 100); /* all indexed */

	h2b_settings(&b, 1, id, zero, 1);
	request(&b, 5, "/c/v1/chat/completions", REQ_BODY);
	h2b_settings_ack(&b, 0);
	h2b_encoder_table(&b, 0, 0);
	third = h2b_headers(&b, 0, 5, nv, 5, NULL);
	h2b_data(&b, 0, 5, rc, strlen(rc), 1, 0, 0);
	assert_true(third > 3000); /* nothing indexed any more */
	run_all(&b, NULL, 0, &r);

	assert_int_equal(r.err, 0);
	assert_int_equal(r.n, 3);
	check_chat(by_path(&r, "/a/v1/chat/completions"),
		   "/a/v1/chat/completions", 200, 1, 2, strlen(REQ_BODY),
		   strlen(ra));
	check_chat(by_path(&r, "/b/v1/chat/completions"),
		   "/b/v1/chat/completions", 200, 3, 4, strlen(REQ_BODY),
		   strlen(rb));
	check_chat(by_path(&r, "/c/v1/chat/completions"),
		   "/c/v1/chat/completions", 200, 5, 6, strlen(REQ_BODY),
		   strlen(rc));
	result_free(&r);
	h2b_free(&b);
	free(ra);
	free(rb);
	free(rc);
	(void)state;
}

/*
 * RFC 9113 §6.5.3: the server applies the client's SETTINGS as soon as it
 * has processed them, and may send a head built on the larger table before
 * its ACK goes out.  Raising our ceiling early keeps us in step.
 */
static void test_table_size_before_ack(void **state)
{
	const uint16_t id[] = { 0x1 };
	const uint32_t big[] = { 16384 };
	static char v1[2001], v2[2001], v3[2001];
	struct result r;
	h2b b;
	char *ra = chat_json(1, 2), *rb = chat_json(3, 4);

	memset(v1, 'k', 2000);
	memset(v2, 'l', 2000);
	memset(v3, 'm', 2000);
	nghttp2_nv nv[] = {
		H2B_NV(":status", "200"),
		H2B_NV("content-type", "application/json"),
		{ (uint8_t *)"x-k", (uint8_t *)v1, 3, 2000, 0 },
		{ (uint8_t *)"x-l", (uint8_t *)v2, 3, 2000, 0 },
		{ (uint8_t *)"x-m", (uint8_t *)v3, 3, 2000, 0 },
	};

	h2b_init(&b);
	open_conn(&b);
	request(&b, 1, "/a/v1/chat/completions", REQ_BODY);
	request(&b, 3, "/b/v1/chat/completions", REQ_BODY);
	h2b_settings(&b, 1, id, big, 1);
	h2b_encoder_table(&b, 0, 16384);
	h2b_headers(&b, 0, 1, nv, 5, NULL);
	h2b_data(&b, 0, 1, ra, strlen(ra), 1, 0, 0);
	assert_true(h2b_headers(&b, 0, 3, nv, 5, NULL) < 100);
	h2b_data(&b, 0, 3, rb, strlen(rb), 1, 0, 0);
	h2b_settings_ack(&b, 0);
	run_all(&b, NULL, 0, &r);

	assert_int_equal(r.err, 0);
	assert_int_equal(r.n, 2);
	check_chat(by_path(&r, "/a/v1/chat/completions"),
		   "/a/v1/chat/completions", 200, 1, 2, strlen(REQ_BODY),
		   strlen(ra));
	check_chat(by_path(&r, "/b/v1/chat/completions"),
		   "/b/v1/chat/completions", 200, 3, 4, strlen(REQ_BODY),
		   strlen(rb));
	result_free(&r);
	h2b_free(&b);
	free(ra);
	free(rb);
	(void)state;
}

/*
 * A decrease takes effect at the ACK: a server that shrinks its table on
 * the ACK but sends no size update violates RFC 7541 §4.2, and a
 * correctly ordered inflater says so.
 */
static void test_table_size_decrease_needs_update(void **state)
{
	const uint16_t id[] = { 0x1 };
	const uint32_t small[] = { 256 };
	struct result r;
	h2b b;
	char *ra = chat_json(1, 2);
	/* A literal header without indexing, no size update in front. */
	const uint8_t block[] = { 0x88 /* :status 200, static index 8 */ };

	h2b_init(&b);
	open_conn(&b);
	request(&b, 1, "/a/v1/chat/completions", REQ_BODY);
	resp_head(&b, 1, "200", "application/json", NULL); /* fills the table */
	h2b_data(&b, 0, 1, ra, strlen(ra), 1, 0, 0);
	h2b_settings(&b, 1, id, small, 1);
	request(&b, 3, "/b/v1/chat/completions", REQ_BODY);
	/* Before the ACK the old table still applies: fine. */
	h2b_frame(&b, 0, 0x1, 0x4, 3, block, 1);
	h2b_data(&b, 0, 3, ra, strlen(ra), 1, 0, 0);
	h2b_settings_ack(&b, 0);
	request(&b, 5, "/c/v1/chat/completions", REQ_BODY);
	h2b_frame(&b, 0, 0x1, 0x4, 5, block, 1); /* update missing */
	run_all(&b, NULL, 1, &r);

	assert_int_equal(r.err, TT_EDECODE);
	assert_int_equal(r.n, 3);
	assert_null_str(by_path(&r, "/a/v1/chat/completions"), "error");
	assert_null_str(by_path(&r, "/b/v1/chat/completions"), "error");
	assert_string_equal(rs(by_path(&r, "/c/v1/chat/completions"), "error"),
			    "decode_error");
	result_free(&r);
	h2b_free(&b);
	free(ra);
	(void)state;
}

/* A compressed response body goes through the same pipeline as in 1.1. */
static void test_gzip_body(void **state)
{
	nghttp2_nv nv[] = {
		H2B_NV(":status", "200"),
		H2B_NV("content-type", "application/json"),
		H2B_NV("content-encoding", "gzip"),
	};
	struct result r;
	h2b b;
	char *resp = chat_json(77, 88);
	uint8_t gz[1024];
	z_stream z;

	memset(&z, 0, sizeof(z));
	assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 31, 8,
				      Z_DEFAULT_STRATEGY),
			 Z_OK);
	z.next_in = (Bytef *)resp;
	z.avail_in = (uInt)strlen(resp);
	z.next_out = gz;
	z.avail_out = sizeof(gz);
	assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
	size_t gzlen = sizeof(gz) - z.avail_out;
	deflateEnd(&z);

	h2b_init(&b);
	open_conn(&b);
	request(&b, 1, "/v1/chat/completions", REQ_BODY);
	h2b_headers(&b, 0, 1, nv, 3, NULL);
	h2b_data(&b, 0, 1, gz, gzlen / 2, 0, 0, 0);
	h2b_data(&b, 0, 1, gz + gzlen / 2, gzlen - gzlen / 2, 1, 0, 0);
	run_all(&b, NULL, 0, &r);

	assert_int_equal(r.err, 0);
	assert_int_equal(r.n, 1);
	check_chat(r.recs[0], "/v1/chat/completions", 200, 77, 88,
		   strlen(REQ_BODY), strlen(resp));
	result_free(&r);
	h2b_free(&b);
	free(resp);
	(void)state;
}

/* The connection ends mid-response: a record, not a lost exchange. */
static void test_connection_closed(void **state)
{
	struct result r;
	h2b b;
	char *ev0 = chat_event(0, 5, 1, 1);

	h2b_init(&b);
	open_conn(&b);
	request(&b, 1, "/v1/chat/completions", REQ_BODY_STREAM);
	resp_head(&b, 1, "200", "text/event-stream", NULL);
	h2b_data(&b, 0, 1, ev0, strlen(ev0), 0, 0, 0);
	h2b_raw(&b, 0, "\x00\x00\x40\x00\x00", 5); /* half a frame header */
	run_all(&b, NULL, 1, &r);

	assert_int_equal(r.err, 0);
	assert_int_equal(r.n, 1);
	assert_string_equal(rs(r.recs[0], "error"), "connection_closed");
	assert_int_equal(ri(r.recs[0], "status"), 200);
	result_free(&r);
	h2b_free(&b);
	free(ev0);
	(void)state;
}

/*
 * Caps.  A request head over cfg->max_header_bytes is cut (the record says
 * "truncated") yet the table stays in step, so the next exchange decodes;
 * streams over cfg->max_streams are skipped, not allowed to grow memory.
 */
static void test_caps(void **state)
{
	static char big[3001];
	tt_decoder_config cfg;
	struct result r;
	h2b b;
	char *resp = chat_json(9, 9);

	memset(big, 'z', 3000);
	nghttp2_nv nv[] = {
		H2B_NV(":method", "POST"),
		H2B_NV(":path", "/big/v1/chat/completions"),
		H2B_NV(":authority", HOST),
		H2B_NV(":scheme", "https"),
		H2B_NV("content-type", "application/json"),
		{ (uint8_t *)"x-big", (uint8_t *)big, 5, 3000, 0 },
		H2B_NV("x-after", "1"),
	};
	tt_decoder_config_init(&cfg);
	cfg.max_header_bytes = 1024;
	cfg.max_streams = 2;

	h2b_init(&b);
	open_conn(&b);
	h2b_headers(&b, 1, 1, nv, 7, NULL);
	h2b_data(&b, 1, 1, REQ_BODY, strlen(REQ_BODY), 1, 0, 0);
	resp_head(&b, 1, "200", "application/json", NULL);
	h2b_data(&b, 0, 1, resp, strlen(resp), 1, 0, 0);
	/* Three at once with room for two: the third is skipped. */
	request(&b, 3, "/s3/v1/chat/completions", REQ_BODY);
	request(&b, 5, "/s5/v1/chat/completions", REQ_BODY);
	request(&b, 7, "/s7/v1/chat/completions", REQ_BODY);
	for (uint32_t sid = 3; sid <= 7; sid += 2) {
		resp_head(&b, sid, "200", "application/json", NULL);
		h2b_data(&b, 0, sid, resp, strlen(resp), 1, 0, 0);
	}
	/* Room again. */
	request(&b, 9, "/s9/v1/chat/completions", REQ_BODY);
	resp_head(&b, 9, "200", "application/json", NULL);
	h2b_data(&b, 0, 9, resp, strlen(resp), 1, 0, 0);
	run_all(&b, &cfg, 1, &r);

	assert_int_equal(r.err, 0);
	assert_int_equal(r.n, 4);
	const cJSON *bigrec = by_path(&r, "/big/v1/chat/completions");
	assert_string_equal(rs(bigrec, "error"), "truncated");
	assert_string_equal(rs(bigrec, "host"), HOST);
	assert_int_equal(ri(bigrec, "input_tokens"), 9);
	const char *ok[] = { "/s3/v1/chat/completions",
			     "/s5/v1/chat/completions",
			     "/s9/v1/chat/completions" };
	for (int i = 0; i < 3; i++) {
		const cJSON *rec = by_path(&r, ok[i]);
		check_chat(rec, ok[i], 200, 9, 9, strlen(REQ_BODY),
			   strlen(resp));
		assert_null_str(rec, "error");
	}
	for (size_t i = 0; i < r.n; i++)
		assert_string_not_equal(rs(r.recs[i], "path"),
					"/s7/v1/chat/completions");
	result_free(&r);
	h2b_free(&b);
	free(resp);
	(void)state;
}

/* Requests that are not LLM calls give no record and hold no stream. */
static void test_not_llm(void **state)
{
	nghttp2_nv get[] = {
		H2B_NV(":method", "GET"),
		H2B_NV(":path", "/index.html"),
		H2B_NV(":authority", "example.org"),
		H2B_NV(":scheme", "https"),
	};
	const h2b_hopts end = { .end_stream = 1 };
	tt_decoder_config cfg;
	struct result r;
	h2b b;
	char *resp = chat_json(2, 2);

	tt_decoder_config_init(&cfg);
	cfg.max_streams = 1;
	h2b_init(&b);
	open_conn(&b);
	/* Ten page loads at once would overflow one stream slot if kept. */
	for (uint32_t sid = 1; sid <= 19; sid += 2)
		h2b_headers(&b, 1, sid, get, 4, &end);
	request(&b, 21, "/v1/chat/completions", REQ_BODY);
	for (uint32_t sid = 1; sid <= 19; sid += 2) {
		resp_head(&b, sid, "200", "text/html", NULL);
		h2b_data(&b, 0, sid, "<html></html>", 13, 1, 0, 0);
	}
	resp_head(&b, 21, "200", "application/json", NULL);
	h2b_data(&b, 0, 21, resp, strlen(resp), 1, 0, 0);
	run_all(&b, &cfg, 0, &r);

	assert_int_equal(r.err, 0);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.llm, 1);
	check_chat(r.recs[0], "/v1/chat/completions", 200, 2, 2,
		   strlen(REQ_BODY), strlen(resp));
	result_free(&r);
	h2b_free(&b);
	free(resp);
	(void)state;
}

/*
 * Violations that leave the stream undecodable: the call reports a
 * sticky error, the open exchange gets a "decode_error" record, and the
 * object ignores everything after.
 */
static void test_protocol_errors(void **state)
{
	enum { CONT_ALONE, BLOCK_INTERRUPTED, PAD_TOO_LONG,
	       BAD_HPACK, SETTINGS_LEN, PING_LEN, DATA_STREAM0, NCASES };

	for (int c = 0; c < NCASES; c++) {
		struct result r;
		h2b b;
		const uint8_t pad[] = { 40, 'x', 'y' };
		const uint8_t junk[] = { 0xff, 0xff, 0xff, 0xff, 0x0f };
		const h2b_hopts frag = { .fragment = 3 };

		h2b_init(&b);
		open_conn(&b);
		req_head(&b, 1, "/v1/chat/completions", NULL);
		h2b_data(&b, 1, 1, REQ_BODY, strlen(REQ_BODY), 1, 0, 0);
		switch (c) {
		case CONT_ALONE:
			h2b_frame(&b, 0, 0x9, 0x4, 1, "\x88", 1);
			break;
		case BLOCK_INTERRUPTED: {
			/* Cut the response head, then slip a DATA in. */
			h2b tmp;
			h2b_init(&tmp);
			resp_head(&tmp, 1, "200", "application/json", &frag);
			/* HEADERS frame of 9 + 3 bytes, no END_HEADERS */
			h2b_raw(&b, 0, tmp.segs[0].data, 12);
			h2b_free(&tmp);
			h2b_data(&b, 0, 1, "{}", 2, 1, 0, 0);
			break;
		}
		case PAD_TOO_LONG:
			resp_head(&b, 1, "200", "application/json", NULL);
			h2b_frame(&b, 0, 0x0, 0x8, 1, pad, sizeof(pad));
			break;
		case BAD_HPACK:
			h2b_frame(&b, 0, 0x1, 0x4, 1, junk, sizeof(junk));
			break;
		case SETTINGS_LEN:
			h2b_frame(&b, 0, 0x4, 0, 0, "\0\x1\0\0\0", 5);
			break;
		case PING_LEN:
			h2b_frame(&b, 0, 0x6, 0, 0, "1234567", 7);
			break;
		case DATA_STREAM0:
			h2b_frame(&b, 0, 0x0, 0, 0, "x", 1);
			break;
		}
		/* Anything after is ignored. */
		resp_head(&b, 1, "200", "application/json", NULL);
		h2b_data(&b, 0, 1, "{}", 2, 1, 0, 0);
		run_all(&b, NULL, 1, &r);

		if (r.err >= 0)
			fail_msg("case %d: no error", c);
		assert_true(r.err == TT_EPROTO || r.err == TT_EDECODE);
		assert_int_equal(r.n, 1);
		assert_string_equal(rs(r.recs[0], "error"), "decode_error");
		result_free(&r);
		h2b_free(&b);
	}
	(void)state;
}

/* ---- conformance over the recorded corpus --------------------------- */

/* "K: V\r\n" lines as HTTP/2 fields (names lowercased, RFC 9113 §8.2). */
static size_t parse_head_lines(const char *text, char *store, size_t cap,
			       nghttp2_nv *nv, size_t max)
{
	size_t n = 0, used = 0;

	while (*text && n < max) {
		const char *eol = strstr(text, "\r\n");
		const char *colon = strchr(text, ':');
		if (!eol || !colon || colon > eol)
			break;
		size_t nl = (size_t)(colon - text);
		const char *v = colon + 1;
		while (*v == ' ')
			v++;
		size_t vl = (size_t)(eol - v);
		assert_true(used + nl + vl <= cap);
		char *name = store + used;
		for (size_t i = 0; i < nl; i++)
			name[i] = (char)(text[i] >= 'A' && text[i] <= 'Z' ?
						 text[i] + 32 : text[i]);
		memcpy(store + used + nl, v, vl);
		nv[n] = (nghttp2_nv){ (uint8_t *)name, (uint8_t *)name + nl, nl,
				      vl, NGHTTP2_NV_FLAG_NONE };
		used += nl + vl;
		n++;
		text = eol + 2;
	}
	return n;
}

struct conf_stream {
	const wire_row *row;
	uint32_t sid;
	tbuf body;      /* as sent: gzip for every other stream */
	size_t sent;
};

/*
 * Put rows [first, first + n) on one connection as concurrent streams:
 * request heads and bodies, then the response heads, then the bodies
 * interleaved in pieces of varying size, with PING and WINDOW_UPDATE
 * frames in between.
 */
static void conf_connection(h2b *b, const wire_row *rows, size_t first,
			    size_t n, struct conf_stream *cs)
{
	static const size_t sizes[] = { 1, 700, 33, 4096, 5, 16384, 250 };
	const h2b_hopts padded = { .pad = 10, .fragment = 40 };
	char status[8], task[32], store[2048];

	open_conn(b);
	for (size_t k = 0; k < n; k++) {
		const wire_row *row = &rows[first + k];
		const char *u = strstr(row->uri, "://");
		const char *host = u ? u + 3 : "localhost";
		const char *path = strchr(host, '/');
		size_t hlen = path ? (size_t)(path - host) : strlen(host);

		cs[k].row = row;
		cs[k].sid = (uint32_t)(1 + 2 * k);
		snprintf(task, sizeof(task), "row-%zu", first + k);
		nghttp2_nv nv[] = {
			H2B_NV(":method", "POST"),
			H2B_NV(":scheme", "https"),
			{ (uint8_t *)":path", (uint8_t *)(path ? path : "/"), 5,
			  path ? strlen(path) : 1, 0 },
			{ (uint8_t *)":authority", (uint8_t *)host, 10, hlen, 0 },
			H2B_NV("content-type", "application/json"),
			H2B_NV("authorization", "Bearer " SECRET),
			H2B_NV("accept-encoding", "gzip, deflate, br, zstd"),
			{ (uint8_t *)"x-tokentap-task", (uint8_t *)task, 15,
			  strlen(task), 0 },
		};
		h2b_headers(b, 1, cs[k].sid, nv, sizeof(nv) / sizeof(nv[0]),
			    k % 3 == 1 ? &padded : NULL);
		h2b_data(b, 1, cs[k].sid, row->request_body,
			 strlen(row->request_body), 1, k % 2 ? 3 : 0, 1000);
	}
	for (size_t k = n; k-- > 0;) {
		const wire_row *row = cs[k].row;
		const char *ct = wire_content_type(row);
		size_t blen;
		char *body = wire_body(row, &blen);
		nghttp2_nv nv[24];
		size_t nnv = 0;

		assert_non_null(body);
		if (k % 2) {
			tbuf_gzip(&cs[k].body, body, blen);
		} else {
			tbuf_add(&cs[k].body, body, blen);
		}
		free(body);
		snprintf(status, sizeof(status), "%d", row->status);
		nv[nnv++] = (nghttp2_nv){ (uint8_t *)":status",
					  (uint8_t *)status, 7, strlen(status),
					  0 };
		nv[nnv++] = (nghttp2_nv){ (uint8_t *)"content-type",
					  (uint8_t *)ct, 12, strlen(ct), 0 };
		if (k % 2)
			nv[nnv++] = (nghttp2_nv)H2B_NV("content-encoding",
						       "gzip");
		nnv += parse_head_lines(row->resp_headers, store, sizeof(store),
					nv + nnv, 24 - nnv);
		h2b_headers(b, 0, cs[k].sid, nv, nnv,
			    k % 3 == 2 ? &padded : NULL);
	}
	for (unsigned turn = 0;; turn++) {
		int any = 0;
		for (size_t k = 0; k < n; k++) {
			struct conf_stream *c = &cs[k];
			if (c->sent == c->body.n && c->sent > 0)
				continue;
			if (c->body.n == 0 && turn > 0)
				continue;
			size_t want = sizes[(turn + k) % 7];
			size_t left = c->body.n - c->sent;
			size_t piece = want < left ? want : left;
			h2b_data(b, 0, c->sid, c->body.p + c->sent, piece,
				 piece == left, (turn + k) % 5 == 0 ? 7 : 0,
				 16384);
			c->sent += piece;
			any = 1;
			if ((turn + k) % 4 == 0)
				h2b_window_update(b, 1, c->sid, (uint32_t)piece + 1);
		}
		if (!any)
			break;
		if (turn % 3 == 0) {
			h2b_ping(b, 1, 0);
			h2b_ping(b, 0, 1);
		}
	}
}

/* The record against the row's figures, as wire.c normalises them. */
static int conf_check(const wire_row *row, const cJSON *rec)
{
	int bad = 0;

#define SAME(field, want)                                                   \
	if (ri(rec, field) != (int64_t)(want)) {                            \
		print_message("FAIL %s: %s = %lld, want %lld\n", row->file, \
			      field, (long long)ri(rec, field),             \
			      (long long)(want));                           \
		bad = 1;                                                    \
	}
	if (strcmp(row->usage_source, "estimated") != 0) {
		SAME("input_tokens", row->input);
		SAME("output_tokens", row->output);
		SAME("cache_read_tokens", row->cache_read);
		SAME("cache_write_tokens", row->cache_write);
		SAME("reasoning_tokens", row->reasoning);
	} else if (ri(rec, "input_tokens") < 0 ||
		   ri(rec, "output_tokens") <= 0) {
		print_message("FAIL %s: no estimate\n", row->file);
		bad = 1;
	}
	SAME("status", row->status);
#undef SAME
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(rec, "stream");
	if (!st || cJSON_IsTrue(st) != (row->streaming != 0)) {
		print_message("FAIL %s: stream\n", row->file);
		bad = 1;
	}
	if (strcmp(rs(rec, "usage_source"), row->usage_source) != 0) {
		print_message("FAIL %s: usage_source %s, want %s\n", row->file,
			      rs(rec, "usage_source"), row->usage_source);
		bad = 1;
	}
	const char *err = rs(rec, "error");
	const char *want = row->provider_error ? "provider_error" : "(null)";
	if (strcmp(err, want) != 0) {
		print_message("FAIL %s: error %s, want %s\n", row->file, err,
			      want);
		bad = 1;
	}
	if (strcmp(rs(rec, "http"), "2") != 0) {
		print_message("FAIL %s: http %s\n", row->file, rs(rec, "http"));
		bad = 1;
	}
	return bad;
}

/*
 * Every body of the recorded corpus, carried in HTTP/2 frames, several
 * streams interleaved on each connection, every other body gzipped.
 */
static void test_conformance(void **state)
{
	enum { PER_CONN = 6 };
	wire_row *rows;
	size_t n = wire_load(&rows);
	int failures = 0;
	size_t checked = 0;

	if (n == 0) {
		free(rows);
		print_message("skip: the wire corpus is not beside the checkout\n");
		skip();
		return;
	}
	for (size_t first = 0; first < n; first += PER_CONN) {
		size_t k = n - first < PER_CONN ? n - first : PER_CONN;
		struct conf_stream cs[PER_CONN];
		struct result r;
		h2b b;

		memset(cs, 0, sizeof(cs));
		h2b_init(&b);
		conf_connection(&b, rows, first, k, cs);
		run_modes(&b, NULL, 1, 1, &r);
		assert_int_equal(r.err, 0);
		assert_no_secret(&r);
		if (r.n != k) {
			print_message("FAIL rows %zu..%zu: %zu records, want %zu\n%s",
				      first, first + k - 1, r.n, k, r.json);
			failures++;
		}
		for (size_t i = 0; i < r.n; i++) {
			const char *task = rs(r.recs[i], "task");
			char *end;
			long idx = strncmp(task, "row-", 4) == 0 ?
					   strtol(task + 4, &end, 10) : -1;
			assert_true(idx >= (long)first && idx < (long)(first + k));
			failures += conf_check(&rows[idx], r.recs[i]);
			checked++;
		}
		result_free(&r);
		h2b_free(&b);
		for (size_t i = 0; i < k; i++)
			tbuf_free(&cs[i].body);
	}
	print_message("h2 conformance: %zu bodies, %zu records checked, %d failures\n",
		      n, checked, failures);
	free(rows);
	assert_int_equal(failures, 0);
	(void)state;
}

/* ---- real peers: curl and nghttp against an h2c server -------------- */

#define PY "/usr/bin/python3"
#define MOCK "tests/mock/mock_provider.py"
#define NPEER 9

static struct {
	char *dir;
	pid_t mock, relay;
} peers;

static int peers_teardown(void **state)
{
	h2p_stop(peers.relay);
	h2p_stop(peers.mock);
	if (peers.dir) {
		h2p_rmdir(peers.dir);
		free(peers.dir);
	}
	memset(&peers, 0, sizeof(peers));
	(void)state;
	return 0;
}

struct peer_req {
	const wire_row *row;
	char url[1400];
	char path[1300];   /* the record's path: no query */
	char body[720];    /* "@" and the file holding the request body */
};

/* "openai/x.chunks.jsonl" -> "openai/x": the mock's /fx/ name. */
static void fixture_stem(const char *file, char *out, size_t cap)
{
	static const char *const exts[] = { ".chunks.jsonl", ".eventstream",
					    ".ndjson", ".jsonl", ".json",
					    ".sse", NULL };
	size_t n = strlen(file);

	for (int i = 0; exts[i]; i++) {
		size_t e = strlen(exts[i]);
		if (n > e && strcmp(file + n - e, exts[i]) == 0) {
			n -= e;
			break;
		}
	}
	snprintf(out, cap, "%.*s", (int)n, file);
}

static int run_cmd(char **argv, const char *dir, const char *name)
{
	char log[700];

	snprintf(log, sizeof(log), "%s/%s.log", dir, name);
	pid_t pid = h2p_spawn(argv, log);
	assert_true(pid > 0);
	int rc = h2p_wait(pid, 30000);
	if (rc != 0) {
		size_t len;
		char *text = tbuf_read_file(log, &len);
		print_message("%s exited %d:\n%s\n", name, rc, text ? text : "");
		free(text);
	}
	return rc;
}

/*
 * curl: one request per connection.  curl 7.88 (Debian 12) fails a second
 * request on a reused prior-knowledge connection, also with -Z
 * ("Error in the HTTP2 framing layer", curl/curl#10634, fixed in 8.0);
 * nghttp covers many streams on one connection.
 */
static int run_curl(struct peer_req *rq, const char *name)
{
	char *argv[] = { "/usr/bin/curl", "-sS", "--http2-prior-knowledge",
			 "--compressed", "--max-time", "20", "-o", "/dev/null",
			 "-H", "content-type: application/json", "-H",
			 "authorization: Bearer " SECRET, "--data-binary",
			 rq->body, rq->url, NULL };

	return run_cmd(argv, peers.dir, name);
}

/* nghttp: all requests at once on one connection, one body for all. */
static int run_nghttp(struct peer_req *rq, int n)
{
	char *argv[32];
	int a = 0;

	assert_true(n < 20);
	argv[a++] = "/usr/bin/nghttp";
	argv[a++] = "-n";
	argv[a++] = "-t";
	argv[a++] = "20";
	argv[a++] = "-d";
	argv[a++] = rq[0].body + 1; /* without curl's '@' */
	argv[a++] = "-H";
	argv[a++] = "content-type: application/json";
	argv[a++] = "-H";
	argv[a++] = "authorization: Bearer " SECRET;
	for (int i = 0; i < n; i++)
		argv[a++] = rq[i].url;
	argv[a] = NULL;
	return run_cmd(argv, peers.dir, "nghttp");
}

/*
 * Real byte streams: curl (three connections, one request each, with
 * --compressed) and nghttp (six concurrent streams on one connection) talk
 * h2c with prior knowledge to the mock provider
 * (python-h2) through a relay that logs both directions; the captures go
 * through the decoder in every split, as client and as server.  Bodies are
 * corpus fixtures, so the expected figures are the manifest's.
 */
static void test_real_peers(void **state)
{
	static struct peer_req rq[NPEER];
	char ready[600], stem[300];
	wire_row *rows = NULL;
	size_t nrows, picked = 0;
	int mock_port = 0, relay_port = 0;

	if (!wire_dir() || access(MOCK, R_OK) != 0 || access(PY, X_OK) != 0 ||
	    access("/usr/bin/curl", X_OK) != 0 ||
	    access("/usr/bin/nghttp", X_OK) != 0) {
		print_message("skip: needs the corpus, " MOCK ", " PY
			      ", curl and nghttp\n");
		skip();
	}
	nrows = wire_load(&rows);
	/* Streams and plain bodies of several providers, usage reported. */
	for (size_t i = 0; i < nrows && picked < NPEER; i += 3) {
		const wire_row *w = &rows[i];
		const char *u = strstr(w->uri, "://");
		const char *path = u ? strchr(u + 3, '/') : NULL;
		if (w->status != 200 || !path ||
		    strcmp(w->usage_source, "provider") != 0 ||
		    w->provider_error)
			continue;
		rq[picked].row = w;
		snprintf(rq[picked].path, sizeof(rq[picked].path), "%s", path);
		picked++;
	}
	assert_int_equal(picked, NPEER);

	peers.dir = h2p_tempdir();
	assert_non_null(peers.dir);
	snprintf(ready, sizeof(ready), "%s/mock.json", peers.dir);
	char *margv[] = { PY, MOCK, "--plain", "--port", "0", "--ready-file",
			  ready, "--max-seconds", "60", "--pause-ms", "3",
			  NULL };
	char mlog[700];
	snprintf(mlog, sizeof(mlog), "%s/mock.log", peers.dir);
	peers.mock = h2p_spawn(margv, mlog);
	assert_true(peers.mock > 0);
	if (h2p_wait_file(ready, 15000) != 0)
		fail_msg("the mock provider did not start");
	size_t len;
	char *text = tbuf_read_file(ready, &len);
	cJSON *j = text ? cJSON_Parse(text) : NULL;
	free(text);
	cJSON *jp = cJSON_GetObjectItemCaseSensitive(j, "port");
	assert_true(cJSON_IsNumber(jp));
	mock_port = jp->valueint;
	cJSON_Delete(j);
	peers.relay = h2p_relay_start(PY, peers.dir, mock_port, &relay_port,
				      60);
	assert_true(peers.relay > 0);

	for (size_t i = 0; i < NPEER; i++) {
		char file[600];
		fixture_stem(rq[i].row->file, stem, sizeof(stem));
		snprintf(rq[i].url, sizeof(rq[i].url),
			 "http://127.0.0.1:%d/fx/%s%s", relay_port, stem,
			 rq[i].path);
		/* The record's path is the target without its query. */
		char target[1300];
		snprintf(target, sizeof(target), "/fx/%s%s", stem, rq[i].path);
		target[strcspn(target, "?#")] = '\0';
		snprintf(rq[i].path, sizeof(rq[i].path), "%s", target);
		snprintf(file, sizeof(file), "%s/req-%zu.json", peers.dir, i);
		FILE *f = fopen(file, "w");
		assert_non_null(f);
		fputs(rq[i].row->request_body, f);
		fclose(f);
		snprintf(rq[i].body, sizeof(rq[i].body), "@%s", file);
	}

	/* In this order, one capture each: conn-001 .. conn-004. */
	static const struct {
		size_t first, n;
	} conns[] = { { 0, 1 }, { 1, 1 }, { 2, 1 }, { 3, NPEER - 3 } };
	assert_int_equal(run_curl(&rq[0], "curl-1"), 0);
	assert_int_equal(h2p_wait_captures(peers.dir, 1, 10000), 0);
	assert_int_equal(run_curl(&rq[1], "curl-2"), 0);
	assert_int_equal(h2p_wait_captures(peers.dir, 2, 10000), 0);
	assert_int_equal(run_curl(&rq[2], "curl-3"), 0);
	assert_int_equal(h2p_wait_captures(peers.dir, 3, 10000), 0);
	assert_int_equal(run_nghttp(rq + 3, NPEER - 3), 0);
	assert_int_equal(h2p_wait_captures(peers.dir, 4, 10000), 0);

	size_t seen = 0;
	for (int c = 1; c <= 4; c++) {
		h2p_capture cap;
		struct result r;
		h2b b;

		assert_int_equal(h2p_capture_load(peers.dir, c, &cap), 0);
		assert_true(cap.n > 0);
		assert_true(cap.chunks[0].from_client);
		h2b_init(&b);
		for (size_t i = 0; i < cap.n; i++)
			h2b_raw_at(&b, cap.chunks[i].from_client,
				   cap.chunks[i].p, cap.chunks[i].n,
				   cap.chunks[i].at_us);
		run_modes(&b, NULL, 1, 1, &r);
		assert_int_equal(r.err, 0);
		assert_int_equal(r.n, conns[c - 1].n);
		assert_int_equal(r.llm, conns[c - 1].n);
		assert_no_secret(&r);
		for (size_t k = 0; k < conns[c - 1].n; k++) {
			const struct peer_req *q = &rq[conns[c - 1].first + k];
			const wire_row *w = q->row;
			const cJSON *rec = by_path(&r, q->path);
			char host[32];

			snprintf(host, sizeof(host), "127.0.0.1:%d", relay_port);
			assert_string_equal(rs(rec, "http"), "2");
			assert_string_equal(rs(rec, "method"), "POST");
			assert_string_equal(rs(rec, "host"), host);
			assert_int_equal(ri(rec, "status"), 200);
			assert_int_equal(ri(rec, "input_tokens"), w->input);
			assert_int_equal(ri(rec, "output_tokens"), w->output);
			assert_int_equal(ri(rec, "cache_read_tokens"),
					 w->cache_read);
			assert_int_equal(ri(rec, "cache_write_tokens"),
					 w->cache_write);
			assert_int_equal(ri(rec, "reasoning_tokens"),
					 w->reasoning);
			assert_string_equal(rs(rec, "usage_source"), "provider");
			assert_null_str(rec, "error");
			seen++;
		}
		result_free(&r);
		h2b_free(&b);
		h2p_capture_free(&cap);
	}
	assert_int_equal(seen, NPEER);
	free(rows);
	(void)state;
}

/*
 * tt_h2 on its own: the client direction must open with the exact
 * preface (decoder.c routes on a prefix of it), errors are sticky, and a
 * closed object takes no more bytes.
 */
static void test_h2_direct(void **state)
{
	static const char good[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	tt_decoder_config cfg;
	tt_h2 *h;

	tt_decoder_config_init(&cfg);
	h = tt_h2_new(&cfg, 0);
	assert_non_null(h);
	assert_int_equal(tt_h2_feed(h, 1, (const uint8_t *)good, 10, 1), 0);
	assert_int_equal(tt_h2_feed(h, 1, (const uint8_t *)"X", 1, 1),
			 TT_EPROTO);
	assert_int_equal(tt_h2_feed(h, 1, (const uint8_t *)good, 24, 1),
			 TT_EPROTO);
	assert_int_equal(tt_h2_feed(h, 0, (const uint8_t *)"", 0, 1),
			 TT_EPROTO);
	tt_h2_close(h, 2);
	tt_h2_free(h);

	h = tt_h2_new(&cfg, 1);
	assert_non_null(h);
	assert_int_equal(tt_h2_feed(h, 1, (const uint8_t *)good, 24, 1), 0);
	tt_h2_close(h, 2);
	tt_h2_close(h, 3); /* idempotent */
	assert_int_equal(tt_h2_feed(h, 0, (const uint8_t *)"\0", 1, 4),
			 TT_EINVAL);
	assert_int_equal(tt_h2_llm_exchanges(h), 0);
	tt_h2_free(h);
	tt_h2_free(NULL);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single_exchange),
		cmocka_unit_test(test_server_settings_first),
		cmocka_unit_test(test_content_length_ends_response),
		cmocka_unit_test(test_dynamic_table),
		cmocka_unit_test(test_padding_continuation),
		cmocka_unit_test(test_large_frames),
		cmocka_unit_test(test_interleaved_streams),
		cmocka_unit_test(test_rst_stream),
		cmocka_unit_test(test_rst_after_last_event),
		cmocka_unit_test(test_goaway),
		cmocka_unit_test(test_push_promise),
		cmocka_unit_test(test_interim_trailers_nobody),
		cmocka_unit_test(test_table_size_settings),
		cmocka_unit_test(test_table_size_before_ack),
		cmocka_unit_test(test_table_size_decrease_needs_update),
		cmocka_unit_test(test_gzip_body),
		cmocka_unit_test(test_connection_closed),
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_not_llm),
		cmocka_unit_test(test_protocol_errors),
		cmocka_unit_test(test_h2_direct),
		cmocka_unit_test(test_conformance),
		cmocka_unit_test_teardown(test_real_peers, peers_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
