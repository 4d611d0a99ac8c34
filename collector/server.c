/* server.c - tokentapd's HTTP API, see server.h. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "batch.h"
#include "common/addr.h"
#include "common/clock.h"
#include "metrics.h"
#include "probestats.h"
#include "tokentap/error.h"
#include "usage.h"

#define BODY_MAX_DEFAULT (16u << 20)
#define MAX_CONNS_DEFAULT 512
#define RECLAIM_AFTER_US 1000000  /* a connection this long in its headers may be cut for a new one */
#define SWEEP_EVERY_US 200000

/*
 * One accepted connection (MHD's socket context), from NOTIFY_CONNECTION
 * STARTED to CLOSED.  Lives on its listener's list under srv->cmu.  fd is
 * valid as long as the entry is listed: MHD calls CLOSED before it
 * closes the socket, and CLOSED takes srv->cmu to unlist it.
 */
struct conn {
	struct conn *prev, *next;
	int fd;
	int in_headers;   /* waiting for a request's headers (first, or next on keep-alive) */
	int refused;      /* arrived past the listener's limit: answered 503 */
	int cut;          /* shut down by us (deadline or reclaim); closing */
	int64_t since_us; /* tt_mono_us: accepted, or the previous request done */
};

struct listener {
	struct tt_server *srv;
	struct MHD_Daemon *mhd;
	int fd;
	int tcp;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];  /* unix socket, or "" */
	const char *spec;             /* as given to --listen: the /metrics label */
	struct conn *conns;           /* under srv->cmu */
	unsigned admitted;            /* listed, neither refused nor cut */
	unsigned refusing;            /* listed, refused, not cut: in the reserve */
	int64_t refused, deadline_cut, reclaimed;  /* counters, under srv->cmu */
};

struct tt_server {
	struct tt_server_opts opts;
	struct listener l[TT_SERVER_MAX_LISTEN];
	size_t nl;
	struct tt_metrics_counters cnt;  /* updated with __atomic builtins */
	tt_probestats *probes;           /* POST /v1/probe, for /metrics */
	pthread_mutex_t cmu;             /* every listener's connection list */
	pthread_cond_t ccv;              /* the sweeper's sleep; CLOCK_MONOTONIC */
	pthread_t sweeper;
	int sweeping, stop;
};

enum route { R_NONE, R_RECORDS, R_USAGE, R_VERDICT, R_METRICS, R_HEALTHZ, R_LEASE, R_ALERTS,
	     R_PROBE };

#define LEASE_BODY_MAX 65536

struct req {
	enum route route;
	int too_large;
	size_t body_len;
	int64_t start_us;
	tt_batch batch;
	tt_buf body;     /* R_LEASE, R_PROBE */
};

static void count(int64_t *c, int64_t n)
{
	__atomic_add_fetch(c, n, __ATOMIC_RELAXED);
}

static enum MHD_Result send_buf(struct MHD_Connection *conn, unsigned status, tt_buf *b,
				const char *type)
{
	size_t len;
	char *data = tt_buf_take(b, &len);
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (!data)
		return MHD_NO;
	resp = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(data);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "");
	if (status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *conn, unsigned status, tt_buf *b)
{
	return send_buf(conn, status, b, "application/json");
}

/* {"error": "<msg>"} */
static enum MHD_Result send_error(struct MHD_Connection *conn, unsigned status, const char *msg)
{
	tt_buf b;

	tt_buf_init(&b, 4096);
	if (tt_buf_adds(&b, "{\"error\":\"") || tt_buf_json_str(&b, msg, strlen(msg)) ||
	    tt_buf_adds(&b, "\"}\n")) {
		tt_buf_free(&b);
		return MHD_NO;
	}
	return send_json(conn, status, &b);
}

static enum MHD_Result send_405(struct MHD_Connection *conn, const char *allow)
{
	tt_buf b;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	char msg[128];
	size_t len;
	char *data;

