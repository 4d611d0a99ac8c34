/* enforce_h1.c - hold, check and send or block HTTP/1.1 requests; see enforce_h1.h. */
#include "enforce_h1.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "enforce_int.h"
#include "enforce_io.h"
#include "tokentap/decoder.h"

#define BODY_MAX (8u << 20)

/* RFC 9113 section 3.4: "the client connection preface starts with a
 * sequence of 24 octets". */
static const char PREFACE[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
#define PREFACE_LEN 24

static int warn_chunked, warn_big, warn_nofd, warn_pipe;

void tt_enforce_h1_init(struct tt_enforce_h1 *h)
{
	memset(h, 0, sizeof(*h));
	h->st = TT_ENFORCE_H1_HEAD;
	h->spare_fd = -1;
}

void tt_enforce_h1_release(struct tt_enforce_h1 *h)
{
	for (int i = 0; i < h->nres; i++)
		tt_lease_settle(&h->res[i], -1, -1);
	h->nres = 0;
	if (h->spare_fd >= 0)
		close(h->spare_fd);
	h->spare_fd = -1;
	free(h->hold);
	free(h->synth);
	h->hold = h->synth = NULL;
}

/* ---- holding ---------------------------------------------------------------- */

static int hold_add(struct tt_enforce_h1 *h, const void *buf, size_t len)
{
	if (h->hold_len + len > h->hold_cap) {
		size_t cap = h->hold_cap ? h->hold_cap : 16384;
		char *p;

		while (cap < h->hold_len + len)
			cap *= 2;
		p = realloc(h->hold, cap);
		if (!p)
			return -1;
		h->hold = p;
		h->hold_cap = cap;
	}
	memcpy(h->hold + h->hold_len, buf, len);
	h->hold_len += len;
	return 0;
}

/* Send what is held (if anything); returns the flush's result, 1 when
 * nothing was held. */
static long send_held(struct tt_enforce_h1 *h, void *ssl)
{
	long r = 1;

	if (h->hold_len)
		r = tt_enforce_flush(ssl, h->hold, h->hold_len);
	h->hold_len = 0;
	return r;
}

/* We handled the caller's write of len bytes: it is done, all of it,
 * unless a flush failed (r <= 0, what SSL_write returns). */
static int done(long r, size_t len, long *ret)
{
	*ret = r <= 0 ? r : (long)len;
	return TT_ENFORCE_DONE;
}

/* Stop checking this connection: what is held goes out, this write (when
 * not held: held says whether it is among the held bytes) and the rest
 * pass. */
static int give_up(struct tt_enforce_h1 *h, void *ssl, int held, size_t len, long *ret)
{
	long r;

	h->st = TT_ENFORCE_H1_OFF;
	if (!held)
		return TT_ENFORCE_PASS;
	r = send_held(h, ssl);
	return done(r, len, ret);
}

/* More of the request is to come: keep the caller's write of len bytes
 * at p (unless it is held already) and report it sent. */
static int hold_more(struct tt_enforce_h1 *h, int held, const char *p, size_t len, long *ret)
{
	if (!held && hold_add(h, p, len)) {
		h->st = TT_ENFORCE_H1_OFF;
		return TT_ENFORCE_PASS;
	}
	return done(1, len, ret);
}

/* ---- the HTTP/2 preface ------------------------------------------------------ */

/* 1: p (n bytes) and what is held begin the client preface, or are it. */
static int preface_prefix(const struct tt_enforce_h1 *h, const char *p, size_t n)
{
	size_t held = h->hold_len;

	if (held >= PREFACE_LEN || (held && memcmp(h->hold, PREFACE, held) != 0))
		return 0;
	if (n > PREFACE_LEN - held)
		n = PREFACE_LEN - held;
	return memcmp(p, PREFACE + held, n) == 0;
}

static int preface(struct tt_enforce_h1 *h, void *ssl, const char *p, size_t len, long *ret)
{
	long r;

	if (h->hold_len + len < PREFACE_LEN) {
		/* The preface in pieces: hold it until it is whole. */
		if (hold_add(h, p, len) == 0)
			return done(1, len, ret);
		r = send_held(h, ssl);
		h->st = TT_ENFORCE_H1_OFF;
		return r > 0 ? TT_ENFORCE_PASS : done(r, len, ret);
	}
	h->st = TT_ENFORCE_H1_H2;
	/* What is held is only a part of the preface: no request in it. */
	r = send_held(h, ssl);
	return r > 0 ? TT_ENFORCE_H1_TO_H2 : done(r, len, ret);
}

/* ---- the decision ------------------------------------------------------------ */

/* The record of a blocked call: the request's fields from a full parse
 * (its hashes; microseconds, only for a call that is blocked). */
static void blocked_record(const tt_peek *pk, const tt_lease_key *k)
{
	tt_record rec;
	struct timespec ts;

	if (!tt_enforce_hooks.ship)
		return;
	tt_peek_record(pk, &rec);
	clock_gettime(CLOCK_REALTIME, &ts);
	rec.ts_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
	rec.status = 403;
	tt_enforce_ship_blocked(&rec, k);
}

/* Make the connection ours, answering with resp: 0, or -1 when it cannot
 * be done (no socket). */
static int divert(struct tt_enforce_h1 *h, void *ssl, const char *resp, size_t len)
{
	char *synth = malloc(len);
	int spare = synth ? tt_enforce_divert(ssl) : -1;

	if (spare < 0) {
		free(synth);
		return -1;
	}
	memcpy(synth, resp, len);
	h->synth = synth;
	h->synth_len = len;
	h->synth_off = 0;
	h->spare_fd = spare;
	h->st = TT_ENFORCE_H1_DENIED;
	return 0;
}

/* A refused call: 1 when diverted, -1 when its write must fail. */
static int refuse(struct tt_enforce_h1 *h, void *ssl, const tt_peek *pk, const tt_lease_key *k,
		  int verdict, const char *reason, const char *rule)
{
	char resp[4096];
	int n;

	tt_enforce_warn_blocking(verdict, reason, "");
	tt_log(TT_LOG_INFO, "enforce: blocked %s %.*s (task %s): %s", pk->method,
	       (int)(pk->target_len > 200 ? 200 : pk->target_len), pk->target,
	       k->task[0] ? k->task : "-", reason);
	blocked_record(pk, k);
	n = tt_enforce_response(pk->provider, rule, k->task, reason, resp, sizeof(resp));
	if (n > 0 && divert(h, ssl, resp, (size_t)n) == 0)
		return 1;
	tt_log_once(&warn_nofd, TT_LOG_WARN, "enforce: a blocked call's error cannot be "
		    "delivered on this connection (no socket); its write fails instead");
	h->st = TT_ENFORCE_H1_OFF;
	return -1;
}

/* Requests sent, in order; their records settle them oldest first. */
static void queue(struct tt_enforce_h1 *h, const tt_reservation *r)
{
	if (h->nres == TT_ENFORCE_H1_PENDING) {
		/* Records lag far behind: keep the oldest as spent. */
		tt_lease_settle(&h->res[0], -1, -1);
		memmove(&h->res[0], &h->res[1], sizeof(h->res[0]) * (TT_ENFORCE_H1_PENDING - 1));
		h->nres--;
	}
	h->res[h->nres++] = *r;
}

/* A whole LLM request: 0 allowed (reservation queued), 1 denied and
 * diverted, -1 denied but not deliverable. */
static int decide(struct tt_enforce_h1 *h, void *ssl, const tt_peek *pk)
{
	tt_lease_key k;
	tt_reservation r;
	char reason[384], rule[64];
	int v;

	tt_enforce_key(&k, pk->task, pk->tenant, pk->feature, pk->model, pk->provider);
	v = tt_lease_reserve(&k, tt_enforce_input_estimate(pk->body_len),
			     pk->max_tokens > 0 ? pk->max_tokens : -1, &r, reason, sizeof(reason),
			     rule, sizeof(rule));
	if (v != TT_LEASE_ALLOW)
		return refuse(h, ssl, pk, &k, v, reason, rule);
	queue(h, &r);
	return 0;
}

/* ---- the write ------------------------------------------------------------- */

/* A request that is not an LLM call: it and its body pass. */
static int not_llm(struct tt_enforce_h1 *h, void *ssl, const tt_peek *pk, int held, size_t len,
		   size_t orig, long *ret)
{
	uint64_t cl = pk->content_length > 0 ? (uint64_t)pk->content_length : 0;
	size_t body_here = len - pk->head_len;

	if (pk->chunked || cl < body_here)
		return give_up(h, ssl, held, orig, ret);  /* pipelined, or no length */
	h->pass_left = (size_t)(cl - body_here);
	h->st = h->pass_left ? TT_ENFORCE_H1_BODY_PASS : TT_ENFORCE_H1_HEAD;
	if (!held)
		return TT_ENFORCE_PASS;
	return done(send_held(h, ssl), orig, ret);
}

/* A whole LLM call (len bytes, the held ones or the caller's): decide. */
static int whole(struct tt_enforce_h1 *h, void *ssl, const tt_peek *pk, int held, size_t len,
		 size_t orig, long *ret)
{
	int d;

	if (len > pk->total)
		tt_log_once(&warn_pipe, TT_LOG_INFO, "enforce: pipelined requests; the "
			    "connection is not checked further");
	d = decide(h, ssl, pk);
	if (d == 0) {
		if (h->st == TT_ENFORCE_H1_HEAD && len > pk->total)
			h->st = TT_ENFORCE_H1_OFF;
		if (!held)
			return TT_ENFORCE_PASS;
		return done(send_held(h, ssl), orig, ret);
	}
	h->hold_len = 0;  /* never sent */
	return done(d < 0 ? -1 : 1, orig, ret);
}

/* At the start of a request (or in the middle of a held one). */
static int request(struct tt_enforce_h1 *h, void *ssl, const char *buf, size_t orig, long *ret)
{
	const char *p = buf;
	size_t len = orig;
	int held = h->hold_len > 0, rc;
	tt_peek pk;

	/* Read in place when nothing is held (the usual single write). */
	if (held) {
		if (hold_add(h, p, len)) {
			long r = send_held(h, ssl);

			h->st = TT_ENFORCE_H1_OFF;  /* what was held went out; this write follows */
			return r > 0 ? TT_ENFORCE_PASS : done(r, orig, ret);
		}
		p = h->hold;
		len = h->hold_len;
	}
	rc = tt_peek_request(&pk, p, len);
	if (rc < 0)
		return give_up(h, ssl, held, orig, ret);  /* not HTTP/1.x: not ours */
	if (rc == TT_PEEK_MORE)
		return hold_more(h, held, buf, orig, ret);
	if (!pk.llm)
		return not_llm(h, ssl, &pk, held, len, orig, ret);
	if (pk.chunked || pk.content_length < 0 || pk.content_length > BODY_MAX) {
		tt_log_once(pk.content_length > BODY_MAX ? &warn_big : &warn_chunked, TT_LOG_WARN,
			    "enforce: a request with %s is not checked against budgets",
			    pk.content_length > BODY_MAX ? "a body over 8 MiB"
							 : "no Content-Length (chunked)");
		return give_up(h, ssl, held, orig, ret);
	}
	if (rc == TT_PEEK_HEAD)
		return hold_more(h, held, buf, orig, ret);  /* the body is still coming */
	return whole(h, ssl, &pk, held, len, orig, ret);
}

static int body_pass(struct tt_enforce_h1 *h, size_t len)
{
	if (len <= h->pass_left) {
		h->pass_left -= len;
		if (!h->pass_left)
			h->st = TT_ENFORCE_H1_HEAD;
		return TT_ENFORCE_PASS;
	}
	tt_log_once(&warn_pipe, TT_LOG_INFO, "enforce: pipelined requests; the "
		    "connection is not checked further");
	h->st = TT_ENFORCE_H1_OFF;
	return TT_ENFORCE_PASS;
}

int tt_enforce_h1_write(struct tt_enforce_h1 *h, void *ssl, const char *p, size_t len, long *ret)
{
	switch (h->st) {
	case TT_ENFORCE_H1_OFF:
	case TT_ENFORCE_H1_H2:
		return TT_ENFORCE_PASS;
	case TT_ENFORCE_H1_DENIED:
		*ret = (long)len;  /* the connection is ours now: swallow */
		return TT_ENFORCE_DONE;
	case TT_ENFORCE_H1_BODY_PASS:
		return body_pass(h, len);
	case TT_ENFORCE_H1_HEAD:
		break;
	}
	if (preface_prefix(h, p, len))
		return preface(h, ssl, p, len, ret);
	return request(h, ssl, p, len, ret);
}

int tt_enforce_h1_read(struct tt_enforce_h1 *h, void *buf, size_t cap, size_t *got, int peek)
{
	size_t n;

	if (h->st != TT_ENFORCE_H1_DENIED)
		return 0;
	n = h->synth_len - h->synth_off;
	if (n > cap)
		n = cap;
	memcpy(buf, h->synth + h->synth_off, n);
	if (!peek)
		h->synth_off += n;
	*got = n;
	return 1;
}

void tt_enforce_h1_settle(struct tt_enforce_h1 *h, const tt_record *rec)
{
	if (h->nres == 0)
		return;
	tt_lease_settle(&h->res[0], rec->input_tokens, rec->output_tokens);
	memmove(&h->res[0], &h->res[1], sizeof(h->res[0]) * (size_t)(h->nres - 1));
	h->nres--;
}
