/*
 * chaos_client.c - an HTTPS client on raw OpenSSL for the chaos tests
 * (tests/e2e/test_chaos_*.sh): many threads on kept-alive connections,
 * and a storm of fork()s without exec while other threads are calling.
 *
 *   chaos_client --port P --ca CA [--path PATH] [--body FILE] [--key K]
 *                [--threads N] [--calls M] [--close]
 *                [--forks F] [--fork-wave W]
 *
 * Threads: N threads make M calls each.  A thread keeps its connection
 * alive between calls (HTTP/1.1 keep-alive, bodies framed by
 * Content-Length or chunked) and opens a new one when the server closed
 * it; --close opens one per call ("Connection: close", read to EOF).
 *
 * Forks (--forks F): while two threads keep calling, the main thread forks
 * F children, W at a time (default 50).  Child i makes one call and leaves
 * with exit() when i is even (the agent ships its records at exit; _exit()
 * skips that by design); when i is odd it makes none and leaves with exit()
 * (i % 4 == 1) or _exit() (i % 4 == 3).  A child not done 20 s after its
 * wave started counts as hung (a lock held across fork): killed, and the
 * run fails.
 *
 * Prints, last, one line:
 *	calls=<made> ok=<answered 2xx> failed=<no answer> children=<forked> hung=<H>
 * Exit 0 when every call got an answer (any status) and no child hung;
 * 1 otherwise; 2 on bad usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RESP_MAX (4 << 20)

static int port, threads = 1, calls = 1, forks, fork_wave = 50, use_close;
static const char *ca, *path = "/v1/chat/completions";
static const char *key = "sk-SENTINEL-chaos-client-0123456789";
static char *body;
static size_t body_len;
static SSL_CTX *ctx;

/* Counters of this process (a child starts them again from zero). */
static long n_calls, n_ok, n_failed;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static volatile int stop_bg;

struct conn {
	int fd;
	SSL *ssl;
	char buf[16384];  /* read-ahead of the response being parsed */
	size_t have, at;
};

static void conn_close(struct conn *c)
{
	if (c->ssl) {
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	if (c->fd >= 0)
		close(c->fd);
	c->ssl = NULL;
	c->fd = -1;
	c->have = c->at = 0;
}

static int conn_open(struct conn *c)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->have = c->at = 0;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		goto fail;
	/* Bounded: a server that stops answering fails the call, not the test run. */
	struct timeval tv = { .tv_sec = 30 };
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	c->ssl = SSL_new(ctx);
	if (!c->ssl)
		goto fail;
	SSL_set_fd(c->ssl, c->fd);
	SSL_set_tlsext_host_name(c->ssl, "localhost");
	if (SSL_connect(c->ssl) != 1)
		goto fail;
	return 0;
fail:
	conn_close(c);
	return -1;
}

