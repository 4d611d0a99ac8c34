/*
 * bench_decoder.c - what the decoder costs, next to what TLS already pays.
 *
 * For each traffic shape a connection transcript is built once, in the
 * pieces a reader would get (16 KiB TLS records for bulk data, one piece
 * per SSE event for a stream), then fed to a fresh decoder again and again
 * for about a second of CPU time.  The same pieces are then decrypted with
 * AES-128-GCM through OpenSSL's EVP API, one TLS record (at most 16 KiB,
 * own nonce and tag) per piece, which is what the TLS layer spends on
 * those bytes anyway.  Printed per case: decoder MB/s, AES-GCM MB/s, the
 * ratio of the two costs (the goal is below 1) and CPU µs per record.
 *
 * Every run's records are checked against the figures the transcript
 * carries; a wrong count or wrong figures abort the benchmark.
 *
 * BENCH_SECONDS (default 1) sets the CPU time per measurement.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <zlib.h>

#include "../tests/support/h2_build.h"
#include "tokentap/decoder.h"

#define TLS_RECORD_MAX 16384
#define SSE_EVENTS 200
#define PROMPT_TOKENS 1234
#define SMALL_GETS 200

static void die(const char *what)
{
	fprintf(stderr, "bench_decoder: %s\n", what);
	exit(1);
}

static double cpu_now(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
		die("clock_gettime failed");
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- transcripts ---- */

typedef struct piece {
	tt_dir dir;
	size_t off, len;
} piece;

typedef struct trace {
	uint8_t *buf;
	size_t n, cap;
	piece *pc;
	size_t npc, pcap;
	size_t exchanges;    /* HTTP exchanges per connection */
	unsigned records;    /* expected records per connection */
	int64_t in_tokens, out_tokens;
} trace;

static void grow(void **p, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return;
	size_t c = *cap ? *cap : 64;
	while (c < need)
		c *= 2;
	*p = realloc(*p, c * elem);
	if (!*p)
		die("out of memory");
	*cap = c;
}

/* One read or write; bulk data goes in TLS-record-sized pieces. */
static void add(trace *t, tt_dir dir, const void *p, size_t n)
{
	while (n > 0) {
		size_t k = n < TLS_RECORD_MAX ? n : TLS_RECORD_MAX;
		grow((void **)&t->buf, &t->cap, t->n + k, 1);
		memcpy(t->buf + t->n, p, k);
		grow((void **)&t->pc, &t->pcap, t->npc + 1, sizeof(*t->pc));
		t->pc[t->npc++] = (piece){ dir, t->n, k };
		t->n += k;
		p = (const uint8_t *)p + k;
		n -= k;
	}
}

static void adds(trace *t, tt_dir dir, const char *s)
{
	add(t, dir, s, strlen(s));
}

static void trace_free(trace *t)
{
	free(t->buf);
	free(t->pc);
}

static const char chat_stream_body[] =
	"{\"model\":\"gpt-4o-mini\",\"stream\":true,\"stream_options\":"
	"{\"include_usage\":true},\"temperature\":0.7,\"messages\":["
	"{\"role\":\"system\",\"content\":\"You are a helpful assistant.\"},"
	"{\"role\":\"user\",\"content\":\"Write a short story about a "
	"lighthouse keeper who finds a message in a bottle.\"}]}";

static const char chat_body[] =
	"{\"model\":\"gpt-4o-mini\",\"max_tokens\":1024,\"messages\":["
	"{\"role\":\"system\",\"content\":\"You are a helpful assistant.\"},"
	"{\"role\":\"user\",\"content\":\"Explain how TCP congestion control "
	"works, in detail.\"}]}";

static void chat_request(trace *t, const char *body)
{
	char head[512];
	int n = snprintf(head, sizeof(head),
			 "POST /v1/chat/completions HTTP/1.1\r\n"
			 "Host: api.openai.com\r\n"
			 "Accept-Encoding: gzip, deflate, br, zstd\r\n"
			 "Connection: keep-alive\r\n"
			 "Accept: application/json\r\n"
			 "Content-Type: application/json\r\n"
			 "User-Agent: OpenAI/Python 1.54.0\r\n"
			 "Authorization: Bearer sk-bench-0000000000000000\r\n"
			 "Content-Length: %zu\r\n\r\n", strlen(body));
	add(t, TT_DIR_SENT, head, (size_t)n);
	adds(t, TT_DIR_SENT, body);
}

