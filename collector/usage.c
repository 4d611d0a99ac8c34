/* usage.c - roll-ups for /v1/usage and tokentap report, see usage.h. */
#include "usage.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "rec.h"
#include "rollup.h"
#include "tokentap/error.h"

const char *tt_usage_column(const char *by)
{
	int d = tt_rollup_dim(by);

	return d < 0 ? NULL : tt_rollup_dims[d].expr;
}

int tt_usage_parse_time(const char *s, int64_t now_us, int64_t *out)
{
	size_t len = strlen(s);
	char *end;
	long long v;

	if (len == 0 || len > 64)
		return TT_EINVAL;
	if (tt_rec_parse_ts(s, len, out) == 0)
		return 0;
	if (len == 10 && s[4] == '-' && s[7] == '-') {
		char full[32];

		snprintf(full, sizeof(full), "%sT00:00:00Z", s);
		return tt_rec_parse_ts(full, strlen(full), out);
	}
	if (s[0] < '0' || s[0] > '9')
		return TT_EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || v < 0 || v > 100LL * 365 * 86400 * 100)
		return TT_EINVAL;
	if (*end == '\0') {
		*out = (int64_t)v * 1000000;
		return 0;
	}
	if (end[1] != '\0')
		return TT_EINVAL;
	switch (*end) {
	case 's': break;
	case 'm': v *= 60; break;
	case 'h': v *= 3600; break;
	case 'd': v *= 86400; break;
	case 'w': v *= 7 * 86400; break;
	default: return TT_EINVAL;
	}
	if (v > 100LL * 365 * 86400)
		return TT_EINVAL;
	*out = now_us - (int64_t)v * 1000000;
	return 0;
}

struct usage_ctx {
	const struct tt_usage_query *q;
	int dim;
	tt_rollup_map *m;
	char *err;
	size_t errlen;
};

/* ceil and floor of us / hour, without overflow at the ends of int64. */
static int64_t hour_ceil(int64_t us)
{
	return us / TT_ROLLUP_HOUR_US + (us % TT_ROLLUP_HOUR_US > 0);
}

static int64_t hour_floor(int64_t us)
{
	return us / TT_ROLLUP_HOUR_US - (us % TT_ROLLUP_HOUR_US < 0);
}

/*
 * The window's sums by key into c->m: the buckets of its whole hours, and
 * the records of the partial hours at its edges (a since or until inside
 * an hour).  Without buckets that cover the records (an older database
 * read by tokentap report --db, or q->scan): the records of the window.
 */
static int gather(sqlite3 *db, struct usage_ctx *c)
{
	int64_t since = c->q->since_us, until = c->q->until_us, h0, h1;
	int rc = 0;

	if (since >= until)
		return 0;
	h0 = hour_ceil(since);
	h1 = hour_floor(until);
	if (c->q->scan || h0 >= h1 || !tt_rollup_ready(db))
		return tt_rollup_read_records(db, c->dim, since, until, c->m);
	if (since < h0 * TT_ROLLUP_HOUR_US)
		rc = tt_rollup_read_records(db, c->dim, since, h0 * TT_ROLLUP_HOUR_US, c->m);
	if (!rc)
		rc = tt_rollup_read_buckets(db, c->dim, h0, h1, c->m);
	if (!rc && h1 * TT_ROLLUP_HOUR_US < until)
		rc = tt_rollup_read_records(db, c->dim, h1 * TT_ROLLUP_HOUR_US, until, c->m);
	return rc;
}

/* One read transaction: the buckets and the edges are the same snapshot. */
static int usage_read(sqlite3 *db, void *arg)
{
	struct usage_ctx *c = arg;
	int rc;

	if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		rc = TT_EIO;
	else
		rc = gather(db, c);
	if (rc == TT_EIO)
		snprintf(c->err, c->errlen, "database: %s", sqlite3_errmsg(db));
	else if (rc)
		snprintf(c->err, c->errlen, "out of memory");
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	return rc;
}

static int cmp_key(const tt_rollup_map *m, const struct tt_rollup_entry *a,
		   const struct tt_rollup_entry *b)
{
	size_t n = a->klen < b->klen ? a->klen : b->klen;
	int d;

	if (a->knull || b->knull)
		return b->knull - a->knull;  /* null first, as SQL orders it */
	d = memcmp(tt_rollup_map_key(m, a), tt_rollup_map_key(m, b), n);
	return d ? d : (a->klen > b->klen) - (a->klen < b->klen);
}

/* Biggest cost first, unpriced rows last, then most calls, then the key. */
static int cmp_rows(const void *pa, const void *pb, void *map)
{
	const struct tt_rollup_entry *a = *(const struct tt_rollup_entry *const *)pa;
	const struct tt_rollup_entry *b = *(const struct tt_rollup_entry *const *)pb;
	int64_t na = a->s.calls + a->s.blocked_calls, nb = b->s.calls + b->s.blocked_calls;

	if ((a->s.priced == 0) != (b->s.priced == 0))
		return a->s.priced == 0 ? 1 : -1;
	if (a->s.cost_usd != b->s.cost_usd)
		return a->s.cost_usd > b->s.cost_usd ? -1 : 1;
	if (na != nb)
		return na > nb ? -1 : 1;
	return cmp_key(map, a, b);
}

