/*
 * fuzz_col_records.c - libFuzzer target for the POST /v1/records body:
 * the JSON Lines / array splitter and the record validator, fed whole and
 * in the pieces the first input byte chooses, must agree and never crash.
 * The whole input is also parsed as one record: whatever the allocation-free
 * parser accepts, cJSON must accept as an object with the same id.  No
 * string of a kept record holds a NUL.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "batch.h"

static void summary(const tt_batch *b, size_t *out)
{
	out[0] = b->nrecs;
	out[1] = b->nrejected;
	out[2] = b->fatal[0] != 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	tt_batch a, b;
	size_t sa[3], sb[3], step, at = 0;

	if (size < 1)
		return 0;
	step = 1 + data[0] % 17;
	data++;
	size--;
	tt_batch_init(&a, 1 << 20);
	tt_batch_feed(&a, (const char *)data, size);
	tt_batch_finish(&a);
	tt_batch_init(&b, 1 << 20);
	while (at < size) {
		size_t n = size - at < step ? size - at : step;

		tt_batch_feed(&b, (const char *)data + at, n);
		at += n;
	}
	tt_batch_finish(&b);
	summary(&a, sa);
	summary(&b, sb);
	if (!a.oom && !b.oom && memcmp(sa, sb, sizeof(sa)) != 0)
		abort();  /* the split changed the outcome */
	for (size_t i = 0; i < a.nrecs; i++) {
		size_t len;
		const char *id = tt_rec_str(&a.recs[i], TT_F_ID, &a.arena, &len);

		if (!id || len != 32)
			abort();  /* a kept record always has its id */
		for (int f = 0; f < TT_REC_NFIELDS; f++) {
			const char *v;

			if (tt_rec_fields[f].type != TT_FT_STR)
				continue;
			v = tt_rec_str(&a.recs[i], f, &a.arena, &len);
			if (v && memchr(v, '\0', len))
				abort();  /* a NUL would cut labels and model names */
		}
	}
	tt_batch_free(&a);
	tt_batch_free(&b);

	{
		tt_buf arena;
		tt_rec r;
		char err[128];

		tt_buf_init(&arena, 1 << 20);
		if (tt_rec_parse((const char *)data, size, &arena, &r, err, sizeof(err)) == 0) {
			cJSON *o = cJSON_ParseWithLength((const char *)data, size);
			const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
			size_t len;
			const char *ours = tt_rec_str(&r, TT_F_ID, &arena, &len);

			if (!cJSON_IsObject(o) || !cJSON_IsString(id) || strlen(id->valuestring) != len ||
			    memcmp(id->valuestring, ours, len) != 0)
				abort();  /* accepted something that is not this JSON object */
			cJSON_Delete(o);
		}
		tt_buf_free(&arena);
	}
	return 0;
}
