/*
 * client.c - HTTP/1.1 requests to tokentapd, each on its own connection,
 * each bounded by a deadline; see client.h.
 */
#include "client.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/addr.h"
#include "common/clock.h"
#include "common/token.h"
#include "names.h"
#include "tokentap/error.h"

#define HEAD_MAX 65536 /* an answer's status line and headers */

struct tt_client {
	char text[512];        /* the address as given, for messages */
	tt_addr addr;
	tt_names *names;       /* TCP only */
	pthread_mutex_t mu;    /* token */
	char *token;
	int cancel;            /* readable: every wait ends now; -1 none */
};

static int fail(char *err, size_t errlen, int rc, const char *fmt, const char *what)
{
	if (err)
		snprintf(err, errlen, fmt, what);
	return rc;
}

tt_client *tt_client_new(const char *addr, char *err, size_t errlen)
{
	tt_client *c = calloc(1, sizeof(*c));

	if (!c) {
		fail(err, errlen, TT_ENOMEM, "%s", "out of memory");
		return NULL;
	}
	if (tt_addr_parse(addr, &c->addr, err, errlen)) {
		free(c);
		return NULL;
	}
	snprintf(c->text, sizeof(c->text), "%s", addr);
	c->cancel = -1;
	if (!c->addr.is_unix) {
		c->names = tt_names_new(c->addr.host, c->addr.port);
		if (!c->names) {
			free(c);
			fail(err, errlen, TT_ENOMEM, "%s", "out of memory");
			return NULL;
		}
	}
	pthread_mutex_init(&c->mu, NULL);
	return c;
}

static void drop_token(tt_client *c)
{
	if (c->token) {
		explicit_bzero(c->token, strlen(c->token));
		free(c->token);
		c->token = NULL;
	}
}

void tt_client_free(tt_client *c)
{
	if (!c)
		return;
	tt_names_free(c->names);
	drop_token(c);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

void tt_client_set_token(tt_client *c, const char *token)
{
	pthread_mutex_lock(&c->mu);
	drop_token(c);
	if (token && token[0])
		c->token = strdup(token);
	pthread_mutex_unlock(&c->mu);
}

int tt_client_token_file(tt_client *c, const char *path, char *err, size_t errlen)
{
	char tok[TT_TOKEN_BUF];
	int rc = tt_token_read(path, tok, sizeof(tok), NULL, err, errlen);

	if (rc > 0)
		tt_client_set_token(c, tok);
	explicit_bzero(tok, sizeof(tok));
	return rc < 0 ? rc : 0;
}

void tt_client_set_cancel(tt_client *c, int fd)
{
	__atomic_store_n(&c->cancel, fd, __ATOMIC_RELAXED);
}

const char *tt_client_addr(const tt_client *c)
{
	return c->text;
}

void tt_client_atfork_child(tt_client *c)
{
	if (!c)
		return;
	pthread_mutex_init(&c->mu, NULL);
	tt_names_atfork_child(c->names);
}

/*
 * Wait for ev on fd until deadline, or until cancel (-1: none) becomes
 * readable.  0 ready, -1 time is up, cancelled or error.
 */
static int wait_fd(int fd, short ev, int64_t deadline, int cancel)
{
	for (;;) {
		int64_t left = (deadline - tt_mono_us() + 999) / 1000;
		struct pollfd p[2] = {{.fd = fd, .events = ev},
				      {.fd = cancel, .events = POLLIN}};
		int r;

		if (left <= 0)
			return -1;
		r = poll(p, cancel >= 0 ? 2 : 1, left > 60000 ? 60000 : (int)left);
		if (r > 0 && cancel >= 0 && p[1].revents)
			return -1;
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

/* A non-blocking connect to sa, finished by the deadline.  fd or -1. */
static int connect_sa(const struct sockaddr *sa, socklen_t len, int64_t deadline,
		      int cancel)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int soerr = 0;
	socklen_t el = sizeof(soerr);

	if (fd < 0)
		return -1;
	if (connect(fd, sa, len) == 0)
		return fd;
	if ((errno == EINPROGRESS || errno == EAGAIN) &&
	    wait_fd(fd, POLLOUT, deadline, cancel) == 0 &&
	    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &el) == 0 && soerr == 0)
		return fd;
	close(fd);
	return -1;
}

static int open_conn(tt_client *c, int64_t deadline, int cancel, char *err, size_t errlen)
{
	tt_name_addr addrs[TT_NAMES_MAX];
	char why[300];
	int n, fd;

	if (c->addr.is_unix) {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};

		memcpy(sa.sun_path, c->addr.path, strlen(c->addr.path) + 1);
		fd = connect_sa((struct sockaddr *)&sa, sizeof(sa), deadline, cancel);
		if (fd < 0)
			return fail(err, errlen, TT_EIO, "cannot reach the collector at %s", c->text);
		return fd;
	}
	n = tt_names_get(c->names, addrs, deadline, why, sizeof(why));
	if (n < 0)
		return fail(err, errlen, TT_EIO, "cannot reach the collector: %s", why);
	for (int i = 0; i < n; i++) {
		fd = connect_sa((struct sockaddr *)&addrs[i].sa, addrs[i].len, deadline,
				cancel);
		if (fd >= 0)
			return fd;
	}
	return fail(err, errlen, TT_EIO, "cannot reach the collector at %s", c->text);
}

