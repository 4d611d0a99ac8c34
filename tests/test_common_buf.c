/*
 * test_common_buf.c - the one byte buffer and the one JSON escaper:
 * all-or-nothing appends refuse at the cap and keep the content, cutting
 * appends keep what fits and say so, escapes are RFC 8259's and never
 * split, printf and take behave, under ASan.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/json.h"
#include "tokentap/error.h"

static void test_add_is_all_or_nothing(void **state)
{
	tt_buf b;

	(void)state;
	tt_buf_init(&b, 8);
	assert_int_equal(tt_buf_add(&b, "abcdef", 6), 0);
	assert_int_equal(tt_buf_add(&b, "ghi", 3), TT_ETRUNCATED);
	assert_int_equal(b.len, 6);
	assert_string_equal(b.data, "abcdef");
	assert_false(b.truncated);
	assert_int_equal(tt_buf_add(&b, "gh", 2), 0);
	assert_string_equal(b.data, "abcdefgh");
	assert_int_equal(tt_buf_add(&b, "", 0), 0);
	tt_buf_free(&b);
}

static void test_add_trunc_keeps_what_fits(void **state)
{
	tt_buf b;

	(void)state;
	tt_buf_init(&b, 5);
	assert_int_equal(tt_buf_add_trunc(&b, "abc", 3), 0);
	assert_int_equal(tt_buf_add_trunc(&b, "defg", 4), TT_ETRUNCATED);
	assert_string_equal(b.data, "abcde");
	assert_true(b.truncated);
	assert_int_equal(tt_buf_add_trunc(&b, "x", 1), TT_ETRUNCATED);
	assert_int_equal(b.len, 5);
	tt_buf_consume(&b, 2);
	assert_string_equal(b.data, "cde");
	tt_buf_reset(&b);
	assert_false(b.truncated);
	assert_int_equal(b.len, 0);
	tt_buf_free(&b);
	tt_buf_free(NULL);
}

static void test_printf_and_take(void **state)
{
	char big[600];
	size_t len;
	char *p;
	tt_buf b;

	(void)state;
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	tt_buf_init(&b, 1 << 20);
	assert_int_equal(tt_buf_printf(&b, "%d-%s", 42, "x"), 0);
	assert_int_equal(tt_buf_printf(&b, "%s", big), 0); /* past the small path */
	assert_int_equal(b.len, 4 + sizeof(big) - 1);
	p = tt_buf_take(&b, &len);
	assert_int_equal(len, 4 + sizeof(big) - 1);
	assert_memory_equal(p, "42-x", 4);
	assert_null(b.data);
	free(p);
	p = tt_buf_take(&b, &len); /* nothing appended: an empty string */
	assert_non_null(p);
	assert_int_equal(len, 0);
	assert_string_equal(p, "");
	free(p);
	tt_buf_init(&b, 3);
	assert_int_equal(tt_buf_printf(&b, "%s", "abcd"), TT_ETRUNCATED);
	assert_int_equal(b.len, 0);
	tt_buf_free(&b);
}

static void test_json_escapes(void **state)
{
	static const char in[] = "a\"b\\c\nd\re\tf\001g\x1fh\x7fi\xc3\xa9";
	static const char want[] = "a\\\"b\\\\c\\nd\\re\\tf\\u0001g\\u001fh\x7fi\xc3\xa9";
	char out[128];
	tt_buf b;

	(void)state;
	assert_int_equal(tt_json_escape(out, sizeof(out), in), strlen(want));
	assert_string_equal(out, want);
	tt_buf_init(&b, 1024);
	assert_int_equal(tt_buf_json_str(&b, in, strlen(in)), 0);
	assert_string_equal(b.data, want);
	tt_buf_free(&b);
	/* a NUL inside the bytes given by length is escaped too */
	tt_buf_init(&b, 1024);
	assert_int_equal(tt_buf_json_str(&b, "a\0b", 3), 0);
	assert_string_equal(b.data, "a\\u0000b");
	tt_buf_free(&b);
}

/* Every cap: terminated, never half an escape, a prefix of the whole. */
static void test_json_escape_every_cap(void **state)
{
	static const char in[] = "x\"\001yz\\";
	char whole[64];
	size_t n = tt_json_escape(whole, sizeof(whole), in);

	(void)state;
	for (size_t cap = 1; cap <= n + 1; cap++) {
		char *out = malloc(cap);
		size_t got = tt_json_escape(out, cap, in);

		assert_true(got < cap);
		assert_int_equal(out[got], '\0');
		assert_memory_equal(out, whole, got);
		/* cut only between escapes: what follows in whole starts one */
		assert_true(got == n || whole[got] != 'u' || whole[got - 1] != '\\');
		free(out);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_is_all_or_nothing),
		cmocka_unit_test(test_add_trunc_keeps_what_fits),
		cmocka_unit_test(test_printf_and_take),
		cmocka_unit_test(test_json_escapes),
		cmocka_unit_test(test_json_escape_every_cap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
