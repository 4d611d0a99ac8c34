/*
 * rustlsfind.c - where a stripped Rust
 * program that links rustls 0.23 hands application plaintext to rustls and
 * receives it back, found in the code and checked by anchors that must
 * agree.  No offset, hash or prologue of any release is written here.
 * The method, the evidence and the limits are in rustlsfind_notes.md.
 *
 * The two probe points are rustls's own non-generic CommonState methods,
 * through which every connection of the program passes whatever generic
 * copies of the I/O code (hyper-rustls, tokio-rustls, tungstenite, ...)
 * the compiler made:
 *
 *   send  CommonState::buffer_plaintext(&mut self, payload: &OutboundChunks,
 *                                       sendable_plaintext: &mut ChunkVecBuffer)
 *                                       -> usize
 *         rdi = the connection (its CommonState), rsi = the payload, rax at
 *         return = the bytes rustls accepted (maybe fewer than offered).
 *         OutboundChunks: qword 0 == 0 -> Single { ptr at +8, len at +16 };
 *         else Multiple { chunks: &[&[u8]] at +0/+8, start at +16, end at +24 }.
 *         Entry and return probe.
 *   recv  CommonState::take_received_plaintext(&mut self, bytes: &Payload)
 *         rdi = the same connection, rsi = the decrypted application data of
 *         one TLS record: ptr at +8, len at +16.  Entry probe only.
 *
 * send, anchor 1 (rustls's panic sites): encrypt_outgoing() asserts and
 * unwraps, so every function it is compiled into refers to a core::panic::
 * Location record whose file is ".../rustls-0.23.N/src/record_layer.rs".
 * Those functions (E) are found through the records, whatever the lines
 * (0.23.46: 3, encrypt_outgoing inlined; 0.23.36: 1, out of line).
 * send, anchor 2 (what the code does with its arguments): among the
 * functions within SEND_DEPTH calls of E, buffer_plaintext is the one that
 * compares a byte of its first argument with 1 (may_send_application_data),
 * transfers with its first argument still in rdi to a function of that
 * set, uses its third argument (sendable_plaintext.append_limited_copy,
 * called or inlined) and reads qwords +0, +16 and +24 of its second (the
 * OutboundChunks tag and end - start).  Agreement: another function of
 * the set SETS the same byte to 1 before encrypting (start_outgoing_
 * traffic): same offset, or no answer.
 *
 * recv, anchor 1 (dyn State vtables): take_received_plaintext is called
 * only by the handle() methods of the ExpectTraffic states (client and
 * server, TLS 1.2 and 1.3), which are reached through `dyn State` vtables:
 * it has at least two direct callers and every one is the first method
 * (slot 3) of something shaped like a vtable [drop|0, size, align, fn].
 * recv, anchor 2 (what the code does with its arguments): it reads the
 * three qwords of its second argument and pushes a 24-byte element
 * (a Vec<u8>) into a VecDeque held in its first argument (the element
 * stores at [buf + i*24 + 0/8/16] and the length store into the first
 * argument).  Exactly one function may pass both.
 *
 * Call edges come from one pass over .text (direct call/jmp, and calls
 * through GOT slots) restricted to targets within WINDOW of E: rustls's
 * non-generic code lies together.  Register roles are followed per
 * instruction with Capstone (moves, [rsp+k] spills, forward branches).
 *
 * The answer is struct tt_rustls_syms below (file offsets of both
 * functions, plus what the anchors agreed on, for the log).
 *
 * Answer: 1 found (*out filled), 0 not a rustls 0.23 program (no
 * "/rustls-0.23." source path), negative tt_error when it is one but an
 * anchor did not single out one function: why says which.
 *
*/
#include <capstone/capstone.h>
#include <elf.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tlsfind.h"
#include "tokentap/error.h"


/* ---- the mapped file -------------------------------------------------- */

#define MAXSEG 16

struct seg {
	uint64_t va, off, filesz, memsz;
	uint32_t flags;
};

struct rel {
	uint64_t va, addend;
};

struct img {
	const uint8_t *map;
	size_t size;
	struct seg seg[MAXSEG];
	int nseg;
	/* .eh_frame_hdr search table */
	uint64_t ehh_va;
	const uint8_t *ehtab;
	uint64_t nfde;
	/* R_X86_64_RELATIVE addends (RELA binaries store 0 in place) */
	struct rel *rela;
	size_t nrela;
	/* one-entry CIE cache */
	uint64_t cie_va;
	uint8_t cie_enc;
};

struct ctx {
	struct img im;
	csh cs;
	char *why;
	size_t cap;
};

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

static const uint8_t *at(const struct img *im, uint64_t va, uint64_t n)
{
	for (int i = 0; i < im->nseg; i++) {
		const struct seg *s = &im->seg[i];
		if (va >= s->va && va - s->va + n <= s->filesz)
			return im->map + s->off + (va - s->va);
	}
	return NULL;
}

static int va2off(const struct img *im, uint64_t va, uint64_t *off)
{
	for (int i = 0; i < im->nseg; i++) {
		const struct seg *s = &im->seg[i];
		if (va >= s->va && va < s->va + s->filesz) {
			*off = va - s->va + s->off;
			return 0;
		}
	}
	return -1;
}

static int is_exec(const struct img *im, uint64_t va)
{
	for (int i = 0; i < im->nseg; i++)
		if ((im->seg[i].flags & PF_X) && va >= im->seg[i].va &&
		    va < im->seg[i].va + im->seg[i].filesz)
			return 1;
	return 0;
}

static uint64_t rd64(const struct img *im, uint64_t va, int *ok)
{
	const uint8_t *p = at(im, va, 8);
	uint64_t v = 0;

	if (!p) {
		*ok = 0;
		return 0;
	}
	memcpy(&v, p, 8);
	*ok = 1;
	return v;
}