	snprintf(msg, sizeof(msg), "{\"error\":\"method not allowed; use %s\"}\n", allow);
	tt_buf_init(&b, sizeof(msg));
	if (tt_buf_adds(&b, msg))
		return MHD_NO;
	data = tt_buf_take(&b, &len);
	resp = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(data);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
	ret = MHD_queue_response(conn, MHD_HTTP_METHOD_NOT_ALLOWED, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* Constant-time comparison: the token must not leak through timing. */
static int token_ok(const struct tt_server *srv, struct MHD_Connection *conn)
{
	const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						    MHD_HTTP_HEADER_AUTHORIZATION);
	const char *tok = srv->opts.token;
	size_t tl = strlen(tok), hl;
	unsigned char diff = 0;

	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return 0;
	h += 7;
	hl = strlen(h);
	for (size_t i = 0; i < tl; i++)
		diff |= (unsigned char)(tok[i] ^ (i < hl ? h[i] : 0));
	return diff == 0 && hl == tl;
}

/* ---- connection slots and the header deadline ------------------------------
 *
 * libmicrohttpd's own timeout is per idle period, and past its connection
 * limit it closes new connections without a word.  So tokentapd keeps its
 * own account of each listener's connections (NOTIFY_CONNECTION):
 *  - every request's headers have a deadline (header_timeout_s), from the
 *    accept or from the end of the previous request on a keep-alive
 *    connection; a sweeper thread shuts down the connections past it,
 *    however slowly they drip;
 *  - a listener admits max_conns connections; a new one past that takes
 *    the slot of the connection waiting longest for its headers (if over
 *    RECLAIM_AFTER_US), else it is answered 503 once its headers are in.
 *    MHD's limit is set above ours (the reserve) so that those can be told.
 * Each listener has its own MHD daemon, limit and reserve: a TCP flood
 * leaves the Unix socket's slots alone.
 */

/* Room above max_conns to answer 503 past it (MHD's limit is the sum). */
static unsigned reserve(unsigned max_conns)
{
	return max_conns / 4 + 8;
}

/*
 * Close c from outside its thread: the thread wakes on the shutdown,
 * reads the end of the stream, and MHD closes the connection.  Under
 * srv->cmu, with c listed (so its fd is still open).
 */
static void cut(struct listener *l, struct conn *c)
{
	if (c->refused)
		l->refusing--;
	else
		l->admitted--;
	c->cut = 1;
	shutdown(c->fd, SHUT_RDWR);
}

/*
 * Cut the connection that has waited longest for its headers (a drip, or
 * an idle keep-alive), among the admitted ones or the refused ones, if it
 * has waited min_wait_us: it has cost nothing yet and its client can
 * reconnect, while a busy request is never cut.  Under srv->cmu.  1 when
 * a slot was freed.
 */
static int reclaim(struct listener *l, int refused, int64_t min_wait_us, int64_t now)
{
	struct conn *old = NULL;

	for (struct conn *c = l->conns; c; c = c->next)
		if (c->in_headers && !c->cut && c->refused == refused &&
		    (!old || c->since_us < old->since_us))
			old = c;
	if (!old || now - old->since_us < min_wait_us)
		return 0;
	cut(l, old);
	l->reclaimed++;
	return 1;
}

/*
 * Admit c, or refuse it (503 when its headers are in).  The reserve must
 * keep a free slot, or MHD would drop the next connection unanswered
 * before tokentapd sees it: a refused connection still dripping its
 * headers when the reserve fills is cut (it was to get a 503 anyway).
 */
static void admit(struct listener *l, struct conn *c)
{
	unsigned max = l->srv->opts.max_conns;

	if (l->admitted < max || reclaim(l, 0, RECLAIM_AFTER_US, c->since_us)) {
		l->admitted++;
		return;
	}
	c->refused = 1;
	if (l->refusing + 1 >= reserve(max))
		reclaim(l, 1, 0, c->since_us);
	l->refusing++;
}

static void conn_started(struct listener *l, struct MHD_Connection *mc, void **ctx)
{
	struct tt_server *srv = l->srv;
	const union MHD_ConnectionInfo *fd = MHD_get_connection_info(
		mc, MHD_CONNECTION_INFO_CONNECTION_FD);
	struct conn *c = fd ? calloc(1, sizeof(*c)) : NULL;

	if (!c)
		return;  /* out of memory: served, but neither counted nor timed */
	c->fd = fd->connect_fd;
	c->in_headers = 1;
	c->since_us = tt_mono_us();
	pthread_mutex_lock(&srv->cmu);
	admit(l, c);
	c->next = l->conns;
	if (l->conns)
		l->conns->prev = c;
	l->conns = c;
	pthread_mutex_unlock(&srv->cmu);
	*ctx = c;
}

static void conn_closed(struct listener *l, void **ctx)
{
	struct tt_server *srv = l->srv;
	struct conn *c = *ctx;

	if (!c)
		return;
	pthread_mutex_lock(&srv->cmu);
	if (!c->cut && c->refused)
		l->refusing--;
	else if (!c->cut)
		l->admitted--;
	if (c->prev)
		c->prev->next = c->next;
	else
		l->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	pthread_mutex_unlock(&srv->cmu);
	free(c);
	*ctx = NULL;
}

/* MHD_OPTION_NOTIFY_CONNECTION: called before the connection's thread starts,
 * and before MHD closes its socket. */
static void on_connection(void *cls, struct MHD_Connection *mc, void **ctx,
			  enum MHD_ConnectionNotificationCode code)
{
	if (code == MHD_CONNECTION_NOTIFY_STARTED)
		conn_started(cls, mc, ctx);
	else if (code == MHD_CONNECTION_NOTIFY_CLOSED)
		conn_closed(cls, ctx);
}

static struct conn *conn_of(struct MHD_Connection *mc)
{
	const union MHD_ConnectionInfo *i = MHD_get_connection_info(
		mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return i ? i->socket_context : NULL;
}

/* A request's headers are in (the handler's first call). 1: refuse it (503). */
static int headers_done(struct listener *l, struct MHD_Connection *mc)
{
	struct conn *c = conn_of(mc);
	int refused = 0;

	if (!c)
		return 0;
	pthread_mutex_lock(&l->srv->cmu);
	c->in_headers = 0;
	refused = c->refused;
	l->refused += refused;
	pthread_mutex_unlock(&l->srv->cmu);
	return refused;
}

/* A request is over: on keep-alive, the next one's headers are timed from now. */
static void request_done(struct listener *l, struct MHD_Connection *mc)
{
	struct conn *c = conn_of(mc);

	if (!c)
		return;
	pthread_mutex_lock(&l->srv->cmu);
	c->in_headers = 1;
	c->since_us = tt_mono_us();
	pthread_mutex_unlock(&l->srv->cmu);
}

static void *sweep_main(void *arg)
{
	struct tt_server *srv = arg;
	int64_t limit = (int64_t)srv->opts.header_timeout_s * 1000000;

	pthread_mutex_lock(&srv->cmu);
	while (!srv->stop) {
		int64_t now = tt_mono_us(), wake = now + SWEEP_EVERY_US;
		struct timespec ts = {.tv_sec = wake / 1000000, .tv_nsec = wake % 1000000 * 1000};

		for (size_t i = 0; i < srv->nl; i++) {
			struct listener *l = &srv->l[i];

			for (struct conn *c = l->conns; c; c = c->next) {
				if (!c->in_headers || c->cut || now - c->since_us <= limit)
					continue;
				cut(l, c);
				l->deadline_cut++;
			}
		}
		pthread_cond_timedwait(&srv->ccv, &srv->cmu, &ts);
	}
	pthread_mutex_unlock(&srv->cmu);
	return NULL;
}

/* 503 past the listener's limit: a static body (no allocation under a flood), then close. */
static enum MHD_Result send_busy(struct MHD_Connection *conn)
{
	static const char body[] = "{\"error\":\"too many connections on this listener; "
				   "retry shortly\"}\n";
	struct MHD_Response *resp = MHD_create_response_from_buffer(
		sizeof(body) - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret;

	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	ret = MHD_queue_response(conn, MHD_HTTP_SERVICE_UNAVAILABLE, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* A label value: \, " and newline escaped (exposition format 0.0.4). */
static int label_value(tt_buf *b, const char *v)
{
	int rc = 0;

	for (; *v && !rc; v++) {
		if (*v == '\\' || *v == '"')
			rc = tt_buf_printf(b, "\\%c", *v);
		else if (*v == '\n')
			rc = tt_buf_adds(b, "\\n");
		else
			rc = tt_buf_add(b, v, 1);
	}
	return rc;
}

static int listener_line(tt_buf *b, const char *name, const struct listener *l,
			 const char *reason, long long v)
{
	int rc = tt_buf_printf(b, "%s{listener=\"", name);

	if (!rc)
		rc = label_value(b, l->spec);
	if (!rc && reason)
		rc = tt_buf_printf(b, "\",reason=\"%s", reason);
	if (!rc)
		rc = tt_buf_printf(b, "\"} %lld\n", v);
	return rc;
}

/* The budget tables' sizes and what their bounds did (budget.h). */
static int render_budget(tt_budget *budget, tt_buf *b)
{
	struct tt_budget_stats st;

	tt_budget_stats(budget, &st);
	return tt_buf_printf(b,
		"# HELP tokentap_budget_accounts (rule, scope) pairs held.\n"
		"# TYPE tokentap_budget_accounts gauge\n"
		"tokentap_budget_accounts %zu\n"
		"# HELP tokentap_budget_accounts_max The bound on pairs (leases.max_accounts).\n"
		"# TYPE tokentap_budget_accounts_max gauge\n"
		"tokentap_budget_accounts_max %zu\n"
		"# HELP tokentap_budget_accounts_expired_total Pairs freed: nothing in them counted.\n"
		"# TYPE tokentap_budget_accounts_expired_total counter\n"
		"tokentap_budget_accounts_expired_total %llu\n"
		"# HELP tokentap_budget_accounts_refused_total New pairs refused: the table was full "
		"(their leases are denied).\n"
		"# TYPE tokentap_budget_accounts_refused_total counter\n"
		"tokentap_budget_accounts_refused_total %llu\n"
		"# HELP tokentap_budget_records_uncounted_total Spend of records lost to a refused pair.\n"
		"# TYPE tokentap_budget_records_uncounted_total counter\n"
		"tokentap_budget_records_uncounted_total %llu\n"
		"# HELP tokentap_budget_records_clamped_total Records whose ts was far from the "
		"collector's clock, counted at their arrival.\n"
		"# TYPE tokentap_budget_records_clamped_total counter\n"
		"tokentap_budget_records_clamped_total %llu\n"
		"# HELP tokentap_budget_leases Live leases.\n"
		"# TYPE tokentap_budget_leases gauge\n"
		"tokentap_budget_leases %zu\n"
		"# HELP tokentap_budget_leases_max The bound on leases (leases.max_leases).\n"
		"# TYPE tokentap_budget_leases_max gauge\n"
		"tokentap_budget_leases_max %zu\n"
		"# HELP tokentap_budget_leases_expired_total Leases whose TTL ended.\n"
		"# TYPE tokentap_budget_leases_expired_total counter\n"
		"tokentap_budget_leases_expired_total %llu\n"
		"# HELP tokentap_budget_leases_evicted_total Leases evicted from a full table "
		"(least recently renewed; their holds still count until their TTL).\n"
		"# TYPE tokentap_budget_leases_evicted_total counter\n"
		"tokentap_budget_leases_evicted_total %llu\n",
		st.accounts, st.max_accounts, (unsigned long long)st.accounts_expired,
		(unsigned long long)st.accounts_refused, (unsigned long long)st.records_uncounted,
		(unsigned long long)st.records_clamped, st.leases, st.max_leases,
		(unsigned long long)st.leases_expired, (unsigned long long)st.leases_evicted);
}

/* The server's own /metrics lines: connections per listener, the alert
 * queue, the budget tables. */
static int render_server(struct tt_server *srv, tt_buf *b)
{
	int rc = tt_buf_adds(b,
		"# HELP tokentap_http_connections Connections admitted on each listener.\n"
		"# TYPE tokentap_http_connections gauge\n");

	pthread_mutex_lock(&srv->cmu);
	for (size_t i = 0; i < srv->nl && !rc; i++)
		rc = listener_line(b, "tokentap_http_connections", &srv->l[i], NULL,
				   srv->l[i].admitted);
	if (!rc)
		rc = tt_buf_adds(b,
			"# HELP tokentap_http_connections_closed_total Connections tokentapd closed "
			"before their request: header_deadline (headers not in within "
			"--header-timeout), reclaimed (slot given to a new connection at the limit).\n"
			"# TYPE tokentap_http_connections_closed_total counter\n");
	for (size_t i = 0; i < srv->nl && !rc; i++) {
		rc = listener_line(b, "tokentap_http_connections_closed_total", &srv->l[i],
				   "header_deadline", srv->l[i].deadline_cut);
		if (!rc)
			rc = listener_line(b, "tokentap_http_connections_closed_total", &srv->l[i],
					   "reclaimed", srv->l[i].reclaimed);
	}
	if (!rc)
		rc = tt_buf_adds(b,
			"# HELP tokentap_http_connections_refused_total Requests answered 503 "
			"because their listener was at --max-connections.\n"
			"# TYPE tokentap_http_connections_refused_total counter\n");
	for (size_t i = 0; i < srv->nl && !rc; i++)
		rc = listener_line(b, "tokentap_http_connections_refused_total", &srv->l[i], NULL,
				   srv->l[i].refused);
	pthread_mutex_unlock(&srv->cmu);
	if (!rc && srv->opts.alerts) {
		struct tt_alerts_counters c;

		tt_alerts_counters(srv->opts.alerts, &c);
		rc = tt_buf_printf(b,
			"# HELP tokentap_alerts_total Alerts since start: raised (new, stored), "
			"dropped (queue full or not written), pruned (retention), webhook "
			"delivered or failed.\n"
			"# TYPE tokentap_alerts_total counter\n"
			"tokentap_alerts_total{outcome=\"raised\"} %lld\n"
			"tokentap_alerts_total{outcome=\"dropped\"} %lld\n"
			"tokentap_alerts_total{outcome=\"pruned\"} %lld\n"
			"tokentap_alerts_total{outcome=\"delivered\"} %lld\n"
			"tokentap_alerts_total{outcome=\"failed\"} %lld\n"
			"# HELP tokentap_alerts_queued Alerts raised and not yet written.\n"
			"# TYPE tokentap_alerts_queued gauge\n"
			"tokentap_alerts_queued %lld\n",
			(long long)c.raised, (long long)c.dropped, (long long)c.pruned,
			(long long)c.delivered, (long long)c.failed, (long long)c.queued);
	}
	if (!rc && srv->opts.budget)
		rc = render_budget(srv->opts.budget, b);
	return rc;
}

static enum MHD_Result answer_records(struct tt_server *srv, struct MHD_Connection *conn,
				      struct req *r)
{
	tt_batch *b = &r->batch;
	int64_t accepted = 0, dups = 0, t = tt_real_us();
	unsigned status = MHD_HTTP_OK;
	tt_buf out;
	int rc;

	if (r->too_large) {
		char msg[128];

		count(&srv->cnt.bad_requests, 1);
		snprintf(msg, sizeof(msg), "body larger than %zu bytes; send smaller batches",
			 srv->opts.body_max);
		return send_error(conn, MHD_HTTP_CONTENT_TOO_LARGE, msg);
	}
	if (tt_batch_finish(b) == TT_ENOMEM) {
		count(&srv->cnt.failed, 1);
		return send_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
				  "out of memory; nothing stored; retry with a smaller batch");
	}
	if (tt_batch_seen(b) == 0 && !b->fatal[0] && b->mode == 0) {
		count(&srv->cnt.bad_requests, 1);
		return send_error(conn, MHD_HTTP_BAD_REQUEST,
				  "empty body: expected JSON Lines or a JSON array of records");
	}
	for (size_t i = 0; i < b->nrecs; i++)
		tt_prices_apply(srv->opts.prices, &b->recs[i], &b->arena);
	rc = tt_store_insert(srv->opts.store, b->recs, b->nrecs, &b->arena, t, &accepted, &dups);
	if (rc) {
		count(&srv->cnt.failed, 1);
		return send_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
				  "database write failed; nothing of this request was stored; retry");
	}
	count(&srv->cnt.accepted, accepted);
	count(&srv->cnt.duplicates, dups);
	count(&srv->cnt.rejected, (int64_t)b->nrejected);

	tt_buf_init(&out, 64 * 1024);
	rc = tt_buf_printf(&out, "{\"accepted\":%lld,\"duplicates\":%lld", (long long)accepted,
			   (long long)dups);
	if (!rc && (b->nrejected || b->fatal[0])) {
		char msg[256];

		status = b->fatal[0] ? MHD_HTTP_BAD_REQUEST : MHD_HTTP_UNPROCESSABLE_CONTENT;
		rc = tt_buf_printf(&out, ",\"rejected_count\":%zu,\"rejected\":[", b->nrejected);
		for (size_t i = 0; i < b->nrejects && !rc; i++) {
			const struct tt_batch_reject *x = &b->rejects[i];

			rc = tt_buf_printf(&out, "%s{\"line\":%u", i ? "," : "", x->line);
			if (!rc && x->index >= 0)
				rc = tt_buf_printf(&out, ",\"index\":%lld", (long long)x->index);
			if (!rc)
				rc = tt_buf_adds(&out, ",\"error\":\"");
			if (!rc)
				rc = tt_buf_json_str(&out, x->error, strlen(x->error));
			if (!rc)
				rc = tt_buf_adds(&out, "\"}");
		}
		if (b->fatal[0])
			snprintf(msg, sizeof(msg), "%s; %zu record(s) before it were kept, "
				 "%zu rejected", b->fatal, b->nrecs, b->nrejected);
		else
			snprintf(msg, sizeof(msg), "%zu of %zu record(s) rejected (see \"rejected\"); "
				 "the others are stored", b->nrejected, tt_batch_seen(b));
		if (!rc)
			rc = tt_buf_adds(&out, "],\"error\":\"");
		if (!rc)
			rc = tt_buf_json_str(&out, msg, strlen(msg));
		if (!rc)
			rc = tt_buf_adds(&out, "\"");
	}
	if (!rc)
		rc = tt_buf_adds(&out, "}\n");
	if (rc) {
		tt_buf_free(&out);
		return MHD_NO;
	}
	count(status == MHD_HTTP_OK ? &srv->cnt.requests : &srv->cnt.bad_requests, 1);
	return send_json(conn, status, &out);
}

static enum MHD_Result answer_usage(struct tt_server *srv, struct MHD_Connection *conn)
{
	struct tt_usage_query q = {.since_us = INT64_MIN, .until_us = INT64_MAX};
	const char *since, *until;
	int64_t now = tt_real_us();
	char err[256];
	tt_buf out;
	int rc;

