/*
 * budget.h - budget rules, their windows, and the leases that enforce them.
 *
 * A rule (config "budgets") has a scope, limits, a window, alert
 * thresholds and an action:
 *
 *	{"name": "per-task", "scope": {"task": "*", "tenant": "acme"},
 *	 "limit": {"usd": 5, "tokens": 200000, "calls": 100},
 *	 "window": "task" | "day" | "month" | "24h" | "90m" | "3600s",
 *	 "alert_at": [50, 80, 100], "action": "alert" | "deny"}
 *
 * Scope fields: task, tenant, feature, pod, model.  Absent: every value
 * counts together; "*": each distinct value has its own budget; any other
 * string: the rule applies to that value only.  "scope": "*" is short for
 * {"task": "*"}.
 *
 * Accounting.  Settled spend comes from the stored client records (never
 * blocked ones): tt_budget_add() for each, in any order; a record outside
 * the current window of its scope is ignored.  A deny rule is enforced
 * through leases: an agent asks for a slice of what is left before its
 * calls leave (tt_budget_lease()), spends it locally, and the records of
 * the calls it made later "cover" the lease (matched by pid and key).
 * What a rule counts as used is
 *
 *	settled spend in the window + sum over live leases of
 *	max(0, granted - covered)
 *
 * and a lease is granted only while that stays within the limit, so the
 * sum of every enforced call's worst case never exceeds the limit.
 *
 * Time.  A record counts for budgets at its `ts` only while that lies in
 * [now - TT_BUDGET_MAX_LAG_S, now] on the collector's clock (now: when it
 * arrived; on replay, the stored received_us); otherwise at `now`.  So a
 * client's clock never moves a window: a future-dated record cannot start
 * tomorrow's day early, nor a far-behind one escape today's.
 *
 * Bounds.  The (rule, scope) accounts and the leases are bounded
 * ("leases": max_accounts, max_leases).  An account is freed when it holds
 * nothing that still counts (a day/month that ended, a rolling window gone
 * empty, a task idle task_idle_s), never while a lease points at it.  When
 * no account can be made, the record's spend is not counted and the scope
 * is remembered as uncounted: a deny rule then refuses its leases and
 * verdicts until the window of that spend has ended - never an allow a
 * rule forbids.  A full lease table evicts its least recently renewed
 * lease, whose unspent hold keeps counting until its TTL would have ended:
 * no budget is freed early and no one is refused for want of a slot.
 *
 * Thread-safety: every function locks the object; callbacks run under the
 * lock and must not call back into it.
 */
#ifndef TT_COL_BUDGET_H
#define TT_COL_BUDGET_H

#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#include "alert.h"
#include "common/buf.h"
#include "rec.h"
#include "store.h"

enum tt_scope_field { TT_SC_TASK, TT_SC_TENANT, TT_SC_FEATURE, TT_SC_POD, TT_SC_MODEL,
		      TT_SC_N };

enum tt_window_kind { TT_WIN_TASK, TT_WIN_ROLLING, TT_WIN_DAY, TT_WIN_MONTH };

#define TT_BUDGET_NAME_MAX 64
#define TT_BUDGET_MAX_RULES 256
#define TT_BUDGET_MAX_THRESHOLDS 8
#define TT_ROLLING_BUCKETS 60
#define TT_BUDGET_MAX_LAG_S 300            /* a record's ts older than this: now */
#define TT_BUDGET_MAX_ACCOUNTS 1000000     /* "leases": "max_accounts" default */
#define TT_BUDGET_MAX_LEASES 100000        /* "leases": "max_leases" default */
#define TT_BUDGET_TASK_IDLE_S (7 * 86400)  /* "leases": "task_idle_s" default */

/* Who spent: the attribution of a record or a lease request. */
struct tt_budget_key {
	const char *f[TT_SC_N];  /* NULL or "" = absent */
};

/* One settled call. */
struct tt_budget_event {
	int64_t ts_us;
	int64_t pid;             /* -1: unknown */
	struct tt_budget_key key;
	const char *request_model; /* lease matching (the model the agent saw) */
	int64_t tokens;          /* input + output */
	int priced;
	double usd;
};

/* A lease request (POST /v1/lease, see README "Lease protocol"). */
struct tt_lease_req {
	const char *id;          /* the agent's lease id, unique per agent and key */
	int64_t pid;
	struct tt_budget_key key;
	int64_t need_in, need_out; /* worst case of the call waiting, tokens */
	int64_t need_calls;
	double have_usd;         /* what the agent still holds locally: the */
	int64_t have_tokens, have_calls; /* need is what is missing beyond it */
	double release_usd;      /* unused grant the agent gives back */
	int64_t release_tokens, release_calls;
	/* Filled by the caller (server) from the price table: USD per token,
	 * < 0 when the model is unpriced. */
	double price_in, price_out;
};

