/* route.c - recognise the LLM API of a request; see route.h. */
#include <string.h>
#include <strings.h>

#include "route.h"

static int ends_with(const char *s, size_t n, const char *tail)
{
	size_t t = strlen(tail);
	return n >= t && memcmp(s + n - t, tail, t) == 0;
}

static const char *find(const char *s, size_t n, const char *needle)
{
	return memmem(s, n, needle, strlen(needle));
}

static int hex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/*
 * Copy one path segment, percent-decoded (Bedrock model ids hold "%3A",
 * or a raw ':').  stop_at_colon: Gemini's "model:generateContent".
 */
static void copy_segment(char *dst, size_t cap, const char *s, size_t n,
			 int stop_at_colon)
{
	size_t o = 0;
	for (size_t i = 0; i < n && s[i] != '/' && !(stop_at_colon && s[i] == ':') &&
			   o + 1 < cap; i++) {
		if (s[i] == '%' && i + 2 < n && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
			dst[o++] = (char)(hex(s[i + 1]) << 4 | hex(s[i + 2]));
			i += 2;
		} else {
			dst[o++] = s[i];
		}
	}
	dst[o] = '\0';
}

/* The segment after the last occurrence of marker, if any. */
static void segment_after(char *dst, size_t cap, const char *path, size_t n,
			  const char *marker, int stop_at_colon)
{
	const char *hit = NULL, *p = path;
	size_t m = strlen(marker);
	for (;;) {
		const char *h = memmem(p, n - (size_t)(p - path), marker, m);
		if (!h)
			break;
		hit = h;
		p = h + 1;
	}
	if (hit)
		copy_segment(dst, cap, hit + m, n - (size_t)(hit + m - path),
			     stop_at_colon);
}

static int host_is(const char *host, const char *name)
{
	size_t h, n = strlen(name);
	if (!host)
		return 0;
	h = strcspn(host, ":");
	if (h < n || strncasecmp(host + h - n, name, n) != 0)
		return 0;
	return h == n || host[h - n - 1] == '.';
}

/* Who serves an OpenAI-shaped API, judged by the host name. */
static const char *openai_like_provider(const char *host, const char *path,
					size_t n)
{
	if (find(path, n, "/openai/deployments/") || host_is(host, "openai.azure.com"))
		return "azure_openai";
	if (host_is(host, "api.openai.com"))
		return "openai";
	if (host_is(host, "api.deepseek.com"))
		return "deepseek";
	if (host_is(host, "api.mistral.ai"))
		return "mistral";
	if (host_is(host, "api.groq.com"))
		return "groq";
	if (host_is(host, "api.together.xyz") || host_is(host, "api.together.ai"))
		return "together";
	if (host_is(host, "openrouter.ai"))
		return "openrouter";
	if (host_is(host, "api.fireworks.ai"))
		return "fireworks";
	return "openai_compatible";
}

int tt_route_match(tt_route *r, const char *method, const char *target,
		   size_t target_len, const char *host)
{
	/* The path ends at the query or fragment; target need not end in NUL. */
	size_t n = 0;
	while (n < target_len && target[n] != '?' && target[n] != '#')
		n++;

	memset(r, 0, sizeof(*r));
	if (strcmp(method, "POST") != 0)
		return 0;
	/* Tolerate one trailing slash. */
	if (n > 1 && target[n - 1] == '/')
		n--;
	const char *p = target;

	if (ends_with(p, n, "/chat/completions")) {
		r->family = TT_FAMILY_OPENAI_CHAT;
		r->api = "chat.completions";
	} else if (ends_with(p, n, "/completions")) {
		r->family = TT_FAMILY_OPENAI_CHAT;
		r->api = "completions";
	} else if (ends_with(p, n, "/responses")) {
		r->family = TT_FAMILY_OPENAI_RESPONSES;
		r->api = "responses";
	} else if (ends_with(p, n, "/embeddings") && !ends_with(p, n, "/api/embeddings")) {
		r->family = TT_FAMILY_OPENAI_EMBEDDINGS;
		r->api = "embeddings";
	} else if (ends_with(p, n, "/v1/messages")) {
		r->family = TT_FAMILY_ANTHROPIC;
		r->provider = "anthropic";
		r->api = "messages";
	} else if (ends_with(p, n, ":generateContent") ||
		   ends_with(p, n, ":streamGenerateContent")) {
		r->family = TT_FAMILY_GEMINI;
		r->provider = "gemini";
		r->api = "generate_content";
		r->stream_by_path = ends_with(p, n, ":streamGenerateContent") ? 1 : -1;
		segment_after(r->path_model, sizeof(r->path_model), p, n, "/models/", 1);
	} else if (find(p, n, "/model/") &&
		   (ends_with(p, n, "/converse") || ends_with(p, n, "/converse-stream"))) {
		r->family = TT_FAMILY_BEDROCK_CONVERSE;
		r->provider = "bedrock";
		r->stream_by_path = ends_with(p, n, "-stream") ? 1 : -1;
		r->api = r->stream_by_path > 0 ? "converse_stream" : "converse";
		segment_after(r->path_model, sizeof(r->path_model), p, n, "/model/", 0);
	} else if (find(p, n, "/model/") &&
		   (ends_with(p, n, "/invoke") ||
		    ends_with(p, n, "/invoke-with-response-stream"))) {
		r->family = TT_FAMILY_BEDROCK_INVOKE;
		r->provider = "bedrock";
		r->stream_by_path = ends_with(p, n, "-stream") ? 1 : -1;
		r->api = r->stream_by_path > 0 ? "invoke_stream" : "invoke";
		segment_after(r->path_model, sizeof(r->path_model), p, n, "/model/", 0);
	} else if (ends_with(p, n, "/api/chat")) {
		r->family = TT_FAMILY_OLLAMA;
		r->provider = "ollama";
		r->api = "ollama.chat";
		r->stream_default = 1;
	} else if (ends_with(p, n, "/api/generate")) {
		r->family = TT_FAMILY_OLLAMA;
		r->provider = "ollama";
		r->api = "ollama.generate";
		r->stream_default = 1;
	} else if (ends_with(p, n, "/api/embed") || ends_with(p, n, "/api/embeddings")) {
		r->family = TT_FAMILY_OLLAMA;
		r->provider = "ollama";
		r->api = "ollama.embed";
		r->stream_by_path = -1;
	} else if (ends_with(p, n, "/v2/chat")) {
		r->family = TT_FAMILY_COHERE;
		r->provider = "cohere";
		r->api = "cohere.chat";
	} else {
		return 0;
	}
	if (!r->provider)
		r->provider = openai_like_provider(host, p, n);
	if (!strcmp(r->provider, "azure_openai"))
		segment_after(r->path_model, sizeof(r->path_model), p, n,
			      "/openai/deployments/", 0);
	return 1;
}
