/*
 * prices.h - the price table, model-name matching and the cost of a record.
 *
 * The table starts from data/prices.json, embedded in the binary at build
 * time, and can be replaced or extended from the config (config.h), either
 * in tokentap's own format or with LiteLLM's model_prices_and_context_window
 * field names.  After startup the table is read-only and may be used from
 * any number of threads.
 *
 * Cost of one record, prices per token (DESIGN.md's normalised counts):
 *
 *	(input - cache_read - cache_write) * input_price
 *	  + cache_read * cache_read_price + cache_write * cache_write_price
 *	  + output * output_price              (reasoning is inside output)
 *
 * with the long-context prices for the whole request when input_tokens is
 * above the model's threshold.  A missing cache price means the provider
 * bills those tokens at the input price.  An unknown model is unpriced
 * (cost null), never $0.
 */
#ifndef TT_COL_PRICES_H
#define TT_COL_PRICES_H

#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#include "rec.h"

/* One tier of prices, USD per token; NAN when absent. */
struct tt_price_tier {
	double input, output, cache_read, cache_write, cache_write_1h;
};

struct tt_price {
	char *provider;      /* "" when the entry applies to any provider */
	char *model;         /* lower case */
	int priority;        /* config entries (1) beat built-in ones (0) */
	struct tt_price_tier base;
	double batch_input, batch_output;   /* NAN when absent */
	int64_t lc_threshold;               /* 0: no long-context tier */
	struct tt_price_tier lc;
};

typedef struct tt_prices tt_prices;

/* An empty table. Returns NULL when out of memory. Free with tt_prices_free(). */
tt_prices *tt_prices_new(void);
void tt_prices_free(tt_prices *p);          /* accepts NULL */
void tt_prices_clear(tt_prices *p);
size_t tt_prices_count(const tt_prices *p);

/* The data/prices.json text compiled into the binary (NUL-terminated). */
const char *tt_prices_builtin_json(size_t *len);

/*
 * Add the prices in `root`, in either format (auto-detected):
 *   tokentap: {"providers": {"openai": {"models": {"gpt-4o": {"input": 2.5,
 *             "output": 10, ...}}}}} or just {"models": {...}} (any provider);
 *             prices in USD per 1M tokens;
 *   LiteLLM:  {"gpt-4o": {"input_cost_per_token": 2.5e-06, ...}, ...}.
 * An entry with the same provider and model as an existing one replaces it.
 * `where` names root in error messages ("prices").  On a bad entry returns
 * TT_EINVAL with "where.path.key: why" in err; entries added before the
 * error stay.  LiteLLM entries without a numeric input/output cost are
 * skipped, as its file also lists image and audio models.
 */
int tt_prices_add_json(tt_prices *p, const cJSON *root, int priority,
		       const char *where, char *err, size_t errlen);

/* Sort for lookups: call after the last add, before any lookup. */
void tt_prices_finish(tt_prices *p);

/*
 * The entry for `model` (as a record names it) from `provider` (may be
 * NULL), trying the exact name, then without provider/region prefixes
 * ("openai/", "models/", "us.anthropic.") and version suffixes
 * ("-2024-07-18", "-20240620", "@20240620", "-v1:0", "-latest").
 * Returns NULL when nothing matches.  The pointer lives as long as p.
 */
const struct tt_price *tt_prices_lookup(const tt_prices *p, const char *provider,
					size_t provider_len, const char *model,
					size_t model_len);

/*
 * Cost in USD of a call with these counts (negative = absent, taken as 0).
 * Writes the cost and the cache savings (cache_read tokens at the input
 * price minus what they cost).  pr must not be NULL.
 */
void tt_price_cost(const struct tt_price *pr, int64_t input, int64_t output,
		   int64_t cache_read, int64_t cache_write, double *cost,
		   double *savings);

/*
 * Price one record in place: sets r->priced, r->cost_usd and
 * r->cache_savings_usd.  A record without any token count is priced $0
 * when its status is an error (>= 400; providers do not bill failed calls)
 * and left unpriced otherwise (its usage is unknown).  The model is the
 * record's `model`, else its `request_model`.
 */
void tt_prices_apply(const tt_prices *p, tt_rec *r, const tt_buf *arena);

#endif