static int rel_cmp(const void *a, const void *b)
{
	const struct rel *x = a, *y = b;
	return x->va < y->va ? -1 : x->va > y->va;
}

/* A pointer stored in data: in place (static, RELR) or in .rela.dyn. */
static uint64_t ptr_at(const struct img *im, uint64_t va)
{
	int ok;
	uint64_t v = rd64(im, va, &ok);

	if (!ok)
		return 0;
	if (v == 0 && im->nrela) {
		size_t lo = 0, hi = im->nrela;
		while (lo < hi) {
			size_t m = (lo + hi) / 2;
			if (im->rela[m].va < va)
				lo = m + 1;
			else
				hi = m;
		}
		if (lo < im->nrela && im->rela[lo].va == va)
			return im->rela[lo].addend;
	}
	return v;
}

static int load_rela(struct img *im, const Elf64_Phdr *ph, int n)
{
	uint64_t rela = 0, relasz = 0;

	for (int i = 0; i < n; i++) {
		if (ph[i].p_type != PT_DYNAMIC)
			continue;
		for (uint64_t o = 0; o + sizeof(Elf64_Dyn) <= ph[i].p_filesz; o += sizeof(Elf64_Dyn)) {
			Elf64_Dyn d;
			if (ph[i].p_offset + o + sizeof d > im->size)
				break;
			memcpy(&d, im->map + ph[i].p_offset + o, sizeof d);
			if (d.d_tag == DT_NULL)
				break;
			if (d.d_tag == DT_RELA)
				rela = d.d_un.d_ptr;
			if (d.d_tag == DT_RELASZ)
				relasz = d.d_un.d_val;
		}
	}
	if (!rela || !relasz)
		return 0;
	const uint8_t *p = at(im, rela, relasz);
	if (!p)
		return 0;
	size_t cnt = relasz / sizeof(Elf64_Rela);
	im->rela = calloc(cnt ? cnt : 1, sizeof *im->rela);
	if (!im->rela)
		return TT_ENOMEM;
	for (size_t i = 0; i < cnt; i++) {
		Elf64_Rela r;
		memcpy(&r, p + i * sizeof r, sizeof r);
		if (ELF64_R_TYPE(r.r_info) == R_X86_64_RELATIVE) {
			im->rela[im->nrela].va = r.r_offset;
			im->rela[im->nrela].addend = (uint64_t)r.r_addend;
			im->nrela++;
		}
	}
	if (im->nrela)
		qsort(im->rela, im->nrela, sizeof *im->rela, rel_cmp);
	return 0;
}

/* ---- functions from .eh_frame ------------------------------------------ */

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

/* Read an encoded pointer (DW_EH_PE_*); pc is the address of the field. */
static int enc_read(uint8_t enc, const uint8_t **p, const uint8_t *end, uint64_t pc, uint64_t *v)
{
	int64_t x;
	switch (enc & 0x0f) {
	case 0x03: { uint32_t u; if (end - *p < 4) return -1; memcpy(&u, *p, 4); *p += 4; x = u; break; }
	case 0x0b: { int32_t s; if (end - *p < 4) return -1; memcpy(&s, *p, 4); *p += 4; x = s; break; }
	case 0x04: case 0x0c: case 0x00: { int64_t s; if (end - *p < 8) return -1; memcpy(&s, *p, 8); *p += 8; x = s; break; }
	default: return -1;
	}
	if ((enc & 0x70) == 0x10)
		x += (int64_t)pc;
	else if ((enc & 0x70) != 0)
		return -1;
	*v = (uint64_t)x;
	return 0;
}

static int load_ehhdr(struct img *im, const Elf64_Phdr *ph, int n)
{
	for (int i = 0; i < n; i++) {
		if (ph[i].p_type != PT_GNU_EH_FRAME)
			continue;
		const uint8_t *h = at(im, ph[i].p_vaddr, 12);
		if (!h || h[0] != 1)
			return -1;
		/* eh_frame_ptr pcrel|sdata4, fde_count udata4, table datarel|sdata4:
		 * what GNU ld, gold and lld write. */
		if (h[1] != 0x1b || h[2] != 0x03 || h[3] != 0x3b)
			return -1;
		uint32_t cnt;
		memcpy(&cnt, h + 8, 4);
		im->ehh_va = ph[i].p_vaddr;
		im->ehtab = at(im, ph[i].p_vaddr + 12, (uint64_t)cnt * 8);
		im->nfde = cnt;
		return im->ehtab ? 0 : -1;
	}
	return -1;
}

static uint64_t tab_pc(const struct img *im, uint64_t i)
{
	int32_t v;
	memcpy(&v, im->ehtab + i * 8, 4);
	return im->ehh_va + (int64_t)v;
}

static uint64_t tab_fde(const struct img *im, uint64_t i)
{
	int32_t v;
	memcpy(&v, im->ehtab + i * 8 + 4, 4);
	return im->ehh_va + (int64_t)v;
}

