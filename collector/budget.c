/* budget.c - budget rules, windows, settled spend and leases; see budget.h. */
#include "budget.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tokentap/error.h"

#define ACCT_BUCKETS 4096
#define MAX_ACCTS 200000      /* distinct (rule, scope) pairs tracked */
#define MAX_LEASES 10000
#define US 1000000LL

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
};

struct acct {
	struct acct *next;
	int rule;
	char *scope;
	int64_t win_id;              /* fixed windows */
	double usd;
	int64_t tokens, calls;
	int64_t bid[TT_ROLLING_BUCKETS]; /* rolling: bucket number in each slot */
	double busd[TT_ROLLING_BUCKETS];
	int64_t btok[TT_ROLLING_BUCKETS], bcalls[TT_ROLLING_BUCKETS];
	int alerted;                 /* thresholds alerted in alert_win (count) */
	int64_t alert_win;
	int64_t first_us, last_us;
};

struct lease {
	struct lease *next;
	char id[96];
	int64_t pid;
	char *key[TT_SC_N];
	int64_t expires_us;
	double g_usd, c_usd;
	int64_t g_tok, c_tok, g_calls, c_calls;
};

struct tt_budget {
	pthread_mutex_t mu;
	struct rule *rules;
	size_t nrules;
	struct acct *accts[ACCT_BUCKETS];
	size_t naccts;
	struct lease *leases;
	size_t nleases;
	double fraction;
	int64_t ttl_us;
	int64_t max_output;
	tt_alert_fn alert;
	void *alert_arg;
};

tt_budget *tt_budget_new(void)
{
	tt_budget *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	pthread_mutex_init(&b->mu, NULL);
	b->fraction = 0.25;
	b->ttl_us = 30 * US;
	b->max_output = 4096;
	return b;
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
	for (size_t i = 0; i < b->nrules; i++)
		for (int f = 0; f < TT_SC_N; f++)
			free(b->rules[i].val[f]);
	free(b->rules);
	for (size_t i = 0; i < ACCT_BUCKETS; i++) {
		struct acct *a = b->accts[i], *n;

		for (; a; a = n) {
			n = a->next;
			free(a->scope);
			free(a);
		}
	}
	while (b->leases) {
		struct lease *n = b->leases->next;

		lease_free(b->leases);
		b->leases = n;
	}
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
		cJSON_ArrayForEach(it, leases) {
			double v = cJSON_IsNumber(it) ? it->valuedouble : -1;

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
			} else {
				BAD("leases.%.64s: unknown key (known: fraction, ttl_s, "
				    "default_max_output_tokens)", it->string);
			}
		}
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

static struct acct *acct_get(tt_budget *b, int rule, const char *scope, int create)
{
	uint64_t h = hash_str(rule, scope) % ACCT_BUCKETS;
	struct acct *a;

	for (a = b->accts[h]; a; a = a->next)
		if (a->rule == rule && strcmp(a->scope, scope) == 0)
			return a;
	if (!create || b->naccts >= MAX_ACCTS)
		return NULL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->scope = strdup(scope);
	if (!a->scope) {
		free(a);
		return NULL;
	}
	a->rule = rule;
	a->win_id = INT64_MIN;
	for (int i = 0; i < TT_ROLLING_BUCKETS; i++)
		a->bid[i] = INT64_MIN;
	a->next = b->accts[h];
	b->accts[h] = a;
	b->naccts++;
	return a;
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
		if (a->bid[i] > cur - TT_ROLLING_BUCKETS && a->bid[i] <= cur) {
			*usd += a->busd[i];
			*tok += a->btok[i];
			*calls += a->bcalls[i];
		}
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

static void raise_alert(tt_budget *b, const struct rule *r, const struct acct *a, int64_t win,
		  int thr, int resolved, int64_t at)
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
			 "tokentap budget \"%s\" (%s, window %s) passed %d%%: $%.6f, %lld tokens, "
			 "%lld calls (limits: usd %g, tokens %lld, calls %lld; action %s)", r->name,
			 a->scope, al.window, thr, usd, (long long)tok, (long long)calls, r->lim_usd,
			 (long long)r->lim_tokens, (long long)r->lim_calls, r->deny ? "deny" : "alert");
	b->alert(b->alert_arg, &al);
}

