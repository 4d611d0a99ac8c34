/* alert.c - alert history, dedup and webhook delivery; see alert.h. */
#include "alert.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <sqlite3.h>

#include "common/clock.h"
#include "rec.h"
#include "tokentap/error.h"

#define MAX_HOOKS 8
#define QUEUE_MAX 10000          /* delivery queue */
#define RAISE_MAX_DEFAULT 50000  /* raised, not yet written */
#define BATCH_MAX 1000           /* alerts per transaction */
#define PRUNE_CHUNK 5000         /* rows deleted per retention statement */
#define PRUNE_EVERY_US (60 * 1000000LL)
#define LIST_WAIT_US 2000000     /* GET /v1/alerts waits for the queue this long */
#define RETENTION_DAYS_DEFAULT 90
#define MAX_ROWS_DEFAULT 1000000

struct hook {
	char url[1024];
	int slack;
};

/* A webhook delivery in flight or waiting for its back-off. */
struct item {
	struct item *next;
	int64_t rowid;
	char *json;    /* generic body */
	char *slack;   /* {"text": ...} */
	int attempts;
	unsigned done;   /* hooks that took it: a retry goes to the others only */
	int64_t due_us;  /* tt_mono_us */
};

/* An alert raised and not yet written (the writer's queue). */
struct pend {
	struct pend *next;
	int64_t raised_us;
	int64_t rowid;   /* set by the writer when the key was new */
	char *json, *slack;
	tt_alert a;
};

/* A delivery outcome for the writer to store. */
struct mark {
	struct mark *next;
	int64_t rowid;
	int attempts;
	const char *state;  /* static string */
};

struct tt_alerts {
	sqlite3 *db;         /* the writer thread's (and open's) */
	sqlite3 *rdb;        /* GET /v1/alerts, under rlock */
	sqlite3_stmt *ins, *upd;
	pthread_mutex_t mu;  /* everything below but the hooks; never held over SQL */
	pthread_mutex_t rlock;
	pthread_cond_t cv;   /* delivery: new item or stop */
	pthread_cond_t wcv;  /* writer: raised alert, mark, or stop */
	pthread_cond_t fcv;  /* writer moved `written` */
	pthread_t thread, writer;
	int started, wstarted, stop, wstop;
	struct hook hooks[MAX_HOOKS];
	int nhooks;
	int retries;
	int64_t backoff_us, timeout_ms;
	int64_t retention_us;  /* 0: no age rule */
	int64_t max_rows;      /* 0: no row cap */
	int64_t rows;          /* in the table, as the writer counts; -1: unknown */
	size_t raise_max;
	struct item *head, *tail;
	size_t queued;
	struct pend *rhead, *rtail;
	size_t rqueued;
	struct mark *mhead, *mtail;
	uint64_t pushed, written;  /* alerts into and out of the writer's queue */
	struct tt_alerts_counters c;
};

void tt_alert_key(const tt_alert *a, char *out, size_t cap)
{
	snprintf(out, cap, "%s|%s|%s|%s|%d|%s", a->kind, a->rule, a->scope, a->window,
		 a->threshold, a->state);
}

static int add_str(tt_buf *b, const char *name, const char *s, int comma)
{
	int rc = tt_buf_printf(b, "%s\"%s\":\"", comma ? "," : "", name);

	if (!rc)
		rc = tt_buf_json_str(b, s, strlen(s));
	if (!rc)
		rc = tt_buf_adds(b, "\"");
	return rc;
}

static int add_ts(tt_buf *b, const char *name, int64_t us)
{
	char ts[40];

	if (us <= 0)
		return tt_buf_printf(b, ",\"%s\":null", name);
	tt_rec_format_ts(us, ts, sizeof(ts));
	return tt_buf_printf(b, ",\"%s\":\"%s\"", name, ts);
}

