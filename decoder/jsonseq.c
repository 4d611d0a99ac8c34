/* jsonseq.c - top-level JSON values of a streamed body; see jsonseq.h. */
#include <stdlib.h>
#include <string.h>

#include "jsonseq.h"

void tt_jsonseq_init(tt_jsonseq *j, size_t max_value, tt_jsonseq_fn fn,
		     void *user)
{
	memset(j, 0, sizeof(*j));
	tt_buf_init(&j->value, max_value);
	j->fn = fn;
	j->user = user;
}

/* Keep a byte that did not fit in the value buffer in the tail ring. */
static void tail_put(tt_jsonseq *j, const char *p, size_t n)
{
	if (!j->tail) {
		if (j->oom)
			return;
		j->tail = malloc(TT_JSONSEQ_TAIL);
		if (!j->tail) {
			j->oom = 1;
			return;
		}
	}
	if (n >= TT_JSONSEQ_TAIL) {
		p += n - TT_JSONSEQ_TAIL;
		n = TT_JSONSEQ_TAIL;
	}
	while (n) {
		size_t room = TT_JSONSEQ_TAIL - j->tail_pos;
		size_t k = n < room ? n : room;
		memcpy(j->tail + j->tail_pos, p, k);
		j->tail_pos = (j->tail_pos + k) % TT_JSONSEQ_TAIL;
		j->tail_fill = j->tail_fill + k > TT_JSONSEQ_TAIL ? TT_JSONSEQ_TAIL
								  : j->tail_fill + k;
		p += k;
		n -= k;
	}
}

static void keep(tt_jsonseq *j, const char *p, size_t n)
{
	size_t room = j->value.max - j->value.len;
	if (n <= room) {
		tt_buf_add_trunc(&j->value, p, n);
		return;
	}
	tt_buf_add_trunc(&j->value, p, room);
	j->value.truncated = 1;
	tail_put(j, p + room, n - room);
}

static void deliver(tt_jsonseq *j, int cut)
{
	int truncated = cut || j->value.truncated || j->value.oom || j->oom;
	char *tail = NULL;
	size_t tail_len = 0;

	if (j->value.truncated && j->tail_fill) {
		/* Unroll the ring into order; one copy per huge value is fine. */
		tail = malloc(j->tail_fill + 1);
		if (tail) {
			size_t start = (j->tail_pos + TT_JSONSEQ_TAIL - j->tail_fill) %
				       TT_JSONSEQ_TAIL;
			size_t first = TT_JSONSEQ_TAIL - start;
			if (first > j->tail_fill)
				first = j->tail_fill;
			memcpy(tail, j->tail + start, first);
			memcpy(tail + first, j->tail, j->tail_fill - first);
			tail_len = j->tail_fill;
			tail[tail_len] = '\0';
		}
	}
	j->fn(j->user, j->value.data ? j->value.data : "", j->value.len, tail,
	      tail_len, truncated);
	free(tail);
	tt_buf_reset(&j->value);
	j->tail_pos = j->tail_fill = 0;
	j->in_value = 0;
	j->scalar = 0;
	j->oom = 0;
}

void tt_jsonseq_feed(tt_jsonseq *j, const char *p, size_t n)
{
	const char *end = p + n;
	/* Start of the bytes of the current value within this piece. */
	const char *run = j->in_value ? p : NULL;

	for (; p < end; p++) {
		char c = *p;

		if (!j->in_value) {
			if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
				continue;
			if (!j->started) {
				j->started = 1;
				if (c == '[') {
					j->in_array = 1;
					continue;
				}
			}
			if (j->in_array && (c == ',' || c == ']'))
				continue;
			j->in_value = 1;
			j->depth = 0;
			j->scalar = (c != '{' && c != '[');
			run = p;
		}

		if (j->in_string) {
			if (j->escape) {
				j->escape = 0;
				continue;
			}
			/* Long strings (generated text) are most of a body: jump
			 * to the next quote or backslash instead of walking. */
			const char *q = memchr(p, '"', (size_t)(end - p));
			const char *b = memchr(p, '\\', (size_t)((q ? q : end) - p));
			if (b) {
				p = b;
				j->escape = 1;
			} else if (q) {
				p = q;
				j->in_string = 0;
			} else {
				p = end - 1;
			}
			continue;
		}
		if (c == '"') {
			j->in_string = 1;
			continue;
		}
		if (j->scalar) {
			/* Bare scalars only end at a separator. */
			if (c == ',' || c == ']' || c == ' ' || c == '\n' ||
			    c == '\r' || c == '\t') {
				keep(j, run, (size_t)(p - run));
				run = NULL;
				deliver(j, 0);
			}
			continue;
		}
		if (c == '{' || c == '[') {
			j->depth++;
		} else if (c == '}' || c == ']') {
			if (--j->depth == 0) {
				keep(j, run, (size_t)(p + 1 - run));
				run = NULL;
				deliver(j, 0);
			}
		}
	}
	if (run && j->in_value)
		keep(j, run, (size_t)(end - run));
}

void tt_jsonseq_end(tt_jsonseq *j)
{
	if (j->in_value)
		deliver(j, !j->scalar);
	j->in_string = j->escape = 0;
}

void tt_jsonseq_free(tt_jsonseq *j)
{
	tt_buf_free(&j->value);
	free(j->tail);
	j->tail = NULL;
}
