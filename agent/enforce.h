/*
 * enforce.h - enforce mode: a denied LLM request never leaves the process.
 *
 * With TOKENTAP_MODE=enforce, SSL_write on a connection that speaks
 * HTTP/1.1 goes through tt_enforce_write() first.  A request head is held
 * back (copied, the write reported as done) until the head and its
 * Content-Length body are complete; then the call is recognised
 * (decoder/route.h), its model and output ceiling read (decoder/request.h)
 * and its worst case reserved (lease.h).
 *
 *  - allowed: the held bytes go out with the real SSL_write (retried while
 *    OpenSSL wants to, polling the socket), and the decoder sees them;
 *  - denied: nothing goes out.  The socket under the SSL is swapped
 *    (dup2) for one end of a socketpair that holds one byte, so that a
 *    client polling it wakes up; the real TCP connection is closed; every
 *    later SSL_read on the SSL returns a synthetic HTTP/1.1 403 response
 *    with a JSON error in the provider's shape, then EOF.  A record with
 *    blocked: true is shipped.  Where that cannot be done (no file
 *    descriptor: memory BIOs) the write fails with -1 and one line is
 *    logged.
 *
 * Not checked (passed through, said once): HTTP/2 connections, chunked
 * request bodies, pipelined requests, heads over 64 KiB, bodies over 8 MiB.
 */
#ifndef TT_AGENT_ENFORCE_H
#define TT_AGENT_ENFORCE_H

#include <stddef.h>

#include "lease.h"
#include "tokentap/record.h"

typedef struct tt_enforce tt_enforce;

/* 1 when TOKENTAP_MODE=enforce (set once at load). */
extern int tt_enforce_on;

/* The default attribution and the process's pod, for lease keys. */
typedef void (*tt_enforce_key_fn)(tt_lease_key *k);
/* Ship a record the agent made itself (a blocked call). */
typedef void (*tt_enforce_ship_fn)(tt_record *rec);
/* The bytes a flush really wrote, for the decoder. */
typedef void (*tt_enforce_sent_fn)(void *ssl, const void *buf, size_t len);

void tt_enforce_setup(tt_enforce_key_fn key, tt_enforce_ship_fn ship, tt_enforce_sent_fn sent);

tt_enforce *tt_enforce_new(void);
void tt_enforce_free(tt_enforce *e);  /* accepts NULL; settles what is pending */

/*
 * Before the real SSL_write of len bytes: returns 0 when the caller should
 * do the real write itself, 1 when it was handled and *ret is what
 * SSL_write must return (len, or <= 0 on a failed flush or an
 * undeliverable denial).
 */
int tt_enforce_write(tt_enforce *e, void *ssl, const void *buf, size_t len, long *ret);

/*
 * Before the real SSL_read: 1 when the connection was denied and the
 * synthetic response (or EOF: *got = 0) was copied to buf.
 */
int tt_enforce_read(tt_enforce *e, void *buf, size_t cap, size_t *got, int peek);

/* A record of this connection completed: settle the oldest reservation. */
void tt_enforce_settle(tt_enforce *e, const tt_record *rec);

/*
 * The synthetic response for a denial (exposed for tests): status 403,
 * the provider's JSON error shape, naming tokentap, the rule and the task.
 * Returns its length, or -1 when cap is too small.
 */
int tt_enforce_response(const char *provider, const char *rule, const char *task,
			const char *reason, char *out, size_t cap);

/* An estimate of a request's input tokens from its body: bytes / 2 + 16. */
long long tt_enforce_input_estimate(size_t body_len);

#endif
