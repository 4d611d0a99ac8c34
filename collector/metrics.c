/* metrics.c - Prometheus exposition from in-memory series, see metrics.h. */
#include "metrics.h"

#include <pthread.h>
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

static const char *const label_names[NLABELS] = {"provider", "model", "tenant", "feature", "pod"};
static const int label_fields[NLABELS] = {TT_F_PROVIDER, TT_F_MODEL, TT_F_TENANT, TT_F_FEATURE,
					  TT_F_POD_UID};
static const char *const token_types[5] = {"input", "output", "cache_read", "cache_write",
	"reasoning"};
static const int token_fields[5] = {TT_F_INPUT_TOKENS, TT_F_OUTPUT_TOKENS,
				    TT_F_CACHE_READ_TOKENS, TT_F_CACHE_WRITE_TOKENS,
				    TT_F_REASONING_TOKENS};

struct series {
	struct series *next;     /* hash chain */
	char *key;               /* the label values joined by '\0', ending "\0\0" */
	size_t keylen;
	unsigned hash;
	int64_t calls, tokens[5], unpriced;
	double cost;
	int64_t ttft_n, ttft_b[NTTFT], dur_n, dur_b[NDUR];
	double ttft_sum, dur_sum;  /* seconds */
};

struct tt_metrics {
	pthread_mutex_t lock;
	struct series **tab;
	size_t nbuckets, n;
	int oom;
};

tt_metrics *tt_metrics_new(void)
{
	tt_metrics *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->nbuckets = 256;
	m->tab = calloc(m->nbuckets, sizeof(*m->tab));
	if (!m->tab) {
		free(m);
		return NULL;
	}
	pthread_mutex_init(&m->lock, NULL);
	return m;
}

void tt_metrics_free(tt_metrics *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nbuckets; i++) {
		struct series *s = m->tab[i], *next;

		for (; s; s = next) {
			next = s->next;
			free(s->key);
			free(s);
		}
	}
	free(m->tab);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static unsigned hash_key(const char *k, size_t len)
{
	unsigned h = 2166136261u;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)k[i]) * 16777619u;
	return h;
}

static void grow(tt_metrics *m)
{
	size_t nb = m->nbuckets * 2;
	struct series **tab = calloc(nb, sizeof(*tab));

	if (!tab)
		return;  /* keep the longer chains */
	for (size_t i = 0; i < m->nbuckets; i++) {
		struct series *s = m->tab[i], *next;

		for (; s; s = next) {
			next = s->next;
			s->next = tab[s->hash % nb];
			tab[s->hash % nb] = s;
		}
	}
	free(m->tab);
	m->tab = tab;
	m->nbuckets = nb;
}

/* The series for key (under the lock); created when new. NULL when out of memory. */
static struct series *find(tt_metrics *m, const char *key, size_t len)
{
	unsigned h = hash_key(key, len);
	struct series *s;

	for (s = m->tab[h % m->nbuckets]; s; s = s->next)
		if (s->hash == h && s->keylen == len && memcmp(s->key, key, len) == 0)
			return s;
	s = calloc(1, sizeof(*s));
	if (!s || !(s->key = malloc(len))) {
		free(s);
		m->oom = 1;
		return NULL;
	}
	memcpy(s->key, key, len);
	s->keylen = len;
	s->hash = h;
	if (m->n + 1 > m->nbuckets)
		grow(m);
	s->next = m->tab[h % m->nbuckets];
	m->tab[h % m->nbuckets] = s;
	m->n++;
	return s;
}

/* label values -> "v1\0v2\0...v5\0" in buf; returns the length. */
static size_t make_key(char *buf, size_t cap, const char *const *vals, const size_t *lens)
{
	size_t n = 0;

	for (int i = 0; i < NLABELS; i++) {
		size_t l = lens[i];

		if (n + l + 1 > cap)
			l = cap - n - 1;  /* cannot happen: record fields are capped */
		memcpy(buf + n, vals[i], l);
		n += l;
		buf[n++] = '\0';
	}
	return n;
}

