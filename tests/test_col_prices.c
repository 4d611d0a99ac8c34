/*
 * test_col_prices.c - model-name matching and cost (collector/prices.c).
 *
 * Expected costs are computed here, by hand or by this file's own formula
 * over data/prices.json read with cJSON, never taken from the code under
 * test.  The fixture test prices records shaped like the shared wire
 * corpus's figures (MANIFEST.tsv); it skips when the corpus is absent.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../collector/config.h"
#include "../collector/prices.h"
#include "tokentap/error.h"

static tt_prices *builtin(void)
{
	tt_prices *p = tt_prices_new();
	char err[256];

	assert_non_null(p);
	if (tt_config_apply(p, NULL, 0, NULL, err, sizeof(err)))
		fail_msg("built-in prices: %s", err);
	return p;
}

static void assert_close(double got, double want)
{
	if (fabs(got - want) > 1e-12 + 1e-9 * fabs(want))
		fail_msg("got %.15g, want %.15g", got, want);
}

static double cost_of(const tt_prices *p, const char *prov, const char *model, int64_t in,
		      int64_t out, int64_t cr, int64_t cw, double *savings)
{
	const struct tt_price *pr = tt_prices_lookup(p, prov, prov ? strlen(prov) : 0, model,
						     strlen(model));
	double cost, sv;

	if (!pr)
		fail_msg("%s is not priced", model);
	tt_price_cost(pr, in, out, cr, cw, &cost, &sv);
	if (savings)
		*savings = sv;
	return cost;
}

static void test_hand_computed(void **state)
{
	tt_prices *p = builtin();
	double sv;

	/* gpt-4o-mini $0.15 / $0.075 cached / $0.60 per 1M; the corpus's cached call:
	 * 125 uncached * 0.15 + 1024 * 0.075 + 353 * 0.60 = 18.75 + 76.8 + 211.8 = 307.35 µ$ */
	assert_close(cost_of(p, "openai", "gpt-4o-mini-2024-07-18", 1149, 353, 1024, 0, &sv),
		     307.35e-6);
	assert_close(sv, 1024 * (0.15 - 0.075) / 1e6);  /* 76.8 µ$ saved */
	/* claude-3-5-sonnet $3 / $3.75 write / $15: 4 + 1163 written, 187 out:
	 * 12 + 4361.25 + 2805 = 7178.25 µ$ */
	assert_close(cost_of(p, "anthropic", "claude-3-5-sonnet-20240620", 1167, 187, 0, 1163, &sv),
		     7178.25e-6);
	assert_close(sv, 0);
	/* The cache read: 4 + 1163 read at $0.30: 12 + 348.9 + 202 * 15 = 3390.9 µ$ */
	assert_close(cost_of(p, "anthropic", "claude-3-5-sonnet-20240620", 1167, 202, 1163, 0, NULL),
		     3390.9e-6);
	/* Reasoning is inside output: gpt-5-nano 11 in, 228 out at $0.05 / $0.40 = 91.75 µ$ */
	assert_close(cost_of(p, "openai", "gpt-5-nano", 11, 228, 0, 0, NULL), 91.75e-6);
	/* Embeddings: 8 tokens of ada-002 at $0.10 = 0.8 µ$ */
	assert_close(cost_of(p, "openai", "text-embedding-ada-002", 8, 0, 0, 0, NULL), 0.8e-6);
	tt_prices_free(p);
}

