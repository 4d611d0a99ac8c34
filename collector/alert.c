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
#define QUEUE_MAX 10000

struct hook {
	char url[1024];
	int slack;
};

struct item {
	struct item *next;
	int64_t rowid;
	char *json;    /* generic body */
	char *slack;   /* {"text": ...} */
	int attempts;
	unsigned done;   /* hooks that took it: a retry goes to the others only */
	int64_t due_us;
};

struct tt_alerts {
	sqlite3 *db;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	int started, stop;
	struct hook hooks[MAX_HOOKS];
	int nhooks;
	int retries;
	int64_t backoff_us, timeout_ms;
	struct item *head, *tail;
	size_t queued;
	int64_t raised, delivered, failed;
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
		} else {
			snprintf(err, errlen, "alerts.%.64s: unknown key or value out of range (known: "
				 "webhooks, retries 0-20, backoff_ms 1-600000, timeout_ms 100-60000)",
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

static void mark(tt_alerts *al, int64_t rowid, const char *state, int attempts)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(al->db, "UPDATE alerts SET delivery = ?, attempts = ? WHERE id = ?",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, state, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 2, attempts);
		sqlite3_bind_int64(st, 3, rowid);
		sqlite3_step(st);
	}
	sqlite3_finalize(st);
}

static void *deliver_main(void *arg)
{
	tt_alerts *al = arg;

	pthread_mutex_lock(&al->mu);
	while (!al->stop) {
		struct item *it = al->head;
		int64_t now = tt_real_us();

		if (!it || it->due_us > now) {
			struct timespec ts;
			int64_t until = it ? it->due_us : now + 1000000;

			ts.tv_sec = until / 1000000;
			ts.tv_nsec = (until % 1000000) * 1000;
			pthread_cond_timedwait(&al->cv, &al->mu, &ts);
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
			al->delivered++;
			mark(al, it->rowid, "delivered", it->attempts);
			item_free(it);
		} else if (it->attempts > al->retries) {
			al->failed++;
			fprintf(stderr, "tokentapd: alert %lld: webhook failed %d times; giving up\n",
				(long long)it->rowid, it->attempts);
			mark(al, it->rowid, "failed", it->attempts);
			item_free(it);
		} else {
			/* Back-off doubles each attempt.  Retries go to the back:
			 * one dead hook does not hold the others' alerts. */
			it->due_us = tt_real_us() + (al->backoff_us << (it->attempts - 1));
			mark(al, it->rowid, "pending", it->attempts);
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

/* Queue under al->mu; takes json and slack. */
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

static const char *SCHEMA =
	"CREATE TABLE IF NOT EXISTS alerts (\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  dedup_key TEXT NOT NULL UNIQUE,\n"
	"  raised_us INTEGER NOT NULL,\n"
	"  json TEXT NOT NULL,\n"
	"  slack TEXT NOT NULL,\n"
	"  delivery TEXT NOT NULL DEFAULT 'pending',\n"
	"  attempts INTEGER NOT NULL DEFAULT 0\n"
	");";

int tt_alerts_open(const char *db_path, const cJSON *config, int start, tt_alerts **out,
		   char *err, size_t errlen)
{
	tt_alerts *al = calloc(1, sizeof(*al));
	sqlite3_stmt *st = NULL;
	int rc;

	*out = NULL;
	if (!al)
		return TT_ENOMEM;
	pthread_mutex_init(&al->mu, NULL);
	pthread_cond_init(&al->cv, NULL);
	if ((rc = parse_config(al, config, err, errlen)))
		goto fail;
	if (sqlite3_open_v2(db_path, &al->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			    SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK ||
	    sqlite3_busy_timeout(al->db, 10000) != SQLITE_OK ||
	    sqlite3_exec(al->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL, NULL,
			 NULL) != SQLITE_OK ||
	    sqlite3_exec(al->db, SCHEMA, NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "alerts: %s: %s", db_path,
			 al->db ? sqlite3_errmsg(al->db) : "cannot open");
		rc = TT_EIO;
		goto fail;
	}
	/* What a previous run could not deliver goes out again. */
	if (sqlite3_prepare_v2(al->db, "SELECT id, json, slack, attempts FROM alerts "
			       "WHERE delivery = 'pending' ORDER BY id", -1, &st, NULL) == SQLITE_OK) {
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
	}
	sqlite3_finalize(st);
	if (start) {
		if (pthread_create(&al->thread, NULL, deliver_main, al)) {
			snprintf(err, errlen, "alerts: cannot start the delivery thread");
			rc = TT_ENOMEM;
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
	if (al->started) {
		pthread_mutex_lock(&al->mu);
		al->stop = 1;
		pthread_cond_signal(&al->cv);
		pthread_mutex_unlock(&al->mu);
		pthread_join(al->thread, NULL);
	}
	while (al->head) {
		struct item *n = al->head->next;

		item_free(al->head);
		al->head = n;
	}
	sqlite3_close(al->db);
	pthread_cond_destroy(&al->cv);
	pthread_mutex_destroy(&al->mu);
	free(al);
}

void tt_alerts_raise(void *arg, const tt_alert *a)
{
	tt_alerts *al = arg;
	char key[1024];
	tt_buf j, s;
	sqlite3_stmt *st = NULL;
	int64_t now = tt_real_us();

	if (!al)
		return;
	tt_alert_key(a, key, sizeof(key));
	tt_buf_init(&j, 64 * 1024);
	tt_buf_init(&s, 64 * 1024);
	if (tt_alert_json(a, now, &j) || slack_body(a, &s) || !j.data || !s.data)
		goto out;
	pthread_mutex_lock(&al->mu);
	if (sqlite3_prepare_v2(al->db, "INSERT OR IGNORE INTO alerts (dedup_key, raised_us, json, "
			       "slack) VALUES (?, ?, ?, ?)", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 2, now);
		sqlite3_bind_text(st, 3, j.data, (int)j.len, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 4, s.data, (int)s.len, SQLITE_TRANSIENT);
		if (sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(al->db) == 1) {
			al->raised++;
			fprintf(stderr, "tokentapd: alert: %s\n", a->message);
			enqueue(al, sqlite3_last_insert_rowid(al->db), tt_buf_take(&j, NULL),
				tt_buf_take(&s, NULL), 0);
			if (al->nhooks == 0)
				mark(al, sqlite3_last_insert_rowid(al->db), "logged", 0);
		}
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&al->mu);
out:
	tt_buf_free(&j);
	tt_buf_free(&s);
}

int tt_alerts_list_json(tt_alerts *al, int limit, tt_buf *out)
{
	sqlite3_stmt *st = NULL;
	int rc = tt_buf_adds(out, "{\"alerts\":["), n = 0;

	pthread_mutex_lock(&al->mu);
	if (!rc && sqlite3_prepare_v2(al->db, "SELECT json, delivery, attempts FROM alerts "
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
	pthread_mutex_unlock(&al->mu);
	if (!rc)
		rc = tt_buf_adds(out, "]}\n");
	return rc;
}

void tt_alerts_stats(tt_alerts *al, int64_t *raised, int64_t *delivered, int64_t *failed)
{
	pthread_mutex_lock(&al->mu);
	*raised = al->raised;
	*delivered = al->delivered;
	*failed = al->failed;
	pthread_mutex_unlock(&al->mu);
}
