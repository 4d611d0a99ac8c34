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

#endif
