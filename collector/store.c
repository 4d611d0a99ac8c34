/* store.c - SQLite storage with group commit, see store.h. */
#include "store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rollup.h"
#include "tokentap/error.h"

struct job {
	const tt_rec *recs;
	size_t n;
	const tt_buf *arena;
	int64_t now_us;
	int64_t accepted, duplicates;
	unsigned char *added;   /* per record: stored by this transaction (or NULL) */
	int rc;
	int done;
	struct job *next;
};

/* A read connection: one per concurrent reader, kept for the next. */
struct reader {
	sqlite3 *db;
	struct reader *next;
};

struct tt_store {
	sqlite3 *wdb, *cdb;        /* writer, checkpointer */
	sqlite3_stmt *ins;
	tt_rollup_map *acc;        /* the transaction's buckets (writer thread) */
	sqlite3_stmt *ups;         /* their upsert */
	int rollup;                /* buckets kept (not --no-rollup) */

	/* Readers never share a connection, so they never wait for each other
	 * (WAL: nor for the writer); READERS_MAX bounds the open files. */
	char *path;
	int readonly;
	pthread_mutex_t rlock;
	pthread_cond_t rcond;
	struct reader *rfree;
	int nreaders;

	pthread_mutex_t qlock;
	pthread_cond_t qcond;     /* writer: work arrived or stop */
	pthread_cond_t dcond;     /* callers: a commit finished */
	struct job *head, *tail;
	int stop;
	pthread_t writer;
	int writer_started;
	int64_t count;
	tt_store_added_fn on_added;
	void *on_added_arg;

	/* Checkpoints run on their own thread and connection (PASSIVE: they
	 * never block the writer), so a commit does not wait for the WAL to be
	 * copied into the database and fsync'ed. */
	pthread_mutex_t clock;
	pthread_cond_t ccond;
	int cwanted, cstop;
	pthread_t ckpt;
	int ckpt_started;
};

#define CHECKPOINT_PAGES 4000  /* about 16 MB of WAL */
#define READERS_MAX 32

/* 1: the first records table; 2: app, tls (added to older tables by migrate()). */
#define SCHEMA_VERSION 2

static int exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errlen, "%s", msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return TT_EIO;
	}
	return 0;
}

/* Field f's column: its tt_record member (ts is kept as microseconds, ts_us). */
static const char *column_name(int f)
{
	return tt_rec_fields[f].column;
}

static const char *column_type(int f)
{
	switch (tt_rec_fields[f].type) {
	case TT_FT_STR: return "TEXT";
	case TT_FT_NUM: return "REAL";
	default: return "INTEGER";
	}
}

static int build_schema(tt_buf *b)
{
	int rc = tt_buf_adds(b, "CREATE TABLE IF NOT EXISTS records (\n"
				"  seq INTEGER PRIMARY KEY,\n"
				"  id BLOB NOT NULL UNIQUE");

	for (int i = 1; i < TT_REC_NFIELDS && !rc; i++)
		rc = tt_buf_printf(b, ",\n  %s %s%s", column_name(i), column_type(i),
				   tt_rec_fields[i].type == TT_FT_TS ? " NOT NULL" : "");
	if (!rc)
		rc = tt_buf_printf(b, ",\n  cost_usd REAL,\n  cache_savings_usd REAL,\n"
				      "  received_us INTEGER NOT NULL\n);\n"
				      "CREATE INDEX IF NOT EXISTS records_ts ON records(ts_us);\n"
				      "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);\n"
				      "INSERT OR IGNORE INTO meta VALUES ('schema', '%d');\n",
				   SCHEMA_VERSION);
	if (!rc)
		rc = tt_buf_adds(b, tt_rollup_schema);
	return rc;
}

/*
 * The fields of TT_RECORD_FIELDS that the records table has no column for
 * (bit f for field f): a database made by an older tokentapd lacks the
 * fields added since; a database without the table lacks them all.
 */
