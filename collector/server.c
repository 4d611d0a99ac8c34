/* server.c - tokentapd's HTTP API, see server.h. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
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

struct listener {
	struct tt_server *srv;
	struct MHD_Daemon *mhd;
	int fd;
	int tcp;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];  /* unix socket, or "" */
};

struct tt_server {
	struct tt_server_opts opts;
	struct listener l[TT_SERVER_MAX_LISTEN];
	size_t nl;
	struct tt_metrics_counters cnt;  /* updated with __atomic builtins */
	tt_probestats *probes;           /* POST /v1/probe, for /metrics */
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
		    tt_probestats_render(srv->probes, tt_real_us(), &out)) {
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

	*out = NULL;
	if (!srv)
		return TT_ENOMEM;
	srv->opts = *opts;
	srv->probes = tt_probestats_new(0);
	if (!srv->probes) {
		free(srv);
		return TT_ENOMEM;
	}
	if (!srv->opts.body_max)
		srv->opts.body_max = BODY_MAX_DEFAULT;
	if (!srv->opts.timeout_s)
		srv->opts.timeout_s = 10;
	for (size_t i = 0; i < opts->nlisten && i < TT_SERVER_MAX_LISTEN; i++) {
		struct listener *l = &srv->l[srv->nl];
		const char *spec = opts->listen[i];

		l->srv = srv;
		l->fd = -1;
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
			MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
			MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)srv->opts.timeout_s,
			MHD_OPTION_CONNECTION_LIMIT, (unsigned int)512,
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
	free(srv);
}