/* The FDE encoding its CIE declares ('R' augmentation). */
static int cie_enc(struct img *im, uint64_t cie, uint8_t *enc)
{
	if (im->cie_va == cie) {
		*enc = im->cie_enc;
		return 0;
	}
	const uint8_t *p = at(im, cie, 8);
	if (!p)
		return -1;
	uint32_t len;
	memcpy(&len, p, 4);
	const uint8_t *end = at(im, cie, 4 + (uint64_t)len);
	if (!end || len == 0xffffffff)
		return -1;
	end = p + 4 + len;
	const uint8_t *q = p + 8; /* after length and CIE id */
	uint8_t ver = *q++;
	const char *aug = (const char *)q;
	size_t al = strnlen(aug, (size_t)(end - q));
	q += al + 1;
	uleb(&q, end);          /* code alignment */
	uleb(&q, end);          /* data alignment (sleb, skipped alike) */
	if (ver == 1)
		q++;
	else
		uleb(&q, end);
	uint8_t e = 0; /* absptr */
	if (aug[0] == 'z') {
		uleb(&q, end);
		for (size_t k = 1; k < al && q < end; k++) {
			if (aug[k] == 'R') {
				e = *q++;
			} else if (aug[k] == 'L') {
				q++;
			} else if (aug[k] == 'P') {
				uint8_t pe = *q++;
				uint64_t dummy;
				if (enc_read(pe, &q, end, 0, &dummy))
					return -1;
			} else if (aug[k] == 'S' || aug[k] == 'B') {
				continue;
			} else {
				return -1;
			}
		}
	}
	im->cie_va = cie;
	im->cie_enc = e;
	*enc = e;
	return 0;
}

/* The function (start, size) that contains va, from its FDE. */
static int func_of(struct img *im, uint64_t va, uint64_t *start, uint64_t *size)
{
	uint64_t lo = 0, hi = im->nfde;
	if (!im->nfde)
		return -1;
	while (lo < hi) {
		uint64_t m = (lo + hi) / 2;
		if (tab_pc(im, m) <= va)
			lo = m + 1;
		else
			hi = m;
	}
	if (lo == 0)
		return -1;
	uint64_t fde = tab_fde(im, lo - 1);
	const uint8_t *p = at(im, fde, 8);
	if (!p)
		return -1;
	uint32_t len, cptr;
	memcpy(&len, p, 4);
	memcpy(&cptr, p + 4, 4);
	if (len == 0xffffffff || len < 12)
		return -1;
	uint8_t enc;
	if (cie_enc(im, fde + 4 - cptr, &enc))
		return -1;
	const uint8_t *q = p + 8, *end = p + 4 + len;
	uint64_t pc, range;
	if (enc_read(enc, &q, end, fde + 8, &pc) ||
	    enc_read(enc & 0x0f, &q, end, 0, &range))
		return -1;
	if (va < pc || va >= pc + range)
		return -1;
	*start = pc;
	*size = range;
	return 0;
}

static int is_func_start(struct img *im, uint64_t va, uint64_t *size)
{
	uint64_t s, z;
	if (func_of(im, va, &s, &z) || s != va)
		return 0;
	if (size)
		*size = z;
	return 1;
}

/* ---- small sets ----------------------------------------------------------- */

struct vec {
	uint64_t *v;
	size_t n, cap;
};

static int vpush(struct vec *a, uint64_t x)
{
	if (a->n == a->cap) {
		size_t nc = a->cap ? a->cap * 2 : 64;
		uint64_t *nv = realloc(a->v, nc * sizeof *nv);
		if (!nv)
			return TT_ENOMEM;
		a->v = nv;
		a->cap = nc;
	}
	a->v[a->n++] = x;
	return 0;
}

static int u64cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void vsortu(struct vec *a)
{
	size_t w = 0;
	if (!a->n)
		return;
	qsort(a->v, a->n, sizeof *a->v, u64cmp);
	for (size_t i = 0; i < a->n; i++)
		if (!w || a->v[w - 1] != a->v[i])
			a->v[w++] = a->v[i];
	a->n = w;
}

static int vhas(const struct vec *a, uint64_t x)
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

/* ---- step 1: rustls and its record_layer.rs panic Locations ------------- */

/* "…/rustls-0.23.N/src/record_layer.rs" strings: [va, va+len) each. */
static int find_paths(struct ctx *c, struct vec *ends, char *ver, size_t vcap)
{
	struct img *im = &c->im;
	static const char key[] = "/rustls-0.23.";
	int found = 0;

	for (int i = 0; i < im->nseg; i++) {
		const struct seg *s = &im->seg[i];
		if (s->flags & PF_X)
			continue;
		const uint8_t *b = im->map + s->off, *e = b + s->filesz, *p = b;
		while ((p = memmem(p, (size_t)(e - p), key, sizeof key - 1)) != NULL) {
			const uint8_t *q = p + sizeof key - 1;
			while (q < e && *q >= '0' && *q <= '9')
				q++;
			if (q + 5 <= e && !memcmp(q, "/src/", 5)) {
				char v[24];
				size_t vl = (size_t)(q - (p + 8));
				if (vl < sizeof v) {
					memcpy(v, p + 8, vl);
					v[vl] = 0;
					if (!found) {
						snprintf(ver, vcap, "%s", v);
						found = 1;
					} else if (strcmp(v, ver)) {
						return fail(c, TT_ENOTSUP, "two rustls 0.23 releases linked (%s and %s): not handled", ver, v);
					}
				}
				static const char rl[] = "/src/record_layer.rs";
				if ((size_t)(e - q) >= sizeof rl - 1 && !memcmp(q, rl, sizeof rl - 1)) {
					uint64_t endva = s->va + (uint64_t)(q + sizeof rl - 1 - b);
					int r = vpush(ends, endva);
					if (r)
						return r;
				}
			}
			p += sizeof key - 1;
		}
	}
	return found;
}

/* Location { file: &str, line: u32, col: u32 } records naming one of the
 * record_layer.rs strings (a record points at the start of the path and
 * ends exactly at its end). */
