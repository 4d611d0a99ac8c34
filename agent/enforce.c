/* enforce.c - hold, check and block LLM requests in SSL_write; see enforce.h. */
#include "enforce.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/json.h"
#include "log.h"
#include "request.h"
#include "resolve.h"
#include "route.h"

#define HEAD_MAX (64u << 10)
#define BODY_MAX (8u << 20)
#define PENDING 8
#define H2_PENDING 32
#define FLUSH_WAIT_MS 30000
/* OpenSSL's values, without its headers (stable since 0.9.x). */
#define SSL_ERROR_WANT_READ 2
#define SSL_ERROR_WANT_WRITE 3

int tt_enforce_on;

enum state { S_HEAD, S_BODY_PASS, S_OFF, S_DENIED, S_H2 };

/* RFC 9113 section 3.4: "the client connection preface starts with a
 * sequence of 24 octets". */
static const char PREFACE[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
#define PREFACE_LEN 24

/*
 * An HTTP/2 request the decoder completed in one of our writes, known by
 * what its on_request record and its final record share (the exchange's
 * start time, body size and prompt hash): streams finish in any order.
 */
enum h2_kind {
	H2_LIVE,     /* sent: settle with the record */
	H2_DROP,     /* blocked, its record shipped: the decoder's copy is dropped */
	H2_MARK,     /* allowed, but its write was refused: ship it marked blocked */
};

struct h2_pend {
	int64_t ts_us, request_bytes;
	char prompt_hash[33];
	enum h2_kind kind;
	unsigned write_no;
	tt_reservation r;
};
struct tt_enforce {
	enum state st;
	char *hold;
	size_t hold_len, hold_cap;
	size_t pass_left;            /* S_BODY_PASS: body bytes of a request not ours */
	char *synth;                 /* S_DENIED */
	size_t synth_len, synth_off;
	int spare_fd;                /* the socketpair end that keeps ours readable */
	tt_reservation res[PENDING]; /* FIFO: requests sent, records not yet in */
	int nres;
	/* S_H2 */
	size_t h2_ahead;             /* bytes of the pending write the decoder has seen */
	int h2_feeding;              /* inside the feed of a write not sent yet */
	int h2_refused;              /* every later write fails */
	unsigned h2_write_no;
	char h2_rule[64], h2_task[128], h2_reason[384];
	struct h2_pend h2[H2_PENDING];
	int nh2;
};

static tt_enforce_key_fn key_fn;
static tt_enforce_ship_fn ship_fn;
static tt_enforce_sent_fn sent_fn;
static tt_enforce_feed_fn feed_fn;
static int warn_chunked, warn_big, warn_nofd, warn_pipe, warn_block, warn_flush;

void tt_enforce_setup(tt_enforce_key_fn key, tt_enforce_ship_fn ship, tt_enforce_sent_fn sent)
{
	key_fn = key;
	ship_fn = ship;
	sent_fn = sent;
}

void tt_enforce_set_feed(tt_enforce_feed_fn feed)
{
	feed_fn = feed;
}

tt_enforce *tt_enforce_new(void)
{
	tt_enforce *e = calloc(1, sizeof(*e));

	if (e)
		e->spare_fd = -1;
	return e;
}

void tt_enforce_free(tt_enforce *e)
{
	if (!e)
		return;
	/* Exchanges that never produced a record keep their worst case. */
	for (int i = 0; i < e->nres; i++)
		tt_lease_settle(&e->res[i], -1, -1);
	for (int i = 0; i < e->nh2; i++)
		tt_lease_settle(&e->h2[i].r, -1, -1);
	if (e->spare_fd >= 0)
		close(e->spare_fd);
	free(e->hold);
	free(e->synth);
	free(e);
}

long long tt_enforce_input_estimate(size_t body_len)
{
	/* English text averages about 4 bytes a token; JSON keys and quoting
	 * add bytes, not tokens.  Half of that is a ceiling for ordinary text
	 * (README: the bound assumes it). */
	return (long long)(body_len / 2) + 16;
}

int tt_enforce_response(const char *provider, const char *rule, const char *task,
			const char *reason, char *out, size_t cap)
{
	char msg[1024], esc[2048], body[2600];
	int bl, n;

	snprintf(msg, sizeof(msg), "tokentap: call blocked by budget rule \"%s\" for task \"%s\": %s",
		 rule && rule[0] ? rule : "unknown", task && task[0] ? task : "(none)",
		 reason && reason[0] ? reason : "budget exhausted");
	tt_json_escape(esc, sizeof(esc), msg);
	/* The shapes the official SDKs parse; 403 is not retried by them
	 * (openai-python and anthropic-sdk retry 408, 409, 429 and >= 500). */
	if (provider && strcmp(provider, "anthropic") == 0)
		bl = snprintf(body, sizeof(body),
			      "{\"type\":\"error\",\"error\":{\"type\":\"tokentap_budget_exceeded\","
			      "\"message\":\"%s\"}}", esc);
	else if (provider && strcmp(provider, "gemini") == 0)
		bl = snprintf(body, sizeof(body),
			      "{\"error\":{\"code\":403,\"message\":\"%s\",\"status\":"
			      "\"PERMISSION_DENIED\"}}", esc);
	else
		bl = snprintf(body, sizeof(body),
			      "{\"error\":{\"message\":\"%s\",\"type\":\"tokentap_budget_exceeded\","
			      "\"param\":null,\"code\":\"tokentap_budget_exceeded\"}}", esc);
	if (bl < 0 || (size_t)bl >= sizeof(body))
		return -1;
	n = snprintf(out, cap,
		     "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n"
		     "Content-Length: %d\r\nConnection: close\r\nX-Tokentap-Blocked: 1\r\n\r\n%s",
		     bl, body);
	return n < 0 || (size_t)n >= cap ? -1 : n;
}

/* memmem for short needles: glibc's two-way setup costs more than the scan. */
static const char *find(const char *h, size_t n, const char *needle, size_t nl)
{
	const char *end = h + n;

	while ((size_t)(end - h) >= nl) {
		const char *c = memchr(h, needle[0], (size_t)(end - h) - nl + 1);

		if (!c)
			return NULL;
		if (memcmp(c, needle, nl) == 0)
			return c;
		h = c + 1;
	}
	return NULL;
}

/* ---- the request head ---------------------------------------------------- */

struct head {
	size_t len;                  /* bytes up to and including the blank line */
	char method[16];
	const char *target;
	size_t target_len;
	char host[256];
	long long content_length;    /* -1: none */
	int chunked;
	char task[128], tenant[128], feature[128];
};

static void hdr_copy(char *dst, size_t cap, const char *v, size_t vl)
{
	while (vl && (*v == ' ' || *v == '\t')) {
		v++;
		vl--;
	}
	while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
		vl--;
	tt_record_set(dst, cap, v, vl);
}

/* 1 parsed, 0 need more, -1 not an HTTP/1.x request head. */
static int parse_head(const char *p, size_t n, struct head *h)
{
	const char *end = NULL, *line, *sp1, *sp2, *eol;
	size_t ml;

	h->content_length = -1;
	h->chunked = 0;
	h->host[0] = h->task[0] = h->tenant[0] = h->feature[0] = '\0';
	memset(h->method, 0, sizeof(h->method));
	end = find(p, n, "\r\n\r\n", 4);
	if (!end)
		return n > HEAD_MAX ? -1 : 0;
	end += 4;
	h->len = (size_t)(end - p);
	eol = memchr(p, '\r', h->len);
	sp1 = memchr(p, ' ', (size_t)(eol - p));
	if (!sp1 || (ml = (size_t)(sp1 - p)) == 0 || ml >= sizeof(h->method))
		return -1;
	sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1));
	if (!sp2 || eol - sp2 < 9 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0)
		return -1;
	memcpy(h->method, p, ml);
	h->target = sp1 + 1;
	h->target_len = (size_t)(sp2 - sp1 - 1);
	for (line = eol + 2; line < end - 2; line = eol + 2) {
		const char *colon, *v;
		size_t nl, vl;

		eol = memchr(line, '\r', (size_t)(end - line));
		if (!eol)
			break;
		colon = memchr(line, ':', (size_t)(eol - line));
		if (!colon)
			continue;
		nl = (size_t)(colon - line);
		v = colon + 1;
		vl = (size_t)(eol - v);
#define IS(name) (nl == sizeof(name) - 1 && strncasecmp(line, name, nl) == 0)
		if (IS("host")) {
			hdr_copy(h->host, sizeof(h->host), v, vl);
		} else if (IS("content-length")) {
			char num[24];
			char *e;

			hdr_copy(num, sizeof(num), v, vl);
			errno = 0;
			h->content_length = strtoll(num, &e, 10);
			if (errno || *e || h->content_length < 0)
				return -1;
		} else if (IS("transfer-encoding")) {
			h->chunked = 1;
		} else if (IS("x-tokentap-task")) {
			hdr_copy(h->task, sizeof(h->task), v, vl);
		} else if (IS("x-tokentap-tenant")) {
			hdr_copy(h->tenant, sizeof(h->tenant), v, vl);
		} else if (IS("x-tokentap-feature")) {
			hdr_copy(h->feature, sizeof(h->feature), v, vl);
		}
#undef IS
	}
	return 1;
}

