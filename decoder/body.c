/* body.c - decompression, framing and usage for a response; see body.h. */
#include <ctype.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "body.h"
#include "eventstream.h"
#include "jscan.h"
#include "jsonseq.h"
#include "lines.h"
#include "sse.h"

struct tt_body {
	tt_usage *usage;
	tt_framing framing;
	tt_decompress *dec;
	union {
		tt_sse sse;
		tt_lines lines;
		tt_eventstream es;
		tt_jsonseq json;
	} f;
	uint64_t decoded;
	unsigned events;       /* stream events seen */
	int truncated;
	int decode_error;      /* the coding or the framing is corrupt */
	int framing_dead;      /* the framing gave up: bytes are only counted */
	int ended;
};

/* The first events of a stream name the model; parse them whole. */
#define HEAD_EVENTS 3

static int has_token(const char *s, const char *token)
{
	return s && strcasestr(s, token) != NULL;
}

tt_framing tt_framing_pick(const char *ct, tt_family family, int stream)
{
	if (has_token(ct, "text/event-stream"))
		return TT_FRAMING_SSE;
	if (has_token(ct, "application/vnd.amazon.eventstream"))
		return TT_FRAMING_EVENTSTREAM;
	if (has_token(ct, "ndjson") || has_token(ct, "jsonl") ||
	    has_token(ct, "json-seq"))
		return TT_FRAMING_NDJSON;
	/* Ollama streams NDJSON, whatever a proxy says the type is. */
	if (family == TT_FAMILY_OLLAMA && stream == 1 && !has_token(ct, "json"))
		return TT_FRAMING_NDJSON;
	return TT_FRAMING_JSON;
}

/* Parse one JSON text and give it to the usage reader. */
static void take_json(tt_body *b, const char *p, size_t n, int cut)
{
	cJSON *v = cJSON_ParseWithLength(p, n);
	if (v) {
		tt_usage_feed(b->usage, v);
		cJSON_Delete(v);
	} else if (!cut) {
		/* An event we could not read may have held the usage: say so
		 * rather than report figures that may be short. */
		b->decode_error = 1;
	}
	if (cut)
		b->truncated = 1;
}

/*
 * One event of a stream.  Most events only carry a few words of text, and
 * parsing each into a tree would cost more than decrypting it: parse the
 * first ones and those that may carry usage or an error, and only count
 * the text of the others.
 */
static void take_event(tt_body *b, const char *p, size_t n, int cut)
{
	if (cut || b->events++ < HEAD_EVENTS ||
	    tt_jscan_event(p, n, &b->usage->text_bytes))
		take_json(b, p, n, cut);
}

static void on_sse(void *user, const char *event, const char *data, size_t len,
		   int truncated)
{
	tt_body *b = user;

	if (len == 6 && !memcmp(data, "[DONE]", 6)) {
		b->usage->stream_done = 1;
		return;
	}
	/* Groq and Anthropic name a failure in the event type. */
	if (!strcmp(event, "error"))
		b->usage->provider_error = 1;
	take_event(b, data, len, truncated);
}

static void on_line(void *user, const char *line, size_t len, int truncated)
{
	tt_body *b = user;
	size_t i = 0;

	while (i < len && isspace((unsigned char)line[i]))
		i++;
	if (i == len && !truncated)
		return;
	take_event(b, line + i, len - i, truncated);
}

/* InvokeModelWithResponseStream wraps each model event in base64. */
static void take_base64_json(tt_body *b, const char *s, size_t n)
{
	unsigned char *raw;
	int len;

	if (n == 0 || n > (1u << 30))
		return;
	raw = malloc(n / 4 * 3 + 4);
	if (!raw)
		return;
	len = EVP_DecodeBlock(raw, (const unsigned char *)s, (int)n);
	if (len > 0) {
		/* EVP_DecodeBlock counts the '=' padding as zero bytes. */
		while (n && s[n - 1] == '=') {
			n--;
			len--;
		}
		take_json(b, (const char *)raw, (size_t)len, 0);
	} else {
		b->decode_error = 1;
	}
	free(raw);
}

static void on_es(void *user, const tt_es_message *m)
{
	tt_body *b = user;
	cJSON *v;

	if (!strcmp(m->message_type, "exception") || m->exception_type[0]) {
		b->usage->provider_error = 1;
		return;
	}
	v = cJSON_ParseWithLength(m->payload, m->payload_len);
	if (!v) {
		b->decode_error = 1;
		return;
	}
	const cJSON *bytes = cJSON_GetObjectItemCaseSensitive(v, "bytes");
	if (cJSON_IsString(bytes))
		take_base64_json(b, bytes->valuestring, strlen(bytes->valuestring));
	else
		tt_usage_feed(b->usage, v);
	cJSON_Delete(v);
}

/*
 * From the tail of a huge value: the last usage object.  Providers put it
 * at the end of the body (embeddings, long completions), so this finds it
 * without buffering the whole body.
 */