static void test_long_context(void **state)
{
	tt_prices *p = builtin();

	/* gemini-2.5-pro at exactly 200k input: base tier
	 * 150000 * 1.25 + 50000 * 0.125 + 1000 * 10 = 203750 µ$ */
	assert_close(cost_of(p, "gemini", "gemini-2.5-pro", 200000, 1000, 50000, 0, NULL), 0.20375);
	/* one token more: the whole call at the >200k tier ($2.50 / $0.25 / $15)
	 * 150001 * 2.5 + 50000 * 0.25 + 1000 * 15 = 402502.5 µ$ */
	assert_close(cost_of(p, "gemini", "gemini-2.5-pro", 200001, 1000, 50000, 0, NULL),
		     0.4025025);
	/* claude-sonnet-4-5 above 200k: $6 in, $22.50 out, $7.50 write, $0.60 read
	 * 240000 * 6 + 10000 * 0.6 + 50000 * 7.5 + 2000 * 22.5 = 1866000 µ$ */
	assert_close(cost_of(p, "anthropic", "claude-sonnet-4-5-20250929", 300000, 2000, 10000,
			     50000, NULL), 1.866);
	tt_prices_free(p);
}

struct match_case {
	const char *provider, *model, *want;  /* want: the table entry, or NULL */
};

static void test_matching(void **state)
{
	static const struct match_case cases[] = {
		{"openai", "gpt-4o-mini", "gpt-4o-mini"},
		{"openai", "gpt-4o-mini-2024-07-18", "gpt-4o-mini"},
		{"openai", "gpt-4o-2024-08-06", "gpt-4o"},
		{"openai", "GPT-4o", "gpt-4o"},
		{"openai", "gpt-4.1-nano-2025-04-14", "gpt-4.1-nano"},
		{"openai", "gpt-3.5-turbo-0125", "gpt-3.5-turbo"},
		{"openai", "o3-mini", "o3-mini"},
		{"openai", "o3-2025-04-16", "o3"},
		{"openrouter", "openai/o3", "o3"},
		{"openai_compatible", "openai/gpt-4o", "gpt-4o"},
		{"anthropic", "claude-3-5-sonnet-20240620", "claude-3-5-sonnet"},
		{"anthropic", "claude-3-7-sonnet-latest", "claude-3-7-sonnet"},
		{"anthropic", "claude-sonnet-4-0", "claude-sonnet-4"},
		{"anthropic", "claude-haiku-4-5-20251001", "claude-haiku-4-5"},
		{"anthropic", "claude-opus-4-1-20250805", "claude-opus-4-1"},
		{"gemini", "claude-3-5-sonnet@20240620", "claude-3-5-sonnet"},
		{"bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"},
		{"bedrock", "anthropic.claude-3-sonnet-20240229-v1:0", "claude-3-sonnet"},
		{"gemini", "models/gemini-2.5-flash", "gemini-2.5-flash"},
		{"gemini", "gemini-2.5-flash-preview-05-20", "gemini-2.5-flash"},
		{"gemini", "gemini-2.0-flash-001", "gemini-2.0-flash"},
		{"mistral", "mistral-small-2503", "mistral-small-latest"},
		{"groq", "llama3-8b-8192", "llama3-8b-8192"},
		{"deepseek", "deepseek-chat", "deepseek-chat"},
		{"openai", "gpt-4o-mini-tts", NULL},
		{"anthropic", "claude-sonnet-4-6", NULL},
		{"ollama", "llama3", NULL},
		{"openai", "", NULL},
	};
	tt_prices *p = builtin();

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct match_case *c = &cases[i];
		const struct tt_price *pr = tt_prices_lookup(p, c->provider, strlen(c->provider),
							     c->model, strlen(c->model));

		if (!c->want && pr)
			fail_msg("%s matched %s, want unpriced", c->model, pr->model);
		if (c->want && (!pr || strcmp(pr->model, c->want) != 0))
			fail_msg("%s matched %s, want %s", c->model, pr ? pr->model : "nothing",
				 c->want);
	}
	tt_prices_free(p);
}

