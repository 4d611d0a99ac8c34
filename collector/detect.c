/* detect.c - loop blow-up detectors; see detect.h. */
#include "detect.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tokentap/error.h"

#define MAX_TASKS 10000
#define TASK_BUCKETS 1024
#define HASHES 64
#define IDLE_US (3600LL * 1000000)

enum { D_RATE, D_REPEAT, D_SNOWBALL, D_CALLS, D_N };
static const char *const names[D_N] = {"rate", "repeat", "snowball", "calls"};

struct task {
	struct task *next;
	char scope[160];
	int64_t calls, tokens;
	double usd;
	int unpriced;
	int64_t first_us, last_us;
	int64_t sec_id[60];      /* rate: calls per second over the last minute */
	int sec_n[60];
	int64_t rate_episode;    /* the minute the episode began; 0: none */
	struct { char h[33]; int64_t n; } hashes[HASHES];
	int nh;
	int64_t prev_in, run_start_in;
	int run;                 /* calls in a row with growing input */
	unsigned fired;          /* detectors that fired (not rate) */
};

struct tt_detect {
	pthread_mutex_t mu;
	int on[D_N];
	int64_t rate, repeat, snow_calls, max_calls;
	double snow_factor;
	struct task *tasks[TASK_BUCKETS];
	size_t ntasks;
	tt_alert_fn alert;
	void *arg;
};

tt_detect *tt_detect_new(void)
{
	tt_detect *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	pthread_mutex_init(&d->mu, NULL);
	d->rate = 120;
	d->repeat = 8;
	d->snow_factor = 4;
	d->snow_calls = 8;
	d->max_calls = 500;
	return d;
}

void tt_detect_free(tt_detect *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < TASK_BUCKETS; i++) {
		struct task *t = d->tasks[i], *n;

		for (; t; t = n) {
			n = t->next;
			free(t);
		}
	}
	pthread_mutex_destroy(&d->mu);
	free(d);
}

int tt_detect_enabled(const tt_detect *d)
{
	return d->on[D_RATE] || d->on[D_REPEAT] || d->on[D_SNOWBALL] || d->on[D_CALLS];
}

void tt_detect_on_alert(tt_detect *d, tt_alert_fn fn, void *arg)
{
	d->alert = fn;
	d->arg = arg;
}

static int num(const cJSON *o, const char *key, double lo, double hi, int integer, double *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (!v)
		return 0;
	if (!cJSON_IsNumber(v) || v->valuedouble < lo || v->valuedouble > hi ||
	    (integer && v->valuedouble != floor(v->valuedouble)))
		return -1;
	*out = v->valuedouble;
	return 0;
}

int tt_detect_config(tt_detect *d, const cJSON *c, char *err, size_t errlen)
{
	const cJSON *it;

	if (!c)
		return 0;
	if (!cJSON_IsObject(c)) {
		snprintf(err, errlen, "detectors: expected an object");
		return TT_EINVAL;
	}
	cJSON_ArrayForEach(it, c) {
		double v;
		const cJSON *k;
		int i;

		for (i = 0; i < D_N; i++)
			if (strcmp(it->string, names[i]) == 0)
				break;
		if (i == D_N || !cJSON_IsObject(it)) {
			snprintf(err, errlen, "detectors.%.64s: %s", it->string,
				 i == D_N ? "unknown detector (known: rate, repeat, snowball, calls)"
					  : "expected an object");
			return TT_EINVAL;
		}
		d->on[i] = 1;
		cJSON_ArrayForEach(k, it) {
			int bad = 0;

			if (i == D_RATE && strcmp(k->string, "calls_per_minute") == 0) {
				v = d->rate;
				bad = num(it, k->string, 1, 1e6, 1, &v);
				d->rate = (int64_t)v;
			} else if (i == D_REPEAT && strcmp(k->string, "count") == 0) {
				v = d->repeat;
				bad = num(it, k->string, 2, 1e6, 1, &v);
				d->repeat = (int64_t)v;
			} else if (i == D_SNOWBALL && strcmp(k->string, "factor") == 0) {
				bad = num(it, k->string, 1.01, 1e6, 0, &d->snow_factor);
			} else if (i == D_SNOWBALL && strcmp(k->string, "calls") == 0) {
				v = d->snow_calls;
				bad = num(it, k->string, 2, 1e6, 1, &v);
				d->snow_calls = (int64_t)v;
			} else if (i == D_CALLS && strcmp(k->string, "max") == 0) {
				v = d->max_calls;
				bad = num(it, k->string, 1, 1e12, 1, &v);
				d->max_calls = (int64_t)v;
			} else {
				snprintf(err, errlen, "detectors.%s.%.64s: unknown key", names[i],
					 k->string);
				return TT_EINVAL;
			}
			if (bad) {
				snprintf(err, errlen, "detectors.%s.%s: number out of range", names[i],
					 k->string);
				return TT_EINVAL;
			}
		}
	}
	return 0;
}

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static struct task *task_get(tt_detect *d, const char *scope)
{
	uint64_t h = hash_str(scope) % TASK_BUCKETS;
	struct task *t;

	for (t = d->tasks[h]; t; t = t->next)
		if (strcmp(t->scope, scope) == 0)
			return t;
	if (d->ntasks >= MAX_TASKS || !(t = calloc(1, sizeof(*t))))
		return NULL;
	snprintf(t->scope, sizeof(t->scope), "%s", scope);
	t->next = d->tasks[h];
	d->tasks[h] = t;
	d->ntasks++;
	return t;
}