/* ---- writing what was held ------------------------------------------------ */

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * The connection cannot take more now (a non-blocking socket is full):
 * wait for it as the client would have, at most until deadline_ms.  With
 * the socket known, poll it; without one (curl gives OpenSSL its own I/O
 * layer, SSL_get_fd says -1), retry after a short sleep that grows to
 * 10 ms.  Returns 1 to try again, 0 when the time is up.
 */
static int wait_writable(int fd, int err, int64_t deadline_ms, int *backoff_us)
{
	int64_t left = deadline_ms - mono_ms();
	struct timespec ts;

	if (left <= 0)
		return 0;
	if (fd >= 0) {
		struct pollfd pf = {.fd = fd,
				    .events = err == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN};

		return poll(&pf, 1, (int)left) > 0;
	}
	*backoff_us = *backoff_us ? *backoff_us * 2 : 100;
	if (*backoff_us > 10000)
		*backoff_us = 10000;
	ts.tv_sec = 0;
	ts.tv_nsec = (long)*backoff_us * 1000;
	nanosleep(&ts, NULL);
	return 1;
}

static long flush(void *ssl, const char *p, size_t n)
{
	int (*wr)(void *, const void *, int) = tt_real(TT_REAL_SSL_write);
	int (*get_error)(const void *, int) = tt_real(TT_REAL_SSL_get_error);
	int (*get_fd)(const void *) = tt_real(TT_REAL_SSL_get_fd);
	int64_t deadline = mono_ms() + FLUSH_WAIT_MS;
	int backoff_us = 0;
	size_t done = 0;

	if (!wr)
		return -1;
	while (done < n) {
		size_t chunk = n - done > (1u << 30) ? (1u << 30) : n - done;
		int r = wr(ssl, p + done, (int)chunk);

		if (r > 0) {
			done += (size_t)r;
			backoff_us = 0;
			continue;
		}
		int err = get_error ? get_error(ssl, r) : 0;
		int fd = get_fd ? get_fd(ssl) : -1;

		if ((err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) &&
		    wait_writable(fd, err, deadline, &backoff_us))
			continue;
		tt_log_once(&warn_flush, TT_LOG_WARN, "enforce: sending a held request failed "
			    "(SSL error %d); the call fails", err);
		return r;
	}
	if (sent_fn)
		sent_fn(ssl, p, n);
	return (long)n;
}

