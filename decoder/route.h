/*
 * route.h - is this request an LLM call, and of which API?
 *
 * Recognition is by method and path only, never by host, so a gateway,
 * an Azure deployment or a local server is seen like the provider itself;
 * a path prefix added by a gateway ("/openai/v1/...", "/proxy/...") does
 * not matter because paths are matched by their tail.  The host only
 * names the provider of OpenAI-compatible endpoints.
 */
#ifndef TOKENTAP_ROUTE_H
#define TOKENTAP_ROUTE_H

#include <stddef.h>

/* The body grammar a response of this API follows. */
typedef enum tt_family {
	TT_FAMILY_NONE = 0,
	TT_FAMILY_OPENAI_CHAT,      /* chat.completions and completions */
	TT_FAMILY_OPENAI_RESPONSES,
	TT_FAMILY_OPENAI_EMBEDDINGS,
	TT_FAMILY_ANTHROPIC,
	TT_FAMILY_GEMINI,
	TT_FAMILY_BEDROCK_CONVERSE,
	TT_FAMILY_BEDROCK_INVOKE,   /* model-native bodies */
	TT_FAMILY_OLLAMA,
	TT_FAMILY_COHERE,
} tt_family;

typedef struct tt_route {
	tt_family family;
	const char *provider;   /* static string */
	const char *api;        /* static string */
	int stream_by_path;     /* 1: the path says streamed, -1: says not, 0: body decides */
	int stream_default;     /* when the body does not say (Ollama streams) */
	char path_model[128];   /* model named in the path (Gemini, Bedrock, Azure) */
} tt_route;

/*
 * Fill r for a request; returns 1 for an LLM call, 0 otherwise.  target is
 * the request target with its query; host may be NULL.
 */
int tt_route_match(tt_route *r, const char *method, const char *target,
		   size_t target_len, const char *host);

#endif
