/*
 * conns.h - one decoder per TLS connection seen by the probes.
 *
 * A connection is (tgid, SSL pointer).  Its bytes arrive as events that
 * carry their stream offset per direction; tt_conns feeds them in order to
 * the connection's tt_decoder and watches the offsets.  A gap (an event the
 * kernel side dropped or cut) ends the decoder's exchanges with error
 * "truncated" and starts a fresh decoder on the bytes after the gap, so an
 * HTTP/1.1 keep-alive connection recovers at its next request.
 *
 * The table is capped: when full, the connection idle the longest is
 * closed to make room (counted in stats.evicted).
 *
 * A connection whose decoder gives up (tt_decoder_is_idle: not HTTP, or
 * HTTP that switched protocols) on bytes seen without a gap is skipped:
 * its decoder is freed, the skip callback tells the kernel side to stop
 * sending its bytes, and whatever still comes is dropped.  It stays
 * skipped until it ends; a new connection with the same (tgid, ssl) after
 * that starts afresh.
 */
#ifndef TOKENTAP_CONNS_H
#define TOKENTAP_CONNS_H

#include <stddef.h>
#include <stdint.h>

#include "tokentap/decoder.h"
#include "tokentap/record.h"

typedef struct tt_conns tt_conns;

/* Who a record's connection belongs to, as the last event said. */
typedef struct tt_conn_info {
	uint32_t tgid;
	uint32_t tid;
	uint64_t ssl;
	uint64_t cgroup_id;
	int stack;      /* whose TLS code (tt_tls_stack of tlsfind.h) */
} tt_conn_info;

/*
 * Called once per record, from inside the tt_conns_* call that completed
 * it.  rec is a copy the callback may change (fill pid, comm, ...); it
 * lives until the callback returns.  error is already "truncated" when
 * bytes of the exchange were lost.
 */
typedef void (*tt_conns_record_fn)(tt_record *rec, const tt_conn_info *ci,
				   void *user);

typedef struct tt_conns_stats {
	uint64_t opened;   /* connections seen */
	uint64_t closed;   /* ended by SSL_free, process exit or shutdown */
	uint64_t evicted;  /* closed early because the table was full */
	uint64_t gaps;     /* position gaps seen (lost or cut bytes) */
	uint64_t records;  /* records delivered */
	uint64_t truncated; /* of which marked "truncated" */
	uint64_t skipped;  /* connections given up: no LLM traffic */
	uint64_t skip_late; /* events of skipped connections, dropped */
	size_t live;       /* connections open now */
} tt_conns_stats;

/*
 * max_conns: 0 for the default (16384).  dcfg: decoder caps (its on_record
 * and user are overwritten); NULL for defaults.  NULL on ENOMEM.
 */
tt_conns *tt_conns_new(tt_conns_record_fn fn, void *user, size_t max_conns,
		       const tt_decoder_config *dcfg);

/* End every connection: their pending exchanges come out as records. */
void tt_conns_end_all(tt_conns *c, int64_t now_us);

/* Ends every connection first (tt_conns_end_all).  Accepts NULL. */
void tt_conns_free(tt_conns *c, int64_t now_us);

/*
 * Bytes of one direction (TT_DIR_SENT/TT_DIR_RECV) of a connection,
 * starting at stream offset pos.  Returns 0 or a negative tt_error
 * (TT_ENOMEM: the bytes were not decoded and the connection is marked).
 */
int tt_conns_data(tt_conns *c, const tt_conn_info *ci, tt_dir dir,
		  uint64_t pos, const void *data, size_t len, int64_t now_us);

/*
 * SSL_free: the connection ended after sent_end/recv_end bytes (0: not
 * known).  Bytes announced but never seen mark its records truncated.
 */
void tt_conns_end(tt_conns *c, uint32_t tgid, uint64_t ssl,
		  uint64_t sent_end, uint64_t recv_end, int64_t now_us);

/* The process exited: end all its connections. */
void tt_conns_end_tgid(tt_conns *c, uint32_t tgid, int64_t now_us);

/*
 * Told when a connection gets skipped (on = 1, from inside tt_conns_data,
 * also again for every event that still comes for it: the kernel side may
 * have lost the first word) and when a skipped connection leaves the table
 * because its process ended (on = 0, from tt_conns_end_tgid).  Not called
 * for SSL_free (tt_conns_end): the caller has the event itself.
 */
typedef void (*tt_conns_skip_fn)(uint32_t tgid, uint64_t ssl, int on,
				 void *user);

/* Set (or, with fn NULL, remove) the skip callback. */
void tt_conns_set_skip(tt_conns *c, tt_conns_skip_fn fn, void *user);

void tt_conns_get_stats(const tt_conns *c, tt_conns_stats *st);

#endif
