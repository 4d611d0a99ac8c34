/* buf.c - capped growable buffer; see buf.h. */
#include "buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "tokentap/error.h"

void tt_buf_init(tt_buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

void tt_buf_free(tt_buf *b)
{
	if (!b)
		return;
	free(b->data);
	b->data = NULL;
	b->len = b->alloc = 0;
	b->truncated = b->oom = 0;
}

void tt_buf_reset(tt_buf *b)
{
	b->len = 0;
	b->truncated = b->oom = 0;
	if (b->data)
		b->data[0] = '\0';
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

/* Room for need bytes and the NUL; need <= max is the caller's check. */
static int grow(tt_buf *b, size_t need)
{
	size_t want;
	char *p;

	if (need + 1 <= b->alloc)
		return 0;
	want = b->alloc ? b->alloc : 256;
	while (want < need + 1)
		want *= 2;
	if (want > b->max + 1)
		want = b->max + 1;
	p = realloc(b->data, want);
	if (!p) {
		b->oom = 1;
		return TT_ENOMEM;
	}
	b->data = p;
	b->alloc = want;
	return 0;
}

static int put(tt_buf *b, const void *p, size_t len)
{
	int rc = grow(b, b->len + len);

	if (rc)
		return rc;
	if (len)
		memcpy(b->data + b->len, p, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int tt_buf_add(tt_buf *b, const void *p, size_t len)
{
	if (len > b->max - b->len)
		return TT_ETRUNCATED;
	return put(b, p, len);
}

int tt_buf_add_trunc(tt_buf *b, const void *p, size_t len)
{
	int cut = 0, rc;

	if (len > b->max - b->len) {
		len = b->max - b->len;
		b->truncated = 1;
		cut = 1;
	}
	if (len == 0)
		return cut ? TT_ETRUNCATED : 0;
	rc = put(b, p, len);
	if (rc)
		return rc;
	return cut ? TT_ETRUNCATED : 0;
}

int tt_buf_adds(tt_buf *b, const char *s)
{
	return tt_buf_add(b, s, strlen(s));
}

int tt_buf_vprintf(tt_buf *b, const char *fmt, va_list ap)
{
	char small[256];
	va_list ap2;
	int n, rc;
	char *big;

	va_copy(ap2, ap);
	n = vsnprintf(small, sizeof(small), fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return TT_EINVAL;
	if ((size_t)n < sizeof(small))
		return tt_buf_add(b, small, (size_t)n);
	big = malloc((size_t)n + 1);
	if (!big)
		return TT_ENOMEM;
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	rc = tt_buf_add(b, big, (size_t)n);
	free(big);
	return rc;
}

int tt_buf_printf(tt_buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = tt_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

int tt_buf_json_str(tt_buf *b, const char *s, size_t len)
{
	size_t i, run = 0;
	int rc;

	for (i = 0; i < len; i++) {
		char e[TT_JSON_ESC_MAX];
		size_t el = tt_json_escape_byte((unsigned char)s[i], e);

		if (el == 1)
			continue;
		/* runs of plain bytes are copied whole */
		rc = tt_buf_add(b, s + run, i - run);
		if (!rc)
			rc = tt_buf_add(b, e, el);
		if (rc)
			return rc;
		run = i + 1;
	}
	return tt_buf_add(b, s + run, len - run);
}

char *tt_buf_take(tt_buf *b, size_t *len)
{
	char *p = b->data;

	if (!p) {
		if (len)
			*len = 0;
		return calloc(1, 1);
	}
	if (len)
		*len = b->len;
	b->data = NULL;
	b->len = b->alloc = 0;
	return p;
}
