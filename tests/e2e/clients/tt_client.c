/*
 * tt_client.c - a small HTTPS client on raw OpenSSL for the agent's
 * end-to-end tests: many threads on separate connections, fork children
 * that call too, SSL_peek before reading, the _ex entry points.
 *
 *   tt_client --port P --ca CA [--path /v1/chat/completions] [--body FILE]
 *             [--method POST] [--threads N] [--calls M] [--fork N]
 *             [--peek] [--ex] [--key sk-...] [--header 'Name: value']
 *
 * Every call opens its own connection ("Connection: close"), writes the
 * head and the body in separate writes, reads to EOF.  stdout gets one line
 * per call, in thread order after all finished:
 *	call <proc>.<thread>.<n> status=<S> bytes=<N> body_sha256=<hex>
 * so the output of two runs can be compared byte for byte.  Exit 0 when
 * every call got a response.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int port, threads = 1, calls = 1, forks, use_peek, use_ex;
static const char *ca, *path = "/v1/chat/completions", *method = "POST";
static const char *key = "sk-SENTINEL-tt-client-0123456789";
static const char *extra_header;
static char *body;
static size_t body_len;
static SSL_CTX *ctx;

struct result {
	int status;
	size_t bytes;
	char sha[65];
};

static struct result *results;

static int wr(SSL *s, const void *buf, size_t len)
{
	while (len > 0) {
		size_t n = 0;
		int ok;
		if (use_ex) {
			ok = SSL_write_ex(s, buf, len, &n) == 1;
		} else {
			int r = SSL_write(s, buf, (int)len);
			ok = r > 0;
			n = ok ? (size_t)r : 0;
		}
		if (!ok)
			return -1;
		buf = (const char *)buf + n;
		len -= n;
	}
	return 0;
}

/* One read; peeks first when asked, so that the same bytes pass twice. */
static long rd(SSL *s, char *buf, size_t cap)
{
	size_t n = 0;
	if (use_peek) {
		char tmp[64];
		size_t want = cap < sizeof(tmp) ? cap : sizeof(tmp);
		if (use_ex) {
			if (SSL_peek_ex(s, tmp, want, &n) != 1)
				return -1;
		} else {
			int r = SSL_peek(s, tmp, (int)want);
			if (r <= 0)
				return -1;
		}
	}
	if (use_ex)
		return SSL_read_ex(s, buf, cap, &n) == 1 ? (long)n : -1;
	int r = SSL_read(s, buf, (int)cap);
	return r > 0 ? r : -1;
}

