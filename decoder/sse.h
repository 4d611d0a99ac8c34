/*
 * sse.h - server-sent events, by the WHATWG HTML "event stream
 * interpretation" algorithm:
 *
 *   - a blank line dispatches the event; an event with empty data is not
 *     dispatched;
 *   - "data:" lines are joined with LF; a single space after the colon is
 *     removed; "event:" sets the type; lines starting with ':' are
 *     comments; "id" and "retry" do not matter here and are ignored.
 *
 * One deviation, on purpose: at end of input the spec discards an event
 * that lacks its closing blank line.  A stream cut right after its usage
 * chunk would then lose the usage, so we dispatch it; whether it is whole
 * is for the JSON parser to tell.
 */
#ifndef TOKENTAP_SSE_H
#define TOKENTAP_SSE_H

#include <stddef.h>

#include "common/buf.h"
#include "lines.h"

/* event is "" when the stream named none ("message" in the spec). */
typedef void (*tt_sse_event_fn)(void *user, const char *event,
				const char *data, size_t len, int truncated);

typedef struct tt_sse {
	tt_lines lines;
	tt_buf data;
	char event[64];
	int truncated;     /* a line or the data of this event was cut */
	tt_sse_event_fn fn;
	void *user;
} tt_sse;

void tt_sse_init(tt_sse *s, size_t max_event, tt_sse_event_fn fn, void *user);
void tt_sse_feed(tt_sse *s, const char *p, size_t n);
void tt_sse_end(tt_sse *s);
void tt_sse_free(tt_sse *s);

#endif
