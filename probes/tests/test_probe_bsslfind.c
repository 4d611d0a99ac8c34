/*
 * test_probe_bsslfind.c - tt_bsslfind: BoringSSL's SSL_write, SSL_read and
 * destructor in stripped programs, by two anchors that must agree.
 *
 *   - Files without BoringSSL (/bin/true, the libssl this test links, this
 *     test, a text file) answer 0; a missing file or a folder TT_EIO.
 *   - probes/tests/bssl/ssl_lib.c, a small program shaped like Bun's
 *     BoringSSL and its callers, compiled here as ssl/ssl_lib.cc by the C
 *     compilers found (cc, clang; -O1 to -Os, PIE and not): the offsets
 *     must be those of its symbols SSL_write, SSL_read and ssl_st_destroy
 *     (by elfsym.c), and the same from the copy built stripped.  Another
 *     compiler's code, with the answer known; skipped, saying so, without
 *     a compiler.
 *   - Real programs, when present: Claude Code's native build and bun, as
 *     scripts/npm-apps.sh installs them (build/npm-apps/...), or
 *     the paths in TT_BSSL_BINARIES (colon-separated).  Each answers 1, and
 *     the offsets are checked here without tt_bsslfind's code: an
 *     ERR_put_error site naming ssl_lib.cc with SSL_R_BAD_LENGTH (write)
 *     or ERR_R_SHOULD_NOT_HAVE_BEEN_CALLED (read) right after the entry,
 *     and direct calls in .text that land exactly on it.  The file and the
 *     in-memory paths answer the same.  Skipped, saying so, when none is
 *     found.
 *   - A copy of each (and of two fixture builds) with one anchor
 *     destroyed: the name's address in SSL_write's (then SSL_read's) error
 *     site zeroed; SSL_write's call through ssl->method, or every call of
 *     SSL_write, turned into NOPs.  The answer is TT_ENOTSUP with why
 *     naming the function and the anchor, never another offset; put back,
 *     the copy answers as the original.
 *   - Cut and flipped images in exact-size heap blocks (ASan catches any
 *     read past them): an error or 0, or 1 with the original offsets (the
 *     destructor may then be 0: its anchors are optional).  The smallest
 *     real program at the cuts that matter, 24 flips; the fixture's -O2
 *     builds at every length, 1000 flips.
 *   - Small synthetic ELF files made here, with planted error sites, calls
 *     and random code, cut at every length and flipped: never a crash.
 */
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/ssl.h>

#include "elfsym.h"
#include "tlsfind.h"
#include "tokentap/error.h"

/* bsslfind.c's in-memory entry point (not in tlsfind.h: only tests use it). */
int tt_bsslfind_mem(const void *image, size_t size, tt_ssl_syms *out, char *why,
		    size_t cap);

#define MAX_BINS 8

/* Where scripts/npm-apps.sh installs them (make test does, first). */
static const char *const default_bins[] = {
	"build/npm-apps/claude-code@*/node_modules/@anthropic-ai/claude-code/bin/claude.exe",
	"build/npm-apps/bun@*/node_modules/bun/bin/bun.exe",
};

/* The real programs to try: TT_BSSL_BINARIES, then the e2e installs. */
static size_t binaries(char bins[MAX_BINS][PATH_MAX])
{
	const char *env = getenv("TT_BSSL_BINARIES");
	size_t n = 0, i;

	while (env && *env && n < MAX_BINS) {
		size_t len = strcspn(env, ":");

		if (len && len < PATH_MAX) {
			memcpy(bins[n], env, len);
			bins[n][len] = '\0';
			if (access(bins[n], R_OK) == 0)
				n++;
			else
				print_message("TT_BSSL_BINARIES: %s not readable\n", bins[n]);
		}
		env += len + (env[len] == ':');
	}
	for (i = 0; i < sizeof(default_bins) / sizeof(default_bins[0]); i++) {
		glob_t g;

		if (glob(default_bins[i], 0, NULL, &g) != 0)
			continue;
		for (size_t j = 0; j < g.gl_pathc && n < MAX_BINS; j++)
			if (access(g.gl_pathv[j], R_OK) == 0)
				snprintf(bins[n++], PATH_MAX, "%s", g.gl_pathv[j]);
		globfree(&g);
	}
	if (n == 0)
		print_message("skip: no Bun-built program (scripts/npm-apps.sh install "
			      "claude-code bun puts them under build/npm-apps, or set "
			      "TT_BSSL_BINARIES)\n");
	return n;
}