static void usage_from_tail(tt_body *b, const char *tail, size_t n)
{
	static const char *const keys[] = { "usage", "usageMetadata", "x_groq", NULL };

	for (int k = 0; keys[k]; k++) {
		const char *v = tt_jscan_last_value(tail, n, keys[k]);
		if (!v || *v != '{')
			continue;
		cJSON *inner = cJSON_ParseWithLengthOpts(v, n - (size_t)(v - tail), NULL, 0);
		if (!inner)
			continue;
		/* Rebuild {"usage": {...}} for the usage reader. */
		cJSON *wrap = cJSON_CreateObject();
		if (wrap && cJSON_AddItemToObject(wrap, keys[k], inner)) {
			tt_usage_feed(b->usage, wrap);
		} else {
			cJSON_Delete(inner);
		}
		cJSON_Delete(wrap);
		return;
	}
}

static void on_json(void *user, const char *head, size_t head_len,
		    const char *tail, size_t tail_len, int truncated)
{
	tt_body *b = user;

	if (!truncated) {
		take_json(b, head, head_len, 0);
		return;
	}
	b->truncated = 1;
	if (!b->usage->model[0])
		tt_jscan_string(head, head_len, "model", b->usage->model,
				sizeof(b->usage->model));
	if (tail && tail_len)
		usage_from_tail(b, tail, tail_len);
}

static void on_decoded(void *user, const char *p, size_t n)
{
	tt_body *b = user;

	/* Counted however the framing fares, so that the count does not
	 * depend on where the pieces were cut. */
	b->decoded += n;
	if (b->framing_dead)
		return;
	switch (b->framing) {
	case TT_FRAMING_SSE:
		tt_sse_feed(&b->f.sse, p, n);
		break;
	case TT_FRAMING_NDJSON:
		tt_lines_feed(&b->f.lines, p, n);
		break;
	case TT_FRAMING_EVENTSTREAM:
		if (tt_eventstream_feed(&b->f.es, p, n) < 0)
			b->decode_error = b->framing_dead = 1;
		break;
	case TT_FRAMING_JSON:
		tt_jsonseq_feed(&b->f.json, p, n);
		break;
	}
}

tt_body *tt_body_new(const tt_decoder_config *cfg, tt_usage *usage,
		     tt_framing framing, tt_coding coding)
{
	tt_body *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->usage = usage;
	b->framing = framing;
	b->dec = tt_decompress_new(coding, on_decoded, b);
	if (!b->dec) {
		free(b);
		return NULL;
	}
	switch (framing) {
	case TT_FRAMING_SSE:
		tt_sse_init(&b->f.sse, cfg->max_event_bytes, on_sse, b);
		break;
	case TT_FRAMING_NDJSON:
		tt_lines_init(&b->f.lines, cfg->max_event_bytes, on_line, b);
		break;
	case TT_FRAMING_EVENTSTREAM:
		tt_eventstream_init(&b->f.es, cfg->max_event_bytes, on_es, b);
		break;
	case TT_FRAMING_JSON:
		tt_jsonseq_init(&b->f.json, cfg->max_response_body, on_json, b);
		break;
	}
	return b;
}

void tt_body_feed(tt_body *b, const void *data, size_t len)
{
	if (b->ended)
		return;
	if (tt_decompress_feed(b->dec, data, len) < 0)
		b->decode_error = b->framing_dead = 1;
}

void tt_body_end(tt_body *b)
{
	if (b->ended)
		return;
	b->ended = 1;
	if (tt_decompress_end(b->dec) < 0)
		b->decode_error = 1;
	if (b->framing_dead)
		return;
	switch (b->framing) {
	case TT_FRAMING_SSE:
		tt_sse_end(&b->f.sse);
		break;
	case TT_FRAMING_NDJSON:
		tt_lines_end(&b->f.lines);
		break;
	case TT_FRAMING_EVENTSTREAM:
		if (tt_eventstream_end(&b->f.es) < 0)
			b->truncated = 1;
		break;
	case TT_FRAMING_JSON:
		tt_jsonseq_end(&b->f.json);
		break;
	}
}

void tt_body_free(tt_body *b)
{
	if (!b)
		return;
	switch (b->framing) {
	case TT_FRAMING_SSE:
		tt_sse_free(&b->f.sse);
		break;
	case TT_FRAMING_NDJSON:
		tt_lines_free(&b->f.lines);
		break;
	case TT_FRAMING_EVENTSTREAM:
		tt_eventstream_free(&b->f.es);
		break;
	case TT_FRAMING_JSON:
		tt_jsonseq_free(&b->f.json);
		break;
	}
	tt_decompress_free(b->dec);
	free(b);
}

tt_framing tt_body_framing(const tt_body *b)
{
	return b->framing;
}

uint64_t tt_body_decoded_bytes(const tt_body *b)
{
	return b->decoded;
}

int tt_body_truncated(const tt_body *b)
{
	return b->truncated;
}

int tt_body_decode_error(const tt_body *b)
{
	return b->decode_error;
}
