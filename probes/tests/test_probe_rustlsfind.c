/*
 * test_probe_rustlsfind.c - tt_rustlsfind: rustls 0.23's CommonState::
 * buffer_plaintext (send) and take_received_plaintext (recv) in a stripped
 * Rust program, each found by two anchors (rustlsfind.c, its notes).
 *
 *   - Files without rustls 0.23 (/bin/true, this test, the libssl it links,
 *     a text file naming a rustls source path, a Go program) answer 0; a
 *     missing path and a folder TT_EIO.
 *   - Real programs: Codex's native build as scripts/npm-apps.sh installs
 *     it (build/npm-apps/codex@.../codex), or the paths in
 *     TT_RUSTLS_BINARIES (colon-separated).  Each answers 1, and the
 *     answer is checked here without rustlsfind's code (Capstone and the
 *     bytes, read here):
 *       send  is an exact function start (.eh_frame_hdr), the target of
 *             direct calls or calls through a slot holding its address;
 *             it compares a byte of its first argument with 1 at the
 *             offset reported (may_send_off), reads qwords +0, +16 and +24
 *             of its second, and hands its first argument on (rdi) to a
 *             function that another function also calls after setting
 *             that same byte to 1 (start_outgoing_traffic);
 *       recv  is a function start called by at least two functions, every
 *             one of which is slot 3 of a vtable-shaped record
 *             [drop|0, size, align, fn] in .data.rel.ro; it reads qwords
 *             +0, +8 and +16 of its second argument, stores three qwords
 *             at [B + I*8 + 0/8/16] and a qword into its first argument at
 *             the reported recv_queue_off.
 *     The functions just before and after each answer must fail these
 *     checks (an answer off by one function is caught).  For the pinned
 *     Codex 0.171.0 the known offsets are asserted as well.  Skipped,
 *     saying how to install Codex, when none is found.
 *   - One anchor destroyed in a temporary copy of Codex: the
 *     record_layer.rs source paths renamed; every rustls 0.23 path renamed
 *     (0: nothing says rustls 0.23 any more); the calls into send NOPed;
 *     send's own transfer to the encryption path NOPed; the byte offset
 *     the setter (start_outgoing_traffic) writes moved by one, so that the
 *     two anchors of send disagree; a recv caller's vtable slot zeroed;
 *     recv's element store moved.  Each answers an error naming what
 *     failed and no offset; put back, the copy answers as the original.
 *   - Cut and flipped copies: truncated at a set of lengths (in the
 *     headers, in .text, just before each answer, at the end) and, seeded
 *     (the seed is printed; TT_RUSTLS_SEED repeats it), bytes flipped in
 *     the ELF headers and around both functions.  Every call runs in a
 *     child bounded to CALL_LIMIT s: never a crash, never a hang, any 1
 *     with offsets inside the file.
 *   - The median of three runs on Codex, page cache warm (printed only).
 *
 * Codex is 315 MB and each call takes about 3 s under the sanitizers: two
 * copies are made once (in TMPDIR), patched and put back in place, and
 * the two run side by side, one child each.
 */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <capstone/capstone.h>
#include <cmocka.h>
#include <openssl/ssl.h>

#include "tlsfind.h"
#include "tokentap/error.h"

#define MAX_BINS 8
#define CALL_LIMIT 40          /* seconds one call may take (about 3 under ASan) */
#define FLIP_ROUNDS 8          /* TT_RUSTLS_FLIPS overrides */
#define FLIPS_PER_ROUND 8

/* Where scripts/npm-apps.sh installs it (make test does, first). */
static const char codex_glob[] =
	"build/npm-apps/codex@*/node_modules/@openai/codex-linux-x64/vendor/"
	"x86_64-unknown-linux-musl/bin/codex";

/* The pinned build whose offsets rustlsfind_notes.md records. */
#define PINNED_DIR  "/codex@0.171.0/"
#define PINNED_SEND 0x1160c730u
#define PINNED_RECV 0x11603a70u

static struct {
	char bins[MAX_BINS][PATH_MAX];
	size_t nbins;
	char dir[PATH_MAX];           /* ours, in TMPDIR */
	char copy[2][PATH_MAX];       /* whole copies of bins[0], "" if none */
	tt_rustls_syms want;          /* bins[0]'s answer */
	double ms[3];                 /* its three runs */
	int asked;
} T;

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

/*
 * "/rustls-0.23.", made at run time: written whole next to "/src/" in
 * this test's read-only data it would make /proc/self/exe look like a
 * rustls 0.23 program.
 */