/* ---- the decision ----------------------------------------------------------- */


/*
 * Put the synthetic response in place of the connection.  Returns 0, or
 * -1 when the SSL has no socket we can swap (memory BIO).
 */
static int divert(tt_enforce *e, void *ssl, const char *resp, size_t len)
{
	int (*get_fd)(const void *) = tt_real(TT_REAL_SSL_get_fd);
	int fd = get_fd ? get_fd(ssl) : -1, sp[2], fl;

	if (fd < 0)
		return -1;
	e->synth = malloc(len);
	if (!e->synth)
		return -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp)) {
		free(e->synth);
		e->synth = NULL;
		return -1;
	}
	/* One byte waiting: poll() on the client's descriptor says readable,
	 * and the client calls SSL_read, which is ours from now on. */
	if (write(sp[1], "x", 1) != 1) {
		/* cannot happen on a fresh socketpair; still readable at EOF */
	}
	fl = fcntl(fd, F_GETFL);
	if (fl >= 0 && (fl & O_NONBLOCK))
		fcntl(sp[0], F_SETFL, fcntl(sp[0], F_GETFL) | O_NONBLOCK);
	/* Closes the real TCP connection: the provider sees a TLS session that
	 * ended without a request. */
	if (dup2(sp[0], fd) < 0) {
		close(sp[0]);
		close(sp[1]);
		free(e->synth);
		e->synth = NULL;
		return -1;
	}
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	close(sp[0]);
	e->spare_fd = sp[1];
	memcpy(e->synth, resp, len);
	e->synth_len = len;
	e->synth_off = 0;
	e->st = S_DENIED;
	return 0;
}

static void blocked_record(const struct head *h, const tt_route *rt, const tt_request_info *info,
			   const tt_lease_key *k, size_t body_len)
{
	tt_record rec;
	struct timespec ts;

	if (!ship_fn)
		return;
	tt_record_init(&rec);
	clock_gettime(CLOCK_REALTIME, &ts);
	rec.ts_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
	TT_RECORD_SET(&rec, host, h->host, (size_t)-1);
	TT_RECORD_SET(&rec, method, h->method, (size_t)-1);
	TT_RECORD_SET(&rec, path, h->target, strcspn(h->target, "?") < h->target_len
					     ? strcspn(h->target, "?") : h->target_len);
	TT_RECORD_SET(&rec, http, "1.1", 3);
	rec.status = 403;
	TT_RECORD_SET(&rec, provider, rt->provider, (size_t)-1);
	TT_RECORD_SET(&rec, api, rt->api, (size_t)-1);
	TT_RECORD_SET(&rec, request_model, k->model, (size_t)-1);
	TT_RECORD_SET(&rec, model, k->model, (size_t)-1);
	if (info->parsed) {
		rec.stream = info->stream >= 0 ? info->stream : TT_TRI_NULL;
		rec.max_tokens = info->max_tokens;
		TT_RECORD_SET(&rec, prompt_hash, info->prompt_hash, (size_t)-1);
		TT_RECORD_SET(&rec, prefix_hash, info->prefix_hash, (size_t)-1);
	}
	rec.input_tokens = rec.output_tokens = 0;
	TT_RECORD_SET(&rec, usage_source, "none", 4);
	TT_RECORD_SET(&rec, task, k->task, (size_t)-1);
	TT_RECORD_SET(&rec, tenant, k->tenant, (size_t)-1);
	TT_RECORD_SET(&rec, feature, k->feature, (size_t)-1);
	rec.request_bytes = (int64_t)body_len;
	rec.response_bytes = 0;
	TT_RECORD_SET(&rec, error, "blocked", 7);
	rec.blocked = 1;
	TT_RECORD_SET(&rec, side, "client", 6);
	ship_fn(&rec);
}

