/*
 * fuzz_col_budget.c - libFuzzer target for what reaches the budgets from
 * outside: the "budgets" and "leases" config, then a run of lease requests
 * and settled calls with any keys, sizes and times (clients' clocks are
 * not trusted), ticks between them, and verdicts.
 *
 * Input: a config object on the first line, then one JSON object a line:
 *	{"id": ..., "pid": ..., "task": ..., "need": {...}, ...}   a lease
 *	{"ts": ..., "task": ..., "tokens": ..., "usd": ...}         a call
 *	{"tick": SECONDS}                                           time passes
 * No crash, no leak, no UB; a grant is a number, an allowed lease has no
 * reason.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "budget.h"

static const char *str(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Numbers as the server bounds them (0 .. 1e15), times as sent. */
static double num(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 1e15
		       ? v->valuedouble : 0;
}

static int64_t when(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	if (!cJSON_IsNumber(v) || !(v->valuedouble > -1e17 && v->valuedouble < 1e17))
		return 0;
	return (int64_t)v->valuedouble;
}

static void key_of(const cJSON *o, struct tt_budget_key *k)
{
	static const char *const names[TT_SC_N] = { "task", "tenant", "feature", "pod", "model" };

	for (int i = 0; i < TT_SC_N; i++)
		k->f[i] = str(o, names[i]);
}

static void lease(tt_budget *b, const cJSON *o, int64_t now)
{
	const cJSON *need = cJSON_GetObjectItemCaseSensitive(o, "need");
	const cJSON *rel = cJSON_GetObjectItemCaseSensitive(o, "release");
	struct tt_lease_req q = { 0 };
	struct tt_lease_ans a;

	q.id = str(o, "id");
	if (!q.id || strlen(q.id) > 90)
		return; /* the server refuses these before the budgets */
	q.pid = (int64_t)num(o, "pid");
	key_of(o, &q.key);
	q.need_in = (int64_t)num(need, "input_tokens");
	q.need_out = (int64_t)num(need, "output_tokens");
	q.need_calls = (int64_t)num(need, "calls");
	q.release_usd = num(rel, "usd");
	q.release_tokens = (int64_t)num(rel, "tokens");
	q.release_calls = (int64_t)num(rel, "calls");
	q.price_in = cJSON_GetObjectItemCaseSensitive(o, "price") ? num(o, "price") : -1;
	q.price_out = q.price_in;
	tt_budget_lease(b, &q, now, &a);
	if (isnan(a.usd) || a.ttl_ms < 0 || (a.allow && a.reason[0]))
		abort();
}

static void spend(tt_budget *b, const cJSON *o, int64_t now)
{
	struct tt_budget_event ev = { 0 };

	ev.ts_us = when(o, "ts");
	ev.pid = cJSON_GetObjectItemCaseSensitive(o, "pid") ? (int64_t)num(o, "pid") : -1;
	key_of(o, &ev.key);
	ev.request_model = str(o, "request_model");
	ev.tokens = (int64_t)num(o, "tokens");
	ev.priced = cJSON_GetObjectItemCaseSensitive(o, "usd") != NULL;
	ev.usd = num(o, "usd");
	tt_budget_add(b, &ev, now);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), *line, *save = NULL;
	int64_t now = 1767225600000000; /* 2026-01-01, then moved by ticks */
	tt_budget *b = tt_budget_new();
	cJSON *cfg = NULL;
	char err[512];
	int n = 0;

	if (!text || !b)
		goto out;
	memcpy(text, data, size);
	text[size] = '\0';
	line = strtok_r(text, "\n", &save);
	cfg = line ? cJSON_Parse(line) : NULL;
	if (!cJSON_IsObject(cfg) ||
	    tt_budget_config(b, cJSON_GetObjectItemCaseSensitive(cfg, "budgets"),
			     cJSON_GetObjectItemCaseSensitive(cfg, "leases"), err, sizeof(err)))
		goto out;
	while ((line = strtok_r(NULL, "\n", &save)) && n++ < 256) {
		cJSON *o = cJSON_Parse(line);

		if (cJSON_IsObject(o)) {
			if (cJSON_GetObjectItemCaseSensitive(o, "tick")) {
				now += (int64_t)(num(o, "tick") < 1e9 ? num(o, "tick") : 0) * 1000000;
				tt_budget_tick(b, now);
			} else if (cJSON_GetObjectItemCaseSensitive(o, "id")) {
				lease(b, o, now);
			} else {
				struct tt_budget_key k;
				char reason[384];

				spend(b, o, now);
				key_of(o, &k);
				tt_budget_verdict(b, &k, now, reason, sizeof(reason));
			}
		}
		cJSON_Delete(o);
	}
out:
	cJSON_Delete(cfg);
	tt_budget_free(b);
	free(text);
	return 0;
}
