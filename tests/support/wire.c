/* wire.c - the recorded corpus and its expected figures; see wire.h. */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "wire.h"

static char dir_path[4096];

const char *wire_dir(void)
{
	struct stat st;
	const char *env = getenv("TOKENTAP_FIXTURES");

	snprintf(dir_path, sizeof(dir_path), "%s",
		 env ? env : "../shared/fixtures/wire");
	char manifest[4400];
	snprintf(manifest, sizeof(manifest), "%s/MANIFEST.tsv", dir_path);
	return stat(manifest, &st) == 0 ? dir_path : NULL;
}

/* A manifest figure: "-" (not reported) and "none" are -1. */
static int64_t fig(const char *s)
{
	if (!s || !*s || !strcmp(s, "-") || !strcmp(s, "none"))
		return -1;
	return strtoll(s, NULL, 10);
}

static int64_t z(int64_t v)
{
	return v < 0 ? 0 : v;
}

static int64_t extra_num(const cJSON *extra, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(extra, key);
	if (cJSON_IsNumber(v))
		return (int64_t)v->valuedouble;
	if (cJSON_IsString(v))
		return strtoll(v->valuestring, NULL, 10);
	return -1;
}

static int starts(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

/* DESIGN.md's normalisation, applied to the provider's raw figures. */
static void expect(wire_row *r, const char *const *col, const cJSON *extra)
{
	int64_t prompt = fig(col[7]), completion = fig(col[8]);
	int64_t cached = fig(col[9]), cwrite = fig(col[10]), reason = fig(col[11]);
	const char *p = r->provider;

	r->input = r->output = r->cache_read = r->cache_write = r->reasoning = -1;
	r->has_usage = strcmp(col[7], "none") != 0;
	if (!r->has_usage)
		return;
	r->cache_read = cached;
	r->cache_write = cwrite;
	r->reasoning = reason;
	if (!strcmp(p, "anthropic") ||
	    (!strcmp(p, "bedrock") && !strcmp(r->api, "invoke-with-response-stream") &&
	     strstr(r->file, "anthropic")) ||
	    (!strcmp(p, "bedrock") && !strcmp(r->api, "invoke") && strstr(r->file, "anthropic"))) {
		r->input = prompt + z(cached) + z(cwrite);
		r->output = completion;
	} else if (starts(p, "gemini")) {
		int64_t tool = extra_num(extra, "toolUsePromptTokenCount");
		r->input = prompt + z(tool);
		r->output = (completion < 0 && reason < 0) ? -1 : z(completion) + z(reason);
	} else if (!strcmp(p, "bedrock")) {
		/* Converse/Nova: inputTokens excludes the cache counts; the
		 * token-count headers fill what the body left out. */
		if (cached < 0)
			cached = r->cache_read =
				extra_num(extra, "hdr:x-amzn-bedrock-cache-read-input-token-count");
		if (cwrite < 0)
			cwrite = r->cache_write =
				extra_num(extra, "hdr:x-amzn-bedrock-cache-write-input-token-count");
		r->input = prompt + z(cached) + z(cwrite);
		r->output = completion;
		if (r->output < 0)
			r->output = extra_num(extra, "hdr:x-amzn-bedrock-output-token-count");
	} else if (!strcmp(p, "ollama")) {
		r->input = z(prompt);  /* absent: served from its cache */
		r->output = completion;
	} else if (!strcmp(p, "cohere")) {
		r->input = extra_num(extra, "billed_input");
		r->output = extra_num(extra, "billed_output");
	} else {
		/* OpenAI and the OpenAI-compatible: cached is inside prompt. */
		r->input = prompt;
		r->output = completion;
	}
}

static const char *default_uri(const wire_row *r)
{
	const char *p = r->provider, *a = r->api;

	if (!strcmp(p, "anthropic"))
		return "https://api.anthropic.com/v1/messages";
	if (!strcmp(p, "ollama"))
		return !strcmp(a, "api/generate") ? "http://127.0.0.1:11434/api/generate"
						  : "http://127.0.0.1:11434/api/chat";
	if (!strcmp(p, "deepseek"))
		return "https://api.deepseek.com/chat/completions";
	if (!strcmp(p, "groq"))
		return "https://api.groq.com/openai/v1/chat/completions";
	if (!strcmp(p, "llamacpp"))
		return "http://127.0.0.1:8080/v1/chat/completions";
	if (!strcmp(a, "responses"))
		return "https://api.openai.com/v1/responses";
	if (!strcmp(a, "embeddings"))
		return "https://api.openai.com/v1/embeddings";
	return "https://api.openai.com/v1/chat/completions";
}

static int split_tabs(char *line, const char **col, int max)
{
	int n = 0;
	char *s = line;
	while (n < max) {
		col[n++] = s;
		char *tab = strchr(s, '\t');
		if (!tab)
			break;
		*tab = '\0';
		s = tab + 1;
	}
	return n;
}

static void path_with(char *dst, size_t cap, const wire_row *r, const char *ext)
{
	char stem[256];
	snprintf(stem, sizeof(stem), "%s", r->file);
	char *dot = strstr(stem, ".chunks.jsonl");
	if (!dot)
		dot = strrchr(stem, '.');
	if (dot)
		*dot = '\0';
	snprintf(dst, cap, "%s/%s%s", dir_path, stem, ext);
}

static cJSON *read_json(const char *path)
{
	size_t len;
	char *s = tbuf_read_file(path, &len);
	cJSON *j = s ? cJSON_ParseWithLength(s, len) : NULL;
	free(s);
	return j;
}

size_t wire_load(wire_row **out)
{
	char path[4400];
	size_t len, n = 0;

	*out = NULL;
	if (!wire_dir())
		return 0;
	snprintf(path, sizeof(path), "%s/MANIFEST.tsv", dir_path);
	char *text = tbuf_read_file(path, &len);
	if (!text)
		return 0;
	wire_row *rows = calloc(256, sizeof(*rows));
	char *save = NULL;
	int header = 1;
	for (char *line = strtok_r(text, "\n", &save); line && n < 256;
	     line = strtok_r(NULL, "\n", &save)) {
		const char *col[24] = { 0 };
		if (header) {
			header = 0;
			continue;
		}
		if (split_tabs(line, col, 24) < 22)
			continue;
		wire_row *r = &rows[n];
		snprintf(r->file, sizeof(r->file), "%s", col[0]);
		snprintf(r->provider, sizeof(r->provider), "%s", col[1]);
		snprintf(r->api, sizeof(r->api), "%s", col[2]);
		r->streaming = !strcmp(col[3], "yes");
		cJSON *extra = cJSON_Parse(col[19]);
		cJSON *summary = cJSON_Parse(col[20]);
		expect(r, col, extra);

		/* Status: the manifest, else the meta file, else the name. */
		r->status = atoi(col[16]);
		path_with(path, sizeof(path), r, ".meta.json");
		cJSON *meta = read_json(path);
		const cJSON *ms = cJSON_GetObjectItemCaseSensitive(meta, "status");
		if (!r->status && cJSON_IsNumber(ms))
			r->status = (int)ms->valuedouble;
		const char *e = strstr(r->file, "/error-");
		if (!r->status && e)
			r->status = atoi(e + 7);
		if (!r->status)
			r->status = 200;

		/* Bedrock's token-count response headers, as recorded. */
		const cJSON *h, *hdrs = cJSON_GetObjectItemCaseSensitive(meta,
									  "response_headers");
		cJSON_ArrayForEach(h, hdrs) {
			const cJSON *v = cJSON_IsArray(h) ? cJSON_GetArrayItem(h, 0) : h;
			if (!strncasecmp(h->string, "x-amzn-bedrock-", 15) &&
			    strstr(h->string, "Token-Count") && cJSON_IsString(v)) {
				size_t used = strlen(r->resp_headers);
				snprintf(r->resp_headers + used, sizeof(r->resp_headers) - used,
					 "%s: %s\r\n", h->string, v->valuestring);
			}
		}

		const cJSON *uri = cJSON_GetObjectItemCaseSensitive(meta, "uri");
		if (!cJSON_IsString(uri))
			uri = cJSON_GetObjectItemCaseSensitive(summary, "uri");
		snprintf(r->uri, sizeof(r->uri), "%s",
			 cJSON_IsString(uri) ? uri->valuestring : default_uri(r));

		/* The request body: recorded, else rebuilt from the summary. */
		path_with(path, sizeof(path), r, ".request.json");
		size_t blen;
		char *body = tbuf_read_file(path, &blen);
		if (body && blen < sizeof(r->request_body)) {
			memcpy(r->request_body, body, blen);
		} else {
			cJSON *req = summary ? cJSON_Duplicate(summary, 1) : cJSON_CreateObject();
			cJSON_DeleteItemFromObject(req, "uri");
			if (!cJSON_GetObjectItemCaseSensitive(req, "stream") &&
			    !starts(r->provider, "gemini") && strcmp(r->provider, "bedrock"))
				cJSON_AddBoolToObject(req, "stream", r->streaming);
			char *s = cJSON_PrintUnformatted(req);
			snprintf(r->request_body, sizeof(r->request_body), "%s", s);
			free(s);
			cJSON_Delete(req);
		}
		free(body);
		cJSON_Delete(meta);
		cJSON_Delete(extra);
		cJSON_Delete(summary);
		n++;
	}
	free(text);
	/* Usage source and stream errors need the body. */
	for (size_t i = 0; i < n; i++) {
		wire_row *r = &rows[i];
		char *b = wire_body(r, &len);
		r->provider_error = r->streaming && b &&
				    (strstr(b, "event: error") || strstr(b, "\"error\":{") ||
				     strstr(b, "\"error\": {"));
		/* Together reports cached_tokens at the top of usage, a
		 * figure the manifest's columns do not carry. */
		const char *ct = b ? strstr(b, "\"cached_tokens\"") : NULL;
		if (!strcmp(r->provider, "together") && r->has_usage && ct)
			r->cache_read = strtoll(strchr(ct + 15, ':') + 1, NULL, 10);
		if (r->has_usage)
			strcpy(r->usage_source, "provider");
		else if (r->streaming && r->status / 100 == 2 && !r->provider_error)
			strcpy(r->usage_source, "estimated");
		else
			strcpy(r->usage_source, "none");
		free(b);
	}
	*out = rows;
	return n;
}

char *wire_body(const wire_row *r, size_t *len)
{
	char path[4400];
	snprintf(path, sizeof(path), "%s/%s", dir_path, r->file);
	char *raw = tbuf_read_file(path, len);
	if (!raw || !strstr(r->file, ".chunks.jsonl"))
		return raw;
	/* Recorded without SSE framing: frame each payload line. */
	tbuf b = { 0 };
	char *save = NULL;
	for (char *l = strtok_r(raw, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (!*l)
			continue;
		tbuf_adds(&b, "data: ");
		tbuf_adds(&b, l);
		tbuf_adds(&b, "\n\n");
	}
	tbuf_adds(&b, "data: [DONE]\n\n");
	free(raw);
	*len = b.n;
	return b.p;
}

const char *wire_content_type(const wire_row *r)
{
	const char *f = r->file;
	if (strstr(f, ".sse") || strstr(f, ".chunks.jsonl"))
		return "text/event-stream; charset=utf-8";
	if (strstr(f, ".ndjson"))
		return "application/x-ndjson";
	if (strstr(f, ".eventstream"))
		return "application/vnd.amazon.eventstream";
	return "application/json";
}

void wire_request(const wire_row *r, tbuf *out)
{
	const char *u = strstr(r->uri, "://");
	const char *host = u ? u + 3 : "localhost";
	const char *path = strchr(host, '/');
	size_t hlen = path ? (size_t)(path - host) : strlen(host);

	tbuf_addf(out, "POST %s HTTP/1.1\r\n", path ? path : "/");
	tbuf_adds(out, "Host: ");
	tbuf_add(out, host, hlen);
	tbuf_addf(out, "\r\nAuthorization: Bearer sk-SENTINEL-never-recorded\r\n"
		       "Content-Type: application/json\r\nAccept-Encoding: gzip\r\n"
		       "Content-Length: %zu\r\n\r\n%s",
		  strlen(r->request_body), r->request_body);
}

/* Chunks of varying sizes, with an extension once and a trailer. */
static void chunk_body(tbuf *out, const char *p, size_t n)
{
	size_t sizes[] = { 1, 7, 100, 3, 4096, 17, 513 };
	size_t i = 0;
	while (n) {
		size_t k = sizes[i++ % 7];
		if (k > n)
			k = n;
		tbuf_addf(out, i == 2 ? "%zx;ext=\"a\"\r\n" : "%zX\r\n", k);
		tbuf_add(out, p, k);
		tbuf_adds(out, "\r\n");
		p += k;
		n -= k;
	}
	tbuf_adds(out, "0\r\nX-Trailer: done\r\n\r\n");
}

void wire_response(const wire_row *r, const char *body, size_t len,
		   int variant, tbuf *out)
{
	tbuf gz = { 0 };
	const char *p = body;
	size_t n = len;

	if (variant == WIRE_GZIP || variant == WIRE_GZIP_CHUNKED) {
		tbuf_gzip(&gz, body, len);
		p = gz.p;
		n = gz.n;
	}
	tbuf_addf(out, "HTTP/1.1 %d Whatever\r\nContent-Type: %s\r\n", r->status,
		  wire_content_type(r));
	if (variant == WIRE_GZIP || variant == WIRE_GZIP_CHUNKED)
		tbuf_adds(out, "Content-Encoding: gzip\r\n");
	/* Bedrock reports counts in headers too; the corpus recorded them. */
	tbuf_adds(out, r->resp_headers);
	if (variant == WIRE_CHUNKED || variant == WIRE_GZIP_CHUNKED) {
		tbuf_adds(out, "Transfer-Encoding: chunked\r\n\r\n");
		chunk_body(out, p, n);
	} else if (variant == WIRE_CLOSE) {
		tbuf_adds(out, "Connection: close\r\n\r\n");
		tbuf_add(out, p, n);
	} else {
		tbuf_addf(out, "Content-Length: %zu\r\n\r\n", n);
		tbuf_add(out, p, n);
	}
	tbuf_free(&gz);
}
