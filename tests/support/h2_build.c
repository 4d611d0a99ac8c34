/* h2_build.c - HTTP/2 transcripts for tests; see h2_build.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h2_build.h"

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p) {
		fputs("h2_build: out of memory\n", stderr);
		abort();
	}
	return p;
}

void h2b_init(h2b *b)
{
	memset(b, 0, sizeof(*b));
	b->clock_us = 1700000000000000LL;
	for (int i = 0; i < 2; i++)
		if (nghttp2_hd_deflate_new(&b->enc[i], 65536) != 0)
			abort();
}

void h2b_free(h2b *b)
{
	for (size_t i = 0; i < b->nsegs; i++)
		free(b->segs[i].data);
	free(b->segs);
	for (int i = 0; i < 2; i++)
		if (b->enc[i])
			nghttp2_hd_deflate_del(b->enc[i]);
	memset(b, 0, sizeof(*b));
}

void h2b_cut(h2b *b)
{
	if (b->nsegs > 0 && b->segs[b->nsegs - 1].len > 0)
		b->segs[b->nsegs - 1].from_client |= 2; /* closed */
}

void h2b_raw(h2b *b, int from_client, const void *p, size_t n)
{
	h2b_seg *s = b->nsegs ? &b->segs[b->nsegs - 1] : NULL;

	if (!s || s->from_client != from_client) {
		if (b->nsegs == b->cap) {
			b->cap = b->cap ? 2 * b->cap : 16;
			b->segs = xrealloc(b->segs, b->cap * sizeof(*b->segs));
		}
		s = &b->segs[b->nsegs++];
		memset(s, 0, sizeof(*s));
		s->from_client = from_client;
		b->clock_us += 1000;
		s->at_us = b->clock_us;
	}
	s->data = xrealloc(s->data, s->len + n);
	memcpy(s->data + s->len, p, n);
	s->len += n;
}

void h2b_raw_at(h2b *b, int from_client, const void *p, size_t n,
		int64_t at_us)
{
	h2b_cut(b);
	h2b_raw(b, from_client, p, n);
	b->segs[b->nsegs - 1].at_us = at_us;
	b->clock_us = at_us;
}

