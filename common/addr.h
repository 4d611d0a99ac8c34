/*
 * addr.h - where tokentapd is: the one parser of its address, for the
 * agent, the probe, the command and the daemon's --listen.
 *
 *	unix:/run/tokentap/tokentapd.sock      a Unix socket
 *	http://collector.ns.svc:7070           TCP; the host may be a name,
 *	http://127.0.0.1:7070/                 an IPv4 address or [an IPv6
 *	http://[::1]:7070                      address]; a trailing path is
 *	                                       ignored; the port defaults to 80
 */
#ifndef TT_COMMON_ADDR_H
#define TT_COMMON_ADDR_H

#include <stddef.h>

/* Where records go when nothing says otherwise. */
#define TT_DEFAULT_COLLECTOR "unix:/run/tokentap/tokentapd.sock"

typedef struct tt_addr {
	int is_unix;
	char path[108];   /* unix: the socket's path (sun_path's size) */
	char host[256];   /* http: the host, brackets removed */
	char port[6];     /* http: "0" to "65535" (0: a listener picks one) */
	int numeric;      /* http: the host is an IP address (no lookup) */
} tt_addr;

/*
 * Parse s into *out.  Returns 0, or TT_EINVAL with the reason in err
 * (NULL allowed) for anything else: other schemes (https: tokentapd
 * speaks plain HTTP), an empty host, a port out of range, a path too long.
 */
int tt_addr_parse(const char *s, tt_addr *out, char *err, size_t errlen);

#endif
