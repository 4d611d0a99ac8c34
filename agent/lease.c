/* lease.c - local budget leases and the collector's /v1/lease; see lease.h. */
#include "lease.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "guard.h"
#include "ship/client.h"

#define SLOTS 64
#define ANSWER_MAX 8192
#define DENY_CACHE_US 1000000   /* a refusal is not asked again for 1 s */
#define DOWN_CACHE_US 1000000   /* nor an unreachable collector */
#define MAX_ROUNDS 8
/*
 * Output tokens reserved for a request that sets no ceiling, until a
 * grant brings the collector's own default (leases.default_max_output_tokens).
 */
#define DEFAULT_MAX_OUTPUT 4096

struct entry {
	int used;
	tt_lease_key key;
	char id[96];
	uint64_t gen;
	int have;                    /* a grant arrived at least once */
	double usd_left;             /* < 0 with *_unl: unlimited */
	int64_t tok_left, calls_left;
	int usd_unl, tok_unl, calls_unl;
	double g_usd;                /* the last grant, to tell "running low" */
	int64_t g_tok, g_calls;
	double pin, pout;            /* USD per token; < 0 unpriced */
	int64_t max_output;
	int64_t granted_us, ttl_us;  /* monotonic */
	int renewing, want_bg;
	int outstanding;             /* reservations not settled yet */
	uint64_t epoch;              /* bumped when the local lease is dropped */
	int64_t deny_until;
	char deny_reason[384], deny_rule[64];
	int64_t last_in, last_out;
};

static struct {
	char collector[512];   /* for messages */
	int enabled;
	int fail_closed;
	int timeout_ms;
} cfg;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;     /* a renewal ended */
static pthread_cond_t bg_cv = PTHREAD_COND_INITIALIZER;  /* work for the thread */
static struct entry slots[SLOTS];
static int bg_started;
static int64_t down_until;
static uint64_t n_requests, n_local;
static char agent_id[40];
static tt_client *client;  /* NULL: collector off or unusable */
static int warn_open, warn_closed, warn_full, warn_bad;

