/*
 * push.c - the thread that posts the probe's counters (see push.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "push.h"
#include "ship/client.h"

#define PUSH_DOC_MAX 8192
#define POST_TIMEOUT_MS 5000

struct tt_push {
	tt_client *client;
	int period_ms;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	int stop;
	char doc[PUSH_DOC_MAX];
	int warned;
};

static void post(tt_push *p, const char *doc)
{
	char err[256];
	tt_buf ans;
	int st;

	tt_buf_init(&ans, 4096);
	st = tt_client_request(p->client, "POST", "/v1/probe", "application/json", doc,
			       strlen(doc), POST_TIMEOUT_MS, &ans, err, sizeof(err));
	tt_buf_free(&ans);

	/* one line, not one a period: the records say the rest */
	if ((st < 200 || st >= 300) && !p->warned) {
		fprintf(stderr, "tokentap-probe: the collector did not take the "
			"probe's counters (%s); trying on\n",
			st < 0 ? err : "an HTTP error status");
		p->warned = 1;
	}
}

static void *push_thread(void *arg)
{
	tt_push *p = arg;
	char doc[PUSH_DOC_MAX];

	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += p->period_ms / 1000;
		until.tv_nsec += (long)(p->period_ms % 1000) * 1000000;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		while (!p->stop &&
		       pthread_cond_timedwait(&p->wake, &p->lock, &until) != ETIMEDOUT)
			;
		if (p->stop || !p->doc[0])
			continue;
		memcpy(doc, p->doc, sizeof(doc));
		pthread_mutex_unlock(&p->lock);
		post(p, doc);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

tt_push *tt_push_start(const char *collector, int period_ms)
{
	const char *token_file = getenv("TOKENTAP_TOKEN_FILE");
	char err[256];
	tt_push *p;

	if (!collector || strcmp(collector, "off") == 0)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->client = tt_client_new(collector, err, sizeof(err));
	if (!p->client) {
		free(p);
		return NULL;
	}
	if (token_file && token_file[0])
		tt_client_token_file(p->client, token_file, err, sizeof(err));
	p->period_ms = period_ms;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->wake, NULL);
	if (pthread_create(&p->thread, NULL, push_thread, p)) {
		tt_client_free(p->client);
		free(p);
		return NULL;
	}
	return p;
}

void tt_push_set(tt_push *p, const char *json)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	snprintf(p->doc, sizeof(p->doc), "%s", json);
	pthread_mutex_unlock(&p->lock);
}

void tt_push_stop(tt_push *p, const char *json)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = 1;
	pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	if (json && json[0])
		post(p, json);
	tt_client_free(p->client);
	pthread_cond_destroy(&p->wake);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