/* ---- model and output ceiling, cheaply ------------------------------------ */

/*
 * The value of key in a JSON body, found by its quoted name followed by a
 * colon: inside a JSON string a quote is escaped, so an unescaped "key":
 * is a key.  The first one with a value of the wanted type wins (a nested
 * "model": {...} in a tool schema is skipped).  Full parsing (hashes too,
 * decoder/request.h) costs microseconds a call and happens only for a
 * blocked call's record; the decoder does it anyway for the rest.
 */
static const char *json_value(const char *b, size_t n, const char *key, size_t klen)
{
	const char *p = b, *end = b + n;

	while (p < end) {
		const char *q = find(p, (size_t)(end - p), key, klen);

		if (!q)
			return NULL;
		p = q + klen;
		while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
			p++;
		if (p >= end || *p != ':')
			continue;
		p++;
		while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
			p++;
		if (p < end)
			return p;
	}
	return NULL;
}

static void quick_fields(const char *b, size_t n, char *model, size_t mcap, int64_t *max_tokens)
{
	static const struct { const char *k; size_t l; } outs[] = {
		{"\"max_tokens\"", 12}, {"\"max_completion_tokens\"", 23},
		{"\"max_output_tokens\"", 19}, {"\"maxOutputTokens\"", 17}, {"\"num_predict\"", 13},
	};
	const char *v = json_value(b, n, "\"model\"", 7), *end = b + n;

	model[0] = '\0';
	*max_tokens = -1;
	while (v) {
		if (*v == '"') {
			const char *q = memchr(v + 1, '"', (size_t)(end - v - 1));

			if (q && !memchr(v + 1, '\\', (size_t)(q - v - 1)))
				tt_record_set(model, mcap, v + 1, (size_t)(q - v - 1));
			break;
		}
		v = json_value(v, (size_t)(end - v), "\"model\"", 7);
	}
	for (size_t i = 0; i < sizeof(outs) / sizeof(outs[0]) && *max_tokens < 0; i++) {
		v = json_value(b, n, outs[i].k, outs[i].l);
		if (v && *v >= '0' && *v <= '9') {
			int64_t x = 0;

			for (; v < end && *v >= '0' && *v <= '9' && x < (INT64_MAX - 9) / 10; v++)
				x = x * 10 + (*v - '0');
			*max_tokens = x;
		}
	}
}

/*
 * A whole request (head h, body) is known.  Returns 0 allow (reservation
 * queued), 1 denied and diverted, -1 denied but not deliverable.
 */
static int decide(tt_enforce *e, void *ssl, const struct head *h, const char *body,
		  size_t blen)
{
	tt_route rt;
	tt_request_info info;
	tt_lease_key k;
	tt_reservation r;
	char reason[384], rule[64], resp[4096];
	int v, n;

	int64_t max_tokens;
	char model[128];

	memset(&info, 0, sizeof(info));
	if (!tt_route_match(&rt, h->method, h->target, h->target_len, h->host[0] ? h->host : NULL))
		return 0;
	quick_fields(body, blen, model, sizeof(model), &max_tokens);
	memset(&k, 0, sizeof(k));
	if (key_fn)
		key_fn(&k);
	/* Same sizes on both sides: plain copies. */
	_Static_assert(sizeof(k.task) == sizeof(h->task) && sizeof(k.tenant) == sizeof(h->tenant) &&
		       sizeof(k.feature) == sizeof(h->feature), "attribution sizes");
	if (h->task[0])
		memcpy(k.task, h->task, sizeof(k.task));
	if (h->tenant[0])
		memcpy(k.tenant, h->tenant, sizeof(k.tenant));
	if (h->feature[0])
		memcpy(k.feature, h->feature, sizeof(k.feature));
	tt_record_set(k.model, sizeof(k.model), model[0] ? model : rt.path_model, (size_t)-1);
	tt_record_set(k.provider, sizeof(k.provider), rt.provider ? rt.provider : "", (size_t)-1);
	v = tt_lease_reserve(&k, tt_enforce_input_estimate(blen), max_tokens > 0 ? max_tokens : -1,
			     &r, reason, sizeof(reason), rule, sizeof(rule));
	if (v == TT_LEASE_ALLOW) {
		if (e->nres == PENDING) {
			/* Records lag far behind: keep the oldest as spent. */
			tt_lease_settle(&e->res[0], -1, -1);
			memmove(&e->res[0], &e->res[1], sizeof(e->res[0]) * (PENDING - 1));
			e->nres--;
		}
		e->res[e->nres++] = r;
		return 0;
	}
	if (v == TT_LEASE_DENY)  /* unreachable was said by lease.c */
		tt_log_once(&warn_block, TT_LOG_WARN, "enforce: blocking LLM calls: %s", reason);
	tt_log(TT_LOG_INFO, "enforce: blocked %s %.*s (task %s): %s", h->method,
	       (int)(h->target_len > 200 ? 200 : h->target_len), h->target,
	       k.task[0] ? k.task : "-", reason);
	tt_request_parse(&info, &rt, body, blen);  /* the hashes, for the record */
	blocked_record(h, &rt, &info, &k, blen);
	n = tt_enforce_response(rt.provider, rule, k.task, reason, resp, sizeof(resp));
	if (n > 0 && divert(e, ssl, resp, (size_t)n) == 0)
		return 1;
	tt_log_once(&warn_nofd, TT_LOG_WARN, "enforce: a blocked call's error cannot be "
		    "delivered on this connection (no socket); its write fails instead");
	e->st = S_OFF;
	return -1;
}

