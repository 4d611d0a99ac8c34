/* exchange.c - one request and its response, to one record; see exchange.h. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "body.h"
#include "common/buf.h"
#include "exchange.h"
#include "request.h"
#include "route.h"
#include "usage.h"

/* Bytes per token of the estimate (OpenAI's rule of thumb for English). */
#define EST_BYTES_PER_TOKEN 4

struct tt_exchange {
	const tt_decoder_config *cfg;
	tt_record rec;
	int server_side;
	int llm;
	int finished;

	/* request */
	char method[16];
	/* The request target until the headers end (the route needs the
	 * host too); longer targets are cut, their path is what matters. */
	char target[4096];
	size_t target_len;
	tt_route route;
	tt_coding req_coding;
	tt_decompress *req_dec;
	tt_buf req_body;
	uint64_t req_bytes;
	int req_ended;
	tt_request_info info;  /* read from the body once, when first needed */
	int info_done;
	int64_t t_start, t_req_end;

	/* response */
	int status;
	char content_type[128];
	tt_coding resp_coding;
	tt_usage usage;
	tt_body *body;
	int body_failed;       /* could not set up the pipeline */
	int64_t t_first;
};

tt_exchange *tt_exchange_new(const tt_decoder_config *cfg,
			     const char *http_version, int server_side,
			     int64_t now_us)
{
	tt_exchange *ex = calloc(1, sizeof(*ex));

	if (!ex)
		return NULL;
	ex->cfg = cfg;
	ex->server_side = server_side;
	ex->status = TT_NULL;
	ex->t_start = now_us;
	tt_record_init(&ex->rec);
	TT_RECORD_SET(&ex->rec, http, http_version, (size_t)-1);
	tt_buf_init(&ex->req_body, cfg->max_request_body);
	return ex;
}

void tt_exchange_free(tt_exchange *ex)
{
	if (!ex)
		return;
	tt_decompress_free(ex->req_dec);
	tt_buf_free(&ex->req_body);
	tt_body_free(ex->body);
	free(ex);
}

void tt_exchange_request_line(tt_exchange *ex, const char *method,
			      size_t method_len, const char *target,
			      size_t target_len)
{
	tt_record_set(ex->method, sizeof(ex->method), method, method_len);
	if (target_len >= sizeof(ex->target))
		target_len = sizeof(ex->target) - 1;
	memcpy(ex->target, target, target_len);
	ex->target[target_len] = '\0';
	ex->target_len = target_len;
}

static int name_is(const char *name, size_t len, const char *want)
{
	return len == strlen(want) && strncasecmp(name, want, len) == 0;
}

void tt_exchange_request_header(tt_exchange *ex, const char *name,
				size_t name_len, const char *value,
				size_t value_len)
{
	tt_record *r = &ex->rec;

	/* Only attribution headers and the host are kept: never credentials. */
	if (name_is(name, name_len, "host") || name_is(name, name_len, ":authority"))
		tt_record_set(r->host, sizeof(r->host), value, value_len);
	else if (name_is(name, name_len, "x-tokentap-task"))
		tt_record_set(r->task, sizeof(r->task), value, value_len);
	else if (name_is(name, name_len, "x-tokentap-tenant"))
		tt_record_set(r->tenant, sizeof(r->tenant), value, value_len);
	else if (name_is(name, name_len, "x-tokentap-feature"))
		tt_record_set(r->feature, sizeof(r->feature), value, value_len);
	else if (name_is(name, name_len, "content-encoding"))
		ex->req_coding = tt_coding_parse(value, value_len);
}

int tt_exchange_request_headers_done(tt_exchange *ex)
{
	if (!ex->target_len)
		return 0;
	ex->llm = tt_route_match(&ex->route, ex->method, ex->target,
				 ex->target_len, ex->rec.host[0] ? ex->rec.host : NULL);
	if (ex->llm) {
		TT_RECORD_SET(&ex->rec, method, ex->method, (size_t)-1);
		TT_RECORD_SET(&ex->rec, path, ex->target, strcspn(ex->target, "?#"));
		TT_RECORD_SET(&ex->rec, provider, ex->route.provider, (size_t)-1);
		TT_RECORD_SET(&ex->rec, api, ex->route.api, (size_t)-1);
		tt_usage_init(&ex->usage, ex->route.family);
	}
	return ex->llm;
}

