/*
 * decoder.c - one connection: tell what it carries from its first bytes,
 * then hand every byte to the HTTP/1.1 or the HTTP/2 layer.
 */
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "h2.h"
#include "http1.h"
#include "tokentap/decoder.h"

/* RFC 9113 §3.4: every HTTP/2 client connection begins with this. */
static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
#define H2_PREFACE_LEN (sizeof(h2_preface) - 1)

/*
 * Bytes of one direction held while the other has not yet shown what the
 * connection is: an HTTP/2 server may write its SETTINGS before it reads
 * the client's preface.
 */
#define HOLD_MAX (16 * 1024)

struct tt_decoder {
	tt_decoder_config cfg;
	tt_conn_kind kind;
	int error;
	int closed;
	int client_dir;            /* which tt_dir the client writes: -1 unknown */
	tt_buf held[2];            /* each direction's bytes, until the kind is known */
	int64_t held_at[2];        /* when the first of them passed */
	tt_http1 *h1;
	tt_h2 *h2;
};

void tt_decoder_config_init(tt_decoder_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
}

static void apply_defaults(tt_decoder_config *c)
{
	if (!c->max_header_bytes)
		c->max_header_bytes = 64 * 1024;
	if (!c->max_request_body)
		c->max_request_body = 8 * 1024 * 1024;
	if (!c->max_response_body)
		c->max_response_body = 8 * 1024 * 1024;
	if (!c->max_event_bytes)
		c->max_event_bytes = 1024 * 1024;
	if (!c->max_streams)
		c->max_streams = 128;
	if (!c->max_pending)
		c->max_pending = 16;
}

tt_decoder *tt_decoder_new(const tt_decoder_config *cfg)
{
	tt_decoder *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->cfg = *cfg;
	apply_defaults(&d->cfg);
	d->client_dir = -1;
	tt_buf_init(&d->held[TT_DIR_SENT], HOLD_MAX);
	tt_buf_init(&d->held[TT_DIR_RECV], HOLD_MAX);
	return d;
}

static const char *const methods[] = {
	"GET ", "POST ", "PUT ", "PATCH ", "DELETE ", "HEAD ", "OPTIONS ",
	"CONNECT ", "TRACE ", NULL,
};

typedef enum sniff_result {
	SNIFF_MORE,      /* a prefix of something we know: wait */
	SNIFF_REQUEST,
	SNIFF_RESPONSE,
	SNIFF_H2,
	SNIFF_OTHER,
} sniff_result;

/* Compare as much of want as we have; a full match or a prefix. */
static int prefix_state(const char *p, size_t n, const char *want)
{
	size_t w = strlen(want);
	size_t k = n < w ? n : w;
	if (memcmp(p, want, k) != 0)
		return 0;
	return k == w ? 2 : 1;
}

static sniff_result sniff(const char *p, size_t n)
{
	int more = 0, s;

	if ((s = prefix_state(p, n, h2_preface)) == 2)
		return SNIFF_H2;
	more |= s;
	if ((s = prefix_state(p, n, "HTTP/1.")) == 2)
		return SNIFF_RESPONSE;
	more |= s;
	for (int i = 0; methods[i]; i++) {
		/* "PRI " is the preface's own start; the preface check wins. */
		if ((s = prefix_state(p, n, methods[i])) == 2)
			return SNIFF_REQUEST;
		more |= s;
	}
	return more ? SNIFF_MORE : SNIFF_OTHER;
}

static int feed_known(tt_decoder *d, tt_dir dir, const char *p, size_t n,
		      int64_t now_us)
{
	int from_client = (int)dir == d->client_dir;
	int rc = 0;

	if (d->kind == TT_CONN_HTTP1) {
		rc = tt_http1_feed(d->h1, from_client, p, n, now_us);
		if (rc == 0 && tt_http1_is_done(d->h1))
			d->kind = TT_CONN_OTHER;
	} else if (d->kind == TT_CONN_HTTP2) {
		rc = tt_h2_feed(d->h2, from_client, (const uint8_t *)p, n, now_us);
	}
	if (rc < 0)
		d->error = rc;
	return rc;
}

/* Decide what the connection is from its first bytes in direction dir. */
static int start(tt_decoder *d, tt_dir dir, sniff_result what)
{
	int server_side;

	switch (what) {
	case SNIFF_REQUEST:
	case SNIFF_H2:
		d->client_dir = (int)dir;
		break;
	case SNIFF_RESPONSE:
		/* We met the response first: the other side sent the requests. */
		d->client_dir = dir == TT_DIR_SENT ? TT_DIR_RECV : TT_DIR_SENT;
		break;
	default:
		d->kind = TT_CONN_OTHER;
		return 0;
	}
	server_side = d->client_dir == TT_DIR_RECV;
	if (what == SNIFF_H2) {
		d->h2 = tt_h2_new(&d->cfg, server_side);
		d->kind = TT_CONN_HTTP2;
	} else {
		d->h1 = tt_http1_new(&d->cfg, server_side);
		d->kind = TT_CONN_HTTP1;
	}
	if (!d->h1 && !d->h2) {
		d->kind = TT_CONN_OTHER;
		d->error = TT_ENOMEM;
		return TT_ENOMEM;
	}
	return 0;
}

