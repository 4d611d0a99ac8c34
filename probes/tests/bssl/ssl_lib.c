/*
 * ssl_lib.c - a small program shaped like what test_probe_bsslfind.c
 * looks for in Bun: BoringSSL's SSL_write, SSL_read (SSL_peek inlined
 * into it), SSL_new and the SSL destructor as ssl/ssl_lib.cc has them
 * (their ERR_put_error sites and reason codes, the method table), and a
 * program that calls them and hands results to SSL_get_error, like
 * uSockets.  The test compiles it as ssl/ssl_lib.cc, so that __FILE__
 * names it so, with the C compiler here (non-PIE and PIE, -O2), then
 * checks tt_bsslfind's offsets against the symbols: a second compiler's
 * code, with an answer known in advance.  It is never run.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NOINLINE __attribute__((noinline))

/* include/openssl/err.h and ssl.h */
#define ERR_LIB_SSL 16
#define ERR_R_SHOULD_NOT_HAVE_BEEN_CALLED 66
#define SSL_R_BAD_LENGTH 111
#define SSL_R_CONNECTION_TYPE_NOT_SET 134
#define SSL_R_NULL_SSL_CTX 185
#define SSL_R_SSL_HANDSHAKE_FAILURE 215
#define SSL_R_UNINITIALIZED 226
#define SSL_R_APPLICATION_DATA_ON_SHUTDOWN 291

#define OPENSSL_PUT_ERROR(reason) \
	ERR_put_error(ERR_LIB_SSL, 0, (reason), __FILE__, __LINE__)

typedef struct ssl SSL;

struct method {
	int is_dtls;
	int (*ssl_new)(SSL *ssl);
	void (*ssl_free)(SSL *ssl);
	int (*get_message)(SSL *ssl);
	int (*open_app_data)(SSL *ssl, const uint8_t **out, size_t *len);
	int (*write_app_data)(SSL *ssl, int *needs_handshake, size_t *written,
			      const uint8_t *buf, size_t len);
	int (*flush)(SSL *ssl);
};

struct s3 {
	const uint8_t *pending;
	size_t pending_len;
	int rwstate;
	int read_shutdown;
};

struct ssl {
	const struct method *method;
	void *ctx;
	int (*do_handshake)(SSL *ssl);
	struct s3 *s3;
	void *quic_method;
	int in_init;
	void *ex_data[4];
};

struct ex_class {
	int n;
	void (*free_fn[8])(void *);
};

static struct ex_class g_ex_data_class_ssl;
static unsigned long last_error;
volatile int sink;

NOINLINE void ERR_put_error(int lib, int unused, int reason, const char *file, unsigned line)
{
	last_error = (unsigned long)lib << 24 | (unsigned)reason;
	sink = unused + (int)line + (file[0] == 0);
}

NOINLINE void ERR_clear_error(void)
{
	last_error = 0;
}

NOINLINE void CRYPTO_free_ex_data(struct ex_class *cls, void *obj, void **ad)
{
	int i;

	for (i = 0; i < cls->n && i < 4; i++)
		if (cls->free_fn[i] && ad[i])
			cls->free_fn[i](ad[i]);
	sink = obj != NULL;
}

static void ssl_reset_error_state(SSL *ssl)
{
	ssl->s3->rwstate = 0;
	ERR_clear_error();
}

NOINLINE int SSL_do_handshake(SSL *ssl)
{
	ssl_reset_error_state(ssl);
	if (ssl->do_handshake == NULL) {
		OPENSSL_PUT_ERROR(SSL_R_CONNECTION_TYPE_NOT_SET);
		return -1;
	}
	if (!ssl->in_init)
		return 1;
	return ssl->do_handshake(ssl);
}

NOINLINE static int ssl_read_impl(SSL *ssl)
{
	ssl_reset_error_state(ssl);
	if (ssl->do_handshake == NULL) {
		OPENSSL_PUT_ERROR(SSL_R_UNINITIALIZED);
		return -1;
	}
	while (ssl->s3->pending_len == 0) {
		while (ssl->in_init) {
			int ret = SSL_do_handshake(ssl);

			if (ret < 0)
				return ret;
			if (ret == 0) {
				OPENSSL_PUT_ERROR(SSL_R_SSL_HANDSHAKE_FAILURE);
				return -1;
			}
		}
		if (ssl->method->get_message(ssl))
			continue;
		if (ssl->method->open_app_data(ssl, &ssl->s3->pending,
					       &ssl->s3->pending_len) <= 0)
			return -1;
	}
	return 1;
}

static int SSL_peek(SSL *ssl, void *buf, int num)
{
	size_t todo;
	int ret;

	if (ssl->quic_method != NULL) {
		OPENSSL_PUT_ERROR(ERR_R_SHOULD_NOT_HAVE_BEEN_CALLED);
		return -1;
	}
	ret = ssl_read_impl(ssl);
	if (ret <= 0)
		return ret;
	if (num <= 0)
		return num;
	todo = ssl->s3->pending_len < (size_t)num ? ssl->s3->pending_len : (size_t)num;
	memcpy(buf, ssl->s3->pending, todo);
	return (int)todo;
}

