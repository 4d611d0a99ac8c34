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

/*
 * The request peek: what one client's HTTP/1.1 request says before it
 * leaves, read at once from the bytes written so far (head, perhaps with
 * some or all of its body).  Enforce mode holds a request until it is
 * whole and decides from this whether it may go.  No state, no
 * allocation: call it again on the longer buffer when more bytes came.
 *
 *	tt_peek pk;
 *	int rc = tt_peek_request(&pk, buf, len);
 *	if (rc == TT_PEEK_WHOLE && pk.llm)
 *		reserve(pk.model, pk.max_tokens, pk.body_len);
 *	else if (rc == TT_PEEK_MORE || (rc == TT_PEEK_HEAD && !pk.chunked))
 *		hold(buf, len);   // pk.total says how many bytes to wait for
 *
 * Heads end with an empty line (CRLF CRLF, or bare LFs as the decoder
 * accepts them) within TT_PEEK_HEAD_MAX bytes.  The model and the output
 * ceiling come from a scan of the body's top-level JSON members (and one
 * level down for the ceiling), the same members and order as the records'
 * request_model and max_tokens (decoder/request.h): strings with escapes
 * and compressed bodies are not read.
 */
#define TT_PEEK_HEAD_MAX (64u << 10)

enum {
	TT_PEEK_MORE = 0,   /* the head is not complete yet */
	TT_PEEK_HEAD = 1,   /* the head is complete, the body is not (or its
			     * length is unknown: chunked) */
	TT_PEEK_WHOLE = 2,  /* head and Content-Length body are all there */
};

typedef struct tt_peek {
	/* From TT_PEEK_HEAD on: */
	size_t head_len;          /* bytes of the head, empty line included */
	int64_t content_length;   /* -1: no Content-Length */
	int chunked;              /* a Transfer-Encoding: the body's length is
				   * not in the head */
	size_t total;             /* head_len + Content-Length (0 when chunked) */
	char method[16];
	const char *target;       /* borrowed from buf: the request target */
	size_t target_len;
	size_t path_len;          /* target's length without its query */
	char host[256];
	char task[128], tenant[128], feature[128];  /* X-Tokentap-* */
	int llm;                  /* an LLM call, by method and path */
	const char *provider;     /* static strings, NULL when not llm */
	const char *api;
	/* With TT_PEEK_WHOLE: */
	const char *body;         /* borrowed from buf: the Content-Length body */
	size_t body_len;
	/* With TT_PEEK_WHOLE and llm: */
	char model[128];          /* the body's "model", else the path's; may be "" */
	int64_t max_tokens;       /* the output ceiling, TT_NULL when not stated */
} tt_peek;

/*
 * Read the request at the start of buf (len bytes; nothing past len is
 * read).  Returns a TT_PEEK_* state, or TT_EPROTO when the bytes are not
 * an HTTP/1.x request head (as soon as what arrived shows it: a method
 * of other than 1 to 15 letters, '-' or '_', no HTTP/1.x version, a
 * Content-Length that is not a number or two that differ), or
 * TT_ETRUNCATED when the head passes TT_PEEK_HEAD_MAX bytes.  Bytes past
 * total (a pipelined request) are not looked at.  *pk (an output) is
 * reset first: fields not reached are zero, content_length -1 and
 * max_tokens TT_NULL.  Pointers into buf live as long as buf.
 */
int tt_peek_request(tt_peek *pk, const void *buf, size_t len);

/*
 * The request-side fields of a record for a whole LLM request read by
 * tt_peek_request() (TT_PEEK_WHOLE; buf still alive): what the decoder's
 * on_request would give (method, path, host, http "1.1", provider, api,
 * attribution, request_model, stream, max_tokens, hashes, request_bytes,
 * side "client"), from a full parse of the body, which costs
 * microseconds: enforce mode makes it only for a call it blocks.  rec is
 * initialised first.
 */
void tt_peek_record(const tt_peek *pk, tt_record *rec);

#endif
