/*
 * fuzz_dec_decompress.c - libFuzzer target for the streaming decoders of
 * Content-Encoding (decoder/decompress.c): gzip, deflate (zlib and raw),
 * br, zstd.
 *
 * The input:
 *	byte 0   the seed of the random splits (xorshift)
 *	byte 1   bits 0-2: the coding (identity, gzip, deflate, br, zstd);
 *	         bit 3: round trip: compress the rest with the real encoder
 *	         (gzip, deflate and zstd; br has no encoder in this build)
 *	         and require the decoder to give it back exactly
 *	then     the compressed bytes, or the plain ones for a round trip
 *
 * Oracles besides the sanitizers: whole, random pieces and one byte at a
 * time give the same outcome, and the same output when the stream is
 * clean; a round trip gives back the input and ends cleanly.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>
#include <zstd.h>

#include "decoder/decompress.h"
#include "fuzz_util.h"

/* Decompression bombs are bounded by the decoder's consumers, not here:
 * stop hashing past this much output, keep counting it. */
#define OUT_HASHED (4u << 20)

struct trace {
	uint64_t h;      /* FNV-1a over every callback's arguments */
	size_t n;
	size_t cap;
};

static void mix(struct trace *t, const void *p, size_t n)
{
	t->h = fuzz_mix(t->h, p, n);
}
static void on_out(void *user, const char *p, size_t n)
{
	struct trace *t = user;

	if (t->n < OUT_HASHED)
		mix(t, p, n < OUT_HASHED - t->n ? n : OUT_HASHED - t->n);
	t->n += n;
}

/* mode 0: whole; 1: random pieces of 1..64 bytes; 2: one byte at a time.
 * Returns the first error of feed, else that of end. */
static int run(tt_coding coding, const uint8_t *p, size_t n, int mode,
	       unsigned seed, struct trace *t)
{
	tt_decompress *d;
	size_t at = 0;
	int rc = 0, e;

	memset(t, 0, sizeof(*t));
	t->h = 0xcbf29ce484222325ULL;
	d = tt_decompress_new(coding, on_out, t);
	if (!d)
		return 1;
	while (at < n) {
		size_t k = n - at;

		if (mode == 1)
			k = 1 + fuzz_rand(&seed) % 64;
		else if (mode == 2)
			k = 1;
		if (k > n - at)
			k = n - at;
		e = tt_decompress_feed(d, p + at, k);
		if (e > 0)
			abort();
		if (e < 0 && !rc)
			rc = e;
		at += k;
	}
	e = tt_decompress_end(d);
	if (!rc)
		rc = e;
	tt_decompress_free(d);
	return rc;
}

/* Compress p with the real encoder; NULL when this coding has none here. */
static uint8_t *compress_with(tt_coding coding, const uint8_t *p, size_t n,
			      size_t *out_n)
{
	uint8_t *out = NULL;

	if (coding == TT_CODING_GZIP || coding == TT_CODING_DEFLATE) {
		z_stream z;
		size_t cap = deflateBound(NULL, n) + 64;

		memset(&z, 0, sizeof(z));
		/* 15 + 16: gzip framing; 15: zlib framing. */
		if (deflateInit2(&z, 6, Z_DEFLATED,
				 coding == TT_CODING_GZIP ? 31 : 15, 8,
				 Z_DEFAULT_STRATEGY) != Z_OK)
			return NULL;
		out = malloc(cap);
		z.next_in = (Bytef *)p;
		z.avail_in = (uInt)n;
		z.next_out = out;
		z.avail_out = (uInt)cap;
		if (!out || deflate(&z, Z_FINISH) != Z_STREAM_END) {
			free(out);
			out = NULL;
		} else {
			*out_n = z.total_out;
		}
		deflateEnd(&z);
	} else if (coding == TT_CODING_ZSTD) {
		size_t cap = ZSTD_compressBound(n), r;

		out = malloc(cap);
		if (!out)
			return NULL;
		r = ZSTD_compress(out, cap, p, n, 3);
		if (ZSTD_isError(r)) {
			free(out);
			return NULL;
		}
		*out_n = r;
	}
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct trace a, b, c;
	unsigned seed;
	tt_coding coding;
	int ra, rb, rc;

	if (size < 2)
		return 0;
	seed = 0x9e3779b9u ^ data[0];
	coding = (tt_coding)((data[1] & 7) % 5);
	if (data[1] & 8) {
		size_t zn = 0;
		uint8_t *z = compress_with(coding, data + 2, size - 2, &zn);
		struct trace plain;

		if (!z)
			return 0;
		memset(&plain, 0, sizeof(plain));
		plain.h = 0xcbf29ce484222325ULL;
		on_out(&plain, (const char *)data + 2, size - 2);
		ra = run(coding, z, zn, 1, seed, &a);
		rb = run(coding, z, zn, 2, seed, &b);
		free(z);
		if (ra != 0 || rb != 0 || a.n != plain.n || a.h != plain.h ||
		    b.n != plain.n || b.h != plain.h)
			abort(); /* the round trip lost or changed bytes */
		return 0;
	}
	ra = run(coding, data + 2, size - 2, 0, seed, &a);
	rb = run(coding, data + 2, size - 2, 1, seed, &b);
	rc = run(coding, data + 2, size - 2, 2, seed, &c);
	if (ra != rb || ra != rc)
		abort(); /* the way the bytes arrived changed the outcome */
	/* How much of a corrupt stream comes out before the error depends on
	 * where the decoder stood (brotli flushes per piece): compare the
	 * output of clean streams only. */
	if (ra == 0 && (a.n != b.n || a.h != b.h || a.n != c.n || a.h != c.h))
		abort(); /* the way the bytes arrived changed the output */
	return 0;
}
