/*
 * conns.c - the connection table: hash on (tgid, ssl), LRU list for
 * eviction, position checks in front of each decoder.
 */
#include <stdlib.h>
#include <string.h>

#include "conns.h"
#include "tokentap/error.h"

#define CONNS_DEFAULT_MAX 16384
#define CONNS_BUCKETS 4096 /* power of two */

struct conn {
	tt_conns *owner;
	tt_conn_info ci;
	tt_decoder *dec;
	uint64_t next[2];   /* expected stream offset per direction */
	int known[2];       /* next[] is meaningful */
	int marking;        /* records delivered now get "truncated" */
	int had_gap;        /* bytes were lost on this connection once */
	int resync;         /* after a gap: wait for a request to begin */
	int skipped;        /* no LLM traffic: decoder gone, bytes dropped */
	struct conn *hnext; /* hash chain */
	struct conn *prev, *lnext; /* LRU list, most recent first */
};

struct tt_conns {
	tt_conns_record_fn fn;
	void *user;
	size_t max;
	tt_decoder_config dcfg;
	tt_conns_skip_fn skip_fn;
	void *skip_user;
	struct conn *buckets[CONNS_BUCKETS];
	struct conn *head, *tail;
	tt_conns_stats st;
};

static size_t bucket_of(uint32_t tgid, uint64_t ssl)
{
	uint64_t h = (ssl ^ ((uint64_t)tgid << 32) ^ tgid) * 0x9e3779b97f4a7c15ull;

	return (size_t)(h >> 52) & (CONNS_BUCKETS - 1);
}

static void lru_unlink(tt_conns *c, struct conn *k)
{
	if (k->prev)
		k->prev->lnext = k->lnext;
	else
		c->head = k->lnext;
	if (k->lnext)
		k->lnext->prev = k->prev;
	else
		c->tail = k->prev;
	k->prev = k->lnext = NULL;
}

static void lru_push(tt_conns *c, struct conn *k)
{
	k->prev = NULL;
	k->lnext = c->head;
	if (c->head)
		c->head->prev = k;
	c->head = k;
	if (!c->tail)
		c->tail = k;
}

static void on_decoded(const tt_record *rec, void *user)
{
	struct conn *k = user;
	tt_conns *c = k->owner;
	tt_record copy = *rec;

	if (k->marking)
		TT_RECORD_SET(&copy, error, "truncated", (size_t)-1);
	c->st.records++;
	if (copy.error[0] && strcmp(copy.error, "truncated") == 0)
		c->st.truncated++;
	if (c->fn)
		c->fn(&copy, &k->ci, c->user);
}

/*
 * Could these bytes begin a request?  An HTTP/1.x request line starts with
 * a method token, "uppercase letters then SP" in practice (RFC 9112
 * section 3), HTTP/2 with the client preface (RFC 9113 section 3.4).  A
 * short piece counts when it is a prefix of either.
 */
static int request_start(const unsigned char *p, size_t n)
{
	static const char pri[] = "PRI * HTTP/2.0";
	size_t i;

	if (n && memcmp(p, pri, n < 14 ? n : 14) == 0)
		return 1;
	for (i = 0; i < n && i < 12; i++) {
		if (p[i] == ' ')
			return i >= 3;
		if (p[i] < 'A' || p[i] > 'Z')
			return 0;
	}
	return n > 0 && i < 12;
}

static int conn_new_decoder(tt_conns *c, struct conn *k)
{
	tt_decoder_config cfg = c->dcfg;

	cfg.on_record = on_decoded;
	cfg.user = k;
	k->dec = tt_decoder_new(&cfg);
	return k->dec ? 0 : TT_ENOMEM;
}

/* Close the decoder: pending exchanges come out, marked when lossy. */
static void conn_close_decoder(struct conn *k, int lossy, int64_t now_us)
{
	if (!k->dec)
		return;
	k->marking = lossy;
	tt_decoder_close(k->dec, now_us);
	k->marking = 0;
	tt_decoder_free(k->dec);
	k->dec = NULL;
}

static void conn_destroy(tt_conns *c, struct conn *k, int lossy,
			 int64_t now_us)
{
	struct conn **pp = &c->buckets[bucket_of(k->ci.tgid, k->ci.ssl)];

	while (*pp && *pp != k)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = k->hnext;
	lru_unlink(c, k);
	c->st.live--;
	conn_close_decoder(k, lossy, now_us);
	free(k);
}

tt_conns *tt_conns_new(tt_conns_record_fn fn, void *user, size_t max_conns,
		       const tt_decoder_config *dcfg)
{
	tt_conns *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->fn = fn;
	c->user = user;
	c->max = max_conns ? max_conns : CONNS_DEFAULT_MAX;
	if (dcfg)
		c->dcfg = *dcfg;
	else
		tt_decoder_config_init(&c->dcfg);
	return c;
}

void tt_conns_end_all(tt_conns *c, int64_t now_us)
{
	if (!c)
		return;
	while (c->head) {
		c->st.closed++;
		conn_destroy(c, c->head, 0, now_us);
	}
}

void tt_conns_free(tt_conns *c, int64_t now_us)
{
	if (!c)
		return;
	tt_conns_end_all(c, now_us);
	free(c);
}

