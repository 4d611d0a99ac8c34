/*
 * proc.c - the process's identity from /proc/self.
 *
 * comm comes from /proc/self/comm, which is the thread-group leader's name:
 * a runtime may do its TLS on a thread it renamed ("HTTP Client"), and the
 * record must still name the program.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/app.h"
#include "common/procfs.h"
#include "proc.h"

#define CMDLINE_MAX 4096

/* A script path to its real path (a bin/ link into node_modules). */
static int resolve(const char *path, char *out, size_t cap, void *arg)
{
	char *real = realpath(path, NULL);

	(void)arg;
	if (!real)
		return -1;
	snprintf(out, cap, "%s", real);
	free(real);
	return 0;
}

/* The app of process pid ("self" or a number) from its exe and arguments. */
static void app_of(const char *pid, const char *parent_app, char *out,
		   size_t cap)
{
	char path[64], exe[256];
	char *args = malloc(CMDLINE_MAX);
	size_t n = 0;
	ssize_t e;

	out[0] = '\0';
	snprintf(path, sizeof(path), "/proc/%s/exe", pid);
	e = readlink(path, exe, sizeof(exe) - 1);
	exe[e > 0 ? e : 0] = '\0';
	snprintf(path, sizeof(path), "/proc/%s/cmdline", pid);
	if (args) {
		ssize_t r = tt_procfs_read(path, args, CMDLINE_MAX);

		n = r > 0 ? (size_t)r : 0;
	}
	tt_app_name(exe, args ? args : "", n, resolve, NULL, parent_app, out,
		    cap);
	free(args);
}

void tt_proc_load(tt_proc_info *info)
{
	char ppid[16], parent[128];
	char buf[64];
	size_t n;

	memset(info, 0, sizeof(*info));
	info->pid = getpid();

	{
		ssize_t r = tt_procfs_read("/proc/self/comm", buf, sizeof(buf));

		n = r > 0 ? (size_t)r : 0;
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\0'))
		n--;
	tt_record_set(info->comm, sizeof(info->comm), buf, n);

	ssize_t e = readlink("/proc/self/exe", info->exe, sizeof(info->exe) - 1);
	info->exe[e > 0 ? e : 0] = '\0';

	tt_cgroup_read_self(&info->cg);

	/* a child that names no script of its own (node -e) is its parent's */
	snprintf(ppid, sizeof(ppid), "%d", (int)getppid());
	app_of(ppid, NULL, parent, sizeof(parent));
	app_of("self", parent, info->app, sizeof(info->app));
}

void tt_proc_fill(const tt_proc_info *info, tt_record *rec)
{
	rec->pid = info->pid;
	rec->tid = (int64_t)syscall(SYS_gettid);
	TT_RECORD_SET(rec, comm, info->comm, (size_t)-1);
	TT_RECORD_SET(rec, exe, info->exe, (size_t)-1);
	TT_RECORD_SET(rec, app, info->app, (size_t)-1);
	TT_RECORD_SET(rec, tls, "openssl", (size_t)-1);
	TT_RECORD_SET(rec, cgroup, info->cg.path, (size_t)-1);
	TT_RECORD_SET(rec, container_id, info->cg.container_id, (size_t)-1);
	TT_RECORD_SET(rec, pod_uid, info->cg.pod_uid, (size_t)-1);
}
