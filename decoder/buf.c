/* buf.c - capped growable buffer; see buf.h. */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "tokentap/error.h"

void tt_buf_init(tt_buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

int tt_buf_append(tt_buf *b, const void *data, size_t len)
{
	int rc = 0;

	if (len > b->max - b->len) {
		len = b->max - b->len;
		b->truncated = 1;
		rc = TT_ETRUNCATED;
	}
	if (len == 0)
		return rc;
	if (b->len + len + 1 > b->alloc) {
		size_t want = b->alloc ? b->alloc : 256;
		while (want < b->len + len + 1)
			want *= 2;
		if (want > b->max + 1)
			want = b->max + 1;
		char *p = realloc(b->data, want);
		if (!p) {
			b->oom = 1;
			return TT_ENOMEM;
		}
		b->data = p;
		b->alloc = want;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return rc;
}

void tt_buf_consume(tt_buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
	} else {
		memmove(b->data, b->data + n, b->len - n);
		b->len -= n;
	}
	if (b->data)
		b->data[b->len] = '\0';
}

void tt_buf_reset(tt_buf *b)
{
	b->len = 0;
	b->truncated = 0;
	b->oom = 0;
	if (b->data)
		b->data[0] = '\0';
}

void tt_buf_free(tt_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->alloc = 0;
	b->truncated = 0;
	b->oom = 0;
}
