/* split.c - cutting test inputs; see split.h. */
#include "split.h"

static const uint32_t seeds[SPLIT_SEEDS] = { 1, 7, 4242, 1234567, 0xdeadbeef };

uint32_t split_rand(uint32_t *s)
{
	uint32_t x = *s;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

void split_init(splitter *s, const void *p, size_t len, int mode)
{
	s->p = p;
	s->len = len;
	s->off = 0;
	s->mode = mode;
	s->rng = mode >= 1 && mode <= SPLIT_SEEDS ? seeds[mode - 1] : 1;
}

int split_next(splitter *s, const char **piece, size_t *n)
{
	size_t left = s->len - s->off, k;

	if (left == 0)
		return 0;
	if (s->mode == 0) {
		k = left;
	} else if (s->mode == SPLIT_MODES - 1) {
		k = 1;
	} else {
		/* Mostly small pieces, some empty, some large. */
		uint32_t r = split_rand(&s->rng);
		switch (r % 8) {
		case 0:
			k = 0;
			break;
		case 1: case 2: case 3: case 4:
			k = 1 + (split_rand(&s->rng) % 12);
			break;
		default:
			k = 1 + (split_rand(&s->rng) % (left / 3 + 1));
		}
		if (k > left)
			k = left;
	}
	*piece = s->p + s->off;
	*n = k;
	s->off += k;
	return 1;
}
