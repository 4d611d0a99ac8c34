/* metrics.c - Prometheus exposition, see metrics.h. */
#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "tokentap/error.h"

static const double ttft_le[] = {0.1, 0.25, 0.5, 1, 2, 5, 10, 30};
static const double dur_le[] = {0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
#define NTTFT (sizeof(ttft_le) / sizeof(ttft_le[0]))
#define NDUR (sizeof(dur_le) / sizeof(dur_le[0]))
#define NLABELS 5

struct mrow {
	char *label[NLABELS];
	int64_t calls, tokens[5], unpriced;
	double cost;
	int64_t ttft_n, ttft_b[NTTFT], dur_n, dur_b[NDUR];
	double ttft_sum, dur_sum;
};

struct mctx {
	struct mrow *rows;
	size_t n, cap;
	int oom;
};

static const char *const label_names[NLABELS] = {"provider", "model", "tenant", "feature", "pod"};
static const char *const token_types[5] = {"input", "output", "cache_read", "cache_write",
	"reasoning"};

static int metrics_read(sqlite3 *db, void *arg)
{
	struct mctx *c = arg;
	tt_buf sql;
	sqlite3_stmt *st = NULL;
	int rc = 0, step;

	tt_buf_init(&sql, 1 << 14);
	rc = tt_buf_adds(&sql,
			 "SELECT provider, model, tenant, feature, pod_uid, COUNT(*), "
			 "SUM(COALESCE(input_tokens,0)), SUM(COALESCE(output_tokens,0)), "
			 "SUM(COALESCE(cache_read_tokens,0)), SUM(COALESCE(cache_write_tokens,0)), "
			 "SUM(COALESCE(reasoning_tokens,0)), TOTAL(cost_usd), "
			 "SUM(cost_usd IS NULL), COUNT(ttft_ms), TOTAL(ttft_ms)");
	for (size_t i = 0; i < NTTFT && !rc; i++)
		rc = tt_buf_printf(&sql, ", SUM(ttft_ms <= %g)", ttft_le[i] * 1000);
	if (!rc)
		rc = tt_buf_adds(&sql, ", COUNT(duration_ms), TOTAL(duration_ms)");
	for (size_t i = 0; i < NDUR && !rc; i++)
		rc = tt_buf_printf(&sql, ", SUM(duration_ms <= %g)", dur_le[i] * 1000);
	if (!rc)
		rc = tt_buf_adds(&sql, " FROM records WHERE side IS NULL OR side <> 'server' "
				       "GROUP BY 1, 2, 3, 4, 5");
	if (rc)
		goto out;
	if (sqlite3_prepare_v2(db, sql.data, -1, &st, NULL) != SQLITE_OK) {
		rc = TT_EIO;
		goto out;
	}
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		struct mrow *r;
		int col = 0;

		if (c->n == c->cap) {
			size_t ncap = c->cap ? c->cap * 2 : 32;
			struct mrow *nr = realloc(c->rows, ncap * sizeof(*nr));

			if (!nr) {
				rc = TT_ENOMEM;
				goto out;
			}
			c->rows = nr;
			c->cap = ncap;
		}
		r = &c->rows[c->n];
		memset(r, 0, sizeof(*r));
		for (; col < NLABELS; col++) {
			const char *v = (const char *)sqlite3_column_text(st, col);

			r->label[col] = strdup(v ? v : "");
			if (!r->label[col]) {
				c->n++;
				rc = TT_ENOMEM;
				goto out;
			}
		}
		c->n++;
		r->calls = sqlite3_column_int64(st, col++);
		for (int t = 0; t < 5; t++)
			r->tokens[t] = sqlite3_column_int64(st, col++);
		r->cost = sqlite3_column_double(st, col++);
		r->unpriced = sqlite3_column_int64(st, col++);
		r->ttft_n = sqlite3_column_int64(st, col++);
		r->ttft_sum = sqlite3_column_double(st, col++) / 1000;
		for (size_t i = 0; i < NTTFT; i++)
			r->ttft_b[i] = sqlite3_column_int64(st, col++);
		r->dur_n = sqlite3_column_int64(st, col++);
		r->dur_sum = sqlite3_column_double(st, col++) / 1000;
		for (size_t i = 0; i < NDUR; i++)
			r->dur_b[i] = sqlite3_column_int64(st, col++);
	}
	if (step != SQLITE_DONE)
		rc = TT_EIO;
out:
	sqlite3_finalize(st);
	tt_buf_free(&sql);
	return rc;
}

/* Label value escaping: the exposition format escapes \, " and newline. */
static int labels(tt_buf *b, const struct mrow *r, const char *extra_name, const char *extra)
{
	int rc = tt_buf_adds(b, "{");

	for (int i = 0; i < NLABELS && !rc; i++) {
		rc = tt_buf_printf(b, "%s%s=\"", i ? "," : "", label_names[i]);
		for (const char *p = r->label[i]; *p && !rc; p++) {
			if (*p == '\\')
				rc = tt_buf_adds(b, "\\\\");
			else if (*p == '"')
				rc = tt_buf_adds(b, "\\\"");
			else if (*p == '\n')
				rc = tt_buf_adds(b, "\\n");
			else
				rc = tt_buf_add(b, p, 1);
		}
		if (!rc)
			rc = tt_buf_adds(b, "\"");
	}
	if (!rc && extra_name)
		rc = tt_buf_printf(b, ",%s=\"%s\"", extra_name, extra);
	if (!rc)
		rc = tt_buf_adds(b, "}");
	return rc;
}

