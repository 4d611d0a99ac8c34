/*
 * procs.c - per-process facts from /proc, cached by tgid.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgroup.h"   /* agent's parser: one naming of containers and pods */
#include "procs.h"
#include "tokentap/error.h"

#define PROCS_DEFAULT_MAX 8192
#define PROCS_BUCKETS 1024

struct pentry {
	tt_proc p;
	struct pentry *next;
};

struct tt_procs {
	size_t max, n;
	struct pentry *b[PROCS_BUCKETS];
	tt_proc gone; /* returned for processes already gone */
};

/* Bounded copy that always terminates (strings here may be cut). */
static void copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = strnlen(src, cap - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

static ssize_t read_small(const char *fn, char *buf, size_t cap)
{
	int fd = open(fn, O_RDONLY | O_CLOEXEC);
	ssize_t n, total = 0;

	if (fd < 0)
		return -1;
	while ((size_t)total < cap - 1) {
		n = read(fd, buf + total, cap - 1 - (size_t)total);
		if (n <= 0)
			break;
		total += n;
	}
	close(fd);
	buf[total] = '\0';
	return total;
}

int tt_procs_parse_stat(const char *buf, size_t len, tt_proc_stat *out)
{
	const char *p = NULL, *end = buf + len;
	int field;

	/*
	 * proc(5): "pid (comm) state ppid ...".  comm may hold spaces and
	 * parentheses, so fields are counted from the LAST ')': the next
	 * token is field 3 (state).
	 */
	for (const char *q = buf; q < end; q++)
		if (*q == ')')
			p = q;
	if (!p)
		return TT_EPROTO;
	memset(out, 0, sizeof(*out));
	p++;
	for (field = 3; field <= 22; field++) {
		uint64_t v = 0;
		int digits = 0;

		while (p < end && *p == ' ')
			p++;
		if (p >= end)
			return TT_EPROTO;
		/* only ppid (4) and starttime (22) are read; others skipped */
		while (p < end && *p != ' ') {
			if ((field == 4 || field == 22) && *p >= '0' && *p <= '9') {
				if (v > (UINT64_MAX - 9) / 10)
					return TT_EPROTO;
				v = v * 10 + (uint64_t)(*p - '0');
				digits++;
			} else if (field == 4 || field == 22) {
				return TT_EPROTO;
			}
			p++;
		}
		if (field == 4) {
			if (!digits || v > UINT32_MAX)
				return TT_EPROTO;
			out->ppid = (uint32_t)v;
		} else if (field == 22) {
			/* a number cut by the end of the buffer is no number */
			if (!digits || p >= end)
				return TT_EPROTO;
			out->starttime = v;
		}
	}
	return 0;
}

int tt_procs_read_stat(int pid, tt_proc_stat *out)
{
	char fn[64], buf[1024];
	ssize_t n;

	snprintf(fn, sizeof(fn), "/proc/%d/stat", pid);
	n = read_small(fn, buf, sizeof(buf));
	if (n <= 0)
		return TT_EIO;
	return tt_procs_parse_stat(buf, (size_t)n, out);
}

uint64_t tt_procs_starttime(int pid)
{
	tt_proc_stat st;

	return tt_procs_read_stat(pid, &st) == 0 ? st.starttime : 0;
}

int tt_procs_maps_has(int pid, const char *prefix)
{
	char fn[64], line[4096];
	size_t plen = strlen(prefix);
	FILE *f;
	int found = 0;

	snprintf(fn, sizeof(fn), "/proc/%d/maps", pid);
	f = fopen(fn, "re");
	if (!f)
		return TT_EIO;
	while (!found && fgets(line, sizeof(line), f)) {
		char *path = strchr(line, '/'), *base;

		if (!path)
			continue;
		path[strcspn(path, "\n")] = '\0';
		base = strrchr(path, '/') + 1;
		if (strncmp(base, prefix, plen) == 0)
			found = 1;
	}
	fclose(f);
	return found;
}

static void load(tt_proc *p, uint32_t tgid)
{
	char fn[64], buf[4096];
	tt_cgroup_info cg;
	ssize_t n;

	memset(p, 0, sizeof(*p));
	p->tgid = tgid;
	p->start = tt_procs_starttime((int)tgid);
	snprintf(fn, sizeof(fn), "/proc/%u/comm", tgid);
	if (read_small(fn, buf, sizeof(buf)) > 0) {
		buf[strcspn(buf, "\n")] = '\0';
		copy_str(p->comm, sizeof(p->comm), buf);
	}
	snprintf(fn, sizeof(fn), "/proc/%u/exe", tgid);
	n = readlink(fn, buf, sizeof(buf) - 1);
	if (n > 0) {
		buf[n] = '\0';
		copy_str(p->exe, sizeof(p->exe), buf);
	}
	/*
	 * A process under the agent (LD_PRELOAD=libtokentap.so) reports its
	 * own calls; the probe leaves it out so each call counts once.  Known
	 * limit: a process that has already exited when its first event is
	 * read cannot be checked, and its calls are counted by the probe too
	 * (on a loaded machine, a curl that lives a few milliseconds).
	 */
	p->agent = tt_procs_maps_has((int)tgid, "libtokentap.so") == 1;
	snprintf(fn, sizeof(fn), "/proc/%u/cgroup", tgid);
	n = read_small(fn, buf, sizeof(buf));
	if (n > 0 && tt_cgroup_parse(buf, (size_t)n, &cg) == 0) {
		copy_str(p->cgroup, sizeof(p->cgroup), cg.path);
		copy_str(p->container_id, sizeof(p->container_id), cg.container_id);
		copy_str(p->pod_uid, sizeof(p->pod_uid), cg.pod_uid);
	}
}

tt_procs *tt_procs_new(size_t max)
{
	tt_procs *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->max = max ? max : PROCS_DEFAULT_MAX;
	return p;
}

void tt_procs_free(tt_procs *p)
{
	size_t i;

	if (!p)
		return;
	for (i = 0; i < PROCS_BUCKETS; i++) {
		struct pentry *e = p->b[i], *nx;

		for (; e; e = nx) {
			nx = e->next;
			free(e);
		}
	}
	free(p);
}

const tt_proc *tt_procs_get(tt_procs *p, uint32_t tgid)
{
	struct pentry *e, **head = &p->b[tgid % PROCS_BUCKETS];

	for (e = *head; e; e = e->next)
		if (e->p.tgid == tgid)
			return &e->p;
	if (p->n >= p->max) {
		/* full: answer without caching rather than grow */
		load(&p->gone, tgid);
		return &p->gone;
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		memset(&p->gone, 0, sizeof(p->gone));
		p->gone.tgid = tgid;
		return &p->gone;
	}
	load(&e->p, tgid);
	e->next = *head;
	*head = e;
	p->n++;
	return &e->p;
}

void tt_procs_hint(tt_procs *p, uint32_t tgid, const char *comm,
		   const char *exe)
{
	tt_proc *e = (tt_proc *)tt_procs_get(p, tgid);

	if (!e->comm[0] && comm)
		copy_str(e->comm, sizeof(e->comm), comm);
	if (!e->exe[0] && exe)
		copy_str(e->exe, sizeof(e->exe), exe);
}

void tt_procs_sweep(tt_procs *p, void (*gone)(uint32_t tgid, void *arg),
		    void *arg)
{
	size_t i;

	for (i = 0; i < PROCS_BUCKETS; i++) {
		struct pentry **pp = &p->b[i];

		while (*pp) {
			struct pentry *e = *pp;

			if (tt_procs_starttime((int)e->p.tgid) == e->p.start &&
			    e->p.start != 0) {
				pp = &e->next;
				continue;
			}
			if (gone)
				gone(e->p.tgid, arg);
			*pp = e->next;
			p->n--;
			free(e);
		}
	}
}
