/*
 * record_fields.h - the record's fields, listed once.
 *
 * DESIGN.md's record table says what each field means; this list says how
 * each one is held, written and checked, and everything that handles a
 * record expands it:
 *
 *   include/tokentap/record.h   the struct tt_record (a member per field)
 *   common/record.c             tt_record_init() and the JSON writer
 *   collector/rec.h, rec.c      the collector's field ids and validator
 *   collector/store.c           the records table's columns, its migration
 *                               and the statement bindings
 *
 * Adding a field is one line here (and its meaning in DESIGN.md); the
 * struct, the writer, the validator and the SQL column follow.  The order
 * is the order of the JSON object.  tests/test_col_store.c sends every
 * field through the writer, the collector and the database.
 *
 * X(ID, name, kind, bound, flags, allowed)
 *
 *   ID       the field's id in the collector: TT_F_##ID
 *   name     the JSON key, and the struct member (ts: ts_us)
 *   kind     how the field is held; "absent" is what tt_record_init() sets
 *            and the writer turns into null:
 *              STR    char name[bound], UTF-8; absent: ""
 *              TS     int64_t name_us, microseconds since the epoch, written
 *                     as an RFC 3339 UTC string; absent: 0 (any value <= 0)
 *              MS     double name, milliseconds, written with 3 decimals;
 *                     absent: -1 (any value < 0)
 *              INT64  int64_t name; absent: TT_NULL (any value < 0)
 *              INT    int name; absent: TT_NULL (any value < 0)
 *              BOOL   int name, 0 or 1; absent: TT_TRI_NULL (any value < 0)
 *              FLAG   int name, 0 or 1; starts as 0, written false, never
 *                     absent from a writer (the collector takes null too)
 *   bound    STR: the member's size with its NUL, so the collector takes
 *            at most bound - 1 bytes; INT64 and INT: the largest value the
 *            collector takes; other kinds: 0
 *   flags    the collector's checks: TT_RF_REQUIRED (present, not null),
 *            TT_RF_HEX (exactly bound - 1 hexadecimal characters)
 *   allowed  TT_ONE_OF("a", "b", ...): the only strings the collector
 *            takes, or NULL for any
 *
 * kind and ID are only ever pasted (TT_RECORD_DECL_##kind, TT_F_##ID), never
 * expanded, so that a token such as ERROR or BOOL is safe here.
 */
#ifndef TOKENTAP_RECORD_FIELDS_H
#define TOKENTAP_RECORD_FIELDS_H

#include <stddef.h>
#include <stdint.h>

#define TT_RF_REQUIRED 0x1
#define TT_RF_HEX      0x2

/* Integers beyond 2^53 lose precision in JSON (RFC 8259 section 6). */
#define TT_RF_I53 ((int64_t)1 << 53)

/* A NULL-terminated list of the values a string field may take. */
#define TT_ONE_OF(...) ((const char *const[]){__VA_ARGS__, NULL})

#define TT_RECORD_FIELDS(X)                                                                     \
	X(ID,                 id,                 STR,   33,        TT_RF_REQUIRED | TT_RF_HEX, NULL) \
	X(SOURCE,             source,             STR,   8,         0, TT_ONE_OF("preload", "ebpf")) \
	X(TS,                 ts,                 TS,    0,         0, NULL) /* request start */     \
	X(TTFT_MS,            ttft_ms,            MS,    0,         0, NULL)                         \
	X(DURATION_MS,        duration_ms,        MS,    0,         0, NULL)                         \
	X(PID,                pid,                INT64, INT32_MAX, 0, NULL)                         \
	X(TID,                tid,                INT64, INT32_MAX, 0, NULL)                         \
	X(COMM,               comm,               STR,   17,        0, NULL)                         \
	X(EXE,                exe,                STR,   256,       0, NULL)                         \
	X(CGROUP,             cgroup,             STR,   256,       0, NULL)                         \
	X(CONTAINER_ID,       container_id,       STR,   72,        0, NULL)                         \
	X(POD_UID,            pod_uid,            STR,   40,        0, NULL)                         \
	X(HOST,               host,               STR,   256,       0, NULL)                         \
	X(METHOD,             method,             STR,   16,        0, NULL)                         \
	X(PATH,               path,               STR,   512,       0, NULL) /* no query string */   \
	X(HTTP,               http,               STR,   4,         0, NULL) /* "1.1" or "2" */      \
	X(STATUS,             status,             INT,   999,       0, NULL) /* absent: no head */   \
	X(PROVIDER,           provider,           STR,   32,        0, NULL)                         \
	X(API,                api,                STR,   32,        0, NULL)                         \
	X(MODEL,              model,              STR,   128,       0, NULL)                         \
	X(REQUEST_MODEL,      request_model,      STR,   128,       0, NULL)                         \
	X(STREAM,             stream,             BOOL,  0,         0, NULL)                         \
	X(MAX_TOKENS,         max_tokens,         INT64, TT_RF_I53, 0, NULL)                         \
	X(INPUT_TOKENS,       input_tokens,       INT64, TT_RF_I53, 0, NULL)                         \
	X(OUTPUT_TOKENS,      output_tokens,      INT64, TT_RF_I53, 0, NULL)                         \
	X(CACHE_READ_TOKENS,  cache_read_tokens,  INT64, TT_RF_I53, 0, NULL)                         \
	X(CACHE_WRITE_TOKENS, cache_write_tokens, INT64, TT_RF_I53, 0, NULL)                         \
	X(REASONING_TOKENS,   reasoning_tokens,   INT64, TT_RF_I53, 0, NULL)                         \
	X(USAGE_SOURCE,       usage_source,       STR,   12,        0,                               \
	  TT_ONE_OF("provider", "estimated", "none"))                                              \
	X(TASK,               task,               STR,   128,       0, NULL)                         \
	X(TENANT,             tenant,             STR,   128,       0, NULL)                         \
	X(FEATURE,            feature,            STR,   128,       0, NULL)                         \
	X(PROMPT_HASH,        prompt_hash,        STR,   33,        0, NULL)                         \
	X(PREFIX_HASH,        prefix_hash,        STR,   33,        0, NULL)                         \
	X(REQUEST_BYTES,      request_bytes,      INT64, TT_RF_I53, 0, NULL)                         \
	X(RESPONSE_BYTES,     response_bytes,     INT64, TT_RF_I53, 0, NULL)                         \
	X(ERROR,              error,              STR,   32,        0, NULL)                         \
	X(BLOCKED,            blocked,            FLAG,  0,         0, NULL)                         \
	X(SIDE,               side,               STR,   8,         0, TT_ONE_OF("client", "server")) \
	X(APP,                app,                STR,   128,       0, NULL) /* common/app.h */      \
	X(TLS,                tls,                STR,   12,        0,                               \
	  TT_ONE_OF("openssl", "boringssl", "gotls", "rustls", "plain"))

#endif
