/*
 * guard.h - a per-thread flag that says "tokentap itself is running here".
 *
 * Set while the agent handles a hooked call (so that anything we call that
 * re-enters a hook passes straight through) and for the whole life of the
 * shipper thread (its own traffic is never observed).  Initial-exec TLS: the
 * shim is loaded at start-up, and a dynamic TLS access could allocate.
 */
#ifndef TT_AGENT_GUARD_H
#define TT_AGENT_GUARD_H

extern __thread int tt_guard_depth __attribute__((tls_model("initial-exec")));

static inline int tt_guard_active(void) { return tt_guard_depth != 0; }
static inline void tt_guard_enter(void) { tt_guard_depth++; }
static inline void tt_guard_leave(void) { tt_guard_depth--; }

#endif
