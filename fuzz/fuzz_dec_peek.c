/*
 * fuzz_dec_peek.c - libFuzzer target for the request peek (enforce mode
 * reads every request an application writes with it): any bytes give a
 * state or an error, never a read past them, and what it reports stays
 * inside the input (lengths, body, target) and its own fields.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tokentap/decoder.h"
#include "tokentap/record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a private copy of exactly size bytes: ASan sees any overread */
	uint8_t *buf = malloc(size ? size : 1);
	tt_peek pk;
	int r;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	r = tt_peek_request(&pk, buf, size);
	if (r == TT_PEEK_HEAD || r == TT_PEEK_WHOLE) {
		if (pk.head_len > size || (pk.target && (pk.target < (const char *)buf ||
							  pk.target + pk.target_len > (const char *)buf + size)))
			abort();
		if (pk.path_len > pk.target_len || pk.method[sizeof(pk.method) - 1] != '\0')
			abort();
	}
	if (r == TT_PEEK_WHOLE) {
		tt_record rec;

		if (pk.total > size || (pk.body && pk.body + pk.body_len > (const char *)buf + size))
			abort();
		tt_record_init(&rec);
		tt_peek_record(&pk, &rec);
	}
	free(buf);
	return 0;
}
