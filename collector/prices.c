/* prices.c - price table, name matching and cost, see prices.h. */
#include "prices.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokentap/error.h"

#define NAME_MAX_LEN 255
#define PRICE_MAX 1e6   /* USD per 1M tokens; anything above is a typo */

struct tt_prices {
	struct tt_price *v;
	size_t n, cap;
	int sorted;
};

tt_prices *tt_prices_new(void)
{
	return calloc(1, sizeof(tt_prices));
}

void tt_prices_clear(tt_prices *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->v[i].provider);
		free(p->v[i].model);
	}
	p->n = 0;
	p->sorted = 0;
}

void tt_prices_free(tt_prices *p)
{
	if (!p)
		return;
	tt_prices_clear(p);
	free(p->v);
	free(p);
}

size_t tt_prices_count(const tt_prices *p)
{
	return p->n;
}

static char *lower_dup(const char *s, size_t len)
{
	char *d = malloc(len + 1);

	if (!d)
		return NULL;
	for (size_t i = 0; i < len; i++)
		d[i] = (char)tolower((unsigned char)s[i]);
	d[len] = '\0';
	return d;
}

static void tier_clear(struct tt_price_tier *t)
{
	t->input = t->output = t->cache_read = t->cache_write = t->cache_write_1h = NAN;
}

/* Insert or replace (same provider and model). Takes ownership of nothing. */
static int put(tt_prices *p, const struct tt_price *e)
{
	struct tt_price *slot = NULL;

	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->v[i].model, e->model) == 0 &&
		    strcmp(p->v[i].provider, e->provider) == 0) {
			slot = &p->v[i];
			break;
		}
	if (!slot) {
		if (p->n == p->cap) {
			size_t ncap = p->cap ? p->cap * 2 : 128;
			struct tt_price *n = realloc(p->v, ncap * sizeof(*n));

			if (!n)
				return TT_ENOMEM;
			p->v = n;
			p->cap = ncap;
		}
		slot = &p->v[p->n++];
	} else {
		free(slot->provider);
		free(slot->model);
	}
	*slot = *e;
	slot->provider = strdup(e->provider);
	slot->model = strdup(e->model);
	if (!slot->provider || !slot->model)
		return TT_ENOMEM;  /* the slot keeps NULLs; tt_prices_free copes */
	p->sorted = 0;
	return 0;
}

static int err_at(char *err, size_t errlen, const char *where, const char *why)
{
	snprintf(err, errlen, "%s: %s", where, why);
	return TT_EINVAL;
}

/* A price in USD per 1M tokens -> per token; absent stays NAN. */
static int price_num(const cJSON *obj, const char *key, double *out, const char *where,
		     char *err, size_t errlen)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	char path[384];

	if (!v)
		return 0;
	snprintf(path, sizeof(path), "%s.%s", where, key);
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0 ||
	    v->valuedouble > PRICE_MAX)
		return err_at(err, errlen, path,
			      "expected a number of USD per 1M tokens, 0 to 1000000");
	*out = v->valuedouble / 1e6;
	return 0;
}

static int check_keys(const cJSON *obj, const char *const *allowed, const char *where,
		      char *err, size_t errlen)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, obj) {
		const char *const *a;
		char path[384];

		for (a = allowed; *a; a++)
			if (strcmp(*a, it->string) == 0)
				break;
		if (!*a) {
			snprintf(path, sizeof(path), "%s.%s", where, it->string);
			return err_at(err, errlen, path, "unknown key");
		}
	}
	return 0;
}

static int parse_tier(const cJSON *obj, struct tt_price_tier *t, const char *where,
		      char *err, size_t errlen)
{
	int rc;

	if ((rc = price_num(obj, "input", &t->input, where, err, errlen)) ||
	    (rc = price_num(obj, "output", &t->output, where, err, errlen)) ||
	    (rc = price_num(obj, "cache_read", &t->cache_read, where, err, errlen)) ||
	    (rc = price_num(obj, "cache_write", &t->cache_write, where, err, errlen)) ||
	    (rc = price_num(obj, "cache_write_1h", &t->cache_write_1h, where, err, errlen)))
		return rc;
	return 0;
}

