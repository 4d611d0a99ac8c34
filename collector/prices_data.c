/*
 * prices_data.c - data/prices.json, compiled into the binary so that
 * tokentapd needs nothing installed beside it.  The assembler's .incbin
 * reads the file at build time (the path is relative to the top of the
 * checkout, where make runs); collector.mk lists it as a prerequisite.
 */
#include <stddef.h>

#include "prices.h"

#ifndef TT_PRICES_FILE
#define TT_PRICES_FILE "data/prices.json"
#endif

__asm__(".section .rodata\n"
	".balign 16\n"
	".hidden tt__prices_json\n"
	".hidden tt__prices_json_end\n"
	"tt__prices_json:\n"
	".incbin \"" TT_PRICES_FILE "\"\n"
	"tt__prices_json_end:\n"
	".byte 0\n"
	".previous\n");

extern const char tt__prices_json[];
extern const char tt__prices_json_end[];

const char *tt_prices_builtin_json(size_t *len)
{
	if (len)
		*len = (size_t)(tt__prices_json_end - tt__prices_json);
	return tt__prices_json;
}
