/* chunked.c - RFC 9112 chunked transfer coding; see chunked.h. */
#include <string.h>

#include "chunked.h"

/* Longest chunk extension or trailer line we skip before giving up. */
#define MAX_LINE 8192
/* 15 hex digits keep the size below 2^60: no overflow when adding. */
#define MAX_DIGITS 15

void tt_chunked_init(tt_chunked *c)
{
	memset(c, 0, sizeof(*c));
	c->state = TT_CHUNK_SIZE;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* The size line ended: data follows, or the trailer section. */
static void size_line_done(tt_chunked *c)
{
	c->line_len = 0;
	if (c->size == 0) {
		c->last = 1;
		c->state = TT_CHUNK_TRAILER;
	} else {
		c->state = TT_CHUNK_DATA;
	}
}

long tt_chunked_feed(tt_chunked *c, const char *p, size_t n,
		     tt_chunk_data_fn fn, void *user)
{
	size_t i = 0;

	while (i < n) {
		char ch = p[i];

		switch (c->state) {
		case TT_CHUNK_SIZE: {
			int v = hexval(ch);
			if (v >= 0) {
				if (++c->digits > MAX_DIGITS)
					goto bad;
				c->size = c->size << 4 | (uint64_t)v;
			} else if (c->digits == 0) {
				goto bad;
			} else if (ch == ';' || ch == ' ' || ch == '\t' || ch == '\r') {
				c->state = TT_CHUNK_EXT;
			} else if (ch == '\n') {
				size_line_done(c);
			} else {
				goto bad;
			}
			i++;
			break;
		}
		case TT_CHUNK_EXT:
			if (ch == '\n')
				size_line_done(c);
			else if (++c->line_len > MAX_LINE)
				goto bad;
			i++;
			break;
		case TT_CHUNK_DATA: {
			size_t take = n - i;
			if (take > c->size)
				take = (size_t)c->size;
			fn(user, p + i, take);
			c->size -= take;
			i += take;
			if (c->size == 0)
				c->state = TT_CHUNK_DATA_CR;
			break;
		}
		case TT_CHUNK_DATA_CR:
			if (ch == '\r') {
				c->state = TT_CHUNK_DATA_LF;
			} else if (ch == '\n') {
				c->state = TT_CHUNK_SIZE;
				c->digits = 0;
			} else {
				goto bad;
			}
			i++;
			break;
		case TT_CHUNK_DATA_LF:
			if (ch != '\n')
				goto bad;
			c->state = TT_CHUNK_SIZE;
			c->digits = 0;
			i++;
			break;
		case TT_CHUNK_TRAILER:
			/* An empty line ends the body; anything else is a field. */
			i++;
			if (ch == '\n') {
				c->state = TT_CHUNK_DONE;
				return (long)i;
			}
			if (ch != '\r') {
				c->state = TT_CHUNK_TRAILER_LINE;
				c->line_len = 1;
			}
			break;
		case TT_CHUNK_TRAILER_LINE:
			i++;
			if (ch == '\n') {
				c->state = TT_CHUNK_TRAILER;
				c->line_len = 0;
			} else if (++c->line_len > MAX_LINE) {
				goto bad;
			}
			break;
		case TT_CHUNK_DONE:
			return (long)i;
		case TT_CHUNK_ERROR:
			return -1;
		}
	}
	return (long)i;
bad:
	c->state = TT_CHUNK_ERROR;
	return -1;
}

int tt_chunked_done(const tt_chunked *c)
{
	return c->state == TT_CHUNK_DONE;
}