static int64_t rate_now(const struct task *t, int64_t now_us)
{
	int64_t sec = now_us / 1000000, n = 0;

	for (int i = 0; i < 60; i++)
		if (t->sec_id[i] > sec - 60 && t->sec_id[i] <= sec)
			n += t->sec_n[i];
	return n;
}

static void fire(tt_detect *d, const struct task *t, int det, const char *window, int resolved,
		 const char *hash, int64_t count, const char *what)
{
	tt_alert a;

	if (!d->alert)
		return;
	memset(&a, 0, sizeof(a));
	snprintf(a.kind, sizeof(a.kind), "detector");
	snprintf(a.rule, sizeof(a.rule), "%s", names[det]);
	snprintf(a.scope, sizeof(a.scope), "%s", t->scope);
	snprintf(a.window, sizeof(a.window), "%s", window);
	snprintf(a.state, sizeof(a.state), "%s", resolved ? "resolved" : "firing");
	a.calls = t->calls;
	a.tokens = t->tokens;
	a.usd = t->unpriced && t->usd == 0 ? -1 : t->usd;
	if (hash)
		snprintf(a.prompt_hash, sizeof(a.prompt_hash), "%s", hash);
	a.repeat_count = count;
	a.first_us = t->first_us;
	a.last_us = t->last_us;
	snprintf(a.message, sizeof(a.message),
		 "tokentap loop detector \"%s\" %s for %s: %s (%lld calls, %lld tokens, $%.6f so far)",
		 names[det], resolved ? "resolved" : "fired", t->scope, what, (long long)t->calls,
		 (long long)t->tokens, t->usd);
	d->alert(d->arg, &a);
}

static void add_locked(tt_detect *d, const struct tt_detect_event *ev)
{
	char scope[160], what[256];
	struct task *t;
	int64_t in = ev->input_tokens;

	if (ev->task && ev->task[0])
		snprintf(scope, sizeof(scope), "task=%.128s", ev->task);
	else
		snprintf(scope, sizeof(scope), "pid=%lld", (long long)ev->pid);
	t = task_get(d, scope);
	if (!t)
		return;
	t->calls++;
	t->tokens += (in > 0 ? in : 0) + (ev->output_tokens > 0 ? ev->output_tokens : 0);
	if (ev->priced)
		t->usd += ev->usd;
	else
		t->unpriced = 1;
	if (!t->first_us || ev->ts_us < t->first_us)
		t->first_us = ev->ts_us;
	if (ev->ts_us > t->last_us)
		t->last_us = ev->ts_us;

	if (d->on[D_RATE]) {
		int64_t sec = ev->ts_us / 1000000;
		int slot = (int)(sec % 60);

		if (t->sec_id[slot] != sec) {
			t->sec_id[slot] = sec;
			t->sec_n[slot] = 0;
		}
		t->sec_n[slot]++;
		int64_t r = rate_now(t, t->last_us);
		if (r > d->rate && !t->rate_episode) {
			char w[48];

			t->rate_episode = sec / 60 ? sec / 60 : 1;
			snprintf(w, sizeof(w), "minute:%lld", (long long)t->rate_episode);
			snprintf(what, sizeof(what), "%lld calls in the last 60 s (limit %lld)",
				 (long long)r, (long long)d->rate);
			fire(d, t, D_RATE, w, 0, NULL, 0, what);
		}
	}
	if (d->on[D_REPEAT] && ev->prompt_hash && ev->prompt_hash[0]) {
		int i, low = 0;

		for (i = 0; i < t->nh; i++)
			if (strcmp(t->hashes[i].h, ev->prompt_hash) == 0)
				break;
		if (i == t->nh) {
			if (t->nh < HASHES) {
				i = t->nh++;
			} else {
				for (int j = 1; j < HASHES; j++)
					if (t->hashes[j].n < t->hashes[low].n)
						low = j;
				i = low;  /* the rarest prompt makes room */
			}
			snprintf(t->hashes[i].h, sizeof(t->hashes[i].h), "%s", ev->prompt_hash);
			t->hashes[i].n = 0;
		}
		t->hashes[i].n++;
		if (t->hashes[i].n >= d->repeat && !(t->fired & (1u << D_REPEAT))) {
			t->fired |= 1u << D_REPEAT;
			snprintf(what, sizeof(what), "the same prompt (hash %s) sent %lld times",
				 t->hashes[i].h, (long long)t->hashes[i].n);
			fire(d, t, D_REPEAT, "task", 0, t->hashes[i].h, t->hashes[i].n, what);
		}
	}
	if (d->on[D_SNOWBALL] && in > 0) {
		if (t->run > 0 && in > t->prev_in) {
			t->run++;
		} else {
			t->run = 1;
			t->run_start_in = in;
		}
		t->prev_in = in;
		if (t->run >= d->snow_calls && (double)in >= d->snow_factor * (double)t->run_start_in &&
		    !(t->fired & (1u << D_SNOWBALL))) {
			t->fired |= 1u << D_SNOWBALL;
			snprintf(what, sizeof(what),
				 "input tokens grew on %d calls in a row, from %lld to %lld", t->run,
				 (long long)t->run_start_in, (long long)in);
			fire(d, t, D_SNOWBALL, "task", 0, NULL, 0, what);
		}
	}
	if (d->on[D_CALLS] && t->calls > d->max_calls && !(t->fired & (1u << D_CALLS))) {
		t->fired |= 1u << D_CALLS;
		snprintf(what, sizeof(what), "%lld calls (limit %lld)", (long long)t->calls,
			 (long long)d->max_calls);
		fire(d, t, D_CALLS, "task", 0, NULL, 0, what);
	}
}