int tt_alert_json(const tt_alert *a, int64_t raised_us, tt_buf *b)
{
	char key[1024];
	int rc;

	tt_alert_key(a, key, sizeof(key));
	rc = tt_buf_adds(b, "{");
	if (!rc) rc = add_str(b, "kind", a->kind, 0);
	if (!rc) rc = add_str(b, "rule", a->rule, 1);
	if (!rc) rc = add_str(b, "scope", a->scope, 1);
	if (!rc) rc = add_str(b, "window", a->window, 1);
	if (!rc) rc = tt_buf_printf(b, ",\"threshold\":%d", a->threshold);
	if (!rc) rc = add_str(b, "state", a->state, 1);
	if (!rc) rc = add_str(b, "message", a->message, 1);
	if (!rc) rc = add_str(b, "dedup_key", key, 1);
	if (!rc) rc = tt_buf_printf(b, ",\"evidence\":{\"calls\":%lld,\"tokens\":%lld",
				     (long long)a->calls, (long long)a->tokens);
	if (!rc) rc = a->usd >= 0 ? tt_buf_printf(b, ",\"cost_usd\":%.9g", a->usd)
				  : tt_buf_adds(b, ",\"cost_usd\":null");
	if (!rc) rc = a->prompt_hash[0] ? add_str(b, "prompt_hash", a->prompt_hash, 1)
					: tt_buf_adds(b, ",\"prompt_hash\":null");
	if (!rc) rc = tt_buf_printf(b, ",\"repeat_count\":%lld", (long long)a->repeat_count);
	if (!rc) rc = add_ts(b, "first", a->first_us);
	if (!rc) rc = add_ts(b, "last", a->last_us);
	if (!rc) rc = tt_buf_adds(b, "}");
	if (!rc) rc = add_ts(b, "raised", raised_us);
	if (!rc) rc = tt_buf_adds(b, "}");
	return rc;
}

static int slack_body(const tt_alert *a, tt_buf *b)
{
	char text[1024];
	int rc;

	snprintf(text, sizeof(text), "%s %s", strcmp(a->state, "resolved") == 0 ? ":white_check_mark:"
						: ":rotating_light:", a->message);
	rc = tt_buf_adds(b, "{\"text\":\"");
	if (!rc) rc = tt_buf_json_str(b, text, strlen(text));
	if (!rc) rc = tt_buf_adds(b, "\"}");
	return rc;
}

/* ---- configuration ------------------------------------------------------ */

