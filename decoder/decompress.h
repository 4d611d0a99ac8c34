/*
 * decompress.h - undo a response's Content-Encoding as the bytes arrive.
 *
 * gzip (several members allowed), deflate (zlib-wrapped as RFC 9110 says,
 * or raw, which some servers send), br (libbrotli) and zstd (libzstd,
 * several frames allowed).  The state carries over between pieces, so a
 * streamed, compressed SSE response decodes as it comes.
 */
#ifndef TOKENTAP_DECOMPRESS_H
#define TOKENTAP_DECOMPRESS_H

#include <stddef.h>

typedef enum tt_coding {
	TT_CODING_IDENTITY = 0,
	TT_CODING_GZIP,
	TT_CODING_DEFLATE,
	TT_CODING_BR,
	TT_CODING_ZSTD,
	TT_CODING_UNKNOWN,
} tt_coding;

/* From a Content-Encoding value; "x-gzip" is gzip.  Several codings
 * ("gzip, br") are not supported and give TT_CODING_UNKNOWN. */
tt_coding tt_coding_parse(const char *value, size_t len);

typedef void (*tt_decompress_fn)(void *user, const char *p, size_t n);

typedef struct tt_decompress tt_decompress;

/* NULL on allocation failure.  IDENTITY passes bytes through. */
tt_decompress *tt_decompress_new(tt_coding coding, tt_decompress_fn fn,
				 void *user);
/* Returns 0, or TT_EDECODE (sticky) for corrupt input. */
int tt_decompress_feed(tt_decompress *d, const void *p, size_t n);
/* 0 if the compressed stream ended cleanly, else TT_EDECODE. */
int tt_decompress_end(tt_decompress *d);
void tt_decompress_free(tt_decompress *d);

#endif
