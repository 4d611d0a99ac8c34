/*
 * procs.c - per-process facts, cached by tgid: from the kernel side's
 * description at a process's first call, completed from /proc while the
 * process lives.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <limits.h>

#include "common/app.h"
#include "common/cgroup.h"
#include "common/procfs.h"
#include "procs.h"
#include "tokentap/error.h"

#define PROCS_DEFAULT_MAX 8192
#define PROCS_BUCKETS 1024

struct pentry {
	tt_proc p;
	int missing; /* sweeps in a row that found it gone */
	struct pentry *next;
};

struct tt_procs {
	size_t max, n;
	struct pentry *b[PROCS_BUCKETS];
	struct pentry spare; /* the answer when the table is full */
};

/* Bounded copy that always terminates (strings here may be cut). */
static void copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = strnlen(src, cap - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
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
	n = tt_procfs_read(fn, buf, sizeof(buf));
	if (n <= 0)
		return TT_EIO;
	return tt_procs_parse_stat(buf, (size_t)n, out);
}

uint64_t tt_procs_starttime(int pid)
{
	tt_proc_stat st;

	return tt_procs_read_stat(pid, &st) == 0 ? st.starttime : 0;
}

/*
 * A script path as the process saw it, resolved through the process's
 * root (a container's files) while it lives, so that a bin/ symlink leads
 * to the package it belongs to.
 */
struct resolve_ctx {
	uint32_t tgid;
	int alive;
};

static int resolve_script(const char *path, char *out, size_t cap, void *arg)
{
	const struct resolve_ctx *rc = arg;
	char full[PATH_MAX], real[PATH_MAX];

	if (path[0] != '/')
		return -1; /* relative to a working folder we do not know */
	if (rc->alive)
		snprintf(full, sizeof(full), "/proc/%u/root%s", rc->tgid, path);
	else
		snprintf(full, sizeof(full), "%s", path);
	if (!realpath(full, real))
		return -1;
	copy_str(out, cap, real);
	return 0;
}

/* The arguments of a live process, NUL-separated. */
static ssize_t read_cmdline(uint32_t tgid, char *buf, size_t cap)
{
	char fn[64];

	snprintf(fn, sizeof(fn), "/proc/%u/cmdline", tgid);
	return tt_procfs_read(fn, buf, cap);
}

/*
 * The parent's app, for a child whose arguments name no script (node
 * relaunched with -e, a REPL): the parent's entry, else its /proc.
 */