static int hold_add(tt_enforce *e, const void *buf, size_t len)
{
	if (e->hold_len + len > e->hold_cap) {
		size_t cap = e->hold_cap ? e->hold_cap : 16384;
		char *p;

		while (cap < e->hold_len + len)
			cap *= 2;
		p = realloc(e->hold, cap);
		if (!p)
			return -1;
		e->hold = p;
		e->hold_cap = cap;
	}
	memcpy(e->hold + e->hold_len, buf, len);
	e->hold_len += len;
	return 0;
}

/* Give up checking this connection: send what is held, pass the rest. */
static long give_up(tt_enforce *e, void *ssl)
{
	long r = 1;

	e->st = S_OFF;
	if (e->hold_len)
		r = flush(ssl, e->hold, e->hold_len);
	e->hold_len = 0;
	return r;
}

/* ---- HTTP/2 ------------------------------------------------------------- */

/*
 * The OpenSSL error of a refused write.  ERR_error_string() prints a
 * library's and a reason's registered strings, not an error's data, and
 * curl prints only that: so the rule and the task go into a reason string
 * registered for a library of our own.  One reason code per distinct
 * sentence, REASONS at most (then a generic one); the strings live as long
 * as the process, as OpenSSL's table wants.  libcrypto's functions are
 * looked up by name (3.x: ERR_new/ERR_set_debug/ERR_set_error, the
 * expansion of ERR_raise_data; 1.1.1: ERR_put_error/ERR_add_error_data).
 */
#define REASONS 32
#define REASON_LEN 320

struct err_string { unsigned long error; const char *string; };  /* ERR_STRING_DATA */

static struct {
	pthread_mutex_t mu;
	int looked, v3, lib;
	int (*next_lib)(void);
	int (*load)(const struct err_string *);
	void (*err_new)(void);
	void (*set_debug)(const char *, int, const char *);
	void (*set_error)(int, int, const char *, ...);
	void (*put_error)(int, int, int, const char *, int);
	void (*add_data)(int, ...);
	char text[REASONS][REASON_LEN];
	/* OpenSSL keeps pointers to these entries: they never move. */
	struct err_string base[3];            /* library, generic reason, end */
	struct err_string one[REASONS][2];    /* each sentence, end */
	int nreasons;
} err = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void *crypto_sym(const char *name)
{
	static const char *const sonames[] = {"libcrypto.so.3", "libcrypto.so.1.1", "libcrypto.so"};
	void *p = dlsym(RTLD_DEFAULT, name);

	/* CPython loads libssl (and so libcrypto) RTLD_LOCAL: ask it directly. */
	for (size_t i = 0; !p && i < sizeof(sonames) / sizeof(sonames[0]); i++) {
		void *h = dlopen(sonames[i], RTLD_LAZY | RTLD_NOLOAD);

		if (h) {
			p = dlsym(h, name);
			dlclose(h);  /* drops only the reference NOLOAD took */
		}
	}
	return p;
}

/* OpenSSL's ERR_PACK: 3.x has no function field and a 23-bit reason. */
static unsigned long err_pack(int lib, int reason)
{
	if (err.v3)
		return ((unsigned long)(lib & 0xff) << 23) | ((unsigned long)reason & 0x7fffff);
	return ((unsigned long)(lib & 0xff) << 24) | ((unsigned long)reason & 0xfff);
}

/* With err.mu held: the reason code of sentence s (registered now if new). */
static int err_reason(const char *s)
{
	int i;

	if (!err.looked) {
		err.looked = 1;
		err.next_lib = (int (*)(void))crypto_sym("ERR_get_next_error_library");
		err.load = (int (*)(const struct err_string *))crypto_sym("ERR_load_strings_const");
		err.err_new = (void (*)(void))crypto_sym("ERR_new");
		err.set_debug = (void (*)(const char *, int, const char *))crypto_sym("ERR_set_debug");
		err.set_error = (void (*)(int, int, const char *, ...))crypto_sym("ERR_set_error");
		err.put_error = (void (*)(int, int, int, const char *, int))crypto_sym("ERR_put_error");
		err.add_data = (void (*)(int, ...))crypto_sym("ERR_add_error_data");
		err.v3 = err.err_new && err.set_debug && err.set_error;
		err.lib = err.next_lib ? err.next_lib() : 0;
		if (err.lib <= 0 || err.lib > 0xff)
			err.lib = 128;  /* ERR_LIB_USER */
		if (err.load && err.lib != 128) {
			err.base[0].error = err_pack(err.lib, 0);
			err.base[0].string = "tokentap";
			err.base[1].error = err_pack(err.lib, 1);
			err.base[1].string = "call blocked by budget";
			err.load(err.base);  /* read up to the NULL string */
		}
	}
	if (!err.load || err.lib == 128)
		return 1;
	for (i = 0; i < err.nreasons; i++)
		if (strcmp(err.text[i], s) == 0)
			return i + 2;
	if (err.nreasons == REASONS)
		return 1;
	i = err.nreasons++;
	tt_record_set(err.text[i], REASON_LEN, s, (size_t)-1);
	err.one[i][0].error = err_pack(err.lib, i + 2);
	err.one[i][0].string = err.text[i];
	err.load(err.one[i]);
	return i + 2;
}