static int send_all(int fd, const char *p, size_t n, int64_t deadline, int cancel)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w > 0) {
			p += w;
			n -= (size_t)w;
		} else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
			if (wait_fd(fd, POLLOUT, deadline, cancel))
				return -1;
		} else {
			return -1;
		}
	}
	return 0;
}

static const char *header(const char *head, const char *name);

/*
 * Is the answer in raw whole?  With a Content-Length, once the body has
 * that many bytes; chunked, once the last chunk came; else only when the
 * peer closes (we asked it to).  A server that keeps the connection open
 * anyway is not waited for past a known end.
 */
static int answer_complete(const tt_buf *raw)
{
	const char *hend, *cl, *te;
	char head[HEAD_MAX + 1];
	size_t hlen;

	if (!raw->data || !(hend = memmem(raw->data, raw->len, "\r\n\r\n", 4)))
		return 0;
	hlen = (size_t)(hend - raw->data) + 4;
	if (hlen > HEAD_MAX)
		return 0;
	memcpy(head, raw->data, hlen - 2);
	head[hlen - 2] = '\0';
	te = header(head, "Transfer-Encoding");
	if (te && strncasecmp(te, "chunked", 7) == 0)
		return raw->len >= hlen + 5 &&
		       memcmp(raw->data + raw->len - 5, "0\r\n\r\n", 5) == 0;
	cl = header(head, "Content-Length");
	return cl && raw->len - hlen >= strtoull(cl, NULL, 10);
}

/* The answer, until it is whole or the peer closes; at most raw's cap. */
static int read_answer(int fd, tt_buf *raw, int64_t deadline, int cancel)
{
	char chunk[16384];

	for (;;) {
		ssize_t r = recv(fd, chunk, sizeof(chunk), 0);

		if (r > 0) {
			if (tt_buf_add(raw, chunk, (size_t)r))
				return TT_ETRUNCATED;
			if (answer_complete(raw))
				return 0;
		} else if (r == 0) {
			return 0;
		} else if (errno == EAGAIN || errno == EINTR) {
			if (wait_fd(fd, POLLIN, deadline, cancel))
				return TT_EIO;
		} else {
			return TT_EIO;
		}
	}
}

/* The value of header name in head (NUL-terminated), or NULL. */
static const char *header(const char *head, const char *name)
{
	size_t nl = strlen(name);

	for (const char *l = strstr(head, "\r\n"); l; l = strstr(l, "\r\n")) {
		l += 2;
		if (strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
			l += nl + 1;
			while (*l == ' ' || *l == '\t')
				l++;
			return l;
		}
	}
	return NULL;
}

/* RFC 9112 section 7.1: chunks of hex size, CRLF, data, CRLF; then 0. */
static int dechunk(const char *p, size_t n, tt_buf *out)
{
	const char *end = p + n;

	for (;;) {
		char *stop;
		unsigned long sz = strtoul(p, &stop, 16);
		const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);

		if (stop == p || !eol || sz > (size_t)(end - eol))
			return TT_EPROTO;
		p = eol + 2;
		if (sz == 0)
			return 0;
		if ((size_t)(end - p) < sz + 2)
			return TT_EPROTO;
		if (tt_buf_add(out, p, sz))
			return TT_ETRUNCATED;
		p += sz + 2;
	}
}

