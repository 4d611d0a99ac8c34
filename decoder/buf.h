/*
 * buf.h - a growable byte buffer with a hard maximum set at creation.
 *
 * Appending past the maximum keeps what fits and marks the buffer
 * truncated; it never fails for that reason.  The memory is allocated on
 * the first append, so an idle buffer costs nothing.
 */
#ifndef TOKENTAP_BUF_H
#define TOKENTAP_BUF_H

#include <stddef.h>

typedef struct tt_buf {
	char *data;       /* NUL-terminated when len > 0 */
	size_t len;
	size_t alloc;
	size_t max;       /* never holds more than max bytes */
	int truncated;    /* something was dropped */
	int oom;          /* an allocation failed: contents incomplete */
} tt_buf;

void tt_buf_init(tt_buf *b, size_t max);
/* Returns 0, or TT_ETRUNCATED / TT_ENOMEM when not everything was kept. */
int tt_buf_append(tt_buf *b, const void *data, size_t len);
/* Drop the first n bytes (n <= len). */
void tt_buf_consume(tt_buf *b, size_t n);
void tt_buf_reset(tt_buf *b);   /* keeps the memory */
void tt_buf_free(tt_buf *b);    /* releases it; the buffer can be reused */

#endif
