/*
 * test_dec_decompress.c - streaming Content-Encoding decoders
 * (decoder/decompress.c).
 *
 * Every compressed input is made here with the real encoders (zlib for
 * gzip, zlib-wrapped and raw deflate; libbrotlienc; libzstd), from a
 * plaintext the test builds, so the expected output is the plaintext
 * itself.  Each input is fed whole, in random splits (several seeds,
 * empty pieces included) and one byte at a time.  Whether a damaged
 * input is really invalid is judged by the codec's own one-shot decoder,
 * not by the code under test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "support/split.h"
#include <brotli/decode.h>
#include <brotli/encode.h>
#include <zlib.h>
#include <zstd.h>

#include "decoder/decompress.h"
#include "tokentap/error.h"

/* ---- byte strings and feeding ------------------------------------------ */

struct out {
	unsigned char *s;
	size_t len, cap;
};

static void out_addn(struct out *o, const void *p, size_t n)
{
	if (o->len + n + 1 > o->cap) {
		size_t want = o->cap ? o->cap : 256;
		while (want < o->len + n + 1)
			want *= 2;
		o->s = realloc(o->s, want);
		assert_non_null(o->s);
		o->cap = want;
	}
	if (n)
		memcpy(o->s + o->len, p, n);
	o->len += n;
	o->s[o->len] = '\0';
}

static void out_free(struct out *o)
{
	free(o->s);
	memset(o, 0, sizeof(*o));
}


static void on_out(void *user, const char *p, size_t n)
{
	assert_true(n > 0);
	out_addn(user, p, n);
}

struct result {
	struct out out;
	int rc;      /* first error of feed, or 0 */
	int end;     /* tt_decompress_end() */
};

static void decode(tt_coding coding, const void *in, size_t len, int mode,
		   struct result *r)
{
	splitter s;
	const char *p;
	size_t n;
	tt_decompress *d;

	memset(r, 0, sizeof(*r));
	out_addn(&r->out, "", 0);
	d = tt_decompress_new(coding, on_out, &r->out);
	assert_non_null(d);
	split_init(&s, in, len, mode);
	while (split_next(&s, &p, &n)) {
		int rc = tt_decompress_feed(d, p, n);
		if (r->rc)
			assert_int_equal(rc, r->rc); /* sticky */
		else
			r->rc = rc;
	}
	r->end = tt_decompress_end(d);
	if (r->rc)
		assert_int_equal(r->end, r->rc);
	tt_decompress_free(d);
}

/* Every mode must decode in to exactly want, and end cleanly. */
static void expect_plain(tt_coding coding, const struct out *in,
			 const struct out *want)
{
	for (int mode = 0; mode < SPLIT_MODES; mode++) {
		struct result r;
		decode(coding, in->s, in->len, mode, &r);
		if (r.rc || r.end || r.out.len != want->len)
			print_message("coding %d mode %d: rc=%d end=%d out %zu bytes, "
				      "want %zu\n", coding, mode, r.rc, r.end,
				      r.out.len, want->len);
		assert_int_equal(r.rc, 0);
		assert_int_equal(r.end, 0);
		assert_int_equal(r.out.len, want->len);
		assert_memory_equal(r.out.s, want->s, want->len);
		out_free(&r.out);
	}
}

/* ---- plaintexts ---------------------------------------------------------- */

/* SSE-like text mixed with incompressible bytes, well over 16 KiB out. */
static void make_plain(struct out *o, size_t approx)
{
	uint32_t rng = 12345;
	char line[160];
	int i = 0;

	while (o->len < approx) {
		int n = snprintf(line, sizeof(line),
				 "data: {\"i\":%d,\"delta\":{\"text\":\"tok%u\"}}\n\n",
				 i++, split_rand(&rng) % 1000);
		out_addn(o, line, (size_t)n);
		if (i % 16 == 0) {
			unsigned char rnd[300];
			for (size_t k = 0; k < sizeof(rnd); k++)
				rnd[k] = (unsigned char)split_rand(&rng);
			out_addn(o, rnd, sizeof(rnd));
		}
	}
}

/* ---- encoders ------------------------------------------------------------ */

enum enc_kind {
	ENC_GZIP,        /* zlib windowBits 15 + 16 */
	ENC_ZLIB,        /* 15: "deflate" as RFC 9110 means it */
	ENC_RAW,         /* -15: raw deflate, as some servers send */
	ENC_BR,
	ENC_ZSTD,
};

