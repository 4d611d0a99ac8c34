/*
 * metrics.h - GET /metrics, Prometheus text exposition format 0.0.4.
 *
 * Usage families are labelled by provider, model, tenant, feature and pod
 * only: task ids and pids are unbounded and would explode the number of
 * series (PITFALLS 26).  An absent label value is "".  Only client records
 * count (side is not "server").  A blocked call (the record's `blocked`,
 * or its error "blocked") never reached the provider: it counts in
 * tokentap_blocked_calls_total only, never in tokentap_calls_total.
 *
 * The figures are kept in memory, one entry per label set: loaded from the
 * database at start (tt_metrics_load), then updated for every record the
 * store commits (tt_metrics_add, the store's "added" callback).  A scrape
 * costs the number of series, not the number of records, and the counters
 * survive restarts because they start from the database.
 *
 * Bounds (config "metrics", config.h):
 *   - at most max_series label sets (default 10,000, about 3.9 KB of
 *     exposition each with short values, 4.7 KB with a pod UID), and at
 *     most TT_METRICS_SCRAPE_MAX bytes of them in a scrape, reckoned from
 *     the length of their labels (at the longest values a record takes,
 *     about 10,000 label sets fit, 5,800 if every byte needs escaping), so
 *     that no scrape outgrows the server's 256 MiB answer.  A record
 *     whose label set finds no room goes to the overflow series, whose
 *     five labels are all "_overflow", so that every total stays the sum
 *     of the records; tokentap_metrics_series_dropped_total counts those
 *     records.
 *   - a series without a record for series_idle_s (default 24 h, on the
 *     collector's clock) is dropped at the next scrape, or when the table
 *     is full (tokentap_metrics_series_expired_total).  Its label set
 *     coming back starts from zero, which Prometheus reads as a counter
 *     reset (after a restart it shows its whole total from the database
 *     again: a jump a rate() over the restart sees).  The load at start skips the label sets idle that long and,
 *     past the cap, sends the least recently active ones to the overflow.
 *
 * Widths: token, call and bucket counters are unsigned 64-bit, exact up to
 * 2^64 - 1 and stuck there (never negative, never wrapped): 2,048 records
 * at the record's maximum of 2^53 tokens.  The load reads the database's
 * sums as doubles (SQLite's TOTAL, which cannot overflow): exact below
 * 2^53, the nearest double above, as Prometheus itself holds every value.
 * Cost and the histogram sums are doubles.
 */
#ifndef TT_COL_METRICS_H
#define TT_COL_METRICS_H

#include <stdint.h>

#include "common/buf.h"
#include "rec.h"
#include "store.h"

/* The daemon's own counters since it started. */
struct tt_metrics_counters {
	int64_t accepted, duplicates, rejected;     /* records */
	int64_t requests, bad_requests, failed;     /* POST /v1/records answers: 2xx, 4xx, 5xx */
};

/* The usage families' share of a scrape (probes and counters take the rest). */
#define TT_METRICS_SCRAPE_MAX ((size_t)192 << 20)

struct tt_metrics_opts {
	size_t max_series;   /* label sets besides the overflow one, >= 1 */
	int64_t idle_us;     /* a series without a record this long expires; 0: never */
	size_t max_bytes;    /* their samples' bytes in a scrape, reckoned; 0: TT_METRICS_SCRAPE_MAX */
};

typedef struct tt_metrics tt_metrics;

/* With the configuration's bounds (tt_config_metrics). NULL when out of memory. */
tt_metrics *tt_metrics_new(void);
/* With these bounds (NULL: the configuration's). NULL when out of memory. */
tt_metrics *tt_metrics_new_opts(const struct tt_metrics_opts *o);
void tt_metrics_free(tt_metrics *m);     /* accepts NULL */

/*
 * Fill m from every stored record. Call before anything is added.  Any
 * value the database holds is read (huge, negative or not a number: see
 * the widths above), so only a failed read gives TT_EIO; TT_ENOMEM.
 */
int tt_metrics_load(tt_metrics *m, tt_store *s);

/*
 * Count one newly stored record (strings in arena).  Thread-safe; matches
 * tt_store_added_fn so that it can be the store's callback.
 */
void tt_metrics_add(void *m, const tt_rec *r, const tt_buf *arena);

/* The same at a given time of the collector's clock (µs since the epoch): for tests. */
void tt_metrics_add_at(tt_metrics *m, const tt_rec *r, const tt_buf *arena, int64_t now_us);

/* Drop the series idle at now_us; returns how many. Thread-safe. */
size_t tt_metrics_expire(tt_metrics *m, int64_t now_us);

/*
 * Append the exposition to out, after expiring the idle series. Returns 0
 * or a tt_buf error. Thread-safe: the series are copied under the lock and
 * written outside it, so a scrape does not hold up the commits.
 */
int tt_metrics_render(tt_metrics *m, tt_store *s, const struct tt_metrics_counters *c,
		      tt_buf *out);

#endif
