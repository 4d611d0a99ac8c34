/* tbuf.c - test byte strings; see tbuf.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "tbuf.h"

void tbuf_add(tbuf *b, const void *data, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		while (cap < b->n + n + 1)
			cap *= 2;
		b->p = realloc(b->p, cap);
		if (!b->p)
			abort(); /* test code: no memory is a harness failure */
		b->cap = cap;
	}
	memcpy(b->p + b->n, data, n);
	b->n += n;
	b->p[b->n] = '\0';
}

void tbuf_adds(tbuf *b, const char *s)
{
	tbuf_add(b, s, strlen(s));
}

void tbuf_addf(tbuf *b, const char *fmt, ...)
{
	char tmp[4096];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		abort();
	tbuf_add(b, tmp, (size_t)n);
}

void tbuf_free(tbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

void tbuf_gzip(tbuf *out, const void *data, size_t n)
{
	tbuf_deflate(out, data, n, 15 + 16);
}

void tbuf_deflate(tbuf *out, const void *data, size_t n, int window_bits)
{
	z_stream z;
	unsigned char chunk[16384];

	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, 6, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		abort();
	z.next_in = (Bytef *)data;
	z.avail_in = (uInt)n;
	int rc;
	do {
		z.next_out = chunk;
		z.avail_out = sizeof(chunk);
		rc = deflate(&z, Z_FINISH);
		tbuf_add(out, chunk, sizeof(chunk) - z.avail_out);
	} while (rc == Z_OK);
	deflateEnd(&z);
}

char *tbuf_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	tbuf b = { 0 };
	char chunk[65536];
	size_t n;

	if (!f)
		return NULL;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		tbuf_add(&b, chunk, n);
	fclose(f);
	if (!b.p)
		tbuf_add(&b, "", 0);
	*len = b.n;
	return b.p;
}