void tt_detect_add(tt_detect *d, const struct tt_detect_event *ev)
{
	pthread_mutex_lock(&d->mu);
	add_locked(d, ev);
	pthread_mutex_unlock(&d->mu);
}

void tt_detect_add_rec(void *arg, const tt_rec *r, const tt_buf *arena)
{
	tt_detect *d = arg;
	struct tt_detect_event ev = {0};
	char task[256], hash[33];
	const char *s;
	size_t len;

	if (!d || !tt_detect_enabled(d))
		return;
	s = tt_rec_str(r, TT_F_SIDE, arena, &len);
	if ((s && len == 6 && memcmp(s, "server", 6) == 0) || tt_rec_int(r, TT_F_BLOCKED, 0))
		return;
	task[0] = hash[0] = '\0';
	if ((s = tt_rec_str(r, TT_F_TASK, arena, &len)))
		snprintf(task, sizeof(task), "%.*s", (int)len, s);
	if ((s = tt_rec_str(r, TT_F_PROMPT_HASH, arena, &len)))
		snprintf(hash, sizeof(hash), "%.*s", (int)len, s);
	ev.task = task;
	ev.prompt_hash = hash;
	ev.pid = tt_rec_int(r, TT_F_PID, 0);
	ev.ts_us = tt_rec_int(r, TT_F_TS, 0);
	ev.input_tokens = tt_rec_int(r, TT_F_INPUT_TOKENS, -1);
	ev.output_tokens = tt_rec_int(r, TT_F_OUTPUT_TOKENS, -1);
	ev.priced = r->priced;
	ev.usd = r->priced ? r->cost_usd : 0;
	tt_detect_add(d, &ev);
}

void tt_detect_tick(tt_detect *d, int64_t now_us)
{
	pthread_mutex_lock(&d->mu);
	for (size_t h = 0; h < TASK_BUCKETS; h++) {
		struct task **pp = &d->tasks[h];

		while (*pp) {
			struct task *t = *pp;

			if (t->rate_episode && rate_now(t, now_us) <= d->rate) {
				char w[48], what[96];

				snprintf(w, sizeof(w), "minute:%lld", (long long)t->rate_episode);
				snprintf(what, sizeof(what), "back under %lld calls a minute",
					 (long long)d->rate);
				fire(d, t, D_RATE, w, 1, NULL, 0, what);
				t->rate_episode = 0;
			}
			if (t->last_us && now_us - t->last_us > IDLE_US) {
				*pp = t->next;
				free(t);
				d->ntasks--;
				continue;
			}
			pp = &t->next;
		}
	}
	pthread_mutex_unlock(&d->mu);
}