static void new_agent_id(void)
{
	unsigned char r[8];

	if (getrandom(r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
		memset(r, 0, sizeof(r));
	snprintf(agent_id, sizeof(agent_id), "%d-%02x%02x%02x%02x%02x%02x%02x%02x", (int)getpid(),
		 r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
}

/* bg_cv waits on CLOCK_MONOTONIC: a step of the wall clock must not
 * delay a keep-alive past the lease's end. */
static void init_bg_cv(void)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&bg_cv, &ca);
	pthread_condattr_destroy(&ca);
}

void tt_lease_setup(const char *collector, const char *token_file, int fail_closed,
		    int timeout_ms)
{
	char err[256];

	init_bg_cv();
	cfg.enabled = collector && collector[0] && strcmp(collector, "off") != 0;
	if (cfg.enabled)
		snprintf(cfg.collector, sizeof(cfg.collector), "%s", collector);
	cfg.fail_closed = fail_closed;
	cfg.timeout_ms = timeout_ms > 0 ? timeout_ms : 1000;
	new_agent_id();
	if (!cfg.enabled)
		return;
	client = tt_client_new(collector, err, sizeof(err));
	if (!client) {
		tt_log(TT_LOG_WARN, "enforce: %s", err);
		return; /* unreachable: TOKENTAP_FAIL decides */
	}
	if (token_file && token_file[0] &&
	    tt_client_token_file(client, token_file, err, sizeof(err)))
		tt_log(TT_LOG_WARN, "TOKENTAP_TOKEN_FILE %s", err);
}

/* ---- talking to the collector ------------------------------------------- */

/*
 * POST body to path; the answer's body into out (NUL-terminated).  Returns
 * the status, or -1 when no answer came by the deadline (ship/client.h:
 * host names are looked up off this path).
 */
static int post(const char *path, const char *body, size_t blen, char *out, size_t cap,
		size_t *olen)
{
	char err[256];
	tt_buf ans;
	int st;

	*olen = 0;
	out[0] = '\0';
	if (!client)
		return -1;
	tt_buf_init(&ans, cap - 1);
	st = tt_client_request(client, "POST", path, "application/json", body, blen,
			       cfg.timeout_ms, &ans, err, sizeof(err));
	if (st > 0 && ans.data) {
		memcpy(out, ans.data, ans.len + 1);
		*olen = ans.len;
	} else if (st < 0) {
		tt_log(TT_LOG_DEBUG, "lease: %s", err);
	}
	tt_buf_free(&ans);
	return st > 0 ? st : -1;
}

/* ---- the lease protocol ------------------------------------------------ */

/* Append ,"name":"<s escaped>" at *n when s is not empty. */
static void json_str(char *dst, size_t cap, size_t *n, const char *name, const char *s)
{
	int w;

	if (!s[0])
		return;
	w = snprintf(dst + *n, cap - *n, ",\"%s\":\"", name);
	if (w < 0 || (size_t)w >= cap - *n)
		return;
	*n += (size_t)w;
	*n += tt_json_escape(dst + *n, cap - *n - 1, s);
	dst[(*n)++] = '"';
	dst[*n] = '\0';
}

int tt_lease_parse_answer(const char *body, size_t len, struct tt_lease_grant *g, char *reason,
			  size_t cap, char *rule, size_t rule_cap)
{
	cJSON *root = cJSON_ParseWithLength(body, len);
	const cJSON *allow, *grant, *price, *v;
	int rc = -1;

	memset(g, 0, sizeof(*g));
	g->usd = g->price_in = g->price_out = -1;
	g->tokens = g->calls = -1;
	g->ttl_ms = 30000;
	g->max_output = DEFAULT_MAX_OUTPUT;
	if (reason && cap)
		reason[0] = '\0';
	if (rule && rule_cap)
		rule[0] = '\0';
	allow = cJSON_GetObjectItemCaseSensitive(root, "allow");
	if (!cJSON_IsBool(allow))
		goto out;
	if (!cJSON_IsTrue(allow)) {
		v = cJSON_GetObjectItemCaseSensitive(root, "reason");
		snprintf(reason, cap, "%s", cJSON_IsString(v) ? v->valuestring : "budget exhausted");
		v = cJSON_GetObjectItemCaseSensitive(root, "rule");
		if (cJSON_IsString(v) && rule)
			snprintf(rule, rule_cap, "%s", v->valuestring);
		rc = 0;
		goto out;
	}
	grant = cJSON_GetObjectItemCaseSensitive(root, "grant");
	price = cJSON_GetObjectItemCaseSensitive(root, "price");
#define NUM(o, k, dst, T) do { v = cJSON_GetObjectItemCaseSensitive(o, k); \
		if (cJSON_IsNumber(v) && v->valuedouble >= 0) dst = (T)v->valuedouble; } while (0)
	NUM(grant, "usd", g->usd, double);
	NUM(grant, "tokens", g->tokens, int64_t);
	NUM(grant, "calls", g->calls, int64_t);
	NUM(price, "input", g->price_in, double);
	NUM(price, "output", g->price_out, double);
	NUM(root, "ttl_ms", g->ttl_ms, int64_t);
	NUM(root, "max_output_tokens", g->max_output, int64_t);
#undef NUM
	if (g->ttl_ms < 1000)
		g->ttl_ms = 1000;
	rc = 1;
out:
	cJSON_Delete(root);
	return rc;
}

/*
 * Ask for a grant for e (mu NOT held; the caller owns e->renewing).
 * Returns 1 granted (*g), 0 denied (reason), -1 no answer.
 */
