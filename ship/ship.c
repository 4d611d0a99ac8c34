/*
 * ship.c - the shipper thread: out file, collector, spool.
 *
 * Producers (any thread) only serialise, malloc and append under a mutex
 * held for a few pointer moves; all I/O happens on the shipper's thread.
 * Batching is free: whatever queued up while a POST was in flight goes out
 * in the next one.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "common/addr.h"
#include "common/clock.h"
#include "common/log.h"
#include "ship.h"
#include "spool.h"
#include "tokentap/error.h"

#define QUEUE_DEFAULT 4096
#define BATCH_MAX_RECORDS 256
#define BATCH_MAX_BYTES (1u << 20)
#define DRAIN_FILES_PER_ROUND 8
#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 8000
#define POST_TIMEOUT_MS 5000   /* one batch's round trip, at most */

struct item {
	struct item *next;
	size_t len;     /* bytes of data, the '\n' included */
	char data[];
};

struct tt_shipper {
	pthread_mutex_t mu;
	pthread_cond_t wake;   /* the thread waits for work here */
	pthread_cond_t done;   /* flushers wait for progress here */
	struct item *head, *tail;
	size_t queued, queue_max;
	uint64_t submitted;    /* records accepted into the queue */
	uint64_t finished;     /* of those, handled (sent, spooled, dropped) */
	int stop;
	int cut;               /* closing: nothing more goes to the collector */
	int cancel_fd;         /* eventfd: cuts a request under way short */
	pthread_t thread;

	/* Configuration, copied. */
	char *collector;       /* NULL: off */
	char *spool_opt;
	char *token_file;
	char *out_path;        /* NULL: none */
	int out_fd;            /* opened by the thread; -1 not yet or refused */
	int out_state;         /* 0 not yet, 1 open, -1 refused */

	/* The thread's own state. */
	tt_client *client;
	int client_state;      /* 0 not yet, 1 ready, -1 unusable */
	char spool_dir[4096];
	int spool_state;       /* 0 not yet, 1 ready, -1 unusable */
	int spool_pending;     /* files may wait in the spool */
	int64_t retry_at_ms;   /* no POST before this after a failure */
	int backoff_ms;

	uint64_t sent, spooled, dropped; /* atomics */
	int warn_client, warn_token, warn_spool, warn_out, warn_refused, warn_full;
};

