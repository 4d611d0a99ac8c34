/* decompress.c - streaming Content-Encoding decoders; see decompress.h. */
#include <brotli/decode.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>
#include <zstd.h>

#include "decompress.h"
#include "tokentap/error.h"

#define OUT_CHUNK 16384

struct tt_decompress {
	tt_coding coding;
	tt_decompress_fn fn;
	void *user;
	int error;
	int finished;          /* the last member/frame ended */
	/* zlib */
	z_stream z;
	int z_ready;
	unsigned char head[2]; /* "deflate": the first bytes, to tell zlib from raw */
	size_t head_len;
	/* brotli */
	BrotliDecoderState *br;
	/* zstd */
	ZSTD_DStream *zs;
	unsigned char out[OUT_CHUNK];
};

tt_coding tt_coding_parse(const char *v, size_t len)
{
	while (len && (*v == ' ' || *v == '\t')) {
		v++;
		len--;
	}
	while (len && (v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	if (len == 0 || (len == 8 && !strncasecmp(v, "identity", 8)))
		return TT_CODING_IDENTITY;
	if ((len == 4 && !strncasecmp(v, "gzip", 4)) ||
	    (len == 6 && !strncasecmp(v, "x-gzip", 6)))
		return TT_CODING_GZIP;
	if (len == 7 && !strncasecmp(v, "deflate", 7))
		return TT_CODING_DEFLATE;
	if (len == 2 && !strncasecmp(v, "br", 2))
		return TT_CODING_BR;
	if (len == 4 && !strncasecmp(v, "zstd", 4))
		return TT_CODING_ZSTD;
	return TT_CODING_UNKNOWN;
}

static int z_init(tt_decompress *d, int window_bits)
{
	memset(&d->z, 0, sizeof(d->z));
	if (inflateInit2(&d->z, window_bits) != Z_OK)
		return TT_ENOMEM;
	d->z_ready = 1;
	return 0;
}

tt_decompress *tt_decompress_new(tt_coding coding, tt_decompress_fn fn,
				 void *user)
{
	tt_decompress *d;

	if (coding == TT_CODING_UNKNOWN)
		return NULL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->coding = coding;
	d->fn = fn;
	d->user = user;
	switch (coding) {
	case TT_CODING_GZIP:
		/* 15 + 16: gzip wrapper only. */
		if (z_init(d, 15 + 16) < 0)
			goto fail;
		break;
	case TT_CODING_DEFLATE:
		/* Initialised once the first two bytes show the wrapper. */
		break;
	case TT_CODING_BR:
		d->br = BrotliDecoderCreateInstance(NULL, NULL, NULL);
		if (!d->br)
			goto fail;
		break;
	case TT_CODING_ZSTD:
		d->zs = ZSTD_createDStream();
		if (!d->zs || ZSTD_isError(ZSTD_initDStream(d->zs)))
			goto fail;
		break;
	default:
		break;
	}
	return d;
fail:
	tt_decompress_free(d);
	return NULL;
}

static int feed_zlib(tt_decompress *d, const unsigned char *p, size_t n)
{
	int out_full = 0; /* zlib may hold more output than fitted */

	d->z.next_in = (Bytef *)p;
	d->z.avail_in = (uInt)n;
	while (d->z.avail_in > 0 || out_full) {
		if (d->finished) {
			/* Bytes after the end: another gzip member may follow. */
			if (d->coding != TT_CODING_GZIP)
				return 0;
			if (inflateReset(&d->z) != Z_OK)
				return TT_EDECODE;
			d->finished = 0;
		}
		d->z.next_out = d->out;
		d->z.avail_out = OUT_CHUNK;
		int rc = inflate(&d->z, Z_NO_FLUSH);
		size_t produced = OUT_CHUNK - d->z.avail_out;
		out_full = produced == OUT_CHUNK;
		if (produced)
			d->fn(d->user, (const char *)d->out, produced);
		if (rc == Z_STREAM_END) {
			d->finished = 1;
			out_full = 0;
			continue;
		}
		if (rc == Z_BUF_ERROR && produced == 0)
			break;
		if (rc != Z_OK)
			return TT_EDECODE;
	}
	return 0;
}

/*
 * RFC 9110 says "deflate" is the zlib format, but some servers send raw
 * deflate.  A zlib header is CM=8 and a 16-bit value divisible by 31.
 */
static int feed_deflate(tt_decompress *d, const unsigned char *p, size_t n)
{
	if (d->z_ready)
		return feed_zlib(d, p, n);
	while (n && d->head_len < 2) {
		d->head[d->head_len++] = *p++;
		n--;
	}
	if (d->head_len < 2)
		return 0;
	int zlib = (d->head[0] & 0x0f) == 8 &&
		   ((d->head[0] << 8) | d->head[1]) % 31 == 0;
	if (z_init(d, zlib ? 15 : -15) < 0)
		return TT_ENOMEM;
	int rc = feed_zlib(d, d->head, 2);
	if (rc == 0 && n)
		rc = feed_zlib(d, p, n);
	return rc;
}

static int feed_brotli(tt_decompress *d, const unsigned char *p, size_t n)
{
	size_t avail_in = n;
	const uint8_t *next_in = p;

	for (;;) {
		size_t avail_out = OUT_CHUNK;
		uint8_t *next_out = d->out;
		BrotliDecoderResult r = BrotliDecoderDecompressStream(
			d->br, &avail_in, &next_in, &avail_out, &next_out, NULL);
		size_t produced = OUT_CHUNK - avail_out;
		if (produced)
			d->fn(d->user, (const char *)d->out, produced);
		if (r == BROTLI_DECODER_RESULT_ERROR)
			return TT_EDECODE;
		if (r == BROTLI_DECODER_RESULT_SUCCESS) {
			d->finished = 1;
			return 0;
		}
		if (r == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT &&
		    !BrotliDecoderHasMoreOutput(d->br))
			return 0;
		/* NEEDS_MORE_OUTPUT: loop again. */
	}
}

static int feed_zstd(tt_decompress *d, const unsigned char *p, size_t n)
{
	ZSTD_inBuffer in = { p, n, 0 };
	int out_full = 0; /* the decoder may hold more output than fitted */

	while (in.pos < in.size || out_full) {
		ZSTD_outBuffer out = { d->out, OUT_CHUNK, 0 };
		size_t before = in.pos;
		size_t rc = ZSTD_decompressStream(d->zs, &out, &in);
		if (ZSTD_isError(rc))
			return TT_EDECODE;
		if (out.pos)
			d->fn(d->user, (const char *)d->out, out.pos);
		/* 0 means a frame just ended; more input starts another. */
		if (rc == 0)
			d->finished = 1;
		else if (in.pos > before || out.pos)
			d->finished = 0;
		out_full = out.pos == OUT_CHUNK;
		if (!out_full && in.pos == before)
			break;
	}
	return 0;
}

int tt_decompress_feed(tt_decompress *d, const void *p, size_t n)
{
	int rc = 0;

	if (d->error)
		return d->error;
	if (n == 0)
		return 0;
	switch (d->coding) {
	case TT_CODING_IDENTITY:
		d->fn(d->user, p, n);
		break;
	case TT_CODING_GZIP:
		rc = feed_zlib(d, p, n);
		break;
	case TT_CODING_DEFLATE:
		rc = feed_deflate(d, p, n);
		break;
	case TT_CODING_BR:
		rc = feed_brotli(d, p, n);
		break;
	case TT_CODING_ZSTD:
		rc = feed_zstd(d, p, n);
		break;
	default:
		rc = TT_EDECODE;
	}
	if (rc < 0)
		d->error = TT_EDECODE;
	return d->error;
}

int tt_decompress_end(tt_decompress *d)
{
	if (d->error)
		return d->error;
	if (d->coding == TT_CODING_IDENTITY)
		return 0;
	return d->finished ? 0 : TT_EDECODE;
}

void tt_decompress_free(tt_decompress *d)
{
	if (!d)
		return;
	if (d->z_ready)
		inflateEnd(&d->z);
	if (d->br)
		BrotliDecoderDestroyInstance(d->br);
	if (d->zs)
		ZSTD_freeDStream(d->zs);
	free(d);
}
