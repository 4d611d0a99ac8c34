/*
 * test_dec_http1.c - HTTP/1.1 framing and exchange pairing in the decoder.
 *
 * Each transcript is fed whole, in random pieces (several seeds) and one
 * byte at a time; every mode must give the same records.  The bodies are
 * written here from the providers' API references, and the expected
 * figures are read off those bodies by eye, not computed by the decoder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "support/feed.h"
#include "support/tbuf.h"

static const char chat_req_body[] =
	"{\"model\":\"gpt-4o-mini\",\"max_tokens\":50,"
	"\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
	"{\"role\":\"user\",\"content\":\"Hi\"}]}";

static const char chat_resp_body[] =
	"{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"model\":\"gpt-4o-mini-2024-07-18\","
	"\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hello\"},"
	"\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":21,\"completion_tokens\":2,"
	"\"total_tokens\":23,\"prompt_tokens_details\":{\"cached_tokens\":0},"
	"\"completion_tokens_details\":{\"reasoning_tokens\":0}}}";

static void chat_request(tbuf *b, const char *extra_headers)
{
	tbuf_addf(b, "POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\n"
		     "Authorization: Bearer sk-SENTINEL\r\nContent-Type: application/json\r\n"
		     "%sContent-Length: %zu\r\n\r\n%s",
		  extra_headers ? extra_headers : "", strlen(chat_req_body), chat_req_body);
}

static void chat_response(tbuf *b)
{
	tbuf_addf(b, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
		     "Content-Length: %zu\r\n\r\n%s", strlen(chat_resp_body), chat_resp_body);
}

static void run_all(const feed_piece *p, size_t n, feed_result *out,
		    const tt_decoder_config *cfg_in)
{
	tt_decoder_config cfg;

	if (cfg_in)
		cfg = *cfg_in;
	else
		tt_decoder_config_init(&cfg);
	assert_int_equal(feed_run_all(&cfg, p, n, out), 0);
}

static void test_simple_exchange(void **state)
{
	(void)state;
	tbuf req = { 0 }, resp = { 0 };
	feed_result res;

	chat_request(&req, "X-Tokentap-Task: t-42\r\nX-Tokentap-Feature: greet\r\n");
	chat_response(&resp);
	feed_piece p[] = { { TT_DIR_SENT, req.p, req.n }, { TT_DIR_RECV, resp.p, resp.n } };
	run_all(p, 2, &res, NULL);
	assert_int_equal(res.n, 1);
	const tt_record *r = &res.rec[0];
	assert_string_equal(r->provider, "openai");
	assert_string_equal(r->api, "chat.completions");
	assert_string_equal(r->host, "api.openai.com");
	assert_string_equal(r->path, "/v1/chat/completions");
	assert_string_equal(r->http, "1.1");
	assert_string_equal(r->model, "gpt-4o-mini-2024-07-18");
	assert_string_equal(r->request_model, "gpt-4o-mini");
	assert_int_equal(r->max_tokens, 50);
	assert_int_equal(r->stream, 0);
	assert_int_equal(r->status, 200);
	assert_int_equal(r->input_tokens, 21);
	assert_int_equal(r->output_tokens, 2);
	assert_int_equal(r->cache_read_tokens, 0);
	assert_int_equal(r->reasoning_tokens, 0);
	assert_int_equal(r->cache_write_tokens, TT_NULL);
	assert_string_equal(r->usage_source, "provider");
	assert_string_equal(r->task, "t-42");
	assert_string_equal(r->feature, "greet");
	assert_string_equal(r->tenant, "");
	assert_string_equal(r->side, "client");
	assert_string_equal(r->error, "");
	assert_int_equal(r->request_bytes, (int64_t)strlen(chat_req_body));
	assert_int_equal(r->response_bytes, (int64_t)strlen(chat_resp_body));
	assert_int_equal(strlen(r->prompt_hash), 32);
	assert_int_equal(strlen(r->prefix_hash), 32);
	assert_int_equal(strlen(r->id), 32);

	char json[TT_RECORD_JSON_MAX];
	assert_true(tt_record_to_json(r, json, sizeof(json)) > 0);
	assert_null(strstr(json, "SENTINEL"));
	assert_null(strstr(json, "Be brief"));
	assert_non_null(strstr(json, "\"cache_write_tokens\":null"));
	tbuf_free(&req);
	tbuf_free(&resp);
}

/* A GET before the call and pipelined calls on one connection. */
static void test_keepalive_and_pipelining(void **state)
{
	(void)state;
	tbuf sent = { 0 }, recv = { 0 };
	feed_result res;

	tbuf_adds(&sent, "GET /v1/models HTTP/1.1\r\nHost: api.openai.com\r\n\r\n");
	chat_request(&sent, NULL);
	chat_request(&sent, "X-Tokentap-Task: second\r\n");
	tbuf_adds(&recv, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
			 "Transfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n2\r\n1}\r\n0\r\n\r\n");
	chat_response(&recv);
	chat_response(&recv);
	feed_piece p[] = { { TT_DIR_SENT, sent.p, sent.n }, { TT_DIR_RECV, recv.p, recv.n } };
	run_all(p, 2, &res, NULL);
	assert_int_equal(res.n, 2);
	assert_string_equal(res.rec[0].task, "");
	assert_string_equal(res.rec[1].task, "second");
	assert_int_equal(res.rec[1].output_tokens, 2);
	tbuf_free(&sent);
	tbuf_free(&recv);
}

