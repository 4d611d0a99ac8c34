/*
 * fuzz_col_config.c - libFuzzer target for tokentapd's configuration and
 * price-table parser (both formats), then a lookup and a cost with the
 * resulting table: no crash, no leak, no negative or NaN cost.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	tt_prices *p = tt_prices_new();
	char err[512];
	const struct tt_price *pr;
	double cost, savings;

	if (!p)
		return 0;
	/* No prices_file from fuzz input: the file system is not under test. */
	if (size > 0 && !memmem(data, size, "prices_file", 11) &&
	    tt_config_apply(p, (const char *)data, size, NULL, err, sizeof(err)) == 0) {
		pr = tt_prices_lookup(p, "openai", 6, "gpt-4o-mini-2024-07-18", 22);
		if (pr) {
			tt_price_cost(pr, 300000, 1000, 1000, 500, &cost, &savings);
			if (!(cost >= 0) || isnan(savings))
				abort();
		}
	}
	tt_prices_free(p);
	return 0;
}