static int parse_config(tt_alerts *al, const cJSON *c, char *err, size_t errlen)
{
	const cJSON *it;

	al->retries = 6;
	al->backoff_us = 500000;
	al->timeout_ms = 5000;
	al->retention_us = RETENTION_DAYS_DEFAULT * 86400LL * 1000000;
	al->max_rows = MAX_ROWS_DEFAULT;
	al->raise_max = RAISE_MAX_DEFAULT;
	if (!c)
		return 0;
	if (!cJSON_IsObject(c)) {
		snprintf(err, errlen, "alerts: expected an object");
		return TT_EINVAL;
	}
	cJSON_ArrayForEach(it, c) {
		double v = cJSON_IsNumber(it) ? it->valuedouble : -1;

		if (strcmp(it->string, "webhooks") == 0) {
			const cJSON *h;
			int i = 0;

			if (!cJSON_IsArray(it) || cJSON_GetArraySize(it) > MAX_HOOKS) {
				snprintf(err, errlen, "alerts.webhooks: expected an array of at most %d",
					 MAX_HOOKS);
				return TT_EINVAL;
			}
			cJSON_ArrayForEach(h, it) {
				const cJSON *url = cJSON_GetObjectItemCaseSensitive(h, "url");
				const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(h, "format");

				if (!cJSON_IsString(url) || (strncmp(url->valuestring, "http://", 7) &&
							     strncmp(url->valuestring, "https://", 8)) ||
				    strlen(url->valuestring) >= sizeof(al->hooks[0].url)) {
					snprintf(err, errlen, "alerts.webhooks[%d].url: expected an http:// "
						 "or https:// URL", i);
					return TT_EINVAL;
				}
				if (fmt && (!cJSON_IsString(fmt) || (strcmp(fmt->valuestring, "json") &&
								     strcmp(fmt->valuestring, "slack")))) {
					snprintf(err, errlen, "alerts.webhooks[%d].format: expected \"json\" "
						 "or \"slack\"", i);
					return TT_EINVAL;
				}
				snprintf(al->hooks[i].url, sizeof(al->hooks[i].url), "%s",
					 url->valuestring);
				al->hooks[i].slack = fmt && strcmp(fmt->valuestring, "slack") == 0;
				i++;
			}
			al->nhooks = i;
		} else if (strcmp(it->string, "retries") == 0 && v >= 0 && v <= 20) {
			al->retries = (int)v;
		} else if (strcmp(it->string, "backoff_ms") == 0 && v >= 1 && v <= 600000) {
			al->backoff_us = (int64_t)v * 1000;
		} else if (strcmp(it->string, "timeout_ms") == 0 && v >= 100 && v <= 60000) {
			al->timeout_ms = (int64_t)v;
		} else if (strcmp(it->string, "retention_days") == 0 && v >= 0 && v <= 36500) {
			al->retention_us = (int64_t)(v * 86400 * 1e6);
		} else if (strcmp(it->string, "max_rows") == 0 && v >= 0 && v <= 1e9) {
			al->max_rows = (int64_t)v;
		} else if (strcmp(it->string, "queue_max") == 0 && v >= 1 && v <= 1e6) {
			al->raise_max = (size_t)v;
		} else {
			snprintf(err, errlen, "alerts.%.64s: unknown key or value out of range (known: "
				 "webhooks, retries 0-20, backoff_ms 1-600000, timeout_ms 100-60000, "
				 "retention_days 0-36500, max_rows 0-1000000000, queue_max 1-1000000)",
				 it->string);
			return TT_EINVAL;
		}
	}
	return 0;
}

int tt_alerts_check_config(const cJSON *config, char *err, size_t errlen)
{
	tt_alerts al;

	memset(&al, 0, sizeof(al));
	return parse_config(&al, config, err, errlen);
}

/* ---- delivery ----------------------------------------------------------- */

static size_t discard(char *p, size_t s, size_t n, void *u)
{
	(void)p, (void)u;
	return s * n;
}

static int post(tt_alerts *al, const char *url, const char *body)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	long status = 0;
	CURLcode cc;

	if (!c)
		return -1;
	h = curl_slist_append(h, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)al->timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)al->timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	cc = curl_easy_perform(c);
	if (cc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return cc == CURLE_OK && status >= 200 && status < 300 ? 0 : -1;
}

static void item_free(struct item *it)
{
	if (!it)
		return;
	free(it->json);
	free(it->slack);
	free(it);
}

static void pend_free(struct pend *p)
{
	if (!p)
		return;
	free(p->json);
	free(p->slack);
	free(p);
}

/* Wait on cv (CLOCK_MONOTONIC) until tt_mono_us() reaches until_us. */
static void wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t until_us)
{
	struct timespec ts = {.tv_sec = until_us / 1000000, .tv_nsec = (until_us % 1000000) * 1000};

	pthread_cond_timedwait(cv, mu, &ts);
}

/* A delivery outcome, for the writer's next transaction. Under al->mu. */
static void push_mark(tt_alerts *al, int64_t rowid, const char *state, int attempts)
{
	struct mark *m = calloc(1, sizeof(*m));

	if (!m)
		return;  /* the row stays as it was: at worst resent by the next start */
	m->rowid = rowid;
	m->state = state;
	m->attempts = attempts;
	if (al->mtail)
		al->mtail->next = m;
	else
		al->mhead = m;
	al->mtail = m;
	pthread_cond_signal(&al->wcv);
}

