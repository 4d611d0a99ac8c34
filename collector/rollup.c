/* rollup.c - hourly buckets per /v1/usage dimension, see rollup.h. */
#include "rollup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tokentap/error.h"

/* Bumped when the buckets' meaning changes: every database is rolled up again. */
#define ROLLUP_VERSION "1"
#define LO_MASK 4294967295LL  /* 2^32 - 1 */

static const struct {
	int field, fallback;  /* the record field of the key; -1: none */
} dim_fields[] = {
	{TT_F_TASK, -1},
	{TT_F_TENANT, -1},
	{TT_F_FEATURE, -1},
	{TT_F_MODEL, -1},
	{TT_F_PROVIDER, -1},
	{TT_F_POD_UID, -1},
	{TT_F_EXE, TT_F_COMM},
	{TT_F_APP, -1},
};

const struct tt_rollup_dim tt_rollup_dims[] = {
	{"task", "task"},
	{"tenant", "tenant"},
	{"feature", "feature"},
	{"model", "model"},
	{"provider", "provider"},
	{"pod", "pod_uid"},
	/* The program, not the pid: pids are many and short-lived. */
	{"process", "COALESCE(exe, comm)"},
	/* The program as a person names it: the script an interpreter runs. */
	{"app", "app"},
};
const int tt_rollup_ndims = (int)(sizeof(tt_rollup_dims) / sizeof(tt_rollup_dims[0]));

static const int tok_fields[TT_ROLLUP_NTOK] = {TT_F_INPUT_TOKENS, TT_F_OUTPUT_TOKENS,
	TT_F_CACHE_READ_TOKENS, TT_F_CACHE_WRITE_TOKENS, TT_F_REASONING_TOKENS};

int tt_rollup_dim(const char *by)
{
	for (int i = 0; by && i < tt_rollup_ndims; i++)
		if (strcmp(tt_rollup_dims[i].by, by) == 0)
			return i;
	return -1;
}

int64_t tt_rollup_hour(int64_t ts_us)
{
	int64_t h = ts_us / TT_ROLLUP_HOUR_US;

	return ts_us % TT_ROLLUP_HOUR_US < 0 ? h - 1 : h;
}

void tt_rollup_sums_add(struct tt_rollup_sums *to, const struct tt_rollup_sums *s)
{
	to->calls += s->calls;
	to->blocked_calls += s->blocked_calls;
	to->priced += s->priced;
	to->unpriced_calls += s->unpriced_calls;
	for (int t = 0; t < TT_ROLLUP_NTOK; t++)
		to->tokens[t] += s->tokens[t];
	to->cost_usd += s->cost_usd;
	to->cache_savings_usd += s->cache_savings_usd;
}

void tt_rollup_i128_str(tt_i128 v, char *buf, size_t cap)
{
	char tmp[48];
	int i = (int)sizeof(tmp) - 1, neg = v < 0;
	unsigned __int128 u = neg ? -(unsigned __int128)v : (unsigned __int128)v;

	tmp[i] = '\0';
	do {
		tmp[--i] = (char)('0' + (int)(u % 10));
		u /= 10;
	} while (u);
	if (neg)
		tmp[--i] = '-';
	snprintf(buf, cap, "%s", tmp + i);
}

/* ---- the map ---- */

struct tt_rollup_map {
	struct tt_rollup_entry *e;
	size_t n, cap;
	uint32_t *slot;   /* index + 1 into e; 0: empty */
	size_t nslot;     /* a power of two, at least twice n */
	tt_buf keys;
};

tt_rollup_map *tt_rollup_map_new(void)
{
	tt_rollup_map *m = calloc(1, sizeof(*m));

	if (m)
		tt_buf_init(&m->keys, (size_t)1 << 31);
	return m;
}

void tt_rollup_map_free(tt_rollup_map *m)
{
	if (!m)
		return;
	free(m->e);
	free(m->slot);
	tt_buf_free(&m->keys);
	free(m);
}