void h2b_preface(h2b *b)
{
	h2b_raw(b, 1, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
}

void h2b_frame(h2b *b, int from_client, uint8_t type, uint8_t flags,
	       uint32_t sid, const void *payload, size_t len)
{
	uint8_t hd[9] = {
		(uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len,
		type, flags,
		(uint8_t)(sid >> 24 & 0x7f), (uint8_t)(sid >> 16),
		(uint8_t)(sid >> 8), (uint8_t)sid,
	};
	h2b_raw(b, from_client, hd, sizeof(hd));
	if (len)
		h2b_raw(b, from_client, payload, len);
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

void h2b_settings(h2b *b, int from_client, const uint16_t *ids,
		  const uint32_t *values, size_t n)
{
	uint8_t *p = xrealloc(NULL, 6 * n);

	for (size_t i = 0; i < n; i++) {
		p[6 * i] = (uint8_t)(ids[i] >> 8);
		p[6 * i + 1] = (uint8_t)ids[i];
		put32(p + 6 * i + 2, values[i]);
	}
	h2b_frame(b, from_client, 0x4, 0, 0, p, 6 * n);
	free(p);
}

void h2b_settings_ack(h2b *b, int from_client)
{
	h2b_frame(b, from_client, 0x4, 0x1, 0, NULL, 0);
}

void h2b_encoder_table(h2b *b, int from_client, size_t size)
{
	if (nghttp2_hd_deflate_change_table_size(b->enc[from_client ? 1 : 0],
						 size) != 0)
		abort();
}

size_t h2b_headers(h2b *b, int from_client, uint32_t sid,
		   const nghttp2_nv *nv, size_t nvlen, const h2b_hopts *o)
{
	static const h2b_hopts none;
	nghttp2_hd_deflater *enc = b->enc[from_client ? 1 : 0];
	size_t bound, blen, pos = 0;
	uint8_t *block, *payload;
	ssize_t rv;

	if (!o)
		o = &none;
	bound = nghttp2_hd_deflate_bound(enc, nv, nvlen);
	block = xrealloc(NULL, bound);
	rv = nghttp2_hd_deflate_hd(enc, block, bound, nv, nvlen);
	if (rv < 0)
		abort();
	blen = (size_t)rv;

	/* First frame: HEADERS or PUSH_PROMISE with its optional fields. */
	size_t first = o->fragment && o->fragment < blen ? o->fragment : blen;
	size_t plen = first + (o->pad ? 1 + o->pad : 0) +
		      (o->priority ? 5 : 0) + (o->promised ? 4 : 0);
	payload = xrealloc(NULL, plen);
	uint8_t flags = 0, *q = payload;
	if (o->pad) {
		*q++ = (uint8_t)o->pad;
		flags |= 0x8;
	}
	if (o->priority && !o->promised) {
		put32(q, 3); /* depends on stream 3, exclusive bit clear */
		q[4] = 15;
		q += 5;
		flags |= 0x20;
	}
	if (o->promised) {
		put32(q, o->promised);
		q += 4;
	}
	memcpy(q, block, first);
	q += first;
	if (o->pad) {
		memset(q, 0, o->pad);
		q += o->pad;
	}
	pos = first;
	if (pos == blen)
		flags |= 0x4;
	if (o->end_stream && !o->promised)
		flags |= 0x1;
	h2b_frame(b, from_client, o->promised ? 0x5 : 0x1, flags, sid, payload,
		  (size_t)(q - payload));
	while (pos < blen) {
		size_t k = blen - pos < o->fragment ? blen - pos : o->fragment;
		h2b_frame(b, from_client, 0x9, pos + k == blen ? 0x4 : 0, sid,
			  block + pos, k);
		pos += k;
	}
	free(payload);
	free(block);
	return blen;
}

void h2b_data(h2b *b, int from_client, uint32_t sid, const void *p, size_t n,
	      int end_stream, unsigned pad, size_t max_frame)
{
	const uint8_t *src = p;
	size_t pos = 0;

	if (!max_frame)
		max_frame = 16384;
	do {
		size_t room = max_frame - (pad ? 1 + pad : 0);
		size_t k = n - pos < room ? n - pos : room;
		uint8_t *payload = xrealloc(NULL, k + 1 + pad);
		uint8_t *q = payload, flags = 0;

		if (pad) {
			*q++ = (uint8_t)pad;
			flags |= 0x8;
		}
		if (k)
			memcpy(q, src + pos, k);
		q += k;
		if (pad) {
			memset(q, 0, pad);
			q += pad;
		}
		pos += k;
		if (pos == n && end_stream)
			flags |= 0x1;
		h2b_frame(b, from_client, 0x0, flags, sid, payload,
			  (size_t)(q - payload));
		free(payload);
	} while (pos < n);
}

void h2b_rst(h2b *b, int from_client, uint32_t sid, uint32_t code)
{
	uint8_t p[4];

	put32(p, code);
	h2b_frame(b, from_client, 0x3, 0, sid, p, 4);
}

void h2b_goaway(h2b *b, int from_client, uint32_t last_sid, uint32_t code,
		const char *debug)
{
	size_t dl = debug ? strlen(debug) : 0;
	uint8_t *p = xrealloc(NULL, 8 + dl);

	put32(p, last_sid);
	put32(p + 4, code);
	if (dl)
		memcpy(p + 8, debug, dl);
	h2b_frame(b, from_client, 0x7, 0, 0, p, 8 + dl);
	free(p);
}

void h2b_ping(h2b *b, int from_client, int ack)
{
	h2b_frame(b, from_client, 0x6, ack ? 1 : 0, 0, "tokentap", 8);
}

void h2b_window_update(h2b *b, int from_client, uint32_t sid, uint32_t incr)
{
	uint8_t p[4];

	put32(p, incr);
	h2b_frame(b, from_client, 0x8, 0, sid, p, 4);
}

void h2b_priority(h2b *b, int from_client, uint32_t sid)
{
	uint8_t p[5] = { 0, 0, 0, 0, 16 };

	h2b_frame(b, from_client, 0x2, 0, sid, p, 5);
}

/* xorshift: deterministic, so a failing seed can be replayed. */
static unsigned next_rand(unsigned *s)
{
	unsigned x = *s ? *s : 0x9e3779b9u;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*s = x;
	return x;
}

int h2b_play(const h2b *b, int mode, unsigned seed, h2b_feed_fn feed,
	     void *user)
{
	for (size_t i = 0; i < b->nsegs; i++) {
		const h2b_seg *s = &b->segs[i];
		int fc = s->from_client & 1;
		size_t pos = 0;

		while (pos < s->len) {
			size_t k = s->len - pos;
			if (mode == 2)
				k = 1;
			else if (mode == 1)
				k = 1 + next_rand(&seed) % (k < 64 ? k : 64);
			int rc = feed(user, fc, s->data + pos, k, s->at_us);
			if (rc)
				return rc;
			pos += k;
		}
	}
	return 0;
}

void h2b_lines_add(h2b_lines *l, const char *s)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 8;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n++] = strdup(s);
}

void h2b_lines_free(h2b_lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

char *h2b_lines_join(const h2b_lines *l)
{
	size_t total = 1;
	char *out, *q;

	for (size_t i = 0; i < l->n; i++)
		total += strlen(l->v[i]) + 1;
	out = q = xrealloc(NULL, total);
	for (size_t i = 0; i < l->n; i++) {
		size_t k = strlen(l->v[i]);
		memcpy(q, l->v[i], k);
		q += k;
		*q++ = '\n';
	}
	*q = '\0';
	return out;
}
