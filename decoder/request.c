/* request.c - model, stream, max tokens and prompt hashes; see request.h. */
#include <cJSON.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "request.h"
#include "tokentap/record.h"

/* The prompt-bearing members of each API, stable prefix first. */
static const char *const prefix_keys[] = {
	"system", "instructions", "systemInstruction", "system_instruction",
	"tools", "toolConfig", NULL,
};
static const char *const prompt_keys[] = {
	"messages", "input", "contents", "prompt", "message", NULL,
};

typedef struct hasher {
	EVP_MD_CTX *ctx;
	int used;
	int failed;   /* a part could not be hashed: no hash rather than a wrong one */
} hasher;

static void hasher_init(hasher *h)
{
	h->ctx = EVP_MD_CTX_new();
	h->used = 0;
	h->failed = 0;
	if (h->ctx && EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(h->ctx);
		h->ctx = NULL;
	}
}

/* Hash a member as "key=<compact json>\n" so that parts cannot run together. */
static void hasher_add(hasher *h, const char *key, const cJSON *v)
{
	char *json;

	if (!h->ctx || !v)
		return;
	json = cJSON_PrintUnformatted(v);
	if (!json) {
		h->failed = 1;
		return;
	}
	EVP_DigestUpdate(h->ctx, key, strlen(key));
	EVP_DigestUpdate(h->ctx, "=", 1);
	EVP_DigestUpdate(h->ctx, json, strlen(json));
	EVP_DigestUpdate(h->ctx, "\n", 1);
	h->used = 1;
	cJSON_free(json);
}

static void hasher_final(hasher *h, char out[33])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	out[0] = '\0';
	if (h->ctx && h->used && !h->failed &&
	    EVP_DigestFinal_ex(h->ctx, md, &n) == 1 && n >= 16) {
		for (int i = 0; i < 16; i++) {
			out[2 * i] = hex[md[i] >> 4];
			out[2 * i + 1] = hex[md[i] & 15];
		}
		out[32] = '\0';
	}
	EVP_MD_CTX_free(h->ctx);
	h->ctx = NULL;
}

/* Bytes of text in every string below v: the basis of the estimate. */
static uint64_t text_bytes(const cJSON *v)
{
	uint64_t n = 0;
	const cJSON *c;

	if (cJSON_IsString(v))
		return strlen(v->valuestring);
	cJSON_ArrayForEach(c, v)
		n += text_bytes(c);
	return n;
}

static int is_system_message(const cJSON *m)
{
	const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
	return cJSON_IsString(role) && (!strcmp(role->valuestring, "system") ||
					!strcmp(role->valuestring, "developer"));
}

static int64_t count_member(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 1e12)
		return TT_NULL;
	return (int64_t)v->valuedouble;
}

const char *const tt_request_ceiling_keys[] = {
	"max_tokens", "max_completion_tokens", "max_output_tokens",
	"maxOutputTokens", "num_predict",
	"maxTokens",  /* only one level down: Bedrock's inferenceConfig */
	NULL,
};
const char *const tt_request_ceiling_parents[] = {
	"generationConfig", "generation_config", "options", "inferenceConfig", NULL,
};

static int64_t find_max_tokens(const cJSON *root)
{
	int64_t v;

	for (int i = 0; i < TT_REQUEST_CEILING_TOP; i++)
		if ((v = count_member(root, tt_request_ceiling_keys[i])) != TT_NULL)
			return v;
	/* Gemini, Ollama and Bedrock put the ceiling one level down. */
	for (int i = 0; tt_request_ceiling_parents[i]; i++) {
		const cJSON *o = cJSON_GetObjectItemCaseSensitive(root, tt_request_ceiling_parents[i]);
		if (!cJSON_IsObject(o))
			continue;
		for (int k = 0; tt_request_ceiling_keys[k]; k++)
			if ((v = count_member(o, tt_request_ceiling_keys[k])) != TT_NULL)
				return v;
	}
	return TT_NULL;
}

void tt_request_parse(tt_request_info *info, const tt_route *r,
		      const char *body, size_t len)
{
	cJSON *root;
	hasher prompt, prefix;

	memset(info, 0, sizeof(*info));
	info->stream = -1;
	info->max_tokens = TT_NULL;
	root = cJSON_ParseWithLength(body, len);
	if (!cJSON_IsObject(root))
		goto out;
	info->parsed = 1;

	const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
	if (cJSON_IsString(model))
		tt_record_set(info->model, sizeof(info->model), model->valuestring,
			      (size_t)-1);
	else if (!cJSON_IsString(model) && r->path_model[0])
		tt_record_set(info->model, sizeof(info->model), r->path_model,
			      (size_t)-1);

	const cJSON *stream = cJSON_GetObjectItemCaseSensitive(root, "stream");
	if (cJSON_IsBool(stream))
		info->stream = cJSON_IsTrue(stream);
	const cJSON *so = cJSON_GetObjectItemCaseSensitive(root, "stream_options");
	info->include_usage =
		cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(so, "include_usage"));
	info->max_tokens = find_max_tokens(root);

	/* This runs inside the host's SSL calls: whatever OpenSSL error we
	 * cause must not stay on the thread's queue, where SSL_get_error()
	 * would find it. */
	ERR_set_mark();
	hasher_init(&prompt);
	hasher_init(&prefix);
	for (int i = 0; prefix_keys[i]; i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, prefix_keys[i]);
		if (!v)
			continue;
		hasher_add(&prompt, prefix_keys[i], v);
		hasher_add(&prefix, prefix_keys[i], v);
		info->prompt_text_bytes += text_bytes(v);
	}
	for (int i = 0; prompt_keys[i]; i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, prompt_keys[i]);
		if (!v)
			continue;
		hasher_add(&prompt, prompt_keys[i], v);
		info->prompt_text_bytes += text_bytes(v);
		/* Leading system/developer messages are part of the prefix. */
		const cJSON *m, *list = cJSON_IsArray(v) ? v : NULL;
		cJSON_ArrayForEach(m, list) {
			if (!is_system_message(m))
				break;
			hasher_add(&prefix, prompt_keys[i], m);
		}
	}
	hasher_final(&prompt, info->prompt_hash);
	hasher_final(&prefix, info->prefix_hash);
	ERR_pop_to_mark();
out:
	if (!info->model[0] && r->path_model[0])
		tt_record_set(info->model, sizeof(info->model), r->path_model,
			      (size_t)-1);
	cJSON_Delete(root);
}
