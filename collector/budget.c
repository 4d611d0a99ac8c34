/* budget.c - budget rules, windows, settled spend and leases; see budget.h. */
#include "budget.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "tokentap/error.h"

#define US 1000000LL
#define MAX_LAG (TT_BUDGET_MAX_LAG_S * US)
#define ACCT_BUCKETS0 4096        /* the accounts' hash grows from here, doubling */
#define LEASE_BUCKETS 65536       /* two fixed hashes: lease id, (pid, key) */
#define LOST_BITS 65536           /* per rule: scopes whose spend went uncounted */
#define SWEEP_MIN 32768           /* hash buckets a tick sweeps at least */

static const char *const field_names[TT_SC_N] = {"task", "tenant", "feature", "pod",
						  "model"};

enum { M_ANY, M_EACH, M_FIXED };

struct rule {
	char name[TT_BUDGET_NAME_MAX];
	int mode[TT_SC_N];
	char *val[TT_SC_N];
	double lim_usd;              /* < 0: none */
	int64_t lim_tokens, lim_calls;
	enum tt_window_kind win;
	int64_t win_len;             /* rolling: the duration */
	int thr[TT_BUDGET_MAX_THRESHOLDS];
	int nthr;
	int deny;
	/* Scopes (by hash bit) whose spend could not be counted for want of an
	 * account, and until when that spend would have counted. */
	uint64_t lost[LOST_BITS / 64];
	int64_t lost_until;
};

/* A rolling window's bucket. */
struct bucket {
	int64_t id;
	double usd;
	int64_t tok, calls;
};

/* What leases hold against an account; made on its first lease. */
struct hold {
	int nleases;                 /* live leases pointing here: keeps the account */
	double usd;                  /* sum over them of max(0, granted - covered) */
	int64_t tok, calls;
	double o_usd;                /* holds of evicted leases, until o_until */
	int64_t o_tok, o_calls, o_until;
};

/* One (rule, scope): ~120 bytes and the scope; rolling rules add 60 buckets. */
struct acct {
	struct acct *next;
	uint64_t hash;
	int rule;
	int alerted;                 /* thresholds alerted in alert_win (count) */
	int64_t win_id;              /* fixed windows */
	double usd;
	int64_t tokens, calls;
	int64_t alert_win;
	int64_t first_us, last_us;   /* budget times of the records (evidence) */
	int64_t seen_us;             /* last record or lease, collector's clock */
	struct bucket *bk;           /* rolling: TT_ROLLING_BUCKETS */
	struct hold *hold;
	char scope[];
};

struct lease {
	struct lease *id_next, *key_next;  /* hash chains */
	struct lease *older, *newer;       /* renewal order = expiry order */
	uint64_t id_hash, key_hash;
	int64_t pid;
	int64_t expires_us;
	double g_usd, c_usd;
	int64_t g_tok, c_tok, g_calls, c_calls;
	char *key[TT_SC_N];
	char id[96];
	int nacct;
	struct acct *acct[];         /* one per deny rule over its key */
};

struct tt_budget {
	pthread_mutex_t mu;
	struct rule *rules;
	size_t nrules;
	struct acct **accts;
	size_t nbuckets, naccts, max_accts;
	struct lease **by_id, **by_key;
	struct lease *oldest, *newest;
	size_t nleases, max_leases;
	double fraction;
	int64_t ttl_us;
	int64_t max_output;
	int64_t task_idle_us;
	int64_t last_sweep;
	size_t sweep_at;                 /* the tick's next hash bucket */
	int said_full, said_clamp;
	struct tt_budget_stats st;
	tt_alert_fn alert;
	void *alert_arg;
};

/* tt_budget_replay() sets it: the arrival time of the record replayed. */
static _Thread_local int64_t replay_now;

tt_budget *tt_budget_new(void)
{
	tt_budget *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	pthread_mutex_init(&b->mu, NULL);
	b->fraction = 0.25;
	b->ttl_us = 30 * US;
	b->max_output = 4096;
	b->max_accts = TT_BUDGET_MAX_ACCOUNTS;
	b->max_leases = TT_BUDGET_MAX_LEASES;
	b->task_idle_us = (int64_t)TT_BUDGET_TASK_IDLE_S * US;
	return b;
}

static void acct_free(struct acct *a)
{
	free(a->bk);
	free(a->hold);
	free(a);
}

static void lease_free(struct lease *l)
{
	for (int f = 0; f < TT_SC_N; f++)
		free(l->key[f]);
	free(l);
}

void tt_budget_free(tt_budget *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->nrules; i++) {
		for (int f = 0; f < TT_SC_N; f++)
			free(b->rules[i].val[f]);
	}
	free(b->rules);
	for (size_t i = 0; i < b->nbuckets; i++) {
		struct acct *a = b->accts[i], *n;

		for (; a; a = n) {
			n = a->next;
			acct_free(a);
		}
	}
	free(b->accts);
	while (b->oldest) {
		struct lease *n = b->oldest->newer;

		lease_free(b->oldest);
		b->oldest = n;
	}
	free(b->by_id);
	free(b->by_key);
	pthread_mutex_destroy(&b->mu);
	free(b);
}

size_t tt_budget_rule_count(const tt_budget *b)
{
	return b->nrules;
}

int64_t tt_budget_default_max_output(const tt_budget *b)
{
	return b->max_output;
}

void tt_budget_on_alert(tt_budget *b, tt_alert_fn fn, void *arg)
{
	b->alert = fn;
	b->alert_arg = arg;
}

/* ---- windows ---------------------------------------------------------- */

static int64_t floor_div(int64_t a, int64_t d)
{
	int64_t q = a / d;

	return (a % d != 0 && (a < 0) != (d < 0)) ? q - 1 : q;
}

static int64_t bucket_len(int64_t win_len)
{
	int64_t l = win_len / TT_ROLLING_BUCKETS;

	return l > 0 ? l : 1;
}

int64_t tt_window_id(enum tt_window_kind kind, int64_t len_us, int64_t ts_us)
{
	time_t t;
	struct tm tm;

	switch (kind) {
	case TT_WIN_TASK:
		return 0;
	case TT_WIN_DAY:
		return floor_div(ts_us, 86400 * US);
	case TT_WIN_MONTH:
		t = (time_t)floor_div(ts_us, US);
		gmtime_r(&t, &tm);
		return (int64_t)(tm.tm_year + 1900) * 12 + tm.tm_mon;
	case TT_WIN_ROLLING:
		return floor_div(ts_us, bucket_len(len_us));
	}
	return 0;
}

void tt_window_bounds(enum tt_window_kind kind, int64_t len_us, int64_t id, int64_t *start,
		      int64_t *end)
{
	struct tm tm = {0};

	switch (kind) {
	case TT_WIN_TASK:
		*start = INT64_MIN;
		*end = INT64_MAX;
		return;
	case TT_WIN_DAY:
		*start = id * 86400 * US;
		*end = *start + 86400 * US;
		return;
	case TT_WIN_MONTH:
		tm.tm_year = (int)(floor_div(id, 12) - 1900);
		tm.tm_mon = (int)(id - floor_div(id, 12) * 12);
		tm.tm_mday = 1;
		*start = (int64_t)timegm(&tm) * US;
		tm.tm_mon++;
		*end = (int64_t)timegm(&tm) * US;  /* timegm normalises month 12 */
		return;
	case TT_WIN_ROLLING:
		*start = id * bucket_len(len_us);
		*end = *start + bucket_len(len_us);
		return;
	}
}