void tt_enforce_atfork_child(void)
{
	pthread_mutex_init(&err.mu, NULL);
}

int tt_enforce_raise(const char *rule, const char *task, const char *reason)
{
	char sentence[REASON_LEN], data[768];
	int code, rc = 0;

	snprintf(sentence, sizeof(sentence), "call blocked by budget rule \"%s\" for task \"%s\"",
		 rule && rule[0] ? rule : "unknown", task && task[0] ? task : "(none)");
	snprintf(data, sizeof(data), "tokentap: %s: %s", sentence,
		 reason && reason[0] ? reason : "budget exhausted");
	pthread_mutex_lock(&err.mu);
	code = err_reason(sentence);
	if (err.v3) {
		err.err_new();
		err.set_debug("tokentap", 0, "SSL_write");
		err.set_error(err.lib, code, "%s", data);
	} else if (err.put_error) {
		err.put_error(err.lib, 0, code, "tokentap", 0);
		if (err.add_data)
			err.add_data(1, data);
	} else {
		rc = -1;
	}
	pthread_mutex_unlock(&err.mu);
	return rc;
}

static int same_request(const struct h2_pend *p, const tt_record *rec)
{
	return p->ts_us == rec->ts_us && p->request_bytes == rec->request_bytes &&
	       strcmp(p->prompt_hash, rec->prompt_hash) == 0;
}

static void h2_remove(tt_enforce *e, int i)
{
	memmove(&e->h2[i], &e->h2[i + 1], sizeof(e->h2[0]) * (size_t)(e->nh2 - i - 1));
	e->nh2--;
}

static void h2_add(tt_enforce *e, const tt_record *rec, enum h2_kind kind,
		   const tt_reservation *r)
{
	struct h2_pend *p;

	if (e->nh2 == H2_PENDING) {
		/* Records lag far behind: keep the oldest as spent. */
		tt_lease_settle(&e->h2[0].r, -1, -1);
		h2_remove(e, 0);
	}
	p = &e->h2[e->nh2++];
	memset(p, 0, sizeof(*p));
	p->ts_us = rec->ts_us;
	p->request_bytes = rec->request_bytes;
	memcpy(p->prompt_hash, rec->prompt_hash, sizeof(p->prompt_hash));
	p->kind = kind;
	p->write_no = e->h2_write_no;
	if (r)
		p->r = *r;
}

/* The request-side record of a refused call, shipped at once: the call
 * has no response to wait for. */
static void h2_blocked_record(const tt_record *req, const tt_lease_key *k)
{
	tt_record rec = *req;

	if (!ship_fn)
		return;
	rec.id[0] = '\0';
	rec.status = TT_NULL;  /* no response: the write failed */
	rec.ttft_ms = rec.duration_ms = -1;
	rec.input_tokens = rec.output_tokens = 0;
	TT_RECORD_SET(&rec, usage_source, "none", 4);
	TT_RECORD_SET(&rec, model, k->model, (size_t)-1);
	TT_RECORD_SET(&rec, task, k->task, (size_t)-1);
	TT_RECORD_SET(&rec, tenant, k->tenant, (size_t)-1);
	TT_RECORD_SET(&rec, feature, k->feature, (size_t)-1);
	rec.response_bytes = 0;
	TT_RECORD_SET(&rec, error, "blocked", 7);
	rec.blocked = 1;
	ship_fn(&rec);
}

