/*
 * test_col_budget.c - budgets (collector/budget.c), detectors (detect.c)
 * and alert keys (alert.c): UTC day and month edges (leap February,
 * December to January), rolling windows, a task's lifetime, reservation
 * and settlement arithmetic of leases, threshold crossing (once each,
 * resolved once), dedup keys.  Every expected figure is worked out here
 * by hand, never taken from the code under test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>
#include <cmocka.h>

#include "../collector/alert.h"
#include "../collector/budget.h"
#include "../collector/detect.h"
#include "../collector/rec.h"
#include "../collector/store.h"
#include "tokentap/error.h"

#define US 1000000LL

/* µs of a UTC date-time, computed with timegm (not with the code under test). */
static int64_t at(int y, int mo, int d, int h, int mi, int s)
{
	struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h,
			.tm_min = mi, .tm_sec = s};

	return (int64_t)timegm(&tm) * US;
}

struct seen {
	tt_alert a[64];
	int n;
};

static void collect(void *arg, const tt_alert *a)
{
	struct seen *s = arg;

	assert_true(s->n < 64);
	s->a[s->n++] = *a;
}

static tt_budget *make(const char *json, struct seen *s)
{
	cJSON *root = cJSON_Parse(json);
	tt_budget *b = tt_budget_new();
	char err[256];
	int rc;

	assert_non_null(root);
	assert_non_null(b);
	rc = tt_budget_config(b, cJSON_GetObjectItem(root, "budgets"),
			      cJSON_GetObjectItem(root, "leases"), err, sizeof(err));
	if (rc)
		fail_msg("config: %s", err);
	cJSON_Delete(root);
	if (s) {
		memset(s, 0, sizeof(*s));
		tt_budget_on_alert(b, collect, s);
	}
	return b;
}

static void spend(tt_budget *b, int64_t ts, const char *task, int64_t tokens, double usd,
		  int64_t pid, const char *model)
{
	struct tt_budget_event ev = {.ts_us = ts, .pid = pid, .tokens = tokens, .priced = usd >= 0,
				     .usd = usd >= 0 ? usd : 0};

	ev.key.f[TT_SC_TASK] = task;
	ev.key.f[TT_SC_MODEL] = model;
	ev.request_model = model;
	tt_budget_add(b, &ev, ts);
}

static void used(tt_budget *b, const char *rule, const char *task, int64_t now, double *usd,
		 int64_t *tok, int64_t *calls)
{
	struct tt_budget_key k = {{0}};

	k.f[TT_SC_TASK] = task;
	assert_int_equal(tt_budget_used(b, rule, &k, now, usd, tok, calls), 0);
}

static void test_window_ids(void **state)
{
	int64_t s, e;

	(void)state;
	/* The last microsecond of a UTC day and the first of the next. */
	int64_t midnight = at(2026, 3, 1, 0, 0, 0);

	assert_int_equal(tt_window_id(TT_WIN_DAY, 0, midnight - 1) + 1,
			 tt_window_id(TT_WIN_DAY, 0, midnight));
	tt_window_bounds(TT_WIN_DAY, 0, tt_window_id(TT_WIN_DAY, 0, midnight), &s, &e);
	assert_int_equal(s, midnight);
	assert_int_equal(e, midnight + 86400 * US);
	/* Months: leap February 2028 has 29 days; December rolls into January. */
	int64_t feb = tt_window_id(TT_WIN_MONTH, 0, at(2028, 2, 29, 23, 59, 59));

	assert_int_equal(feb, tt_window_id(TT_WIN_MONTH, 0, at(2028, 2, 1, 0, 0, 0)));
	assert_int_equal(feb + 1, tt_window_id(TT_WIN_MONTH, 0, at(2028, 3, 1, 0, 0, 0)));
	tt_window_bounds(TT_WIN_MONTH, 0, feb, &s, &e);
	assert_int_equal(s, at(2028, 2, 1, 0, 0, 0));
	assert_int_equal(e, at(2028, 3, 1, 0, 0, 0));
	int64_t dec = tt_window_id(TT_WIN_MONTH, 0, at(2026, 12, 31, 23, 59, 59));

	assert_int_equal(dec + 1, tt_window_id(TT_WIN_MONTH, 0, at(2027, 1, 1, 0, 0, 0)));
	tt_window_bounds(TT_WIN_MONTH, 0, dec, &s, &e);
	assert_int_equal(e, at(2027, 1, 1, 0, 0, 0));
	/* Before 1970 too (negative µs round down, not towards zero). */
	assert_int_equal(tt_window_id(TT_WIN_DAY, 0, -1), -1);
	assert_int_equal(tt_window_id(TT_WIN_TASK, 0, at(2030, 1, 1, 0, 0, 0)), 0);
}

static void test_day_window_resets_at_utc_midnight(void **state)
{
	struct seen s;
	tt_budget *b = make("{\"budgets\": [{\"name\": \"d\", \"scope\": \"*\", \"limit\": "
			    "{\"tokens\": 1000}, \"window\": \"day\", \"alert_at\": [50, 100]}]}", &s);
	int64_t mid = at(2026, 6, 10, 0, 0, 0);
	double usd;
	int64_t tok, calls;

	(void)state;
	spend(b, mid - 2 * US, "t", 600, 0.5, 1, "m");
	spend(b, mid - 1, "t", 100, 0.5, 1, "m");
	used(b, "d", "t", mid - 1, &usd, &tok, &calls);
	assert_int_equal(tok, 700);
	assert_int_equal(calls, 2);
	assert_int_equal(s.n, 1);  /* 50% once; 70% is no new threshold */
	assert_int_equal(s.a[0].threshold, 50);
	assert_string_equal(s.a[0].window, "2026-06-09");
	/* One microsecond later it is another day: nothing used. */
	used(b, "d", "t", mid, &usd, &tok, &calls);
	assert_int_equal(tok, 0);
	/* The tick after midnight resolves yesterday's alert, once. */
	tt_budget_tick(b, mid + US);
	tt_budget_tick(b, mid + 2 * US);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.a[1].state, "resolved");
	assert_string_equal(s.a[1].window, "2026-06-09");
	/* The new day counts from zero and alerts again in its own window. */
	spend(b, mid + 5 * US, "t", 500, 0.1, 1, "m");
	assert_int_equal(s.n, 3);
	assert_string_equal(s.a[2].window, "2026-06-10");
	assert_int_equal(s.a[2].threshold, 50);
	/* A late record of the day that ended does not count in the new one. */
	spend(b, mid - 10 * US, "t", 400, 0.1, 1, "m");
	used(b, "d", "t", mid + 6 * US, &usd, &tok, &calls);
	assert_int_equal(tok, 500);
	tt_budget_free(b);
}