/* The n-th SSE event of the streamed chat completion, into buf. */
static size_t sse_event(char *buf, size_t cap, int i)
{
	static const char *const words[] = {
		" The", " keeper", " climbed", " the", " spiral", " stairs",
		" as", " the", " storm", " rolled", " in", " from", " the",
		" sea", ",", " lantern", " in", " hand", ".",
	};
	const char *pre = "data: {\"id\":\"chatcmpl-AbC123xyz\",\"object\":"
			  "\"chat.completion.chunk\",\"created\":1727700000,"
			  "\"model\":\"gpt-4o-mini-2024-07-18\","
			  "\"system_fingerprint\":\"fp_f85bea6784\",\"choices\":";
	int n;

	if (i < SSE_EVENTS)
		n = snprintf(buf, cap, "%s[{\"index\":0,\"delta\":{\"content\":"
			     "\"%s\"},\"logprobs\":null,\"finish_reason\":null}],"
			     "\"usage\":null}\n\n", pre,
			     words[i % (sizeof(words) / sizeof(words[0]))]);
	else if (i == SSE_EVENTS)
		n = snprintf(buf, cap, "%s[{\"index\":0,\"delta\":{},\"logprobs\":"
			     "null,\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
			     pre);
	else if (i == SSE_EVENTS + 1)
		n = snprintf(buf, cap, "%s[],\"usage\":{\"prompt_tokens\":%d,"
			     "\"completion_tokens\":%d,\"total_tokens\":%d,"
			     "\"prompt_tokens_details\":{\"cached_tokens\":0},"
			     "\"completion_tokens_details\":{\"reasoning_tokens\":0}}}\n\n",
			     pre, PROMPT_TOKENS, SSE_EVENTS, PROMPT_TOKENS + SSE_EVENTS);
	else
		n = snprintf(buf, cap, "data: [DONE]\n\n");
	if (n < 0 || (size_t)n >= cap)
		die("SSE event does not fit");
	return (size_t)n;
}
#define SSE_TOTAL (SSE_EVENTS + 3)

static void chunk(trace *t, const void *p, size_t n)
{
	char len[24];
	uint8_t *c = malloc(n + 32);
	int k = snprintf(len, sizeof(len), "%zx\r\n", n);

	if (!c)
		die("out of memory");
	memcpy(c, len, (size_t)k);
	memcpy(c + k, p, n);
	memcpy(c + k + n, "\r\n", 2);
	add(t, TT_DIR_RECV, c, (size_t)k + n + 2);
	free(c);
}

