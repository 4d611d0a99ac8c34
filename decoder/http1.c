/* http1.c - HTTP/1.1 framing and request/response pairing; see http1.h. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "chunked.h"
#include "exchange.h"
#include "http1.h"

typedef enum body_kind {
	BODY_NONE,
	BODY_LENGTH,
	BODY_CHUNKED,
	BODY_CLOSE,    /* a response that ends with the connection */
} body_kind;

typedef enum dir_state {
	DIR_HEAD,      /* reading a start line and header fields */
	DIR_BODY,
	DIR_GONE,      /* no HTTP/1.1 any more in this direction */
} dir_state;

/* One direction: the client's requests or the server's responses. */
typedef struct h1_dir {
	dir_state state;
	tt_buf head;
	body_kind body;
	uint64_t remaining;
	tt_chunked chunked;
	tt_exchange *ex;    /* the exchange whose message is being read */
} h1_dir;

/* A request waiting for its response, in the order they were sent. */
typedef struct pending {
	tt_exchange *ex;
	int head_only;      /* HEAD: the response has no body */
	int connect;        /* CONNECT: 2xx opens a tunnel */
	int req_done;       /* the request direction no longer needs it */
	int resp_done;
} pending;

struct tt_http1 {
	const tt_decoder_config *cfg;
	int server_side;
	h1_dir req, resp;
	pending *queue;      /* ring of cfg->max_pending entries */
	unsigned qhead, qlen;
	pending *req_cur;    /* entry whose request is being read */
	pending *resp_cur;   /* entry whose response is being read */
	int error;
	unsigned llm;
};

tt_http1 *tt_http1_new(const tt_decoder_config *cfg, int server_side)
{
	tt_http1 *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->queue = calloc(cfg->max_pending, sizeof(*h->queue));
	if (!h->queue) {
		free(h);
		return NULL;
	}
	h->cfg = cfg;
	h->server_side = server_side;
	tt_buf_init(&h->req.head, cfg->max_header_bytes);
	tt_buf_init(&h->resp.head, cfg->max_header_bytes);
	return h;
}

static pending *queue_push(tt_http1 *h, tt_exchange *ex)
{
	if (h->qlen == h->cfg->max_pending)
		return NULL;
	pending *p = &h->queue[(h->qhead + h->qlen) % h->cfg->max_pending];
	memset(p, 0, sizeof(*p));
	p->ex = ex;
	h->qlen++;
	return p;
}

/* The entry is finished on both sides: free it, and pop it if it leads. */
static void entry_release(tt_http1 *h, pending *p)
{
	if (!p->req_done || !p->resp_done)
		return;
	tt_exchange_free(p->ex);
	p->ex = NULL;
	while (h->qlen && !h->queue[h->qhead].ex) {
		h->qhead = (h->qhead + 1) % h->cfg->max_pending;
		h->qlen--;
	}
}

static const char *find_crlfcrlf(const char *p, size_t n, size_t *head_len)
{
	/* The head ends at an empty line: CRLF CRLF, or a bare LF LF. */
	for (size_t i = 0; i + 1 < n; i++) {
		if (p[i] != '\n')
			continue;
		if (p[i + 1] == '\n') {
			*head_len = i + 2;
			return p + i;
		}
		if (p[i + 1] == '\r' && i + 2 < n && p[i + 2] == '\n') {
			*head_len = i + 3;
			return p + i;
		}
	}
	return NULL;
}

static const char *trim(const char *s, const char *end, size_t *len)
{
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		end--;
	*len = (size_t)(end - s);
	return s;
}

/* Does a comma-separated header value list contain token (any case)? */
static int list_has(const char *v, size_t n, const char *token)
{
	size_t t = strlen(token);
	const char *end = v + n;
	while (v < end) {
		const char *comma = memchr(v, ',', (size_t)(end - v));
		const char *item_end = comma ? comma : end;
		size_t len;
		const char *item = trim(v, item_end, &len);
		if (len == t && !strncasecmp(item, token, t))
			return 1;
		v = comma ? comma + 1 : end;
	}
	return 0;
}

typedef struct head_info {
	int chunked;
	int has_length;
	uint64_t length;
	int bad;
} head_info;

/*
 * Walk the header fields of a head (after the start line); hand each to
 * the exchange and note the framing ones.
 */
