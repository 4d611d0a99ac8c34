/* feed.c - split feeding of transcripts; see feed.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed.h"

static void collect(const tt_record *rec, void *user)
{
	feed_result *r = user;
	if (r->n < FEED_MAX_RECORDS)
		r->rec[r->n] = *rec;
	r->n++;
}

void feed_run(const tt_decoder_config *base, const feed_piece *pieces,
	      size_t npieces, feed_mode mode, unsigned seed, feed_result *out)
{
	tt_decoder_config cfg = *base;
	int64_t now = 1700000000000000LL;

	memset(out, 0, sizeof(*out));
	cfg.on_record = collect;
	cfg.user = out;
	tt_decoder *d = tt_decoder_new(&cfg);
	if (!d) {
		out->rc = TT_ENOMEM;
		return;
	}
	for (size_t i = 0; i < npieces; i++) {
		const char *p = pieces[i].p;
		size_t left = pieces[i].n;
		while (left) {
			size_t k = left;
			if (mode == FEED_BYTES)
				k = 1;
			else if (mode == FEED_RANDOM)
				k = 1 + (size_t)(rand_r(&seed) % (left < 700 ? left : 700));
			int rc = tt_decoder_feed(d, pieces[i].dir, p, k, now);
			if (rc < 0 && !out->rc)
				out->rc = rc;
			now += 10;
			p += k;
			left -= k;
		}
	}
	tt_decoder_close(d, now);
	tt_decoder_free(d);
}

void feed_stable_json(const tt_record *rec, char *buf, size_t cap)
{
	tt_record r = *rec;
	r.id[0] = '\0';
	r.ts_us = 0;
	r.ttft_ms = -1;
	r.duration_ms = -1;
	if (tt_record_to_json(&r, buf, cap) < 0)
		buf[0] = '\0';
}

int feed_run_all(const tt_decoder_config *cfg, const feed_piece *pieces,
		 size_t npieces, feed_result *out)
{
	char a[TT_RECORD_JSON_MAX], b[TT_RECORD_JSON_MAX];
	feed_result *other = malloc(sizeof(*other));
	int rc = 0;

	if (!other)
		return -1;
	feed_run(cfg, pieces, npieces, FEED_WHOLE, 1, out);
	for (unsigned seed = 0; seed < 12 && rc == 0; seed++) {
		feed_mode mode = seed == 11 ? FEED_BYTES : FEED_RANDOM;
		feed_run(cfg, pieces, npieces, mode, seed, other);
		if (other->n != out->n) {
			printf("split feed (seed %u): %d records, whole feed %d\n", seed,
			       other->n, out->n);
			rc = -1;
		}
		for (int i = 0; rc == 0 && i < out->n && i < FEED_MAX_RECORDS; i++) {
			feed_stable_json(&out->rec[i], a, sizeof(a));
			feed_stable_json(&other->rec[i], b, sizeof(b));
			if (strcmp(a, b) != 0) {
				printf("split feed (seed %u) differs:\n%s\n%s\n", seed, a, b);
				rc = -1;
			}
		}
	}
	free(other);
	return rc;
}
