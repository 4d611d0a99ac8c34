/*
 * exchange.h - one request and its response, whatever carried them.
 *
 * The framing layers (http1.c for HTTP/1.1, h2.c for HTTP/2) cut the wire
 * into messages and call these functions in wire order; the exchange
 * recognises the LLM call, runs the body pipeline (decompression, SSE,
 * NDJSON, eventstream, JSON, provider usage) and builds the record.
 *
 * Call order for one exchange:
 *	tt_exchange_new
 *	tt_exchange_request_line, tt_exchange_request_header*,
 *	tt_exchange_request_headers_done, tt_exchange_request_body*,
 *	tt_exchange_request_end
 *	tt_exchange_response_status, tt_exchange_response_header*,
 *	tt_exchange_response_headers_done, tt_exchange_response_body*,
 *	tt_exchange_finish              (delivers the record if LLM)
 *	tt_exchange_free
 * The response calls may begin before tt_exchange_request_end (a server
 * may answer early).  Every function tolerates being called on an
 * exchange that is not an LLM call and then does next to nothing.
 */
#ifndef TOKENTAP_EXCHANGE_H
#define TOKENTAP_EXCHANGE_H

#include <stddef.h>
#include <stdint.h>

#include "tokentap/decoder.h"

typedef struct tt_exchange tt_exchange;

/*
 * http_version is "1.1" or "2"; server_side is 1 when this process
 * answered the request.  cfg is borrowed and must outlive the exchange.
 * NULL on allocation failure.
 */
tt_exchange *tt_exchange_new(const tt_decoder_config *cfg,
			     const char *http_version, int server_side,
			     int64_t now_us);
void tt_exchange_free(tt_exchange *ex); /* accepts NULL */

/* target is the request target (path and query); for HTTP/2, :path. */
void tt_exchange_request_line(tt_exchange *ex, const char *method,
			      size_t method_len, const char *target,
			      size_t target_len);
/* Any header; names compare case-insensitively; ":authority" is the host. */
void tt_exchange_request_header(tt_exchange *ex, const char *name,
				size_t name_len, const char *value,
				size_t value_len);
/* Returns 1 when the request is an LLM call, else 0. */
int tt_exchange_request_headers_done(tt_exchange *ex);
void tt_exchange_request_body(tt_exchange *ex, const void *data, size_t len);
void tt_exchange_request_end(tt_exchange *ex, int64_t now_us);

/* Final (non-1xx) status only. now_us: when the first response byte came. */
void tt_exchange_response_status(tt_exchange *ex, int status, int64_t now_us);
void tt_exchange_response_header(tt_exchange *ex, const char *name,
				 size_t name_len, const char *value,
				 size_t value_len);
void tt_exchange_response_headers_done(tt_exchange *ex);
void tt_exchange_response_body(tt_exchange *ex, const void *data, size_t len);

/*
 * The exchange is over.  error is NULL for a clean end, or the record's
 * error string ("connection_closed", "stream_reset", ...).  Delivers the
 * record through cfg->on_record when the request was an LLM call.  Call
 * once; the exchange can only be freed afterwards.
 */
void tt_exchange_finish(tt_exchange *ex, const char *error, int64_t now_us);

/* 1 when tt_exchange_request_headers_done() found an LLM call. */
int tt_exchange_is_llm(const tt_exchange *ex);

#endif
