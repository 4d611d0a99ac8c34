/*
 * h2.c - HTTP/2 framing (RFC 9113) for one observed connection; HPACK
 * (RFC 7541) through nghttp2's inflater, one per direction.
 *
 * RFC 9113 §4.1, every frame:
 *
 *	HTTP Frame {
 *	  Length (24), Type (8), Flags (8),
 *	  Reserved (1), Stream Identifier (31),
 *	  Frame Payload (..),
 *	}
 *
 * We are a passive observer, not an endpoint, so the parser is lenient
 * where a peer would have reacted anyway (an oversized frame, a DATA frame
 * on a closed stream: the peer's RST_STREAM or GOAWAY is what we then
 * see), and strict only where continuing would desynchronise us (HPACK
 * errors, a header block interrupted by another frame, a pad length larger
 * than its frame, malformed fixed-size frames).
 *
 * Memory.  Payloads are never buffered: DATA goes straight to the exchange
 * and header block fragments straight into the inflater as they arrive,
 * so the carry-over between reads is the 9-byte frame header plus at most
 * 8 bytes of fixed fields (pad length, priority, promised stream, an
 * RST_STREAM or GOAWAY code, one SETTINGS entry).  A frame of any legal
 * size - up to the 2^24-1 that SETTINGS_MAX_FRAME_SIZE allows - straddles
 * reads in constant memory, so there is nothing to overflow there.  The
 * inflater itself buffers at most one header field (nghttp2 caps it at
 * 64 KiB and fails the block beyond).  What a stream keeps of its header
 * block is capped by cfg->max_header_bytes, counted as RFC 9113 §6.5.2
 * counts a header list (name + value + 32 per field); past the cap fields
 * are still inflated, to keep the dynamic table in step, but dropped, and
 * the record says "truncated".  Open streams are capped by
 * cfg->max_streams; a stream over the cap is inflated and otherwise
 * skipped (counted in dropped_streams).
 *
 * Streams.  Each client-initiated stream is one tt_exchange.  It is
 * finished cleanly once both sides sent END_STREAM, or when a RST_STREAM
 * follows a complete response (§8.1: a server may stop a request it has
 * already answered); otherwise it is finished with "stream_reset" (a
 * RST_STREAM, or a GOAWAY whose last stream is lower), "decode_error"
 * (the connection became undecodable) or "connection_closed".
 * Server-pushed streams carry no LLM call; their header blocks are
 * inflated and dropped.
 */
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "common/buf.h"
#include "exchange.h"
#include "h2.h"

#define H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define H2_PREFACE_LEN 24
#define H2_FRAME_HDR_LEN 9
#define H2_HPACK_DEFAULT_TABLE 4096 /* RFC 9113 §6.5.2 initial value */
#define H2_MAX_PENDING_SETTINGS 8

#define DEFAULT_MAX_HEADER_BYTES (64 * 1024)
#define DEFAULT_MAX_STREAMS 128

enum h2_type {
	H2_DATA = 0x0,
	H2_HEADERS = 0x1,
	H2_PRIORITY = 0x2,
	H2_RST_STREAM = 0x3,
	H2_SETTINGS = 0x4,
	H2_PUSH_PROMISE = 0x5,
	H2_PING = 0x6,
	H2_GOAWAY = 0x7,
	H2_WINDOW_UPDATE = 0x8,
	H2_CONTINUATION = 0x9,
};

#define H2_FLAG_END_STREAM 0x01
#define H2_FLAG_ACK 0x01
#define H2_FLAG_END_HEADERS 0x04
#define H2_FLAG_PADDED 0x08
#define H2_FLAG_PRIORITY 0x20

#define H2_SETTINGS_HEADER_TABLE_SIZE 0x1

/* Where the parser is inside the current frame. */
enum h2_phase {
	PH_PREFACE,   /* client direction only: matching the 24-byte preface */
	PH_HEADER,    /* collecting the 9-byte frame header */
	PH_PADLEN,    /* the Pad Length byte of a PADDED frame */
	PH_FIXED,     /* fixed fields before the body (priority, ids, codes) */
	PH_BODY,      /* data, a header block fragment, settings, or skipped */
	PH_PADDING,   /* trailing padding, skipped */
};