static const char *rustls_key(void)
{
	static char key[16];

	if (!key[0]) {
		memcpy(key, "/rustls-0", 9);
		memcpy(key + 9, ".23.", 5);
	}
	return key;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ------------------------------------------------------------------ */
/* The programs and the temporary folder                               */

static void add_bin(const char *path)
{
	size_t i;

	for (i = 0; i < T.nbins; i++)
		if (strcmp(T.bins[i], path) == 0)
			return;
	if (T.nbins < MAX_BINS && access(path, R_OK) == 0)
		pathf(T.bins[T.nbins++], PATH_MAX, "%s", path);
	else if (access(path, R_OK) != 0)
		print_message("TT_RUSTLS_BINARIES: %s not readable\n", path);
}

static int setup(void **state)
{
	const char *env = getenv("TT_RUSTLS_BINARIES"), *tmp = getenv("TMPDIR");
	glob_t g;
	size_t i;

	(void)state;
	while (env && *env) {
		size_t len = strcspn(env, ":");
		char one[PATH_MAX];

		if (len && len < sizeof(one)) {
			memcpy(one, env, len);
			one[len] = '\0';
			add_bin(one);
		}
		env += len + (env[len] == ':');
	}
	if (glob(codex_glob, 0, NULL, &g) == 0) {
		for (i = 0; i < g.gl_pathc; i++)
			add_bin(g.gl_pathv[i]);
		globfree(&g);
	}
	pathf(T.dir, sizeof(T.dir), "%s/tt-rustlsfind-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	return mkdtemp(T.dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	unlink(T.copy[0]);
	unlink(T.copy[1]);
	return rmdir(T.dir);
}

#define NEED_PROGRAM()                                                        \
	do {                                                                  \
		if (T.nbins == 0) {                                           \
			print_message("skip: no rustls program: `scripts/npm-apps.sh " \
				      "install codex` puts Codex under build/npm-apps " \
				      "(run from the checkout), or set "      \
				      "TT_RUSTLS_BINARIES=path:path\n");      \
			skip();                                               \
		}                                                             \
	} while (0)

/*
 * bins[0]'s answer, asked three times with the page cache warm (the
 * times for test_time).  Once per run of this test.
 */
static const tt_rustls_syms *first_answer(void)
{
	char why[512];
	tt_rustls_syms s;
	int i, r;

	if (T.asked)
		return &T.want;
	{       /* warm: read it once */
		char buf[1 << 16];
		int fd = open(T.bins[0], O_RDONLY);

		assert_true(fd >= 0);
		while (read(fd, buf, sizeof(buf)) > 0)
			;
		close(fd);
	}
	for (i = 0; i < 3; i++) {
		double t0 = now_ms();

		r = tt_rustlsfind(T.bins[0], i ? &s : &T.want, why, sizeof(why));
		T.ms[i] = now_ms() - t0;
		if (r != 1)
			print_message("%s: %d (%s)\n", T.bins[0], r, why);
		assert_int_equal(r, 1);
		assert_string_equal(why, "");
		if (i)
			assert_memory_equal(&s, &T.want, sizeof(s));
	}
	T.asked = 1;
	return &T.want;
}

/* ------------------------------------------------------------------ */
/* What this test reads of a program itself                            */

struct load {
	uint64_t va, off, filesz;
	uint32_t flags;
};

struct prog {
	const unsigned char *img;
	size_t size;
	struct load load[16];
	int nload, text;              /* text: the PF_X one */
	uint64_t relro_va, relro_size;/* .data.rel.ro (else every PF_W load) */
	const unsigned char *ehtab;   /* .eh_frame_hdr's sorted (pc, fde) table */
	uint64_t ehh_va;
	size_t nfn;
	csh cs;
};

static void prog_open(const char *path, struct prog *p)
{
	const Elf64_Ehdr *eh;
	const Elf64_Phdr *ph;
	struct stat st;
	void *m;
	int fd = open(path, O_RDONLY), i;

	memset(p, 0, sizeof(*p));
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	assert_true(m != MAP_FAILED);
	p->img = m;
	p->size = (size_t)st.st_size;
	eh = m;
	assert_int_equal(memcmp(eh->e_ident, ELFMAG, SELFMAG), 0);
	assert_int_equal(eh->e_machine, EM_X86_64);
	ph = (const Elf64_Phdr *)(p->img + eh->e_phoff);
	p->text = -1;
	for (i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type == PT_LOAD && p->nload < 16) {
			if (ph[i].p_flags & PF_X)
				p->text = p->nload;
			p->load[p->nload++] = (struct load){ ph[i].p_vaddr, ph[i].p_offset,
							     ph[i].p_filesz, ph[i].p_flags };
		}
		if (ph[i].p_type == PT_GNU_EH_FRAME) {
			const unsigned char *h = p->img + ph[i].p_offset;
			uint32_t n;

			/* version 1; eh_frame_ptr pcrel|sdata4, count udata4,
			 * table datarel|sdata4 */
			assert_memory_equal(h, "\x01\x1b\x03\x3b", 4);
			memcpy(&n, h + 8, 4);
			p->ehh_va = ph[i].p_vaddr;
			p->ehtab = h + 12;
			p->nfn = n;
		}
	}
	assert_true(p->text >= 0);
	assert_non_null(p->ehtab);
	if (eh->e_shoff && eh->e_shnum && eh->e_shoff + eh->e_shnum * sizeof(Elf64_Shdr) <= p->size) {
		const Elf64_Shdr *sh = (const Elf64_Shdr *)(p->img + eh->e_shoff);
		const char *names = (const char *)p->img + sh[eh->e_shstrndx].sh_offset;

		for (i = 0; i < eh->e_shnum; i++)
			if (strcmp(names + sh[i].sh_name, ".data.rel.ro") == 0) {
				p->relro_va = sh[i].sh_addr;
				p->relro_size = sh[i].sh_size;
			}
	}
	assert_int_equal(cs_open(CS_ARCH_X86, CS_MODE_64, &p->cs), CS_ERR_OK);
	cs_option(p->cs, CS_OPT_DETAIL, CS_OPT_ON);
}

static void prog_close(struct prog *p)
{
	cs_close(&p->cs);
	munmap((void *)p->img, p->size);
}

/* File offset of va through the PT_LOAD headers; UINT64_MAX if none. */
static uint64_t off_of(const struct prog *p, uint64_t va)
{
	int i;

	for (i = 0; i < p->nload; i++)
		if (va >= p->load[i].va && va - p->load[i].va < p->load[i].filesz)
			return va - p->load[i].va + p->load[i].off;
	return UINT64_MAX;
}

static const unsigned char *bytes_at(const struct prog *p, uint64_t va, uint64_t n)
{
	uint64_t off = off_of(p, va);

	return off != UINT64_MAX && off + n <= p->size ? p->img + off : NULL;
}

static int in_text(const struct prog *p, uint64_t va)
{
	const struct load *t = &p->load[p->text];

	return va >= t->va && va - t->va < t->filesz;
}

static uint64_t fn_pc(const struct prog *p, size_t i)
{
	int32_t v;

	memcpy(&v, p->ehtab + i * 8, 4);
	return p->ehh_va + (uint64_t)(int64_t)v;
}

/* The index of the function that holds va (last start <= va); -1 none. */
static long fn_index(const struct prog *p, uint64_t va)
{
	size_t lo = 0, hi = p->nfn;

	while (lo < hi) {
		size_t m = (lo + hi) / 2;

		if (fn_pc(p, m) <= va)
			lo = m + 1;
		else
			hi = m;
	}
	return (long)lo - 1;
}

/* Where the function at index i ends: the next one's start. */
static uint64_t fn_end(const struct prog *p, long i)
{
	const struct load *t = &p->load[p->text];

	return (size_t)i + 1 < p->nfn ? fn_pc(p, (size_t)i + 1) : t->va + t->filesz;
}

/* A qword stored in place (RELR or static: what Codex has). */
static uint64_t q_at(const unsigned char *b)
{
	uint64_t v;

	memcpy(&v, b, 8);
	return v;
}

/* ---- calls, read from the bytes ------------------------------------ */

/* A call or jump to one of the targets: e8/e9 rel32, ff 15/25 [rip+slot]. */
struct site {
	uint64_t va;
	int target;            /* index in the scan's targets */
	int len;               /* 5 or 6 */
	int caller;            /* index of the function it is in */
};

struct sites {
	struct site *v;
	size_t n, cap;
};

static void site_add(struct sites *s, uint64_t va, int t, int len, const struct prog *p)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 256;
		s->v = realloc(s->v, s->cap * sizeof(*s->v));
		assert_non_null(s->v);
	}
	s->v[s->n++] = (struct site){ va, t, len, (int)fn_index(p, va) };
}

/* Every site in .text that transfers to one of t[0..nt). */
static void scan_calls(const struct prog *p, const uint64_t *t, int nt, struct sites *out)
{
	const struct load *x = &p->load[p->text];
	const unsigned char *b = p->img + x->off;
	uint64_t slot[64], o;
	int slot_t[64], ns = 0, i, k;

	/* the slots (GOT or other data) that hold a target's address */
	for (i = 0; i < p->nload; i++) {
		const struct load *l = &p->load[i];

		if (!(l->flags & PF_W))
			continue;
		for (o = (8 - l->va % 8) % 8; o + 8 <= l->filesz && l->off + o + 8 <= p->size; o += 8)
			for (k = 0; k < nt; k++)
				if (q_at(p->img + l->off + o) == t[k] && ns < 64) {
					slot[ns] = l->va + o;
					slot_t[ns++] = k;
				}
	}
	for (o = 0; o + 6 <= x->filesz; o++) {
		uint64_t va = x->va + o;
		int32_t d;

		if (b[o] == 0xe8 || b[o] == 0xe9) {
			memcpy(&d, b + o + 1, 4);
			for (k = 0; k < nt; k++)
				if (va + 5 + (uint64_t)(int64_t)d == t[k])
					site_add(out, va, k, 5, p);
		} else if (b[o] == 0xff && (b[o + 1] == 0x15 || b[o + 1] == 0x25) && ns) {
			memcpy(&d, b + o + 2, 4);
			for (k = 0; k < ns; k++)
				if (va + 6 + (uint64_t)(int64_t)d == slot[k])
					site_add(out, va, slot_t[k], 6, p);
		}
	}
}

