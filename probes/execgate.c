/*
 * execgate.c - hold each new program's exec until its file is attached
 * (fanotify FAN_OPEN_EXEC_PERM), see execgate.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "execgate.h"
#include "tokentap/error.h"

#define GATE_MAX_FS 1024        /* filesystems watched */
#define GATE_MAX_IGNORES 16384  /* ignore marks: each pins an inode */

struct tt_execgate {
	int fan;        /* the fanotify group */
	int stop_fd;    /* eventfd: tells the thread to leave */
	pthread_t thread;
	int started;
	tt_execgate_fn fn;
	void *arg;
	int verbose;

	pthread_mutex_t lock; /* fs[] and stats */
	dev_t fs[GATE_MAX_FS];
	size_t nfs;
	tt_execgate_stats st;
};

static void allow(tt_execgate *g, int fd)
{
	struct fanotify_response r = { .fd = fd, .response = FAN_ALLOW };

	/* a failed answer is an exec left waiting: say so, it must not be */
	if (write(g->fan, &r, sizeof(r)) != (ssize_t)sizeof(r))
		fprintf(stderr, "tokentap-probe: answering an exec hold: %s\n",
			strerror(errno));
}

/* One held exec: look at the file, attach, let it go, ignore it next time. */
static void on_exec(tt_execgate *g, const struct fanotify_event_metadata *m)
{
	char path[64], label[4096];
	uint64_t t0 = (uint64_t)tt_mono_us(), waited;
	ssize_t n;
	int ignore = 0;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", m->fd);
	n = readlink(path, label, sizeof(label) - 1);
	label[n > 0 ? n : 0] = '\0';
	g->fn(path, n > 0 ? label : path, g->arg);
	allow(g, m->fd);
	waited = (uint64_t)tt_mono_us() - t0;

	pthread_mutex_lock(&g->lock);
	g->st.held++;
	g->st.hold_us += waited;
	if (waited > g->st.hold_max_us)
		g->st.hold_max_us = waited;
	if (g->st.ignored < GATE_MAX_IGNORES) {
		g->st.ignored++;
		ignore = 1;
	}
	pthread_mutex_unlock(&g->lock);
	/*
	 * Looked at: its next exec is not held.  Without
	 * FAN_MARK_IGNORED_SURV_MODIFY the kernel clears this mark when the
	 * file is written, so a changed program is looked at again.
	 */
	if (ignore && fanotify_mark(g->fan, FAN_MARK_ADD | FAN_MARK_IGNORED_MASK,
				    FAN_OPEN_EXEC_PERM, m->fd, NULL) < 0) {
		pthread_mutex_lock(&g->lock);
		g->st.ignored--;
		pthread_mutex_unlock(&g->lock);
	}
	if (g->verbose && waited > 100000)
		fprintf(stderr, "tokentap-probe: exec of %s held %llu ms\n",
			label, (unsigned long long)(waited / 1000));
}

static void handle(tt_execgate *g, const char *buf, ssize_t len)
{
	const struct fanotify_event_metadata *m = (const void *)buf;

	for (; FAN_EVENT_OK(m, len); m = FAN_EVENT_NEXT(m, len)) {
		if (m->vers != FANOTIFY_METADATA_VERSION || m->fd < 0) {
			/* no file to answer for (a queue overflow) */
			pthread_mutex_lock(&g->lock);
			g->st.errors++;
			pthread_mutex_unlock(&g->lock);
			continue;
		}
		if (m->mask & FAN_OPEN_EXEC_PERM)
			on_exec(g, m);
		close(m->fd);
	}
}

static void *gate_thread(void *arg)
{
	tt_execgate *g = arg;
	/* aligned for the event structs read into it */
	static __thread char buf[64 * 1024]
		__attribute__((aligned(__alignof__(struct fanotify_event_metadata))));
	struct pollfd pf[2] = {
		{ .fd = g->fan, .events = POLLIN },
		{ .fd = g->stop_fd, .events = POLLIN },
	};

	for (;;) {
		ssize_t n;

		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pf[1].revents)
			break;
		n = read(g->fan, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			break;
		}
		handle(g, buf, n);
	}
	return NULL;
}

