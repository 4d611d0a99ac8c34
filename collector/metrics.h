/*
 * metrics.h - GET /metrics, Prometheus text exposition format 0.0.4.
 *
 * Usage families are labelled by provider, model, tenant, feature and pod
 * only: task ids and pids are unbounded and would explode the number of
 * series (PITFALLS 26).  An absent label value is "".  Only client records
 * count (side is not "server").
 *
 * The figures are kept in memory, one entry per label set: loaded from the
 * database at start (tt_metrics_load), then updated for every record the
 * store commits (tt_metrics_add, the store's "added" callback).  A scrape
 * costs the number of series, not the number of records, and the counters
 * survive restarts because they start from the database.
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

typedef struct tt_metrics tt_metrics;

tt_metrics *tt_metrics_new(void);        /* NULL when out of memory */
void tt_metrics_free(tt_metrics *m);     /* accepts NULL */

/* Fill m from every stored record. Call before anything is added. TT_EIO / TT_ENOMEM. */
int tt_metrics_load(tt_metrics *m, tt_store *s);

/*
 * Count one newly stored record (strings in arena).  Thread-safe; matches
 * tt_store_added_fn so that it can be the store's callback.
 */
void tt_metrics_add(void *m, const tt_rec *r, const tt_buf *arena);

/* Append the exposition to out. Returns 0 or a tt_buf error. Thread-safe. */
int tt_metrics_render(tt_metrics *m, tt_store *s, const struct tt_metrics_counters *c,
		      tt_buf *out);

#endif
