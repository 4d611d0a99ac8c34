/*
 * rollup.h - hourly roll-ups of the client records, one per dimension of
 * GET /v1/usage, so that a roll-up costs the buckets of its window and not
 * its records.
 *
 * The `rollup` table holds, for every (dimension, UTC hour, key), the sums
 * /v1/usage reports.  The writer adds each committed transaction's records
 * to it in that same transaction (tt_rollup_map_add_rec, then
 * tt_rollup_flush), so the buckets never disagree with the records a
 * reader sees.  A database without them (older, or written with the
 * roll-ups off) is rolled up once when the writer opens it
 * (tt_rollup_build); until then readers scan.
 *
 * Widths.  A record's token count is at most 2^53 (rec.h).  Sums are
 * exact: in memory they are 128-bit; in the table each token sum is two
 * integers, hi * 2^32 + lo with lo in [0, 2^32), and a scan of the
 * records sums the same two halves, so SQLite's 64-bit SUM() cannot
 * overflow ("integer overflow") before 2^42 records at the maximum.
 * Counts of calls are 64-bit.  Dollars are doubles (sums of non-negative
 * costs: relative error at most n * 2^-53 for n records).
 *
 *	tt_rollup_map *m = tt_rollup_map_new();
 *	tt_rollup_map_add_rec(m, rec, arena, now_us);   // per committed record
 *	tt_rollup_flush(db, &stmt, m);                  // before COMMIT
 */
#ifndef TT_COL_ROLLUP_H
#define TT_COL_ROLLUP_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "rec.h"

__extension__ typedef __int128 tt_i128;

#define TT_ROLLUP_HOUR_US ((int64_t)3600 * 1000000)
#define TT_ROLLUP_NTOK 5   /* input, output, cache_read, cache_write, reasoning */

/* The dimensions of /v1/usage: `by` name, the SQL expression over records. */
struct tt_rollup_dim {
	const char *by, *expr;
};
extern const struct tt_rollup_dim tt_rollup_dims[];
extern const int tt_rollup_ndims;

/* The index of `by` in tt_rollup_dims, or -1. */
int tt_rollup_dim(const char *by);

/* The SQL expression meaning "this record is a blocked call" (enforce mode). */
#define TT_ROLLUP_BLOCKED_SQL "(blocked IS 1 OR error IS 'blocked')"

struct tt_rollup_sums {
	int64_t calls;            /* calls that reached the provider (not blocked) */
	int64_t blocked_calls;    /* calls the agent blocked */
	int64_t priced;           /* records with a known cost, blocked ones included */
	int64_t unpriced_calls;   /* calls (not blocked) whose cost is unknown */
	tt_i128 tokens[TT_ROLLUP_NTOK];
	double cost_usd;          /* of the priced records */
	double cache_savings_usd;
};

void tt_rollup_sums_add(struct tt_rollup_sums *to, const struct tt_rollup_sums *s);

/* (dimension, hour, key) -> sums; the key is copied, NULL is its own key. */
typedef struct tt_rollup_map tt_rollup_map;

struct tt_rollup_entry {
	int dim;
	int knull;               /* the records had no value for the dimension */
	int64_t hour;            /* floor(ts_us / TT_ROLLUP_HOUR_US) */
	uint32_t koff, klen;     /* the key's bytes, tt_rollup_map_key() */
	struct tt_rollup_sums s;
};

tt_rollup_map *tt_rollup_map_new(void);
void tt_rollup_map_free(tt_rollup_map *m);   /* accepts NULL */
void tt_rollup_map_clear(tt_rollup_map *m);  /* memory kept */
size_t tt_rollup_map_count(const tt_rollup_map *m);

/* Entry i, 0 <= i < count; valid until the next add or clear. */
struct tt_rollup_entry *tt_rollup_map_entry(tt_rollup_map *m, size_t i);
const char *tt_rollup_map_key(const tt_rollup_map *m, const struct tt_rollup_entry *e);

/* Add s to the entry of (dim, hour, key); key NULL: no value.  0 or TT_ENOMEM. */
int tt_rollup_map_add(tt_rollup_map *m, int dim, int64_t hour, const char *key, size_t klen,
		      const struct tt_rollup_sums *s);

/*
 * Add one stored record to every dimension's bucket of its hour (its ts,
 * else now_us, as the store keeps it).  Server-side records are skipped:
 * /v1/usage counts client records only.  0 or TT_ENOMEM.
 */
int tt_rollup_map_add_rec(tt_rollup_map *m, const tt_rec *r, const tt_buf *arena,
			  int64_t now_us);

/* floor(ts_us / hour): the hour of a timestamp, negative ones included. */
int64_t tt_rollup_hour(int64_t ts_us);

/* The rollup table (CREATE ... IF NOT EXISTS), run with the schema. */
extern const char tt_rollup_schema[];

/*
 * Upsert every entry of m into the rollup table and clear m, inside the
 * caller's transaction.  *stmt is prepared on first use and kept (the
 * caller finalizes it).  0 or TT_EIO.
 */
int tt_rollup_flush(sqlite3 *db, sqlite3_stmt **stmt, tt_rollup_map *m);

/*
 * Mark the buckets as covering every record up to the largest seq, inside
 * the caller's transaction (the writer calls it with every commit that
 * added records).  0 or TT_EIO.
 */
int tt_rollup_mark(sqlite3 *db, int64_t max_seq);

/* 1 when the buckets cover every record (readers may trust them), else 0. */
int tt_rollup_ready(sqlite3 *db);

/*
 * Rebuild the buckets from the records, in one transaction on the writer's
 * connection, printing a progress line on stderr for a big database
 * ("tokentapd: database PATH: rolling up N records by hour ...").
 * 0 or TT_EIO with err.
 */
int tt_rollup_build(sqlite3 *db, const char *path, char *err, size_t errlen);

/* Forget the buckets' coverage (the writer runs without roll-ups): readers scan. */
int tt_rollup_disable(sqlite3 *db);

/*
 * Readers: add to m (as dim 0, hour 0, by key) the sums of dimension dim
 * over the buckets of hours [h0, h1), or over the client records of
 * [since_us, until_us).  0 or TT_EIO (the database's message is on db).
 */
int tt_rollup_read_buckets(sqlite3 *db, int dim, int64_t h0, int64_t h1, tt_rollup_map *m);
int tt_rollup_read_records(sqlite3 *db, int dim, int64_t since_us, int64_t until_us,
			   tt_rollup_map *m);

/* v in decimal (at most 40 characters and the NUL). */
void tt_rollup_i128_str(tt_i128 v, char *buf, size_t cap);

#endif
