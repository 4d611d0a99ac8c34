/* enforce_io.c - send held bytes, swap a refused connection's socket; see enforce_io.h. */
#include "enforce_io.h"

#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "enforce_int.h"
#include "resolve.h"

#define FLUSH_WAIT_MS 30000
/* OpenSSL's values, without its headers (stable since 0.9.x). */
#define SSL_ERROR_WANT_READ 2
#define SSL_ERROR_WANT_WRITE 3

static int warn_flush;

/*
 * The connection cannot take more now (a non-blocking socket is full):
 * wait for it as the client would have, at most until deadline_ms.  With
 * the socket known, poll it; without one (curl gives OpenSSL its own I/O
 * layer, SSL_get_fd says -1), retry after a short sleep that grows to
 * 10 ms.  Returns 1 to try again, 0 when the time is up.
 */
static int wait_writable(int fd, int err, int64_t deadline_ms, int *backoff_us)
{
	int64_t left = deadline_ms - tt_mono_ms();
	struct timespec ts;

	if (left <= 0)
		return 0;
	if (fd >= 0) {
		struct pollfd pf = {.fd = fd,
				    .events = err == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN};

		return poll(&pf, 1, (int)left) > 0;
	}
	*backoff_us = *backoff_us ? *backoff_us * 2 : 100;
	if (*backoff_us > 10000)
		*backoff_us = 10000;
	ts.tv_sec = 0;
	ts.tv_nsec = (long)*backoff_us * 1000;
	nanosleep(&ts, NULL);
	return 1;
}

long tt_enforce_flush(void *ssl, const char *p, size_t n)
{
	int (*wr)(void *, const void *, int) = tt_real(TT_REAL_SSL_write);
	int (*get_error)(const void *, int) = tt_real(TT_REAL_SSL_get_error);
	int (*get_fd)(const void *) = tt_real(TT_REAL_SSL_get_fd);
	int64_t deadline = tt_mono_ms() + FLUSH_WAIT_MS;
	int backoff_us = 0;
	size_t done = 0;

	if (!wr)
		return -1;
	while (done < n) {
		size_t chunk = n - done > (1u << 30) ? (1u << 30) : n - done;
		int r = wr(ssl, p + done, (int)chunk);

		if (r > 0) {
			done += (size_t)r;
			backoff_us = 0;
			continue;
		}
		int err = get_error ? get_error(ssl, r) : 0;
		int fd = get_fd ? get_fd(ssl) : -1;

		if ((err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) &&
		    wait_writable(fd, err, deadline, &backoff_us))
			continue;
		tt_log_once(&warn_flush, TT_LOG_WARN, "enforce: sending a held request failed "
			    "(SSL error %d); the call fails", err);
		return r;
	}
	if (tt_enforce_hooks.sent)
		tt_enforce_hooks.sent(ssl, p, n);
	return (long)n;
}

int tt_enforce_divert(void *ssl)
{
	int (*get_fd)(const void *) = tt_real(TT_REAL_SSL_get_fd);
	int fd = get_fd ? get_fd(ssl) : -1, sp[2], fl;

	if (fd < 0)
		return -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp))
		return -1;
	/* One byte waiting: poll() on the client's descriptor says readable,
	 * and the client calls SSL_read, which is ours from now on. */
	if (write(sp[1], "x", 1) != 1) {
		/* cannot happen on a fresh socketpair; still readable at EOF */
	}
	fl = fcntl(fd, F_GETFL);
	if (fl >= 0 && (fl & O_NONBLOCK))
		fcntl(sp[0], F_SETFL, fcntl(sp[0], F_GETFL) | O_NONBLOCK);
	/* Closes the real TCP connection. */
	if (dup2(sp[0], fd) < 0) {
		close(sp[0]);
		close(sp[1]);
		return -1;
	}
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	close(sp[0]);
	return sp[1];
}