static int missing_columns(sqlite3 *db, uint64_t *missing)
{
	sqlite3_stmt *st;
	int step;

	*missing = 0;
	for (int f = 0; f < TT_REC_NFIELDS; f++)
		*missing |= (uint64_t)1 << f;
	if (sqlite3_prepare_v2(db, "PRAGMA main.table_info(records)", -1, &st, NULL) != SQLITE_OK)
		return TT_EIO;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *col = (const char *)sqlite3_column_text(st, 1);

		for (int f = 0; col && f < TT_REC_NFIELDS; f++)
			if (strcmp(col, column_name(f)) == 0)
				*missing &= ~((uint64_t)1 << f);
	}
	sqlite3_finalize(st);
	return step == SQLITE_DONE ? 0 : TT_EIO;
}

static int build_migration(tt_buf *b, uint64_t missing)
{
	int rc = 0;

	/* New columns are NULL in the old rows, as an absent field is. */
	for (int f = 0; f < TT_REC_NFIELDS && !rc; f++)
		if (missing >> f & 1)
			rc = tt_buf_printf(b, "ALTER TABLE records ADD COLUMN %s %s;\n", column_name(f),
					   column_type(f));
	if (!rc)
		rc = tt_buf_printf(b, "UPDATE meta SET value = '%d' WHERE key = 'schema' "
				      "AND CAST(value AS INTEGER) < %d;\n",
				   SCHEMA_VERSION, SCHEMA_VERSION);
	return rc;
}

/*
 * Bring a database made by an older tokentapd up to this one's schema, in
 * one transaction: a column for every field it lacks, the version in meta.
 * Run after build_schema(), so the tables exist.
 */
static int migrate(sqlite3 *db, const char *path, char *err, size_t errlen)
{
	uint64_t missing;
	tt_buf sql;
	int rc;

	tt_buf_init(&sql, 1 << 16);
	if ((rc = exec(db, "BEGIN IMMEDIATE", err, errlen)))
		goto out;
	if ((rc = missing_columns(db, &missing))) {
		snprintf(err, errlen, "database %s: %s", path, sqlite3_errmsg(db));
		goto rollback;
	}
	if ((rc = build_migration(&sql, missing))) {
		snprintf(err, errlen, "database %s: migration too large", path);
		goto rollback;
	}
	if ((rc = exec(db, sql.data, err, errlen)) || (rc = exec(db, "COMMIT", err, errlen)))
		goto rollback;
	for (int f = 0; f < TT_REC_NFIELDS; f++)
		if (missing >> f & 1)
			fprintf(stderr, "tokentapd: database %s: added column %s (schema %d)\n", path,
				column_name(f), SCHEMA_VERSION);
	goto out;
rollback:
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
out:
	tt_buf_free(&sql);
	return rc;
}

/*
 * A read-only connection cannot migrate: it sees the columns an older
 * database lacks as NULL through a temporary view of the same name, which
 * shadows the table (the temp schema is searched first).
 */
static int shadow_missing_columns(sqlite3 *db, const char *path, char *err, size_t errlen)
{
	uint64_t missing;
	tt_buf sql;
	int rc = 0;

	if (missing_columns(db, &missing)) {
		snprintf(err, errlen, "database %s: %s", path, sqlite3_errmsg(db));
		return TT_EIO;
	}
	/* Up to date, or no records table at all (reads will say so). */
	if (!missing || (missing >> TT_F_ID & 1))
		return 0;
	tt_buf_init(&sql, 1 << 16);
	rc = tt_buf_adds(&sql, "CREATE TEMP VIEW records AS SELECT *");
	for (int f = 0; f < TT_REC_NFIELDS && !rc; f++)
		if (missing >> f & 1)
			rc = tt_buf_printf(&sql, ", NULL AS %s", column_name(f));
	if (!rc)
		rc = tt_buf_adds(&sql, " FROM main.records");
	if (rc)
		snprintf(err, errlen, "database %s: view too large", path);
	else
		rc = exec(db, sql.data, err, errlen);
	tt_buf_free(&sql);
	return rc;
}