static int request(struct entry *e, int64_t need_in, int64_t need_out, int64_t need_calls,
		   const double have[3], struct tt_lease_grant *g, char *reason, size_t cap,
		   char *rule, size_t rcap)
{
	char body[2048], ans[ANSWER_MAX];
	size_t n = 0, alen = 0;
	int st, w;

	if (!cfg.enabled)
		return -1;
	w = snprintf(body, sizeof(body), "{\"id\":\"%s\",\"pid\":%d", e->id, (int)getpid());
	if (w < 0)
		return -1;
	n = (size_t)w;
	json_str(body, sizeof(body), &n, "task", e->key.task);
	json_str(body, sizeof(body), &n, "tenant", e->key.tenant);
	json_str(body, sizeof(body), &n, "feature", e->key.feature);
	json_str(body, sizeof(body), &n, "pod", e->key.pod);
	json_str(body, sizeof(body), &n, "model", e->key.model);
	json_str(body, sizeof(body), &n, "provider", e->key.provider);
	/* What is left here counts towards the need (no stranded slivers). */
	w = snprintf(body + n, sizeof(body) - n,
		     ",\"need\":{\"input_tokens\":%lld,\"output_tokens\":%lld,\"calls\":%lld},"
		     "\"have\":{\"usd\":%.17g,\"tokens\":%lld,\"calls\":%lld}}",
		     (long long)need_in, (long long)need_out, (long long)need_calls, have[0],
		     (long long)have[1], (long long)have[2]);
	if (w < 0 || (size_t)w >= sizeof(body) - n)
		return -1;
	n += (size_t)w;
	__atomic_add_fetch(&n_requests, 1, __ATOMIC_RELAXED);
	st = post("/v1/lease", body, n, ans, sizeof(ans), &alen);
	if (st != 200) {
		if (st > 0)
			tt_log_once(&warn_bad, TT_LOG_WARN, "collector answered %d to a lease "
				    "request; treated as unreachable", st);
		return -1;
	}
	return tt_lease_parse_answer(ans, alen, g, reason, cap, rule, rcap);
}

static void apply_grant(struct entry *e, const struct tt_lease_grant *g)
{
	e->have = 1;
	e->usd_unl = g->usd < 0;
	e->tok_unl = g->tokens < 0;
	e->calls_unl = g->calls < 0;
	if (!e->usd_unl)
		e->usd_left += g->usd;
	if (!e->tok_unl)
		e->tok_left += g->tokens;
	if (!e->calls_unl)
		e->calls_left += g->calls;
	e->g_usd = g->usd;
	e->g_tok = g->tokens;
	e->g_calls = g->calls;
	e->pin = g->price_in;
	e->pout = g->price_out;
	e->max_output = g->max_output;
	e->ttl_us = g->ttl_ms * 1000;
	e->granted_us = tt_mono_us();
}

static int key_eq(const tt_lease_key *a, const tt_lease_key *b)
{
	return strcmp(a->model, b->model) == 0 && strcmp(a->task, b->task) == 0 &&
	       strcmp(a->tenant, b->tenant) == 0 && strcmp(a->feature, b->feature) == 0 &&
	       strcmp(a->pod, b->pod) == 0;
}

static struct entry *find(const tt_lease_key *k, int *slot)
{
	int free_slot = -1;

	for (int i = 0; i < SLOTS; i++) {
		if (slots[i].used && key_eq(&slots[i].key, k)) {
			*slot = i;
			return &slots[i];
		}
		if (!slots[i].used && free_slot < 0)
			free_slot = i;
	}
	if (free_slot < 0)
		return NULL;
	struct entry *e = &slots[free_slot];
	uint64_t gen = e->gen + 1;

	memset(e, 0, sizeof(*e));
	e->used = 1;
	e->gen = gen;
	e->key = *k;
	e->pin = e->pout = -1;
	snprintf(e->id, sizeof(e->id), "%s-%d-%llu", agent_id, free_slot, (unsigned long long)gen);
	*slot = free_slot;
	return e;
}

static int expired(const struct entry *e, int64_t now)
{
	/* 10% short of the collector's TTL: our clock and its differ a little. */
	return !e->have || now - e->granted_us > e->ttl_us - e->ttl_us / 10;
}

static int fits(struct entry *e, double usd, int64_t tok, int64_t now)
{
	if (expired(e, now))
		return 0;
	/* The grant was computed in doubles elsewhere: allow for rounding. */
	return (e->usd_unl || usd < 0 || e->usd_left >= usd - 1e-9 * usd - 1e-15) && (e->tok_unl || e->tok_left >= tok) &&
	       (e->calls_unl || e->calls_left >= 1);
}

static void *bg_main(void *arg);

