/*
 * jscan.h - cheap looks into JSON text without parsing it.
 *
 * A streamed response is hundreds of small JSON events and only a few of
 * them say anything about usage.  Parsing each one into a tree costs more
 * than the TLS decryption of the same bytes, so the body pipeline first
 * asks these questions of the raw text and parses only the events that
 * may matter.  The answers err on the side of "parse it".
 */
#ifndef TOKENTAP_JSCAN_H
#define TOKENTAP_JSCAN_H

#include <stddef.h>
#include <stdint.h>

/*
 * One pass over a stream event.  Returns 1 when it may carry usage, an
 * error or the end of a response (a "usage" member that is not null,
 * the "type"s that end a stream, and the other members providers report
 * counts or errors in), so that it must be parsed.  Otherwise returns 0 and adds to *text_bytes the bytes
 * of generated text it carries: the string values of the members that
 * hold text in some provider's stream ("content", "text", "delta",
 * "thinking", "arguments", ...), escapes counted as written.
 */
int tt_jscan_event(const char *p, size_t n, uint64_t *text_bytes);

/*
 * The string value of the first member named key (without quotes) in p;
 * copies at most cap-1 bytes into out.  Returns 1 when found.  Strings
 * with escapes are not decoded and count as not found.
 */
int tt_jscan_string(const char *p, size_t n, const char *key, char *out,
		    size_t cap);

/*
 * Where the value of the last member named key starts (after the colon
 * and spaces), or NULL.  Used to reach the usage object at the end of a
 * body too large to keep whole.
 */
const char *tt_jscan_last_value(const char *p, size_t n, const char *key);

#endif