static void test_month_window_december_to_january(void **state)
{
	struct seen s;
	tt_budget *b = make("{\"budgets\": [{\"name\": \"m\", \"limit\": {\"usd\": 10}, "
			    "\"window\": \"month\", \"alert_at\": [100]}]}", &s);
	double usd;
	int64_t tok, calls;
	struct tt_budget_key none = {{0}};

	(void)state;
	spend(b, at(2026, 12, 31, 23, 59, 59), "a", 1, 6.0, 1, "m");
	spend(b, at(2026, 12, 1, 0, 0, 0), "b", 1, 4.0, 1, "m");  /* any task: one scope */
	assert_int_equal(s.n, 1);
	assert_string_equal(s.a[0].scope, "all");
	assert_string_equal(s.a[0].window, "2026-12");
	assert_int_equal(tt_budget_used(b, "m", &none, at(2026, 12, 15, 0, 0, 0), &usd, &tok, &calls),
			 0);
	assert_true(usd > 9.999999 && usd < 10.000001);
	assert_int_equal(calls, 2);
	assert_int_equal(tt_budget_used(b, "m", &none, at(2027, 1, 1, 0, 0, 0), &usd, &tok, &calls),
			 0);
	assert_int_equal(calls, 0);
	tt_budget_free(b);
}

static void test_rolling_window_edges(void **state)
{
	/* 60 s in 60 buckets of 1 s: a call counts for 60 s after its
	 * bucket, never less (README: up to one bucket more). */
	tt_budget *b = make("{\"budgets\": [{\"name\": \"r\", \"scope\": \"*\", \"limit\": "
			    "{\"calls\": 3}, \"window\": \"60s\"}]}", NULL);
	int64_t t0 = at(2026, 1, 1, 12, 0, 0);
	double usd;
	int64_t tok, calls;

	(void)state;
	spend(b, t0, "t", 10, -1, 1, "m");
	spend(b, t0 + 30 * US, "t", 10, -1, 1, "m");
	used(b, "r", "t", t0 + 59 * US, &usd, &tok, &calls);
	assert_int_equal(calls, 2);
	used(b, "r", "t", t0 + 59 * US + 999999, &usd, &tok, &calls);
	assert_int_equal(calls, 2);  /* t0's bucket is still inside */
	used(b, "r", "t", t0 + 60 * US, &usd, &tok, &calls);
	assert_int_equal(calls, 1);  /* exactly 60 s later: gone */
	used(b, "r", "t", t0 + 90 * US, &usd, &tok, &calls);
	assert_int_equal(calls, 0);
	/* A call older than the window when it arrives is not counted. */
	spend(b, t0 + 200 * US, "t", 10, -1, 1, "m");
	struct tt_budget_event old = {.ts_us = t0 + 100 * US, .pid = 1, .tokens = 10};

	old.key.f[TT_SC_TASK] = "t";
	tt_budget_add(b, &old, t0 + 200 * US);
	used(b, "r", "t", t0 + 200 * US, &usd, &tok, &calls);
	assert_int_equal(calls, 1);
	/* Unpriced calls count in tokens and calls, not dollars. */
	assert_true(usd == 0);
	assert_int_equal(tok, 10);
	tt_budget_free(b);
}

static void test_task_lifetime_and_scopes(void **state)
{
	tt_budget *b = make("{\"budgets\": [{\"name\": \"life\", \"scope\": {\"task\": \"*\", "
			    "\"model\": \"gpt-4o\"}, \"limit\": {\"tokens\": 100}, \"window\": \"task\"}]}",
			    NULL);
	double usd;
	int64_t tok, calls;
	struct tt_budget_key k = {{0}};

	(void)state;
	spend(b, at(2020, 1, 1, 0, 0, 0), "a", 40, 0.1, 1, "gpt-4o");
	spend(b, at(2030, 1, 1, 0, 0, 0), "a", 40, 0.1, 1, "gpt-4o");   /* ten years later */
	spend(b, at(2030, 1, 1, 0, 0, 0), "a", 1000, 0.1, 1, "gpt-4o-mini"); /* other model */
	spend(b, at(2030, 1, 1, 0, 0, 0), "b", 7, 0.1, 1, "gpt-4o");     /* other task */
	spend(b, at(2030, 1, 1, 0, 0, 0), NULL, 9, 0.1, 1, "gpt-4o");    /* no task: not ours */
	k.f[TT_SC_TASK] = "a";
	k.f[TT_SC_MODEL] = "gpt-4o";
	assert_int_equal(tt_budget_used(b, "life", &k, at(2040, 1, 1, 0, 0, 0), &usd, &tok, &calls), 0);
	assert_int_equal(tok, 80);
	assert_int_equal(calls, 2);
	k.f[TT_SC_TASK] = "b";
	assert_int_equal(tt_budget_used(b, "life", &k, 0, &usd, &tok, &calls), 0);
	assert_int_equal(tok, 7);
	tt_budget_free(b);
}