static int family(tt_buf *b, const char *name, const char *type, const char *help)
{
	return tt_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int histogram(tt_buf *b, const struct mctx *c, const char *name, int ttft)
{
	const double *le = ttft ? ttft_le : dur_le;
	size_t nle = ttft ? NTTFT : NDUR;
	int rc = 0;

	for (size_t i = 0; i < c->n && !rc; i++) {
		const struct mrow *r = &c->rows[i];
		char lebuf[32];

		for (size_t k = 0; k < nle && !rc; k++) {
			snprintf(lebuf, sizeof(lebuf), "%g", le[k]);
			rc = tt_buf_printf(b, "%s_bucket", name);
			if (!rc)
				rc = labels(b, r, "le", lebuf);
			if (!rc)
				rc = tt_buf_printf(b, " %lld\n",
						   (long long)(ttft ? r->ttft_b[k] : r->dur_b[k]));
		}
		if (!rc)
			rc = tt_buf_printf(b, "%s_bucket", name);
		if (!rc)
			rc = labels(b, r, "le", "+Inf");
		if (!rc)
			rc = tt_buf_printf(b, " %lld\n%s_sum", (long long)(ttft ? r->ttft_n : r->dur_n),
					   name);
		if (!rc)
			rc = labels(b, r, NULL, NULL);
		if (!rc)
			rc = tt_buf_printf(b, " %.9g\n%s_count", ttft ? r->ttft_sum : r->dur_sum, name);
		if (!rc)
			rc = labels(b, r, NULL, NULL);
		if (!rc)
			rc = tt_buf_printf(b, " %lld\n", (long long)(ttft ? r->ttft_n : r->dur_n));
	}
	return rc;
}

int tt_metrics_render(tt_store *s, const struct tt_metrics_counters *cnt, tt_buf *b)
{
	struct mctx c = {0};
	int rc = tt_store_read(s, metrics_read, &c);

	if (rc)
		goto out;
	rc = family(b, "tokentap_calls_total", "counter", "LLM calls made by clients.");
	for (size_t i = 0; i < c.n && !rc; i++) {
		rc = tt_buf_adds(b, "tokentap_calls_total");
		if (!rc)
			rc = labels(b, &c.rows[i], NULL, NULL);
		if (!rc)
			rc = tt_buf_printf(b, " %lld\n", (long long)c.rows[i].calls);
	}
	if (!rc)
		rc = family(b, "tokentap_tokens_total", "counter",
			    "Tokens billed, by type (input includes cache_read and cache_write; "
			    "output includes reasoning).");
	for (size_t i = 0; i < c.n && !rc; i++)
		for (int t = 0; t < 5 && !rc; t++) {
			rc = tt_buf_adds(b, "tokentap_tokens_total");
			if (!rc)
				rc = labels(b, &c.rows[i], "type", token_types[t]);
			if (!rc)
				rc = tt_buf_printf(b, " %lld\n", (long long)c.rows[i].tokens[t]);
		}
	if (!rc)
		rc = family(b, "tokentap_cost_usd_total", "counter",
			    "Cost in US dollars of the priced calls.");
	for (size_t i = 0; i < c.n && !rc; i++) {
		rc = tt_buf_adds(b, "tokentap_cost_usd_total");
		if (!rc)
			rc = labels(b, &c.rows[i], NULL, NULL);
		if (!rc)
			rc = tt_buf_printf(b, " %.9g\n", c.rows[i].cost);
	}
	if (!rc)
		rc = family(b, "tokentap_unpriced_calls_total", "counter",
			    "Calls whose cost is unknown (model not in the price table, or no usage).");
	for (size_t i = 0; i < c.n && !rc; i++) {
		rc = tt_buf_adds(b, "tokentap_unpriced_calls_total");
		if (!rc)
			rc = labels(b, &c.rows[i], NULL, NULL);
		if (!rc)
			rc = tt_buf_printf(b, " %lld\n", (long long)c.rows[i].unpriced);
	}
	if (!rc)
		rc = family(b, "tokentap_ttft_seconds", "histogram",
			    "Time from the end of the request to the first response byte.");
	if (!rc)
		rc = histogram(b, &c, "tokentap_ttft_seconds", 1);
	if (!rc)
		rc = family(b, "tokentap_duration_seconds", "histogram",
			    "Duration of the whole exchange.");
	if (!rc)
		rc = histogram(b, &c, "tokentap_duration_seconds", 0);
	if (!rc)
		rc = family(b, "tokentap_ingested_records_total", "counter",
			    "Records received by this tokentapd process, by outcome.");
	if (!rc)
		rc = tt_buf_printf(b,
				   "tokentap_ingested_records_total{outcome=\"accepted\"} %lld\n"
				   "tokentap_ingested_records_total{outcome=\"duplicate\"} %lld\n"
				   "tokentap_ingested_records_total{outcome=\"rejected\"} %lld\n",
				   (long long)cnt->accepted, (long long)cnt->duplicates,
				   (long long)cnt->rejected);
	if (!rc)
		rc = family(b, "tokentap_ingest_requests_total", "counter",
			    "POST /v1/records requests answered by this process, by outcome.");
	if (!rc)
		rc = tt_buf_printf(b,
				   "tokentap_ingest_requests_total{outcome=\"ok\"} %lld\n"
				   "tokentap_ingest_requests_total{outcome=\"client_error\"} %lld\n"
				   "tokentap_ingest_requests_total{outcome=\"server_error\"} %lld\n",
				   (long long)cnt->requests, (long long)cnt->bad_requests,
				   (long long)cnt->failed);
	if (!rc)
		rc = family(b, "tokentap_stored_records", "gauge", "Records in the database.");
	if (!rc)
		rc = tt_buf_printf(b, "tokentap_stored_records %lld\n", (long long)tt_store_count(s));
out:
	for (size_t i = 0; i < c.n; i++)
		for (int k = 0; k < NLABELS; k++)
			free(c.rows[i].label[k]);
	free(c.rows);
	return rc;
}
