/*
 * record.h - one LLM exchange, as DESIGN.md's record describes it.
 *
 * The record is a plain struct of fixed-size fields so that the decoder,
 * the agent and the probe loader can fill it without allocating.  Strings
 * that do not fit are cut at a UTF-8 boundary.  "Absent" is an empty string
 * for strings, TT_NULL for numbers and TT_TRI_NULL for booleans; the JSON
 * writer turns each of them into null.
 */
#ifndef TOKENTAP_RECORD_H
#define TOKENTAP_RECORD_H

#include <stddef.h>
#include <stdint.h>

#define TT_NULL (-1)     /* an absent integer field */
#define TT_TRI_NULL (-1) /* an absent boolean field */

typedef struct tt_record {
	char id[33];            /* 32 hex characters */
	char source[8];         /* "preload" | "ebpf" */
	int64_t ts_us;          /* request start, microseconds since the epoch */
	double ttft_ms;         /* < 0: null */
	double duration_ms;     /* < 0: null */

	int64_t pid, tid;
	char comm[17];
	char exe[256];
	char cgroup[256];
	char container_id[72];
	char pod_uid[40];

	char host[256];
	char method[16];
	char path[512];         /* without the query string */
	char http[4];           /* "1.1" | "2" */
	int status;             /* TT_NULL when no response head was seen */

	char provider[32];
	char api[32];
	char model[128];
	char request_model[128];
	int stream;             /* 0, 1 or TT_TRI_NULL */
	int64_t max_tokens;

	int64_t input_tokens;
	int64_t output_tokens;
	int64_t cache_read_tokens;
	int64_t cache_write_tokens;
	int64_t reasoning_tokens;
	char usage_source[12];  /* "provider" | "estimated" | "none" */

	char task[128], tenant[128], feature[128];
	char prompt_hash[33], prefix_hash[33];
	int64_t request_bytes, response_bytes;
	char error[32];         /* empty: null */
	int blocked;            /* 0 or 1 */
	char side[8];           /* "client" | "server" */
	char app[128];          /* the program as a person names it (common/app.h) */
	char tls[12];           /* "openssl" | "boringssl" | "gotls" | "rustls" | "plain" */
} tt_record;

/* Reset every field to absent. */
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
 * every string byte is a control character written as \u00XX: record.c
 * checks the arithmetic at compile time.
 */
#define TT_RECORD_JSON_MAX 20480

#endif