/* The distinct functions (starts) that transfer to target k, itself left out. */
static size_t callers(const struct prog *p, const struct sites *s, int k, uint64_t self,
		      uint64_t *out, size_t cap)
{
	size_t i, j, n = 0;

	for (i = 0; i < s->n; i++) {
		uint64_t c;

		if (s->v[i].target != k || s->v[i].caller < 0)
			continue;
		c = fn_pc(p, (size_t)s->v[i].caller);
		if (c == self)
			continue;
		for (j = 0; j < n && out[j] != c; j++)
			;
		if (j == n && n < cap)
			out[n++] = c;
	}
	return n;
}

/*
 * Is fn slot 3 (the first method) of a record shaped like a Rust vtable,
 * [drop_in_place or 0, size, align, fn], in .data.rel.ro?
 */
static int vtable_method(const struct prog *p, uint64_t fn)
{
	int i;

	for (i = 0; i < p->nload; i++) {
		const struct load *l = &p->load[i];
		uint64_t lo = l->va, hi = l->va + l->filesz, va;

		if (!(l->flags & PF_W))
			continue;
		if (p->relro_size) {
			lo = lo > p->relro_va ? lo : p->relro_va;
			hi = hi < p->relro_va + p->relro_size ? hi : p->relro_va + p->relro_size;
		}
		for (va = (lo + 7) & ~7ull; va + 32 <= hi; va += 8) {
			const unsigned char *r = p->img + l->off + (va - l->va);
			uint64_t drop = q_at(r), size = q_at(r + 8), align = q_at(r + 16);

			if (q_at(r + 24) != fn || !align || align > 4096 || (align & (align - 1)) ||
			    size % align || (drop && !in_text(p, drop)))
				continue;
			return 1;
		}
	}
	return 0;
}

/* ---- what a function does with its arguments (Capstone) ------------ */

static const x86_reg gpr[16][5] = {
	{ X86_REG_RAX, X86_REG_EAX, X86_REG_AX, X86_REG_AL, X86_REG_AH },
	{ X86_REG_RCX, X86_REG_ECX, X86_REG_CX, X86_REG_CL, X86_REG_CH },
	{ X86_REG_RDX, X86_REG_EDX, X86_REG_DX, X86_REG_DL, X86_REG_DH },
	{ X86_REG_RBX, X86_REG_EBX, X86_REG_BX, X86_REG_BL, X86_REG_BH },
	{ X86_REG_RSP, X86_REG_ESP, X86_REG_SP, X86_REG_SPL, 0 },
	{ X86_REG_RBP, X86_REG_EBP, X86_REG_BP, X86_REG_BPL, 0 },
	{ X86_REG_RSI, X86_REG_ESI, X86_REG_SI, X86_REG_SIL, 0 },
	{ X86_REG_RDI, X86_REG_EDI, X86_REG_DI, X86_REG_DIL, 0 },
	{ X86_REG_R8, X86_REG_R8D, X86_REG_R8W, X86_REG_R8B, 0 },
	{ X86_REG_R9, X86_REG_R9D, X86_REG_R9W, X86_REG_R9B, 0 },
	{ X86_REG_R10, X86_REG_R10D, X86_REG_R10W, X86_REG_R10B, 0 },
	{ X86_REG_R11, X86_REG_R11D, X86_REG_R11W, X86_REG_R11B, 0 },
	{ X86_REG_R12, X86_REG_R12D, X86_REG_R12W, X86_REG_R12B, 0 },
	{ X86_REG_R13, X86_REG_R13D, X86_REG_R13W, X86_REG_R13B, 0 },
	{ X86_REG_R14, X86_REG_R14D, X86_REG_R14W, X86_REG_R14B, 0 },
	{ X86_REG_R15, X86_REG_R15D, X86_REG_R15W, X86_REG_R15B, 0 },
};
enum { RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11 };

static int gpr_of(x86_reg r)
{
	int i, k;

	for (i = 0; i < 16; i++)
		for (k = 0; k < 5; k++)
			if (gpr[i][k] && gpr[i][k] == r)
				return i;
	return -1;
}

#define MAXREC 16

/* What a function does with its first two arguments, in one linear pass. */
struct shape {
	/* cmp byte [arg0 + d], 1 / mov byte [arg0 + d], 1 */
	int ncmp, nset;
	int64_t cmp_disp[MAXREC], set_disp[MAXREC];
	uint64_t set_disp_va[MAXREC];       /* where set's disp32 sits */
	unsigned a1_reads;                  /* bit k: qword read of [arg1 + 8k] */
	/* qword stores of a register to [B + I*8 + 8k], k = 0..2 */
	struct { x86_reg b, i; int64_t d; uint64_t disp_va; int disp_size; } st[MAXREC];
	int nst;
	int64_t a0_store[MAXREC];           /* qword stores of a register into [arg0 + q] */
	int na0;
	uint64_t fwd[MAXREC];               /* direct call/jmp out, arg0 in rdi */
	uint64_t fwd_va[MAXREC];            /* where (the instruction) */
	int fwd_len[MAXREC];
	int nfwd;
};

/*
 * One pass over [start, end): which registers still hold argument 0
 * (rdi) and 1 (rsi) at entry, followed through 64-bit register moves;
 * any other write, and a call for the caller-saved ones, ends that.
 * No branches followed: enough for what is checked here.
 */
