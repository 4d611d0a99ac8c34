/*
 * config.h - tokentapd's JSON configuration (--config PATH).
 *
 *	{
 *	  "prices_replace": false,        drop the built-in table first
 *	  "prices_file": "litellm.json",  tokentap or LiteLLM format; relative
 *	                                  to the config file's folder
 *	  "prices": { ... }               tokentap or LiteLLM format, inline
 *	  "budgets": [...], "leases": {...}, "detectors": {...}, "alerts": {...},
 *	  "metrics": {"max_series": 10000, "series_idle_s": 86400}
 *	}
 *
 * Every key is checked when the daemon starts; an error names the key and
 * says why ("prices.models.my-model.input: expected a number ...").
 * Entries from the config beat built-in ones for the same model.
 */
#ifndef TT_COL_CONFIG_H
#define TT_COL_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "prices.h"

#define TT_CONFIG_MAX (64u << 20)  /* config and price files: LiteLLM's is ~1.5 MB */

/*
 * Fill `prices` (an empty table from tt_prices_new()) from the built-in
 * table and the config text (NULL: built-in only), then tt_prices_finish()
 * it.  base_dir resolves a relative "prices_file" (NULL: the current
 * folder).  Returns 0, TT_EINVAL with the reason in err, TT_EIO when a
 * file cannot be read (err says which), or TT_ENOMEM.
 */
int tt_config_apply(tt_prices *prices, const char *text, size_t len, const char *base_dir,
		    char *err, size_t errlen);

/* Read path (at most TT_CONFIG_MAX bytes) and tt_config_apply() it. */
int tt_config_load(tt_prices *prices, const char *path, char *err, size_t errlen);

/*
 * The policy sections of a config text ("budgets", "leases", "detectors",
 * "alerts"; see budget.h, detect.h, alert.h) as one cJSON object the
 * caller frees with cJSON_Delete (sections absent from the text are
 * absent from it).  tt_config_apply() leaves them to their modules.
 * Returns 0, TT_EINVAL (not a JSON object) or TT_ENOMEM.
 */
int tt_config_policy(const char *text, size_t len, cJSON **out);

/*
 * The "metrics" section: the bounds of GET /metrics (metrics.h).
 * max_series: label sets kept, 1 to 1,000,000; series_idle_s: a series
 * without a record this long expires, 0 (never) or 60 to 31,536,000.
 */
#define TT_CONFIG_METRICS_MAX_SERIES 10000
#define TT_CONFIG_METRICS_IDLE_S 86400
struct tt_config_metrics {
	size_t max_series;
	int64_t series_idle_s;
};

/*
 * The "metrics" section of the last tt_config_apply() (the defaults above
 * before one, or when its text had none): tt_metrics_new() takes it.  Not
 * thread-safe against tt_config_apply(): both run at start.
 */
void tt_config_metrics(struct tt_config_metrics *out);

/* Read a whole file into a NUL-terminated malloc'd buffer (caller frees). */
int tt_config_read_file(const char *path, size_t max, char **out, size_t *len);

#endif