struct tt_lease_ans {
	int allow;
	char reason[384];        /* "" when allowed */
	char rule[TT_BUDGET_NAME_MAX];
	/* Granted now; < 0: unlimited (no deny rule limits this dimension). */
	double usd;
	int64_t tokens, calls;
	int64_t ttl_ms;
};

typedef struct tt_budget tt_budget;

tt_budget *tt_budget_new(void);
void tt_budget_free(tt_budget *b);   /* accepts NULL */

/*
 * Parse the "budgets" array and the "leases" object (each may be NULL):
 *	"leases": {"fraction": 0.25, "ttl_s": 30, "default_max_output_tokens": 4096,
 *		   "max_leases": 100000, "max_accounts": 1000000, "task_idle_s": 604800}
 * Returns 0 or TT_EINVAL with "budgets[2].window: ..." in err.
 */
int tt_budget_config(tt_budget *b, const cJSON *budgets, const cJSON *leases, char *err,
		     size_t errlen);

size_t tt_budget_rule_count(const tt_budget *b);
int64_t tt_budget_default_max_output(const tt_budget *b);

/* Threshold crossings and resolutions go to fn (NULL: none). */
void tt_budget_on_alert(tt_budget *b, tt_alert_fn fn, void *arg);

/* Count one settled call; may raise alerts. */
void tt_budget_add(tt_budget *b, const struct tt_budget_event *ev, int64_t now_us);

/* tt_store_added_fn adapter: a stored record (client side, not blocked). */
void tt_budget_add_rec(void *b, const tt_rec *r, const tt_buf *arena);

/* Windows that ended: resolve their alerts.  Call every few seconds. */
void tt_budget_tick(tt_budget *b, int64_t now_us);

/*
 * Grant (or refuse) a lease; see the top of this file.  Never fails:
 * out of memory refuses with a reason.
 */
void tt_budget_lease(tt_budget *b, const struct tt_lease_req *req, int64_t now_us,
		     struct tt_lease_ans *ans);

/*
 * GET /v1/verdict: 0 = allow; 1 = a deny rule that matches key (fields
 * the query leaves out match only rules that do not name them) has
 * nothing left, with "rule NAME: ..." in reason.
 */
int tt_budget_verdict(tt_budget *b, const struct tt_budget_key *key, int64_t now_us,
		      char *reason, size_t cap);

/*
 * Window arithmetic (exposed for tests).  The window of kind/len that
 * holds ts: its id (days or months since the epoch, 0 for a task's
 * lifetime, the bucket number for rolling) and its [start, end) in µs
 * (rolling: the bucket's).
 */
int64_t tt_window_id(enum tt_window_kind kind, int64_t len_us, int64_t ts_us);
void tt_window_bounds(enum tt_window_kind kind, int64_t len_us, int64_t id, int64_t *start,
		      int64_t *end);

/* Spend used in rule `name` for the scope of key (settled only): tests, alerts. */
int tt_budget_used(tt_budget *b, const char *name, const struct tt_budget_key *key,
		   int64_t now_us, double *usd, int64_t *tokens, int64_t *calls);

/*
 * The tables' sizes and what their bounds did, since tt_budget_new()
 * (for /metrics: tokentap_budget_accounts, tokentap_budget_accounts_expired_total,
 * ..._refused_total, tokentap_budget_records_uncounted_total,
 * tokentap_budget_records_clamped_total, tokentap_budget_leases,
 * tokentap_budget_leases_expired_total, tokentap_budget_leases_evicted_total).
 */
struct tt_budget_stats {
	size_t accounts, max_accounts;   /* (rule, scope) pairs held, the bound */
	uint64_t accounts_expired;       /* freed: nothing in them counted any more */
	uint64_t accounts_refused;       /* a new pair found the table full (or no memory) */
	uint64_t records_uncounted;      /* (record, rule) spend lost to a refusal */
	uint64_t records_clamped;        /* records counted at the collector's time */
	size_t leases, max_leases;
	uint64_t leases_expired;         /* TTL ended */
	uint64_t leases_evicted;         /* the table was full: least recently renewed */
	uint64_t bytes;                  /* heap held by accounts and leases (estimate) */
};
void tt_budget_stats(tt_budget *b, struct tt_budget_stats *out);

/*
 * Feed fn every stored client record that was not blocked, oldest first
 * (the fields budgets and detectors use, and the cost): rebuilds the
 * in-memory spend when the daemon starts.  While fn runs, the "now" of
 * tt_budget_add_rec() on this thread is the record's received_us, so that
 * a record replays at the time it counted when it arrived.
 * Returns 0 or TT_EIO / TT_ENOMEM.
 */
int tt_budget_replay(tt_store *s, tt_store_added_fn fn, void *arg);

#endif
