/*
 * h2_build.h - build HTTP/2 connection transcripts for tests, with
 * nghttp2's own HPACK encoder so that header blocks are real HPACK
 * (dynamic table included), and feed them to a decoder in the three ways
 * every parser test uses: whole, in random splits, one byte at a time.
 *
 * A transcript is a list of segments in wire order, each the bytes one
 * side sent; the builder starts a new segment whenever the direction
 * changes and stamps it with a clock that moves 1 ms per segment, so a
 * feed of any split sees the same timestamp for the same byte.
 */
#ifndef TT_TEST_H2_BUILD_H
#define TT_TEST_H2_BUILD_H

#include <stddef.h>
#include <stdint.h>

#include <nghttp2/nghttp2.h>

typedef struct h2b_seg {
	int from_client;
	uint8_t *data;
	size_t len;
	int64_t at_us;
} h2b_seg;

typedef struct h2b {
	h2b_seg *segs;
	size_t nsegs, cap;
	int64_t clock_us;
	/*
	 * [1] the client's encoder, [0] the server's; each may use up to
	 * 64 KiB of table but starts at the protocol's 4096 until
	 * h2b_encoder_table() says otherwise.
	 */
	nghttp2_hd_deflater *enc[2];
} h2b;

/* Options for a header block. */
typedef struct h2b_hopts {
	int end_stream;
	unsigned pad;          /* PADDED with this many padding bytes, 0: none */
	int priority;          /* add the PRIORITY fields */
	size_t fragment;       /* cut the block into CONTINUATIONs of this size */
	uint32_t promised;     /* nonzero: a PUSH_PROMISE for this stream */
} h2b_hopts;

void h2b_init(h2b *b);
void h2b_free(h2b *b);

/* Force the next bytes into a new segment (a new read). */
void h2b_cut(h2b *b);

void h2b_raw(h2b *b, int from_client, const void *p, size_t n);
/* A segment of its own, stamped at_us (a captured read). */
void h2b_raw_at(h2b *b, int from_client, const void *p, size_t n,
		int64_t at_us);
void h2b_preface(h2b *b);
void h2b_frame(h2b *b, int from_client, uint8_t type, uint8_t flags,
	       uint32_t sid, const void *payload, size_t len);
/* ids/values: n SETTINGS entries. */
void h2b_settings(h2b *b, int from_client, const uint16_t *ids,
		  const uint32_t *values, size_t n);
void h2b_settings_ack(h2b *b, int from_client);
/* The HPACK encoder of side from_client obeys a new table size. */
void h2b_encoder_table(h2b *b, int from_client, size_t size);
/* Returns the length of the HPACK block it encoded. */
size_t h2b_headers(h2b *b, int from_client, uint32_t sid,
		   const nghttp2_nv *nv, size_t nvlen, const h2b_hopts *o);
/* DATA frames of at most max_frame payload bytes; pad applies to each. */
void h2b_data(h2b *b, int from_client, uint32_t sid, const void *p, size_t n,
	      int end_stream, unsigned pad, size_t max_frame);
void h2b_rst(h2b *b, int from_client, uint32_t sid, uint32_t code);
void h2b_goaway(h2b *b, int from_client, uint32_t last_sid, uint32_t code,
		const char *debug);
void h2b_ping(h2b *b, int from_client, int ack);
void h2b_window_update(h2b *b, int from_client, uint32_t sid, uint32_t incr);
void h2b_priority(h2b *b, int from_client, uint32_t sid);

/* Helpers for nghttp2_nv literals. */
#define H2B_NV(n, v)                                                      \
	{                                                                  \
		(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1,             \
			sizeof(v) - 1, NGHTTP2_NV_FLAG_NONE                \
	}

/*
 * Feed a transcript: feed(user, from_client, bytes, len, at_us) is called
 * in wire order.  mode 0: each run of one direction whole; mode 1: random
 * splits from seed; mode 2: one byte at a time.
 */
typedef int (*h2b_feed_fn)(void *user, int from_client, const uint8_t *p,
			   size_t n, int64_t at_us);
int h2b_play(const h2b *b, int mode, unsigned seed, h2b_feed_fn feed,
	     void *user);

/* A growable string list, for records as JSON lines. */
typedef struct h2b_lines {
	char **v;
	size_t n, cap;
} h2b_lines;
void h2b_lines_add(h2b_lines *l, const char *s);
void h2b_lines_free(h2b_lines *l);
/* Joined with '\n'; malloc'd. */
char *h2b_lines_join(const h2b_lines *l);

#endif