static void on_request_decoded(void *user, const char *p, size_t n)
{
	tt_exchange *ex = user;
	tt_buf_add_trunc(&ex->req_body, p, n);
}

void tt_exchange_request_body(tt_exchange *ex, const void *data, size_t len)
{
	if (!ex->llm || len == 0)
		return;
	ex->req_bytes += len;
	if (ex->req_coding == TT_CODING_IDENTITY) {
		tt_buf_add_trunc(&ex->req_body, data, len);
		return;
	}
	/* Some SDKs compress large request bodies. */
	if (!ex->req_dec)
		ex->req_dec = tt_decompress_new(ex->req_coding, on_request_decoded, ex);
	if (ex->req_dec)
		tt_decompress_feed(ex->req_dec, data, len);
}

/* Parse the request body, once. */
static const tt_request_info *request_info(tt_exchange *ex)
{
	if (!ex->info_done) {
		if (ex->req_dec)
			tt_decompress_end(ex->req_dec);
		tt_request_parse(&ex->info, &ex->route,
				 ex->req_body.data ? ex->req_body.data : "",
				 ex->req_body.len);
		ex->info_done = 1;
	}
	return &ex->info;
}

/* The record's request-side fields, shared by on_request and the end. */
static void fill_request(tt_exchange *ex, tt_record *r, const tt_request_info *info)
{
	r->ts_us = ex->t_start;
	TT_RECORD_SET(r, request_model, info->model, (size_t)-1);
	r->max_tokens = info->max_tokens;
	TT_RECORD_SET(r, prompt_hash, info->prompt_hash, (size_t)-1);
	TT_RECORD_SET(r, prefix_hash, info->prefix_hash, (size_t)-1);
	r->request_bytes = (int64_t)ex->req_bytes;
	TT_RECORD_SET(r, side, ex->server_side ? "server" : "client", (size_t)-1);
}

static int request_stream(const tt_exchange *ex, const tt_request_info *info);

void tt_exchange_request_end(tt_exchange *ex, int64_t now_us)
{
	if (ex->req_ended)
		return;
	ex->req_ended = 1;
	ex->t_req_end = now_us;
	if (!ex->llm || ex->finished || !ex->cfg->on_request)
		return;
	const tt_request_info *info = request_info(ex);
	if (!info->parsed && !ex->req_body.truncated)
		return;
	tt_record r = ex->rec;
	fill_request(ex, &r, info);
	r.stream = request_stream(ex, info);
	TT_RECORD_SET(&r, model, info->model, (size_t)-1);
	ex->cfg->on_request(&r, ex->cfg->user);
}

void tt_exchange_response_status(tt_exchange *ex, int status, int64_t now_us)
{
	ex->status = status;
	if (!ex->t_first)
		ex->t_first = now_us;
}

void tt_exchange_response_header(tt_exchange *ex, const char *name,
				 size_t name_len, const char *value,
				 size_t value_len)
{
	if (!ex->llm)
		return;
	if (name_is(name, name_len, "content-type"))
		tt_record_set(ex->content_type, sizeof(ex->content_type), value,
			      value_len);
	else if (name_is(name, name_len, "content-encoding"))
		ex->resp_coding = tt_coding_parse(value, value_len);
	else
		tt_usage_header(&ex->usage, name, name_len, value, value_len);
}

/*
 * Streamed or not: the path says so, else the request body, else the
 * API's default.  A request body we could not read leaves it to the
 * response's framing.
 */
static int request_stream(const tt_exchange *ex, const tt_request_info *info)
{
	if (ex->route.stream_by_path)
		return ex->route.stream_by_path > 0;
	if (info->stream >= 0)
		return info->stream;
	if (!info->parsed)
		return ex->body ? tt_body_framing(ex->body) != TT_FRAMING_JSON
				: TT_TRI_NULL;
	return ex->route.stream_default;
}

void tt_exchange_response_headers_done(tt_exchange *ex)
{
	if (!ex->llm || ex->body || ex->body_failed)
		return;
	/* Ollama's streaming default needs the request to pick the framing;
	 * the request body has usually ended by now, but need not have. */
	int stream = ex->route.stream_by_path > 0 || ex->route.stream_default;
	tt_framing f = tt_framing_pick(ex->content_type, ex->route.family, stream);
	ex->body = tt_body_new(ex->cfg, &ex->usage, f, ex->resp_coding);
	if (!ex->body)
		ex->body_failed = 1;
}