	q.by = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "by");
	if (!q.by || !tt_usage_column(q.by))
		return send_error(conn, MHD_HTTP_BAD_REQUEST,
				  "by: expected one of " TT_USAGE_BY_LIST);
	since = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "since");
	until = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "until");
	if (since && since[0] && tt_usage_parse_time(since, now, &q.since_us))
		return send_error(conn, MHD_HTTP_BAD_REQUEST,
				  "since: expected RFC 3339, YYYY-MM-DD, epoch seconds or an age "
				  "like 24h / 7d");
	if (until && until[0] && tt_usage_parse_time(until, now, &q.until_us))
		return send_error(conn, MHD_HTTP_BAD_REQUEST,
				  "until: expected RFC 3339, YYYY-MM-DD, epoch seconds or an age "
				  "like 24h / 7d");
	tt_buf_init(&out, 64u << 20);
	rc = tt_usage_json(srv->opts.store, &q, &out, err, sizeof(err));
	if (rc) {
		tt_buf_free(&out);
		return send_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, err);
	}
	tt_buf_adds(&out, "\n");
	return send_json(conn, MHD_HTTP_OK, &out);
}

static enum MHD_Result answer_verdict(struct tt_server *srv, struct MHD_Connection *conn)
{
	static const char *const keys[TT_SC_N] = {"task", "tenant", "feature", "pod", "model"};
	struct tt_budget_key k = {{0}};
	char reason[512];
	tt_buf out;
	int deny = 0;

