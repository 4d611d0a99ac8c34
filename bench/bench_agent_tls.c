/*
 * bench_agent_tls.c - the TLS workloads bench_agent.sh runs with and
 * without libtokentap.so preloaded.  Only the client's calls are measured:
 * the server end (a thread of the same process) calls the real libssl
 * functions, looked up in libssl itself, so the agent never sees them.
 *
 *   bench_agent_tls calls CERT KEY N          N x (64-byte write, 64-byte
 *       read) over an in-memory BIO pair, non-HTTP: CPU ns per iteration
 *       (one hooked SSL_read each)
 *   bench_agent_tls llm CERT KEY N BODY       N LLM exchanges on one
 *       in-memory connection (request, then BODY as an SSE response in
 *       1 KiB writes): CPU us per exchange and per SSL_read (this thread;
 *       shipping happens on the agent's own thread)
 *   bench_agent_tls bulk CERT KEY MIB         MIB MiB from server to client
 *       over TCP on 127.0.0.1, 16 KiB reads: MB/s
 *   bench_agent_tls rate CERT KEY N           N small HTTP/1.1 requests on
 *       one keep-alive TCP connection: requests/s
 *   bench_agent_tls conns CERT KEY N          N connections, one small
 *       request each (handshake included): connections/s
 *
 * Prints one line "RESULT <name> <value> <unit> [<per-CPU-second value>]":
 * the TCP modes also give their rate per second of process CPU time, which
 * a busy machine disturbs far less than wall time.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int (*srv_read)(SSL *, void *, int);
static int (*srv_write)(SSL *, const void *, int);
static SSL_CTX *sctx, *cctx;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of this thread: the in-memory benches are pure CPU, and on a
 * busy machine wall time mostly measures the neighbours. */
static double cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of the whole process (client, server thread, agent's thread). */
static double pcpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "bench_agent_tls: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

static void setup(const char *cert, const char *key)
{
	void *h = dlopen("libssl.so.3", RTLD_NOW | RTLD_NOLOAD);
	if (!h)
		h = dlopen("libssl.so", RTLD_NOW | RTLD_NOLOAD);
	if (!h)
		die("libssl not loaded");
	*(void **)&srv_read = dlsym(h, "SSL_read");
	*(void **)&srv_write = dlsym(h, "SSL_write");
	sctx = SSL_CTX_new(TLS_server_method());
	cctx = SSL_CTX_new(TLS_client_method());
	if (SSL_CTX_use_certificate_file(sctx, cert, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_use_PrivateKey_file(sctx, key, SSL_FILETYPE_PEM) != 1)
		die("cert/key");
	SSL_CTX_set_mode(sctx, SSL_MODE_ENABLE_PARTIAL_WRITE);
}

/* ---- in-memory connection: both ends in this thread ---- */

static void pair(SSL **c, SSL **s)
{
	BIO *bc, *bs;
	if (!BIO_new_bio_pair(&bc, 1 << 20, &bs, 1 << 20))
		die("bio pair");
	*c = SSL_new(cctx);
	*s = SSL_new(sctx);
	SSL_set_bio(*c, bc, bc);
	SSL_set_bio(*s, bs, bs);
	SSL_set_connect_state(*c);
	SSL_set_accept_state(*s);
	for (int i = 0; i < 100; i++) {
		int a = SSL_do_handshake(*c), b = SSL_do_handshake(*s);
		if (a == 1 && b == 1)
			return;
	}
	die("handshake");
}

/* Minimum over batches: the least disturbed run of the same work. */
#define BATCH 1000

static void bench_calls(long n)
{
	SSL *c, *s;
	char buf[64];
	double best = 1e9;
	memset(buf, 'x', sizeof(buf));
	pair(&c, &s);
	for (long done = 0; done < n; done += BATCH) {
		double t0 = cpu_s();
		for (long i = 0; i < BATCH; i++) {
			if (srv_write(s, buf, sizeof(buf)) != sizeof(buf))
				die("write");
			if (SSL_read(c, buf, sizeof(buf)) != sizeof(buf))
				die("read");
		}
		double t = (cpu_s() - t0) / BATCH;
		if (t < best)
			best = t;
	}
	printf("RESULT calls %.1f ns_per_iteration\n", best * 1e9);
}

static void bench_llm(long n, const char *bodyfile)
{
	SSL *c, *s;
	FILE *f = fopen(bodyfile, "rb");
	if (!f)
		die("body file");
	static char body[4 << 20];
	size_t blen = fread(body, 1, sizeof(body), f);
	fclose(f);
	char head[256], req[512], buf[1024];
	int hl = snprintf(head, sizeof(head),
			  "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
			  "Content-Length: %zu\r\n\r\n", blen);
	const char *rb = "{\"model\":\"gpt-4o-mini\",\"stream\":true,"
			 "\"stream_options\":{\"include_usage\":true},"
			 "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
	int rl = snprintf(req, sizeof(req),
			  "POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\n"
			  "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
			  strlen(rb), rb);
	long reads = 0;
	double best = 1e9, t0 = 0;
	pair(&c, &s);
	for (long i = 0; i < n; i++) {
		if (i % 10 == 0)
			t0 = cpu_s();
		if (SSL_write(c, req, rl) != rl)
			die("request");
		if (srv_read(s, buf, sizeof(buf)) <= 0)
			die("server read");
		srv_write(s, head, hl);
		size_t want = (size_t)hl + blen, got = 0;
		for (size_t off = 0; off < blen; off += 1024) {
			size_t k = blen - off < 1024 ? blen - off : 1024;
			if (srv_write(s, body + off, (int)k) != (int)k)
				die("server write");
			/* read what is there before the BIO pair fills up */
			while (got < (size_t)hl + off + k) {
				int r = SSL_read(c, buf, sizeof(buf));
				if (r <= 0)
					die("read");
				got += (size_t)r;
				reads++;
			}
		}
		if (got != want)
			die("short response");
		if (i % 10 == 9) {
			double t = (cpu_s() - t0) / 10;
			if (t < best)
				best = t;
		}
	}
	printf("RESULT llm %.2f us_per_exchange %.3f us_per_read %ld reads_per_exchange\n",
	       best * 1e6, best * 1e6 / (double)(reads / n), reads / n);
}

/* ---- TCP on 127.0.0.1: a server thread using the real functions ---- */

static int lfd, port;
static long server_arg;
static int server_mode; /* 0 bulk, 1 keep-alive requests, 2 one per connection */

static void *server(void *arg)
{
	(void)arg;
	static char buf[16384];
	memset(buf, 'y', sizeof(buf));
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		int one = 1;
		if (fd < 0)
			return NULL;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		SSL *s = SSL_new(sctx);
		SSL_set_fd(s, fd);
		if (SSL_accept(s) == 1) {
			if (server_mode == 0) {
				long left = server_arg;
				while (left > 0) {
					int k = left < (long)sizeof(buf) ? (int)left : (int)sizeof(buf);
					int w = srv_write(s, buf, k);
					if (w <= 0)
						break;
					left -= w;
				}
			} else {
				static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
				char rq[1024];
				while (srv_read(s, rq, sizeof(rq)) > 0)
					if (srv_write(s, resp, sizeof(resp) - 1) <= 0)
						break;
			}
		}
		SSL_free(s);
		close(fd);
	}
}

static void listen_start(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t al = sizeof(a);
	pthread_t th;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 64) < 0)
		die("listen");
	getsockname(lfd, (struct sockaddr *)&a, &al);
	port = ntohs(a.sin_port);
	pthread_create(&th, NULL, server, NULL);
	pthread_detach(th);
}