/* (a) and (d): the streamed chat response, chunked, maybe gzip'd. */
static void build_sse(trace *t, int gzip)
{
	char ev[1024];
	uint8_t z[4096];
	z_stream zs;

	chat_request(t, chat_stream_body);
	adds(t, TT_DIR_RECV, gzip ?
	     "HTTP/1.1 200 OK\r\nDate: Mon, 30 Sep 2024 12:00:00 GMT\r\n"
	     "Content-Type: text/event-stream; charset=utf-8\r\n"
	     "Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n"
	     "Content-Encoding: gzip\r\n"
	     "openai-processing-ms: 187\r\nx-request-id: req_0123456789\r\n\r\n" :
	     "HTTP/1.1 200 OK\r\nDate: Mon, 30 Sep 2024 12:00:00 GMT\r\n"
	     "Content-Type: text/event-stream; charset=utf-8\r\n"
	     "Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n"
	     "openai-processing-ms: 187\r\nx-request-id: req_0123456789\r\n\r\n");
	memset(&zs, 0, sizeof(zs));
	if (gzip && deflateInit2(&zs, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		die("deflateInit2 failed");
	for (int i = 0; i < SSE_TOTAL; i++) {
		size_t n = sse_event(ev, sizeof(ev), i);
		if (!gzip) {
			chunk(t, ev, n);
			continue;
		}
		/* A streaming server flushes each event: one chunk per event. */
		zs.next_in = (Bytef *)ev;
		zs.avail_in = (uInt)n;
		zs.next_out = z;
		zs.avail_out = sizeof(z);
		int rc = deflate(&zs, i == SSE_TOTAL - 1 ? Z_FINISH : Z_SYNC_FLUSH);
		if (zs.avail_in != 0 || zs.avail_out == 0 ||
		    rc != (i == SSE_TOTAL - 1 ? Z_STREAM_END : Z_OK))
			die("deflate failed");
		chunk(t, z, sizeof(z) - zs.avail_out);
	}
	if (gzip)
		deflateEnd(&zs);
	adds(t, TT_DIR_RECV, "0\r\n\r\n");
	t->exchanges = 1;
	t->records = 1;
	t->in_tokens = PROMPT_TOKENS;
	t->out_tokens = SSE_EVENTS;
}

/* (b): a non-streamed chat completion, about 4 KB of JSON. */
static void build_json(trace *t)
{
	char body[8192], text[3600], head[512];
	size_t tl = 0;

	chat_request(t, chat_body);
	while (tl + 64 < sizeof(text)) {
		static const char s[] = "TCP congestion control adjusts the "
					"sending window as loss is observed. ";
		memcpy(text + tl, s, sizeof(s) - 1);
		tl += sizeof(s) - 1;
	}
	text[tl] = '\0';
	int bn = snprintf(body, sizeof(body),
			  "{\n  \"id\": \"chatcmpl-AbC123xyz\",\n  \"object\": "
			  "\"chat.completion\",\n  \"created\": 1727700000,\n"
			  "  \"model\": \"gpt-4o-mini-2024-07-18\",\n  \"choices\": [\n"
			  "    {\n      \"index\": 0,\n      \"message\": {\n"
			  "        \"role\": \"assistant\",\n        \"content\": \"%s\",\n"
			  "        \"refusal\": null\n      },\n      \"logprobs\": null,\n"
			  "      \"finish_reason\": \"stop\"\n    }\n  ],\n"
			  "  \"usage\": {\n    \"prompt_tokens\": %d,\n"
			  "    \"completion_tokens\": %d,\n    \"total_tokens\": %d,\n"
			  "    \"prompt_tokens_details\": {\"cached_tokens\": 0},\n"
			  "    \"completion_tokens_details\": {\"reasoning_tokens\": 0}\n"
			  "  },\n  \"system_fingerprint\": \"fp_f85bea6784\"\n}\n",
			  text, 31, 812, 31 + 812);
	if (bn < 0 || (size_t)bn >= sizeof(body))
		die("JSON body does not fit");
	int hn = snprintf(head, sizeof(head),
			  "HTTP/1.1 200 OK\r\nDate: Mon, 30 Sep 2024 12:00:00 GMT\r\n"
			  "Content-Type: application/json\r\nContent-Length: %d\r\n"
			  "Connection: keep-alive\r\nopenai-processing-ms: 2870\r\n"
			  "x-request-id: req_0123456789\r\n\r\n", bn);
	/* Head and body arrive in one TLS record, as they usually do. */
	char *all = malloc((size_t)hn + (size_t)bn);
	if (!all)
		die("out of memory");
	memcpy(all, head, (size_t)hn);
	memcpy(all + hn, body, (size_t)bn);
	add(t, TT_DIR_RECV, all, (size_t)hn + (size_t)bn);
	free(all);
	t->exchanges = 1;
	t->records = 1;
	t->in_tokens = 31;
	t->out_tokens = 812;
}

/* (c): not LLM traffic: a 1 MiB download, then small keep-alive GETs. */
static void build_nonllm(trace *t)
{
	const size_t big = 1 << 20;
	char head[512], body[600];
	uint8_t *blob = malloc(big);

	if (!blob)
		die("out of memory");
	for (size_t i = 0; i < big; i++)
		blob[i] = (uint8_t)(i * 2654435761u >> 13);
	adds(t, TT_DIR_SENT, "GET /downloads/model-card.bin HTTP/1.1\r\n"
			     "Host: files.example.com\r\nUser-Agent: curl/8.5.0\r\n"
			     "Accept: */*\r\n\r\n");
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
			 "Content-Length: %zu\r\nETag: \"5f3a-9c1\"\r\n"
			 "Accept-Ranges: bytes\r\n\r\n", big);
	uint8_t *resp = malloc((size_t)n + big);
	if (!resp)
		die("out of memory");
	memcpy(resp, head, (size_t)n);
	memcpy(resp + n, blob, big);
	add(t, TT_DIR_RECV, resp, (size_t)n + big);
	free(resp);
	free(blob);

	for (int i = 0; i < SMALL_GETS; i++) {
		n = snprintf(head, sizeof(head),
			     "GET /api/v2/items/%d?expand=owner HTTP/1.1\r\n"
			     "Host: files.example.com\r\nUser-Agent: curl/8.5.0\r\n"
			     "Accept: application/json\r\n\r\n", i);
		add(t, TT_DIR_SENT, head, (size_t)n);
		int bn = snprintf(body, sizeof(body),
				  "{\"id\":%d,\"name\":\"item-%d\",\"owner\":{\"id\":7,"
				  "\"login\":\"alice\"},\"tags\":[\"a\",\"b\",\"c\"],"
				  "\"size\":%d,\"created\":\"2024-09-30T12:00:00Z\"}",
				  i, i, i * 37);
		char msg[1024];
		int mn = snprintf(msg, sizeof(msg),
				  "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
				  "Content-Length: %d\r\nCache-Control: no-cache\r\n\r\n%s",
				  bn, body);
		if (mn < 0 || (size_t)mn >= sizeof(msg))
			die("small GET does not fit");
		add(t, TT_DIR_RECV, msg, (size_t)mn);
	}
	t->exchanges = 1 + SMALL_GETS;
	t->records = 0;
}

/* (e): the streamed response over HTTP/2, one DATA frame per event. */
static void build_h2(trace *t)
{
	static const uint16_t cid[] = { 0x3, 0x4, 0x2 };
	static const uint32_t cval[] = { 100, 1u << 20, 0 };
	static const uint16_t sid[] = { 0x3, 0x5 };
	static const uint32_t sval[] = { 128, 16384 };
	const nghttp2_nv req[] = {
		H2B_NV(":method", "POST"),
		H2B_NV(":scheme", "https"),
		H2B_NV(":path", "/v1/chat/completions"),
		H2B_NV(":authority", "api.openai.com"),
		H2B_NV("content-type", "application/json"),
		H2B_NV("authorization", "Bearer sk-bench-0000000000000000"),
		H2B_NV("user-agent", "OpenAI/Python 1.54.0"),
		H2B_NV("accept-encoding", "gzip, deflate, br, zstd"),
	};
	const nghttp2_nv resp[] = {
		H2B_NV(":status", "200"),
		H2B_NV("date", "Mon, 30 Sep 2024 12:00:00 GMT"),
		H2B_NV("content-type", "text/event-stream; charset=utf-8"),
		H2B_NV("openai-processing-ms", "187"),
		H2B_NV("x-request-id", "req_0123456789"),
	};
	char ev[1024];
	h2b b;

	h2b_init(&b);
	h2b_preface(&b);
	h2b_settings(&b, 1, cid, cval, 3);
	h2b_window_update(&b, 1, 0, 1u << 24);
	h2b_headers(&b, 1, 1, req, sizeof(req) / sizeof(req[0]), NULL);
	h2b_data(&b, 1, 1, chat_stream_body, strlen(chat_stream_body), 1, 0, 0);
	h2b_settings(&b, 0, sid, sval, 2);
	h2b_settings_ack(&b, 0);
	h2b_headers(&b, 0, 1, resp, sizeof(resp) / sizeof(resp[0]), NULL);
	h2b_cut(&b);
	for (int i = 0; i < SSE_TOTAL; i++) {
		size_t n = sse_event(ev, sizeof(ev), i);
		h2b_data(&b, 0, 1, ev, n, i == SSE_TOTAL - 1, 0, 0);
		h2b_cut(&b);
	}
	for (size_t i = 0; i < b.nsegs; i++)
		add(t, (b.segs[i].from_client & 1) ? TT_DIR_SENT : TT_DIR_RECV,
		    b.segs[i].data, b.segs[i].len);
	h2b_free(&b);
	t->exchanges = 1;
	t->records = 1;
	t->in_tokens = PROMPT_TOKENS;
	t->out_tokens = SSE_EVENTS;
}

/* ---- the decoder side ---- */

typedef struct check {
	const trace *t;
	const char *name;
	unsigned records;
} check;

static void on_record(const tt_record *rec, void *user)
{
	check *c = user;

	c->records++;
	if (rec->input_tokens != c->t->in_tokens ||
	    rec->output_tokens != c->t->out_tokens || rec->error[0] ||
	    strcmp(rec->usage_source, "provider") != 0) {
		fprintf(stderr, "bench_decoder: %s: wrong record: input %lld "
				"(want %lld), output %lld (want %lld), usage_source "
				"'%s', error '%s'\n", c->name,
			(long long)rec->input_tokens, (long long)c->t->in_tokens,
			(long long)rec->output_tokens, (long long)c->t->out_tokens,
			rec->usage_source, rec->error);
		exit(1);
	}
}

/* One connection, start to end; returns after checking its records. */
static void decode_once(const trace *t, const char *name)
{
	tt_decoder_config cfg;
	check c = { t, name, 0 };
	int64_t now = 1727700000000000LL;

	tt_decoder_config_init(&cfg);
	cfg.on_record = on_record;
	cfg.user = &c;
	tt_decoder *d = tt_decoder_new(&cfg);
	if (!d)
		die("tt_decoder_new failed");
	for (size_t i = 0; i < t->npc; i++) {
		const piece *p = &t->pc[i];
		int rc = tt_decoder_feed(d, p->dir, t->buf + p->off, p->len, now);
		if (rc < 0) {
			fprintf(stderr, "bench_decoder: %s: feed failed: %s\n",
				name, tt_strerror(rc));
			exit(1);
		}
		now += 200;
	}
	tt_decoder_close(d, now);
	tt_decoder_free(d);
	if (c.records != t->records) {
		fprintf(stderr, "bench_decoder: %s: %u records, want %u\n", name,
			c.records, t->records);
		exit(1);
	}
}

/* ---- the TLS side: AES-128-GCM, one record per piece ---- */

typedef struct sealed {
	uint8_t *ct;        /* all records' ciphertext, back to back */
	uint8_t (*tag)[16];
	size_t *len;
	size_t nrec;
	uint8_t *out;
} sealed;

static const uint8_t aes_key[16] = "tokentap-bench!";
static const uint8_t aes_iv[12] = "fixed-iv-12";

static void nonce(uint8_t iv[12], uint64_t seq)
{
	/* RFC 8446 §5.3: the sequence number XORed into the static IV. */
	memcpy(iv, aes_iv, 12);
	for (int i = 0; i < 8; i++)
		iv[11 - i] ^= (uint8_t)(seq >> (8 * i));
}

static void aad(uint8_t hdr[5], size_t len)
{
	/* TLS 1.3 record header: application_data, legacy version, length. */
	hdr[0] = 23, hdr[1] = 3, hdr[2] = 3;
	hdr[3] = (uint8_t)((len + 16) >> 8), hdr[4] = (uint8_t)(len + 16);
}

static void seal(sealed *s, const trace *t)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	uint8_t iv[12], hdr[5];
	int outl;

	memset(s, 0, sizeof(*s));
	s->nrec = t->npc;
	s->ct = malloc(t->n ? t->n : 1);
	s->out = malloc(t->n ? t->n : 1);
	s->tag = malloc(s->nrec * sizeof(*s->tag));
	s->len = malloc(s->nrec * sizeof(*s->len));
	if (!ctx || !s->ct || !s->out || !s->tag || !s->len)
		die("out of memory");
	if (EVP_EncryptInit_ex(ctx, EVP_aes_128_gcm(), NULL, aes_key, NULL) != 1)
		die("EVP_EncryptInit_ex failed");
	for (size_t i = 0; i < t->npc; i++) {
		const piece *p = &t->pc[i];
		nonce(iv, i);
		aad(hdr, p->len);
		s->len[i] = p->len;
		if (EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, iv) != 1 ||
		    EVP_EncryptUpdate(ctx, NULL, &outl, hdr, 5) != 1 ||
		    EVP_EncryptUpdate(ctx, s->ct + p->off, &outl, t->buf + p->off,
				      (int)p->len) != 1 ||
		    EVP_EncryptFinal_ex(ctx, s->ct + p->off + outl, &outl) != 1 ||
		    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, s->tag[i]) != 1)
			die("AES-GCM encryption failed");
	}
	EVP_CIPHER_CTX_free(ctx);
}

