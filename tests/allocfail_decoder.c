/*
 * allocfail_decoder.c - the decoder when memory runs out.
 *
 * The program replaces malloc and friends for itself and every library it
 * uses (zlib, nghttp2, cJSON, OpenSSL ...), counts the allocations of a
 * clean run of each transcript, then runs it again failing the i-th
 * allocation, for every i.  Each run must end without a crash, with every
 * byte it allocated freed, and with records that say nothing false: each
 * field is the clean run's or null (unknown), unless the record says it
 * is not whole (a non-null error).
 *
 * Built without sanitizers, which bring their own allocator; see
 * decoder/decoder.mk.
 */
#include <brotli/encode.h>
#include <cJSON.h>
#include <execinfo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "support/feed.h"
#include "support/tbuf.h"

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

static long armed;       /* allocations left before the failing one; <0 off */
static long counted;     /* allocations seen while counting */
static long live;        /* blocks allocated and not yet freed */
static int counting;
static long current;  /* the allocation being failed */
static long trace = -1; /* ALLOCFAIL_TRACE=N: show where allocation N is */

/* Seen by every library, whatever -fvisibility the build uses. */
#define EXPORT __attribute__((visibility("default")))

/* Returns 1 when this allocation must fail. */
static int should_fail(void)
{
	if (counting)
		counted++;
	if (armed < 0)
		return 0;
	if (armed == 0 && current == trace) {
		void *frames[16];
		int n = backtrace(frames, 16);
		backtrace_symbols_fd(frames, n, 1);
	}
	return armed-- == 0;
}

EXPORT void *malloc(size_t n)
{
	if (should_fail())
		return NULL;
	void *p = __libc_malloc(n);
	if (p)
		live++;
	return p;
}

EXPORT void *calloc(size_t a, size_t b)
{
	if (should_fail())
		return NULL;
	void *p = __libc_calloc(a, b);
	if (p)
		live++;
	return p;
}

EXPORT void *realloc(void *old, size_t n)
{
	if (should_fail())
		return NULL;
	void *p = __libc_realloc(old, n);
	if (p && !old)
		live++;
	if (!p && old && n == 0)
		live--;
	return p;
}

EXPORT void free(void *p)
{
	if (p)
		live--;
	__libc_free(p);
}

/* Every non-null field of got has the value it has in want. */
static int nothing_false(const char *want, const char *got)
{
	cJSON *w = cJSON_Parse(want), *g = cJSON_Parse(got), *f;
	int ok = w && g;

	cJSON_ArrayForEach(f, g) {
		if (!ok || cJSON_IsNull(f))
			continue;
		cJSON *same = cJSON_GetObjectItemCaseSensitive(w, f->string);
		if (!same || !cJSON_Compare(f, same, 1)) {
			printf("  field %s differs\n", f->string);
			ok = 0;
		}
	}
	cJSON_Delete(w);
	cJSON_Delete(g);
	return ok;
}

typedef struct transcript {
	const char *name;
	tbuf req, resp;
} transcript;

static void build(transcript *t, int kind)
{
	static const char body[] =
		"{\"model\":\"gpt-4o\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
		"\"messages\":[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":\"Q\"}]}";
	memset(t, 0, sizeof(*t));
	tbuf_addf(&t->req, "POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\n"
			   "Content-Length: %zu\r\n\r\n%s", strlen(body), body);
	tbuf events = { 0 };
	for (int i = 0; i < 6; i++)
		tbuf_addf(&events, "data: {\"model\":\"gpt-4o-1\",\"choices\":[{\"delta\":"
				   "{\"content\":\"w%d\"}}],\"usage\":null}\n\n", i);
	tbuf_adds(&events, "data: {\"model\":\"gpt-4o-1\",\"choices\":[],\"usage\":"
			   "{\"prompt_tokens\":12,\"completion_tokens\":6,"
			   "\"prompt_tokens_details\":{\"cached_tokens\":4}}}\n\ndata: [DONE]\n\n");
	if (kind == 2) {
		/* Anthropic, a non-streamed body in brotli. */
		static const char req[] = "{\"model\":\"claude-x\",\"max_tokens\":9,\"system\":\"S\","
					  "\"messages\":[{\"role\":\"user\",\"content\":\"Q\"}]}";
		static const char resp[] = "{\"type\":\"message\",\"model\":\"claude-x-1\",\"content\":"
					   "[{\"type\":\"text\",\"text\":\"A\"}],\"usage\":{\"input_tokens\":3,"
					   "\"cache_read_input_tokens\":5,\"output_tokens\":2}}";
		uint8_t br[512];
		size_t brlen = sizeof(br);
		t->name = "anthropic, br";
		tbuf_free(&t->req);
		tbuf_addf(&t->req, "POST /v1/messages HTTP/1.1\r\nHost: h\r\n"
				   "Content-Length: %zu\r\n\r\n%s", strlen(req), req);
		BrotliEncoderCompress(5, 22, BROTLI_MODE_TEXT, strlen(resp),
				      (const uint8_t *)resp, &brlen, br);
		tbuf_addf(&t->resp, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
				    "Content-Encoding: br\r\nContent-Length: %zu\r\n\r\n", brlen);
		tbuf_add(&t->resp, br, brlen);
	} else if (kind == 3) {
		/* Ollama, NDJSON in zstd. */
		static const char req[] = "{\"model\":\"llama3\",\"prompt\":\"Q\"}";
		static const char lines[] = "{\"model\":\"llama3\",\"response\":\"a\",\"done\":false}\n"
					    "{\"model\":\"llama3\",\"response\":\"\",\"done\":true,"
					    "\"prompt_eval_count\":7,\"eval_count\":2}\n";
		char zs[512];
		size_t zlen = ZSTD_compress(zs, sizeof(zs), lines, strlen(lines), 3);
		t->name = "ollama, zstd";
		tbuf_free(&t->req);
		tbuf_addf(&t->req, "POST /api/generate HTTP/1.1\r\nHost: h\r\n"
				   "Content-Length: %zu\r\n\r\n%s", strlen(req), req);
		tbuf_addf(&t->resp, "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"
				    "Content-Encoding: zstd\r\nContent-Length: %zu\r\n\r\n", zlen);
		tbuf_add(&t->resp, zs, zlen);
	} else if (kind == 0) {
		t->name = "sse, chunked";
		tbuf_adds(&t->resp, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
				    "Transfer-Encoding: chunked\r\n\r\n");
		tbuf_addf(&t->resp, "%zx\r\n", events.n);
		tbuf_add(&t->resp, events.p, events.n);
		tbuf_adds(&t->resp, "\r\n0\r\n\r\n");
	} else if (kind == 1) {
		t->name = "sse, gzip";
		tbuf gz = { 0 };
		tbuf_gzip(&gz, events.p, events.n);
		tbuf_addf(&t->resp, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
				    "Content-Encoding: gzip\r\nContent-Length: %zu\r\n\r\n", gz.n);
		tbuf_add(&t->resp, gz.p, gz.n);
		tbuf_free(&gz);
	}
	tbuf_free(&events);
}

