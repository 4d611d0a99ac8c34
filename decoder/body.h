/*
 * body.h - the response body pipeline:
 *
 *	bytes -> Content-Encoding -> framing -> JSON values -> tt_usage
 *
 * framing is SSE, NDJSON, AWS event stream, or plain JSON (one object, or
 * an array streamed element by element).  Each layer keeps state across
 * pieces and has its own cap, so a body of any length is decoded in
 * bounded memory.
 */
#ifndef TOKENTAP_BODY_H
#define TOKENTAP_BODY_H

#include <stddef.h>
#include <stdint.h>

#include "decompress.h"
#include "tokentap/decoder.h"
#include "usage.h"

typedef enum tt_framing {
	TT_FRAMING_JSON = 0,
	TT_FRAMING_SSE,
	TT_FRAMING_NDJSON,
	TT_FRAMING_EVENTSTREAM,
} tt_framing;

/* From the Content-Type value and the API; never fails. */
tt_framing tt_framing_pick(const char *content_type, tt_family family,
			   int stream);

typedef struct tt_body tt_body;

/*
 * usage is borrowed and receives every value the body carries; cfg is
 * borrowed.  NULL on allocation failure or an unknown coding.
 */
tt_body *tt_body_new(const tt_decoder_config *cfg, tt_usage *usage,
		     tt_framing framing, tt_coding coding);
void tt_body_feed(tt_body *b, const void *data, size_t len);
void tt_body_end(tt_body *b);
void tt_body_free(tt_body *b); /* accepts NULL */

tt_framing tt_body_framing(const tt_body *b);
uint64_t tt_body_decoded_bytes(const tt_body *b);
int tt_body_truncated(const tt_body *b);    /* a cap cut something */
int tt_body_decode_error(const tt_body *b); /* corrupt compression/framing */

#endif