	for (size_t i = 0; i < TT_SC_N; i++) {
		const char *v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, keys[i]);
		char msg[64];

		if (v && strlen(v) > 127) {
			snprintf(msg, sizeof(msg), "%s: longer than 127 bytes", keys[i]);
			return send_error(conn, MHD_HTTP_BAD_REQUEST, msg);
		}
		k.f[i] = v;
	}
	if (srv->opts.budget)
		deny = tt_budget_verdict(srv->opts.budget, &k, tt_real_us(), reason, sizeof(reason));
	tt_buf_init(&out, 4096);
	if (tt_buf_printf(&out, "{\"allow\":%s,\"reason\":", deny ? "false" : "true") ||
	    (deny ? (tt_buf_adds(&out, "\"") || tt_buf_json_str(&out, reason, strlen(reason)) ||
		     tt_buf_adds(&out, "\"")) : tt_buf_adds(&out, "null")) ||
	    tt_buf_adds(&out, "}\n")) {
		tt_buf_free(&out);
		return MHD_NO;
	}
	return send_json(conn, MHD_HTTP_OK, &out);
}

static const char *jstr(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(v) && strlen(v->valuestring) < 256 ? v->valuestring : NULL;
}

static double jnum(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 1e15 ? v->valuedouble
										 : 0;
}