static struct conn *conn_find(tt_conns *c, uint32_t tgid, uint64_t ssl)
{
	struct conn *k = c->buckets[bucket_of(tgid, ssl)];

	while (k && !(k->ci.tgid == tgid && k->ci.ssl == ssl))
		k = k->hnext;
	return k;
}

int tt_conns_data(tt_conns *c, const tt_conn_info *ci, tt_dir dir,
		  uint64_t pos, const void *data, size_t len, int64_t now_us)
{
	struct conn *k;
	int d = dir == TT_DIR_RECV ? 1 : 0;

	if (!c || !ci || (!data && len))
		return TT_EINVAL;
	k = conn_find(c, ci->tgid, ci->ssl);
	if (!k) {
		size_t b;

		if (c->st.live >= c->max && c->tail) {
			c->st.evicted++;
			conn_destroy(c, c->tail, 1, now_us);
		}
		k = calloc(1, sizeof(*k));
		if (!k)
			return TT_ENOMEM;
		k->owner = c;
		k->ci = *ci;
		if (conn_new_decoder(c, k) < 0) {
			free(k);
			return TT_ENOMEM;
		}
		/*
		 * First sight at offset 0: we saw the connection begin, so the
		 * other direction starts at 0 too.  Later than 0: the probe
		 * came up during the connection; take what comes.
		 */
		if (pos == 0)
			k->known[0] = k->known[1] = 1;
		b = bucket_of(ci->tgid, ci->ssl);
		k->hnext = c->buckets[b];
		c->buckets[b] = k;
		lru_push(c, k);
		c->st.opened++;
		c->st.live++;
	} else {
		lru_unlink(c, k);
		lru_push(c, k);
		k->ci.tid = ci->tid;
		k->ci.cgroup_id = ci->cgroup_id;
	}

	if (k->skipped) {
		/* in flight before the kernel side knew, or its entry aged out */
		c->st.skip_late++;
		if (pos + len > k->next[d])
			k->next[d] = pos + len;
		k->known[d] = 1;
		if (c->skip_fn)
			c->skip_fn(k->ci.tgid, k->ci.ssl, 1, c->skip_user);
		return 0;
	}
	if (k->known[d] && pos != k->next[d]) {
		if (pos < k->next[d] && pos + len <= k->next[d])
			return 0; /* already seen */
		/*
		 * Lost bytes: what is open is partial.  A fresh decoder takes
		 * over from the next request that begins (the rest of the
		 * message in flight would only confuse it); the other
		 * direction's offset stays valid.
		 */
		c->st.gaps++;
		conn_close_decoder(k, 1, now_us);
		k->had_gap = 1;
		k->resync = 1;
	}
	k->known[d] = 1;
	k->next[d] = pos + len;
	if (k->resync) {
		if (!request_start(data, len))
			return 0;
		k->resync = 0;
	}
	if (!k->dec && conn_new_decoder(c, k) < 0)
		return TT_ENOMEM;
	if (len)
		tt_decoder_feed(k->dec, dir, data, len, now_us);
	if (!tt_decoder_is_idle(k->dec))
		return 0;
	if (k->had_gap) {
		/* a false start after a gap: wait for the next one */
		conn_close_decoder(k, 1, now_us);
		k->resync = 1;
		return 0;
	}
	/*
	 * Seen without a gap and given up by the decoder: nothing of an LLM
	 * call can follow (the decoder's choice), so stop paying for it.
	 */
	conn_close_decoder(k, 0, now_us);
	k->skipped = 1;
	c->st.skipped++;
	if (c->skip_fn)
		c->skip_fn(k->ci.tgid, k->ci.ssl, 1, c->skip_user);
	return 0;
}

void tt_conns_end(tt_conns *c, uint32_t tgid, uint64_t ssl,
		  uint64_t sent_end, uint64_t recv_end, int64_t now_us)
{
	struct conn *k;
	int lossy = 0;

	if (!c)
		return;
	k = conn_find(c, tgid, ssl);
	if (!k)
		return;
	/* a skipped connection has nothing left to mark */
	if (!k->skipped && ((k->known[0] && sent_end > k->next[0]) ||
			    (k->known[1] && recv_end > k->next[1]))) {
		c->st.gaps++;
		lossy = 1;
	}
	c->st.closed++;
	conn_destroy(c, k, lossy, now_us);
}

void tt_conns_end_tgid(tt_conns *c, uint32_t tgid, int64_t now_us)
{
	struct conn *k, *nx;

	if (!c)
		return;
	for (k = c->head; k; k = nx) {
		nx = k->lnext;
		if (k->ci.tgid == tgid) {
			if (k->skipped && c->skip_fn)
				c->skip_fn(tgid, k->ci.ssl, 0, c->skip_user);
			c->st.closed++;
			conn_destroy(c, k, 0, now_us);
		}
	}
}

void tt_conns_set_skip(tt_conns *c, tt_conns_skip_fn fn, void *user)
{
	if (!c)
		return;
	c->skip_fn = fn;
	c->skip_user = user;
}

void tt_conns_get_stats(const tt_conns *c, tt_conns_stats *st)
{
	if (c && st)
		*st = c->st;
}