void tt_enforce_request(tt_enforce *e, const tt_record *rec)
{
	tt_lease_key k;
	tt_reservation r;
	char reason[384], rule[64];
	int v;

	/* HTTP/1.1 decides before its write; a server reads requests. */
	if (!e || e->st != S_H2 || !e->h2_feeding || strcmp(rec->side, "server") == 0)
		return;
	memset(&k, 0, sizeof(k));
	if (key_fn)
		key_fn(&k);
	if (rec->task[0])
		tt_record_set(k.task, sizeof(k.task), rec->task, (size_t)-1);
	if (rec->tenant[0])
		tt_record_set(k.tenant, sizeof(k.tenant), rec->tenant, (size_t)-1);
	if (rec->feature[0])
		tt_record_set(k.feature, sizeof(k.feature), rec->feature, (size_t)-1);
	tt_record_set(k.model, sizeof(k.model), rec->request_model[0] ? rec->request_model
								      : rec->model, (size_t)-1);
	tt_record_set(k.provider, sizeof(k.provider), rec->provider, (size_t)-1);
	if (e->h2_refused) {
		/* A second request in the write being refused: it does not
		 * leave either. */
		h2_blocked_record(rec, &k);
		h2_add(e, rec, H2_DROP, NULL);
		return;
	}
	v = tt_lease_reserve(&k, tt_enforce_input_estimate((size_t)(rec->request_bytes > 0
								    ? rec->request_bytes : 0)),
			     rec->max_tokens > 0 ? rec->max_tokens : -1, &r, reason, sizeof(reason),
			     rule, sizeof(rule));
	if (v == TT_LEASE_ALLOW) {
		h2_add(e, rec, H2_LIVE, &r);
		return;
	}
	e->h2_refused = 1;
	tt_record_set(e->h2_rule, sizeof(e->h2_rule), rule, (size_t)-1);
	tt_record_set(e->h2_task, sizeof(e->h2_task), k.task, (size_t)-1);
	tt_record_set(e->h2_reason, sizeof(e->h2_reason), reason, (size_t)-1);
	if (v == TT_LEASE_DENY)  /* unreachable was said by lease.c */
		tt_log_once(&warn_block, TT_LOG_WARN, "enforce: blocking LLM calls: %s "
			    "(on HTTP/2 the call's write fails, and the connection with it)",
			    reason);
	tt_log(TT_LOG_INFO, "enforce: blocked %s %s over HTTP/2, its write fails (task %s): %s",
	       rec->method, rec->path, k.task[0] ? k.task : "-", reason);
	/* Requests allowed earlier in this same write do not leave either. */
	for (int i = 0; i < e->nh2; i++) {
		if (e->h2[i].kind == H2_LIVE && e->h2[i].write_no == e->h2_write_no) {
			tt_lease_settle(&e->h2[i].r, 0, 0);
			e->h2[i].kind = H2_MARK;
		}
	}
	h2_blocked_record(rec, &k);
	h2_add(e, rec, H2_DROP, NULL);
}

static int h2_refuse(tt_enforce *e, long *ret)
{
	tt_enforce_raise(e->h2_rule, e->h2_task, e->h2_reason);
	*ret = -1;
	return TT_ENFORCE_DONE;
}

/*
 * Feed what the decoder has not seen of this write.  A write that failed
 * (WANT_WRITE) is retried by the caller with the same bytes, and a partial
 * one continues with the rest: either way the write starts where the
 * last one sent ended, and its first h2_ahead bytes were fed already.
 */
static int h2_write(tt_enforce *e, void *ssl, const char *p, size_t len, long *ret)
{
	if (e->h2_refused)
		return h2_refuse(e, ret);
	if (len > e->h2_ahead && feed_fn) {
		e->h2_write_no++;
		e->h2_feeding = 1;
		feed_fn(ssl, p + e->h2_ahead, len - e->h2_ahead);
		e->h2_feeding = 0;
		e->h2_ahead = len;
	}
	if (e->h2_refused)
		return h2_refuse(e, ret);
	return TT_ENFORCE_PREFED;
}

void tt_enforce_sent(tt_enforce *e, size_t n)
{
	if (!e || e->st != S_H2)
		return;
	e->h2_ahead = n < e->h2_ahead ? e->h2_ahead - n : 0;
}

/* 1: p (n bytes) and what is held begin the client preface, or are it. */
static int preface_prefix(const tt_enforce *e, const char *p, size_t n)
{
	size_t h = e->hold_len;

	if (h >= PREFACE_LEN || (h && memcmp(e->hold, PREFACE, h) != 0))
		return 0;
	if (n > PREFACE_LEN - h)
		n = PREFACE_LEN - h;
	return memcmp(p, PREFACE + h, n) == 0;
}

static int looks_like_request(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n && i < 16 && p[i] >= 'A' && p[i] <= 'Z'; i++)
		;
	return i > 0 && (i == n || p[i] == ' ');
}