static struct tt_lease_ans lease(tt_budget *b, const char *id, int64_t pid, const char *task,
				 int64_t in, int64_t out, double have_usd, int64_t now)
{
	struct tt_lease_req q = {.id = id, .pid = pid, .need_in = in, .need_out = out,
				 .need_calls = 1, .have_usd = have_usd,
				 .price_in = 1e-6, .price_out = 4e-6};
	struct tt_lease_ans a;

	q.key.f[TT_SC_TASK] = task;
	q.key.f[TT_SC_MODEL] = "m";
	tt_budget_lease(b, &q, now, &a);
	return a;
}

static void test_lease_reserve_and_settle(void **state)
{
	/* $1 per task; a call of 1000 in + 1000 out costs at most
	 * 1000 * 1e-6 + 1000 * 4e-6 = $0.005. */
	tt_budget *b = make("{\"budgets\": [{\"name\": \"cap\", \"scope\": \"*\", \"limit\": "
			    "{\"usd\": 0.02, \"calls\": 100}, \"window\": \"task\", \"action\": "
			    "\"deny\"}], \"leases\": {\"fraction\": 0.5, \"ttl_s\": 10}}", NULL);
	int64_t now = at(2026, 5, 5, 5, 5, 5);
	struct tt_lease_ans a;

	(void)state;
	/* First grant: max(need 0.005, half of 0.02) = 0.01; calls: half of 100. */
	a = lease(b, "p1", 11, "t", 1000, 1000, 0, now);
	assert_true(a.allow);
	assert_true(a.usd > 0.00999999 && a.usd < 0.01000001);
	assert_int_equal(a.calls, 50);
	assert_int_equal(a.tokens, -1);  /* no token limit: unlimited */
	/* Second process: left 0.01 -> half is 0.005 = exactly its need. */
	a = lease(b, "p2", 12, "t", 1000, 1000, 0, now);
	assert_true(a.allow);
	assert_true(a.usd > 0.00499999 && a.usd < 0.00500001);
	/* Third: 0.005 left, needs 0.005: granted; a fourth is refused. */
	a = lease(b, "p3", 13, "t", 1000, 1000, 0, now);
	assert_true(a.allow);
	a = lease(b, "p4", 14, "t", 1000, 1000, 0, now);
	assert_false(a.allow);
	assert_string_equal(a.rule, "cap");
	assert_non_null(strstr(a.reason, "usd"));
	/* p1's calls settle: two records of $0.002 each from pid 11 cover
	 * $0.004 of its $0.01.  Its hold shrinks by nothing (it still has
	 * the rest), so p4 is still refused... */
	spend(b, now + 1, "t", 500, 0.002, 11, "m");
	spend(b, now + 2, "t", 500, 0.002, 11, "m");
	a = lease(b, "p4", 14, "t", 1000, 1000, 0, now + 3);
	assert_false(a.allow);
	/* ...until p1 gives back what it does not need: $0.006 - 0.001 kept. */
	struct tt_lease_req rel = {.id = "p1", .pid = 11, .release_usd = 0.005,
				   .price_in = 1e-6, .price_out = 4e-6};
	rel.key.f[TT_SC_TASK] = "t";
	rel.key.f[TT_SC_MODEL] = "m";
	tt_budget_lease(b, &rel, now + 4, &a);
	assert_true(a.allow);
	assert_true(a.usd == 0);  /* a release grants nothing */
	/* Used: 0.004 settled + 0.001 p1 + 0.005 p2 + 0.005 p3 = 0.015: 0.005 left. */
	a = lease(b, "p4", 14, "t", 1000, 1000, 0, now + 5);
	assert_true(a.allow);
	assert_true(a.usd > 0.00499999 && a.usd < 0.00500001);
	/* What an agent still holds counts towards its need. */
	a = lease(b, "p5", 15, "t", 1000, 1000, 0, now + 6);
	assert_false(a.allow);
	a = lease(b, "p5", 15, "t", 1000, 1000, 0.005, now + 6);
	assert_true(a.allow);
	/* Leases expire (10 s): the holds of p2..p5 go, only records stay. */
	a = lease(b, "p6", 16, "t", 1000, 1000, 0, now + 20 * US);
	assert_true(a.allow);
	assert_true(a.usd > 0.00799999 && a.usd < 0.00800001);  /* half of 0.016 */
	/* Another task has its own budget. */
	a = lease(b, "q1", 17, "u", 1000, 1000, 0, now);
	assert_true(a.allow);
	tt_budget_free(b);
}

static void test_unpriced_model_token_limit(void **state)
{
	tt_budget *b = make("{\"budgets\": [{\"name\": \"tok\", \"scope\": \"*\", \"limit\": "
			    "{\"tokens\": 3000, \"usd\": 0.0001}, \"window\": \"task\", \"action\": "
			    "\"deny\"}], \"leases\": {\"fraction\": 1}}", NULL);
	struct tt_lease_req q = {.id = "x", .pid = 1, .need_in = 1000, .need_out = 1000,
				 .need_calls = 1, .price_in = -1, .price_out = -1};
	struct tt_lease_ans a;

	(void)state;
	q.key.f[TT_SC_TASK] = "t";
	q.key.f[TT_SC_MODEL] = "my-local-model";
	tt_budget_lease(b, &q, 1, &a);
	assert_true(a.allow);
	assert_int_equal(a.tokens, 3000);   /* fraction 1: all that is left */
	assert_true(a.usd < 0);             /* no price: dollars cannot bound it */
	q.id = "y";
	tt_budget_lease(b, &q, 2, &a);
	assert_false(a.allow);              /* the token limit does */
	assert_non_null(strstr(a.reason, "tokens"));
	tt_budget_free(b);
}