static void parent_app(tt_procs *p, uint32_t ppid, char *out, size_t cap)
{
	const tt_proc *pe = ppid ? tt_procs_peek(p, ppid) : NULL;
	struct resolve_ctx rc = { .tgid = ppid, .alive = 1 };
	char fn[64], exe[256], args[4096];
	ssize_t n;

	out[0] = '\0';
	if (pe) {
		copy_str(out, cap, pe->app);
		return;
	}
	if (ppid <= 1)
		return;
	snprintf(fn, sizeof(fn), "/proc/%u/exe", ppid);
	n = readlink(fn, exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = '\0';
	n = read_cmdline(ppid, args, sizeof(args));
	if (n > 0)
		tt_app_name(exe, args, (size_t)n, resolve_script, &rc, NULL,
			    out, cap);
}

static void name_app(tt_procs *p, tt_proc *e, const char *args, size_t len,
		     int alive)
{
	struct resolve_ctx rc = { .tgid = e->tgid, .alive = alive };
	char papp[sizeof(e->app)];

	parent_app(p, e->ppid, papp, sizeof(papp));
	tt_app_name(e->exe, args, len, resolve_script, &rc, papp, e->app,
		    sizeof(e->app));
}

/* What /proc says of a live tgid; start stays 0 when it is gone. */
static void load_live(tt_proc *p, uint32_t tgid)
{
	char fn[64], buf[4096];
	tt_cgroup_info cg;
	tt_proc_stat st;
	ssize_t n;

	memset(p, 0, sizeof(*p));
	p->tgid = tgid;
	if (tt_procs_read_stat((int)tgid, &st) == 0) {
		p->start = st.starttime;
		p->ppid = st.ppid;
	}
	snprintf(fn, sizeof(fn), "/proc/%u/comm", tgid);
	if (tt_procfs_read(fn, buf, sizeof(buf)) > 0) {
		buf[strcspn(buf, "\n")] = '\0';
		copy_str(p->comm, sizeof(p->comm), buf);
	}
	snprintf(fn, sizeof(fn), "/proc/%u/exe", tgid);
	n = readlink(fn, buf, sizeof(buf) - 1);
	if (n > 0) {
		buf[n] = '\0';
		copy_str(p->exe, sizeof(p->exe), buf);
	}
	snprintf(fn, sizeof(fn), "/proc/%u/cgroup", tgid);
	n = tt_procfs_read(fn, buf, sizeof(buf));
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

/*
 * A new, empty entry for tgid; the spare slot when the table is full or
 * memory is short (an answer without caching rather than growth).
 */
static tt_proc *new_entry(tt_procs *p, uint32_t tgid)
{
	struct pentry *e, **head = &p->b[tgid % PROCS_BUCKETS];

	if (p->n < p->max && (e = calloc(1, sizeof(*e)))) {
		e->next = *head;
		*head = e;
		p->n++;
	} else {
		e = &p->spare;
	}
	memset(&e->p, 0, sizeof(e->p));
	e->p.tgid = tgid;
	return &e->p;
}

const tt_proc *tt_procs_peek(tt_procs *p, uint32_t tgid)
{
	struct pentry *e;

	for (e = p->b[tgid % PROCS_BUCKETS]; e; e = e->next)
		if (e->p.tgid == tgid)
			return &e->p;
	return NULL;
}

const tt_proc *tt_procs_get(tt_procs *p, uint32_t tgid)
{
	const tt_proc *known = tt_procs_peek(p, tgid);
	char args[4096];
	tt_proc *e;
	ssize_t n;

	if (known)
		return known;
	/* its description was lost: what /proc still says */
	e = new_entry(p, tgid);
	load_live(e, tgid);
	n = read_cmdline(tgid, args, sizeof(args));
	name_app(p, e, args, n > 0 ? (size_t)n : 0, 1);
	return e;
}

void tt_procs_describe(tt_procs *p, uint32_t tgid, const tt_proc_desc *d)
{
	tt_proc *e = (tt_proc *)tt_procs_peek(p, tgid);
	char args[4096];
	ssize_t n = 0;
	int alive;

	if (!e)
		e = new_entry(p, tgid);
	load_live(e, tgid);
	/* /proc speaks of the described process, not of a later one */
	alive = e->start != 0 && e->start == d->start;
	if (!alive) {
		memset(e, 0, sizeof(*e));
		e->tgid = tgid;
		e->start = d->start;
		e->ppid = d->ppid;
	}
	if (!e->comm[0])
		copy_str(e->comm, sizeof(e->comm), d->comm);
	if (!e->exe[0])
		copy_str(e->exe, sizeof(e->exe), d->exe);
	e->agent = d->agent;
	if (alive)
		n = read_cmdline(tgid, args, sizeof(args));
	if (n > 0)
		name_app(p, e, args, (size_t)n, 1);
	else
		name_app(p, e, d->args, d->args_len, 0);
}

void tt_procs_forget(tt_procs *p, uint32_t tgid)
{
	struct pentry **pp = &p->b[tgid % PROCS_BUCKETS];

	for (; *pp; pp = &(*pp)->next) {
		struct pentry *e = *pp;

		if (e->p.tgid != tgid)
			continue;
		*pp = e->next;
		p->n--;
		free(e);
		return;
	}
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
				e->missing = 0;
				pp = &e->next;
				continue;
			}
			/*
			 * Gone, and its exit event has not come: it may still
			 * be on its way (the ring lags the kernel), so only a
			 * second sweep takes the exit as lost.
			 */
			if (++e->missing < 2) {
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
