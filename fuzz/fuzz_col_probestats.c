/*
 * fuzz_col_probestats.c - libFuzzer target for POST /v1/probe: any body
 * is kept or refused, never crashes or leaks, what /metrics then serves
 * holds only tokentap_probe_ lines of names and hosts it checked, and
 * GET /v1/probe's document is JSON.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "probestats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	tt_probestats *ps = tt_probestats_new(4);
	char err[160];
	tt_buf b;

	if (!ps)
		return 0;
	tt_probestats_put(ps, (const char *)data, size, 1000, err, sizeof(err));
	tt_buf_init(&b, 1 << 22);
	if (tt_probestats_render(ps, 2000, &b) == 0 && b.data) {
		/* every line is a comment or a tokentap_probe_ series */
		for (const char *l = b.data; *l;) {
			const char *nl = strchr(l, '\n');

			if (l[0] != '#' && strncmp(l, "tokentap_probe_", 15) != 0)
				abort();
			if (!nl)
				abort();
			l = nl + 1;
		}
	}
	tt_buf_free(&b);
	tt_buf_init(&b, 1 << 22);
	if (tt_probestats_json(ps, 2000, &b) == 0) {
		cJSON *doc = cJSON_Parse(b.data);

		if (!doc)
			abort();
		cJSON_Delete(doc);
	}
	tt_buf_free(&b);
	tt_probestats_free(ps);
	return 0;
}