static void test_apply_record(void **state)
{
	/* Unpriced is never $0; a failed call without usage costs nothing. */
	tt_prices *p = builtin();
	tt_buf arena;
	tt_rec r;
	char err[128];
	const char *o;

	tt_buf_init(&arena, 1 << 16);
	o = "{\"id\":\"0123456789abcdef0123456789abcdef\",\"model\":\"no-such-model\","
			"\"input_tokens\":100,\"output_tokens\":10}";
	assert_int_equal(tt_rec_parse(o, strlen(o), &arena, &r, err, sizeof(err)), 0);
	tt_prices_apply(p, &r, &arena);
	assert_int_equal(r.priced, 0);

	o = "{\"id\":\"0123456789abcdef0123456789abcdef\",\"model\":null,"
			"\"request_model\":\"gpt-4o\",\"input_tokens\":1000,\"output_tokens\":100}";
	assert_int_equal(tt_rec_parse(o, strlen(o), &arena, &r, err, sizeof(err)), 0);
	tt_prices_apply(p, &r, &arena);
	assert_int_equal(r.priced, 1);
	assert_close(r.cost_usd, (1000 * 2.5 + 100 * 10.0) / 1e6);

	o = "{\"id\":\"0123456789abcdef0123456789abcdef\",\"model\":\"gpt-4o\","
			"\"status\":429}";
	assert_int_equal(tt_rec_parse(o, strlen(o), &arena, &r, err, sizeof(err)), 0);
	tt_prices_apply(p, &r, &arena);
	assert_int_equal(r.priced, 1);
	assert_close(r.cost_usd, 0);

	o = "{\"id\":\"0123456789abcdef0123456789abcdef\",\"model\":\"gpt-4o\","
			"\"status\":200,\"usage_source\":\"none\"}";
	assert_int_equal(tt_rec_parse(o, strlen(o), &arena, &r, err, sizeof(err)), 0);
	tt_prices_apply(p, &r, &arena);
	assert_int_equal(r.priced, 0);
	tt_buf_free(&arena);
	tt_prices_free(p);
}

static void test_litellm_format(void **state)
{
	const char *json =
		"{\"sample_spec\": {\"max_tokens\": \"set to max\", \"litellm_provider\": \"x\"},"
		" \"my-model\": {\"input_cost_per_token\": 1e-06, \"output_cost_per_token\": 2e-06,"
		"   \"cache_read_input_token_cost\": 1e-07, \"cache_creation_input_token_cost\": 1.25e-06,"
		"   \"input_cost_per_token_above_200k_tokens\": 2e-06,"
		"   \"output_cost_per_token_above_200k_tokens\": 3e-06, \"litellm_provider\": \"openai\","
		"   \"mode\": \"chat\", \"supports_vision\": true},"
		" \"groq/llama-x\": {\"input_cost_per_token\": 5e-08, \"output_cost_per_token\": 8e-08,"
		"   \"litellm_provider\": \"groq\"},"
		" \"dall-e-3\": {\"output_cost_per_image\": 0.04, \"litellm_provider\": \"openai\"}}";
	tt_prices *p = tt_prices_new();
	cJSON *root = cJSON_Parse(json);
	const struct tt_price *pr;
	char err[256];

	assert_non_null(root);
	assert_int_equal(tt_prices_add_json(p, root, 1, "prices", err, sizeof(err)), 0);
	cJSON_Delete(root);
	tt_prices_finish(p);
	assert_int_equal(tt_prices_count(p), 2);  /* sample_spec and dall-e-3 skipped */
	/* 1000 in (100 read, 100 written), 10 out: 800 * 1 + 100 * 0.1 + 100 * 1.25 + 10 * 2 = 955 µ$ */
	assert_close(cost_of(p, "openai", "my-model", 1000, 10, 100, 100, NULL), 955e-6);
	/* above 200k: 300000 * 2 + 10 * 3 = 600030 µ$ (no tier cache prices: base ones) */
	assert_close(cost_of(p, "openai", "my-model", 300000, 10, 0, 0, NULL), 0.60003);
	pr = tt_prices_lookup(p, "groq", 4, "llama-x", 7);
	assert_non_null(pr);
	assert_string_equal(pr->provider, "groq");
	tt_prices_free(p);
}

/* --- the shared corpus ----------------------------------------------------- */

