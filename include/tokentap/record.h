/*
 * record.h - one LLM exchange, as DESIGN.md's record describes it.
 *
 * The record is a plain struct of fixed-size fields so that the decoder,
 * the agent and the probe loader can fill it without allocating.  Strings
 * that do not fit are cut at a UTF-8 boundary.  "Absent" is an empty string
 * for strings, TT_NULL for numbers and TT_TRI_NULL for booleans; the JSON
 * writer turns each of them into null.
 *
 * The fields are those of record_fields.h, which this struct, the writer
 * (common/record.c) and the collector all expand.
 */
#ifndef TOKENTAP_RECORD_H
#define TOKENTAP_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "tokentap/record_fields.h"

#define TT_NULL (-1)     /* an absent integer field */
#define TT_TRI_NULL (-1) /* an absent boolean field */

/* The member that holds field `name`: name itself, but ts_us for a TS. */
#define TT_RECORD_NAME_STR(name)   name
#define TT_RECORD_NAME_TS(name)    name##_us
#define TT_RECORD_NAME_MS(name)    name
#define TT_RECORD_NAME_INT64(name) name
#define TT_RECORD_NAME_INT(name)   name
#define TT_RECORD_NAME_BOOL(name)  name
#define TT_RECORD_NAME_FLAG(name)  name

/* The declaration of member m of each kind (record_fields.h says what they hold). */
#define TT_RECORD_DECL_STR(m, bound)   char m[bound]
#define TT_RECORD_DECL_TS(m, bound)    int64_t m
#define TT_RECORD_DECL_MS(m, bound)    double m
#define TT_RECORD_DECL_INT64(m, bound) int64_t m
#define TT_RECORD_DECL_INT(m, bound)   int m
#define TT_RECORD_DECL_BOOL(m, bound)  int m
#define TT_RECORD_DECL_FLAG(m, bound)  int m

/*
 * One member per field of TT_RECORD_FIELDS, in its order:
 *
 *     char id[33];
 *     char source[8];
 *     int64_t ts_us;
 *     double ttft_ms;
 *     ...
 *     int status;
 *     ...
 *     int stream;
 *     int64_t max_tokens;
 *     ...
 */
typedef struct tt_record {
#define TT_RECORD_MEMBER(id, name, kind, bound, flags, allowed) \
	TT_RECORD_DECL_##kind(TT_RECORD_NAME_##kind(name), bound);
	TT_RECORD_FIELDS(TT_RECORD_MEMBER)
#undef TT_RECORD_MEMBER
} tt_record;

/* Reset every field to absent (a FLAG to 0: see record_fields.h). */
void tt_record_init(tt_record *rec);

/*
 * Copy src into the fixed field dst of size cap, cutting at a UTF-8
 * boundary and always NUL-terminating.  len may be (size_t)-1 for a C string.
 */
void tt_record_set(char *dst, size_t cap, const char *src, size_t len);
#define TT_RECORD_SET(rec, field, src, len) \
	tt_record_set((rec)->field, sizeof((rec)->field), (src), (len))

/* Fill rec->id with 32 random hex characters (getrandom, never blocks). */
void tt_record_new_id(tt_record *rec);

/*
 * Write rec as one JSON object (no newline) into buf of size cap.
 * Returns the length written (excluding the NUL) or TT_ENOSPACE.
 */
int tt_record_to_json(const tt_record *rec, char *buf, size_t cap);

/*
 * A buffer size that always suffices for tt_record_to_json(), even when
 * every string byte is a control character written as \u00XX:
 * common/record.c adds up the longest form of every field at compile time.
 */
#define TT_RECORD_JSON_MAX 20480

#endif
