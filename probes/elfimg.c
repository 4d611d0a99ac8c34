/*
 * elfimg.c - the ELF file header, program and section headers, symbol
 * tables and dynamic relocations of one image, each read only after a
 * bounds check (System V gABI, "Object Files" and "Program Loading").
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "elfimg.h"
#include "tokentap/error.h"

/* The PT_LOAD segments, kept: the finders ask for addresses millions of times. */
static void load_segments(tt_elfimg *im)
{
	Elf64_Phdr ph;
	unsigned i;

	for (i = 0; i < im->phnum && im->nseg < TT_ELFIMG_MAXSEG; i++) {
		struct tt_elfseg *s = &im->seg[im->nseg];

		tt_elfimg_phdr(im, i, &ph);
		if (ph.p_type != PT_LOAD)
			continue;
		s->vaddr = ph.p_vaddr;
		/* past the image's end: empty, and p + off stays a valid pointer */
		s->off = ph.p_offset < im->size ? ph.p_offset : im->size;
		s->filesz = 0;
		if (ph.p_offset < im->size)
			s->filesz = ph.p_filesz < im->size - ph.p_offset
					    ? ph.p_filesz : im->size - ph.p_offset;
		s->flags = ph.p_flags;
		im->nseg++;
	}
}

/*
 * The ELF header, then the program headers (when all are inside) and the
 * section headers (when all are inside with their names: a cut file's are
 * ignored, as if stripped, and its segments still read).
 */
static void read_headers(tt_elfimg *im)
{
	Elf64_Ehdr *eh = &im->eh;

	if (im->size < sizeof(*eh))
		return;
	memcpy(eh, im->p, sizeof(*eh));
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_ident[EI_DATA] != ELFDATA2LSB)
		return;
	im->elf = 1;
	if (eh->e_phentsize == sizeof(Elf64_Phdr) &&
	    tt_elfimg_within(im->size, eh->e_phoff,
		   (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr))) {
		im->phdrs_ok = 1;
		im->phnum = eh->e_phnum;
		load_segments(im);
	}
	if (eh->e_shnum == 0 || eh->e_shentsize != sizeof(Elf64_Shdr) ||
	    eh->e_shstrndx >= eh->e_shnum ||
	    !tt_elfimg_within(im->size, eh->e_shoff,
		    (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr)))
		return;
	memcpy(&im->shstr, im->p + eh->e_shoff +
	       (uint64_t)eh->e_shstrndx * sizeof(Elf64_Shdr), sizeof(im->shstr));
	if (tt_elfimg_within(im->size, im->shstr.sh_offset, im->shstr.sh_size))
		im->shnum = eh->e_shnum;
}

void tt_elfimg_init(tt_elfimg *im, const void *image, size_t size)
{
	memset(im, 0, sizeof(*im));
	im->fd = -1;
	im->p = image;
	im->size = size;
	read_headers(im);
}

int tt_elfimg_open(tt_elfimg *im, const char *path)
{
	struct stat st;
	void *map;
	int fd;

	tt_elfimg_init(im, NULL, 0);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		im->fail = TT_ELFIMG_NO_OPEN;
		return TT_EIO;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		im->fail = TT_ELFIMG_NOT_REGULAR;
	else if (st.st_size <= 0)
		im->fail = TT_ELFIMG_EMPTY;
	if (im->fail) {
		close(fd);
		return TT_EIO;
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED) {
		close(fd);
		im->fail = TT_ELFIMG_NO_MAP;
		return TT_EIO;
	}
	tt_elfimg_init(im, map, (size_t)st.st_size);
	im->fd = fd;   /* kept for tt_elfimg_read */
	im->map = map;
	return 0;
}

void tt_elfimg_close(tt_elfimg *im)
{
	if (im->map)
		munmap(im->map, im->size);
	if (im->fd >= 0)
		close(im->fd);
	tt_elfimg_init(im, NULL, 0);
}

