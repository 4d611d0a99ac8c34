/*
 * test_col_config.c - tokentapd's configuration (collector/config.c):
 * every error names the key and says why; overrides beat the built-in
 * table; prices_replace drops it; prices_file reads LiteLLM's format.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../collector/config.h"
#include "tokentap/error.h"

static int apply(const char *json, tt_prices **out, char *err, size_t errlen)
{
	tt_prices *p = tt_prices_new();
	int rc;

	assert_non_null(p);
	rc = tt_config_apply(p, json, strlen(json), NULL, err, errlen);
	if (out)
		*out = p;
	else
		tt_prices_free(p);
	return rc;
}

struct bad {
	const char *json, *error;
};

static void test_errors_name_the_key(void **state)
{
	static const struct bad cases[] = {
		{"{", "config: not valid JSON"},
		{"[]", "config: expected a JSON object"},
		{"{\"price\": {}}", "price: unknown key (known: prices, prices_file, prices_replace, budgets, leases, detectors, alerts, metrics)"},
		{"{\"budget\": {}}", "budget: unknown key (known: prices, prices_file, prices_replace, budgets, leases, detectors, alerts, metrics)"},
		{"{\"prices_replace\": 1}", "prices_replace: expected true or false"},
		{"{\"prices_file\": 3}", "prices_file: expected a file path"},
		{"{\"prices\": 3}", "prices: expected an object"},
		{"{\"prices\": {\"models\": {\"m\": {\"input\": \"1\", \"output\": 2}}}}",
		 "prices.models.m.input: expected a number of USD per 1M tokens, 0 to 1000000"},
		{"{\"prices\": {\"models\": {\"m\": {\"input\": -1, \"output\": 2}}}}",
		 "prices.models.m.input: expected a number of USD per 1M tokens, 0 to 1000000"},
		{"{\"prices\": {\"models\": {\"m\": {\"input\": 1}}}}",
		 "prices.models.m: \"input\" and \"output\" prices are required"},
		{"{\"prices\": {\"models\": {\"m\": {\"input\": 1, \"output\": 1, \"cahce_read\": 1}}}}",
		 "prices.models.m.cahce_read: unknown key"},
		{"{\"prices\": {\"models\": {\"m\": {\"input\": 1, \"output\": 1, \"long_context\": "
		 "{\"input\": 2}}}}}",
		 "prices.models.m.long_context: \"threshold\" (input tokens, a positive integer) is required"},
		{"{\"prices\": {\"providers\": {\"acme\": {\"modles\": {}}}}}",
		 "prices.providers.acme.modles: unknown key"},
		{"{\"prices\": {\"providers\": {\"acme\": {}}}}",
		 "prices.providers.acme: \"models\" is required"},
		{"{\"prices\": {\"gpt-x\": {\"input\": 1}}}",
		 "prices: expected \"providers\", \"models\" or LiteLLM-style entries with "
		 "\"input_cost_per_token\""},
		{"{\"prices_file\": \"/nonexistent/tokentap-prices.json\"}",
		 "prices_file: cannot read /nonexistent/tokentap-prices.json: No such file or directory"},
	};
	char err[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = apply(cases[i].json, NULL, err, sizeof(err));

		if (rc == 0 || strcmp(err, cases[i].error) != 0)
			fail_msg("case %zu %s: rc %d, error '%s', want '%s'", i, cases[i].json, rc, err,
				 cases[i].error);
	}
}

static double cost(tt_prices *p, const char *prov, const char *model, int64_t in, int64_t out)
{
	const struct tt_price *pr = tt_prices_lookup(p, prov, strlen(prov), model, strlen(model));
	double c, s;

	if (!pr)
		return -1;
	tt_price_cost(pr, in, out, 0, 0, &c, &s);
	return c;
}

static void test_override_and_extend(void **state)
{
	tt_prices *p;
	char err[512];

	/* gpt-4o overridden for any provider; a new model added for "acme". */
	assert_int_equal(apply("{\"prices\": {\"models\": {\"gpt-4o\": {\"input\": 1, \"output\": 2}},"
			       " \"providers\": {\"acme\": {\"source\": \"contract\", \"models\":"
			       " {\"acme-large\": {\"input\": 4, \"output\": 8}}}}}}",
			       &p, err, sizeof(err)), 0);
	assert_true(cost(p, "openai", "gpt-4o-2024-08-06", 1000000, 1000000) == 3.0);
	assert_true(cost(p, "acme", "acme-large", 1000000, 0) == 4.0);
	/* the rest of the built-in table is still there: gpt-4o-mini $0.15 in */
	assert_true(cost(p, "openai", "gpt-4o-mini", 1000000, 0) == 0.15);
	tt_prices_free(p);

	assert_int_equal(apply("{\"prices_replace\": true, \"prices\": {\"models\": {\"only\": "
			       "{\"input\": 1, \"output\": 1}}}}", &p, err, sizeof(err)), 0);
	assert_int_equal(tt_prices_count(p), 1);
	assert_true(cost(p, "openai", "gpt-4o-mini", 1000, 0) < 0);
	tt_prices_free(p);
}

static void test_prices_file_litellm(void **state)
{
	char dir[] = "/tmp/tt-config-XXXXXX", path[128], cfg[256], err[512];
	tt_prices *p = tt_prices_new();
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/litellm.json", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("{\"gpt-4o\": {\"input_cost_per_token\": 5e-06, \"output_cost_per_token\": 1.5e-05,"
	      " \"litellm_provider\": \"openai\"}}", f);
	fclose(f);
	snprintf(cfg, sizeof(cfg), "%s/tokentapd.json", dir);
	f = fopen(cfg, "w");
	assert_non_null(f);
	fputs("{\"prices_file\": \"litellm.json\"}", f);  /* relative to the config's folder */
	fclose(f);
	assert_int_equal(tt_config_load(p, cfg, err, sizeof(err)), 0);
	/* the file's price beats the built-in $2.50: 1M in at $5 + 1M out at $15 */
	assert_true(cost(p, "openai", "gpt-4o", 1000000, 1000000) == 20.0);
	tt_prices_free(p);
	unlink(path);
	unlink(cfg);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_errors_name_the_key),
		cmocka_unit_test(test_override_and_extend),
		cmocka_unit_test(test_prices_file_litellm),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