static SSL *dial(int *fdp)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		die("connect");
	SSL *c = SSL_new(cctx);
	SSL_set_fd(c, fd);
	if (SSL_connect(c) != 1)
		die("connect tls");
	*fdp = fd;
	return c;
}

static int small_request(SSL *c)
{
	static const char rq[] = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
	char buf[256];
	int got = 0;
	if (SSL_write(c, rq, sizeof(rq) - 1) <= 0)
		return -1;
	while (got < 40) { /* the answer is 40 bytes */
		int r = SSL_read(c, buf, sizeof(buf));
		if (r <= 0)
			return -1;
		got += r;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 5)
		die("usage: see the comment at the top");
	const char *mode = argv[1];
	long n = strtol(argv[4], NULL, 10);
	setup(argv[2], argv[3]);
	if (!strcmp(mode, "calls")) {
		bench_calls(n);
	} else if (!strcmp(mode, "llm") && argc > 5) {
		bench_llm(n, argv[5]);
	} else if (!strcmp(mode, "bulk")) {
		server_mode = 0;
		server_arg = n << 20;
		listen_start();
		int fd;
		SSL *c = dial(&fd);
		static char buf[16384];
		long got = 0;
		double t0 = now_s(), c0 = pcpu_s();
		while (got < server_arg) {
			int r = SSL_read(c, buf, sizeof(buf));
			if (r <= 0)
				die("bulk read");
			got += r;
		}
		double t = now_s() - t0, cpu = pcpu_s() - c0;
		printf("RESULT bulk %.1f MB/s %.1f MB/cpu-s\n", (double)got / t / 1e6,
		       (double)got / cpu / 1e6);
	} else if (!strcmp(mode, "rate")) {
		server_mode = 1;
		listen_start();
		int fd;
		SSL *c = dial(&fd);
		double t0 = now_s(), c0 = pcpu_s();
		for (long i = 0; i < n; i++)
			if (small_request(c) < 0)
				die("request");
		printf("RESULT rate %.0f requests/s %.0f requests/cpu-s\n",
		       (double)n / (now_s() - t0), (double)n / (pcpu_s() - c0));
	} else if (!strcmp(mode, "conns")) {
		server_mode = 2;
		listen_start();
		double t0 = now_s(), c0 = pcpu_s();
		for (long i = 0; i < n; i++) {
			int fd;
			SSL *c = dial(&fd);
			if (small_request(c) < 0)
				die("request");
			SSL_shutdown(c);
			SSL_free(c);
			close(fd);
		}
		printf("RESULT conns %.0f connections/s %.0f connections/cpu-s\n",
		       (double)n / (now_s() - t0), (double)n / (pcpu_s() - c0));
	} else {
		die("unknown mode");
	}
	return 0;
}
