/*
 * test_dec_peek.c - the request peek (decoder/peek.c, tt_peek_request):
 * one client's HTTP/1.1 request read at once, as enforce mode holds it.
 *
 * Every case is fed whole and cut at every length, each cut from a heap
 * copy of exactly that many bytes, so that ASan catches a read past len:
 * before the head's empty line the answer is "more", from there to the
 * end of the Content-Length body "head" with the head's fields, then
 * "whole" with the body's model and output ceiling.  Malformed heads are
 * "more" until the bytes show it, then an error for every longer cut.
 * The body scan is checked against tt_request_parse() (the decoder's
 * full parse) on generated JSON, and tt_peek_record() against the
 * decoder's own on_request record of the same bytes.  The expected
 * values are read off the requests by eye.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include <cmocka.h>

#include "../decoder/request.h"
#include "support/split.h"
#include "support/tbuf.h"
#include "tokentap/decoder.h"
#include "tokentap/error.h"

/* What a case's request says, written by hand. */
struct want {
	const char *method, *path, *host, *task, *tenant, *feature;
	int64_t content_length;  /* -1: none */
	int chunked, llm;
	const char *provider, *api;
	const char *model;       /* at TT_PEEK_WHOLE, llm only */
	int64_t max_tokens;
	size_t body_len;         /* the Content-Length body */
};

static int peek_copy(tt_peek *pk, const char *p, size_t n)
{
	char *c = malloc(n);  /* even 0: nothing may be read */
	int rc;

	assert_true(c || !n);
	if (n)
		memcpy(c, p, n);
	rc = tt_peek_request(pk, c, n);
	/* Borrowed pointers point into the copy. */
	if (pk->target)
		assert_true(pk->target >= c && pk->target + pk->target_len <= c + n);
	if (pk->body)
		assert_true(pk->body >= c && pk->body + pk->body_len <= c + n);
	free(c);
	return rc;
}

static void check_head(const tt_peek *pk, const struct want *w, size_t head_len)
{
	assert_int_equal(pk->head_len, head_len);
	assert_string_equal(pk->method, w->method);
	assert_int_equal(pk->path_len, strlen(w->path));
	assert_string_equal(pk->host, w->host ? w->host : "");
	assert_string_equal(pk->task, w->task ? w->task : "");
	assert_string_equal(pk->tenant, w->tenant ? w->tenant : "");
	assert_string_equal(pk->feature, w->feature ? w->feature : "");
	assert_int_equal(pk->content_length, w->content_length);
	assert_int_equal(pk->chunked, w->chunked);
	assert_int_equal(pk->total, w->chunked ? 0 : head_len + w->body_len);
	assert_int_equal(pk->llm, w->llm);
	if (w->llm) {
		assert_string_equal(pk->provider, w->provider);
		assert_string_equal(pk->api, w->api);
	} else {
		assert_null(pk->provider);
	}
}

/* req (len bytes) at every cut; head_len by hand, extra bytes past the
 * request (pipelined) allowed. */
static void every_cut(const char *req, size_t len, size_t head_len, const struct want *w)
{
	size_t total = head_len + w->body_len;

	for (size_t cut = 0; cut <= len; cut++) {
		tt_peek pk;
		int rc = peek_copy(&pk, req, cut);

		if (cut < head_len) {
			assert_int_equal(rc, TT_PEEK_MORE);
			assert_int_equal(pk.head_len, 0);
			continue;
		}
		check_head(&pk, w, head_len);
		if (w->chunked || cut < total) {
			assert_int_equal(rc, TT_PEEK_HEAD);
			assert_null(pk.body);
			assert_string_equal(pk.model, "");
			assert_int_equal(pk.max_tokens, TT_NULL);
			continue;
		}
		assert_int_equal(rc, TT_PEEK_WHOLE);
		assert_int_equal(pk.body_len, w->body_len);
		assert_string_equal(pk.model, w->llm ? w->model : "");
		assert_int_equal(pk.max_tokens, w->llm ? w->max_tokens : TT_NULL);
	}
}