static int parse_model(tt_prices *p, const char *provider, const cJSON *m, int priority,
		       const char *where, char *err, size_t errlen)
{
	static const char *const keys[] = {"input", "output", "cache_read", "cache_write",
		"cache_write_1h", "batch_input", "batch_output", "long_context", "notes", NULL};
	static const char *const lc_keys[] = {"threshold", "input", "output", "cache_read",
		"cache_write", "cache_write_1h", NULL};
	struct tt_price e;
	const cJSON *lc;
	char path[384], pname[NAME_MAX_LEN + 1];
	int rc;

	snprintf(path, sizeof(path), "%s.%s", where, m->string);
	if (!cJSON_IsObject(m))
		return err_at(err, errlen, path, "expected an object of prices");
	if (strlen(m->string) == 0 || strlen(m->string) > NAME_MAX_LEN)
		return err_at(err, errlen, path, "model name must be 1 to 255 bytes");
	if ((rc = check_keys(m, keys, path, err, errlen)))
		return rc;
	memset(&e, 0, sizeof(e));
	tier_clear(&e.base);
	tier_clear(&e.lc);
	e.batch_input = e.batch_output = NAN;
	e.priority = priority;
	if ((rc = parse_tier(m, &e.base, path, err, errlen)) ||
	    (rc = price_num(m, "batch_input", &e.batch_input, path, err, errlen)) ||
	    (rc = price_num(m, "batch_output", &e.batch_output, path, err, errlen)))
		return rc;
	if (isnan(e.base.input) || isnan(e.base.output))
		return err_at(err, errlen, path, "\"input\" and \"output\" prices are required");
	lc = cJSON_GetObjectItemCaseSensitive(m, "long_context");
	if (lc) {
		const cJSON *th;
		char lpath[400];

		snprintf(lpath, sizeof(lpath), "%s.long_context", path);
		if (!cJSON_IsObject(lc))
			return err_at(err, errlen, lpath, "expected an object");
		if ((rc = check_keys(lc, lc_keys, lpath, err, errlen)) ||
		    (rc = parse_tier(lc, &e.lc, lpath, err, errlen)))
			return rc;
		th = cJSON_GetObjectItemCaseSensitive(lc, "threshold");
		if (!cJSON_IsNumber(th) || th->valuedouble < 1 || th->valuedouble > 1e12 ||
		    th->valuedouble != floor(th->valuedouble))
			return err_at(err, errlen, lpath,
				      "\"threshold\" (input tokens, a positive integer) is required");
		e.lc_threshold = (int64_t)th->valuedouble;
	}
	{
		size_t pl = strlen(provider);

		if (pl > NAME_MAX_LEN)
			pl = NAME_MAX_LEN;
		for (size_t i = 0; i < pl; i++)
			pname[i] = (char)tolower((unsigned char)provider[i]);
		pname[pl] = '\0';
	}
	e.provider = pname;
	e.model = lower_dup(m->string, strlen(m->string));
	if (!e.model)
		return TT_ENOMEM;
	rc = put(p, &e);
	free(e.model);
	return rc;
}

static int parse_models(tt_prices *p, const char *provider, const cJSON *models, int priority,
			const char *where, char *err, size_t errlen)
{
	const cJSON *m;
	int rc;

	if (!cJSON_IsObject(models))
		return err_at(err, errlen, where, "expected an object of models");
	cJSON_ArrayForEach(m, models) {
		if ((rc = parse_model(p, provider, m, priority, where, err, errlen)))
			return rc;
	}
	return 0;
}

/* LiteLLM's provider names that differ from DESIGN.md's. */
static const char *map_litellm_provider(const char *lp)
{
	if (!lp)
		return "";
	if (strcmp(lp, "azure") == 0 || strcmp(lp, "azure_ai") == 0)
		return "azure_openai";
	if (strcmp(lp, "together_ai") == 0)
		return "together";
	if (strncmp(lp, "vertex_ai", 9) == 0)
		return "gemini";
	if (strcmp(lp, "bedrock_converse") == 0)
		return "bedrock";
	if (strcmp(lp, "text-completion-openai") == 0)
		return "openai";
	return lp;
}

static double litellm_cost(const cJSON *m, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, key);

	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0 ||
	    v->valuedouble > PRICE_MAX / 1e6)
		return NAN;
	return v->valuedouble;
}