static int find_locations(struct ctx *c, const struct vec *ends, struct vec *locs)
{
	struct img *im = &c->im;
	for (int i = 0; i < im->nseg; i++) {
		const struct seg *s = &im->seg[i];
		if ((s->flags & PF_X) || !(s->flags & PF_W))
			continue;
		for (uint64_t va = (s->va + 7) & ~7ull; va + 24 <= s->va + s->filesz; va += 8) {
			uint64_t p = ptr_at(im, va);
			int ok;
			uint64_t len = rd64(im, va + 8, &ok);
			if (!ok || len == 0 || len > 4096)
				continue;
			if (!vhas(ends, p + len))
				continue;
			uint64_t lc = rd64(im, va + 16, &ok);
			uint32_t line = (uint32_t)lc, col = (uint32_t)(lc >> 32);
			if (!ok || line == 0 || line > 100000 || col == 0 || col > 1000)
				continue;
			int r = vpush(locs, va);
			if (r)
				return r;
		}
	}
	vsortu(locs);
	return 0;
}

/* ---- step 2: scans of the code ------------------------------------------ */

/* Functions with a `lea reg, [rip + X]` to one of targets. */
static int funcs_referring(struct ctx *c, const struct vec *targets, struct vec *funcs)
{
	struct img *im = &c->im;
	if (!targets->n)
		return 0;
	uint64_t tmin = targets->v[0], tmax = targets->v[targets->n - 1];
	for (int i = 0; i < im->nseg; i++) {
		const struct seg *s = &im->seg[i];
		if (!(s->flags & PF_X))
			continue;
		const uint8_t *b = im->map + s->off;
		for (uint64_t o = 0; o + 7 <= s->filesz; o++) {
			if (b[o + 1] != 0x8d || (b[o] & 0xfb) != 0x48 || (b[o + 2] & 0xc7) != 0x05)
				continue;
			int32_t d;
			memcpy(&d, b + o + 3, 4);
			uint64_t t = s->va + o + 7 + (int64_t)d;
			if (t < tmin || t > tmax || !vhas(targets, t))
				continue;
			uint64_t fs, fz;
			if (!func_of(im, s->va + o, &fs, &fz)) {
				int r = vpush(funcs, fs);
				if (r)
					return r;
			}
		}
	}
	vsortu(funcs);
	return 0;
}

/* ---- step 3: what a function does with its arguments --------------------- */

/* Which entry argument a register still holds (bit 0 rdi, 1 rsi, 2 rdx). */
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

#define CALLER_SAVED(r) ((r) == X86_REG_RAX || (r) == X86_REG_RCX || (r) == X86_REG_RDX || \
			 (r) == X86_REG_RSI || (r) == X86_REG_RDI || (r) == X86_REG_R8 || \
			 (r) == X86_REG_R9 || (r) == X86_REG_R10 || (r) == X86_REG_R11)

/* Update roles after one instruction: a 64-bit register move copies the
 * role, any other write clears it, a call clears the caller-saved ones. */
static int rsp_slot(const cs_x86_op *o)
{
	if (o->type != X86_OP_MEM || o->mem.base != X86_REG_RSP || o->mem.index != X86_REG_INVALID ||
	    o->mem.disp < 0 || o->mem.disp >= 512 || (o->mem.disp & 7))
		return -1;
	return (int)(o->mem.disp / 8);
}

static void roles_step(csh cs, const cs_insn *in, struct roles *ro)
{
	const cs_x86 *x = &in->detail->x86;
	if (in->id == X86_INS_MOV && x->op_count == 2 && x->operands[0].type == X86_OP_REG &&
	    x->operands[1].type == X86_OP_REG && x->operands[0].size == 8) {
		ro->r[x->operands[0].reg] = ro->r[x->operands[1].reg];
		return;
	}
	if (in->id == X86_INS_MOV && x->op_count == 2 && x->operands[0].size == 8) {
		int k = rsp_slot(&x->operands[1]);
		if (k >= 0 && x->operands[0].type == X86_OP_REG) {      /* reload */
			ro->r[x->operands[0].reg] = ro->slot[k];
			return;
		}
		k = rsp_slot(&x->operands[0]);
		if (k >= 0) {                                           /* spill */
			ro->slot[k] = x->operands[1].type == X86_OP_REG ? ro->r[x->operands[1].reg] : 0;
			return;
		}
	}
	for (int k = 0; k < x->op_count; k++) {
		int sl = rsp_slot(&x->operands[k]);
		if (sl >= 0 && (x->operands[k].access & CS_AC_WRITE))
			ro->slot[sl] = 0;
	}
	if (in->id == X86_INS_CALL) {
		for (int r = 0; r < X86_REG_ENDING; r++)
			if (CALLER_SAVED(r))
				ro->r[r] = 0;
		return;
	}
	cs_regs rr, ww;
	uint8_t nr, nw;
	if (cs_regs_access(cs, in, rr, &nr, ww, &nw) == CS_ERR_OK)
		for (int k = 0; k < nw; k++)
			ro->r[reg64(ww[k])] = 0;
}

/* Roles along the code, one forward pass: a forward branch hands its
 * state to its target; after a jmp or ret the next instruction starts
 * from what the branches to it handed over (their common roles), not from
 * the path that just ended.  Backward branches (loops) are ignored. */
#define MAXPEND 256

struct flow {
	uint64_t addr[MAXPEND];
	struct roles st[MAXPEND];
	int n;
};

static void flow_give(struct flow *f, uint64_t to, const struct roles *ro)
{
	for (int i = 0; i < f->n; i++)
		if (f->addr[i] == to) {
			for (int r = 0; r < X86_REG_ENDING; r++)
				if (f->st[i].r[r] != ro->r[r])
					f->st[i].r[r] = 0;
			for (int k = 0; k < 64; k++)
				if (f->st[i].slot[k] != ro->slot[k])
					f->st[i].slot[k] = 0;
			return;
		}
	if (f->n < MAXPEND) {
		f->addr[f->n] = to;
		f->st[f->n] = *ro;
		f->n++;
	}
}

