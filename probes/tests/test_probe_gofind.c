/*
 * test_probe_gofind.c - tt_gofind on real Go programs built here from
 * probes/tests/go/client.go (the Go client the end-to-end tests run too)
 * with the installed Go:
 *
 *   - the .symtab path of each plain build against `go tool objdump`
 *     (Go's own disassembler, not Capstone): the entries of (*Conn).Write,
 *     Read and Close and the exact set of RET instructions, turned into
 *     file offsets through the program headers read here;
 *   - the pclntab path of the same build linked with -ldflags='-s -w'
 *     against the first, and again with the section headers wiped;
 *   - builds: the host's default (cgo, internally linked), a PIE, an
 *     externally linked PIE (the pclntab has no section of its own; needs
 *     a C compiler, else that one is skipped) and arm64 (cross-built);
 *   - files that are not Go, a Go program without crypto/tls, a Go that
 *     says it is too old, and cut and flipped copies of the programs in
 *     exact-size heap blocks: an error or 0 under ASan, never a read out
 *     of bounds, and any 1 with offsets inside the file.
 *
 * The Go build cache is kept beside this test (go-cache/ next to the
 * binary, under build/): the first run compiles the standard library for
 * the PIE and arm64 (about a minute on two cores), later runs take
 * seconds.  HOME is a temporary folder; GOPROXY=off (the standard library
 * needs no network).  Each test that needs Go skips, saying why, when
 * `go` is not installed or the build fails.
 */
#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tlsfind.h"
#include "tokentap/error.h"

/* gofind.c's in-memory entry point (not in tlsfind.h: only tests use it). */
int tt_gofind_mem(const void *image, size_t size, tt_go_syms *out,
		  char *why, size_t cap);

#define MAX_RETS 256

/* One build of client.go: NAME (plain) and NAME-s (-ldflags='-s -w'). */
struct variant {
	const char *name;
	const char *env;     /* before `go build` */
	const char *flags;   /* go build flags */
	const char *ldflags;
	int optional;        /* may not build here (no C compiler): skipped */
	int built;
	tt_go_syms want;     /* from go tool objdump on NAME */
};

static struct variant variants[] = {
	{ .name = "host", .env = "", .flags = "", .ldflags = "" },
	{ .name = "pie", .env = "", .flags = "-buildmode=pie", .ldflags = "" },
	{ .name = "extpie", .env = "CGO_ENABLED=1", .flags = "-buildmode=pie",
	  .ldflags = "-linkmode=external", .optional = 1 },
	{ .name = "arm64", .env = "GOARCH=arm64", .flags = "", .ldflags = "" },
};
#define NVARIANTS (sizeof(variants) / sizeof(variants[0]))

static struct {
	char dir[PATH_MAX];   /* temporary: HOME and the built programs */
	char cache[PATH_MAX]; /* GOCACHE */
	char src[PATH_MAX];   /* probes/tests/go */
	char env[3 * PATH_MAX];
	char skip[512];       /* why the Go tests skip; "" when they run */
	int go_minor;
	int notls;            /* notls.go built */
} T;

#define NEED_GO()                                               \
	do {                                                    \
		if (T.skip[0]) {                                \
			print_message("skip: %s\n", T.skip);    \
			skip();                                 \
		}                                               \
	} while (0)

static void pathf(char *buf, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void pathf(char *buf, size_t cap, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, cap, fmt, ap);
	va_end(ap);
	assert_true(n > 0 && (size_t)n < cap);
}

/* Run shell commands in T.dir with the Go environment: their status. */
static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int run(const char *fmt, ...)
{
	char cmd[4 * PATH_MAX], tail[3 * PATH_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tail, sizeof(tail), fmt, ap);
	va_end(ap);
	pathf(cmd, sizeof(cmd), "cd '%s' && export %s && %s", T.dir, T.env, tail);
	return system(cmd);
}

/* probes/tests/go beside the checkout: from the working folder, else
 * from this binary (build/san/tests/NAME). */