static void window_label(const struct rule *r, int64_t id, char *out, size_t cap)
{
	int64_t s, e;
	time_t t;
	struct tm tm;

	tt_window_bounds(r->win, r->win_len, id, &s, &e);
	t = (time_t)floor_div(s, US);
	switch (r->win) {
	case TT_WIN_TASK:
		snprintf(out, cap, "task");
		return;
	case TT_WIN_DAY:
		gmtime_r(&t, &tm);
		strftime(out, cap, "%Y-%m-%d", &tm);
		return;
	case TT_WIN_MONTH:
		gmtime_r(&t, &tm);
		strftime(out, cap, "%Y-%m", &tm);
		return;
	case TT_WIN_ROLLING:
		snprintf(out, cap, "rolling:%lld", (long long)id);
		return;
	}
}

/* ---- configuration ---------------------------------------------------- */

/* "task" | "day" | "month" | N followed by s, m, h, d or w. */
static int parse_window(const char *s, struct rule *r)
{
	char *end;
	long long n;
	int64_t mul;

	if (strcmp(s, "task") == 0) {
		r->win = TT_WIN_TASK;
		return 0;
	}
	if (strcmp(s, "day") == 0) {
		r->win = TT_WIN_DAY;
		return 0;
	}
	if (strcmp(s, "month") == 0) {
		r->win = TT_WIN_MONTH;
		return 0;
	}
	errno = 0;
	n = strtoll(s, &end, 10);
	if (errno || end == s || n <= 0 || end[0] == '\0' || end[1] != '\0')
		return -1;
	switch (end[0]) {
	case 's': mul = US; break;
	case 'm': mul = 60 * US; break;
	case 'h': mul = 3600 * US; break;
	case 'd': mul = 86400 * US; break;
	case 'w': mul = 7 * 86400 * US; break;
	default: return -1;
	}
	if (n > 366LL * 86400 * US / mul)
		return -1;
	r->win = TT_WIN_ROLLING;
	r->win_len = n * mul;
	return 0;
}

#define BAD(...) do { snprintf(err, errlen, __VA_ARGS__); rc = TT_EINVAL; goto out; } while (0)

static int parse_rule(struct rule *r, const cJSON *o, size_t idx, char *err, size_t errlen)
{
	const cJSON *it;
	int rc = 0, have_limit = 0, have_window = 0;

	r->lim_usd = -1;
	r->lim_tokens = r->lim_calls = -1;
	snprintf(r->name, sizeof(r->name), "budget-%zu", idx);
	if (!cJSON_IsObject(o))
		BAD("budgets[%zu]: expected an object", idx);
	cJSON_ArrayForEach(it, o) {
		const char *k = it->string;

		if (strcmp(k, "name") == 0) {
			if (!cJSON_IsString(it) || !it->valuestring[0] ||
			    strlen(it->valuestring) >= sizeof(r->name) || strchr(it->valuestring, '|'))
				BAD("budgets[%zu].name: expected a string of 1 to %zu characters "
				    "without '|'", idx, sizeof(r->name) - 1);
			snprintf(r->name, sizeof(r->name), "%s", it->valuestring);
		} else if (strcmp(k, "scope") == 0) {
			const cJSON *s;

			if (cJSON_IsString(it) && strcmp(it->valuestring, "*") == 0) {
				r->mode[TT_SC_TASK] = M_EACH;
				continue;
			}
			if (!cJSON_IsObject(it))
				BAD("budgets[%zu].scope: expected an object like {\"task\": \"*\"} or \"*\"",
				    idx);
			cJSON_ArrayForEach(s, it) {
				int f;

				for (f = 0; f < TT_SC_N; f++)
					if (strcmp(s->string, field_names[f]) == 0)
						break;
				if (f == TT_SC_N)
					BAD("budgets[%zu].scope.%.64s: unknown field (known: task, tenant, "
					    "feature, pod, model)", idx, s->string);
				if (!cJSON_IsString(s) || !s->valuestring[0] ||
				    strlen(s->valuestring) > 255)
					BAD("budgets[%zu].scope.%s: expected \"*\" or a value", idx,
					    field_names[f]);
				/* a field given twice (or a second "scope"): the last one */
				free(r->val[f]);
				r->val[f] = NULL;
				if (strcmp(s->valuestring, "*") == 0) {
					r->mode[f] = M_EACH;
				} else {
					r->mode[f] = M_FIXED;
					r->val[f] = strdup(s->valuestring);
					if (!r->val[f]) {
						rc = TT_ENOMEM;
						goto out;
					}
				}
			}
		} else if (strcmp(k, "limit") == 0) {
			const cJSON *l;

			if (!cJSON_IsObject(it))
				BAD("budgets[%zu].limit: expected {\"usd\": N, \"tokens\": N, \"calls\": N}",
				    idx);
			cJSON_ArrayForEach(l, it) {
				double v = cJSON_IsNumber(l) ? l->valuedouble : -1;

				if (v < 0 || !isfinite(v) || v > 1e15)
					BAD("budgets[%zu].limit.%.64s: expected a non-negative number", idx,
					    l->string);
				if (strcmp(l->string, "usd") == 0)
					r->lim_usd = v;
				else if (strcmp(l->string, "tokens") == 0 && v == floor(v))
					r->lim_tokens = (int64_t)v;
				else if (strcmp(l->string, "calls") == 0 && v == floor(v))
					r->lim_calls = (int64_t)v;
				else
					BAD("budgets[%zu].limit.%.64s: unknown limit or not an integer "
					    "(known: usd, tokens, calls)", idx, l->string);
				have_limit = 1;
			}
		} else if (strcmp(k, "window") == 0) {
			if (!cJSON_IsString(it) || parse_window(it->valuestring, r))
				BAD("budgets[%zu].window: expected \"task\", \"day\" (UTC), \"month\" (UTC) "
				    "or a duration like \"90m\", \"24h\", \"7d\" (at most 366 days)", idx);
			have_window = 1;
		} else if (strcmp(k, "alert_at") == 0) {
			const cJSON *t;
			int last = 0;

			if (!cJSON_IsArray(it) || cJSON_GetArraySize(it) > TT_BUDGET_MAX_THRESHOLDS)
				BAD("budgets[%zu].alert_at: expected at most %d percentages", idx,
				    TT_BUDGET_MAX_THRESHOLDS);
			r->nthr = 0;
			cJSON_ArrayForEach(t, it) {
				if (!cJSON_IsNumber(t) || t->valuedouble != floor(t->valuedouble) ||
				    t->valueint <= last || t->valueint > 1000)
					BAD("budgets[%zu].alert_at: expected increasing whole percentages, "
					    "1 to 1000", idx);
				last = t->valueint;
				r->thr[r->nthr++] = last;
			}
		} else if (strcmp(k, "action") == 0) {
			if (!cJSON_IsString(it) || (strcmp(it->valuestring, "alert") &&
						    strcmp(it->valuestring, "deny")))
				BAD("budgets[%zu].action: expected \"alert\" or \"deny\"", idx);
			r->deny = strcmp(it->valuestring, "deny") == 0;
		} else {
			BAD("budgets[%zu].%.64s: unknown key (known: name, scope, limit, window, "
			    "alert_at, action)", idx, k);
		}
	}
	if (!have_limit)
		BAD("budgets[%zu].limit: required", idx);
	if (!have_window)
		BAD("budgets[%zu].window: required", idx);
out:
	return rc;
}

