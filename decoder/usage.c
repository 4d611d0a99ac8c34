/* usage.c - provider usage reports and their normalisation; see usage.h. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tokentap/record.h"
#include "usage.h"

static void counts_clear(tt_usage_counts *c)
{
	c->input = c->output = TT_NULL;
	c->cache_read = c->cache_write = c->reasoning = TT_NULL;
	c->input_has_cache = 0;
	c->output_has_reasoning = 1;
}

void tt_usage_init(tt_usage *u, tt_family family)
{
	memset(u, 0, sizeof(*u));
	u->family = family;
	counts_clear(&u->r);
	counts_clear(&u->fallback);
}

/* A non-negative integer member, or TT_NULL when absent or not a count. */
static int64_t count(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 1e15)
		return TT_NULL;
	return (int64_t)v->valuedouble;
}

/* The first of two member names that is present. */
static int64_t count2(const cJSON *obj, const char *a, const char *b)
{
	int64_t v = count(obj, a);
	return v != TT_NULL ? v : count(obj, b);
}

static const cJSON *object(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	return cJSON_IsObject(v) ? v : NULL;
}

static const char *string(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void note_model(tt_usage *u, const char *model)
{
	if (model && model[0])
		tt_record_set(u->model, sizeof(u->model), model, (size_t)-1);
}

static void note_text(tt_usage *u, const cJSON *obj, const char *key)
{
	const char *s = string(obj, key);
	if (s)
		u->text_bytes += strlen(s);
}

/* An "error" member that is an object or a string marks a provider error. */
static void note_error(tt_usage *u, const cJSON *obj)
{
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(obj, "error");
	if (cJSON_IsObject(e) || (cJSON_IsString(e) && e->valuestring[0]))
		u->provider_error = 1;
}

/* ---- OpenAI chat.completions, completions, embeddings and look-alikes ---- */

static void openai_usage(tt_usage *u, const cJSON *usage)
{
	const cJSON *ptd = object(usage, "prompt_tokens_details");
	const cJSON *ctd = object(usage, "completion_tokens_details");
	tt_usage_counts c;

	counts_clear(&c);
	c.input_has_cache = 1;
	c.input = count(usage, "prompt_tokens");
	c.output = count(usage, "completion_tokens");
	/* OpenAI's detail object; DeepSeek's hit count; Together's top level. */
	c.cache_read = count(ptd, "cached_tokens");
	if (c.cache_read == TT_NULL)
		c.cache_read = count2(usage, "prompt_cache_hit_tokens", "cached_tokens");
	c.cache_write = count(ptd, "cache_write_tokens");
	c.reasoning = count(ctd, "reasoning_tokens");
	u->r = c;
	u->seen = 1;
}

static void feed_openai_chat(tt_usage *u, const cJSON *obj)
{
	const cJSON *usage = object(obj, "usage");
	const cJSON *xg = object(obj, "x_groq");

	/* Groq puts it under x_groq.usage, newer Groq in both: read one. */
	if (!usage && xg)
		usage = object(xg, "usage");
	if (usage)
		openai_usage(u, usage);
	note_model(u, string(obj, "model"));
	note_error(u, obj);

	const cJSON *choices = cJSON_GetObjectItemCaseSensitive(obj, "choices");
	const cJSON *ch;
	cJSON_ArrayForEach(ch, choices) {
		const cJSON *d = object(ch, "delta");
		note_text(u, ch, "text");
		if (!d)
			continue;
		note_text(u, d, "content");
		note_text(u, d, "reasoning_content");
		note_text(u, d, "reasoning");
		const cJSON *tc, *calls = cJSON_GetObjectItemCaseSensitive(d, "tool_calls");
		cJSON_ArrayForEach(tc, calls)
			note_text(u, object(tc, "function"), "arguments");
	}
}

/* ---- OpenAI responses ---- */

static void responses_usage(tt_usage *u, const cJSON *usage)
{
	tt_usage_counts c;

	counts_clear(&c);
	c.input_has_cache = 1;
	c.input = count(usage, "input_tokens");
	c.output = count(usage, "output_tokens");
	c.cache_read = count(object(usage, "input_tokens_details"), "cached_tokens");
	c.reasoning = count(object(usage, "output_tokens_details"), "reasoning_tokens");
	u->r = c;
	u->seen = 1;
}

static void feed_responses(tt_usage *u, const cJSON *obj)
{
	const char *type = string(obj, "type");
	const cJSON *resp = object(obj, "response");

	/* A stream event wraps the response object; a plain body is one. */
	if (!resp && !(type && !strncmp(type, "response.", 9)))
		resp = obj;
	if (resp) {
		const cJSON *usage = object(resp, "usage");
		if (usage)
			responses_usage(u, usage);
		note_model(u, string(resp, "model"));
		note_error(u, resp);
	}
	if (type && (!strcmp(type, "error") || !strcmp(type, "response.failed")))
		u->provider_error = 1;
	if (type && (!strcmp(type, "response.completed") ||
		     !strcmp(type, "response.incomplete") ||
		     !strcmp(type, "response.failed")))
		u->stream_done = 1;
	if (type && strstr(type, ".delta"))
		note_text(u, obj, "delta");
}

/* ---- Anthropic messages (and Anthropic models on Bedrock invoke) ---- */

/* message_delta carries only what changed: overwrite field by field. */
static void anthropic_usage(tt_usage *u, const cJSON *usage)
{
	int64_t v;

	u->r.input_has_cache = 0;
	if ((v = count(usage, "input_tokens")) != TT_NULL)
		u->r.input = v;
	if ((v = count(usage, "cache_read_input_tokens")) != TT_NULL)
		u->r.cache_read = v;
	if ((v = count(usage, "cache_creation_input_tokens")) != TT_NULL)
		u->r.cache_write = v;
	if ((v = count(usage, "output_tokens")) != TT_NULL)
		u->r.output = v;
	if ((v = count(object(usage, "output_tokens_details"), "thinking_tokens")) != TT_NULL)
		u->r.reasoning = v;
	u->seen = 1;
}

static void bedrock_metrics(tt_usage *u, const cJSON *m);

static void feed_anthropic(tt_usage *u, const cJSON *obj)
{
	const char *type = string(obj, "type");
	const cJSON *msg = object(obj, "message");
	const cJSON *usage;

	/* A non-streamed body is the message itself; a gateway may drop
	 * its "type". */
	if (!msg && ((type && !strcmp(type, "message")) ||
		     (!type && object(obj, "usage"))))
		msg = obj;
	if (msg) {
		note_model(u, string(msg, "model"));
		if ((usage = object(msg, "usage")))
			anthropic_usage(u, usage);
	}
	if (type && !strcmp(type, "message_delta") && (usage = object(obj, "usage")))
		anthropic_usage(u, usage);
	if (type && !strcmp(type, "error"))
		u->provider_error = 1;
	if (type && !strcmp(type, "message_stop"))
		u->stream_done = 1;
	if (type && !strcmp(type, "content_block_delta")) {
		const cJSON *d = object(obj, "delta");
		note_text(u, d, "text");
		note_text(u, d, "thinking");
		note_text(u, d, "partial_json");
	}
	bedrock_metrics(u, object(obj, "amazon-bedrock-invocationMetrics"));
}

/* ---- Gemini and Vertex AI ---- */

static void feed_gemini(tt_usage *u, const cJSON *obj)
{
	const cJSON *m = object(obj, "usageMetadata");

	if (m) {
		/* Each chunk is a snapshot; the last one counts. */
		int64_t prompt = count(m, "promptTokenCount");
		int64_t tool = count(m, "toolUsePromptTokenCount");
		int64_t cand = count(m, "candidatesTokenCount");
		int64_t thoughts = count(m, "thoughtsTokenCount");
		tt_usage_counts c;

		counts_clear(&c);
		c.input_has_cache = 1;
		c.output_has_reasoning = 1; /* we add thoughts in below */
		if (prompt != TT_NULL)
			c.input = prompt + (tool != TT_NULL ? tool : 0);
		if (cand != TT_NULL || thoughts != TT_NULL)
			c.output = (cand != TT_NULL ? cand : 0) +
				   (thoughts != TT_NULL ? thoughts : 0);
		c.cache_read = count(m, "cachedContentTokenCount");
		c.reasoning = thoughts;
		u->r = c;
		u->seen = 1;
	}
	note_model(u, string(obj, "modelVersion"));
	note_error(u, obj);

	const cJSON *cand, *cands = cJSON_GetObjectItemCaseSensitive(obj, "candidates");
	cJSON_ArrayForEach(cand, cands) {
		const cJSON *part, *parts = cJSON_GetObjectItemCaseSensitive(
					      object(cand, "content"), "parts");
		cJSON_ArrayForEach(part, parts)
			note_text(u, part, "text");
	}
}

/* ---- Bedrock Converse, Nova, invocation metrics and headers ---- */

/* Converse says cacheReadInputTokens, Nova's invoke body ...TokenCount. */
static void bedrock_usage(tt_usage *u, const cJSON *usage)
{
	tt_usage_counts c;

	counts_clear(&c);
	c.input = count(usage, "inputTokens");
	c.output = count(usage, "outputTokens");
	c.cache_read = count2(usage, "cacheReadInputTokens", "cacheReadInputTokenCount");
	c.cache_write = count2(usage, "cacheWriteInputTokens", "cacheWriteInputTokenCount");
	u->r = c;
	u->seen = 1;
}

static void bedrock_metrics(tt_usage *u, const cJSON *m)
{
	if (!m)
		return;
	tt_usage_counts *f = &u->fallback;
	f->input = count(m, "inputTokenCount");
	f->output = count(m, "outputTokenCount");
	f->cache_read = count(m, "cacheReadInputTokenCount");
	f->cache_write = count(m, "cacheWriteInputTokenCount");
	u->fallback_seen = 1;
}

static void feed_bedrock(tt_usage *u, const cJSON *obj)
{
	const cJSON *usage = object(obj, "usage");
	const cJSON *meta = object(obj, "metadata");
	const char *type = string(obj, "type");

	/* InvokeModel returns the model's own shape: Anthropic's first. */
	if (type || object(obj, "message")) {
		feed_anthropic(u, obj);
		return;
	}
	if (meta && object(meta, "usage"))
		usage = object(meta, "usage");
	if (usage && (count(usage, "inputTokens") != TT_NULL ||
		      count(usage, "outputTokens") != TT_NULL))
		bedrock_usage(u, usage);
	/* Meta Llama on InvokeModel. */
	if (count(obj, "prompt_token_count") != TT_NULL) {
		tt_usage_counts c;
		counts_clear(&c);
		c.input = count(obj, "prompt_token_count");
		c.output = count(obj, "generation_token_count");
		u->r = c;
		u->seen = 1;
	}
	bedrock_metrics(u, object(obj, "amazon-bedrock-invocationMetrics"));

	const cJSON *delta = object(object(obj, "contentBlockDelta"), "delta");
	if (!delta)
		delta = object(obj, "delta");
	note_text(u, delta, "text");
	note_text(u, obj, "generation");
	note_error(u, obj);
}

void tt_usage_header(tt_usage *u, const char *name, size_t name_len,
		     const char *value, size_t value_len)
{
	static const char prefix[] = "x-amzn-bedrock-";
	const size_t plen = sizeof(prefix) - 1;
	int64_t *slot = NULL;
	char num[24];

	if (name_len <= plen || strncasecmp(name, prefix, plen) != 0)
		return;
	name += plen;
	name_len -= plen;
#define IS(s) (name_len == sizeof(s) - 1 && !strncasecmp(name, s, name_len))
	if (IS("input-token-count"))
		slot = &u->fallback.input;
	else if (IS("output-token-count"))
		slot = &u->fallback.output;
	else if (IS("cache-read-input-token-count"))
		slot = &u->fallback.cache_read;
	else if (IS("cache-write-input-token-count"))
		slot = &u->fallback.cache_write;
#undef IS
	if (!slot || value_len == 0 || value_len >= sizeof(num))
		return;
	memcpy(num, value, value_len);
	num[value_len] = '\0';
	char *end;
	long long v = strtoll(num, &end, 10);
	if (*end || v < 0)
		return;
	*slot = v;
	u->fallback_seen = 1;
}

/* ---- Ollama ---- */

static void feed_ollama(tt_usage *u, const cJSON *obj)
{
	const cJSON *done = cJSON_GetObjectItemCaseSensitive(obj, "done");
	int64_t eval = count(obj, "eval_count");
	int64_t prompt = count(obj, "prompt_eval_count");

	note_model(u, string(obj, "model"));
	if (cJSON_IsTrue(done) || eval != TT_NULL || prompt != TT_NULL) {
		tt_usage_counts c;
		counts_clear(&c);
		c.input_has_cache = 1;
		/* Absent prompt_eval_count: the prompt came from the KV cache. */
		c.input = prompt != TT_NULL ? prompt : 0;
		c.output = eval;
		u->r = c;
		u->seen = 1;
	}
	note_text(u, object(obj, "message"), "content");
	note_text(u, obj, "response");
	note_error(u, obj);
}

/* ---- Cohere v2 chat: billed units are what is paid ---- */

static void feed_cohere(tt_usage *u, const cJSON *obj)
{
	const cJSON *usage = object(obj, "usage");
	const char *type = string(obj, "type");

	if (!usage)
		usage = object(object(obj, "delta"), "usage");
	const cJSON *billed = object(usage, "billed_units");
	if (billed) {
		tt_usage_counts c;
		counts_clear(&c);
		c.input_has_cache = 1;
		c.input = count(billed, "input_tokens");
		c.output = count(billed, "output_tokens");
		u->r = c;
		u->seen = 1;
	}
	if (type && !strcmp(type, "content-delta"))
		note_text(u, object(object(object(obj, "delta"), "message"), "content"),
			  "text");
	note_error(u, obj);
}

void tt_usage_feed(tt_usage *u, const cJSON *obj)
{
	if (!cJSON_IsObject(obj))
		return;
	switch (u->family) {
	case TT_FAMILY_OPENAI_CHAT:
	case TT_FAMILY_OPENAI_EMBEDDINGS:
		feed_openai_chat(u, obj);
		break;
	case TT_FAMILY_OPENAI_RESPONSES:
		feed_responses(u, obj);
		break;
	case TT_FAMILY_ANTHROPIC:
		feed_anthropic(u, obj);
		break;
	case TT_FAMILY_GEMINI:
		feed_gemini(u, obj);
		break;
	case TT_FAMILY_BEDROCK_CONVERSE:
	case TT_FAMILY_BEDROCK_INVOKE:
		feed_bedrock(u, obj);
		break;
	case TT_FAMILY_OLLAMA:
		feed_ollama(u, obj);
		break;
	case TT_FAMILY_COHERE:
		feed_cohere(u, obj);
		break;
	default:
		break;
	}
}

static int64_t add0(int64_t a, int64_t b)
{
	return b == TT_NULL ? a : a + b;
}

void tt_usage_result_get(const tt_usage *u, tt_usage_result *out)
{
	tt_usage_counts c = u->r;

	/* Headers and invocation metrics fill what the body left out. */
	if (u->fallback_seen) {
		const tt_usage_counts *f = &u->fallback;
		if (c.input == TT_NULL && f->input != TT_NULL) {
			c.input = f->input;
			c.input_has_cache = 0;
		}
		if (c.output == TT_NULL)
			c.output = f->output;
		if (c.cache_read == TT_NULL)
			c.cache_read = f->cache_read;
		if (c.cache_write == TT_NULL)
			c.cache_write = f->cache_write;
	}
	out->from_provider = u->seen || u->fallback_seen;
	out->input = c.input;
	if (c.input != TT_NULL && !c.input_has_cache)
		out->input = add0(add0(c.input, c.cache_read), c.cache_write);
	out->output = c.output;
	if (c.output != TT_NULL && !c.output_has_reasoning)
		out->output = add0(c.output, c.reasoning);
	out->cache_read = c.cache_read;
	out->cache_write = c.cache_write;
	out->reasoning = c.reasoning;
	if (!out->from_provider)
		out->input = out->output = out->cache_read = out->cache_write =
			out->reasoning = TT_NULL;
}
