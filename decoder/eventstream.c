/* eventstream.c - AWS event stream frames; see eventstream.h. */
#include <string.h>
#include <zlib.h>

#include "eventstream.h"
#include "tokentap/error.h"

#define PRELUDE_LEN 12
#define MIN_MESSAGE 16

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static uint32_t crc(const unsigned char *p, size_t n)
{
	return (uint32_t)crc32(0L, p, (uInt)n);
}

static void copy_str(char *dst, size_t cap, const unsigned char *p, size_t n)
{
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, p, n);
	dst[n] = '\0';
}

/* Walk the header block; only string values (type 7) are kept. */
static int parse_headers(const unsigned char *p, size_t n, tt_es_message *m)
{
	/* Sizes of the fixed-width value types 0..9; -1: length-prefixed. */
	static const int width[] = { 0, 0, 1, 2, 4, 8, -1, -1, 8, 16 };

	while (n) {
		size_t name_len = p[0];
		if (n < 1 + name_len + 1)
			return TT_EPROTO;
		const unsigned char *name = p + 1;
		unsigned type = p[1 + name_len];
		p += 2 + name_len;
		n -= 2 + name_len;
		if (type > 9)
			return TT_EPROTO;
		size_t vlen;
		const unsigned char *val = p;
		if (width[type] >= 0) {
			vlen = (size_t)width[type];
		} else {
			if (n < 2)
				return TT_EPROTO;
			vlen = (size_t)p[0] << 8 | p[1];
			val = p + 2;
			p += 2;
			n -= 2;
		}
		if (n < vlen)
			return TT_EPROTO;
		if (type == 7) {
			if (name_len == 11 && !memcmp(name, ":event-type", 11))
				copy_str(m->event_type, sizeof(m->event_type), val, vlen);
			else if (name_len == 13 && !memcmp(name, ":message-type", 13))
				copy_str(m->message_type, sizeof(m->message_type), val, vlen);
			else if (name_len == 15 && !memcmp(name, ":exception-type", 15))
				copy_str(m->exception_type, sizeof(m->exception_type), val, vlen);
		}
		p += vlen;
		n -= vlen;
	}
	return 0;
}

/* The 12-byte prelude: its CRC, and lengths that can be true. */
static int prelude_ok(const tt_eventstream *e, const unsigned char *m)
{
	uint32_t total = be32(m), hlen = be32(m + 4);

	return crc(m, 8) == be32(m + 8) && total >= MIN_MESSAGE &&
	       hlen <= total - MIN_MESSAGE && total <= e->frame.max;
}

/* Decode every complete message at the start of buf; returns bytes used. */
static size_t drain(tt_eventstream *e, const unsigned char *buf, size_t len)
{
	size_t used = 0;

	while (len - used >= PRELUDE_LEN) {
		const unsigned char *m = buf + used;
		uint32_t total = be32(m), hlen = be32(m + 4);

		if (!prelude_ok(e, m)) {
			e->error = TT_EPROTO;
			return used;
		}
		if (len - used < total)
			break;
		if (crc(m, total - 4) != be32(m + total - 4)) {
			e->error = TT_EPROTO;
			return used;
		}
		tt_es_message msg;
		memset(&msg, 0, sizeof(msg));
		if (parse_headers(m + PRELUDE_LEN, hlen, &msg) < 0) {
			e->error = TT_EPROTO;
			return used;
		}
		msg.payload = (const char *)m + PRELUDE_LEN + hlen;
		msg.payload_len = total - hlen - MIN_MESSAGE;
		e->fn(e->user, &msg);
		used += total;
	}
	return used;
}

void tt_eventstream_init(tt_eventstream *e, size_t max_frame, tt_es_fn fn,
			 void *user)
{
	memset(e, 0, sizeof(*e));
	tt_buf_init(&e->frame, max_frame);
	e->fn = fn;
	e->user = user;
}

int tt_eventstream_feed(tt_eventstream *e, const char *p, size_t n)
{
	while (n && !e->error) {
		if (e->frame.len == 0) {
			/* Decode straight from the caller's bytes when we can. */
			size_t used = drain(e, (const unsigned char *)p, n);
			p += used;
			n -= used;
			if (e->error || n == 0)
				break;
			/* A partial message remains; its prelude is valid. */
		}
		/* Complete the prelude first, then exactly one message. */
		size_t want = PRELUDE_LEN;
		if (e->frame.len >= PRELUDE_LEN)
			want = be32((const unsigned char *)e->frame.data);
		else if (e->frame.len + n >= PRELUDE_LEN && e->frame.len == 0)
			want = be32((const unsigned char *)p);
		size_t take = want - e->frame.len;
		if (take > n)
			take = n;
		if (tt_buf_add_trunc(&e->frame, p, take) < 0) {
			e->error = TT_EPROTO;
			break;
		}
		p += take;
		n -= take;
		/* Judge the prelude as soon as it is whole, however cut. */
		if (e->frame.len == PRELUDE_LEN && !prelude_ok(e, (const unsigned char *)e->frame.data)) {
			e->error = TT_EPROTO;
			break;
		}
		if (e->frame.len >= PRELUDE_LEN &&
		    e->frame.len == be32((const unsigned char *)e->frame.data)) {
			drain(e, (const unsigned char *)e->frame.data, e->frame.len);
			tt_buf_reset(&e->frame);
		}
	}
	return e->error;
}

int tt_eventstream_end(tt_eventstream *e)
{
	if (e->error)
		return e->error;
	return e->frame.len ? TT_ETRUNCATED : 0;
}

void tt_eventstream_free(tt_eventstream *e)
{
	tt_buf_free(&e->frame);
}
