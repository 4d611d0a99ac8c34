/*
 * split.h - cut a test input into pieces: whole, at random points
 * (several fixed seeds, empty pieces included), or one byte at a time.
 *
 *	for (int mode = 0; mode < SPLIT_MODES; mode++) {
 *		splitter s;
 *		const char *p;
 *		size_t n;
 *		split_init(&s, input, len, mode);
 *		while (split_next(&s, &p, &n))
 *			feed(p, n);
 *	}
 */
#ifndef TT_TEST_SPLIT_H
#define TT_TEST_SPLIT_H

#include <stddef.h>
#include <stdint.h>

#define SPLIT_SEEDS 5
/* mode 0: whole; 1..SPLIT_SEEDS: random; SPLIT_SEEDS + 1: byte by byte */
#define SPLIT_MODES (SPLIT_SEEDS + 2)

typedef struct splitter {
	const char *p;
	size_t len, off;
	int mode;
	uint32_t rng;
} splitter;

/* A small deterministic generator (xorshift32) for test data; *state != 0. */
uint32_t split_rand(uint32_t *state);

void split_init(splitter *s, const void *p, size_t len, int mode);
/* The next piece; 0 when the input is used up.  Pieces may be empty. */
int split_next(splitter *s, const char **piece, size_t *n);

#endif
