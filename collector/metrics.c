/* metrics.c - Prometheus exposition from in-memory series, see metrics.h. */
#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "common/clock.h"
#include "config.h"
#include "tokentap/error.h"

static const double ttft_le[] = {0.1, 0.25, 0.5, 1, 2, 5, 10, 30};
static const double dur_le[] = {0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
#define NTTFT (sizeof(ttft_le) / sizeof(ttft_le[0]))
#define NDUR (sizeof(dur_le) / sizeof(dur_le[0]))
#define NLABELS 5
#define NTOKENS 5
#define VAL_MAX 255                          /* a label value's bytes in a key */
#define KEY_MAX (NLABELS * (1 + VAL_MAX))
#define OVERFLOW_VALUE "_overflow"
#define SWEEP_EVERY_US 1000000               /* a full table looks for idle series this often */
/* Samples a series writes, and the bytes of one sample besides its labels:
 * name <= 41, ,type="cache_write" 19, a value <= 24, "} " and "\n". */
#define LINES_PER_SERIES (4 + NTOKENS + NTTFT + 3 + NDUR + 3)
#define LINE_FIXED 90

static const char *const label_names[NLABELS] = {"provider", "model", "tenant", "feature", "pod"};
static const int label_fields[NLABELS] = {TT_F_PROVIDER, TT_F_MODEL, TT_F_TENANT, TT_F_FEATURE,
					  TT_F_POD_UID};
static const char *const token_types[NTOKENS] = {"input", "output", "cache_read", "cache_write",
	"reasoning"};
static const int token_fields[NTOKENS] = {TT_F_INPUT_TOKENS, TT_F_OUTPUT_TOKENS,
					  TT_F_CACHE_READ_TOKENS, TT_F_CACHE_WRITE_TOKENS,
					  TT_F_REASONING_TOKENS};

/* The figures of one label set. */
struct counts {
	uint64_t calls, blocked, tokens[NTOKENS], unpriced;
	double cost;
	uint64_t ttft_n, ttft_b[NTTFT], dur_n, dur_b[NDUR];
	double ttft_sum, dur_sum;  /* seconds */
};

struct series {
	struct series *next;     /* hash chain */
	unsigned hash;
	unsigned keylen;
	int64_t last_us;         /* the collector's clock at its last record */
	size_t bytes;            /* the most its samples take in a scrape */
	struct counts c;
	/* Each label value as one length byte then its bytes: a value may hold
	 * any byte (a NUL from an old database included) without shifting the
	 * ones after it. */
	char key[];
};

struct tt_metrics {
	pthread_mutex_t lock;
	struct series **tab;
	size_t nbuckets, n;      /* n: every series, the overflow one included */
	size_t nlabelled;        /* the series under the cap (all but the overflow) */
	size_t bytes;            /* their series_bytes(), against opts.max_bytes */
	struct tt_metrics_opts opts;
	int64_t last_sweep_us;
	uint64_t dropped, expired;
};

/* Adds that stick at the top instead of wrapping. */
static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* A sum read from the database as a double: clamped into [0, 2^64 - 1]. */
static uint64_t to_u64(double d)
{
	if (!(d > 0))
		return 0;  /* negative, zero or NaN */
	if (d >= 18446744073709551616.0)
		return UINT64_MAX;
	return (uint64_t)d;
}

static double finite_or_zero(double d)
{
	return isfinite(d) ? d : 0;
}

static void merge(struct counts *d, const struct counts *v)
{
	d->calls = sat_add(d->calls, v->calls);
	d->blocked = sat_add(d->blocked, v->blocked);
	for (int t = 0; t < NTOKENS; t++)
		d->tokens[t] = sat_add(d->tokens[t], v->tokens[t]);
	d->unpriced = sat_add(d->unpriced, v->unpriced);
	d->cost += v->cost;
	d->ttft_n = sat_add(d->ttft_n, v->ttft_n);
	for (size_t k = 0; k < NTTFT; k++)
		d->ttft_b[k] = sat_add(d->ttft_b[k], v->ttft_b[k]);
	d->ttft_sum += v->ttft_sum;
	d->dur_n = sat_add(d->dur_n, v->dur_n);
	for (size_t k = 0; k < NDUR; k++)
		d->dur_b[k] = sat_add(d->dur_b[k], v->dur_b[k]);
	d->dur_sum += v->dur_sum;
}

tt_metrics *tt_metrics_new_opts(const struct tt_metrics_opts *o)
{
	tt_metrics *m;
	struct tt_config_metrics cfg;

	if (!o) {
		tt_config_metrics(&cfg);
		return tt_metrics_new_opts(&(struct tt_metrics_opts){
			.max_series = cfg.max_series, .idle_us = cfg.series_idle_s * 1000000,
			.max_bytes = TT_METRICS_SCRAPE_MAX});
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->opts = *o;
	if (m->opts.max_series < 1)
		m->opts.max_series = 1;
	if (m->opts.max_bytes < 1 || m->opts.max_bytes > TT_METRICS_SCRAPE_MAX)
		m->opts.max_bytes = TT_METRICS_SCRAPE_MAX;
	m->nbuckets = 256;
	m->tab = calloc(m->nbuckets, sizeof(*m->tab));
	if (!m->tab) {
		free(m);
		return NULL;
	}
	pthread_mutex_init(&m->lock, NULL);
	return m;
}

tt_metrics *tt_metrics_new(void)
{
	return tt_metrics_new_opts(NULL);
}

void tt_metrics_free(tt_metrics *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nbuckets; i++) {
		struct series *s = m->tab[i], *next;

		for (; s; s = next) {
			next = s->next;
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

/* label values -> the key in buf (KEY_MAX bytes); returns its length. */
static size_t make_key(char *buf, const char *const *vals, const size_t *lens)
{
	size_t n = 0;

	for (int i = 0; i < NLABELS; i++) {
		/* Record fields are far shorter; only a database edited by hand is cut. */
		size_t l = lens[i] > VAL_MAX ? VAL_MAX : lens[i];

		buf[n++] = (char)(unsigned char)l;
		memcpy(buf + n, vals[i], l);
		n += l;
	}
	return n;
}

static size_t overflow_key(char *buf)
{
	const char *vals[NLABELS];
	size_t lens[NLABELS];

	for (int i = 0; i < NLABELS; i++) {
		vals[i] = OVERFLOW_VALUE;
		lens[i] = sizeof(OVERFLOW_VALUE) - 1;
	}
	return make_key(buf, vals, lens);
}

static int is_overflow(const char *key, size_t len)
{
	char o[KEY_MAX];
	size_t olen = overflow_key(o);

	return len == olen && memcmp(key, o, len) == 0;
}

/* The most a series with this key writes in a scrape: its escaped labels on every line. */
static size_t series_bytes(const char *key)
{
	const unsigned char *k = (const unsigned char *)key;
	size_t labels = 2;  /* the braces */

	for (int i = 0; i < NLABELS; i++) {
		size_t len = *k++;

		labels += strlen(label_names[i]) + 4 + len;  /* ,name="" */
		for (size_t j = 0; j < len; j++)
			labels += k[j] == '\\' || k[j] == '"' || k[j] == '\n' ? 1 : k[j] == 0 ? 2 : 0;
		k += len;
	}
	return LINES_PER_SERIES * (LINE_FIXED + labels);
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

static struct series *lookup(tt_metrics *m, const char *key, size_t len, unsigned h)
{
	for (struct series *s = m->tab[h % m->nbuckets]; s; s = s->next)
		if (s->hash == h && s->keylen == len && memcmp(s->key, key, len) == 0)
			return s;
	return NULL;
}

/* A new, empty series (under the lock). NULL when out of memory. */
static struct series *create(tt_metrics *m, const char *key, size_t len, unsigned h)
{
	struct series *s = calloc(1, sizeof(*s) + len);

	if (!s)
		return NULL;
	memcpy(s->key, key, len);
	s->keylen = (unsigned)len;
	s->hash = h;
	s->bytes = series_bytes(key);
	if (m->n + 1 > m->nbuckets)
		grow(m);
	s->next = m->tab[h % m->nbuckets];
	m->tab[h % m->nbuckets] = s;
	m->n++;
	if (!is_overflow(key, len)) {
		m->nlabelled++;
		m->bytes += s->bytes;
	}
	return s;
}

static struct series *find_overflow(tt_metrics *m)
{
	char key[KEY_MAX];
	size_t len = overflow_key(key);
	unsigned h = hash_key(key, len);
	struct series *s = lookup(m, key, len, h);

	return s ? s : create(m, key, len, h);
}

static size_t sweep(tt_metrics *m, int64_t now_us)
{
	size_t gone = 0;

	m->last_sweep_us = now_us;
	if (m->opts.idle_us <= 0)
		return 0;
	for (size_t i = 0; i < m->nbuckets; i++) {
		struct series **pp = &m->tab[i];

		while (*pp) {
			struct series *s = *pp;

			/* Subtraction, not last + idle: a clock far off cannot overflow it. */
			if (now_us - s->last_us < m->opts.idle_us) {
				pp = &s->next;
				continue;
			}
			*pp = s->next;
			if (!is_overflow(s->key, s->keylen)) {
				m->nlabelled--;
				m->bytes -= s->bytes;
			}
			m->n--;
			free(s);
			gone++;
		}
	}
	m->expired += gone;
	return gone;
}

size_t tt_metrics_expire(tt_metrics *m, int64_t now_us)
{
	size_t gone;

	pthread_mutex_lock(&m->lock);
	gone = sweep(m, now_us);
	pthread_mutex_unlock(&m->lock);
	return gone;
}

/* Room for one more series of this key: under both caps. */
static int room(const tt_metrics *m, const char *key)
{
	return m->nlabelled < m->opts.max_series &&
	       m->bytes + series_bytes(key) <= m->opts.max_bytes;
}

/*
 * The series that takes a record of this label set (under the lock): its
 * own, a new one while there is room (idle ones make room, looked for at
 * most every SWEEP_EVERY_US), else the overflow one.  `records` is what
 * the overflow counts as dropped.  NULL only when out of memory.
 */
static struct series *admit(tt_metrics *m, const char *key, size_t len, int64_t now_us,
			    uint64_t records)
{
	unsigned h = hash_key(key, len);
	struct series *s = lookup(m, key, len, h);

	if (s)
		return s;
	if (is_overflow(key, len))
		return create(m, key, len, h);
	if (!room(m, key) && now_us - m->last_sweep_us >= SWEEP_EVERY_US)
		sweep(m, now_us);
	if (room(m, key))
		return create(m, key, len, h);
	m->dropped = sat_add(m->dropped, records);
	return find_overflow(m);
}

static int is_blocked(const tt_rec *r, const tt_buf *arena)
{
	size_t len;
	const char *e = tt_rec_str(r, TT_F_ERROR, arena, &len);

	return tt_rec_int(r, TT_F_BLOCKED, 0) == 1 || (e && len == 7 && memcmp(e, "blocked", 7) == 0);
}

static void count(struct counts *c, const tt_rec *r, const tt_buf *arena)
{
	if (is_blocked(r, arena)) {
		c->blocked = sat_add(c->blocked, 1);  /* never reached the provider */
		return;
	}
	c->calls = sat_add(c->calls, 1);
	for (int t = 0; t < NTOKENS; t++)
		c->tokens[t] = sat_add(c->tokens[t], (uint64_t)tt_rec_int(r, token_fields[t], 0));
	if (r->priced)
		c->cost += r->cost_usd;
	else
		c->unpriced = sat_add(c->unpriced, 1);
	if (!tt_rec_is_null(r, TT_F_TTFT_MS)) {
		double v = r->v[TT_F_TTFT_MS].d / 1000;

		c->ttft_n++;
		c->ttft_sum += v;
		for (size_t k = 0; k < NTTFT; k++)
			c->ttft_b[k] += v <= ttft_le[k];
	}
	if (!tt_rec_is_null(r, TT_F_DURATION_MS)) {
		double v = r->v[TT_F_DURATION_MS].d / 1000;

		c->dur_n++;
		c->dur_sum += v;
		for (size_t k = 0; k < NDUR; k++)
			c->dur_b[k] += v <= dur_le[k];
	}
}

void tt_metrics_add_at(tt_metrics *m, const tt_rec *r, const tt_buf *arena, int64_t now_us)
{
	const char *vals[NLABELS];
	size_t lens[NLABELS], side_len, klen;
	const char *side = tt_rec_str(r, TT_F_SIDE, arena, &side_len);
	char key[KEY_MAX];
	struct series *s;

	if (side && side_len == 6 && memcmp(side, "server", 6) == 0)
		return;
	for (int i = 0; i < NLABELS; i++) {
		vals[i] = tt_rec_str(r, label_fields[i], arena, &lens[i]);
		if (!vals[i])
			vals[i] = "";
	}
	klen = make_key(key, vals, lens);
	pthread_mutex_lock(&m->lock);
	s = admit(m, key, klen, now_us, 1);
	if (s) {
		s->last_us = now_us;
		count(&s->c, r, arena);
	}
	pthread_mutex_unlock(&m->lock);
}

void tt_metrics_add(void *arg, const tt_rec *r, const tt_buf *arena)
{
	tt_metrics_add_at(arg, r, arena, tt_real_us());
}

/*
 * The same sums, from the database: one GROUP BY over the client records,
 * the most recently received label sets first (they get the room under
 * the cap).  TOTAL, not SUM: SUM fails the whole query on an integer
 * overflow, which 1,100 records of 2^53 tokens reach (issue 14 #3).
 */
#define NOT_BLOCKED "blocked IS NOT 1 AND error IS NOT 'blocked'"

static int load_sql(tt_buf *sql)
{
	int rc = tt_buf_adds(sql, "SELECT COALESCE(provider,''), COALESCE(model,''), "
				  "COALESCE(tenant,''), COALESCE(feature,''), COALESCE(pod_uid,''), "
				  "COUNT(*) FILTER (WHERE " NOT_BLOCKED "), "
				  "COUNT(*) FILTER (WHERE NOT (" NOT_BLOCKED "))");

	for (int t = 0; t < NTOKENS && !rc; t++)
		rc = tt_buf_printf(sql, ", TOTAL(%s) FILTER (WHERE " NOT_BLOCKED ")",
				   tt_rec_fields[token_fields[t]].column);
	if (!rc)
		rc = tt_buf_adds(sql, ", TOTAL(cost_usd) FILTER (WHERE " NOT_BLOCKED "), "
				      "COUNT(*) FILTER (WHERE cost_usd IS NULL AND " NOT_BLOCKED "), "
				      "COUNT(ttft_ms) FILTER (WHERE " NOT_BLOCKED "), "
				      "TOTAL(ttft_ms) FILTER (WHERE " NOT_BLOCKED ")");
	for (size_t i = 0; i < NTTFT && !rc; i++)
		rc = tt_buf_printf(sql, ", COUNT(*) FILTER (WHERE ttft_ms / 1000.0 <= %.17g AND "
				   NOT_BLOCKED ")", ttft_le[i]);
	if (!rc)
		rc = tt_buf_adds(sql, ", COUNT(duration_ms) FILTER (WHERE " NOT_BLOCKED "), "
				      "TOTAL(duration_ms) FILTER (WHERE " NOT_BLOCKED ")");
	for (size_t i = 0; i < NDUR && !rc; i++)
		rc = tt_buf_printf(sql, ", COUNT(*) FILTER (WHERE duration_ms / 1000.0 <= %.17g AND "
				   NOT_BLOCKED ")", dur_le[i]);
	if (!rc)
		rc = tt_buf_adds(sql, ", MAX(received_us) FROM records "
				      "WHERE side IS NULL OR side <> 'server' "
				      "GROUP BY 1, 2, 3, 4, 5 ORDER BY MAX(received_us) DESC");
	return rc;
}

/* One row of load_sql into c; returns the row's MAX(received_us). */
static int64_t load_row(sqlite3_stmt *st, struct counts *c)
{
	int col = NLABELS;

	memset(c, 0, sizeof(*c));
	c->calls = to_u64(sqlite3_column_double(st, col++));
	c->blocked = to_u64(sqlite3_column_double(st, col++));
	for (int t = 0; t < NTOKENS; t++)
		c->tokens[t] = to_u64(sqlite3_column_double(st, col++));
	c->cost = finite_or_zero(sqlite3_column_double(st, col++));
	c->unpriced = to_u64(sqlite3_column_double(st, col++));
	c->ttft_n = to_u64(sqlite3_column_double(st, col++));
	c->ttft_sum = finite_or_zero(sqlite3_column_double(st, col++)) / 1000;
	for (size_t i = 0; i < NTTFT; i++)
		c->ttft_b[i] = to_u64(sqlite3_column_double(st, col++));
	c->dur_n = to_u64(sqlite3_column_double(st, col++));
	c->dur_sum = finite_or_zero(sqlite3_column_double(st, col++)) / 1000;
	for (size_t i = 0; i < NDUR; i++)
		c->dur_b[i] = to_u64(sqlite3_column_double(st, col++));
	return sqlite3_column_int64(st, col);
}

struct load_ctx {
	tt_metrics *m;
	int64_t now_us;
};

static int load_read(sqlite3 *db, void *arg)
{
	struct load_ctx *ctx = arg;
	tt_metrics *m = ctx->m;
	tt_buf sql;
	sqlite3_stmt *st = NULL;
	int rc, step;

	tt_buf_init(&sql, 1 << 14);
	if ((rc = load_sql(&sql)))
		goto out;
	if (sqlite3_prepare_v2(db, sql.data, -1, &st, NULL) != SQLITE_OK) {
		rc = TT_EIO;
		goto out;
	}
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *vals[NLABELS];
		size_t lens[NLABELS];
		char key[KEY_MAX];
		struct counts c;
		struct series *s;
		int64_t last = load_row(st, &c);

		if (last > ctx->now_us)
			last = ctx->now_us;
		if (m->opts.idle_us > 0 && ctx->now_us - last >= m->opts.idle_us)
			continue;  /* a live daemon would have expired it already */
		for (int col = 0; col < NLABELS; col++) {
			vals[col] = (const char *)sqlite3_column_text(st, col);
			lens[col] = (size_t)sqlite3_column_bytes(st, col);
			if (!vals[col])
				vals[col] = "";
		}
		s = admit(m, key, make_key(key, vals, lens), ctx->now_us,
			  sat_add(c.calls, c.blocked));
		if (!s) {
			rc = TT_ENOMEM;
			goto out;
		}
		merge(&s->c, &c);
		if (last > s->last_us)
			s->last_us = last;
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
	struct load_ctx ctx = {m, tt_real_us()};
	int rc;

	pthread_mutex_lock(&m->lock);
	m->last_sweep_us = ctx.now_us;  /* nothing loaded is idle: no sweep needed */
	rc = tt_store_read(s, load_read, &ctx);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/* ---- the exposition -------------------------------------------------- */

/* A copy of the series for one scrape, written outside the lock. */
struct snap {
	struct series **v;
	size_t n;
	size_t nlabelled;
	uint64_t dropped, expired;
};

static int take_snapshot(tt_metrics *m, int64_t now_us, struct snap *sn)
{
	int rc = 0;

	pthread_mutex_lock(&m->lock);
	sweep(m, now_us);
	sn->n = 0;
	sn->v = malloc((m->n ? m->n : 1) * sizeof(*sn->v));
	if (!sn->v) {
		rc = TT_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < m->nbuckets; i++)
		for (struct series *s = m->tab[i]; s; s = s->next) {
			struct series *c = malloc(sizeof(*c) + s->keylen);

			if (!c) {
				rc = TT_ENOMEM;
				goto out;
			}
			memcpy(c, s, sizeof(*c) + s->keylen);
			sn->v[sn->n++] = c;
		}
	sn->nlabelled = m->nlabelled;
	sn->dropped = m->dropped;
	sn->expired = m->expired;
out:
	pthread_mutex_unlock(&m->lock);
	return rc;
}

static void free_snapshot(struct snap *sn)
{
	for (size_t i = 0; i < sn->n; i++)
		free(sn->v[i]);
	free(sn->v);
}

/*
 * A label value as the text format wants it: backslash, double quote and
 * line feed escaped; anything else as is (UTF-8), but a NUL, which only a
 * database written before records with one were refused can hold, becomes
 * U+FFFD so that the line stays one line of text.
 */
static int escape_value(tt_buf *b, const char *v, size_t len)
{
	size_t run = 0;
	int rc = 0;

	for (size_t i = 0; i < len && !rc; i++) {
		const char *esc;

		switch (v[i]) {
		case '\\': esc = "\\\\"; break;
		case '"': esc = "\\\""; break;
		case '\n': esc = "\\n"; break;
		case '\0': esc = "\xef\xbf\xbd"; break;
		default: continue;
		}
		rc = tt_buf_add(b, v + run, i - run);
		if (!rc)
			rc = tt_buf_adds(b, esc);
		run = i + 1;
	}
	return rc ? rc : tt_buf_add(b, v + run, len - run);
}

/* `{provider="...",...,pod="..."` without the closing brace, for every line of a series. */
static int label_prefix(tt_buf *b, const struct series *s)
{
	const unsigned char *k = (const unsigned char *)s->key;
	int rc = tt_buf_adds(b, "{");

	for (int i = 0; i < NLABELS && !rc; i++) {
		size_t len = *k++;

		rc = tt_buf_printf(b, "%s%s=\"", i ? "," : "", label_names[i]);
		if (!rc)
			rc = escape_value(b, (const char *)k, len);
		if (!rc)
			rc = tt_buf_adds(b, "\"");
		k += len;
	}
	return rc;
}

/* One sample: name, the series' labels (plus extra="val"), the value text. */
static int line(tt_buf *b, const char *name, const tt_buf *labels, const char *extra,
		const char *val, const char *value)
{
	int rc = tt_buf_adds(b, name);

	if (!rc)
		rc = tt_buf_add(b, labels->data, labels->len);
	if (!rc && extra)
		rc = tt_buf_printf(b, ",%s=\"%s\"", extra, val);
	if (!rc)
		rc = tt_buf_printf(b, "} %s\n", value);
	return rc;
}

static void fmt_u64(char *buf, size_t cap, uint64_t v)
{
	snprintf(buf, cap, "%llu", (unsigned long long)v);
}

/* A double as the text format spells it (+Inf, -Inf, NaN). */
static void fmt_double(char *buf, size_t cap, double v)
{
	if (isnan(v))
		snprintf(buf, cap, "NaN");
	else if (isinf(v))
		snprintf(buf, cap, "%sInf", v > 0 ? "+" : "-");
	else
		snprintf(buf, cap, "%.9g", v);
}

static int family(tt_buf *b, const char *name, const char *type, const char *help)
{
	return tt_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* By provider, then model, tenant, feature, pod: each value as text. */
static int cmp_series(const void *a, const void *b)
{
	const struct series *x = *(struct series *const *)a, *y = *(struct series *const *)b;
	const unsigned char *p = (const unsigned char *)x->key, *q = (const unsigned char *)y->key;

	for (int i = 0; i < NLABELS; i++) {
		size_t lp = *p++, lq = *q++;
		int c = memcmp(p, q, lp < lq ? lp : lq);

		if (c || lp != lq)
			return c ? c : (lp > lq) - (lp < lq);
		p += lp;
		q += lq;
	}
	return 0;
}

enum fam { F_CALLS, F_BLOCKED, F_TOKENS, F_COST, F_UNPRICED, F_TTFT, F_DUR, F_N };

static const struct {
	const char *name, *type, *help;
} fams[F_N] = {
	[F_CALLS] = {"tokentap_calls_total", "counter",
		     "LLM calls made by clients that reached the provider (blocked ones left out)."},
	[F_BLOCKED] = {"tokentap_blocked_calls_total", "counter",
		       "LLM calls the agent blocked (enforce mode): never sent to the provider."},
	[F_TOKENS] = {"tokentap_tokens_total", "counter",
		      "Tokens billed, by type (input includes cache_read and cache_write; "
		      "output includes reasoning)."},
	[F_COST] = {"tokentap_cost_usd_total", "counter", "Cost in US dollars of the priced calls."},
	[F_UNPRICED] = {"tokentap_unpriced_calls_total", "counter",
			"Calls whose cost is unknown (model not in the price table, or no usage)."},
	[F_TTFT] = {"tokentap_ttft_seconds", "histogram",
		    "Time from the end of the request to the first response byte."},
	[F_DUR] = {"tokentap_duration_seconds", "histogram", "Duration of the whole exchange."},
};

static int histogram(tt_buf *b, const char *name, const tt_buf *lab, const struct counts *c,
		     int ttft)
{
	const double *le = ttft ? ttft_le : dur_le;
	const uint64_t *bk = ttft ? c->ttft_b : c->dur_b;
	size_t nle = ttft ? NTTFT : NDUR;
	char metric[64], lebuf[32], val[32];
	int rc = 0;

	snprintf(metric, sizeof(metric), "%s_bucket", name);
	for (size_t k = 0; k < nle && !rc; k++) {
		snprintf(lebuf, sizeof(lebuf), "%g", le[k]);
		fmt_u64(val, sizeof(val), bk[k]);
		rc = line(b, metric, lab, "le", lebuf, val);
	}
	fmt_u64(val, sizeof(val), ttft ? c->ttft_n : c->dur_n);
	if (!rc)
		rc = line(b, metric, lab, "le", "+Inf", val);
	snprintf(metric, sizeof(metric), "%s_sum", name);
	fmt_double(lebuf, sizeof(lebuf), ttft ? c->ttft_sum : c->dur_sum);
	if (!rc)
		rc = line(b, metric, lab, NULL, NULL, lebuf);
	snprintf(metric, sizeof(metric), "%s_count", name);
	if (!rc)
		rc = line(b, metric, lab, NULL, NULL, val);
	return rc;
}

/* Family f's samples for one series. */
static int samples(tt_buf *b, enum fam f, const tt_buf *lab, const struct counts *c)
{
	const char *name = fams[f].name;
	char val[32];
	int rc = 0;

	switch (f) {
	case F_CALLS:
	case F_BLOCKED:
	case F_UNPRICED:
		fmt_u64(val, sizeof(val), f == F_CALLS ? c->calls :
					  f == F_BLOCKED ? c->blocked : c->unpriced);
		return line(b, name, lab, NULL, NULL, val);
	case F_TOKENS:
		for (int t = 0; t < NTOKENS && !rc; t++) {
			fmt_u64(val, sizeof(val), c->tokens[t]);
			rc = line(b, name, lab, "type", token_types[t], val);
		}
		return rc;
	case F_COST:
		fmt_double(val, sizeof(val), c->cost);
		return line(b, name, lab, NULL, NULL, val);
	case F_TTFT:
	case F_DUR:
		return histogram(b, name, lab, c, f == F_TTFT);
	default:
		return 0;
	}
}

/* The usage families; each series' labels escaped once for all its lines. */
static int usage_families(tt_buf *b, const struct snap *sn)
{
	tt_buf *labs = calloc(sn->n ? sn->n : 1, sizeof(*labs));
	int rc = labs ? 0 : TT_ENOMEM;

	for (size_t i = 0; i < sn->n && !rc; i++) {
		tt_buf_init(&labs[i], 8 * KEY_MAX);
		rc = label_prefix(&labs[i], sn->v[i]);
	}
	for (int f = 0; f < F_N && !rc; f++) {
		rc = family(b, fams[f].name, fams[f].type, fams[f].help);
		for (size_t i = 0; i < sn->n && !rc; i++)
			rc = samples(b, (enum fam)f, &labs[i], &sn->v[i]->c);
	}
	for (size_t i = 0; labs && i < sn->n; i++)
		tt_buf_free(&labs[i]);
	free(labs);
	return rc;
}

static int process_families(tt_buf *b, tt_metrics *m, tt_store *st,
			    const struct tt_metrics_counters *cnt, const struct snap *sn)
{
	int rc = family(b, "tokentap_ingested_records_total", "counter",
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
			    "Label sets (provider, model, tenant, feature, pod) with usage, "
			    "the _overflow one included.");
	if (!rc)
		rc = tt_buf_printf(b, "tokentap_series %zu\n", sn->n);
	if (!rc)
		rc = family(b, "tokentap_metrics_series_max", "gauge",
			    "The cap on label sets (config metrics.max_series), _overflow aside.");
	if (!rc)
		rc = tt_buf_printf(b, "tokentap_metrics_series_max %zu\n", m->opts.max_series);
	if (!rc)
		rc = family(b, "tokentap_metrics_series_dropped_total", "counter",
			    "Records whose new label set found the series cap reached: "
			    "counted in the _overflow series instead.");
	if (!rc)
		rc = tt_buf_printf(b, "tokentap_metrics_series_dropped_total %llu\n",
				   (unsigned long long)sn->dropped);
	if (!rc)
		rc = family(b, "tokentap_metrics_series_expired_total", "counter",
			    "Series dropped after no record for metrics.series_idle_s.");
	if (!rc)
		rc = tt_buf_printf(b, "tokentap_metrics_series_expired_total %llu\n",
				   (unsigned long long)sn->expired);
	return rc;
}

int tt_metrics_render(tt_metrics *m, tt_store *st, const struct tt_metrics_counters *cnt,
		      tt_buf *b)
{
	struct snap sn = {0};
	int rc = take_snapshot(m, tt_real_us(), &sn);

	if (!rc) {
		qsort(sn.v, sn.n, sizeof(*sn.v), cmp_series);  /* stable output, easy to diff */
		rc = usage_families(b, &sn);
	}
	if (!rc)
		rc = process_families(b, m, st, cnt, &sn);
	free_snapshot(&sn);
	return rc;
}
