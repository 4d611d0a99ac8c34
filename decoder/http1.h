/*
 * http1.h - HTTP/1.1 message framing (RFC 9112) for both directions of
 * one connection, pairing each response with its request.
 *
 * Handles persistent connections and pipelining (responses come in
 * request order), Content-Length, chunked, close-delimited response
 * bodies, 1xx interim responses (Expect: 100-continue included), and the
 * responses that have no body whatever their headers say: to HEAD, and
 * 1xx, 204 and 304.  A 101 or a successful CONNECT turns the connection
 * into something else, which is then ignored.
 */
#ifndef TOKENTAP_HTTP1_H
#define TOKENTAP_HTTP1_H

#include <stddef.h>
#include <stdint.h>

#include "tokentap/decoder.h"

typedef struct tt_http1 tt_http1;

/* cfg is borrowed; server_side: this process answers the requests. */
tt_http1 *tt_http1_new(const tt_decoder_config *cfg, int server_side);

/*
 * from_client: the bytes were sent by the client.  Returns 0, or a
 * negative tt_error once the stream stopped being HTTP (sticky).
 */
int tt_http1_feed(tt_http1 *h, int from_client, const char *p, size_t n,
		  int64_t now_us);

/* End of connection: close-delimited bodies end, open exchanges finish
 * with "connection_closed". */
void tt_http1_close(tt_http1 *h, int64_t now_us);

void tt_http1_free(tt_http1 *h); /* accepts NULL; delivers nothing */

unsigned tt_http1_llm_exchanges(const tt_http1 *h);

/* 1 once the connection carries no more HTTP/1.1 (upgrade, tunnel, error). */
int tt_http1_is_done(const tt_http1 *h);

#endif
