/*
 * hooks.c - the only symbols libtokentap.so exports (libtokentap.map).
 *
 * Each hook calls the real function first and observes only what it
 * reports as transferred: a positive return for SSL_read/SSL_write, the
 * count of a successful (1) _ex call.  (Enforce mode on HTTP/2 is the
 * exception: a write is decoded before it leaves, see enforce.h.)  Peeked bytes come back from the next
 * read, so peeks are passed through and decoded then, once.  Connection
 * teardown goes through OpenSSL's ex_data free callback (conn.c), which
 * fires when SSL_free drops the last reference, whoever calls it; the
 * SSL_free hook only has to exist so that no state leaks if it did not.
 */
#include <openssl/ssl.h>

#include "agent.h"
#include "enforce.h"
#include "guard.h"
#include "common/log.h"
#include "resolve.h"

#define TT_EXPORT __attribute__((visibility("default")))

static int warn_missing;

static void missing(const char *name)
{
	tt_log_once(&warn_missing, TT_LOG_ERROR,
		    "%s: the real function cannot be found; call fails", name);
}

/* The real function, typed by OpenSSL's own prototype. */
#define REAL(name) \
	__typeof__(&name) real = (__typeof__(&name))tt_real(TT_REAL_##name)

TT_EXPORT int SSL_read(SSL *ssl, void *buf, int num)
{
	REAL(SSL_read);
	int r;

	if (!real) {
		missing("SSL_read");
		return -1;
	}
	if (tt_enforce_on && num > 0 && !tt_guard_active()) {
		size_t got;

		if (tt_agent_enforce_read(ssl, buf, (size_t)num, &got, 0))
			return (int)got;  /* a blocked call's answer, then EOF */
	}
	r = real(ssl, buf, num);
	if (r > 0 && !tt_guard_active())
		tt_agent_observe(ssl, TT_DIR_RECV, buf, (size_t)r);
	return r;
}

TT_EXPORT int SSL_read_ex(SSL *ssl, void *buf, size_t num, size_t *readbytes)
{
	REAL(SSL_read_ex);
	int r;

	if (!real) {
		missing("SSL_read_ex");
		return 0;
	}
	if (tt_enforce_on && num > 0 && !tt_guard_active()) {
		size_t got;

		if (tt_agent_enforce_read(ssl, buf, num, &got, 0)) {
			if (readbytes)
				*readbytes = got;
			return got > 0;
		}
	}
	r = real(ssl, buf, num, readbytes);
	if (r == 1 && readbytes && *readbytes > 0 && !tt_guard_active())
		tt_agent_observe(ssl, TT_DIR_RECV, buf, *readbytes);
	return r;
}

TT_EXPORT int SSL_write(SSL *ssl, const void *buf, int num)
{
	REAL(SSL_write);
	int r;

	if (!real) {
		missing("SSL_write");
		return -1;
	}
	if (tt_enforce_on && num > 0 && !tt_guard_active()) {
		long er;
		int h = tt_agent_enforce_write(ssl, buf, (size_t)num, &er);

		if (h == TT_AGENT_PREFED) {  /* HTTP/2: decoded already */
			r = real(ssl, buf, num);
			tt_agent_enforce_sent(ssl, r > 0 ? (size_t)r : 0);
			return r;
		}
		if (h)
			return (int)er;  /* held, sent with what was held, or blocked */
	}
	r = real(ssl, buf, num);
	if (r > 0 && !tt_guard_active())
		tt_agent_observe(ssl, TT_DIR_SENT, buf, (size_t)r);
	return r;
}

TT_EXPORT int SSL_write_ex(SSL *ssl, const void *buf, size_t num,
			   size_t *written)
{
	REAL(SSL_write_ex);
	int r;

	if (!real) {
		missing("SSL_write_ex");
		return 0;
	}
	if (tt_enforce_on && num > 0 && !tt_guard_active()) {
		long er;
		int h = tt_agent_enforce_write(ssl, buf, num, &er);

		if (h == TT_AGENT_PREFED) {  /* HTTP/2: decoded already */
			r = real(ssl, buf, num, written);
			tt_agent_enforce_sent(ssl, r == 1 ? (written ? *written : num) : 0);
			return r;
		}
		if (h) {
			if (er > 0 && written)
				*written = (size_t)er;
			return er > 0;
		}
	}
	r = real(ssl, buf, num, written);
	if (r == 1 && written && *written > 0 && !tt_guard_active())
		tt_agent_observe(ssl, TT_DIR_SENT, buf, *written);
	return r;
}

TT_EXPORT int SSL_peek(SSL *ssl, void *buf, int num)
{
	REAL(SSL_peek);

	if (!real) {
		missing("SSL_peek");
		return -1;
	}
	if (tt_enforce_on && num > 0 && !tt_guard_active()) {
		size_t got;

		if (tt_agent_enforce_read(ssl, buf, (size_t)num, &got, 1))
			return (int)got;
	}
	return real(ssl, buf, num); /* decoded when read */
}

TT_EXPORT int SSL_peek_ex(SSL *ssl, void *buf, size_t num, size_t *readbytes)
{
	REAL(SSL_peek_ex);

	if (!real) {
		missing("SSL_peek_ex");
		return 0;
	}
	if (tt_enforce_on && num > 0 && !tt_guard_active()) {
		size_t got;

		if (tt_agent_enforce_read(ssl, buf, num, &got, 1)) {
			if (readbytes)
				*readbytes = got;
			return got > 0;
		}
	}
	return real(ssl, buf, num, readbytes); /* decoded when read */
}

TT_EXPORT int SSL_shutdown(SSL *ssl)
{
	REAL(SSL_shutdown);
	int r;

	if (!real) {
		missing("SSL_shutdown");
		return -1;
	}
	r = real(ssl);
	if (ssl && !tt_guard_active())
		tt_agent_conn_over(ssl, 0);
	return r;
}

TT_EXPORT int SSL_clear(SSL *ssl)
{
	REAL(SSL_clear);

	if (!real) {
		missing("SSL_clear");
		return 0;
	}
	if (ssl && !tt_guard_active())
		tt_agent_conn_over(ssl, 1);
	return real(ssl);
}

TT_EXPORT void SSL_free(SSL *ssl)
{
	REAL(SSL_free);

	if (!real) {
		missing("SSL_free");
		return;
	}
	real(ssl); /* our state goes in conn.c's ex_data free callback */
}
