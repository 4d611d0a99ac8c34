/*
 * clock.h - the two clocks of the tree, in microseconds.
 *
 * tt_mono_us() measures: timeouts, deadlines, back-off, durations.  It
 * never jumps when someone sets the date.  tt_real_us() dates: record
 * timestamps, budget windows, what a person reads.  Do not measure with it.
 */
#ifndef TT_COMMON_CLOCK_H
#define TT_COMMON_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t tt_clock_us(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline int64_t tt_mono_us(void)
{
	return tt_clock_us(CLOCK_MONOTONIC);
}

static inline int64_t tt_mono_ms(void)
{
	return tt_clock_us(CLOCK_MONOTONIC) / 1000;
}

static inline int64_t tt_real_us(void)
{
	return tt_clock_us(CLOCK_REALTIME);
}

#endif
