/*
 * rustlsfind.c - rustls 0.23 inside a stripped Rust program (tlsfind.h):
 * where the program hands plaintext to rustls and gets it back, found in
 * the code and checked by anchors that must agree.  No offset, hash or
 * prologue of any release is written here.  The method, the evidence and
 * the limits: rustlsfind_notes.md.
 *
 * The probe points are two non-generic CommonState methods, which every
 * connection passes through whatever generic copies of the I/O code
 * (hyper-rustls, tokio-rustls, ...) the compiler made:
 *
 *   send  buffer_plaintext(&mut self, payload: &OutboundChunks,
 *                          sendable_plaintext: &mut ChunkVecBuffer) -> usize
 *         rdi the connection, rsi the payload, rax at return the bytes
 *         accepted.  OutboundChunks: qword 0 == 0: Single { ptr +8, len
 *         +16 }, else Multiple { chunks +0/+8, start +16, end +24 }.
 *   recv  take_received_plaintext(&mut self, bytes: &Payload)
 *         rdi the same connection, rsi one record's plaintext: ptr +8,
 *         len +16.
 *
 * send, anchor 1 (rustls's panic sites): the functions encrypt_outgoing()
 * is compiled into refer to a core::panic::Location whose file is
 * ".../rustls-0.23.N/src/record_layer.rs" (E).  Anchor 2 (what the code
 * does with its arguments): among the functions within SEND_DEPTH calls
 * of E, buffer_plaintext is the one that compares a byte of its first
 * argument with 1 (may_send_application_data), transfers with its first
 * argument still in rdi to a function of that set, uses its third
 * argument and reads qwords +0, +16 and +24 of its second.  Another
 * function of the set must SET that byte to 1 (start_outgoing_traffic).
 *
 * recv, anchor 1 (dyn State vtables): take_received_plaintext is called
 * only by the handle() methods of the ExpectTraffic states, reached
 * through `dyn State` vtables: two callers or more, each the first method
 * of something shaped like a vtable.  Anchor 2: it reads the three qwords
 * of its second argument and pushes a 24-byte element into a VecDeque held
 * in its first.  Exactly one function may pass both.
 *
 * Function bounds come from .eh_frame_hdr; call edges from one pass over
 * the code (direct call/jmp, calls through GOT slots) kept to targets
 * within WINDOW of E; register roles are followed with Capstone.
 *
 * Answer: 1 (found, *out filled), 0 (no "/rustls-0.23." source path: not
 * a rustls 0.23 program), or a negative tt_error when it is one but an
 * anchor did not single out one function: why says which.
 */
#include <capstone/capstone.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "elfimg.h"
#include "tlsfind.h"
#include "tokentap/error.h"

#define SEND_DEPTH 3   /* buffer_plaintext -> send_appdata_encrypt ->
			* send_single_fragment -> encrypt_outgoing */
#define WINDOW (8ull << 20) /* rustls's code lies this close to E */
#define SEND_MAX 4096  /* largest function read as a buffer_plaintext */
#define RECV_MAX 2048  /* and as a take_received_plaintext */
#define RECV_FN_MAX 1024 /* no bigger take_received_plaintext is considered */

#ifdef RUSTLSFIND_TRACE
#define TRACE(...) fprintf(stderr, "rustlsfind: " __VA_ARGS__)
#else
#define TRACE(...) do { } while (0)
#endif

/* ---- sorted sets of addresses ------------------------------------------ */

struct vec {
	uint64_t *v;
	size_t n, cap;
};