/* USD per token (the table keeps per-token prices), the dearest tier: a
 * lease is a worst case.  < 0: unpriced. */
static void token_prices(const tt_prices *p, const char *provider, const char *model,
			 double *in, double *out)
{
	const struct tt_price *pr = model ? tt_prices_lookup(p, provider,
						provider ? strlen(provider) : 0, model,
						strlen(model)) : NULL;

	*in = *out = -1;
	if (!pr)
		return;
	*in = pr->base.input;
	*out = pr->base.output;
	if (pr->lc_threshold > 0) {
		*in = fmax(*in, pr->lc.input);
		*out = fmax(*out, pr->lc.output);
	}
}

static int num_or_null(tt_buf *b, const char *name, double v, int integer)
{
	if (v < 0)
		return tt_buf_printf(b, "\"%s\":null", name);
	if (integer)
		return tt_buf_printf(b, "\"%s\":%lld", name, (long long)v);
	return tt_buf_printf(b, "\"%s\":%.17g", name, v);
}

static enum MHD_Result answer_lease(struct tt_server *srv, struct MHD_Connection *conn,
				    struct req *r)
{
	struct tt_lease_req q = {0};
	struct tt_lease_ans a;
	const cJSON *need, *rel;
	cJSON *root;
	tt_buf out;
	int rc;

	if (r->too_large)
		return send_error(conn, MHD_HTTP_CONTENT_TOO_LARGE, "lease request over 64 KiB");
	root = r->body.data ? cJSON_ParseWithLength(r->body.data, r->body.len) : NULL;
	if (!cJSON_IsObject(root) || !jstr(root, "id") || strlen(jstr(root, "id")) > 90) {
		cJSON_Delete(root);
		return send_error(conn, MHD_HTTP_BAD_REQUEST,
				  "expected a JSON object with \"id\" (at most 90 bytes), \"pid\", "
				  "the key (task, tenant, feature, pod, model) and \"need\"");
	}
	q.id = jstr(root, "id");
	q.pid = (int64_t)jnum(root, "pid");
	q.key.f[TT_SC_TASK] = jstr(root, "task");
	q.key.f[TT_SC_TENANT] = jstr(root, "tenant");
	q.key.f[TT_SC_FEATURE] = jstr(root, "feature");
	q.key.f[TT_SC_POD] = jstr(root, "pod");
	q.key.f[TT_SC_MODEL] = jstr(root, "model");
	need = cJSON_GetObjectItemCaseSensitive(root, "need");
	rel = cJSON_GetObjectItemCaseSensitive(root, "release");
	q.need_in = (int64_t)jnum(need, "input_tokens");
	q.need_out = (int64_t)jnum(need, "output_tokens");
	q.need_calls = (int64_t)jnum(need, "calls");
	{
		const cJSON *have = cJSON_GetObjectItemCaseSensitive(root, "have");

		q.have_usd = jnum(have, "usd");
		q.have_tokens = (int64_t)jnum(have, "tokens");
		q.have_calls = (int64_t)jnum(have, "calls");
	}
	q.release_usd = jnum(rel, "usd");
	q.release_tokens = (int64_t)jnum(rel, "tokens");
	q.release_calls = (int64_t)jnum(rel, "calls");
	token_prices(srv->opts.prices, jstr(root, "provider"), q.key.f[TT_SC_MODEL], &q.price_in,
		     &q.price_out);
	if (srv->opts.budget) {
		tt_budget_lease(srv->opts.budget, &q, tt_real_us(), &a);
	} else {
		memset(&a, 0, sizeof(a));
		a.allow = 1;
		a.usd = -1;
		a.tokens = a.calls = -1;
		a.ttl_ms = 30000;
	}
	tt_buf_init(&out, 8192);
	rc = tt_buf_printf(&out, "{\"allow\":%s,\"reason\":", a.allow ? "true" : "false");
	if (!rc)
		rc = a.allow ? tt_buf_adds(&out, "null,\"rule\":null")
			     : (tt_buf_adds(&out, "\"") || tt_buf_json_str(&out, a.reason, strlen(a.reason)) ||
				tt_buf_adds(&out, "\",\"rule\":\"") ||
				tt_buf_json_str(&out, a.rule, strlen(a.rule)) || tt_buf_adds(&out, "\""));
	if (!rc) rc = tt_buf_adds(&out, ",\"grant\":{");
	if (!rc) rc = num_or_null(&out, "usd", a.usd, 0);
	if (!rc) rc = tt_buf_adds(&out, ",");
	if (!rc) rc = num_or_null(&out, "tokens", (double)a.tokens, 1);
	if (!rc) rc = tt_buf_adds(&out, ",");
	if (!rc) rc = num_or_null(&out, "calls", (double)a.calls, 1);
	if (!rc) rc = tt_buf_adds(&out, "},\"price\":{");
	if (!rc) rc = num_or_null(&out, "input", q.price_in, 0);
	if (!rc) rc = tt_buf_adds(&out, ",");
	if (!rc) rc = num_or_null(&out, "output", q.price_out, 0);
	if (!rc) rc = tt_buf_printf(&out, "},\"ttl_ms\":%lld,\"max_output_tokens\":%lld}\n",
				     (long long)a.ttl_ms,
				     (long long)(srv->opts.budget
						 ? tt_budget_default_max_output(srv->opts.budget) : 4096));
	cJSON_Delete(root);
	if (rc) {
		tt_buf_free(&out);
		return MHD_NO;
	}
	return send_json(conn, MHD_HTTP_OK, &out);
}