void tt_rollup_map_clear(tt_rollup_map *m)
{
	m->n = 0;
	if (m->slot)
		memset(m->slot, 0, m->nslot * sizeof(*m->slot));
	tt_buf_reset(&m->keys);
}

size_t tt_rollup_map_count(const tt_rollup_map *m)
{
	return m->n;
}

struct tt_rollup_entry *tt_rollup_map_entry(tt_rollup_map *m, size_t i)
{
	return &m->e[i];
}

const char *tt_rollup_map_key(const tt_rollup_map *m, const struct tt_rollup_entry *e)
{
	return e->knull ? NULL : m->keys.data + e->koff;
}

static uint64_t hash(int dim, int64_t hour, const char *key, size_t klen)
{
	uint64_t h = 1469598103934665603ULL ^ (uint64_t)dim ^ (uint64_t)hour * 0x9e3779b97f4a7c15ULL;

	if (!key)
		return h * 1099511628211ULL;
	for (size_t i = 0; i < klen; i++)
		h = (h ^ (unsigned char)key[i]) * 1099511628211ULL;
	return h ^ h >> 29;
}

static int grow(tt_rollup_map *m)
{
	size_t nslot = m->nslot ? m->nslot * 2 : 1024;
	uint32_t *slot = calloc(nslot, sizeof(*slot));
	struct tt_rollup_entry *e = realloc(m->e, nslot / 2 * sizeof(*e));

	if (!slot || !e) {
		free(slot);
		if (e)
			m->e = e;
		return TT_ENOMEM;
	}
	m->e = e;
	m->cap = nslot / 2;
	free(m->slot);
	m->slot = slot;
	m->nslot = nslot;
	for (size_t i = 0; i < m->n; i++) {
		const struct tt_rollup_entry *x = &m->e[i];
		size_t j = hash(x->dim, x->hour, tt_rollup_map_key(m, x), x->klen) & (nslot - 1);

		while (slot[j])
			j = (j + 1) & (nslot - 1);
		slot[j] = (uint32_t)(i + 1);
	}
	return 0;
}

static int same(const tt_rollup_map *m, const struct tt_rollup_entry *e, int dim, int64_t hour,
		const char *key, size_t klen)
{
	if (e->dim != dim || e->hour != hour || e->knull != !key)
		return 0;
	return !key || (e->klen == klen && memcmp(m->keys.data + e->koff, key, klen) == 0);
}

int tt_rollup_map_add(tt_rollup_map *m, int dim, int64_t hour, const char *key, size_t klen,
		      const struct tt_rollup_sums *s)
{
	struct tt_rollup_entry *e;
	size_t j;

	if (m->n >= m->cap && grow(m))
		return TT_ENOMEM;
	j = hash(dim, hour, key, klen) & (m->nslot - 1);
	for (; m->slot[j]; j = (j + 1) & (m->nslot - 1)) {
		e = &m->e[m->slot[j] - 1];
		if (same(m, e, dim, hour, key, klen)) {
			tt_rollup_sums_add(&e->s, s);
			return 0;
		}
	}
	e = &m->e[m->n];
	memset(e, 0, sizeof(*e));
	e->dim = dim;
	e->hour = hour;
	e->knull = !key;
	e->koff = (uint32_t)m->keys.len;
	e->klen = (uint32_t)klen;
	if (key && (klen > UINT32_MAX || tt_buf_add(&m->keys, key, klen) ||
		    tt_buf_add(&m->keys, "", 1)))
		return TT_ENOMEM;
	e->s = *s;
	m->slot[j] = (uint32_t)++m->n;
	return 0;
}

static int rec_blocked(const tt_rec *r, const tt_buf *arena)
{
	size_t len;
	const char *err = tt_rec_str(r, TT_F_ERROR, arena, &len);

	if (tt_rec_int(r, TT_F_BLOCKED, 0) == 1)
		return 1;
	return err && len == 7 && memcmp(err, "blocked", 7) == 0;
}