/*
 * "ssl/ssl_lib.cc", made at run time: written whole in the source, the
 * string with its NUL would sit in this test's read-only data, and
 * tt_bsslfind would rightly see a BoringSSL's name in /proc/self/exe.
 */
static const char *lib_name(void)
{
	static char name[16];

	if (!name[0]) {
		memcpy(name, "ssl/ssl", 7);
		memcpy(name + 7, "_lib.cc", 7);
		name[14] = '\0';
	}
	return name;
}

/* ------------------------------------------------------------------ */
/* What this test reads of a program itself                            */

struct elf {
	const unsigned char *img;
	size_t size;
	uint64_t text_off, text_va, text_size;
	uint64_t name_va;     /* the string "...ssl/ssl_lib.cc" */
};

static void elf_read(const unsigned char *img, size_t size, struct elf *e)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)img;
	const Elf64_Shdr *sh = (const Elf64_Shdr *)(img + eh->e_shoff);
	const char *strs = (const char *)img + sh[eh->e_shstrndx].sh_offset;
	const char *name = lib_name();
	int i;

	memset(e, 0, sizeof(*e));
	e->img = img;
	e->size = size;
	for (i = 0; i < eh->e_shnum; i++) {
		const unsigned char *s = img + sh[i].sh_offset, *p;

		if (strcmp(strs + sh[i].sh_name, ".text") == 0) {
			e->text_off = sh[i].sh_offset;
			e->text_va = sh[i].sh_addr;
			e->text_size = sh[i].sh_size;
		}
		if (sh[i].sh_type != SHT_PROGBITS || (sh[i].sh_flags & SHF_EXECINSTR) ||
		    !(sh[i].sh_flags & SHF_ALLOC) || e->name_va)
			continue;
		p = memmem(s, sh[i].sh_size, name, strlen(name) + 1);
		while (p && p > s && p[-1] != '\0')
			p--;
		if (p)
			e->name_va = sh[i].sh_addr + (uint64_t)(p - s);
	}
	assert_true(e->text_size > 0);
	assert_true(e->name_va != 0);
}

static uint64_t va_of(const struct elf *e, uint64_t off)
{
	return off - e->text_off + e->text_va;
}

static uint32_t rd32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

/*
 * The file offset of the four bytes that give ssl_lib.cc's address to an
 * error site in [off, off + span) whose reason (mov edx, imm32) follows
 * within 32 bytes; 0 if none.  Absolute or RIP-relative.
 */
static uint64_t error_site(const struct elf *e, uint64_t off, size_t span, uint32_t reason)
{
	unsigned char mov[5] = { 0xba };
	uint64_t p;

	memcpy(mov + 1, &reason, 4);
	for (p = off; p + 40 < off + span && p + 40 < e->size; p++) {
		uint32_t v = rd32(e->img + p);

		if ((v == e->name_va || va_of(e, p) + 4 + (uint64_t)(int64_t)(int32_t)v ==
		     e->name_va) && memmem(e->img + p + 4, 32, mov, 5))
			return p;
	}
	return 0;
}

/* How many E8 rel32 in .text land exactly on va. */
static size_t calls_to(const struct elf *e, uint64_t va)
{
	uint64_t i;
	size_t n = 0;

	for (i = 0; i + 5 <= e->text_size; i++) {
		const unsigned char *p = e->img + e->text_off + i;

		if (p[0] == 0xe8 &&
		    e->text_va + i + 5 + (uint64_t)(int64_t)(int32_t)rd32(p + 1) == va)
			n++;
	}
	return n;
}