static void *deliver_main(void *arg)
{
	tt_alerts *al = arg;

	pthread_mutex_lock(&al->mu);
	while (!al->stop) {
		struct item *it = al->head;
		int64_t now = tt_mono_us();

		if (!it || it->due_us > now) {
			wait_until(&al->cv, &al->mu, it ? it->due_us : now + 1000000);
			continue;
		}
		al->head = it->next;
		if (!al->head)
			al->tail = NULL;
		al->queued--;
		pthread_mutex_unlock(&al->mu);

		int ok = 1;
		for (int i = 0; i < al->nhooks; i++) {
			if (it->done & (1u << i))
				continue;
			if (post(al, al->hooks[i].url, al->hooks[i].slack ? it->slack : it->json))
				ok = 0;
			else
				it->done |= 1u << i;
		}
		it->attempts++;

		pthread_mutex_lock(&al->mu);
		if (ok) {
			al->c.delivered++;
			push_mark(al, it->rowid, "delivered", it->attempts);
			item_free(it);
		} else if (it->attempts > al->retries) {
			al->c.failed++;
			fprintf(stderr, "tokentapd: alert %lld: webhook failed %d times; giving up\n",
				(long long)it->rowid, it->attempts);
			push_mark(al, it->rowid, "failed", it->attempts);
			item_free(it);
		} else {
			/* Back-off doubles each attempt.  Retries go to the back:
			 * one dead hook does not hold the others' alerts. */
			it->due_us = tt_mono_us() + (al->backoff_us << (it->attempts - 1));
			push_mark(al, it->rowid, "pending", it->attempts);
			it->next = NULL;
			if (al->tail)
				al->tail->next = it;
			else
				al->head = it;
			al->tail = it;
			al->queued++;
		}
	}
	pthread_mutex_unlock(&al->mu);
	return NULL;
}

/* Queue for delivery, under al->mu; takes json and slack. */
static void enqueue(tt_alerts *al, int64_t rowid, char *json, char *slack, int attempts)
{
	struct item *it;

	if (al->nhooks == 0 || al->queued >= QUEUE_MAX || !(it = calloc(1, sizeof(*it)))) {
		free(json);
		free(slack);
		return;
	}
	it->rowid = rowid;
	it->json = json;
	it->slack = slack;
	it->attempts = attempts;
	it->due_us = 0;
	/* Keep the order alerts were raised in: insert before the first retry. */
	if (al->tail)
		al->tail->next = it;
	else
		al->head = it;
	al->tail = it;
	al->queued++;
	pthread_cond_signal(&al->cv);
}

/* ---- the writer: batches, retention ------------------------------------ */

