/*
 * bsslfind.c - SSL_write, SSL_read and the SSL destructor of a BoringSSL
 * linked into a program without its symbols (Bun, and what Bun compiles:
 * Claude Code's native build), found from the code and checked by two
 * independent anchors that must agree.  No offset, hash or byte pattern
 * of any release is written here.
 *
 * Anchor 1, what BoringSSL says about itself: its error sites.
 * OPENSSL_PUT_ERROR(SSL, reason) is ERR_put_error(ERR_LIB_SSL, 0, reason,
 * __FILE__, __LINE__): rcx gets the address of the "…/ssl/ssl_lib.cc"
 * string, edi 16, edx the reason.  Reason codes are ABI (include/openssl/
 * ssl.h, err.h) and stay; line numbers move and are not used.  A site is
 * read where the name is loaded, or, when the compiler keeps the name in
 * a register or shares one call between sites, from the values a walk
 * of the function carries to the call.  In ssl/ssl_lib.cc:
 *   SSL_write  reports SSL_R_UNINITIALIZED, SSL_R_SSL_HANDSHAKE_FAILURE and
 *              SSL_R_BAD_LENGTH, the only function to report the last;
 *   SSL_read   (SSL_peek inlined) reports ERR_R_SHOULD_NOT_HAVE_BEEN_CALLED
 *              and no reason off the read path, and its read path (itself
 *              or ssl_read_impl, which it calls) UNINITIALIZED and
 *              SSL_HANDSHAKE_FAILURE;
 *   SSL_new    reports SSL_R_NULL_SSL_CTX; failing after its allocation it
 *              destroys the object it would have returned, then frees it:
 *              the first call on that pointer is the SSL destructor.
 *
 * Anchor 2, what the code does, with no string: who calls it, and where
 * its arguments go.
 *   - Callers: a function begins where direct calls land (two call sites,
 *     or one and int3 padding before it); the program calls SSL_write and
 *     SSL_read so, and hands their result as second argument to one same
 *     function (SSL_get_error(ssl, ret)).
 *   - Data flow: SSL_write gives (ssl, ..., buf, num) to an indirect call
 *     through the table at *ssl (ssl->method->write_app_data) and never
 *     writes into buf; SSL_read writes into buf (memcpy, inlined or not)
 *     or hands (ssl, buf, num) on, and never gives buf to ssl->method.
 *     The destructor first frees the ex_data (a call with a static object
 *     and ssl or &ssl->ex_data), and calls through the same table with
 *     ssl alone (method->ssl_free(ssl)) at a slot before write_app_data's.
 *
 * The answer is 1 when one function passes both for SSL_write and one for
 * SSL_read: the error sites lie on its paths from the entry its callers
 * use, and its callers and data flow are those of the function the sites
 * name.  0 when the file names no ssl_lib.cc (no BoringSSL; most programs
 * are turned away after a look at their read-only data).  TT_ENOTSUP,
 * with the anchor that failed in why, when the name is there but an
 * anchor fails or they disagree: how a release that changed the code is
 * noticed, instead of an offset that points elsewhere.  TT_EIO, TT_ENOMEM.
 *
 * The destructor, not SSL_free: with link-time optimisation Bun inlines
 * SSL_free (Delete(ssl): ~ssl_st(), then OPENSSL_free) into each caller,
 * and no SSL_free is left to probe; every SSL object still goes through
 * the destructor, whose first argument is the SSL *.  It is optional:
 * when its anchors do not both hold, free is 0 and read and write stand.
 * BoringSSL has no SSL_write_ex/SSL_read_ex: those stay 0.
 *
 * Cost (Claude Code 2.1.332, 400 MB: 70-200 ms; bun 1.4.5, 107 MB: 45-110
 * ms).  One pass over .text through a 256 KB buffer: references to the
 * name and every direct call.  (In a VM, faulting in each page of a 130
 * MB mapping costs more than the kernel's copy.)  Then a dozen functions
 * walked, a few thousand instructions.  Everything decoded is bounded
 * (TOTAL_BUDGET, MAX_FNS): a hostile file costs at most a few hundred
 * milliseconds and an answer, never a crash.
 */
#include <capstone/capstone.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "elfimg.h"
#include "tlsfind.h"
#include "tokentap/error.h"

/* include/openssl/err.h and ssl.h: part of BoringSSL's ABI. */
#define LIB_SSL                  16  /* ERR_LIB_SSL */
#define R_SHOULD_NOT_BE_CALLED   66  /* ERR_R_SHOULD_NOT_HAVE_BEEN_CALLED */
#define R_BAD_LENGTH            111  /* SSL_R_BAD_LENGTH */
#define R_NULL_SSL_CTX          185  /* SSL_R_NULL_SSL_CTX */
#define R_HANDSHAKE_FAILURE     215  /* SSL_R_SSL_HANDSHAKE_FAILURE */
#define R_UNINITIALIZED         226  /* SSL_R_UNINITIALIZED */

#define FILE_NAME     "ssl/ssl_lib.cc"
#define MAX_NAMES     4          /* copies of the string */
#define MAX_SITES     1024       /* references to it */
#define MAX_ALLCALLS  (1u << 23) /* direct calls in .text, 8 bytes each */
#define WIN           (32u << 10) /* a function begins at most this far before its error site */
#define SPAN          (64u << 10) /* and spans at most this */
#define MAX_FNS       256        /* functions walked */
#define MAX_CALLEES   256        /* calls kept per function */
#define ENTRIES_TRIED 16         /* entries tried per error site */
#define FN_BUDGET     20000      /* instructions per function */
#define CALLER_SITES  16         /* call sites looked at per function */
#define CALLER_REACH  8192       /* bytes around a call site its walk may go */
#define CALLER_BUDGET 256        /* instructions per call site */
#define TOTAL_BUDGET  400000     /* instructions per file */
#define WORK          1024       /* pending branches of a walk */
#define NSLOT         4          /* stack slots a walk follows */
#define CHUNK         (256u << 10)
#define CHUNK_PAD     16u        /* >= the longest pattern looked for */

#ifdef BSSL_TRACE
#define TRACE(...) fprintf(stderr, "bsslfind: " __VA_ARGS__)
#else
#define TRACE(...) do { } while (0)
#endif

/* ------------------------------------------------------------------ */
/* What is known of the file                                           */

struct site {
	uint64_t ref;    /* the four bytes that give the file name's address */
	uint8_t starts;  /* bit k-1: an instruction at ref - k loads it */
	int reason;      /* read where it is loaded; -1: on the paths through it */
};

struct xcall {
	uint64_t from, to;
};

/* What a register holds, as far as a walk can tell. */
enum val {
	V_NONE = 0,
	V_SSL,     /* the function's first argument */
	V_BUF,     /* its second */
	V_NUM,     /* its third */
	V_METHOD,  /* *ssl: the method table */
	V_FIELD,   /* &ssl->something */
	V_ADDR,    /* a fixed address: a static object */
	V_NAME,    /* the file name's address */
	V_CONST,   /* a small constant, in k[] */
	V_RES,     /* a call's result (a caller's walk) */
};

struct state {
	uint8_t v[16];            /* enum val of each register */
	int32_t k[16];            /* its value if V_CONST */
	int8_t from[16];          /* the register it was copied from (mov r64, r64), -1 */
	struct {
		int8_t base;      /* RSP or RBP; -1: unused */
		int64_t disp;
		uint8_t v;
	} slot[NSLOT];            /* values spilled to the stack */
};

struct witem {
	uint64_t va;
	struct state st;
};

/* A call as a function's walk saw it. */
struct callsite {
	uint64_t to;              /* 0: indirect */
	int64_t slot;             /* call [method + slot]; -1 otherwise */
	uint8_t arg[6];           /* rdi, rsi, rdx, rcx, r8, r9 */
	int8_t rdi_from;          /* register copied to rdi since the last call, -1 */
};

struct fn {
	uint64_t entry, hi;
	int into_buf;             /* it writes into buf (a copy, a store) */
	uint8_t *seen;            /* instruction starts on its paths, over [entry, hi) */
	struct callsite calls[MAX_CALLEES];
	size_t ncalls;
	uint32_t rets;            /* registers copied to rax before a ret */
	uint8_t reason[4096 / 8]; /* reasons of its own error sites */
};

