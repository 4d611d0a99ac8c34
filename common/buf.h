/*
 * buf.h - the tree's growable byte buffer, with a hard maximum set when it
 * is created (curl's dynbuf idea): no input can make it grow unbounded.
 *
 * Two ways to append, named for what they do at the maximum:
 *   tt_buf_add()        all or nothing: refuses (TT_ETRUNCATED) and leaves
 *                       the content unchanged; for documents that must be
 *                       whole (the collector's answers, requests);
 *   tt_buf_add_trunc()  keeps what fits and marks the buffer truncated; for
 *                       accumulators that report a cut (the decoder's caps).
 * The memory is allocated on the first append, so an idle buffer costs
 * nothing; the content is always NUL-terminated once allocated (the NUL is
 * not counted in len).
 */
#ifndef TT_COMMON_BUF_H
#define TT_COMMON_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct tt_buf {
	char *data;       /* NULL until the first append */
	size_t len;
	size_t alloc;
	size_t max;       /* content never exceeds this many bytes */
	int truncated;    /* tt_buf_add_trunc dropped something */
	int oom;          /* an allocation failed: contents incomplete */
} tt_buf;

void tt_buf_init(tt_buf *b, size_t max);
void tt_buf_free(tt_buf *b);   /* accepts NULL; leaves b re-usable */
void tt_buf_reset(tt_buf *b);  /* len = 0, flags cleared, memory kept */

/* Drop the first n bytes (all of them when n >= len). */
void tt_buf_consume(tt_buf *b, size_t n);

/* All or nothing.  Returns 0, TT_ENOMEM or TT_ETRUNCATED. */
int tt_buf_add(tt_buf *b, const void *p, size_t len);
int tt_buf_adds(tt_buf *b, const char *s);
int tt_buf_printf(tt_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int tt_buf_vprintf(tt_buf *b, const char *fmt, va_list ap);

/* Append s (len bytes) as the body of a JSON string, escaped (json.h). */
int tt_buf_json_str(tt_buf *b, const char *s, size_t len);

/*
 * What fits.  Returns 0, or TT_ETRUNCATED (what fitted was kept; truncated
 * set) or TT_ENOMEM (nothing kept; oom set).
 */
int tt_buf_add_trunc(tt_buf *b, const void *p, size_t len);

/*
 * Hand the content over to the caller (who frees it with free()); the
 * buffer is left empty.  An empty string when nothing was appended; NULL
 * only when that cannot be allocated.
 */
char *tt_buf_take(tt_buf *b, size_t *len);

#endif
