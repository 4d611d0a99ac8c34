/*
 * client.h - the one client of tokentapd: the shipper's records, enforce
 * mode's leases, the probe's counters and the tokentap command's queries.
 *
 * HTTP/1.1 over a Unix socket or TCP (common/addr.h), one request per
 * connection, every step bounded by the deadline the caller gives: a slow,
 * silent or absent collector costs the caller at most that.  Host names
 * are looked up on a thread of their own (names.h), never on the caller's
 * path.  Over TCP every request carries the bearer token, when one is set
 * (tokentapd --token-file); over a Unix socket the socket's permissions
 * say who may talk.  The token is never logged and is wiped when the
 * client is freed.
 *
 * libcurl is not used here: this runs inside other people's programs
 * (LD_PRELOAD), where loading libcurl and its TLS stack, and forking while
 * it is half loaded, were both real problems, and the collector speaks
 * only plain HTTP.
 *
 *	tt_client *c = tt_client_new("http://collector:7070", err, sizeof(err));
 *	tt_buf ans;
 *	tt_buf_init(&ans, 65536);
 *	int st = tt_client_request(c, "POST", "/v1/lease", "application/json",
 *				   body, len, 1000, &ans, err, sizeof(err));
 *	// st: the HTTP status, or a negative tt_error
 *
 * Thread-safe: several threads may send at once.
 */
#ifndef TT_SHIP_CLIENT_H
#define TT_SHIP_CLIENT_H

#include <stddef.h>

#include "common/buf.h"

typedef struct tt_client tt_client;

/*
 * A client of the collector at addr (common/addr.h's forms).  NULL with
 * the reason in err for an address it does not understand, or when out of
 * memory.
 */
tt_client *tt_client_new(const char *addr, char *err, size_t errlen);

/* Accepts NULL. */
void tt_client_free(tt_client *c);

/* The bearer token for TCP (copied; NULL or "" removes it). */
void tt_client_set_token(tt_client *c, const char *token);

/*
 * Read the token from a file (common/token.h).  Returns 0, or a negative
 * tt_error with the reason in err; the client then sends none.
 */
int tt_client_token_file(tt_client *c, const char *path, char *err, size_t errlen);

/*
 * One request.  body (len bytes, may be NULL with len 0) goes with
 * ctype as its Content-Type.  The answer's body is appended to answer
 * (its cap bounds it).  Returns the HTTP status (> 0), or: TT_EIO (could
 * not connect, send or hear the answer by timeout_ms), TT_EPROTO (the
 * answer is not HTTP), TT_ETRUNCATED (its body is over answer's cap),
 * with the reason in err.
 */
int tt_client_request(tt_client *c, const char *method, const char *path,
		      const char *ctype, const void *body, size_t len, int timeout_ms,
		      tt_buf *answer, char *err, size_t errlen);

/*
 * A descriptor (an eventfd, a pipe's read end; -1 for none) that cuts
 * short every wait of this client's requests, those under way included,
 * once it is readable: they end with TT_EIO.  The caller owns it and keeps
 * it open while the client lives.  A name lookup's first wait (names.h)
 * is not cut: it ends by the request's deadline.
 */
void tt_client_set_cancel(tt_client *c, int fd);

/* The address it talks to, as given. */
const char *tt_client_addr(const tt_client *c);

/* In a fork child, before the client is used there (names.h). */
void tt_client_atfork_child(tt_client *c);

#endif
