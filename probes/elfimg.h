/*
 * elfimg.h - a read-only view of a 64-bit little-endian ELF file, or of
 * such an image in memory, for the code finders (elfsym.c, gofind.c,
 * bsslfind.c, rustlsfind.c).  System V gABI, "Object Files" chapter.
 *
 *   tt_elfimg im;
 *
 *   if (tt_elfimg_open(&im, path) < 0)    // or tt_elfimg_init(&im, buf, n)
 *           return im.fail == TT_ELFIMG_NO_OPEN ? ... : ...;
 *   if (im.elf && im.phdrs_ok &&
 *       tt_elfimg_va_off(&im, vaddr, 16, &off) == 0)
 *           ... im.p[off] to im.p[off + 15] are in the image ...
 *   tt_elfimg_close(&im);
 *
 * Every access is checked against the image: a cut or hostile file gives
 * NULL, -1 or TT_EPROTO, never a read outside it.  The headers are copied
 * out (a hostile file need not align them).  Nothing here allocates.
 *
 * Ownership: tt_elfimg_open maps the file and keeps it open until
 * tt_elfimg_close; tt_elfimg_init borrows the caller's buffer, which must
 * outlive the view.  Pointers returned into the image live as long as it.
 * tt_elfimg_close accepts a view whose open failed, or that was made by
 * tt_elfimg_init.
 */
#ifndef TOKENTAP_ELFIMG_H
#define TOKENTAP_ELFIMG_H

#include <elf.h>
#include <endian.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Loaded segments kept; a file with more has its first ones read. */
#define TT_ELFIMG_MAXSEG 32

/* A PT_LOAD segment, its file bytes cut to what the image holds. */
struct tt_elfseg {
	uint64_t vaddr;   /* p_vaddr */
	uint64_t off;     /* p_offset, but no further than the image's end */
	uint64_t filesz;  /* p_filesz, but no further than the image's end */
	uint32_t flags;   /* PF_X, PF_W, PF_R */
};

/* Which step of tt_elfimg_open failed: each finder says it its own way. */
enum tt_elfimg_fail {
	TT_ELFIMG_OK = 0,
	TT_ELFIMG_NO_OPEN,      /* open(2) failed */
	TT_ELFIMG_NOT_REGULAR,  /* fstat failed, or not a regular file */
	TT_ELFIMG_EMPTY,        /* a regular file of 0 bytes: nothing to map */
	TT_ELFIMG_NO_MAP,       /* mmap failed */
};

/* The view.  All fields are read-only for its users. */
typedef struct tt_elfimg {
	const uint8_t *p;       /* the image, size bytes */
	size_t size;
	enum tt_elfimg_fail fail; /* after a failed tt_elfimg_open */

	int elf;                /* 1: a 64-bit little-endian ELF header, in eh */
	Elf64_Ehdr eh;
	int phdrs_ok;           /* e_phentsize right, every program header inside */
	unsigned phnum;         /* program headers readable: e_phnum or 0 */
	unsigned shnum;         /* section headers readable: e_shnum, or 0 when
				 * they or their names are not all inside (as if
				 * stripped) */
	struct tt_elfseg seg[TT_ELFIMG_MAXSEG]; /* the PT_LOAD ones, in order */
	unsigned nseg;

	/* private */
	Elf64_Shdr shstr;       /* the section names */
	int fd;                 /* tt_elfimg_open's file; -1 */
	void *map;              /* its mapping; NULL */
} tt_elfimg;

/*
 * Map the file at path read-only and read its headers.  Returns 0, or
 * TT_EIO with im->fail saying which step failed (nothing is then held).
 * A file that is not ELF opens fine: im->elf is 0.
 */
int tt_elfimg_open(tt_elfimg *im, const char *path);

/* A view of size bytes at image (borrowed, not modified). */
void tt_elfimg_init(tt_elfimg *im, const void *image, size_t size);

/* Unmap and close what tt_elfimg_open holds; the view is then empty. */
void tt_elfimg_close(tt_elfimg *im);

/* [off, off+len) of the image, or NULL when not all of it is inside. */
const uint8_t *tt_elfimg_at(const tt_elfimg *im, uint64_t off, uint64_t len);