const uint8_t *tt_elfimg_at(const tt_elfimg *im, uint64_t off, uint64_t len)
{
	return tt_elfimg_within(im->size, off, len) ? im->p + off : NULL;
}

const uint8_t *tt_elfimg_read(const tt_elfimg *im, uint64_t off, size_t len,
			      void *buf)
{
	if (!tt_elfimg_within(im->size, off, len))
		return NULL;
	if (im->fd < 0)
		return im->p + off;
	if (pread(im->fd, buf, len, (off_t)off) != (ssize_t)len)
		return NULL;
	return buf;
}

int tt_elfimg_phdr(const tt_elfimg *im, unsigned i, Elf64_Phdr *ph)
{
	if (i >= im->phnum)
		return -1;
	memcpy(ph, im->p + im->eh.e_phoff + (uint64_t)i * sizeof(*ph),
	       sizeof(*ph));
	return 0;
}

int tt_elfimg_shdr(const tt_elfimg *im, unsigned i, Elf64_Shdr *sh)
{
	if (i >= im->shnum)
		return -1;
	memcpy(sh, im->p + im->eh.e_shoff + (uint64_t)i * sizeof(*sh),
	       sizeof(*sh));
	return 0;
}

int tt_elfimg_str_is(const uint8_t *tab, uint64_t n, uint64_t off,
		     const char *s)
{
	size_t len;

	if (off >= n || tab[off] != (uint8_t)s[0])
		return 0; /* most names differ at once: no strlen for them */
	len = strlen(s);
	return len < n - off && memcmp(tab + off, s, len + 1) == 0;
}

int tt_elfimg_section(const tt_elfimg *im, const char *name, Elf64_Shdr *sh)
{
	const uint8_t *names = im->p + im->shstr.sh_offset;
	unsigned i;

	for (i = 0; i < im->shnum; i++) {
		tt_elfimg_shdr(im, i, sh);
		if (tt_elfimg_str_is(names, im->shstr.sh_size, sh->sh_name, name))
			return 1;
	}
	return 0;
}

const uint8_t *tt_elfimg_section_data(const tt_elfimg *im,
				      const Elf64_Shdr *sh)
{
	if (sh->sh_type == SHT_NOBITS)
		return NULL;
	return tt_elfimg_at(im, sh->sh_offset, sh->sh_size);
}

/* The first loaded segment with all of [vaddr, vaddr+len) in its file bytes. */
static const struct tt_elfseg *segment_of(const tt_elfimg *im, uint64_t vaddr,
					  uint64_t len, uint32_t need_flags)
{
	unsigned i;

	for (i = 0; i < im->nseg; i++) {
		const struct tt_elfseg *s = &im->seg[i];

		if ((s->flags & need_flags) == need_flags && vaddr >= s->vaddr &&
		    tt_elfimg_within(s->filesz, vaddr - s->vaddr, len))
			return s;
	}
	return NULL;
}

int tt_elfimg_va_off(const tt_elfimg *im, uint64_t vaddr, uint64_t len,
		     uint64_t *off)
{
	const struct tt_elfseg *s = segment_of(im, vaddr, len, 0);

	if (!s)
		return -1;
	*off = s->off + (vaddr - s->vaddr);
	return 0;
}

int tt_elfimg_code_off(const tt_elfimg *im, uint64_t vaddr, uint64_t len,
		       uint64_t *off)
{
	const struct tt_elfseg *s = segment_of(im, vaddr, len, PF_X);

	if (!s)
		return -1;
	*off = s->off + (vaddr - s->vaddr);
	return 0;
}

const uint8_t *tt_elfimg_va(const tt_elfimg *im, uint64_t vaddr, uint64_t len)
{
	const struct tt_elfseg *s = segment_of(im, vaddr, len, 0);

	return s ? im->p + s->off + (vaddr - s->vaddr) : NULL;
}

int tt_elfimg_is_code(const tt_elfimg *im, uint64_t vaddr)
{
	return segment_of(im, vaddr, 1, PF_X) != NULL;
}