tt_execgate *tt_execgate_start(tt_execgate_fn fn, void *arg, int verbose)
{
	tt_execgate *g = calloc(1, sizeof(*g));
	int err;

	if (!g)
		return NULL;
	g->fn = fn;
	g->arg = arg;
	g->verbose = verbose;
	g->stop_fd = -1;
	pthread_mutex_init(&g->lock, NULL);
	/*
	 * FAN_CLASS_CONTENT: permission events.  Unlimited queue and marks
	 * (root): a full queue would drop events, and our own cap bounds the
	 * marks.  Non-blocking: the thread polls, and a read never sticks.
	 */
	g->fan = fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK |
			       FAN_UNLIMITED_QUEUE | FAN_UNLIMITED_MARKS,
			       O_RDONLY | O_LARGEFILE | O_CLOEXEC);
	if (g->fan < 0)
		goto fail;
	g->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (g->stop_fd < 0)
		goto fail;
	err = pthread_create(&g->thread, NULL, gate_thread, g);
	if (err) {
		errno = err;
		goto fail;
	}
	g->started = 1;
	return g;
fail:
	err = errno;
	tt_execgate_stop(g);
	errno = err;
	return NULL;
}

void tt_execgate_stop(tt_execgate *g)
{
	uint64_t one = 1;

	if (!g)
		return;
	if (g->started) {
		if (write(g->stop_fd, &one, sizeof(one)) < 0)
			pthread_cancel(g->thread);
		pthread_join(g->thread, NULL);
	}
	/* closing the group allows whatever still waits */
	if (g->fan >= 0)
		close(g->fan);
	if (g->stop_fd >= 0)
		close(g->stop_fd);
	pthread_mutex_destroy(&g->lock);
	free(g);
}

static int watched(tt_execgate *g, dev_t dev)
{
	for (size_t i = 0; i < g->nfs; i++)
		if (g->fs[i] == dev)
			return 1;
	return 0;
}

int tt_execgate_watch(tt_execgate *g, const char *path)
{
	struct stat st;
	int r;

	if (stat(path, &st) < 0)
		return TT_EIO;
	pthread_mutex_lock(&g->lock);
	if (watched(g, st.st_dev)) {
		pthread_mutex_unlock(&g->lock);
		return 0;
	}
	if (g->nfs == GATE_MAX_FS) {
		pthread_mutex_unlock(&g->lock);
		return TT_ETRUNCATED;
	}
	/* tried once per filesystem, whatever the outcome */
	g->fs[g->nfs++] = st.st_dev;
	pthread_mutex_unlock(&g->lock);

	r = fanotify_mark(g->fan, FAN_MARK_ADD | FAN_MARK_FILESYSTEM,
			  FAN_OPEN_EXEC_PERM, AT_FDCWD, path);
	if (r < 0) /* some filesystems take only a mount mark */
		r = fanotify_mark(g->fan, FAN_MARK_ADD | FAN_MARK_MOUNT,
				  FAN_OPEN_EXEC_PERM, AT_FDCWD, path);
	if (r < 0) {
		if (g->verbose)
			fprintf(stderr, "tokentap-probe: cannot hold execs on "
				"%s: %s\n", path, strerror(errno));
		return TT_EIO;
	}
	pthread_mutex_lock(&g->lock);
	g->st.filesystems++;
	pthread_mutex_unlock(&g->lock);
	return 1;
}

/* Filesystems that hold no programs: kernel views and the like. */
static int holds_programs(const char *fstype)
{
	static const char *const pseudo[] = {
		"proc", "sysfs", "cgroup", "cgroup2", "devpts", "debugfs",
		"tracefs", "securityfs", "bpf", "mqueue", "pstore", "configfs",
		"fusectl", "hugetlbfs", "autofs", "binfmt_misc", "efivarfs",
		"rpc_pipefs", "nsfs", "selinuxfs", "devtmpfs",
	};

	for (size_t i = 0; i < sizeof(pseudo) / sizeof(pseudo[0]); i++)
		if (strcmp(fstype, pseudo[i]) == 0)
			return 0;
	return 1;
}

/* mountinfo writes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
		    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 +
				      (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

int tt_execgate_watch_mounts(tt_execgate *g)
{
	char line[4096];
	FILE *f = fopen("/proc/self/mountinfo", "re");
	int n = 0;

	if (!f)
		return 0;
	/* "36 35 98:0 /root /mnt rw,noatime master:1 - ext3 /dev/root rw" */
	while (fgets(line, sizeof(line), f)) {
		char mnt[4096], fstype[64];
		char *sep = strstr(line, " - ");

		if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1 ||
		    sscanf(sep + 3, "%63s", fstype) != 1)
			continue;
		if (!holds_programs(fstype))
			continue;
		unescape(mnt);
		if (tt_execgate_watch(g, mnt) == 1)
			n++;
	}
	fclose(f);
	return n;
}

void tt_execgate_get_stats(tt_execgate *g, tt_execgate_stats *st)
{
	if (!g) {
		memset(st, 0, sizeof(*st));
		return;
	}
	pthread_mutex_lock(&g->lock);
	*st = g->st;
	pthread_mutex_unlock(&g->lock);
}