static tt_coding coding_of(enum enc_kind k)
{
	switch (k) {
	case ENC_GZIP: return TT_CODING_GZIP;
	case ENC_ZLIB: case ENC_RAW: return TT_CODING_DEFLATE;
	case ENC_BR: return TT_CODING_BR;
	default: return TT_CODING_ZSTD;
	}
}

static const char *name_of(enum enc_kind k)
{
	static const char *const names[] = { "gzip", "zlib", "raw", "br", "zstd" };
	return names[k];
}

/*
 * Compress the pieces of plain given by cuts (ncuts boundaries, the last
 * = plain->len) into one stream, flushing after each piece so that all
 * of it can be decoded from the bytes so far; marks[i] gets the stream
 * length after piece i.  With ncuts == 1 this is plain compression.
 */
static void encode(enum enc_kind k, const struct out *plain, const size_t *cuts,
		   size_t ncuts, struct out *enc, size_t *marks)
{
	unsigned char buf[65536];
	size_t from = 0;

	memset(enc, 0, sizeof(*enc));
	out_addn(enc, "", 0);
	if (k == ENC_GZIP || k == ENC_ZLIB || k == ENC_RAW) {
		z_stream z;
		int wbits = k == ENC_GZIP ? 15 + 16 : k == ENC_ZLIB ? 15 : -15;
		memset(&z, 0, sizeof(z));
		assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, wbits, 8,
					      Z_DEFAULT_STRATEGY), Z_OK);
		for (size_t i = 0; i < ncuts; i++) {
			int flush = i + 1 == ncuts ? Z_FINISH : Z_SYNC_FLUSH, rc;
			z.next_in = plain->s + from;
			z.avail_in = (uInt)(cuts[i] - from);
			do {
				z.next_out = buf;
				z.avail_out = sizeof(buf);
				rc = deflate(&z, flush);
				assert_true(rc == Z_OK || rc == Z_STREAM_END ||
					    rc == Z_BUF_ERROR);
				out_addn(enc, buf, sizeof(buf) - z.avail_out);
			} while (z.avail_out == 0 || (flush == Z_FINISH && rc != Z_STREAM_END));
			from = cuts[i];
			if (marks)
				marks[i] = enc->len;
		}
		deflateEnd(&z);
	} else if (k == ENC_BR) {
		BrotliEncoderState *b = BrotliEncoderCreateInstance(NULL, NULL, NULL);
		assert_non_null(b);
		BrotliEncoderSetParameter(b, BROTLI_PARAM_QUALITY, 5);
		for (size_t i = 0; i < ncuts; i++) {
			BrotliEncoderOperation op = i + 1 == ncuts ?
				BROTLI_OPERATION_FINISH : BROTLI_OPERATION_FLUSH;
			size_t avail_in = cuts[i] - from;
			const uint8_t *next_in = plain->s + from;
			for (;;) {
				size_t avail_out = sizeof(buf);
				uint8_t *next_out = buf;
				assert_true(BrotliEncoderCompressStream(b, op, &avail_in,
					&next_in, &avail_out, &next_out, NULL));
				out_addn(enc, buf, sizeof(buf) - avail_out);
				if (avail_in == 0 && !BrotliEncoderHasMoreOutput(b) &&
				    (op != BROTLI_OPERATION_FINISH ||
				     BrotliEncoderIsFinished(b)))
					break;
			}
			from = cuts[i];
			if (marks)
				marks[i] = enc->len;
		}
		BrotliEncoderDestroyInstance(b);
	} else {
		ZSTD_CCtx *c = ZSTD_createCCtx();
		assert_non_null(c);
		for (size_t i = 0; i < ncuts; i++) {
			ZSTD_EndDirective op = i + 1 == ncuts ? ZSTD_e_end : ZSTD_e_flush;
			ZSTD_inBuffer in = { plain->s + from, cuts[i] - from, 0 };
			size_t left;
			do {
				ZSTD_outBuffer ob = { buf, sizeof(buf), 0 };
				left = ZSTD_compressStream2(c, &ob, &in, op);
				assert_false(ZSTD_isError(left));
				out_addn(enc, buf, ob.pos);
			} while (left != 0);
			from = cuts[i];
			if (marks)
				marks[i] = enc->len;
		}
		ZSTD_freeCCtx(c);
	}
}

static void encode_all(enum enc_kind k, const struct out *plain, struct out *enc)
{
	size_t cut = plain->len;
	encode(k, plain, &cut, 1, enc, NULL);
}

