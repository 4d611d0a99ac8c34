/*
 * conn.h - what the agent keeps per TLS connection.
 *
 * The state hangs off the SSL object as OpenSSL ex_data, so finding it is
 * an array lookup with no lock, and OpenSSL's own SSL_free (whoever calls
 * it, however the reference count went) frees it through our callback.
 * A connection that turned out to carry no LLM traffic is marked with
 * TT_CONN_PASS and costs one ex_data lookup per call from then on.
 */
#ifndef TT_AGENT_CONN_H
#define TT_AGENT_CONN_H

#include <sys/types.h>

#include "tokentap/decoder.h"

struct tt_enforce;

typedef struct tt_conn {
	tt_decoder *dec;
	pid_t pid; /* the process that made it: a fork child drops it */
	struct tt_enforce *enf; /* enforce mode only (enforce.h); freed with c */
} tt_conn;

extern char tt_conn_pass_marker;
#define TT_CONN_PASS ((void *)&tt_conn_pass_marker)

/* New state with a fresh decoder delivering to on_record and on_request
 * (may be NULL) with user, or the tt_conn itself when user is NULL; NULL
 * on ENOMEM. */
tt_conn *tt_conn_new(pid_t pid, tt_record_fn on_record, tt_record_fn on_request, void *user);

/*
 * End the connection: when deliver is set, pending exchanges are delivered
 * (tt_decoder_close) first.  Frees c; accepts NULL and TT_CONN_PASS.
 */
void tt_conn_end(tt_conn *c, int deliver, int64_t now_us);

/*
 * The ex_data slot: tt_conn_slot_init() registers our index with OpenSSL
 * (once; racing callers agree) and returns it, or -1 when OpenSSL's
 * functions cannot be found.  get/set wrap SSL_get_ex_data/SSL_set_ex_data.
 */
int tt_conn_slot_init(void);
void *tt_conn_get(void *ssl, int idx);
void tt_conn_set(void *ssl, int idx, void *value);

/* Called for a connection freed by OpenSSL (see conn.c). */
typedef void (*tt_conn_free_fn)(tt_conn *c);
void tt_conn_set_free_hook(tt_conn_free_fn fn);

#endif
