/*
 * fuzz_dec_usage.c - libFuzzer target for the usage readers of every
 * provider family (decoder/usage.c): the provider JSON of a response body,
 * stream event, NDJSON line or array element, and Bedrock's usage headers.
 *
 * The input:
 *	byte 0   the family (tt_family, modulo their number)
 *	then     lines; each one is
 *	           "H:name:value"  a response header
 *	           anything else   parsed by cJSON; an object is fed, an
 *	                           array has each element fed
 *
 * Oracles besides the sanitizers: every figure is TT_NULL or a count in
 * range (never negative, never wrapped); no figure without from_provider;
 * a family that adds cache counts to its input reports at least them; the
 * model name is NUL-terminated; the same input gives the same result.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "tokentap/record.h"
#include "decoder/usage.h"

/* Each count is at most 1e15 (usage.c); sums of four stay below this. */
#define MAX_SUM 4000000000000000LL

static void feed_line(tt_usage *u, const char *p, size_t n)
{
	cJSON *j, *e;

	if (n > 2 && p[0] == 'H' && p[1] == ':') {
		const char *colon = memchr(p + 2, ':', n - 2);

		if (colon)
			tt_usage_header(u, p + 2, (size_t)(colon - (p + 2)),
					colon + 1, n - (size_t)(colon + 1 - p));
		return;
	}
	j = cJSON_ParseWithLength(p, n);
	if (!j)
		return;
	if (cJSON_IsArray(j)) {
		cJSON_ArrayForEach(e, j)
			tt_usage_feed(u, e);
	} else {
		tt_usage_feed(u, j);
	}
	cJSON_Delete(j);
}

static void run(tt_family fam, const char *p, size_t n, tt_usage *u,
		tt_usage_result *r)
{
	size_t at = 0;

	tt_usage_init(u, fam);
	while (at < n) {
		const char *nl = memchr(p + at, '\n', n - at);
		size_t len = nl ? (size_t)(nl - (p + at)) : n - at;

		feed_line(u, p + at, len);
		at += len + 1;
	}
	tt_usage_result_get(u, r);
}

static void check(int64_t v)
{
	if (v != TT_NULL && (v < 0 || v > MAX_SUM))
		abort(); /* a negative or wrapped count */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	tt_usage u1, u2;
	tt_usage_result a, b;
	tt_family fam;

	if (size < 1)
		return 0;
	fam = (tt_family)(data[0] % (TT_FAMILY_COHERE + 1));
	run(fam, (const char *)data + 1, size - 1, &u1, &a);
	check(a.input);
	check(a.output);
	check(a.cache_read);
	check(a.cache_write);
	check(a.reasoning);
	if (!a.from_provider &&
	    (a.input != TT_NULL || a.output != TT_NULL ||
	     a.cache_read != TT_NULL || a.cache_write != TT_NULL ||
	     a.reasoning != TT_NULL))
		abort(); /* figures the provider never gave */
	if (!memchr(u1.model, 0, sizeof(u1.model)))
		abort();
	/* Anthropic and Bedrock Converse: input is the sum with the caches. */
	if ((fam == TT_FAMILY_ANTHROPIC || fam == TT_FAMILY_BEDROCK_CONVERSE) &&
	    !u1.r.input_has_cache && u1.r.input != TT_NULL &&
	    a.input < (a.cache_read == TT_NULL ? 0 : a.cache_read) +
			      (a.cache_write == TT_NULL ? 0 : a.cache_write))
		abort();
	run(fam, (const char *)data + 1, size - 1, &u2, &b);
	/* Field by field: the struct has padding. */
	if (a.input != b.input || a.output != b.output ||
	    a.cache_read != b.cache_read || a.cache_write != b.cache_write ||
	    a.reasoning != b.reasoning || a.from_provider != b.from_provider ||
	    strcmp(u1.model, u2.model) != 0)
		abort(); /* not deterministic */
	return 0;
}