/* The codec's own verdict: does a one-shot reference decoder accept it? */
static int reference_ok(enum enc_kind k, const struct out *in)
{
	size_t cap = 4u << 20;
	unsigned char *buf = malloc(cap);
	int ok = 0;

	assert_non_null(buf);
	if (k == ENC_GZIP || k == ENC_ZLIB || k == ENC_RAW) {
		z_stream z;
		int wbits = k == ENC_GZIP ? 15 + 16 : k == ENC_ZLIB ? 15 : -15;
		memset(&z, 0, sizeof(z));
		assert_int_equal(inflateInit2(&z, wbits), Z_OK);
		z.next_in = in->s;
		z.avail_in = (uInt)in->len;
		z.next_out = buf;
		z.avail_out = (uInt)cap;
		ok = inflate(&z, Z_FINISH) == Z_STREAM_END;
		inflateEnd(&z);
	} else if (k == ENC_BR) {
		size_t outn = cap;
		ok = BrotliDecoderDecompress(in->len, in->s, &outn, buf) ==
		     BROTLI_DECODER_RESULT_SUCCESS;
	} else {
		ok = !ZSTD_isError(ZSTD_decompress(buf, cap, in->s, in->len));
	}
	free(buf);
	return ok;
}

/* ---- tests --------------------------------------------------------------- */

static void test_coding_parse(void **state)
{
	(void)state;
	assert_int_equal(tt_coding_parse("gzip", 4), TT_CODING_GZIP);
	assert_int_equal(tt_coding_parse("x-gzip", 6), TT_CODING_GZIP);
	assert_int_equal(tt_coding_parse(" GZip\t", 6), TT_CODING_GZIP);
	assert_int_equal(tt_coding_parse("deflate", 7), TT_CODING_DEFLATE);
	assert_int_equal(tt_coding_parse("br", 2), TT_CODING_BR);
	assert_int_equal(tt_coding_parse("zstd", 4), TT_CODING_ZSTD);
	assert_int_equal(tt_coding_parse("identity", 8), TT_CODING_IDENTITY);
	assert_int_equal(tt_coding_parse("", 0), TT_CODING_IDENTITY);
	assert_int_equal(tt_coding_parse("gzip, br", 8), TT_CODING_UNKNOWN);
	assert_int_equal(tt_coding_parse("compress", 8), TT_CODING_UNKNOWN);
	/* Only len bytes count. */
	assert_int_equal(tt_coding_parse("brotli", 2), TT_CODING_BR);
	assert_null(tt_decompress_new(TT_CODING_UNKNOWN, on_out, NULL));
}

static void test_identity(void **state)
{
	struct out plain = { 0 };

	(void)state;
	make_plain(&plain, 20000);
	expect_plain(TT_CODING_IDENTITY, &plain, &plain);
	out_free(&plain);
}

static void test_roundtrip(void **state)
{
	struct out plain = { 0 };

	(void)state;
	make_plain(&plain, 100000);
	for (enum enc_kind k = ENC_GZIP; k <= ENC_ZSTD; k++) {
		struct out enc;
		encode_all(k, &plain, &enc);
		assert_true(reference_ok(k, &enc));
		print_message("%s: %zu -> %zu bytes\n", name_of(k), plain.len, enc.len);
		expect_plain(coding_of(k), &enc, &plain);
		out_free(&enc);
	}
	out_free(&plain);
}

/* Far more output than input: the decoders must drain every byte. */
static void test_high_ratio(void **state)
{
	struct out plain = { 0 };
	static char block[4096];

	(void)state;
	memset(block, 'a', sizeof(block));
	for (int i = 0; i < 256; i++)
		out_addn(&plain, block, sizeof(block));   /* 1 MiB */
	out_addn(&plain, "END", 3);
	for (enum enc_kind k = ENC_GZIP; k <= ENC_ZSTD; k++) {
		struct out enc;
		encode_all(k, &plain, &enc);
		expect_plain(coding_of(k), &enc, &plain);
		out_free(&enc);
	}
	out_free(&plain);
}

static void test_empty_body(void **state)
{
	struct out plain = { 0 };

	(void)state;
	out_addn(&plain, "", 0);
	for (enum enc_kind k = ENC_GZIP; k <= ENC_ZSTD; k++) {
		struct out enc;
		encode_all(k, &plain, &enc);
		expect_plain(coding_of(k), &enc, &plain);
		out_free(&enc);
	}
	out_free(&plain);
}

