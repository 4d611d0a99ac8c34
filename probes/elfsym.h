/*
 * elfsym.h - function symbols of an ELF file as file offsets, for uprobes.
 *
 * A uprobe is placed at an offset in a file, not at an address.  This reads
 * .dynsym (then .symtab) of a 64-bit ELF file and turns a defined
 * function's st_value into the file offset of the PT_LOAD segment that
 * holds it.  The file is mapped read-only for the lookup (elfimg.h) and
 * unmapped before return; nothing is kept.  Malformed files give an error,
 * never a read outside the mapping.
 */
#ifndef TOKENTAP_ELFSYM_H
#define TOKENTAP_ELFSYM_H

#include <stddef.h>
#include <stdint.h>

/*
 * Look up n symbol names in the ELF file at path.  offsets[i] receives the
 * file offset of names[i], or 0 when the file does not define it (all are
 * 0 after an error).
 * Returns the number of names found (0..n), or a negative tt_error:
 * TT_EIO (cannot open/map), TT_ENOTSUP (not a 64-bit little-endian ELF),
 * TT_EPROTO (malformed).
 */
int tt_elfsym_lookup(const char *path, const char *const *names, size_t n,
		     uint64_t *offsets);

/* The same on an ELF image in memory (borrowed, not modified). */
int tt_elfsym_lookup_mem(const void *img, size_t size,
			 const char *const *names, size_t n,
			 uint64_t *offsets);

#endif
