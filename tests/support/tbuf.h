/* tbuf.h - a growable byte string for building test inputs. */
#ifndef TT_TEST_TBUF_H
#define TT_TEST_TBUF_H

#include <stddef.h>

typedef struct tbuf {
	char *p;
	size_t n, cap;
} tbuf;

void tbuf_add(tbuf *b, const void *data, size_t n);
void tbuf_adds(tbuf *b, const char *s);
void tbuf_addf(tbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tbuf_free(tbuf *b);

/* zlib's deflate of data: window_bits 15 (zlib wrapper), -15 (raw) or
 * 15 + 16 (gzip). */
void tbuf_deflate(tbuf *out, const void *data, size_t n, int window_bits);
/* gzip (RFC 1952) of data, as one member. */
void tbuf_gzip(tbuf *out, const void *data, size_t n);

/* Read a whole file; NULL when it cannot be read. Caller frees. */
char *tbuf_read_file(const char *path, size_t *len);

#endif