/* The background thread, started once (mu held). */
static void start_bg(void)
{
	pthread_t t;
	pthread_attr_t a;
	sigset_t all, old;

	if (bg_started)
		return;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	if (pthread_create(&t, &a, bg_main, NULL) == 0)
		bg_started = 1;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&a);
}

/* Wake the background thread for e when its lease runs low (mu held). */
static void maybe_prefetch(struct entry *e, int64_t now)
{
	int low = (!e->usd_unl && e->g_usd > 0 && e->usd_left < e->g_usd / 2) ||
		  (!e->tok_unl && e->g_tok > 0 && e->tok_left < e->g_tok / 2) ||
		  (!e->calls_unl && e->g_calls > 0 && e->calls_left * 2 < e->g_calls) ||
		  now - e->granted_us > e->ttl_us / 2;

	if (!low || e->renewing || e->want_bg || now < e->deny_until)
		return;
	e->want_bg = 1;
	start_bg();
	pthread_cond_signal(&bg_cv);
}

/* Renew e (mu held on entry and exit; released meanwhile). */
static int renew(struct entry *e, int64_t in, int64_t out, int64_t calls, char *reason,
		 size_t cap, char *rule, size_t rcap)
{
	struct tt_lease_grant g;
	char rsn[384], rl[64];
	int rc;

	/* Read under the lock: other threads reserve meanwhile. */
	double have[3] = {e->usd_unl || e->usd_left < 0 ? 0 : e->usd_left,
			  (double)(e->tok_unl || e->tok_left < 0 ? 0 : e->tok_left),
			  (double)(e->calls_unl || e->calls_left < 0 ? 0 : e->calls_left)};

	e->renewing = 1;
	pthread_mutex_unlock(&mu);
	rc = request(e, in, out, calls, have, &g, rsn, sizeof(rsn), rl, sizeof(rl));
	pthread_mutex_lock(&mu);
	e->renewing = 0;
	pthread_cond_broadcast(&cv);
	if (rc == 1) {
		apply_grant(e, &g);
	} else if (rc == 0) {
		e->deny_until = tt_mono_us() + DENY_CACHE_US;
		snprintf(e->deny_reason, sizeof(e->deny_reason), "%s", rsn);
		snprintf(e->deny_rule, sizeof(e->deny_rule), "%s", rl);
		/* A refusal also means the collector dropped nothing: what we
		 * hold stays ours until it expires. */
	} else {
		down_until = tt_mono_us() + DOWN_CACHE_US;
	}
	if (reason && rc == 0) {
		snprintf(reason, cap, "%s", rsn);
		snprintf(rule, rcap, "%s", rl);
	}
	return rc;
}

/*
 * A lease that holds calls still streaming must outlive them: the
 * collector drops a lease ttl after its last request, and with it the
 * hold that keeps other processes from spending what those calls will
 * cost.  A stream may last minutes; the lease lives 30 s.  So while a
 * reservation is outstanding, the lease is kept alive (a request with
 * nothing to reserve) every half TTL.  Returns when the next one is due
 * (0: none outstanding).  mu held.
 */
static int64_t keep_alive_due(int64_t now)
{
	int64_t next = 0;

	for (int i = 0; i < SLOTS; i++) {
		struct entry *e = &slots[i];
		int64_t due;

		if (!e->used || !e->have || e->outstanding <= 0)
			continue;
		due = e->granted_us + e->ttl_us / 2;
		if (due <= now && !e->renewing && now >= down_until) {
			renew(e, 0, 0, 0, NULL, 0, NULL, 0);
			now = tt_mono_us();
			due = e->granted_us + e->ttl_us / 2;
		}
		if (due <= now)
			due = now + 1000000; /* the collector is down: try again in 1 s */
		if (!next || due < next)
			next = due;
	}
	return next;
}