/* gzip with several members, zstd with several frames: all of it comes out. */
static void test_multi_member(void **state)
{
	struct out plain = { 0 }, a = { 0 }, b = { 0 }, whole = { 0 };

	(void)state;
	make_plain(&plain, 30000);
	out_addn(&a, plain.s, 10000);
	out_addn(&b, plain.s + 10000, plain.len - 10000);
	for (enum enc_kind k = ENC_GZIP; k <= ENC_ZSTD; k += ENC_ZSTD - ENC_GZIP) {
		struct out ea, eb;
		encode_all(k, &a, &ea);
		encode_all(k, &b, &eb);
		memset(&whole, 0, sizeof(whole));
		out_addn(&whole, ea.s, ea.len);
		out_addn(&whole, eb.s, eb.len);
		out_addn(&whole, ea.s, ea.len);
		struct out want = { 0 };
		out_addn(&want, plain.s, plain.len);
		out_addn(&want, a.s, a.len);
		expect_plain(coding_of(k), &whole, &want);

		/* Cut right after the first member/frame: a clean end. */
		struct out first = { 0 };
		out_addn(&first, ea.s, ea.len);
		expect_plain(coding_of(k), &first, &a);

		/* Cut inside the second: not a clean end. */
		for (int mode = 0; mode < SPLIT_MODES; mode++) {
			struct result r;
			decode(coding_of(k), whole.s, ea.len + eb.len / 2, mode, &r);
			assert_int_equal(r.end, TT_EDECODE);
			assert_true(r.out.len >= a.len && r.out.len <= plain.len);
			assert_memory_equal(r.out.s, plain.s, r.out.len);
			out_free(&r.out);
		}
		out_free(&first);
		out_free(&want);
		out_free(&whole);
		out_free(&ea);
		out_free(&eb);
	}
	out_free(&a);
	out_free(&b);
	out_free(&plain);
}

/* A stream cut short decodes what it can, then end() says it is not whole. */
static void test_truncated(void **state)
{
	struct out plain = { 0 };

	(void)state;
	make_plain(&plain, 50000);
	for (enum enc_kind k = ENC_GZIP; k <= ENC_ZSTD; k++) {
		struct out enc;
		encode_all(k, &plain, &enc);
		size_t cuts[] = { 1, enc.len / 2, enc.len - 1 };
		for (size_t c = 0; c < sizeof(cuts) / sizeof(cuts[0]); c++) {
			struct out ref = { 0 };
			for (int mode = 0; mode < SPLIT_MODES; mode++) {
				struct result r;
				decode(coding_of(k), enc.s, cuts[c], mode, &r);
				if (r.end != TT_EDECODE)
					print_message("%s cut at %zu/%zu mode %d: end=%d\n",
						      name_of(k), cuts[c], enc.len, mode, r.end);
				assert_int_equal(r.rc, 0);
				assert_int_equal(r.end, TT_EDECODE);
				assert_true(r.out.len <= plain.len);
				assert_memory_equal(r.out.s, plain.s, r.out.len);
				/* The same bytes in, the same bytes out, however cut. */
				if (mode == 0) {
					ref = r.out;
					continue;
				}
				assert_int_equal(r.out.len, ref.len);
				assert_memory_equal(r.out.s, ref.s, ref.len);
				out_free(&r.out);
			}
			out_free(&ref);
		}
		out_free(&enc);
	}
	out_free(&plain);
}

