/*
 * enforce_io.h - enforce mode's own I/O on a connection: sending what was
 * held back with the real SSL_write, and putting a socketpair in place of
 * the socket of a connection whose call was refused.
 */
#ifndef TT_AGENT_ENFORCE_IO_H
#define TT_AGENT_ENFORCE_IO_H

#include <stddef.h>

/*
 * Write the n bytes at p on ssl with the real SSL_write, all of them:
 * while OpenSSL says WANT_WRITE or WANT_READ, wait for the socket as the
 * client would have (poll it; without one, sleep a little, growing to
 * 10 ms), for at most 30 s in all.  Then the sent hook sees the bytes.
 * Returns n, or the real function's return (<= 0) when it failed; one
 * warning per process says so.
 */
long tt_enforce_flush(void *ssl, const char *p, size_t n);

/*
 * Put one end of a fresh socketpair, holding one unread byte, in place
 * of the descriptor under ssl (dup2): the real TCP connection closes
 * (the provider sees a TLS session end without a request) and a client
 * polling the descriptor sees it readable.  Returns the other end, which
 * the caller keeps open while the connection is its own and closes
 * after; -1 when ssl has no descriptor (memory BIOs) or the swap failed.
 */
int tt_enforce_divert(void *ssl);

#endif