/* This file's own reading of data/prices.json: the entry's price per 1M. */
static int table_price(const cJSON *table, const char *key, int64_t input, const char *what,
		       double *out)
{
	const cJSON *prov, *m = NULL, *lc, *v;

	cJSON_ArrayForEach(prov, cJSON_GetObjectItem(table, "providers")) {
		m = cJSON_GetObjectItem(cJSON_GetObjectItem(prov, "models"), key);
		if (m)
			break;
	}
	if (!m)
		return -1;
	lc = cJSON_GetObjectItem(m, "long_context");
	if (lc && input > (int64_t)cJSON_GetObjectItem(lc, "threshold")->valuedouble &&
	    (v = cJSON_GetObjectItem(lc, what))) {
		*out = v->valuedouble;
		return 0;
	}
	v = cJSON_GetObjectItem(m, what);
	if (!v)
		v = cJSON_GetObjectItem(m, "input");  /* no cache price: billed as input */
	*out = v->valuedouble;
	return 0;
}

/* Which table entry each model of the corpus is billed as (NULL: not in the table). */
static const char *expected_entry(const char *model)
{
	static const char *const map[][2] = {
		{"gpt-4o-mini", "gpt-4o-mini"},
		{"gpt-5-nano", "gpt-5-nano"},
		{"gpt-4.1-nano", "gpt-4.1-nano"},
		{"gpt-5", "gpt-5"},
		{"gpt-3.5-turbo", "gpt-3.5-turbo"},
		{"text-embedding-ada-002", "text-embedding-ada-002"},
		{"claude-3-opus-20240229", "claude-3-opus"},
		{"claude-3-5-sonnet-20240620", "claude-3-5-sonnet"},
		{"claude-3-haiku-20240307", "claude-3-haiku"},
		{"claude-sonnet-4-0", "claude-sonnet-4"},
		{"gemini-2.5-flash", "gemini-2.5-flash"},
		{"gemini-2.0-flash", "gemini-2.0-flash"},
		{"deepseek-chat", "deepseek-chat"},
		{"mistral-tiny", "mistral-tiny"},
		{"mistral-small-latest", "mistral-small-latest"},
		{"mistral-embed", "mistral-embed"},
		{"llama3-8b-8192", "llama3-8b-8192"},
		{"openai/o3", "o3"},
		{"anthropic.claude-3-sonnet-20240229-v1:0", "claude-3-sonnet"},
		{"us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"},
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(map[i][0], model) == 0)
			return map[i][1];
	return NULL;
}

static int64_t field(char **cols, int i)
{
	char *end;
	long long v;

	if (!cols[i] || !cols[i][0] || cols[i][0] < '0' || cols[i][0] > '9')
		return -1;
	v = strtoll(cols[i], &end, 10);
	return *end ? -1 : v;
}

/* The model a corpus row names: request_summary.model, else from its URI. */
static void row_model(const char *summary, char *out, size_t cap)
{
	cJSON *s = cJSON_Parse(summary);
	const cJSON *m = cJSON_GetObjectItem(s, "model"), *u = cJSON_GetObjectItem(s, "uri");

	out[0] = '\0';
	if (cJSON_IsString(m)) {
		snprintf(out, cap, "%s", m->valuestring);
	} else if (cJSON_IsString(u)) {
		const char *p = strstr(u->valuestring, "/models/");
		size_t n = 0;

		if (p)
			p += 8;
		else if ((p = strstr(u->valuestring, "/model/")))
			p += 7;
		if (p) {
			for (; *p && *p != '/' && *p != ':' && n + 1 < cap; p++) {
				if (strncmp(p, "%3A", 3) == 0) {
					out[n++] = ':';
					p += 2;
				} else {
					out[n++] = *p;
				}
			}
			out[n] = '\0';
		}
	}
	cJSON_Delete(s);
}

