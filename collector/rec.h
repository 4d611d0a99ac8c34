/*
 * rec.h - a record as the collector holds it: validated, compact, priced.
 *
 * The field list is one X-macro table (TT_REC_FIELDS) that drives JSON
 * validation, the SQLite columns and the statement bindings, so that the
 * three cannot drift apart.  Names and types are DESIGN.md's record table;
 * string caps are the sizes of include/tokentap/record.h minus the NUL.
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

enum tt_rec_type {
	TT_FT_STR,   /* string or null */
	TT_FT_INT,   /* non-negative integer or null */
	TT_FT_NUM,   /* non-negative finite number or null */
	TT_FT_BOOL,  /* true, false or null */
	TT_FT_TS,    /* RFC 3339 string, kept as microseconds since the epoch */
};

#define TT_RF_REQUIRED 0x1  /* must be present and not null */
#define TT_RF_HEX      0x2  /* exactly `max` hexadecimal characters */

#define TT__CAP(member) (sizeof(((tt_record *)0)->member) - 1)
#define TT__I53 ((int64_t)1 << 53)  /* integers beyond this lose precision in JSON */

/* X(ENUM, json name, type, max string length or max integer, flags, allowed values) */
#define TT_REC_FIELDS(X)                                                        \
	X(ID, id, TT_FT_STR, 32, TT_RF_REQUIRED | TT_RF_HEX, NULL)               \
	X(SOURCE, source, TT_FT_STR, TT__CAP(source), 0, tt_rec_enum_source)     \
	X(TS, ts, TT_FT_TS, 0, 0, NULL)                                          \
	X(TTFT_MS, ttft_ms, TT_FT_NUM, 0, 0, NULL)                               \
	X(DURATION_MS, duration_ms, TT_FT_NUM, 0, 0, NULL)                       \
	X(PID, pid, TT_FT_INT, INT32_MAX, 0, NULL)                               \
	X(TID, tid, TT_FT_INT, INT32_MAX, 0, NULL)                               \
	X(COMM, comm, TT_FT_STR, TT__CAP(comm), 0, NULL)                         \
	X(EXE, exe, TT_FT_STR, TT__CAP(exe), 0, NULL)                            \
	X(CGROUP, cgroup, TT_FT_STR, TT__CAP(cgroup), 0, NULL)                   \
	X(CONTAINER_ID, container_id, TT_FT_STR, TT__CAP(container_id), 0, NULL) \
	X(POD_UID, pod_uid, TT_FT_STR, TT__CAP(pod_uid), 0, NULL)                \
	X(HOST, host, TT_FT_STR, TT__CAP(host), 0, NULL)                         \
	X(METHOD, method, TT_FT_STR, TT__CAP(method), 0, NULL)                   \
	X(PATH, path, TT_FT_STR, TT__CAP(path), 0, NULL)                         \
	X(HTTP, http, TT_FT_STR, TT__CAP(http), 0, NULL)                         \
	X(STATUS, status, TT_FT_INT, 999, 0, NULL)                               \
	X(PROVIDER, provider, TT_FT_STR, TT__CAP(provider), 0, NULL)             \
	X(API, api, TT_FT_STR, TT__CAP(api), 0, NULL)                            \
	X(MODEL, model, TT_FT_STR, TT__CAP(model), 0, NULL)                      \
	X(REQUEST_MODEL, request_model, TT_FT_STR, TT__CAP(request_model), 0, NULL) \
	X(STREAM, stream, TT_FT_BOOL, 0, 0, NULL)                                \
	X(MAX_TOKENS, max_tokens, TT_FT_INT, TT__I53, 0, NULL)                   \
	X(INPUT_TOKENS, input_tokens, TT_FT_INT, TT__I53, 0, NULL)               \
	X(OUTPUT_TOKENS, output_tokens, TT_FT_INT, TT__I53, 0, NULL)             \
	X(CACHE_READ_TOKENS, cache_read_tokens, TT_FT_INT, TT__I53, 0, NULL)     \
	X(CACHE_WRITE_TOKENS, cache_write_tokens, TT_FT_INT, TT__I53, 0, NULL)   \
	X(REASONING_TOKENS, reasoning_tokens, TT_FT_INT, TT__I53, 0, NULL)       \
	X(USAGE_SOURCE, usage_source, TT_FT_STR, TT__CAP(usage_source), 0, tt_rec_enum_usage_source) \
	X(TASK, task, TT_FT_STR, TT__CAP(task), 0, NULL)                         \
	X(TENANT, tenant, TT_FT_STR, TT__CAP(tenant), 0, NULL)                   \
	X(FEATURE, feature, TT_FT_STR, TT__CAP(feature), 0, NULL)                \
	X(PROMPT_HASH, prompt_hash, TT_FT_STR, TT__CAP(prompt_hash), 0, NULL)    \
	X(PREFIX_HASH, prefix_hash, TT_FT_STR, TT__CAP(prefix_hash), 0, NULL)    \
	X(REQUEST_BYTES, request_bytes, TT_FT_INT, TT__I53, 0, NULL)             \
	X(RESPONSE_BYTES, response_bytes, TT_FT_INT, TT__I53, 0, NULL)           \
	X(ERROR, error, TT_FT_STR, TT__CAP(error), 0, NULL)                      \
	X(BLOCKED, blocked, TT_FT_BOOL, 0, 0, NULL)                              \
	X(SIDE, side, TT_FT_STR, TT__CAP(side), 0, tt_rec_enum_side)             \
	X(APP, app, TT_FT_STR, TT__CAP(app), 0, NULL)                            \
	X(TLS, tls, TT_FT_STR, TT__CAP(tls), 0, tt_rec_enum_tls)

enum tt_rec_field_id {
#define TT_REC_ENUM(e, name, type, max, flags, allowed) TT_F_##e,
	TT_REC_FIELDS(TT_REC_ENUM)
#undef TT_REC_ENUM
	TT_REC_NFIELDS
};

extern const char *const tt_rec_enum_source[];
extern const char *const tt_rec_enum_usage_source[];
extern const char *const tt_rec_enum_side[];
extern const char *const tt_rec_enum_tls[];

struct tt_rec_field {
	const char *name;              /* JSON key; also the SQL column (ts: ts_us) */
	enum tt_rec_type type;
	int64_t max;                   /* string: max bytes; int: max value */
	unsigned flags;
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
 * first value counts.  Allocation-free apart from the arena.
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
