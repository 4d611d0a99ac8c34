/*
 * elfsym.c - symbol to file offset, from the ELF section and program
 * headers (System V gABI, "Object Files" chapter).
 */
#include <elf.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "elfsym.h"
#include "tokentap/error.h"

/* Is [off, off+len) inside an image of size bytes? */
static int in_image(size_t size, uint64_t off, uint64_t len)
{
	return off <= size && len <= size - off;
}

/* vaddr -> file offset through the PT_LOAD segment holding it. */
static int vaddr_to_off(const unsigned char *img, size_t size,
			const Elf64_Ehdr *eh, uint64_t vaddr, uint64_t *off)
{
	uint64_t i;

	for (i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *ph = (const Elf64_Phdr *)
			(img + eh->e_phoff + i * (uint64_t)eh->e_phentsize);

		if (ph->p_type != PT_LOAD)
			continue;
		if (vaddr >= ph->p_vaddr && vaddr - ph->p_vaddr < ph->p_filesz) {
			*off = vaddr - ph->p_vaddr + ph->p_offset;
			return 0;
		}
	}
	return TT_EPROTO;
}

/* Search one symbol table section; fills offsets[] still 0. */
static int scan_symtab(const unsigned char *img, size_t size,
		       const Elf64_Ehdr *eh, const Elf64_Shdr *sh,
		       const Elf64_Shdr *strsh, const char *const *names,
		       size_t n, uint64_t *offsets)
{
	uint64_t count, i;
	size_t k;
	int found = 0;

	if (sh->sh_entsize != sizeof(Elf64_Sym) ||
	    !in_image(size, sh->sh_offset, sh->sh_size) ||
	    !in_image(size, strsh->sh_offset, strsh->sh_size))
		return TT_EPROTO;
	count = sh->sh_size / sizeof(Elf64_Sym);
	for (i = 0; i < count; i++) {
		const Elf64_Sym *sym = (const Elf64_Sym *)
			(img + sh->sh_offset + i * sizeof(Elf64_Sym));
		const char *name;
		size_t maxlen;

		if (ELF64_ST_TYPE(sym->st_info) != STT_FUNC ||
		    sym->st_shndx == SHN_UNDEF || sym->st_value == 0 ||
		    sym->st_name >= strsh->sh_size)
			continue;
		name = (const char *)img + strsh->sh_offset + sym->st_name;
		maxlen = strsh->sh_size - sym->st_name;
		for (k = 0; k < n; k++) {
			size_t len = strlen(names[k]);

			/* the name must end inside the string table */
			if (offsets[k] || len >= maxlen ||
			    memcmp(name, names[k], len + 1) != 0)
				continue;
			if (vaddr_to_off(img, size, eh, sym->st_value,
					 &offsets[k]) == 0)
				found++;
		}
	}
	return found;
}

int tt_elfsym_lookup_mem(const void *image, size_t size,
			 const char *const *names, size_t n,
			 uint64_t *offsets)
{
	const unsigned char *img = image;
	const Elf64_Ehdr *eh = image;
	static const uint32_t kinds[] = { SHT_DYNSYM, SHT_SYMTAB };
	size_t k;
	unsigned t;
	uint64_t i;
	int found = 0;

	for (k = 0; k < n; k++)
		offsets[k] = 0;
	if (size < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0)
		return TT_ENOTSUP;
	if (eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_ident[EI_DATA] != ELFDATA2LSB)
		return TT_ENOTSUP;
	if (eh->e_shentsize != sizeof(Elf64_Shdr) ||
	    eh->e_phentsize != sizeof(Elf64_Phdr) ||
	    !in_image(size, eh->e_shoff, (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr)) ||
	    !in_image(size, eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr)))
		return TT_EPROTO;

	/* .dynsym first: it is what the dynamic linker exports. */
	for (t = 0; t < 2 && found < (int)n; t++) {
		for (i = 0; i < eh->e_shnum; i++) {
			const Elf64_Shdr *sh = (const Elf64_Shdr *)
				(img + eh->e_shoff + i * sizeof(Elf64_Shdr));
			const Elf64_Shdr *strsh;
			int r;

			if (sh->sh_type != kinds[t])
				continue;
			if (sh->sh_link >= eh->e_shnum)
				return TT_EPROTO;
			strsh = (const Elf64_Shdr *)(img + eh->e_shoff +
				sh->sh_link * sizeof(Elf64_Shdr));
			r = scan_symtab(img, size, eh, sh, strsh, names, n,
					offsets);
			if (r < 0)
				return r;
			found += r;
		}
	}
	return found;
}

int tt_elfsym_lookup(const char *path, const char *const *names, size_t n,
		     uint64_t *offsets)
{
	struct stat st;
	void *img;
	int fd, r;
	size_t k;

	for (k = 0; k < n; k++)
		offsets[k] = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return TT_EIO;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0) {
		close(fd);
		return TT_EIO;
	}
	img = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (img == MAP_FAILED)
		return TT_EIO;
	r = tt_elfsym_lookup_mem(img, (size_t)st.st_size, names, n, offsets);
	munmap(img, (size_t)st.st_size);
	return r;
}
