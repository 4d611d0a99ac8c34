/*
 * detect.h - loop blow-up detectors, per task.
 *
 *	"detectors": {
 *	  "rate":     {"calls_per_minute": 120},      more calls in any 60 s
 *	  "repeat":   {"count": 8},                   the same prompt_hash K times
 *	  "snowball": {"factor": 4, "calls": 8},      input tokens grew on each of
 *	                                              `calls` calls in a row, to
 *	                                              `factor` times the first
 *	  "calls":    {"max": 500}                    more calls in the task
 *	}
 *
 * A detector left out is off; {} takes the defaults shown.  The scope is
 * the record's task ("task=T"), else its process ("pid=P").  Each detector
 * fires once per task (rate: once per episode, resolved when the rate is
 * back under the limit) with the evidence: calls, tokens, cost, first and
 * last time, and for repeat the hash and its count.  Records are fed in
 * the order they are stored; at most 10,000 tasks are followed at once
 * (idle ones are forgotten after an hour).
 */
#ifndef TT_COL_DETECT_H
#define TT_COL_DETECT_H

#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#include "alert.h"
#include "common/buf.h"
#include "rec.h"

typedef struct tt_detect tt_detect;

/* One call as the detectors see it. */
struct tt_detect_event {
	const char *task;       /* NULL/"" : use pid */
	int64_t pid;
	int64_t ts_us;
	int64_t input_tokens, output_tokens; /* < 0: unknown */
	int priced;
	double usd;
	const char *prompt_hash; /* NULL/"" : none */
};

tt_detect *tt_detect_new(void);
void tt_detect_free(tt_detect *d);   /* accepts NULL */

/* Parse the "detectors" object (NULL: all off). 0 or TT_EINVAL with err. */
int tt_detect_config(tt_detect *d, const cJSON *c, char *err, size_t errlen);
int tt_detect_enabled(const tt_detect *d);

void tt_detect_on_alert(tt_detect *d, tt_alert_fn fn, void *arg);

void tt_detect_add(tt_detect *d, const struct tt_detect_event *ev);

/* tt_store_added_fn adapter: client records that were not blocked. */
void tt_detect_add_rec(void *d, const tt_rec *r, const tt_buf *arena);

/* Resolve rate episodes that ended; forget idle tasks. */
void tt_detect_tick(tt_detect *d, int64_t now_us);

#endif
