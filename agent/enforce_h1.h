/*
 * enforce_h1.h - enforce mode on an HTTP/1.1 connection: hold a request
 * back in SSL_write until it is whole (tt_peek_request, decoder.h), then
 * reserve its worst case and send it, or block it: nothing leaves, the
 * socket is swapped (enforce_io.h) and reads get a synthetic 403.
 *
 * The first bytes of a connection decide: an HTTP/1.x request head, the
 * HTTP/2 client preface (RFC 9113 section 3.4; the connection is handed
 * to enforce_h2.h), or anything else (not checked).
 */
#ifndef TT_AGENT_ENFORCE_H1_H
#define TT_AGENT_ENFORCE_H1_H

#include <stddef.h>

#include "lease.h"
#include "tokentap/record.h"

#define TT_ENFORCE_H1_PENDING 8

enum tt_enforce_h1_state {
	TT_ENFORCE_H1_HEAD,       /* at the start of a request */
	TT_ENFORCE_H1_BODY_PASS,  /* in the body of a request that is not an LLM call */
	TT_ENFORCE_H1_OFF,        /* not checked any further */
	TT_ENFORCE_H1_DENIED,     /* a call was blocked: the connection is ours */
	TT_ENFORCE_H1_H2,         /* the client preface: HTTP/2, not ours */
};

/* Embedded in tt_enforce: tt_enforce_h1_init, tt_enforce_h1_release. */
struct tt_enforce_h1 {
	enum tt_enforce_h1_state st;
	char *hold;                  /* bytes written and reported sent, not sent yet */
	size_t hold_len, hold_cap;
	size_t pass_left;            /* BODY_PASS: body bytes still to come */
	char *synth;                 /* DENIED: the synthetic response */
	size_t synth_len, synth_off;
	int spare_fd;                /* the socketpair end that keeps ours readable */
	tt_reservation res[TT_ENFORCE_H1_PENDING]; /* FIFO: calls sent, records not yet in */
	int nres;
};

void tt_enforce_h1_init(struct tt_enforce_h1 *h);

/* Frees what h holds; calls that never produced a record keep their
 * worst case. */
void tt_enforce_h1_release(struct tt_enforce_h1 *h);

/* tt_enforce_write's answer for this connection.  Also
 * TT_ENFORCE_H1_TO_H2: the write begins (or ends) the HTTP/2 preface and
 * h is now in state TT_ENFORCE_H1_H2; hand the write to enforce_h2.h. */
enum { TT_ENFORCE_H1_TO_H2 = 3 };
int tt_enforce_h1_write(struct tt_enforce_h1 *h, void *ssl, const char *p, size_t len, long *ret);

/* tt_enforce_read. */
int tt_enforce_h1_read(struct tt_enforce_h1 *h, void *buf, size_t cap, size_t *got, int peek);

/* A record completed: settle the oldest reservation. */
void tt_enforce_h1_settle(struct tt_enforce_h1 *h, const tt_record *rec);

#endif