static const unsigned char *map_file(const char *path, size_t *size)
{
	struct stat st;
	void *m;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	assert_true(m != MAP_FAILED);
	*size = (size_t)st.st_size;
	return m;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ------------------------------------------------------------------ */

static void test_not_boringssl(void **state)
{
	char why[256] = "x", tmp[] = "/tmp/tt_bssl_txt_XXXXXX";
	tt_ssl_syms s;
	Dl_info info;
	int fd;

	(void)state;
	assert_int_equal(tt_bsslfind("/bin/true", &s, why, sizeof(why)), 0);
	assert_string_equal(why, "");
	assert_int_equal(s.write, 0);
	assert_true(dladdr((void *)SSL_write, &info) && info.dli_fname);
	assert_int_equal(tt_bsslfind(info.dli_fname, &s, why, sizeof(why)), 0);
	assert_int_equal(tt_bsslfind("/proc/self/exe", &s, why, sizeof(why)), 0);
	fd = mkstemp(tmp);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, lib_name(), 15), 15);
	close(fd);
	assert_int_equal(tt_bsslfind(tmp, &s, why, sizeof(why)), 0);
	unlink(tmp);
	assert_int_equal(tt_bsslfind(tmp, &s, why, sizeof(why)), TT_EIO);
	assert_int_equal(tt_bsslfind("/tmp", &s, why, sizeof(why)), TT_EIO);
	assert_int_equal(tt_bsslfind("/bin/true", &s, NULL, 0), 0);
	assert_int_equal(tt_bsslfind_mem("", 0, &s, why, sizeof(why)), 0);
}

/* One real program: 1, and offsets that this test confirms on its own. */
static void check_program(const char *path, tt_ssl_syms *got)
{
	char why[512];
	struct elf e;
	tt_ssl_syms m;
	size_t size, nw, nr;
	const unsigned char *img = map_file(path, &size);
	double t0 = now_ms(), t1;
	int r;

	r = tt_bsslfind(path, got, why, sizeof(why));
	t1 = now_ms();
	if (r != 1)
		print_message("%s: %d (%s)\n", path, r, why);
	assert_int_equal(r, 1);
	assert_string_equal(why, "");
	elf_read(img, size, &e);
	assert_true(got->write >= e.text_off && got->write < e.text_off + e.text_size);
	assert_true(got->read >= e.text_off && got->read < e.text_off + e.text_size);
	assert_true(got->write != got->read);
	assert_int_equal(got->write_ex, 0);
	assert_int_equal(got->read_ex, 0);
	/* anchor 1, seen from here: the error sites right after each entry */
	assert_true(error_site(&e, got->write, 0x400, 111) != 0);
	assert_true(error_site(&e, got->read, 0x100, 66) != 0);
	/* anchor 2, seen from here: the program calls exactly these addresses */
	nw = calls_to(&e, va_of(&e, got->write));
	nr = calls_to(&e, va_of(&e, got->read));
	assert_true(nw >= 1 && nr >= 1);
	if (got->free) {
		assert_true(got->free >= e.text_off && got->free < e.text_off + e.text_size);
		assert_true(got->free != got->write && got->free != got->read);
	}
	/* the in-memory path: the same answer */
	assert_int_equal(tt_bsslfind_mem(img, size, &m, why, sizeof(why)), 1);
	assert_memory_equal(&m, got, sizeof(m));
	print_message("%s: write 0x%llx (%zu calls) read 0x%llx (%zu calls) "
		      "destructor 0x%llx, %.0f ms\n", path, (unsigned long long)got->write,
		      nw, (unsigned long long)got->read, nr, (unsigned long long)got->free,
		      t1 - t0);
	munmap((void *)img, size);
}

static void test_real_programs(void **state)
{
	char bins[MAX_BINS][PATH_MAX];
	size_t n = binaries(bins), i;
	tt_ssl_syms s;

	(void)state;
	if (n == 0)
		skip();
	for (i = 0; i < n; i++)
		check_program(bins[i], &s);
}

