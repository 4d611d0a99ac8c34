/*
 * enforce_err.c - the OpenSSL error of a refused HTTP/2 write
 * (tt_enforce_raise, enforce.h).
 *
 * ERR_error_string() prints a library's and a reason's registered
 * strings, not an error's data, and curl prints only that: so the rule
 * and the task go into a reason string registered for a library of our
 * own.  One reason code per distinct sentence, REASONS at most (then a
 * generic one); the strings live as long as the process, as OpenSSL's
 * table wants.  libcrypto's functions are looked up by name (3.x:
 * ERR_new/ERR_set_debug/ERR_set_error, the expansion of ERR_raise_data;
 * 1.1.1: ERR_put_error/ERR_add_error_data), never linked: the shim does
 * not pull in a libcrypto of its own.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "enforce.h"
#include "tokentap/record.h"

#define REASONS 32
#define REASON_LEN 320

struct err_string { unsigned long error; const char *string; };  /* ERR_STRING_DATA */

static struct {
	pthread_mutex_t mu;
	int looked, v3, lib;
	int (*next_lib)(void);
	int (*load)(const struct err_string *);
	void (*err_new)(void);
	void (*set_debug)(const char *, int, const char *);
	void (*set_error)(int, int, const char *, ...);
	void (*put_error)(int, int, int, const char *, int);
	void (*add_data)(int, ...);
	char text[REASONS][REASON_LEN];
	/* OpenSSL keeps pointers to these entries: they never move. */
	struct err_string base[3];            /* library, generic reason, end */
	struct err_string one[REASONS][2];    /* each sentence, end */
	int nreasons;
} err = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void *crypto_sym(const char *name)
{
	static const char *const sonames[] = {"libcrypto.so.3", "libcrypto.so.1.1", "libcrypto.so"};
	void *p = dlsym(RTLD_DEFAULT, name);

	/* CPython loads libssl (and so libcrypto) RTLD_LOCAL: ask it directly. */
	for (size_t i = 0; !p && i < sizeof(sonames) / sizeof(sonames[0]); i++) {
		void *h = dlopen(sonames[i], RTLD_LAZY | RTLD_NOLOAD);

		if (h) {
			p = dlsym(h, name);
			dlclose(h);  /* drops only the reference NOLOAD took */
		}
	}
	return p;
}

/* OpenSSL's ERR_PACK: 3.x has no function field and a 23-bit reason. */
static unsigned long err_pack(int lib, int reason)
{
	if (err.v3)
		return ((unsigned long)(lib & 0xff) << 23) | ((unsigned long)reason & 0x7fffff);
	return ((unsigned long)(lib & 0xff) << 24) | ((unsigned long)reason & 0xfff);
}

/* With err.mu held, once: libcrypto's functions, our library's number
 * and its name registered. */
static void err_look_up(void)
{
	err.looked = 1;
	err.next_lib = (int (*)(void))crypto_sym("ERR_get_next_error_library");
	err.load = (int (*)(const struct err_string *))crypto_sym("ERR_load_strings_const");
	err.err_new = (void (*)(void))crypto_sym("ERR_new");
	err.set_debug = (void (*)(const char *, int, const char *))crypto_sym("ERR_set_debug");
	err.set_error = (void (*)(int, int, const char *, ...))crypto_sym("ERR_set_error");
	err.put_error = (void (*)(int, int, int, const char *, int))crypto_sym("ERR_put_error");
	err.add_data = (void (*)(int, ...))crypto_sym("ERR_add_error_data");
	err.v3 = err.err_new && err.set_debug && err.set_error;
	err.lib = err.next_lib ? err.next_lib() : 0;
	if (err.lib <= 0 || err.lib > 0xff)
		err.lib = 128;  /* ERR_LIB_USER */
	if (err.load && err.lib != 128) {
		err.base[0].error = err_pack(err.lib, 0);
		err.base[0].string = "tokentap";
		err.base[1].error = err_pack(err.lib, 1);
		err.base[1].string = "call blocked by budget";
		err.load(err.base);  /* read up to the NULL string */
	}
}

/* With err.mu held: the reason code of sentence s (registered now if new). */
static int err_reason(const char *s)
{
	int i;

	if (!err.looked)
		err_look_up();
	if (!err.load || err.lib == 128)
		return 1;
	for (i = 0; i < err.nreasons; i++)
		if (strcmp(err.text[i], s) == 0)
			return i + 2;
	if (err.nreasons == REASONS)
		return 1;
	i = err.nreasons++;
	tt_record_set(err.text[i], REASON_LEN, s, (size_t)-1);
	err.one[i][0].error = err_pack(err.lib, i + 2);
	err.one[i][0].string = err.text[i];
	err.load(err.one[i]);
	return i + 2;
}

void tt_enforce_atfork_child(void)
{
	pthread_mutex_init(&err.mu, NULL);
}

int tt_enforce_raise(const char *rule, const char *task, const char *reason)
{
	char sentence[REASON_LEN], data[768];
	int code, rc = 0;

	snprintf(sentence, sizeof(sentence), "call blocked by budget rule \"%s\" for task \"%s\"",
		 rule && rule[0] ? rule : "unknown", task && task[0] ? task : "(none)");
	snprintf(data, sizeof(data), "tokentap: %s: %s", sentence,
		 reason && reason[0] ? reason : "budget exhausted");
	pthread_mutex_lock(&err.mu);
	code = err_reason(sentence);
	if (err.v3) {
		err.err_new();
		err.set_debug("tokentap", 0, "SSL_write");
		err.set_error(err.lib, code, "%s", data);
	} else if (err.put_error) {
		err.put_error(err.lib, 0, code, "tokentap", 0);
		if (err.add_data)
			err.add_data(1, data);
	} else {
		rc = -1;
	}
	pthread_mutex_unlock(&err.mu);
	return rc;
}
