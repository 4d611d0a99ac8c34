/*
 * gofind.c - a Go program's crypto/tls (tlsfind.h): where (*Conn).Write
 * and (*Conn).Read begin and every RET they hold, where (*Conn).Close
 * begins, as file offsets for uprobes.
 *
 * Why every RET and not a uretprobe: a uretprobe swaps the return address
 * on the stack for a trampoline; Go copies a goroutine's stack when it
 * grows, finds that foreign address while unwinding and throws.  A uprobe
 * on each RET sees the same returns without touching the stack.  The RETs
 * are found by disassembling the whole function with Capstone, never by
 * looking for the byte 0xC3, which also occurs inside other instructions.
 *
 * Where the functions are, in this order:
 *   1. .symtab (a program built without -ldflags=-s): st_value, st_size.
 *   2. the pclntab, which the Go runtime needs for tracebacks and the GC,
 *      so that no Go program lacks it: the .gopclntab section
 *      (.data.rel.ro.gopclntab in an internally linked PIE), else the
 *      runtime.pclntab symbol, else (an externally linked PIE merges it
 *      into .data.rel.ro; a program without section headers) a scan of
 *      the loaded segments for a header that checks out.
 *
 * The pclntab, as runtime/symtab.go (pcHeader, functab, _func) and
 * debug/gosym/pclntab.go read it; all fields little-endian here:
 *
 *   magic    uint32  0xfffffffb Go 1.2-1.15, 0xfffffffa 1.16-1.17,
 *                    0xfffffff0 1.18-1.19, 0xfffffff1 1.20 and later
 *   pad1, pad2 uint8 0, 0
 *   minLC    uint8   instruction size quantum (1 on x86, 4 on arm64)
 *   ptrSize  uint8   8 (only 64-bit programs are read)
 *   then uintptr words:
 *     1.2-1.15   nfunc; the functab follows at 8+ptrSize
 *     1.16-1.17  nfunc, nfiles, funcnameOffset, cuOffset, filetabOffset,
 *                pctabOffset, pclnOffset
 *     1.18 on    nfunc, nfiles, textStart, funcnameOffset, cuOffset,
 *                filetabOffset, pctabOffset, pclnOffset
 *
 * The functab (at pclnOffset) holds nfunc+1 (entry, funcoff) pairs sorted
 * by entry, the last entry being the end of the last function: uintptr
 * PCs before 1.18, uint32 offsets from textStart since.  funcoff, from
 * pclnOffset (from the table's start in 1.2), leads to the function's
 * _func, which begins with the same entry (uintptr, or uint32 offset
 * since 1.18) and int32 nameoff, a C string in the funcnametab (the
 * table's start in 1.2).  A function ends where the next one begins.
 * 1.20 changed the magic and the _func tail, not these fields.
 *
 * textStart is a pointer, so in a PIE the file may hold it unrelocated
 * (0) with a R_*_RELATIVE dynamic relocation giving its value; Go's own
 * linker and GNU ld write the value too.  It is the address of
 * runtime.text, which need not be where .text begins (an externally
 * linked program has C code first), so .text is never used for it.
 *
 * The Go version: the build info (.go.buildinfo, else found in a
 * writable segment: 16-aligned "\xff Go buildinf:", ptrSize, flags; flag
 * 2 (1.18 on): a varint-prefixed version string at +32, else a pointer
 * at +16 to a Go string), else runtime.buildVersion (.symtab), else the
 * pclntab magic (a lower bound).  The register ABI the BPF side reads
 * arguments from came with 1.17 on amd64 and 1.18 on arm64.
 *
 * Every read is checked against the image: a cut or hostile file gives an
 * error or 0, never a read outside it.
 */
#include <capstone/capstone.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "elfimg.h"
#include "tlsfind.h"
#include "tokentap/error.h"

#define GO_FUNC_MAX    (1u << 20)   /* no Write or Read is 1 MiB of code */

#define PCLN_GO12  0xfffffffbu
#define PCLN_GO116 0xfffffffau
#define PCLN_GO118 0xfffffff0u
#define PCLN_GO120 0xfffffff1u

