/*
 * config.h - tokentapd's JSON configuration (--config PATH).
 *
 *	{
 *	  "prices_replace": false,        drop the built-in table first
 *	  "prices_file": "litellm.json",  tokentap or LiteLLM format; relative
 *	                                  to the config file's folder
 *	  "prices": { ... }               tokentap or LiteLLM format, inline
 *	  "budgets": [...], "leases": {...}, "detectors": {...}, "alerts": {...}
 *	}
 *
 * Every key is checked when the daemon starts; an error names the key and
 * says why ("prices.models.my-model.input: expected a number ...").
 * Entries from the config beat built-in ones for the same model.
 */
#ifndef TT_COL_CONFIG_H
#define TT_COL_CONFIG_H

#include <stddef.h>

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

/* Read a whole file into a NUL-terminated malloc'd buffer (caller frees). */
int tt_config_read_file(const char *path, size_t max, char **out, size_t *len);

#endif