/* Insert one raised alert in the open transaction; p->rowid when its key is new. */
static int insert_pend(tt_alerts *al, struct pend *p)
{
	char key[1024];
	tt_buf j, s;
	int rc = 0;

	tt_alert_key(&p->a, key, sizeof(key));
	tt_buf_init(&j, 64 * 1024);
	tt_buf_init(&s, 64 * 1024);
	if (tt_alert_json(&p->a, p->raised_us, &j) || slack_body(&p->a, &s) || !j.data ||
	    !s.data)
		goto out;  /* out of memory: this one is lost, counted as dropped */
	sqlite3_bind_text(al->ins, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(al->ins, 2, p->raised_us);
	sqlite3_bind_text(al->ins, 3, j.data, (int)j.len, SQLITE_STATIC);
	sqlite3_bind_text(al->ins, 4, s.data, (int)s.len, SQLITE_STATIC);
	sqlite3_bind_text(al->ins, 5, al->nhooks ? "pending" : "logged", -1, SQLITE_STATIC);
	if (sqlite3_step(al->ins) != SQLITE_DONE)
		rc = TT_EIO;
	else if (sqlite3_changes(al->db) == 1) {
		p->rowid = sqlite3_last_insert_rowid(al->db);
		p->json = tt_buf_take(&j, NULL);
		p->slack = tt_buf_take(&s, NULL);
	}
	sqlite3_reset(al->ins);
	sqlite3_clear_bindings(al->ins);
out:
	tt_buf_free(&j);
	tt_buf_free(&s);
	return rc;
}

static int update_mark(tt_alerts *al, const struct mark *m)
{
	int rc;

	sqlite3_bind_text(al->upd, 1, m->state, -1, SQLITE_STATIC);
	sqlite3_bind_int(al->upd, 2, m->attempts);
	sqlite3_bind_int64(al->upd, 3, m->rowid);
	rc = sqlite3_step(al->upd) == SQLITE_DONE ? 0 : TT_EIO;
	sqlite3_reset(al->upd);
	return rc;
}

/*
 * One transaction (one fsync) for a batch of raised alerts and the
 * delivery outcomes so far: the cost of a storm is one commit per
 * BATCH_MAX alerts, paid by this thread, not by the records' commit.
 * Then the new ones are logged and handed to the webhooks.  Frees p and m.
 */
static void write_batch(tt_alerts *al, struct pend *p, size_t n, struct mark *m)
{
	int rc = sqlite3_exec(al->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK ? 0 : TT_EIO;

	for (struct pend *q = p; q && !rc; q = q->next)
		rc = insert_pend(al, q);
	for (struct mark *k = m; k && !rc; k = k->next)
		rc = update_mark(al, k);
	if (!rc && sqlite3_exec(al->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		rc = TT_EIO;
	if (rc) {
		fprintf(stderr, "tokentapd: alerts: cannot write %zu alert(s): %s\n", n,
			sqlite3_errmsg(al->db));
		sqlite3_exec(al->db, "ROLLBACK", NULL, NULL, NULL);
	}
	pthread_mutex_lock(&al->mu);
	while (p) {
		struct pend *next = p->next;

		if (rc) {
			al->c.dropped++;
		} else if (p->rowid) {
			al->c.raised++;
			al->rows += al->rows >= 0;
			fprintf(stderr, "tokentapd: alert: %s\n", p->a.message);
			enqueue(al, p->rowid, p->json, p->slack, 0);
			p->json = p->slack = NULL;
		}
		pend_free(p);
		p = next;
	}
	pthread_mutex_unlock(&al->mu);
	while (m) {
		struct mark *next = m->next;

		free(m);
		m = next;
	}
}

/* Run a DELETE with one or two integer parameters; rows deleted, or -1. */
static int64_t delete_rows(tt_alerts *al, const char *sql, int64_t p1, int64_t p2)
{
	sqlite3_stmt *st = NULL;
	int64_t n = -1;

	if (sqlite3_prepare_v2(al->db, sql, -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, p1);
		if (sqlite3_bind_parameter_count(st) > 1)
			sqlite3_bind_int64(st, 2, p2);
		if (sqlite3_step(st) == SQLITE_DONE)
			n = sqlite3_changes(al->db);
	}
	sqlite3_finalize(st);
	return n;
}

static int64_t count_rows(tt_alerts *al)
{
	sqlite3_stmt *st = NULL;
	int64_t n = -1;

	if (sqlite3_prepare_v2(al->db, "SELECT count(*) FROM alerts", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

/*
 * Retention, one chunk at a time (a big delete would hold the database's
 * write lock against the records): rows older than retention_days, then
 * the oldest rows past max_rows.  Returns 1 when more is left to delete.
 * A deleted row's key may be raised again.
 */
static int prune_some(tt_alerts *al)
{
	int64_t gone = 0, n = 0, excess = 0;

	if (al->retention_us) {
		n = delete_rows(al, "DELETE FROM alerts WHERE id IN (SELECT id FROM alerts "
				"WHERE raised_us < ?1 ORDER BY id LIMIT ?2)",
				tt_real_us() - al->retention_us, PRUNE_CHUNK);
		gone += n > 0 ? n : 0;
	}
	if (al->rows >= 0)
		al->rows -= gone;
	if (al->max_rows && n < PRUNE_CHUNK) {
		if (al->rows < 0)
			al->rows = count_rows(al);
		excess = al->rows - al->max_rows;
		if (excess > 0) {
			n = delete_rows(al, "DELETE FROM alerts WHERE id IN (SELECT id FROM alerts "
					"ORDER BY id LIMIT ?1)",
					excess < PRUNE_CHUNK ? excess : PRUNE_CHUNK, 0);
			if (n > 0) {
				gone += n;
				al->rows -= n;
			}
		}
	}
	pthread_mutex_lock(&al->mu);
	al->c.pruned += gone;
	pthread_mutex_unlock(&al->mu);
	return n == PRUNE_CHUNK || excess > PRUNE_CHUNK;
}

/* Up to BATCH_MAX raised alerts off the queue. Under al->mu. */
static struct pend *take_batch(tt_alerts *al, size_t *n)
{
	struct pend *p = al->rhead, *last = NULL;

	*n = 0;
	for (struct pend *q = p; q && *n < BATCH_MAX; q = q->next) {
		last = q;
		++*n;
	}
	if (!last)
		return NULL;
	al->rhead = last->next;
	if (!al->rhead)
		al->rtail = NULL;
	last->next = NULL;
	al->rqueued -= *n;
	return p;
}

static void *writer_main(void *arg)
{
	tt_alerts *al = arg;
	int64_t next_prune = 0;

	pthread_mutex_lock(&al->mu);
	for (;;) {
		int64_t now = tt_mono_us();
		int prune = !al->wstop && now >= next_prune;
		struct pend *p;
		struct mark *m;
		size_t n;

		if (!al->rhead && !al->mhead && !prune) {
			if (al->wstop)
				break;
			wait_until(&al->wcv, &al->mu, next_prune);
			continue;
		}
		p = take_batch(al, &n);
		m = al->mhead;
		al->mhead = al->mtail = NULL;
		pthread_mutex_unlock(&al->mu);
		if (p || m)
			write_batch(al, p, n, m);
		/* The age rule every minute; the row cap as soon as it is passed. */
		if (prune || (al->max_rows && al->rows > al->max_rows)) {
			if (prune_some(al))
				next_prune = now;  /* more to delete: go on next round */
			else if (prune)
				next_prune = now + PRUNE_EVERY_US;
		}
		pthread_mutex_lock(&al->mu);
		al->written += n;
		pthread_cond_broadcast(&al->fcv);
	}
	pthread_mutex_unlock(&al->mu);
	return NULL;
}

static const char *SCHEMA =
	"CREATE TABLE IF NOT EXISTS alerts (\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  dedup_key TEXT NOT NULL UNIQUE,\n"
	"  raised_us INTEGER NOT NULL,\n"
	"  json TEXT NOT NULL,\n"
	"  slack TEXT NOT NULL,\n"
	"  delivery TEXT NOT NULL DEFAULT 'pending',\n"
	"  attempts INTEGER NOT NULL DEFAULT 0\n"
	");\n"
	"CREATE INDEX IF NOT EXISTS alerts_raised ON alerts (raised_us);";

static int open_db(tt_alerts *al, const char *db_path, char *err, size_t errlen)
{
	if (sqlite3_open_v2(db_path, &al->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			    SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK ||
	    sqlite3_busy_timeout(al->db, 10000) != SQLITE_OK ||
	    sqlite3_exec(al->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL, NULL,
			 NULL) != SQLITE_OK ||
	    sqlite3_exec(al->db, SCHEMA, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(al->db, "INSERT OR IGNORE INTO alerts (dedup_key, raised_us, json, "
			       "slack, delivery) VALUES (?, ?, ?, ?, ?)", -1, &al->ins,
			       NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(al->db, "UPDATE alerts SET delivery = ?, attempts = ? WHERE id = ?",
			       -1, &al->upd, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "alerts: %s: %s", db_path,
			 al->db ? sqlite3_errmsg(al->db) : "cannot open");
		return TT_EIO;
	}
	if (sqlite3_open_v2(db_path, &al->rdb, SQLITE_OPEN_READONLY | SQLITE_OPEN_FULLMUTEX,
			    NULL) != SQLITE_OK ||
	    sqlite3_busy_timeout(al->rdb, 10000) != SQLITE_OK) {
		snprintf(err, errlen, "alerts: %s: %s", db_path,
			 al->rdb ? sqlite3_errmsg(al->rdb) : "cannot open");
		return TT_EIO;
	}
	return 0;
}

/* What a previous run could not deliver goes out again. */
static void requeue_pending(tt_alerts *al)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(al->db, "SELECT id, json, slack, attempts FROM alerts "
			       "WHERE delivery = 'pending' ORDER BY id", -1, &st, NULL) != SQLITE_OK)
		return;
	while (sqlite3_step(st) == SQLITE_ROW) {
		char *j = strdup((const char *)sqlite3_column_text(st, 1));
		char *s = strdup((const char *)sqlite3_column_text(st, 2));

		if (!j || !s) {
			free(j);
			free(s);
			continue;
		}
		enqueue(al, sqlite3_column_int64(st, 0), j, s, sqlite3_column_int(st, 3));
	}
	sqlite3_finalize(st);
}

static void init_sync(tt_alerts *al)
{
	pthread_condattr_t ca;

	pthread_mutex_init(&al->mu, NULL);
	pthread_mutex_init(&al->rlock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&al->cv, &ca);
	pthread_cond_init(&al->wcv, &ca);
	pthread_cond_init(&al->fcv, &ca);
	pthread_condattr_destroy(&ca);
}

int tt_alerts_open(const char *db_path, const cJSON *config, int start, tt_alerts **out,
		   char *err, size_t errlen)
{
	tt_alerts *al = calloc(1, sizeof(*al));
	int rc;

	*out = NULL;
	if (!al)
		return TT_ENOMEM;
	init_sync(al);
	if ((rc = parse_config(al, config, err, errlen)))
		goto fail;
	if ((rc = open_db(al, db_path, err, errlen)))
		goto fail;
	requeue_pending(al);
	al->rows = count_rows(al);
	rc = TT_ENOMEM;
	if (pthread_create(&al->writer, NULL, writer_main, al)) {
		snprintf(err, errlen, "alerts: cannot start the writer thread");
		goto fail;
	}
	al->wstarted = 1;
	if (start) {
		if (pthread_create(&al->thread, NULL, deliver_main, al)) {
			snprintf(err, errlen, "alerts: cannot start the delivery thread");
			goto fail;
		}
		al->started = 1;
	}
	*out = al;
	return 0;
fail:
	tt_alerts_close(al);
	return rc;
}

void tt_alerts_close(tt_alerts *al)
{
	if (!al)
		return;
	/* Delivery first: its last outcomes then reach the writer's final batch. */
	if (al->started) {
		pthread_mutex_lock(&al->mu);
		al->stop = 1;
		pthread_cond_signal(&al->cv);
		pthread_mutex_unlock(&al->mu);
		pthread_join(al->thread, NULL);
	}
	/* The writer drains what was raised before it stops. */
	if (al->wstarted) {
		pthread_mutex_lock(&al->mu);
		al->wstop = 1;
		pthread_cond_signal(&al->wcv);
		pthread_mutex_unlock(&al->mu);
		pthread_join(al->writer, NULL);
	}
	while (al->head) {
		struct item *n = al->head->next;

		item_free(al->head);
		al->head = n;
	}
	while (al->rhead) {
		struct pend *n = al->rhead->next;

		pend_free(al->rhead);
		al->rhead = n;
	}
	while (al->mhead) {
		struct mark *n = al->mhead->next;

		free(al->mhead);
		al->mhead = n;
	}
	sqlite3_finalize(al->ins);
	sqlite3_finalize(al->upd);
	sqlite3_close(al->rdb);
	sqlite3_close(al->db);
	pthread_cond_destroy(&al->cv);
	pthread_cond_destroy(&al->wcv);
	pthread_cond_destroy(&al->fcv);
	pthread_mutex_destroy(&al->rlock);
	pthread_mutex_destroy(&al->mu);
	free(al);
}

/*
 * The caller is the store's writer thread (budgets and detectors run in
 * its commit callback) or the main loop's tick: it pays a copy and a
 * queue push, never SQL.  A full queue drops the alert and counts it.
 */
void tt_alerts_raise(void *arg, const tt_alert *a)
{
	tt_alerts *al = arg;
	struct pend *p;

	if (!al)
		return;
	p = malloc(sizeof(*p));
	pthread_mutex_lock(&al->mu);
	if (!p || al->rqueued >= al->raise_max) {
		if (al->c.dropped++ == 0 || al->c.dropped % 10000 == 0)
			fprintf(stderr, "tokentapd: alerts: queue full (%zu waiting); %lld alert(s) "
				"dropped so far\n", al->rqueued, (long long)al->c.dropped);
		pthread_mutex_unlock(&al->mu);
		free(p);
		return;
	}
	p->next = NULL;
	p->raised_us = tt_real_us();
	p->rowid = 0;
	p->json = p->slack = NULL;
	p->a = *a;
	if (al->rtail)
		al->rtail->next = p;
	else
		al->rhead = p;
	al->rtail = p;
	al->rqueued++;
	al->pushed++;
	pthread_cond_signal(&al->wcv);
	pthread_mutex_unlock(&al->mu);
}

int tt_alerts_flush(tt_alerts *al, int64_t timeout_us)
{
	int64_t until = tt_mono_us() + timeout_us;
	uint64_t target;
	int rc = 0;

	pthread_mutex_lock(&al->mu);
	target = al->pushed;
	while (al->written < target && !rc) {
		if (tt_mono_us() >= until)
			rc = TT_ETRUNCATED;
		else
			wait_until(&al->fcv, &al->mu, until);
	}
	pthread_mutex_unlock(&al->mu);
	return rc;
}

int tt_alerts_list_json(tt_alerts *al, int limit, tt_buf *out)
{
	sqlite3_stmt *st = NULL;
	int rc = tt_buf_adds(out, "{\"alerts\":["), n = 0;

	/* What was raised before this request is listed (a bounded wait). */
	tt_alerts_flush(al, LIST_WAIT_US);
	pthread_mutex_lock(&al->rlock);
	if (!rc && sqlite3_prepare_v2(al->rdb, "SELECT json, delivery, attempts FROM alerts "
				      "ORDER BY id DESC LIMIT ?", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int(st, 1, limit);
		while (!rc && sqlite3_step(st) == SQLITE_ROW) {
			const char *j = (const char *)sqlite3_column_text(st, 0);
			size_t jl = strlen(j);

			/* The stored object, plus how its delivery went. */
			rc = tt_buf_printf(out, "%s", n++ ? "," : "");
			if (!rc && jl > 1)
				rc = tt_buf_add(out, j, jl - 1);
			if (!rc)
				rc = tt_buf_printf(out, ",\"delivery\":\"%s\",\"attempts\":%d}",
						   (const char *)sqlite3_column_text(st, 1),
						   sqlite3_column_int(st, 2));
		}
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&al->rlock);
	if (!rc)
		rc = tt_buf_adds(out, "]}\n");
	return rc;
}

void tt_alerts_counters(tt_alerts *al, struct tt_alerts_counters *c)
{
	pthread_mutex_lock(&al->mu);
	*c = al->c;
	c->queued = (int64_t)al->rqueued;
	pthread_mutex_unlock(&al->mu);
}

void tt_alerts_stats(tt_alerts *al, int64_t *raised, int64_t *delivered, int64_t *failed)
{
	struct tt_alerts_counters c;

	tt_alerts_counters(al, &c);
	*raised = c.raised;
	*delivered = c.delivered;
	*failed = c.failed;
}