static enum MHD_Result answer_alerts(struct tt_server *srv, struct MHD_Connection *conn)
{
	const char *lim = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "limit");
	long n = 1000;
	tt_buf out;

	if (lim) {
		char *end;

		errno = 0;
		n = strtol(lim, &end, 10);
		if (errno || *end || n < 1 || n > 100000)
			return send_error(conn, MHD_HTTP_BAD_REQUEST, "limit: expected 1 to 100000");
	}
	tt_buf_init(&out, 256u << 20);
	if (!srv->opts.alerts) {
		if (tt_buf_adds(&out, "{\"alerts\":[]}\n"))
			return MHD_NO;
	} else if (tt_alerts_list_json(srv->opts.alerts, (int)n, &out)) {
		tt_buf_free(&out);
		return send_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "alerts: out of memory");
	}
	return send_json(conn, MHD_HTTP_OK, &out);
}

/* POST /v1/probe: a node probe's counters (probestats.h). */
static enum MHD_Result answer_probe(struct tt_server *srv, struct MHD_Connection *conn,
				    struct req *r)
{
	char err[160];
	int rc;

	if (r->too_large)
		return send_error(conn, MHD_HTTP_CONTENT_TOO_LARGE, "body too large");
	rc = tt_probestats_put(srv->probes, r->body.data ? r->body.data : "", r->body.len,
			       tt_real_us(), err, sizeof(err));
	if (rc == TT_ETRUNCATED)
		return send_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, err);
	if (rc)
		return send_error(conn, MHD_HTTP_BAD_REQUEST, err);
	{
		tt_buf out;

		tt_buf_init(&out, 64);
		if (tt_buf_adds(&out, "{\"ok\":true}\n"))
			return MHD_NO;
		return send_json(conn, MHD_HTTP_OK, &out);
	}
}

static enum MHD_Result answer_get(struct tt_server *srv, struct MHD_Connection *conn,
				  enum route route)
{
	tt_buf out;

	switch (route) {
	case R_USAGE:
		return answer_usage(srv, conn);
	case R_VERDICT:
		return answer_verdict(srv, conn);
	case R_ALERTS:
		return answer_alerts(srv, conn);
	case R_METRICS:
		tt_buf_init(&out, 256u << 20);
		if (tt_metrics_render(srv->opts.metrics, srv->opts.store, &srv->cnt, &out) ||
		    tt_probestats_render(srv->probes, tt_real_us(), &out) ||
		    render_server(srv, &out)) {
			tt_buf_free(&out);
			return send_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
					  "metrics: out of memory");
		}
		return send_buf(conn, MHD_HTTP_OK, &out, "text/plain; version=0.0.4; charset=utf-8");
	case R_PROBE:
		tt_buf_init(&out, 16u << 20);
		if (tt_probestats_json(srv->probes, tt_real_us(), &out)) {
			tt_buf_free(&out);
			return send_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
					  "probe: out of memory");
		}
		return send_json(conn, MHD_HTTP_OK, &out);
	case R_HEALTHZ:
		tt_buf_init(&out, 256);
		if (tt_buf_printf(&out, "{\"status\":\"ok\",\"records\":%lld}\n",
				  (long long)tt_store_count(srv->opts.store)))
			return MHD_NO;
		return send_json(conn, MHD_HTTP_OK, &out);
	default:
		return send_error(conn, MHD_HTTP_NOT_FOUND, "not found");
	}
}

static int is_post_route(enum route route)
{
	return route == R_RECORDS || route == R_LEASE || route == R_PROBE;
}