/* What is looked up by name: three functions, then the runtime's. */
enum { S_WRITE, S_READ, S_CLOSE, S_BUILDVERSION, S_TEXT, S_PCLNTAB, S_N };
#define S_FUNCS 3 /* the first S_FUNCS are what the pclntab can name */

static const char *const sym_names[S_N] = {
	"crypto/tls.(*Conn).Write", "crypto/tls.(*Conn).Read",
	"crypto/tls.(*Conn).Close", "runtime.buildVersion",
	"runtime.text", "runtime.pclntab",
};

/* A symbol: its address and size (0: not found, or size unknown). */
struct gsym {
	uint64_t vaddr, size;
};

/* One pclntab, its layout parameters resolved (header comment). */
struct pcln {
	const unsigned char *p; /* the table, size bytes of the image */
	uint64_t size, vaddr;
	uint32_t magic;
	unsigned fsz;          /* bytes per functab field: 4 (1.18 on) or 8 */
	uint64_t nfunc, text;  /* text: what functab entries are relative to */
	uint64_t names, ftab, fdata; /* funcnametab, functab, _func base */
};

static int fail(char *why, size_t cap, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Say why (when the caller gave room for it) and return err. */
static int fail(char *why, size_t cap, int err, const char *fmt, ...)
{
	va_list ap;

	if (why && cap) {
		va_start(ap, fmt);
		vsnprintf(why, cap, fmt, ap);
		va_end(ap);
	}
	return err;
}

/* The section of that name, with its bytes in the image: 1 and *sh, or 0. */
static int section(const tt_elfimg *im, const char *name, Elf64_Shdr *sh)
{
	return tt_elfimg_section(im, name, sh) && tt_elfimg_section_data(im, sh);
}

/* "go1.19.8", "go1.21rc2", "devel go1.22-abcdef ...": 19, 21, 22; -1. */
static int version_minor(const unsigned char *s, size_t n)
{
	size_t i, j;

	for (i = 0; i + 4 < n; i++) {
		int minor = 0;

		if (memcmp(s + i, "go1.", 4) != 0)
			continue;
		for (j = i + 4; j < n && j < i + 8 && s[j] >= '0' && s[j] <= '9'; j++)
			minor = minor * 10 + (s[j] - '0');
		if (j > i + 4)
			return minor;
	}
	return -1;
}

/* The version in the Go string (data pointer, length) at vaddr; -1. */
static int version_at(const tt_elfimg *im, uint64_t vaddr)
{
	uint64_t off, ptr, len;

	if (!vaddr || tt_elfimg_va_off(im, vaddr, 16, &off) < 0)
		return -1;
	ptr = tt_elfimg_le64(im->p + off);
	len = tt_elfimg_le64(im->p + off + 8);
	if (len == 0 || len > 256 || tt_elfimg_va_off(im, ptr, len, &off) < 0)
		return -1;
	return version_minor(im->p + off, len);
}

/*
 * The build info blob (debug/buildinfo) in [off, off+len) of the image:
 * 1 when found, *minor its version or -1 when it does not say (pointers
 * that are not in the file).
 */
static int buildinfo_in(const tt_elfimg *im, uint64_t off, uint64_t len,
			int *minor)
{
	static const char magic[] = "\xff Go buildinf:";
	const unsigned char *b = im->p + off;
	uint64_t i, n, shift;

	for (i = 0; i + 32 <= len; i += 16)
		if (memcmp(b + i, magic, 14) == 0)
			break;
	if (i + 32 > len)
		return 0;
	b += i;
	len -= i;
	if (b[14] != 8 || (b[15] & 1)) /* 32-bit or big-endian */
		return 1;
	if (!(b[15] & 2)) {
		*minor = version_at(im, tt_elfimg_le64(b + 16));
		return 1;
	}
	/* Go 1.18 on: uvarint length, then the version string */
	for (i = 32, n = 0, shift = 0; i < len && shift < 64; i++, shift += 7) {
		n |= (uint64_t)(b[i] & 0x7f) << shift;
		if (!(b[i] & 0x80))
			break;
	}
	if (i < len && !(b[i] & 0x80) && tt_elfimg_within(len, i + 1, n))
		*minor = version_minor(b + i + 1, n);
	return 1;
}

/*
 * The build info: in .go.buildinfo; in a file without section headers,
 * in a writable segment.  debug/buildinfo looks in the first 64 KiB of
 * the first only, but a PIE's first is .data.rel.ro and an externally
 * linked one puts the blob megabytes in, so each is searched whole (a
 * rare case: the Go linkers always name the section).  1 when found,
 * with *minor as above; 0.
 */
static int buildinfo(const tt_elfimg *im, int *minor)
{
	const struct tt_elfseg *s;
	Elf64_Shdr sh;
	unsigned i;

	*minor = -1;
	if (section(im, ".go.buildinfo", &sh))
		return buildinfo_in(im, sh.sh_offset, sh.sh_size, minor);
	for (i = 0; i < im->nseg && !im->shnum; i++) {
		s = &im->seg[i];
		if ((s->flags & (PF_X | PF_W)) == PF_W &&
		    buildinfo_in(im, s->off, s->filesz, minor))
			return 1;
	}
	return 0;
}

/* The wanted names in .symtab: number found, or TT_EPROTO. */
static int symtab_find(const tt_elfimg *im, struct gsym *syms)
{
	uint64_t vaddr[S_N] = { 0 }, size[S_N] = { 0 };
	unsigned k;
	int r;

	r = tt_elfimg_lookup(im, SHT_SYMTAB, sym_names, S_N, -1, vaddr, size);
	for (k = 0; k < S_N && r >= 0; k++) {
		syms[k].vaddr = vaddr[k];
		syms[k].size = size[k];
	}
	return r;
}

/* The addend of the R_*_RELATIVE dynamic relocation at vaddr, else 0. */
static uint64_t relative_reloc(const tt_elfimg *im, uint64_t vaddr)
{
	const uint8_t *rela;
	uint64_t n, j;
	Elf64_Rela r;

	if (!tt_elfimg_rela(im, &rela, &n))
		return 0;
	for (j = 0; j < n; j++) {
		memcpy(&r, rela + j * sizeof(r), sizeof(r));
		if (r.r_offset == vaddr &&
		    (ELF64_R_TYPE(r.r_info) == R_X86_64_RELATIVE ||
		     ELF64_R_TYPE(r.r_info) == R_AARCH64_RELATIVE))
			return (uint64_t)r.r_addend;
	}
	return 0;
}

/* The i-th functab entry's address (i == nfunc: the end of the last). */
static uint64_t pcln_pc(const struct pcln *t, uint64_t i)
{
	const unsigned char *e = t->p + t->ftab + 2 * i * t->fsz;

	return t->fsz == 4 ? t->text + tt_elfimg_le32(e) : tt_elfimg_le64(e);
}

/* The i-th function's _func: 0, its offset in the table and nameoff. */
static int pcln_func(const struct pcln *t, uint64_t i, uint64_t *fo,
		     uint32_t *nameoff)
{
	const unsigned char *e = t->p + t->ftab + (2 * i + 1) * t->fsz;
	uint64_t funcoff = t->fsz == 4 ? tt_elfimg_le32(e) : tt_elfimg_le64(e);

	/* the entry field is as wide as a functab field, nameoff follows */
	if (!tt_elfimg_within(t->size, t->fdata, funcoff) ||
	    !tt_elfimg_within(t->size, t->fdata + funcoff, t->fsz + 4))
		return -1;
	*fo = t->fdata + funcoff;
	*nameoff = tt_elfimg_le32(t->p + *fo + t->fsz);
	return 0;
}

/* Does the i-th _func begin with the functab's i-th entry? */
static int pcln_agrees(const struct pcln *t, uint64_t i, uint64_t fo)
{
	const unsigned char *e = t->p + t->ftab + 2 * i * t->fsz;

	return t->fsz == 4 ? tt_elfimg_le32(t->p + fo) == tt_elfimg_le32(e)
			   : tt_elfimg_le64(t->p + fo) == tt_elfimg_le64(e);
}

/* The layout words of the header (header comment); 0 or TT_EPROTO. */
static int pcln_layout(struct pcln *t)
{
	const unsigned char *w = t->p + 8;
	uint64_t fields;
	unsigned words;

	switch (t->magic) {
	case PCLN_GO12:
		words = 1;
		break;
	case PCLN_GO116:
		words = 7;
		break;
	case PCLN_GO118:
	case PCLN_GO120:
		words = 8;
		break;
	default:
		return TT_EPROTO;
	}
	if (t->size < 8 + 8 * (uint64_t)words)
		return TT_EPROTO;
	t->nfunc = tt_elfimg_le64(w);
	t->fsz = 8;
	if (words == 1) {
		t->ftab = 16;
	} else if (words == 7) {
		t->names = tt_elfimg_le64(w + 2 * 8);
		t->ftab = t->fdata = tt_elfimg_le64(w + 6 * 8);
	} else {
		t->fsz = 4;
		t->text = tt_elfimg_le64(w + 2 * 8);
		t->names = tt_elfimg_le64(w + 3 * 8);
		t->ftab = t->fdata = tt_elfimg_le64(w + 7 * 8);
	}
	if (t->names >= t->size || t->ftab >= t->size)
		return TT_EPROTO;
	/* nfunc+1 (entry, funcoff) pairs but the last funcoff: 2*nfunc+1 */
	fields = (t->size - t->ftab) / t->fsz;
	if (t->nfunc == 0 || fields < 3 || t->nfunc > (fields - 1) / 2)
		return TT_EPROTO;
	return 0;
}

/*
 * Read the pclntab at p (size bytes, at vaddr when loaded): 0 with *t
 * ready to look names up, or TT_EPROTO.  textStart (1.18 on) comes from
 * the header, else its dynamic relocation, else runtime.text.
 */
static int pcln_open(const tt_elfimg *im, const unsigned char *p,
		     uint64_t size, uint64_t vaddr, const struct gsym *syms,
		     struct pcln *t)
{
	uint64_t fo, off, first, end;
	uint32_t nameoff;

	memset(t, 0, sizeof(*t));
	t->p = p;
	t->size = size;
	t->vaddr = vaddr;
	if (size < 16 || p[4] || p[5] ||
	    (p[6] != 1 && p[6] != 2 && p[6] != 4) || p[7] != 8)
		return TT_EPROTO;
	t->magic = tt_elfimg_le32(p);
	if (pcln_layout(t) < 0)
		return TT_EPROTO;
	if (t->fsz == 4 && !t->text && vaddr)
		t->text = relative_reloc(im, vaddr + 8 + 2 * 8);
	if (t->fsz == 4 && !t->text)
		t->text = syms[S_TEXT].vaddr;
	/* the functions span code of the file, the first _func agrees */
	first = pcln_pc(t, 0);
	end = pcln_pc(t, t->nfunc);
	if (first >= end || tt_elfimg_code_off(im, first, 1, &off) < 0 ||
	    tt_elfimg_code_off(im, end - 1, 1, &off) < 0 ||
	    pcln_func(t, 0, &fo, &nameoff) < 0 || !pcln_agrees(t, 0, fo))
		return TT_EPROTO;
	return 0;
}

/* Could the 8 bytes at p begin a 64-bit pclntab header? */
static int pcln_magic(const unsigned char *p)
{
	uint32_t m = tt_elfimg_le32(p);

	return (m == PCLN_GO118 || m == PCLN_GO120 || m == PCLN_GO116 ||
		m == PCLN_GO12) && !p[4] && !p[5] && p[7] == 8 &&
	       (p[6] == 1 || p[6] == 2 || p[6] == 4);
}

/* No section says where the pclntab is: the first header that reads. */
static int pcln_scan(const tt_elfimg *im, const struct gsym *syms,
		     struct pcln *t)
{
	const struct tt_elfseg *s;
	uint64_t o, end;
	unsigned i;

	for (i = 0; i < im->nseg; i++) {
		s = &im->seg[i];
		end = s->off + s->filesz;
		/* the runtime reads the header as uintptrs: 8-aligned, in
		 * the file too (p_offset and p_vaddr agree modulo a page) */
		for (o = (s->off + 7) & ~(uint64_t)7; o + 16 <= end; o += 8) {
			if (!pcln_magic(im->p + o))
				continue;
			if (pcln_open(im, im->p + o, end - o,
				      s->vaddr + (o - s->off), syms, t) == 0)
				return 1;
		}
	}
	return 0;
}

/* The pclntab's own section: .gopclntab, in a PIE .data.rel.ro.gopclntab. */
static int pcln_section(const tt_elfimg *im, Elf64_Shdr *sh)
{
	return section(im, ".gopclntab", sh) ||
	       section(im, ".data.rel.ro.gopclntab", sh);
}

/*
 * Find the pclntab: 1 (t ready), 0 (none), TT_EPROTO (one that does not
 * read).  Its section, else runtime.pclntab, else a scan (the caller
 * scans only a file that says it is Go or has no section headers).
 */
static int pcln_find(const tt_elfimg *im, const struct gsym *syms,
		     struct pcln *t)
{
	uint64_t off, vaddr, len;
	Elf64_Shdr sh;

	if (pcln_section(im, &sh)) {
		if (pcln_open(im, im->p + sh.sh_offset, sh.sh_size,
			      sh.sh_flags & SHF_ALLOC ? sh.sh_addr : 0, syms, t) < 0)
			return TT_EPROTO;
		return 1;
	}
	if (syms[S_PCLNTAB].vaddr &&
	    tt_elfimg_va_off(im, syms[S_PCLNTAB].vaddr, 16, &off) == 0 &&
	    tt_elfimg_off_va(im, off, &vaddr, &len) == 0)
		return pcln_open(im, im->p + off, len, vaddr, syms, t) < 0
			       ? TT_EPROTO : 1;
	return pcln_scan(im, syms, t);
}

/*
 * The crypto/tls functions by name in the pclntab: syms[0..S_FUNCS)
 * filled (size: up to the next function), 0 or TT_EPROTO.
 */
static int pcln_lookup(const struct pcln *t, struct gsym *syms, char *why,
		       size_t cap)
{
	const unsigned char *names = t->p + t->names;
	uint64_t i, fo, nnames = t->size - t->names;
	uint32_t nameoff;
	unsigned k, found = 0;

	for (i = 0; i < t->nfunc && found < S_FUNCS; i++) {
		if (pcln_func(t, i, &fo, &nameoff) < 0)
			return fail(why, cap, TT_EPROTO,
				    "pclntab: function %llu outside the table",
				    (unsigned long long)i);
		/* all three names begin "crypto/tls." */
		if (nameoff >= nnames || names[nameoff] != 'c')
			continue;
		for (k = 0; k < S_FUNCS; k++) {
			uint64_t entry, end;

			if (syms[k].vaddr ||
			    !tt_elfimg_str_is(names, nnames, nameoff, sym_names[k]))
				continue;
			entry = pcln_pc(t, i);
			end = pcln_pc(t, i + 1);
			if (!pcln_agrees(t, i, fo) || end <= entry)
				return fail(why, cap, TT_EPROTO,
					    "pclntab: %s: functab and _func disagree",
					    sym_names[k]);
			syms[k].vaddr = entry;
			syms[k].size = end - entry;
			found++;
		}
	}
	return 0;
}

/* Every RET of one function, by disassembling all of it. */
static int find_rets(const tt_elfimg *im, const struct gsym *fn,
		     const char *name, tt_go_func *out, char *why, size_t cap)
{
	int arm = im->eh.e_machine == EM_AARCH64;
	unsigned ret_id = arm ? ARM64_INS_RET : X86_INS_RET;
	const uint8_t *code;
	uint64_t off, addr;
	size_t left;
	cs_insn *insn;
	csh h;
	int r = 0;

	if (fn->size == 0 || fn->size > GO_FUNC_MAX)
		return fail(why, cap, TT_EPROTO, "%s: implausible size %llu",
			    name, (unsigned long long)fn->size);
	if (tt_elfimg_code_off(im, fn->vaddr, fn->size, &off) < 0)
		return fail(why, cap, TT_EPROTO,
			    "%s at 0x%llx is not in an executable segment of the file",
			    name, (unsigned long long)fn->vaddr);
	if (cs_open(arm ? CS_ARCH_ARM64 : CS_ARCH_X86,
		    arm ? CS_MODE_ARM : CS_MODE_64, &h) != CS_ERR_OK)
		return fail(why, cap, TT_ENOTSUP, "Capstone cannot disassemble %s",
			    arm ? "arm64" : "x86-64");
	insn = cs_malloc(h);
	if (!insn) {
		cs_close(&h);
		return fail(why, cap, TT_ENOMEM, "Capstone: out of memory");
	}
	out->entry = off;
	code = im->p + off;
	left = fn->size;
	addr = fn->vaddr;
	while (left > 0 && r == 0) {
		if (!cs_disasm_iter(h, &code, &left, &addr, insn)) {
			/* arm64's fixed width lets the padding (0) be stepped over */
			if (arm && left >= 4) {
				code += 4;
				left -= 4;
				addr += 4;
				continue;
			}
			if (arm)
				break;
			r = fail(why, cap, TT_EPROTO, "%s: no instruction at +0x%llx",
				 name, (unsigned long long)(addr - fn->vaddr));
		} else if (insn->id == ret_id) {
			if (out->nrets == TT_GO_MAX_RETS)
				r = fail(why, cap, TT_ETRUNCATED, "%s: more than %d RET",
					 name, TT_GO_MAX_RETS);
			else
				out->rets[out->nrets++] = off + (insn->address - fn->vaddr);
		}
	}
	if (r == 0 && out->nrets == 0)
		r = fail(why, cap, TT_EPROTO, "%s: no RET", name);
	cs_free(insn, 1);
	cs_close(&h);
	return r;
}

/* Go 1.N from the pclntab magic alone: a lower bound, or -1. */
static int magic_minor(uint32_t magic)
{
	return magic == PCLN_GO120 ? 20 : magic == PCLN_GO118 ? 18 : -1;
}

/* The version is known, recent enough, on a machine the probe reads. */
static int check_abi(const tt_elfimg *im, int minor, char *why, size_t cap)
{
	int arm = im->eh.e_machine == EM_AARCH64;

	if (im->eh.e_machine != EM_X86_64 && !arm)
		return fail(why, cap, TT_ENOTSUP,
			    "Go on ELF machine %u: only x86-64 and arm64 are supported",
			    im->eh.e_machine);
	if (minor < 0)
		return fail(why, cap, TT_EPROTO,
			    "Go version not found (no build info, no runtime.buildVersion)");
	if (minor < 17)
		return fail(why, cap, TT_ENOTSUP,
			    "Go 1.%d: before the register ABI (1.17), not supported",
			    minor);
	if (arm && minor < 18)
		return fail(why, cap, TT_ENOTSUP,
			    "Go 1.%d on arm64: before the register ABI (1.18), not supported",
			    minor);
	return 0;
}

/* The three functions found, by .symtab or else by the pclntab. */
static int lookup(const tt_elfimg *im, struct gsym *syms, int isgo,
		  int *minor, tt_go_syms *out, char *why, size_t cap)
{
	struct pcln t;
	int r;

	/* Go's own .symtab (runtime.text in it) names every function */
	if (syms[S_WRITE].vaddr || syms[S_READ].vaddr || syms[S_TEXT].vaddr)
		return 1;
	r = pcln_find(im, syms, &t);
	if (r < 0)
		return fail(why, cap, TT_EPROTO, "the pclntab does not read");
	if (r == 0) /* without section headers nothing else said Go */
		return isgo ? fail(why, cap, TT_EPROTO, "no pclntab found") : 0;
	if (*minor < 0)
		*minor = magic_minor(t.magic);
	r = pcln_lookup(&t, syms, why, cap);
	out->stripped = 1;
	return r < 0 ? r : 1;
}

/* find_in but for clearing *out when the answer is not 1. */
static int gofind(const tt_elfimg *im, tt_go_syms *out, char *why, size_t cap)
{
	struct gsym syms[S_N] = { { 0, 0 } };
	Elf64_Shdr sh;
	int r, minor, isgo;

	if (!im->elf || !im->phdrs_ok)
		return fail(why, cap, 0, "%s",
			    !im->elf ? "not a 64-bit little-endian ELF file"
				     : "ELF program headers outside the file");
	/* build info (1.13 on) or a pclntab section; the rest is not Go */
	isgo = buildinfo(im, &minor) || pcln_section(im, &sh);
	if (!isgo && im->shnum)
		return fail(why, cap, 0, "not a Go program");
	if (symtab_find(im, syms) < 0)
		memset(syms, 0, sizeof(syms)); /* a broken .symtab: the pclntab */
	if (minor < 0)
		minor = version_at(im, syms[S_BUILDVERSION].vaddr);
	r = lookup(im, syms, isgo, &minor, out, why, cap);
	if (r < 0 && minor >= 0 && check_abi(im, minor, NULL, 0) < 0)
		return check_abi(im, minor, why, cap); /* old: say that instead */
	if (r <= 0)
		return r < 0 ? r : fail(why, cap, 0, "not a Go program");
	if (!syms[S_WRITE].vaddr && !syms[S_READ].vaddr)
		return fail(why, cap, 0, "a Go program without crypto/tls");
	r = check_abi(im, minor, why, cap);
	if (r < 0)
		return r;
	out->go_minor = minor;
	if (!syms[S_WRITE].vaddr || !syms[S_READ].vaddr)
		return fail(why, cap, TT_EPROTO, "%s not found",
			    sym_names[syms[S_WRITE].vaddr ? S_READ : S_WRITE]);
	r = find_rets(im, &syms[S_WRITE], sym_names[S_WRITE], &out->write, why, cap);
	if (r == 0)
		r = find_rets(im, &syms[S_READ], sym_names[S_READ], &out->read, why, cap);
	if (r == 0 && syms[S_CLOSE].vaddr &&
	    tt_elfimg_code_off(im, syms[S_CLOSE].vaddr, 1, &out->close) < 0)
		r = fail(why, cap, TT_EPROTO, "%s is not in an executable segment",
			 sym_names[S_CLOSE]);
	if (r < 0)
		return r;
	return fail(why, cap, 1, "Go 1.%d, crypto/tls by %s", minor,
		    out->stripped ? "the pclntab" : ".symtab");
}

/* What tt_gofind and tt_gofind_mem share: *out cleared unless found. */
static int find_in(const tt_elfimg *im, tt_go_syms *out, char *why, size_t cap)
{
	int r;

	fail(why, cap, 0, "%s", "");
	r = gofind(im, out, why, cap);
	if (r != 1)
		memset(out, 0, sizeof(*out));
	return r;
}

int tt_gofind_mem(const void *image, size_t size, tt_go_syms *out,
		  char *why, size_t cap)
{
	tt_elfimg im;

	memset(out, 0, sizeof(*out));
	tt_elfimg_init(&im, image, size);
	return find_in(&im, out, why, cap);
}

int tt_gofind(const char *path, tt_go_syms *out, char *why, size_t cap)
{
	tt_elfimg im;
	int r;

	memset(out, 0, sizeof(*out));
	if (tt_elfimg_open(&im, path) < 0) {
		if (im.fail == TT_ELFIMG_NO_OPEN)
			return fail(why, cap, TT_EIO, "cannot open %s", path);
		if (im.fail == TT_ELFIMG_NO_MAP)
			return fail(why, cap, TT_EIO, "cannot map %s", path);
		return fail(why, cap, TT_EIO, "%s: not a regular file", path);
	}
	r = find_in(&im, out, why, cap);
	tt_elfimg_close(&im);
	return r;
}
