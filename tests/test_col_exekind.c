/*
 * test_col_exekind.c - tt_exe_kind_of on real programs: an ordinary one,
 * one linked -static here, a Go program built by the probe's tests, Bun
 * and Codex from npm when installed (each skipped, saying why, when
 * absent), scripts by their "#!" line, and names looked up in PATH.
 */
#include <glob.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "collector/exekind.h"

static char dir[] = "/tmp/tt-exekind-XXXXXX";

static void write_file(const char *name, const char *text, int mode)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

/* The first file matching PATTERN (from the repository root), or NULL. */
static const char *first_match(const char *pattern, char *out, size_t cap)
{
	glob_t g;

	if (glob(pattern, 0, NULL, &g) != 0)
		return NULL;
	snprintf(out, cap, "%s", g.gl_pathv[0]);
	globfree(&g);
	return out;
}

static tt_exe_kind kind(const char *cmd)
{
	char path[PATH_MAX];

	return tt_exe_kind_of(cmd, path, sizeof(path));
}

static void test_ordinary_and_missing(void **state)
{
	char path[PATH_MAX];

	(void)state;
	assert_int_equal(tt_exe_kind_of("/bin/true", path, sizeof(path)), TT_EXE_DYNAMIC);
	assert_string_equal(path, "/bin/true");
	/* a name without '/' is looked up in PATH, as execvp does */
	setenv("PATH", "/usr/bin:/bin", 1);
	assert_int_equal(tt_exe_kind_of("true", path, sizeof(path)), TT_EXE_DYNAMIC);
	assert_string_equal(path, "/usr/bin/true");
	assert_int_equal(kind("no-such-program-tt"), TT_EXE_UNKNOWN);
	assert_int_equal(kind("/no/such/file"), TT_EXE_UNKNOWN);
	assert_null(tt_exe_kind_name(TT_EXE_DYNAMIC));
	assert_null(tt_exe_kind_name(TT_EXE_UNKNOWN));
}

static void test_static(void **state)
{
	char cmd[PATH_MAX * 2], bin[PATH_MAX];

	(void)state;
	write_file("hello.c", "int main(void) { return 0; }\n", 0644);
	snprintf(bin, sizeof(bin), "%s/hello-static", dir);
	snprintf(cmd, sizeof(cmd), "cc -static -o %s %s/hello.c 2>/dev/null", bin, dir);
	if (system(cmd) != 0)
		skip(); /* no static libc (libc6-dev): nothing to test */
	assert_int_equal(kind(bin), TT_EXE_STATIC);
	assert_string_equal(tt_exe_kind_name(TT_EXE_STATIC), "static");
}

static void test_scripts(void **state)
{
	char path[PATH_MAX], p[PATH_MAX];

	(void)state;
	write_file("text", "just words\n", 0755);
	write_file("sh-script", "#!/bin/sh\necho hi\n", 0755);
	write_file("env-script", "#!/usr/bin/env -S hello-static\n", 0755);
	snprintf(p, sizeof(p), "%s/text", dir);
	assert_int_equal(kind(p), TT_EXE_UNKNOWN);
	snprintf(p, sizeof(p), "%s/sh-script", dir);
	assert_int_equal(tt_exe_kind_of(p, path, sizeof(path)), TT_EXE_DYNAMIC);
	assert_string_equal(path, "/bin/sh");
	/* "#!/usr/bin/env NAME" finds NAME in PATH */
	snprintf(p, sizeof(p), "%s:/usr/bin:/bin", dir);
	setenv("PATH", p, 1);
	snprintf(p, sizeof(p), "%s/env-script", dir);
	snprintf(path, sizeof(path), "%s/hello-static", dir);
	if (access(path, X_OK) == 0)
		assert_int_equal(kind(p), TT_EXE_STATIC);
	else
		assert_int_equal(kind(p), TT_EXE_UNKNOWN);
	setenv("PATH", "/usr/bin:/bin", 1);
}

/*
 * A program that defines SSL_write itself (as a node with OpenSSL linked
 * in does) is one the agent cannot enter; one that imports it can.
 */
static void test_own_openssl(void **state)
{
	char own[PATH_MAX], imp[PATH_MAX], cmd[3 * PATH_MAX];

	(void)state;
	write_file("own.c", "int SSL_write(void *s, const void *b, int n)\n"
		   "{ (void)s; (void)b; return n; }\n"
		   "int main(void) { return SSL_write(0, 0, 0); }\n", 0644);
	write_file("imp.c", "int SSL_write(void *s, const void *b, int n);\n"
		   "int main(int c, char **v) { return c > 5 ? SSL_write(0, v, 0) : 0; }\n",
		   0644);
	snprintf(own, sizeof(own), "%s/own", dir);
	snprintf(imp, sizeof(imp), "%s/imp", dir);
	snprintf(cmd, sizeof(cmd), "cc -rdynamic -o %s %s/own.c && "
		 "cc -o %s %s/imp.c -lssl", own, dir, imp, dir);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(kind(own), TT_EXE_OWN_SSL);
	assert_string_equal(tt_exe_kind_name(TT_EXE_OWN_SSL), "own OpenSSL");
	assert_int_equal(kind(imp), TT_EXE_DYNAMIC);
}

/* Built programs and npm installs: each is skipped when absent. */
static void test_real_programs(void **state)
{
	char p[PATH_MAX];
	int seen = 0;

	(void)state;
	if (first_match("build/go/client-stripped", p, sizeof(p))) {
		assert_int_equal(kind(p), TT_EXE_GO);
		seen++;
	} else {
		print_message("note: build/go/client-stripped not built (test_probe_go.sh)\n");
	}
	if (first_match("build/npm-apps/bun@*/node_modules/bun/bin/bun.exe", p, sizeof(p))) {
		assert_int_equal(kind(p), TT_EXE_BUN);
		assert_string_equal(tt_exe_kind_name(TT_EXE_BUN), "Bun");
		seen++;
	}
	if (first_match("build/npm-apps/claude-code@*/node_modules/@anthropic-ai/"
			"claude-code/bin/claude.exe", p, sizeof(p))) {
		assert_int_equal(kind(p), TT_EXE_BUN);
		seen++;
	}
	if (first_match("build/npm-apps/codex@*/node_modules/@openai/codex-linux-x64/"
			"vendor/*/bin/codex", p, sizeof(p))) {
		assert_int_equal(kind(p), TT_EXE_STATIC);
		seen++;
	}
	if (first_match("/usr/lib/go-*/bin/go", p, sizeof(p))) {
		assert_int_equal(kind(p), TT_EXE_GO);
		seen++;
	}
	if (!seen) {
		print_message("skip: no Go, Bun or Codex program here (scripts/npm-apps.sh install)\n");
		skip();
	}
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[PATH_MAX];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ordinary_and_missing),
		cmocka_unit_test(test_static),
		cmocka_unit_test(test_scripts),
		cmocka_unit_test(test_own_openssl),
		cmocka_unit_test(test_real_programs),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