static void test_thresholds_once_each(void **state)
{
	struct seen s;
	tt_budget *b = make("{\"budgets\": [{\"name\": \"c\", \"scope\": \"*\", \"limit\": "
			    "{\"calls\": 10}, \"window\": \"task\", \"alert_at\": [50, 80, 100]}]}", &s);
	char k1[512], k2[512];

	(void)state;
	for (int i = 0; i < 4; i++)
		spend(b, 1000 + i, "t", 1, 0.1, 1, "m");
	assert_int_equal(s.n, 0);
	spend(b, 2000, "t", 1, 0.1, 1, "m");          /* 5/10 */
	assert_int_equal(s.n, 1);
	assert_int_equal(s.a[0].threshold, 50);
	assert_int_equal(s.a[0].calls, 5);
	spend(b, 2001, "t", 1, 0.1, 1, "m");          /* 6, 7 */
	spend(b, 2002, "t", 1, 0.1, 1, "m");
	assert_int_equal(s.n, 1);
	spend(b, 2003, "t", 1, 0.1, 1, "m");          /* 8 */
	assert_int_equal(s.n, 2);
	assert_int_equal(s.a[1].threshold, 80);
	for (int i = 0; i < 5; i++)                    /* 9 .. 13 */
		spend(b, 3000 + i, "t", 1, 0.1, 1, "m");
	assert_int_equal(s.n, 3);
	assert_int_equal(s.a[2].threshold, 100);
	assert_string_equal(s.a[2].state, "firing");
	/* A task's lifetime never ends: no resolution. */
	tt_budget_tick(b, at(2099, 1, 1, 0, 0, 0));
	assert_int_equal(s.n, 3);
	/* Another task crosses the same thresholds on its own. */
	spend(b, 4000, "jump", 1, 0.1, 1, "m");
	for (int i = 0; i < 9; i++)
		spend(b, 4001, "jump", 1, 0.1, 1, "m");
	assert_int_equal(s.n, 6);  /* 50, 80, 100 crossed one call at a time */
	/* Dedup keys: distinct per rule, scope, window, threshold, state. */
	tt_alert_key(&s.a[0], k1, sizeof(k1));
	tt_alert_key(&s.a[1], k2, sizeof(k2));
	assert_string_equal(k1, "budget|c|task=t|task|50|firing");
	assert_string_not_equal(k1, k2);
	tt_budget_free(b);

	b = make("{\"budgets\": [{\"name\": \"c\", \"scope\": \"*\", \"limit\": {\"tokens\": 100}, "
		 "\"window\": \"task\", \"alert_at\": [50, 80, 100]}]}", &s);
	spend(b, 1, "t", 95, 0.1, 1, "m");   /* a jump to 95%: the highest passed only */
	assert_int_equal(s.n, 1);
	assert_int_equal(s.a[0].threshold, 80);
	tt_budget_free(b);
}