static void shape_of(const struct prog *p, uint64_t start, uint64_t end, struct shape *sh)
{
	unsigned char holds[16] = { 0 };
	const unsigned char *code;
	cs_insn *ins;
	size_t n, i;

	memset(sh, 0, sizeof(*sh));
	if (end - start > 16384)
		end = start + 16384;
	code = bytes_at(p, start, end - start);
	if (!code)
		return;
	holds[RDI] = 1;
	holds[RSI] = 2;
	n = cs_disasm(p->cs, code, end - start, start, 0, &ins);
	for (i = 0; i < n; i++) {
		const cs_insn *in = &ins[i];
		const cs_x86 *x = &in->detail->x86;
		cs_regs rd, wr;
		uint8_t nrd, nwr, k;
		int m = -1, r;

		for (k = 0; k < x->op_count; k++)
			if (x->operands[k].type == X86_OP_MEM)
				m = k;
		if (m >= 0 && x->operands[m].mem.base != X86_REG_INVALID &&
		    x->operands[m].mem.base != X86_REG_RIP) {
			const cs_x86_op *o = &x->operands[m];
			int b = gpr_of(o->mem.base);
			unsigned h = b >= 0 ? holds[b] : 0;
			int noidx = o->mem.index == X86_REG_INVALID;
			int imm1 = x->op_count == 2 && x->operands[1].type == X86_OP_IMM &&
				   x->operands[1].imm == 1;

			if (in->id == X86_INS_CMP && o->size == 1 && m == 0 && imm1 && (h & 1) &&
			    noidx && sh->ncmp < MAXREC)
				sh->cmp_disp[sh->ncmp++] = o->mem.disp;
			if (in->id == X86_INS_MOV && o->size == 1 && m == 0 && imm1 && (h & 1) &&
			    noidx && x->encoding.disp_size == 4 && sh->nset < MAXREC) {
				sh->set_disp_va[sh->nset] = in->address + x->encoding.disp_offset;
				sh->set_disp[sh->nset++] = o->mem.disp;
			}
			if (o->size == 8 && (o->access & CS_AC_READ) && (h & 2) && noidx &&
			    o->mem.disp >= 0 && o->mem.disp <= 24 && o->mem.disp % 8 == 0)
				sh->a1_reads |= 1u << (o->mem.disp / 8);
			if (in->id == X86_INS_MOV && m == 0 && o->size == 8 &&
			    x->operands[1].type == X86_OP_REG) {
				if (!noidx && o->mem.scale == 8 && sh->nst < MAXREC &&
				    (o->mem.disp == 0 || o->mem.disp == 8 || o->mem.disp == 16)) {
					sh->st[sh->nst].b = o->mem.base;
					sh->st[sh->nst].i = o->mem.index;
					sh->st[sh->nst].d = o->mem.disp;
					sh->st[sh->nst].disp_va = in->address + x->encoding.disp_offset;
					sh->st[sh->nst++].disp_size = x->encoding.disp_size;
				} else if (noidx && (h & 1) && sh->na0 < MAXREC) {
					sh->a0_store[sh->na0++] = o->mem.disp;
				}
			}
		}
		if ((in->id == X86_INS_CALL || in->id == X86_INS_JMP) && x->op_count == 1 &&
		    x->operands[0].type == X86_OP_IMM && (holds[RDI] & 1) && sh->nfwd < MAXREC) {
			uint64_t t = (uint64_t)x->operands[0].imm;

			if (t < start || t >= end) {
				sh->fwd_va[sh->nfwd] = in->address;
				sh->fwd_len[sh->nfwd] = in->size;
				sh->fwd[sh->nfwd++] = t;
			}
		}
		/* the registers after it */
		if (in->id == X86_INS_MOV && x->op_count == 2 && x->operands[0].type == X86_OP_REG &&
		    x->operands[1].type == X86_OP_REG && x->operands[0].size == 8) {
			int d = gpr_of(x->operands[0].reg), s = gpr_of(x->operands[1].reg);

			if (d >= 0)
				holds[d] = s >= 0 ? holds[s] : 0;
			continue;
		}
		if (in->id == X86_INS_CALL) {
			static const int clobbered[] = { RAX, RCX, RDX, RSI, RDI, R8, R9, R10, R11 };

			for (k = 0; k < sizeof(clobbered) / sizeof(clobbered[0]); k++)
				holds[clobbered[k]] = 0;
		}
		if (cs_regs_access(p->cs, in, rd, &nrd, wr, &nwr) == CS_ERR_OK)
			for (k = 0; k < nwr; k++)
				if ((r = gpr_of(wr[k])) >= 0)
					holds[r] = 0;
	}
	cs_free(ins, n);
}

/* The stores [B + I*8 + 0/8/16] with one B and I: 1, and where +16's disp is. */
static int stores_triple(const struct shape *sh, uint64_t *disp16_va, int *disp16_size)
{
	int a, b, c;

	for (a = 0; a < sh->nst; a++)
		for (b = 0; b < sh->nst; b++)
			for (c = 0; c < sh->nst; c++)
				if (sh->st[a].d == 0 && sh->st[b].d == 8 && sh->st[c].d == 16 &&
				    sh->st[a].b == sh->st[b].b && sh->st[a].b == sh->st[c].b &&
				    sh->st[a].i == sh->st[b].i && sh->st[a].i == sh->st[c].i) {
					if (disp16_va) {
						*disp16_va = sh->st[c].disp_va;
						*disp16_size = sh->st[c].disp_size;
					}
					return 1;
				}
	return 0;
}

/* send's shape: cmp byte [arg0 + d], 1 and qwords +0, +16, +24 of arg1. */
static int send_shape(const struct shape *sh, int64_t d)
{
	int i;

	if ((sh->a1_reads & 0xd) != 0xd || sh->nfwd == 0)
		return 0;
	for (i = 0; i < sh->ncmp; i++)
		if (sh->cmp_disp[i] == d)
			return 1;
	return 0;
}

/* recv's shape: qwords +0, +8, +16 of arg1, the triple, a qword into [arg0 + q]. */
static int recv_shape(const struct shape *sh, int64_t q)
{
	int i;

	if ((sh->a1_reads & 7) != 7 || !stores_triple(sh, NULL, NULL))
		return 0;
	for (i = 0; i < sh->na0; i++)
		if (sh->a0_store[i] == q)
			return 1;
	return 0;
}

/*
 * The functions that set byte d of their first argument to 1 (mov byte
 * [arg0 + d32], 1) and hand arg0 on to one of to[0..nto): found by the
 * bytes of disp32 and 1 in .text, then read with Capstone.  The places of
 * those disp32s in va[], their count.
 */
static size_t setters(const struct prog *p, uint64_t self, uint32_t d, const uint64_t *to,
		      int nto, uint64_t *va, size_t cap)
{
	const struct load *x = &p->load[p->text];
	const unsigned char *b = p->img + x->off, *end = b + x->filesz, *h = b + 2;
	unsigned char pat[5];
	size_t n = 0;

	memcpy(pat, &d, 4);
	pat[4] = 1;
	while ((h = memmem(h, (size_t)(end - h), pat, 5)) != NULL) {
		uint64_t at = x->va + (uint64_t)(h - b);
		long f = fn_index(p, at);
		struct shape sh;
		int i, j, k;

		/* c6 /0 with a disp32 and no SIB: mov byte [reg + disp32], imm8 */
		if (h[-2] != 0xc6 || (h[-1] & 0xf8) != 0x80 || (h[-1] & 7) == 4 || f < 0 ||
		    fn_pc(p, (size_t)f) == self) {
			h++;
			continue;
		}
		shape_of(p, fn_pc(p, (size_t)f), fn_end(p, f), &sh);
		for (i = 0; i < sh.nset; i++) {
			if (sh.set_disp_va[i] != at || sh.set_disp[i] != d)
				continue;
			for (j = 0; j < sh.nfwd; j++)
				for (k = 0; k < nto; k++)
					if (sh.fwd[j] == to[k] && n < cap) {
						va[n++] = at;
						j = sh.nfwd;
						break;
					}
		}
		h++;
	}
	return n;
}

/* ------------------------------------------------------------------ */