static int wr(SSL *s, const char *p, size_t n)
{
	while (n > 0) {
		int r = SSL_write(s, p, n > 65536 ? 65536 : (int)n);
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* Next byte of the response; -1 at EOF or error. */
static int getbyte(struct conn *c)
{
	if (c->at == c->have) {
		int r = SSL_read(c->ssl, c->buf, sizeof(c->buf));
		if (r <= 0)
			return -1;
		c->have = (size_t)r;
		c->at = 0;
	}
	return (unsigned char)c->buf[c->at++];
}

/* One line without its CRLF into line (cap bytes); -1 at EOF or overlong. */
static int getline_c(struct conn *c, char *line, size_t cap)
{
	size_t n = 0;
	int ch;

	while ((ch = getbyte(c)) >= 0) {
		if (ch == '\n') {
			if (n && line[n - 1] == '\r')
				n--;
			line[n] = '\0';
			return (int)n;
		}
		if (n + 1 >= cap)
			return -1;
		line[n++] = (char)ch;
	}
	return -1;
}

static int skip_bytes(struct conn *c, unsigned long long n)
{
	while (n > 0) {
		if (c->at == c->have && getbyte(c) >= 0)
			c->at--; /* refill, keep the byte */
		if (c->at == c->have)
			return -1;
		size_t k = c->have - c->at;
		if (k > n)
			k = (size_t)n;
		c->at += k;
		n -= k;
	}
	return 0;
}

/*
 * One request on c; reads the whole response.  Returns the status (> 0),
 * or -1 when no complete response came (the caller reconnects).  *keep is
 * set when the connection can carry the next request.
 */
static int exchange(struct conn *c, int *keep)
{
	char head[1024], line[8192];
	long long clen = -1;
	int status = -1, chunked = 0, close_after = use_close;

	*keep = 0;
	int hn = snprintf(head, sizeof(head),
			  "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
			  "Authorization: Bearer %s\r\n"
			  "Content-Type: application/json\r\n"
			  "Content-Length: %zu\r\n%s\r\n",
			  path, port, key, body_len,
			  use_close ? "Connection: close\r\n" : "");
	if (hn < 0 || (size_t)hn >= sizeof(head))
		return -1;
	if (wr(c->ssl, head, (size_t)hn) < 0 || (body_len && wr(c->ssl, body, body_len) < 0))
		return -1;
	if (getline_c(c, line, sizeof(line)) < 0 ||
	    sscanf(line, "HTTP/1.1 %d", &status) != 1)
		return -1;
	for (;;) {
		int n = getline_c(c, line, sizeof(line));
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		if (!strncasecmp(line, "content-length:", 15))
			clen = strtoll(line + 15, NULL, 10);
		else if (!strncasecmp(line, "transfer-encoding:", 18) && strcasestr(line, "chunked"))
			chunked = 1;
		else if (!strncasecmp(line, "connection:", 11) && strcasestr(line, "close"))
			close_after = 1;
	}
	if (chunked) {
		for (;;) {
			char *end;
			if (getline_c(c, line, sizeof(line)) < 0)
				return -1;
			errno = 0;
			unsigned long long sz = strtoull(line, &end, 16);
			if (end == line || errno)
				return -1;
			if (sz == 0) {
				/* Trailers up to the blank line. */
				int n;
				while ((n = getline_c(c, line, sizeof(line))) > 0)
					;
				if (n < 0)
					return -1;
				break;
			}
			if (sz > RESP_MAX || skip_bytes(c, sz) < 0 ||
			    getline_c(c, line, sizeof(line)) != 0)
				return -1;
		}
	} else if (clen >= 0) {
		if (clen > RESP_MAX || skip_bytes(c, (unsigned long long)clen) < 0)
			return -1;
	} else {
		/* Close-delimited: read to EOF (or to the reset). */
		while (getbyte(c) >= 0)
			c->at = c->have;
		close_after = 1;
	}
	*keep = !close_after;
	return status;
}

static void count(int status)
{
	pthread_mutex_lock(&mu);
	n_calls++;
	if (status >= 200 && status < 300)
		n_ok++;
	else if (status <= 0)
		n_failed++;
	pthread_mutex_unlock(&mu);
}

/* ncalls calls, on one kept-alive connection where the server allows. */
static void call_many(int ncalls, volatile int *stop)
{
	struct conn c = { .fd = -1 };

	for (int i = 0; i < ncalls && !(stop && *stop); i++) {
		int keep = 0, st = -1;

		if (!c.ssl && conn_open(&c) < 0) {
			count(-1);
			continue;
		}
		st = exchange(&c, &keep);
		count(st);
		if (!keep)
			conn_close(&c);
	}
	conn_close(&c);
}

static void *worker(void *arg)
{
	(void)arg;
	call_many(calls, NULL);
	return NULL;
}

/* Calls while the main thread forks: a fork lands in the middle of them. */
static void *background(void *arg)
{
	(void)arg;
	call_many(1 << 30, &stop_bg);
	return NULL;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Child i of the storm: one call or none, then one way out or another. */
static void child(int i)
{
	n_calls = n_ok = n_failed = 0;
	if (i % 2 == 0) {
		call_many(1, NULL);
		exit(n_failed ? 1 : 0);
	}
	if (i % 4 == 1)
		exit(0);
	_exit(0);
}

static int fork_storm(long *children, long *child_calls, long *hung)
{
	pthread_t bg[2];
	int bad = 0;

	for (int t = 0; t < 2; t++)
		pthread_create(&bg[t], NULL, background, NULL);
	for (int base = 0; base < forks; base += fork_wave) {
		int n = forks - base < fork_wave ? forks - base : fork_wave;
		pid_t pids[n];
		double deadline;

		for (int k = 0; k < n; k++) {
			fflush(stdout);
			pids[k] = fork();
			if (pids[k] == 0)
				child(base + k);
			if (pids[k] < 0) {
				bad = 1;
				continue;
			}
			(*children)++;
			if ((base + k) % 2 == 0)
				(*child_calls)++;
		}
		deadline = now_s() + 20;
		for (int k = 0; k < n; k++) {
			int st;
			pid_t r;

			if (pids[k] <= 0)
				continue;
			while ((r = waitpid(pids[k], &st, WNOHANG)) == 0 && now_s() < deadline)
				usleep(2000);
			if (r == 0) {
				/* Deadlocked in the child: a lock taken at fork time. */
				kill(pids[k], SIGKILL);
				waitpid(pids[k], &st, 0);
				(*hung)++;
				bad = 1;
			} else if (r < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
				fprintf(stderr, "child %d: %s %d\n", base + k,
					r < 0 ? "waitpid failed" :
					WIFSIGNALED(st) ? "killed by signal" : "exit",
					r < 0 ? errno : WIFSIGNALED(st) ? WTERMSIG(st) :
					WEXITSTATUS(st));
				bad = 1;
			}
		}
	}
	stop_bg = 1;
	for (int t = 0; t < 2; t++)
		pthread_join(bg[t], NULL);
	return bad;
}

int main(int argc, char **argv)
{
	long children = 0, child_calls = 0, hung = 0;
	int bad = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		char *end;
		long num = 0;

		if (!strcmp(a, "--close")) {
			use_close = 1;
			continue;
		}
		if (!v) {
			fprintf(stderr, "%s needs a value\n", a);
			return 2;
		}
		i++;
		errno = 0;
		if (!strcmp(a, "--threads") || !strcmp(a, "--calls") || !strcmp(a, "--port") ||
		    !strcmp(a, "--forks") || !strcmp(a, "--fork-wave")) {
			num = strtol(v, &end, 10);
			if (errno || *end || num < 0 || num > 1000000) {
				fprintf(stderr, "%s: not a count: %s\n", a, v);
				return 2;
			}
		}
		if (!strcmp(a, "--port"))
			port = (int)num;
		else if (!strcmp(a, "--threads"))
			threads = (int)num;
		else if (!strcmp(a, "--calls"))
			calls = (int)num;
		else if (!strcmp(a, "--forks"))
			forks = (int)num;
		else if (!strcmp(a, "--fork-wave"))
			fork_wave = (int)num;
		else if (!strcmp(a, "--ca"))
			ca = v;
		else if (!strcmp(a, "--path"))
			path = v;
		else if (!strcmp(a, "--key"))
			key = v;
		else if (!strcmp(a, "--body")) {
			FILE *f = fopen(v, "rb");
			long len;
			if (!f || fseek(f, 0, SEEK_END) || (len = ftell(f)) < 0 ||
			    fseek(f, 0, SEEK_SET)) {
				perror(v);
				return 2;
			}
			body_len = (size_t)len;
			body = malloc(body_len + 1);
			if (!body || fread(body, 1, body_len, f) != body_len) {
				perror(v);
				return 2;
			}
			fclose(f);
		} else {
			fprintf(stderr, "unknown option %s\n", a);
			return 2;
		}
	}
	if (!port || !ca || threads < 1 || fork_wave < 1) {
		fprintf(stderr, "usage: see the comment at the top of chaos_client.c\n");
		return 2;
	}
	if (!body) {
		static char dflt[] = "{\"model\":\"gpt-4o-mini\",\"max_tokens\":20,"
				     "\"messages\":[{\"role\":\"user\",\"content\":\"chaos\"}]}";
		body = strdup(dflt);
		body_len = strlen(dflt);
	}
	signal(SIGPIPE, SIG_IGN);
	ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
		ERR_print_errors_fp(stderr);
		return 2;
	}
	SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)"\x08http/1.1", 9);

	if (calls > 0) {
		pthread_t *th = calloc((size_t)threads, sizeof(*th));
		if (!th)
			return 2;
		for (int t = 0; t < threads; t++)
			if (pthread_create(&th[t], NULL, worker, NULL) != 0)
				return 2;
		for (int t = 0; t < threads; t++)
			pthread_join(th[t], NULL);
		free(th);
	}
	if (forks > 0)
		bad |= fork_storm(&children, &child_calls, &hung);
	/* Children's calls are counted by the parent: their counters died with them. */
	printf("calls=%ld ok=%ld failed=%ld children=%ld child_calls=%ld hung=%ld\n",
	       n_calls + child_calls, n_ok, n_failed, children, child_calls, hung);
	fflush(stdout);
	SSL_CTX_free(ctx);
	free(body);
	return bad || n_failed ? 1 : 0;
}