/* ------------------------------------------------------------------ */
/* One anchor destroyed in a copy                                      */

static void copy_file(const char *from, const char *to)
{
	int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	struct stat st;
	off_t done = 0;

	assert_true(in >= 0 && out >= 0);
	assert_int_equal(fstat(in, &st), 0);
	while (done < st.st_size) {
		ssize_t k = copy_file_range(in, NULL, out, NULL, (size_t)(st.st_size - done), 0);

		assert_true(k > 0);
		done += k;
	}
	close(in);
	close(out);
}

static void patch(const char *path, uint64_t off, const void *bytes, size_t n)
{
	int fd = open(path, O_WRONLY);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, bytes, n, (off_t)off), (ssize_t)n);
	close(fd);
}

/* The answer for the patched copy: TT_ENOTSUP naming the anchor. */
static void expect_mismatch(const char *path, const char *fn, const char *anchor)
{
	char why[512];
	tt_ssl_syms s;
	int r = tt_bsslfind(path, &s, why, sizeof(why));

	print_message("  %s, %s destroyed: %d (%s)\n", fn, anchor, r, why);
	assert_int_equal(r, TT_ENOTSUP);
	assert_non_null(strstr(why, fn));
	assert_non_null(strstr(why, anchor));
	assert_int_equal(s.write, 0);
	assert_int_equal(s.read, 0);
}

/*
 * The first call qword [reg + disp8] (ff /2, mod 01, a slot of a table of
 * pointers: disp8 a multiple of 8) in [off, off + span): its offset, 0.
 */
static uint64_t method_call(const struct elf *e, uint64_t off, size_t span)
{
	uint64_t p;

	for (p = off; p + 3 < off + span; p++)
		if (e->img[p] == 0xff && (e->img[p + 1] & 0xf8) == 0x50 &&
		    e->img[p + 1] != 0x54 && e->img[p + 2] > 0 && e->img[p + 2] < 0x80 &&
		    e->img[p + 2] % 8 == 0)
			return p;
	return 0;
}

/* Every E8 call of va in the copy turned into NOPs (undo: put back). */
static size_t nop_calls(const struct elf *e, const char *copy, uint64_t va, int undo)
{
	static const unsigned char nop5[5] = { 0x90, 0x90, 0x90, 0x90, 0x90 };
	uint64_t i;
	size_t n = 0;

	for (i = 0; i + 5 <= e->text_size; i++) {
		const unsigned char *p = e->img + e->text_off + i;

		if (p[0] == 0xe8 &&
		    e->text_va + i + 5 + (uint64_t)(int64_t)(int32_t)rd32(p + 1) == va) {
			patch(copy, e->text_off + i, undo ? p : nop5, 5);
			n++;
		}
	}
	return n;
}