static size_t head_len_of(const char *req)
{
	const char *e = strstr(req, "\r\n\r\n");

	assert_non_null(e);
	return (size_t)(e - req) + 4;
}

/* A POST with a JSON body and Content-Length. */
static void post(tbuf *b, const char *path, const char *host, const char *extra,
		 const char *body)
{
	tbuf_addf(b, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
		     "%sContent-Length: %zu\r\n\r\n%s", path, host, extra, strlen(body), body);
}

static void run_post(const char *path, const char *host, const char *extra, const char *body,
		     struct want w)
{
	tbuf b = {0};

	post(&b, path, host, extra, body);
	w.method = "POST";
	w.host = host;
	w.content_length = (int64_t)strlen(body);
	w.body_len = strlen(body);
	every_cut(b.p, b.n, head_len_of(b.p), &w);
	tbuf_free(&b);
}

static void test_providers(void **state)
{
	(void)state;
	run_post("/v1/chat/completions", "api.openai.com",
		 "X-Tokentap-Task: nightly\r\nx-tokentap-tenant:  acme \r\n"
		 "X-TOKENTAP-FEATURE:\tsum\r\n",
		 "{\"model\":\"gpt-4o-mini\",\"max_tokens\":77,\"messages\":[{\"role\":\"user\","
		 "\"content\":\"hello\"}]}",
		 (struct want){.path = "/v1/chat/completions", .task = "nightly", .tenant = "acme",
			       .feature = "sum", .llm = 1, .provider = "openai",
			       .api = "chat.completions", .model = "gpt-4o-mini", .max_tokens = 77});
	/* The SDK's order: messages first, the ceiling last. */
	run_post("/v1/chat/completions", "api.deepseek.com", "",
		 "{\"messages\":[{\"role\":\"system\",\"content\":\"say \\\"model\\\": no\"}],"
		 "\"model\":\"deepseek-chat\",\"max_completion_tokens\":1e3}",
		 (struct want){.path = "/v1/chat/completions", .llm = 1, .provider = "deepseek",
			       .api = "chat.completions", .model = "deepseek-chat",
			       .max_tokens = 1000});
	run_post("/v1/messages", "api.anthropic.com", "anthropic-version: 2023-06-01\r\n",
		 "{ \"model\" : \"claude-sonnet-4-5\" ,\n \"max_tokens\" :\t1024, \"system\":\"x\"}",
		 (struct want){.path = "/v1/messages", .llm = 1, .provider = "anthropic",
			       .api = "messages", .model = "claude-sonnet-4-5", .max_tokens = 1024});
	run_post("/v1/responses", "api.openai.com", "",
		 "{\"model\":\"gpt-5\",\"input\":\"hi\",\"max_output_tokens\":300.7}",
		 (struct want){.path = "/v1/responses", .llm = 1, .provider = "openai",
			       .api = "responses", .model = "gpt-5", .max_tokens = 300});
	/* The model in the path, the ceiling one level down. */
	run_post("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
		 "generativelanguage.googleapis.com", "",
		 "{\"contents\":[{\"parts\":[{\"text\":\"hi\"}]}],\"generationConfig\":"
		 "{\"temperature\":0.2,\"maxOutputTokens\":256}}",
		 (struct want){.path = "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
			       .llm = 1, .provider = "gemini", .api = "generate_content",
			       .model = "gemini-2.5-flash", .max_tokens = 256});
	run_post("/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse",
		 "bedrock-runtime.us-east-1.amazonaws.com", "",
		 "{\"messages\":[],\"inferenceConfig\":{\"maxTokens\":512}}",
		 (struct want){.path = "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse",
			       .llm = 1, .provider = "bedrock", .api = "converse",
			       .model = "anthropic.claude-3-haiku-20240307-v1:0", .max_tokens = 512});
	run_post("/api/chat", "localhost:11434", "",
		 "{\"model\":\"llama3.2\",\"options\":{\"num_predict\":64},\"stream\":false}",
		 (struct want){.path = "/api/chat", .llm = 1, .provider = "ollama",
			       .api = "ollama.chat", .model = "llama3.2", .max_tokens = 64});
	run_post("/openai/deployments/my-gpt4/chat/completions?api-version=2024-06-01",
		 "x.openai.azure.com", "", "{\"messages\":[]}",
		 (struct want){.path = "/openai/deployments/my-gpt4/chat/completions", .llm = 1,
			       .provider = "azure_openai", .api = "chat.completions",
			       .model = "my-gpt4", .max_tokens = TT_NULL});
}