static void parse_fields(const char *p, const char *end, tt_exchange *ex,
			 int request, head_info *hi)
{
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			eol = end;
		const char *colon = memchr(p, ':', (size_t)(eol - p));
		if (colon && colon > p) {
			size_t vlen;
			const char *v = trim(colon + 1, eol, &vlen);
			size_t nlen = (size_t)(colon - p);
			if (nlen == 17 && !strncasecmp(p, "transfer-encoding", 17)) {
				if (list_has(v, vlen, "chunked"))
					hi->chunked = 1;
			} else if (nlen == 14 && !strncasecmp(p, "content-length", 14)) {
				char *num_end;
				char num[24];
				if (vlen == 0 || vlen >= sizeof(num)) {
					hi->bad = 1;
				} else {
					memcpy(num, v, vlen);
					num[vlen] = '\0';
					unsigned long long len = strtoull(num, &num_end, 10);
					if (*num_end || num[0] == '-' ||
					    (hi->has_length && hi->length != len))
						hi->bad = 1;
					hi->has_length = 1;
					hi->length = len;
				}
			}
			if (ex) {
				if (request)
					tt_exchange_request_header(ex, p, nlen, v, vlen);
				else
					tt_exchange_response_header(ex, p, nlen, v, vlen);
			}
		}
		p = eol + 1;
	}
}

static int is_token_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '-' ||
	       c == '_';
}

/* A complete request head: start a new exchange. */
static int request_head(tt_http1 *h, const char *p, size_t n, int64_t now_us)
{
	const char *end = p + n;
	const char *eol = memchr(p, '\n', n);
	head_info hi = { 0 };

	if (!eol)
		return TT_EPROTO;
	const char *sp1 = memchr(p, ' ', (size_t)(eol - p));
	if (!sp1 || sp1 == p || sp1 - p > 15)
		return TT_EPROTO;
	for (const char *c = p; c < sp1; c++)
		if (!is_token_char(*c))
			return TT_EPROTO;
	const char *target = sp1 + 1;
	const char *sp2 = memchr(target, ' ', (size_t)(eol - target));
	if (!sp2 || (size_t)(eol - sp2) < 9 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0)
		return TT_EPROTO;

	tt_exchange *ex = tt_exchange_new(h->cfg, "1.1", h->server_side, now_us);
	if (!ex)
		return TT_ENOMEM;
	pending *ent = queue_push(h, ex);
	if (!ent) {
		/* More pipelined requests than we track: stop decoding. */
		tt_exchange_free(ex);
		return TT_ETRUNCATED;
	}
	tt_exchange_request_line(ex, p, (size_t)(sp1 - p), target,
				 (size_t)(sp2 - target));
	parse_fields(eol + 1, end, ex, 1, &hi);
	if (hi.bad)
		return TT_EPROTO;
	if (tt_exchange_request_headers_done(ex))
		h->llm++;
	ent->head_only = (sp1 - p == 4 && !memcmp(p, "HEAD", 4));
	ent->connect = (sp1 - p == 7 && !memcmp(p, "CONNECT", 7));
	h->req_cur = ent;
	h->req.ex = ex;
	if (hi.chunked) {
		h->req.body = BODY_CHUNKED;
		tt_chunked_init(&h->req.chunked);
	} else if (hi.has_length && hi.length > 0) {
		h->req.body = BODY_LENGTH;
		h->req.remaining = hi.length;
	} else {
		h->req.body = BODY_NONE;
	}
	return 0;
}

/* The response to the entry at the head of the queue, if any. */
static pending *queue_front_waiting(tt_http1 *h)
{
	for (unsigned i = 0; i < h->qlen; i++) {
		pending *p = &h->queue[(h->qhead + i) % h->cfg->max_pending];
		if (p->ex && !p->resp_done)
			return p;
	}
	return NULL;
}