/* Called before each instruction; ended: the previous one was jmp/ret. */
static void flow_enter(struct flow *f, uint64_t at, struct roles *ro, int ended)
{
	for (int i = 0; i < f->n; i++)
		if (f->addr[i] == at) {
			if (ended)
				*ro = f->st[i];
			else {
				for (int r = 0; r < X86_REG_ENDING; r++)
					if (f->st[i].r[r] != ro->r[r])
						ro->r[r] = 0;
				for (int k = 0; k < 64; k++)
					if (f->st[i].slot[k] != ro->slot[k])
						ro->slot[k] = 0;
			}
			return;
		}
}

static int is_jump(unsigned id)
{
	return id == X86_INS_JMP || (id >= X86_INS_JAE && id <= X86_INS_JS) ||
	       id == X86_INS_JCXZ || id == X86_INS_JECXZ || id == X86_INS_JRCXZ;
}

/* After instruction in: hand the state to a forward branch target; say
 * whether the path ends here. */
static int flow_leave(struct flow *f, const cs_insn *in, const struct roles *ro, uint64_t fn, uint64_t size)
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
	for (int k = 0; k < x->op_count; k++)
		if (x->operands[k].type == X86_OP_MEM)
			return &x->operands[k];
	return NULL;
}

/* Direct target of a call/jmp, 0 if none; through a GOT slot too. */
static uint64_t branch_target(struct img *im, const cs_insn *in)
{
	const cs_x86 *x = &in->detail->x86;
	if (x->op_count != 1)
		return 0;
	if (x->operands[0].type == X86_OP_IMM)
		return (uint64_t)x->operands[0].imm;
	if (x->operands[0].type == X86_OP_MEM && x->operands[0].mem.base == X86_REG_RIP &&
	    x->operands[0].mem.index == X86_REG_INVALID)
		return ptr_at(im, in->address + in->size + (int64_t)x->operands[0].mem.disp);
	return 0;
}

struct sendshape {
	int tests_flag, sets_flag;  /* cmp byte [arg0+d], 1 / mov byte [arg0+d], 1 */
	uint32_t flag_off;
	int fwd01;                  /* transfers to S with arg0, arg1 unchanged */
	int fwd0;                   /* transfers to S with arg0 */
	int arg2_as_arg0;           /* uses arg2: hands it on as arg0, or reads through it
	                             * (sendable_plaintext.append_limited_copy, inlined or not) */
	int tag_test;               /* bits: reads qword [arg1 + 0], [+16], [+24] */
	uint64_t s;                 /* the function in E it transfers to */
};

static int analyse_send(struct ctx *c, uint64_t fn, uint64_t size, const struct vec *E,
			struct sendshape *sh)
{
	struct img *im = &c->im;
	const uint8_t *code = at(im, fn, size);
	memset(sh, 0, sizeof *sh);
	if (!code || size > 4096)
		return -1;
	cs_insn *ins;
	size_t n = cs_disasm(c->cs, code, size, fn, 0, &ins);
	struct roles ro;
	memset(&ro, 0, sizeof ro);
	ro.r[X86_REG_RDI] = 1;
	ro.r[X86_REG_RSI] = 2;
	ro.r[X86_REG_RDX] = 4;
	struct flow *fl = calloc(1, sizeof *fl);  /* ~80 KB: not on a thread's stack */
	int ended = 0;
	if (!fl) {
		cs_free(ins, n);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		const cs_insn *in = &ins[i];
		flow_enter(fl, in->address, &ro, ended);
		const cs_x86 *x = &in->detail->x86;
		const cs_x86_op *m = mem_op(in);
		if (m && m->mem.base != X86_REG_INVALID && m->mem.index == X86_REG_INVALID) {
			uint8_t role = ro.r[m->mem.base];
			if (role == 4)
				sh->arg2_as_arg0 = 1;
			if (in->id == X86_INS_CMP && m->size == 1 && x->op_count == 2 &&
			    x->operands[1].type == X86_OP_IMM && x->operands[1].imm == 1 && role == 1) {
				sh->tests_flag = 1;
				sh->flag_off = (uint32_t)m->mem.disp;
			}
			if (in->id == X86_INS_MOV && m->size == 1 && x->op_count == 2 &&
			    x->operands[0].type == X86_OP_MEM && x->operands[1].type == X86_OP_IMM &&
			    x->operands[1].imm == 1 && role == 1) {
				sh->sets_flag = 1;
				sh->flag_off = (uint32_t)m->mem.disp;
			}
			if ((in->id == X86_INS_CMP || in->id == X86_INS_MOV) && m->size == 8 && role == 2 &&
			    (m->access & CS_AC_READ) && (m->mem.disp == 0 || m->mem.disp == 16 || m->mem.disp == 24))
				sh->tag_test |= 1 << (m->mem.disp / 8);
		}
		if (in->id == X86_INS_CALL || in->id == X86_INS_JMP) {
			uint64_t t = branch_target(im, in);
			int tail = in->id == X86_INS_JMP && (t < fn || t >= fn + size);
			if (t && vhas(E, t) && (in->id == X86_INS_CALL || tail)) {
				if (ro.r[X86_REG_RDI] == 1) {
					sh->fwd0 = 1;
					sh->s = t;
					if (ro.r[X86_REG_RSI] == 2)
						sh->fwd01 = 1;
				}
			} else if (t && in->id == X86_INS_CALL && ro.r[X86_REG_RDI] == 4) {
				sh->arg2_as_arg0 = 1;
			}
		}
		roles_step(c->cs, in, &ro);
		ended = flow_leave(fl, in, &ro, fn, size);
	}
	free(fl);
	cs_free(ins, n);
	return 0;
}

