/*
 * decoder.h - from the plaintext of one connection to usage records.
 *
 * One tt_decoder per connection.  Feed it the bytes this process sent and
 * the bytes it received, in whatever pieces they come, and it calls back
 * once per completed LLM exchange.  It does no I/O, starts no thread and
 * keeps no global state; every buffer it holds is capped when it is created.
 *
 *	tt_decoder_config cfg;
 *	tt_decoder_config_init(&cfg);
 *	cfg.on_record = ship;       // called from inside feed/close
 *	tt_decoder *d = tt_decoder_new(&cfg);
 *	tt_decoder_feed(d, TT_DIR_SENT, req, n, now_us);
 *	tt_decoder_feed(d, TT_DIR_RECV, resp, m, now_us);
 *	tt_decoder_close(d, now_us);    // flushes what is pending
 *	tt_decoder_free(d);
 *
 * Which direction carries requests is learnt from the first bytes, so the
 * same code decodes the client end (side "client") and the server end of a
 * connection (side "server").
 */
#ifndef TOKENTAP_DECODER_H
#define TOKENTAP_DECODER_H

#include <stddef.h>
#include <stdint.h>

#include "tokentap/error.h"
#include "tokentap/record.h"

typedef enum tt_dir {
	TT_DIR_SENT = 0, /* bytes this process wrote (SSL_write) */
	TT_DIR_RECV = 1, /* bytes this process read (SSL_read) */
} tt_dir;

/* What a connection has turned out to be. */
typedef enum tt_conn_kind {
	TT_CONN_UNKNOWN = 0, /* too few bytes yet */
	TT_CONN_HTTP1,       /* HTTP/1.x, at least one LLM exchange possible */
	TT_CONN_HTTP2,       /* HTTP/2 */
	TT_CONN_OTHER,       /* not HTTP: every further byte is ignored */
} tt_conn_kind;

/*
 * The record passed to on_record is borrowed: it lives until the callback
 * returns.  The callback may not call back into the same decoder.
 */
typedef void (*tt_record_fn)(const tt_record *rec, void *user);

typedef struct tt_decoder_config {
	tt_record_fn on_record;
	/*
	 * Optional: called when an LLM request has been read whole, before
	 * any of its response, with a record that holds only what the
	 * request tells (method, path, host, provider, api, attribution,
	 * request_model, stream, max_tokens, request_bytes, hashes).  Enforce
	 * mode feeds a write to the decoder before passing it on, and decides
	 * here whether it may leave.
	 */
	tt_record_fn on_request;
	void *user;
	/* Caps; 0 means the default shown. */
	size_t max_header_bytes;   /* one message head: 64 KiB */
	size_t max_request_body;   /* kept to read model, hashes: 8 MiB */
	size_t max_response_body;  /* a non-streamed JSON body: 8 MiB */
	size_t max_event_bytes;    /* one SSE event / NDJSON line: 1 MiB */
	unsigned max_streams;      /* concurrent HTTP/2 streams: 128 */
	unsigned max_pending;      /* pipelined HTTP/1.1 requests: 16 */
} tt_decoder_config;

void tt_decoder_config_init(tt_decoder_config *cfg);

/* NULL on allocation failure. cfg is copied. */
typedef struct tt_decoder tt_decoder;
tt_decoder *tt_decoder_new(const tt_decoder_config *cfg);

/*
 * Feed bytes of one direction.  now_us is a CLOCK_REALTIME timestamp in
 * microseconds for the moment the bytes passed.  Returns 0, or a negative
 * tt_error once the connection became undecodable (the decoder then stays
 * inert and further calls return the same error cheaply).  Records that
 * complete are delivered before the call returns.
 */
int tt_decoder_feed(tt_decoder *d, tt_dir dir, const void *buf, size_t len,
		    int64_t now_us);

/*
 * The connection ended.  Close-delimited bodies end here; exchanges still
 * open are delivered with error "connection_closed".  Idempotent.
 */
int tt_decoder_close(tt_decoder *d, int64_t now_us);

/* Accepts NULL. Does not deliver pending records: call close first. */
void tt_decoder_free(tt_decoder *d);

tt_conn_kind tt_decoder_kind(const tt_decoder *d);

/*
 * True once the connection can carry no LLM exchange (not HTTP, or a
 * protocol error): a caller may stop feeding it entirely.
 */
int tt_decoder_is_idle(const tt_decoder *d);

/*
 * Number of exchanges begun that look like LLM calls.  The agent uses it to
 * keep connections with LLM traffic on the slow path.
 */
unsigned tt_decoder_llm_exchanges(const tt_decoder *d);

#endif
