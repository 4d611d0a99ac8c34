/*
 * json.h - the body of a JSON string, escaped as RFC 8259 section 7 asks:
 * '"' and '\' behind a backslash, \n \r \t by name, other control
 * characters as \u00XX, every other byte as it is (callers pass UTF-8).
 * The one escaper of the tree: records, lease requests, blocked-call
 * answers and the collector's documents all use it.
 */
#ifndef TT_COMMON_JSON_H
#define TT_COMMON_JSON_H

#include <stddef.h>

/* The longest escaped form of one byte (\u00XX). */
#define TT_JSON_ESC_MAX 6

/* The escaped form of byte c into e; returns its length (1, 2 or 6). */
size_t tt_json_escape_byte(unsigned char c, char e[TT_JSON_ESC_MAX]);

/*
 * Escape the NUL-terminated s into dst (cap > 0 bytes), stopping before a
 * byte whose escaped form would not fit: never half an escape.  dst is
 * always terminated.  Returns the length written.
 */
size_t tt_json_escape(char *dst, size_t cap, const char *s);

#endif
