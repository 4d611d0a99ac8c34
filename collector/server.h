/*
 * server.h - tokentapd's HTTP API on libmicrohttpd.
 *
 *	POST /v1/records    JSON Lines or a JSON array of records
 *	GET  /v1/usage      roll-ups (usage.h)
 *	GET  /v1/verdict    {"allow": bool, "reason": ...} (budget.h)
 *	POST /v1/lease      an agent's slice of a budget (budget.h, README)
 *	GET  /v1/alerts     alert history (alert.h)
 *	GET  /metrics       Prometheus text (metrics.h)
 *	GET  /healthz       {"status": "ok", "records": N}
 *
 * POST /v1/records answers, always with a JSON body, and only after the
 * records it counts as accepted are durable (store.h):
 *	200  every record stored or a duplicate: {"accepted": N, "duplicates": M}
 *	422  some records invalid: the valid ones ARE stored; the body adds
 *	     "rejected_count", "rejected": [{"line": L, ("index": I,) "error": "..."}]
 *	     (the first 100) and "error"; resending the same batch is safe
 *	400  the body is empty, or its framing is broken (an array that never
 *	     closes): the same fields, the records that completed before the
 *	     break are stored
 *	413  body larger than the cap; nothing stored
 *	401  TCP listener with a token, and no "Authorization: Bearer <token>"
 *	503  the database failed; nothing of this request stored; retry
 *	503  the listener is at max_conns (any path; "Connection: close",
 *	     "Retry-After: 1")
 * Unknown path 404, wrong method 405 (with Allow).  A connection idle for
 * `timeout_s`, a request whose headers are not all in after
 * header_timeout_s (counted from the accept, or from the end of the
 * previous request on a keep-alive connection), or a request body still
 * arriving after 4 x timeout_s, is closed.
 *
 * Each listener admits max_conns connections.  Past that, a new one takes
 * the slot of the connection that has waited longest (over 1 s) for its
 * headers, which is closed; when none is waiting, the new one is answered
 * 503.  Listeners do not share their slots: a flood on TCP leaves the Unix
 * socket's alone.
 */
#ifndef TT_COL_SERVER_H
#define TT_COL_SERVER_H

#include <stddef.h>

#include "alert.h"
#include "budget.h"
#include "metrics.h"
#include "prices.h"
#include "store.h"

#define TT_SERVER_MAX_LISTEN 8

struct tt_server_opts {
	const char *listen[TT_SERVER_MAX_LISTEN];  /* "unix:/path" or "http://host:port" */
	size_t nlisten;
	int allow_remote;        /* accept non-loopback TCP addresses */
	const char *token;       /* bearer token for TCP listeners, or NULL */
	size_t body_max;         /* bytes; 0: 16 MiB */
	unsigned timeout_s;      /* idle; 0: 10 s */
	unsigned header_timeout_s;  /* a request's headers; 0: timeout_s */
	unsigned max_conns;      /* per listener; 0: 512 */
	tt_store *store;         /* borrowed; outlives the server */
	const tt_prices *prices; /* borrowed; outlives the server */
	tt_metrics *metrics;     /* borrowed; outlives the server */
	tt_budget *budget;       /* borrowed, or NULL: everything allowed */
	tt_alerts *alerts;       /* borrowed, or NULL: no history */
	int quiet;               /* do not print the listening lines */
};

typedef struct tt_server tt_server;

/*
 * Bind every listener and start serving.  Prints one line per listener
 * to stdout ("tokentapd: listening on http://127.0.0.1:41234"), with the
 * port chosen when the address asked for port 0.  On error returns a
 * negative code with the reason in err; nothing is left listening.
 */
int tt_server_start(const struct tt_server_opts *opts, tt_server **out, char *err,
		    size_t errlen);

/* Finish the requests in flight, close the listeners, remove Unix sockets. Accepts NULL. */
void tt_server_stop(tt_server *srv);


#endif
