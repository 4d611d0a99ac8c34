/*
 * test_col_alert.c - the alert history (collector/alert.c): raising is a
 * queue push that never waits on the database (another connection holds
 * its write lock meanwhile), the writer then stores every alert once
 * (dedup within a batch, across batches and across a reopen), retention
 * deletes the oldest rows past max_rows and the rows older than
 * retention_days, a full queue drops and counts, and the config keys are
 * checked.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "../collector/alert.h"
#include "common/clock.h"
#include "tokentap/error.h"

#define FLUSH_US (10 * 1000000LL)

static char dir[] = "/tmp/tt-alert-test-XXXXXX";
static char path[128];

static void remove_db(void)
{
	char p[160];

	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
	unlink(path);
}

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/t.db", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	remove_db();
	rmdir(dir);
	return 0;
}

static int fresh(void **state)
{
	(void)state;
	remove_db();
	return 0;
}

static tt_alerts *open_with(const char *config)
{
	cJSON *c = config ? cJSON_Parse(config) : NULL;
	tt_alerts *al = NULL;
	char err[256] = "";
	int rc = tt_alerts_open(path, c, 0, &al, err, sizeof(err));

	cJSON_Delete(c);
	if (rc)
		fail_msg("tt_alerts_open: %s", err);
	return al;
}

static void raise_n(tt_alerts *al, const char *rule, int from, int to)
{
	for (int i = from; i < to; i++) {
		tt_alert a;

		memset(&a, 0, sizeof(a));
		snprintf(a.kind, sizeof(a.kind), "budget");
		snprintf(a.rule, sizeof(a.rule), "%s", rule);
		snprintf(a.scope, sizeof(a.scope), "task=t%d", i);
		snprintf(a.window, sizeof(a.window), "2026-01-01");
		a.threshold = 100;
		snprintf(a.state, sizeof(a.state), "firing");
		snprintf(a.message, sizeof(a.message), "test alert %s %d", rule, i);
		a.usd = -1;
		tt_alerts_raise(al, &a);
	}
}

/* The scopes GET /v1/alerts lists, newest first, into out; returns how many. */
static int listed(tt_alerts *al, char out[][32], int cap)
{
	tt_buf b;
	cJSON *root, *it;
	int n = 0;

	tt_buf_init(&b, 64u << 20);
	assert_int_equal(tt_alerts_list_json(al, 100000, &b), 0);
	root = cJSON_ParseWithLength(b.data, b.len);
	assert_non_null(root);
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(root, "alerts")) {
		if (n < cap)
			snprintf(out[n], 32, "%s", cJSON_GetObjectItem(it, "scope")->valuestring);
		n++;
	}
	cJSON_Delete(root);
	tt_buf_free(&b);
	return n;
}

struct locker {
	sqlite3 *db;
	int64_t hold_us;
};

static void *release_later(void *arg)
{
	struct locker *l = arg;

	usleep((useconds_t)l->hold_us);
	sqlite3_exec(l->db, "COMMIT", NULL, NULL, NULL);
	return NULL;
}