struct bss {
	const tt_elfimg *im;      /* the file */
	const uint8_t *text;      /* .text in the image */
	uint64_t toff;            /* its file offset */
	uint64_t tva, tend;       /* its addresses */
	int pie;                  /* ET_DYN: no absolute addresses in code */
	uint64_t name[MAX_NAMES]; /* addresses of the file name */
	size_t nname;
	struct site *sites;
	size_t nsites;
	struct xcall *calls;      /* direct calls into the windows, by target */
	size_t ncalls, capcalls;
	struct fn *fns[MAX_FNS];
	size_t nfns;
	uint8_t *buf;             /* CHUNK + CHUNK_PAD */
	struct witem *work;       /* WORK */
	csh cs;
	cs_insn *in;              /* the instruction decode() decoded */
	size_t budget;            /* instructions left to decode */
	char *why;
	size_t cap;
};

static int whyf(struct bss *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* A negative answer and its reason, for the probe's log. */
static int whyf(struct bss *b, const char *fmt, ...)
{
	va_list ap;

	if (b->why && b->cap) {
		va_start(ap, fmt);
		vsnprintf(b->why, b->cap, fmt, ap);
		va_end(ap);
	}
	return TT_ENOTSUP;
}

/* The file offset of a .text address. */
static uint64_t text_off(const struct bss *b, uint64_t va)
{
	return b->toff + (va - b->tva);
}

/* ------------------------------------------------------------------ */
/* Reading a range of the file in chunks                               */

struct chunk {
	const uint8_t *p;   /* its bytes, from address va */
	size_t n;           /* what starts in [0, n) belongs to it */
	size_t len;         /* bytes readable: n + up to CHUNK_PAD */
	uint64_t va;
};

/*
 * The next chunk of the file range [off, off + size) whose first byte is
 * at address va; c->p is NULL before the first.  Returns 1, 0 at the end,
 * or TT_EIO.
 */
static int next_chunk(struct bss *b, struct chunk *c, uint64_t off, uint64_t size,
		      uint64_t va)
{
	uint64_t at = c->p ? c->va + c->n - va : 0;
	size_t len;

	if (at >= size)
		return 0;
	len = size - at > CHUNK + CHUNK_PAD ? CHUNK + CHUNK_PAD : (size_t)(size - at);
	c->p = tt_elfimg_read(b->im, off + at, len, b->buf);
	if (!c->p)
		return TT_EIO;
	c->va = va + at;
	c->len = len;
	c->n = len > CHUNK ? CHUNK : len;
	return 1;
}

static int next_text(struct bss *b, struct chunk *c)
{
	return next_chunk(b, c, b->toff, b->tend - b->tva, b->tva);
}

/* ------------------------------------------------------------------ */
/* The ELF file: .text and where the file name is                       */

static int path_char(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '/' || c == '.' || c == '_' || c == '-' || c == '+' || c == '~' || c == '@';
}

/*
 * The string that ends with the name found at 'at' of a section, once,
 * if it is a path (__FILE__), not a message that mentions the name.
 */
static void name_at(struct bss *b, const Elf64_Shdr *sh, uint64_t at)
{
	const uint8_t *s = b->im->p + sh->sh_offset, *p = s + at, *q;
	uint64_t va;
	size_t k;

	for (q = p; q > s && q[-1] != '\0' && p - q < 4096; q--)
		if (!path_char(q[-1]))
			return;
	va = sh->sh_addr + (uint64_t)(q - s);
	for (k = 0; k < b->nname && b->name[k] != va; k++)
		;
	if (k == b->nname && b->nname < MAX_NAMES)
		b->name[b->nname++] = va;
}

/*
 * Is "ssl/ssl_lib.cc" and its NUL at p (15 bytes)?  Compared as two
 * numbers, so that the string is not in this program's own read-only
 * data: tokentap-probe would take itself for a BoringSSL.
 */
static int is_file_name(const uint8_t *p)
{
	uint64_t a, c;

	memcpy(&a, p, 8);
	memcpy(&c, p + 7, 8);
	return a == 0x5f6c73732f6c7373ull &&    /* "ssl/ssl_" */
	       c == 0x0063632e62696c5full;       /* "_lib.cc\0" */
}

/* Look for the file name in one read-only section. */
static int names_in(struct bss *b, const Elf64_Shdr *sh)
{
	enum { LEN = 15, US = 7 };   /* the name with its NUL; where its '_' is */
	struct chunk c = { 0 };
	int r = 0;

	while (b->nname < MAX_NAMES &&
	       (r = next_chunk(b, &c, sh->sh_offset, sh->sh_size, sh->sh_addr)) > 0) {
		const uint8_t *p, *e = c.p + c.len;
		const uint8_t *lim = c.p + (c.n + US < c.len ? c.n + US : c.len);

		/* memchr on the '_' is 20 times faster than memmem here */
		for (p = c.p + US; p < lim; p++) {
			p = memchr(p, '_', (size_t)(lim - p));
			if (!p)
				break;
			if (e - (p - US) >= LEN && is_file_name(p - US))
				name_at(b, sh, c.va - sh->sh_addr + (uint64_t)(p - US - c.p));
		}
	}
	return r < 0 ? r : 0;
}

/*
 * .text and the file name's addresses.  Returns 1; 0 when this is no
 * 64-bit ELF file or has no "ssl/ssl_lib.cc" in its read-only data (no
 * BoringSSL: the fast way out); TT_ENOTSUP when the name is there but the
 * code cannot be read (not x86-64, no .text); TT_EIO.
 */
static int layout(struct bss *b)
{
	const tt_elfimg *im = b->im;
	Elf64_Shdr sh;
	unsigned i;
	int r;

	if (!im->elf || !im->shnum)
		return 0;
	for (i = 0; b->nname < MAX_NAMES && tt_elfimg_shdr(im, i, &sh) == 0; i++) {
		if (sh.sh_type == SHT_PROGBITS &&
		    (sh.sh_flags & (SHF_ALLOC | SHF_EXECINSTR | SHF_WRITE)) == SHF_ALLOC &&
		    tt_elfimg_section_data(im, &sh) && (r = names_in(b, &sh)) < 0)
			return r;
	}
	if (b->nname == 0)
		return 0;
	if (im->eh.e_machine != EM_X86_64)
		return whyf(b, "BoringSSL's " FILE_NAME " is named, but only x86-64 "
			    "code is read (e_machine %u)", im->eh.e_machine);
	b->pie = im->eh.e_type == ET_DYN;

	if (!tt_elfimg_section(im, ".text", &sh) || sh.sh_type != SHT_PROGBITS ||
	    !(sh.sh_flags & SHF_EXECINSTR))
		return whyf(b, "BoringSSL's " FILE_NAME " is named, but the file has no .text");
	b->text = tt_elfimg_section_data(im, &sh);
	if (!b->text || sh.sh_size < 16 || sh.sh_size > UINT32_MAX ||
	    sh.sh_addr > UINT64_MAX - sh.sh_size)
		return whyf(b, "BoringSSL's " FILE_NAME " is named, but .text is "
			    "outside the file or not 16 B to 4 GiB");
	b->toff = sh.sh_offset;
	b->tva = sh.sh_addr;
	b->tend = sh.sh_addr + sh.sh_size;
	return 1;
}

/* ------------------------------------------------------------------ */
/* One instruction                                                     */

/* Decode the instruction at va into b->in; 0 if none (or out of budget). */
static int decode(struct bss *b, uint64_t va)
{
	const uint8_t *code;
	size_t n;
	uint64_t addr = va;

	if (va < b->tva || va >= b->tend || b->budget == 0)
		return 0;
	b->budget--;
	code = b->text + (va - b->tva);
	n = b->tend - va > 16 ? 16 : (size_t)(b->tend - va);
	return cs_disasm_iter(b->cs, &code, &n, &addr, b->in) ? 1 : 0;
}

/* 0..15 for a general register of any width, -1 for any other. */
static int gpr(unsigned r)
{
	static const unsigned regs[16][5] = {
		{ X86_REG_RAX, X86_REG_EAX, X86_REG_AX, X86_REG_AL, X86_REG_AH },
		{ X86_REG_RCX, X86_REG_ECX, X86_REG_CX, X86_REG_CL, X86_REG_CH },
		{ X86_REG_RDX, X86_REG_EDX, X86_REG_DX, X86_REG_DL, X86_REG_DH },
		{ X86_REG_RBX, X86_REG_EBX, X86_REG_BX, X86_REG_BL, X86_REG_BH },
		{ X86_REG_RSP, X86_REG_ESP, X86_REG_SP, X86_REG_SPL, X86_REG_SPL },
		{ X86_REG_RBP, X86_REG_EBP, X86_REG_BP, X86_REG_BPL, X86_REG_BPL },
		{ X86_REG_RSI, X86_REG_ESI, X86_REG_SI, X86_REG_SIL, X86_REG_SIL },
		{ X86_REG_RDI, X86_REG_EDI, X86_REG_DI, X86_REG_DIL, X86_REG_DIL },
		{ X86_REG_R8, X86_REG_R8D, X86_REG_R8W, X86_REG_R8B, X86_REG_R8B },
		{ X86_REG_R9, X86_REG_R9D, X86_REG_R9W, X86_REG_R9B, X86_REG_R9B },
		{ X86_REG_R10, X86_REG_R10D, X86_REG_R10W, X86_REG_R10B, X86_REG_R10B },
		{ X86_REG_R11, X86_REG_R11D, X86_REG_R11W, X86_REG_R11B, X86_REG_R11B },
		{ X86_REG_R12, X86_REG_R12D, X86_REG_R12W, X86_REG_R12B, X86_REG_R12B },
		{ X86_REG_R13, X86_REG_R13D, X86_REG_R13W, X86_REG_R13B, X86_REG_R13B },
		{ X86_REG_R14, X86_REG_R14D, X86_REG_R14W, X86_REG_R14B, X86_REG_R14B },
		{ X86_REG_R15, X86_REG_R15D, X86_REG_R15W, X86_REG_R15B, X86_REG_R15B },
	};
	int i, k;

	if (r == X86_REG_INVALID)
		return -1;
	for (i = 0; i < 16; i++)
		for (k = 0; k < 5; k++)
			if (regs[i][k] == r)
				return i;
	return -1;
}

enum { RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9 };

/* What a call leaves alone (System V AMD64): rbx, rsp, rbp, r12-r15. */
#define CALLEE_SAVED ((1u << RBX) | (1u << RSP) | (1u << RBP) | (0xfu << 12))

enum flow { F_NEXT, F_STOP, F_JMP, F_JCC, F_CALL };

static enum flow flow_of(struct bss *b, const cs_insn *in)
{
	switch (in->id) {
	case X86_INS_RET: case X86_INS_RETF: case X86_INS_RETFQ:
	case X86_INS_IRET: case X86_INS_IRETD: case X86_INS_IRETQ:
	case X86_INS_INT3: case X86_INS_UD2: case X86_INS_HLT:
	case X86_INS_LJMP: case X86_INS_SYSRET: case X86_INS_SYSEXIT:
		return F_STOP;
	case X86_INS_JMP:
		return F_JMP;
	case X86_INS_CALL: case X86_INS_LCALL:
		return F_CALL;
	default:
		break;
	}
	if (cs_insn_group(b->cs, in, CS_GRP_JUMP))
		return F_JCC;
	if (cs_insn_group(b->cs, in, CS_GRP_INT) || cs_insn_group(b->cs, in, CS_GRP_IRET))
		return F_STOP;
	return F_NEXT;
}

/* The target of a direct jump or call, 0 for an indirect one. */
static uint64_t direct_target(const cs_insn *in)
{
	const cs_x86 *x = &in->detail->x86;

	if (x->op_count == 1 && x->operands[0].type == X86_OP_IMM)
		return (uint64_t)x->operands[0].imm;
	return 0;
}

/* The register written by a two-operand instruction, -1. */
static int dest_reg(const cs_insn *in)
{
	const cs_x86 *x = &in->detail->x86;

	if (x->op_count != 2 || x->operands[0].type != X86_OP_REG)
		return -1;
	return gpr(x->operands[0].reg);
}

/* ------------------------------------------------------------------ */
/* The pass over .text: references to the name, direct calls          */

static int is_name(const struct bss *b, uint64_t va)
{
	size_t k;

	for (k = 0; k < b->nname; k++)
		if (b->name[k] == va)
			return 1;
	return 0;
}

/* Absolute 32-bit references to va in a chunk, by memchr on a rare byte of it. */
static size_t refs_abs(const struct chunk *c, uint64_t va, uint64_t *refs, size_t n)
{
	const uint8_t *t = c->p, *p, *lim;
	uint8_t want[4];
	unsigned k = 2, j;

	if (va > UINT32_MAX)
		return n;
	for (j = 0; j < 4; j++)
		want[j] = (uint8_t)(va >> (8 * j));
	for (j = 0; j < 4; j++)         /* 0x00 and 0xff are everywhere in code */
		if (want[(6 - j) % 4] != 0 && want[(6 - j) % 4] != 0xff) {
			k = (6 - j) % 4;
			break;
		}
	lim = c->n + k < c->len ? t + c->n + k : t + c->len;
	for (p = t + k; p < lim && n < MAX_SITES; p++) {
		p = memchr(p, want[k], (size_t)(lim - p));
		if (!p)
			break;
		if (p - k + 4 <= t + c->len && memcmp(p - k, want, 4) == 0)
			refs[n++] = c->va + (uint64_t)(p - k - t);
	}
	return n;
}

/* RIP-relative references in a chunk: [REX] 8d modrm(00 reg 101) disp32. */
static size_t refs_rip(const struct bss *b, const struct chunk *c, uint64_t *refs, size_t n)
{
	const uint8_t *t = c->p, *p, *e = t + c->n;

	for (p = t; p < e && n < MAX_SITES; p++) {
		uint64_t at;

		p = memchr(p, 0x8d, (size_t)(e - p));
		if (!p)
			break;
		if (p + 6 > t + c->len || (p[1] & 0xc7) != 0x05)
			continue;
		at = c->va + (uint64_t)(p - t) + 6 + (uint64_t)(int64_t)(int32_t)tt_elfimg_le32(p + 2);
		if (is_name(b, at))
			refs[n++] = c->va + (uint64_t)(p - t) + 2;
	}
	return n;
}

/*
 * fn(ctx, i) for each i in [0, n) where t[i] == x, in order, until fn
 * returns nonzero (returned).  A call opcode is one byte in 70 of code:
 * memchr's cost per match would dominate, so SSE2 compares 16 at a time.
 */
static int each_byte(const uint8_t *t, size_t n, uint8_t x,
		     int (*fn)(void *ctx, size_t i), void *ctx)
{
	size_t i = 0;
	int r;

#ifdef __SSE2__
	const __m128i want = _mm_set1_epi8((char)x);

	for (; i + 16 <= n; i += 16) {
		unsigned m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(
			_mm_loadu_si128((const __m128i *)(const void *)(t + i)), want));

		for (; m; m &= m - 1)
			if ((r = fn(ctx, i + (unsigned)__builtin_ctz(m))) != 0)
				return r;
	}
#endif
	for (; i < n; i++)
		if (t[i] == x && (r = fn(ctx, i)) != 0)
			return r;
	return 0;
}