static void test_config_errors(void **state)
{
	static const struct {
		const char *json, *err;
	} bad[] = {
		{"{\"budgets\": {}}", "budgets: expected an array of rules"},
		{"{\"budgets\": [{\"limit\": {\"usd\": 1}}]}", "budgets[0].window: required"},
		{"{\"budgets\": [{\"window\": \"day\"}]}", "budgets[0].limit: required"},
		{"{\"budgets\": [{\"window\": \"week\", \"limit\": {\"usd\": 1}}]}",
		 "budgets[0].window: expected \"task\", \"day\" (UTC), \"month\" (UTC) or a duration "
		 "like \"90m\", \"24h\", \"7d\" (at most 366 days)"},
		{"{\"budgets\": [{\"window\": \"day\", \"limit\": {\"dollars\": 1}}]}",
		 "budgets[0].limit.dollars: unknown limit or not an integer (known: usd, tokens, calls)"},
		{"{\"budgets\": [{\"window\": \"day\", \"limit\": {\"usd\": 1}, \"scope\": {\"user\": \"*\"}}]}",
		 "budgets[0].scope.user: unknown field (known: task, tenant, feature, pod, model)"},
		{"{\"budgets\": [{\"window\": \"day\", \"limit\": {\"usd\": 1}, \"alert_at\": [80, 50]}]}",
		 "budgets[0].alert_at: expected increasing whole percentages, 1 to 1000"},
		{"{\"budgets\": [{\"window\": \"day\", \"limit\": {\"usd\": 1}, \"action\": \"block\"}]}",
		 "budgets[0].action: expected \"alert\" or \"deny\""},
		{"{\"budgets\": [{\"name\": \"a\", \"window\": \"day\", \"limit\": {\"usd\": 1}}, "
		 "{\"name\": \"a\", \"window\": \"day\", \"limit\": {\"usd\": 1}}]}",
		 "budgets[1].name: \"a\" is used twice"},
		{"{\"leases\": {\"fraction\": 2}}", "leases.fraction: expected a number above 0, at most 1"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cJSON *root = cJSON_Parse(bad[i].json);
		tt_budget *b = tt_budget_new();
		char err[256];

		assert_int_equal(tt_budget_config(b, cJSON_GetObjectItem(root, "budgets"),
						  cJSON_GetObjectItem(root, "leases"), err, sizeof(err)),
				 TT_EINVAL);
		assert_string_equal(err, bad[i].err);
		tt_budget_free(b);
		cJSON_Delete(root);
	}
}

static void test_verdict(void **state)
{
	tt_budget *b = make("{\"budgets\": [{\"name\": \"v\", \"scope\": {\"tenant\": \"acme\"}, "
			    "\"limit\": {\"calls\": 2}, \"window\": \"task\", \"action\": \"deny\"}]}",
			    NULL);
	struct tt_budget_key k = {{0}};
	struct tt_budget_event ev = {.ts_us = 5, .pid = 1, .tokens = 1};
	char why[512];

	(void)state;
	k.f[TT_SC_TENANT] = "acme";
	ev.key.f[TT_SC_TENANT] = "acme";
	assert_int_equal(tt_budget_verdict(b, &k, 10, why, sizeof(why)), 0);
	tt_budget_add(b, &ev, 10);
	tt_budget_add(b, &ev, 10);
	assert_int_equal(tt_budget_verdict(b, &k, 10, why, sizeof(why)), 1);
	assert_non_null(strstr(why, "\"v\""));
	k.f[TT_SC_TENANT] = "other";
	assert_int_equal(tt_budget_verdict(b, &k, 10, why, sizeof(why)), 0);
	tt_budget_free(b);
}

/* A scope field given twice: the last one counts, and nothing leaks
 * (LeakSanitizer fails the run otherwise; found by fuzz_col_budget). */
static void test_scope_given_twice(void **state)
{
	tt_budget *b = make("{\"budgets\": [{\"name\": \"v\", \"scope\": {\"tenant\": \"acme\"}, "
			    "\"scope\": {\"tenant\": \"beta\", \"tenant\": \"gamma\"}, "
			    "\"limit\": {\"calls\": 1}, \"window\": \"task\", \"action\": \"deny\"}]}",
			    NULL);
	struct tt_budget_key k = {{0}};
	struct tt_budget_event ev = {.ts_us = 5, .pid = 1, .tokens = 1};
	char why[512];

	(void)state;
	ev.key.f[TT_SC_TENANT] = k.f[TT_SC_TENANT] = "gamma";
	tt_budget_add(b, &ev, 10);
	assert_int_equal(tt_budget_verdict(b, &k, 10, why, sizeof(why)), 1);
	k.f[TT_SC_TENANT] = "acme";
	assert_int_equal(tt_budget_verdict(b, &k, 10, why, sizeof(why)), 0);
	tt_budget_free(b);
}

static void test_detectors(void **state)
{
	cJSON *c = cJSON_Parse("{\"rate\": {\"calls_per_minute\": 5}, \"repeat\": {\"count\": 3}, "
			       "\"snowball\": {\"factor\": 4, \"calls\": 3}, \"calls\": {\"max\": 7}}");
	tt_detect *d = tt_detect_new();
	struct seen s;
	char err[128];

	(void)state;
	memset(&s, 0, sizeof(s));
	assert_int_equal(tt_detect_config(d, c, err, sizeof(err)), 0);
	tt_detect_on_alert(d, collect, &s);
	/* Rate: 6 calls within 60 s (limit 5), spaced so nothing else fires. */
	static const char *const hashes[] = {"h0", "h1", "h2", "h3", "h4", "h5"};

	for (int i = 0; i < 6; i++) {
		struct tt_detect_event ev = {.task = "r", .ts_us = (100 + i * 11) * US,
					     .input_tokens = 10, .output_tokens = 1,
					     .prompt_hash = hashes[i]};
		tt_detect_add(d, &ev);
	}
	assert_int_equal(s.n, 1);
	assert_string_equal(s.a[0].rule, "rate");
	assert_int_equal(s.a[0].calls, 6);
	tt_detect_tick(d, 200 * US);   /* 2 calls in (140 s, 200 s]: back under */
	tt_detect_tick(d, 300 * US);   /* resolved once, not again */
	assert_int_equal(s.n, 2);
	assert_string_equal(s.a[1].state, "resolved");
	/* Repeat: the third "same" fires once. */
	for (int i = 0; i < 4; i++) {
		struct tt_detect_event ev = {.task = "p", .ts_us = (1000 + i * 60) * US,
					     .input_tokens = 10, .prompt_hash = "same"};
		tt_detect_add(d, &ev);
	}
	assert_int_equal(s.n, 3);
	assert_string_equal(s.a[2].rule, "repeat");
	assert_int_equal(s.a[2].repeat_count, 3);
	assert_string_equal(s.a[2].prompt_hash, "same");
	/* Snowball: 10, 20, 40 is 3 growing calls to 4x. */
	int64_t sizes[] = {50, 10, 20, 40};
	for (int i = 0; i < 4; i++) {
		struct tt_detect_event ev = {.task = "s", .ts_us = (5000 + i * 60) * US,
					     .input_tokens = sizes[i]};
		tt_detect_add(d, &ev);
	}
	assert_int_equal(s.n, 4);
	assert_string_equal(s.a[3].rule, "snowball");
	/* Calls: the eighth call of a task. */
	for (int i = 0; i < 8; i++) {
		struct tt_detect_event ev = {.pid = 99, .ts_us = (9000 + i * 60) * US,
					     .input_tokens = 10 - i % 2};
		tt_detect_add(d, &ev);
	}
	assert_int_equal(s.n, 5);
	assert_string_equal(s.a[4].rule, "calls");
	assert_string_equal(s.a[4].scope, "pid=99");
	tt_detect_free(d);
	cJSON_Delete(c);
}

/* ---- issue 14: client time, bounded tables, the exhausted alert ------------ */

/* A lease that needs `calls` calls (no tokens, unpriced), for task/tenant. */
static struct tt_lease_ans lease_calls(tt_budget *b, const char *id, int64_t pid,
				       const char *task, const char *tenant, int64_t calls,
				       int64_t now)
{
	struct tt_lease_req q = {.id = id, .pid = pid, .need_calls = calls, .price_in = -1,
				 .price_out = -1};
	struct tt_lease_ans a;

	q.key.f[TT_SC_TASK] = task;
	q.key.f[TT_SC_TENANT] = tenant;
	tt_budget_lease(b, &q, now, &a);
	return a;
}

/* One settled call of task at ts, as the collector sees it at now. */
static void call_at(tt_budget *b, int64_t ts, int64_t now, const char *task)
{
	struct tt_budget_event ev = {.ts_us = ts, .pid = 1, .tokens = 10};

	ev.key.f[TT_SC_TASK] = task;
	tt_budget_add(b, &ev, now);
}

static void test_future_ts_day_window(void **state)
{
	/* Issue 14 #1: a record dated 9999-12-31 moved the day window to 9999, so
	 * today's records were dropped as late and the 3-call limit stopped
	 * holding.  Here it counts at the collector's time: 2 + 1 + 1 calls today. */
	struct seen s;
	tt_budget *b = make("{\"budgets\": [{\"name\": \"d\", \"scope\": \"*\", \"limit\": "
			    "{\"calls\": 3}, \"window\": \"day\", \"alert_at\": [50, 100], "
			    "\"action\": \"deny\"}]}", &s);
	int64_t now = at(2026, 6, 10, 12, 0, 0);
	double usd;
	int64_t tok, calls;

	(void)state;
	call_at(b, now - US, now, "t");
	call_at(b, now - US, now, "t");
	call_at(b, at(9999, 12, 31, 23, 59, 59), now, "t");
	call_at(b, now + US, now + US, "t");
	used(b, "d", "t", now + 2 * US, &usd, &tok, &calls);
	assert_int_equal(calls, 4);
	assert_false(lease_calls(b, "l1", 7, "t", NULL, 1, now + 2 * US).allow);
	/* No window moved, so nothing resolved: 50% then 100%, both today. */
	tt_budget_tick(b, now + 3 * US);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.a[1].state, "firing");
	assert_string_equal(s.a[1].window, "2026-06-10");
	/* A clock far behind does not take a call out of today either. */
	call_at(b, at(2000, 1, 1, 0, 0, 0), now + 4 * US, "u");
	used(b, "d", "u", now + 5 * US, &usd, &tok, &calls);
	assert_int_equal(calls, 1);
	tt_budget_free(b);
}