/* One key of the "leases" object. */
static int parse_lease_key(tt_budget *b, const cJSON *it, char *err, size_t errlen)
{
	double v = cJSON_IsNumber(it) ? it->valuedouble : -1;
	int rc = 0;

	if (strcmp(it->string, "fraction") == 0) {
		if (!(v > 0 && v <= 1))
			BAD("leases.fraction: expected a number above 0, at most 1");
		b->fraction = v;
	} else if (strcmp(it->string, "ttl_s") == 0) {
		if (!(v >= 1 && v <= 3600))
			BAD("leases.ttl_s: expected 1 to 3600 seconds");
		b->ttl_us = (int64_t)(v * US);
	} else if (strcmp(it->string, "default_max_output_tokens") == 0) {
		if (!(v >= 1 && v <= 10000000))
			BAD("leases.default_max_output_tokens: expected 1 to 10000000");
		b->max_output = (int64_t)v;
	} else if (strcmp(it->string, "max_leases") == 0) {
		if (!(v >= 1 && v <= 10000000 && v == floor(v)))
			BAD("leases.max_leases: expected a whole number, 1 to 10000000");
		b->max_leases = (size_t)v;
	} else if (strcmp(it->string, "max_accounts") == 0) {
		if (!(v >= 1 && v <= 100000000 && v == floor(v)))
			BAD("leases.max_accounts: expected a whole number, 1 to 100000000");
		b->max_accts = (size_t)v;
	} else if (strcmp(it->string, "task_idle_s") == 0) {
		if (!(v >= 60 && v <= 366 * 86400.0))
			BAD("leases.task_idle_s: expected 60 to 31622400 seconds (366 days)");
		b->task_idle_us = (int64_t)(v * US);
	} else {
		BAD("leases.%.64s: unknown key (known: fraction, ttl_s, default_max_output_tokens, "
		    "max_leases, max_accounts, task_idle_s)", it->string);
	}
out:
	return rc;
}

int tt_budget_config(tt_budget *b, const cJSON *budgets, const cJSON *leases, char *err,
		     size_t errlen)
{
	const cJSON *it;
	size_t n;
	int rc = 0;

	err[0] = '\0';
	if (leases) {
		if (!cJSON_IsObject(leases))
			BAD("leases: expected an object");
		cJSON_ArrayForEach(it, leases)
			if ((rc = parse_lease_key(b, it, err, errlen)))
				goto out;
	}
	if (!budgets)
		return 0;
	if (!cJSON_IsArray(budgets))
		BAD("budgets: expected an array of rules");
	n = (size_t)cJSON_GetArraySize(budgets);
	if (n > TT_BUDGET_MAX_RULES)
		BAD("budgets: at most %d rules", TT_BUDGET_MAX_RULES);
	b->rules = calloc(n ? n : 1, sizeof(*b->rules));
	if (!b->rules)
		return TT_ENOMEM;
	cJSON_ArrayForEach(it, budgets) {
		struct rule *r = &b->rules[b->nrules++];

		if ((rc = parse_rule(r, it, b->nrules - 1, err, errlen)))
			goto out;
		for (size_t j = 0; j + 1 < b->nrules; j++)
			if (strcmp(b->rules[j].name, r->name) == 0)
				BAD("budgets[%zu].name: \"%s\" is used twice", b->nrules - 1, r->name);
	}
out:
	return rc;
}

/* ---- scopes and accounts ---------------------------------------------- */

static int present(const char *s)
{
	return s && s[0];
}

/*
 * The scope of rule r for key k into out ("task=a,tenant=b"); 0 when the
 * rule does not apply.  With strict, a field the key leaves out makes a
 * rule that names it not apply (verdict queries).
 */
static int scope_of(const struct rule *r, const struct tt_budget_key *k, int strict, char *out,
		    size_t cap)
{
	size_t n = 0;

	out[0] = '\0';
	for (int f = 0; f < TT_SC_N; f++) {
		const char *v = k->f[f];

		if (r->mode[f] == M_ANY)
			continue;
		if (!present(v)) {
			(void)strict;
			return 0;  /* a per-value or a fixed rule needs the value */
		}
		if (r->mode[f] == M_FIXED && strcmp(v, r->val[f]) != 0)
			return 0;
		int w = snprintf(out + n, cap - n, "%s%s=%s", n ? "," : "", field_names[f], v);
		if (w < 0 || (size_t)w >= cap - n)
			return 0;
		n += (size_t)w;
	}
	if (n == 0)
		snprintf(out, cap, "all");
	return 1;
}