void tt_metrics_add(void *arg, const tt_rec *r, const tt_buf *arena)
{
	tt_metrics *m = arg;
	const char *vals[NLABELS];
	size_t lens[NLABELS], side_len, klen;
	const char *side = tt_rec_str(r, TT_F_SIDE, arena, &side_len);
	char key[1024];
	struct series *s;

	if (side && side_len == 6 && memcmp(side, "server", 6) == 0)
		return;
	for (int i = 0; i < NLABELS; i++) {
		vals[i] = tt_rec_str(r, label_fields[i], arena, &lens[i]);
		if (!vals[i])
			vals[i] = "";
	}
	klen = make_key(key, sizeof(key), vals, lens);
	pthread_mutex_lock(&m->lock);
	s = find(m, key, klen);
	if (s) {
		s->calls++;
		for (int t = 0; t < 5; t++)
			s->tokens[t] += tt_rec_int(r, token_fields[t], 0);
		if (r->priced)
			s->cost += r->cost_usd;
		else
			s->unpriced++;
		if (!tt_rec_is_null(r, TT_F_TTFT_MS)) {
			double v = r->v[TT_F_TTFT_MS].d / 1000;

			s->ttft_n++;
			s->ttft_sum += v;
			for (size_t k = 0; k < NTTFT; k++)
				s->ttft_b[k] += v <= ttft_le[k];
		}
		if (!tt_rec_is_null(r, TT_F_DURATION_MS)) {
			double v = r->v[TT_F_DURATION_MS].d / 1000;

			s->dur_n++;
			s->dur_sum += v;
			for (size_t k = 0; k < NDUR; k++)
				s->dur_b[k] += v <= dur_le[k];
		}
	}
	pthread_mutex_unlock(&m->lock);
}

/* The same sums, from the database: one GROUP BY over the client records. */
static int load_read(sqlite3 *db, void *arg)
{
	tt_metrics *m = arg;
	tt_buf sql;
	sqlite3_stmt *st = NULL;
	int rc = 0, step;

	tt_buf_init(&sql, 1 << 14);
	rc = tt_buf_adds(&sql,
			 "SELECT COALESCE(provider,''), COALESCE(model,''), COALESCE(tenant,''), "
			 "COALESCE(feature,''), COALESCE(pod_uid,''), COUNT(*), "
			 "SUM(COALESCE(input_tokens,0)), SUM(COALESCE(output_tokens,0)), "
			 "SUM(COALESCE(cache_read_tokens,0)), SUM(COALESCE(cache_write_tokens,0)), "
			 "SUM(COALESCE(reasoning_tokens,0)), TOTAL(cost_usd), "
			 "SUM(cost_usd IS NULL), COUNT(ttft_ms), TOTAL(ttft_ms)");
	for (size_t i = 0; i < NTTFT && !rc; i++)
		rc = tt_buf_printf(&sql, ", SUM(ttft_ms / 1000.0 <= %.17g)", ttft_le[i]);
	if (!rc)
		rc = tt_buf_adds(&sql, ", COUNT(duration_ms), TOTAL(duration_ms)");
	for (size_t i = 0; i < NDUR && !rc; i++)
		rc = tt_buf_printf(&sql, ", SUM(duration_ms / 1000.0 <= %.17g)", dur_le[i]);
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
		const char *vals[NLABELS];
		size_t lens[NLABELS];
		char key[1024];
		struct series *s;
		int col;

		for (col = 0; col < NLABELS; col++) {
			vals[col] = (const char *)sqlite3_column_text(st, col);
			lens[col] = (size_t)sqlite3_column_bytes(st, col);
			if (!vals[col])
				vals[col] = "";
		}
		s = find(m, key, make_key(key, sizeof(key), vals, lens));
		if (!s) {
			rc = TT_ENOMEM;
			goto out;
		}
		s->calls = sqlite3_column_int64(st, col++);
		for (int t = 0; t < 5; t++)
			s->tokens[t] = sqlite3_column_int64(st, col++);
		s->cost = sqlite3_column_double(st, col++);
		s->unpriced = sqlite3_column_int64(st, col++);
		s->ttft_n = sqlite3_column_int64(st, col++);
		s->ttft_sum = sqlite3_column_double(st, col++) / 1000;
		for (size_t i = 0; i < NTTFT; i++)
			s->ttft_b[i] = sqlite3_column_int64(st, col++);
		s->dur_n = sqlite3_column_int64(st, col++);
		s->dur_sum = sqlite3_column_double(st, col++) / 1000;
		for (size_t i = 0; i < NDUR; i++)
			s->dur_b[i] = sqlite3_column_int64(st, col++);
	}
	if (step != SQLITE_DONE)
		rc = TT_EIO;