/* After spend was added at `at`: the highest threshold newly passed. */
static void check_thresholds(tt_budget *b, const struct rule *r, struct acct *a, int64_t at)
{
	double usd, f;
	int64_t tok, calls, win;
	int i;

	if (r->nthr == 0)
		return;
	acct_used(r, a, at, &usd, &tok, &calls);
	f = frac_used(r, usd, tok, calls) * 100;
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
		raise_alert(b, r, a, a->alert_win, r->thr[i - 1], 0, at);
	}
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

static void add_locked(tt_budget *b, const struct tt_budget_event *ev, int64_t now)
{
	char scope[1024];

	for (struct lease *l = b->leases; l; l = l->next) {
		if (!lease_matches_event(l, ev))
			continue;
		l->c_tok += ev->tokens;
		l->c_calls++;
		if (ev->priced)
			l->c_usd += ev->usd;
		break;
	}
	for (size_t i = 0; i < b->nrules; i++) {
		const struct rule *r = &b->rules[i];
		struct acct *a;

		if (!scope_of(r, &ev->key, 0, scope, sizeof(scope)))
			continue;
		a = acct_get(b, (int)i, scope, 1);
		if (!a)
			continue;
		if (r->win == TT_WIN_ROLLING) {
			int64_t bid = tt_window_id(r->win, r->win_len, ev->ts_us);
			int64_t cur = tt_window_id(r->win, r->win_len, now > ev->ts_us ? now : ev->ts_us);
			int slot = (int)(((bid % TT_ROLLING_BUCKETS) + TT_ROLLING_BUCKETS) %
					 TT_ROLLING_BUCKETS);

			if (bid <= cur - TT_ROLLING_BUCKETS || a->bid[slot] > bid)
				continue;  /* older than the window */
			if (a->bid[slot] != bid) {
				a->bid[slot] = bid;
				a->busd[slot] = 0;
				a->btok[slot] = a->bcalls[slot] = 0;
			}
			a->busd[slot] += ev->priced ? ev->usd : 0;
			a->btok[slot] += ev->tokens;
			a->bcalls[slot]++;
		} else {
			int64_t w = tt_window_id(r->win, r->win_len, ev->ts_us);

			if (w < a->win_id)
				continue;  /* a late record of a window that ended */
			if (w > a->win_id) {
				if (a->alerted && a->win_id != INT64_MIN) {
					raise_alert(b, r, a, a->alert_win, r->thr[a->alerted - 1], 1, ev->ts_us);
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
		}
		if (!a->first_us || ev->ts_us < a->first_us)
			a->first_us = ev->ts_us;
		if (ev->ts_us > a->last_us)
			a->last_us = ev->ts_us;
		check_thresholds(b, r, a, ev->ts_us);
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
	struct timespec ts;

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
	clock_gettime(CLOCK_REALTIME, &ts);
	tt_budget_add(b, &ev, (int64_t)ts.tv_sec * US + ts.tv_nsec / 1000);
}

static void expire_leases(tt_budget *b, int64_t now)
{
	struct lease **pp = &b->leases;

	while (*pp) {
		struct lease *l = *pp;

		if (l->expires_us <= now) {
			*pp = l->next;
			lease_free(l);
			b->nleases--;
		} else {
			pp = &l->next;
		}
	}
}

void tt_budget_tick(tt_budget *b, int64_t now)
{
	pthread_mutex_lock(&b->mu);
	expire_leases(b, now);
	for (size_t h = 0; h < ACCT_BUCKETS; h++) {
		for (struct acct *a = b->accts[h]; a; a = a->next) {
			const struct rule *r = &b->rules[a->rule];
			double usd, f;
			int64_t tok, calls;

			if (!a->alerted || r->win == TT_WIN_TASK)
				continue;
			if (r->win == TT_WIN_ROLLING) {
				acct_used(r, a, now, &usd, &tok, &calls);
				f = frac_used(r, usd, tok, calls) * 100;
				if (f >= r->thr[0])
					continue;
			} else if (tt_window_id(r->win, r->win_len, now) == a->alert_win) {
				continue;
			}
			raise_alert(b, r, a, a->alert_win, r->thr[a->alerted - 1], 1, now);
			a->alerted = 0;
		}
	}
	pthread_mutex_unlock(&b->mu);
}

/* ---- leases ------------------------------------------------------------ */

static void lease_key(const struct lease *l, struct tt_budget_key *k)
{
	for (int f = 0; f < TT_SC_N; f++)
		k->f[f] = l->key[f];
}

/* Settled spend plus what live leases still hold, for rule i and scope. */
static void used_with_holds(tt_budget *b, size_t i, const char *scope, int64_t now, double *usd,
			    int64_t *tok, int64_t *calls)
{
	const struct rule *r = &b->rules[i];
	char s2[1024];

	acct_used(r, acct_get(b, (int)i, scope, 0), now, usd, tok, calls);
	for (struct lease *l = b->leases; l; l = l->next) {
		struct tt_budget_key k;

		lease_key(l, &k);
		if (!scope_of(r, &k, 0, s2, sizeof(s2)) || strcmp(s2, scope) != 0)
			continue;
		*usd += fmax(0, l->g_usd - l->c_usd);
		*tok += l->g_tok > l->c_tok ? l->g_tok - l->c_tok : 0;
		*calls += l->g_calls > l->c_calls ? l->g_calls - l->c_calls : 0;
	}
}

static struct lease *lease_find(tt_budget *b, const struct tt_lease_req *q, int create)
{
	struct lease *l;

	for (l = b->leases; l; l = l->next)
		if (strcmp(l->id, q->id) == 0)
			return l;
	if (!create || b->nleases >= MAX_LEASES)
		return NULL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	snprintf(l->id, sizeof(l->id), "%s", q->id);
	l->pid = q->pid;
	for (int f = 0; f < TT_SC_N; f++) {
		if (!present(q->key.f[f]))
			continue;
		l->key[f] = strdup(q->key.f[f]);
		if (!l->key[f]) {
			lease_free(l);
			return NULL;
		}
	}
	l->next = b->leases;
	b->leases = l;
	b->nleases++;
	return l;
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

/* Grant for one dimension: at least need, a fraction of what is left, never more. */
static double slice(double remaining, double need, double fraction)
{
	double g = remaining * fraction;

	if (g < need)
		g = need;
	return g < remaining ? g : remaining;
}

void tt_budget_lease(tt_budget *b, const struct tt_lease_req *q, int64_t now,
		     struct tt_lease_ans *ans)
{
	struct lease *l;
	struct tt_budget_key k;
	char scope[1024];
	double need_usd = -1, g_usd = -1;
	int64_t g_tok = -1, g_calls = -1;
	int64_t need_tok = q->need_in + q->need_out;

	memset(ans, 0, sizeof(*ans));
	ans->allow = 1;
	ans->usd = -1;
	ans->tokens = ans->calls = -1;
	ans->ttl_ms = b->ttl_us / 1000;
	if (q->price_in >= 0 && q->price_out >= 0)
		need_usd = (double)q->need_in * q->price_in + (double)q->need_out * q->price_out;

	pthread_mutex_lock(&b->mu);
	expire_leases(b, now);
	l = lease_find(b, q, 1);
	if (!l) {
		ans->allow = 0;
		snprintf(ans->reason, sizeof(ans->reason),
			 "tokentapd cannot hold more leases (%d)", MAX_LEASES);
		goto out;
	}
	/* Give back what the agent returns, never below what records covered. */
	l->g_usd = fmax(l->c_usd, l->g_usd - fmax(0, q->release_usd));
	l->g_tok = l->g_tok - q->release_tokens > l->c_tok ? l->g_tok - q->release_tokens : l->c_tok;
	l->g_calls = l->g_calls - q->release_calls > l->c_calls ? l->g_calls - q->release_calls
								 : l->c_calls;
	l->expires_us = now + b->ttl_us;
	if (q->need_calls <= 0 && need_tok <= 0) {
		/* A release (or a keep-alive): nothing more is granted. */
		ans->usd = ans->tokens = ans->calls = 0;
		goto out;
	}
	/* What the agent holds already counts towards this call. */
	need_tok = need_tok > q->have_tokens ? need_tok - q->have_tokens : 0;
	if (need_usd >= 0)
		need_usd = fmax(0, need_usd - fmax(0, q->have_usd));
	int64_t need_calls = q->need_calls > q->have_calls ? q->need_calls - q->have_calls : 0;
	lease_key(l, &k);
	for (size_t i = 0; i < b->nrules; i++) {
		const struct rule *r = &b->rules[i];
		double usd;
		int64_t tok, calls;

		if (!r->deny || !scope_of(r, &k, 0, scope, sizeof(scope)))
			continue;
		used_with_holds(b, i, scope, now, &usd, &tok, &calls);
		if (r->lim_calls >= 0) {
			int64_t rem = r->lim_calls - calls;

			if (need_calls > rem) {
				deny(ans, r, scope, "calls", (double)calls, (double)r->lim_calls);
				goto out;
			}
			int64_t g = (int64_t)slice((double)rem, (double)need_calls, b->fraction);
			g_calls = g_calls < 0 || g < g_calls ? g : g_calls;
		}
		if (r->lim_tokens >= 0) {
			int64_t rem = r->lim_tokens - tok;

			if (need_tok > rem) {
				deny(ans, r, scope, "tokens", (double)tok, (double)r->lim_tokens);
				goto out;
			}
			int64_t g = (int64_t)slice((double)rem, (double)need_tok, b->fraction);
			g_tok = g_tok < 0 || g < g_tok ? g : g_tok;
		}
		/* An unpriced model cannot be held to dollars: token and call
		 * limits are what bound it (README). */
		if (r->lim_usd >= 0 && need_usd >= 0) {
			double rem = r->lim_usd - usd;

			/* Sums of doubles: a call that fits exactly must not fail by an ulp. */
			if (need_usd > rem + 1e-9 * r->lim_usd) {
				deny(ans, r, scope, "usd", usd, r->lim_usd);
				goto out;
			}
			double g = slice(fmax(rem, need_usd), need_usd, b->fraction);
			g_usd = g_usd < 0 || g < g_usd ? g : g_usd;
		}
	}
	if (g_usd >= 0)
		l->g_usd += g_usd;
	if (g_tok >= 0)
		l->g_tok += g_tok;
	if (g_calls >= 0)
		l->g_calls += g_calls;
	ans->usd = g_usd;
	ans->tokens = g_tok;
	ans->calls = g_calls;
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
		const struct rule *r = &b->rules[i];
		double usd;
		int64_t tok, calls;

		if (!r->deny || !scope_of(r, key, 1, scope, sizeof(scope)))
			continue;
		used_with_holds(b, i, scope, now, &usd, &tok, &calls);
		if ((r->lim_usd >= 0 && usd >= r->lim_usd) ||
		    (r->lim_tokens >= 0 && tok >= r->lim_tokens) ||
		    (r->lim_calls >= 0 && calls >= r->lim_calls)) {
			snprintf(reason, cap,
				 "budget \"%s\" (%s) exhausted: $%.6f, %lld tokens, %lld calls used or "
				 "held", r->name, scope, usd, (long long)tok, (long long)calls);
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
			acct_used(&b->rules[i], acct_get(b, (int)i, scope, 0), now, usd, tokens,
				  calls);
			rc = 0;
		}
		break;
	}
	pthread_mutex_unlock(&b->mu);
	return rc;
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
			       "side, blocked, cost_usd FROM records "
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
		rp->fn(rp->arg, &r, &arena);
	}
out:
	tt_buf_free(&arena);
	sqlite3_finalize(st);
	return rc;
}

int tt_budget_replay(tt_store *s, tt_store_added_fn fn, void *arg)
{
	struct replay rp = {fn, arg};

	return tt_store_read(s, replay_rows, &rp);
}