static int find_src(void)
{
	char exe[PATH_MAX];
	ssize_t n;

	if (realpath("probes/tests/go/client.go", T.src)) {
		*strrchr(T.src, '/') = '\0';
		return 0;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return -1;
	exe[n] = '\0';
	*strrchr(exe, '/') = '\0';
	strncat(exe, "/../../../probes/tests/go/client.go",
		sizeof(exe) - strlen(exe) - 1);
	if (!realpath(exe, T.src))
		return -1;
	*strrchr(T.src, '/') = '\0';
	return 0;
}

/* The cache beside this binary: kept between runs, removed by make clean. */
static void cache_dir(void)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n <= 0) {
		pathf(T.cache, sizeof(T.cache), "%s/cache", T.dir);
		return;
	}
	exe[n] = '\0';
	*strrchr(exe, '/') = '\0';
	pathf(T.cache, sizeof(T.cache), "%s/go-cache", exe);
}

/* "go1.19.8" from `go env GOVERSION`: 19. */
static int host_go_minor(void)
{
	char cmd[4 * PATH_MAX], line[128];
	FILE *f;
	int minor = -1;

	pathf(cmd, sizeof(cmd), "cd '%s' && export %s && go env GOVERSION",
	      T.dir, T.env);
	f = popen(cmd, "r");
	if (f && fgets(line, sizeof(line), f))
		(void)sscanf(line, "go1.%d", &minor);
	if (f)
		pclose(f);
	return minor;
}

static uint64_t file_off(const char *bin, uint64_t vaddr);
static void objdump_want(const char *bin, tt_go_syms *want);

static void build_variant(struct variant *v)
{
	int r;

	r = run("%s go build %s -ldflags='%s' -o %s '%s/client.go' >>build.log 2>&1",
		v->env, v->flags, v->ldflags, v->name, T.src);
	if (r == 0)
		r = run("%s go build %s -ldflags='%s -s -w' -o %s-s '%s/client.go' "
			">>build.log 2>&1", v->env, v->flags, v->ldflags, v->name, T.src);
	if (r != 0 && !v->optional) {
		pathf(T.skip, sizeof(T.skip), "go build (%s) failed: see %s/build.log",
		      v->name, T.dir);
		return;
	}
	if (r != 0) {
		print_message("note: %s not built (no C compiler?): not checked\n",
			      v->name);
		return;
	}
	v->built = 1;
}