struct recvshape {
	int loads;          /* bit k: a qword load of [arg1 + 8k], k = 0..2 */
	int triple;         /* bit k: a store to [B + I*8 + 8k] with one B, I */
	int len_store;      /* a qword store into [arg0 + d] */
	uint32_t q;         /* its offset */
};

static int analyse_recv(struct ctx *c, uint64_t fn, uint64_t size, struct recvshape *sh)
{
	struct img *im = &c->im;
	const uint8_t *code = at(im, fn, size);
	memset(sh, 0, sizeof *sh);
	if (!code || size > 2048)
		return -1;
	cs_insn *ins;
	size_t n = cs_disasm(c->cs, code, size, fn, 0, &ins);
	struct roles ro;
	memset(&ro, 0, sizeof ro);
	ro.r[X86_REG_RDI] = 1;
	ro.r[X86_REG_RSI] = 2;
	x86_reg tb = X86_REG_INVALID, ti = X86_REG_INVALID;
	struct flow *fl = calloc(1, sizeof *fl);  /* ~80 KB: not on a thread's stack */
	int ended = 0;
	if (!fl) {
		cs_free(ins, n);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		const cs_insn *in = &ins[i];
		flow_enter(fl, in->address, &ro, ended);
		const cs_x86 *x = &in->detail->x86;
		const cs_x86_op *m = mem_op(in);
		if (in->id == X86_INS_MOV && m && x->op_count == 2 && m->size == 8 &&
		    m->mem.base != X86_REG_INVALID) {
			uint8_t role = ro.r[m->mem.base];
			int load = x->operands[0].type == X86_OP_REG;
			if (load && role == 2 && m->mem.index == X86_REG_INVALID &&
			    (m->mem.disp == 0 || m->mem.disp == 8 || m->mem.disp == 16))
				sh->loads |= 1 << (m->mem.disp / 8);
			if (!load && x->operands[1].type == X86_OP_REG) {
				if (m->mem.index != X86_REG_INVALID && m->mem.scale == 8 &&
				    (m->mem.disp == 0 || m->mem.disp == 8 || m->mem.disp == 16)) {
					if (m->mem.disp == 0 || tb == X86_REG_INVALID) {
						tb = m->mem.base;
						ti = m->mem.index;
						sh->triple = 0;
					}
					if (m->mem.base == tb && m->mem.index == ti)
						sh->triple |= 1 << (m->mem.disp / 8);
				} else if (m->mem.index == X86_REG_INVALID && role == 1 && !sh->len_store) {
					sh->len_store = 1;
					sh->q = (uint32_t)m->mem.disp;
				}
			}
		}
		roles_step(c->cs, in, &ro);
		ended = flow_leave(fl, in, &ro, fn, size);
	}
	free(fl);
	cs_free(ins, n);
	return 0;
}

/* ---- step 4: the call edges into rustls's code --------------------------- */

/* rustls's non-generic code lies together (one crate, a few codegen
 * units); the window is the span of the encrypt_outgoing sites, widened.
 * One pass over .text keeps every direct call or jump, and every call
 * through a GOT slot, whose target lies in the window. */
#define WINDOW (8ull << 20)

struct edge {
	uint64_t target, caller;   /* caller: start of the calling function */
};

static int edgecmp(const void *a, const void *b)
{
	const struct edge *x = a, *y = b;
	if (x->target != y->target)
		return x->target < y->target ? -1 : 1;
	return x->caller < y->caller ? -1 : x->caller > y->caller;
}

struct edges {
	struct edge *e;
	size_t n, cap;
	uint64_t lo, hi;
};

