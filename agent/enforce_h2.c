/* enforce_h2.c - check HTTP/2 requests before their write leaves; see enforce_h2.h. */
#include "enforce_h2.h"

#include <string.h>

#include "common/log.h"
#include "enforce_int.h"

static int same_request(const struct tt_enforce_h2_pend *p, const tt_record *rec)
{
	return p->ts_us == rec->ts_us && p->request_bytes == rec->request_bytes &&
	       strcmp(p->prompt_hash, rec->prompt_hash) == 0;
}

static void pend_remove(struct tt_enforce_h2 *h, int i)
{
	memmove(&h->pend[i], &h->pend[i + 1], sizeof(h->pend[0]) * (size_t)(h->npend - i - 1));
	h->npend--;
}

static void pend_add(struct tt_enforce_h2 *h, const tt_record *rec, enum tt_enforce_h2_kind kind,
		     const tt_reservation *r)
{
	struct tt_enforce_h2_pend *p;

	if (h->npend == TT_ENFORCE_H2_PENDING) {
		/* Records lag far behind: keep the oldest as spent. */
		tt_lease_settle(&h->pend[0].r, -1, -1);
		pend_remove(h, 0);
	}
	p = &h->pend[h->npend++];
	memset(p, 0, sizeof(*p));
	p->ts_us = rec->ts_us;
	p->request_bytes = rec->request_bytes;
	memcpy(p->prompt_hash, rec->prompt_hash, sizeof(p->prompt_hash));
	p->kind = kind;
	p->write_no = h->write_no;
	if (r)
		p->r = *r;
}

void tt_enforce_h2_release(struct tt_enforce_h2 *h)
{
	for (int i = 0; i < h->npend; i++)
		tt_lease_settle(&h->pend[i].r, -1, -1);
	h->npend = 0;
}

/* The request-side record of a refused call, shipped at once: the call
 * has no response to wait for. */
static void blocked_record(const tt_record *req, const tt_lease_key *k)
{
	tt_record rec = *req;

	rec.id[0] = '\0';
	rec.status = TT_NULL;  /* no response: the write failed */
	rec.ttft_ms = rec.duration_ms = -1;
	tt_enforce_ship_blocked(&rec, k);
}

/* The write being fed is refused: remember why, say so, and what it
 * carried does not leave, the requests allowed earlier in it included. */
static void refuse(struct tt_enforce_h2 *h, const tt_record *rec, const tt_lease_key *k,
		   int verdict, const char *reason, const char *rule)
{
	h->refused = 1;
	tt_record_set(h->rule, sizeof(h->rule), rule, (size_t)-1);
	tt_record_set(h->task, sizeof(h->task), k->task, (size_t)-1);
	tt_record_set(h->reason, sizeof(h->reason), reason, (size_t)-1);
	tt_enforce_warn_blocking(verdict, reason,
				 " (on HTTP/2 the call's write fails, and the connection with it)");
	tt_log(TT_LOG_INFO, "enforce: blocked %s %s over HTTP/2, its write fails (task %s): %s",
	       rec->method, rec->path, k->task[0] ? k->task : "-", reason);
	for (int i = 0; i < h->npend; i++) {
		if (h->pend[i].kind == TT_ENFORCE_H2_LIVE && h->pend[i].write_no == h->write_no) {
			tt_lease_settle(&h->pend[i].r, 0, 0);
			h->pend[i].kind = TT_ENFORCE_H2_MARK;
		}
	}
}

void tt_enforce_h2_request(struct tt_enforce_h2 *h, const tt_record *rec)
{
	tt_lease_key k;
	tt_reservation r;
	char reason[384], rule[64];
	int v;

	/* Only requests of a write of ours not sent yet. */
	if (!h->feeding)
		return;
	tt_enforce_key(&k, rec->task, rec->tenant, rec->feature,
		       rec->request_model[0] ? rec->request_model : rec->model, rec->provider);
	if (h->refused) {
		/* A second request in the write being refused: it does not
		 * leave either. */
		blocked_record(rec, &k);
		pend_add(h, rec, TT_ENFORCE_H2_DROP, NULL);
		return;
	}
	v = tt_lease_reserve(&k, tt_enforce_input_estimate((size_t)(rec->request_bytes > 0
								    ? rec->request_bytes : 0)),
			     rec->max_tokens > 0 ? rec->max_tokens : -1, &r, reason, sizeof(reason),
			     rule, sizeof(rule));
	if (v == TT_LEASE_ALLOW) {
		pend_add(h, rec, TT_ENFORCE_H2_LIVE, &r);
		return;
	}
	refuse(h, rec, &k, v, reason, rule);
	blocked_record(rec, &k);
	pend_add(h, rec, TT_ENFORCE_H2_DROP, NULL);
}

static int fail_write(struct tt_enforce_h2 *h, long *ret)
{
	tt_enforce_raise(h->rule, h->task, h->reason);
	*ret = -1;
	return TT_ENFORCE_DONE;
}

/*
 * Feed what the decoder has not seen of this write.  A write that failed
 * (WANT_WRITE) is retried by the caller with the same bytes, and a partial
 * one continues with the rest: either way the write starts where the
 * last one sent ended, and its first `ahead` bytes were fed already.
 */
int tt_enforce_h2_write(struct tt_enforce_h2 *h, void *ssl, const char *p, size_t len, long *ret)
{
	if (h->refused)
		return fail_write(h, ret);
	if (len > h->ahead && tt_enforce_hooks.feed) {
		h->write_no++;
		h->feeding = 1;
		tt_enforce_hooks.feed(ssl, p + h->ahead, len - h->ahead);
		h->feeding = 0;
		h->ahead = len;
	}
	if (h->refused)
		return fail_write(h, ret);
	return TT_ENFORCE_PREFED;
}

void tt_enforce_h2_sent(struct tt_enforce_h2 *h, size_t n)
{
	h->ahead = n < h->ahead ? h->ahead - n : 0;
}

int tt_enforce_h2_settle(struct tt_enforce_h2 *h, tt_record *rec)
{
	for (int i = 0; i < h->npend; i++) {
		enum tt_enforce_h2_kind kind = h->pend[i].kind;

		if (!same_request(&h->pend[i], rec))
			continue;
		if (kind == TT_ENFORCE_H2_LIVE)
			tt_lease_settle(&h->pend[i].r, rec->input_tokens, rec->output_tokens);
		pend_remove(h, i);
		if (kind == TT_ENFORCE_H2_MARK)
			tt_enforce_mark_blocked(rec);
		return kind == TT_ENFORCE_H2_DROP;
	}
	return 0;  /* a request the decoder could not read: nothing reserved */
}