static void *bg_main(void *arg)
{
	(void)arg;
	tt_guard_enter();
	pthread_mutex_lock(&mu);
	for (;;) {
		int did = 0;
		int64_t next;

		for (int i = 0; i < SLOTS; i++) {
			struct entry *e = &slots[i];

			if (!e->used || !e->want_bg)
				continue;
			e->want_bg = 0;
			if (e->renewing || tt_mono_us() < down_until)
				continue;
			renew(e, e->last_in, e->last_out, 1, NULL, 0, NULL, 0);
			did = 1;
		}
		if (did)
			continue;
		next = keep_alive_due(tt_mono_us());
		if (!next) {
			pthread_cond_wait(&bg_cv, &mu);
		} else {
			struct timespec ts;
			int64_t wait_us = next - tt_mono_us();

			/* bg_cv runs on CLOCK_MONOTONIC (init_bg_cv) */
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += wait_us / 1000000;
			ts.tv_nsec += (wait_us % 1000000) * 1000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&bg_cv, &mu, &ts);
		}
	}
	pthread_mutex_unlock(&mu);
	return NULL;
}

static int unreachable(char *reason, size_t cap, char *rule, size_t rcap)
{
	if (cfg.fail_closed) {
		tt_log_once(&warn_closed, TT_LOG_WARN, "enforce: the collector (%s) cannot be "
			    "reached for budget leases: LLM calls are refused (TOKENTAP_FAIL=closed)",
			    cfg.enabled ? cfg.collector : "off");
		snprintf(reason, cap, "the tokentap collector cannot be reached and "
			 "TOKENTAP_FAIL=closed");
		snprintf(rule, rcap, "fail-closed");
		return TT_LEASE_UNREACHABLE;
	}
	tt_log_once(&warn_open, TT_LOG_WARN, "enforce: the collector (%s) cannot be reached "
		    "for budget leases: LLM calls go through unchecked (TOKENTAP_FAIL=open)",
		    cfg.enabled ? cfg.collector : "off");
	return TT_LEASE_ALLOW;
}

int tt_lease_reserve(const tt_lease_key *k, int64_t in, int64_t out, tt_reservation *r,
		     char *reason, size_t cap, char *rule, size_t rcap)
{
	struct entry *e;
	int slot, rc = TT_LEASE_ALLOW;

	memset(r, 0, sizeof(*r));
	reason[0] = rule[0] = '\0';
	pthread_mutex_lock(&mu);
	e = find(k, &slot);
	if (!e) {
		tt_log_once(&warn_full, TT_LOG_WARN, "enforce: more than %d budget keys in this "
			    "process; calls of the others are not checked", SLOTS);
		goto out;
	}
	for (int round = 0; round < MAX_ROUNDS; round++) {
		int64_t now = tt_mono_us();
		int64_t o = out >= 0 ? out : (e->have ? e->max_output : DEFAULT_MAX_OUTPUT);
		double usd = e->pin >= 0 && e->pout >= 0 ? (double)in * e->pin + (double)o * e->pout
							   : -1;

		e->last_in = in;
		e->last_out = out;
		if (fits(e, usd, in + o, now)) {
			r->active = 1;
			r->slot = slot;
			r->gen = e->gen;
			r->epoch = e->epoch;
			r->usd = usd >= 0 && !e->usd_unl ? usd : 0;
			r->tokens = e->tok_unl ? 0 : in + o;
			r->calls = e->calls_unl ? 0 : 1;
			e->usd_left -= r->usd;
			e->tok_left -= r->tokens;
			e->calls_left -= r->calls;
			if (!r->usd && !r->tokens && !r->calls) {
				r->active = 0;  /* unlimited: nothing to give back */
			} else {
				e->outstanding++;
				start_bg(); /* keeps the lease alive while it streams */
				pthread_cond_signal(&bg_cv);
			}
			__atomic_add_fetch(&n_local, 1, __ATOMIC_RELAXED);
			maybe_prefetch(e, now);
			goto out;
		}
		if (now < e->deny_until) {
			snprintf(reason, cap, "%s", e->deny_reason);
			snprintf(rule, rcap, "%s", e->deny_rule);
			rc = TT_LEASE_DENY;
			goto out;
		}
		if (now < down_until) {
			rc = unreachable(reason, cap, rule, rcap);
			goto out;
		}
		if (e->renewing) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += cfg.timeout_ms / 1000 + 1;
			pthread_cond_timedwait(&cv, &mu, &ts);
			continue;
		}
		if (expired(e, now) && e->have) {
			/* The collector forgot it: so do we, but what is reserved
			 * stays counted by the records that settle it.  What those
			 * leave over belongs to the forgotten grant, not the next. */
			e->usd_left = 0;
			e->tok_left = e->calls_left = 0;
			e->epoch++;
		}
		int x = renew(e, in, out >= 0 ? out : (e->have ? e->max_output : DEFAULT_MAX_OUTPUT), 1, reason,
			      cap, rule, rcap);
		if (x == 0) {
			rc = TT_LEASE_DENY;
			goto out;
		}
		if (x < 0) {
			rc = unreachable(reason, cap, rule, rcap);
			goto out;
		}
	}
	/* Other threads took every grant we got: say so rather than spin. */
	snprintf(reason, cap, "budget lease contended: %d grants were used up by other "
		 "threads", MAX_ROUNDS);
	rc = TT_LEASE_DENY;
