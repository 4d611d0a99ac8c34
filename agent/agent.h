/*
 * agent.h - the shim's process-wide state and the work behind each hook.
 *
 * hooks.c holds the exported SSL_* functions; each calls the real one and
 * hands what was really transferred to these functions.  Nothing here may
 * abort, exit or print to stdout: on any failure the agent logs one line and
 * lets the host's call through untouched.
 */
#ifndef TT_AGENT_AGENT_H
#define TT_AGENT_AGENT_H

#include <stddef.h>

#include "tokentap/decoder.h"

/* len bytes really went out (TT_DIR_SENT) or came in (TT_DIR_RECV) on ssl. */
void tt_agent_observe(void *ssl, tt_dir dir, const void *buf, size_t len);

/* SSL_shutdown / SSL_clear: the connection on ssl is over. */
void tt_agent_conn_over(void *ssl, int forget);

/*
 * Enforce mode (enforce.h), called by the hooks before the real function:
 * 1 when handled, with what SSL_write must return in *ret, or the bytes
 * of the synthetic response copied into buf (*got; 0 is EOF).
 */
int tt_agent_enforce_write(void *ssl, const void *buf, size_t len, long *ret);
/*
 * tt_agent_enforce_write returned TT_AGENT_PREFED (HTTP/2): the hook does
 * the real write without observing it, then reports the bytes it sent
 * (0 on failure) here.
 */
#define TT_AGENT_PREFED 2
void tt_agent_enforce_sent(void *ssl, size_t n);
int tt_agent_enforce_read(void *ssl, void *buf, size_t cap, size_t *got, int peek);

#endif
