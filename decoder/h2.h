/*
 * h2.h - HTTP/2 framing (RFC 9113) and HPACK (RFC 7541, through nghttp2's
 * inflater) for one connection; each stream becomes one tt_exchange.
 *
 * decoder.c recognises the client connection preface and hands every byte
 * of both directions to this module from then on, the preface included.
 *
 * Each client-initiated stream is one exchange, delivered through
 * cfg->on_record from inside tt_h2_feed or tt_h2_close: cleanly once both
 * sides ended the stream, else with the record's error set to
 * "stream_reset" (RST_STREAM before the response was complete, or a
 * GOAWAY that left the stream unprocessed), "truncated" (its header block
 * went over cfg->max_header_bytes), "decode_error" (the connection became
 * undecodable) or "connection_closed" (tt_h2_close).  Memory is bounded:
 * payloads are never buffered, at most cfg->max_streams streams are kept
 * (more are skipped), and each keeps at most cfg->max_header_bytes of its
 * pseudo-headers.  h2.c tells the details.
 */
#ifndef TOKENTAP_H2_H
#define TOKENTAP_H2_H

#include <stddef.h>
#include <stdint.h>

#include "tokentap/decoder.h"

typedef struct tt_h2 tt_h2;

/*
 * server_side: 1 when this process is the server end (it received the
 * preface).  cfg is borrowed and outlives the object: the decoder's copy,
 * with its defaults applied (the exchanges read its caps).  NULL on ENOMEM.
 */
tt_h2 *tt_h2_new(const tt_decoder_config *cfg, int server_side);

/*
 * from_client: 1 for bytes the client sent (they begin with the preface),
 * 0 for bytes the server sent.  buf is borrowed for the call only.
 * Returns 0, or a negative tt_error after which the object is inert and
 * returns that error again (open exchanges were delivered with
 * "decode_error" first):
 *	TT_EPROTO   the preface or the framing violates RFC 9113
 *	TT_EDECODE  a header block violates RFC 7541 (HPACK)
 *	TT_ENOMEM   the inflater could not allocate: its table is lost
 * TT_EINVAL after tt_h2_close.
 */
int tt_h2_feed(tt_h2 *h, int from_client, const uint8_t *buf, size_t len,
	       int64_t now_us);

/*
 * Connection over: every open stream is delivered, with error
 * "connection_closed" unless its response was complete.  Idempotent.
 */
void tt_h2_close(tt_h2 *h, int64_t now_us);

/* Accepts NULL.  Streams still open are dropped: call tt_h2_close first. */
void tt_h2_free(tt_h2 *h);

/* Streams seen so far whose request was an LLM call. */
unsigned tt_h2_llm_exchanges(const tt_h2 *h);

#endif
