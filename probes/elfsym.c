/*
 * elfsym.c - symbol to file offset: the symbol tables and loaded segments
 * as elfimg.c reads them.
 */
#include "elfimg.h"
#include "elfsym.h"
#include "tokentap/error.h"

/* The functions' addresses, .dynsym first: what the dynamic linker exports. */
static int find_values(const tt_elfimg *im, const char *const *names, size_t n,
		       uint64_t *values)
{
	int found, r;

	found = tt_elfimg_lookup(im, SHT_DYNSYM, names, n, STT_FUNC, values, NULL);
	if (found < 0 || found == (int)n)
		return found;
	r = tt_elfimg_lookup(im, SHT_SYMTAB, names, n, STT_FUNC, values, NULL);
	return r < 0 ? r : found + r;
}

static int lookup(const tt_elfimg *im, const char *const *names, size_t n,
		  uint64_t *offsets)
{
	const Elf64_Ehdr *eh = &im->eh;
	size_t k;
	int found = 0, r;

	for (k = 0; k < n; k++)
		offsets[k] = 0;
	if (!im->elf)
		return TT_ENOTSUP;
	/* the section headers must be whole (tt_elfimg would ignore them) */
	if (eh->e_shentsize != sizeof(Elf64_Shdr) || !im->phdrs_ok ||
	    !tt_elfimg_at(im, eh->e_shoff,
			  (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr)))
		return TT_EPROTO;
	r = find_values(im, names, n, offsets);
	for (k = 0; k < n; k++) {
		if (r < 0 || !offsets[k] ||
		    tt_elfimg_va_off(im, offsets[k], 1, &offsets[k]) < 0)
			offsets[k] = 0; /* not found, or not in the file */
		else
			found++;
	}
	return r < 0 ? r : found;
}

int tt_elfsym_lookup_mem(const void *image, size_t size,
			 const char *const *names, size_t n,
			 uint64_t *offsets)
{
	tt_elfimg im;

	tt_elfimg_init(&im, image, size);
	return lookup(&im, names, n, offsets);
}

int tt_elfsym_lookup(const char *path, const char *const *names, size_t n,
		     uint64_t *offsets)
{
	tt_elfimg im;
	size_t k;
	int r;

	if (tt_elfimg_open(&im, path) < 0) {
		for (k = 0; k < n; k++)
			offsets[k] = 0;
		return TT_EIO;
	}
	r = lookup(&im, names, n, offsets);
	tt_elfimg_close(&im);
	return r;
}