static void sealed_free(sealed *s)
{
	free(s->ct);
	free(s->out);
	free(s->tag);
	free(s->len);
}

/* Decrypt and authenticate every record, as the TLS layer would. */
static void open_once(EVP_CIPHER_CTX *ctx, sealed *s, const trace *t)
{
	uint8_t iv[12], hdr[5];
	int outl;

	for (size_t i = 0; i < s->nrec; i++) {
		const piece *p = &t->pc[i];
		nonce(iv, i);
		aad(hdr, p->len);
		if (EVP_DecryptInit_ex(ctx, NULL, NULL, NULL, iv) != 1 ||
		    EVP_DecryptUpdate(ctx, NULL, &outl, hdr, 5) != 1 ||
		    EVP_DecryptUpdate(ctx, s->out + p->off, &outl, s->ct + p->off,
				      (int)p->len) != 1 ||
		    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, s->tag[i]) != 1 ||
		    EVP_DecryptFinal_ex(ctx, s->out + p->off + outl, &outl) != 1)
			die("AES-GCM decryption failed to authenticate");
	}
}

/* ---- measuring ---- */

static double seconds_per_case = 1.0;

typedef struct result {
	double dec_s, aes_s;  /* CPU seconds per connection */
} result;

static void run_case(const char *name, const char *what, trace *t)
{
	sealed s;
	result r;
	double t0, el;
	long iters, i;

	/* Decoder: calibrate on a few runs, then about seconds_per_case. */
	decode_once(t, name);
	for (iters = 1;; iters *= 2) {
		t0 = cpu_now();
		for (i = 0; i < iters; i++)
			decode_once(t, name);
		el = cpu_now() - t0;
		if (el > 0.05)
			break;
	}
	iters = (long)(iters * seconds_per_case / el) + 1;
	t0 = cpu_now();
	for (i = 0; i < iters; i++)
		decode_once(t, name);
	r.dec_s = (cpu_now() - t0) / (double)iters;

	/* AES-GCM over the same pieces. */
	seal(&s, t);
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	if (!ctx || EVP_DecryptInit_ex(ctx, EVP_aes_128_gcm(), NULL, aes_key, NULL) != 1)
		die("EVP_DecryptInit_ex failed");
	open_once(ctx, &s, t);
	if (memcmp(s.out, t->buf, t->n) != 0)
		die("AES-GCM round trip differs");
	for (iters = 1;; iters *= 2) {
		t0 = cpu_now();
		for (i = 0; i < iters; i++)
			open_once(ctx, &s, t);
		el = cpu_now() - t0;
		if (el > 0.05)
			break;
	}
	iters = (long)(iters * seconds_per_case / el) + 1;
	t0 = cpu_now();
	for (i = 0; i < iters; i++)
		open_once(ctx, &s, t);
	r.aes_s = (cpu_now() - t0) / (double)iters;
	EVP_CIPHER_CTX_free(ctx);
	sealed_free(&s);

	double mb = (double)t->n / 1e6;
	char per_rec[32];
	if (t->records)
		snprintf(per_rec, sizeof(per_rec), "%10.1f", r.dec_s * 1e6 / t->records);
	else
		snprintf(per_rec, sizeof(per_rec), "%10s", "-");
	printf("%-10s %9zu %6zu %5zu %9.1f %9.1f %7.3f %s %10.2f   %s\n", name,
	       t->n, t->npc, t->exchanges, mb / r.dec_s, mb / r.aes_s,
	       r.dec_s / r.aes_s, per_rec,
	       r.dec_s * 1e6 / (double)t->exchanges, what);
	fflush(stdout);
}