static void test_not_rustls(void **state)
{
	char why[256] = "x", path[PATH_MAX];
	tt_rustls_syms s;
	Dl_info info;
	FILE *f;

	(void)state;
	assert_int_equal(tt_rustlsfind("/bin/true", &s, why, sizeof(why)), 0);
	assert_string_equal(why, "");
	assert_int_equal(s.send, 0);
	assert_int_equal(s.recv, 0);
	assert_int_equal(tt_rustlsfind("/proc/self/exe", &s, why, sizeof(why)), 0);
	assert_true(dladdr((void *)SSL_write, &info) && info.dli_fname);
	assert_int_equal(tt_rustlsfind(info.dli_fname, &s, why, sizeof(why)), 0);
	/* a text file naming a rustls source file: not a program */
	pathf(path, sizeof(path), "%s/notes.txt", T.dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "panicked at ~/.cargo/registry/src/index.crates.io%s46/src/record_layer.rs\n",
		rustls_key());
	fclose(f);
	assert_int_equal(tt_rustlsfind(path, &s, why, sizeof(why)), 0);
	unlink(path);
	if (access("build/go/client", R_OK) == 0)
		assert_int_equal(tt_rustlsfind("build/go/client", &s, why, sizeof(why)), 0);
	else
		print_message("note: build/go/client not built: the Go case not run\n");
	/* missing and a folder: TT_EIO, why saying so */
	assert_int_equal(tt_rustlsfind(path, &s, why, sizeof(why)), TT_EIO);
	assert_non_null(strstr(why, path));
	assert_int_equal(tt_rustlsfind("/", &s, why, sizeof(why)), TT_EIO);
	assert_true(why[0] != '\0');
	assert_int_equal(tt_rustlsfind("/bin/true", &s, NULL, 0), 0);
	assert_int_equal(tt_rustlsfind("/nonexistent/rustls", &s, NULL, 0), TT_EIO);
}

/* The evidence this test gathers on one program, for one answer. */
struct evidence {
	uint64_t send_prev, send_next, recv_prev, recv_next;
	size_t send_sites, send_callers, recv_callers, recv_vt_callers;
	size_t nsetters;
	uint64_t setter_va[8];              /* start_outgoing_traffic's disp32 */
	struct shape send_sh, recv_sh;
	struct sites sites;                 /* to send (target 0) and recv (3) */
};

/* Do recv's anchors hold for the function fn (target k of the scan)? */
static int recv_holds(const struct prog *p, const struct sites *s, int k, uint64_t fn,
		      int64_t q, size_t *ncallers, size_t *nvt)
{
	uint64_t c[64];
	struct shape sh;
	size_t n = callers(p, s, k, fn, c, 64), i, vt = 0;

	for (i = 0; i < n; i++)
		vt += (size_t)vtable_method(p, c[i]);
	if (ncallers) {
		*ncallers = n;
		*nvt = vt;
	}
	shape_of(p, fn, fn_end(p, fn_index(p, fn)), &sh);
	return n >= 2 && vt == n && recv_shape(&sh, q);
}

static void gather(const struct prog *p, const tt_rustls_syms *a, struct evidence *ev)
{
	long si = fn_index(p, a->send_va), ri = fn_index(p, a->recv_va);
	uint64_t t[6];

	memset(ev, 0, sizeof(*ev));
	assert_true(si > 0 && ri > 0);
	ev->send_prev = fn_pc(p, (size_t)si - 1);
	ev->send_next = fn_pc(p, (size_t)si + 1);
	ev->recv_prev = fn_pc(p, (size_t)ri - 1);
	ev->recv_next = fn_pc(p, (size_t)ri + 1);
	t[0] = a->send_va;
	t[1] = ev->send_prev;
	t[2] = ev->send_next;
	t[3] = a->recv_va;
	t[4] = ev->recv_prev;
	t[5] = ev->recv_next;
	scan_calls(p, t, 6, &ev->sites);
	{
		uint64_t c[64];
		size_t i;

		for (i = 0; i < ev->sites.n; i++)
			ev->send_sites += ev->sites.v[i].target == 0;
		ev->send_callers = callers(p, &ev->sites, 0, a->send_va, c, 64);
	}
	shape_of(p, a->send_va, fn_end(p, si), &ev->send_sh);
	shape_of(p, a->recv_va, fn_end(p, ri), &ev->recv_sh);
	ev->nsetters = setters(p, a->send_va, a->may_send_off, ev->send_sh.fwd, ev->send_sh.nfwd,
			       ev->setter_va, 8);
	recv_holds(p, &ev->sites, 3, a->recv_va, a->recv_queue_off, &ev->recv_callers,
		   &ev->recv_vt_callers);
}

/* One real program: 1, and an answer this test confirms on its own. */
static void check_program(const char *path, const tt_rustls_syms *got)
{
	struct prog p;
	struct evidence ev;
	char ver[64];
	const char *base = strrchr(path, '/');
	struct shape sh;

	prog_open(path, &p);
	/* the offsets: in .text, through the program headers read here */
	assert_int_equal(got->send, off_of(&p, got->send_va));
	assert_int_equal(got->recv, off_of(&p, got->recv_va));
	assert_true(in_text(&p, got->send_va) && in_text(&p, got->recv_va));
	assert_true(got->send != got->recv);
	/* the version: its source paths are in the file */
	pathf(ver, sizeof(ver), "%s%s/src/", rustls_key(), got->version + 5);
	assert_memory_equal(got->version, "0.23.", 5);
	assert_non_null(memmem(p.img, p.size, ver, strlen(ver)));

	gather(&p, got, &ev);
	print_message("%s: rustls %s\n", path, got->version);
	print_message("  send 0x%llx: %zu call sites in %zu functions, cmp byte [arg0+0x%x], 1, "
		      "arg1 qwords 0x%x, arg0 handed to 0x%llx; set to 1 by %zu other function(s)\n",
		      (unsigned long long)got->send, ev.send_sites, ev.send_callers,
		      got->may_send_off, ev.send_sh.a1_reads,
		      (unsigned long long)(ev.send_sh.nfwd ? ev.send_sh.fwd[0] : 0), ev.nsetters);
	print_message("  recv 0x%llx: %zu callers, %zu of them vtable slot 3; arg1 qwords 0x%x, "
		      "element stores %s, qword into [arg0+0x%x]\n",
		      (unsigned long long)got->recv, ev.recv_callers, ev.recv_vt_callers,
		      ev.recv_sh.a1_reads, stores_triple(&ev.recv_sh, NULL, NULL) ? "+0/8/16" : "none",
		      got->recv_queue_off);

	/* send: an entry (exact call target, exact .eh_frame_hdr start) */
	assert_int_equal(fn_pc(&p, (size_t)fn_index(&p, got->send_va)), got->send_va);
	assert_true(ev.send_sites >= 1);
	assert_int_equal(ev.send_callers, (size_t)got->ncallers_send);
	/* what it does: the flag byte, the OutboundChunks words, arg0 on */
	assert_true(send_shape(&ev.send_sh, got->may_send_off));
	/* agreement: the same byte set to 1 before the same transfer */
	assert_true(ev.nsetters >= 1);

	/* recv: an entry called only by dyn State::handle methods */
	assert_int_equal(fn_pc(&p, (size_t)fn_index(&p, got->recv_va)), got->recv_va);
	assert_true(ev.recv_callers >= 2);
	assert_int_equal(ev.recv_vt_callers, ev.recv_callers);
	assert_int_equal(ev.recv_callers, (size_t)got->ncallers_recv);
	assert_true(recv_shape(&ev.recv_sh, got->recv_queue_off));

	/* off by one function: the neighbours fail these checks */
	shape_of(&p, ev.send_prev, got->send_va, &sh);
	assert_false(send_shape(&sh, got->may_send_off));
	shape_of(&p, ev.send_next, fn_end(&p, fn_index(&p, ev.send_next)), &sh);
	assert_false(send_shape(&sh, got->may_send_off));
	assert_false(recv_holds(&p, &ev.sites, 4, ev.recv_prev, got->recv_queue_off, NULL, NULL));
	assert_false(recv_holds(&p, &ev.sites, 5, ev.recv_next, got->recv_queue_off, NULL, NULL));

	/* the pinned build: its offsets as rustlsfind_notes.md has them, too */
	if (strstr(path, PINNED_DIR) && base && strcmp(base, "/codex") == 0) {
		assert_int_equal(got->send, PINNED_SEND);
		assert_int_equal(got->recv, PINNED_RECV);
		assert_string_equal(got->version, "0.23.46");
		print_message("  = the offsets recorded for Codex 0.171.0\n");
	}
	free(ev.sites.v);
	prog_close(&p);
}

