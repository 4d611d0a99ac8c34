/*
 * rec.h - a record as the collector holds it: validated, compact, priced.
 *
 * The fields are the record's one list, TT_RECORD_FIELDS
 * (include/tokentap/record_fields.h), which the agent's writer and the
 * struct tt_record expand too: here it gives the field ids, the table that
 * drives JSON validation, and through it the SQLite columns and the
 * statement bindings (store.c), so that none of them can drift apart.
 *
 * A tt_rec does not own its strings: they live in an arena (a tt_buf) as
 * (offset, length) pairs, so a batch of many records costs the size of its
 * values and a fixed ~400 bytes per record, not a fixed 2.5 KB struct.
 */
#ifndef TT_COL_REC_H
#define TT_COL_REC_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "tokentap/record.h"
#include "tokentap/record_fields.h"

enum tt_rec_type {
	TT_FT_STR,   /* string or null */
	TT_FT_INT,   /* non-negative integer or null */
	TT_FT_NUM,   /* non-negative finite number or null */
	TT_FT_BOOL,  /* true, false or null */
	TT_FT_TS,    /* RFC 3339 string, kept as microseconds since the epoch */
};

/* The collector's type of each kind of field (record_fields.h). */
#define TT_REC_TYPE_STR   TT_FT_STR
#define TT_REC_TYPE_TS    TT_FT_TS
#define TT_REC_TYPE_MS    TT_FT_NUM
#define TT_REC_TYPE_INT64 TT_FT_INT
#define TT_REC_TYPE_INT   TT_FT_INT
#define TT_REC_TYPE_BOOL  TT_FT_BOOL
#define TT_REC_TYPE_FLAG  TT_FT_BOOL

/* tt_rec_field.max of each kind: a string's bytes without the NUL. */
#define TT_REC_MAX_STR(bound)   ((int64_t)(bound) - 1)
#define TT_REC_MAX_TS(bound)    0
#define TT_REC_MAX_MS(bound)    0
#define TT_REC_MAX_INT64(bound) ((int64_t)(bound))
#define TT_REC_MAX_INT(bound)   ((int64_t)(bound))
#define TT_REC_MAX_BOOL(bound)  0
#define TT_REC_MAX_FLAG(bound)  0

/* TT_F_ID, TT_F_SOURCE, ...: a field's index in tt_rec_fields and tt_rec.v. */
enum tt_rec_field_id {
#define TT_REC_ENUM(e, name, kind, bound, flags, allowed) TT_F_##e,
	TT_RECORD_FIELDS(TT_REC_ENUM)
#undef TT_REC_ENUM
	TT_REC_NFIELDS
};

struct tt_rec_field {
	const char *name;              /* JSON key */
	const char *column;            /* SQL column: the tt_record member (ts_us) */
	enum tt_rec_type type;
	int64_t max;                   /* string: max bytes; int: max value */
	unsigned flags;                /* TT_RF_REQUIRED, TT_RF_HEX */
	const char *const *allowed;    /* NULL-terminated, or NULL for any */
};

extern const struct tt_rec_field tt_rec_fields[TT_REC_NFIELDS];

typedef struct tt_rec {
	uint64_t null;  /* bit f set: field f is null */
	union {
		int64_t i;                              /* INT, BOOL (0/1), TS (µs) */
		double d;                               /* NUM */
		struct { uint32_t off, len; } s;        /* STR: bytes in the arena */
	} v[TT_REC_NFIELDS];
	/* Filled by tt_prices_apply(); cost_usd is meaningful only when priced. */
	int priced;
	double cost_usd;
	double cache_savings_usd;
} tt_rec;

static inline int tt_rec_is_null(const tt_rec *r, int f)
{
	return (int)((r->null >> f) & 1);
}

/* Integer value of f, or `dflt` when null. */
static inline int64_t tt_rec_int(const tt_rec *r, int f, int64_t dflt)
{
	return tt_rec_is_null(r, f) ? dflt : r->v[f].i;
}

/*
 * The string value of field f (not NUL-terminated: use *len), or NULL when
 * null.  The pointer is into `arena` and dies when the arena grows or is freed.
 */
const char *tt_rec_str(const tt_rec *r, int f, const tt_buf *arena, size_t *len);

/*
 * Parse and validate one record, the JSON text json[0 .. len) (an object;
 * surrounding white space allowed), and fill *out, copying its strings
 * into arena.  Keys not in the table are ignored (the record may grow) but
 * must be well-formed JSON; missing keys are null; of a repeated key the
 * first value counts.  A string holding U+0000 is refused ("model:
 * contains a NUL character"): C readers would cut it there.  Other control
 * characters are kept.  Allocation-free apart from the arena.
 * Returns 0; TT_EINVAL with "field: why" (or "malformed JSON at byte N of
 * the record") in err; or TT_ETRUNCATED / TT_ENOMEM when the arena cannot
 * take the strings.  On failure the arena is back to its length before.
 */
int tt_rec_parse(const char *json, size_t len, tt_buf *arena, tt_rec *out, char *err,
		 size_t errlen);

/*
 * Parse an RFC 3339 date-time ("2026-01-02T03:04:05.123456Z", any offset,
 * 0-9 fraction digits; a space instead of 'T' is accepted) into
 * microseconds since the epoch.  Returns 0 or TT_EINVAL.
 */
int tt_rec_parse_ts(const char *s, size_t len, int64_t *us);

/* Write µs since the epoch as RFC 3339 UTC with microseconds (27 bytes + NUL). */
void tt_rec_format_ts(int64_t us, char *buf, size_t cap);

#endif
