/* config.c - tokentapd's configuration, see config.h. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokentap/error.h"

int tt_config_read_file(const char *path, size_t max, char **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;

	*out = NULL;
	if (!f)
		return TT_EIO;
	for (;;) {
		size_t got;

		if (cap - n < 65536) {
			size_t ncap = cap ? cap * 2 : 65536 * 2;
			char *nb;

			if (ncap > max + 1)
				ncap = max + 1;
			if (ncap <= n) {
				rc = TT_ETRUNCATED;
				goto out;
			}
			nb = realloc(buf, ncap + 1);
			if (!nb) {
				rc = TT_ENOMEM;
				goto out;
			}
			buf = nb;
			cap = ncap;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (n > max) {
			rc = TT_ETRUNCATED;
			goto out;
		}
		if (got == 0) {
			if (ferror(f))
				rc = TT_EIO;
			break;
		}
	}
out:
	fclose(f);
	if (rc) {
		free(buf);
		return rc;
	}
	if (!buf && !(buf = malloc(1)))
		return TT_ENOMEM;
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

static int add_builtin(tt_prices *prices, char *err, size_t errlen)
{
	size_t len;
	const char *text = tt_prices_builtin_json(&len);
	cJSON *root = cJSON_ParseWithLength(text, len);
	int rc;

	if (!root) {
		snprintf(err, errlen, "built-in prices: not valid JSON");
		return TT_EINVAL;
	}
	rc = tt_prices_add_json(prices, root, 0, "built-in prices", err, errlen);
	cJSON_Delete(root);
	return rc;
}

static int add_file(tt_prices *prices, const char *file, const char *base_dir, char *err,
		    size_t errlen)
{
	char path[4096];
	char *text = NULL;
	size_t len;
	cJSON *root = NULL;
	int rc;

	if (file[0] == '/' || !base_dir || !base_dir[0])
		snprintf(path, sizeof(path), "%s", file);
	else
		snprintf(path, sizeof(path), "%s/%s", base_dir, file);
	rc = tt_config_read_file(path, TT_CONFIG_MAX, &text, &len);
	if (rc) {
		snprintf(err, errlen, "prices_file: cannot read %s: %s", path,
			 rc == TT_ETRUNCATED ? "larger than 64 MiB" : strerror(errno));
		return rc == TT_ENOMEM ? rc : TT_EIO;
	}
	root = cJSON_ParseWithLength(text, len);
	if (!root) {
		snprintf(err, errlen, "prices_file: %s is not valid JSON", path);
		rc = TT_EINVAL;
		goto out;
	}
	rc = tt_prices_add_json(prices, root, 1, "prices_file", err, errlen);
out:
	cJSON_Delete(root);
	free(text);
	return rc;
}

static struct tt_config_metrics metrics_cfg = {TT_CONFIG_METRICS_MAX_SERIES,
						TT_CONFIG_METRICS_IDLE_S};

void tt_config_metrics(struct tt_config_metrics *out)
{
	*out = metrics_cfg;
}

/* An integer in [lo, hi] (or 0 when zero_ok) from a JSON number. */
static int int_in(const cJSON *it, double lo, double hi, int zero_ok, double *out)
{
	double v;

	if (!cJSON_IsNumber(it))
		return 0;
	v = it->valuedouble;
	if (v != floor(v) || !((v >= lo && v <= hi) || (zero_ok && v == 0)))
		return 0;
	*out = v;
	return 1;
}

/* "metrics": {"max_series": N, "series_idle_s": S}, into *out. */
static int metrics_section(const cJSON *sec, struct tt_config_metrics *out, char *err,
			   size_t errlen)
{
	const cJSON *it;
	double v;

	if (!cJSON_IsObject(sec)) {
		snprintf(err, errlen, "metrics: expected an object with max_series, series_idle_s");
		return TT_EINVAL;
	}
	cJSON_ArrayForEach(it, sec) {
		if (strcmp(it->string, "max_series") == 0) {
			if (!int_in(it, 1, 1000000, 0, &v)) {
				snprintf(err, errlen, "metrics.max_series: expected a number of label "
					 "sets, 1 to 1000000");
				return TT_EINVAL;
			}
			out->max_series = (size_t)v;
		} else if (strcmp(it->string, "series_idle_s") == 0) {
			if (!int_in(it, 60, 31536000, 1, &v)) {
				snprintf(err, errlen, "metrics.series_idle_s: expected seconds, 60 to "
					 "31536000, or 0 for never");
				return TT_EINVAL;
			}
			out->series_idle_s = (int64_t)v;
		} else {
			snprintf(err, errlen, "metrics.%.200s: unknown key (known: max_series, "
				 "series_idle_s)", it->string);
			return TT_EINVAL;
		}
	}
	return 0;
}