static int rec_server(const tt_rec *r, const tt_buf *arena)
{
	size_t len;
	const char *side = tt_rec_str(r, TT_F_SIDE, arena, &len);

	return side && len == 6 && memcmp(side, "server", 6) == 0;
}

int tt_rollup_map_add_rec(tt_rollup_map *m, const tt_rec *r, const tt_buf *arena,
			  int64_t now_us)
{
	struct tt_rollup_sums s = {0};
	int64_t hour = tt_rollup_hour(tt_rec_int(r, TT_F_TS, now_us));
	int blocked = rec_blocked(r, arena);
	int rc = 0;

	if (rec_server(r, arena))
		return 0;
	s.calls = !blocked;
	s.blocked_calls = blocked;
	s.priced = r->priced != 0;
	s.unpriced_calls = !r->priced && !blocked;
	for (int t = 0; t < TT_ROLLUP_NTOK; t++)
		s.tokens[t] = tt_rec_int(r, tok_fields[t], 0);
	if (r->priced) {
		s.cost_usd = r->cost_usd;
		s.cache_savings_usd = r->cache_savings_usd;
	}
	for (int d = 0; d < tt_rollup_ndims && !rc; d++) {
		int f = dim_fields[d].field;
		const char *key;
		size_t len = 0;

		if (tt_rec_is_null(r, f) && dim_fields[d].fallback >= 0)
			f = dim_fields[d].fallback;
		key = tt_rec_str(r, f, arena, &len);
		rc = tt_rollup_map_add(m, d, hour, key, len, &s);
	}
	return rc;
}

/* ---- the table ---- */

#define TOK_COLS(p) p "_hi INTEGER NOT NULL, " p "_lo INTEGER NOT NULL, "

const char tt_rollup_schema[] =
	"CREATE TABLE IF NOT EXISTS rollup (\n"
	"  dim INTEGER NOT NULL, hour INTEGER NOT NULL, knull INTEGER NOT NULL,\n"
	"  key TEXT NOT NULL, calls INTEGER NOT NULL, blocked_calls INTEGER NOT NULL,\n"
	"  priced INTEGER NOT NULL, unpriced_calls INTEGER NOT NULL,\n  "
	TOK_COLS("input") TOK_COLS("output") TOK_COLS("cache_read") TOK_COLS("cache_write")
	TOK_COLS("reasoning") "\n"
	"  cost_usd REAL NOT NULL, cache_savings_usd REAL NOT NULL,\n"
	"  PRIMARY KEY (dim, hour, knull, key)\n) WITHOUT ROWID;\n";

/* hi * 2^32 + lo, lo in [0, 2^32): the carry of lo goes into hi. */
#define TOK_UPSERT(p) \
	p "_hi = " p "_hi + excluded." p "_hi + ((" p "_lo + excluded." p "_lo) >> 32), " \
	p "_lo = (" p "_lo + excluded." p "_lo) & 4294967295, "

static const char upsert_sql[] =
	"INSERT INTO rollup VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)\n"
	"ON CONFLICT (dim, hour, knull, key) DO UPDATE SET\n"
	"  calls = calls + excluded.calls, blocked_calls = blocked_calls + excluded.blocked_calls,\n"
	"  priced = priced + excluded.priced,\n"
	"  unpriced_calls = unpriced_calls + excluded.unpriced_calls,\n  "
	TOK_UPSERT("input") TOK_UPSERT("output") TOK_UPSERT("cache_read")
	TOK_UPSERT("cache_write") TOK_UPSERT("reasoning") "\n"
	"  cost_usd = cost_usd + excluded.cost_usd,\n"
	"  cache_savings_usd = cache_savings_usd + excluded.cache_savings_usd";