/* Token sums may pass 2^63 (1,100 records of 2^53): printed exactly. */
static int add_int(tt_buf *b, const char *sep, const char *name, tt_i128 v)
{
	char num[48];

	tt_rollup_i128_str(v, num, sizeof(num));
	return tt_buf_printf(b, "%s\"%s\":%s", sep, name, num);
}

/* The fields of a row after its key (sep ","), or of the total (sep ""). */
static int add_sums(tt_buf *b, const char *sep, const struct tt_rollup_sums *s)
{
	static const char *const tok[TT_ROLLUP_NTOK] = {"input_tokens", "output_tokens",
		"cache_read_tokens", "cache_write_tokens", "reasoning_tokens"};
	int rc = add_int(b, sep, "calls", s->calls);

	for (int t = 0; t < TT_ROLLUP_NTOK && !rc; t++)
		rc = add_int(b, ",", tok[t], s->tokens[t]);
	if (!rc && s->priced)
		rc = tt_buf_printf(b, ",\"cost_usd\":%.12g", s->cost_usd);
	else if (!rc)
		rc = tt_buf_adds(b, ",\"cost_usd\":null");
	if (!rc)
		rc = add_int(b, ",", "unpriced_calls", s->unpriced_calls);
	if (!rc)
		rc = tt_buf_printf(b, ",\"cache_savings_usd\":%.12g", s->cache_savings_usd);
	if (!rc)
		rc = add_int(b, ",", "blocked_calls", s->blocked_calls);
	return rc;
}

static int add_row(tt_buf *b, const tt_rollup_map *m, const struct tt_rollup_entry *e)
{
	const char *k = tt_rollup_map_key(m, e);
	int rc = tt_buf_adds(b, k ? "{\"key\":\"" : "{\"key\":null");

	if (!rc && k)
		rc = tt_buf_json_str(b, k, e->klen);
	if (!rc && k)
		rc = tt_buf_adds(b, "\"");
	if (!rc)
		rc = add_sums(b, ",", &e->s);
	return rc ? rc : tt_buf_adds(b, "}");
}

static int add_bound(tt_buf *b, const char *name, int64_t v, int open)
{
	char ts[40];

	if (open)
		return tt_buf_printf(b, ",\"%s\":null", name);
	tt_rec_format_ts(v, ts, sizeof(ts));
	return tt_buf_printf(b, ",\"%s\":\"%s\"", name, ts);
}

static int render(const struct tt_usage_query *q, tt_rollup_map *m, tt_buf *out)
{
	size_t n = tt_rollup_map_count(m);
	struct tt_rollup_entry **v = malloc((n ? n : 1) * sizeof(*v));
	struct tt_rollup_sums total = {0};
	int rc;

	if (!v)
		return TT_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		v[i] = tt_rollup_map_entry(m, i);
		tt_rollup_sums_add(&total, &v[i]->s);
	}
	qsort_r(v, n, sizeof(*v), cmp_rows, m);
	rc = tt_buf_adds(out, "{\"by\":\"");
	if (!rc)
		rc = tt_buf_json_str(out, q->by, strlen(q->by));
	if (!rc)
		rc = tt_buf_adds(out, "\"");
	if (!rc)
		rc = add_bound(out, "since", q->since_us, q->since_us == INT64_MIN);
	if (!rc)
		rc = add_bound(out, "until", q->until_us, q->until_us == INT64_MAX);
	if (!rc)
		rc = tt_buf_adds(out, ",\"rows\":[");
	for (size_t i = 0; i < n && !rc; i++) {
		if (i)
			rc = tt_buf_adds(out, ",");
		if (!rc)
			rc = add_row(out, m, v[i]);
	}
	if (!rc)
		rc = tt_buf_adds(out, "],\"total\":{");
	if (!rc)
		rc = add_sums(out, "", &total);
	if (!rc)
		rc = tt_buf_adds(out, "}}");
	free(v);
	return rc;
}

int tt_usage_json(tt_store *s, const struct tt_usage_query *q, tt_buf *out, char *err,
		  size_t errlen)
{
	struct usage_ctx c = {.q = q, .err = err, .errlen = errlen};
	int rc;

	c.dim = tt_rollup_dim(q->by);
	if (c.dim < 0) {
		snprintf(err, errlen, "by: expected one of " TT_USAGE_BY_LIST);
		return TT_EINVAL;
	}
	if (!(c.m = tt_rollup_map_new())) {
		snprintf(err, errlen, "out of memory");
		return TT_ENOMEM;
	}
	rc = tt_store_read(s, usage_read, &c);
	if (!rc && (rc = render(q, c.m, out)))
		snprintf(err, errlen, "result too large");
	tt_rollup_map_free(c.m);
	return rc;
}
