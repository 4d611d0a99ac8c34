/* conn.c - per-connection state stored as OpenSSL ex_data. */
#include <pthread.h>
#include <stdlib.h>

#include "conn.h"
#include "enforce.h"
#include "resolve.h"

char tt_conn_pass_marker;

static tt_conn_free_fn free_hook;

tt_conn *tt_conn_new(pid_t pid, tt_record_fn on_record, tt_record_fn on_request, void *user)
{
	tt_decoder_config cfg;
	tt_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	tt_decoder_config_init(&cfg);
	cfg.on_record = on_record;
	cfg.on_request = on_request;
	cfg.user = user ? user : c;
	c->dec = tt_decoder_new(&cfg);
	if (!c->dec) {
		free(c);
		return NULL;
	}
	c->pid = pid;
	return c;
}

void tt_conn_end(tt_conn *c, int deliver, int64_t now_us)
{
	if (!c || (void *)c == TT_CONN_PASS)
		return;
	if (deliver)
		tt_decoder_close(c->dec, now_us);
	tt_decoder_free(c->dec);
	tt_enforce_free(c->enf);
	free(c);
}

void tt_conn_set_free_hook(tt_conn_free_fn fn)
{
	free_hook = fn;
}

/* OpenSSL's CRYPTO_EX_free / CRYPTO_EX_dup, without its headers. */
typedef void ex_free_fn(void *parent, void *ptr, void *ad, int idx, long argl,
			void *argp);
typedef int ex_dup_fn(void *to, const void *from, void *from_d, int idx,
		      long argl, void *argp);

/* SSL_free dropped the last reference: the connection is over. */
static void ex_free(void *parent, void *ptr, void *ad, int idx, long argl,
		    void *argp)
{
	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	if (ptr && ptr != TT_CONN_PASS && free_hook)
		free_hook(ptr);
}

/* SSL_dup copies every ex_data pointer unless told otherwise; the copy is
 * a different connection and must not share (and free twice) our state.
 * from_d is really a void ** in every OpenSSL since 1.1.0. */
static int ex_dup(void *to, const void *from, void *from_d, int idx, long argl,
		  void *argp)
{
	(void)to, (void)from, (void)idx, (void)argl, (void)argp;
	if (from_d)
		*(void **)from_d = NULL;
	return 1;
}

static int slot = -2; /* -2: not yet; -1: unusable */
static pthread_mutex_t slot_mu = PTHREAD_MUTEX_INITIALIZER;

int tt_conn_slot_init(void)
{
	int s = __atomic_load_n(&slot, __ATOMIC_ACQUIRE);
	if (s != -2)
		return s;

	pthread_mutex_lock(&slot_mu);
	s = slot;
	if (s == -2) {
		/* CRYPTO_EX_INDEX_SSL is 0 in OpenSSL 1.1 and 3. */
		int (*new_index)(int, long, void *, void *, ex_dup_fn *,
				 ex_free_fn *) = tt_real(TT_REAL_CRYPTO_get_ex_new_index);
		s = -1;
		if (new_index && tt_real(TT_REAL_SSL_get_ex_data) &&
		    tt_real(TT_REAL_SSL_set_ex_data))
			s = new_index(0, 0, NULL, NULL, ex_dup, ex_free);
		if (s < 0)
			s = -1;
		__atomic_store_n(&slot, s, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&slot_mu);
	return s;
}

void *tt_conn_get(void *ssl, int idx)
{
	void *(*get)(const void *, int) = tt_real(TT_REAL_SSL_get_ex_data);
	return get(ssl, idx);
}

void tt_conn_set(void *ssl, int idx, void *value)
{
	int (*set)(void *, int, void *) = tt_real(TT_REAL_SSL_set_ex_data);
	set(ssl, idx, value);
}
