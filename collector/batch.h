/*
 * batch.h - the body of POST /v1/records, parsed as it arrives.
 *
 * The body is either JSON Lines (one record object a line) or one JSON
 * array of record objects; the first byte that is not white space decides
 * ('[' means an array).  tt_batch_feed() takes the body in any split; each
 * record is validated (rec.h) as soon as its last byte arrives, so the
 * same body gives the same result fed whole or one byte at a time.
 *
 * A record that fails validation is rejected alone, with its line (and
 * index, for an array) and the reason; the other records of the batch are
 * kept.  A body whose framing is broken (an array that never closes, bytes
 * after the array) keeps the records that completed before the break and
 * says why in `fatal`.
 *
 *	tt_batch b;
 *	tt_batch_init(&b, 16 << 20);
 *	while (more) tt_batch_feed(&b, p, n);
 *	tt_batch_finish(&b);
 *	... b.recs[0 .. b.nrecs), strings in b.arena, b.rejects ...
 *	tt_batch_free(&b);
 */
#ifndef TT_COL_BATCH_H
#define TT_COL_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "rec.h"

#define TT_BATCH_RECORD_MAX (64 * 1024)  /* one record's JSON text */
#define TT_BATCH_REJECTS_KEPT 100        /* reasons kept; all are counted */
#define TT_BATCH_MAX_RECORDS 100000      /* records kept per batch (~35 MB at most) */

struct tt_batch_reject {
	uint32_t line;   /* 1-based line where the record starts */
	int64_t index;   /* 0-based array index, or -1 for JSON Lines */
	char error[112];
};

typedef struct tt_batch {
	/* results */
	tt_rec *recs;
	size_t nrecs;
	tt_buf arena;                 /* the strings of recs */
	struct tt_batch_reject *rejects;  /* the first TT_BATCH_REJECTS_KEPT */
	size_t nrejects;              /* kept */
	size_t nrejected;             /* all */
	char fatal[112];              /* framing error, "" if none */
	int oom;                      /* memory ran out: the batch is unusable */

	/* scanner state */
	int mode;                     /* 0 unknown, 1 lines, 2 array, 3 after array */
	int depth, in_str, esc, skipping;
	uint32_t line, elem_line;
	int64_t index;
	tt_buf elem;
	size_t cap_recs;
} tt_batch;

/* arena_max caps the bytes of all kept strings (the body cap is a good value). */
void tt_batch_init(tt_batch *b, size_t arena_max);
void tt_batch_free(tt_batch *b);

/* Returns 0, or TT_ENOMEM (then b->oom is set and further input is ignored). */
int tt_batch_feed(tt_batch *b, const char *p, size_t len);

/* Ends the body: completes a last line without '\n', checks the array closed. */
int tt_batch_finish(tt_batch *b);

/* Total records seen (kept + rejected). */
static inline size_t tt_batch_seen(const tt_batch *b)
{
	return b->nrecs + b->nrejected;
}

#endif
