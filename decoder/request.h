/*
 * request.h - what a request body tells about the call: model, stream,
 * output ceiling, and hashes of the prompt.  The prompt text itself is
 * only read to hash it and to count its bytes; it is never kept.
 *
 * prompt_hash covers everything the model reads (system, tools, messages
 * or input or contents).  prefix_hash covers only the stable prefix that
 * prompt caching can reuse: system/instructions and tools, and the leading
 * system or developer messages.  Both are the first 128 bits of SHA-256,
 * in hex, over the compact JSON of those parts.
 */
#ifndef TOKENTAP_REQUEST_H
#define TOKENTAP_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "route.h"

typedef struct tt_request_info {
	int parsed;             /* the body was a JSON object */
	char model[128];
	int stream;             /* 0, 1, or -1 when the body does not say */
	int include_usage;      /* OpenAI stream_options.include_usage */
	int64_t max_tokens;     /* TT_NULL when not set */
	char prompt_hash[33];
	char prefix_hash[33];
	uint64_t prompt_text_bytes; /* text in the prompt, for the estimate */
} tt_request_info;

/* Parse body (len bytes, not NUL-terminated) of a request on route r. */
void tt_request_parse(tt_request_info *info, const tt_route *r,
		      const char *body, size_t len);

#endif
