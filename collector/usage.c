/* usage.c - roll-ups for /v1/usage and tokentap report, see usage.h. */
#include "usage.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "rec.h"
#include "tokentap/error.h"

static const struct {
	const char *by, *expr;
} bys[] = {
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

const char *tt_usage_column(const char *by)
{
	if (!by)
		return NULL;
	for (size_t i = 0; i < sizeof(bys) / sizeof(bys[0]); i++)
		if (strcmp(bys[i].by, by) == 0)
			return bys[i].expr;
	return NULL;
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
	const char *expr;
	tt_buf *out;
	char *err;
	size_t errlen;
};

static int add_num(tt_buf *b, const char *sep, const char *name, sqlite3_stmt *st, int col,
		   int real)
{
	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		return tt_buf_printf(b, "%s\"%s\":null", sep, name);
	if (real)
		return tt_buf_printf(b, "%s\"%s\":%.12g", sep, name, sqlite3_column_double(st, col));
	return tt_buf_printf(b, "%s\"%s\":%lld", sep, name,
			     (long long)sqlite3_column_int64(st, col));
}

static int add_row(tt_buf *b, sqlite3_stmt *st, int with_key)
{
	static const char *const names[] = {"calls", "input_tokens", "output_tokens",
		"cache_read_tokens", "cache_write_tokens", "reasoning_tokens", "cost_usd",
		"unpriced_calls", "cache_savings_usd"};
	int rc = tt_buf_adds(b, "{");

	if (!rc && with_key) {
		if (sqlite3_column_type(st, 0) == SQLITE_NULL) {
			rc = tt_buf_adds(b, "\"key\":null");
		} else {
			const char *k = (const char *)sqlite3_column_text(st, 0);

			rc = tt_buf_adds(b, "\"key\":\"");
			if (!rc)
				rc = tt_buf_json_str(b, k ? k : "", (size_t)sqlite3_column_bytes(st, 0));
			if (!rc)
				rc = tt_buf_adds(b, "\"");
		}
	}
	for (int i = 0; i < 9 && !rc; i++)
		rc = add_num(b, (i == 0 && !with_key) ? "" : ",", names[i], st, i + 1,
			     i == 6 || i == 8);
	if (!rc)
		rc = tt_buf_adds(b, "}");
	return rc;
}

static int add_bound(tt_buf *b, const char *name, int64_t v, int open)
{
	char ts[40];

	if (open)
		return tt_buf_printf(b, ",\"%s\":null", name);
	tt_rec_format_ts(v, ts, sizeof(ts));
	return tt_buf_printf(b, ",\"%s\":\"%s\"", name, ts);
}

#define AGG_COLUMNS                                                                    \
	"COUNT(*), SUM(COALESCE(input_tokens,0)), SUM(COALESCE(output_tokens,0)), "    \
	"SUM(COALESCE(cache_read_tokens,0)), SUM(COALESCE(cache_write_tokens,0)), "    \
	"SUM(COALESCE(reasoning_tokens,0)), SUM(cost_usd), "                           \
	"SUM(CASE WHEN cost_usd IS NULL THEN 1 ELSE 0 END), "                          \
	"TOTAL(cache_savings_usd)"
#define CLIENT_WHERE "(side IS NULL OR side <> 'server') AND ts_us >= ?1 AND ts_us < ?2"

static int usage_read(sqlite3 *db, void *arg)
{
	struct usage_ctx *c = arg;
	sqlite3_stmt *st = NULL;
	char sql[1024];
	int rc, n = 0, step;

	snprintf(sql, sizeof(sql),
		 "SELECT %s AS k, " AGG_COLUMNS " FROM records WHERE " CLIENT_WHERE
		 " GROUP BY k ORDER BY SUM(cost_usd) IS NULL, SUM(cost_usd) DESC, "
		 "COUNT(*) DESC, k",
		 c->expr);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		goto dberr;
	sqlite3_bind_int64(st, 1, c->q->since_us);
	sqlite3_bind_int64(st, 2, c->q->until_us);
	rc = tt_buf_adds(c->out, "{\"by\":\"");
	if (!rc)
		rc = tt_buf_json_str(c->out, c->q->by, strlen(c->q->by));
	if (!rc)
		rc = tt_buf_adds(c->out, "\"");
	if (!rc)
		rc = add_bound(c->out, "since", c->q->since_us, c->q->since_us == INT64_MIN);
	if (!rc)
		rc = add_bound(c->out, "until", c->q->until_us, c->q->until_us == INT64_MAX);
	if (!rc)
		rc = tt_buf_adds(c->out, ",\"rows\":[");
	while (!rc && (step = sqlite3_step(st)) == SQLITE_ROW) {
		if (n++)
			rc = tt_buf_adds(c->out, ",");
		if (!rc)
			rc = add_row(c->out, st, 1);
	}
	if (rc)
		goto bufferr;
	if (step != SQLITE_DONE)
		goto dberr;
	sqlite3_finalize(st);
	st = NULL;

	if (sqlite3_prepare_v2(db, "SELECT NULL, " AGG_COLUMNS " FROM records WHERE " CLIENT_WHERE,
			       -1, &st, NULL) != SQLITE_OK)
		goto dberr;
	sqlite3_bind_int64(st, 1, c->q->since_us);
	sqlite3_bind_int64(st, 2, c->q->until_us);
	if (sqlite3_step(st) != SQLITE_ROW)
		goto dberr;
	rc = tt_buf_adds(c->out, "],\"total\":");
	if (!rc)
		rc = add_row(c->out, st, 0);
	if (!rc)
		rc = tt_buf_adds(c->out, "}");
	if (rc)
		goto bufferr;
	sqlite3_finalize(st);
	return 0;
dberr:
	snprintf(c->err, c->errlen, "database: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return TT_EIO;
bufferr:
	snprintf(c->err, c->errlen, "result too large");
	sqlite3_finalize(st);
	return rc;
}

int tt_usage_json(tt_store *s, const struct tt_usage_query *q, tt_buf *out, char *err,
		  size_t errlen)
{
	struct usage_ctx c = {.q = q, .out = out, .err = err, .errlen = errlen};

	c.expr = tt_usage_column(q->by);
	if (!c.expr) {
		snprintf(err, errlen, "by: expected one of " TT_USAGE_BY_LIST);
		return TT_EINVAL;
	}
	return tt_store_read(s, usage_read, &c);
}
