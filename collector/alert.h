/*
 * alert.h - alerts: what budgets and detectors raise, and their delivery.
 *
 * An alert has a dedup key (kind, rule, scope, window, threshold, state):
 * the same key is raised once for the life of the database, whatever
 * restarts happen (while its row is kept: see retention), so a budget that
 * crosses 80% sends one alert, one more at 100%, and one "resolved" when
 * its window ends.
 *
 * Raising is a queue push (tt_alerts_raise): the records' commit path
 * never waits on alert SQL.  A writer thread drains the queue, up to 1000
 * alerts a transaction (one fsync), into the history table (SQLite,
 * `alerts`), then logs each new one to stderr and hands it to every
 * configured webhook (libcurl POST, a delivery thread), retried with
 * exponential back-off until delivered or out of attempts; an alert not
 * yet delivered when the daemon stops is sent again by the next start.
 * The delivery outcomes are written by the same thread, batched too.
 * Retention: rows older than retention_days, and the oldest past
 * max_rows, are deleted (checked at start, then every minute, in chunks).
 *
 *	"alerts": {"webhooks": [{"url": "http://127.0.0.1:9/hook", "format": "json"},
 *	                        {"url": "https://hooks.slack.com/...", "format": "slack"}],
 *	           "retries": 6, "backoff_ms": 500, "timeout_ms": 5000,
 *	           "retention_days": 90, "max_rows": 1000000, "queue_max": 50000}
 *
 * "json" posts the alert object (as GET /v1/alerts lists it);
 * "slack" posts {"text": "..."} for a Slack-compatible incoming webhook.
 */
#ifndef TT_COL_ALERT_H
#define TT_COL_ALERT_H

#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#include "common/buf.h"

/* One alert, as raised (strings are copied by tt_alerts_raise). */
typedef struct tt_alert {
	char kind[16];        /* "budget" | "detector" */
	char rule[64];        /* budget rule name, or detector name */
	char scope[512];      /* "task=t1,tenant=acme" */
	char window[48];      /* "2026-11-27", "2026-11", "task", "rolling:<bucket>" */
	int threshold;        /* percent for budgets; 0 for detectors */
	char state[12];       /* "firing" | "resolved" */
	char message[512];
	/* Evidence. */
	int64_t calls, tokens;
	double usd;           /* < 0: unknown */
	char prompt_hash[33];
	int64_t repeat_count;
	int64_t first_us, last_us;
} tt_alert;

typedef void (*tt_alert_fn)(void *arg, const tt_alert *a);

/* The dedup key of a (kind|rule|scope|window|threshold|state). */
void tt_alert_key(const tt_alert *a, char *out, size_t cap);

/* The JSON object of one alert (no newline). Returns 0 or a tt_buf error. */
int tt_alert_json(const tt_alert *a, int64_t raised_us, tt_buf *out);

typedef struct tt_alerts tt_alerts;

/* Since the daemon started. */
struct tt_alerts_counters {
	int64_t raised;      /* new keys written */
	int64_t dropped;     /* lost: the queue was full, or the batch could not be written */
	int64_t pruned;      /* rows deleted by retention */
	int64_t delivered, failed;  /* webhook outcomes */
	int64_t queued;      /* gauge: raised, not yet written */
};

/*
 * Open the history in the SQLite database at db_path (its own connections:
 * WAL allows them beside the store's), parse the "alerts" config (may be
 * NULL), start the writer thread, and the delivery thread unless start is
 * 0.  Alerts left undelivered by a previous run are queued again.  On
 * error returns a negative code and says why in err.
 */
int tt_alerts_open(const char *db_path, const cJSON *config, int start, tt_alerts **out,
		   char *err, size_t errlen);

/* Check the "alerts" config without opening anything. */
int tt_alerts_check_config(const cJSON *config, char *err, size_t errlen);

/*
 * Stop delivering (bounded: the attempt in flight finishes), write what
 * is still queued, close. Accepts NULL.
 */
void tt_alerts_close(tt_alerts *al);

/*
 * tt_alert_fn: queue a for the writer (copied; thread-safe; no SQL, no
 * I/O but a line on stderr when the queue is full).  The writer stores,
 * logs and delivers it once; a known key is dropped there.
 */
void tt_alerts_raise(void *al, const tt_alert *a);

/*
 * Wait until every alert raised before this call is written (or dropped).
 * 0, or TT_ETRUNCATED when timeout_us passed first.
 */
int tt_alerts_flush(tt_alerts *al, int64_t timeout_us);

/*
 * GET /v1/alerts: {"alerts": [...]} newest first, at most limit.  Waits
 * (up to 2 s) for the alerts raised before it to be written.
 */
int tt_alerts_list_json(tt_alerts *al, int limit, tt_buf *out);

void tt_alerts_counters(tt_alerts *al, struct tt_alerts_counters *c);

/* Alerts raised and webhook posts made so far (tests, metrics). */
void tt_alerts_stats(tt_alerts *al, int64_t *raised, int64_t *delivered, int64_t *failed);

#endif