static int setup(void **state)
{
	struct timespec a, b;
	size_t i;

	(void)state;
	if (system("command -v go >/dev/null 2>&1") != 0) {
		pathf(T.skip, sizeof(T.skip), "go is not installed (golang-go)");
		return 0;
	}
	if (find_src() < 0) {
		pathf(T.skip, sizeof(T.skip), "probes/tests/go/client.go not found");
		return 0;
	}
	pathf(T.dir, sizeof(T.dir), "%s/tt-gofind-XXXXXX",
	      getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	assert_non_null(mkdtemp(T.dir));
	cache_dir();
	pathf(T.env, sizeof(T.env),
	      "HOME='%s' GOCACHE='%s' GOPATH='%s/gopath' GOFLAGS=-mod=mod "
	      "GOPROXY=off GOTOOLCHAIN=local GOTELEMETRY=off",
	      T.dir, T.cache, T.dir);
	T.go_minor = host_go_minor();
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (i = 0; i < NVARIANTS && !T.skip[0]; i++)
		build_variant(&variants[i]);
	if (!T.skip[0])
		T.notls = run("go build -o notls '%s/notls.go' >>build.log 2>&1 && "
			      "go build -ldflags='-s -w' -o notls-s '%s/notls.go' "
			      ">>build.log 2>&1", T.src, T.src) == 0;
	clock_gettime(CLOCK_MONOTONIC, &b);
	print_message("Go 1.%d programs built in %.1f s (cache %s)\n", T.go_minor,
		      (double)(b.tv_sec - a.tv_sec) +
			      (double)(b.tv_nsec - a.tv_nsec) / 1e9, T.cache);
	for (i = 0; i < NVARIANTS && !T.skip[0]; i++) {
		char bin[PATH_MAX];

		if (!variants[i].built)
			continue;
		pathf(bin, sizeof(bin), "%s/%s", T.dir, variants[i].name);
		objdump_want(bin, &variants[i].want);
	}
	return 0;
}

/* The built programs go; after a failed build they stay, for build.log. */
static int teardown(void **state)
{
	char cmd[2 * PATH_MAX];

	(void)state;
	if (!T.dir[0] || T.skip[0])
		return 0;
	pathf(cmd, sizeof(cmd), "rm -rf '%s'", T.dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* vaddr -> file offset through the PT_LOAD headers, read here. */
static uint64_t file_off(const char *bin, uint64_t vaddr)
{
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	uint64_t off = 0;
	FILE *f = fopen(bin, "rb");
	unsigned i;

	assert_non_null(f);
	assert_int_equal(fread(&eh, sizeof(eh), 1, f), 1);
	for (i = 0; i < eh.e_phnum; i++) {
		assert_int_equal(fseek(f, (long)(eh.e_phoff + i * sizeof(ph)), SEEK_SET), 0);
		assert_int_equal(fread(&ph, sizeof(ph), 1, f), 1);
		if (ph.p_type == PT_LOAD && vaddr >= ph.p_vaddr &&
		    vaddr - ph.p_vaddr < ph.p_filesz) {
			off = vaddr - ph.p_vaddr + ph.p_offset;
			break;
		}
	}
	fclose(f);
	assert_true(off != 0);
	return off;
}

/*
 * One function as `go tool objdump -s` lists it:
 *   TEXT crypto/tls.(*Conn).Write(SB) /usr/lib/go-1.19/src/crypto/tls/conn.go
 *     conn.go:1133	0x594800	4c8d642498	LEAQ -0x68(SP), R12
 * Its entry and RETs as file offsets.
 */
static void objdump_func(const char *bin, const char *re, tt_go_func *fn)
{
	char cmd[4 * PATH_MAX], line[1024];
	int texts = 0;
	FILE *f;

	memset(fn, 0, sizeof(*fn));
	pathf(cmd, sizeof(cmd), "cd '%s' && export %s && go tool objdump -s '%s' '%s'",
	      T.dir, T.env, re, bin);
	f = popen(cmd, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long long addr;
		char op[32];

		if (strncmp(line, "TEXT ", 5) == 0) {
			texts++;
			continue;
		}
		if (sscanf(line, "%*s %llx %*s %31s", &addr, op) != 2)
			continue;
		if (!fn->entry)
			fn->entry = file_off(bin, addr);
		if (strcmp(op, "RET") == 0) {
			assert_true(fn->nrets < TT_GO_MAX_RETS);
			fn->rets[fn->nrets++] = file_off(bin, addr);
		}
	}
	assert_int_equal(pclose(f), 0);
	assert_int_equal(texts, 1);
	assert_true(fn->entry != 0);
}

static void objdump_want(const char *bin, tt_go_syms *want)
{
	tt_go_func close_fn;

	objdump_func(bin, "^crypto/tls\\.\\(\\*Conn\\)\\.Write$", &want->write);
	objdump_func(bin, "^crypto/tls\\.\\(\\*Conn\\)\\.Read$", &want->read);
	objdump_func(bin, "^crypto/tls\\.\\(\\*Conn\\)\\.Close$", &close_fn);
	want->close = close_fn.entry;
	assert_true(want->write.nrets > 0 && want->read.nrets > 0);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void same_func(const tt_go_func *got, const tt_go_func *want)
{
	uint64_t g[TT_GO_MAX_RETS], w[TT_GO_MAX_RETS];
	size_t i;

	assert_int_equal(got->entry, want->entry);
	assert_int_equal(got->nrets, want->nrets);
	memcpy(g, got->rets, got->nrets * sizeof(g[0]));
	memcpy(w, want->rets, want->nrets * sizeof(w[0]));
	qsort(g, got->nrets, sizeof(g[0]), cmp_u64);
	qsort(w, want->nrets, sizeof(w[0]), cmp_u64);
	for (i = 0; i < got->nrets; i++)
		assert_int_equal(g[i], w[i]);
}

static void same_syms(const tt_go_syms *got, const tt_go_syms *want)
{
	same_func(&got->write, &want->write);
	same_func(&got->read, &want->read);
	assert_int_equal(got->close, want->close);
}

static double ms_since(const struct timespec *a)
{
	struct timespec b;

	clock_gettime(CLOCK_MONOTONIC, &b);
	return (double)(b.tv_sec - a->tv_sec) * 1e3 +
	       (double)(b.tv_nsec - a->tv_nsec) / 1e6;
}

/* tt_gofind on T.dir/NAME: 1, the expected path, Go version, timing. */
static void find_ok(const char *name, int stripped, tt_go_syms *got)
{
	char bin[PATH_MAX], why[256];
	struct timespec a;
	int r;

	pathf(bin, sizeof(bin), "%s/%s", T.dir, name);
	clock_gettime(CLOCK_MONOTONIC, &a);
	r = tt_gofind(bin, got, why, sizeof(why));
	print_message("%-9s %d (%s) in %.1f ms\n", name, r, why, ms_since(&a));
	assert_int_equal(r, 1);
	assert_int_equal(got->stripped, stripped);
	assert_int_equal(got->go_minor, T.go_minor);
}

static void test_symtab_matches_objdump(void **state)
{
	tt_go_syms got;
	size_t i;

	(void)state;
	NEED_GO();
	for (i = 0; i < NVARIANTS; i++) {
		if (!variants[i].built)
			continue;
		find_ok(variants[i].name, 0, &got);
		same_syms(&got, &variants[i].want);
	}
}

static void test_pclntab_matches_symtab(void **state)
{
	char name[64];
	tt_go_syms got;
	size_t i;

	(void)state;
	NEED_GO();
	for (i = 0; i < NVARIANTS; i++) {
		if (!variants[i].built)
			continue;
		pathf(name, sizeof(name), "%s-s", variants[i].name);
		find_ok(name, 1, &got);
		same_syms(&got, &variants[i].want);
	}
}

static unsigned char *load_file(const char *path, size_t *size)
{
	struct stat st;
	unsigned char *buf;
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

static unsigned char *load_built(const char *name, size_t *size)
{
	char bin[PATH_MAX];

	pathf(bin, sizeof(bin), "%s/%s", T.dir, name);
	return load_file(bin, size);
}

/* Without section headers: the pclntab and the build info by scanning. */
static void test_no_section_headers(void **state)
{
	Elf64_Ehdr eh;
	char name[64], why[256];
	tt_go_syms got;
	unsigned char *img;
	size_t i, size;

	(void)state;
	NEED_GO();
	for (i = 0; i < NVARIANTS; i++) {
		if (!variants[i].built)
			continue;
		pathf(name, sizeof(name), "%s-s", variants[i].name);
		img = load_built(name, &size);
		memcpy(&eh, img, sizeof(eh));
		eh.e_shoff = 0;
		eh.e_shnum = 0;
		eh.e_shstrndx = 0;
		memcpy(img, &eh, sizeof(eh));
		assert_int_equal(tt_gofind_mem(img, size, &got, why, sizeof(why)), 1);
		assert_int_equal(got.stripped, 1);
		assert_int_equal(got.go_minor, T.go_minor);
		same_syms(&got, &variants[i].want);
		free(img);
	}
}

static void test_not_go(void **state)
{
	char why[256], path[PATH_MAX];
	tt_go_syms got;
	FILE *f;

	(void)state;
	assert_int_equal(tt_gofind("/bin/true", &got, why, sizeof(why)), 0);
	assert_string_equal(why, "not a Go program");
	assert_int_equal(got.write.entry, 0);
	assert_int_equal(tt_gofind("/proc/self/exe", &got, why, sizeof(why)), 0);
	assert_int_equal(tt_gofind("/nonexistent/x", &got, why, sizeof(why)), TT_EIO);
	assert_int_equal(tt_gofind("/proc/self/maps", &got, NULL, 0), TT_EIO);
	assert_int_equal(tt_gofind("/", &got, why, sizeof(why)), TT_EIO);
	pathf(path, sizeof(path), "%s/tt-gofind-text-%d",
	      getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("#!/bin/sh\necho not ELF\n", f);
	fclose(f);
	assert_int_equal(tt_gofind(path, &got, why, sizeof(why)), 0);
	assert_string_equal(why, "not a 64-bit little-endian ELF file");
	unlink(path);
	assert_int_equal(tt_gofind_mem("", 0, &got, why, sizeof(why)), 0);
}

/* By .symtab and by the pclntab: 0, and why says so. */
static void test_go_without_tls(void **state)
{
	char bin[PATH_MAX], why[256];
	tt_go_syms got;

	(void)state;
	NEED_GO();
	assert_true(T.notls);
	pathf(bin, sizeof(bin), "%s/notls", T.dir);
	assert_int_equal(tt_gofind(bin, &got, why, sizeof(why)), 0);
	assert_string_equal(why, "a Go program without crypto/tls");
	pathf(bin, sizeof(bin), "%s/notls-s", T.dir);
	assert_int_equal(tt_gofind(bin, &got, why, sizeof(why)), 0);
	assert_string_equal(why, "a Go program without crypto/tls");
}

/* Where the pclntab header is: after the magic, at an 8-aligned offset. */
static size_t pcln_at(const unsigned char *img, size_t size)
{
	static const unsigned char m18[] = { 0xf0, 0xff, 0xff, 0xff, 0, 0 };
	static const unsigned char m20[] = { 0xf1, 0xff, 0xff, 0xff, 0, 0 };
	size_t o;

	for (o = 0; o + 64 <= size; o += 8)
		if ((!memcmp(img + o, m18, 6) || !memcmp(img + o, m20, 6)) &&
		    img[7 + o] == 8)
			return o;
	fail_msg("no pclntab header");
	return 0;
}

/*
 * A PIE's pcHeader.textStart is a pointer: a linker may leave it 0 in the
 * file with a R_X86_64_RELATIVE (R_AARCH64_RELATIVE) giving its value.
 * Wiped here, it must come from that relocation; in a program that is
 * not a PIE nothing else says where the functions are: an error.
 */
static void test_unrelocated_textstart(void **state)
{
	static const char *const names[] = { "pie-s", "extpie-s", "host-s" };
	char why[256];
	tt_go_syms got;
	unsigned char *img;
	size_t i, size, pcln;
	int r;

	(void)state;
	NEED_GO();
	for (i = 0; i < 3; i++) {
		const struct variant *v = i == 0 ? &variants[1]
				        : i == 1 ? &variants[2] : &variants[0];

		if (!v->built)
			continue;
		img = load_built(names[i], &size);
		pcln = pcln_at(img, size);
		memset(img + pcln + 8 + 2 * 8, 0, 8); /* textStart */
		r = tt_gofind_mem(img, size, &got, why, sizeof(why));
		if (i < 2) {
			assert_int_equal(r, 1);
			same_syms(&got, &v->want);
		} else {
			assert_true(r < 0);
		}
		free(img);
	}
}

/* The version in the build info rewritten (same length): go1.NN -> to. */
static void set_version(unsigned char *img, size_t size, const char *to)
{
	static const char magic[] = "\xff Go buildinf:";
	unsigned char *bi = memmem(img, size, magic, 14), *v;

	assert_non_null(bi);
	v = memmem(bi, 64, "go1.", 4);
	assert_non_null(v);
	assert_true(v[4] >= '1' && v[4] <= '9' && v[5] >= '0' && v[5] <= '9');
	memcpy(v + 4, to, 2);
}

static void test_old_go_refused(void **state)
{
	static const char *const names[] = { "host", "host-s" };
	char why[256];
	tt_go_syms got;
	unsigned char *img;
	size_t i, size;

	(void)state;
	NEED_GO();
	for (i = 0; i < 2; i++) {
		img = load_built(names[i], &size);
		set_version(img, size, "16");
		assert_int_equal(tt_gofind_mem(img, size, &got, why, sizeof(why)),
				 TT_ENOTSUP);
		assert_string_equal(why,
			"Go 1.16: before the register ABI (1.17), not supported");
		free(img);
	}
	if (!variants[3].built)
		return;
	img = load_built("arm64-s", &size);
	set_version(img, size, "17");
	assert_int_equal(tt_gofind_mem(img, size, &got, why, sizeof(why)), TT_ENOTSUP);
	assert_string_equal(why,
		"Go 1.17 on arm64: before the register ABI (1.18), not supported");
	free(img);
}

/* Any answer but a crash; a 1 must point inside the image. */
static int probe_copy(const unsigned char *img, size_t size)
{
	char why[256];
	tt_go_syms got;
	size_t i;
	int r;

	r = tt_gofind_mem(img, size, &got, why, sizeof(why));
	assert_true(r <= 1);
	if (r < 1)
		return r;
	assert_true(got.write.entry < size && got.read.entry < size);
	assert_true(got.close < size);
	for (i = 0; i < got.write.nrets; i++)
		assert_true(got.write.rets[i] < size);
	for (i = 0; i < got.read.nrets; i++)
		assert_true(got.read.rets[i] < size);
	return r;
}

/* The copy cut at len, in a heap block of exactly that size. */
static int probe_cut(const unsigned char *img, size_t len)
{
	unsigned char *c = malloc(len ? len : 1);
	int r;

	assert_non_null(c);
	memcpy(c, img, len);
	r = probe_copy(c, len);
	free(c);
	return r;
}

static void cut_and_flip(const char *name, unsigned *seed)
{
	const tt_go_syms *want = &variants[0].want;
	unsigned char *img, saved[16];
	size_t size, cut, pcln, i, k, at[16];
	int r, ones = 0, runs = 0;

	img = load_built(name, &size);
	pcln = pcln_at(img, size);
	/* cut: everywhere roughly, and where the reader steers */
	for (cut = 0; cut < size; cut += 1 + cut / 4 + rand_r(seed) % 4093, runs++)
		ones += probe_cut(img, cut) == 1;
	{
		const size_t at_cut[] = {
			pcln, pcln + 8, pcln + 72, pcln + 4096, pcln + (size - pcln) / 2,
			want->write.entry, want->write.entry + 1,
			want->write.rets[0], want->read.entry + 17,
			size / 2, size - 4096, size - 1,
		};
		for (i = 0; i < sizeof(at_cut) / sizeof(at_cut[0]); i++, runs++)
			if (at_cut[i] < size)
				ones += probe_cut(img, at_cut[i]) == 1;
	}
	/* every byte of the pclntab header, three ways */
	for (i = 0; i < 72; i++) {
		static const unsigned char x[] = { 0x01, 0x80, 0xff };

		for (k = 0; k < 3; k++, runs++) {
			img[pcln + i] ^= x[k];
			ones += probe_copy(img, size) == 1;
			img[pcln + i] ^= x[k];
		}
	}
	/* bytes flipped in the ELF headers, in the pclntab, at the end */
	for (i = 0; i < 600; i++, runs++) {
		size_t base = i % 3 == 0 ? 0 : i % 3 == 1 ? pcln : size - 8192;
		size_t span = i % 3 == 0 ? 4096 : i % 3 == 1 ? 65536 : 8192;

		for (k = 0; k < 8; k++) {
			at[k] = (base + (size_t)rand_r(seed) % span) % size;
			saved[k] = img[at[k]];
			img[at[k]] ^= (unsigned char)(1 + rand_r(seed) % 255);
		}
		r = probe_copy(img, size);
		ones += r == 1;
		for (k = 8; k-- > 0;)
			img[at[k]] = saved[k];
	}
	print_message("%s: %d cut or flipped copies, %d still found\n", name,
		      runs, ones);
	/* the image is whole again */
	assert_int_equal(probe_copy(img, size), 1);
	free(img);
}

static void test_cut_and_flipped(void **state)
{
	unsigned seed = 20240601;

	(void)state;
	NEED_GO();
	cut_and_flip("host-s", &seed);
	cut_and_flip("host", &seed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_not_go),
		cmocka_unit_test(test_symtab_matches_objdump),
		cmocka_unit_test(test_pclntab_matches_symtab),
		cmocka_unit_test(test_no_section_headers),
		cmocka_unit_test(test_unrelocated_textstart),
		cmocka_unit_test(test_go_without_tls),
		cmocka_unit_test(test_old_go_refused),
		cmocka_unit_test(test_cut_and_flipped),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
