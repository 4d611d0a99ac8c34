/* names.c - host name lookups on their own thread; see names.h. */
#include "names.h"

#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "tokentap/error.h"

/* What the caller and the lookup thread share; freed by the last one. */
struct names_state {
	pthread_mutex_t mu;
	pthread_cond_t cv;        /* CLOCK_MONOTONIC: a new answer, or stop */
	int refs;
	int started, stop;
	char host[256], port[8];
	tt_name_addr addrs[TT_NAMES_MAX];
	int naddrs;               /* the last good answer */
	int answered;             /* a lookup ended, good or not */
	int last_err;             /* getaddrinfo's code of the last failure */
};

struct tt_names {
	struct names_state *st;   /* NULL: a numeric host, addrs below */
	tt_name_addr addrs[TT_NAMES_MAX];
	int naddrs;
};

static void until_us(struct timespec *ts, int64_t at_us)
{
	ts->tv_sec = at_us / 1000000;
	ts->tv_nsec = (at_us % 1000000) * 1000;
}

static void init_sync(struct names_state *s)
{
	pthread_condattr_t ca;

	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);
}

/* Copy the answer of getaddrinfo into out[]; returns how many. */
static int take(const struct addrinfo *ai, tt_name_addr out[TT_NAMES_MAX])
{
	int n = 0;

	for (; ai && n < TT_NAMES_MAX; ai = ai->ai_next) {
		if (ai->ai_addrlen > sizeof(out[n].sa))
			continue;
		memcpy(&out[n].sa, ai->ai_addr, ai->ai_addrlen);
		out[n].len = ai->ai_addrlen;
		n++;
	}
	return n;
}

/* Drop one reference; the last frees.  mu held on entry, released. */
static void unref_locked(struct names_state *s)
{
	int last = --s->refs == 0;

	pthread_mutex_unlock(&s->mu);
	if (last) {
		pthread_cond_destroy(&s->cv);
		pthread_mutex_destroy(&s->mu);
		free(s);
	}
}

static void *lookup_thread(void *arg)
{
	struct names_state *s = arg;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};

	pthread_mutex_lock(&s->mu);
	while (!s->stop) {
		struct addrinfo *ai = NULL;
		struct timespec ts;
		int rc;

		pthread_mutex_unlock(&s->mu);
		rc = getaddrinfo(s->host, s->port, &hints, &ai);
		pthread_mutex_lock(&s->mu);
		if (rc == 0 && ai) {
			int n = take(ai, s->addrs);

			if (n > 0)
				s->naddrs = n;
		} else {
			s->last_err = rc;
		}
		if (ai)
			freeaddrinfo(ai);
		s->answered = 1;
		pthread_cond_broadcast(&s->cv);
		/* again later; sooner while it fails */
		until_us(&ts, tt_mono_us() + (rc == 0 ? TT_NAMES_REFRESH_S * 1000000LL : 1000000LL));
		while (!s->stop && pthread_cond_timedwait(&s->cv, &s->mu, &ts) == 0)
			;
	}
	unref_locked(s);
	return NULL;
}

/* Start the lookup thread if it is not running (mu held). */
static void start_locked(struct names_state *s)
{
	pthread_attr_t a;
	sigset_t all, old;
	pthread_t t;

	if (s->started)
		return;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	s->refs++;
	if (pthread_create(&t, &a, lookup_thread, s) == 0)
		s->started = 1;
	else
		s->refs--;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&a);
}

tt_names *tt_names_new(const char *host, const char *port)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
	struct addrinfo *ai = NULL;
	tt_names *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	/* An address needs no lookup: parse it now, never again. */
	if (getaddrinfo(host, port, &hints, &ai) == 0 && ai) {
		n->naddrs = take(ai, n->addrs);
		freeaddrinfo(ai);
		if (n->naddrs > 0)
			return n;
	}
	n->st = calloc(1, sizeof(*n->st));
	if (!n->st) {
		free(n);
		return NULL;
	}
	init_sync(n->st);
	n->st->refs = 1;
	snprintf(n->st->host, sizeof(n->st->host), "%s", host);
	snprintf(n->st->port, sizeof(n->st->port), "%s", port);
	return n;
}

int tt_names_get(tt_names *n, tt_name_addr out[TT_NAMES_MAX], int64_t deadline_us,
		 char *err, size_t errlen)
{
	struct names_state *s = n->st;
	int got;

	if (!s) {
		memcpy(out, n->addrs, sizeof(n->addrs));
		return n->naddrs;
	}
	pthread_mutex_lock(&s->mu);
	start_locked(s);
	while (!s->answered && !s->naddrs) {
		struct timespec ts;

		if (tt_mono_us() >= deadline_us)
			break;
		until_us(&ts, deadline_us);
		pthread_cond_timedwait(&s->cv, &s->mu, &ts);
	}
	got = s->naddrs;
	memcpy(out, s->addrs, sizeof(s->addrs));
	if (!got && err)
		snprintf(err, errlen, "%s: %s", s->host,
			 s->answered ? gai_strerror(s->last_err) : "no answer from the name servers yet");
	pthread_mutex_unlock(&s->mu);
	return got ? got : TT_EIO;
}

void tt_names_free(tt_names *n)
{
	if (!n)
		return;
	if (n->st) {
		pthread_mutex_lock(&n->st->mu);
		n->st->stop = 1;
		pthread_cond_broadcast(&n->st->cv);
		unref_locked(n->st);
	}
	free(n);
}

void tt_names_atfork_child(tt_names *n)
{
	if (!n || !n->st)
		return;
	/* made new, not unlocked: the parent's lock may be held by a thread
	 * that does not exist here */
	init_sync(n->st);
	n->st->started = 0;
	n->st->refs = 1;
	n->st->stop = 0;
}