static int vec_push(struct vec *a, uint64_t x)
{
	if (a->n == a->cap) {
		size_t nc = a->cap ? a->cap * 2 : 64;
		uint64_t *nv = realloc(a->v, nc * sizeof(*nv));

		if (!nv)
			return TT_ENOMEM;
		a->v = nv;
		a->cap = nc;
	}
	a->v[a->n++] = x;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Sort and drop duplicates: vec_has needs it. */
static void vec_sort_unique(struct vec *a)
{
	size_t i, w = 0;

	if (!a->n)
		return;
	qsort(a->v, a->n, sizeof(*a->v), cmp_u64);
	for (i = 0; i < a->n; i++)
		if (!w || a->v[w - 1] != a->v[i])
			a->v[w++] = a->v[i];
	a->n = w;
}

static int vec_has(const struct vec *a, uint64_t x)
{
	size_t lo = 0, hi = a->n;

	while (lo < hi) {
		size_t m = (lo + hi) / 2;

		if (a->v[m] < x)
			lo = m + 1;
		else
			hi = m;
	}
	return lo < a->n && a->v[lo] == x;
}

/* ---- the search and what it has found ---------------------------------- */

struct rel {
	uint64_t va, addend;
};

/* Call edges into rustls's code: (target, calling function), by target. */
struct edge {
	uint64_t target, caller;
};

struct edges {
	struct edge *e;
	size_t n, cap;
	uint64_t lo, hi;          /* the window kept */
};

struct ctx {
	const tt_elfimg *im;
	struct rel *rela;         /* R_X86_64_RELATIVE (RELA files store 0 in place) */
	size_t nrela;
	uint64_t ehh_va;          /* .eh_frame_hdr's search table */
	const uint8_t *ehtab;
	uint64_t nfde;
	uint64_t cie_va;          /* the last CIE read, and its FDE encoding */
	uint8_t cie_enc;
	csh cs;
	char *why;
	size_t cap;

	struct vec ends;          /* where the record_layer.rs paths end */
	struct vec locs;          /* the panic Locations naming them */
	struct vec enc;           /* E: the functions encrypt_outgoing is in */
	struct vec reach;         /* E and the functions within SEND_DEPTH calls */
	struct vec methods;       /* first methods of everything vtable-shaped */
	struct edges g;
	uint64_t send_va;         /* buffer_plaintext */
	uint32_t may_send_off;    /* the flag byte it tests */
	uint64_t recv_va;         /* take_received_plaintext */
	uint32_t recv_queue_off;  /* the VecDeque it pushes to */
	int recv_callers;
};

static int fail(struct ctx *c, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Say why (when the caller gave room for it) and return err. */
static int fail(struct ctx *c, int err, const char *fmt, ...)
{
	va_list ap;

	if (c->why && c->cap) {
		va_start(ap, fmt);
		vsnprintf(c->why, c->cap, fmt, ap);
		va_end(ap);
	}
	return err;
}

/* ---- data: qwords and pointers at addresses ----------------------------- */

static uint64_t rd64(const struct ctx *c, uint64_t va, int *ok)
{
	const uint8_t *p = tt_elfimg_va(c->im, va, 8);

	*ok = p != NULL;
	return p ? tt_elfimg_le64(p) : 0;
}

/* A pointer stored in data: in place (static, RELR) or in .rela.dyn. */
static uint64_t ptr_at(const struct ctx *c, uint64_t va)
{
	size_t lo = 0, hi = c->nrela;
	int ok;
	uint64_t v = rd64(c, va, &ok);

	if (!ok || v != 0)
		return v;
	while (lo < hi) {
		size_t m = (lo + hi) / 2;

		if (c->rela[m].va < va)
			lo = m + 1;
		else
			hi = m;
	}
	if (lo < c->nrela && c->rela[lo].va == va)
		return c->rela[lo].addend;
	return 0;
}

static int cmp_rel(const void *a, const void *b)
{
	const struct rel *x = a, *y = b;

	return x->va < y->va ? -1 : x->va > y->va;
}

/* The R_X86_64_RELATIVE relocations, sorted by address: 0 or TT_ENOMEM. */
static int load_rela(struct ctx *c)
{
	const uint8_t *p;
	uint64_t n, i;
	Elf64_Rela r;

	if (!tt_elfimg_rela(c->im, &p, &n))
		return 0;
	c->rela = calloc(n ? n : 1, sizeof(*c->rela));
	if (!c->rela)
		return TT_ENOMEM;
	for (i = 0; i < n; i++) {
		memcpy(&r, p + i * sizeof(r), sizeof(r));
		if (ELF64_R_TYPE(r.r_info) != R_X86_64_RELATIVE)
			continue;
		c->rela[c->nrela].va = r.r_offset;
		c->rela[c->nrela].addend = (uint64_t)r.r_addend;
		c->nrela++;
	}
	if (c->nrela)
		qsort(c->rela, c->nrela, sizeof(*c->rela), cmp_rel);
	return 0;
}

/* ---- function bounds, from .eh_frame_hdr and .eh_frame ------------------ */

/* DW_EH_PE_* pointer encodings (LSB "Exception Frames"). */
#define EH_PE_absptr  0x00
#define EH_PE_udata4  0x03
#define EH_PE_udata8  0x04
#define EH_PE_sdata4  0x0b
#define EH_PE_sdata8  0x0c
#define EH_PE_pcrel   0x10
#define EH_PE_datarel 0x30

static uint64_t uleb(const uint8_t **p, const uint8_t *end)
{
	uint64_t v = 0;
	int sh = 0;

	while (*p < end) {
		uint8_t b = *(*p)++;

		v |= (uint64_t)(b & 0x7f) << sh;
		sh += 7;
		if (!(b & 0x80) || sh > 63)
			break;
	}
	return v;
}

/* An encoded pointer at *p (pc: the field's address): 0 and *v, or -1. */
static int enc_read(uint8_t enc, const uint8_t **p, const uint8_t *end,
		    uint64_t pc, uint64_t *v)
{
	int64_t x;
	size_t n = 8;

	switch (enc & 0x0f) {
	case EH_PE_udata4:
	case EH_PE_sdata4:
		n = 4;
		break;
	case EH_PE_absptr:
	case EH_PE_udata8:
	case EH_PE_sdata8:
		break;
	default:
		return -1;
	}
	if (end - *p < (ptrdiff_t)n)
		return -1;
	if ((enc & 0x0f) == EH_PE_udata4)
		x = tt_elfimg_le32(*p);
	else if ((enc & 0x0f) == EH_PE_sdata4)
		x = (int32_t)tt_elfimg_le32(*p);
	else
		x = (int64_t)tt_elfimg_le64(*p);
	*p += n;
	if ((enc & 0x70) == EH_PE_pcrel)
		x += (int64_t)pc;
	else if ((enc & 0x70) != 0)
		return -1;
	*v = (uint64_t)x;
	return 0;
}

/* PT_GNU_EH_FRAME's sorted (initial pc, FDE) table: 0, or -1 (none). */
static int load_ehhdr(struct ctx *c)
{
	const uint8_t *h;
	Elf64_Phdr ph;
	unsigned i;

	for (i = 0; tt_elfimg_phdr(c->im, i, &ph) == 0; i++) {
		if (ph.p_type != PT_GNU_EH_FRAME)
			continue;
		h = tt_elfimg_va(c->im, ph.p_vaddr, 12);
		/* version 1; eh_frame_ptr pcrel|sdata4, fde_count udata4,
		 * table datarel|sdata4: what GNU ld, gold and lld write */
		if (!h || h[0] != 1 || h[1] != (EH_PE_pcrel | EH_PE_sdata4) ||
		    h[2] != EH_PE_udata4 || h[3] != (EH_PE_datarel | EH_PE_sdata4))
			return -1;
		c->ehh_va = ph.p_vaddr;
		c->nfde = tt_elfimg_le32(h + 8);
		c->ehtab = tt_elfimg_va(c->im, ph.p_vaddr + 12, c->nfde * 8);
		return c->ehtab ? 0 : -1;
	}
	return -1;
}

/* The i-th entry of the table: a function's first address, its FDE. */
static uint64_t tab_pc(const struct ctx *c, uint64_t i)
{
	return c->ehh_va + (int64_t)(int32_t)tt_elfimg_le32(c->ehtab + i * 8);
}

static uint64_t tab_fde(const struct ctx *c, uint64_t i)
{
	return c->ehh_va + (int64_t)(int32_t)tt_elfimg_le32(c->ehtab + i * 8 + 4);
}

/* The FDE pointer encoding a CIE declares ('R' augmentation): 0 or -1. */
static int cie_enc(struct ctx *c, uint64_t cie, uint8_t *enc)
{
	const uint8_t *p, *q, *end;
	const char *aug;
	uint8_t version, e = EH_PE_absptr, pe;
	uint64_t skip;
	uint32_t len;
	size_t al, k;

	if (c->cie_va == cie) {
		*enc = c->cie_enc;
		return 0;
	}
	p = tt_elfimg_va(c->im, cie, 8);
	if (!p)
		return -1;
	len = tt_elfimg_le32(p);
	/* the CIE id and the version at least, all in the image */
	if (len == 0xffffffff || len < 5 ||
	    !tt_elfimg_va(c->im, cie, 4 + (uint64_t)len))
		return -1;
	end = p + 4 + len;
	q = p + 8;                 /* after the length and the CIE id */
	version = *q++;
	aug = (const char *)q;
	al = strnlen(aug, (size_t)(end - q));
	q += al + 1;
	uleb(&q, end);             /* code alignment */
	uleb(&q, end);             /* data alignment (a sleb, skipped alike) */
	if (version == 1)
		q++;               /* return address register: a byte */
	else
		uleb(&q, end);     /* a uleb since version 3 */
	if (aug[0] == 'z') {
		uleb(&q, end);     /* augmentation data length */
		for (k = 1; k < al && q < end; k++) {
			if (aug[k] == 'R') {
				e = *q++;
			} else if (aug[k] == 'L') {
				q++;
			} else if (aug[k] == 'P') {
				pe = *q++;
				if (enc_read(pe, &q, end, 0, &skip))
					return -1;
			} else if (aug[k] != 'S' && aug[k] != 'B') {
				return -1;
			}
		}
	}
	c->cie_va = cie;
	c->cie_enc = e;
	*enc = e;
	return 0;
}

/* The function (start, size) that holds va, from its FDE: 0, or -1. */
static int func_of(struct ctx *c, uint64_t va, uint64_t *start, uint64_t *size)
{
	const uint8_t *p, *q, *end;
	uint64_t lo = 0, hi = c->nfde, fde, pc, range;
	uint32_t len, cie_ptr;
	uint8_t enc;

	while (lo < hi) {          /* past the last entry <= va */
		uint64_t m = (lo + hi) / 2;

		if (tab_pc(c, m) <= va)
			lo = m + 1;
		else
			hi = m;
	}
	if (lo == 0)
		return -1;
	fde = tab_fde(c, lo - 1);
	p = tt_elfimg_va(c->im, fde, 8);
	if (!p)
		return -1;
	len = tt_elfimg_le32(p);
	cie_ptr = tt_elfimg_le32(p + 4);
	if (len == 0xffffffff || len < 12 ||
	    !tt_elfimg_va(c->im, fde, 4 + (uint64_t)len) ||
	    cie_enc(c, fde + 4 - cie_ptr, &enc))
		return -1;
	q = p + 8;
	end = p + 4 + len;
	if (enc_read(enc, &q, end, fde + 8, &pc) ||
	    enc_read(enc & 0x0f, &q, end, 0, &range))
		return -1;
	if (va < pc || va >= pc + range)
		return -1;
	*start = pc;
	*size = range;
	return 0;
}

/* Does a function begin at va?  1 and *size (if wanted), or 0. */
static int is_func_start(struct ctx *c, uint64_t va, uint64_t *size)
{
	uint64_t s, z;

	if (func_of(c, va, &s, &z) || s != va)
		return 0;
	if (size)
		*size = z;
	return 1;
}

/* ---- step 1: the record_layer.rs panic Locations ------------------------ */

/* The version after "/rustls-" at p, up to q: into ver once, then compared. */
static int note_version(struct ctx *c, const uint8_t *p, const uint8_t *q,
			char *ver, size_t vcap, int *found)
{
	size_t vl = (size_t)(q - (p + 8));
	char v[24];

	if (vl >= sizeof(v))
		return 0;
	memcpy(v, p + 8, vl);
	v[vl] = '\0';
	if (!*found) {
		snprintf(ver, vcap, "%s", v);
		*found = 1;
	} else if (strcmp(v, ver) != 0) {
		return fail(c, TT_ENOTSUP, "two rustls 0.23 releases linked "
			    "(%s and %s): not handled", ver, v);
	}
	return 0;
}

/*
 * The ".../rustls-0.23.N/src/..." source paths in the read-only data: the
 * release into ver, where each record_layer.rs path ends into c->ends.
 * Returns 1, 0 (none: no rustls 0.23) or a negative tt_error.
 */
static int find_paths(struct ctx *c, char *ver, size_t vcap)
{
	static const char key[] = "/rustls-0.23.", rl[] = "/src/record_layer.rs";
	const size_t klen = sizeof(key) - 1, rllen = sizeof(rl) - 1;
	int found = 0, r;
	unsigned i;

	for (i = 0; i < c->im->nseg; i++) {
		const struct tt_elfseg *s = &c->im->seg[i];
		const uint8_t *b = c->im->p + s->off, *e = b + s->filesz, *p = b, *q;

		if (s->flags & PF_X)
			continue;
		for (; (p = memmem(p, (size_t)(e - p), key, klen)) != NULL; p += klen) {
			for (q = p + klen; q < e && *q >= '0' && *q <= '9'; q++)
				;
			if (q + 5 > e || memcmp(q, "/src/", 5) != 0)
				continue;
			r = note_version(c, p, q, ver, vcap, &found);
			if (r < 0)
				return r;
			if ((size_t)(e - q) >= rllen && memcmp(q, rl, rllen) == 0 &&
			    (r = vec_push(&c->ends, s->vaddr + (uint64_t)(q + rllen - b))))
				return r;
		}
	}
	return found;
}

/*
 * Location { file: &str, line: u32, col: u32 } records naming one of the
 * record_layer.rs paths (a record points at the start of the path and
 * ends exactly at its end), into c->locs.
 */
static int find_locations(struct ctx *c)
{
	unsigned i;
	int ok, r;

	for (i = 0; i < c->im->nseg; i++) {
		const struct tt_elfseg *s = &c->im->seg[i];
		uint64_t va, p, len, lc;
		uint32_t line, col;

		if ((s->flags & PF_X) || !(s->flags & PF_W))
			continue;
		for (va = (s->vaddr + 7) & ~7ull; va + 24 <= s->vaddr + s->filesz;
		     va += 8) {
			p = ptr_at(c, va);
			len = rd64(c, va + 8, &ok);
			if (!ok || len == 0 || len > 4096 || !vec_has(&c->ends, p + len))
				continue;
			lc = rd64(c, va + 16, &ok);
			line = (uint32_t)lc;
			col = (uint32_t)(lc >> 32);
			if (!ok || line == 0 || line > 100000 || col == 0 || col > 1000)
				continue;
			if ((r = vec_push(&c->locs, va)))
				return r;
		}
	}
	vec_sort_unique(&c->locs);
	return 0;
}

/* The functions with a `lea reg, [rip + X]` to one of c->locs, into c->enc. */
static int find_encrypt_sites(struct ctx *c)
{
	uint64_t tmin, tmax, o, t, fs, fz;
	unsigned i;
	int32_t d;
	int r;

	if (!c->locs.n)
		return 0;
	tmin = c->locs.v[0];
	tmax = c->locs.v[c->locs.n - 1];
	for (i = 0; i < c->im->nseg; i++) {
		const struct tt_elfseg *s = &c->im->seg[i];
		const uint8_t *b = c->im->p + s->off;

		if (!(s->flags & PF_X))
			continue;
		for (o = 0; o + 7 <= s->filesz; o++) {
			/* REX.W (or REX.WR) 8D, ModRM mod 00 r/m 101: rip+disp32 */
			if (b[o + 1] != 0x8d || (b[o] & 0xfb) != 0x48 ||
			    (b[o + 2] & 0xc7) != 0x05)
				continue;
			d = (int32_t)tt_elfimg_le32(b + o + 3);
			t = s->vaddr + o + 7 + (int64_t)d;
			if (t < tmin || t > tmax || !vec_has(&c->locs, t))
				continue;
			if (!func_of(c, s->vaddr + o, &fs, &fz) &&
			    (r = vec_push(&c->enc, fs)))
				return r;
		}
	}
	vec_sort_unique(&c->enc);
	return 0;
}

/* ---- step 2: what a function does with its arguments -------------------- */

/* Which entry argument a register still holds: bit 0 rdi, 1 rsi, 2 rdx. */
struct roles {
	uint8_t r[X86_REG_ENDING];
	uint8_t slot[64];        /* [rsp + 8k]: spilled arguments */
};

static x86_reg reg64(x86_reg r)
{
	switch (r) {
	case X86_REG_EAX: case X86_REG_AX: case X86_REG_AL: return X86_REG_RAX;
	case X86_REG_EBX: case X86_REG_BX: case X86_REG_BL: return X86_REG_RBX;
	case X86_REG_ECX: case X86_REG_CX: case X86_REG_CL: return X86_REG_RCX;
	case X86_REG_EDX: case X86_REG_DX: case X86_REG_DL: return X86_REG_RDX;
	case X86_REG_ESI: case X86_REG_SI: case X86_REG_SIL: return X86_REG_RSI;
	case X86_REG_EDI: case X86_REG_DI: case X86_REG_DIL: return X86_REG_RDI;
	case X86_REG_EBP: case X86_REG_BP: case X86_REG_BPL: return X86_REG_RBP;
	case X86_REG_R8D: case X86_REG_R8W: case X86_REG_R8B: return X86_REG_R8;
	case X86_REG_R9D: case X86_REG_R9W: case X86_REG_R9B: return X86_REG_R9;
	case X86_REG_R10D: case X86_REG_R10W: case X86_REG_R10B: return X86_REG_R10;
	case X86_REG_R11D: case X86_REG_R11W: case X86_REG_R11B: return X86_REG_R11;
	case X86_REG_R12D: case X86_REG_R12W: case X86_REG_R12B: return X86_REG_R12;
	case X86_REG_R13D: case X86_REG_R13W: case X86_REG_R13B: return X86_REG_R13;
	case X86_REG_R14D: case X86_REG_R14W: case X86_REG_R14B: return X86_REG_R14;
	case X86_REG_R15D: case X86_REG_R15W: case X86_REG_R15B: return X86_REG_R15;
	default: return r;
	}
}

/* What a call may change (System V AMD64). */
static int caller_saved(int r)
{
	return r == X86_REG_RAX || r == X86_REG_RCX || r == X86_REG_RDX ||
	       r == X86_REG_RSI || r == X86_REG_RDI || r == X86_REG_R8 ||
	       r == X86_REG_R9 || r == X86_REG_R10 || r == X86_REG_R11;
}

/* k for an aligned [rsp + 8k] operand (k < 64), else -1. */
static int rsp_slot(const cs_x86_op *o)
{
	if (o->type != X86_OP_MEM || o->mem.base != X86_REG_RSP ||
	    o->mem.index != X86_REG_INVALID || o->mem.disp < 0 ||
	    o->mem.disp >= 512 || (o->mem.disp & 7))
		return -1;
	return (int)(o->mem.disp / 8);
}

/*
 * The roles after one instruction: a 64-bit register move (or a spill to
 * and a reload from [rsp + 8k]) copies the role, any other write clears
 * it, a call clears the caller-saved registers.
 */
static void roles_step(csh cs, const cs_insn *in, struct roles *ro)
{
	const cs_x86 *x = &in->detail->x86;
	const cs_x86_op *dst = &x->operands[0], *src = &x->operands[1];
	cs_regs rr, ww;
	uint8_t nr, nw;
	int k, r;

	if (in->id == X86_INS_MOV && x->op_count == 2 && dst->size == 8) {
		if (dst->type == X86_OP_REG && src->type == X86_OP_REG) {
			ro->r[dst->reg] = ro->r[src->reg];
			return;
		}
		k = rsp_slot(src);
		if (k >= 0 && dst->type == X86_OP_REG) {        /* reload */
			ro->r[dst->reg] = ro->slot[k];
			return;
		}
		k = rsp_slot(dst);
		if (k >= 0) {                                   /* spill */
			ro->slot[k] = src->type == X86_OP_REG ? ro->r[src->reg] : 0;
			return;
		}
	}
	for (k = 0; k < x->op_count; k++) {
		int sl = rsp_slot(&x->operands[k]);

		if (sl >= 0 && (x->operands[k].access & CS_AC_WRITE))
			ro->slot[sl] = 0;
	}
	if (in->id == X86_INS_CALL) {
		for (r = 0; r < X86_REG_ENDING; r++)
			if (caller_saved(r))
				ro->r[r] = 0;
		return;
	}
	if (cs_regs_access(cs, in, rr, &nr, ww, &nw) == CS_ERR_OK)
		for (k = 0; k < nw; k++)
			ro->r[reg64(ww[k])] = 0;
}

/*
 * Roles along the code, one forward pass: a forward branch hands its
 * roles to its target; after a jmp or ret the next instruction starts
 * from what the branches to it handed over (their common roles), not
 * from the path that just ended.  Backward branches (loops) are ignored.
 */
#define MAXPEND 256

struct flow {
	uint64_t addr[MAXPEND];
	struct roles st[MAXPEND];
	int n;
};

/* Keep in a what b agrees on. */
static void roles_meet(struct roles *a, const struct roles *b)
{
	int r, k;

	for (r = 0; r < X86_REG_ENDING; r++)
		if (a->r[r] != b->r[r])
			a->r[r] = 0;
	for (k = 0; k < 64; k++)
		if (a->slot[k] != b->slot[k])
			a->slot[k] = 0;
}

static void flow_give(struct flow *f, uint64_t to, const struct roles *ro)
{
	int i;

	for (i = 0; i < f->n; i++)
		if (f->addr[i] == to) {
			roles_meet(&f->st[i], ro);
			return;
		}
	if (f->n < MAXPEND) {
		f->addr[f->n] = to;
		f->st[f->n] = *ro;
		f->n++;
	}
}

/* Before each instruction; ended: the previous one was a jmp or ret. */
static void flow_enter(const struct flow *f, uint64_t at, struct roles *ro,
		       int ended)
{
	int i;

	for (i = 0; i < f->n; i++)
		if (f->addr[i] == at) {
			if (ended)
				*ro = f->st[i];
			else
				roles_meet(ro, &f->st[i]);
			return;
		}
}

static int is_jump(unsigned id)
{
	return id == X86_INS_JMP || (id >= X86_INS_JAE && id <= X86_INS_JS) ||
	       id == X86_INS_JCXZ || id == X86_INS_JECXZ || id == X86_INS_JRCXZ;
}

/*
 * After instruction in: hand the roles to a forward branch target inside
 * [fn, fn+size); 1 when the path ends here.
 */
static int flow_leave(struct flow *f, const cs_insn *in, const struct roles *ro,
		      uint64_t fn, uint64_t size)
{
	const cs_x86 *x = &in->detail->x86;

	if (is_jump(in->id) && x->op_count == 1 && x->operands[0].type == X86_OP_IMM) {
		uint64_t t = (uint64_t)x->operands[0].imm;

		if (t > in->address && t < fn + size)
			flow_give(f, t, ro);
	}
	return in->id == X86_INS_JMP || in->id == X86_INS_RET || in->id == X86_INS_UD2;
}

static const cs_x86_op *mem_op(const cs_insn *in)
{
	const cs_x86 *x = &in->detail->x86;
	int k;

	for (k = 0; k < x->op_count; k++)
		if (x->operands[k].type == X86_OP_MEM)
			return &x->operands[k];
	return NULL;
}

/* The target of a direct call or jmp, or of one through a GOT slot; 0. */
static uint64_t branch_target(const struct ctx *c, const cs_insn *in)
{
	const cs_x86 *x = &in->detail->x86;
	const cs_x86_op *o = &x->operands[0];

	if (x->op_count != 1)
		return 0;
	if (o->type == X86_OP_IMM)
		return (uint64_t)o->imm;
	if (o->type == X86_OP_MEM && o->mem.base == X86_REG_RIP &&
	    o->mem.index == X86_REG_INVALID)
		return ptr_at(c, in->address + in->size + (int64_t)o->mem.disp);
	return 0;
}

/* What a scan of one function is told of each instruction. */
struct scan {
	uint64_t fn, size;
	void (*look)(const struct ctx *c, struct scan *s, const cs_insn *in,
		     const struct roles *ro);
	void *shape;              /* what look fills */
	const struct vec *set;    /* send: the functions it may transfer to */
	x86_reg tb, ti;           /* recv: base and index of the element stores */
};

/*
 * Disassemble the function [s->fn, s->fn + s->size) (at most max bytes)
 * and show s->look each instruction with the roles it starts from: at
 * the entry, the argument registers hold what start says.  0, or -1 (not
 * in the file, too big, out of memory).
 */
static int scan_function(const struct ctx *c, struct scan *s, uint64_t max,
			 const struct roles *start)
{
	const uint8_t *code = tt_elfimg_va(c->im, s->fn, s->size);
	struct roles ro = *start;
	struct flow *fl;
	cs_insn *ins;
	size_t n, i;
	int ended = 0;

	if (!code || s->size > max)
		return -1;
	n = cs_disasm(c->cs, code, s->size, s->fn, 0, &ins);
	fl = calloc(1, sizeof(*fl));  /* ~80 KB: not on a thread's stack */
	if (!fl) {
		cs_free(ins, n);
		return -1;
	}
	for (i = 0; i < n; i++) {
		flow_enter(fl, ins[i].address, &ro, ended);
		s->look(c, s, &ins[i], &ro);
		roles_step(c->cs, &ins[i], &ro);
		ended = flow_leave(fl, &ins[i], &ro, s->fn, s->size);
	}
	free(fl);
	cs_free(ins, n);
	return 0;
}

/* buffer_plaintext's shape. */
struct sendshape {
	int tests_flag;   /* cmp byte [arg0 + d], 1 */
	int sets_flag;    /* mov byte [arg0 + d], 1 */
	uint32_t flag_off;/* d */
	int fwd0;         /* transfers to the set with arg0 still in rdi */
	int arg2_used;    /* hands arg2 on as arg0, or reads through it
			   * (sendable_plaintext.append_limited_copy) */
	int tag_test;     /* bit k: reads qword [arg1 + 8k], k = 0, 2, 3 */
};

static void send_look(const struct ctx *c, struct scan *s, const cs_insn *in,
		      const struct roles *ro)
{
	const cs_x86 *x = &in->detail->x86;
	const cs_x86_op *m = mem_op(in), *imm = &x->operands[1];
	struct sendshape *sh = s->shape;
	uint64_t t;
	uint8_t role;

	if (m && m->mem.base != X86_REG_INVALID && m->mem.index == X86_REG_INVALID) {
		int one = x->op_count == 2 && imm->type == X86_OP_IMM && imm->imm == 1;

		role = ro->r[m->mem.base];
		if (role == 4)
			sh->arg2_used = 1;
		if (in->id == X86_INS_CMP && m->size == 1 && one && role == 1) {
			sh->tests_flag = 1;
			sh->flag_off = (uint32_t)m->mem.disp;
		}
		if (in->id == X86_INS_MOV && m->size == 1 && one && role == 1 &&
		    x->operands[0].type == X86_OP_MEM) {
			sh->sets_flag = 1;
			sh->flag_off = (uint32_t)m->mem.disp;
		}
		if ((in->id == X86_INS_CMP || in->id == X86_INS_MOV) && m->size == 8 &&
		    role == 2 && (m->access & CS_AC_READ) &&
		    (m->mem.disp == 0 || m->mem.disp == 16 || m->mem.disp == 24))
			sh->tag_test |= 1 << (m->mem.disp / 8);
	}
	if (in->id != X86_INS_CALL && in->id != X86_INS_JMP)
		return;
	t = branch_target(c, in);
	if (t && vec_has(s->set, t) &&
	    (in->id == X86_INS_CALL || t < s->fn || t >= s->fn + s->size)) {
		if (ro->r[X86_REG_RDI] == 1)          /* a call, or a tail call */
			sh->fwd0 = 1;
	} else if (t && in->id == X86_INS_CALL && ro->r[X86_REG_RDI] == 4) {
		sh->arg2_used = 1;
	}
}

static int analyse_send(const struct ctx *c, uint64_t fn, uint64_t size,
			const struct vec *set, struct sendshape *sh)
{
	struct scan s = { .fn = fn, .size = size, .look = send_look, .shape = sh,
			  .set = set };
	struct roles start;

	memset(sh, 0, sizeof(*sh));
	memset(&start, 0, sizeof(start));
	start.r[X86_REG_RDI] = 1;
	start.r[X86_REG_RSI] = 2;
	start.r[X86_REG_RDX] = 4;
	return scan_function(c, &s, SEND_MAX, &start);
}

/* take_received_plaintext's shape. */
struct recvshape {
	int loads;        /* bit k: a qword load of [arg1 + 8k], k = 0..2 */
	int triple;       /* bit k: a store to [B + I*8 + 8k] with one B, I */
	int len_store;    /* a qword store into [arg0 + d] */
	uint32_t q;       /* d */
};

static void recv_look(const struct ctx *c, struct scan *s, const cs_insn *in,
		      const struct roles *ro)
{
	const cs_x86 *x = &in->detail->x86;
	const cs_x86_op *m = mem_op(in);
	struct recvshape *sh = s->shape;
	int load, k;
	uint8_t role;

	(void)c;
	if (in->id != X86_INS_MOV || !m || x->op_count != 2 || m->size != 8 ||
	    m->mem.base == X86_REG_INVALID)
		return;
	role = ro->r[m->mem.base];
	load = x->operands[0].type == X86_OP_REG;
	k = m->mem.disp == 0 || m->mem.disp == 8 || m->mem.disp == 16
		    ? (int)(m->mem.disp / 8) : -1;
	if (load && role == 2 && m->mem.index == X86_REG_INVALID && k >= 0)
		sh->loads |= 1 << k;
	if (load || x->operands[1].type != X86_OP_REG)
		return;
	if (m->mem.index != X86_REG_INVALID && m->mem.scale == 8 && k >= 0) {
		if (k == 0 || s->tb == X86_REG_INVALID) { /* a new element */
			s->tb = m->mem.base;
			s->ti = m->mem.index;
			sh->triple = 0;
		}
		if (m->mem.base == s->tb && m->mem.index == s->ti)
			sh->triple |= 1 << k;
	} else if (m->mem.index == X86_REG_INVALID && role == 1 && !sh->len_store) {
		sh->len_store = 1;
		sh->q = (uint32_t)m->mem.disp;
	}
}

static int analyse_recv(const struct ctx *c, uint64_t fn, uint64_t size,
			struct recvshape *sh)
{
	struct scan s = { .fn = fn, .size = size, .look = recv_look, .shape = sh,
			  .tb = X86_REG_INVALID, .ti = X86_REG_INVALID };
	struct roles start;

	memset(sh, 0, sizeof(*sh));
	memset(&start, 0, sizeof(start));
	start.r[X86_REG_RDI] = 1;
	start.r[X86_REG_RSI] = 2;
	return scan_function(c, &s, RECV_MAX, &start);
}

/* ---- step 3: the call edges into rustls's code -------------------------- */

static int cmp_edge(const void *a, const void *b)
{
	const struct edge *x = a, *y = b;

	if (x->target != y->target)
		return x->target < y->target ? -1 : 1;
	return x->caller < y->caller ? -1 : x->caller > y->caller;
}

static int edge_add(struct edges *g, uint64_t t, uint64_t caller)
{
	if (g->n == g->cap) {
		size_t nc = g->cap ? g->cap * 2 : 4096;
		struct edge *ne = realloc(g->e, nc * sizeof(*ne));

		if (!ne)
			return TT_ENOMEM;
		g->e = ne;
		g->cap = nc;
	}
	g->e[g->n].target = t;
	g->e[g->n].caller = caller;
	g->n++;
	return 0;
}

/* The writable qwords (GOT slots, among others) that point into the window. */
static int got_slots(const struct ctx *c, struct vec *slots)
{
	uint64_t va, v;
	unsigned i;
	int r;

	for (i = 0; i < c->im->nseg; i++) {
		const struct tt_elfseg *s = &c->im->seg[i];

		if (!(s->flags & PF_W))
			continue;
		for (va = (s->vaddr + 7) & ~7ull; va + 8 <= s->vaddr + s->filesz;
		     va += 8) {
			v = ptr_at(c, va);
			if (v >= c->g.lo && v < c->g.hi && (r = vec_push(slots, va)))
				return r;
		}
	}
	vec_sort_unique(slots);
	return 0;
}

/*
 * The target of the call or jump at b (one byte of code at site): a
 * direct one (E8, E9) into the window, or one through a slot of slots
 * (FF 15, FF 25).  0 if none.
 */
static uint64_t call_at(const struct ctx *c, const uint8_t *b, uint64_t site,
			const struct vec *slots)
{
	uint64_t t;

	if (b[0] == 0xe8 || b[0] == 0xe9) {
		t = site + 5 + (int64_t)(int32_t)tt_elfimg_le32(b + 1);
		return t >= c->g.lo && t < c->g.hi ? t : 0;
	}
	if (b[0] == 0xff && (b[1] == 0x15 || b[1] == 0x25) && slots->n) {
		t = site + 6 + (int64_t)(int32_t)tt_elfimg_le32(b + 2);
		return vec_has(slots, t) ? ptr_at(c, t) : 0;
	}
	return 0;
}

/*
 * One pass over the code: every call or jump into the window [g.lo,
 * g.hi), with the function it is in (a jump inside a function is none),
 * into c->g sorted by target.
 */
static int gather_edges(struct ctx *c)
{
	uint64_t o, t, site, fs, fz, cur_lo = 1, cur_hi = 0; /* the last function */
	struct vec slots = { 0 };
	unsigned i;
	int r;

	r = got_slots(c, &slots);
	for (i = 0; i < c->im->nseg && r == 0; i++) {
		const struct tt_elfseg *s = &c->im->seg[i];
		const uint8_t *b = c->im->p + s->off;

		if (!(s->flags & PF_X))
			continue;
		for (o = 0; o + 6 <= s->filesz && r == 0; o++) {
			site = s->vaddr + o;
			t = call_at(c, b + o, site, &slots);
			if (!t)
				continue;
			if (site < cur_lo || site >= cur_hi) {
				if (func_of(c, site, &fs, &fz))
					continue;
				cur_lo = fs;
				cur_hi = fs + fz;
			}
			if (t < cur_lo || t >= cur_hi)
				r = edge_add(&c->g, t, cur_lo);
		}
	}
	if (r == 0 && c->g.n)
		qsort(c->g.e, c->g.n, sizeof(*c->g.e), cmp_edge);
	free(slots.v);
	return r;
}

/* How many distinct functions call t; with out, they are added to it. */
static size_t callers_of(const struct edges *g, uint64_t t, struct vec *out)
{
	size_t lo = 0, hi = g->n, n = 0, i;

	while (lo < hi) {
		size_t m = (lo + hi) / 2;

		if (g->e[m].target < t)
			lo = m + 1;
		else
			hi = m;
	}
	for (i = lo; i < g->n && g->e[i].target == t; i++)
		if (i == lo || g->e[i].caller != g->e[i - 1].caller) {
			n++;
			if (out && vec_push(out, g->e[i].caller))
				return (size_t)-1;
		}
	return n;
}

/* ---- step 4: dyn vtables ------------------------------------------------ */

/*
 * The slot-3 functions (the first method) of everything shaped like a
 * vtable, [drop or 0, size, align (a power of two), fn, ...], into
 * c->methods.
 */
static int vtable_methods(struct ctx *c)
{
	uint64_t va, align, size, f3, drop;
	unsigned i;
	int ok, r;

	for (i = 0; i < c->im->nseg; i++) {
		const struct tt_elfseg *s = &c->im->seg[i];

		if ((s->flags & PF_X) || !(s->flags & PF_W))
			continue;
		for (va = (s->vaddr + 7) & ~7ull; va + 32 <= s->vaddr + s->filesz;
		     va += 8) {
			align = rd64(c, va + 16, &ok);
			if (!ok || !align || align > 4096 || (align & (align - 1)))
				continue;
			size = rd64(c, va + 8, &ok);
			if (size > (1u << 24) || (size && size % align))
				continue;
			f3 = ptr_at(c, va + 24);
			if (!tt_elfimg_is_code(c->im, f3))
				continue;
			drop = ptr_at(c, va);
			if ((drop && !tt_elfimg_is_code(c->im, drop)) ||
			    !is_func_start(c, f3, NULL))
				continue;
			if ((r = vec_push(&c->methods, f3)))
				return r;
		}
	}
	vec_sort_unique(&c->methods);
	return 0;
}

/* ---- the finder --------------------------------------------------------- */

/*
 * send, anchor 1: the functions encrypt_outgoing is (inlined) in (c->enc),
 * the call edges near them (c->g), and every function within SEND_DEPTH
 * calls of them (c->reach).
 */
static int send_reach(struct ctx *c, const char *ver)
{
	struct vec layer = { 0 }, next = { 0 };
	size_t i;
	int d, r;

	if ((r = find_locations(c)))
		return r;
	if (!c->locs.n)
		return fail(c, TT_EPROTO, "rustls %s: no panic Location names "
			    "record_layer.rs", ver);
	if ((r = find_encrypt_sites(c)))
		return r;
	if (!c->enc.n)
		return fail(c, TT_EPROTO, "rustls %s: %zu record_layer.rs Locations, "
			    "no code refers to them", ver, c->locs.n);
	c->g.lo = c->enc.v[0] > WINDOW ? c->enc.v[0] - WINDOW : 0;
	c->g.hi = c->enc.v[c->enc.n - 1] + WINDOW;
	if ((r = gather_edges(c)))
		return r;

	/* breadth first, one layer of callers at a time (c->enc is sorted) */
	for (i = 0; i < c->enc.n && r == 0; i++)
		if (!(r = vec_push(&c->reach, c->enc.v[i])))
			r = vec_push(&layer, c->enc.v[i]);
	for (d = 0; d < SEND_DEPTH && layer.n && r == 0; d++) {
		next.n = 0;
		for (i = 0; i < layer.n && r == 0; i++)
			if (callers_of(&c->g, layer.v[i], &next) == (size_t)-1)
				r = TT_ENOMEM;
		vec_sort_unique(&next);
		layer.n = 0;
		for (i = 0; i < next.n && r == 0; i++)
			if (!vec_has(&c->reach, next.v[i]))
				r = vec_push(&layer, next.v[i]);
		for (i = 0; i < layer.n && r == 0; i++)
			r = vec_push(&c->reach, layer.v[i]);
		vec_sort_unique(&c->reach);
	}
	free(layer.v);
	free(next.v);
	return r;
}

/* The shape of the i-th function of c->reach, unless it is in E: 0, or -1. */
static int reach_shape(struct ctx *c, size_t i, struct sendshape *sh)
{
	uint64_t fn = c->reach.v[i], size;

	if (vec_has(&c->enc, fn) || !is_func_start(c, fn, &size))
		return -1;
	return analyse_send(c, fn, size, &c->reach, sh);
}

/*
 * send, anchor 2: the one function of c->reach shaped like
 * buffer_plaintext, and another that sets the flag byte it tests.
 */
static int find_send(struct ctx *c, tt_rustls_syms *out)
{
	struct sendshape sh;
	uint64_t bp = 0;
	uint32_t flag = 0;
	int nbp = 0, nset = 0;
	size_t i;

	for (i = 0; i < c->reach.n; i++) {
		if (reach_shape(c, i, &sh))
			continue;
		TRACE("send? %#lx test %d set %d +%#x fwd0 %d a2 %d tag %d\n",
		      (unsigned long)c->reach.v[i], sh.tests_flag, sh.sets_flag,
		      sh.flag_off, sh.fwd0, sh.arg2_used, sh.tag_test);
		if (sh.tests_flag && sh.fwd0 && sh.arg2_used && sh.tag_test == 0xd) {
			nbp++;
			bp = c->reach.v[i];
			flag = sh.flag_off;
		}
	}
	if (nbp != 1)
		return fail(c, TT_EPROTO, "rustls %s: %d functions have "
			    "buffer_plaintext's shape among the %zu within %d calls "
			    "of the %zu encrypt_outgoing sites", out->version, nbp,
			    c->reach.n, SEND_DEPTH, c->enc.n);
	for (i = 0; i < c->reach.n; i++)
		if (c->reach.v[i] != bp && reach_shape(c, i, &sh) == 0 &&
		    sh.sets_flag && sh.fwd0 && sh.flag_off == flag)
			nset++;
	if (nset < 1)
		return fail(c, TT_EPROTO, "rustls %s: buffer_plaintext candidate %#lx "
			    "tests byte +%#x, but nothing that encrypts sets it "
			    "(start_outgoing_traffic)", out->version, (unsigned long)bp,
			    flag);
	c->send_va = bp;
	c->may_send_off = flag;
	out->ncallers_send = (int)callers_of(&c->g, bp, NULL);
	return 0;
}

/*
 * Is t called only by first methods of vtables, from two functions or
 * more?  i: the first of its edges; *next: past its last; *ncallers.
 */
static int only_vtable_callers(const struct ctx *c, size_t i, size_t *next,
			       int *ncallers)
{
	const struct edge *e = c->g.e;
	size_t j, distinct = 0, methods = 0;

	for (j = i; j < c->g.n && e[j].target == e[i].target; j++)
		if (j == i || e[j].caller != e[j - 1].caller) {
			distinct++;
			methods += vec_has(&c->methods, e[j].caller);
		}
	*next = j;
	*ncallers = (int)distinct;
	return distinct >= 2 && methods == distinct;
}

/* recv: the one function that passes both anchors (header comment). */
static int find_recv(struct ctx *c, tt_rustls_syms *out)
{
	struct recvshape sh;
	uint64_t t, size, trp = 0;
	uint32_t queue = 0;
	int ntrp = 0, ncallers, trp_callers = 0, r;
	size_t i, next;

	if ((r = vtable_methods(c)))
		return r;
	for (i = 0; i < c->g.n; i = next) {
		t = c->g.e[i].target;
		if (!only_vtable_callers(c, i, &next, &ncallers) || t == c->send_va ||
		    !is_func_start(c, t, &size) || size > RECV_FN_MAX ||
		    analyse_recv(c, t, size, &sh))
			continue;
		if (sh.loads == 7 && sh.triple == 7 && sh.len_store) {
			ntrp++;
			trp = t;
			trp_callers = ncallers;
			queue = sh.q;
		}
	}
	if (ntrp != 1)
		return fail(c, TT_EPROTO, "rustls %s: %d functions have "
			    "take_received_plaintext's shape among those called only by "
			    "dyn vtable methods (%zu methods)", out->version, ntrp,
			    c->methods.n);
	c->recv_va = trp;
	c->recv_queue_off = queue;
	c->recv_callers = trp_callers;
	return 0;
}

/* Can the image be read (x86-64, its segments)?  1, 0 (no) or TT_ENOMEM. */
static int open_image(struct ctx *c)
{
	const tt_elfimg *im = c->im;
	int r;

	if (!im->elf || !im->phdrs_ok || im->eh.e_machine != EM_X86_64)
		return 0;
	r = load_rela(c);
	if (r < 0)
		return r;
	if (load_ehhdr(c) < 0)
		c->nfde = 0;
	return 1;
}

static int rustlsfind(struct ctx *c, tt_rustls_syms *out)
{
	const char *ver = out->version;
	int r;

	r = open_image(c);
	if (r <= 0)
		return r;
	r = find_paths(c, out->version, sizeof(out->version));
	if (r <= 0)
		return r; /* 0: no rustls 0.23 in this file */
	if (!c->nfde)
		return fail(c, TT_ENOTSUP, "rustls %s but no usable .eh_frame_hdr: "
			    "function bounds unknown", ver);
	if (!c->ends.n)
		return fail(c, TT_EPROTO, "rustls %s but no record_layer.rs source "
			    "path (no panic site to anchor on)", ver);
	vec_sort_unique(&c->ends);
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &c->cs) != CS_ERR_OK)
		return fail(c, TT_ENOMEM, "capstone unavailable");
	cs_option(c->cs, CS_OPT_DETAIL, CS_OPT_ON);
	if ((r = send_reach(c, ver)) || (r = find_send(c, out)) ||
	    (r = find_recv(c, out)))
		return r;
	out->send_va = c->send_va;
	out->recv_va = c->recv_va;
	out->may_send_off = c->may_send_off;
	out->recv_queue_off = c->recv_queue_off;
	out->ncallers_recv = c->recv_callers;
	if (tt_elfimg_va_off(c->im, out->send_va, 1, &out->send) < 0 ||
	    tt_elfimg_va_off(c->im, out->recv_va, 1, &out->recv) < 0)
		return fail(c, TT_EPROTO, "rustls %s: a found function lies outside "
			    "the file", ver);
	return 1;
}