static void destroy_anchors(const char *path)
{
	char tmp[] = "/tmp/tt_bssl_copy_XXXXXX", why[512];
	static const unsigned char zero[4], nops[3] = { 0x90, 0x90, 0x90 };
	unsigned char keep[4];
	tt_ssl_syms want, got;
	struct elf e;
	size_t size;
	const unsigned char *img;
	uint64_t at;
	int fd;

	assert_int_equal(tt_bsslfind(path, &want, why, sizeof(why)), 1);
	img = map_file(path, &size);
	elf_read(img, size, &e);
	fd = mkstemp(tmp);
	assert_true(fd >= 0);
	close(fd);
	copy_file(path, tmp);
	print_message("%s:\n", path);

	/* anchor 1 of SSL_write: its BAD_LENGTH site no longer names ssl_lib.cc */
	at = error_site(&e, want.write, 0x400, 111);
	assert_true(at != 0);
	memcpy(keep, img + at, 4);
	patch(tmp, at, zero, 4);
	expect_mismatch(tmp, "SSL_write", "error-site anchor");
	patch(tmp, at, keep, 4);

	/* anchor 1 of SSL_read: its SHOULD_NOT_HAVE_BEEN_CALLED site */
	at = error_site(&e, want.read, 0x100, 66);
	assert_true(at != 0);
	memcpy(keep, img + at, 4);
	patch(tmp, at, zero, 4);
	expect_mismatch(tmp, "SSL_read", "error-site anchor");
	patch(tmp, at, keep, 4);

	/* anchor 2 of SSL_write: no call through ssl->method */
	at = method_call(&e, want.write, 0x400);
	if (at) {
		memcpy(keep, img + at, 3);
		patch(tmp, at, nops, 3);
		expect_mismatch(tmp, "SSL_write", "data-flow anchor");
		patch(tmp, at, keep, 3);
	} else {
		print_message("  no call [reg+disp8] in SSL_write: that case skipped\n");
	}

	/* anchor 2 of SSL_write: nothing calls it any more */
	assert_true(nop_calls(&e, tmp, va_of(&e, want.write), 0) > 0);
	expect_mismatch(tmp, "SSL_write", "callers anchor");
	nop_calls(&e, tmp, va_of(&e, want.write), 1);

	/* put back: the original answer */
	assert_int_equal(tt_bsslfind(tmp, &got, why, sizeof(why)), 1);
	assert_memory_equal(&got, &want, sizeof(got));
	unlink(tmp);
	munmap((void *)img, size);
}

static void test_one_anchor_destroyed(void **state)
{
	char bins[MAX_BINS][PATH_MAX];
	size_t n = binaries(bins), i;

	(void)state;
	if (n == 0)
		skip();
	for (i = 0; i < n; i++)
		destroy_anchors(bins[i]);
}

/* ------------------------------------------------------------------ */
/* The fixture, compiled here                                          */

static void cut_and_flip(const char *path, int every_cut, size_t flips);

#define FIXTURE "probes/tests/bssl/ssl_lib.c"

struct build {
	const char *cc, *flags;
};

static const struct build builds[] = {
	{ "cc", "-O2 -fno-pie -no-pie" }, { "cc", "-O2 -fpie -pie" },
	{ "cc", "-O1 -fpie -pie" }, { "cc", "-O3 -fno-pie -no-pie" },
	{ "cc", "-Os -fpie -pie" },
	{ "clang", "-O2 -fno-pie -no-pie" }, { "clang", "-O2 -fpie -pie" },
	{ "clang", "-O1 -fpie -pie" }, { "clang", "-Os -fno-pie -no-pie" },
};
#define NBUILDS (sizeof(builds) / sizeof(builds[0]))

/* Compile builds[i] into dir/fx<i> (and dir/fx<i>-s, stripped); 0 if done. */
static int build_fixture(const char *dir, size_t i)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd),
		 "cd %s && %s -x c %s -w -o fx%zu ssl/ssl_lib.cc >>build.log 2>&1 && "
		 "%s -x c %s -w -s -o fx%zu-s ssl/ssl_lib.cc >>build.log 2>&1",
		 dir, builds[i].cc, builds[i].flags, i, builds[i].cc, builds[i].flags, i);
	return system(cmd) == 0 ? 0 : -1;
}

/* The fixture's own symbols against tt_bsslfind on its stripped twin. */
static void check_fixture(const char *dir, size_t i, tt_ssl_syms *got)
{
	static const char *const names[] = { "SSL_write", "SSL_read", "ssl_st_destroy" };
	char path[PATH_MAX], why[512];
	uint64_t want[3];
	tt_ssl_syms plain;
	int r;

	snprintf(path, sizeof(path), "%s/fx%zu", dir, i);
	assert_int_equal(tt_elfsym_lookup(path, names, 3, want), 3);
	r = tt_bsslfind(path, &plain, why, sizeof(why));
	snprintf(path, sizeof(path), "%s/fx%zu-s", dir, i);
	assert_int_equal(tt_bsslfind(path, got, why, sizeof(why)), r);
	print_message("%s %s: %d write 0x%llx read 0x%llx destructor 0x%llx%s%s\n",
		      builds[i].cc, builds[i].flags, r, (unsigned long long)got->write,
		      (unsigned long long)got->read, (unsigned long long)got->free,
		      why[0] ? ": " : "", why);
	assert_int_equal(r, 1);
	assert_memory_equal(&plain, got, sizeof(plain));
	assert_int_equal(got->write, want[0]);
	assert_int_equal(got->read, want[1]);
	assert_int_equal(got->free, want[2]);
}

