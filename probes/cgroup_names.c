/*
 * cgroup_names.c - cgroup ids to paths, by walking the cgroup2 mount.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cgroup_names.h"
#include "tokentap/error.h"

#define CG_MAX_ENTRIES 65536 /* cgroups remembered */
#define CG_MAX_DEPTH 32
#define CG_PATH_MAX 512

struct cg_entry {
	uint64_t id;
	char *path;
};

struct tt_cgnames {
	char root[CG_PATH_MAX];
	struct cg_entry *v;
	size_t n, cap;
	time_t last_walk;
};

static void cg_clear(tt_cgnames *cg)
{
	size_t i;

	for (i = 0; i < cg->n; i++)
		free(cg->v[i].path);
	cg->n = 0;
}

static int cg_add(tt_cgnames *cg, uint64_t id, const char *path)
{
	if (cg->n == cg->cap) {
		size_t ncap = cg->cap ? cg->cap * 2 : 256;
		struct cg_entry *nv;

		if (ncap > CG_MAX_ENTRIES)
			return TT_ETRUNCATED;
		nv = realloc(cg->v, ncap * sizeof(*nv));
		if (!nv)
			return TT_ENOMEM;
		cg->v = nv;
		cg->cap = ncap;
	}
	cg->v[cg->n].path = strdup(path);
	if (!cg->v[cg->n].path)
		return TT_ENOMEM;
	cg->v[cg->n].id = id;
	cg->n++;
	return 0;
}

/* rel is the path below the root, "" for the root itself. */
static void cg_walk(tt_cgnames *cg, const char *rel, int depth)
{
	char full[CG_PATH_MAX * 2];
	struct dirent *de;
	struct stat st;
	DIR *d;

	snprintf(full, sizeof(full), "%s%s", cg->root, rel);
	if (stat(full, &st) < 0)
		return;
	if (cg_add(cg, (uint64_t)st.st_ino, rel[0] ? rel : "/") < 0)
		return;
	if (depth >= CG_MAX_DEPTH)
		return;
	d = opendir(full);
	if (!d)
		return;
	while ((de = readdir(d))) {
		char sub[CG_PATH_MAX];
		int len;

		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		len = snprintf(sub, sizeof(sub), "%s/%s", rel, de->d_name);
		if (len < 0 || (size_t)len >= sizeof(sub))
			continue;
		cg_walk(cg, sub, depth + 1);
	}
	closedir(d);
}

/* The cgroup2 mount point from mountinfo (field 5, fstype after " - "). */
static int find_cgroup2(char *out, size_t cap)
{
	char line[4096];
	FILE *f = fopen("/proc/self/mountinfo", "re");
	int ret = TT_EINVAL;

	if (!f)
		return TT_EIO;
	while (fgets(line, sizeof(line), f)) {
		char *sep = strstr(line, " - ");
		char mnt[CG_PATH_MAX];

		if (!sep || strncmp(sep + 3, "cgroup2 ", 8) != 0)
			continue;
		/* id parent major:minor root mountpoint ... */
		if (sscanf(line, "%*s %*s %*s %*s %511s", mnt) != 1)
			continue;
		snprintf(out, cap, "%s", mnt);
		ret = 0;
		break;
	}
	fclose(f);
	return ret;
}

tt_cgnames *tt_cgnames_new(const char *root)
{
	tt_cgnames *cg = calloc(1, sizeof(*cg));

	if (!cg)
		return NULL;
	if (root)
		snprintf(cg->root, sizeof(cg->root), "%s", root);
	else if (find_cgroup2(cg->root, sizeof(cg->root)) < 0) {
		free(cg);
		return NULL;
	}
	/* "/" would make "//x" paths; the root's own path is "" below. */
	if (strcmp(cg->root, "/") == 0)
		cg->root[0] = '\0';
	return cg;
}

void tt_cgnames_free(tt_cgnames *cg)
{
	if (!cg)
		return;
	cg_clear(cg);
	free(cg->v);
	free(cg);
}

static const char *cg_find(tt_cgnames *cg, uint64_t id)
{
	size_t i;

	for (i = 0; i < cg->n; i++)
		if (cg->v[i].id == id)
			return cg->v[i].path;
	return NULL;
}

int tt_cgnames_lookup(tt_cgnames *cg, uint64_t id, char *out, size_t cap)
{
	const char *p;
	time_t now;

	if (!cg || !cap)
		return TT_EINVAL;
	p = cg_find(cg, id);
	if (!p) {
		/* New cgroups appear all the time; walk again, but rarely. */
		now = time(NULL);
		if (now == cg->last_walk)
			return TT_EINVAL;
		cg->last_walk = now;
		cg_clear(cg);
		cg_walk(cg, "", 0);
		p = cg_find(cg, id);
		if (!p)
			return TT_EINVAL;
	}
	snprintf(out, cap, "%s", p);
	return 0;
}