static int response_head(tt_http1 *h, const char *p, size_t n, int64_t now_us)
{
	const char *end = p + n;
	const char *eol = memchr(p, '\n', n);
	head_info hi = { 0 };

	if (!eol || eol - p < 12 || memcmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ')
		return TT_EPROTO;
	int status = 0;
	for (int i = 9; i < 12; i++) {
		if (p[i] < '0' || p[i] > '9')
			return TT_EPROTO;
		status = status * 10 + (p[i] - '0');
	}
	pending *ent = queue_front_waiting(h);
	tt_exchange *ex = ent ? ent->ex : NULL;

	if (status >= 100 && status < 200) {
		/* Interim: the real response follows; 101 switches protocols. */
		parse_fields(eol + 1, end, NULL, 0, &hi);
		if (status == 101) {
			h->resp.state = DIR_GONE;
			h->req.state = DIR_GONE;
		} else {
			h->resp.body = BODY_NONE;
		}
		return 0;
	}
	if (ex)
		tt_exchange_response_status(ex, status, now_us);
	parse_fields(eol + 1, end, ex, 0, &hi);
	if (hi.bad)
		return TT_EPROTO;
	if (ex)
		tt_exchange_response_headers_done(ex);
	h->resp_cur = ent;
	h->resp.ex = ex;
	if ((ent && ent->head_only) || status == 204 || status == 304) {
		h->resp.body = BODY_NONE;
	} else if (ent && ent->connect && status < 300) {
		h->resp.body = BODY_NONE;
		h->resp.state = DIR_GONE; /* a tunnel: not ours to read */
	} else if (hi.chunked) {
		h->resp.body = BODY_CHUNKED;
		tt_chunked_init(&h->resp.chunked);
	} else if (hi.has_length) {
		h->resp.body = hi.length ? BODY_LENGTH : BODY_NONE;
		h->resp.remaining = hi.length;
	} else {
		h->resp.body = BODY_CLOSE;
	}
	return 0;
}

static void finish_all(tt_http1 *h, const char *error, int64_t now_us);

static void request_done(tt_http1 *h, int64_t now_us)
{
	pending *ent = h->req_cur;

	if (ent) {
		tt_exchange_request_end(ent->ex, now_us);
		ent->req_done = 1;
		entry_release(h, ent);
	}
	h->req_cur = NULL;
	h->req.ex = NULL;
}

static void response_done(tt_http1 *h, const char *error, int64_t now_us)
{
	pending *ent = h->resp_cur;

	if (ent) {
		tt_exchange_finish(ent->ex, error, now_us);
		ent->resp_done = 1;
		/* Answered before the request ended (an early 4xx): the request
		 * direction still reads into it, and releases it at its end. */
		entry_release(h, ent);
	}
	h->resp_cur = NULL;
	h->resp.ex = NULL;
}

static void on_req_data(void *user, const char *p, size_t n)
{
	tt_exchange *ex = user;
	if (ex)
		tt_exchange_request_body(ex, p, n);
}

static void on_resp_data(void *user, const char *p, size_t n)
{
	tt_exchange *ex = user;
	if (ex)
		tt_exchange_response_body(ex, p, n);
}

/* Consume body bytes; returns bytes used or a negative error. */
static long body_feed(h1_dir *d, const char *p, size_t n, int request)
{
	tt_chunk_data_fn fn = request ? on_req_data : on_resp_data;

	switch (d->body) {
	case BODY_LENGTH: {
		size_t take = n < d->remaining ? n : (size_t)d->remaining;
		fn(d->ex, p, take);
		d->remaining -= take;
		return (long)take;
	}
	case BODY_CHUNKED: {
		long used = tt_chunked_feed(&d->chunked, p, n, fn, d->ex);
		return used < 0 ? TT_EPROTO : used;
	}
	case BODY_CLOSE:
		fn(d->ex, p, n);
		return (long)n;
	case BODY_NONE:
		return 0;
	}
	return 0;
}

static int body_complete(const h1_dir *d)
{
	switch (d->body) {
	case BODY_LENGTH:
		return d->remaining == 0;
	case BODY_CHUNKED:
		return tt_chunked_done(&d->chunked);
	case BODY_CLOSE:
		return 0;
	case BODY_NONE:
		return 1;
	}
	return 1;
}

static int dir_feed(tt_http1 *h, h1_dir *d, int request, const char *p,
		    size_t n, int64_t now_us)
{
	while (n > 0 && d->state != DIR_GONE) {
		if (d->state == DIR_HEAD) {
			size_t head_len = 0;
			const char *start = p;
			size_t avail = n;
			size_t used;

			/* Skip the empty lines RFC 9112 §2.2 lets precede a message. */
			if (d->head.len == 0) {
				while (n && (*p == '\r' || *p == '\n')) {
					p++;
					n--;
				}
				if (!n)
					break;
				start = p;
				avail = n;
			}
			if (d->head.len == 0 && find_crlfcrlf(start, avail, &head_len)) {
				/* The same cap as a head gathered across reads. */
				if (head_len > d->head.max)
					return TT_EPROTO;
				used = head_len;
			} else {
				/* The head straddles reads: gather it. Search only
				 * the seam and the new bytes. */
				size_t before = d->head.len;
				tt_buf_add_trunc(&d->head, start, avail);
				size_t from = before > 3 ? before - 3 : 0;
				if (!find_crlfcrlf(d->head.data + from, d->head.len - from,
						   &head_len)) {
					if (d->head.truncated || d->head.oom)
						return TT_EPROTO; /* larger than the cap */
					return 0;
				}
				head_len += from;
				used = head_len - before;
				start = d->head.data;
			}
			int rc = request ? request_head(h, start, head_len, now_us)
					 : response_head(h, start, head_len, now_us);
			tt_buf_reset(&d->head);
			if (rc < 0)
				return rc;
			p += used;
			n -= used;
			if (d->state == DIR_GONE)
				break;
			d->state = DIR_BODY;
		}
		if (d->state == DIR_BODY) {
			long used = body_feed(d, p, n, request);
			if (used < 0)
				return (int)used;
			p += used;
			n -= (size_t)used;
			if (body_complete(d)) {
				if (request)
					request_done(h, now_us);
				else
					response_done(h, NULL, now_us);
				d->state = d->state == DIR_GONE ? DIR_GONE : DIR_HEAD;
			}
		}
	}
	/* A message with no body ends with its head. */
	if (d->state == DIR_BODY && body_complete(d)) {
		if (request)
			request_done(h, now_us);
		else
			response_done(h, NULL, now_us);
		d->state = DIR_HEAD;
	}
	return 0;
}

int tt_http1_feed(tt_http1 *h, int from_client, const char *p, size_t n,
		  int64_t now_us)
{
	if (h->error)
		return h->error;
	int rc = from_client ? dir_feed(h, &h->req, 1, p, n, now_us)
			     : dir_feed(h, &h->resp, 0, p, n, now_us);
	if (rc < 0) {
		/* Nothing is lost: open exchanges end with the reason. */
		finish_all(h, "decode_error", now_us);
		h->error = rc;
	}
	return rc;
}

void tt_http1_close(tt_http1 *h, int64_t now_us)
{
	if (h->error)
		return;
	finish_all(h, "connection_closed", now_us);
}

/*
 * End every open exchange: a close-delimited body ends cleanly, anything
 * else in flight with error.
 */
static void finish_all(tt_http1 *h, const char *error, int64_t now_us)
{
	/* A close-delimited body ends here, cleanly. */
	if (h->resp_cur && h->resp.state == DIR_BODY && h->resp.body == BODY_CLOSE)
		response_done(h, NULL, now_us);
	if (h->req_cur)
		request_done(h, now_us);
	if (h->resp_cur)
		response_done(h, error, now_us);
	/* Requests that never got an answer. */
	while (h->qlen) {
		pending *ent = &h->queue[h->qhead];
		if (ent->ex && !ent->resp_done) {
			tt_exchange_finish(ent->ex, error, now_us);
			ent->resp_done = 1;
		}
		ent->req_done = 1;
		if (ent->ex) {
			tt_exchange_free(ent->ex);
			ent->ex = NULL;
		}
		h->qhead = (h->qhead + 1) % h->cfg->max_pending;
		h->qlen--;
	}
	h->req.state = h->resp.state = DIR_GONE;
}

void tt_http1_free(tt_http1 *h)
{
	if (!h)
		return;
	for (unsigned i = 0; i < h->qlen; i++)
		tt_exchange_free(h->queue[(h->qhead + i) % h->cfg->max_pending].ex);
	tt_buf_free(&h->req.head);
	tt_buf_free(&h->resp.head);
	free(h->queue);
	free(h);
}

unsigned tt_http1_llm_exchanges(const tt_http1 *h)
{
	return h->llm;
}

int tt_http1_is_done(const tt_http1 *h)
{
	return h->error != 0 ||
	       (h->req.state == DIR_GONE && h->resp.state == DIR_GONE);
}
