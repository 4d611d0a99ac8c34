/*
 * fuzz_dec_ndjson.c - libFuzzer target for the JSON value splitter under
 * JSON and NDJSON bodies (decoder/jsonseq.c): one object, a stream of
 * objects, or an array whose elements arrive one by one.
 *
 * The input:
 *	byte 0   the seed of the random splits (xorshift)
 *	byte 1   bit 0: a small cap (48 bytes) instead of 8192
 *	then     the body
 *
 * Oracles besides the sanitizers: whole, random pieces and one byte at a
 * time give the same values with the same truncated flags; a value not
 * marked truncated is never longer than the cap; and whenever the whole
 * body is one valid JSON object small enough, it comes out as exactly one
 * value that cJSON reads back as an object.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "decoder/jsonseq.h"
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
static void on_value(void *user, const char *head, size_t head_len,
		     const char *tail, size_t tail_len, int truncated)
{
	struct trace *t = user;

	if (head_len > t->cap || tail_len > TT_JSONSEQ_TAIL)
		abort(); /* more than the caps were kept */
	mix(t, &head_len, sizeof(head_len));
	mix(t, head, head_len);
	mix(t, &tail_len, sizeof(tail_len));
	mix(t, tail, tail_len);
	mix(t, &truncated, sizeof(truncated));
	t->n++;
}

/* mode 0: whole; 1: random pieces of 1..64 bytes; 2: one byte at a time. */
static void run(const uint8_t *p, size_t n, size_t cap, int mode,
		unsigned seed, struct trace *t)
{
	tt_jsonseq j;
	size_t at = 0;

	memset(t, 0, sizeof(*t));
	t->h = 0xcbf29ce484222325ULL;
	t->cap = cap;
	tt_jsonseq_init(&j, cap, on_value, t);
	while (at < n) {
		size_t k = n - at;

		if (mode == 1)
			k = 1 + fuzz_rand(&seed) % 64;
		else if (mode == 2)
			k = 1;
		if (k > n - at)
			k = n - at;
		tt_jsonseq_feed(&j, (const char *)p + at, k);
		at += k;
	}
	tt_jsonseq_end(&j);
	tt_jsonseq_free(&j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct trace a, b, c;
	unsigned seed;
	size_t cap;

	if (size < 2)
		return 0;
	seed = 0x9e3779b9u ^ data[0];
	cap = (data[1] & 1) ? 48 : 8192;
	run(data + 2, size - 2, cap, 0, seed, &a);
	run(data + 2, size - 2, cap, 1, seed, &b);
	run(data + 2, size - 2, cap, 2, seed, &c);
	if (a.n != b.n || a.h != b.h || a.n != c.n || a.h != c.h)
		abort(); /* the way the bytes arrived changed the values */

	/* One small valid object: exactly one value.  cJSON takes any byte
	 * below 0x21 for white space, JSON only four: leave the others out. */
	for (size_t i = 2; i < size; i++)
		if (data[i] < 0x20 && data[i] != '\t' && data[i] != '\n' &&
		    data[i] != '\r')
			return 0;
	if (size - 2 <= cap) {
		char *z = malloc(size - 1);
		cJSON *o;

		if (!z)
			return 0;
		memcpy(z, data + 2, size - 2);
		z[size - 2] = '\0';
		/* Nothing but the object and white space. */
		o = cJSON_ParseWithLengthOpts(z, size - 1, NULL, 1);
		if (cJSON_IsObject(o) && a.n != 1)
			abort();
		cJSON_Delete(o);
		free(z);
	}
	return 0;
}