static int build_insert(tt_buf *b)
{
	int rc = tt_buf_adds(b, "INSERT OR IGNORE INTO records (id");

	for (int i = 1; i < TT_REC_NFIELDS && !rc; i++)
		rc = tt_buf_printf(b, ", %s", column_name(i));
	if (!rc)
		rc = tt_buf_adds(b, ", cost_usd, cache_savings_usd, received_us) VALUES (?");
	for (int i = 1; i < TT_REC_NFIELDS + 3 && !rc; i++)
		rc = tt_buf_adds(b, ", ?");
	if (!rc)
		rc = tt_buf_adds(b, ")");
	return rc;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return 0;
}

/* Bind one record; the statement is reset by the caller. */
static int bind_rec(sqlite3_stmt *st, const tt_rec *r, const tt_buf *arena, int64_t now_us)
{
	unsigned char id[16];
	size_t len;
	const char *s = tt_rec_str(r, TT_F_ID, arena, &len);
	int col = 1;

	for (int i = 0; i < 16; i++)
		id[i] = (unsigned char)(hexval(s[2 * i]) << 4 | hexval(s[2 * i + 1]));
	sqlite3_bind_blob(st, col++, id, 16, SQLITE_TRANSIENT);
	for (int i = 1; i < TT_REC_NFIELDS; i++, col++) {
		const struct tt_rec_field *f = &tt_rec_fields[i];

		if (f->type == TT_FT_TS) {
			sqlite3_bind_int64(st, col, tt_rec_int(r, i, now_us));
			continue;
		}
		if (tt_rec_is_null(r, i)) {
			sqlite3_bind_null(st, col);
			continue;
		}
		switch (f->type) {
		case TT_FT_STR:
			s = tt_rec_str(r, i, arena, &len);
			sqlite3_bind_text(st, col, s, (int)len, SQLITE_STATIC);
			break;
		case TT_FT_NUM:
			sqlite3_bind_double(st, col, r->v[i].d);
			break;
		default:
			sqlite3_bind_int64(st, col, r->v[i].i);
		}
	}
	if (r->priced) {
		sqlite3_bind_double(st, col++, r->cost_usd);
		sqlite3_bind_double(st, col++, r->cache_savings_usd);
	} else {
		sqlite3_bind_null(st, col++);
		sqlite3_bind_null(st, col++);
	}
	sqlite3_bind_int64(st, col, now_us);
	return 0;
}

/* Record i of job j was stored: count it, add it to the hour's buckets. */
static int added_rec(tt_store *s, struct job *j, size_t i)
{
	j->accepted++;
	if (j->added)
		j->added[i] = 1;
	if (!s->rollup)
		return 0;
	return tt_rollup_map_add_rec(s->acc, &j->recs[i], j->arena, j->now_us);
}

static int flush_rollup(tt_store *s)
{
	int rc = tt_rollup_flush(s->wdb, &s->ups, s->acc);

	if (!rc)
		rc = tt_rollup_mark(s->wdb, sqlite3_last_insert_rowid(s->wdb));
	return rc;
}

