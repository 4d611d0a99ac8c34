/*
 * h2.h - HTTP/2 framing (RFC 9113) and HPACK (RFC 7541, through nghttp2's
 * inflater) for one connection; each stream becomes one tt_exchange.
 *
 * decoder.c recognises the client connection preface and hands every byte
 * of both directions to this module from then on, the preface included.
 */
#ifndef TOKENTAP_H2_H
#define TOKENTAP_H2_H

#include <stddef.h>
#include <stdint.h>

#include "tokentap/decoder.h"

typedef struct tt_h2 tt_h2;

/*
 * server_side: 1 when this process is the server end (it received the
 * preface).  cfg is borrowed and outlives the object.  NULL on ENOMEM.
 */
tt_h2 *tt_h2_new(const tt_decoder_config *cfg, int server_side);

/*
 * from_client: 1 for bytes the client sent (they begin with the preface),
 * 0 for bytes the server sent.  Returns 0 or a negative tt_error; after an
 * error the object is inert and returns that error again.
 */
int tt_h2_feed(tt_h2 *h, int from_client, const uint8_t *buf, size_t len,
	       int64_t now_us);

/* Connection over: every open stream is finished with an error. */
void tt_h2_close(tt_h2 *h, int64_t now_us);

void tt_h2_free(tt_h2 *h); /* accepts NULL */

/* Streams seen so far whose request was an LLM call. */
unsigned tt_h2_llm_exchanges(const tt_h2 *h);

#endif
