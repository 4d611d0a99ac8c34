/*
 * store.h - the collector's SQLite database.
 *
 * One writer connection, fed by a group-commit thread: tt_store_insert()
 * queues its records and blocks until the transaction that holds them has
 * committed, so every caller that gets 0 back may acknowledge its records.
 * Inserts that arrive while a commit runs are committed together in the
 * next transaction, which keeps single-record posts from paying one fsync
 * each when many senders post at once.
 *
 * Durability: WAL with synchronous=FULL by default, so that a commit is on
 * disk (the WAL is fsync'ed) before it returns - an acknowledged record
 * survives a kill -9 and a power loss.  synchronous=NORMAL (--sync normal)
 * survives kill -9 but may lose the last commits on power loss.
 *
 * Reads (usage, metrics) go through read connections, one per concurrent
 * reader (a pool of up to 32, opened as needed), and never wait for the
 * writer or for each other: WAL readers see the last committed state.
 *
 * Every commit also adds its client records to the hourly buckets of
 * rollup.h, in the same transaction; a database whose buckets do not cover
 * its records is rolled up once at open.
 */
#ifndef TT_COL_STORE_H
#define TT_COL_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "rec.h"

typedef struct tt_store tt_store;

struct tt_store_opts {
	int sync_full;   /* 1: synchronous=FULL (default), 0: NORMAL */
	int readonly;    /* open for reads only (tokentap report --db) */
	int no_rollup;   /* keep no hourly buckets (benchmarks): readers scan */
};

/*
 * Open (creating if needed) the database at path and start the writer.
 * On error returns a negative code and writes why into err.
 */
int tt_store_open(const char *path, const struct tt_store_opts *opts, tt_store **out,
		  char *err, size_t errlen);

/* Stop the writer after the queued inserts, close. Accepts NULL. */
void tt_store_close(tt_store *s);

/*
 * Store n records (strings in arena; recs priced by tt_prices_apply()) in
 * one durable transaction, skipping ids already stored.  `now_us` is used
 * for records without ts.  On 0, *accepted + *duplicates == n.  Returns
 * TT_EIO when the database failed (nothing of this call was stored).
 * Thread-safe; blocks until committed.
 */
int tt_store_insert(tt_store *s, const tt_rec *recs, size_t n, const tt_buf *arena,
		    int64_t now_us, int64_t *accepted, int64_t *duplicates);

/*
 * Run fn with a read connection of its own (a free one from the pool, or a
 * new one; waits only when 32 readers are running).  fn's return is passed
 * through; TT_EIO when no connection could be opened.  Thread-safe.  On
 * these connections SUM() never fails with "integer overflow": an integer
 * sum past 64 bits comes back as a REAL (store.c, wide_sum).
 */
int tt_store_read(tt_store *s, int (*fn)(sqlite3 *db, void *arg), void *arg);

/*
 * Called by the writer for every record a committed transaction added (not
 * for duplicates, not when the commit failed), before tt_store_insert()
 * returns; r and arena are the caller's.  Set it before the first insert.
 */
typedef void (*tt_store_added_fn)(void *arg, const tt_rec *r, const tt_buf *arena);
void tt_store_on_added(tt_store *s, tt_store_added_fn fn, void *arg);

/* Records stored in total (a cheap count kept by the store). */
int64_t tt_store_count(tt_store *s);

#endif
