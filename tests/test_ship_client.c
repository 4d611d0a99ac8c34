/*
 * test_ship_client.c - the one collector client against a stand-in
 * server thread, over a Unix socket and TCP: what goes out (method, path,
 * Host, Content-Type, Content-Length, the bearer token over TCP only),
 * answers with a length (the connection kept open: not waited for),
 * chunked or closed, refusals (not HTTP, too big), a server that never
 * answers (the deadline holds), a host name from /etc/hosts, a name that
 * does not resolve, many threads at once, and a fork child.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/buf.h"
#include "ship/client.h"
#include "tokentap/error.h"

enum mode { M_LENGTH, M_CHUNKED, M_CLOSE, M_SILENT, M_BIG, M_GARBAGE };

struct server {
	int fd, port;
	char path[108];
	enum mode mode;
	pthread_t thread;
	pthread_mutex_t mu;
	char last_head[4096];
	char last_body[256];
	int requests;
};

/* Read one request (head and Content-Length body); 0 or -1. */
static int read_request(int c, struct server *s)
{
	char buf[8192];
	size_t got = 0, hlen, clen = 0;
	char *end = NULL, *cl;

	while (!end) {
		ssize_t n = read(c, buf + got, sizeof(buf) - 1 - got);

		if (n <= 0)
			return -1;
		got += (size_t)n;
		buf[got] = '\0';
		end = strstr(buf, "\r\n\r\n");
	}
	hlen = (size_t)(end + 4 - buf);
	if ((cl = strstr(buf, "Content-Length: ")))
		clen = strtoul(cl + 16, NULL, 10);
	while (got < hlen + clen) {
		ssize_t n = read(c, buf + got, sizeof(buf) - 1 - got);

		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	pthread_mutex_lock(&s->mu);
	snprintf(s->last_head, sizeof(s->last_head), "%.*s", (int)hlen, buf);
	snprintf(s->last_body, sizeof(s->last_body), "%.*s", (int)clen, buf + hlen);
	s->requests++;
	pthread_mutex_unlock(&s->mu);
	return 0;
}

static void answer(int c, enum mode m)
{
	static const char length[] = "HTTP/1.1 201 Created\r\nContent-Length: 11\r\n\r\nhello world";
	static const char chunked[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
				      "5\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n";
	static const char closed[] = "HTTP/1.0 200 OK\r\n\r\nhello world";
	char big[5000];

	switch (m) {
	case M_LENGTH:
		(void)!write(c, length, sizeof(length) - 1);
		sleep(2); /* keeps the connection open: the client must not wait */
		break;
	case M_CHUNKED:
		(void)!write(c, chunked, sizeof(chunked) - 1);
		sleep(2);
		break;
	case M_CLOSE:
		(void)!write(c, closed, sizeof(closed) - 1);
		break;
	case M_SILENT:
		sleep(3);
		break;
	case M_BIG:
		memset(big, 'x', sizeof(big));
		(void)!write(c, "HTTP/1.1 200 OK\r\nContent-Length: 4900\r\n\r\n", 41);
		(void)!write(c, big, 4900);
		break;
	case M_GARBAGE:
		(void)!write(c, "FOO BAR\r\n\r\n", 11);
		break;
	}
}

static void *conn_thread(void *arg)
{
	struct server *s = ((void **)arg)[0];
	int c = (int)(intptr_t)((void **)arg)[1];

	free(arg);
	if (read_request(c, s) == 0)
		answer(c, s->mode);
	close(c);
	return NULL;
}

static void *serve(void *arg)
{
	struct server *s = arg;

	for (;;) {
		int c = accept(s->fd, NULL, NULL);
		void **a;
		pthread_t t;

		if (c < 0)
			return NULL;
		a = malloc(2 * sizeof(void *));
		a[0] = s;
		a[1] = (void *)(intptr_t)c;
		pthread_create(&t, NULL, conn_thread, a);
		pthread_detach(t);
	}
}

static struct server *server_start(int tcp, enum mode m)
{
	struct server *s = calloc(1, sizeof(*s));

	pthread_mutex_init(&s->mu, NULL);
	s->mode = m;
	if (tcp) {
		struct sockaddr_in sa = {.sin_family = AF_INET};
		socklen_t sl = sizeof(sa);

		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		assert_int_equal(bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
		getsockname(s->fd, (struct sockaddr *)&sa, &sl);
		s->port = ntohs(sa.sin_port);
	} else {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};

		snprintf(s->path, sizeof(s->path), "/tmp/tt-client-%d-%d.sock", (int)getpid(),
			 (int)m);
		unlink(s->path);
		memcpy(sa.sun_path, s->path, strlen(s->path) + 1);
		s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		assert_int_equal(bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	}
	assert_int_equal(listen(s->fd, 64), 0);
	pthread_create(&s->thread, NULL, serve, s);
	return s;
}

static void server_stop(struct server *s)
{
	shutdown(s->fd, SHUT_RDWR);
	close(s->fd);
	pthread_join(s->thread, NULL);
	if (s->path[0])
		unlink(s->path);
	free(s);
}

static tt_client *client_for(const struct server *s, const char *host)
{
	char addr[256], err[300];
	tt_client *c;

	if (s->port)
		snprintf(addr, sizeof(addr), "http://%s:%d", host, s->port);
	else
		snprintf(addr, sizeof(addr), "unix:%s", s->path);
	c = tt_client_new(addr, err, sizeof(err));
	assert_non_null(c);
	return c;
}

static int64_t ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int get(tt_client *c, int timeout_ms, tt_buf *ans, char *err)
{
	return tt_client_request(c, "GET", "/v1/usage?by=model", NULL, NULL, 0, timeout_ms,
				 ans, err, 300);
}

/* What goes out, over both transports; the token over TCP only. */
static void test_request_shape(void **state)
{
	for (int tcp = 0; tcp <= 1; tcp++) {
		struct server *s = server_start(tcp, M_CLOSE);
		tt_client *c = client_for(s, "127.0.0.1");
		char err[300];
		tt_buf ans;

		(void)state;
		tt_client_set_token(c, "tok-123456789abcdef");
		tt_buf_init(&ans, 1024);
		assert_int_equal(tt_client_request(c, "POST", "/v1/lease", "application/json",
						   "{\"a\":1}", 7, 2000, &ans, err, sizeof(err)),
				 200);
		assert_string_equal(ans.data, "hello world");
		assert_non_null(strstr(s->last_head, "POST /v1/lease HTTP/1.1\r\n"));
		assert_non_null(strstr(s->last_head, "\r\nContent-Type: application/json\r\n"));
		assert_non_null(strstr(s->last_head, "\r\nContent-Length: 7\r\n"));
		assert_non_null(strstr(s->last_head, "\r\nConnection: close\r\n"));
		assert_non_null(strstr(s->last_head, tcp ? "\r\nHost: 127.0.0.1\r\n"
							 : "\r\nHost: localhost\r\n"));
		if (tcp)
			assert_non_null(strstr(s->last_head,
					       "\r\nAuthorization: Bearer tok-123456789abcdef\r\n"));
		else
			assert_null(strstr(s->last_head, "Authorization"));
		assert_string_equal(s->last_body, "{\"a\":1}");
		tt_buf_free(&ans);
		tt_client_free(c);
		server_stop(s);
	}
}

/* A length or the last chunk ends the answer: an open connection is not waited for. */
static void test_answers(void **state)
{
	static const enum mode modes[] = {M_LENGTH, M_CHUNKED, M_CLOSE};
	static const int want[] = {201, 200, 200};

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		struct server *s = server_start(1, modes[i]);
		tt_client *c = client_for(s, "127.0.0.1");
		char err[300];
		int64_t t0 = ms_now();
		tt_buf ans;

		tt_buf_init(&ans, 1024);
		assert_int_equal(get(c, 1500, &ans, err), want[i]);
		assert_string_equal(ans.data, "hello world");
		assert_true(ms_now() - t0 < 1000);
		tt_buf_free(&ans);
		tt_client_free(c);
		server_stop(s);
	}
}

static void test_refusals(void **state)
{
	struct server *big = server_start(1, M_BIG), *junk = server_start(1, M_GARBAGE);
	tt_client *c1 = client_for(big, "127.0.0.1"), *c2 = client_for(junk, "127.0.0.1");
	char err[300];
	tt_buf ans;

	(void)state;
	tt_buf_init(&ans, 1000);
	assert_int_equal(get(c1, 2000, &ans, err), TT_ETRUNCATED);
	tt_buf_reset(&ans);
	assert_int_equal(get(c2, 2000, &ans, err), TT_EPROTO);
	tt_buf_free(&ans);
	tt_client_free(c1);
	tt_client_free(c2);
	server_stop(big);
	server_stop(junk);
}

/* A collector that accepts and says nothing costs the deadline, no more. */
static void test_silent_server_deadline(void **state)
{
	struct server *s = server_start(1, M_SILENT);
	tt_client *c = client_for(s, "127.0.0.1");
	char err[300];
	int64_t t0 = ms_now(), took;
	tt_buf ans;

	(void)state;
	tt_buf_init(&ans, 1024);
	assert_int_equal(get(c, 300, &ans, err), TT_EIO);
	took = ms_now() - t0;
	assert_true(took >= 280 && took < 800);
	tt_buf_free(&ans);
	tt_client_free(c);
	server_stop(s);
}

struct poke {
	int fd, after_ms;
};

static void *poke_later(void *arg)
{
	struct poke *p = arg;
	struct timespec ts = { 0, (long)p->after_ms * 1000000L };
	uint64_t one = 1;

	nanosleep(&ts, NULL);
	assert_int_equal(write(p->fd, &one, sizeof(one)), sizeof(one));
	return NULL;
}

/* A request to a server that never answers ends as soon as the cancel
 * descriptor is readable, well before its deadline; and a later request
 * ends at once. */
static void test_cancel(void **state)
{
	struct server *s = server_start(1, M_SILENT);
	tt_client *c = client_for(s, "127.0.0.1");
	struct poke pk = { eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), 150 };
	char err[300];
	int64_t t0, took;
	pthread_t th;
	tt_buf ans;

	(void)state;
	assert_true(pk.fd >= 0);
	tt_client_set_cancel(c, pk.fd);
	tt_buf_init(&ans, 1024);
	t0 = ms_now();
	pthread_create(&th, NULL, poke_later, &pk);
	assert_int_equal(get(c, 5000, &ans, err), TT_EIO);
	took = ms_now() - t0;
	assert_true(took >= 140 && took < 1000);
	pthread_join(th, NULL);
	t0 = ms_now();
	assert_int_equal(get(c, 5000, &ans, err), TT_EIO);
	assert_true(ms_now() - t0 < 500);
	tt_buf_free(&ans);
	tt_client_free(c);
	close(pk.fd);
	server_stop(s);
}

/* Nobody listening: refused at once, with a reason. */
static void test_nobody_there(void **state)
{
	char err[300] = "";
	tt_client *c = tt_client_new("unix:/tmp/tt-nobody-listens.sock", err, sizeof(err));
	tt_buf ans;

	(void)state;
	tt_buf_init(&ans, 1024);
	assert_int_equal(get(c, 1000, &ans, err), TT_EIO);
	assert_non_null(strstr(err, "cannot reach the collector"));
	tt_buf_free(&ans);
	tt_client_free(c);
	assert_null(tt_client_new("https://x:1", err, sizeof(err)));
}

/* A name from /etc/hosts works; a name that does not resolve fails in time. */
static void test_host_names(void **state)
{
	struct server *s = server_start(1, M_CLOSE);
	tt_client *c = client_for(s, "localhost");
	char err[300], addr[128];
	int64_t t0;
	tt_buf ans;

	(void)state;
	tt_buf_init(&ans, 1024);
	assert_int_equal(get(c, 3000, &ans, err), 200);
	assert_int_equal(get(c, 3000, &ans, err), 200); /* the cached answer */
	tt_client_free(c);
	snprintf(addr, sizeof(addr), "http://tt-no-such-host.invalid:%d", s->port);
	c = tt_client_new(addr, err, sizeof(err));
	assert_non_null(c);
	t0 = ms_now();
	assert_int_equal(get(c, 500, &ans, err), TT_EIO);
	assert_true(ms_now() - t0 < 1500);
	assert_non_null(strstr(err, "tt-no-such-host.invalid"));
	tt_buf_free(&ans);
	tt_client_free(c); /* the lookup thread may still be waiting: left to end */
	server_stop(s);
}

struct many {
	tt_client *c;
	int ok;
};

static void *many_thread(void *arg)
{
	struct many *m = arg;
	char err[300];

	for (int i = 0; i < 25; i++) {
		tt_buf ans;

		tt_buf_init(&ans, 1024);
		if (tt_client_request(m->c, "POST", "/v1/records", "application/x-ndjson",
				      "{}\n", 3, 5000, &ans, err, sizeof(err)) == 200)
			m->ok++;
		tt_buf_free(&ans);
	}
	return NULL;
}

static void test_threads_and_fork(void **state)
{
	struct server *s = server_start(1, M_CLOSE);
	tt_client *c = client_for(s, "localhost");
	struct many m[8];
	pthread_t t[8];
	char err[300];
	int status;
	pid_t pid;
	tt_buf ans;

	(void)state;
	for (int i = 0; i < 8; i++) {
		m[i].c = c;
		m[i].ok = 0;
		pthread_create(&t[i], NULL, many_thread, &m[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(m[i].ok, 25);
	}
	assert_int_equal(s->requests, 200);
	pid = fork();
	if (pid == 0) {
		tt_client_atfork_child(c);
		tt_buf_init(&ans, 1024);
		_exit(get(c, 3000, &ans, err) == 200 ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	tt_client_free(c);
	server_stop(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_shape),
		cmocka_unit_test(test_answers),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_silent_server_deadline),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_nobody_there),
		cmocka_unit_test(test_host_names),
		cmocka_unit_test(test_threads_and_fork),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