/* What tt_rustlsfind and tt_rustlsfind_mem share: c->im ready. */
static int find_in(struct ctx *c, tt_rustls_syms *out)
{
	int r;

	r = rustlsfind(c, out);
	free(c->ends.v);
	free(c->locs.v);
	free(c->enc.v);
	free(c->reach.v);
	free(c->methods.v);
	free(c->g.e);
	free(c->rela);
	if (c->cs)
		cs_close(&c->cs);
	return r;
}

int tt_rustlsfind_mem(const void *image, size_t size, tt_rustls_syms *out,
		      char *why, size_t cap)
{
	struct ctx c = { .why = why, .cap = cap };
	tt_elfimg im;

	memset(out, 0, sizeof(*out));
	if (why && cap)
		why[0] = '\0';
	tt_elfimg_init(&im, image, size);
	c.im = &im;
	return find_in(&c, out);
}

int tt_rustlsfind(const char *path, tt_rustls_syms *out, char *why, size_t cap)
{
	struct ctx c = { .why = why, .cap = cap };
	tt_elfimg im;
	int r;

	memset(out, 0, sizeof(*out));
	if (why && cap)
		why[0] = '\0';
	if (tt_elfimg_open(&im, path) < 0) {
		if (im.fail == TT_ELFIMG_NO_OPEN)
			return fail(&c, TT_EIO, "open %s failed", path);
		if (im.fail == TT_ELFIMG_NOT_REGULAR)
			return fail(&c, TT_EIO, "%s: not a regular file", path);
		if (im.fail == TT_ELFIMG_NO_MAP)
			return fail(&c, TT_EIO, "mmap %s failed", path);
		return 0; /* empty: too short to be ELF */
	}
	c.im = &im;
	r = find_in(&c, out);
	tt_elfimg_close(&im);
	return r;
}