out:
	pthread_mutex_unlock(&mu);
	return rc;
}

void tt_lease_settle(tt_reservation *r, int64_t in, int64_t out)
{
	struct entry *e;

	if (!r || !r->active)
		return;
	r->active = 0;
	pthread_mutex_lock(&mu);
	e = &slots[r->slot];
	if (!e->used || e->gen != r->gen) {
		pthread_mutex_unlock(&mu);
		return;
	}
	if (e->outstanding > 0)
		e->outstanding--;
	/* unknown counts: the worst case stays spent */
	if (in >= 0 && out >= 0 && e->epoch == r->epoch) {
		if (r->usd > 0 && e->pin >= 0 && e->pout >= 0)
			e->usd_left += r->usd - ((double)in * e->pin + (double)out * e->pout);
		if (r->tokens > 0)
			e->tok_left += r->tokens - (in + out);
	}
	pthread_mutex_unlock(&mu);
}

void tt_lease_release_all(void)
{
	/* The collector frees an unrenewed lease after its TTL; an explicit
	 * release only makes room sooner.  Bounded: one short request per key. */
	char body[512], ans[256];
	size_t alen;
	int64_t deadline = tt_mono_us() + 500000;  /* an exit is not held up longer */

	if (!cfg.enabled)
		return;
	pthread_mutex_lock(&mu);
	for (int i = 0; i < SLOTS; i++) {
		struct entry *e = &slots[i];
		int n;

		/* a renewal in flight: its grant is part of what goes back */
		while (e->used && e->renewing && tt_mono_us() < deadline) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 50000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&cv, &mu, &ts);
		}
		if (!e->used || !e->have || e->renewing)
			continue;
		n = snprintf(body, sizeof(body),
			     "{\"id\":\"%s\",\"pid\":%d,\"need\":{},\"release\":{\"usd\":%.17g,"
			     "\"tokens\":%lld,\"calls\":%lld}}", e->id, (int)getpid(),
			     e->usd_unl || e->usd_left < 0 ? 0 : e->usd_left,
			     (long long)(e->tok_unl || e->tok_left < 0 ? 0 : e->tok_left),
			     (long long)(e->calls_unl || e->calls_left < 0 ? 0 : e->calls_left));
		e->have = 0;
		if (n > 0 && (size_t)n < sizeof(body) && tt_mono_us() >= down_until &&
		    tt_mono_us() < deadline)
			post("/v1/lease", body, (size_t)n, ans, sizeof(ans), &alen);
	}
	pthread_mutex_unlock(&mu);
}

void tt_lease_atfork_child(void)
{
	pthread_mutex_init(&mu, NULL);
	pthread_cond_init(&cv, NULL);
	init_bg_cv();
	memset(slots, 0, sizeof(slots));
	bg_started = 0;
	tt_client_atfork_child(client);
	down_until = 0;
	new_agent_id();
}

void tt_lease_stats(uint64_t *requests, uint64_t *local_hits)
{
	*requests = __atomic_load_n(&n_requests, __ATOMIC_RELAXED);
	*local_hits = __atomic_load_n(&n_local, __ATOMIC_RELAXED);
}
