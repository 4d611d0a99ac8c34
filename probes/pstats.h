/*
 * pstats.h - the probe's counters, named once, written two ways: the log
 * line (tokentap-probe: exit: calls=... ) and the JSON document the
 * collector serves as tokentap_probe_* series (POST /v1/probe).
 *
 * Counters only grow while the probe runs (a restart starts them at 0
 * again, which Prometheus reads as a reset); gauges say how things are
 * now (connections open, files attached).
 */
#ifndef TOKENTAP_PSTATS_H
#define TOKENTAP_PSTATS_H

#include <stddef.h>
#include <stdint.h>

#define TT_PSTATS_MAX 64
#define TT_PSTATS_UNHOOKED 16 /* paths of programs whose TLS is unseen */

typedef struct tt_pstat {
	const char *name;  /* [a-z_]+, a static string */
	uint64_t value;
	int gauge;
} tt_pstat;

typedef struct tt_pstats {
	tt_pstat v[TT_PSTATS_MAX];
	size_t n;
	/* programs that make TLS connections the probe cannot see
	 * (unhooked.h): borrowed strings */
	const char *unhooked[TT_PSTATS_UNHOOKED];
	size_t nunhooked;
} tt_pstats;

/* Append one; beyond TT_PSTATS_MAX it is dropped (a build-time bound). */
void tt_pstats_add(tt_pstats *s, const char *name, uint64_t value, int gauge);

/* "name=value name=value ..." into buf (always terminated). */
void tt_pstats_line(const tt_pstats *s, char *buf, size_t cap);

/*
 * {"host":"...","counters":{...},"gauges":{...},"unhooked":[...]} into
 * buf.  Returns its length, or -1 when cap is too small.
 */
int tt_pstats_json(const tt_pstats *s, const char *host, char *buf, size_t cap);

#endif
