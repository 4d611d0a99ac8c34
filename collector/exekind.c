/*
 * exekind.c - a program's kind from its ELF headers and section names
 * (libelf), without reading its code; see exekind.h.
 */
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exekind.h"

#define MAX_SCRIPT_HOPS 4 /* a script run by a script ... as the kernel */

/* execvp's lookup: a name without '/' is searched in PATH. */
static int resolve(const char *cmd, char *out, size_t cap)
{
	const char *path = getenv("PATH");
	const char *p, *end;

	if (strchr(cmd, '/'))
		return snprintf(out, cap, "%s", cmd) < (int)cap ? 0 : -1;
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path; *p; p = *end ? end + 1 : end) {
		end = strchrnul(p, ':');
		int n = snprintf(out, cap, "%.*s%s%s", (int)(end - p), p,
				 end > p ? "/" : "", cmd);
		if (n > 0 && (size_t)n < cap && access(out, X_OK) == 0)
			return 0;
	}
	return -1;
}

/* "#!/usr/bin/env bun" -> "bun"; "#!/bin/sh -e" -> "/bin/sh". */
static int interpreter(int fd, char *out, size_t cap)
{
	char line[256], *s, *word;
	ssize_t n = pread(fd, line, sizeof(line) - 1, 0);

	if (n < 3 || line[0] != '#' || line[1] != '!')
		return -1;
	line[n] = '\0';
	line[strcspn(line, "\n")] = '\0';
	s = line + 2;
	word = strtok(s, " \t");
	if (!word)
		return -1;
	/* env's own options (-S, -i) are rare in a shebang: take the
	 * first word that is not one. */
	if (!strcmp(word, "/usr/bin/env") || !strcmp(word, "/bin/env"))
		while ((word = strtok(NULL, " \t")) && word[0] == '-')
			;
	if (!word || snprintf(out, cap, "%s", word) >= (int)cap)
		return -1;
	return 0;
}

/*
 * Does the dynamic symbol table define SSL_write?  An executable's calls
 * to its own functions are bound at link time, so LD_PRELOAD cannot
 * interpose them (NodeSource's node links OpenSSL in and exports it).
 */
static int defines_ssl_write(Elf *e, Elf_Scn *dynsym, const GElf_Shdr *sh)
{
	Elf_Data *d = elf_getdata(dynsym, NULL);
	size_t i, n;

	if (!d || !sh->sh_entsize)
		return 0;
	n = sh->sh_size / sh->sh_entsize;
	for (i = 0; i < n; i++) {
		GElf_Sym sym;
		const char *name;

		if (!gelf_getsym(d, (int)i, &sym) || sym.st_shndx == SHN_UNDEF ||
		    GELF_ST_TYPE(sym.st_info) != STT_FUNC)
			continue;
		name = elf_strptr(e, sh->sh_link, sym.st_name);
		if (name && !strcmp(name, "SSL_write"))
			return 1;
	}
	return 0;
}

static tt_exe_kind kind_of_elf(int fd)
{
	tt_exe_kind kind = TT_EXE_UNKNOWN;
	Elf *e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	Elf_Scn *scn = NULL;
	size_t shstrndx, nph, i;
	int interp = 0, own_ssl = 0;

	if (!e || elf_kind(e) != ELF_K_ELF || elf_getphdrnum(e, &nph))
		goto out;
	for (i = 0; i < nph; i++) {
		GElf_Phdr ph;
		if (gelf_getphdr(e, (int)i, &ph) && ph.p_type == PT_INTERP)
			interp = 1;
	}
	kind = interp ? TT_EXE_DYNAMIC : TT_EXE_STATIC;
	if (elf_getshdrstrndx(e, &shstrndx))
		goto out;
	while ((scn = elf_nextscn(e, scn))) {
		GElf_Shdr sh;
		const char *name;
		if (!gelf_getshdr(scn, &sh) ||
		    !(name = elf_strptr(e, shstrndx, sh.sh_name)))
			continue;
		/* Bun keeps its bundled JavaScript in ".bun"; every Go
		 * program has a pclntab (and, since 1.13, build info). */
		if (!strcmp(name, ".bun")) {
			kind = TT_EXE_BUN;
			break;
		}
		if (!strcmp(name, ".gopclntab") || !strcmp(name, ".go.buildinfo") ||
		    !strcmp(name, ".data.rel.ro.gopclntab"))
			kind = TT_EXE_GO;
		if (sh.sh_type == SHT_DYNSYM && defines_ssl_write(e, scn, &sh))
			own_ssl = 1;
	}
	if (kind == TT_EXE_DYNAMIC && own_ssl)
		kind = TT_EXE_OWN_SSL;
out:
	if (e)
		elf_end(e);
	return kind;
}

tt_exe_kind tt_exe_kind_of(const char *cmd, char *path, size_t cap)
{
	char name[PATH_MAX];
	tt_exe_kind kind = TT_EXE_UNKNOWN;

	if (cap)
		path[0] = '\0';
	if (elf_version(EV_CURRENT) == EV_NONE)
		return TT_EXE_UNKNOWN;
	snprintf(name, sizeof(name), "%s", cmd);
	for (int hop = 0; hop < MAX_SCRIPT_HOPS; hop++) {
		char full[PATH_MAX];
		int fd;

		if (resolve(name, full, sizeof(full)))
			return TT_EXE_UNKNOWN;
		fd = open(full, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return TT_EXE_UNKNOWN;
		if (cap)
			snprintf(path, cap, "%s", full);
		if (interpreter(fd, name, sizeof(name)) == 0) {
			close(fd);
			continue;
		}
		kind = kind_of_elf(fd);
		close(fd);
		return kind;
	}
	return kind;
}

const char *tt_exe_kind_name(tt_exe_kind k)
{
	switch (k) {
	case TT_EXE_STATIC: return "static";
	case TT_EXE_GO: return "Go";
	case TT_EXE_BUN: return "Bun";
	case TT_EXE_OWN_SSL: return "own OpenSSL";
	default: return NULL;
	}
}