static void give_up(tt_decoder *d)
{
	d->kind = TT_CONN_OTHER;
	tt_buf_free(&d->held[TT_DIR_SENT]);
	tt_buf_free(&d->held[TT_DIR_RECV]);
}

/*
 * Could these first bytes be an HTTP/2 SETTINGS frame (RFC 9113 §6.5):
 * type 4, no flag but ACK, stream 0, a length that is a multiple of 6?
 * Only then are they held for the other side to explain.
 */
static int maybe_h2_settings(const unsigned char *p, size_t n)
{
	if (n > 3 && p[3] != 0x04)
		return 0;
	if (n > 4 && (p[4] & ~0x01) != 0)
		return 0;
	for (size_t i = 5; i < 9 && i < n; i++)
		if (p[i] != 0)
			return 0;
	if (n >= 3 && (((size_t)p[0] << 16 | (size_t)p[1] << 8 | p[2]) % 6) != 0)
		return 0;
	return 1;
}

int tt_decoder_feed(tt_decoder *d, tt_dir dir, const void *buf, size_t len,
		    int64_t now_us)
{
	if (!d)
		return TT_EINVAL;
	if (d->error)
		return d->error;
	if (d->kind == TT_CONN_OTHER || d->closed || len == 0)
		return 0;
	if (d->kind != TT_CONN_UNKNOWN)
		return feed_known(d, dir, buf, len, now_us);

	/* Still sniffing: look at all this direction has said so far. */
	tt_dir other = dir == TT_DIR_SENT ? TT_DIR_RECV : TT_DIR_SENT;
	tt_buf *mine = &d->held[dir];
	const char *p = buf;
	size_t n = len;
	if (mine->len) {
		if (tt_buf_add_trunc(mine, buf, len) < 0) {
			give_up(d);
			return 0;
		}
		p = mine->data;
		n = mine->len;
	}
	sniff_result what = sniff(p, n);
	if (what == SNIFF_OTHER &&
	    (d->held[other].len || !maybe_h2_settings((const unsigned char *)p, n))) {
		give_up(d);
		return 0;
	}
	if (what == SNIFF_MORE || what == SNIFF_OTHER) {
		/* Wait for more: a start line, or the preface after an HTTP/2
		 * server's SETTINGS. */
		if (!mine->len) {
			d->held_at[dir] = now_us;
			if (tt_buf_add_trunc(mine, buf, len) < 0)
				give_up(d);
		}
		return 0;
	}
	int rc = start(d, dir, what);
	if (rc < 0 || d->kind == TT_CONN_OTHER)
		return rc;
	/* What the other side held came first. */
	if (d->held[other].len)
		rc = feed_known(d, other, d->held[other].data, d->held[other].len,
				d->held_at[other]);
	if (rc == 0)
		rc = feed_known(d, dir, p, n, mine->len ? d->held_at[dir] : now_us);
	tt_buf_free(&d->held[TT_DIR_SENT]);
	tt_buf_free(&d->held[TT_DIR_RECV]);
	return rc;
}

int tt_decoder_close(tt_decoder *d, int64_t now_us)
{
	if (!d)
		return TT_EINVAL;
	if (d->closed)
		return 0;
	d->closed = 1;
	if (d->h1)
		tt_http1_close(d->h1, now_us);
	if (d->h2)
		tt_h2_close(d->h2, now_us);
	return 0;
}

void tt_decoder_free(tt_decoder *d)
{
	if (!d)
		return;
	tt_http1_free(d->h1);
	tt_h2_free(d->h2);
	tt_buf_free(&d->held[TT_DIR_SENT]);
	tt_buf_free(&d->held[TT_DIR_RECV]);
	free(d);
}

tt_conn_kind tt_decoder_kind(const tt_decoder *d)
{
	return d->kind;
}

int tt_decoder_is_idle(const tt_decoder *d)
{
	return d->error || d->kind == TT_CONN_OTHER || d->closed;
}

unsigned tt_decoder_llm_exchanges(const tt_decoder *d)
{
	if (d->h1)
		return tt_http1_llm_exchanges(d->h1);
	if (d->h2)
		return tt_h2_llm_exchanges(d->h2);
	return 0;
}
