/*
 * push.h - send the probe's counters to the collector now and then.
 *
 * The probe has no /metrics of its own: tokentapd serves its counters as
 * tokentap_probe_* series.  A thread of its own posts the latest document
 * every period, so a slow or absent collector never holds up the reader
 * of the ring buffer.
 */
#ifndef TOKENTAP_PUSH_H
#define TOKENTAP_PUSH_H

typedef struct tt_push tt_push;

/*
 * collector: as --collector ("unix:/path", "http://host:port"); NULL or
 * "off": nothing is sent and NULL is returned.  Posts to /v1/probe every
 * period_ms.
 */
tt_push *tt_push_start(const char *collector, int period_ms);

/* The document to send next (copied). */
void tt_push_set(tt_push *p, const char *json);

/* Stop the thread, then send json once more (the final counters), at most
 * a few seconds.  Accepts NULL. */
void tt_push_stop(tt_push *p, const char *json);

#endif
