/*
 * http.h - POST JSON Lines to the collector, with libcurl.
 *
 * libcurl is opened at run time (dlopen of libcurl.so.4, RTLD_LOCAL) on the
 * first tt_http_new(), not linked: a shim linked against libcurl would
 * load it, its TLS library and a dozen others into every program started
 * under the agent, and would put libssl into the global scope of programs
 * (CPython) that keep it local.
 *
 * One tt_http is used by one thread at a time (the shipper's).
 */
#ifndef TT_AGENT_HTTP_H
#define TT_AGENT_HTTP_H

#include <stddef.h>

typedef struct tt_http tt_http;

/*
 * collector is "unix:/path.sock" or "http://host:port" (a trailing path is
 * ignored; records go to /v1/records).  Returns NULL with *err set to
 * TT_EINVAL for a collector string it does not understand, TT_ENOTSUP when
 * libcurl cannot be loaded, TT_ENOMEM.
 *
 * When TOKENTAP_TOKEN_FILE names a readable file of one line, every POST
 * carries "Authorization: Bearer <that line>" (tokentapd --token-file).
 * An unreadable or malformed file costs one warning; records are then sent
 * without a token.
 */
tt_http *tt_http_new(const char *collector, int *err);

/* The same, for another of the collector's paths ("/v1/probe"). */
tt_http *tt_http_new_for(const char *collector, const char *api_path, int *err);

/*
 * Load libcurl now, in the calling thread (tt_http_new does it too).  The
 * agent calls it under the lock its pthread_atfork prepare handler takes,
 * so that no fork() of the host lands in the middle of the dlopen().
 */
void tt_http_preload(void);

/*
 * POST body (JSON Lines) to /v1/records (or the path of tt_http_new_for).  Returns the HTTP status (> 0), or
 * a negative tt_error (TT_EIO) when no answer came: refused, timed out.
 * Bounded: at most ~1 s to connect and 5 s in all.
 */
long tt_http_post(tt_http *h, const char *body, size_t len);

void tt_http_free(tt_http *h); /* accepts NULL */

#endif