static enum route route_of(const char *url)
{
	if (strcmp(url, "/v1/records") == 0)
		return R_RECORDS;
	if (strcmp(url, "/v1/usage") == 0)
		return R_USAGE;
	if (strcmp(url, "/v1/verdict") == 0)
		return R_VERDICT;
	if (strcmp(url, "/metrics") == 0)
		return R_METRICS;
	if (strcmp(url, "/healthz") == 0)
		return R_HEALTHZ;
	if (strcmp(url, "/v1/lease") == 0)
		return R_LEASE;
	if (strcmp(url, "/v1/alerts") == 0)
		return R_ALERTS;
	if (strcmp(url, "/v1/probe") == 0)
		return R_PROBE;
	return R_NONE;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
			       const char *method, const char *version, const char *upload_data,
			       size_t *upload_data_size, void **con_cls)
{
	struct listener *l = cls;
	struct tt_server *srv = l->srv;
	struct req *r = *con_cls;
	enum route route;

	if (!r) {
		const char *cl;
		int is_post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
		int is_get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
			     strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;

		/* First call: headers only.  Answers given here skip the body. */
		if (headers_done(l, conn))
			return send_busy(conn);
		route = route_of(url);
		if (route == R_NONE)
			return send_error(conn, MHD_HTTP_NOT_FOUND,
					  "not found; the API is POST /v1/records, POST /v1/lease, "
					  "POST /v1/probe, GET /v1/usage, /v1/verdict, /v1/alerts, /v1/probe, "
					  "/metrics, /healthz");
		/* GET /v1/probe reads what the probes posted */
		if (route == R_PROBE && is_get)
			return answer_get(srv, conn, route);
		if (is_post_route(route) && !is_post)
			return send_405(conn, "POST");
		if (!is_post_route(route) && !is_get)
			return send_405(conn, "GET, HEAD");
		if (l->tcp && srv->opts.token && route != R_HEALTHZ && !token_ok(srv, conn))
			return send_error(conn, MHD_HTTP_UNAUTHORIZED,
					  "missing or wrong bearer token");
		if (!is_post_route(route))
			return answer_get(srv, conn, route);
		{
			const char *ce = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
								     MHD_HTTP_HEADER_CONTENT_ENCODING);

			if (ce && strcasecmp(ce, "identity") != 0) {
				count(&srv->cnt.bad_requests, 1);
				return send_error(conn, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
						  "Content-Encoding not supported; send the records "
						  "uncompressed");
			}
		}
		cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						 MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl) {
			char *end;
			unsigned long long n;

			errno = 0;
			n = strtoull(cl, &end, 10);
			if (!errno && *end == '\0' && n > srv->opts.body_max) {
				char msg[128];

				count(&srv->cnt.bad_requests, 1);
				snprintf(msg, sizeof(msg),
					 "body larger than %zu bytes; send smaller batches",
					 srv->opts.body_max);
				return send_error(conn, MHD_HTTP_CONTENT_TOO_LARGE, msg);
			}
		}
		r = calloc(1, sizeof(*r));
		if (!r)
			return MHD_NO;
		r->route = route;
		r->start_us = tt_mono_us();
		tt_batch_init(&r->batch, route == R_RECORDS ? srv->opts.body_max : 0);
		tt_buf_init(&r->body, LEASE_BODY_MAX);
		*con_cls = r;
		return MHD_YES;
	}

	if (*upload_data_size) {
		size_t n = *upload_data_size;

		*upload_data_size = 0;
		/* MHD's timeout is per idle period: bound the whole body too (slowloris). */
		if (tt_mono_us() - r->start_us > (int64_t)srv->opts.timeout_s * 4 * 1000000)
			return MHD_NO;
		if (r->too_large)
			return MHD_YES;
		if (n > srv->opts.body_max - r->body_len) {
			r->too_large = 1;  /* read and drop the rest, then answer 413 */
			tt_batch_free(&r->batch);
			tt_batch_init(&r->batch, 0);
			return MHD_YES;
		}
		r->body_len += n;
		if (r->route != R_RECORDS) {
			if (tt_buf_add(&r->body, upload_data, n))
				r->too_large = 1;
			return MHD_YES;
		}
		tt_batch_feed(&r->batch, upload_data, n);
		return MHD_YES;
	}
	if (r->route == R_LEASE)
		return answer_lease(srv, conn, r);
	if (r->route == R_PROBE)
		return answer_probe(srv, conn, r);
	return answer_records(srv, conn, r);
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct req *r = *con_cls;

	request_done(cls, conn);
	if (!r)
		return;
	tt_batch_free(&r->batch);
	tt_buf_free(&r->body);
	free(r);
	*con_cls = NULL;
}

static int is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
	return 0;
}

static int bind_tcp(struct listener *l, const char *spec, int allow_remote, char *err,
		    size_t errlen)
{
	struct addrinfo hints = {0}, *ai = NULL;
	char host[256], shown[300], why[300];
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int port, fd = -1, one = 1, rc;
	tt_addr a;

	if (tt_addr_parse(spec, &a, why, sizeof(why)) || a.is_unix) {
		snprintf(err, errlen, "--listen %s: expected http://HOST:PORT (e.g. http://127.0.0.1:8377)",
			 spec);
		return TT_EINVAL;
	}
	snprintf(host, sizeof(host), "%s", a.host);
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	if (strcmp(host, "localhost") == 0)
		snprintf(host, sizeof(host), "127.0.0.1");
	else
		hints.ai_flags |= AI_NUMERICHOST;  /* no DNS: a name could point anywhere */
	rc = getaddrinfo(host, a.port, &hints, &ai);
	if (rc) {
		snprintf(err, errlen, "--listen %s: %s (use an IP address)", spec, gai_strerror(rc));
		return TT_EINVAL;
	}
	if (!allow_remote && !is_loopback(ai->ai_addr)) {
		snprintf(err, errlen,
			 "--listen %s: not a loopback address; add --allow-remote to listen there "
			 "(and consider --token-file)", spec);
		freeaddrinfo(ai);
		return TT_EINVAL;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto syserr;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ai->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 128) ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl))
		goto syserr;
	port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					      : ((struct sockaddr_in6 *)&ss)->sin6_port);
	if (ai->ai_family == AF_INET6)
		snprintf(shown, sizeof(shown), "http://[%s]:%d", host, port);
	else
		snprintf(shown, sizeof(shown), "http://%s:%d", host, port);
	freeaddrinfo(ai);
	l->fd = fd;
	l->tcp = 1;
	if (!l->srv->opts.quiet)
		printf("tokentapd: listening on %s\n", shown);
	return 0;
