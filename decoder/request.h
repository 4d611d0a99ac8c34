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

/*
 * Where a request body states its output ceiling, in the order looked
 * for: the first of tt_request_ceiling_keys[0 .. TT_REQUEST_CEILING_TOP)
 * that is a member of the top-level object, else, inside the first member
 * named in tt_request_ceiling_parents that is an object (Gemini's
 * generationConfig, Ollama's options, Bedrock's inferenceConfig), the
 * first of all tt_request_ceiling_keys.  A member counts when it is a
 * number from 0 to 1e12.  The one list: tt_request_parse() and the
 * request peek (peek.c, tt_peek_request) both read it.  Both arrays end
 * with NULL.
 */
#define TT_REQUEST_CEILING_TOP 5
extern const char *const tt_request_ceiling_keys[];
extern const char *const tt_request_ceiling_parents[];

/* Parse body (len bytes, not NUL-terminated) of a request on route r. */
void tt_request_parse(tt_request_info *info, const tt_route *r,
		      const char *body, size_t len);

#endif