/* One transaction for every queued job. Writer thread only. */
static void commit_group(tt_store *s, struct job *jobs)
{
	struct job *j;
	int rc = 0;
	int64_t added = 0;

	if (sqlite3_exec(s->wdb, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		rc = TT_EIO;
	for (j = jobs; j && !rc; j = j->next) {
		j->accepted = j->duplicates = 0;
		for (size_t i = 0; i < j->n && !rc; i++) {
			bind_rec(s->ins, &j->recs[i], j->arena, j->now_us);
			if (sqlite3_step(s->ins) != SQLITE_DONE)
				rc = TT_EIO;
			else if (sqlite3_changes(s->wdb) > 0)
				rc = added_rec(s, j, i);
			else
				j->duplicates++;
			sqlite3_reset(s->ins);
		}
		added += j->accepted;
	}
	/* The buckets go into the records' transaction: both or neither. */
	if (!rc && s->rollup && added)
		rc = flush_rollup(s);
	if (s->acc)
		tt_rollup_map_clear(s->acc);
	/* Unbind so that no pointer into a caller's arena outlives the call. */
	sqlite3_clear_bindings(s->ins);
	if (!rc && sqlite3_exec(s->wdb, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		rc = TT_EIO;
	if (rc) {
		fprintf(stderr, "tokentapd: database write failed: %s\n", sqlite3_errmsg(s->wdb));
		sqlite3_exec(s->wdb, "ROLLBACK", NULL, NULL, NULL);
		added = 0;
	} else if (s->on_added) {
		for (j = jobs; j; j = j->next)
			for (size_t i = 0; j->added && i < j->n; i++)
				if (j->added[i])
					s->on_added(s->on_added_arg, &j->recs[i], j->arena);
	}
	pthread_mutex_lock(&s->qlock);
	s->count += added;
	for (j = jobs; j; j = j->next) {
		j->rc = rc;
		j->done = 1;
	}
	pthread_cond_broadcast(&s->dcond);
	pthread_mutex_unlock(&s->qlock);
}

static void *writer_main(void *arg)
{
	tt_store *s = arg;

	pthread_mutex_lock(&s->qlock);
	for (;;) {
		struct job *jobs;

		while (!s->head && !s->stop)
			pthread_cond_wait(&s->qcond, &s->qlock);
		if (!s->head && s->stop)
			break;
		jobs = s->head;
		s->head = s->tail = NULL;
		pthread_mutex_unlock(&s->qlock);
		commit_group(s, jobs);
		pthread_mutex_lock(&s->qlock);
	}
	pthread_mutex_unlock(&s->qlock);
	return NULL;
}

static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	tt_store *s = arg;

	if (pages >= CHECKPOINT_PAGES) {
		pthread_mutex_lock(&s->clock);
		s->cwanted = 1;
		pthread_cond_signal(&s->ccond);
		pthread_mutex_unlock(&s->clock);
	}
	return SQLITE_OK;
}

static void *ckpt_main(void *arg)
{
	tt_store *s = arg;

	pthread_mutex_lock(&s->clock);
	for (;;) {
		while (!s->cwanted && !s->cstop)
			pthread_cond_wait(&s->ccond, &s->clock);
		if (s->cstop)
			break;
		s->cwanted = 0;
		pthread_mutex_unlock(&s->clock);
		sqlite3_wal_checkpoint_v2(s->cdb, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		pthread_mutex_lock(&s->clock);
	}
	pthread_mutex_unlock(&s->clock);
	return NULL;
}

int tt_store_insert(tt_store *s, const tt_rec *recs, size_t n, const tt_buf *arena,
		    int64_t now_us, int64_t *accepted, int64_t *duplicates)
{
	struct job j = {.recs = recs, .n = n, .arena = arena, .now_us = now_us};

	*accepted = *duplicates = 0;
	if (n == 0)
		return 0;
	if (!s->writer_started)
		return TT_EINVAL;
	if (s->on_added && !(j.added = calloc(n, 1)))
		return TT_ENOMEM;
	pthread_mutex_lock(&s->qlock);
	if (s->stop) {
		pthread_mutex_unlock(&s->qlock);
		free(j.added);
		return TT_EIO;
	}
	if (s->tail)
		s->tail->next = &j;
	else
		s->head = &j;
	s->tail = &j;
	pthread_cond_signal(&s->qcond);
	while (!j.done)
		pthread_cond_wait(&s->dcond, &s->qlock);
	pthread_mutex_unlock(&s->qlock);
	free(j.added);
	*accepted = j.accepted;
	*duplicates = j.duplicates;
	return j.rc;
}

static int open_reader(tt_store *s, sqlite3 **db, char *err, size_t errlen);

/* A free read connection, or a new one below READERS_MAX; NULL: cannot open. */
static struct reader *take_reader(tt_store *s)
{
	struct reader *r;
	char err[256] = "";

	pthread_mutex_lock(&s->rlock);
	while (!s->rfree && s->nreaders >= READERS_MAX)
		pthread_cond_wait(&s->rcond, &s->rlock);
	if ((r = s->rfree)) {
		s->rfree = r->next;
		pthread_mutex_unlock(&s->rlock);
		return r;
	}
	s->nreaders++;
	pthread_mutex_unlock(&s->rlock);
	/* Opened outside the lock: the other readers go on meanwhile. */
	if (!(r = calloc(1, sizeof(*r))) || open_reader(s, &r->db, err, sizeof(err))) {
		if (r)
			fprintf(stderr, "tokentapd: %s\n", err);
		free(r);
		pthread_mutex_lock(&s->rlock);
		s->nreaders--;
		pthread_cond_signal(&s->rcond);
		pthread_mutex_unlock(&s->rlock);
		return NULL;
	}
	return r;
}

static void give_reader(tt_store *s, struct reader *r)
{
	pthread_mutex_lock(&s->rlock);
	r->next = s->rfree;
	s->rfree = r;
	pthread_cond_signal(&s->rcond);
	pthread_mutex_unlock(&s->rlock);
}

int tt_store_read(tt_store *s, int (*fn)(sqlite3 *db, void *arg), void *arg)
{
	struct reader *r = take_reader(s);
	int rc;

	if (!r)
		return TT_EIO;
	rc = fn(r->db, arg);
	give_reader(s, r);
	return rc;
}

void tt_store_on_added(tt_store *s, tt_store_added_fn fn, void *arg)
{
	pthread_mutex_lock(&s->qlock);
	s->on_added = fn;
	s->on_added_arg = arg;
	pthread_mutex_unlock(&s->qlock);
}

int64_t tt_store_count(tt_store *s)
{
	int64_t n;

	pthread_mutex_lock(&s->qlock);
	n = s->count;
	pthread_mutex_unlock(&s->qlock);
	return n;
}

/*
 * The buckets: rolled up once from the records when they do not cover them
 * all; forgotten when this writer will not keep them (readers then scan).
 */
static int open_rollup(tt_store *s, const char *path, char *err, size_t errlen)
{
	if (!s->rollup) {
		if (tt_rollup_disable(s->wdb)) {
			snprintf(err, errlen, "database %s: %s", path, sqlite3_errmsg(s->wdb));
			return TT_EIO;
		}
		return 0;
	}
	if (!(s->acc = tt_rollup_map_new()))
		return TT_ENOMEM;
	return tt_rollup_ready(s->wdb) ? 0 : tt_rollup_build(s->wdb, path, err, errlen);
}

static int open_db(const char *path, int flags, sqlite3 **db, char *err, size_t errlen)
{
	if (sqlite3_open_v2(path, db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "cannot open database %s: %s", path,
			 *db ? sqlite3_errmsg(*db) : "out of memory");
		sqlite3_close(*db);
		*db = NULL;
		return TT_EIO;
	}
	sqlite3_busy_timeout(*db, 10000);
	return 0;
}

/*
 * SUM() for the read connections.  SQLite's own SUM() fails the whole
 * query with "integer overflow" past 2^63 - 1, and 1,100 records at the
 * documented maximum of 2^53 tokens are enough: a read at start then
 * failed and tokentapd would not start.  This one sums integers in 128
 * bits and answers an integer when the sum fits in 64, else a REAL (which
 * sqlite3_column_int64() reads as INT64_MAX): an answer always comes back.
 * Otherwise as SQLite's: NULL for no values, REAL once a value is not an
 * integer; also a window function.
 */
struct wide_sum {
	unsigned char i[sizeof(tt_i128)];  /* SQLite aligns the context to 8 only */
	double r;
	int64_t n;
	int approx;
};

static void wide_sum_add(sqlite3_context *ctx, sqlite3_value *v, int sign)
{
	struct wide_sum *p = sqlite3_aggregate_context(ctx, sizeof(*p));
	int type = sqlite3_value_numeric_type(v);

	if (!p || type == SQLITE_NULL)
		return;
	p->n += sign;
	if (type == SQLITE_INTEGER) {
		tt_i128 i;

		memcpy(&i, p->i, sizeof(i));
		i += sign * (tt_i128)sqlite3_value_int64(v);
		memcpy(p->i, &i, sizeof(i));
	} else {
		p->approx = 1;
		p->r += sign * sqlite3_value_double(v);
	}
}

static void wide_sum_step(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	wide_sum_add(ctx, argv[0], 1);
}

static void wide_sum_inverse(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	wide_sum_add(ctx, argv[0], -1);
}

static void wide_sum_value(sqlite3_context *ctx)
{
	struct wide_sum *p = sqlite3_aggregate_context(ctx, 0);
	tt_i128 i;

	if (!p || p->n == 0) {
		sqlite3_result_null(ctx);
		return;
	}
	memcpy(&i, p->i, sizeof(i));
	if (!p->approx && i >= INT64_MIN && i <= INT64_MAX)
		sqlite3_result_int64(ctx, (int64_t)i);
	else
		sqlite3_result_double(ctx, p->r + (double)i);
}

static int register_wide_sum(sqlite3 *db)
{
	return sqlite3_create_window_function(db, "sum", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
					      NULL, wide_sum_step, wide_sum_value, wide_sum_value,
					      wide_sum_inverse, NULL) == SQLITE_OK ? 0 : TT_EIO;
}

/* A read connection: read-only, older columns shadowed (report --db), wide SUM. */
static int open_reader(tt_store *s, sqlite3 **db, char *err, size_t errlen)
{
	int rc;

	if ((rc = open_db(s->path, SQLITE_OPEN_READONLY, db, err, errlen)))
		return rc;
	if (!s->readonly || !(rc = shadow_missing_columns(*db, s->path, err, errlen))) {
		if ((rc = register_wide_sum(*db)))
			snprintf(err, errlen, "database %s: %s", s->path, sqlite3_errmsg(*db));
	}
	if (rc) {
		sqlite3_close(*db);
		*db = NULL;
	}
	return rc;
}

/* The writer's connection: WAL, the schema (migrated), the insert statement. */
static int open_writer(tt_store *s, const char *path, const struct tt_store_opts *opts,
		       char *err, size_t errlen)
{
	tt_buf sql;
	char pragmas[256];
	int rc;

	if ((rc = open_db(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &s->wdb, err, errlen)))
		return rc;
	tt_buf_init(&sql, 1 << 16);
	snprintf(pragmas, sizeof(pragmas),
		 "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; "
		 "PRAGMA cache_size=-32768; PRAGMA foreign_keys=OFF; "
		 "PRAGMA wal_autocheckpoint=0;",
		 opts->sync_full ? "FULL" : "NORMAL");
	if ((rc = exec(s->wdb, pragmas, err, errlen)))
		goto out;
	if ((rc = build_schema(&sql)) || (rc = exec(s->wdb, sql.data, err, errlen)) ||
	    (rc = migrate(s->wdb, path, err, errlen)) || (rc = open_rollup(s, path, err, errlen)))
		goto out;
	tt_buf_reset(&sql);
	if ((rc = build_insert(&sql)))
		goto out;
	if (sqlite3_prepare_v3(s->wdb, sql.data, -1, SQLITE_PREPARE_PERSISTENT, &s->ins, NULL) !=
	    SQLITE_OK) {
		snprintf(err, errlen, "database %s: %s", path, sqlite3_errmsg(s->wdb));
		rc = TT_EIO;
	}
out:
	tt_buf_free(&sql);
	return rc;
}

int tt_store_open(const char *path, const struct tt_store_opts *opts, tt_store **out,
		  char *err, size_t errlen)
{
	tt_store *s = calloc(1, sizeof(*s));
	struct reader *r;
	sqlite3_stmt *st = NULL;
	char pragmas[256];
	int rc = 0;

	*out = NULL;
	if (!s)
		return TT_ENOMEM;
	/* SQLite's allocation statistics take one global mutex on every malloc,
	 * which serializes concurrent readers; off (fails harmlessly when SQLite
	 * is already initialized). */
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	pthread_mutex_init(&s->rlock, NULL);
	pthread_cond_init(&s->rcond, NULL);
	pthread_mutex_init(&s->qlock, NULL);
	pthread_cond_init(&s->qcond, NULL);
	pthread_cond_init(&s->dcond, NULL);
	pthread_mutex_init(&s->clock, NULL);
	pthread_cond_init(&s->ccond, NULL);

	s->readonly = opts->readonly;
	s->rollup = !opts->readonly && !opts->no_rollup;
	if (!(s->path = strdup(path)))
		goto nomem;
	if (!opts->readonly && (rc = open_writer(s, path, opts, err, errlen)))
		goto fail;
	/* The first read connection, kept in the pool. */
	if (!(r = calloc(1, sizeof(*r))))
		goto nomem;
	if ((rc = open_reader(s, &r->db, err, errlen))) {
		free(r);
		goto fail;
	}
	give_reader(s, r);
	s->nreaders = 1;
	if (sqlite3_prepare_v2(r->db, "SELECT count(*) FROM records", -1, &st, NULL) !=
	    SQLITE_OK) {
		snprintf(err, errlen, "database %s: %s", path, sqlite3_errmsg(r->db));
		rc = TT_EIO;
		goto fail;
	}
	if (sqlite3_step(st) == SQLITE_ROW)
		s->count = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (!opts->readonly) {
		if ((rc = open_db(path, SQLITE_OPEN_READWRITE, &s->cdb, err, errlen)))
			goto fail;
		/* A connection learns that the file is in WAL mode when it first reads it. */
		snprintf(pragmas, sizeof(pragmas), "PRAGMA synchronous=%s; SELECT count(*) FROM meta;",
			 opts->sync_full ? "FULL" : "NORMAL");
		if ((rc = exec(s->cdb, pragmas, err, errlen)))
			goto fail;
		if (pthread_create(&s->ckpt, NULL, ckpt_main, s) != 0) {
			snprintf(err, errlen, "cannot start the checkpoint thread");
			rc = TT_ENOMEM;
			goto fail;
		}
		s->ckpt_started = 1;
		sqlite3_wal_hook(s->wdb, wal_hook, s);
		if (pthread_create(&s->writer, NULL, writer_main, s) != 0) {
			snprintf(err, errlen, "cannot start the writer thread");
			rc = TT_ENOMEM;
			goto fail;
		}
		s->writer_started = 1;
	}
	*out = s;
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
	rc = TT_ENOMEM;
fail:
	tt_store_close(s);
	return rc;
}

void tt_store_close(tt_store *s)
{
	if (!s)
		return;
	if (s->writer_started) {
		pthread_mutex_lock(&s->qlock);
		s->stop = 1;
		pthread_cond_signal(&s->qcond);
		pthread_mutex_unlock(&s->qlock);
		pthread_join(s->writer, NULL);
	}
	if (s->ckpt_started) {
		pthread_mutex_lock(&s->clock);
		s->cstop = 1;
		pthread_cond_signal(&s->ccond);
		pthread_mutex_unlock(&s->clock);
		pthread_join(s->ckpt, NULL);
	}
	sqlite3_close(s->cdb);
	sqlite3_finalize(s->ins);
	sqlite3_finalize(s->ups);
	tt_rollup_map_free(s->acc);
	while (s->rfree) {
		struct reader *r = s->rfree;

		s->rfree = r->next;
		sqlite3_close(r->db);
		free(r);
	}
	free(s->path);
	if (s->wdb)
		sqlite3_exec(s->wdb, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
	sqlite3_close(s->wdb);
	pthread_mutex_destroy(&s->rlock);
	pthread_cond_destroy(&s->rcond);
	pthread_mutex_destroy(&s->qlock);
	pthread_cond_destroy(&s->qcond);
	pthread_cond_destroy(&s->dcond);
	pthread_mutex_destroy(&s->clock);
	pthread_cond_destroy(&s->ccond);
	free(s);
}