static void test_future_ts_rolling_window(void **state)
{
	/* Issue 14 #1: 60 records dated in the next hour filled a 1 h rolling
	 * window's buckets with future ids; the present's calls no longer
	 * counted.  Each counts now: 60 + 1 calls against a limit of 3. */
	tt_budget *b = make("{\"budgets\": [{\"name\": \"r\", \"scope\": \"*\", \"limit\": "
			    "{\"calls\": 3}, \"window\": \"1h\", \"action\": \"deny\"}]}", NULL);
	int64_t now = at(2026, 6, 10, 12, 0, 0);
	double usd;
	int64_t tok, calls;

	(void)state;
	for (int i = 1; i <= 60; i++)
		call_at(b, now + i * 60 * US, now, "t");
	call_at(b, now, now, "t");
	used(b, "r", "t", now, &usd, &tok, &calls);
	assert_int_equal(calls, 61);
	assert_false(lease_calls(b, "l1", 7, "t", NULL, 1, now).allow);
	/* An hour and a bucket later they are gone, like any call of now. */
	used(b, "r", "t", now + 3600 * US + 60 * US, &usd, &tok, &calls);
	assert_int_equal(calls, 0);
	tt_budget_free(b);
}

static char tmpdir[] = "/tmp/tt-budget-test-XXXXXX";

static void store_recs(tt_store *s, const char *const *json, size_t n, int64_t received)
{
	tt_rec recs[8];
	tt_buf arena;
	char err[256];
	int64_t acc, dup;

	assert_true(n <= 8);
	tt_buf_init(&arena, 1 << 16);
	for (size_t i = 0; i < n; i++)
		if (tt_rec_parse(json[i], strlen(json[i]), &arena, &recs[i], err, sizeof(err)))
			fail_msg("record %zu: %s", i, err);
	assert_int_equal(tt_store_insert(s, recs, n, &arena, received, &acc, &dup), 0);
	assert_int_equal(acc, (int64_t)n);
	tt_buf_free(&arena);
}

static void test_future_ts_replay(void **state)
{
	/* Issue 14 #1 across a restart: the future-dated record in the database
	 * must neither move the window nor raise a "resolved" when replayed. */
	static const char *const recs[] = {
		"{\"id\": \"00000000000000000000000000000001\", \"ts\": \"2026-06-10T11:59:50Z\", "
		"\"pid\": 1, \"task\": \"t\"}",
		"{\"id\": \"00000000000000000000000000000002\", \"ts\": \"2026-06-10T11:59:51Z\", "
		"\"pid\": 1, \"task\": \"t\"}",
		"{\"id\": \"00000000000000000000000000000003\", \"ts\": \"9999-12-31T23:59:59Z\", "
		"\"pid\": 1, \"task\": \"t\"}",
	};
	struct tt_store_opts o = {.sync_full = 0};
	struct seen s;
	tt_store *st;
	tt_budget *b = make("{\"budgets\": [{\"name\": \"d\", \"scope\": \"*\", \"limit\": "
			    "{\"calls\": 4}, \"window\": \"day\", \"alert_at\": [50, 100], "
			    "\"action\": \"deny\"}]}", &s);
	int64_t now = at(2026, 6, 10, 12, 0, 0);
	char path[128], err[256];
	double usd;
	int64_t tok, calls;

	(void)state;
	assert_non_null(mkdtemp(tmpdir));
	snprintf(path, sizeof(path), "%s/r.db", tmpdir);
	assert_int_equal(tt_store_open(path, &o, &st, err, sizeof(err)), 0);
	store_recs(st, recs, 3, now);  /* all three arrived at noon */
	assert_int_equal(tt_budget_replay(st, tt_budget_add_rec, b), 0);
	used(b, "d", "t", now + US, &usd, &tok, &calls);
	assert_int_equal(calls, 3);
	for (int i = 0; i < s.n; i++)
		assert_string_equal(s.a[i].state, "firing");
	assert_int_equal(s.n, 1);  /* 50% (2 of 4), in today's window */
	assert_string_equal(s.a[0].window, "2026-06-10");
	/* One more call fits, a second does not. */
	assert_true(lease_calls(b, "l1", 7, "t", NULL, 1, now + US).allow);
	assert_false(lease_calls(b, "l2", 8, "t", NULL, 1, now + US).allow);
	tt_budget_free(b);
	tt_store_close(st);
	snprintf(err, sizeof(err), "rm -rf '%s'", tmpdir);
	assert_int_equal(system(err), 0);
}