static void test_real_programs(void **state)
{
	char why[512];
	tt_rustls_syms s;
	size_t i;
	int r;

	(void)state;
	NEED_PROGRAM();
	check_program(T.bins[0], first_answer());
	for (i = 1; i < T.nbins; i++) {
		r = tt_rustlsfind(T.bins[i], &s, why, sizeof(why));
		if (r != 1)
			print_message("%s: %d (%s)\n", T.bins[i], r, why);
		assert_int_equal(r, 1);
		check_program(T.bins[i], &s);
	}
}

/* ------------------------------------------------------------------ */
/* Calls in a child, bounded in time                                   */

struct outcome {
	int r;
	tt_rustls_syms s;
	char why[400];
	double ms;
};

struct job {
	pid_t pid;
	int fd;
	const char *what;
};

/* tt_rustlsfind(path) in a child that may take CALL_LIMIT s. */
static void job_start(struct job *j, const char *path, const char *what)
{
	int fds[2];

	assert_int_equal(pipe(fds), 0);
	j->what = what;
	j->pid = fork();
	assert_true(j->pid >= 0);
	if (j->pid == 0) {
		static const int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };
		struct outcome o;
		size_t k;
		double t0;

		/* a crash kills the child (not cmocka's handler, inherited) */
		for (k = 0; k < sizeof(sigs) / sizeof(sigs[0]); k++)
			signal(sigs[k], SIG_DFL);
		close(fds[0]);
		alarm(CALL_LIMIT);
		memset(&o, 0, sizeof(o));
		t0 = now_ms();
		o.r = tt_rustlsfind(path, &o.s, o.why, sizeof(o.why));
		o.ms = now_ms() - t0;
		_exit(write(fds[1], &o, sizeof(o)) == (ssize_t)sizeof(o) ? 0 : 3);
	}
	close(fds[1]);
	j->fd = fds[0];
}

static void job_finish(struct job *j, struct outcome *o)
{
	ssize_t n = read(j->fd, o, sizeof(*o));
	int st;

	close(j->fd);
	assert_int_equal(waitpid(j->pid, &st, 0), j->pid);
	if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)
		fail_msg("%s: tt_rustlsfind took more than %d s", j->what, CALL_LIMIT);
	if (WIFSIGNALED(st))
		fail_msg("%s: tt_rustlsfind crashed (signal %d)", j->what, WTERMSIG(st));
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("%s: the child exited %d (a sanitizer report above?)", j->what,
			 WEXITSTATUS(st));
	assert_int_equal(n, (ssize_t)sizeof(*o));
}

/* ------------------------------------------------------------------ */
/* Copies of the first program, patched in place and put back          */

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

/* The two copies, whole (made once, or again after the cuts). */
static void copies(void)
{
	int i;

	for (i = 0; i < 2; i++) {
		struct stat a, b;

		if (T.copy[i][0] && stat(T.copy[i], &a) == 0 && stat(T.bins[0], &b) == 0 &&
		    a.st_size == b.st_size)
			continue;
		pathf(T.copy[i], sizeof(T.copy[i]), "%s/copy%d", T.dir, i);
		copy_file(T.bins[0], T.copy[i]);
	}
}

struct patch {
	uint64_t off;
	size_t n;
	unsigned char b[16];
};

/* One copy changed: what, how, and what the answer must say. */
struct task {
	char what[96];
	struct patch *pt;
	size_t npt, cap;
	const char *needle;   /* in why; NULL: the answer must be 0 */
	int may_stand;        /* 1 with the original answer and no caller is allowed */
	int whole;            /* no patch: the original answer */
};

static void task_add(struct task *t, uint64_t off, const void *b, size_t n)
{
	if (t->npt == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->pt = realloc(t->pt, t->cap * sizeof(*t->pt));
		assert_non_null(t->pt);
	}
	assert_true(n <= sizeof(t->pt[0].b));
	t->pt[t->npt].off = off;
	t->pt[t->npt].n = n;
	memcpy(t->pt[t->npt++].b, b, n);
}

static void pwrite_all(int fd, const void *b, size_t n, uint64_t off)
{
	assert_int_equal(pwrite(fd, b, n, (off_t)off), (ssize_t)n);
}

/* Apply (or put back from img, and read back to be sure) a task's bytes. */
static void task_apply(const struct task *t, const char *copy, const unsigned char *img,
		       int undo)
{
	int fd = open(copy, O_RDWR);
	size_t i;

	assert_true(fd >= 0);
	for (i = t->npt; i-- > 0;)   /* undo in reverse: overlapping flips */
		if (undo)
			pwrite_all(fd, img + t->pt[i].off, t->pt[i].n, t->pt[i].off);
	for (i = 0; i < t->npt && !undo; i++)
		pwrite_all(fd, t->pt[i].b, t->pt[i].n, t->pt[i].off);
	for (i = 0; i < t->npt && undo; i++) {
		unsigned char back[16];

		assert_int_equal(pread(fd, back, t->pt[i].n, (off_t)t->pt[i].off),
				 (ssize_t)t->pt[i].n);
		assert_memory_equal(back, img + t->pt[i].off, t->pt[i].n);
	}
	close(fd);
}

typedef void check_fn(const struct task *t, const struct outcome *o, size_t size);

