/*
 * ship.h - deliver records: to a file, to the collector, to the spool.
 *
 * A shipper owns one thread and a bounded in-memory queue.  Submitting
 * serialises and copies the record and returns at once; the thread appends
 * each record to TOKENTAP_OUT (one write(2) per line, O_APPEND), POSTs
 * batches as JSON Lines to the collector's /v1/records, and writes a batch
 * it could not deliver to the spool folder, from which it delivers later.
 * Nothing here assumes it runs inside LD_PRELOAD: the agent and the probe
 * loader both use it.  The collector is reached through client.h.
 *
 *	tt_ship_config cfg = { .collector = getenv("TOKENTAP_COLLECTOR"),
 *			       .out_path = getenv("TOKENTAP_OUT") };
 *	tt_shipper *s = tt_shipper_new(&cfg);
 *	tt_shipper_submit(s, &rec);
 *	tt_shipper_close(s, 1000, NULL, NULL, NULL); // bounded; the rest is spooled
 */
#ifndef TT_SHIP_SHIP_H
#define TT_SHIP_SHIP_H

#include <stddef.h>
#include <stdint.h>

#include "tokentap/record.h"

typedef struct tt_ship_config {
	const char *collector;  /* "unix:/path.sock", "http://host:port", "off"; NULL = default */
	const char *out_path;   /* TOKENTAP_OUT or NULL; see tt_shipper_new */
	const char *spool_dir;  /* NULL = default */
	const char *token_file; /* bearer token for an http:// collector, or NULL */
	size_t queue_max;       /* records held in memory; 0 = default 4096 */
} tt_ship_config;

typedef struct tt_shipper tt_shipper;

/*
 * Start a shipper and its thread (which blocks every signal, and whose
 * traffic to the collector is plain HTTP on sockets: nothing a shim hooks).
 * The config's strings are copied.  NULL when the thread or memory cannot
 * be had.  An unusable collector string or out file is not an error: it is
 * reported once through tt_log and that destination is left out.
 *
 * The out file is opened by the thread, not the caller, to append
 * (O_APPEND, created 0644), without following a symlink and without
 * waiting (O_NOFOLLOW | O_NONBLOCK).  Refused: anything but a regular file
 * (a FIFO, a device, a symlink), and in a folder others may write to, a
 * file of another user or one with several links (they could have put it
 * there).  The name is looked at before the open and what was opened is
 * checked after it.
 */
tt_shipper *tt_shipper_new(const tt_ship_config *cfg);

/*
 * Copy rec into the queue.  Never blocks on I/O or queue space: when the
 * queue is full the record is dropped and counted.  Returns 0,
 * TT_ETRUNCATED (dropped: queue full), TT_ENOMEM, or TT_EINVAL.
 * Safe from any thread; not async-signal-safe.
 */
int tt_shipper_submit(tt_shipper *s, const tt_record *rec);

/*
 * Wait until every record submitted before the call was delivered,
 * spooled or dropped, for at most timeout_ms.  Returns 0, or TT_EIO when
 * the time ran out first.
 */
int tt_shipper_flush(tt_shipper *s, int timeout_ms);

/*
 * Stop and free, in bounded time: wait at most timeout_ms for the
 * collector to acknowledge what was submitted; then whatever it has not
 * acknowledged, the batch in flight included (its request is cut short),
 * goes to the spool, or is counted dropped (said once) when there is no
 * usable spool.  The spooled records reach the collector later, through
 * any process that uses the spool; one that the collector took but had
 * not acknowledged yet arrives twice and is counted once (ids).
 *
 * Returns within timeout_ms + TT_SHIP_CLOSE_GRACE_MS: 0, or TT_EIO when
 * the thread did not stop within the grace (stuck where nothing cuts it
 * short: the first answer of a name server, a disk that does not answer);
 * it is then left running, its memory not freed, and the records it still
 * held are counted dropped.  The final counters go to sent, spooled and
 * dropped (each may be NULL).  Accepts NULL.
 */
#define TT_SHIP_CLOSE_GRACE_MS 500
int tt_shipper_close(tt_shipper *s, int timeout_ms, uint64_t *sent,
		     uint64_t *spooled, uint64_t *dropped);

/* tt_shipper_close(s, 2000, NULL, NULL, NULL). */
void tt_shipper_free(tt_shipper *s);

/*
 * Counters since tt_shipper_new: records the collector accepted (spooled
 * records delivered later included, also those spooled by other processes),
 * records written to the spool, records dropped (queue full, spool full or
 * unwritable, refused by the collector).  Any output may be NULL.
 */
void tt_shipper_stats(const tt_shipper *s, uint64_t *sent, uint64_t *spooled,
		      uint64_t *dropped);

#endif
