/*
 * chunked.h - the chunked transfer coding of HTTP/1.1 (RFC 9112 §7.1):
 *
 *	chunked-body   = *chunk last-chunk trailer-section CRLF
 *	chunk          = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 *	chunk-size     = 1*HEXDIG
 *	last-chunk     = 1*("0") [ chunk-ext ] CRLF
 *	trailer-section = *( field-line CRLF )
 *
 * Chunk extensions and trailer fields are skipped (their length is
 * capped).  A bare LF is accepted where CRLF is due, as most servers'
 * parsers do.  Data is handed out as it arrives, never buffered.
 */
#ifndef TOKENTAP_CHUNKED_H
#define TOKENTAP_CHUNKED_H

#include <stddef.h>
#include <stdint.h>

typedef enum tt_chunked_state {
	TT_CHUNK_SIZE,      /* reading hex digits */
	TT_CHUNK_EXT,       /* skipping ";ext" up to the LF */
	TT_CHUNK_DATA,      /* handing out chunk-data */
	TT_CHUNK_DATA_CR,   /* the CRLF after chunk-data */
	TT_CHUNK_DATA_LF,
	TT_CHUNK_TRAILER,   /* start of a trailer line, or the final CRLF */
	TT_CHUNK_TRAILER_LINE, /* inside a trailer field line */
	TT_CHUNK_DONE,
	TT_CHUNK_ERROR,
} tt_chunked_state;

typedef void (*tt_chunk_data_fn)(void *user, const char *p, size_t n);

typedef struct tt_chunked {
	tt_chunked_state state;
	uint64_t size;       /* of the chunk being read */
	int digits;          /* hex digits seen for this size */
	size_t line_len;     /* of the extension or trailer line */
	int last;            /* the size was 0: trailers follow */
} tt_chunked;

void tt_chunked_init(tt_chunked *c);

/*
 * Consume bytes of a chunked body; data goes to fn.  Returns how many
 * bytes were used: fewer than n once the body ended (the rest belongs to
 * the next message), or -1 on a malformed body.
 */
long tt_chunked_feed(tt_chunked *c, const char *p, size_t n,
		     tt_chunk_data_fn fn, void *user);

int tt_chunked_done(const tt_chunked *c);

#endif
