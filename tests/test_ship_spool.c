/*
 * test_ship_spool.c - a spool folder that other users can write to.
 *
 * Another user plants things in a shared (1777) spool: a file of forged
 * records, a symlink to a file only we may read, a FIFO, a hard link, a
 * file anyone may write.  The spool delivers only the files this process
 * wrote (ours, regular, one link, not writable by others), leaves the rest
 * where they are (not sent, not deleted, not renamed), never blocks, and
 * counts only its own files against its cap.  A folder others can write
 * that is not sticky is not used at all.  Ownership cases need root (to
 * make a file of another user); they are skipped otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "ship/spool.h"
#include "tokentap/error.h"

#define OTHER_UID 65534 /* nobody */

static char tmpdir[256], spool[300];

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/tt-spool-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	snprintf(spool, sizeof(spool), "%s/spool", tmpdir);
	assert_int_equal(mkdir(spool, 0700), 0);
	/* mkdir's mode passes through the umask; chmod does not */
	assert_int_equal(chmod(spool, 01777), 0);
	alarm(20); /* a spool that blocks fails the test instead of hanging it */
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];
	(void)state;
	alarm(0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void put(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
}

static void in_spool(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%s/%s", spool, name);
}

static int exists(const char *name)
{
	char p[600];
	struct stat st;
	in_spool(p, sizeof(p), name);
	return lstat(p, &st) == 0;
}

/* What the collector got: every body sent, concatenated. */
struct sink {
	char text[8192];
	size_t len;
	int calls;
};

static int collect(const char *body, size_t len, void *user)
{
	struct sink *k = user;
	assert_true(k->len + len < sizeof(k->text));
	memcpy(k->text + k->len, body, len);
	k->len += len;
	k->text[k->len] = '\0';
	k->calls++;
	return 0;
}

static const char ours[] = "{\"id\":\"0123456789abcdef0123456789abcdef\"}\n";

/* Planted by anyone (no root needed): a FIFO, a symlink to a file only
 * we may read, a hard link to our file elsewhere, a file anyone may
 * write, a folder.  None is read, none is removed. */
static void test_drain_leaves_planted_things(void **state)
{
	char p[600], secret[300], mine[300];
	struct sink k = { .len = 0 };
	int left = -1;
	(void)state;

	assert_int_equal(tt_spool_write(spool, ours, sizeof(ours) - 1), 0);
	in_spool(p, sizeof(p), "2-1-1.jsonl");
	assert_int_equal(mkfifo(p, 0666), 0);
	snprintf(secret, sizeof(secret), "%s/secret", tmpdir);
	put(secret, "{\"id\":\"secret-secret-secret-secret\"}\n", 0600);
	in_spool(p, sizeof(p), "3-1-1.jsonl");
	assert_int_equal(symlink(secret, p), 0);
	snprintf(mine, sizeof(mine), "%s/mine", tmpdir);
	put(mine, "{\"id\":\"hardlinked-hardlinked-hardlink\"}\n", 0600);
	in_spool(p, sizeof(p), "4-1-1.jsonl");
	assert_int_equal(link(mine, p), 0);
	in_spool(p, sizeof(p), "5-1-1.jsonl");
	put(p, "{\"id\":\"writable-writable-writable-wr\"}\n", 0666);
	in_spool(p, sizeof(p), "6-1-1.jsonl");
	assert_int_equal(mkdir(p, 0700), 0);

	int r = tt_spool_drain(spool, collect, &k, 100, &left);
	assert_int_equal(r, 1);
	assert_int_equal(k.calls, 1);
	assert_string_equal(k.text, ours);
	assert_int_equal(left, 0);
	assert_true(exists("2-1-1.jsonl") && exists("3-1-1.jsonl"));
	assert_true(exists("4-1-1.jsonl") && exists("5-1-1.jsonl"));
	assert_true(exists("6-1-1.jsonl"));
	assert_null(strstr(k.text, "secret"));

	/* Our own bytes only count against the cap. */
	assert_int_equal(tt_spool_bytes(spool), 0);
}

/* Spool files are 0600 whatever the umask. */
static void test_write_mode(void **state)
{
	struct sink k = { .len = 0 };
	char cmd[700];
	(void)state;
	mode_t old = umask(0);
	assert_int_equal(tt_spool_write(spool, ours, sizeof(ours) - 1), 0);
	umask(old);
	assert_int_equal(tt_spool_bytes(spool), sizeof(ours) - 1);
	/* the only spool file, and its mode */
	snprintf(cmd, sizeof(cmd), "ls '%s' | grep -c '\\.jsonl$' | grep -qx 1", spool);
	assert_int_equal(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "stat -c %%a '%s'/*.jsonl | grep -qx 600", spool);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(tt_spool_drain(spool, collect, &k, 10, NULL), 1);
}

/* A folder others may write to and that is not sticky: anyone could
 * swap our files.  It is not used: nothing written, nothing read. */
static void test_not_sticky_refused(void **state)
{
	char out[600], p[600];
	struct sink k = { .len = 0 };
	(void)state;

	assert_int_equal(chmod(spool, 0777), 0);
	assert_true(tt_spool_resolve(spool, out, sizeof(out)) < 0);
	assert_true(tt_spool_write(spool, ours, sizeof(ours) - 1) < 0);
	in_spool(p, sizeof(p), "1-1-1.jsonl");
	put(p, ours, 0600);
	assert_true(tt_spool_drain(spool, collect, &k, 10, NULL) < 0);
	assert_int_equal(k.calls, 0);
	assert_true(exists("1-1-1.jsonl"));

	/* group-writable is shared too */
	assert_int_equal(chmod(spool, 0770), 0);
	assert_true(tt_spool_resolve(spool, out, sizeof(out)) < 0);
	/* sticky makes it usable; so does a private folder */
	assert_int_equal(chmod(spool, 01770), 0);
	assert_int_equal(tt_spool_resolve(spool, out, sizeof(out)), 0);
	assert_int_equal(chmod(spool, 0700), 0);
	assert_int_equal(tt_spool_resolve(spool, out, sizeof(out)), 0);
	assert_int_equal(tt_spool_drain(spool, collect, &k, 10, NULL), 1);
}

/* Another user's forged records and files: never read with our rights. */
static void test_other_users_files(void **state)
{
	char p[600];
	struct sink k = { .len = 0 };
	(void)state;
	if (geteuid() != 0)
		skip();

	in_spool(p, sizeof(p), "1-1-1.jsonl");
	put(p, "{\"id\":\"forged-forged-forged-forged-f\",\"tenant\":\"acme\"}\n", 0600);
	assert_int_equal(chown(p, OTHER_UID, OTHER_UID), 0);
	in_spool(p, sizeof(p), "9999999-1-1.jsonl");
	put(p, "{\"id\":\"forged-forged-forged-forged-g\",\"tenant\":\"acme\"}\n", 0644);
	assert_int_equal(chown(p, OTHER_UID, 0), 0);
	/* big: would fill our cap if counted */
	in_spool(p, sizeof(p), "2-1-1.jsonl");
	put(p, "x", 0600);
	assert_int_equal(truncate(p, (off_t)TT_SPOOL_MAX_BYTES + 1), 0);
	assert_int_equal(chown(p, OTHER_UID, OTHER_UID), 0);

	assert_int_equal(tt_spool_bytes(spool), 0);
	assert_int_equal(tt_spool_write(spool, ours, sizeof(ours) - 1), 0);
	assert_int_equal(tt_spool_drain(spool, collect, &k, 10, NULL), 1);
	assert_string_equal(k.text, ours);
	assert_true(exists("1-1-1.jsonl") && exists("9999999-1-1.jsonl"));
	assert_true(exists("2-1-1.jsonl"));
	assert_false(exists(".bad-1-1-1.jsonl"));
}

/* A folder owned by another user that we may write (sticky, shared):
 * usable, our files only. */
static void test_spool_owned_by_other(void **state)
{
	char out[600];
	struct sink k = { .len = 0 };
	(void)state;
	if (geteuid() != 0)
		skip();
	assert_int_equal(chown(spool, OTHER_UID, OTHER_UID), 0);
	assert_int_equal(tt_spool_resolve(spool, out, sizeof(out)), 0);
	assert_int_equal(tt_spool_write(spool, ours, sizeof(ours) - 1), 0);
	assert_int_equal(tt_spool_drain(spool, collect, &k, 10, NULL), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_drain_leaves_planted_things, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_sticky_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_users_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spool_owned_by_other, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