/* Expect: 100-continue, an interim 100, then the body and the answer. */
static void test_expect_continue(void **state)
{
	(void)state;
	tbuf head = { 0 }, interim = { 0 }, body = { 0 }, resp = { 0 };
	feed_result res;

	tbuf_addf(&head, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
			 "Expect: 100-continue\r\nContent-Length: %zu\r\n\r\n",
		  strlen(chat_req_body));
	tbuf_adds(&interim, "HTTP/1.1 100 Continue\r\n\r\n");
	tbuf_adds(&body, chat_req_body);
	chat_response(&resp);
	feed_piece p[] = {
		{ TT_DIR_SENT, head.p, head.n }, { TT_DIR_RECV, interim.p, interim.n },
		{ TT_DIR_SENT, body.p, body.n }, { TT_DIR_RECV, resp.p, resp.n },
	};
	run_all(p, 4, &res, NULL);
	assert_int_equal(res.n, 1);
	assert_int_equal(res.rec[0].status, 200);
	assert_int_equal(res.rec[0].input_tokens, 21);
	assert_string_equal(res.rec[0].provider, "openai_compatible");
	tbuf_free(&head);
	tbuf_free(&interim);
	tbuf_free(&body);
	tbuf_free(&resp);
}

/* HEAD, 204 and 304 have no body whatever their headers say. */
static void test_bodiless_responses(void **state)
{
	(void)state;
	tbuf sent = { 0 }, recv = { 0 };
	feed_result res;

	tbuf_adds(&sent, "HEAD /v1/chat/completions HTTP/1.1\r\nHost: x\r\n\r\n"
			 "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n");
	chat_request(&sent, NULL);
	tbuf_adds(&recv, "HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n"
			 "HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n"
			 "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n");
	chat_response(&recv);
	feed_piece p[] = { { TT_DIR_SENT, sent.p, sent.n }, { TT_DIR_RECV, recv.p, recv.n } };
	run_all(p, 2, &res, NULL);
	assert_int_equal(res.n, 1);
	assert_int_equal(res.rec[0].output_tokens, 2);
	tbuf_free(&sent);
	tbuf_free(&recv);
}