static int bind_entry(sqlite3_stmt *st, const tt_rollup_map *m, const struct tt_rollup_entry *e)
{
	const char *key = tt_rollup_map_key(m, e);
	int col = 1;

	sqlite3_bind_int(st, col++, e->dim);
	sqlite3_bind_int64(st, col++, e->hour);
	sqlite3_bind_int(st, col++, e->knull);
	sqlite3_bind_text(st, col++, key ? key : "", (int)e->klen, SQLITE_STATIC);
	sqlite3_bind_int64(st, col++, e->s.calls);
	sqlite3_bind_int64(st, col++, e->s.blocked_calls);
	sqlite3_bind_int64(st, col++, e->s.priced);
	sqlite3_bind_int64(st, col++, e->s.unpriced_calls);
	for (int t = 0; t < TT_ROLLUP_NTOK; t++) {
		/* Arithmetic shift: hi * 2^32 + lo holds for any sign. */
		sqlite3_bind_int64(st, col++, (int64_t)(e->s.tokens[t] >> 32));
		sqlite3_bind_int64(st, col++, (int64_t)(e->s.tokens[t] & LO_MASK));
	}
	sqlite3_bind_double(st, col++, e->s.cost_usd);
	sqlite3_bind_double(st, col, e->s.cache_savings_usd);
	return 0;
}

int tt_rollup_flush(sqlite3 *db, sqlite3_stmt **stmt, tt_rollup_map *m)
{
	int rc = 0;

	if (!*stmt && sqlite3_prepare_v3(db, upsert_sql, -1, SQLITE_PREPARE_PERSISTENT, stmt,
					 NULL) != SQLITE_OK)
		return TT_EIO;
	for (size_t i = 0; i < m->n && !rc; i++) {
		bind_entry(*stmt, m, &m->e[i]);
		if (sqlite3_step(*stmt) != SQLITE_DONE)
			rc = TT_EIO;
		sqlite3_reset(*stmt);
	}
	sqlite3_clear_bindings(*stmt);
	tt_rollup_map_clear(m);
	return rc;
}

static int exec1(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : TT_EIO;
}

int tt_rollup_mark(sqlite3 *db, int64_t max_seq)
{
	char sql[128];

	snprintf(sql, sizeof(sql), "INSERT OR REPLACE INTO meta VALUES ('rollup_seq', '%lld')",
		 (long long)max_seq);
	return exec1(db, sql);
}

int tt_rollup_disable(sqlite3 *db)
{
	return exec1(db, "DELETE FROM meta WHERE key IN ('rollup', 'rollup_seq')");
}

int tt_rollup_ready(sqlite3 *db)
{
	sqlite3_stmt *st;
	int ok = 0;

	/* The seq check catches records added by a tokentapd without roll-ups. */
	if (sqlite3_prepare_v2(db,
			       "SELECT (SELECT value FROM meta WHERE key = 'rollup') = '" ROLLUP_VERSION
			       "' AND (SELECT CAST(value AS INTEGER) FROM meta WHERE key = "
			       "'rollup_seq') = (SELECT COALESCE(max(seq), 0) FROM records)",
			       -1, &st, NULL) != SQLITE_OK)
		return 0;
	if (sqlite3_step(st) == SQLITE_ROW)
		ok = sqlite3_column_int(st, 0) == 1;
	sqlite3_finalize(st);
	return ok;
}

/* ---- building the buckets of an existing database ---- */

#define BUILD_FLUSH 200000      /* map entries written at a time */
#define BUILD_VERBOSE 200000    /* records above which progress is printed */

