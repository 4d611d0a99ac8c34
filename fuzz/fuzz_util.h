/*
 * fuzz_util.h - what the focused fuzz targets share: a running hash of
 * everything their callbacks saw (to compare feeds cut in different ways)
 * and a small generator for the cut points.
 */
#ifndef TT_FUZZ_UTIL_H
#define TT_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* FNV-1a, continued from h over n more bytes. */
static inline uint64_t fuzz_mix(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ULL;
	return h;
}

/* xorshift32; *s must not be 0. */
static inline unsigned fuzz_rand(unsigned *s)
{
	unsigned x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*s = x;
	return x;
}

#endif