/* Damaged streams the codec's reference decoder rejects give TT_EDECODE. */
static void test_corrupt(void **state)
{
	struct out plain = { 0 };

	(void)state;
	make_plain(&plain, 40000);
	for (enum enc_kind k = ENC_GZIP; k <= ENC_ZSTD; k++) {
		struct out enc;
		int tested = 0;
		encode_all(k, &plain, &enc);
		size_t pos[] = { 0, 1, 2, 3, enc.len / 10, enc.len / 2,
				 enc.len * 9 / 10, enc.len - 2 };
		for (size_t i = 0; i < sizeof(pos) / sizeof(pos[0]); i++) {
			for (unsigned flip = 0x01; flip <= 0x80; flip <<= 3) {
				enc.s[pos[i]] ^= (unsigned char)flip;
				if (!reference_ok(k, &enc)) {
					tested++;
					for (int mode = 0; mode < SPLIT_MODES; mode++) {
						struct result r;
						decode(coding_of(k), enc.s, enc.len, mode, &r);
						if (r.end != TT_EDECODE)
							print_message("%s flip %#x at %zu mode %d: "
								      "rc=%d end=%d\n", name_of(k),
								      flip, pos[i], mode, r.rc, r.end);
						assert_int_equal(r.end, TT_EDECODE);
						out_free(&r.out);
					}
				}
				enc.s[pos[i]] ^= (unsigned char)flip;
			}
		}
		print_message("%s: %d damaged streams rejected\n", name_of(k), tested);
		assert_true(tested > 0);
		out_free(&enc);
	}

	/* Not compressed at all. */
	static const char junk[] = "this is plain text, not compressed \xff\xff\xff";
	struct out j = { 0 };
	out_addn(&j, junk, sizeof(junk) - 1);
	for (enum enc_kind k = ENC_GZIP; k <= ENC_ZSTD; k++) {
		if (k == ENC_ZLIB)
			continue; /* "deflate" picks raw for these bytes */
		assert_false(reference_ok(k, &j));
		for (int mode = 0; mode < SPLIT_MODES; mode++) {
			struct result r;
			decode(coding_of(k), j.s, j.len, mode, &r);
			assert_int_equal(r.end, TT_EDECODE);
			out_free(&r.out);
		}
	}
	/* Reserved block type (BTYPE 11) in raw deflate: an error at once. */
	struct out bad = { 0 };
	out_addn(&bad, "\xff\xff\xff\xff", 4);
	assert_false(reference_ok(ENC_RAW, &bad));
	for (int mode = 0; mode < SPLIT_MODES; mode++) {
		struct result r;
		decode(TT_CODING_DEFLATE, bad.s, bad.len, mode, &r);
		assert_int_equal(r.rc, TT_EDECODE);
		out_free(&r.out);
	}
	out_free(&bad);
	out_free(&j);
	out_free(&plain);
}

/*
 * A streamed response compressed with a flush after each event decodes
 * event by event: everything sent so far is out before the stream ends.
 */
static void check_flushed_stream(size_t ncuts, size_t approx)
{
	struct out plain = { 0 };
	size_t cuts[32], marks[32];

	assert_true(ncuts <= 32);
	make_plain(&plain, approx);
	for (size_t i = 0; i < ncuts; i++)
		cuts[i] = plain.len * (i + 1) / ncuts;
	for (enum enc_kind k = ENC_GZIP; k <= ENC_ZSTD; k++) {
		struct out enc;
		encode(k, &plain, cuts, ncuts, &enc, marks);
		assert_int_equal(marks[ncuts - 1], enc.len);
		for (int mode = 0; mode < SPLIT_MODES; mode++) {
			struct out got = { 0 };
			tt_decompress *d = tt_decompress_new(coding_of(k), on_out, &got);
			size_t from = 0;
			assert_non_null(d);
			out_addn(&got, "", 0);
			for (size_t i = 0; i < ncuts; i++) {
				splitter s;
				const char *p;
				size_t n;
				split_init(&s, enc.s + from, marks[i] - from, mode);
				while (split_next(&s, &p, &n))
					assert_int_equal(tt_decompress_feed(d, p, n), 0);
				from = marks[i];
				if (i + 1 == ncuts)
					break;
				if (got.len != cuts[i])
					print_message("%s mode %d: after flush %zu: %zu bytes out, "
						      "want %zu\n", name_of(k), mode, i,
						      got.len, cuts[i]);
				assert_int_equal(got.len, cuts[i]);
				assert_memory_equal(got.s, plain.s, got.len);
			}
			assert_int_equal(tt_decompress_end(d), 0);
			assert_int_equal(got.len, plain.len);
			assert_memory_equal(got.s, plain.s, plain.len);
			tt_decompress_free(d);
			out_free(&got);
		}
		out_free(&enc);
	}
	out_free(&plain);
}

/* Small events, as an LLM stream sends them. */
static void test_flushed_stream(void **state)
{
	(void)state;
	check_flushed_stream(24, 24 * 700);
}

/* Flushes far apart: more output per piece than one output buffer. */
static void test_flushed_stream_big(void **state)
{
	(void)state;
	check_flushed_stream(4, 4 * 50000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_coding_parse),
		cmocka_unit_test(test_identity),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_high_ratio),
		cmocka_unit_test(test_empty_body),
		cmocka_unit_test(test_multi_member),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_corrupt),
		cmocka_unit_test(test_flushed_stream),
		cmocka_unit_test(test_flushed_stream_big),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
