/*
 * buf.h - a growable byte buffer with a hard cap (curl's dynbuf idea).
 *
 * The buffer owns its memory; tt_buf_free() releases it.  Every append
 * that would grow the content beyond `max` fails with TT_ETRUNCATED and
 * leaves the content unchanged, so no input can make it grow unbounded.
 * The content is always NUL-terminated (the NUL is not counted in len).
 */
#ifndef TT_COL_BUF_H
#define TT_COL_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct tt_buf {
	char *data;   /* NULL until the first append */
	size_t len;
	size_t alloc;
	size_t max;   /* content never exceeds this many bytes */
} tt_buf;

void tt_buf_init(tt_buf *b, size_t max);
void tt_buf_free(tt_buf *b);            /* accepts NULL; leaves b re-usable */
void tt_buf_reset(tt_buf *b);           /* len = 0, keeps the memory */

/* Append len bytes. Returns 0, TT_ENOMEM or TT_ETRUNCATED. */
int tt_buf_add(tt_buf *b, const void *p, size_t len);
int tt_buf_adds(tt_buf *b, const char *s);
int tt_buf_printf(tt_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int tt_buf_vprintf(tt_buf *b, const char *fmt, va_list ap);

/* Append s as the body of a JSON string (no quotes), escaping as RFC 8259 asks. */
int tt_buf_json_str(tt_buf *b, const char *s, size_t len);

/*
 * Hand the content over to the caller (who frees it with free()); the
 * buffer is left empty.  Returns NULL when nothing was ever appended and
 * allocation of an empty string fails.
 */
char *tt_buf_take(tt_buf *b, size_t *len);

#endif
