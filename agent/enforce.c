/*
 * enforce.c - enforce mode's connection object: HTTP/1.1 until the first
 * bytes say HTTP/2 (enforce_h1.c, enforce_h2.c), the synthetic answer of
 * a blocked call, and what both protocols share; see enforce.h.
 *
 * The other files of enforce mode: enforce_h1.c (hold and decide,
 * HTTP/1.1), enforce_h2.c (decide before the write, HTTP/2), enforce_io.c
 * (send what was held, swap a refused connection's socket), enforce_err.c
 * (the OpenSSL error of a refused HTTP/2 write).
 */
#include "enforce.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/log.h"
#include "enforce_h1.h"
#include "enforce_h2.h"
#include "enforce_int.h"

int tt_enforce_on;
struct tt_enforce_hooks tt_enforce_hooks;
static int warn_block;

struct tt_enforce {
	struct tt_enforce_h1 h1;  /* its state says when the connection is HTTP/2 */
	struct tt_enforce_h2 h2;
};

void tt_enforce_setup(tt_enforce_key_fn key, tt_enforce_ship_fn ship, tt_enforce_sent_fn sent)
{
	tt_enforce_hooks.key = key;
	tt_enforce_hooks.ship = ship;
	tt_enforce_hooks.sent = sent;
}

void tt_enforce_set_feed(tt_enforce_feed_fn feed)
{
	tt_enforce_hooks.feed = feed;
}

tt_enforce *tt_enforce_new(void)
{
	tt_enforce *e = calloc(1, sizeof(*e));

	if (e)
		tt_enforce_h1_init(&e->h1);
	return e;
}

void tt_enforce_free(tt_enforce *e)
{
	if (!e)
		return;
	tt_enforce_h1_release(&e->h1);
	tt_enforce_h2_release(&e->h2);
	free(e);
}

static int is_h2(const tt_enforce *e)
{
	return e->h1.st == TT_ENFORCE_H1_H2;
}

int tt_enforce_write(tt_enforce *e, void *ssl, const void *buf, size_t len, long *ret)
{
	int rc;

	if (is_h2(e))
		return tt_enforce_h2_write(&e->h2, ssl, buf, len, ret);
	rc = tt_enforce_h1_write(&e->h1, ssl, buf, len, ret);
	if (rc == TT_ENFORCE_H1_TO_H2)
		rc = tt_enforce_h2_write(&e->h2, ssl, buf, len, ret);
	return rc;
}

void tt_enforce_sent(tt_enforce *e, size_t n)
{
	if (e && is_h2(e))
		tt_enforce_h2_sent(&e->h2, n);
}

void tt_enforce_request(tt_enforce *e, const tt_record *rec)
{
	/* HTTP/1.1 decides before its write; a server reads requests. */
	if (e && is_h2(e) && strcmp(rec->side, "server") != 0)
		tt_enforce_h2_request(&e->h2, rec);
}

int tt_enforce_read(tt_enforce *e, void *buf, size_t cap, size_t *got, int peek)
{
	return tt_enforce_h1_read(&e->h1, buf, cap, got, peek);
}

int tt_enforce_settle(tt_enforce *e, tt_record *rec)
{
	if (!e)
		return 0;
	if (is_h2(e))
		return tt_enforce_h2_settle(&e->h2, rec);
	tt_enforce_h1_settle(&e->h1, rec);
	return 0;
}

/* ---- what both protocols share ---------------------------------------------- */

long long tt_enforce_input_estimate(size_t body_len)
{
	/* English text averages about 4 bytes a token; JSON keys and quoting
	 * add bytes, not tokens.  Half of that is a ceiling for ordinary text
	 * (README: the bound assumes it). */
	return (long long)(body_len / 2) + 16;
}

void tt_enforce_key(tt_lease_key *k, const char *task, const char *tenant, const char *feature,
		    const char *model, const char *provider)
{
	memset(k, 0, sizeof(*k));
	if (tt_enforce_hooks.key)
		tt_enforce_hooks.key(k);
	if (task && task[0])
		tt_record_set(k->task, sizeof(k->task), task, (size_t)-1);
	if (tenant && tenant[0])
		tt_record_set(k->tenant, sizeof(k->tenant), tenant, (size_t)-1);
	if (feature && feature[0])
		tt_record_set(k->feature, sizeof(k->feature), feature, (size_t)-1);
	tt_record_set(k->model, sizeof(k->model), model ? model : "", (size_t)-1);
	tt_record_set(k->provider, sizeof(k->provider), provider ? provider : "", (size_t)-1);
}

void tt_enforce_mark_blocked(tt_record *rec)
{
	rec->input_tokens = rec->output_tokens = 0;
	TT_RECORD_SET(rec, usage_source, "none", 4);
	TT_RECORD_SET(rec, error, "blocked", 7);
	rec->blocked = 1;
}

void tt_enforce_ship_blocked(tt_record *rec, const tt_lease_key *k)
{
	if (!tt_enforce_hooks.ship)
		return;
	tt_enforce_mark_blocked(rec);
	TT_RECORD_SET(rec, model, k->model, (size_t)-1);
	TT_RECORD_SET(rec, task, k->task, (size_t)-1);
	TT_RECORD_SET(rec, tenant, k->tenant, (size_t)-1);
	TT_RECORD_SET(rec, feature, k->feature, (size_t)-1);
	rec->response_bytes = 0;
	tt_enforce_hooks.ship(rec);
}

void tt_enforce_warn_blocking(int verdict, const char *reason, const char *how)
{
	if (verdict == TT_LEASE_DENY)
		tt_log_once(&warn_block, TT_LOG_WARN, "enforce: blocking LLM calls: %s%s", reason,
			    how);
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