/* Which "model" and which ceiling: top-level members only, the first of
 * each name, the list's order, one level down only inside the parents. */
static void test_body_members(void **state)
{
	static const struct { const char *body, *model; int64_t max; } c[] = {
		/* nested look-alikes before the top-level ones */
		{"{\"tools\":[{\"model\":\"evil\",\"max_tokens\":1}],\"metadata\":{\"model\":"
		 "\"x\",\"max_tokens\":2},\"model\":\"good\",\"num_predict\":9}", "good", 9},
		/* the list's order, not the body's */
		{"{\"num_predict\":5,\"max_completion_tokens\":6,\"model\":\"m\"}", "m", 6},
		{"{\"generationConfig\":{\"maxOutputTokens\":7},\"max_output_tokens\":8}", "", 8},
		/* parents in list order; inside one, the list's order */
		{"{\"options\":{\"maxTokens\":3,\"num_predict\":4},\"generationConfig\":"
		 "{\"maxOutputTokens\":5}}", "", 5},
		{"{\"options\":{\"maxTokens\":3,\"num_predict\":4}}", "", 4},
		/* maxTokens counts one level down only */
		{"{\"maxTokens\":3,\"model\":\"m\"}", "m", TT_NULL},
		/* the first member of a name counts, even when it is no number */
		{"{\"max_tokens\":\"12\",\"max_tokens\":13,\"num_predict\":14}", "", 14},
		{"{\"model\":7,\"model\":\"second\"}", "", TT_NULL},
		{"{\"generationConfig\":3,\"generationConfig\":{\"maxOutputTokens\":1}}", "", TT_NULL},
		/* numbers: negative, too large, fractions, exponents */
		{"{\"max_tokens\":-1,\"num_predict\":0}", "", 0},
		{"{\"max_tokens\":-0}", "", 0},
		{"{\"max_tokens\":1000000000000}", "", 1000000000000},
		{"{\"max_tokens\":1000000000000.5}", "", TT_NULL},
		{"{\"max_tokens\":2e12,\"num_predict\":25E-1}", "", 2},
		{"{\"max_tokens\":12345678901234567890123}", "", TT_NULL},
		{"{\"max_tokens\":1e-999999}", "", 0},
		{"{\"max_tokens\":true,\"max_completion_tokens\":null}", "", TT_NULL},
		/* escapes: quotes inside strings are no keys; an escaped name is
		 * not decoded (counts as absent) */
		{"{\"messages\":\"\\\"model\\\":\\\"no\\\",\\\"max_tokens\\\":1\\\\\",\"model\":"
		 "\"yes\"}", "yes", TT_NULL},
		{"{\"model\":\"a\\/b\"}", "", TT_NULL},
		/* not JSON, or not an object */
		{"[\"model\",\"max_tokens\",1]", "", TT_NULL},
		{"model=x&max_tokens=3", "", TT_NULL},
		{"{\"model\":\"m\",\"max_tokens\":", "m", TT_NULL},
		{"{\"model\" \"m\"}", "", TT_NULL},
		{"", "", TT_NULL},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		run_post("/v1/chat/completions", "api.openai.com", "", c[i].body,
			 (struct want){.path = "/v1/chat/completions", .llm = 1,
				       .provider = "openai", .api = "chat.completions",
				       .model = c[i].model, .max_tokens = c[i].max});
}

static void test_not_llm(void **state)
{
	static const char get[] = "GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n";
	static const char upload[] = "POST /upload HTTP/1.0\r\nHost: example.com\r\n"
				     "Content-Length: 5\r\n\r\nhello";

	(void)state;
	every_cut(get, sizeof(get) - 1, sizeof(get) - 1,
		  &(struct want){.method = "GET", .path = "/index.html", .host = "example.com",
				 .content_length = -1});
	every_cut(upload, sizeof(upload) - 1, sizeof(upload) - 6,
		  &(struct want){.method = "POST", .path = "/upload", .host = "example.com",
				 .content_length = 5, .body_len = 5});
	/* GET to an LLM path is not a call */
	every_cut("GET /v1/chat/completions HTTP/1.1\r\n\r\n", 37, 37,
		  &(struct want){.method = "GET", .path = "/v1/chat/completions",
				 .content_length = -1});
}

static void test_framing(void **state)
{
	static const char chunked[] = "POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\n"
				      "Transfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n0\r\n\r\n";
	static const char bare_lf[] = "POST /v1/messages HTTP/1.1\nHost: h\nContent-Length: 14\n\n"
				      "{\"model\":\"c3\"}";
	static const char mixed[] = "POST /v1/messages HTTP/1.1\r\nHost: h\n\r\n";
	static const char two_cl[] = "POST /v1/messages HTTP/1.1\r\nContent-Length: 2\r\n"
				     "Content-Length: 2\r\n\r\n{}";
	tbuf b = {0};
	size_t hl;

	(void)state;
	/* Transfer-Encoding frames the body: "head" however much follows. */
	every_cut(chunked, sizeof(chunked) - 1, (size_t)(strstr(chunked, "5\r\n") - chunked),
		  &(struct want){.method = "POST", .path = "/v1/chat/completions",
				 .host = "api.openai.com", .content_length = -1, .chunked = 1,
				 .llm = 1, .provider = "openai", .api = "chat.completions"});
	every_cut(bare_lf, sizeof(bare_lf) - 1, sizeof(bare_lf) - 15,
		  &(struct want){.method = "POST", .path = "/v1/messages", .host = "h",
				 .content_length = 14, .llm = 1, .provider = "anthropic",
				 .api = "messages", .model = "c3", .max_tokens = TT_NULL,
				 .body_len = 14});
	every_cut(mixed, sizeof(mixed) - 1, sizeof(mixed) - 1,
		  &(struct want){.method = "POST", .path = "/v1/messages", .host = "h",
				 .content_length = -1, .llm = 1, .provider = "anthropic",
				 .api = "messages", .model = "", .max_tokens = TT_NULL});
	every_cut(two_cl, sizeof(two_cl) - 1, sizeof(two_cl) - 3,
		  &(struct want){.method = "POST", .path = "/v1/messages", .content_length = 2,
				 .llm = 1, .provider = "anthropic", .api = "messages", .model = "",
				 .max_tokens = TT_NULL, .body_len = 2});
	/* Pipelined: the second request is not looked at. */
	post(&b, "/v1/chat/completions", "api.openai.com", "", "{\"max_tokens\":1}");
	hl = head_len_of(b.p);
	tbuf_adds(&b, "POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 17\r\n\r\n"
		      "{\"max_tokens\":22}");
	every_cut(b.p, b.n, hl,
		  &(struct want){.method = "POST", .path = "/v1/chat/completions",
				 .host = "api.openai.com", .content_length = 16, .llm = 1,
				 .provider = "openai", .api = "chat.completions", .model = "",
				 .max_tokens = 1, .body_len = 16});
	tbuf_free(&b);
}

/* A malformed head: "more" until the bytes show it, then err for every
 * longer cut (first_bad: the shortest cut that shows it). */
static void bad_every_cut(const char *req, size_t len, size_t first_bad, int err)
{
	for (size_t cut = 0; cut <= len; cut++) {
		tt_peek pk;
		int rc = peek_copy(&pk, req, cut);

		if (cut < first_bad)
			assert_int_equal(rc, TT_PEEK_MORE);
		else
			assert_int_equal(rc, err);
	}
}

#define BAD(s, first) bad_every_cut(s, sizeof(s) - 1, first, TT_EPROTO)
/* shown only at the end of the head */
#define BAD_AT_END(s) bad_every_cut(s, sizeof(s) - 1, sizeof(s) - 1, TT_EPROTO)

static void test_malformed(void **state)
{
	(void)state;
	/* not a request line */
	BAD("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 1);
	BAD("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 16);
	BAD(" GET / HTTP/1.1\r\n\r\n", 1);
	BAD("\r\nGET / HTTP/1.1\r\n\r\n", 1);
	BAD("GET\r\n\r\n", 4);
	BAD("G@T / HTTP/1.1\r\n\r\n", 2);
	BAD("ABCDEFGHIJKLMNOP / HTTP/1.1\r\n\r\n", 16);
	BAD("GET /x\r\n\r\n", 8);
	BAD("POST  HTTP/1.1\r\n\r\n", 16);
	BAD("POST /x FOO/1.1\r\n\r\n", 17);
	BAD("POST /x HTTP/1.1 extra\r\n\r\n", 24);
	BAD("POST /x HTTP/1.x\r\n\r\n", 18);
	BAD("POST /x HTTP/11\r\n\r\n", 17);
	/* framing the peek cannot trust */
	BAD_AT_END("POST /x HTTP/1.1\r\nContent-Length: abc\r\n\r\n");
	BAD_AT_END("POST /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n");
	BAD_AT_END("POST /x HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n");
	BAD_AT_END("POST /x HTTP/1.1\r\nContent-Length:\r\n\r\n");
	BAD_AT_END("POST /x HTTP/1.1\r\nContent-Length: 1234567890123456789\r\n\r\n");
	BAD_AT_END("POST /x HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n");
	BAD_AT_END("POST /x HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n");
}

/* A head that never ends within TT_PEEK_HEAD_MAX bytes. */
static void test_head_cap(void **state)
{
	tbuf b = {0};
	size_t cuts[] = {0, 1, 100, TT_PEEK_HEAD_MAX - 1, TT_PEEK_HEAD_MAX, TT_PEEK_HEAD_MAX + 1};
	tt_peek pk;

	(void)state;
	tbuf_adds(&b, "POST /v1/chat/completions HTTP/1.1\r\nX-Big: ");
	while (b.n < TT_PEEK_HEAD_MAX + 100)
		tbuf_adds(&b, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++)
		assert_int_equal(peek_copy(&pk, b.p, cuts[i]),
				 cuts[i] < TT_PEEK_HEAD_MAX ? TT_PEEK_MORE : TT_ETRUNCATED);
	/* Its end past the cap changes nothing. */
	tbuf_adds(&b, "\r\n\r\n");
	assert_int_equal(peek_copy(&pk, b.p, b.n), TT_ETRUNCATED);
	tbuf_free(&b);
	/* A head of exactly the cap is one. */
	tbuf_adds(&b, "GET / HTTP/1.1\r\nX: ");
	while (b.n < TT_PEEK_HEAD_MAX - 4)
		tbuf_adds(&b, "b");
	tbuf_adds(&b, "\r\n\r\n");
	assert_int_equal(b.n, TT_PEEK_HEAD_MAX);
	assert_int_equal(peek_copy(&pk, b.p, b.n), TT_PEEK_WHOLE);
	tbuf_free(&b);
}

/* ---- the body scan against the decoder's full parse --------------------- */

static const char *const keys[] = {
	"model", "max_tokens", "max_completion_tokens", "max_output_tokens", "maxOutputTokens",
	"num_predict", "maxTokens", "generationConfig", "generation_config", "options",
	"inferenceConfig", "messages", "stream", "x",
};
static const char *const strings[] = {
	"\"gpt-4o\"", "\"\"", "\"a\\\"b\"", "\"\\\\\"", "\"max_tokens\"", "\"\\\"max_tokens\\\":1\"",
	"\"\\u00e9t\\u00e9\"", "\"{[\\\\\\\"\"", "\"claude \\/ 3\"", "\"\xc3\xa9t\xc3\xa9!\"",
};
static const char *const numbers[] = {
	"0", "-0", "7", "-7", "64", "4096", "1e3", "2.5E+2", "25e-1", "999999999999",
	"1000000000000", "1000000000001", "3.0", "0.5", "1e400", "-1e-3", "12.75e1",
};

static void gen_value(tbuf *b, uint32_t *rng, int depth);

static void gen_ws(tbuf *b, uint32_t *rng)
{
	static const char *const sp[] = {"", "", "", " ", "\n  ", "\t", "\r\n"};

	tbuf_adds(b, sp[split_rand(rng) % 7]);
}

static void gen_object(tbuf *b, uint32_t *rng, int depth)
{
	unsigned n = split_rand(rng) % 7;

	tbuf_adds(b, "{");
	for (unsigned i = 0; i < n; i++) {
		const char *k = keys[split_rand(rng) % (sizeof(keys) / sizeof(keys[0]))];

		gen_ws(b, rng);
		tbuf_addf(b, "%s\"%s\"", i ? "," : "", k);
		gen_ws(b, rng);
		tbuf_adds(b, ":");
		gen_ws(b, rng);
		if (split_rand(rng) % 2 && (strstr(k, "max") || strstr(k, "num")))
			tbuf_adds(b, numbers[split_rand(rng) % (sizeof(numbers) / sizeof(numbers[0]))]);
		else if (split_rand(rng) % 2 && strchr("gio", k[0]) && depth < 3)
			gen_object(b, rng, depth + 1);
		else
			gen_value(b, rng, depth + 1);
		gen_ws(b, rng);
	}
	tbuf_adds(b, "}");
}

static void gen_value(tbuf *b, uint32_t *rng, int depth)
{
	unsigned k = split_rand(rng) % (depth < 4 ? 7 : 4);

	if (k == 0)
		tbuf_adds(b, strings[split_rand(rng) % (sizeof(strings) / sizeof(strings[0]))]);
	else if (k == 1)
		tbuf_adds(b, numbers[split_rand(rng) % (sizeof(numbers) / sizeof(numbers[0]))]);
	else if (k == 2)
		tbuf_adds(b, (const char *[]){"true", "false", "null"}[split_rand(rng) % 3]);
	else if (k == 3)
		tbuf_adds(b, "\"text\"");
	else if (k < 6)
		gen_object(b, rng, depth);
	else {
		unsigned n = split_rand(rng) % 4;

		tbuf_adds(b, "[");
		for (unsigned i = 0; i < n; i++) {
			if (i)
				tbuf_adds(b, ",");
			gen_value(b, rng, depth + 1);
		}
		tbuf_adds(b, "]");
	}
}

/* The decoded forms of the escaped strings above: the peek leaves such a
 * model name out. */
static int decoded_escape(const char *v)
{
	static const char *const d[] = {
		"a\"b", "\\", "\"max_tokens\":1", "\xc3\xa9t\xc3\xa9", "{[\\\"", "claude / 3",
	};

	for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++)
		if (strcmp(v, d[i]) == 0)
			return 1;
	return 0;
}

static void test_scan_matches_parse(void **state)
{
	uint32_t rng = 0x9e3779b9u;
	int compared = 0, ceilings = 0;

	(void)state;
	for (int i = 0; i < 4000; i++) {
		tbuf body = {0}, req = {0};
		tt_request_info info;
		tt_route rt;
		tt_peek pk;

		gen_object(&body, &rng, 0);
		post(&req, "/v1/chat/completions", "api.openai.com", "", body.p);
		assert_int_equal(peek_copy(&pk, req.p, req.n), TT_PEEK_WHOLE);
		assert_int_equal(tt_route_match(&rt, "POST", "/v1/chat/completions", 20, NULL), 1);
		tt_request_parse(&info, &rt, body.p, body.n);
		assert_true(info.parsed);
		assert_int_equal(pk.max_tokens, info.max_tokens);
		ceilings += info.max_tokens != TT_NULL;
		if (strcmp(pk.model, info.model) != 0) {
			assert_string_equal(pk.model, "");
			assert_true(decoded_escape(info.model));
		} else {
			compared++;
		}
		/* The same body cut short (Content-Length says so): no overread. */
		for (size_t cut = 0; cut < body.n; cut += 1 + cut / 8) {
			tbuf r2 = {0};
			char *short_body = strndup(body.p, cut);

			post(&r2, "/v1/chat/completions", "api.openai.com", "", short_body);
			assert_int_equal(peek_copy(&pk, r2.p, r2.n), TT_PEEK_WHOLE);
			free(short_body);
			tbuf_free(&r2);
		}
		tbuf_free(&body);
		tbuf_free(&req);
	}
	/* The generator reaches the cases it is for. */
	assert_true(compared > 2000);
	assert_true(ceilings > 1000);
}

/* ---- the record of a blocked call against the decoder's own ------------- */

static tt_record on_req;
static int n_on_req;

static void grab_request(const tt_record *rec, void *user)
{
	(void)user;
	on_req = *rec;
	n_on_req++;
}

static void no_record(const tt_record *rec, void *user)
{
	(void)rec, (void)user;
}

static void record_matches_decoder(const char *path, const char *host, const char *body)
{
	tbuf b = {0};
	tt_decoder_config cfg;
	tt_decoder *d;
	tt_record rec;
	tt_peek pk;

	post(&b, path, host, "X-Tokentap-Task: t1\r\nX-Tokentap-Feature: f\r\n", body);
	assert_int_equal(tt_peek_request(&pk, b.p, b.n), TT_PEEK_WHOLE);
	tt_peek_record(&pk, &rec);
	tt_decoder_config_init(&cfg);
	cfg.on_record = no_record;
	cfg.on_request = grab_request;
	d = tt_decoder_new(&cfg);
	n_on_req = 0;
	assert_int_equal(tt_decoder_feed(d, TT_DIR_SENT, b.p, b.n, 1000), 0);
	assert_int_equal(n_on_req, 1);
	tt_decoder_free(d);
	assert_string_equal(rec.method, on_req.method);
	assert_string_equal(rec.path, on_req.path);
	assert_string_equal(rec.host, on_req.host);
	assert_string_equal(rec.http, on_req.http);
	assert_string_equal(rec.provider, on_req.provider);
	assert_string_equal(rec.api, on_req.api);
	assert_string_equal(rec.task, on_req.task);
	assert_string_equal(rec.tenant, on_req.tenant);
	assert_string_equal(rec.feature, on_req.feature);
	assert_string_equal(rec.request_model, on_req.request_model);
	assert_int_equal(rec.stream, on_req.stream);
	assert_int_equal(rec.max_tokens, on_req.max_tokens);
	assert_string_equal(rec.prompt_hash, on_req.prompt_hash);
	assert_string_equal(rec.prefix_hash, on_req.prefix_hash);
	assert_int_equal(rec.request_bytes, on_req.request_bytes);
	assert_string_equal(rec.side, "client");
	assert_int_equal(strlen(rec.prompt_hash), 32);
	/* and the peek's cheap answers agree with the full parse */
	assert_string_equal(pk.model, rec.request_model);
	assert_int_equal(pk.max_tokens, rec.max_tokens);
	tbuf_free(&b);
}

static void test_record(void **state)
{
	(void)state;
	record_matches_decoder("/v1/chat/completions?x=1", "api.openai.com",
			       "{\"model\":\"gpt-4o-mini\",\"max_tokens\":77,\"stream\":true,"
			       "\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
			       "{\"role\":\"user\",\"content\":\"hi\"}]}");
	record_matches_decoder("/v1beta/models/gemini-2.5-pro:streamGenerateContent",
			       "generativelanguage.googleapis.com",
			       "{\"contents\":[{\"parts\":[{\"text\":\"hi\"}]}],"
			       "\"generationConfig\":{\"maxOutputTokens\":99}}");
	record_matches_decoder("/api/generate", "localhost",
			       "{\"model\":\"llama3\",\"prompt\":\"hi\"}");
	record_matches_decoder("/model/amazon.nova-lite-v1%3A0/converse", "bedrock",
			       "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"x\"}]}],"
			       "\"inferenceConfig\":{\"maxTokens\":10}}");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_providers),
		cmocka_unit_test(test_body_members),
		cmocka_unit_test(test_not_llm),
		cmocka_unit_test(test_framing),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_head_cap),
		cmocka_unit_test(test_scan_matches_parse),
		cmocka_unit_test(test_record),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