void tt_exchange_response_body(tt_exchange *ex, const void *data, size_t len)
{
	if (ex->body)
		tt_body_feed(ex->body, data, len);
}

static int64_t estimate(uint64_t bytes)
{
	return (int64_t)((bytes + EST_BYTES_PER_TOKEN - 1) / EST_BYTES_PER_TOKEN);
}

static void fill_usage(tt_exchange *ex, const tt_request_info *info, int stream)
{
	tt_record *r = &ex->rec;
	tt_usage_result u;

	tt_usage_result_get(&ex->usage, &u);
	if (u.from_provider) {
		r->input_tokens = u.input;
		r->output_tokens = u.output;
		r->cache_read_tokens = u.cache_read;
		r->cache_write_tokens = u.cache_write;
		r->reasoning_tokens = u.reasoning;
		TT_RECORD_SET(r, usage_source, "provider", (size_t)-1);
	} else if (stream && ex->status >= 200 && ex->status < 300 &&
		   !ex->usage.provider_error) {
		/* A stream without usage (OpenAI without include_usage). */
		r->input_tokens = estimate(info->prompt_text_bytes);
		r->output_tokens = estimate(ex->usage.text_bytes);
		TT_RECORD_SET(r, usage_source, "estimated", (size_t)-1);
	} else {
		TT_RECORD_SET(r, usage_source, "none", (size_t)-1);
	}
}

static int looks_like_object(const tt_buf *b)
{
	for (size_t i = 0; i < b->len; i++) {
		char c = b->data[i];
		if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
			return c == '{';
	}
	return 0;
}

void tt_exchange_finish(tt_exchange *ex, const char *error, int64_t now_us)
{
	tt_record *r = &ex->rec;

	if (ex->finished)
		return;
	ex->finished = 1;
	if (!ex->llm || !ex->cfg->on_record)
		return;

	tt_request_info info = *request_info(ex);
	/* The body shape confirms the path: an LLM request is a JSON object.
	 * One that begins like one but does not parse is kept, marked. */
	int req_cut = ex->req_body.truncated || ex->req_body.oom ||
		      (ex->req_coding != TT_CODING_IDENTITY && !ex->req_dec);
	int req_unread = !info.parsed && looks_like_object(&ex->req_body);
	if (!info.parsed && !req_cut && !req_unread && ex->req_ended)
		return;

	if (ex->body)
		tt_body_end(ex->body);

	int stream = request_stream(ex, &info);
	fill_request(ex, r, &info);
	if (ex->t_first && ex->t_req_end && ex->t_first >= ex->t_req_end)
		r->ttft_ms = (double)(ex->t_first - ex->t_req_end) / 1000.0;
	else if (ex->t_first)
		r->ttft_ms = 0;
	if (now_us >= ex->t_start)
		r->duration_ms = (double)(now_us - ex->t_start) / 1000.0;
	r->status = ex->status;
	TT_RECORD_SET(r, model, ex->usage.model[0] ? ex->usage.model : info.model,
		      (size_t)-1);
	r->stream = stream;
	r->response_bytes = ex->body ? (int64_t)tt_body_decoded_bytes(ex->body) : 0;
	fill_usage(ex, &info, stream);

	/* A client may hang up once the stream's last event is in (Codex
	 * resets its HTTP/2 stream before the server's END_STREAM): the
	 * answer is whole, so that is no error. */
	const char *err = error;
	if (err && ex->usage.stream_done && ex->status >= 200 && ex->status < 300 &&
	    (!strcmp(err, "stream_reset") || !strcmp(err, "connection_closed")))
		err = NULL;
	if (!err && (req_cut || (ex->body && tt_body_truncated(ex->body))))
		err = "truncated";
	if (!err && (req_unread || ex->body_failed ||
		     (ex->body && tt_body_decode_error(ex->body))))
		err = "decode_error";
	/* An error inside a 2xx response (a stream that failed midway);
	 * a 4xx or 5xx already says so in its status. */
	if (!err && ex->usage.provider_error && ex->status >= 200 && ex->status < 300)
		err = "provider_error";
	TT_RECORD_SET(r, error, err, (size_t)-1);
	tt_record_new_id(r);
	ex->cfg->on_record(r, ex->cfg->user);
}

int tt_exchange_is_llm(const tt_exchange *ex)
{
	return ex->llm;
}