static int run(const transcript *t, feed_result *res)
{
	tt_decoder_config cfg;
	feed_piece p[] = { { TT_DIR_SENT, t->req.p, t->req.n },
			   { TT_DIR_RECV, t->resp.p, t->resp.n } };

	tt_decoder_config_init(&cfg);
	feed_run(&cfg, p, 2, FEED_RANDOM, 3, res);
	return res->rc;
}

int main(void)
{
	static feed_result clean, res;
	char want[TT_RECORD_JSON_MAX], got[TT_RECORD_JSON_MAX];
	int failures = 0;
	long runs = 0;

	armed = -1;
	if (getenv("ALLOCFAIL_TRACE")) {
		void *frame;
		backtrace(&frame, 1); /* loads what backtrace needs, now */
		trace = strtol(getenv("ALLOCFAIL_TRACE"), NULL, 10);
	}
	for (int kind = 0; kind < 4; kind++) {
		transcript t;
		build(&t, kind);
		run(&t, &clean); /* warms library caches (OpenSSL's digests) */
		long before = live;
		counting = 1;
		counted = 0;
		run(&t, &clean);
		counting = 0;
		long total = counted;
		if (clean.n != 1 || live != before) {
			printf("FAIL %s: clean run gave %d records, %ld blocks leaked\n",
			       t.name, clean.n, live - before);
			return 1;
		}
		feed_stable_json(&clean.rec[0], want, sizeof(want));

		for (long i = 0; i < total; i++) {
			before = live;
			armed = current = i;
			int rc = run(&t, &res);
			armed = -1;
			runs++;
			/* A library may keep a block the first time it meets an
			 * error (OpenSSL's per-thread error queue): a leak is one
			 * that happens again when the same run is repeated. */
			if (live != before) {
				long first = live - before;
				before = live;
				armed = i;
				run(&t, &res);
				armed = -1;
				if (live != before) {
					printf("FAIL %s: failing allocation %ld leaked %ld blocks\n",
					       t.name, i, first);
					failures++;
				}
			}
			if (res.n > 1 || (res.n == 0 && rc == 0)) {
				printf("FAIL %s: failing allocation %ld gave %d records\n",
				       t.name, i, res.n);
				failures++;
			}
			for (int k = 0; k < res.n && k < FEED_MAX_RECORDS; k++) {
				feed_stable_json(&res.rec[k], got, sizeof(got));
				if (!res.rec[k].error[0] && !nothing_false(want, got)) {
					printf("FAIL %s: failing allocation %ld changed the record "
					       "without saying so:\n  %s\n  %s\n",
					       t.name, i, want, got);
					failures++;
				}
			}
		}
		printf("%s: %ld allocations in a clean run, each failed in turn\n", t.name, total);
		tbuf_free(&t.req);
		tbuf_free(&t.resp);
	}
	printf("allocation-failure sweep: %ld runs, %d failures\n", runs, failures);
	printf("%ld passed, %d failed\n", runs - failures, failures);
	return failures ? 1 : 0;
}