/* The tasks two at a time, one on each copy, each put back after. */
static void run_tasks(struct task *t, size_t n, const unsigned char *img, size_t size,
		      check_fn *check)
{
	size_t i, k;

	copies();
	for (i = 0; i < n; i += 2) {
		struct job j[2];
		struct outcome o[2];

		for (k = 0; k < 2 && i + k < n; k++) {
			task_apply(&t[i + k], T.copy[k], img, 0);
			job_start(&j[k], T.copy[k], t[i + k].what);
		}
		for (k = 0; k < 2 && i + k < n; k++) {
			job_finish(&j[k], &o[k]);
			task_apply(&t[i + k], T.copy[k], img, 1);
			check(&t[i + k], &o[k], size);
		}
	}
}

/* An anchor gone: 0 when nothing says rustls 0.23, else an error that
 * names it; never an offset. */
static void check_refused(const struct task *t, const struct outcome *o, size_t size)
{
	(void)size;
	print_message("  %s: %d (%s) %.0f ms\n", t->what, o->r, o->why, o->ms);
	if (t->whole || (t->may_stand && o->r == 1)) {
		assert_int_equal(o->r, 1);
		assert_int_equal(o->s.send, T.want.send);
		assert_int_equal(o->s.recv, T.want.recv);
		if (t->may_stand) {
			/* callers of send are evidence here, not one of its anchors */
			print_message("    (send kept, %d callers: not an anchor of tt_rustlsfind)\n",
				      o->s.ncallers_send);
			assert_int_equal(o->s.ncallers_send, 0);
		}
		return;
	}
	assert_int_equal(o->s.send, 0);
	assert_int_equal(o->s.recv, 0);
	if (!t->needle) {
		assert_int_equal(o->r, 0);
		return;
	}
	/* "it is rustls 0.23, but its code does not fit": not 0, 1 or EIO */
	assert_true(o->r == TT_EPROTO || o->r == TT_ENOTSUP);
	assert_non_null(strstr(o->why, t->needle));
}

/* Every "/rustls-0.23.N/src/<file>" outside .text renamed (or only
 * record_layer.rs's), "0.23" made "9.99". */
static void rename_paths(struct task *t, const struct prog *p, const char *only)
{
	const char *key = rustls_key();
	const unsigned char *h = p->img, *end = p->img + p->size;
	const struct load *x = &p->load[p->text];
	size_t kl = strlen(key);

	while ((h = memmem(h, (size_t)(end - h), key, kl)) != NULL) {
		const unsigned char *q = h + kl;
		char to[16];

		while (q < end && *q >= '0' && *q <= '9')
			q++;
		if ((uint64_t)(h - p->img) - x->off >= x->filesz &&   /* not in .text */
		    (size_t)(end - q) > 5 + (only ? strlen(only) : 0) && !memcmp(q, "/src/", 5) &&
		    (!only || !memcmp(q + 5, only, strlen(only)))) {
			memcpy(to, key, kl);
			memcpy(to + 8, "9.99", 4);
			task_add(t, (uint64_t)(h - p->img), to, kl);
		}
		h += kl;
	}
	assert_true(t->npt > 0);
}

static void nop_site(struct task *t, const struct prog *p, uint64_t va, int len)
{
	static const unsigned char nops[8] = { 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90 };

	task_add(t, off_of(p, va), nops, (size_t)len);
}

static void test_one_anchor_destroyed(void **state)
{
	struct task t[10];
	struct prog p;
	struct evidence ev;
	const tt_rustls_syms *want;
	size_t n = 0, i;
	uint64_t va;
	int size;

	(void)state;
	NEED_PROGRAM();
	want = first_answer();
	prog_open(T.bins[0], &p);
	gather(&p, want, &ev);
	memset(t, 0, sizeof(t));
	print_message("%s, one anchor destroyed in a copy:\n", T.bins[0]);

	/* send, anchor 1: no Location names record_layer.rs any more */
	snprintf(t[n].what, sizeof(t[n].what), "record_layer.rs paths renamed");
	rename_paths(&t[n], &p, "record_layer.rs");
	t[n++].needle = "record_layer.rs";
	/* nothing names a rustls 0.23 source file: not a rustls 0.23 program */
	snprintf(t[n].what, sizeof(t[n].what), "every rustls 0.23 path renamed");
	rename_paths(&t[n], &p, NULL);
	t[n++].needle = NULL;

	/* the calls into send (callers of buffer_plaintext) NOPed */
	snprintf(t[n].what, sizeof(t[n].what), "the %zu calls into send NOPed", ev.send_sites);
	for (i = 0; i < ev.sites.n; i++)
		if (ev.sites.v[i].target == 0)
			nop_site(&t[n], &p, ev.sites.v[i].va, ev.sites.v[i].len);
	t[n].may_stand = 1;   /* see check_refused */
	t[n++].needle = "buffer_plaintext";

	/* send's own transfer to the encryption path (arg0 handed on) NOPed */
	snprintf(t[n].what, sizeof(t[n].what), "send's %d transfer(s) with arg0 NOPed",
		 ev.send_sh.nfwd);
	for (i = 0; i < (size_t)ev.send_sh.nfwd; i++)
		nop_site(&t[n], &p, ev.send_sh.fwd_va[i], ev.send_sh.fwd_len[i]);
	t[n++].needle = "buffer_plaintext";

	/* agreement: start_outgoing_traffic sets the byte after the flag */
	snprintf(t[n].what, sizeof(t[n].what), "the setter's byte +0x%x made +0x%x",
		 want->may_send_off, want->may_send_off + 1);
	for (i = 0; i < ev.nsetters; i++) {
		uint32_t d = want->may_send_off + 1;

		task_add(&t[n], off_of(&p, ev.setter_va[i]), &d, 4);
	}
	t[n++].needle = "start_outgoing_traffic";

	/* recv, anchor 1: one caller no longer a vtable method (slot 3 zeroed) */
	{
		uint64_t c[64], zero = 0, o;
		size_t nc = callers(&p, &ev.sites, 3, want->recv_va, c, 64);
		int l;

		assert_true(nc >= 2);
		snprintf(t[n].what, sizeof(t[n].what), "vtable slot 3 of recv's caller 0x%llx zeroed",
			 (unsigned long long)c[0]);
		for (l = 0; l < p.nload; l++) {
			const struct load *ld = &p.load[l];

			if (!(ld->flags & PF_W))
				continue;
			for (o = (8 - ld->va % 8) % 8; o + 8 <= ld->filesz; o += 8)
				if (q_at(p.img + ld->off + o) == c[0])
					task_add(&t[n], ld->off + o, &zero, 8);
		}
		assert_true(t[n].npt > 0);
		t[n++].needle = "take_received_plaintext";
	}

	/* recv, anchor 2: the element's third qword stored at +0x18 */
	assert_true(stores_triple(&ev.recv_sh, &va, &size));
	assert_int_equal(size, 1);
	snprintf(t[n].what, sizeof(t[n].what), "recv's element store +0x10 made +0x18");
	task_add(&t[n], off_of(&p, va), "\x18", 1);
	t[n++].needle = "take_received_plaintext";

	/* last: a copy put back (every patch is read back when undone, too) */
	snprintf(t[n].what, sizeof(t[n].what), "put back");
	t[n++].whole = 1;
	run_tasks(t, n, p.img, p.size, check_refused);
	for (i = 0; i < n; i++)
		free(t[i].pt);
	free(ev.sites.v);
	prog_close(&p);
}