out:
	sqlite3_finalize(st);
	tt_buf_free(&sql);
	return rc;
}

int tt_metrics_load(tt_metrics *m, tt_store *s)
{
	int rc;

	pthread_mutex_lock(&m->lock);
	rc = tt_store_read(s, load_read, m);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/* Label value escaping: the exposition format escapes \, " and newline. */
static int labels(tt_buf *b, const struct series *s, const char *extra_name, const char *extra)
{
	const char *v = s->key;
	int rc = tt_buf_adds(b, "{");

	for (int i = 0; i < NLABELS && !rc; i++) {
		rc = tt_buf_printf(b, "%s%s=\"", i ? "," : "", label_names[i]);
		for (; *v && !rc; v++) {
			if (*v == '\\')
				rc = tt_buf_adds(b, "\\\\");
			else if (*v == '"')
				rc = tt_buf_adds(b, "\\\"");
			else if (*v == '\n')
				rc = tt_buf_adds(b, "\\n");
			else
				rc = tt_buf_add(b, v, 1);
		}
		v++;  /* past the '\0' */
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

static int cmp_series(const void *a, const void *b)
{
	const struct series *x = *(struct series *const *)a, *y = *(struct series *const *)b;
	size_t n = x->keylen < y->keylen ? x->keylen : y->keylen;
	int c = memcmp(x->key, y->key, n);

	return c ? c : (x->keylen > y->keylen) - (x->keylen < y->keylen);
}

static int histogram(tt_buf *b, struct series **v, size_t n, const char *name, int ttft)
{
	const double *le = ttft ? ttft_le : dur_le;
	size_t nle = ttft ? NTTFT : NDUR;
	int rc = 0;

	for (size_t i = 0; i < n && !rc; i++) {
		const struct series *s = v[i];
		int64_t count = ttft ? s->ttft_n : s->dur_n;
		char lebuf[32];

		for (size_t k = 0; k < nle && !rc; k++) {
			snprintf(lebuf, sizeof(lebuf), "%g", le[k]);
			rc = tt_buf_printf(b, "%s_bucket", name);
			if (!rc)
				rc = labels(b, s, "le", lebuf);
			if (!rc)
				rc = tt_buf_printf(b, " %lld\n",
						   (long long)(ttft ? s->ttft_b[k] : s->dur_b[k]));
		}
		if (!rc)
			rc = tt_buf_printf(b, "%s_bucket", name);
		if (!rc)
			rc = labels(b, s, "le", "+Inf");
		if (!rc)
			rc = tt_buf_printf(b, " %lld\n%s_sum", (long long)count, name);
		if (!rc)
			rc = labels(b, s, NULL, NULL);
		if (!rc)
			rc = tt_buf_printf(b, " %.9g\n%s_count", ttft ? s->ttft_sum : s->dur_sum, name);
		if (!rc)
			rc = labels(b, s, NULL, NULL);
		if (!rc)
			rc = tt_buf_printf(b, " %lld\n", (long long)count);
	}
	return rc;
}

int tt_metrics_render(tt_metrics *m, tt_store *st, const struct tt_metrics_counters *cnt,
		      tt_buf *b)
{
	struct series **v;
	size_t n = 0;
	int rc = 0;

	pthread_mutex_lock(&m->lock);
	v = malloc((m->n ? m->n : 1) * sizeof(*v));
	if (!v) {
		pthread_mutex_unlock(&m->lock);
		return TT_ENOMEM;
	}
	for (size_t i = 0; i < m->nbuckets; i++)
		for (struct series *s = m->tab[i]; s; s = s->next)
			v[n++] = s;
	qsort(v, n, sizeof(*v), cmp_series);  /* stable output, easy to diff */

	rc = family(b, "tokentap_calls_total", "counter", "LLM calls made by clients.");
	for (size_t i = 0; i < n && !rc; i++) {
		rc = tt_buf_adds(b, "tokentap_calls_total");
		if (!rc)
			rc = labels(b, v[i], NULL, NULL);
		if (!rc)
			rc = tt_buf_printf(b, " %lld\n", (long long)v[i]->calls);
	}
	if (!rc)
		rc = family(b, "tokentap_tokens_total", "counter",
			    "Tokens billed, by type (input includes cache_read and cache_write; "
			    "output includes reasoning).");
	for (size_t i = 0; i < n && !rc; i++)
		for (int t = 0; t < 5 && !rc; t++) {
			rc = tt_buf_adds(b, "tokentap_tokens_total");
			if (!rc)
				rc = labels(b, v[i], "type", token_types[t]);
			if (!rc)
				rc = tt_buf_printf(b, " %lld\n", (long long)v[i]->tokens[t]);
		}
	if (!rc)
		rc = family(b, "tokentap_cost_usd_total", "counter",
			    "Cost in US dollars of the priced calls.");
	for (size_t i = 0; i < n && !rc; i++) {
		rc = tt_buf_adds(b, "tokentap_cost_usd_total");
		if (!rc)
			rc = labels(b, v[i], NULL, NULL);
		if (!rc)
			rc = tt_buf_printf(b, " %.9g\n", v[i]->cost);
	}
	if (!rc)
		rc = family(b, "tokentap_unpriced_calls_total", "counter",
			    "Calls whose cost is unknown (model not in the price table, or no usage).");
	for (size_t i = 0; i < n && !rc; i++) {
		rc = tt_buf_adds(b, "tokentap_unpriced_calls_total");
		if (!rc)
			rc = labels(b, v[i], NULL, NULL);
		if (!rc)
			rc = tt_buf_printf(b, " %lld\n", (long long)v[i]->unpriced);
	}
	if (!rc)
		rc = family(b, "tokentap_ttft_seconds", "histogram",
			    "Time from the end of the request to the first response byte.");
	if (!rc)
		rc = histogram(b, v, n, "tokentap_ttft_seconds", 1);
	if (!rc)
		rc = family(b, "tokentap_duration_seconds", "histogram",
			    "Duration of the whole exchange.");
	if (!rc)
		rc = histogram(b, v, n, "tokentap_duration_seconds", 0);
	pthread_mutex_unlock(&m->lock);
	free(v);

	if (!rc)
		rc = family(b, "tokentap_ingested_records_total", "counter",
			    "Records received by this tokentapd process, by outcome.");
	if (!rc)
		rc = tt_buf_printf(b,
				   "tokentap_ingested_records_total{outcome=\"accepted\"} %lld\n"
				   "tokentap_ingested_records_total{outcome=\"duplicate\"} %lld\n"
				   "tokentap_ingested_records_total{outcome=\"rejected\"} %lld\n",
				   (long long)__atomic_load_n(&cnt->accepted, __ATOMIC_RELAXED),
				   (long long)__atomic_load_n(&cnt->duplicates, __ATOMIC_RELAXED),
				   (long long)__atomic_load_n(&cnt->rejected, __ATOMIC_RELAXED));
	if (!rc)
		rc = family(b, "tokentap_ingest_requests_total", "counter",
			    "POST /v1/records requests answered by this process, by outcome.");
	if (!rc)
		rc = tt_buf_printf(b,
				   "tokentap_ingest_requests_total{outcome=\"ok\"} %lld\n"
				   "tokentap_ingest_requests_total{outcome=\"client_error\"} %lld\n"
				   "tokentap_ingest_requests_total{outcome=\"server_error\"} %lld\n",
				   (long long)__atomic_load_n(&cnt->requests, __ATOMIC_RELAXED),
				   (long long)__atomic_load_n(&cnt->bad_requests, __ATOMIC_RELAXED),
				   (long long)__atomic_load_n(&cnt->failed, __ATOMIC_RELAXED));
	if (!rc)
		rc = family(b, "tokentap_stored_records", "gauge", "Records in the database.");
	if (!rc)
		rc = tt_buf_printf(b, "tokentap_stored_records %lld\n", (long long)tt_store_count(st));
	if (!rc)
		rc = family(b, "tokentap_series", "gauge",
			    "Label sets (provider, model, tenant, feature, pod) with usage.");
	if (!rc)
		rc = tt_buf_printf(b, "tokentap_series %zu\n", n);
	return rc;
}