static int one_call(struct result *res)
{
	int fd = -1, rc = -1;
	SSL *s = NULL;
	char head[1024];
	size_t cap = 1 << 20, len = 0;
	char *resp = malloc(cap);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		goto out;
	s = SSL_new(ctx);
	SSL_set_fd(s, fd);
	SSL_set_tlsext_host_name(s, "localhost");
	if (SSL_connect(s) != 1)
		goto out;
	int hn = snprintf(head, sizeof(head),
			  "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
			  "Authorization: Bearer %s\r\n"
			  "Content-Type: application/json\r\n"
			  "%s%s"
			  "Content-Length: %zu\r\nConnection: close\r\n\r\n",
			  method, path, port, key, extra_header ? extra_header : "",
			  extra_header ? "\r\n" : "", body_len);
	if (wr(s, head, (size_t)hn) < 0 || (body_len && wr(s, body, body_len) < 0))
		goto out;
	for (;;) {
		if (len == cap)
			resp = realloc(resp, cap *= 2);
		long n = rd(s, resp + len, cap - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	SSL_shutdown(s);
	char *eoh = memmem(resp, len, "\r\n\r\n", 4);
	if (!eoh || sscanf(resp, "HTTP/1.1 %d", &res->status) != 1)
		goto out;
	size_t off = (size_t)(eoh + 4 - resp);
	res->bytes = len - off;
	unsigned char md[32];
	unsigned int mdlen;
	EVP_Digest(resp + off, len - off, md, &mdlen, EVP_sha256(), NULL);
	for (int i = 0; i < 32; i++)
		snprintf(res->sha + 2 * i, 3, "%02x", md[i]);
	rc = 0;
out:
	if (s)
		SSL_free(s);
	if (fd >= 0)
		close(fd);
	free(resp);
	return rc;
}

static void *worker(void *arg)
{
	int t = (int)(long)arg;
	char name[16];

	/* Like runtimes that do TLS on a named thread: the record's comm must
	 * still be the program's name. */
	snprintf(name, sizeof(name), "HTTP Client %d", t % 100);
	pthread_setname_np(pthread_self(), name);
	for (int c = 0; c < calls; c++)
		if (one_call(&results[t * calls + c]) < 0)
			results[t * calls + c].status = -1;
	return NULL;
}

static int run(const char *who)
{
	pthread_t *th = calloc((size_t)threads, sizeof(*th));
	int bad = 0;

	results = calloc((size_t)(threads * calls), sizeof(*results));
	for (int t = 0; t < threads; t++)
		pthread_create(&th[t], NULL, worker, (void *)(long)t);
	for (int t = 0; t < threads; t++)
		pthread_join(th[t], NULL);
	for (int t = 0; t < threads; t++)
		for (int c = 0; c < calls; c++) {
			struct result *r = &results[t * calls + c];
			printf("call %s.%d.%d status=%d bytes=%zu body_sha256=%s\n",
			       who, t, c, r->status, r->bytes, r->sha);
			bad |= r->status <= 0;
		}
	fflush(stdout);
	free(th);
	free(results);
	return bad;
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--peek")) { use_peek = 1; continue; }
		if (!strcmp(a, "--ex")) { use_ex = 1; continue; }
		if (!v) { fprintf(stderr, "%s needs a value\n", a); return 2; }
		i++;
		if (!strcmp(a, "--port")) port = (int)strtol(v, NULL, 10);
		else if (!strcmp(a, "--ca")) ca = v;
		else if (!strcmp(a, "--path")) path = v;
		else if (!strcmp(a, "--method")) method = v;
		else if (!strcmp(a, "--threads")) threads = (int)strtol(v, NULL, 10);
		else if (!strcmp(a, "--calls")) calls = (int)strtol(v, NULL, 10);
		else if (!strcmp(a, "--fork")) forks = (int)strtol(v, NULL, 10);
		else if (!strcmp(a, "--key")) key = v;
		else if (!strcmp(a, "--header")) extra_header = v;
		else if (!strcmp(a, "--body")) {
			FILE *f = fopen(v, "rb");
			if (!f) { perror(v); return 2; }
			fseek(f, 0, SEEK_END);
			body_len = (size_t)ftell(f);
			fseek(f, 0, SEEK_SET);
			body = malloc(body_len + 1);
			if (fread(body, 1, body_len, f) != body_len) return 2;
			fclose(f);
		} else { fprintf(stderr, "unknown option %s\n", a); return 2; }
	}
	if (!port || !ca || threads < 1 || calls < 1 || forks < 0) {
		fprintf(stderr, "usage: see the comment at the top of tt_client.c\n");
		return 2;
	}
	ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
		ERR_print_errors_fp(stderr);
		return 2;
	}
	/* HTTP/1.1 only: this client speaks no HTTP/2. */
	SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)"\x08http/1.1", 9);

	int bad = run("p");
	/* Children that call too: each must ship its own records (exit(), not
	 * _exit(), so that the agent's exit flush runs). */
	for (int k = 0; k < forks; k++) {
		fflush(stdout);
		pid_t pid = fork();
		if (pid == 0) {
			char who[16];
			snprintf(who, sizeof(who), "c%d", k);
			exit(run(who));
		}
		int st;
		if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) ||
		    WEXITSTATUS(st) != 0)
			bad = 1;
	}
	SSL_CTX_free(ctx);
	free(body);
	return bad;
}
