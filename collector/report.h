/*
 * report.h - `tokentap report`: the usage roll-up (usage.h's JSON) as a
 * table for a person: where the money goes, biggest first, each row's
 * share of the total and the cumulative share (the 80/20 view), unpriced
 * calls flagged, the calls a budget blocked (not in the calls: they never
 * reached the provider), and the cache savings realised.
 */
#ifndef TT_COL_REPORT_H
#define TT_COL_REPORT_H

#include <stddef.h>
#include <stdio.h>

struct tt_report_opts {
	int top;          /* rows shown; the rest are summed in one line; <= 0: all */
	int unicode;      /* draw bars with block characters */
};

/*
 * Render usage JSON (`json`, `len` bytes) to out.  Returns 0, or TT_EINVAL
 * with the reason in err when the JSON is not a usage roll-up.
 */
int tt_report_render(const char *json, size_t len, const struct tt_report_opts *o, FILE *out,
		     char *err, size_t errlen);

/* "1.2k", "3.4M": a token count in at most 6 characters. */
void tt_report_tokens(double n, char *buf, size_t cap);

/* "$12.34", "$0.0123", "$0.000123": a dollar amount with useful precision. */
void tt_report_usd(double v, char *buf, size_t cap);

#endif