int main(void)
{
	const char *env = getenv("BENCH_SECONDS");
	trace t;

	if (env) {
		char *end;
		double v = strtod(env, &end);
		if (end == env || *end || v <= 0 || v > 60)
			die("BENCH_SECONDS must be a number of seconds in (0, 60]");
		seconds_per_case = v;
	}
	printf("decoder vs AES-128-GCM (EVP), CPU time (CLOCK_PROCESS_CPUTIME_ID),"
	       " ~%.1f s per measurement\n", seconds_per_case);
	printf("%-10s %9s %6s %5s %9s %9s %7s %10s %10s\n", "case", "bytes",
	       "reads", "exch", "dec MB/s", "AES MB/s", "dec/AES", "us/record",
	       "us/exch");

	memset(&t, 0, sizeof(t));
	build_sse(&t, 0);
	run_case("sse", "HTTP/1.1 chunked SSE, 200 deltas + usage, one read per event", &t);
	trace_free(&t);

	memset(&t, 0, sizeof(t));
	build_json(&t);
	run_case("json", "HTTP/1.1 non-streamed chat completion, ~4 KB JSON", &t);
	trace_free(&t);

	memset(&t, 0, sizeof(t));
	build_nonllm(&t);
	run_case("non-llm", "1 MiB GET in 16 KiB reads, then 200 small keep-alive GETs", &t);
	trace_free(&t);

	memset(&t, 0, sizeof(t));
	build_sse(&t, 1);
	run_case("sse-gzip", "the SSE stream gzip'd, one flushed chunk per event", &t);
	trace_free(&t);

	memset(&t, 0, sizeof(t));
	build_h2(&t);
	run_case("h2-sse", "HTTP/2 (nghttp2 HPACK), one DATA frame per event", &t);
	trace_free(&t);
	return 0;
}
