/*
 * wire.h - the shared corpus of recorded provider responses
 * (../shared/fixtures/wire beside the checkout) for conformance tests.
 *
 * The expected figures are computed here from MANIFEST.tsv's raw columns
 * (the figures as each provider reported them) by DESIGN.md's
 * normalisation table, written out again on purpose: it must not share
 * code with the decoder it checks.
 */
#ifndef TT_TEST_WIRE_H
#define TT_TEST_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "tbuf.h"

typedef struct wire_row {
	char file[256];        /* relative to the corpus folder */
	char provider[32];
	char api[48];
	int streaming;
	int status;
	char uri[1024];        /* full URI of the request */
	char request_body[4096];
	char resp_headers[1024]; /* recorded token-count headers, "K: V\r\n"... */
	/* expected, normalised; -1 when null */
	int has_usage;
	int64_t input, output, cache_read, cache_write, reasoning;
	char usage_source[12]; /* "provider", "estimated" or "none" */
	int provider_error;    /* an error inside a 200 stream */
} wire_row;

/* The corpus folder, or NULL when it is not beside the checkout. */
const char *wire_dir(void);

/* Load every manifest row; returns the count, rows in *out (free()). */
size_t wire_load(wire_row **out);

/* The body as served: .chunks.jsonl files get SSE framing. Caller frees. */
char *wire_body(const wire_row *row, size_t *len);

const char *wire_content_type(const wire_row *row);

/* An HTTP/1.1 request for the row (POST, Host, JSON body). */
void wire_request(const wire_row *row, tbuf *out);

enum wire_variant {
	WIRE_LENGTH,       /* Content-Length, identity */
	WIRE_CHUNKED,      /* chunked, with an extension and a trailer */
	WIRE_GZIP,         /* gzip, Content-Length */
	WIRE_GZIP_CHUNKED, /* gzip, chunked */
	WIRE_CLOSE,        /* identity, ends with the connection */
	WIRE_VARIANTS
};

/* An HTTP/1.1 response carrying body in the given variant. */
void wire_response(const wire_row *row, const char *body, size_t len,
		   int variant, tbuf *out);

#endif