NOINLINE int SSL_read(SSL *ssl, void *buf, int num)
{
	int ret = SSL_peek(ssl, buf, num);

	if (ret <= 0)
		return ret;
	ssl->s3->pending += ret;
	ssl->s3->pending_len -= (size_t)ret;
	return ret;
}

NOINLINE int SSL_write(SSL *ssl, const void *buf, int num)
{
	int ret = 0, needs_handshake = 0;
	size_t written = 0;

	ssl_reset_error_state(ssl);
	if (ssl->quic_method != NULL) {
		OPENSSL_PUT_ERROR(ERR_R_SHOULD_NOT_HAVE_BEEN_CALLED);
		return -1;
	}
	if (ssl->do_handshake == NULL) {
		OPENSSL_PUT_ERROR(SSL_R_UNINITIALIZED);
		return -1;
	}
	do {
		if (ssl->in_init) {
			ret = SSL_do_handshake(ssl);
			if (ret < 0)
				return ret;
			if (ret == 0) {
				OPENSSL_PUT_ERROR(SSL_R_SSL_HANDSHAKE_FAILURE);
				return -1;
			}
		}
		if (num < 0) {
			OPENSSL_PUT_ERROR(SSL_R_BAD_LENGTH);
			return -1;
		}
		ret = ssl->method->write_app_data(ssl, &needs_handshake, &written,
						  buf, (size_t)num);
	} while (needs_handshake);
	return ret <= 0 ? ret : (int)written;
}

NOINLINE int SSL_shutdown(SSL *ssl)
{
	ssl_reset_error_state(ssl);
	if (ssl->do_handshake == NULL) {
		OPENSSL_PUT_ERROR(SSL_R_UNINITIALIZED);
		return -1;
	}
	if (ssl_read_impl(ssl) > 0) {
		OPENSSL_PUT_ERROR(SSL_R_APPLICATION_DATA_ON_SHUTDOWN);
		return -1;
	}
	return ssl->s3->read_shutdown;
}

NOINLINE int SSL_get_error(const SSL *ssl, int ret_code)
{
	if (ret_code > 0)
		return 0;
	if (last_error)
		return 1;
	return ssl->s3->rwstate;
}

/* ~ssl_st */
NOINLINE void ssl_st_destroy(SSL *ssl)
{
	CRYPTO_free_ex_data(&g_ex_data_class_ssl, ssl, ssl->ex_data);
	if (ssl->method != NULL)
		ssl->method->ssl_free(ssl);
	free(ssl->s3);
}

NOINLINE void SSL_free(SSL *ssl)
{
	if (ssl == NULL)
		return;
	ssl_st_destroy(ssl);
	free(ssl);
}

NOINLINE SSL *SSL_new(void *ctx, const struct method *method)
{
	SSL *ssl;

	if (ctx == NULL) {
		OPENSSL_PUT_ERROR(SSL_R_NULL_SSL_CTX);
		return NULL;
	}
	ssl = calloc(1, sizeof(*ssl));
	if (ssl == NULL)
		return NULL;
	ssl->ctx = ctx;
	ssl->method = method;
	ssl->s3 = calloc(1, sizeof(*ssl->s3));
	if (ssl->s3 == NULL || !method->ssl_new(ssl)) {
		ssl_st_destroy(ssl);
		free(ssl);
		return NULL;
	}
	return ssl;
}

/* ---- the program: uSockets' way of calling them ---- */

struct sock {
	int fd;
	SSL *ssl;
	int fatal;
	char out[64];
};

NOINLINE int sock_write(struct sock *s, const char *data, int length)
{
	int written = SSL_write(s->ssl, data, length);
	int err;

	if (written > 0)
		return written;
	err = SSL_get_error(s->ssl, written);
	if (err == 1)
		s->fatal = 1;
	return 0;
}

NOINLINE int sock_read(struct sock *s, char *buf, int cap)
{
	int n = SSL_read(s->ssl, buf, cap);

	if (n <= 0) {
		int err = SSL_get_error(s->ssl, n);

		if (err == 1 || err == 5)
			s->fatal = 1;
		return -err;
	}
	return n;
}

NOINLINE int wrapper_write(SSL *ssl, const char *data, size_t len)
{
	int r = SSL_write(ssl, data, (int)len);

	if (r <= 0)
		return -SSL_get_error(ssl, r);
	return r;
}

NOINLINE int wrapper_read(SSL *ssl, char *buf, size_t len)
{
	int r = SSL_read(ssl, buf, (int)(len > 65536 ? 65536 : len));

	if (r <= 0)
		return -SSL_get_error(ssl, r);
	return r;
}

NOINLINE void sock_close(struct sock *s)
{
	SSL_shutdown(s->ssl);
	SSL_free(s->ssl);
	s->ssl = NULL;
}

int main(int argc, char **argv)
{
	struct sock s = { .fd = argc };
	char buf[256];

	if (argc < 5)
		return 0;
	s.ssl = SSL_new(argv, NULL);
	if (!s.ssl)
		s.ssl = SSL_new(argv[1], (const struct method *)argv[2]);
	sock_write(&s, argv[1], argc);
	sock_read(&s, buf, (int)sizeof(buf));
	wrapper_write(s.ssl, argv[2], strlen(argv[2]));
	wrapper_read(s.ssl, buf, sizeof(buf));
	sock_close(&s);
	return sink;
}
