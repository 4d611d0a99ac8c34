/*
 * lines.h - split a byte stream into lines, for SSE and NDJSON.
 *
 * A line ends at CR LF, LF or CR (the WHATWG event-stream rule; NDJSON
 * only ever uses LF and CR LF, which this also covers).  A CR at the end
 * of one piece and an LF at the start of the next are one line end.
 * A line longer than the cap is delivered cut, with truncated set.
 */
#ifndef TOKENTAP_LINES_H
#define TOKENTAP_LINES_H

#include <stddef.h>

#include "common/buf.h"

typedef void (*tt_line_fn)(void *user, const char *line, size_t len,
			   int truncated);

typedef struct tt_lines {
	tt_buf pending;   /* a line begun in an earlier piece */
	int after_cr;     /* the previous piece ended in CR */
	tt_line_fn fn;
	void *user;
} tt_lines;

void tt_lines_init(tt_lines *l, size_t max_line, tt_line_fn fn, void *user);
void tt_lines_feed(tt_lines *l, const char *p, size_t n);
/* End of input: an unterminated last line is delivered too. */
void tt_lines_end(tt_lines *l);
void tt_lines_free(tt_lines *l);

#endif
