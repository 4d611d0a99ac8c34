/*
 * enforce.h - enforce mode: a denied LLM request never leaves the process.
 *
 * With TOKENTAP_MODE=enforce, SSL_write on a connection that speaks
 * HTTP/1.1 goes through tt_enforce_write() first.  A request head is held
 * back (copied, the write reported as done) until the head and its
 * Content-Length body are complete; then the call is recognised, its
 * model and output ceiling read (the decoder's request peek,
 * tt_peek_request in tokentap/decoder.h) and its worst case reserved
 * (lease.h).
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
 * On an HTTP/2 connection (the write starts with the client preface,
 * RFC 9113 section 3.4) a synthetic response cannot be slipped into the
 * stream, so a denied call's write fails instead: each write is fed to
 * the connection's decoder before it leaves (tt_enforce_set_feed), the
 * decoder's on_request hands every request it completes to
 * tt_enforce_request(), which reserves or refuses it; a refused write
 * returns -1 with an OpenSSL error on the thread's queue that names
 * tokentap, the rule and the task (SSL_get_error: SSL_ERROR_SSL), and so
 * does every later write on that connection.
 *
 * Not checked (passed through, said once): chunked request bodies,
 * pipelined requests, heads over 64 KiB, bodies over 8 MiB.
 *
 * The parts: enforce.c (this object), enforce_h1.c, enforce_h2.c,
 * enforce_io.c (sending held bytes, swapping the socket), enforce_err.c
 * (the OpenSSL error).
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

/*
 * HTTP/2: give len bytes the caller is about to write on ssl to that
 * connection's decoder (synchronously; its on_request may call
 * tt_enforce_request on the same tt_enforce).  Must not free the
 * connection's state, even when the decoder fails.
 */
typedef void (*tt_enforce_feed_fn)(void *ssl, const void *buf, size_t len);
void tt_enforce_set_feed(tt_enforce_feed_fn feed);

tt_enforce *tt_enforce_new(void);
void tt_enforce_free(tt_enforce *e);  /* accepts NULL; settles what is pending */

/* tt_enforce_write's answers. */
enum {
	TT_ENFORCE_PASS = 0,    /* do the real write, then feed the decoder as usual */
	TT_ENFORCE_DONE = 1,    /* handled: SSL_write returns *ret */
	TT_ENFORCE_PREFED = 2,  /* HTTP/2, allowed and already fed to the decoder: do the
				 * real write, do not feed it again, report it with
				 * tt_enforce_sent() */
};

/*
 * Before the real SSL_write of len bytes: returns a TT_ENFORCE_* answer.
 * DONE: *ret is what SSL_write must return (len, or <= 0 on a failed
 * flush, an undeliverable denial or a refused HTTP/2 write).
 */
int tt_enforce_write(tt_enforce *e, void *ssl, const void *buf, size_t len, long *ret);

/*
 * After the real write of a TT_ENFORCE_PREFED answer: it sent n bytes (0
 * when it failed; the caller will retry the same bytes, which are then
 * not fed again).
 */
void tt_enforce_sent(tt_enforce *e, size_t n);

/*
 * The decoder's on_request (decoder.h): rec (borrowed) holds a whole
 * request.  Acts only while one of our HTTP/2 writes is being fed: the
 * call's worst case is reserved, or the write is refused and a record
 * with blocked: true shipped.  Any other time it returns at once.
 */
void tt_enforce_request(tt_enforce *e, const tt_record *rec);

/*
 * Before the real SSL_read: 1 when the connection was denied and the
 * synthetic response (or EOF: *got = 0) was copied to buf.
 */
int tt_enforce_read(tt_enforce *e, void *buf, size_t cap, size_t *got, int peek);

/*
 * A record of this connection completed: settle its reservation (the
 * oldest on HTTP/1.1; on HTTP/2 the one of the same request).  Returns 1
 * when the record is the decoder's copy of a call that was blocked and
 * must not be shipped; a call refused with the write it shared with a
 * blocked one is marked blocked in *rec.
 */
int tt_enforce_settle(tt_enforce *e, tt_record *rec);

/*
 * The synthetic response for a denial (exposed for tests): status 403,
 * the provider's JSON error shape, naming tokentap, the rule and the task.
 * Returns its length, or -1 when cap is too small.
 */
int tt_enforce_response(const char *provider, const char *rule, const char *task,
			const char *reason, char *out, size_t cap);

/*
 * Push the error of a refused HTTP/2 write on the calling thread's OpenSSL
 * error queue (exposed for tests): a library named "tokentap" and a reason
 * string "call blocked by budget rule \"<rule>\" for task \"<task>\"", so
 * that ERR_error_string() (what curl prints) says it, and the whole
 * sentence with the collector's reason as the error's data.  Returns 0, or
 * -1 when the process's libcrypto has no error functions we know.
 */
int tt_enforce_raise(const char *rule, const char *task, const char *reason);

/* In a fork child: the error table's lock may have been held by a thread
 * the child does not have. */
void tt_enforce_atfork_child(void);

/* An estimate of a request's input tokens from its body: bytes / 2 + 16. */
long long tt_enforce_input_estimate(size_t body_len);

#endif
