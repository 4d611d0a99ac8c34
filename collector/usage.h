/*
 * usage.h - GET /v1/usage roll-ups, and the same figures for tokentap report.
 *
 *	{"by": "model", "since": null, "until": null,
 *	 "rows": [{"key": "gpt-4o-mini", "calls": N, "input_tokens": N,
 *	           "output_tokens": N, "cache_read_tokens": N,
 *	           "cache_write_tokens": N, "reasoning_tokens": N,
 *	           "cost_usd": X, "unpriced_calls": N, "cache_savings_usd": X,
 *	           "blocked_calls": N}],
 *	 "total": { the same fields, without "key" }}
 *
 * Rows come biggest cost first (rows whose calls are all unpriced last,
 * then by calls).  `key` is null for records without the field; cost_usd
 * sums the priced records and is null when none was priced; calls counts
 * the calls that reached the provider, blocked_calls the ones the agent
 * blocked (enforce mode: `blocked` true or error "blocked"), which are in
 * no other count; unpriced_calls counts calls whose cost is unknown.  Only
 * client records count (side is not "server").  since is inclusive, until
 * exclusive, on the record's ts.  Token sums are exact integers and may
 * pass 2^63 - 1 (rollup.h, "Widths").
 *
 * Cost: the hourly buckets of the window's whole hours (rollup.h) plus the
 * records of the partial hours at its edges; reads run concurrently.
 */
#ifndef TT_COL_USAGE_H
#define TT_COL_USAGE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "store.h"

#define TT_USAGE_BY_LIST "task, tenant, feature, model, provider, pod, process, app"

struct tt_usage_query {
	const char *by;      /* one of TT_USAGE_BY_LIST */
	int64_t since_us;    /* INT64_MIN: open */
	int64_t until_us;    /* INT64_MAX: open */
	int scan;            /* 1: read every record of the window, no buckets (tests, bench) */
};

/* The SQL expression that groups for `by`, or NULL when `by` is unknown. */
const char *tt_usage_column(const char *by);

/*
 * A time bound: RFC 3339 ("2026-01-02T00:00:00Z"), a date ("2026-01-02",
 * UTC midnight), seconds since the epoch ("1767225600"), or an age before
 * now_us ("90m", "24h", "7d", "2w").  Returns 0 or TT_EINVAL.
 */
int tt_usage_parse_time(const char *s, int64_t now_us, int64_t *out);

/* Append the roll-up JSON to out. TT_EINVAL (unknown by) or TT_EIO, with err. */
int tt_usage_json(tt_store *s, const struct tt_usage_query *q, tt_buf *out, char *err,
		  size_t errlen);

#endif
