/*
 * fuzz_dec_sse.c - libFuzzer target for the text stream framings of
 * response bodies: server-sent events (decoder/sse.c) and the line
 * splitter under NDJSON (decoder/lines.c).
 *
 * The input:
 *	byte 0   the seed of the random splits (xorshift)
 *	byte 1   bit 0: a small cap (64 bytes) instead of 4096; bit 1: the
 *	         line splitter instead of SSE
 *	then     the body
 *
 * Oracle besides the sanitizers: the body fed whole, in random pieces and
 * one byte at a time gives the same events, in the same order, with the
 * same truncated flags (WHATWG: the parse does not depend on how the bytes
 * arrive), and no delivered event is larger than the cap allows.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decoder/lines.h"
#include "decoder/sse.h"
#include "fuzz_util.h"

struct trace {
	uint64_t h;      /* FNV-1a over every callback's arguments */
	size_t n;
	size_t cap;
};

static void mix(struct trace *t, const void *p, size_t n)
{
	t->h = fuzz_mix(t->h, p, n);
}

static void on_event(void *user, const char *event, const char *data,
		     size_t len, int truncated)
{
	struct trace *t = user;

	if (strlen(event) >= 64 || len > t->cap + 1)
		abort(); /* more than the cap was kept */
	mix(t, event, strlen(event) + 1);
	mix(t, &len, sizeof(len));
	mix(t, data, len);
	mix(t, &truncated, sizeof(truncated));
	t->n++;
}

static void on_line(void *user, const char *line, size_t len, int truncated)
{
	struct trace *t = user;

	if (len > t->cap)
		abort();
	mix(t, &len, sizeof(len));
	mix(t, line, len);
	mix(t, &truncated, sizeof(truncated));
	t->n++;
}

/* mode 0: whole; 1: random pieces of 1..64 bytes; 2: one byte at a time. */
static void run(const uint8_t *p, size_t n, int lines, size_t cap, int mode,
		unsigned seed, struct trace *t)
{
	tt_sse s;
	tt_lines l;
	size_t at = 0;

	memset(t, 0, sizeof(*t));
	t->h = 0xcbf29ce484222325ULL;
	t->cap = cap;
	if (lines)
		tt_lines_init(&l, cap, on_line, t);
	else
		tt_sse_init(&s, cap, on_event, t);
	while (at < n) {
		size_t k = n - at;

		if (mode == 1)
			k = 1 + fuzz_rand(&seed) % 64;
		else if (mode == 2)
			k = 1;
		if (k > n - at)
			k = n - at;
		if (lines)
			tt_lines_feed(&l, (const char *)p + at, k);
		else
			tt_sse_feed(&s, (const char *)p + at, k);
		at += k;
	}
	if (lines) {
		tt_lines_end(&l);
		tt_lines_free(&l);
	} else {
		tt_sse_end(&s);
		tt_sse_free(&s);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct trace a, b, c;
	unsigned seed;
	int lines;
	size_t cap;

	if (size < 2)
		return 0;
	seed = 0x9e3779b9u ^ data[0];
	cap = (data[1] & 1) ? 64 : 4096;
	lines = (data[1] & 2) != 0;
	run(data + 2, size - 2, lines, cap, 0, seed, &a);
	run(data + 2, size - 2, lines, cap, 1, seed, &b);
	run(data + 2, size - 2, lines, cap, 2, seed, &c);
	if (a.n != b.n || a.h != b.h || a.n != c.n || a.h != c.h)
		abort(); /* the way the bytes arrived changed the events */
	return 0;
}