/* A streamed response cut by the connection: what it carried is kept. */
static void test_stream_closed_midway(void **state)
{
	(void)state;
	tbuf sent = { 0 }, recv = { 0 };
	feed_result res;
	static const char body[] =
		"{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"abcdefgh\"}]}";

	tbuf_addf(&sent, "POST /openai/v1/chat/completions HTTP/1.1\r\nHost: api.groq.com\r\n"
			 "Content-Length: %zu\r\n\r\n%s", strlen(body), body);
	static const char event[] = "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n";
	tbuf_addf(&recv, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
			 "Transfer-Encoding: chunked\r\n\r\n%zx\r\n%s\r\n",
		  strlen(event), event);
	feed_piece p[] = { { TT_DIR_SENT, sent.p, sent.n }, { TT_DIR_RECV, recv.p, recv.n } };
	run_all(p, 2, &res, NULL);
	assert_int_equal(res.n, 1);
	assert_string_equal(res.rec[0].provider, "groq");
	assert_string_equal(res.rec[0].error, "connection_closed");
	assert_string_equal(res.rec[0].usage_source, "estimated");
	assert_int_equal(res.rec[0].output_tokens, 1); /* "Hi": 2 bytes / 4 */
	/* Every string of the prompt counts: "user" + "abcdefgh", 12 / 4. */
	assert_int_equal(res.rec[0].input_tokens, 3);
	assert_int_equal(res.rec[0].stream, 1);
	tbuf_free(&sent);
	tbuf_free(&recv);
}

/* A close-delimited body ends cleanly with the connection. */
static void test_close_delimited(void **state)
{
	(void)state;
	tbuf sent = { 0 }, recv = { 0 };
	feed_result res;

	chat_request(&sent, NULL);
	tbuf_addf(&recv, "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n%s",
		  chat_resp_body);
	feed_piece p[] = { { TT_DIR_SENT, sent.p, sent.n }, { TT_DIR_RECV, recv.p, recv.n } };
	run_all(p, 2, &res, NULL);
	assert_int_equal(res.n, 1);
	assert_string_equal(res.rec[0].error, "");
	assert_int_equal(res.rec[0].input_tokens, 21);
	tbuf_free(&sent);
	tbuf_free(&recv);
}

/* The server end of a connection: requests arrive, responses leave. */
static void test_server_side(void **state)
{
	(void)state;
	tbuf req = { 0 }, resp = { 0 };
	feed_result res;

	chat_request(&req, NULL);
	chat_response(&resp);
	feed_piece p[] = { { TT_DIR_RECV, req.p, req.n }, { TT_DIR_SENT, resp.p, resp.n } };
	run_all(p, 2, &res, NULL);
	assert_int_equal(res.n, 1);
	assert_string_equal(res.rec[0].side, "server");
	assert_int_equal(res.rec[0].output_tokens, 2);
	tbuf_free(&req);
	tbuf_free(&resp);
}

