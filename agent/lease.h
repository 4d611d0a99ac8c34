/*
 * lease.h - the agent's side of budgets: local leases, reserve and settle.
 *
 * Before an LLM call leaves (enforce mode), its worst case (input tokens
 * estimated from the request, output tokens from its max-tokens field or
 * the collector's default) is reserved from a lease: a slice of the
 * remaining budget that the collector granted to this process for one
 * key (task, tenant, feature, pod, model).  Reserving is local: a mutex
 * and a few compares.  Only a call that finds its lease too small asks
 * the collector (POST /v1/lease, bounded by TOKENTAP_LEASE_TIMEOUT_MS,
 * default 1000); a lease that runs below half of its last grant, or past
 * half of its time to live, is renewed by a background thread first.
 * When the response ends, the reservation is settled to the real figures
 * and the difference goes back to the local lease.
 *
 * Collector unreachable: TOKENTAP_FAIL=open (default) lets calls through
 * unchecked; closed refuses them.  Each says so once on stderr.
 */
#ifndef TT_AGENT_LEASE_H
#define TT_AGENT_LEASE_H

#include <stddef.h>
#include <stdint.h>

typedef struct tt_lease_key {
	char task[128], tenant[128], feature[128];
	char pod[40];
	char model[128];
	char provider[32];
} tt_lease_key;

/* What one call holds; settle it exactly once. */
typedef struct tt_reservation {
	int active;          /* 0: nothing reserved (unlimited, or failed open) */
	int slot;
	uint64_t gen;        /* the lease entry's generation when reserved */
	uint64_t epoch;      /* its grant's epoch: a lease that expired since
				does not take back what this leaves over */
	double usd;
	int64_t tokens, calls;
} tt_reservation;

enum tt_lease_verdict {
	TT_LEASE_ALLOW = 0,
	TT_LEASE_DENY = 1,       /* a budget says no: reason and rule set */
	TT_LEASE_UNREACHABLE = 2 /* no answer and TOKENTAP_FAIL=closed */
};

/*
 * Set where leases come from ("unix:/path.sock", "http://host:port", with
 * a host name or an address; NULL or "off": nowhere), the bearer token's
 * file for TCP (TOKENTAP_TOKEN_FILE, or NULL) and the failure policy.  A
 * lease request waits at most timeout_ms, name lookup included (it runs
 * off the call's path: ship/names.h).  Call once at load.
 */
void tt_lease_setup(const char *collector, const char *token_file, int fail_closed,
		    int timeout_ms);

/*
 * Reserve the worst case of one call (in_tokens estimated input,
 * out_tokens the output ceiling or < 0 for the collector's default).
 * Returns a tt_lease_verdict; on a denial, reason (and rule, may be "")
 * say why.  May wait for the collector (see above); never longer than the
 * timeout per attempt.
 */
int tt_lease_reserve(const tt_lease_key *k, int64_t in_tokens, int64_t out_tokens,
		     tt_reservation *r, char *reason, size_t cap, char *rule, size_t rule_cap);

/*
 * The call ended: in/out are its real counts (< 0: unknown, the
 * reservation is kept as spent).  Accepts an inactive reservation.
 */
void tt_lease_settle(tt_reservation *r, int64_t in_tokens, int64_t out_tokens);

/* Give unspent leases back to the collector (at exit; bounded). */
void tt_lease_release_all(void);

/* In a fork child: forget the parent's leases and thread. */
void tt_lease_atfork_child(void);

/* The lease entry count, grants and requests made (tests, bench). */
void tt_lease_stats(uint64_t *requests, uint64_t *local_hits);

/*
 * Parse a collector answer (exposed for tests): fills the grant and price
 * of *out; returns 1 allow, 0 deny (reason set), -1 unreadable.
 */
struct tt_lease_grant {
	double usd;                /* < 0: unlimited */
	int64_t tokens, calls;     /* < 0: unlimited */
	double price_in, price_out; /* USD per token; < 0: unpriced */
	int64_t ttl_ms, max_output;
};
int tt_lease_parse_answer(const char *body, size_t len, struct tt_lease_grant *out,
			  char *reason, size_t cap, char *rule, size_t rule_cap);

#endif