static int add_litellm(tt_prices *p, const cJSON *root, int priority)
{
	const cJSON *m;

	cJSON_ArrayForEach(m, root) {
		const cJSON *lpv;
		const char *lp, *name = m->string;
		struct tt_price e;
		char *model;
		int rc;

		if (!cJSON_IsObject(m))
			continue;
		memset(&e, 0, sizeof(e));
		tier_clear(&e.base);
		tier_clear(&e.lc);
		e.priority = priority;
		e.base.input = litellm_cost(m, "input_cost_per_token");
		e.base.output = litellm_cost(m, "output_cost_per_token");
		if (isnan(e.base.input))
			continue;  /* image, audio, per-second or per-query models */
		if (isnan(e.base.output))
			e.base.output = 0;  /* embeddings list no output price */
		e.base.cache_read = litellm_cost(m, "cache_read_input_token_cost");
		e.base.cache_write = litellm_cost(m, "cache_creation_input_token_cost");
		e.base.cache_write_1h = litellm_cost(m, "cache_creation_input_token_cost_above_1hr");
		e.batch_input = litellm_cost(m, "input_cost_per_token_batches");
		e.batch_output = litellm_cost(m, "output_cost_per_token_batches");
		e.lc.input = litellm_cost(m, "input_cost_per_token_above_200k_tokens");
		if (!isnan(e.lc.input)) {
			e.lc_threshold = 200000;
			e.lc.output = litellm_cost(m, "output_cost_per_token_above_200k_tokens");
			e.lc.cache_read = litellm_cost(m, "cache_read_input_token_cost_above_200k_tokens");
			e.lc.cache_write =
				litellm_cost(m, "cache_creation_input_token_cost_above_200k_tokens");
		}
		lpv = cJSON_GetObjectItemCaseSensitive(m, "litellm_provider");
		lp = cJSON_IsString(lpv) ? lpv->valuestring : NULL;
		/* "groq/llama3-8b-8192": the first segment names the provider. */
		if (lp) {
			size_t n = strlen(lp);

			if (strncmp(name, lp, n) == 0 && name[n] == '/')
				name += n + 1;
		}
		if (strlen(name) == 0 || strlen(name) > NAME_MAX_LEN)
			continue;
		e.provider = (char *)map_litellm_provider(lp);
		if (strlen(e.provider) > NAME_MAX_LEN)
			e.provider = "";
		model = lower_dup(name, strlen(name));
		if (!model)
			return TT_ENOMEM;
		e.model = model;
		rc = put(p, &e);
		free(model);
		if (rc)
			return rc;
	}
	return 0;
}

int tt_prices_add_json(tt_prices *p, const cJSON *root, int priority, const char *where,
		       char *err, size_t errlen)
{
	static const char *const top_keys[] = {"schema", "unit", "notes", "providers", "models",
		NULL};
	static const char *const prov_keys[] = {"source", "as_of", "notes", "models", NULL};
	const cJSON *providers, *models, *it;
	char path[384];
	int rc;

	if (!cJSON_IsObject(root))
		return err_at(err, errlen, where, "expected an object");
	providers = cJSON_GetObjectItemCaseSensitive(root, "providers");
	models = cJSON_GetObjectItemCaseSensitive(root, "models");
	if (!providers && !models) {
		/* LiteLLM's file: model -> {input_cost_per_token, ...}. */
		cJSON_ArrayForEach(it, root) {
			if (cJSON_IsObject(it) &&
			    (cJSON_GetObjectItemCaseSensitive(it, "input_cost_per_token") ||
			     cJSON_GetObjectItemCaseSensitive(it, "output_cost_per_token")))
				return add_litellm(p, root, priority);
		}
		if (!root->child)
			return 0;
		return err_at(err, errlen, where,
			      "expected \"providers\", \"models\" or LiteLLM-style entries "
			      "with \"input_cost_per_token\"");
	}
	if ((rc = check_keys(root, top_keys, where, err, errlen)))
		return rc;
	if (models) {
		snprintf(path, sizeof(path), "%s.models", where);
		if ((rc = parse_models(p, "", models, priority, path, err, errlen)))
			return rc;
	}
	if (!providers)
		return 0;
	snprintf(path, sizeof(path), "%s.providers", where);
	if (!cJSON_IsObject(providers))
		return err_at(err, errlen, path, "expected an object of providers");
	cJSON_ArrayForEach(it, providers) {
		char ppath[400], mpath[420];
		const cJSON *pm;

		snprintf(ppath, sizeof(ppath), "%s.%s", path, it->string);
		if (!cJSON_IsObject(it))
			return err_at(err, errlen, ppath, "expected an object");
		if (strlen(it->string) == 0 || strlen(it->string) > 31)
			return err_at(err, errlen, ppath, "provider name must be 1 to 31 bytes");
		if ((rc = check_keys(it, prov_keys, ppath, err, errlen)))
			return rc;
		pm = cJSON_GetObjectItemCaseSensitive(it, "models");
		if (!pm)
			return err_at(err, errlen, ppath, "\"models\" is required");
		snprintf(mpath, sizeof(mpath), "%s.models", ppath);
		if ((rc = parse_models(p, it->string, pm, priority, mpath, err, errlen)))
			return rc;
	}
	return 0;
}