/* Hold the database's write lock from another connection, as the store's writer would. */
static void lock_db(struct locker *l, pthread_t *t, int64_t hold_us)
{
	assert_int_equal(sqlite3_open(path, &l->db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(l->db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	l->hold_us = hold_us;
	assert_int_equal(pthread_create(t, NULL, release_later, l), 0);
}

static void unlock_db(struct locker *l, pthread_t t)
{
	pthread_join(t, NULL);
	sqlite3_close(l->db);
}

/* The storm: alerts raised in the records' commit path must not wait on SQL. */
static void test_raise_never_waits_on_the_database(void **state)
{
	tt_alerts *al = open_with(NULL);
	struct tt_alerts_counters c;
	char scopes[2][32];
	struct locker l;
	pthread_t t;
	int64_t t0, took;

	(void)state;
	lock_db(&l, &t, 1500000);
	t0 = tt_mono_us();
	raise_n(al, "storm", 0, 500);
	took = tt_mono_us() - t0;
	/* Before: the first raise waited 1.5 s for the lock, then one fsync each. */
	if (took > 300000)
		fail_msg("500 raises took %lld ms while the database was locked",
			 (long long)(took / 1000));
	unlock_db(&l, t);
	assert_int_equal(tt_alerts_flush(al, FLUSH_US), 0);
	assert_int_equal(listed(al, scopes, 2), 500);
	assert_string_equal(scopes[0], "task=t499");  /* newest first: raise order kept */
	assert_string_equal(scopes[1], "task=t498");
	tt_alerts_counters(al, &c);
	assert_int_equal(c.raised, 500);
	assert_int_equal(c.dropped, 0);
	assert_int_equal(c.queued, 0);
	tt_alerts_close(al);
}

static void test_dedup_in_batch_and_across_reopen(void **state)
{
	tt_alerts *al = open_with(NULL);
	struct tt_alerts_counters c;
	char scopes[4][32];

	(void)state;
	raise_n(al, "d", 0, 3);
	raise_n(al, "d", 0, 3);  /* same keys, likely the same batch */
	assert_int_equal(tt_alerts_flush(al, FLUSH_US), 0);
	raise_n(al, "d", 1, 2);  /* a later batch */
	assert_int_equal(listed(al, scopes, 4), 3);
	tt_alerts_counters(al, &c);
	assert_int_equal(c.raised, 3);
	tt_alerts_close(al);

	al = open_with(NULL);
	raise_n(al, "d", 0, 4);  /* 3 known keys, 1 new */
	assert_int_equal(listed(al, scopes, 4), 4);
	assert_string_equal(scopes[0], "task=t3");
	tt_alerts_counters(al, &c);
	assert_int_equal(c.raised, 1);
	tt_alerts_close(al);
}

static void test_retention_max_rows(void **state)
{
	tt_alerts *al = open_with("{\"max_rows\": 10}");
	struct tt_alerts_counters c;
	char scopes[10][32];

	(void)state;
	raise_n(al, "r", 0, 25);
	assert_int_equal(listed(al, scopes, 10), 10);
	assert_string_equal(scopes[0], "task=t24");
	assert_string_equal(scopes[9], "task=t15");  /* the oldest went */
	tt_alerts_counters(al, &c);
	assert_int_equal(c.raised, 25);
	assert_int_equal(c.pruned, 15);
	tt_alerts_close(al);
}

static void test_retention_days(void **state)
{
	tt_alerts *al = open_with(NULL);
	struct tt_alerts_counters c;
	char scopes[8][32];
	sqlite3 *db;
	char sql[160];

	(void)state;
	raise_n(al, "old", 0, 5);
	assert_int_equal(tt_alerts_flush(al, FLUSH_US), 0);
	tt_alerts_close(al);
	/* Three rows raised 40 days ago, two 20 days ago. */
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	snprintf(sql, sizeof(sql), "UPDATE alerts SET raised_us = %lld - (CASE WHEN id <= 3 "
		 "THEN 40 ELSE 20 END) * 86400000000", (long long)tt_real_us());
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	al = open_with("{\"retention_days\": 30}");
	raise_n(al, "new", 0, 1);
	assert_int_equal(listed(al, scopes, 8), 3);
	assert_string_equal(scopes[0], "task=t0");
	assert_string_equal(scopes[2], "task=t3");
	tt_alerts_counters(al, &c);
	assert_int_equal(c.pruned, 3);
	tt_alerts_close(al);
}

static void test_full_queue_drops_and_counts(void **state)
{
	tt_alerts *al = open_with("{\"queue_max\": 5}");
	struct tt_alerts_counters c;
	char scopes[1][32];
	struct locker l;
	pthread_t t;
	int n;

	(void)state;
	lock_db(&l, &t, 500000);
	raise_n(al, "q", 0, 40);
	tt_alerts_counters(al, &c);
	/* At most one batch taken by the writer (stuck on the lock) and 5 waiting. */
	assert_true(c.dropped >= 40 - 5 - 5);
	unlock_db(&l, t);
	n = listed(al, scopes, 1);
	tt_alerts_counters(al, &c);
	assert_int_equal(n + c.dropped, 40);
	assert_int_equal(c.raised, n);
	tt_alerts_close(al);
}

static void test_config_keys(void **state)
{
	static const char *const bad[] = {
		"{\"retention_days\": -1}", "{\"retention_days\": 40000}", "{\"max_rows\": \"x\"}",
		"{\"queue_max\": 0}", "{\"max_row\": 5}",
	};
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cJSON *c = cJSON_Parse(bad[i]);

		err[0] = '\0';
		assert_int_equal(tt_alerts_check_config(c, err, sizeof(err)), TT_EINVAL);
		assert_non_null(strstr(err, "retention_days 0-36500"));
		cJSON_Delete(c);
	}
	{
		cJSON *c = cJSON_Parse("{\"retention_days\": 0.5, \"max_rows\": 0, "
				       "\"queue_max\": 100}");

		assert_int_equal(tt_alerts_check_config(c, err, sizeof(err)), 0);
		cJSON_Delete(c);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_raise_never_waits_on_the_database, fresh),
		cmocka_unit_test_setup(test_dedup_in_batch_and_across_reopen, fresh),
		cmocka_unit_test_setup(test_retention_max_rows, fresh),
		cmocka_unit_test_setup(test_retention_days, fresh),
		cmocka_unit_test_setup(test_full_queue_drops_and_counts, fresh),
		cmocka_unit_test(test_config_keys),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