static void test_fixture_builds(void **state)
{
	char dir[] = "/tmp/tt_bssl_fx_XXXXXX", cmd[PATH_MAX + 64];
	tt_ssl_syms got;
	size_t i, built = 0;

	(void)state;
	if (access(FIXTURE, R_OK) != 0) {
		print_message("skip: %s not found (run from the checkout)\n", FIXTURE);
		skip();
	}
	assert_non_null(mkdtemp(dir));
	snprintf(cmd, sizeof(cmd), "mkdir -p %s/ssl && cp %s %s/ssl/ssl_lib.cc", dir,
		 FIXTURE, dir);
	assert_int_equal(system(cmd), 0);
	for (i = 0; i < NBUILDS; i++) {
		if (build_fixture(dir, i) != 0) {
			print_message("%s %s: no build here (see %s/build.log), skipped\n",
				      builds[i].cc, builds[i].flags, dir);
			continue;
		}
		built++;
		check_fixture(dir, i, &got);
		/* the two -O2 builds of cc: an anchor destroyed; cut at every
		 * length and flipped */
		if (i < 2) {
			char path[PATH_MAX];

			snprintf(path, sizeof(path), "%s/fx%zu-s", dir, i);
			destroy_anchors(path);
			cut_and_flip(path, 1, 1000);
		}
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	if (built == 0) {
		print_message("skip: no C compiler built the fixture\n");
		skip();
	}
}

/* ------------------------------------------------------------------ */
/* Cut and flipped images                                              */

/*
 * Any 1 must be the original answer; only the destructor may be missing
 * (0: its anchors did not both hold).
 */
static int check_answer(const unsigned char *img, size_t size, const tt_ssl_syms *want)
{
	char why[512];
	tt_ssl_syms got;
	int r = tt_bsslfind_mem(img, size, &got, why, sizeof(why));

	assert_true(r <= 1);
	if (r == 1) {
		assert_int_equal(got.write, want->write);
		assert_int_equal(got.read, want->read);
		assert_true(got.free == want->free || got.free == 0);
	} else {
		assert_int_equal(got.write, 0);
		assert_int_equal(got.read, 0);
	}
	return r;
}

/*
 * A program cut (at every length when every_cut, else at the places that
 * matter) and flipped near the three functions, in the headers and
 * anywhere, in exact-size heap blocks.
 */
static void cut_and_flip(const char *path, int every_cut, size_t flips)
{
	char why[512];
	size_t size, i, k, ones = 0, zeros = 0;
	const unsigned char *img = map_file(path, &size);
	unsigned char *c;
	unsigned seed = 4242;
	tt_ssl_syms want;
	struct elf e;

	elf_read(img, size, &e);
	assert_int_equal(tt_bsslfind_mem(img, size, &want, why, sizeof(why)), 1);
	{
		const size_t cuts[] = {
			0, 1, 63, 64, 4096, e.text_off, e.text_off + e.text_size / 2,
			e.text_off + e.text_size, size / 2, size - 4096, size - 1,
		};

		for (i = 0; i < (every_cut ? size : sizeof(cuts) / sizeof(cuts[0])); i++) {
			size_t cut = every_cut ? i : cuts[i];

			c = malloc(cut ? cut : 1);
			assert_non_null(c);
			memcpy(c, img, cut);
			check_answer(c, cut, &want);
			free(c);
		}
	}
	c = malloc(size);
	assert_non_null(c);
	memcpy(c, img, size);
	for (k = 0; k < flips; k++) {
		const uint64_t around[] = { want.write, want.read, want.free, 0,
					    e.text_off + e.text_size / 2 };
		uint64_t at[16];
		int r;

		for (i = 0; i < 16; i++) {
			uint64_t base = around[(k + i) % 5], span = base ? 0x2000 : 0x1000;

			base = base > span / 2 ? base - span / 2 : 0;
			at[i] = (base + rand_r(&seed) % span) % size;
			c[at[i]] ^= (unsigned char)(1 + rand_r(&seed) % 255);
		}
		r = check_answer(c, size, &want);
		ones += r == 1;
		zeros += r == 0;
		for (i = 16; i-- > 0;)
			c[at[i]] = img[at[i]];
	}
	free(c);
	print_message("%s: %zu flipped copies: %zu answered 1 (same offsets), %zu 0, "
		      "%zu an error\n", path, flips, ones, zeros, flips - ones - zeros);
	munmap((void *)img, size);
}

static void test_cut_and_flipped_programs(void **state)
{
	char bins[MAX_BINS][PATH_MAX];
	size_t n = binaries(bins), best = 0, i;
	struct stat st, st2;

	(void)state;
	if (n == 0)
		skip();
	for (i = 1; i < n; i++)  /* the smallest: every run copies it */
		if (stat(bins[i], &st) == 0 && stat(bins[best], &st2) == 0 &&
		    st.st_size < st2.st_size)
			best = i;
	cut_and_flip(bins[best], 0, 24);
}

/* ------------------------------------------------------------------ */
/* Synthetic files                                                     */

#define S_TEXT_OFF  0x1000u
#define S_TEXT_SIZE 0x6000u
#define S_TEXT_VA   0x401000u
#define S_RO_OFF    0x100u
#define S_RO_VA     0x400100u

/*
 * An x86-64 ELF file with .rodata holding the name, and .text of random
 * bytes, int3 padding, direct calls between 16-byte aligned places, and
 * error sites (mov ecx, name; mov edi, 16; xor esi, esi; mov edx, reason;
 * call) of the reasons the finder looks for.  Its size.
 */
static size_t synth(unsigned char *img, size_t cap, unsigned *seed, int pie)
{
	static const char shstr[] = "\0.rodata\0.text\0.shstrtab";
	char ro[48] = "x\0../../vendor/boringssl/";
	static const uint32_t reasons[] = { 66, 111, 185, 215, 226, 134 };
	Elf64_Ehdr *eh = (Elf64_Ehdr *)img;
	Elf64_Shdr *sh;
	uint32_t name = S_RO_VA + 2;
	size_t str_off = S_TEXT_OFF + S_TEXT_SIZE, sh_off = str_off + 64, i;
	unsigned char *t = img + S_TEXT_OFF;

	assert_true(cap >= sh_off + 4 * sizeof(Elf64_Shdr));
	memset(img, 0, sh_off + 4 * sizeof(Elf64_Shdr));
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_type = pie ? ET_DYN : ET_EXEC;
	eh->e_machine = EM_X86_64;
	eh->e_shoff = sh_off;
	eh->e_shentsize = sizeof(Elf64_Shdr);
	eh->e_shnum = 4;
	eh->e_shstrndx = 3;
	memcpy(ro + 25, lib_name(), 15);
	memcpy(img + S_RO_OFF, ro, sizeof(ro));
	memcpy(img + str_off, shstr, sizeof(shstr));
	sh = (Elf64_Shdr *)(img + sh_off);
	sh[1] = (Elf64_Shdr){ .sh_name = 1, .sh_type = SHT_PROGBITS, .sh_flags = SHF_ALLOC,
			      .sh_addr = S_RO_VA, .sh_offset = S_RO_OFF, .sh_size = sizeof(ro) };
	sh[2] = (Elf64_Shdr){ .sh_name = 9, .sh_type = SHT_PROGBITS,
			      .sh_flags = SHF_ALLOC | SHF_EXECINSTR, .sh_addr = S_TEXT_VA,
			      .sh_offset = S_TEXT_OFF, .sh_size = S_TEXT_SIZE };
	sh[3] = (Elf64_Shdr){ .sh_name = 15, .sh_type = SHT_STRTAB, .sh_offset = str_off,
			      .sh_size = sizeof(shstr) };
	for (i = 0; i < S_TEXT_SIZE; i++)
		t[i] = (unsigned char)rand_r(seed);
	for (i = 0; i < S_TEXT_SIZE; i += 0x100)   /* "functions" after int3 padding */
		memset(t + i, 0xcc, 4 + rand_r(seed) % 12);
	for (i = 0; i < 160; i++) {
		size_t at = 16 + rand_r(seed) % (S_TEXT_SIZE - 64);
		uint32_t rel, r = reasons[rand_r(seed) % 6];

		if (i % 2) {                   /* a call to a "function" */
			uint32_t to = S_TEXT_VA + (rand_r(seed) % (S_TEXT_SIZE / 0x100)) * 0x100 + 16;

			rel = to - (uint32_t)(S_TEXT_VA + at + 5);
			t[at] = 0xe8;
			memcpy(t + at + 1, &rel, 4);
			continue;
		}
		if (pie) {                     /* lea rcx, [rip + disp32] */
			rel = name - (uint32_t)(S_TEXT_VA + at + 7);
			memcpy(t + at, "\x48\x8d\x0d", 3);
			memcpy(t + at + 3, &rel, 4);
		} else {                       /* mov ecx, imm32 */
			t[at] = 0xb9;
			memcpy(t + at + 1, &name, 4);
			at -= 2;
		}
		memcpy(t + at + 7, "\xbf\x10\x00\x00\x00\x31\xf6\xba", 8);
		memcpy(t + at + 15, &r, 4);
		t[at + 19] = 0xe8;
	}
	return sh_off + 4 * sizeof(Elf64_Shdr);
}

static void test_synthetic_files(void **state)
{
	unsigned char img[0x8000], *c;
	unsigned seed = 777;
	tt_ssl_syms s;
	char why[256];
	size_t size, cut, i, errors = 0;
	int k, r;

	(void)state;
	for (k = 0; k < 200; k++) {
		size = synth(img, sizeof(img), &seed, k % 2);
		r = tt_bsslfind_mem(img, size, &s, why, sizeof(why));
		assert_true(r <= 1);
		errors += r < 0;
		if (k == 0)
			print_message("synthetic: %d (%s)\n", r, why);
		/* flips anywhere, the headers most */
		for (i = 0; i < 8; i++) {
			size_t at = i < 4 ? (size_t)rand_r(&seed) % 64 : (size_t)rand_r(&seed) % size;

			img[at] ^= (unsigned char)(1 + rand_r(&seed) % 255);
		}
		c = malloc(size);
		assert_non_null(c);
		memcpy(c, img, size);
		r = tt_bsslfind_mem(c, size, &s, why, sizeof(why));
		assert_true(r <= 1);
		free(c);
	}
	print_message("synthetic: %zu of 200 read as BoringSSL that does not match\n",
		      errors);
	size = synth(img, sizeof(img), &seed, 0);
	for (cut = 0; cut <= size; cut += 1 + (cut > S_TEXT_OFF ? 61 : 0)) {
		c = malloc(cut ? cut : 1);
		assert_non_null(c);
		memcpy(c, img, cut);
		r = tt_bsslfind_mem(c, cut, &s, why, sizeof(why));
		assert_true(r <= 1);
		free(c);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_not_boringssl),
		cmocka_unit_test(test_real_programs),
		cmocka_unit_test(test_one_anchor_destroyed),
		cmocka_unit_test(test_fixture_builds),
		cmocka_unit_test(test_cut_and_flipped_programs),
		cmocka_unit_test(test_synthetic_files),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