static uint64_t hash_str(int rule, const char *s)
{
	uint64_t h = 1469598103934665603ULL ^ (uint64_t)rule;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/*
 * The time a record counts at: its ts while that lies within MAX_LAG
 * before the collector's now, else now.  A client's clock never moves a
 * window: not forwards (a record from the future would end today's window
 * and drop today's records as late), nor backwards out of it.
 */
static int64_t budget_time(tt_budget *b, int64_t ts, int64_t now)
{
	char when[40];

	if (ts <= now && ts >= now - MAX_LAG)
		return ts;
	b->st.records_clamped++;
	if (!b->said_clamp) {
		b->said_clamp = 1;
		tt_rec_format_ts(ts, when, sizeof(when));
		fprintf(stderr, "tokentapd: budget: a record dated %s is %.0f s %s the collector's "
			"clock: budgets count such records when they arrive (said once)\n", when,
			fabs((double)ts - (double)now) / US, ts > now ? "ahead of" : "behind");
	}
	return now;
}

/* Until when spend at t counts for r (uncounted spend: how long to refuse). */
static int64_t spend_end(const tt_budget *b, const struct rule *r, int64_t t)
{
	int64_t s, e;

	switch (r->win) {
	case TT_WIN_TASK:
		return t + b->task_idle_us;
	case TT_WIN_ROLLING:
		return t + r->win_len + bucket_len(r->win_len);
	default:
		tt_window_bounds(r->win, r->win_len, tt_window_id(r->win, r->win_len, t), &s, &e);
		return e;
	}
}

/* Spend of scope hash h in rule r could not be counted. */
static void mark_lost(tt_budget *b, struct rule *r, uint64_t h, int64_t t)
{
	uint64_t bit = h % LOST_BITS;
	int64_t until = spend_end(b, r, t);

	b->st.records_uncounted++;
	r->lost[bit / 64] |= 1ULL << (bit % 64);
	if (until > r->lost_until)
		r->lost_until = until;
}

/* May the scope (hash h) of r have spend that went uncounted?  False positives: deny. */
static int lost_scope(struct rule *r, uint64_t h, int64_t now)
{
	uint64_t bit = h % LOST_BITS;

	if (!r->lost_until)
		return 0;
	if (now >= r->lost_until) {
		memset(r->lost, 0, sizeof(r->lost));
		r->lost_until = 0;
		return 0;
	}
	return (int)((r->lost[bit / 64] >> (bit % 64)) & 1);
}

static size_t acct_bytes(const struct acct *a)
{
	return sizeof(*a) + strlen(a->scope) + 1 +
	       (a->bk ? TT_ROLLING_BUCKETS * sizeof(*a->bk) : 0) + (a->hold ? sizeof(*a->hold) : 0);
}

static int accts_grow(tt_budget *b)
{
	size_t n = b->nbuckets ? b->nbuckets * 2 : ACCT_BUCKETS0;
	struct acct **t = calloc(n, sizeof(*t));

	if (!t)
		return -1;
	for (size_t i = 0; i < b->nbuckets; i++) {
		struct acct *a = b->accts[i], *nx;

		for (; a; a = nx) {
			nx = a->next;
			a->next = t[a->hash & (n - 1)];
			t[a->hash & (n - 1)] = a;
		}
	}
	b->st.bytes += (n - b->nbuckets) * sizeof(*t);
	free(b->accts);
	b->accts = t;
	b->nbuckets = n;
	return 0;
}

static struct acct *acct_find(tt_budget *b, int rule, const char *scope, uint64_t h)
{
	if (!b->nbuckets)
		return NULL;
	for (struct acct *a = b->accts[h & (b->nbuckets - 1)]; a; a = a->next)
		if (a->hash == h && a->rule == rule && strcmp(a->scope, scope) == 0)
			return a;
	return NULL;
}

/* No account could be made: count it, say so once while the table stays full. */
static void refuse(tt_budget *b)
{
	b->st.accounts_refused++;
	if (b->said_full)
		return;
	b->said_full = 1;
	fprintf(stderr, "tokentapd: budget: %zu (rule, scope) accounts, the most allowed "
		"(leases.max_accounts), or out of memory: until some expire, the records of a new "
		"scope are not counted and deny rules refuse its calls\n", b->naccts);
}

static void sweep(tt_budget *b, int64_t now);

static struct acct *acct_make(tt_budget *b, int rule, const char *scope, uint64_t h,
			      int64_t now)
{
	size_t len = strlen(scope);
	struct acct *a;

	if (b->naccts >= b->max_accts && now >= b->last_sweep + US)
		sweep(b, now);  /* at most once a second: the tick does it anyway */
	if (b->naccts >= b->max_accts || (b->naccts >= b->nbuckets && accts_grow(b) &&
					  !b->nbuckets)) {
		refuse(b);
		return NULL;
	}
	a = calloc(1, sizeof(*a) + len + 1);
	if (a && b->rules[rule].win == TT_WIN_ROLLING) {
		a->bk = calloc(TT_ROLLING_BUCKETS, sizeof(*a->bk));
		if (!a->bk) {
			free(a);
			a = NULL;
		}
		for (int i = 0; a && i < TT_ROLLING_BUCKETS; i++)
			a->bk[i].id = INT64_MIN;
	}
	if (!a) {
		refuse(b);
		return NULL;
	}
	memcpy(a->scope, scope, len + 1);
	a->hash = h;
	a->rule = rule;
	a->win_id = INT64_MIN;
	a->seen_us = now;
	a->next = b->accts[h & (b->nbuckets - 1)];
	b->accts[h & (b->nbuckets - 1)] = a;
	b->naccts++;
	b->st.bytes += acct_bytes(a);
	return a;
}

/* The account of (rule, scope), made if new; NULL when none can be made. */
static struct acct *acct_get(tt_budget *b, int rule, const char *scope, int64_t now)
{
	uint64_t h = hash_str(rule, scope);
	struct acct *a = acct_find(b, rule, scope, h);

	return a ? a : acct_make(b, rule, scope, h, now);
}

/* Settled spend of a in the window that holds `at`. */
static void acct_used(const struct rule *r, const struct acct *a, int64_t at, double *usd,
		      int64_t *tok, int64_t *calls)
{
	*usd = 0;
	*tok = *calls = 0;
	if (!a)
		return;
	if (r->win != TT_WIN_ROLLING) {
		if (a->win_id == tt_window_id(r->win, r->win_len, at)) {
			*usd = a->usd;
			*tok = a->tokens;
			*calls = a->calls;
		}
		return;
	}
	/* The buckets that overlap (at - len, at]: up to one bucket more than
	 * the window, never less. */
	int64_t cur = tt_window_id(r->win, r->win_len, at);

	for (int i = 0; i < TT_ROLLING_BUCKETS; i++) {
		if (a->bk[i].id > cur - TT_ROLLING_BUCKETS && a->bk[i].id <= cur) {
			*usd += a->bk[i].usd;
			*tok += a->bk[i].tok;
			*calls += a->bk[i].calls;
		}
	}
}

/* Spend figures: settled, or settled plus held. */
struct fig {
	double usd;
	int64_t tok, calls;
};

/* Settled spend of a in the window of now plus what leases hold against it. */
static void used_held(const struct rule *r, const struct acct *a, int64_t now, struct fig *u)
{
	const struct hold *h = a ? a->hold : NULL;

	acct_used(r, a, now, &u->usd, &u->tok, &u->calls);
	if (!h)
		return;
	u->usd += fmax(0, h->usd);
	u->tok += h->tok > 0 ? h->tok : 0;
	u->calls += h->calls > 0 ? h->calls : 0;
	if (h->o_until > now) {
		u->usd += h->o_usd;
		u->tok += h->o_tok;
		u->calls += h->o_calls;
	}
}

static double frac_used(const struct rule *r, double usd, int64_t tok, int64_t calls)
{
	double f = 0;

	if (r->lim_usd >= 0)
		f = fmax(f, r->lim_usd > 0 ? usd / r->lim_usd : (usd > 0 ? INFINITY : 0));
	if (r->lim_tokens >= 0)
		f = fmax(f, r->lim_tokens > 0 ? (double)tok / (double)r->lim_tokens
					      : (tok > 0 ? INFINITY : 0));
	if (r->lim_calls >= 0)
		f = fmax(f, r->lim_calls > 0 ? (double)calls / (double)r->lim_calls
					     : (calls > 0 ? INFINITY : 0));
	return f;
}

/* denied: the figures used or held when a call was refused (else NULL). */
static void raise_alert(tt_budget *b, const struct rule *r, const struct acct *a, int64_t win,
			int thr, int resolved, int64_t at, const struct fig *denied)
{
	tt_alert al;
	double usd;
	int64_t tok, calls;

	if (!b->alert)
		return;
	memset(&al, 0, sizeof(al));
	snprintf(al.kind, sizeof(al.kind), "budget");
	snprintf(al.rule, sizeof(al.rule), "%s", r->name);
	snprintf(al.scope, sizeof(al.scope), "%s", a->scope);
	window_label(r, win, al.window, sizeof(al.window));
	al.threshold = thr;
	snprintf(al.state, sizeof(al.state), "%s", resolved ? "resolved" : "firing");
	acct_used(r, a, at, &usd, &tok, &calls);
	if (r->win != TT_WIN_ROLLING && a->win_id != win) {
		usd = a->usd;  /* the window that ended, not the new one */
		tok = a->tokens;
		calls = a->calls;
	}
	if (denied) {
		usd = denied->usd;
		tok = denied->tok;
		calls = denied->calls;
	}
	al.calls = calls;
	al.tokens = tok;
	al.usd = usd;
	al.first_us = a->first_us;
	al.last_us = a->last_us;
	if (resolved)
		snprintf(al.message, sizeof(al.message),
			 "tokentap budget \"%s\" (%s, window %s): resolved", r->name, a->scope,
			 al.window);
	else
		snprintf(al.message, sizeof(al.message),
			 "tokentap budget \"%s\" (%s, window %s) %s %d%%: $%.6f, %lld tokens, "
			 "%lld calls%s (limits: usd %g, tokens %lld, calls %lld; action %s)", r->name,
			 a->scope, al.window, denied ? "exhausted, a call denied at" : "passed", thr,
			 usd, (long long)tok, (long long)calls, denied ? " used or held" : "",
			 r->lim_usd, (long long)r->lim_tokens, (long long)r->lim_calls,
			 r->deny ? "deny" : "alert");
	b->alert(b->alert_arg, &al);
}

/* The highest threshold that f (percent) passed at `at`, once per window. */
static void raise_upto(tt_budget *b, const struct rule *r, struct acct *a, int64_t at, double f,
		       const struct fig *denied)
{
	int64_t win;
	int i;

	for (i = r->nthr; i > 0 && f < r->thr[i - 1]; i--)
		;
	if (i == 0)
		return;
	win = r->win == TT_WIN_ROLLING ? a->alert_win : tt_window_id(r->win, r->win_len, at);
	if (a->alerted == 0) {
		/* A rolling window's episode is named by the bucket where it began. */
		if (r->win == TT_WIN_ROLLING)
			win = tt_window_id(r->win, r->win_len, at);
		a->alert_win = win;
	} else if (r->win != TT_WIN_ROLLING && a->alert_win != win) {
		a->alerted = 0;
		a->alert_win = win;
	}
	if (i > a->alerted) {
		a->alerted = i;
		raise_alert(b, r, a, a->alert_win, r->thr[i - 1], 0, at, denied);
	}
}

/* After spend was added at `at`: the highest threshold newly passed. */
static void check_thresholds(tt_budget *b, const struct rule *r, struct acct *a, int64_t at)
{
	double usd;
	int64_t tok, calls;

	if (r->nthr == 0)
		return;
	acct_used(r, a, at, &usd, &tok, &calls);
	raise_upto(b, r, a, at, frac_used(r, usd, tok, calls) * 100, NULL);
}

/*
 * A deny rule refused a call: its budget is exhausted for that call, which
 * counts as 100% (reservations stop spending below it, so settled spend
 * alone may never get there).
 */
static void exhausted(tt_budget *b, const struct rule *r, struct acct *a, int64_t now,
		      const struct fig *u)
{
	if (r->nthr == 0)
		return;
	raise_upto(b, r, a, now, fmax(100, frac_used(r, u->usd, u->tok, u->calls) * 100), u);
}

static int lease_matches_event(const struct lease *l, const struct tt_budget_event *ev)
{
	if (ev->pid < 0 || l->pid != ev->pid)
		return 0;
	for (int f = 0; f < TT_SC_N; f++) {
		const char *v = f == TT_SC_MODEL && present(ev->request_model) ? ev->request_model
									  : ev->key.f[f];

		if (strcmp(l->key[f] ? l->key[f] : "", present(v) ? v : "") != 0)
			return 0;
	}
	return 1;
}

/* (pid, key): how a record finds the lease it covers. */
static uint64_t key_hash(int64_t pid, const char *const f[TT_SC_N])
{
	uint64_t h = 1469598103934665603ULL ^ (uint64_t)pid;

	for (int i = 0; i < TT_SC_N; i++) {
		for (const char *s = present(f[i]) ? f[i] : ""; *s; s++)
			h = (h ^ (unsigned char)*s) * 1099511628211ULL;
		h = (h ^ 0x100) * 1099511628211ULL;  /* field separator */
	}
	return h;
}

static struct lease *lease_for_event(tt_budget *b, const struct tt_budget_event *ev)
{
	const char *f[TT_SC_N];
	uint64_t h;

	if (ev->pid < 0 || !b->by_key)
		return NULL;
	for (int i = 0; i < TT_SC_N; i++)
		f[i] = ev->key.f[i];
	if (present(ev->request_model))
		f[TT_SC_MODEL] = ev->request_model;
	h = key_hash(ev->pid, f);
	for (struct lease *l = b->by_key[h & (LEASE_BUCKETS - 1)]; l; l = l->key_next)
		if (l->key_hash == h && lease_matches_event(l, ev))
			return l;  /* the newest such lease, as chains grow at the head */
	return NULL;
}

/* Add (sign 1) or take away (-1) what l holds from its accounts. */
static void lease_hold(struct lease *l, int sign)
{
	double u = fmax(0, l->g_usd - l->c_usd);
	int64_t t = l->g_tok > l->c_tok ? l->g_tok - l->c_tok : 0;
	int64_t c = l->g_calls > l->c_calls ? l->g_calls - l->c_calls : 0;

	for (int j = 0; j < l->nacct; j++) {
		struct hold *h = l->acct[j]->hold;

		h->usd += sign * u;
		h->tok += sign * t;
		h->calls += sign * c;
	}
}

/* Fixed windows: 0 when the record belongs to a window that ended. */
static int add_fixed(tt_budget *b, const struct rule *r, struct acct *a,
		     const struct tt_budget_event *ev, int64_t t)
{
	int64_t w = tt_window_id(r->win, r->win_len, t);

	if (w < a->win_id)
		return 0;  /* a late record of a window that ended */
	if (w > a->win_id) {
		if (a->alerted && a->win_id != INT64_MIN) {
			raise_alert(b, r, a, a->alert_win, r->thr[a->alerted - 1], 1, t, NULL);
			a->alerted = 0;
		}
		a->win_id = w;
		a->usd = 0;
		a->tokens = a->calls = 0;
		a->first_us = 0;
	}
	a->usd += ev->priced ? ev->usd : 0;
	a->tokens += ev->tokens;
	a->calls++;
	return 1;
}

/* Rolling windows: 0 when the record is older than the window at now. */
static int add_rolling(const struct rule *r, struct acct *a, const struct tt_budget_event *ev,
		       int64_t t, int64_t now)
{
	int64_t bid = tt_window_id(r->win, r->win_len, t);
	int64_t cur = tt_window_id(r->win, r->win_len, now);
	struct bucket *k = &a->bk[((bid % TT_ROLLING_BUCKETS) + TT_ROLLING_BUCKETS) %
				  TT_ROLLING_BUCKETS];

	if (bid <= cur - TT_ROLLING_BUCKETS || k->id > bid)
		return 0;
	if (k->id != bid) {
		k->id = bid;
		k->usd = 0;
		k->tok = k->calls = 0;
	}
	k->usd += ev->priced ? ev->usd : 0;
	k->tok += ev->tokens;
	k->calls++;
	return 1;
}

static void add_locked(tt_budget *b, const struct tt_budget_event *ev, int64_t now)
{
	char scope[1024];
	int64_t t = budget_time(b, ev->ts_us, now);
	struct lease *l = lease_for_event(b, ev);

	if (l) {
		lease_hold(l, -1);
		l->c_tok += ev->tokens;
		l->c_calls++;
		if (ev->priced)
			l->c_usd += ev->usd;
		lease_hold(l, 1);
	}
	for (size_t i = 0; i < b->nrules; i++) {
		struct rule *r = &b->rules[i];
		struct acct *a;

		if (!scope_of(r, &ev->key, 0, scope, sizeof(scope)))
			continue;
		a = acct_get(b, (int)i, scope, now);
		if (!a) {
			mark_lost(b, r, hash_str((int)i, scope), t);
			continue;
		}
		if (a->seen_us < now)
			a->seen_us = now;
		if (!(r->win == TT_WIN_ROLLING ? add_rolling(r, a, ev, t, now)
					       : add_fixed(b, r, a, ev, t)))
			continue;
		if (!a->first_us || t < a->first_us)
			a->first_us = t;
		if (t > a->last_us)
			a->last_us = t;
		check_thresholds(b, r, a, t);
	}
}

void tt_budget_add(tt_budget *b, const struct tt_budget_event *ev, int64_t now_us)
{
	pthread_mutex_lock(&b->mu);
	add_locked(b, ev, now_us);
	pthread_mutex_unlock(&b->mu);
}

void tt_budget_add_rec(void *arg, const tt_rec *r, const tt_buf *arena)
{
	tt_budget *b = arg;
	struct tt_budget_event ev = {0};
	static const int fields[TT_SC_N] = {TT_F_TASK, TT_F_TENANT, TT_F_FEATURE, TT_F_POD_UID,
					    TT_F_REQUEST_MODEL};
	char vals[TT_SC_N + 1][256];
	size_t len;
	const char *s;

	if (!b || b->nrules == 0)
		return;
	s = tt_rec_str(r, TT_F_SIDE, arena, &len);
	if (s && len == 6 && memcmp(s, "server", 6) == 0)
		return;
	if (tt_rec_int(r, TT_F_BLOCKED, 0))
		return;  /* never reached the provider */
	for (int f = 0; f < TT_SC_N; f++) {
		int fid = fields[f];

		s = tt_rec_str(r, fid, arena, &len);
		if (f == TT_SC_MODEL && !s)
			s = tt_rec_str(r, TT_F_MODEL, arena, &len);
		if (len >= sizeof(vals[f]))
			len = sizeof(vals[f]) - 1;
		if (s)
			memcpy(vals[f], s, len);
		vals[f][s ? len : 0] = '\0';
		ev.key.f[f] = vals[f];
	}
	ev.request_model = vals[TT_SC_MODEL];
	ev.ts_us = tt_rec_int(r, TT_F_TS, 0);
	ev.pid = tt_rec_int(r, TT_F_PID, -1);
	ev.tokens = tt_rec_int(r, TT_F_INPUT_TOKENS, 0) + tt_rec_int(r, TT_F_OUTPUT_TOKENS, 0);
	ev.priced = r->priced;
	ev.usd = r->priced ? r->cost_usd : 0;
	tt_budget_add(b, &ev, replay_now ? replay_now : tt_real_us());
}

/* ---- expiry ------------------------------------------------------------- */

static void lru_unlink(tt_budget *b, struct lease *l)
{
	*(l->older ? &l->older->newer : &b->oldest) = l->newer;
	*(l->newer ? &l->newer->older : &b->newest) = l->older;
	l->older = l->newer = NULL;
}

static void lru_push(tt_budget *b, struct lease *l)
{
	l->older = b->newest;
	l->newer = NULL;
	*(b->newest ? &b->newest->newer : &b->oldest) = l;
	b->newest = l;
}

static void chain_remove(struct lease **head, struct lease *l, int by_key)
{
	for (struct lease **pp = head; *pp; pp = by_key ? &(*pp)->key_next : &(*pp)->id_next) {
		if (*pp == l) {
			*pp = by_key ? l->key_next : l->id_next;
			return;
		}
	}
}

static size_t lease_bytes(const struct lease *l)
{
	size_t n = sizeof(*l) + (size_t)l->nacct * sizeof(l->acct[0]);

	for (int f = 0; f < TT_SC_N; f++)
		n += l->key[f] ? strlen(l->key[f]) + 1 : 0;
	return n;
}

/*
 * Forget l.  Evicted (the table was full): what it still held keeps
 * counting against its accounts until its TTL would have ended, so an
 * eviction never frees budget early.
 */
static void lease_drop(tt_budget *b, struct lease *l, int64_t now, int evicted)
{
	double u = fmax(0, l->g_usd - l->c_usd);
	int64_t t = l->g_tok > l->c_tok ? l->g_tok - l->c_tok : 0;
	int64_t c = l->g_calls > l->c_calls ? l->g_calls - l->c_calls : 0;

	chain_remove(&b->by_id[l->id_hash & (LEASE_BUCKETS - 1)], l, 0);
	chain_remove(&b->by_key[l->key_hash & (LEASE_BUCKETS - 1)], l, 1);
	lru_unlink(b, l);
	lease_hold(l, -1);
	for (int j = 0; j < l->nacct; j++) {
		struct hold *h = l->acct[j]->hold;

		if (evicted) {
			if (h->o_until <= now) {
				h->o_usd = 0;
				h->o_tok = h->o_calls = 0;
			}
			h->o_usd += u;
			h->o_tok += t;
			h->o_calls += c;
			if (l->expires_us > h->o_until)
				h->o_until = l->expires_us;
		}
		if (--h->nleases == 0) {
			h->usd = 0;  /* no rounding left behind */
			h->tok = h->calls = 0;
		}
	}
	b->nleases--;
	b->st.bytes -= lease_bytes(l);
	lease_free(l);
}

/* Leases are in renewal order, and every renewal adds the same TTL. */
static void expire_leases(tt_budget *b, int64_t now)
{
	while (b->oldest && b->oldest->expires_us <= now) {
		lease_drop(b, b->oldest, now, 0);
		b->st.leases_expired++;
	}
}

static int rolling_live(const struct rule *r, const struct acct *a, int64_t now)
{
	int64_t cur = tt_window_id(r->win, r->win_len, now);

	for (int i = 0; i < TT_ROLLING_BUCKETS; i++)
		if (a->bk[i].id > cur - TT_ROLLING_BUCKETS)
			return 1;
	return 0;
}

/* The window of a's alert has ended (rolling: spend and holds back under). */
static int alert_over(const struct rule *r, const struct acct *a, int64_t now)
{
	struct fig u;

	if (r->win == TT_WIN_TASK)
		return 0;
	if (r->win != TT_WIN_ROLLING)
		return tt_window_id(r->win, r->win_len, now) != a->alert_win;
	used_held(r, a, now, &u);
	return frac_used(r, u.usd, u.tok, u.calls) * 100 < r->thr[0];
}

/* Nothing in a counts any more: it may be freed. */
static int acct_idle(const tt_budget *b, const struct rule *r, const struct acct *a, int64_t now)
{
	if (a->seen_us >= now)
		return 0;  /* touched by the call under way, which may hold it */
	if (a->hold && (a->hold->nleases || a->hold->o_until > now))
		return 0;
	switch (r->win) {
	case TT_WIN_TASK:
		return now - a->seen_us >= b->task_idle_us;
	case TT_WIN_ROLLING:
		return !a->alerted && !rolling_live(r, a, now);
	default:
		return !a->alerted && a->win_id < tt_window_id(r->win, r->win_len, now);
	}
}

/*
 * Resolve the alerts of windows that ended and free the accounts that hold
 * nothing, in n hash buckets from where the last sweep stopped (all: n =
 * nbuckets).
 */
static void sweep_some(tt_budget *b, int64_t now, size_t n)
{
	for (size_t k = 0; k < n && b->nbuckets; k++) {
		size_t i = (b->sweep_at + k) & (b->nbuckets - 1);
		struct acct **pp = &b->accts[i];

		while (*pp) {
			struct acct *a = *pp;
			const struct rule *r = &b->rules[a->rule];

			if (a->alerted && alert_over(r, a, now)) {
				raise_alert(b, r, a, a->alert_win, r->thr[a->alerted - 1], 1, now,
					    NULL);
				a->alerted = 0;
			}
			if (!acct_idle(b, r, a, now)) {
				pp = &a->next;
				continue;
			}
			*pp = a->next;
			b->naccts--;
			b->st.accounts_expired++;
			b->st.bytes -= acct_bytes(a);
			acct_free(a);
		}
	}
	if (b->nbuckets)
		b->sweep_at = (b->sweep_at + n) & (b->nbuckets - 1);
	if (b->naccts < b->max_accts)
		b->said_full = 0;
}

static void sweep(tt_budget *b, int64_t now)
{
	b->last_sweep = now;
	sweep_some(b, now, b->nbuckets);
}

void tt_budget_tick(tt_budget *b, int64_t now)
{
	/* A big table is swept an eighth a tick (1M accounts: ~15 ms under the
	 * lock, not ~115): alerts resolve and accounts go within 8 ticks. */
	size_t n = b->nbuckets / 8 > SWEEP_MIN ? b->nbuckets / 8 : SWEEP_MIN;

	pthread_mutex_lock(&b->mu);
	expire_leases(b, now);
	sweep_some(b, now, n < b->nbuckets ? n : b->nbuckets);
	pthread_mutex_unlock(&b->mu);
}

/* ---- leases ------------------------------------------------------------ */

static struct lease *lease_by_id(tt_budget *b, const char *id, uint64_t h)
{
	if (!b->by_id)
		return NULL;
	for (struct lease *l = b->by_id[h & (LEASE_BUCKETS - 1)]; l; l = l->id_next)
		if (l->id_hash == h && strcmp(l->id, id) == 0)
			return l;
	return NULL;
}

static void deny(struct tt_lease_ans *ans, const struct rule *r, const char *scope,
		 const char *what, double used, double limit)
{
	ans->allow = 0;
	snprintf(ans->rule, sizeof(ans->rule), "%s", r->name);
	snprintf(ans->reason, sizeof(ans->reason),
		 "budget \"%s\" (%.150s) exhausted: %s %g of %g used or held, this call needs more",
		 r->name, scope, what, used, limit);
}

/* No account for the scope: refused, never let through unaccounted. */
static void deny_untracked(tt_budget *b, struct tt_lease_ans *ans, const struct rule *r,
			   const char *scope)
{
	ans->allow = 0;
	snprintf(ans->rule, sizeof(ans->rule), "%s", r->name);
	snprintf(ans->reason, sizeof(ans->reason),
		 "budget \"%s\" (%.150s): tokentapd cannot account for a new scope (%zu of at most "
		 "%zu accounts held, leases.max_accounts); denied until some expire", r->name,
		 scope, b->naccts, b->max_accts);
}

static void deny_lost(struct tt_lease_ans *ans, const struct rule *r, const char *scope,
		      int64_t until)
{
	char when[40];

	tt_rec_format_ts(until, when, sizeof(when));
	ans->allow = 0;
	snprintf(ans->rule, sizeof(ans->rule), "%s", r->name);
	snprintf(ans->reason, sizeof(ans->reason),
		 "budget \"%s\" (%.150s): spend of this scope went uncounted while tokentapd's "
		 "budget accounts were full; denied until %s", r->name, scope, when);
}

/* Copy the key of q into l; 0 or -1 (no memory). */
static int lease_set_key(struct lease *l, const struct tt_lease_req *q)
{
	for (int f = 0; f < TT_SC_N; f++) {
		if (!present(q->key.f[f]))
			continue;
		l->key[f] = strdup(q->key.f[f]);
		if (!l->key[f])
			return -1;
	}
	return 0;
}

static int lease_tables(tt_budget *b)
{
	if (b->by_id)
		return 0;
	b->by_id = calloc(LEASE_BUCKETS, sizeof(*b->by_id));
	b->by_key = calloc(LEASE_BUCKETS, sizeof(*b->by_key));
	if (b->by_id && b->by_key) {
		b->st.bytes += 2 * LEASE_BUCKETS * sizeof(*b->by_id);
		return 0;
	}
	free(b->by_id);
	free(b->by_key);
	b->by_id = b->by_key = NULL;
	return -1;
}

/*
 * A lease for q, which has none yet.  NULL with ans allowing (unlimited)
 * when no deny rule covers its key: nothing to hold, no slot taken.  NULL
 * with ans denying when an account or memory is missing.  A full table
 * evicts its least recently renewed lease (lease_drop()).
 */
static struct lease *lease_new(tt_budget *b, const struct tt_lease_req *q, uint64_t idh,
			       int64_t now, struct tt_lease_ans *ans)
{
	struct acct *acc[TT_BUDGET_MAX_RULES];
	char scope[1024];
	struct lease *l;
	int n = 0;

	for (size_t i = 0; i < b->nrules; i++) {
		const struct rule *r = &b->rules[i];
		struct acct *a;

		if (!r->deny || !scope_of(r, &q->key, 0, scope, sizeof(scope)))
			continue;
		a = acct_get(b, (int)i, scope, now);
		if (a && !a->hold && (a->hold = calloc(1, sizeof(*a->hold))))
			b->st.bytes += sizeof(*a->hold);
		if (!a || !a->hold) {
			if (a)
				refuse(b);
			deny_untracked(b, ans, r, scope);
			return NULL;
		}
		a->seen_us = now;  /* kept by a sweep in the next acct_get */
		acc[n++] = a;
	}
	if (n == 0)
		return NULL;
	if (lease_tables(b) || !(l = calloc(1, sizeof(*l) + (size_t)n * sizeof(l->acct[0])))) {
		snprintf(ans->reason, sizeof(ans->reason), "tokentapd: out of memory for a lease");
		ans->allow = 0;
		return NULL;
	}
	if (lease_set_key(l, q)) {
		lease_free(l);
		snprintf(ans->reason, sizeof(ans->reason), "tokentapd: out of memory for a lease");
		ans->allow = 0;
		return NULL;
	}
	if (b->nleases >= b->max_leases) {
		lease_drop(b, b->oldest, now, 1);
		b->st.leases_evicted++;
	}
	snprintf(l->id, sizeof(l->id), "%s", q->id);
	l->id_hash = idh;
	l->pid = q->pid;
	l->key_hash = key_hash(l->pid, (const char *const *)l->key);
	l->nacct = n;
	for (int j = 0; j < n; j++) {
		l->acct[j] = acc[j];
		acc[j]->hold->nleases++;
	}
	l->id_next = b->by_id[idh & (LEASE_BUCKETS - 1)];
	b->by_id[idh & (LEASE_BUCKETS - 1)] = l;
	l->key_next = b->by_key[l->key_hash & (LEASE_BUCKETS - 1)];
	b->by_key[l->key_hash & (LEASE_BUCKETS - 1)] = l;
	lru_push(b, l);
	b->nleases++;
	b->st.bytes += lease_bytes(l);
	return l;
}

/* Grant for one dimension: at least need, a fraction of what is left, never more. */
static double slice(double remaining, double need, double fraction)
{
	double g = remaining * fraction;

	if (g < need)
		g = need;
	return g < remaining ? g : remaining;
}

struct need {
	double usd;      /* < 0: unpriced */
	int64_t tok, calls;
};

struct grant {
	double usd;      /* < 0: unlimited */
	int64_t tok, calls;
};

/* One deny rule's account: 0 and the grant narrowed, or 1 and ans denying. */
static int fit(tt_budget *b, const struct rule *r, struct acct *a, const struct need *nd,
	       int64_t now, struct grant *g, struct tt_lease_ans *ans)
{
	struct fig u;

	if (lost_scope((struct rule *)r, a->hash, now)) {
		deny_lost(ans, r, a->scope, r->lost_until);
		return 1;
	}
	used_held(r, a, now, &u);
	if (r->lim_calls >= 0) {
		int64_t rem = r->lim_calls - u.calls;

		if (nd->calls > rem) {
			deny(ans, r, a->scope, "calls", (double)u.calls, (double)r->lim_calls);
			goto exhausted;
		}
		int64_t x = (int64_t)slice((double)rem, (double)nd->calls, b->fraction);
		g->calls = g->calls < 0 || x < g->calls ? x : g->calls;
	}
	if (r->lim_tokens >= 0) {
		int64_t rem = r->lim_tokens - u.tok;

		if (nd->tok > rem) {
			deny(ans, r, a->scope, "tokens", (double)u.tok, (double)r->lim_tokens);
			goto exhausted;
		}
		int64_t x = (int64_t)slice((double)rem, (double)nd->tok, b->fraction);
		g->tok = g->tok < 0 || x < g->tok ? x : g->tok;
	}
	/* An unpriced model cannot be held to dollars: token and call
	 * limits are what bound it (README). */
	if (r->lim_usd >= 0 && nd->usd >= 0) {
		double rem = r->lim_usd - u.usd;

		/* Sums of doubles: a call that fits exactly must not fail by an ulp. */
		if (nd->usd > rem + 1e-9 * r->lim_usd) {
			deny(ans, r, a->scope, "usd", u.usd, r->lim_usd);
			goto exhausted;
		}
		double x = slice(fmax(rem, nd->usd), nd->usd, b->fraction);
		g->usd = g->usd < 0 || x < g->usd ? x : g->usd;
	}
	return 0;
exhausted:
	exhausted(b, r, a, now, &u);
	return 1;
}

void tt_budget_lease(tt_budget *b, const struct tt_lease_req *q, int64_t now,
		     struct tt_lease_ans *ans)
{
	struct lease *l;
	struct need nd = {.usd = -1};
	struct grant g = {-1, -1, -1};
	int64_t need_tok = q->need_in + q->need_out;
	uint64_t idh = hash_str(-1, q->id);
	int fresh = 0;

	memset(ans, 0, sizeof(*ans));
	ans->allow = 1;
	ans->usd = -1;
	ans->tokens = ans->calls = -1;
	ans->ttl_ms = b->ttl_us / 1000;
	if (q->price_in >= 0 && q->price_out >= 0)
		nd.usd = (double)q->need_in * q->price_in + (double)q->need_out * q->price_out;

	pthread_mutex_lock(&b->mu);
	expire_leases(b, now);
	l = lease_by_id(b, q->id, idh);
	if (!l && q->need_calls <= 0 && need_tok <= 0) {
		/* Keep-alive or release of a lease we do not hold: nothing to do. */
		ans->usd = ans->tokens = ans->calls = 0;
		goto out;
	}
	if (!l) {
		l = lease_new(b, q, idh, now, ans);
		if (!l)
			goto out;  /* unlimited, or denied */
		fresh = 1;
	}
	/* Give back what the agent returns, never below what records covered. */
	lease_hold(l, -1);
	l->g_usd = fmax(l->c_usd, l->g_usd - fmax(0, q->release_usd));
	l->g_tok = l->g_tok - q->release_tokens > l->c_tok ? l->g_tok - q->release_tokens : l->c_tok;
	l->g_calls = l->g_calls - q->release_calls > l->c_calls ? l->g_calls - q->release_calls
								 : l->c_calls;
	lease_hold(l, 1);
	l->expires_us = now + b->ttl_us;
	lru_unlink(b, l);
	lru_push(b, l);
	if (q->need_calls <= 0 && need_tok <= 0) {
		/* A release (or a keep-alive): nothing more is granted. */
		ans->usd = ans->tokens = ans->calls = 0;
		goto out;
	}
	/* What the agent holds already counts towards this call. */
	nd.tok = need_tok > q->have_tokens ? need_tok - q->have_tokens : 0;
	if (nd.usd >= 0)
		nd.usd = fmax(0, nd.usd - fmax(0, q->have_usd));
	nd.calls = q->need_calls > q->have_calls ? q->need_calls - q->have_calls : 0;
	for (int j = 0; j < l->nacct; j++) {
		l->acct[j]->seen_us = now;
		if (fit(b, &b->rules[l->acct[j]->rule], l->acct[j], &nd, now, &g, ans)) {
			if (fresh)
				lease_drop(b, l, now, 0);  /* a refused new lease takes no slot */
			goto out;
		}
	}
	lease_hold(l, -1);
	if (g.usd >= 0)
		l->g_usd += g.usd;
	if (g.tok >= 0)
		l->g_tok += g.tok;
	if (g.calls >= 0)
		l->g_calls += g.calls;
	lease_hold(l, 1);
	ans->usd = g.usd;
	ans->tokens = g.tok;
	ans->calls = g.calls;
out:
	pthread_mutex_unlock(&b->mu);
}

int tt_budget_verdict(tt_budget *b, const struct tt_budget_key *key, int64_t now, char *reason,
		      size_t cap)
{
	char scope[1024];
	int rc = 0;

	reason[0] = '\0';
	pthread_mutex_lock(&b->mu);
	expire_leases(b, now);
	for (size_t i = 0; i < b->nrules && !rc; i++) {
		struct rule *r = &b->rules[i];
		uint64_t h;
		struct fig u;

		if (!r->deny || !scope_of(r, key, 1, scope, sizeof(scope)))
			continue;
		h = hash_str((int)i, scope);
		if (lost_scope(r, h, now)) {
			snprintf(reason, cap, "budget \"%s\" (%s): spend of this scope went uncounted "
				 "while tokentapd's budget accounts were full", r->name, scope);
			rc = 1;
			break;
		}
		used_held(r, acct_find(b, (int)i, scope, h), now, &u);
		if ((r->lim_usd >= 0 && u.usd >= r->lim_usd) ||
		    (r->lim_tokens >= 0 && u.tok >= r->lim_tokens) ||
		    (r->lim_calls >= 0 && u.calls >= r->lim_calls)) {
			snprintf(reason, cap,
				 "budget \"%s\" (%s) exhausted: $%.6f, %lld tokens, %lld calls used or "
				 "held", r->name, scope, u.usd, (long long)u.tok, (long long)u.calls);
			rc = 1;
		}
	}
	pthread_mutex_unlock(&b->mu);
	return rc;
}

int tt_budget_used(tt_budget *b, const char *name, const struct tt_budget_key *key, int64_t now,
		   double *usd, int64_t *tokens, int64_t *calls)
{
	char scope[1024];
	int rc = TT_EINVAL;

	pthread_mutex_lock(&b->mu);
	for (size_t i = 0; i < b->nrules; i++) {
		if (strcmp(b->rules[i].name, name) != 0)
			continue;
		if (scope_of(&b->rules[i], key, 0, scope, sizeof(scope))) {
			acct_used(&b->rules[i], acct_find(b, (int)i, scope, hash_str((int)i, scope)),
				  now, usd, tokens, calls);
			rc = 0;
		}
		break;
	}
	pthread_mutex_unlock(&b->mu);
	return rc;
}

void tt_budget_stats(tt_budget *b, struct tt_budget_stats *out)
{
	pthread_mutex_lock(&b->mu);
	*out = b->st;
	out->accounts = b->naccts;
	out->max_accounts = b->max_accts;
	out->leases = b->nleases;
	out->max_leases = b->max_leases;
	pthread_mutex_unlock(&b->mu);
}

/* ---- replay ------------------------------------------------------------- */

struct replay {
	tt_store_added_fn fn;
	void *arg;
};

static int replay_rows(sqlite3 *db, void *p)
{
	static const int cols[] = {TT_F_TS, TT_F_PID, TT_F_TASK, TT_F_TENANT, TT_F_FEATURE,
				   TT_F_POD_UID, TT_F_REQUEST_MODEL, TT_F_MODEL, TT_F_INPUT_TOKENS,
				   TT_F_OUTPUT_TOKENS, TT_F_PROMPT_HASH, TT_F_SIDE, TT_F_BLOCKED};
	struct replay *rp = p;
	sqlite3_stmt *st = NULL;
	tt_buf arena;
	int rc = 0;

	if (sqlite3_prepare_v2(db, "SELECT ts_us, pid, task, tenant, feature, pod_uid, "
			       "request_model, model, input_tokens, output_tokens, prompt_hash, "
			       "side, blocked, cost_usd, received_us FROM records "
			       "WHERE side IS NOT 'server' AND blocked IS NOT 1 ORDER BY ts_us",
			       -1, &st, NULL) != SQLITE_OK)
		return TT_EIO;
	tt_buf_init(&arena, 1u << 20);
	while (sqlite3_step(st) == SQLITE_ROW) {
		tt_rec r;

		memset(&r, 0, sizeof(r));
		r.null = ~0ULL;
		tt_buf_reset(&arena);
		for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++) {
			int f = cols[i];

			if (sqlite3_column_type(st, (int)i) == SQLITE_NULL)
				continue;
			r.null &= ~(1ULL << f);
			if (tt_rec_fields[f].type == TT_FT_STR) {
				const void *t = sqlite3_column_text(st, (int)i);
				int n = sqlite3_column_bytes(st, (int)i);

				r.v[f].s.off = (uint32_t)arena.len;
				r.v[f].s.len = (uint32_t)n;
				if (tt_buf_add(&arena, t, (size_t)n)) {
					rc = TT_ENOMEM;
					goto out;
				}
			} else {
				r.v[f].i = sqlite3_column_int64(st, (int)i);
			}
		}
		if (sqlite3_column_type(st, 13) != SQLITE_NULL) {
			r.priced = 1;
			r.cost_usd = sqlite3_column_double(st, 13);
		}
		/* The budgets' clock is the one the record arrived by (budget.h). */
		replay_now = sqlite3_column_int64(st, 14);
		rp->fn(rp->arg, &r, &arena);
	}
out:
	replay_now = 0;
	tt_buf_free(&arena);
	sqlite3_finalize(st);
	return rc;
}

int tt_budget_replay(tt_store *s, tt_store_added_fn fn, void *arg)
{
	struct replay rp = {fn, arg};

	return tt_store_read(s, replay_rows, &rp);
}