static void deadline_in(struct timespec *ts, int64_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

static void add(uint64_t *counter, uint64_t n)
{
	__atomic_add_fetch(counter, n, __ATOMIC_RELAXED);
}

static int client_ready(tt_shipper *s)
{
	char err[256];

	if (s->client_state == 0) {
		s->client = tt_client_new(s->collector, err, sizeof(err));
		s->client_state = s->client ? 1 : -1;
		if (s->client) /* a close cuts its requests short */
			tt_client_set_cancel(s->client, s->cancel_fd);
		else
			tt_log_once(&s->warn_client, TT_LOG_WARN,
				    "collector unusable (%s); records go to the spool", err);
		/* a token that cannot be read: the collector answers 401 and
		 * the records wait in the spool until it can */
		if (s->client && s->token_file &&
		    tt_client_token_file(s->client, s->token_file, err, sizeof(err)))
			tt_log_once(&s->warn_token, TT_LOG_WARN, "TOKENTAP_TOKEN_FILE %s",
				    err);
	}
	return s->client_state == 1;
}

/* POST one body of records: the HTTP status, or a negative tt_error. */
static long post_records(tt_shipper *s, const char *body, size_t len)
{
	char err[256];
	tt_buf ans;
	int st;

	if (__atomic_load_n(&s->cut, __ATOMIC_RELAXED))
		return TT_EIO; /* closing: what is left goes to the spool */
	tt_buf_init(&ans, 4096); /* {"accepted":...}: the records say the rest */
	st = tt_client_request(s->client, "POST", "/v1/records", "application/x-ndjson",
			       body, len, POST_TIMEOUT_MS, &ans, err, sizeof(err));
	tt_buf_free(&ans);
	if (st == TT_ETRUNCATED)
		st = 200; /* an answer we did not need whole: the status came */
	if (st < 0)
		tt_log(TT_LOG_DEBUG, "collector: %s", err);
	return st < 0 ? TT_EIO : st;
}

static int spool_ready(tt_shipper *s)
{
	if (s->spool_state == 0) {
		int rc = tt_spool_resolve(s->spool_opt, s->spool_dir,
					  sizeof(s->spool_dir));
		s->spool_state = rc == 0 ? 1 : -1;
		if (rc)
			tt_log_once(&s->warn_spool, TT_LOG_WARN,
				    "no usable spool folder (see TOKENTAP_SPOOL); "
				    "records are dropped while the collector is unreachable");
	}
	return s->spool_state == 1;
}

static void failed(tt_shipper *s)
{
	s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : BACKOFF_MIN_MS;
	if (s->backoff_ms > BACKOFF_MAX_MS)
		s->backoff_ms = BACKOFF_MAX_MS;
	s->retry_at_ms = tt_mono_ms() + s->backoff_ms;
}

static unsigned count_lines(const char *body, size_t len)
{
	unsigned n = 0;
	for (const char *p = body; (p = memchr(p, '\n', len - (size_t)(p - body)));
	     p++)
		n++;
	return n;
}

/*
 * The collector judged the records themselves bad: resending cannot help.
 * 401/403 say nothing of the records (a missing or rotated token): they
 * wait in the spool until the token is right, like a collector that is down.
 */
static int refused(long st)
{
	return st >= 400 && st < 500 && st != 401 && st != 403 && st != 408 &&
	       st != 429;
}

static int send_spooled(const char *body, size_t len, void *user)
{
	tt_shipper *s = user;
	long st = post_records(s, body, len);

	if (st >= 200 && st < 300) {
		add(&s->sent, count_lines(body, len));
		return 0;
	}
	if (refused(st)) {
		tt_log_once(&s->warn_refused, TT_LOG_WARN,
			    "collector refused spooled records (HTTP %ld); set aside", st);
		return 1;
	}
	return -1;
}

static void drain(tt_shipper *s)
{
	int left = 0, r;

	if (__atomic_load_n(&s->cut, __ATOMIC_RELAXED))
		return;
	if (!client_ready(s) || !spool_ready(s)) {
		s->spool_pending = 0;
		return;
	}
	r = tt_spool_drain(s->spool_dir, send_spooled, s, DRAIN_FILES_PER_ROUND,
			   &left);
	if (r < 0) {
		failed(s);
		return;
	}
	s->backoff_ms = 0;
	s->retry_at_ms = 0;
	s->spool_pending = left;
}

static void to_spool(tt_shipper *s, const char *body, size_t len, unsigned n)
{
	if (spool_ready(s) && tt_spool_write(s->spool_dir, body, len) == 0) {
		add(&s->spooled, n);
		s->spool_pending = 1;
		return;
	}
	tt_log_once(&s->warn_full, TT_LOG_WARN,
		    "spool %s full or unwritable: records dropped",
		    s->spool_dir[0] ? s->spool_dir : "(none)");
	add(&s->dropped, n);
}

/*
 * Why TOKENTAP_OUT's file st is not to be written, or NULL.  shared: its
 * folder is writable by others, who could have put it there (a file of
 * theirs to read our records from, a hard link to a file of ours).
 */
static const char *out_refused(const struct stat *st, int shared)
{
	if (S_ISLNK(st->st_mode))
		return "a symbolic link";
	if (S_ISFIFO(st->st_mode))
		return "a FIFO";
	if (!S_ISREG(st->st_mode))
		return "not a regular file";
	if (shared && st->st_uid != geteuid())
		return "another user's file in a folder others may write to";
	if (shared && st->st_nlink > 1)
		return "a hard link in a folder others may write to";
	return NULL;
}

/* path's folder, opened; *base points into path at the file's name. */
static int open_parent(const char *path, const char **base)
{
	const char *slash = strrchr(path, '/');
	char dir[4096];

	*base = slash ? slash + 1 : path;
	if (!slash)
		return open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if ((size_t)(slash - path) >= sizeof(dir))
		return -1;
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = '\0';
	return open(slash == path ? "/" : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/*
 * Open TOKENTAP_OUT to append, on the shipper's thread: never through a
 * link (O_NOFOLLOW), never waiting (O_NONBLOCK: a FIFO nobody reads held
 * the program in open(2) for ever), and only a regular file nobody else
 * could have put there.  The name is looked at before the open (opening a
 * device can have side effects) and what was opened checked after it.
 * -1 when refused, said once: the records then go to the collector only.
 */
static int open_out(const char *path)
{
	static int warn;
	const char *base, *why = NULL;
	struct stat dst, st;
	int dfd, fd = -1, shared;

	dfd = open_parent(path, &base);
	if (dfd < 0 || fstat(dfd, &dst) < 0) {
		why = strerror(errno);
		goto out;
	}
	shared = (dst.st_mode & (S_IWGRP | S_IWOTH)) != 0;
	if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    (why = out_refused(&st, shared)))
		goto out;
	fd = openat(dfd, base, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW |
			       O_NONBLOCK, 0644);
	if (fd < 0) {
		why = errno == ELOOP ? "a symbolic link" :
		      errno == ENXIO ? "a FIFO nobody reads" : strerror(errno);
		goto out;
	}
	if (fstat(fd, &st) < 0 || (why = out_refused(&st, shared))) {
		if (!why)
			why = strerror(errno);
		close(fd);
		fd = -1;
	}
out:
	if (dfd >= 0)
		close(dfd);
	if (fd < 0)
		tt_log_once(&warn, TT_LOG_WARN, "TOKENTAP_OUT %s: %s: records are not "
			    "written to it", path, why);
	return fd;
}

static int out_ready(tt_shipper *s)
{
	if (s->out_state == 0 && s->out_path) {
		s->out_fd = open_out(s->out_path);
		s->out_state = s->out_fd >= 0 ? 1 : -1;
	}
	return s->out_state == 1;
}

static void deliver(tt_shipper *s, struct item *batch, unsigned n, size_t bytes)
{
	char *body = NULL, *p;
	struct item *it;
	long st = TT_EIO;

	if (out_ready(s)) {
		for (it = batch; it; it = it->next) {
			/* One write per line: O_APPEND keeps lines of several
			 * processes whole. */
			ssize_t w = write(s->out_fd, it->data, it->len);
			if (w != (ssize_t)it->len)
				tt_log_once(&s->warn_out, TT_LOG_WARN,
					    "TOKENTAP_OUT: short write: %s",
					    w < 0 ? strerror(errno) : "disk full?");
		}
	}
	if (!s->collector)
		return;

	body = malloc(bytes);
	if (!body) {
		add(&s->dropped, n);
		return;
	}
	p = body;
	for (it = batch; it; it = it->next) {
		memcpy(p, it->data, it->len);
		p += it->len;
	}
	/* While the collector is known to be down, go straight to the spool
	 * so that an exiting program is not held up by retries. */
	if (tt_mono_ms() >= s->retry_at_ms && client_ready(s))
		st = post_records(s, body, bytes);
	if (st >= 200 && st < 300) {
		add(&s->sent, n);
		s->backoff_ms = 0;
		if (s->spool_pending)
			drain(s);
	} else if (refused(st)) {
		tt_log_once(&s->warn_refused, TT_LOG_WARN,
			    "collector refused records (HTTP %ld): dropped", st);
		add(&s->dropped, n);
	} else {
		if (st != TT_EIO || tt_mono_ms() >= s->retry_at_ms)
			failed(s);
		to_spool(s, body, bytes, n);
	}
	free(body);
}

static void *run(void *arg)
{
	tt_shipper *s = arg;

	pthread_mutex_lock(&s->mu);
	for (;;) {
		while (!s->head && !s->stop) {
			if (!s->spool_pending || !s->collector) {
				pthread_cond_wait(&s->wake, &s->mu);
				continue;
			}
			int64_t wait = s->retry_at_ms - tt_mono_ms();
			if (wait <= 0)
				break;
			struct timespec ts;
			deadline_in(&ts, wait);
			pthread_cond_timedwait(&s->wake, &s->mu, &ts);
		}
		if (!s->head && s->stop)
			break;

		struct item *batch = s->head, *last = NULL, *it;
		unsigned n = 0;
		size_t bytes = 0;
		for (it = s->head; it && n < BATCH_MAX_RECORDS &&
				   (n == 0 || bytes + it->len <= BATCH_MAX_BYTES);
		     it = it->next) {
			last = it;
			n++;
			bytes += it->len;
		}
		if (last) {
			s->head = last->next;
			if (!s->head)
				s->tail = NULL;
			last->next = NULL;
			s->queued -= n;
		} else {
			batch = NULL;
		}
		pthread_mutex_unlock(&s->mu);

		if (batch)
			deliver(s, batch, n, bytes);
		else
			drain(s);
		while (batch) {
			it = batch->next;
			free(batch);
			batch = it;
		}

		pthread_mutex_lock(&s->mu);
		s->finished += n;
		pthread_cond_broadcast(&s->done);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static void destroy(tt_shipper *s)
{
	struct item *it;

	while ((it = s->head)) {
		s->head = it->next;
		free(it);
	}
	if (s->out_fd >= 0)
		close(s->out_fd);
	tt_client_free(s->client);
	if (s->cancel_fd >= 0)
		close(s->cancel_fd);
	pthread_cond_destroy(&s->wake);
	pthread_cond_destroy(&s->done);
	pthread_mutex_destroy(&s->mu);
	free(s->collector);
	free(s->spool_opt);
	free(s->token_file);
	free(s->out_path);
	free(s);
}

tt_shipper *tt_shipper_new(const tt_ship_config *cfg)
{
	static const tt_ship_config defaults;
	pthread_condattr_t ca;
	pthread_attr_t ta;
	sigset_t all, old;
	tt_shipper *s;
	int rc;

	if (!cfg)
		cfg = &defaults;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->out_fd = -1;
	/* Without it a close waits out a request under way (or gives up on
	 * the thread): the grace bounds it either way. */
	s->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	s->queue_max = cfg->queue_max ? cfg->queue_max : QUEUE_DEFAULT;
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->wake, &ca);
	pthread_cond_init(&s->done, &ca);
	pthread_condattr_destroy(&ca);

	const char *coll = cfg->collector && cfg->collector[0] ?
			   cfg->collector : TT_DEFAULT_COLLECTOR;
	if (strcmp(coll, "off") != 0) {
		s->collector = strdup(coll);
		if (!s->collector)
			goto fail;
		s->spool_pending = 1; /* deliver what earlier runs left */
	}
	if (cfg->spool_dir && !(s->spool_opt = strdup(cfg->spool_dir)))
		goto fail;
	if (cfg->token_file && cfg->token_file[0] &&
	    !(s->token_file = strdup(cfg->token_file)))
		goto fail;
	if (cfg->out_path && cfg->out_path[0] && !(s->out_path = strdup(cfg->out_path)))
		goto fail;

	/* The thread takes no signal meant for the host, and needs little
	 * stack. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&ta);
	pthread_attr_setstacksize(&ta, 512 * 1024);
	rc = pthread_create(&s->thread, &ta, run, s);
	pthread_attr_destroy(&ta);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		tt_log(TT_LOG_WARN, "cannot start the shipper thread: %s",
		       strerror(rc));
		goto fail;
	}
	pthread_setname_np(s->thread, "tokentap-ship");
	return s;
fail:
	destroy(s);
	return NULL;
}

int tt_shipper_submit(tt_shipper *s, const tt_record *rec)
{
	struct item *it, *small;
	int n;

	if (!s || !rec)
		return TT_EINVAL;
	it = malloc(sizeof(*it) + TT_RECORD_JSON_MAX + 1);
	if (!it) {
		add(&s->dropped, 1);
		return TT_ENOMEM;
	}
	n = tt_record_to_json(rec, it->data, TT_RECORD_JSON_MAX);
	if (n < 0) {
		free(it);
		add(&s->dropped, 1);
		return TT_EINVAL;
	}
	it->data[n] = '\n';
	it->len = (size_t)n + 1;
	it->next = NULL;
	small = realloc(it, sizeof(*it) + it->len);
	if (small)
		it = small;

	pthread_mutex_lock(&s->mu);
	if (s->queued >= s->queue_max || s->stop) {
		pthread_mutex_unlock(&s->mu);
		free(it);
		add(&s->dropped, 1);
		return TT_ETRUNCATED;
	}
	if (s->tail)
		s->tail->next = it;
	else
		s->head = it;
	s->tail = it;
	s->queued++;
	s->submitted++;
	pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->mu);
	return 0;
}

int tt_shipper_flush(tt_shipper *s, int timeout_ms)
{
	struct timespec ts;
	int rc;

	if (!s)
		return 0;
	deadline_in(&ts, timeout_ms < 0 ? 0 : timeout_ms);
	pthread_mutex_lock(&s->mu);
	uint64_t ticket = s->submitted;
	while (s->finished < ticket) {
		if (pthread_cond_timedwait(&s->done, &s->mu, &ts) == ETIMEDOUT)
			break;
	}
	rc = s->finished >= ticket ? 0 : TT_EIO;
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* Stop the thread, and cut short whatever it waits for. */
static void cut(tt_shipper *s)
{
	uint64_t one = 1;

	pthread_mutex_lock(&s->mu);
	s->stop = 1;
	__atomic_store_n(&s->cut, 1, __ATOMIC_RELAXED);
	pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->mu);
	if (s->cancel_fd >= 0 && write(s->cancel_fd, &one, sizeof(one)) < 0)
		tt_log(TT_LOG_DEBUG, "shipper: cannot cut a request short");
}

int tt_shipper_close(tt_shipper *s, int timeout_ms, uint64_t *sent,
		     uint64_t *spooled, uint64_t *dropped)
{
	struct timespec ts;
	uint64_t lost;

	if (!s) {
		tt_shipper_stats(NULL, sent, spooled, dropped);
		return 0;
	}
	tt_shipper_flush(s, timeout_ms);
	cut(s);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += (long)TT_SHIP_CLOSE_GRACE_MS * 1000000L;
	ts.tv_sec += ts.tv_nsec / 1000000000;
	ts.tv_nsec %= 1000000000;
	if (pthread_timedjoin_np(s->thread, NULL, &ts) == 0) {
		tt_shipper_stats(s, sent, spooled, dropped);
		destroy(s);
		return 0;
	}
	/* Stuck where no cut reaches (a name server's first answer, a disk
	 * that does not answer): left running, never freed under it. */
	pthread_mutex_lock(&s->mu);
	lost = s->submitted - s->finished;
	pthread_mutex_unlock(&s->mu);
	tt_shipper_stats(s, sent, spooled, dropped);
	if (dropped)
		*dropped += lost;
	tt_log(TT_LOG_WARN, "shipper thread did not stop in time; %llu records "
	       "neither delivered nor spooled", (unsigned long long)lost);
	pthread_detach(s->thread);
	return TT_EIO;
}

void tt_shipper_free(tt_shipper *s)
{
	tt_shipper_close(s, 2000, NULL, NULL, NULL);
}

void tt_shipper_stats(const tt_shipper *s, uint64_t *sent, uint64_t *spooled,
		      uint64_t *dropped)
{
	if (sent)
		*sent = s ? __atomic_load_n(&s->sent, __ATOMIC_RELAXED) : 0;
	if (spooled)
		*spooled = s ? __atomic_load_n(&s->spooled, __ATOMIC_RELAXED) : 0;
	if (dropped)
		*dropped = s ? __atomic_load_n(&s->dropped, __ATOMIC_RELAXED) : 0;
}