static void test_fixture_costs(void **state)
{
	const char *dir = getenv("TT_WIRE_DIR") ? getenv("TT_WIRE_DIR") : "../shared/fixtures/wire";
	char path[1024], line[8192], *text;
	size_t len;
	FILE *f;
	cJSON *table;
	tt_prices *p;
	int priced = 0, unpriced = 0;

	snprintf(path, sizeof(path), "%s/MANIFEST.tsv", dir);
	f = fopen(path, "r");
	if (!f) {
		printf("skip: the shared wire corpus is not at %s (set TT_WIRE_DIR)\n", dir);
		skip();
	}
	assert_int_equal(tt_config_read_file("data/prices.json", 1 << 20, &text, &len), 0);
	table = cJSON_Parse(text);
	free(text);
	assert_non_null(table);
	p = builtin();
	assert_non_null(fgets(line, sizeof(line), f));  /* header */
	while (fgets(line, sizeof(line), f)) {
		char *cols[32] = {0}, *save = NULL, *tok, model[256];
		int n = 0;
		int64_t in, out, cr, cw, rs;
		const char *prov, *entry;
		const struct tt_price *pr;

		line[strcspn(line, "\n")] = '\0';
		for (tok = strtok_r(line, "\t", &save); tok && n < 32; tok = strtok_r(NULL, "\t", &save))
			cols[n++] = tok;
		if (n < 21)
			continue;
		/* columns: 1 provider, 7 prompt, 8 completion, 9 cache read, 10 cache write,
		 * 11 reasoning, 20 request_summary */
		prov = cols[1];
		in = field(cols, 7);
		out = field(cols, 8);
		cr = field(cols, 9);
		cw = field(cols, 10);
		rs = field(cols, 11);
		if (in < 0 && out < 0)
			continue;  /* an error body: no usage */
		row_model(cols[20], model, sizeof(model));
		if (!model[0])
			continue;
		in = in < 0 ? 0 : in;
		out = out < 0 ? 0 : out;
		cr = cr < 0 ? 0 : cr;
		cw = cw < 0 ? 0 : cw;
		/* DESIGN.md's normalisation: Anthropic and Bedrock count cache tokens
		 * beside input; Gemini counts thoughts beside candidates. */
		if (strcmp(prov, "anthropic") == 0 || strcmp(prov, "bedrock") == 0)
			in += cr + cw;
		if (strncmp(prov, "gemini", 6) == 0 && rs > 0)
			out += rs;
		entry = expected_entry(model);
		pr = tt_prices_lookup(p, prov, strlen(prov), model, strlen(model));
		if (!entry) {
			if (pr)
				fail_msg("%s: %s priced as %s, want unpriced", cols[0], model, pr->model);
			unpriced++;
			continue;
		}
		if (!pr)
			fail_msg("%s: %s unpriced, want %s", cols[0], model, entry);
		{
			double pin, pout, pcr, pcw, want, got, sv;

			assert_int_equal(table_price(table, entry, in, "input", &pin), 0);
			assert_int_equal(table_price(table, entry, in, "output", &pout), 0);
			assert_int_equal(table_price(table, entry, in, "cache_read", &pcr), 0);
			assert_int_equal(table_price(table, entry, in, "cache_write", &pcw), 0);
			want = ((double)(in - cr - cw) * pin + (double)cr * pcr + (double)cw * pcw +
				(double)out * pout) / 1e6;
			tt_price_cost(pr, in, out, cr, cw, &got, &sv);
			printf("%-60s %-45s in %6lld out %5lld cr %5lld cw %5lld  $%.8f\n", cols[0],
			       model, (long long)in, (long long)out, (long long)cr, (long long)cw, got);
			assert_close(got, want);
			assert_true(want > 0);
		}
		priced++;
	}
	fclose(f);
	printf("%d corpus calls priced, %d unpriced\n", priced, unpriced);
	assert_true(priced >= 20);
	cJSON_Delete(table);
	tt_prices_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hand_computed),
		cmocka_unit_test(test_long_context),
		cmocka_unit_test(test_matching),
		cmocka_unit_test(test_apply_record),
		cmocka_unit_test(test_litellm_format),
		cmocka_unit_test(test_fixture_costs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