/* What the header block being inflated in one direction belongs to. */
enum h2_block {
	BLK_NONE = 0,
	BLK_IGNORE,     /* inflated for the table's sake, fields dropped */
	BLK_REQUEST,    /* a request head */
	BLK_RESPONSE,   /* a response head, interim (1xx) or final */
	BLK_TRAILERS,   /* trailers of either side */
};

enum h2_side_state {
	SIDE_HEAD = 0, /* waiting for (the final) head */
	SIDE_BODY,     /* head seen, body may follow */
	SIDE_DONE,     /* END_STREAM seen */
};

struct h2_stream {
	uint32_t id;
	tt_exchange *ex;
	enum h2_side_state req, resp;
	const char *error;      /* set when a cap cut something */
	size_t head_bytes;      /* header list size of the current block */
	int head_cut;           /* current block went over the cap */
	int line_done;          /* request line handed to the exchange */
	int status;             /* :status of the response block, 0 if none */
	int interim;            /* the current response block is 1xx */
	int bad_head;           /* response block without a valid :status */
	int64_t head_us;        /* when the current HEADERS frame began */
	int64_t resp_length;    /* the response's content-length, -1 if none */
	uint64_t resp_got;      /* DATA bytes of the response so far */
	char method[32];
	size_t method_len;
	tt_buf path, authority; /* pseudo-headers until the request line */
};

struct h2_dir {
	enum h2_phase phase;
	size_t preface_got;
	uint8_t hdr[H2_FRAME_HDR_LEN];
	size_t hdr_got;

	/* The current frame. */
	uint32_t len, sid;
	uint8_t type, flags;
	uint32_t left;          /* payload bytes not yet consumed */
	uint32_t pad;           /* trailing padding still to skip */
	uint8_t fixed[8];
	uint32_t fixed_need, fixed_got;

	/* The header block in progress (HEADERS/PUSH_PROMISE + CONTINUATION). */
	enum h2_block block;
	uint32_t block_sid;
	int block_end_stream;
	int in_block;

	nghttp2_hd_inflater *inf; /* decodes header blocks sent this way */
	size_t table_ceiling;     /* SETTINGS_HEADER_TABLE_SIZE it enforces */
	size_t deferred_table;    /* to apply after the current block, or 0 */
	int has_deferred;

	/*
	 * SETTINGS sent this way and not yet acknowledged by the other side;
	 * each entry is the header table size it announced, or SIZE_MAX.
	 */
	size_t pending[H2_MAX_PENDING_SETTINGS];
	unsigned npending;
	unsigned acks_ahead;    /* ACKs seen before the SETTINGS they ack */
	size_t cur_table;       /* HEADER_TABLE_SIZE in the frame being read */
};

struct tt_h2 {
	const tt_decoder_config *cfg;
	int server_side;
	int err;                /* sticky; 0 while decodable */
	int closed;
	size_t max_header_bytes;
	unsigned max_streams;

	struct h2_dir dir[2];   /* [1] client -> server, [0] server -> client */

	struct h2_stream **streams;
	unsigned nstreams;
	struct h2_stream *last; /* lookup cache */
	uint32_t max_client_sid;  /* highest request stream opened so far */
	uint32_t goaway_last;     /* server's last processed stream */

	unsigned llm;
	unsigned dropped_streams; /* over cfg->max_streams (for a debugger) */
};

/* Direction index: dir[1] carries what the client sent. */
#define CLIENT 1
#define SERVER 0

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* ---- streams -------------------------------------------------------- */

static struct h2_stream *stream_find(tt_h2 *h, uint32_t id)
{
	if (h->last && h->last->id == id)
		return h->last;
	for (unsigned i = 0; i < h->nstreams; i++) {
		if (h->streams[i]->id == id) {
			h->last = h->streams[i];
			return h->last;
		}
	}
	return NULL;
}

static struct h2_stream *stream_new(tt_h2 *h, uint32_t id, int64_t now_us)
{
	struct h2_stream *s;

