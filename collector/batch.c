/* batch.c - incremental JSON Lines / JSON array splitter, see batch.h. */
#include "batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokentap/error.h"

enum { M_UNKNOWN, M_LINES, M_ARRAY, M_AFTER };

void tt_batch_init(tt_batch *b, size_t arena_max)
{
	memset(b, 0, sizeof(*b));
	tt_buf_init(&b->arena, arena_max);
	tt_buf_init(&b->elem, TT_BATCH_RECORD_MAX);
	b->line = 1;
	b->index = 0;
}

void tt_batch_free(tt_batch *b)
{
	if (!b)
		return;
	free(b->recs);
	free(b->rejects);
	tt_buf_free(&b->arena);
	tt_buf_free(&b->elem);
	b->recs = NULL;
	b->rejects = NULL;
}

static void reject(tt_batch *b, uint32_t line, int64_t index, const char *why)
{
	b->nrejected++;
	if (b->nrejects >= TT_BATCH_REJECTS_KEPT)
		return;
	if (!b->rejects) {
		b->rejects = calloc(TT_BATCH_REJECTS_KEPT, sizeof(*b->rejects));
		if (!b->rejects) {
			b->oom = 1;
			return;
		}
	}
	b->rejects[b->nrejects].line = line;
	b->rejects[b->nrejects].index = index;
	snprintf(b->rejects[b->nrejects].error, sizeof(b->rejects[0].error), "%s", why);
	b->nrejects++;
}

static int is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* One complete element (a line, or an array member) is in b->elem. */
static void element_done(tt_batch *b)
{
	int64_t index = b->mode == M_LINES ? -1 : b->index;
	const char *p = b->elem.data ? b->elem.data : "";
	size_t len = b->elem.len;
	char err[112];
	int rc;

	while (len && is_ws(p[len - 1]))
		len--;
	while (len && is_ws(*p)) {
		p++;
		len--;
	}
	if (b->skipping) {
		snprintf(err, sizeof(err), "record larger than %d bytes", TT_BATCH_RECORD_MAX);
		reject(b, b->elem_line, index, err);
		goto out;
	}
	if (len == 0) {
		/* Blank lines separate nothing in JSON Lines; an empty array member is an error. */
		if (b->mode != M_LINES)
			reject(b, b->elem_line, index, "empty array element");
		goto out;
	}
	if (b->nrecs >= TT_BATCH_MAX_RECORDS) {
		/* Tiny records would otherwise cost ~20 times the body in memory. */
		snprintf(err, sizeof(err), "more than %d records in one batch; send smaller batches",
			 TT_BATCH_MAX_RECORDS);
		reject(b, b->elem_line, index, err);
		goto out;
	}
	if (b->nrecs == b->cap_recs) {
		size_t ncap = b->cap_recs ? b->cap_recs * 2 : 64;
		tt_rec *n = realloc(b->recs, ncap * sizeof(*n));

		if (!n) {
			b->oom = 1;
			goto out;
		}
		b->recs = n;
		b->cap_recs = ncap;
	}
	rc = tt_rec_parse(p, len, &b->arena, &b->recs[b->nrecs], err, sizeof(err));
	if (rc == 0)
		b->nrecs++;
	else if (rc == TT_EINVAL)
		reject(b, b->elem_line, index, err);
	else
		reject(b, b->elem_line, index, "batch too large to hold in memory");
out:
	tt_buf_reset(&b->elem);
	b->skipping = 0;
	if (b->mode != M_LINES)
		b->index++;
}

static void keep(tt_batch *b, char c)
{
	if (b->skipping)
		return;
	if (tt_buf_add(&b->elem, &c, 1))
		b->skipping = 1;  /* over TT_BATCH_RECORD_MAX: reject when it ends */
}

static void keep_span(tt_batch *b, const char *p, size_t n)
{
	if (b->skipping || n == 0)
		return;
	if (tt_buf_add(&b->elem, p, n))
		b->skipping = 1;
}

int tt_batch_feed(tt_batch *b, const char *p, size_t len)
{
	for (size_t i = 0; i < len && !b->oom; i++) {
		char c = p[i];

		/* Fast path: the bulk of a JSON Lines record goes in with one copy. */
		if (b->mode == M_LINES && c != '\n') {
			const char *nl = memchr(p + i, '\n', len - i);
			size_t n = nl ? (size_t)(nl - (p + i)) : len - i;

			keep_span(b, p + i, n);
			i += n - 1;
			continue;
		}
		/* Inside an array member's string: copy up to the next quote or backslash. */
		if (b->mode == M_ARRAY && b->in_str && !b->esc && c != '"' && c != '\\') {
			size_t n = 1;

			while (i + n < len && p[i + n] != '"' && p[i + n] != '\\')
				n++;
			keep_span(b, p + i, n);
			i += n - 1;
			continue;
		}

		switch (b->mode) {
		case M_UNKNOWN:
			if (is_ws(c)) {
				if (c == '\n')
					b->line++;
				break;
			}
			if (c == '[') {
				b->mode = M_ARRAY;
				b->depth = 1;
				b->elem_line = b->line;
				break;
			}
			b->mode = M_LINES;
			b->elem_line = b->line;
			/* fall through */
		case M_LINES:
			if (c == '\n') {
				element_done(b);
				b->line++;
				b->elem_line = b->line;
				break;
			}
			keep(b, c);
			break;
		case M_ARRAY:
			/* Split members at depth-1 commas outside strings (RFC 8259 §7:
			 * only '"' and '\\' change the meaning inside a string). */
			if (b->in_str) {
				if (b->esc)
					b->esc = 0;
				else if (c == '\\')
					b->esc = 1;
				else if (c == '"')
					b->in_str = 0;
				keep(b, c);
				break;
			}
			if (c == '\n')
				b->line++;
			if (b->depth == 1 && (c == ',' || c == ']')) {
				if (c == ']' && b->index == 0 && b->nrecs == 0 && b->nrejected == 0 &&
				    !b->skipping && b->elem.len == 0) {
					/* "[]" */
				} else {
					element_done(b);
				}
				if (c == ']') {
					b->mode = M_AFTER;
					b->depth = 0;
				}
				b->elem_line = b->line;
				break;
			}
			if (b->elem.len == 0 && !b->skipping && is_ws(c)) {
				b->elem_line = b->line;
				break;
			}
			if (c == '"')
				b->in_str = 1;
			else if (c == '{' || c == '[')
				b->depth++;
			else if ((c == '}' || c == ']') && b->depth > 1)
				b->depth--;
			keep(b, c);
			break;
		case M_AFTER:
			if (!is_ws(c) && !b->fatal[0])
				snprintf(b->fatal, sizeof(b->fatal),
					 "unexpected data after the closing ']' (line %u)", b->line);
			if (c == '\n')
				b->line++;
			break;
		}
	}
	return b->oom ? TT_ENOMEM : 0;
}

int tt_batch_finish(tt_batch *b)
{
	if (b->oom)
		return TT_ENOMEM;
	if (b->mode == M_LINES && (b->elem.len || b->skipping))
		element_done(b);
	if (b->mode == M_ARRAY) {
		if (b->elem.len || b->skipping)
			reject(b, b->elem_line, b->index, "record cut off: the array never closes");
		snprintf(b->fatal, sizeof(b->fatal), "unterminated JSON array (no closing ']')");
	}
	return b->oom ? TT_ENOMEM : 0;
}
