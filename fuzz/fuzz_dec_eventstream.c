/*
 * fuzz_dec_eventstream.c - libFuzzer target for the AWS event stream
 * framing of Bedrock's streamed responses (decoder/eventstream.c).
 *
 * The input:
 *	byte 0   the seed of the random splits (xorshift)
 *	byte 1   bit 0: a small frame cap (128 bytes) instead of 65536;
 *	         bit 1: fix up both CRCs of every frame the input describes
 *	         before feeding it, so that the fuzzer reaches the header
 *	         and payload parsing behind the checks
 *	then     the byte stream
 *
 * Oracles besides the sanitizers: whole, random pieces and one byte at a
 * time give the same messages and the same sticky error; a payload lies
 * inside the frame cap; header strings are NUL-terminated in their arrays.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "decoder/eventstream.h"
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
static void on_msg(void *user, const tt_es_message *m)
{
	struct trace *t = user;

	if (!memchr(m->event_type, 0, sizeof(m->event_type)) ||
	    !memchr(m->message_type, 0, sizeof(m->message_type)) ||
	    !memchr(m->exception_type, 0, sizeof(m->exception_type)) ||
	    m->payload_len > t->cap)
		abort();
	mix(t, m->event_type, strlen(m->event_type) + 1);
	mix(t, m->message_type, strlen(m->message_type) + 1);
	mix(t, m->exception_type, strlen(m->exception_type) + 1);
	mix(t, &m->payload_len, sizeof(m->payload_len));
	mix(t, m->payload, m->payload_len);
	t->n++;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Walk the frames the lengths describe and make both CRCs right. */
static void fix_crcs(uint8_t *p, size_t n)
{
	size_t at = 0;

	while (n - at >= 16) {
		uint32_t total = be32(p + at);

		if (total < 16 || total > n - at)
			break;
		put_be32(p + at + 8, (uint32_t)crc32(0, p + at, 8));
		put_be32(p + at + total - 4,
			 (uint32_t)crc32(0, p + at, total - 4));
		at += total;
	}
}

/* mode 0: whole; 1: random pieces of 1..64 bytes; 2: one byte at a time. */
static int run(const uint8_t *p, size_t n, size_t cap, int mode,
	       unsigned seed, struct trace *t)
{
	tt_eventstream e;
	size_t at = 0;
	int rc;

	memset(t, 0, sizeof(*t));
	t->h = 0xcbf29ce484222325ULL;
	t->cap = cap;
	tt_eventstream_init(&e, cap, on_msg, t);
	while (at < n) {
		size_t k = n - at;

		if (mode == 1)
			k = 1 + fuzz_rand(&seed) % 64;
		else if (mode == 2)
			k = 1;
		if (k > n - at)
			k = n - at;
		rc = tt_eventstream_feed(&e, (const char *)p + at, k);
		if (rc > 0)
			abort();
		at += k;
	}
	rc = tt_eventstream_end(&e);
	tt_eventstream_free(&e);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct trace a, b, c;
	unsigned seed;
	size_t cap;
	uint8_t *p;
	int ra, rb, rc;

	if (size < 2)
		return 0;
	seed = 0x9e3779b9u ^ data[0];
	cap = (data[1] & 1) ? 128 : 65536;
	p = malloc(size - 2 + 1);
	if (!p)
		return 0;
	memcpy(p, data + 2, size - 2);
	if (data[1] & 2)
		fix_crcs(p, size - 2);
	ra = run(p, size - 2, cap, 0, seed, &a);
	rb = run(p, size - 2, cap, 1, seed, &b);
	rc = run(p, size - 2, cap, 2, seed, &c);
	if (ra != rb || ra != rc || a.n != b.n || a.h != b.h || a.n != c.n ||
	    a.h != c.h)
		abort(); /* the way the bytes arrived changed the messages */
	free(p);
	return 0;
}