/* Split raw into a status and a body appended to answer. */
static int parse_answer(tt_buf *raw, tt_buf *answer, char *err, size_t errlen)
{
	const char *hend, *cl, *te;
	size_t hlen, blen;
	int status;

	if (!raw->data)
		return fail(err, errlen, TT_EIO, "%s", "the collector closed without answering");
	hend = memmem(raw->data, raw->len, "\r\n\r\n", 4);
	if (!hend || strncmp(raw->data, "HTTP/1.", 7) != 0 || raw->len < 12)
		return fail(err, errlen, TT_EPROTO, "%s", "the answer is not HTTP/1.x");
	status = (int)strtol(raw->data + 9, NULL, 10);
	if (status < 100 || status > 999)
		return fail(err, errlen, TT_EPROTO, "%s", "the answer has no status");
	hlen = (size_t)(hend - raw->data) + 4;
	blen = raw->len - hlen;
	raw->data[hlen - 2] = '\0'; /* headers end: a C string for header() */
	te = header(raw->data, "Transfer-Encoding");
	cl = header(raw->data, "Content-Length");
	if (te && strncasecmp(te, "chunked", 7) == 0) {
		int rc = dechunk(raw->data + hlen, blen, answer);

		return rc ? fail(err, errlen, rc, "%s", "a cut or malformed chunked answer")
			  : status;
	}
	if (cl) {
		unsigned long long want = strtoull(cl, NULL, 10);

		if (want > blen)
			return fail(err, errlen, TT_EIO, "%s", "the answer was cut short");
		blen = (size_t)want;
	}
	if (tt_buf_add(answer, raw->data + hlen, blen))
		return fail(err, errlen, TT_ETRUNCATED, "%s", "the answer is too big");
	return status;
}

/* The request's head; the token is wiped by the caller. */
static int build_head(tt_client *c, char *head, size_t cap, const char *method,
		      const char *path, const char *ctype, size_t len)
{
	int n;

	pthread_mutex_lock(&c->mu);
	n = snprintf(head, cap,
		     "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: tokentap\r\n"
		     "Connection: close\r\n%s%s%s"
		     "Content-Length: %zu\r\n%s%s%s\r\n",
		     method, path, c->addr.is_unix ? "localhost" : c->addr.host,
		     ctype ? "Content-Type: " : "", ctype ? ctype : "", ctype ? "\r\n" : "",
		     len, c->token && !c->addr.is_unix ? "Authorization: Bearer " : "",
		     c->token && !c->addr.is_unix ? c->token : "",
		     c->token && !c->addr.is_unix ? "\r\n" : "");
	pthread_mutex_unlock(&c->mu);
	return n > 0 && (size_t)n < cap ? n : -1;
}

int tt_client_request(tt_client *c, const char *method, const char *path,
		      const char *ctype, const void *body, size_t len, int timeout_ms,
		      tt_buf *answer, char *err, size_t errlen)
{
	int64_t deadline = tt_mono_us() + (int64_t)(timeout_ms > 0 ? timeout_ms : 1) * 1000;
	char head[1024 + TT_TOKEN_MAX];
	int cancel = __atomic_load_n(&c->cancel, __ATOMIC_RELAXED);
	tt_buf raw;
	int fd, hl, rc;

	hl = build_head(c, head, sizeof(head), method, path, ctype, len);
	if (hl < 0)
		return fail(err, errlen, TT_EINVAL, "%s", "the request head is too long");
	fd = open_conn(c, deadline, cancel, err, errlen);
	if (fd < 0) {
		explicit_bzero(head, sizeof(head));
		return fd;
	}
	rc = send_all(fd, head, (size_t)hl, deadline, cancel);
	explicit_bzero(head, sizeof(head));
	if (!rc && len)
		rc = send_all(fd, body, len, deadline, cancel);
	if (rc) {
		close(fd);
		return fail(err, errlen, TT_EIO, "cannot send to %s", c->text);
	}
	tt_buf_init(&raw, answer->max - answer->len + HEAD_MAX);
	rc = read_answer(fd, &raw, deadline, cancel);
	close(fd);
	if (rc == TT_ETRUNCATED)
		rc = fail(err, errlen, rc, "%s", "the answer is too big");
	else if (rc)
		rc = fail(err, errlen, rc, "no answer from %s in time", c->text);
	else
		rc = parse_answer(&raw, answer, err, errlen);
	tt_buf_free(&raw);
	return rc;
}
