/*
 * feed.h - run one connection's bytes through a decoder in different
 * piece sizes and collect the records, so a test can require that the
 * records are the same however the bytes were cut.
 */
#ifndef TT_TEST_FEED_H
#define TT_TEST_FEED_H

#include <stddef.h>

#include "tokentap/decoder.h"

typedef enum feed_mode {
	FEED_WHOLE,    /* each direction in one piece */
	FEED_RANDOM,   /* random piece sizes, 1..max */
	FEED_BYTES,    /* one byte at a time */
} feed_mode;

#define FEED_MAX_RECORDS 64

typedef struct feed_result {
	tt_record rec[FEED_MAX_RECORDS];
	int n;
	int rc;         /* first error tt_decoder_feed returned, or 0 */
} feed_result;

/*
 * A transcript: the pieces of one connection in wire order; dir is who
 * wrote them.  The decoder is closed after the last piece.
 */
typedef struct feed_piece {
	tt_dir dir;
	const char *p;
	size_t n;
} feed_piece;

void feed_run(const tt_decoder_config *base, const feed_piece *pieces,
	      size_t npieces, feed_mode mode, unsigned seed, feed_result *out);

/*
 * Run the transcript whole, in random pieces (several seeds) and one byte
 * at a time.  out gets the whole-feed records.  Returns 0 when every mode
 * gave the same records, else -1 after printing the first difference.
 */
int feed_run_all(const tt_decoder_config *cfg, const feed_piece *pieces,
		 size_t npieces, feed_result *out);

/* The record as JSON without the fields that differ run to run (id, times). */
void feed_stable_json(const tt_record *rec, char *buf, size_t cap);

#endif
