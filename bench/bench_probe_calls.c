/*
 * bench_probe_calls - CPU per SSL_write/SSL_read call, for
 * bench/bench_probe.sh.  A client and a server SSL in one thread, joined
 * by a BIO pair (no sockets, no system calls, no other thread): each
 * round trip is SSL_write, SSL_read, SSL_write, SSL_read of SIZE bytes.
 * Uprobe traps and their BPF programs run in this thread, so the process
 * CPU time per call, compared across set-ups, is what they add.
 *
 *   bench_probe_calls CERT KEY N SIZE    one JSON line
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define MAX_SIZE 16384

static double secs(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long arg(const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) {
		fprintf(stderr, "bench_probe_calls: bad number '%s'\n", s);
		exit(2);
	}
	return v;
}

/* Whole message through: SSL_write on one end, SSL_read on the other. */
static int pass(SSL *from, SSL *to, const unsigned char *msg, unsigned char *buf,
		int size)
{
	int got = 0, n;

	if (SSL_write(from, msg, size) != size)
		return -1;
	while (got < size) {
		n = SSL_read(to, buf + got, size - got);
		if (n <= 0)
			return -1;
		got += n;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static unsigned char msg[MAX_SIZE], buf[MAX_SIZE];
	SSL_CTX *sctx = NULL, *cctx = NULL;
	SSL *s = NULL, *c = NULL;
	BIO *bs = NULL, *bc = NULL;
	double c0, w0, cpu, wall;
	long n, size, i;
	int ret = 1, k;

	if (argc != 5) {
		fprintf(stderr, "usage: bench_probe_calls CERT KEY N SIZE\n");
		return 2;
	}
	n = arg(argv[3], 1, 100000000);
	size = arg(argv[4], 1, MAX_SIZE);
	memset(msg, 'y', sizeof(msg));

	sctx = SSL_CTX_new(TLS_server_method());
	cctx = SSL_CTX_new(TLS_client_method());
	if (!sctx || !cctx ||
	    SSL_CTX_use_certificate_chain_file(sctx, argv[1]) != 1 ||
	    SSL_CTX_use_PrivateKey_file(sctx, argv[2], SSL_FILETYPE_PEM) != 1)
		goto out;
	s = SSL_new(sctx);
	c = SSL_new(cctx);
	if (!s || !c || !BIO_new_bio_pair(&bs, 1 << 16, &bc, 1 << 16))
		goto out;
	SSL_set_bio(s, bs, bs);
	SSL_set_bio(c, bc, bc);
	SSL_set_accept_state(s);
	SSL_set_connect_state(c);
	for (k = 0; k < 100 && (!SSL_is_init_finished(s) ||
				!SSL_is_init_finished(c)); k++) {
		SSL_do_handshake(c);
		SSL_do_handshake(s);
	}
	if (!SSL_is_init_finished(s) || !SSL_is_init_finished(c))
		goto out;

	c0 = secs(CLOCK_PROCESS_CPUTIME_ID);
	w0 = secs(CLOCK_MONOTONIC);
	for (i = 0; i < n; i++)
		if (pass(c, s, msg, buf, (int)size) < 0 ||
		    pass(s, c, buf, buf, (int)size) < 0)
			goto out;
	cpu = secs(CLOCK_PROCESS_CPUTIME_ID) - c0;
	wall = secs(CLOCK_MONOTONIC) - w0;
	printf("{\"n\": %ld, \"size\": %ld, \"ssl_calls\": %ld, \"cpu_s\": %.6f, "
	       "\"seconds\": %.6f, \"us_per_call\": %.3f, \"calls_per_s\": %.0f}\n",
	       n, size, 4 * n, cpu, wall, cpu / (double)(4 * n) * 1e6,
	       (double)(4 * n) / wall);
	ret = 0;
out:
	if (ret)
		ERR_print_errors_fp(stderr);
	SSL_free(c); /* frees its BIO */
	SSL_free(s);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
	return ret;
}
