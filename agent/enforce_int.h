/*
 * enforce_int.h - what the enforce*.c files share, and nothing else in
 * the agent uses: the callbacks given to tt_enforce_setup() and
 * tt_enforce_set_feed(), the lease key of a call, and the fields every
 * blocked call's record carries (enforce.c).
 */
#ifndef TT_AGENT_ENFORCE_INT_H
#define TT_AGENT_ENFORCE_INT_H

#include "enforce.h"
#include "lease.h"
#include "tokentap/record.h"

struct tt_enforce_hooks {
	tt_enforce_key_fn key;    /* may be NULL: no defaults */
	tt_enforce_ship_fn ship;  /* may be NULL: blocked records are not made */
	tt_enforce_sent_fn sent;  /* may be NULL */
	tt_enforce_feed_fn feed;  /* may be NULL: HTTP/2 writes are not checked */
};
extern struct tt_enforce_hooks tt_enforce_hooks;

/*
 * The lease key of a call (k is an output): the process's defaults (the
 * key hook), then each of task, tenant and feature the request names
 * (non-empty) in their place, and its model and provider (NULL: "").
 */
void tt_enforce_key(tt_lease_key *k, const char *task, const char *tenant, const char *feature,
		    const char *model, const char *provider);

/* A call that did not leave: no tokens, usage_source "none", error
 * "blocked", blocked: true. */
void tt_enforce_mark_blocked(tt_record *rec);

/*
 * Ship rec, whose request fields the caller filled, as the record of a
 * call refused under key k: marked blocked, k's model and attribution, no
 * response bytes.  Does nothing without a ship hook.
 */
void tt_enforce_ship_blocked(tt_record *rec, const tt_lease_key *k);

/*
 * Say, once per process, that budgets block calls (verdict
 * TT_LEASE_DENY; an unreachable collector was said by lease.c).  how
 * ends the line: what a refusal does on this protocol ("" or " (...)").
 */
void tt_enforce_warn_blocking(int verdict, const char *reason, const char *how);

#endif