static int edge_add(struct edges *g, uint64_t t, uint64_t caller)
{
	if (g->n == g->cap) {
		size_t nc = g->cap ? g->cap * 2 : 4096;
		struct edge *ne = realloc(g->e, nc * sizeof *ne);
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

static int gather_edges(struct ctx *c, struct edges *g)
{
	struct img *im = &c->im;
	struct vec slots = {0};
	int r = 0;

	for (int i = 0; i < im->nseg; i++) {
		const struct seg *s = &im->seg[i];
		if (!(s->flags & PF_W))
			continue;
		for (uint64_t va = (s->va + 7) & ~7ull; va + 8 <= s->va + s->filesz; va += 8) {
			uint64_t v = ptr_at(im, va);
			if (v >= g->lo && v < g->hi && (r = vpush(&slots, va)))
				goto out;
		}
	}
	vsortu(&slots);
	uint64_t cur_lo = 1, cur_hi = 0, cur = 0;  /* cache of the last function */
	for (int i = 0; i < im->nseg; i++) {
		const struct seg *s = &im->seg[i];
		if (!(s->flags & PF_X))
			continue;
		const uint8_t *b = im->map + s->off;
		for (uint64_t o = 0; o + 6 <= s->filesz; o++) {
			uint64_t t, site = s->va + o;
			int32_t d;
			uint8_t op = b[o];
			if (op == 0xe8 || op == 0xe9) {
				memcpy(&d, b + o + 1, 4);
				t = site + 5 + (int64_t)d;
				if (t < g->lo || t >= g->hi)
					continue;
			} else if (op == 0xff && (b[o + 1] == 0x15 || b[o + 1] == 0x25) && slots.n) {
				memcpy(&d, b + o + 2, 4);
				uint64_t sl = site + 6 + (int64_t)d;
				if (!vhas(&slots, sl))
					continue;
				t = ptr_at(im, sl);
			} else {
				continue;
			}
			if (site < cur_lo || site >= cur_hi) {
				uint64_t fs, fz;
				if (func_of(im, site, &fs, &fz))
					continue;
				cur = fs;
				cur_lo = fs;
				cur_hi = fs + fz;
			}
			if (t >= cur_lo && t < cur_hi)
				continue;  /* a jump inside the function */
			if ((r = edge_add(g, t, cur)))
				goto out;
		}
	}
	if (g->n)
		qsort(g->e, g->n, sizeof *g->e, edgecmp);
out:
	free(slots.v);
	return r;
}

/* The distinct callers of t. */
static size_t callers_of(const struct edges *g, uint64_t t, struct vec *out)
{
	size_t lo = 0, hi = g->n, n = 0;
	while (lo < hi) {
		size_t m = (lo + hi) / 2;
		if (g->e[m].target < t)
			lo = m + 1;
		else
			hi = m;
	}
	for (size_t i = lo; i < g->n && g->e[i].target == t; i++)
		if (i == lo || g->e[i].caller != g->e[i - 1].caller) {
			n++;
			if (out && vpush(out, g->e[i].caller))
				return (size_t)-1;
		}
	return n;
}

/* ---- step 5: dyn vtables ----------------------------------------------------- */

/* Slot-3 functions (the first method) of everything shaped like a vtable:
 * [drop or 0, size, align (power of two), fn, ...]. */
static int vtable_methods(struct ctx *c, struct vec *h)
{
	struct img *im = &c->im;
	for (int i = 0; i < im->nseg; i++) {
		const struct seg *s = &im->seg[i];
		if ((s->flags & PF_X) || !(s->flags & PF_W))
			continue;
		for (uint64_t va = (s->va + 7) & ~7ull; va + 32 <= s->va + s->filesz; va += 8) {
			int ok;
			uint64_t align = rd64(im, va + 16, &ok);
			if (!ok || !align || align > 4096 || (align & (align - 1)))
				continue;
			uint64_t size = rd64(im, va + 8, &ok);
			if (size > (1u << 24) || (size && size % align))
				continue;
			uint64_t f3 = ptr_at(im, va + 24);
			if (!is_exec(im, f3))
				continue;
			uint64_t drop = ptr_at(im, va);
			if (drop && !is_exec(im, drop))
				continue;
			if (!is_func_start(im, f3, NULL))
				continue;
			int r = vpush(h, f3);
			if (r)
				return r;
		}
	}
	vsortu(h);
	return 0;
}

/* ---- the finder ----------------------------------------------------------- */

static int map_file(struct ctx *c, const char *path)
{
	struct img *im = &c->im;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(c, TT_EIO, "open %s failed", path);
	struct stat st;
	if (fstat(fd, &st) || st.st_size < (off_t)sizeof(Elf64_Ehdr)) {
		close(fd);
		return 0;
	}
	void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return fail(c, TT_EIO, "mmap %s failed", path);
	im->map = m;
	im->size = (size_t)st.st_size;
	const Elf64_Ehdr *eh = m;
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_machine != EM_X86_64 || eh->e_phoff + (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > im->size)
		return 0;
	const Elf64_Phdr *ph = (const Elf64_Phdr *)(im->map + eh->e_phoff);
	for (int i = 0; i < eh->e_phnum && im->nseg < MAXSEG; i++) {
		if (ph[i].p_type != PT_LOAD || ph[i].p_offset + ph[i].p_filesz > im->size)
			continue;
		struct seg *s = &im->seg[im->nseg++];
		s->va = ph[i].p_vaddr;
		s->off = ph[i].p_offset;
		s->filesz = ph[i].p_filesz;
		s->memsz = ph[i].p_memsz;
		s->flags = ph[i].p_flags;
	}
	int r = load_rela(im, ph, eh->e_phnum);
	if (r)
		return r;
	if (load_ehhdr(im, ph, eh->e_phnum))
		im->nfde = 0;
	return 1;
}

#define SEND_DEPTH 3   /* buffer_plaintext -> send_appdata_encrypt -> send_single_fragment -> encrypt_outgoing */

int tt_rustlsfind(const char *path, tt_rustls_syms *out, char *why, size_t cap)
{
	struct ctx c;
	struct vec ends = {0}, locs = {0}, E = {0}, reach = {0}, layer = {0}, next = {0}, H = {0}, tmp = {0};
	struct edges g = {0};
	int r;

	memset(&c, 0, sizeof c);
	memset(out, 0, sizeof *out);
	c.why = why;
	c.cap = cap;
	if (why && cap)
		why[0] = 0;
	r = map_file(&c, path);
	if (r <= 0)
		goto done;
	r = find_paths(&c, &ends, out->version, sizeof out->version);
	if (r <= 0)
		goto done; /* 0: no rustls 0.23 in this file */
	if (!c.im.nfde) {
		r = fail(&c, TT_ENOTSUP, "rustls %s but no usable .eh_frame_hdr: function bounds unknown", out->version);
		goto done;
	}
	if (!ends.n) {
		r = fail(&c, TT_EPROTO, "rustls %s but no record_layer.rs source path (no panic site to anchor on)", out->version);
		goto done;
	}
	vsortu(&ends);
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &c.cs) != CS_ERR_OK) {
		r = fail(&c, TT_ENOMEM, "capstone unavailable");
		goto done;
	}
	cs_option(c.cs, CS_OPT_DETAIL, CS_OPT_ON);

	/* send, anchor 1: the functions encrypt_outgoing is (inlined) in */
	if ((r = find_locations(&c, &ends, &locs)))
		goto done;
	if (!locs.n) {
		r = fail(&c, TT_EPROTO, "rustls %s: no panic Location names record_layer.rs", out->version);
		goto done;
	}
	if ((r = funcs_referring(&c, &locs, &E)))
		goto done;
	if (!E.n) {
		r = fail(&c, TT_EPROTO, "rustls %s: %zu record_layer.rs Locations, no code refers to them", out->version, locs.n);
		goto done;
	}
	g.lo = E.v[0] > WINDOW ? E.v[0] - WINDOW : 0;
	g.hi = E.v[E.n - 1] + WINDOW;
	if ((r = gather_edges(&c, &g)))
		goto done;

	/* reach: E and every function within SEND_DEPTH calls of it */
	for (size_t i = 0; i < E.n; i++)
		if ((r = vpush(&reach, E.v[i])) || (r = vpush(&layer, E.v[i])))
			goto done;
	for (int d = 0; d < SEND_DEPTH && layer.n; d++) {
		next.n = 0;
		for (size_t i = 0; i < layer.n; i++)
			if (callers_of(&g, layer.v[i], &next) == (size_t)-1) {
				r = TT_ENOMEM;
				goto done;
			}
		vsortu(&next);
		layer.n = 0;
		for (size_t i = 0; i < next.n; i++)
			if (!vhas(&reach, next.v[i]) && (r = vpush(&layer, next.v[i])))
				goto done;
		for (size_t i = 0; i < layer.n; i++)
			if ((r = vpush(&reach, layer.v[i])))
				goto done;
		vsortu(&reach);
	}

	/* send, anchor 2: the tester and the setter of may_send_application_data */
	uint64_t bp = 0;
	uint32_t bp_flag = 0;
	int nbp = 0, nset = 0;
	for (size_t i = 0; i < reach.n; i++) {
		uint64_t fz;
		struct sendshape sh;
		if (vhas(&E, reach.v[i]) || !is_func_start(&c.im, reach.v[i], &fz) ||
		    analyse_send(&c, reach.v[i], fz, &reach, &sh))
			continue;
		if (getenv("RUSTLSFIND_DEBUG"))
			fprintf(stderr, "send? %#lx test %d set %d +%#x fwd0 %d a2 %d tag %d\n",
				(unsigned long)reach.v[i], sh.tests_flag, sh.sets_flag, sh.flag_off,
				sh.fwd0, sh.arg2_as_arg0, sh.tag_test);
		if (sh.tests_flag && sh.fwd0 && sh.arg2_as_arg0 && sh.tag_test == 0xd) {
			nbp++;
			bp = reach.v[i];
			bp_flag = sh.flag_off;
		}
	}
	if (nbp != 1) {
		r = fail(&c, TT_EPROTO, "rustls %s: %d functions have buffer_plaintext's shape among the %zu within %d calls of the %zu encrypt_outgoing sites",
			 out->version, nbp, reach.n, SEND_DEPTH, E.n);
		goto done;
	}
	for (size_t i = 0; i < reach.n; i++) {
		uint64_t fz;
		struct sendshape sh;
		if (reach.v[i] == bp || vhas(&E, reach.v[i]) || !is_func_start(&c.im, reach.v[i], &fz) ||
		    analyse_send(&c, reach.v[i], fz, &reach, &sh))
			continue;
		if (sh.sets_flag && sh.fwd0 && sh.flag_off == bp_flag)
			nset++;
	}
	if (nset < 1) {
		r = fail(&c, TT_EPROTO, "rustls %s: buffer_plaintext candidate %#lx tests byte +%#x, but nothing that encrypts sets it (start_outgoing_traffic)",
			 out->version, (unsigned long)bp, bp_flag);
		goto done;
	}
	out->ncallers_send = (int)callers_of(&g, bp, NULL);

	/* recv, anchor 1: called only by first methods of dyn vtables */
	if ((r = vtable_methods(&c, &H)))
		goto done;
	uint64_t trp = 0;
	uint32_t trp_q = 0;
	int ntrp = 0, trp_callers = 0;
	for (size_t i = 0; i < g.n;) {
		uint64_t t = g.e[i].target;
		size_t j = i, distinct = 0, inH = 0;
		for (; j < g.n && g.e[j].target == t; j++)
			if (j == i || g.e[j].caller != g.e[j - 1].caller) {
				distinct++;
				inH += vhas(&H, g.e[j].caller);
			}
		i = j;
		uint64_t fz;
		if (distinct < 2 || inH != distinct || t == bp || !is_func_start(&c.im, t, &fz) || fz > 1024)
			continue;
		struct recvshape sh;
		/* recv, anchor 2: reads a (cap, ptr, len) and pushes it into a VecDeque */
		if (analyse_recv(&c, t, fz, &sh))
			continue;
		if (sh.loads == 7 && sh.triple == 7 && sh.len_store) {
			ntrp++;
			trp = t;
			trp_callers = (int)distinct;
			trp_q = sh.q;
		}
	}
	if (ntrp != 1) {
		r = fail(&c, TT_EPROTO, "rustls %s: %d functions have take_received_plaintext's shape among those called only by dyn vtable methods (%zu methods)",
			 out->version, ntrp, H.n);
		goto done;
	}
	out->send_va = bp;
	out->recv_va = trp;
	out->may_send_off = bp_flag;
	out->recv_queue_off = trp_q;
	out->ncallers_recv = trp_callers;
	if (va2off(&c.im, bp, &out->send) || va2off(&c.im, trp, &out->recv)) {
		r = fail(&c, TT_EPROTO, "rustls %s: a found function lies outside the file", out->version);
		goto done;
	}
	r = 1;
done:
	free(g.e);
	free(ends.v);
	free(locs.v);
	free(E.v);
	free(reach.v);
	free(layer.v);
	free(next.v);
	free(H.v);
	free(tmp.v);
	free(c.im.rela);
	if (c.cs)
		cs_close(&c.cs);
	if (c.im.map)
		munmap((void *)c.im.map, c.im.size);
	return r;
}