static int cmp_price(const void *a, const void *b)
{
	const struct tt_price *x = a, *y = b;

	return strcmp(x->model, y->model);
}

void tt_prices_finish(tt_prices *p)
{
	if (p->n)
		qsort(p->v, p->n, sizeof(p->v[0]), cmp_price);
	p->sorted = 1;
}

static const struct tt_price *find(const tt_prices *p, const char *prov, size_t prov_len,
				   const char *name)
{
	size_t lo = 0, hi = p->n, first;
	const struct tt_price *best = NULL;
	int best_score = -1;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(p->v[mid].model, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (first = lo; first < p->n && strcmp(p->v[first].model, name) == 0; first++) {
		const struct tt_price *e = &p->v[first];
		int match = prov && strlen(e->provider) == prov_len &&
			    strncasecmp(e->provider, prov, prov_len) == 0;
		int score = e->priority * 4 + (match ? 2 : e->provider[0] == '\0' ? 1 : 0);

		if (score > best_score) {
			best = e;
			best_score = score;
		}
	}
	return best;
}

static int all_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

/* Cut one version suffix off name (in place). Returns 1 if it cut something. */
static int strip_suffix(char *name)
{
	size_t n = strlen(name);
	char *at = strchr(name, '@');
	char *colon = strrchr(name, ':');

	if (at && at != name) {                         /* vertex: claude-3-5-sonnet@20240620 */
		*at = '\0';
		return 1;
	}
	if (colon && colon != name) {                   /* bedrock "-v1:0", ollama ":8b" */
		*colon = '\0';
		return 1;
	}
	if (n > 3 && name[n - 3] == '-' && name[n - 2] == 'v' && name[n - 1] >= '0' &&
	    name[n - 1] <= '9') {                        /* "-v1" */
		name[n - 3] = '\0';
		return 1;
	}
	if (n > 11 && name[n - 11] == '-' && all_digits(name + n - 10, 4) && name[n - 6] == '-' &&
	    all_digits(name + n - 5, 2) && name[n - 3] == '-' && all_digits(name + n - 2, 2)) {
		name[n - 11] = '\0';                    /* -2024-07-18 */
		return 1;
	}
	if (n > 9 && name[n - 9] == '-' && all_digits(name + n - 8, 8)) {
		name[n - 9] = '\0';                     /* -20240620 */
		return 1;
	}
	if (n > 7 && strcmp(name + n - 7, "-latest") == 0) {
		name[n - 7] = '\0';
		return 1;
	}
	if (n > 14 && strncmp(name + n - 14, "-preview-", 9) == 0 &&
	    all_digits(name + n - 5, 2) && name[n - 3] == '-' && all_digits(name + n - 2, 2)) {
		name[n - 14] = '\0';                    /* gemini-2.5-flash-preview-05-20 */
		return 1;
	}
	if (n > 5 && name[n - 5] == '-' && all_digits(name + n - 4, 4)) {
		name[n - 5] = '\0';                     /* gpt-3.5-turbo-0125 */
		return 1;
	}
	if (n > 4 && name[n - 4] == '-' && all_digits(name + n - 3, 3)) {
		name[n - 4] = '\0';                     /* gemini-2.0-flash-001 */
		return 1;
	}
	if (n > 2 && strcmp(name + n - 2, "-0") == 0) {
		name[n - 2] = '\0';                     /* claude-sonnet-4-0 */
		return 1;
	}
	return 0;
}

static const char *strip_dotted_prefix(const char *s)
{
	static const char *const regions[] = {"us.", "eu.", "apac.", "global.", "us-gov.", "jp.",
		"au.", "ca.", NULL};
	static const char *const vendors[] = {"anthropic.", "meta.", "amazon.", "mistral.",
		"cohere.", "ai21.", "deepseek.", "openai.", "qwen.", "writer.", NULL};

	for (const char *const *r = regions; *r; r++)
		if (strncmp(s, *r, strlen(*r)) == 0) {
			s += strlen(*r);
			break;
		}
	for (const char *const *v = vendors; *v; v++)
		if (strncmp(s, *v, strlen(*v)) == 0) {
			s += strlen(*v);
			break;
		}
	return s;
}

const struct tt_price *tt_prices_lookup(const tt_prices *p, const char *provider,
					size_t provider_len, const char *model, size_t model_len)
{
	char name[NAME_MAX_LEN + 1], alt[NAME_MAX_LEN + 16];
	const struct tt_price *hit;
	const char *s, *slash;

	if (!model || model_len == 0 || model_len > NAME_MAX_LEN || !p->sorted || p->n == 0)
		return NULL;
	for (size_t i = 0; i < model_len; i++)
		name[i] = (char)tolower((unsigned char)model[i]);
	name[model_len] = '\0';
	if ((hit = find(p, provider, provider_len, name)))
		return hit;

	/* "openai/gpt-4o", "models/gemini-2.5-pro", "us.anthropic.claude-..." */
	slash = strrchr(name, '/');
	s = strip_dotted_prefix(slash ? slash + 1 : name);
	if (s != name) {
		memmove(name, s, strlen(s) + 1);
		if ((hit = find(p, provider, provider_len, name)))
			return hit;
	}
	for (int i = 0; i < 4 && strip_suffix(name); i++) {
		if ((hit = find(p, provider, provider_len, name)))
			return hit;
		/* mistral-small-2503 is priced as mistral-small-latest */
		snprintf(alt, sizeof(alt), "%s-latest", name);
		if ((hit = find(p, provider, provider_len, alt)))
			return hit;
	}
	return NULL;
}

static double or_else(double v, double dflt)
{
	return isnan(v) ? dflt : v;
}

void tt_price_cost(const struct tt_price *pr, int64_t input, int64_t output, int64_t cache_read,
		   int64_t cache_write, double *cost, double *savings)
{
	struct tt_price_tier t = pr->base;
	double in_price, cr_price, cw_price;
	int64_t uncached;

	input = input < 0 ? 0 : input;
	output = output < 0 ? 0 : output;
	cache_read = cache_read < 0 ? 0 : cache_read;
	cache_write = cache_write < 0 ? 0 : cache_write;
	if (pr->lc_threshold > 0 && input > pr->lc_threshold) {
		/* The whole request is billed at the long-context tier. */
		t.input = or_else(pr->lc.input, t.input);
		t.output = or_else(pr->lc.output, t.output);
		t.cache_read = or_else(pr->lc.cache_read, t.cache_read);
		t.cache_write = or_else(pr->lc.cache_write, t.cache_write);
	}
	in_price = t.input;
	cr_price = or_else(t.cache_read, in_price);
	cw_price = or_else(t.cache_write, in_price);
	uncached = input - cache_read - cache_write;
	if (uncached < 0)
		uncached = 0;
	*cost = (double)uncached * in_price + (double)cache_read * cr_price +
		(double)cache_write * cw_price + (double)output * t.output;
	*savings = (double)cache_read * (in_price - cr_price);
}

void tt_prices_apply(const tt_prices *p, tt_rec *r, const tt_buf *arena)
{
	const struct tt_price *pr;
	const char *model, *prov;
	size_t mlen, plen;

	r->priced = 0;
	r->cost_usd = 0;
	r->cache_savings_usd = 0;
	if (tt_rec_is_null(r, TT_F_INPUT_TOKENS) && tt_rec_is_null(r, TT_F_OUTPUT_TOKENS) &&
	    tt_rec_is_null(r, TT_F_CACHE_READ_TOKENS) && tt_rec_is_null(r, TT_F_CACHE_WRITE_TOKENS)) {
		if (tt_rec_int(r, TT_F_STATUS, 0) >= 400)
			r->priced = 1;  /* a failed call with no usage costs nothing */
		return;
	}
	model = tt_rec_str(r, TT_F_MODEL, arena, &mlen);
	if (!model || mlen == 0)
		model = tt_rec_str(r, TT_F_REQUEST_MODEL, arena, &mlen);
	prov = tt_rec_str(r, TT_F_PROVIDER, arena, &plen);
	pr = model ? tt_prices_lookup(p, prov, plen, model, mlen) : NULL;
	if (!pr)
		return;
	tt_price_cost(pr, tt_rec_int(r, TT_F_INPUT_TOKENS, 0), tt_rec_int(r, TT_F_OUTPUT_TOKENS, 0),
		      tt_rec_int(r, TT_F_CACHE_READ_TOKENS, 0),
		      tt_rec_int(r, TT_F_CACHE_WRITE_TOKENS, 0), &r->cost_usd,
		      &r->cache_savings_usd);
	r->priced = 1;
}