	if (h->nstreams >= h->max_streams) {
		h->dropped_streams++;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->ex = tt_exchange_new(h->cfg, "2", h->server_side, now_us);
	if (!s->ex) {
		free(s);
		return NULL;
	}
	s->id = id;
	s->resp_length = -1;
	tt_buf_init(&s->path, h->max_header_bytes);
	tt_buf_init(&s->authority, h->max_header_bytes);
	h->streams[h->nstreams++] = s;
	return s;
}

/* Deliver the stream's record (if LLM) and forget it. */
static void stream_finish(tt_h2 *h, struct h2_stream *s, const char *error,
			  int64_t now_us)
{
	if (!error)
		error = s->error;
	tt_exchange_finish(s->ex, error, now_us);
	tt_exchange_free(s->ex);
	tt_buf_free(&s->path);
	tt_buf_free(&s->authority);
	for (unsigned i = 0; i < h->nstreams; i++) {
		if (h->streams[i] == s) {
			h->streams[i] = h->streams[--h->nstreams];
			break;
		}
	}
	if (h->last == s)
		h->last = NULL;
	free(s);
}

/* Both sides done: the exchange is complete. */
static void stream_maybe_done(tt_h2 *h, struct h2_stream *s, int64_t now_us)
{
	if (s->req == SIDE_DONE && s->resp == SIDE_DONE)
		stream_finish(h, s, NULL, now_us);
}

/*
 * Is the response whole?  END_STREAM says so; so does a body that reached
 * its content-length, since a client (curl) may close the connection
 * without reading the empty DATA frame that carries END_STREAM.
 */
static int response_complete(const struct h2_stream *s)
{
	return s->resp == SIDE_DONE ||
	       (s->resp == SIDE_BODY && s->resp_length >= 0 &&
		s->resp_got >= (uint64_t)s->resp_length);
}

/* Finish every open stream: cleanly those whose response is complete. */
static void finish_all(tt_h2 *h, const char *error, int64_t now_us)
{
	while (h->nstreams > 0) {
		struct h2_stream *s = h->streams[h->nstreams - 1];
		stream_finish(h, s, response_complete(s) ? NULL : error, now_us);
	}
}

/* The connection cannot be followed any further: sticky error. */
static int fail(tt_h2 *h, int err, int64_t now_us)
{
	h->err = err;
	finish_all(h, "decode_error", now_us);
	return err;
}

/* ---- HPACK table size (RFC 7541 §4.2, RFC 9113 §6.5.2/§6.5.3) ------- */

/*
 * SETTINGS_HEADER_TABLE_SIZE that one side announces limits the OTHER
 * side's encoder, i.e. our inflater for the opposite direction.  It takes
 * effect when the other side acknowledges it, and a smaller value then
 * obliges the encoder to open its next header block with a dynamic table
 * size update (which nghttp2's inflater then insists on).
 *
 * Raising the ceiling early is harmless - it only widens what the
 * inflater accepts - and it keeps us in step with an encoder that starts
 * using the larger table before we have seen its ACK go by; lowering it
 * waits for the ACK, in wire order with the header blocks it precedes.
 * The inflater may only be told between header blocks: a change that
 * comes while one is open waits for its end.
 */
static int table_apply(tt_h2 *h, int d, size_t size, int64_t now_us)
{
	struct h2_dir *dd = &h->dir[d];

	if (dd->in_block) {
		dd->deferred_table = size;
		dd->has_deferred = 1;
		return 0;
	}
	if (nghttp2_hd_inflate_change_table_size(dd->inf, size) != 0)
		return fail(h, TT_ENOMEM, now_us);
	dd->table_ceiling = size;
	return 0;
}

/* A SETTINGS frame sent in direction d announced size (SIZE_MAX: none). */
static int settings_announced(tt_h2 *h, int d, size_t size, int64_t now_us)
{
	struct h2_dir *dd = &h->dir[d];
	struct h2_dir *od = &h->dir[!d];
	int rc;

	if (size != SIZE_MAX && size > od->table_ceiling) {
		rc = table_apply(h, !d, size, now_us);
		if (rc)
			return rc;
	}
	if (dd->acks_ahead > 0) {
		/* Its ACK already went by (reads reordered across directions). */
		dd->acks_ahead--;
		return size == SIZE_MAX ? 0 : table_apply(h, !d, size, now_us);
	}
	if (dd->npending == H2_MAX_PENDING_SETTINGS) {
		/* A peer this far ahead of its acks: keep the newest value. */
		if (size != SIZE_MAX)
			dd->pending[dd->npending - 1] = size;
		return 0;
	}
	dd->pending[dd->npending++] = size;
	return 0;
}

/* A SETTINGS ACK was sent in direction d: it acks the oldest from !d. */
static int settings_acked(tt_h2 *h, int d, int64_t now_us)
{
	struct h2_dir *od = &h->dir[!d];
	size_t size;

	if (od->npending == 0) {
		if (od->acks_ahead < UINT32_MAX)
			od->acks_ahead++;
		return 0;
	}
	size = od->pending[0];
	od->npending--;
	memmove(od->pending, od->pending + 1, od->npending * sizeof(size_t));
	return size == SIZE_MAX ? 0 : table_apply(h, d, size, now_us);
}

/* ---- header fields -------------------------------------------------- */

static int name_is(const nghttp2_nv *nv, const char *lit)
{
	size_t n = strlen(lit);
	return nv->namelen == n && memcmp(nv->name, lit, n) == 0;
}

static void request_line(struct h2_stream *s)
{
	if (s->line_done)
		return;
	s->line_done = 1;
	tt_exchange_request_line(s->ex, s->method, s->method_len,
				 s->path.data ? s->path.data : "", s->path.len);
	if (s->authority.len > 0)
		tt_exchange_request_header(s->ex, ":authority", 10,
					   s->authority.data,
					   s->authority.len);
	tt_buf_free(&s->path);
	tt_buf_free(&s->authority);
}

static void request_field(struct h2_stream *s, const nghttp2_nv *nv)
{
	if (nv->namelen > 0 && nv->name[0] == ':' && !s->line_done) {
		if (name_is(nv, ":method")) {
			size_t n = nv->valuelen < sizeof(s->method) ?
					   nv->valuelen : sizeof(s->method);
			memcpy(s->method, nv->value, n);
			s->method_len = n;
		} else if (name_is(nv, ":path")) {
			tt_buf_reset(&s->path);
			tt_buf_add_trunc(&s->path, nv->value, nv->valuelen);
		} else if (name_is(nv, ":authority")) {
			tt_buf_reset(&s->authority);
			tt_buf_add_trunc(&s->authority, nv->value, nv->valuelen);
		}
		return;
	}
	request_line(s);
	if (nv->namelen > 0 && nv->name[0] == ':')
		return; /* a pseudo-header after a regular one: malformed */
	tt_exchange_request_header(s->ex, (const char *)nv->name, nv->namelen,
				   (const char *)nv->value, nv->valuelen);
}

/* :status is three digits (RFC 9110 §15). */
static int parse_status(const uint8_t *v, size_t n)
{
	if (n != 3)
		return 0;
	for (size_t i = 0; i < 3; i++)
		if (v[i] < '0' || v[i] > '9')
			return 0;
	return (v[0] - '0') * 100 + (v[1] - '0') * 10 + (v[2] - '0');
}

static void response_field(struct h2_stream *s, const nghttp2_nv *nv)
{
	if (s->interim || s->bad_head)
		return;
	if (s->status == 0) {
		int st = name_is(nv, ":status") ?
				 parse_status(nv->value, nv->valuelen) : 0;
		if (st < 100) {
			s->bad_head = 1;
			return;
		}
		if (st < 200) {
			s->interim = 1; /* §8.1: 1xx heads are skipped */
			return;
		}
		s->status = st;
		tt_exchange_response_status(s->ex, st, s->head_us);
		return;
	}
	if (nv->namelen > 0 && nv->name[0] == ':')
		return;
	if (name_is(nv, "content-length")) {
		char num[24];
		if (nv->valuelen > 0 && nv->valuelen < sizeof(num)) {
			memcpy(num, nv->value, nv->valuelen);
			num[nv->valuelen] = '\0';
			char *end;
			long long v = strtoll(num, &end, 10);
			if (*end == '\0' && v >= 0)
				s->resp_length = v;
		}
	}
	tt_exchange_response_header(s->ex, (const char *)nv->name, nv->namelen,
				    (const char *)nv->value, nv->valuelen);
}

static void on_field(tt_h2 *h, struct h2_dir *dd, const nghttp2_nv *nv)
{
	struct h2_stream *s;

	if (dd->block != BLK_REQUEST && dd->block != BLK_RESPONSE)
		return;
	s = stream_find(h, dd->block_sid);
	if (!s || s->head_cut)
		return;
	s->head_bytes += nv->namelen + nv->valuelen + 32;
	if (s->head_bytes > h->max_header_bytes) {
		s->head_cut = 1;
		s->error = "truncated";
		return;
	}
	if (dd->block == BLK_REQUEST)
		request_field(s, nv);
	else
		response_field(s, nv);
}

/* The header block of direction d ended (END_HEADERS consumed). */
static int block_end(tt_h2 *h, int d, int64_t now_us)
{
	struct h2_dir *dd = &h->dir[d];
	struct h2_stream *s = stream_find(h, dd->block_sid);
	enum h2_block kind = dd->block;
	int end_stream = dd->block_end_stream;

	dd->in_block = 0;
	dd->block = BLK_NONE;
	if (dd->has_deferred) {
		dd->has_deferred = 0;
		if (table_apply(h, d, dd->deferred_table, now_us))
			return h->err;
	}
	if (!s)
		return 0;

	switch (kind) {
	case BLK_REQUEST:
		request_line(s);
		if (tt_exchange_request_headers_done(s->ex)) {
			h->llm++;
		} else {
			/* Not an LLM call: nothing to keep for it. */
			stream_finish(h, s, NULL, now_us);
			return 0;
		}
		s->req = SIDE_BODY;
		if (s->id > h->goaway_last) {
			stream_finish(h, s, "stream_reset", now_us);
			return 0;
		}
		if (end_stream) {
			s->req = SIDE_DONE;
			tt_exchange_request_end(s->ex, now_us);
		}
		break;
	case BLK_RESPONSE:
		if (s->interim) {
			s->interim = 0;
			break; /* the final head is still to come */
		}
		if (s->bad_head) {
			stream_finish(h, s, "decode_error", now_us);
			return 0;
		}
		if (s->status == 0)
			break; /* cut by the cap before :status; wait */
		tt_exchange_response_headers_done(s->ex);
		s->resp = end_stream ? SIDE_DONE : SIDE_BODY;
		stream_maybe_done(h, s, now_us);
		break;
	case BLK_TRAILERS:
		if (end_stream) {
			if (d == CLIENT && s->req != SIDE_DONE) {
				s->req = SIDE_DONE;
				tt_exchange_request_end(s->ex, now_us);
			} else if (d == SERVER) {
				s->resp = SIDE_DONE;
			}
			stream_maybe_done(h, s, now_us);
		}
		break;
	default:
		break;
	}
	return 0;
}

/* Feed a header block fragment (or, final, its end) to direction d. */
static int inflate(tt_h2 *h, int d, const uint8_t *in, size_t len, int final,
		   int64_t now_us)
{
	static const uint8_t none;
	struct h2_dir *dd = &h->dir[d];

	if (!in)
		in = &none; /* nghttp2 may do arithmetic on it */
	for (;;) {
		nghttp2_nv nv;
		int flags = 0;
		ssize_t rv = nghttp2_hd_inflate_hd2(dd->inf, &nv, &flags, in,
						    len, final);
		if (rv < 0)
			return fail(h, rv == NGHTTP2_ERR_NOMEM ? TT_ENOMEM :
								 TT_EDECODE,
				    now_us);
		in += rv;
		len -= (size_t)rv;
		if (flags & NGHTTP2_HD_INFLATE_EMIT)
			on_field(h, dd, &nv);
		if (flags & NGHTTP2_HD_INFLATE_FINAL) {
			nghttp2_hd_inflate_end_headers(dd->inf);
			return block_end(h, d, now_us);
		}
		if (!(flags & NGHTTP2_HD_INFLATE_EMIT) && len == 0)
			break;
	}
	if (final)
		return fail(h, TT_EDECODE, now_us);
	return 0;
}

/* ---- frames --------------------------------------------------------- */

/* A HEADERS frame on stream sid began in direction d: classify the block. */
static void headers_begin(tt_h2 *h, int d, int64_t now_us)
{
	struct h2_dir *dd = &h->dir[d];
	uint32_t sid = dd->sid;
	struct h2_stream *s = stream_find(h, sid);

	dd->block = BLK_IGNORE;
	if (d == CLIENT) {
		if (!s && (sid & 1) && sid > h->max_client_sid) {
			h->max_client_sid = sid;
			s = stream_new(h, sid, now_us);
			if (s)
				dd->block = BLK_REQUEST;
		} else if (s && s->req == SIDE_BODY) {
			dd->block = BLK_TRAILERS;
		}
	} else if (s) {
		if (s->resp == SIDE_HEAD) {
			dd->block = BLK_RESPONSE;
			s->head_us = now_us;
		} else if (s->resp == SIDE_BODY) {
			dd->block = BLK_TRAILERS;
		}
	}
	if (s && (dd->block == BLK_REQUEST || dd->block == BLK_RESPONSE)) {
		s->head_bytes = 0;
		s->head_cut = 0;
		s->status = 0;
		s->interim = 0;
		s->bad_head = 0;
	}
}

static int data_chunk(tt_h2 *h, int d, const uint8_t *p, size_t n)
{
	struct h2_stream *s = stream_find(h, h->dir[d].sid);

	if (!s || n == 0)
		return 0;
	if (d == CLIENT && s->req == SIDE_BODY)
		tt_exchange_request_body(s->ex, p, n);
	else if (d == SERVER && s->resp == SIDE_BODY) {
		tt_exchange_response_body(s->ex, p, n);
		s->resp_got += n;
	}
	return 0;
}

static void settings_entry(tt_h2 *h, int d)
{
	struct h2_dir *dd = &h->dir[d];
	unsigned id = (unsigned)dd->fixed[0] << 8 | dd->fixed[1];

	if (id == H2_SETTINGS_HEADER_TABLE_SIZE)
		dd->cur_table = get_u32(dd->fixed + 2);
}

/* The 9-byte header is complete: check it and lay the payload out. */
static int frame_begin(tt_h2 *h, int d, int64_t now_us)
{
	struct h2_dir *dd = &h->dir[d];
	uint32_t len = (uint32_t)dd->hdr[0] << 16 | (uint32_t)dd->hdr[1] << 8 |
		       dd->hdr[2];
	int padded = 0;

	dd->len = len;
	dd->left = len;
	dd->type = dd->hdr[3];
	dd->flags = dd->hdr[4];
	dd->sid = get_u32(dd->hdr + 5) & 0x7fffffffu;
	dd->pad = 0;
	dd->fixed_need = 0;
	dd->fixed_got = 0;

	/* §6.10: a header block is contiguous; nothing may interleave it. */
	if (dd->in_block &&
	    (dd->type != H2_CONTINUATION || dd->sid != dd->block_sid))
		return fail(h, TT_EPROTO, now_us);

	switch (dd->type) {
	case H2_DATA:
		if (dd->sid == 0)
			return fail(h, TT_EPROTO, now_us);
		padded = dd->flags & H2_FLAG_PADDED;
		break;
	case H2_HEADERS:
		if (dd->sid == 0)
			return fail(h, TT_EPROTO, now_us);
		padded = dd->flags & H2_FLAG_PADDED;
		if (dd->flags & H2_FLAG_PRIORITY)
			dd->fixed_need = 5;
		headers_begin(h, d, now_us);
		dd->in_block = 1;
		dd->block_sid = dd->sid;
		dd->block_end_stream = dd->flags & H2_FLAG_END_STREAM;
		break;
	case H2_PUSH_PROMISE:
		if (dd->sid == 0)
			return fail(h, TT_EPROTO, now_us);
		padded = dd->flags & H2_FLAG_PADDED;
		dd->fixed_need = 4;
		dd->in_block = 1;
		dd->block = BLK_IGNORE;
		dd->block_sid = dd->sid;
		dd->block_end_stream = 0;
		break;
	case H2_CONTINUATION:
		if (!dd->in_block)
			return fail(h, TT_EPROTO, now_us);
		break;
	case H2_PRIORITY:
		/* Skipped; a bad length is only a stream error (§6.3). */
		break;
	case H2_RST_STREAM:
	case H2_WINDOW_UPDATE:
		if (len != 4)
			return fail(h, TT_EPROTO, now_us);
		dd->fixed_need = 4;
		break;
	case H2_PING:
		if (len != 8 || dd->sid != 0)
			return fail(h, TT_EPROTO, now_us);
		break;
	case H2_GOAWAY:
		if (len < 8 || dd->sid != 0)
			return fail(h, TT_EPROTO, now_us);
		dd->fixed_need = 8;
		break;
	case H2_SETTINGS:
		if (dd->sid != 0 || len % 6 != 0 ||
		    ((dd->flags & H2_FLAG_ACK) && len != 0))
			return fail(h, TT_EPROTO, now_us);
		dd->cur_table = SIZE_MAX;
		break;
	default:
		break; /* §5.5: unknown types are ignored */
	}
	dd->phase = padded ? PH_PADLEN : dd->fixed_need ? PH_FIXED : PH_BODY;
	if (padded && len < 1)
		return fail(h, TT_EPROTO, now_us);
	if (dd->fixed_need > len - (padded ? 1 : 0))
		return fail(h, TT_EPROTO, now_us);
	return 0;
}

/* The fixed fields of the current frame are complete. */
static int frame_fixed(tt_h2 *h, int d, int64_t now_us)
{
	struct h2_dir *dd = &h->dir[d];
	struct h2_stream *s;

	switch (dd->type) {
	case H2_RST_STREAM:
		s = stream_find(h, dd->sid);
		if (s)
			stream_finish(h, s,
				      response_complete(s) ? NULL : "stream_reset",
				      now_us);
		break;
	case H2_GOAWAY:
		if (d == SERVER) {
			uint32_t last = get_u32(dd->fixed) & 0x7fffffffu;
			if (last < h->goaway_last)
				h->goaway_last = last;
			/* §6.8: streams above last were never processed. */
			for (unsigned i = 0; i < h->nstreams;) {
				s = h->streams[i];
				if (s->id > h->goaway_last)
					stream_finish(h, s, "stream_reset",
						      now_us);
				else
					i++;
			}
		}
		break;
	default:
		break;
	}
	return 0;
}

/* Every payload byte of the current frame was consumed. */
static int frame_end(tt_h2 *h, int d, int64_t now_us)
{
	struct h2_dir *dd = &h->dir[d];
	struct h2_stream *s;
	int rc = 0;

	dd->phase = PH_HEADER;
	dd->hdr_got = 0;
	switch (dd->type) {
	case H2_DATA:
		if (!(dd->flags & H2_FLAG_END_STREAM))
			break;
		s = stream_find(h, dd->sid);
		if (!s)
			break;
		if (d == CLIENT && s->req == SIDE_BODY) {
			s->req = SIDE_DONE;
			tt_exchange_request_end(s->ex, now_us);
		} else if (d == SERVER && s->resp == SIDE_BODY) {
			s->resp = SIDE_DONE;
		}
		stream_maybe_done(h, s, now_us);
		break;
	case H2_SETTINGS:
		if (dd->flags & H2_FLAG_ACK)
			rc = settings_acked(h, d, now_us);
		else
			rc = settings_announced(h, d, dd->cur_table, now_us);
		break;
	default:
		break;
	}
	return rc;
}

/* The header block fragment of a HEADERS/PUSH_PROMISE/CONTINUATION ended. */
static int fragment_end(tt_h2 *h, int d, int64_t now_us)
{
	struct h2_dir *dd = &h->dir[d];

	if (!(dd->flags & H2_FLAG_END_HEADERS))
		return 0;
	return inflate(h, d, NULL, 0, 1, now_us);
}

static int is_block_frame(uint8_t type)
{
	return type == H2_HEADERS || type == H2_PUSH_PROMISE ||
	       type == H2_CONTINUATION;
}

static int feed_dir(tt_h2 *h, int d, const uint8_t *p, size_t n,
		    int64_t now_us)
{
	struct h2_dir *dd = &h->dir[d];
	size_t k;
	int rc;

	/*
	 * Go on while there are bytes, and also when what is left of the
	 * frame needs none (an empty body, the end of a frame): the frame's
	 * end then happens in this call, whatever the next read brings.
	 */
	while (n > 0 || (dd->phase != PH_PREFACE && dd->phase != PH_HEADER &&
			 (dd->left == 0 ||
			  (dd->phase == PH_BODY && dd->left == dd->pad)))) {
		switch (dd->phase) {
		case PH_PREFACE:
			k = H2_PREFACE_LEN - dd->preface_got;
			if (k > n)
				k = n;
			if (memcmp(p, &H2_PREFACE[dd->preface_got], k) != 0)
				return fail(h, TT_EPROTO, now_us);
			dd->preface_got += k;
			p += k;
			n -= k;
			if (dd->preface_got == H2_PREFACE_LEN)
				dd->phase = PH_HEADER;
			break;
		case PH_HEADER:
			k = H2_FRAME_HDR_LEN - dd->hdr_got;
			if (k > n)
				k = n;
			memcpy(dd->hdr + dd->hdr_got, p, k);
			dd->hdr_got += k;
			p += k;
			n -= k;
			if (dd->hdr_got < H2_FRAME_HDR_LEN)
				break;
			rc = frame_begin(h, d, now_us);
			if (rc)
				return rc;
			break;
		case PH_PADLEN:
			if (n == 0)
				return 0;
			dd->pad = *p++;
			n--;
			dd->left--;
			if (dd->pad + dd->fixed_need > dd->left)
				return fail(h, TT_EPROTO, now_us);
			dd->phase = dd->fixed_need ? PH_FIXED : PH_BODY;
			break;
		case PH_FIXED:
			if (n == 0)
				return 0;
			k = dd->fixed_need - dd->fixed_got;
			if (k > n)
				k = n;
			memcpy(dd->fixed + dd->fixed_got, p, k);
			dd->fixed_got += k;
			dd->left -= k;
			p += k;
			n -= k;
			if (dd->fixed_got < dd->fixed_need)
				break;
			dd->phase = PH_BODY;
			rc = frame_fixed(h, d, now_us);
			if (rc)
				return rc;
			break;
		case PH_BODY: {
			uint32_t body = dd->left - dd->pad;

			k = body < n ? body : n;
			if (dd->type == H2_SETTINGS) {
				/* Entries are 6 bytes; reuse fixed[]. */
				k = 6 - dd->fixed_got;
				if (k > n)
					k = n;
				if (k > body)
					k = body;
				memcpy(dd->fixed + dd->fixed_got, p, k);
				dd->fixed_got += k;
				if (dd->fixed_got == 6) {
					dd->fixed_got = 0;
					settings_entry(h, d);
				}
			} else if (dd->type == H2_DATA) {
				data_chunk(h, d, p, k);
			} else if (is_block_frame(dd->type) && k > 0) {
				rc = inflate(h, d, p, k, 0, now_us);
				if (rc)
					return rc;
			}
			p += k;
			n -= k;
			dd->left -= k;
			if (dd->left > dd->pad)
				break;
			dd->phase = PH_PADDING;
			if (is_block_frame(dd->type)) {
				rc = fragment_end(h, d, now_us);
				if (rc)
					return rc;
			}
			break;
		}
		case PH_PADDING:
			k = dd->left < n ? dd->left : n;
			p += k;
			n -= k;
			dd->left -= k;
			if (dd->left > 0)
				break;
			rc = frame_end(h, d, now_us);
			if (rc)
				return rc;
			break;
		}
	}
	return 0;
}

/* ---- public --------------------------------------------------------- */

tt_h2 *tt_h2_new(const tt_decoder_config *cfg, int server_side)
{
	tt_h2 *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->cfg = cfg;
	h->server_side = server_side;
	h->max_header_bytes = cfg->max_header_bytes ? cfg->max_header_bytes :
						      DEFAULT_MAX_HEADER_BYTES;
	h->max_streams = cfg->max_streams ? cfg->max_streams :
					    DEFAULT_MAX_STREAMS;
	h->goaway_last = 0x7fffffffu;
	h->streams = calloc(h->max_streams, sizeof(*h->streams));
	if (!h->streams)
		goto fail;
	for (int d = 0; d < 2; d++) {
		struct h2_dir *dd = &h->dir[d];

		dd->phase = d == CLIENT ? PH_PREFACE : PH_HEADER;
		dd->table_ceiling = H2_HPACK_DEFAULT_TABLE;
		if (nghttp2_hd_inflate_new(&dd->inf) != 0)
			goto fail;
	}
	return h;
fail:
	tt_h2_free(h);
	return NULL;
}

int tt_h2_feed(tt_h2 *h, int from_client, const uint8_t *buf, size_t len,
	       int64_t now_us)
{
	if (h->err)
		return h->err;
	if (h->closed)
		return TT_EINVAL;
	if (len == 0)
		return 0;
	return feed_dir(h, from_client ? CLIENT : SERVER, buf, len, now_us);
}

void tt_h2_close(tt_h2 *h, int64_t now_us)
{
	if (h->closed)
		return;
	h->closed = 1;
	finish_all(h, "connection_closed", now_us);
}

void tt_h2_free(tt_h2 *h)
{
	if (!h)
		return;
	/* Streams still open are dropped without a record: close delivers. */
	while (h->nstreams > 0) {
		struct h2_stream *s = h->streams[--h->nstreams];
		tt_exchange_free(s->ex);
		tt_buf_free(&s->path);
		tt_buf_free(&s->authority);
		free(s);
	}
	free(h->streams);
	for (int d = 0; d < 2; d++)
		if (h->dir[d].inf)
			nghttp2_hd_inflate_del(h->dir[d].inf);
	free(h);
}

unsigned tt_h2_llm_exchanges(const tt_h2 *h)
{
	return h->llm;
}
