/*
 * usage.h - read the token usage a provider reports, and normalise it.
 *
 * Each response body, stream event or chunk is handed over as a parsed
 * JSON value.  Reports are kept as the provider gave them and normalised
 * once at the end, following DESIGN.md's table:
 *
 *   input_tokens  = every input token billed, cached and cache-written
 *                   ones included (Anthropic and Bedrock report these
 *                   apart, so they are added; OpenAI and Gemini already
 *                   count them in);
 *   output_tokens = every output token billed, reasoning included (Gemini
 *                   reports thoughts apart, so they are added).
 *
 * In a stream the last report wins and reports are never summed: OpenAI,
 * Gemini, Bedrock and Ollama send whole snapshots, which replace the
 * previous one; Anthropic's message_delta carries only the fields that
 * changed, so it replaces field by field what message_start said.
 */
#ifndef TOKENTAP_USAGE_H
#define TOKENTAP_USAGE_H

#include <cJSON.h>
#include <stdint.h>

#include "route.h"

typedef struct tt_usage_counts {
	int64_t input;        /* as reported, see input_has_cache */
	int64_t output;       /* as reported, see output_has_reasoning */
	int64_t cache_read;
	int64_t cache_write;
	int64_t reasoning;
	int input_has_cache;       /* input already counts cache reads/writes */
	int output_has_reasoning;  /* output already counts reasoning */
} tt_usage_counts;

typedef struct tt_usage {
	tt_family family;
	int seen;               /* the body reported usage */
	tt_usage_counts r;      /* the report that counts */
	int fallback_seen;      /* Bedrock headers / invocation metrics */
	tt_usage_counts fallback;
	char model[128];        /* the model the response names */
	int provider_error;     /* an error event or object in the body */
	uint64_t text_bytes;    /* generated text seen, for the estimate */
	int stream_done;        /* a stream's last event arrived ([DONE],
				 * message_stop, response.completed, ...) */
} tt_usage;

/* Normalised figures; TT_NULL where unknown. */
typedef struct tt_usage_result {
	int64_t input, output, cache_read, cache_write, reasoning;
	int from_provider;
} tt_usage_result;

void tt_usage_init(tt_usage *u, tt_family family);

/* One response body, stream event, chunk or array element. */
void tt_usage_feed(tt_usage *u, const cJSON *obj);

/* A response header; Bedrock reports counts in x-amzn-bedrock-*-token-count. */
void tt_usage_header(tt_usage *u, const char *name, size_t name_len,
		     const char *value, size_t value_len);

void tt_usage_result_get(const tt_usage *u, tt_usage_result *out);

#endif
