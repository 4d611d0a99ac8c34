/*
 * enforce_h2.h - enforce mode on an HTTP/2 connection (one that began
 * with the client preface): each write is given to the connection's
 * decoder before it leaves; every request the decoder completes in it is
 * reserved or refused (tt_enforce_h2_request); a refused write fails
 * with the tokentap OpenSSL error, and so does every later one.
 *
 * Streams end in any order, so each request decided is kept in a pending
 * table until its record comes, known by what its on_request record and
 * its final record share (the exchange's start time, body size and
 * prompt hash).
 */
#ifndef TT_AGENT_ENFORCE_H2_H
#define TT_AGENT_ENFORCE_H2_H

#include <stddef.h>
#include <stdint.h>

#include "lease.h"
#include "tokentap/record.h"

#define TT_ENFORCE_H2_PENDING 32

enum tt_enforce_h2_kind {
	TT_ENFORCE_H2_LIVE,  /* sent: settle with the record */
	TT_ENFORCE_H2_DROP,  /* blocked, its record shipped: the decoder's copy is dropped */
	TT_ENFORCE_H2_MARK,  /* allowed, but its write was refused: ship it marked blocked */
};

struct tt_enforce_h2_pend {
	int64_t ts_us, request_bytes;
	char prompt_hash[33];
	enum tt_enforce_h2_kind kind;
	unsigned write_no;            /* the write that carried its end */
	tt_reservation r;             /* LIVE only */
};

/* Embedded in tt_enforce; all zero is the initial state. */
struct tt_enforce_h2 {
	size_t ahead;                 /* bytes of the pending write the decoder has seen */
	int feeding;                  /* inside the feed of a write not sent yet */
	int refused;                  /* every later write fails */
	unsigned write_no;
	char rule[64], task[128], reason[384];  /* of the refusal */
	struct tt_enforce_h2_pend pend[TT_ENFORCE_H2_PENDING];
	int npend;
};

/* tt_enforce_write on HTTP/2: TT_ENFORCE_PREFED, or TT_ENFORCE_DONE with
 * *ret -1 (refused). */
int tt_enforce_h2_write(struct tt_enforce_h2 *h, void *ssl, const char *p, size_t len, long *ret);

/* The real write of a PREFED answer sent n bytes (see tt_enforce_sent). */
void tt_enforce_h2_sent(struct tt_enforce_h2 *h, size_t n);

/* The decoder completed a client request (see tt_enforce_request). */
void tt_enforce_h2_request(struct tt_enforce_h2 *h, const tt_record *rec);

/* A record of this connection (see tt_enforce_settle): 1 to drop it. */
int tt_enforce_h2_settle(struct tt_enforce_h2 *h, tt_record *rec);

/* Calls that never produced a record keep their worst case. */
void tt_enforce_h2_release(struct tt_enforce_h2 *h);

#endif