syserr:
	snprintf(err, errlen, "--listen %s: %s", spec, strerror(errno));
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
	return TT_EIO;
}

static int bind_unix(struct listener *l, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	char dir[sizeof(sa.sun_path)], *slash;
	int fd;
	mode_t old;

	if (!path[0] || strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "--listen unix:%s: path empty or longer than %zu bytes", path,
			 sizeof(sa.sun_path) - 1);
		return TT_EINVAL;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) && errno != EEXIST) {
			snprintf(err, errlen, "--listen unix:%s: cannot create %s: %s", path, dir,
				 strerror(errno));
			return TT_EIO;
		}
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto syserr;
	if (lstat(path, &st) == 0) {
		/* A socket left by a dead daemon is removed; a live one is not ours. */
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "--listen unix:%s: exists and is not a socket", path);
			close(fd);
			return TT_EINVAL;
		}
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			snprintf(err, errlen, "--listen unix:%s: another daemon is listening there",
				 path);
			close(fd);
			return TT_EINVAL;
		}
		close(fd);
		unlink(path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			goto syserr;
	}
	/* Owner and group may write records; nobody else (0660). */
	old = umask(0117);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		umask(old);
		goto syserr;
	}
	umask(old);
	chmod(path, 0660);
	if (listen(fd, 128))
		goto syserr;
	l->fd = fd;
	l->tcp = 0;
	snprintf(l->path, sizeof(l->path), "%s", path);
	if (!l->srv->opts.quiet)
		printf("tokentapd: listening on unix:%s\n", path);
	return 0;
syserr:
	snprintf(err, errlen, "--listen unix:%s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	return TT_EIO;
}

int tt_server_start(const struct tt_server_opts *opts, tt_server **out, char *err, size_t errlen)
{
	tt_server *srv = calloc(1, sizeof(*srv));
	int rc = 0;

	pthread_condattr_t ca;

	*out = NULL;
	if (!srv)
		return TT_ENOMEM;
	srv->opts = *opts;
	srv->probes = tt_probestats_new(0);
	if (!srv->probes) {
		free(srv);
		return TT_ENOMEM;
	}
	pthread_mutex_init(&srv->cmu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&srv->ccv, &ca);
	pthread_condattr_destroy(&ca);
	if (!srv->opts.body_max)
		srv->opts.body_max = BODY_MAX_DEFAULT;
	if (!srv->opts.timeout_s)
		srv->opts.timeout_s = 10;
	if (!srv->opts.header_timeout_s)
		srv->opts.header_timeout_s = srv->opts.timeout_s;
	if (!srv->opts.max_conns)
		srv->opts.max_conns = MAX_CONNS_DEFAULT;
	for (size_t i = 0; i < opts->nlisten && i < TT_SERVER_MAX_LISTEN; i++) {
		struct listener *l = &srv->l[srv->nl];
		const char *spec = opts->listen[i];

		l->srv = srv;
		l->fd = -1;
		l->spec = spec;
		if (strncmp(spec, "unix:", 5) == 0)
			rc = bind_unix(l, spec + 5, err, errlen);
		else if (strncmp(spec, "http://", 7) == 0)
			rc = bind_tcp(l, spec, opts->allow_remote, err, errlen);
		else {
			snprintf(err, errlen, "--listen %s: expected unix:/path.sock or "
				 "http://127.0.0.1:PORT", spec);
			rc = TT_EINVAL;
		}
		if (rc)
			goto fail;
		srv->nl++;
		l->mhd = MHD_start_daemon(
			MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
				MHD_USE_POLL,
			0, NULL, NULL, handler, l,
			MHD_OPTION_LISTEN_SOCKET, (MHD_socket)l->fd,
			MHD_OPTION_NOTIFY_COMPLETED, completed, l,
			MHD_OPTION_NOTIFY_CONNECTION, on_connection, l,
			MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)srv->opts.timeout_s,
			MHD_OPTION_CONNECTION_LIMIT,
			srv->opts.max_conns + reserve(srv->opts.max_conns),
			MHD_OPTION_THREAD_STACK_SIZE, (size_t)(1u << 20),
			/* Bigger read buffers: fewer, larger upload chunks per request. */
			MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(256u << 10),
			MHD_OPTION_END);
		if (!l->mhd) {
			snprintf(err, errlen, "--listen %s: cannot start the HTTP server", spec);
			rc = TT_EIO;
			goto fail;
		}
	}
	if (pthread_create(&srv->sweeper, NULL, sweep_main, srv)) {
		snprintf(err, errlen, "cannot start the connection sweeper");
		rc = TT_ENOMEM;
		goto fail;
	}
	srv->sweeping = 1;
	fflush(stdout);
	*out = srv;
	return 0;
fail:
	tt_server_stop(srv);
	return rc;
}

void tt_server_stop(tt_server *srv)
{
	if (!srv)
		return;
	if (srv->sweeping) {
		pthread_mutex_lock(&srv->cmu);
		srv->stop = 1;
		pthread_cond_signal(&srv->ccv);
		pthread_mutex_unlock(&srv->cmu);
		pthread_join(srv->sweeper, NULL);
	}
	for (size_t i = 0; i < srv->nl; i++) {
		struct listener *l = &srv->l[i];

		if (l->mhd)
			MHD_stop_daemon(l->mhd);  /* also closes the listening socket */
		else if (l->fd >= 0)
			close(l->fd);
		if (l->path[0])
			unlink(l->path);
	}
	tt_probestats_free(srv->probes);
	pthread_cond_destroy(&srv->ccv);
	pthread_mutex_destroy(&srv->cmu);
	free(srv);
}
