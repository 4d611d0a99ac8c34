/*
 * test_probe_elfsym.c - symbol to file offset, checked against where the
 * dynamic linker really mapped the functions of the libssl this test uses,
 * and malformed images (cut, flipped bytes) that must give an error, never
 * a read out of bounds (run under ASan).
 */
#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/ssl.h>

#include "elfsym.h"
#include "tokentap/error.h"

static const char *const names[] = { "SSL_write", "SSL_read", "SSL_write_ex",
				     "SSL_read_ex", "SSL_free" };
#define NNAMES (sizeof(names) / sizeof(names[0]))

/* The file offset of a mapped address, from /proc/self/maps. */
static int maps_offset(const void *addr, char *path, size_t cap, uint64_t *off)
{
	char line[4096];
	FILE *f = fopen("/proc/self/maps", "r");
	int found = -1;

	while (f && fgets(line, sizeof(line), f)) {
		unsigned long long lo, hi, pgoff;
		char perms[8];
		int pos = 0;

		if (sscanf(line, "%llx-%llx %7s %llx %*s %*s %n", &lo, &hi, perms,
			   &pgoff, &pos) < 4)
			continue;
		if ((uintptr_t)addr < lo || (uintptr_t)addr >= hi)
			continue;
		*off = (uintptr_t)addr - lo + pgoff;
		snprintf(path, cap, "%s", line + pos);
		path[strcspn(path, "\n")] = '\0';
		found = 0;
		break;
	}
	if (f)
		fclose(f);
	return found;
}

static void test_offsets_match_the_loader(void **state)
{
	void *fns[NNAMES] = { (void *)SSL_write, (void *)SSL_read,
			      (void *)SSL_write_ex, (void *)SSL_read_ex,
			      (void *)SSL_free };
	char path[4096];
	uint64_t want, got[NNAMES];
	size_t i;
	int r;

	(void)state;
	assert_int_equal(maps_offset(fns[0], path, sizeof(path), &want), 0);
	r = tt_elfsym_lookup(path, names, NNAMES, got);
	assert_int_equal(r, (int)NNAMES);
	for (i = 0; i < NNAMES; i++) {
		char p2[4096];

		assert_int_equal(maps_offset(fns[i], p2, sizeof(p2), &want), 0);
		assert_string_equal(p2, path);
		assert_int_equal(got[i], want);
	}
}

static void test_missing_and_undefined(void **state)
{
	const char *const n[] = { "no_such_function_here", "SSL_write" };
	char path[4096];
	uint64_t off[2], want;

	(void)state;
	assert_int_equal(maps_offset((void *)SSL_write, path, sizeof(path), &want), 0);
	assert_int_equal(tt_elfsym_lookup(path, n, 2, off), 1);
	assert_int_equal(off[0], 0);
	assert_int_equal(off[1], want);
	/* this test only imports SSL_write (undefined here): not found */
	assert_int_equal(tt_elfsym_lookup("/proc/self/exe", n + 1, 1, off), 0);
	assert_int_equal(off[0], 0);
	assert_int_equal(tt_elfsym_lookup("/nonexistent", n, 1, off), TT_EIO);
	assert_int_equal(tt_elfsym_lookup("/proc/self/maps", n, 1, off), TT_EIO);
}

static void *load_file(const char *path, size_t *size)
{
	struct stat st;
	void *buf;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size);
	assert_non_null(buf);
	assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
	close(fd);
	*size = (size_t)st.st_size;
	return buf;
}

/* Every cut of the image, each in its own exact-size heap block. */
static void test_cut_and_flipped_images(void **state)
{
	char path[4096];
	uint64_t want, off[NNAMES];
	unsigned seed = 12345;
	size_t size, cut, i;
	unsigned char *img;
	int k;

	(void)state;
	assert_int_equal(maps_offset((void *)SSL_write, path, sizeof(path), &want), 0);
	img = load_file(path, &size);
	assert_int_equal(tt_elfsym_lookup_mem(img, size, names, NNAMES, off),
			 (int)NNAMES);
	for (cut = 0; cut < size; cut += 1 + cut / 3 + (rand_r(&seed) % 977)) {
		unsigned char *c = malloc(cut ? cut : 1);

		memcpy(c, img, cut);
		(void)tt_elfsym_lookup_mem(c, cut, names, NNAMES, off);
		free(c);
	}
	for (k = 0; k < 300; k++) {
		unsigned char *c = malloc(size);

		memcpy(c, img, size);
		/* flip bytes in the headers, where they steer the reader */
		for (i = 0; i < 8; i++)
			c[rand_r(&seed) % 4096] ^= (unsigned char)(1 + rand_r(&seed) % 255);
		(void)tt_elfsym_lookup_mem(c, size, names, NNAMES, off);
		free(c);
	}
	memcpy(img, "\x7f" "ELG", 4);
	assert_int_equal(tt_elfsym_lookup_mem(img, size, names, NNAMES, off),
			 TT_ENOTSUP);
	free(img);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_offsets_match_the_loader),
		cmocka_unit_test(test_missing_and_undefined),
		cmocka_unit_test(test_cut_and_flipped_images),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