/* Not HTTP, and HTTP that is not an LLM call: no record, and idle. */
static void test_not_llm(void **state)
{
	(void)state;
	feed_result res;
	tt_decoder_config cfg;
	static const char smtp[] = "EHLO example.org\r\n";
	static const char tls[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";

	feed_piece p1[] = { { TT_DIR_SENT, smtp, sizeof(smtp) - 1 } };
	run_all(p1, 1, &res, NULL);
	assert_int_equal(res.n, 0);
	feed_piece p2[] = { { TT_DIR_SENT, tls, sizeof(tls) - 1 } };
	run_all(p2, 1, &res, NULL);
	assert_int_equal(res.n, 0);

	/* Known from the first bytes: the decoder goes idle at once. */
	tt_decoder_config_init(&cfg);
	tt_decoder *d = tt_decoder_new(&cfg);
	assert_int_equal(tt_decoder_feed(d, TT_DIR_SENT, smtp, 4, 1), 0);
	assert_int_equal(tt_decoder_kind(d), TT_CONN_OTHER);
	assert_true(tt_decoder_is_idle(d));
	tt_decoder_free(d);

	/* A server speaking first with something like a SETTINGS frame is
	 * held until the client shows it is not HTTP/2. */
	static const char settings[] = "\0\0\x06\x04\0\0\0\0\0\0\x03\0\0\0\x64";
	d = tt_decoder_new(&cfg);
	assert_int_equal(tt_decoder_feed(d, TT_DIR_RECV, settings, sizeof(settings) - 1, 1), 0);
	assert_int_equal(tt_decoder_kind(d), TT_CONN_UNKNOWN);
	assert_int_equal(tt_decoder_feed(d, TT_DIR_SENT, smtp, 4, 2), 0);
	assert_int_equal(tt_decoder_kind(d), TT_CONN_OTHER);
	tt_decoder_free(d);

	/* A POST to an LLM path whose body is not JSON is not a call. */
	tbuf sent = { 0 }, recv = { 0 };
	tbuf_adds(&sent, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
			 "Content-Length: 5\r\n\r\nhello");
	chat_response(&recv);
	feed_piece p3[] = { { TT_DIR_SENT, sent.p, sent.n }, { TT_DIR_RECV, recv.p, recv.n } };
	run_all(p3, 2, &res, NULL);
	assert_int_equal(res.n, 0);
	tbuf_free(&sent);
	tbuf_free(&recv);
}

/* A 101 upgrade ends HTTP/1.1 on the connection. */
static void test_upgrade(void **state)
{
	(void)state;
	feed_result res;
	tbuf sent = { 0 }, recv = { 0 };

	tbuf ws = { 0 };
	tbuf_adds(&sent, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n");
	tbuf_adds(&recv, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
			 "\x81\x05hello");
	chat_request(&ws, NULL); /* now websocket payload, not a request */
	chat_response(&recv);
	feed_piece p[] = { { TT_DIR_SENT, sent.p, sent.n }, { TT_DIR_RECV, recv.p, recv.n },
			   { TT_DIR_SENT, ws.p, ws.n } };
	run_all(p, 3, &res, NULL);
	tbuf_free(&ws);
	assert_int_equal(res.n, 0);
	tbuf_free(&sent);
	tbuf_free(&recv);
}

/*
 * Caps: a request body over its cap still gives a record, marked
 * truncated; a stream far longer than the response cap keeps its final
 * usage, because events are decoded one at a time.
 */
static void test_caps(void **state)
{
	(void)state;
	tt_decoder_config cfg;
	feed_result res;
	tbuf sent = { 0 }, recv = { 0 }, body = { 0 };

	tt_decoder_config_init(&cfg);
	cfg.max_request_body = 1024;
	cfg.max_response_body = 2048;
	cfg.max_event_bytes = 512;

	tbuf_adds(&body, "{\"model\":\"claude-x\",\"stream\":true,\"max_tokens\":9,"
			 "\"messages\":[{\"role\":\"user\",\"content\":\"");
	for (int i = 0; i < 5000; i++)
		tbuf_adds(&body, "word ");
	tbuf_adds(&body, "\"}]}");
	tbuf_addf(&sent, "POST /v1/messages HTTP/1.1\r\nHost: api.anthropic.com\r\n"
			 "Content-Length: %zu\r\n\r\n", body.n);
	tbuf_add(&sent, body.p, body.n);

	tbuf_adds(&recv, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
			 "Transfer-Encoding: chunked\r\n\r\n");
	tbuf events = { 0 };
	tbuf_adds(&events, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":"
			   "{\"model\":\"claude-x-1\",\"usage\":{\"input_tokens\":7000,"
			   "\"cache_read_input_tokens\":100,\"output_tokens\":1}}}\n\n");
	for (int i = 0; i < 400; i++)
		tbuf_adds(&events, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
				   "\"delta\":{\"type\":\"text_delta\",\"text\":\"abcd\"}}\n\n");
	tbuf_adds(&events, "event: message_delta\ndata: {\"type\":\"message_delta\","
			   "\"usage\":{\"output_tokens\":400}}\n\n"
			   "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
	tbuf_addf(&recv, "%zx\r\n", events.n);
	tbuf_add(&recv, events.p, events.n);
	tbuf_adds(&recv, "\r\n0\r\n\r\n");
	feed_piece p[] = { { TT_DIR_SENT, sent.p, sent.n }, { TT_DIR_RECV, recv.p, recv.n } };
	run_all(p, 2, &res, &cfg);
	assert_int_equal(res.n, 1);
	const tt_record *r = &res.rec[0];
	assert_string_equal(r->error, "truncated");
	assert_int_equal(r->input_tokens, 7100);
	assert_int_equal(r->output_tokens, 400);
	assert_int_equal(r->cache_read_tokens, 100);
	assert_int_equal(r->request_bytes, (int64_t)body.n);
	assert_string_equal(r->model, "claude-x-1");
	assert_true(r->response_bytes > 2048);
	tbuf_free(&sent);
	tbuf_free(&recv);
	tbuf_free(&body);
	tbuf_free(&events);
}

/* A JSON body over its cap: the usage at its end is still found. */
static void test_huge_json_body(void **state)
{
	(void)state;
	tt_decoder_config cfg;
	feed_result res;
	tbuf sent = { 0 }, recv = { 0 }, body = { 0 };
	static const char req[] = "{\"model\":\"text-embedding-3-small\",\"input\":\"hello\"}";

	tt_decoder_config_init(&cfg);
	cfg.max_response_body = 4096;
	tbuf_addf(&sent, "POST /v1/embeddings HTTP/1.1\r\nHost: api.openai.com\r\n"
			 "Content-Length: %zu\r\n\r\n%s", strlen(req), req);
	tbuf_adds(&body, "{\"object\":\"list\",\"model\":\"text-embedding-3-small\",\"data\":"
			 "[{\"object\":\"embedding\",\"index\":0,\"embedding\":[");
	for (int i = 0; i < 20000; i++)
		tbuf_adds(&body, i ? ",0.0123" : "0.0123");
	tbuf_adds(&body, "]}],\"usage\":{\"prompt_tokens\":1,\"total_tokens\":1}}");
	tbuf_addf(&recv, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
			 "Content-Length: %zu\r\n\r\n", body.n);
	tbuf_add(&recv, body.p, body.n);
	feed_piece p[] = { { TT_DIR_SENT, sent.p, sent.n }, { TT_DIR_RECV, recv.p, recv.n } };
	run_all(p, 2, &res, &cfg);
	assert_int_equal(res.n, 1);
	assert_string_equal(res.rec[0].error, "truncated");
	assert_string_equal(res.rec[0].usage_source, "provider");
	assert_int_equal(res.rec[0].input_tokens, 1);
	assert_int_equal(res.rec[0].output_tokens, TT_NULL);
	assert_string_equal(res.rec[0].model, "text-embedding-3-small");
	tbuf_free(&sent);
	tbuf_free(&recv);
	tbuf_free(&body);
}

/* An early answer (413) before the request body was sent in full. */
static void test_early_response(void **state)
{
	(void)state;
	feed_result res;
	tbuf head = { 0 }, rest = { 0 }, resp = { 0 };
	static const char err[] = "{\"error\":{\"message\":\"too large\"}}";

	tbuf_addf(&head, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
			 "Content-Length: %zu\r\n\r\n{\"model\":\"m\",", strlen(chat_req_body));
	tbuf_add(&rest, chat_req_body + 12, strlen(chat_req_body) - 12);
	tbuf_addf(&resp, "HTTP/1.1 413 Too Large\r\nContent-Type: application/json\r\n"
			 "Content-Length: %zu\r\n\r\n%s", strlen(err), err);
	feed_piece p[] = { { TT_DIR_SENT, head.p, head.n },
			   { TT_DIR_RECV, resp.p, resp.n },
			   { TT_DIR_SENT, rest.p, rest.n } };
	run_all(p, 3, &res, NULL);
	assert_int_equal(res.n, 1);
	assert_int_equal(res.rec[0].status, 413);
	assert_string_equal(res.rec[0].usage_source, "none");
	assert_int_equal(res.rec[0].input_tokens, TT_NULL);
	tbuf_free(&head);
	tbuf_free(&rest);
	tbuf_free(&resp);
}

/* A chunked, gzip-compressed request body (some SDKs compress). */
static void test_compressed_chunked_request(void **state)
{
	(void)state;
	feed_result res;
	tbuf gz = { 0 }, sent = { 0 }, recv = { 0 };

	tbuf_gzip(&gz, chat_req_body, strlen(chat_req_body));
	tbuf_adds(&sent, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
			 "Content-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n");
	size_t half = gz.n / 2;
	tbuf_addf(&sent, "%zx\r\n", half);
	tbuf_add(&sent, gz.p, half);
	tbuf_addf(&sent, "\r\n%zx\r\n", gz.n - half);
	tbuf_add(&sent, gz.p + half, gz.n - half);
	tbuf_adds(&sent, "\r\n0\r\n\r\n");
	chat_response(&recv);
	feed_piece p[] = { { TT_DIR_SENT, sent.p, sent.n }, { TT_DIR_RECV, recv.p, recv.n } };
	run_all(p, 2, &res, NULL);
	assert_int_equal(res.n, 1);
	assert_string_equal(res.rec[0].request_model, "gpt-4o-mini");
	assert_int_equal(res.rec[0].max_tokens, 50);
	assert_int_equal(res.rec[0].request_bytes, (int64_t)gz.n);
	tbuf_free(&gz);
	tbuf_free(&sent);
	tbuf_free(&recv);
}

/*
 * A head over max_header_bytes is refused the same way whether it came in
 * one piece or in many (found by fuzz_dec_conn: whole feeds used to take
 * it, byte-by-byte feeds refused it).
 */
static void test_head_cap_any_split(void **state)
{
	(void)state;
	tt_decoder_config cfg;
	feed_result res;
	tbuf req = { 0 }, resp = { 0 };

	tt_decoder_config_init(&cfg);
	cfg.max_header_bytes = 64;
	chat_request(&req, NULL);
	chat_response(&resp);
	feed_piece p[] = { { TT_DIR_SENT, req.p, req.n }, { TT_DIR_RECV, resp.p, resp.n } };
	assert_int_equal(feed_run_all(&cfg, p, 2, &res), 0);
	assert_int_equal(res.n, 0);
	assert_int_equal(res.rc, TT_EPROTO);
	tbuf_free(&req);
	tbuf_free(&resp);
}

/* on_request: called once per LLM request, before any of its response. */
static int requests_seen;
static tt_record last_request;

static void on_request(const tt_record *rec, void *user)
{
	(void)user;
	requests_seen++;
	last_request = *rec;
}

static void count_record(const tt_record *rec, void *user)
{
	(void)rec;
	(*(int *)user)++;
}

static void test_on_request(void **state)
{
	(void)state;
	tt_decoder_config cfg;
	tbuf req = { 0 }, resp = { 0 };
	int records = 0;

	chat_request(&req, "X-Tokentap-Task: t-9\r\n");
	chat_response(&resp);
	tt_decoder_config_init(&cfg);
	cfg.on_record = count_record;
	cfg.on_request = on_request;
	cfg.user = &records;
	requests_seen = 0;
	tt_decoder *d = tt_decoder_new(&cfg);
	/* The request in two writes: nothing until it is whole. */
	assert_int_equal(tt_decoder_feed(d, TT_DIR_SENT, req.p, req.n - 5, 1), 0);
	assert_int_equal(requests_seen, 0);
	assert_int_equal(tt_decoder_feed(d, TT_DIR_SENT, req.p + req.n - 5, 5, 2), 0);
	assert_int_equal(requests_seen, 1);
	assert_int_equal(records, 0);
	assert_string_equal(last_request.task, "t-9");
	assert_string_equal(last_request.request_model, "gpt-4o-mini");
	assert_int_equal(last_request.max_tokens, 50);
	assert_int_equal(last_request.request_bytes, (int64_t)strlen(chat_req_body));
	assert_int_equal(last_request.input_tokens, TT_NULL);
	/* A non-LLM request is not announced. */
	static const char get[] = "GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n";
	assert_int_equal(tt_decoder_feed(d, TT_DIR_RECV, resp.p, resp.n, 3), 0);
	assert_int_equal(records, 1);
	assert_int_equal(tt_decoder_feed(d, TT_DIR_SENT, get, sizeof(get) - 1, 4), 0);
	assert_int_equal(requests_seen, 1);
	tt_decoder_close(d, 5);
	tt_decoder_free(d);
	tbuf_free(&req);
	tbuf_free(&resp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple_exchange),
		cmocka_unit_test(test_keepalive_and_pipelining),
		cmocka_unit_test(test_expect_continue),
		cmocka_unit_test(test_bodiless_responses),
		cmocka_unit_test(test_stream_closed_midway),
		cmocka_unit_test(test_close_delimited),
		cmocka_unit_test(test_server_side),
		cmocka_unit_test(test_not_llm),
		cmocka_unit_test(test_upgrade),
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_huge_json_body),
		cmocka_unit_test(test_early_response),
		cmocka_unit_test(test_compressed_chunked_request),
		cmocka_unit_test(test_on_request),
		cmocka_unit_test(test_head_cap_any_split),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