/* Every direct call into .text: (from, to) - .text's address. */
struct allcalls {
	struct bss *b;
	const struct chunk *c;
	uint32_t *v;
	size_t n, cap;
};

/* An E8 byte at i of the chunk: keep it if its rel32 lands in .text. */
static int one_call(void *ctx, size_t i)
{
	struct allcalls *a = ctx;
	const struct chunk *c = a->c;
	uint64_t from, to;

	if (i + 5 > c->len)
		return 0;
	from = c->va + i;
	to = from + 5 + (uint64_t)(int64_t)(int32_t)tt_elfimg_le32(c->p + i + 1);
	if (to < a->b->tva || to >= a->b->tend)
		return 0;
	if (a->n == a->cap) {
		/* a call into .text is one byte in 90 of code: 1/64 is room
		 * for most at once, made in one go (MAP_POPULATE: a fault
		 * per page costs more than the call records themselves) */
		size_t nc = a->cap ? a->cap * 2 : (size_t)((a->b->tend - a->b->tva) / 64) + 4096;
		void *nv;

		if (a->cap == MAX_ALLCALLS)
			return whyf(a->b, "more than %u direct calls in .text", MAX_ALLCALLS);
		if (nc > MAX_ALLCALLS)
			nc = MAX_ALLCALLS;
		nv = a->cap ? mremap(a->v, a->cap * 8, nc * 8, MREMAP_MAYMOVE) :
			      mmap(NULL, nc * 8, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		if (nv == MAP_FAILED)
			return TT_ENOMEM;
		a->v = nv;
		a->cap = nc;
	}
	a->v[2 * a->n] = (uint32_t)(from - a->b->tva);
	a->v[2 * a->n + 1] = (uint32_t)(to - a->b->tva);
	a->n++;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Anchor 1: the error sites                                           */

/*
 * Where the instruction whose last four bytes, at ref, load the file
 * name's address into a register (mov r32, imm32; lea r64, [rip+disp32];
 * lea r64, [disp32]) may begin: bit k-1 for ref - k.  More than one can
 * decode so (a prefix-like byte before it); the walks of the code tell
 * which one is an instruction.
 */
static uint8_t name_load_at(struct bss *b, uint64_t ref)
{
	uint8_t starts = 0;
	unsigned k;

	for (k = 1; k <= 4 && ref - k >= b->tva; k++) {
		const cs_x86_op *s;
		uint64_t v;

		if (!decode(b, ref - k) || b->in->size != k + 4 || dest_reg(b->in) < 0)
			continue;
		s = &b->in->detail->x86.operands[1];
		if (b->in->id == X86_INS_MOV && s->type == X86_OP_IMM)
			v = (uint64_t)s->imm;
		else if (b->in->id == X86_INS_LEA && s->type == X86_OP_MEM &&
			 s->mem.index == X86_REG_INVALID && s->mem.base == X86_REG_RIP)
			v = ref + 4 + (uint64_t)s->mem.disp;
		else if (b->in->id == X86_INS_LEA && s->type == X86_OP_MEM &&
			 s->mem.index == X86_REG_INVALID && s->mem.base == X86_REG_INVALID)
			v = (uint64_t)s->mem.disp;
		else
			continue;
		if (is_name(b, v))
			starts |= (uint8_t)(1u << (k - 1));
	}
	return starts;
}

/* edi (library) and edx (reason) set by b->in; -1 once anything else writes them. */
static void note_arg(struct bss *b, int *lib, int *reason)
{
	const cs_x86 *x = &b->in->detail->x86;
	int r = dest_reg(b->in), v = -1;

	if (r != RDI && r != RDX)
		return;
	if (b->in->id == X86_INS_MOV && x->operands[1].type == X86_OP_IMM &&
	    x->operands[1].imm >= 0 && x->operands[1].imm < 4096)
		v = (int)x->operands[1].imm;
	if (r == RDI && *lib == -2)
		*lib = v;
	if (r == RDX && *reason == -2)
		*reason = v;
}

/*
 * The library and reason of the error site whose name load is at start:
 * what is set up around it.  Forward to the call (through one jump, to a
 * call the sites share); backward, for what the compiler put before the
 * name, over the instructions that set up constant arguments (mov r32,
 * imm32; xor r32, r32).  -1 where unknown.
 */
static void site_args(struct bss *b, uint64_t start, int *lib, int *reason)
{
	static const unsigned lens[] = { 5, 6, 2, 3 };
	uint64_t va;
	int n, jumps = 0;

	*lib = *reason = -2;
	va = decode(b, start) ? start + b->in->size : 0;
	for (n = 0; va && n < 12 && decode(b, va); n++) {
		enum flow f = flow_of(b, b->in);

		if (f == F_JMP && jumps++ == 0 && direct_target(b->in)) {
			va = direct_target(b->in);
			continue;
		}
		if (f != F_NEXT)
			break;
		note_arg(b, lib, reason);
		va += b->in->size;
	}
	va = start;
	for (n = 0; n < 6 && (*lib == -2 || *reason == -2); n++) {
		unsigned k;

		for (k = 0; k < 4; k++) {
			const cs_x86 *x;

			if (va - lens[k] < b->tva || !decode(b, va - lens[k]) ||
			    b->in->size != lens[k] || dest_reg(b->in) < 0)
				continue;
			x = &b->in->detail->x86;
			if ((b->in->id == X86_INS_MOV && x->operands[1].type == X86_OP_IMM) ||
			    (b->in->id == X86_INS_XOR && x->operands[1].type == X86_OP_REG &&
			     x->operands[1].reg == x->operands[0].reg))
				break;
		}
		if (k == 4)
			break;
		note_arg(b, lib, reason);
		va -= b->in->size;
	}
	if (*lib == -2)
		*lib = -1;
	if (*reason == -2)
		*reason = -1;
}

/*
 * The one pass over .text: references to the file name and every direct
 * call.  Position-dependent code loads the name's address as an immediate
 * (mov ecx, imm32), position-independent code with a RIP-relative lea,
 * looked for in a second pass (references only) if the first finds no
 * error site.  Then each reference is decoded as an error site.
 */
static int find_sites(struct bss *b, struct allcalls *all)
{
	uint64_t refs[MAX_SITES];
	size_t nrefs, i, k;
	int pass;

	b->sites = calloc(MAX_SITES, sizeof(*b->sites));
	if (!b->sites)
		return TT_ENOMEM;
	for (pass = 0; pass < 2 && b->nsites == 0; pass++) {
		struct chunk c = { 0 };
		int rip = pass == 1 || b->pie, r;

		if (pass == 1 && b->pie)
			break;
		nrefs = 0;
		all->c = &c;
		while ((r = next_text(b, &c)) > 0) {
			for (k = 0; !rip && k < b->nname; k++)
				nrefs = refs_abs(&c, b->name[k], refs, nrefs);
			if (rip)
				nrefs = refs_rip(b, &c, refs, nrefs);
			if (pass == 0 && (r = each_byte(c.p, c.n, 0xe8, one_call, all)) != 0)
				break;
		}
		if (r < 0)
			return r;
		if (nrefs == MAX_SITES)
			return whyf(b, "more than %d references to " FILE_NAME " in .text",
				    MAX_SITES);
		for (i = 0; i < nrefs; i++) {
			uint8_t starts = name_load_at(b, refs[i]);
			int lib = -1, reason = -1;

			/* a load into rcx: ERR_put_error's file, read here;
			 * else (held in a register for later) on the paths */
			for (k = 1; k <= 4 && (lib != LIB_SSL || reason < 0); k++)
				if ((starts & (1u << (k - 1))) && decode(b, refs[i] - k) &&
				    dest_reg(b->in) == RCX)
					site_args(b, refs[i] - k, &lib, &reason);
			if (!starts)
				continue;
			if (lib != LIB_SSL)
				reason = -1;
			b->sites[b->nsites].ref = refs[i];
			b->sites[b->nsites].starts = starts;
			b->sites[b->nsites].reason = reason;
			b->nsites++;
		}
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* The calls that land just before error sites                          */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_call(const void *a, const void *b)
{
	const struct xcall *x = a, *y = b;

	if (x->to != y->to)
		return x->to < y->to ? -1 : 1;
	return x->from < y->from ? -1 : x->from > y->from;
}

static int add_call(struct bss *b, uint64_t from, uint64_t to)
{
	if (b->ncalls == b->capcalls) {
		size_t nc = b->capcalls ? b->capcalls * 2 : 4096;
		struct xcall *nv = realloc(b->calls, nc * sizeof(*nv));

		if (!nv)
			return TT_ENOMEM;
		b->calls = nv;
		b->capcalls = nc;
	}
	b->calls[b->ncalls].from = from;
	b->calls[b->ncalls].to = to;
	b->ncalls++;
	return 0;
}

/*
 * Of all direct calls, those whose target lies in a window [site - WIN,
 * site] before some error site, sorted by target.  Some are E8 bytes
 * inside other instructions: nothing is made of one such call alone.
 */
static int find_calls(struct bss *b, const struct allcalls *all)
{
	uint64_t *lo = calloc(b->nsites + 1, sizeof(*lo));
	uint64_t *hi = calloc(b->nsites + 1, sizeof(*hi));
	uint8_t *page = calloc((size_t)((b->tend - b->tva) >> 15) + 1, 1);
	size_t nw = 0, i;
	int r = 0;

	if (!lo || !hi || !page) {
		r = TT_ENOMEM;
		goto out;
	}
	for (i = 0; i < b->nsites; i++)
		lo[i] = b->sites[i].ref;
	qsort(lo, b->nsites, sizeof(*lo), cmp_u64);
	for (i = 0; i < b->nsites; i++) {   /* merged windows; their pages */
		uint64_t s = lo[i], a = s - b->tva > WIN ? s - WIN : b->tva, pg;

		if (nw && a <= hi[nw - 1]) {
			hi[nw - 1] = s;
		} else {
			lo[nw] = a;
			hi[nw++] = s;
		}
		for (pg = (a - b->tva) >> 12; pg <= (s - b->tva) >> 12; pg++)
			page[pg / 8] |= (uint8_t)(1u << (pg % 8));
	}
	for (i = 0; i < all->n && nw && r == 0; i++) {
		uint64_t to = b->tva + all->v[2 * i + 1], pg = all->v[2 * i + 1] >> 12;
		size_t l = 0, h = nw;

		if (!((page[pg / 8] >> (pg % 8)) & 1))
			continue;
		while (l < h) {                  /* the last window starting <= to */
			size_t m = (l + h) / 2;

			if (lo[m] <= to)
				l = m + 1;
			else
				h = m;
		}
		if (l > 0 && to <= hi[l - 1])
			r = add_call(b, b->tva + all->v[2 * i], to);
	}
	if (r == 0)
		qsort(b->calls, b->ncalls, sizeof(*b->calls), cmp_call);
out:
	free(lo);
	free(hi);
	free(page);
	return r;
}

/* Index of the first call to 'to', and how many there are. */
static size_t calls_to(const struct bss *b, uint64_t to, size_t *count)
{
	size_t l = 0, h = b->ncalls, i;

	while (l < h) {
		size_t m = (l + h) / 2;

		if (b->calls[m].to < to)
			l = m + 1;
		else
			h = m;
	}
	for (i = l; i < b->ncalls && b->calls[i].to == to; i++)
		;
	*count = i - l;
	return l;
}

/*
 * Does a function begin at va, by its callers?  Called from two places
 * (one E8 byte can be chance, two at one address are not), or from one
 * and laid out as functions are: 16-byte aligned after int3 padding.
 */
static int is_entry(const struct bss *b, uint64_t va)
{
	size_t n;

	calls_to(b, va, &n);
	if (n >= 2)
		return 1;
	return n == 1 && va % 16 == 0 && va > b->tva && va < b->tend &&
	       b->text[va - b->tva - 1] == 0xcc;
}

/* ------------------------------------------------------------------ */
/* Walking code                                                        */

static void state_init(struct state *st)
{
	int i;

	memset(st, 0, sizeof(*st));
	for (i = 0; i < 16; i++)
		st->from[i] = -1;
	for (i = 0; i < NSLOT; i++)
		st->slot[i].base = -1;
}

/* Does a 32-bit copy keep the value: an integer, or a non-PIE address? */
static int fits32(uint8_t v)
{
	return v == V_NUM || v == V_RES || v == V_CONST || v == V_NAME || v == V_ADDR;
}

static int slot_find(const struct state *st, int base, int64_t disp)
{
	int i;

	for (i = 0; i < NSLOT; i++)
		if (st->slot[i].base == base && st->slot[i].disp == disp)
			return i;
	return -1;
}

static void slot_set(struct state *st, int base, int64_t disp, uint8_t v)
{
	int i = slot_find(st, base, disp);

	if (i < 0) {
		if (v == V_NONE)
			return;
		for (i = 0; i < NSLOT - 1 && st->slot[i].base >= 0; i++)
			;   /* all taken: the last one goes */
	}
	st->slot[i].base = (int8_t)(v == V_NONE ? -1 : base);
	st->slot[i].disp = disp;
	st->slot[i].v = v;
}

/* A copy between registers or to/from the stack; 1 if in is one. */
static int transfer_mov(const cs_insn *in, struct state *st)
{
	const cs_x86 *x = &in->detail->x86;
	const cs_x86_op *o = &x->operands[0], *s = &x->operands[1];
	int d = dest_reg(in), base;
	uint8_t v = V_NONE;

	if (in->id != X86_INS_MOV && in->id != X86_INS_MOVSXD &&
	    in->id != X86_INS_MOVZX && in->id != X86_INS_MOVSX)
		return 0;
	if (d >= 0 && s->type == X86_OP_REG && gpr(s->reg) >= 0) {
		v = st->v[gpr(s->reg)];
		/* a 32-bit copy keeps an integer, not a pointer */
		if (!(in->id == X86_INS_MOV && o->size == 8 && s->size == 8) &&
		    !(s->size >= 4 && fits32(v)))
			v = V_NONE;
		st->v[d] = v;
		st->k[d] = st->k[gpr(s->reg)];
		st->from[d] = (int8_t)(in->id == X86_INS_MOV && o->size == 8 &&
				       s->size == 8 ? gpr(s->reg) : -1);
		return 1;
	}
	if (d >= 0 && s->type == X86_OP_MEM && s->mem.index == X86_REG_INVALID &&
	    s->mem.segment == X86_REG_INVALID) {
		base = gpr(s->mem.base);
		if (base >= 0 && st->v[base] == V_SSL && s->mem.disp == 0 &&
		    o->size == 8 && in->id == X86_INS_MOV)
			v = V_METHOD;   /* ssl->method is its first member */
		else if ((base == RSP || base == RBP) && slot_find(st, base, s->mem.disp) >= 0)
			v = st->slot[slot_find(st, base, s->mem.disp)].v;
		if (!(o->size == 8 || fits32(v)))
			v = V_NONE;
		st->v[d] = v;
		st->from[d] = -1;
		return 1;
	}
	if (o->type == X86_OP_MEM && s->type == X86_OP_REG && gpr(s->reg) >= 0 &&
	    o->mem.index == X86_REG_INVALID &&
	    ((base = gpr(o->mem.base)) == RSP || base == RBP)) {
		v = st->v[gpr(s->reg)];
		if (!(s->size == 8 || (s->size == 4 && fits32(v))))
			v = V_NONE;
		slot_set(st, base, o->mem.disp, v);
		return 1;
	}
	return 0;
}

/* A constant, a fixed address, the name, &ssl->field; 1 if in loads one. */
static int transfer_addr(struct bss *b, const cs_insn *in, struct state *st)
{
	const cs_x86 *x = &in->detail->x86;
	const cs_x86_op *s = &x->operands[1];
	int d = dest_reg(in);
	uint64_t a;

	if (d < 0 || (in->id != X86_INS_MOV && in->id != X86_INS_LEA))
		return 0;
	if (in->id == X86_INS_MOV && s->type == X86_OP_IMM) {
		a = (uint64_t)s->imm;
		st->v[d] = is_name(b, a) ? V_NAME : a < 0x10000 ? V_CONST :
			   a < (1ull << 47) ? V_ADDR : V_NONE;
		st->k[d] = (int32_t)(a & 0xffff);
	} else if (in->id == X86_INS_LEA && s->mem.index == X86_REG_INVALID &&
		   (s->mem.base == X86_REG_RIP || s->mem.base == X86_REG_INVALID)) {
		a = (uint64_t)s->mem.disp + (s->mem.base == X86_REG_RIP ?
					     in->address + in->size : 0);
		st->v[d] = is_name(b, a) ? V_NAME : V_ADDR;
	} else if (in->id == X86_INS_LEA && s->mem.index == X86_REG_INVALID &&
		   gpr(s->mem.base) >= 0 && st->v[gpr(s->mem.base)] == V_SSL &&
		   x->operands[0].size == 8) {
		st->v[d] = V_FIELD;
	} else {
		return 0;
	}
	st->from[d] = -1;
	return 1;
}

/*
 * What one instruction does to the tracked values.  Copies keep them
 * (transfer_mov), loads of addresses make them (transfer_addr); any other
 * write forgets.
 */
static void transfer(struct bss *b, const cs_insn *in, struct state *st)
{
	const cs_x86 *x = &in->detail->x86;
	cs_regs rr, rw;
	uint8_t nr = 0, nw = 0, i;

	if (transfer_mov(in, st) || transfer_addr(b, in, st))
		return;
	for (i = 0; i < x->op_count; i++) {
		const cs_x86_op *o = &x->operands[i];
		int base = o->type == X86_OP_MEM ? gpr(o->mem.base) : -1;

		if ((o->access & CS_AC_WRITE) && (base == RSP || base == RBP) &&
		    o->mem.index == X86_REG_INVALID)
			slot_set(st, base, o->mem.disp, V_NONE);
	}
	if (cs_regs_access(b->cs, in, rr, &nr, rw, &nw) != CS_ERR_OK)
		return;
	for (i = 0; i < nw; i++) {
		int g = gpr(rw[i]);

		if (g >= 0) {
			st->v[g] = V_NONE;
			st->from[g] = -1;
		}
	}
}

/*
 * What a call leaves.  rax holds its result.  The ABI lets a callee change
 * the other argument registers too, but code that reads one after a call
 * without writing it first relies on the callee keeping it (GCC's
 * -fipa-ra, within a file): what they held stays, but for constants and
 * addresses, which compilers load again, and which would otherwise make
 * an error site of the next call.
 */
static void after_call(struct state *st)
{
	int i;

	for (i = 0; i < 16; i++)
		if (i == RAX || (!(CALLEE_SAVED & (1u << i)) &&
				 (st->v[i] == V_CONST || st->v[i] == V_NAME || st->v[i] == V_ADDR))) {
			st->v[i] = V_NONE;
			st->from[i] = -1;
		}
}

/* One walk over code: its bounds and what it wants to hear of. */
struct walk {
	uint64_t lo, hi;          /* addresses it may visit */
	uint64_t entry;           /* a function's: other entries end its paths; 0: none */
	uint8_t *seen;            /* instruction starts, over [lo, hi) */
	size_t budget;
	/* at a call, before it: nonzero ends the walk with that value */
	uint64_t (*call)(struct walk *w, const cs_insn *in, const struct state *st);
	void (*ret)(struct walk *w, const struct state *st);
	void (*insn)(struct walk *w, const cs_insn *in, const struct state *st);
	void *ctx;
};

static int seen(const uint8_t *bm, uint64_t lo, uint64_t va)
{
	return (bm[(va - lo) / 8] >> ((va - lo) % 8)) & 1;
}

/*
 * Every path from start (first arrival at an instruction wins), with the
 * values each path carries: direct branches are followed inside [lo, hi),
 * never onto another function's entry (a tail call); a path ends at a
 * return, a trap, an indirect jump, an entry it falls into, or bytes that
 * do not decode.  Returns what w->call returned to stop it, else 0.
 */
static uint64_t walk(struct bss *b, struct walk *w, uint64_t start, const struct state *st0)
{
	size_t nwork = 1;

	b->work[0].va = start;
	b->work[0].st = *st0;
	while (nwork) {
		struct witem it = b->work[--nwork];

		while (w->budget && it.va >= w->lo && it.va < w->hi &&
		       !seen(w->seen, w->lo, it.va) &&
		       !(w->entry && it.va != w->entry && is_entry(b, it.va)) &&
		       decode(b, it.va)) {
			enum flow fl = flow_of(b, b->in);
			uint64_t t = direct_target(b->in);

			w->budget--;
			w->seen[(it.va - w->lo) / 8] |= (uint8_t)(1u << ((it.va - w->lo) % 8));
			if (fl == F_STOP) {
				if (b->in->id == X86_INS_RET && w->ret)
					w->ret(w, &it.st);
				break;
			}
			if (fl == F_CALL) {
				uint64_t r = w->call ? w->call(w, b->in, &it.st) : 0;

				if (r)
					return r;
				after_call(&it.st);
			} else if (fl == F_JMP || fl == F_JCC) {
				if (t && t >= w->lo && t < w->hi && !seen(w->seen, w->lo, t) &&
				    !(w->entry && is_entry(b, t)) && nwork < WORK) {
					b->work[nwork].va = t;
					b->work[nwork++].st = it.st;
				}
				if (fl == F_JMP)
					break;
			} else {
				if (w->insn)
					w->insn(w, b->in, &it.st);
				transfer(b, b->in, &it.st);
			}
			it.va += b->in->size;
		}
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Functions                                                           */

static void fn_free(struct fn *f)
{
	if (f) {
		free(f->seen);
		free(f);
	}
}

/* A function's walk: each call with what its arguments held. */
static uint64_t fn_call(struct walk *w, const cs_insn *in, const struct state *st)
{
	static const int args[6] = { RDI, RSI, RDX, RCX, R8, R9 };
	const cs_x86_op *op = &in->detail->x86.operands[0];
	struct fn *f = w->ctx;
	struct callsite *c;
	int i;

	/* an error site, seen from the path: ERR_put_error(16, 0, reason, name, line) */
	if (st->v[RCX] == V_NAME && st->v[RDI] == V_CONST && st->k[RDI] == LIB_SSL &&
	    st->v[RDX] == V_CONST && st->k[RDX] >= 0 && st->k[RDX] < 4096)
		f->reason[st->k[RDX] / 8] |= (uint8_t)(1u << (st->k[RDX] % 8));
	if (f->ncalls == MAX_CALLEES)
		return 0;
	c = &f->calls[f->ncalls++];
	c->to = direct_target(in);
	c->slot = -1;
	c->rdi_from = st->from[RDI];
	if (!c->to && in->detail->x86.op_count == 1 && op->type == X86_OP_MEM &&
	    op->mem.index == X86_REG_INVALID && gpr(op->mem.base) >= 0 &&
	    st->v[gpr(op->mem.base)] == V_METHOD && op->mem.disp >= 0)
		c->slot = op->mem.disp;
	for (i = 0; i < 6; i++)
		c->arg[i] = st->v[args[i]];
	return 0;
}

/* ...each store through buf (a copy into it, inlined or not)... */
static void fn_insn(struct walk *w, const cs_insn *in, const struct state *st)
{
	const cs_x86 *x = &in->detail->x86;
	struct fn *f = w->ctx;
	int i;

	for (i = 0; i < x->op_count; i++)
		if (x->operands[i].type == X86_OP_MEM && (x->operands[i].access & CS_AC_WRITE) &&
		    gpr(x->operands[i].mem.base) >= 0 &&
		    st->v[gpr(x->operands[i].mem.base)] == V_BUF)
			f->into_buf = 1;
}

/* ...and at each return, the register rax was copied from. */
static void fn_ret(struct walk *w, const struct state *st)
{
	struct fn *f = w->ctx;

	if (st->from[RAX] >= 0)
		f->rets |= 1u << st->from[RAX];
}

/* Is the error site on f's paths: is one of its possible starts an instruction of f? */
static int fn_has_site(const struct fn *f, const struct site *s)
{
	unsigned k;

	for (k = 1; k <= 4; k++) {
		uint64_t va = s->ref - k;

		if ((s->starts & (1u << (k - 1))) && va >= f->entry && va < f->hi &&
		    seen(f->seen, f->entry, va))
			return 1;
	}
	return 0;
}

/*
 * The function that begins at entry (walked once, then kept): its paths
 * up to SPAN bytes on, its calls, the error sites on them.  NULL if out
 * of memory or of room.
 */
static struct fn *fn_at(struct bss *b, uint64_t entry)
{
	struct walk w = { 0 };
	struct state st;
	struct fn *f;
	size_t i;

	for (i = 0; i < b->nfns; i++)
		if (b->fns[i]->entry == entry)
			return b->fns[i];
	if (b->nfns == MAX_FNS || entry < b->tva || entry >= b->tend)
		return NULL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->entry = entry;
	f->hi = b->tend - entry > SPAN ? entry + SPAN : b->tend;
	f->seen = calloc((size_t)(f->hi - entry) / 8 + 1, 1);
	if (!f->seen) {
		fn_free(f);
		return NULL;
	}
	w.lo = entry;
	w.hi = f->hi;
	w.entry = entry;
	w.seen = f->seen;
	w.budget = FN_BUDGET;
	w.call = fn_call;
	w.ret = fn_ret;
	w.insn = fn_insn;
	w.ctx = f;
	state_init(&st);
	st.v[RDI] = V_SSL;
	st.v[RSI] = V_BUF;
	st.v[RDX] = V_NUM;
	walk(b, &w, entry, &st);
	for (i = 0; i < b->nsites; i++)
		if (b->sites[i].reason >= 0 && fn_has_site(f, &b->sites[i]))
			f->reason[b->sites[i].reason / 8] |=
				(uint8_t)(1u << (b->sites[i].reason % 8));
	b->fns[b->nfns++] = f;
	return f;
}

static int has_reason(const struct fn *f, int r)
{
	return (f->reason[r / 8] >> (r % 8)) & 1;
}

/* Does f report no reason but those in ok? */
static int reasons_only(const struct fn *f, const int *ok, size_t n)
{
	int r;
	size_t k;

	for (r = 0; r < 4096; r++) {
		if (!has_reason(f, r))
			continue;
		for (k = 0; k < n && ok[k] != r; k++)
			;
		if (k == n)
			return 0;
	}
	return 1;
}

/*
 * The function an error site is in: the nearest entry before it (by its
 * callers, is_entry) whose paths reach it.  NULL if none.
 */
static struct fn *fn_of_site(struct bss *b, const struct site *s)
{
	uint64_t site = s->ref - 1;
	uint64_t lo = site - b->tva > WIN ? site - WIN : b->tva;
	size_t l = 0, h = b->ncalls, tried = 0;

	while (l < h) {                         /* past the last target <= site */
		size_t m = (l + h) / 2;

		if (b->calls[m].to <= site)
			l = m + 1;
		else
			h = m;
	}
	while (l > 0 && b->calls[l - 1].to >= lo && tried < ENTRIES_TRIED) {
		uint64_t e = b->calls[l - 1].to;
		struct fn *f;

		while (l > 0 && b->calls[l - 1].to == e)
			l--;
		if (!is_entry(b, e))
			continue;
		tried++;
		f = fn_at(b, e);
		if (f && fn_has_site(f, s))
			return f;
	}
	return NULL;
}

/*
 * The distinct functions that report this reason (up to cap): those
 * holding a site read so, or a name load whose paths lead to it.
 */
static size_t fns_with(struct bss *b, int reason, struct fn **out, size_t cap)
{
	size_t i, k, n = 0;

	for (i = 0; i < b->nsites; i++) {
		struct fn *f;

		if ((b->sites[i].reason != reason && b->sites[i].reason != -1) ||
		    !(f = fn_of_site(b, &b->sites[i])) || !has_reason(f, reason))
			continue;
		for (k = 0; k < n && out[k] != f; k++)
			;
		if (k == n && n < cap)
			out[n++] = f;
	}
	return n;
}

/* Does f, or a function it calls directly, report reason r? */
static int reaches_reason(struct bss *b, struct fn *f, int r)
{
	size_t i, k;

	if (has_reason(f, r))
		return 1;
	for (i = 0; i < f->ncalls; i++) {
		uint64_t t = f->calls[i].to;
		struct fn *g;

		if (!t || t == f->entry)
			continue;
		for (k = 0; k < b->nsites; k++)   /* only callees that can hold a site */
			if (b->sites[k].ref > t && b->sites[k].ref - t < SPAN)
				break;
		if (k < b->nsites && (g = fn_at(b, t)) && has_reason(g, r))
			return 1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Anchor 2: the callers, the data flow                                */

struct sink {
	uint64_t fn;
};

/* A caller's walk: the first call that gets the result as second argument. */
static uint64_t sink_call(struct walk *w, const cs_insn *in, const struct state *st)
{
	const struct sink *s = w->ctx;
	uint64_t t = direct_target(in);

	return st->v[RSI] == V_RES && t != s->fn ? t : 0;
}

/*
 * Where the caller at 'at' hands fn's result: the target of the first
 * call, on the paths after it, that gets the value (through copies and
 * stack spills) as second argument: SSL_get_error(ssl, ret).  0 if none.
 */
static uint64_t result_goes_to(struct bss *b, uint64_t at, uint64_t fn)
{
	uint8_t seenbm[2 * CALLER_REACH / 8 + 1];
	struct sink s = { fn };
	struct walk w = { 0 };
	struct state st;

	if (!decode(b, at) || b->in->id != X86_INS_CALL || direct_target(b->in) != fn)
		return 0;
	memset(seenbm, 0, sizeof(seenbm));
	w.lo = at - b->tva > CALLER_REACH ? at - CALLER_REACH : b->tva;
	w.hi = b->tend - at > CALLER_REACH ? at + CALLER_REACH : b->tend;
	w.seen = seenbm;
	w.budget = CALLER_BUDGET;
	w.call = sink_call;
	w.ctx = &s;
	state_init(&st);
	st.v[RAX] = V_RES;
	return walk(b, &w, at + b->in->size, &st);
}

/* The functions fn's callers hand its result to (up to cap). */
static size_t result_sinks(struct bss *b, uint64_t fn, uint64_t *sinks, size_t cap)
{
	size_t n, first = calls_to(b, fn, &n), i, k, ns = 0;

	for (i = 0; i < n && i < CALLER_SITES; i++) {
		uint64_t g = result_goes_to(b, b->calls[first + i].from, fn);

		for (k = 0; k < ns && sinks[k] != g; k++)
			;
		if (g && k == ns && ns < cap)
			sinks[ns++] = g;
	}
	return ns;
}

/* The slot of ssl->method that f gives (ssl, ..., buf, ..., num) to; -1. */
static int64_t write_slot(const struct fn *f)
{
	size_t i, k;

	for (i = 0; i < f->ncalls; i++) {
		const struct callsite *c = &f->calls[i];
		int buf = 0, num = 0;

		for (k = 1; k < 6; k++) {
			buf |= c->arg[k] == V_BUF;
			num |= c->arg[k] == V_NUM;
		}
		if (c->slot >= 0 && c->arg[0] == V_SSL && buf && num)
			return c->slot;
	}
	return -1;
}

/* Does f write into buf (a store, a call with buf first), or hand (ssl, buf, num) on? */
static int reads_into_buf(const struct fn *f)
{
	size_t i;

	if (f->into_buf)
		return 1;
	for (i = 0; i < f->ncalls; i++) {
		const struct callsite *c = &f->calls[i];

		if (c->slot < 0 && (c->arg[0] == V_BUF ||
				    (c->to && c->arg[0] == V_SSL && c->arg[1] == V_BUF &&
				     c->arg[2] == V_NUM)))
			return 1;
	}
	return 0;
}

/* Does f copy into buf, or give it to ssl->method? */
static int buf_as(const struct fn *f, int into, int method)
{
	size_t i, k;

	if (into && f->into_buf)
		return 1;
	for (i = 0; i < f->ncalls; i++) {
		if (into && f->calls[i].slot < 0 && f->calls[i].arg[0] == V_BUF)
			return 1;
		for (k = 0; method && f->calls[i].slot >= 0 && k < 6; k++)
			if (f->calls[i].arg[k] == V_BUF)
				return 1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* The three functions                                                 */

static unsigned long long offs(const struct bss *b, const struct fn *f)
{
	return (unsigned long long)text_off(b, f->entry);
}

/* SSL_write: anchor 1 names it, anchor 2 must agree. */
static int find_write(struct bss *b, struct fn **w, int64_t *slot,
		      uint64_t *sinks, size_t *nsinks)
{
	struct fn *c[8];
	size_t n, i, m = 0;

	n = fns_with(b, R_BAD_LENGTH, c, 8);
	for (i = 0; i < n; i++)
		if (has_reason(c[i], R_UNINITIALIZED) && has_reason(c[i], R_HANDSHAKE_FAILURE))
			c[m++] = c[i];
	for (i = 0; n == 0 && i < b->nsites; i++)
		if (b->sites[i].reason == R_BAD_LENGTH)
			return whyf(b, "SSL_write: callers anchor: its BAD_LENGTH error site "
				    "(0x%llx) is in no function the program calls directly",
				    (unsigned long long)text_off(b, b->sites[i].ref));
	if (m != 1)
		return whyf(b, "SSL_write: error-site anchor: %zu functions report "
			    "UNINITIALIZED, SSL_HANDSHAKE_FAILURE and BAD_LENGTH in "
			    FILE_NAME " (%zu report BAD_LENGTH)", m, n);
	*w = c[0];
	*slot = write_slot(*w);
	if (*slot < 0 || buf_as(*w, 1, 0))
		return whyf(b, "SSL_write at 0x%llx (error-site anchor): data-flow anchor: "
			    "buf and num do not go to ssl->method, or it copies into buf",
			    offs(b, *w));
	*nsinks = result_sinks(b, (*w)->entry, sinks, 8);
	if (*nsinks == 0)
		return whyf(b, "SSL_write at 0x%llx (error-site anchor): callers anchor: "
			    "no direct call of it hands its result on (SSL_get_error)",
			    offs(b, *w));
	return 0;
}

/*
 * SSL_read: anchor 1 names candidates (ERR_R_SHOULD_NOT_HAVE_BEEN_CALLED,
 * nothing but the read path's reasons, and UNINITIALIZED and
 * SSL_HANDSHAKE_FAILURE on its read path); anchor 2 must single out one:
 * it reads into buf, never gives it to ssl->method, and its callers hand
 * the result to the function SSL_write's callers hand theirs to.
 */
static int find_read(struct bss *b, const struct fn *w, const uint64_t *ws, size_t nws,
		     struct fn **r)
{
	static const int ok[] = { R_SHOULD_NOT_BE_CALLED, R_UNINITIALIZED,
				  R_HANDSHAKE_FAILURE };
	struct fn *c[32];
	size_t n, i, j, k, m = 0;

	*r = NULL;
	n = fns_with(b, R_SHOULD_NOT_BE_CALLED, c, 32);
	for (i = 0; i < n; i++) {
		uint64_t rs[8];
		size_t nrs;
		int meet = 0;

		if (c[i] == w || !reasons_only(c[i], ok, 3) ||
		    !reaches_reason(b, c[i], R_UNINITIALIZED) ||
		    !reaches_reason(b, c[i], R_HANDSHAKE_FAILURE))
			continue;
		m++;
		if (buf_as(c[i], 0, 1) || !reads_into_buf(c[i]))
			continue;
		nrs = result_sinks(b, c[i]->entry, rs, 8);
		for (j = 0; j < nrs; j++)
			for (k = 0; k < nws; k++)
				meet |= rs[j] == ws[k] && rs[j] != w->entry;
		if (!meet)
			continue;
		if (*r)
			return whyf(b, "SSL_read: 0x%llx and 0x%llx both pass both anchors",
				    offs(b, *r), offs(b, c[i]));
		*r = c[i];
	}
	if (m == 0)
		return whyf(b, "SSL_read: error-site anchor: no function reports "
			    "SHOULD_NOT_HAVE_BEEN_CALLED in " FILE_NAME " with UNINITIALIZED "
			    "and SSL_HANDSHAKE_FAILURE on its read path");
	if (!*r)
		return whyf(b, "SSL_read: %zu function(s) pass the error-site anchor, none "
			    "the callers and data-flow anchor (reads into buf; result handed "
			    "where SSL_write's callers hand theirs)", m);
	return 0;
}

/* The destructor's anchor 2: ex_data freed first, then method->ssl_free(ssl). */
static int destructor_shape(const struct fn *g, int64_t wslot)
{
	const struct callsite *c0 = &g->calls[0];
	size_t k;

	if (g->ncalls == 0 || !c0->to || c0->arg[0] != V_ADDR ||
	    !(c0->arg[1] == V_SSL || c0->arg[1] == V_FIELD || c0->arg[2] == V_FIELD))
		return 0;
	for (k = 0; k < g->ncalls; k++)
		if (g->calls[k].slot >= 0 && g->calls[k].slot < wslot &&
		    g->calls[k].arg[0] == V_SSL && g->calls[k].arg[1] != V_BUF)
			return 1;
	return 0;
}

/*
 * The SSL destructor.  Anchor 1: in SSL_new (the function reporting
 * NULL_SSL_CTX), the first of consecutive calls that get the pointer it
 * returns (destroy, then free).  Anchor 2: destructor_shape.  0 with *d
 * 0 when no candidate passes both; negative when two do.
 */
static int find_free(struct bss *b, int64_t wslot, uint64_t *d)
{
	struct fn *c[8];
	uint64_t cand[8];
	size_t n, i, j, nc = 0, pass = 0;

	*d = 0;
	n = fns_with(b, R_NULL_SSL_CTX, c, 8);
	for (i = 0; i < n; i++) {
		const struct fn *f = c[i];

		for (j = 0; j + 1 < f->ncalls && nc < 8; j++) {
			const struct callsite *x = &f->calls[j], *y = &f->calls[j + 1];
			int r = x->rdi_from;
			size_t k;

			if (!x->to || r < 0 || !((f->rets & CALLEE_SAVED) >> r & 1) ||
			    y->rdi_from != r ||
			    (j > 0 && f->calls[j - 1].rdi_from == r && f->calls[j - 1].to))
				continue;
			for (k = 0; k < nc && cand[k] != x->to; k++)
				;
			if (k == nc)
				cand[nc++] = x->to;
		}
	}
	for (i = 0; i < nc; i++) {
		struct fn *g = fn_at(b, cand[i]);

		if (!g || !destructor_shape(g, wslot))
			continue;
		if (pass++ == 0)
			*d = cand[i];
	}
	TRACE("destructor: %zu SSL_new, %zu candidates, %zu pass\n", n, nc, pass);
	if (pass > 1)
		return whyf(b, "SSL destructor: %zu candidates pass both anchors", pass);
	return 0;
}

/* Which functions they are, from the error sites and the calls near them. */
static int identify(struct bss *b, tt_ssl_syms *out)
{
	struct fn *w = NULL, *r = NULL;
	uint64_t ws[8], d = 0;
	size_t nws = 0;
	int64_t wslot = -1;
	int e;

	e = find_write(b, &w, &wslot, ws, &nws);
	if (e == 0)
		e = find_read(b, w, ws, nws, &r);
	if (e == 0)
		e = find_free(b, wslot, &d);
	if (e < 0 && b->budget == 0)
		return whyf(b, "gave up after %u instructions", TOTAL_BUDGET);
	if (e < 0)
		return e;
	TRACE("write 0x%llx read 0x%llx destructor 0x%llx; %zu functions, %zu "
	      "instructions decoded\n", offs(b, w), offs(b, r),
	      d ? (unsigned long long)text_off(b, d) : 0ull, b->nfns,
	      (size_t)TOTAL_BUDGET - b->budget);
	out->write = text_off(b, w->entry);
	out->read = text_off(b, r->entry);
	out->free = d ? text_off(b, d) : 0;
	return 1;
}

static int find_all(struct bss *b, tt_ssl_syms *out)
{
	struct allcalls all = { .b = b };
	int e;

	e = find_sites(b, &all);
	TRACE("%zu error sites, %zu direct calls\n", b->nsites, all.n);
	if (e == 0 && b->nsites == 0)
		e = whyf(b, "error-site anchor: " FILE_NAME " is named, but no "
			 "ERR_put_error(ERR_LIB_SSL, ...) site loads it");
	if (e == 0)
		e = find_calls(b, &all);
	if (all.v)
		munmap(all.v, all.cap * 8);
	return e < 0 ? e : identify(b, out);
}

/* The analysis of b->im, once it is there; frees what it made. */
static int analyse(struct bss *b, tt_ssl_syms *out)
{
	size_t i;
	int r;

	memset(out, 0, sizeof(*out));
	if (b->why && b->cap)
		b->why[0] = '\0';
	r = layout(b);
	if (r <= 0)
		goto out;
	b->work = malloc(WORK * sizeof(*b->work));
	if (!b->work || cs_open(CS_ARCH_X86, CS_MODE_64, &b->cs) != CS_ERR_OK ||
	    cs_option(b->cs, CS_OPT_DETAIL, CS_OPT_ON) != CS_ERR_OK ||
	    !(b->in = cs_malloc(b->cs))) {
		r = TT_ENOMEM;
		goto out;
	}
	r = find_all(b, out);
out:
	for (i = 0; i < b->nfns; i++)
		fn_free(b->fns[i]);
	free(b->sites);
	free(b->calls);
	free(b->work);
	if (b->in)
		cs_free(b->in, 1);
	if (b->cs)
		cs_close(&b->cs);
	if (r != 1)
		memset(out, 0, sizeof(*out));
	return r;
}

int tt_bsslfind_mem(const void *image, size_t size, tt_ssl_syms *out, char *why,
		    size_t cap)
{
	struct bss b = { .why = why, .cap = cap, .budget = TOTAL_BUDGET };
	tt_elfimg im;

	tt_elfimg_init(&im, image, size);
	b.im = &im;
	return analyse(&b, out);
}

int tt_bsslfind(const char *path, tt_ssl_syms *out, char *why, size_t cap)
{
	struct bss b = { .why = why, .cap = cap, .budget = TOTAL_BUDGET };
	tt_elfimg im;
	int r;

	memset(out, 0, sizeof(*out));
	if (why && cap)
		why[0] = '\0';
	if (tt_elfimg_open(&im, path) < 0)
		return im.fail == TT_ELFIMG_EMPTY ? 0 : TT_EIO;
	b.im = &im;
	b.buf = malloc(CHUNK + CHUNK_PAD);   /* the pass over .text reads into it */
	r = b.buf ? analyse(&b, out) : TT_ENOMEM;
	free(b.buf);
	tt_elfimg_close(&im);
	return r;
}