int tt_enforce_write(tt_enforce *e, void *ssl, const void *buf, size_t len, long *ret)
{
	const char *p = buf;
	size_t orig = len, total;
	long r = 1;          /* <= 0: a flush failed, SSL_write returns it */
	struct head h;
	tt_route rt;
	int held, ph, d;

	switch (e->st) {
	case S_OFF:
		return 0;
	case S_H2:
		return h2_write(e, ssl, buf, len, ret);
	case S_DENIED:
		*ret = (long)len;  /* the connection is ours now: swallow */
		return 1;
	case S_BODY_PASS:
		if (len <= e->pass_left) {
			e->pass_left -= len;
			if (!e->pass_left)
				e->st = S_HEAD;
			return 0;
		}
		tt_log_once(&warn_pipe, TT_LOG_INFO, "enforce: pipelined requests; the "
			    "connection is not checked further");
		e->st = S_OFF;
		return 0;
	case S_HEAD:
		break;
	}
	if (preface_prefix(e, p, len)) {
		if (e->hold_len + len < PREFACE_LEN) {
			/* The preface in pieces: hold it until it is whole. */
			if (hold_add(e, buf, len)) {
				r = give_up(e, ssl);
				if (r > 0)
					return 0;
			}
			goto done;
		}
		e->st = S_H2;
		if (e->hold_len) {
			/* Only a part of the preface: no request in it. */
			r = flush(ssl, e->hold, e->hold_len);
			e->hold_len = 0;
			if (r <= 0)
				goto done;
		}
		return h2_write(e, ssl, buf, len, ret);
	}
	if (e->hold_len == 0) {
		if (!looks_like_request(p, len)) {
			e->st = S_OFF;
			return 0;
		}
	}
	/* Parse in place when nothing is held (the usual single write). */
	held = e->hold_len > 0;
	if (held) {
		if (hold_add(e, buf, len)) {
			r = give_up(e, ssl);
			if (r > 0)
				return 0;  /* what was held went out; this write follows */
			goto done;
		}
		p = e->hold;
		len = e->hold_len;
	}
	ph = parse_head(p, len, &h);
	if (ph < 0) {
		if (!held) {
			e->st = S_OFF;
			return 0;
		}
		r = give_up(e, ssl);
		goto done;
	}
	if (ph == 0) {
		if (!held && hold_add(e, buf, len)) {
			e->st = S_OFF;
			return 0;
		}
		goto done;  /* held; more to come */
	}
	if (!tt_route_match(&rt, h.method, h.target, h.target_len, h.host[0] ? h.host : NULL)) {
		/* Not an LLM call: let it and its body through. */
		long long cl = h.content_length > 0 ? h.content_length : 0;

		if (h.chunked || (size_t)cl < len - h.len) {
			if (!held) {
				e->st = S_OFF;
				return 0;
			}
			r = give_up(e, ssl);
			goto done;
		}
		e->pass_left = (size_t)cl - (len - h.len);
		e->st = e->pass_left ? S_BODY_PASS : S_HEAD;
		if (!held)
			return 0;
		r = flush(ssl, e->hold, e->hold_len);
		e->hold_len = 0;
		goto done;
	}
	if (h.chunked || h.content_length < 0 || h.content_length > BODY_MAX) {
		tt_log_once(h.content_length > BODY_MAX ? &warn_big : &warn_chunked, TT_LOG_WARN,
			    "enforce: a request with %s is not checked against budgets",
			    h.content_length > BODY_MAX ? "a body over 8 MiB"
							: "no Content-Length (chunked)");
		if (!held) {
			e->st = S_OFF;
			return 0;
		}
		r = give_up(e, ssl);
		goto done;
	}
	total = h.len + (size_t)h.content_length;
	if (len < total) {
		if (!held && hold_add(e, buf, len)) {
			e->st = S_OFF;
			return 0;
		}
		goto done;  /* the body is still coming */
	}
	if (len > total)
		tt_log_once(&warn_pipe, TT_LOG_INFO, "enforce: pipelined requests; the "
			    "connection is not checked further");
	d = decide(e, ssl, &h, p + h.len, (size_t)h.content_length);
	if (d == 0) {
		if (e->st == S_HEAD)
			e->st = len > total ? S_OFF : S_HEAD;
		if (!held)
			return 0;
		r = flush(ssl, e->hold, e->hold_len);
		e->hold_len = 0;
		goto done;
	}
	e->hold_len = 0;
	if (d < 0)
		r = -1;
done:
	/* Whatever we held or sent for the caller, its own write is done (all
	 * of it) unless a flush failed. */
	*ret = r <= 0 ? r : (long)orig;
	return 1;
}

int tt_enforce_read(tt_enforce *e, void *buf, size_t cap, size_t *got, int peek)
{
	size_t n;

	if (e->st != S_DENIED)
		return 0;
	n = e->synth_len - e->synth_off;
	if (n > cap)
		n = cap;
	memcpy(buf, e->synth + e->synth_off, n);
	if (!peek)
		e->synth_off += n;
	*got = n;
	return 1;
}

int tt_enforce_settle(tt_enforce *e, tt_record *rec)
{
	if (!e)
		return 0;
	if (e->st == S_H2) {
		for (int i = 0; i < e->nh2; i++) {
			enum h2_kind kind = e->h2[i].kind;

			if (!same_request(&e->h2[i], rec))
				continue;
			if (kind == H2_LIVE)
				tt_lease_settle(&e->h2[i].r, rec->input_tokens, rec->output_tokens);
			h2_remove(e, i);
			if (kind == H2_DROP)
				return 1;
			if (kind == H2_MARK) {
				rec->blocked = 1;
				rec->input_tokens = rec->output_tokens = 0;
				TT_RECORD_SET(rec, usage_source, "none", 4);
				TT_RECORD_SET(rec, error, "blocked", 7);
			}
			return 0;
		}
		return 0;  /* a request the decoder could not read: nothing reserved */
	}
	if (e->nres == 0)
		return 0;
	tt_lease_settle(&e->res[0], rec->input_tokens, rec->output_tokens);
	memmove(&e->res[0], &e->res[1], sizeof(e->res[0]) * (size_t)(e->nres - 1));
	e->nres--;
	return 0;
}