static void test_many_tasks_still_counted(void **state)
{
	/* Issue 14 #2: after 200,000 tasks no account was made for the next one,
	 * so its calls went uncounted and a 2-call limit let 5 through. */
	tt_budget *b = make("{\"budgets\": [{\"name\": \"per-task\", \"scope\": \"*\", "
			    "\"limit\": {\"calls\": 2}, \"window\": \"task\", \"action\": "
			    "\"deny\"}]}", NULL);
	int64_t now = at(2026, 6, 10, 12, 0, 0);
	char task[32];
	double usd;
	int64_t tok, calls;

	(void)state;
	for (int i = 0; i < 200000; i++) {
		snprintf(task, sizeof(task), "task-%06d", i);
		call_at(b, now, now, task);
	}
	for (int i = 0; i < 5; i++)
		call_at(b, now, now, "the-next-one");
	used(b, "per-task", "the-next-one", now, &usd, &tok, &calls);
	assert_int_equal(calls, 5);
	assert_false(lease_calls(b, "l1", 7, "the-next-one", NULL, 1, now).allow);
	tt_budget_free(b);
}

static void test_accounts_full_never_allow(void **state)
{
	/* A table of 3 accounts: a fourth scope's lease is denied, its records
	 * go uncounted but remembered, so its verdict denies until its day ends;
	 * then the ended days' accounts are freed and it is served again. */
	tt_budget *b = make("{\"budgets\": [{\"name\": \"daily\", \"scope\": \"*\", \"limit\": "
			    "{\"calls\": 2}, \"window\": \"day\", \"action\": \"deny\"}], "
			    "\"leases\": {\"max_accounts\": 3}}", NULL);
	int64_t now = at(2026, 6, 10, 12, 0, 0), tomorrow = at(2026, 6, 11, 0, 0, 1);
	struct tt_budget_key k = {{0}};
	struct tt_budget_stats st;
	struct tt_lease_ans a;
	char why[512];

	(void)state;
	call_at(b, now, now, "a");
	call_at(b, now, now, "b");
	call_at(b, now, now, "c");
	a = lease_calls(b, "l1", 7, "d", NULL, 1, now);
	assert_false(a.allow);
	assert_string_equal(a.rule, "daily");
	assert_non_null(strstr(a.reason, "max_accounts"));
	call_at(b, now, now, "d");       /* a monitor-mode call: no account for it */
	call_at(b, now, now, "d");
	k.f[TT_SC_TASK] = "d";
	assert_int_equal(tt_budget_verdict(b, &k, now, why, sizeof(why)), 1);
	assert_non_null(strstr(why, "uncounted"));
	tt_budget_stats(b, &st);
	assert_int_equal(st.accounts, 3);
	assert_int_equal(st.max_accounts, 3);
	assert_int_equal(st.records_uncounted, 2);
	assert_true(st.accounts_refused >= 3);
	/* Tomorrow: today's three accounts hold nothing that counts. */
	tt_budget_tick(b, tomorrow);
	tt_budget_stats(b, &st);
	assert_int_equal(st.accounts, 0);
	assert_int_equal(st.accounts_expired, 3);
	assert_int_equal(tt_budget_verdict(b, &k, tomorrow, why, sizeof(why)), 0);
	assert_true(lease_calls(b, "l2", 7, "d", NULL, 1, tomorrow).allow);
	tt_budget_free(b);
}

static void test_task_accounts_expire_when_idle(void **state)
{
	tt_budget *b = make("{\"budgets\": [{\"name\": \"life\", \"scope\": \"*\", \"limit\": "
			    "{\"calls\": 5}, \"window\": \"task\", \"action\": \"deny\"}], "
			    "\"leases\": {\"task_idle_s\": 60, \"ttl_s\": 10}}", NULL);
	int64_t now = at(2026, 6, 10, 12, 0, 0);
	struct tt_budget_stats st;

	(void)state;
	call_at(b, now, now, "a");
	assert_true(lease_calls(b, "l1", 7, "b", NULL, 1, now).allow);
	/* 59 s idle: both kept (b's lease ended at 10 s, its account stays). */
	tt_budget_tick(b, now + 59 * US);
	tt_budget_stats(b, &st);
	assert_int_equal(st.accounts, 2);
	assert_int_equal(st.leases, 0);
	assert_int_equal(st.leases_expired, 1);
	tt_budget_tick(b, now + 61 * US);
	tt_budget_stats(b, &st);
	assert_int_equal(st.accounts, 0);
	assert_int_equal(st.accounts_expired, 2);
	tt_budget_free(b);
}

static void test_lease_flood_under_no_rule(void **state)
{
	/* Issue 14 #6: 10,000 keep-alives (calls: 0) for tasks under no rule
	 * filled the lease table, and every new lease was refused.  Keys under
	 * no deny rule hold nothing and take no slot. */
	tt_budget *b = make("{\"budgets\": [{\"name\": \"acme\", \"scope\": {\"tenant\": "
			    "\"acme\"}, \"limit\": {\"calls\": 5}, \"window\": \"task\", "
			    "\"action\": \"deny\"}]}", NULL);
	int64_t now = at(2026, 6, 10, 12, 0, 0);
	char id[32];
	struct tt_lease_ans a;

	(void)state;
	for (int i = 0; i < 20000; i++) {
		snprintf(id, sizeof(id), "flood-%d", i);
		a = lease_calls(b, id, 1000 + i, id, NULL, i % 2, now);
		assert_true(a.allow);
	}
	a = lease_calls(b, "victim", 1, "job", "acme", 1, now);
	assert_true(a.allow);
	assert_int_equal(a.calls, 1);  /* max(1, 0.25 x 5 = 1.25), whole calls */
	tt_budget_free(b);
}