/* ------------------------------------------------------------------ */
/* Cut and flipped copies                                              */

static size_t ones, sames;

/* Never a crash or a hang (job_finish), and any 1 inside the file. */
static void check_sound(const struct task *t, const struct outcome *o, size_t size)
{
	assert_true(o->r <= 1);
	if (o->r == 1) {
		assert_true(o->s.send < size && o->s.recv < size);
		ones++;
		sames += o->s.send == T.want.send && o->s.recv == T.want.recv;
	} else {
		assert_int_equal(o->s.send, 0);
		assert_int_equal(o->s.recv, 0);
	}
	(void)t;
}

static int cmp_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? 1 : x > y ? -1 : 0;
}

/*
 * The copies cut at lengths, longest first so that each copy is only ever
 * shortened (ftruncate), the two side by side.  Removed after.
 */
static void cuts(const struct prog *p, const tt_rustls_syms *want)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)p->img;
	const struct load *x = &p->load[p->text];
	uint64_t len[32], all_loads = 0;
	size_t n = 0, i, k;
	int l;

	for (l = 0; l < p->nload; l++)
		if (p->load[l].off + p->load[l].filesz > all_loads)
			all_loads = p->load[l].off + p->load[l].filesz;
	/* in the headers */
	len[n++] = 0;
	len[n++] = 1;
	len[n++] = sizeof(Elf64_Ehdr) - 1;
	len[n++] = sizeof(Elf64_Ehdr);
	len[n++] = eh->e_phoff + sizeof(Elf64_Phdr) * 2 + 7;
	len[n++] = eh->e_phoff + sizeof(Elf64_Phdr) * eh->e_phnum;
	len[n++] = 4096;
	/* in the read-only data, in .text, just before (and in) the answers */
	len[n++] = x->off / 2;
	len[n++] = x->off;
	len[n++] = x->off + x->filesz / 2;
	len[n++] = want->recv;
	len[n++] = want->recv + 1;
	len[n++] = want->send;
	len[n++] = want->send + 0x40;
	len[n++] = x->off + x->filesz;
	/* the data, the end */
	for (l = 0; l < p->nload; l++)
		if ((p->load[l].flags & PF_W) && p->load[l].off + p->load[l].filesz > 0)
			len[n++] = p->load[l].off + p->load[l].filesz - 1;
	len[n++] = p->size - 1;
	assert_true(n <= 32);
	qsort(len, n, sizeof(len[0]), cmp_desc);
	print_message("%s cut at %zu lengths:\n", T.bins[0], n);
	copies();
	for (i = 0; i < n; i += 2) {
		struct job j[2];
		struct outcome o[2];
		char what[2][64];

		for (k = 0; k < 2 && i + k < n; k++) {
			assert_int_equal(truncate(T.copy[k], (off_t)len[i + k]), 0);
			snprintf(what[k], sizeof(what[k]), "cut at %llu", (unsigned long long)len[i + k]);
			job_start(&j[k], T.copy[k], what[k]);
		}
		for (k = 0; k < 2 && i + k < n; k++) {
			job_finish(&j[k], &o[k]);
			print_message("  %-14s %d %s%s%.0f ms\n", what[k], o[k].r, o[k].why,
				      o[k].why[0] ? ", " : "", o[k].ms);
			check_sound(NULL, &o[k], len[i + k]);
			/* whole segments: the section headers are not needed */
			if (len[i + k] >= all_loads) {
				assert_int_equal(o[k].r, 1);
				assert_memory_equal(&o[k].s, want, sizeof(*want));
			}
			if (len[i + k] < sizeof(Elf64_Ehdr))
				assert_int_equal(o[k].r, 0);
		}
	}
	for (k = 0; k < 2; k++) {
		unlink(T.copy[k]);
		T.copy[k][0] = '\0';
	}
}

static void test_cut_and_flipped(void **state)
{
	const char *env = getenv("TT_RUSTLS_SEED"), *rounds_env = getenv("TT_RUSTLS_FLIPS");
	unsigned seed = env ? (unsigned)strtoul(env, NULL, 0)
			    : (unsigned)time(NULL) ^ (unsigned)getpid();
	size_t rounds = rounds_env ? strtoul(rounds_env, NULL, 0) : FLIP_ROUNDS, i, k;
	const tt_rustls_syms *want;
	const Elf64_Ehdr *eh;
	struct task *t;
	struct prog p;
	double t0 = now_ms();

	(void)state;
	NEED_PROGRAM();
	want = first_answer();
	prog_open(T.bins[0], &p);
	eh = (const Elf64_Ehdr *)p.img;
	print_message("%s: %zu rounds of %d flips, seed %u (TT_RUSTLS_SEED=%u repeats them, "
		      "TT_RUSTLS_FLIPS=N sets the rounds)\n", T.bins[0], rounds, FLIPS_PER_ROUND,
		      seed, seed);
	t = calloc(rounds ? rounds : 1, sizeof(*t));
	assert_non_null(t);
	ones = sames = 0;
	for (i = 0; i < rounds; i++) {
		/* the ELF and program headers, around send, around recv, all three */
		static const char *const where[] = { "headers", "send", "recv", "mixed" };
		size_t kind = i % 4;

		snprintf(t[i].what, sizeof(t[i].what), "flips %zu (%s)", i, where[kind]);
		for (k = 0; k < FLIPS_PER_ROUND; k++) {
			size_t z = kind == 3 ? k % 3 : kind;
			uint64_t base = z == 0 ? 0 : z == 1 ? want->send - 0x800 : want->recv - 0x800;
			uint64_t span = z == 0 ? eh->e_phoff + sizeof(Elf64_Phdr) * eh->e_phnum : 0x1000;
			uint64_t at = base + (uint64_t)rand_r(&seed) % span;
			unsigned char b = p.img[at] ^ (unsigned char)(1 + rand_r(&seed) % 255);

			task_add(&t[i], at, &b, 1);
		}
	}
	run_tasks(t, rounds, p.img, p.size, check_sound);
	print_message("  %zu flipped copies: %zu answered 1 (%zu with the original offsets), "
		      "the rest 0 or an error\n", rounds, ones, sames);
	for (i = 0; i < rounds; i++)
		free(t[i].pt);
	free(t);
	cuts(&p, want);
	print_message("  cuts and flips: %.1f s\n", (now_ms() - t0) / 1e3);
	prog_close(&p);
}

/* ------------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void test_time(void **state)
{
	double ms[3];

	(void)state;
	NEED_PROGRAM();
	first_answer();
	memcpy(ms, T.ms, sizeof(ms));
	qsort(ms, 3, sizeof(ms[0]), cmp_double);
	print_message("%s: tt_rustlsfind %.0f ms (median of %.0f, %.0f, %.0f; page cache warm, "
		      "this build's sanitizers included)\n", T.bins[0], ms[1], T.ms[0], T.ms[1],
		      T.ms[2]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_not_rustls),
		cmocka_unit_test(test_real_programs),
		cmocka_unit_test(test_one_anchor_destroyed),
		cmocka_unit_test(test_cut_and_flipped),
		cmocka_unit_test(test_time),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