int tt_elfimg_off_va(const tt_elfimg *im, uint64_t off, uint64_t *vaddr,
		     uint64_t *len)
{
	unsigned i;

	for (i = 0; i < im->nseg; i++) {
		const struct tt_elfseg *s = &im->seg[i];

		if (off < s->off || off - s->off >= s->filesz)
			continue;
		*vaddr = s->vaddr + (off - s->off);
		*len = s->filesz - (off - s->off);
		return 0;
	}
	return -1;
}

int tt_elfimg_rela(const tt_elfimg *im, const uint8_t **rela, uint64_t *n)
{
	uint64_t addr = 0, size = 0, entsize = 0, j;
	Elf64_Phdr ph;
	Elf64_Dyn dyn;
	unsigned i;

	for (i = 0; tt_elfimg_phdr(im, i, &ph) == 0; i++) {
		const uint8_t *d = tt_elfimg_at(im, ph.p_offset, ph.p_filesz);

		if (ph.p_type != PT_DYNAMIC || !d)
			continue;
		for (j = 0; j + sizeof(dyn) <= ph.p_filesz; j += sizeof(dyn)) {
			memcpy(&dyn, d + j, sizeof(dyn));
			if (dyn.d_tag == DT_NULL)
				break;
			if (dyn.d_tag == DT_RELA)
				addr = dyn.d_un.d_ptr;
			else if (dyn.d_tag == DT_RELASZ)
				size = dyn.d_un.d_val;
			else if (dyn.d_tag == DT_RELAENT)
				entsize = dyn.d_un.d_val;
		}
	}
	if (!addr || !size || entsize != sizeof(Elf64_Rela))
		return 0;
	*rela = tt_elfimg_va(im, addr, size);
	*n = size / sizeof(Elf64_Rela);
	return *rela != NULL;
}

/* One symbol table: its symbols and their names, checked; 0 or TT_EPROTO. */
static int symbol_table(const tt_elfimg *im, const Elf64_Shdr *sh,
			const uint8_t **syms, uint64_t *count,
			const uint8_t **names, uint64_t *nameslen)
{
	Elf64_Shdr strsh;

	if (sh->sh_entsize != sizeof(Elf64_Sym) ||
	    tt_elfimg_shdr(im, sh->sh_link, &strsh) < 0)
		return TT_EPROTO;
	*syms = tt_elfimg_at(im, sh->sh_offset, sh->sh_size);
	*names = tt_elfimg_at(im, strsh.sh_offset, strsh.sh_size);
	if (!*syms || !*names)
		return TT_EPROTO;
	*count = sh->sh_size / sizeof(Elf64_Sym);
	*nameslen = strsh.sh_size;
	return 0;
}

int tt_elfimg_lookup(const tt_elfimg *im, uint32_t kind,
		     const char *const *names, size_t n, int type,
		     uint64_t *values, uint64_t *sizes)
{
	const uint8_t *tab, *str;
	uint64_t count, strsz, j;
	Elf64_Shdr sh;
	Elf64_Sym sym;
	unsigned i;
	size_t k;
	int found = 0;

	for (i = 0; tt_elfimg_shdr(im, i, &sh) == 0; i++) {
		if (sh.sh_type != kind)
			continue;
		if (symbol_table(im, &sh, &tab, &count, &str, &strsz) < 0)
			return TT_EPROTO;
		for (j = 0; j < count; j++) {
			memcpy(&sym, tab + j * sizeof(sym), sizeof(sym));
			if (sym.st_shndx == SHN_UNDEF || sym.st_value == 0 ||
			    (type >= 0 && ELF64_ST_TYPE(sym.st_info) != type))
				continue;
			for (k = 0; k < n; k++) {
				if (values[k] ||
				    !tt_elfimg_str_is(str, strsz, sym.st_name, names[k]))
					continue;
				values[k] = sym.st_value;
				if (sizes)
					sizes[k] = sym.st_size;
				found++;
			}
		}
	}
	return found;
}