static int64_t count_records(sqlite3 *db)
{
	sqlite3_stmt *st;
	int64_t n = 0;

	if (sqlite3_prepare_v2(db, "SELECT max(seq) FROM records", -1, &st, NULL) != SQLITE_OK)
		return 0;
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One stored row (the columns of build_sql) into the map's buckets. */
static int add_row(tt_rollup_map *m, sqlite3_stmt *st)
{
	struct tt_rollup_sums s = {0};
	int64_t hour = tt_rollup_hour(sqlite3_column_int64(st, 0));
	int blocked = sqlite3_column_int(st, 1);
	int priced = sqlite3_column_type(st, 7) != SQLITE_NULL;
	int rc = 0;

	s.calls = !blocked;
	s.blocked_calls = blocked;
	s.priced = priced;
	s.unpriced_calls = !priced && !blocked;
	for (int t = 0; t < TT_ROLLUP_NTOK; t++)
		s.tokens[t] = sqlite3_column_int64(st, 2 + t);
	s.cost_usd = sqlite3_column_double(st, 7);
	s.cache_savings_usd = priced ? sqlite3_column_double(st, 8) : 0;
	for (int d = 0; d < tt_rollup_ndims && !rc; d++) {
		int col = 9 + d;
		const char *key = (const char *)sqlite3_column_text(st, col);

		rc = tt_rollup_map_add(m, d, hour, key, (size_t)sqlite3_column_bytes(st, col), &s);
	}
	return rc;
}

static int build_sql(char *sql, size_t cap)
{
	int n = snprintf(sql, cap,
			 "SELECT ts_us, " TT_ROLLUP_BLOCKED_SQL ", COALESCE(input_tokens, 0), "
			 "COALESCE(output_tokens, 0), COALESCE(cache_read_tokens, 0), "
			 "COALESCE(cache_write_tokens, 0), COALESCE(reasoning_tokens, 0), cost_usd, "
			 "cache_savings_usd");

	for (int d = 0; d < tt_rollup_ndims && n > 0 && (size_t)n < cap; d++)
		n += snprintf(sql + n, cap - (size_t)n, ", %s", tt_rollup_dims[d].expr);
	if (n > 0 && (size_t)n < cap)
		n += snprintf(sql + n, cap - (size_t)n,
			      " FROM records WHERE side IS NOT 'server' ORDER BY seq");
	return n > 0 && (size_t)n < cap ? 0 : TT_ETRUNCATED;
}

static int build_rows(sqlite3 *db, const char *path, int64_t total, int64_t *done)
{
	tt_rollup_map *m = tt_rollup_map_new();
	sqlite3_stmt *st = NULL, *ups = NULL;
	char sql[1024];
	int rc = m ? build_sql(sql, sizeof(sql)) : TT_ENOMEM;
	int step = SQLITE_DONE;

	if (!rc && sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		rc = TT_EIO;
	while (!rc && (step = sqlite3_step(st)) == SQLITE_ROW) {
		rc = add_row(m, st);
		if (!rc && tt_rollup_map_count(m) >= BUILD_FLUSH)
			rc = tt_rollup_flush(db, &ups, m);
		if (++*done % 1000000 == 0 && total > BUILD_VERBOSE)
			fprintf(stderr, "tokentapd: database %s: rolled up %lld of %lld records\n", path,
				(long long)*done, (long long)total);
	}
	if (!rc && step != SQLITE_DONE)
		rc = TT_EIO;
	if (!rc)
		rc = tt_rollup_flush(db, &ups, m);
	sqlite3_finalize(st);
	sqlite3_finalize(ups);
	tt_rollup_map_free(m);
	return rc;
}

int tt_rollup_build(sqlite3 *db, const char *path, char *err, size_t errlen)
{
	int64_t total = count_records(db), done = 0;
	double t0 = mono_s();
	int rc;

	if (total > BUILD_VERBOSE)
		fprintf(stderr, "tokentapd: database %s: rolling up %lld records by hour "
			"(once; /v1/usage then reads the buckets)\n", path, (long long)total);
	if ((rc = exec1(db, "BEGIN IMMEDIATE")))
		goto fail;
	if ((rc = exec1(db, "DELETE FROM rollup")) || (rc = build_rows(db, path, total, &done)) ||
	    (rc = exec1(db, "INSERT OR REPLACE INTO meta VALUES ('rollup', '" ROLLUP_VERSION "')")) ||
	    (rc = tt_rollup_mark(db, count_records(db))) || (rc = exec1(db, "COMMIT")))
		goto fail;
	if (total > BUILD_VERBOSE)
		fprintf(stderr, "tokentapd: database %s: %lld client records rolled up in %.1f s\n",
			path, (long long)done, mono_s() - t0);
	return 0;
fail:
	snprintf(err, errlen, "database %s: rolling up the records: %s", path,
		 rc == TT_ENOMEM ? "out of memory" : sqlite3_errmsg(db));
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

/* ---- reading ---- */

/* Columns: knull, key, calls, blocked, priced, unpriced, 5 x (hi, lo), cost, savings. */
static int read_sums(sqlite3_stmt *st, tt_rollup_map *m)
{
	int step, rc = 0;

	while (!rc && (step = sqlite3_step(st)) == SQLITE_ROW) {
		struct tt_rollup_sums s = {0};
		const char *key = (const char *)sqlite3_column_text(st, 1);
		size_t klen = (size_t)sqlite3_column_bytes(st, 1);
		int col = 2;

		if (sqlite3_column_int(st, 0))
			key = NULL;
		s.calls = sqlite3_column_int64(st, col++);
		s.blocked_calls = sqlite3_column_int64(st, col++);
		s.priced = sqlite3_column_int64(st, col++);
		s.unpriced_calls = sqlite3_column_int64(st, col++);
		for (int t = 0; t < TT_ROLLUP_NTOK; t++, col += 2)
			s.tokens[t] = (tt_i128)sqlite3_column_int64(st, col) * ((tt_i128)1 << 32) +
				      sqlite3_column_int64(st, col + 1);
		s.cost_usd = sqlite3_column_double(st, col++);
		s.cache_savings_usd = sqlite3_column_double(st, col);
		rc = tt_rollup_map_add(m, 0, 0, key, key ? klen : 0, &s);
	}
	if (rc)
		return rc;
	return step == SQLITE_DONE ? 0 : TT_EIO;
}

/* The bucket rows themselves, summed by key in the map (128-bit, no SQL sort). */
int tt_rollup_read_buckets(sqlite3 *db, int dim, int64_t h0, int64_t h1, tt_rollup_map *m)
{
	static const char sql[] =
		"SELECT knull, key, calls, blocked_calls, priced, unpriced_calls, input_hi, input_lo, "
		"output_hi, output_lo, cache_read_hi, cache_read_lo, cache_write_hi, cache_write_lo, "
		"reasoning_hi, reasoning_lo, cost_usd, cache_savings_usd FROM rollup "
		"WHERE dim = ?1 AND hour >= ?2 AND hour < ?3";
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return TT_EIO;
	sqlite3_bind_int(st, 1, dim);
	sqlite3_bind_int64(st, 2, h0);
	sqlite3_bind_int64(st, 3, h1);
	rc = read_sums(st, m);
	sqlite3_finalize(st);
	return rc;
}

/* SUM of a token column's two 32-bit halves: never "integer overflow". */
#define TOK_SUM(c) \
	"SUM(COALESCE(" c ", 0) >> 32), SUM(COALESCE(" c ", 0) & 4294967295), "

int tt_rollup_read_records(sqlite3 *db, int dim, int64_t since_us, int64_t until_us,
			   tt_rollup_map *m)
{
	sqlite3_stmt *st;
	char sql[1536];
	int rc;

	snprintf(sql, sizeof(sql),
		 "SELECT k IS NULL, k, SUM(NOT b), SUM(b), COUNT(cost_usd), "
		 "SUM(cost_usd IS NULL AND NOT b), " TOK_SUM("input_tokens") TOK_SUM("output_tokens")
		 TOK_SUM("cache_read_tokens") TOK_SUM("cache_write_tokens")
		 TOK_SUM("reasoning_tokens") "TOTAL(cost_usd), TOTAL(cache_savings_usd) "
		 "FROM (SELECT *, %s AS k, " TT_ROLLUP_BLOCKED_SQL " AS b FROM records "
		 "WHERE ts_us >= ?1 AND ts_us < ?2 AND side IS NOT 'server') GROUP BY 1, 2",
		 tt_rollup_dims[dim].expr);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return TT_EIO;
	sqlite3_bind_int64(st, 1, since_us);
	sqlite3_bind_int64(st, 2, until_us);
	rc = read_sums(st, m);
	sqlite3_finalize(st);
	return rc;
}