static void test_lease_table_full_evicts(void **state)
{
	/* 4 lease slots, 10 processes each needing 1 call of a 10-call budget:
	 * all fit (evicting the least recently renewed), none more - the evicted
	 * holds keep counting until their TTL would have ended. */
	tt_budget *b = make("{\"budgets\": [{\"name\": \"acme\", \"scope\": {\"tenant\": "
			    "\"acme\"}, \"limit\": {\"calls\": 10}, \"window\": \"task\", "
			    "\"action\": \"deny\"}], \"leases\": {\"max_leases\": 4, "
			    "\"fraction\": 0.01, \"ttl_s\": 10}}", NULL);
	int64_t now = at(2026, 6, 10, 12, 0, 0);
	struct tt_budget_stats st;
	struct tt_lease_ans a;
	char id[16];

	(void)state;
	for (int i = 0; i < 10; i++) {
		snprintf(id, sizeof(id), "p%d", i);
		a = lease_calls(b, id, 100 + i, "job", "acme", 1, now + i);
		assert_true(a.allow);
		assert_int_equal(a.calls, 1);
	}
	tt_budget_stats(b, &st);
	assert_int_equal(st.leases, 4);
	assert_int_equal(st.max_leases, 4);
	assert_int_equal(st.leases_evicted, 6);
	assert_false(lease_calls(b, "p10", 110, "job", "acme", 1, now + 20).allow);
	/* An evicted lease that comes back gets a new slot, not the old hold. */
	assert_false(lease_calls(b, "p0", 100, "job", "acme", 1, now + 21).allow);
	/* 10 s on, every hold has ended: the budget is whole again. */
	a = lease_calls(b, "p11", 111, "job", "acme", 1, now + 10 * US + 30);
	assert_true(a.allow);
	tt_budget_free(b);
}

static void test_exhausted_alert_on_denial(void **state)
{
	/* Issue 14 #13: leases stop spending before 100%, so a deny rule's 100%
	 * alert never fired.  A denied call raises it, once per window. */
	struct seen s;
	tt_budget *b = make("{\"budgets\": [{\"name\": \"cap\", \"scope\": \"*\", \"limit\": "
			    "{\"calls\": 4}, \"window\": \"day\", \"alert_at\": [50, 100], "
			    "\"action\": \"deny\"}], \"leases\": {\"fraction\": 0.01}}", &s);
	int64_t now = at(2026, 6, 10, 12, 0, 0), next = at(2026, 6, 11, 12, 0, 0);

	(void)state;
	call_at(b, now, now, "t");
	call_at(b, now, now, "t");                             /* 2 of 4: 50% */
	assert_int_equal(s.n, 1);
	assert_true(lease_calls(b, "l1", 2, "t", NULL, 1, now).allow);   /* holds 1 */
	assert_true(lease_calls(b, "l2", 3, "t", NULL, 1, now).allow);   /* holds 1 */
	assert_int_equal(s.n, 1);
	assert_false(lease_calls(b, "l3", 4, "t", NULL, 1, now).allow);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.a[1].threshold, 100);
	assert_string_equal(s.a[1].state, "firing");
	assert_string_equal(s.a[1].window, "2026-06-10");
	assert_int_equal(s.a[1].calls, 4);  /* 2 settled + 2 held */
	assert_non_null(strstr(s.a[1].message, "denied"));
	assert_false(lease_calls(b, "l4", 5, "t", NULL, 1, now + US).allow);
	assert_int_equal(s.n, 2);           /* once per window */
	/* The next day: resolved, and a new denial alerts again. */
	tt_budget_tick(b, next);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.a[2].state, "resolved");
	for (int i = 0; i < 4; i++)
		call_at(b, next, next, "t");  /* 50%, then 100% by records: the usual alerts */
	assert_int_equal(s.n, 5);
	assert_int_equal(s.a[4].threshold, 100);
	assert_string_equal(s.a[4].window, "2026-06-11");
	assert_false(lease_calls(b, "l5", 6, "t", NULL, 1, next).allow);
	assert_int_equal(s.n, 5);           /* already raised in this window */
	tt_budget_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_window_ids),
		cmocka_unit_test(test_day_window_resets_at_utc_midnight),
		cmocka_unit_test(test_month_window_december_to_january),
		cmocka_unit_test(test_rolling_window_edges),
		cmocka_unit_test(test_task_lifetime_and_scopes),
		cmocka_unit_test(test_lease_reserve_and_settle),
		cmocka_unit_test(test_unpriced_model_token_limit),
		cmocka_unit_test(test_thresholds_once_each),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_verdict),
		cmocka_unit_test(test_scope_given_twice),
		cmocka_unit_test(test_detectors),
		cmocka_unit_test(test_future_ts_day_window),
		cmocka_unit_test(test_future_ts_rolling_window),
		cmocka_unit_test(test_future_ts_replay),
		cmocka_unit_test(test_many_tasks_still_counted),
		cmocka_unit_test(test_accounts_full_never_allow),
		cmocka_unit_test(test_task_accounts_expire_when_idle),
		cmocka_unit_test(test_lease_flood_under_no_rule),
		cmocka_unit_test(test_lease_table_full_evicts),
		cmocka_unit_test(test_exhausted_alert_on_denial),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
