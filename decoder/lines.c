/* lines.c - line splitting for SSE and NDJSON; see lines.h. */
#include <string.h>

#include "lines.h"

void tt_lines_init(tt_lines *l, size_t max_line, tt_line_fn fn, void *user)
{
	memset(l, 0, sizeof(*l));
	tt_buf_init(&l->pending, max_line);
	l->fn = fn;
	l->user = user;
}

static void deliver_pending(tt_lines *l)
{
	l->fn(l->user, l->pending.data ? l->pending.data : "", l->pending.len,
	      l->pending.truncated || l->pending.oom);
	tt_buf_reset(&l->pending);
}

void tt_lines_feed(tt_lines *l, const char *p, size_t n)
{
	const char *end = p + n;

	if (n == 0)
		return; /* keep after_cr: an empty piece is no line end */
	if (n && l->after_cr && *p == '\n')
		p++;
	l->after_cr = 0;

	while (p < end) {
		/* LF ends most lines; a CR before it ends the line there. */
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *cr = memchr(p, '\r', (size_t)((eol ? eol : end) - p));
		if (cr)
			eol = cr;
		if (!eol) {
			tt_buf_add_trunc(&l->pending, p, (size_t)(end - p));
			return;
		}
		if (l->pending.len || l->pending.truncated) {
			tt_buf_add_trunc(&l->pending, p, (size_t)(eol - p));
			deliver_pending(l);
		} else {
			/* The common case: the whole line is in this piece. */
			size_t len = (size_t)(eol - p);
			int cut = len > l->pending.max;
			l->fn(l->user, p, cut ? l->pending.max : len, cut);
		}
		if (*eol == '\r') {
			if (eol + 1 == end) {
				l->after_cr = 1;
				return;
			}
			if (eol[1] == '\n')
				eol++;
		}
		p = eol + 1;
	}
}

void tt_lines_end(tt_lines *l)
{
	if (l->pending.len || l->pending.truncated)
		deliver_pending(l);
	l->after_cr = 0;
}

void tt_lines_free(tt_lines *l)
{
	tt_buf_free(&l->pending);
}