static const char *const policy_keys[] = {"budgets", "leases", "detectors", "alerts", NULL};

int tt_config_policy(const char *text, size_t len, cJSON **out)
{
	cJSON *root, *pol;

	*out = NULL;
	root = cJSON_ParseWithLength(text, len);
	if (!root || !cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return TT_EINVAL;
	}
	pol = cJSON_CreateObject();
	if (!pol) {
		cJSON_Delete(root);
		return TT_ENOMEM;
	}
	for (const char *const *k = policy_keys; *k; k++) {
		cJSON *it = cJSON_DetachItemFromObjectCaseSensitive(root, *k);

		if (it)
			cJSON_AddItemToObject(pol, *k, it);
	}
	cJSON_Delete(root);
	*out = pol;
	return 0;
}

int tt_config_apply(tt_prices *prices, const char *text, size_t len, const char *base_dir,
		    char *err, size_t errlen)
{
	cJSON *root = NULL;
	const cJSON *it, *replace = NULL, *file = NULL, *inline_prices = NULL;
	struct tt_config_metrics mcfg = {TT_CONFIG_METRICS_MAX_SERIES, TT_CONFIG_METRICS_IDLE_S};
	int rc = 0;

	err[0] = '\0';
	if (text) {
		root = cJSON_ParseWithLength(text, len);
		if (!root) {
			snprintf(err, errlen, "config: not valid JSON");
			return TT_EINVAL;
		}
		if (!cJSON_IsObject(root)) {
			snprintf(err, errlen, "config: expected a JSON object");
			rc = TT_EINVAL;
			goto out;
		}
		cJSON_ArrayForEach(it, root) {
			const char *k = it->string;

			if (strcmp(k, "prices_replace") == 0) {
				if (!cJSON_IsBool(it)) {
					snprintf(err, errlen, "prices_replace: expected true or false");
					rc = TT_EINVAL;
					goto out;
				}
				replace = it;
			} else if (strcmp(k, "prices_file") == 0) {
				if (!cJSON_IsString(it) || !it->valuestring[0] ||
				    strlen(it->valuestring) > 4000) {
					snprintf(err, errlen, "prices_file: expected a file path");
					rc = TT_EINVAL;
					goto out;
				}
				file = it;
			} else if (strcmp(k, "prices") == 0) {
				inline_prices = it;
			} else if (strcmp(k, "metrics") == 0) {
				if ((rc = metrics_section(it, &mcfg, err, errlen)))
					goto out;
			} else {
				int is_policy = 0;

				/* Checked by their modules (tt_config_policy). */
				for (const char *const *l = policy_keys; *l; l++)
					is_policy |= strcmp(*l, k) == 0;
				if (is_policy)
					continue;
				snprintf(err, errlen, "%.200s: unknown key (known: prices, prices_file, "
					 "prices_replace, budgets, leases, detectors, alerts, metrics)", k);
				rc = TT_EINVAL;
				goto out;
			}
		}
	}
	if (!(replace && cJSON_IsTrue(replace)) && (rc = add_builtin(prices, err, errlen)))
		goto out;
	if (file && (rc = add_file(prices, file->valuestring, base_dir, err, errlen)))
		goto out;
	if (inline_prices && (rc = tt_prices_add_json(prices, inline_prices, 1, "prices", err,
						      errlen)))
		goto out;
	tt_prices_finish(prices);
	metrics_cfg = mcfg;
out:
	cJSON_Delete(root);
	return rc;
}

int tt_config_load(tt_prices *prices, const char *path, char *err, size_t errlen)
{
	char *text = NULL, *dir = NULL, *slash;
	size_t len;
	int rc;

	rc = tt_config_read_file(path, TT_CONFIG_MAX, &text, &len);
	if (rc) {
		snprintf(err, errlen, "config: cannot read %s: %s", path,
			 rc == TT_ETRUNCATED ? "larger than 64 MiB" : strerror(errno));
		return rc == TT_ENOMEM ? rc : TT_EIO;
	}
	dir = strdup(path);
	if (!dir) {
		rc = TT_ENOMEM;
		goto out;
	}
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	else
		dir[0] = '\0';
	rc = tt_config_apply(prices, text, len, slash ? (dir[0] ? dir : "/") : NULL, err, errlen);
out:
	free(dir);
	free(text);
	return rc;
}
