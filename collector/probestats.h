/*
 * probestats.h - the counters of the node probes, for /metrics.
 *
 * tokentap-probe has no /metrics of its own: it posts its counters every
 * few seconds (POST /v1/probe) as
 *
 *	{"host": "node-1", "counters": {"calls": 123, "dropped_events": 0, ...},
 *	 "gauges": {"conns_live": 4, ...},
 *	 "unhooked": ["/opt/x/bin/agent", ...]}
 *
 * and tokentapd serves the latest of each host as
 *
 *	tokentap_probe_calls_total{host="node-1"} 123
 *	tokentap_probe_conns_live{host="node-1"} 4
 *
 * Bounded: at most max_hosts hosts (a new host past that is refused and
 * counted), 64 counters and 64 gauges a host, names of [a-z_] only, and a
 * host silent for an hour is forgotten.  The only label is the host;
 * "unhooked" (at most 16 paths of up to 256 bytes: programs that make TLS
 * connections the probe cannot see) is served by GET /v1/probe only.
 * Kept in memory: after a restart of tokentapd, each probe's next post
 * brings its series back.  Thread-safe.
 */
#ifndef TT_COL_PROBESTATS_H
#define TT_COL_PROBESTATS_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

typedef struct tt_probestats tt_probestats;

tt_probestats *tt_probestats_new(size_t max_hosts); /* 0: 256; NULL on ENOMEM */
void tt_probestats_free(tt_probestats *ps);        /* accepts NULL */

/*
 * Keep one posted document (len bytes of JSON), received at now_us.
 * Returns 0, TT_EINVAL with the reason in err, or TT_ETRUNCATED when the
 * host is new and max_hosts are known already.
 */
int tt_probestats_put(tt_probestats *ps, const char *json, size_t len,
		      int64_t now_us, char *err, size_t errlen);

/* Append the tokentap_probe_* families (Prometheus text) to out. */
int tt_probestats_render(tt_probestats *ps, int64_t now_us, tt_buf *out);

/*
 * GET /v1/probe: {"probes": [each host's latest document]}.  The paths of
 * the programs whose TLS a probe cannot see are here, not in /metrics.
 */
int tt_probestats_json(tt_probestats *ps, int64_t now_us, tt_buf *out);

#endif
