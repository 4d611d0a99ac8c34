/*
 * test_common_addr.c - the one parser of the collector's address and the
 * one reader of bearer-token files: every accepted form, every refusal,
 * and, under ASan, no read past the end of any prefix of an address.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/addr.h"
#include "common/token.h"
#include "tokentap/error.h"

static void test_accepted(void **state)
{
	static const struct {
		const char *in, *host, *port;
		int numeric;
	} ok[] = {
		{"http://127.0.0.1:7070", "127.0.0.1", "7070", 1},
		{"http://127.0.0.1:7070/", "127.0.0.1", "7070", 1},
		{"http://localhost:80/v1/records", "localhost", "80", 0},
		{"http://collector.tokentap.svc", "collector.tokentap.svc", "80", 0},
		{"http://[::1]:8377", "::1", "8377", 1},
		{"http://[fe80::1]", "fe80::1", "80", 1},
		{"http://h:0", "h", "0", 0},
		{"http://h:65535?x", "h", "65535", 0},
	};
	tt_addr a;

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(tt_addr_parse(ok[i].in, &a, NULL, 0), 0);
		assert_false(a.is_unix);
		assert_string_equal(a.host, ok[i].host);
		assert_string_equal(a.port, ok[i].port);
		assert_int_equal(a.numeric, ok[i].numeric);
	}
	assert_int_equal(tt_addr_parse("unix:/run/tokentap/tokentapd.sock", &a, NULL, 0), 0);
	assert_true(a.is_unix);
	assert_string_equal(a.path, "/run/tokentap/tokentapd.sock");
	assert_int_equal(tt_addr_parse(TT_DEFAULT_COLLECTOR, &a, NULL, 0), 0);
}

static void test_refused(void **state)
{
	static const char *const bad[] = {
		"", "off", "https://127.0.0.1:1", "unix:relative.sock", "unix:",
		"http://", "http://:80", "http://h:", "http://h:65536", "http://h:-1",
		"http://h:8x", "http://[::1", "http://[::1]x", "http://u@h:1",
		"http://a b:1", "tcp://h:1",
		"unix:/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", /* longer than sun_path */
	};
	char err[300];
	tt_addr a;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(tt_addr_parse(bad[i], &a, err, sizeof(err)), TT_EINVAL);
		assert_true(err[0] != '\0');
	}
	assert_int_equal(tt_addr_parse(NULL, &a, err, sizeof(err)), TT_EINVAL);
}

/* Every prefix, in a heap block of exactly its size: never a read past it. */
static void test_every_prefix(void **state)
{
	static const char *const all[] = {
		"http://[2001:db8::7]:7070/x", "http://collector:7070", "unix:/tmp/x.sock",
	};
	tt_addr a;

	(void)state;
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		for (size_t n = 0; n <= strlen(all[i]); n++) {
			char *p = malloc(n + 1);

			memcpy(p, all[i], n);
			p[n] = '\0';
			(void)tt_addr_parse(p, &a, NULL, 0);
			free(p);
		}
}

static char dir[] = "/tmp/tt-token-XXXXXX";

static const char *write_file(const char *name, const char *text, size_t len, mode_t mode)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	fclose(f);
	chmod(path, mode);
	return path;
}

static void test_token_files(void **state)
{
	char tok[TT_TOKEN_BUF], err[300], *big;
	int loose;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(tt_token_read(write_file("a", "s3cret-token-abc\n", 17, 0600), tok,
				       sizeof(tok), &loose, err, sizeof(err)), 16);
	assert_string_equal(tok, "s3cret-token-abc");
	assert_false(loose);
	assert_int_equal(tt_token_read(write_file("b", "tok\r\n  ", 7, 0644), tok, sizeof(tok),
				       &loose, err, sizeof(err)), 3);
	assert_true(loose);
	/* refused: empty, two lines, a space inside, a control character */
	assert_int_equal(tt_token_read(write_file("c", "\n", 1, 0600), tok, sizeof(tok), NULL,
				       err, sizeof(err)), TT_EINVAL);
	assert_int_equal(tt_token_read(write_file("d", "a\nb", 3, 0600), tok, sizeof(tok), NULL,
				       err, sizeof(err)), TT_EINVAL);
	assert_int_equal(tt_token_read(write_file("e", "a b", 3, 0600), tok, sizeof(tok), NULL,
				       err, sizeof(err)), TT_EINVAL);
	assert_int_equal(tt_token_read(write_file("f", "a\001", 2, 0600), tok, sizeof(tok), NULL,
				       err, sizeof(err)), TT_EINVAL);
	assert_null(strstr(err, "a\001"));      /* the reason never holds the token */
	assert_int_equal(tok[0], '\0');          /* and the buffer is wiped */
	/* 4096 characters fit, 4097 do not */
	big = malloc(TT_TOKEN_MAX + 2);
	memset(big, 'x', TT_TOKEN_MAX + 1);
	assert_int_equal(tt_token_read(write_file("g", big, TT_TOKEN_MAX, 0600), tok, sizeof(tok),
				       NULL, err, sizeof(err)), TT_TOKEN_MAX);
	assert_int_equal(tt_token_read(write_file("h", big, TT_TOKEN_MAX + 1, 0600), tok,
				       sizeof(tok), NULL, err, sizeof(err)), TT_EINVAL);
	free(big);
	assert_int_equal(tt_token_read("/nonexistent/token", tok, sizeof(tok), NULL, err,
				       sizeof(err)), TT_EIO);
	for (const char *n = "abcdefgh"; *n; n++) {
		char p[300];

		snprintf(p, sizeof(p), "%s/%c", dir, *n);
		unlink(p);
	}
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accepted),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_every_prefix),
		cmocka_unit_test(test_token_files),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
