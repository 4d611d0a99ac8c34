/*
 * metrics.h - GET /metrics, Prometheus text exposition format 0.0.4.
 *
 * Usage families are labelled by provider, model, tenant, feature and pod
 * only: task ids and pids are unbounded and would explode the number of
 * series (PITFALLS 26).  An absent label value is "".  Only client records
 * count (side is not "server").  The figures come from the database at
 * scrape time, so they survive restarts and never go down.
 */
#ifndef TT_COL_METRICS_H
#define TT_COL_METRICS_H

#include <stdint.h>

#include "buf.h"
#include "store.h"

/* The daemon's own counters since it started. */
struct tt_metrics_counters {
	int64_t accepted, duplicates, rejected;     /* records */
	int64_t requests, bad_requests, failed;     /* POST /v1/records answers: 2xx, 4xx, 5xx */
};

/* Append the exposition to out. Returns 0, TT_EIO or a tt_buf error. */
int tt_metrics_render(tt_store *s, const struct tt_metrics_counters *c, tt_buf *out);

#endif