/*
 * [off, off+len) for one pass over a large range: a pointer into an image
 * in memory, or, for an opened file, the bytes copied into buf (len bytes)
 * with pread(2): on a VM, faulting in a few hundred MB of mapping costs
 * more than the kernel's copy (bsslfind's pass over .text).  NULL when the
 * range is not all inside or pread falls short.
 */
const uint8_t *tt_elfimg_read(const tt_elfimg *im, uint64_t off, size_t len,
			      void *buf);

/* The i-th program or section header, copied out: 0, or -1 (no such). */
int tt_elfimg_phdr(const tt_elfimg *im, unsigned i, Elf64_Phdr *ph);
int tt_elfimg_shdr(const tt_elfimg *im, unsigned i, Elf64_Shdr *sh);

/*
 * The first section named name: 1 and *sh (its bytes may still be absent:
 * tt_elfimg_section_data), or 0.
 */
int tt_elfimg_section(const tt_elfimg *im, const char *name, Elf64_Shdr *sh);

/* A section's bytes, or NULL (SHT_NOBITS, or not all inside the image). */
const uint8_t *tt_elfimg_section_data(const tt_elfimg *im,
				      const Elf64_Shdr *sh);

/*
 * Addresses, through the loaded segments: [vaddr, vaddr+len) must lie in
 * the file bytes of one of them (the first that holds it).
 *   tt_elfimg_va_off    its file offset: 0 and *off, or -1
 *   tt_elfimg_code_off  the same, executable segments only
 *   tt_elfimg_va        a pointer to its bytes, or NULL
 *   tt_elfimg_is_code   1 when vaddr is in an executable segment's bytes
 *   tt_elfimg_off_va    the other way: the address of file offset off and
 *                       how many bytes of its segment follow: 0, or -1
 */
int tt_elfimg_va_off(const tt_elfimg *im, uint64_t vaddr, uint64_t len,
		     uint64_t *off);
int tt_elfimg_code_off(const tt_elfimg *im, uint64_t vaddr, uint64_t len,
		       uint64_t *off);
const uint8_t *tt_elfimg_va(const tt_elfimg *im, uint64_t vaddr, uint64_t len);
int tt_elfimg_is_code(const tt_elfimg *im, uint64_t vaddr);
int tt_elfimg_off_va(const tt_elfimg *im, uint64_t off, uint64_t *vaddr,
		     uint64_t *len);

/*
 * The dynamic relocations with addends (DT_RELA, DT_RELASZ, DT_RELAENT of
 * PT_DYNAMIC): 1 with *rela (Elf64_Rela records, unaligned: copy each
 * out) and *n, when they lie in one loaded segment; 0.
 */
int tt_elfimg_rela(const tt_elfimg *im, const uint8_t **rela, uint64_t *n);

/*
 * Look names up in every symbol table of one kind (SHT_SYMTAB or
 * SHT_DYNSYM).  For each names[k] whose values[k] is still 0, the first
 * defined symbol of that name with a nonzero value (and, unless type is
 * -1, of that STT_ type) gives values[k] and, when sizes is not NULL,
 * sizes[k] (0: unknown).  Returns how many it filled, or TT_EPROTO when a
 * table of that kind is malformed (entry size, string table, bytes outside
 * the image).
 */
int tt_elfimg_lookup(const tt_elfimg *im, uint32_t kind,
		     const char *const *names, size_t n, int type,
		     uint64_t *values, uint64_t *sizes);

/* Is the C string at tab[off] (tab n bytes long) exactly s? */
int tt_elfimg_str_is(const uint8_t *tab, uint64_t n, uint64_t off,
		     const char *s);

/* Is [off, off+len) inside n bytes?  (Written so that nothing overflows.) */
static inline int tt_elfimg_within(uint64_t n, uint64_t off, uint64_t len)
{
	return off <= n && len <= n - off;
}

/* Little-endian integers at any alignment (the finders' one byte order). */
static inline uint32_t tt_elfimg_le32(const void *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

static inline uint64_t tt_elfimg_le64(const void *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

#endif
