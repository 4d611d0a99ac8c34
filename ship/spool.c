/* spool.c - a folder of JSON Lines files waiting for the collector. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "spool.h"
#include "tokentap/error.h"

/* mkdir -p, mode 0700 for what it creates. */
static int mkdirs(const char *path)
{
	char tmp[4096];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(tmp))
		return -1;
	memcpy(tmp, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (tmp[i] != '/' && tmp[i] != '\0')
			continue;
		char c = tmp[i];
		tmp[i] = '\0';
		if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
			return -1;
		tmp[i] = c;
	}
	return access(path, W_OK | X_OK);
}

/*
 * Open the spool folder and check who else can put files in it.  One that
 * others may write to (group or world) must be sticky: else anyone could
 * rename or replace the files we wrote.  Returns the folder's descriptor,
 * TT_EINVAL for such a folder (said once), or TT_EIO (*missing set when it
 * does not exist).
 */
static int open_dir(const char *dir, int *missing)
{
	static int warn_shared;
	struct stat st;
	int fd;

	if (missing)
		*missing = 0;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		if (missing)
			*missing = errno == ENOENT;
		return TT_EIO;
	}
	if (fstat(fd, &st) < 0) {
		close(fd);
		return TT_EIO;
	}
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX)) {
		tt_log_once(&warn_shared, TT_LOG_WARN,
			    "spool %s: others may write to it and it is not sticky "
			    "(chmod +t, or a folder of your own): not used", dir);
		close(fd);
		return TT_EINVAL;
	}
	return fd;
}

/*
 * Why a spool entry is not ours to read, or NULL.  Only files this user
 * wrote are read: another user's file, read with our rights and sent with
 * our token, would be a forgery (or a file they could not read
 * themselves, through a link).
 */
static const char *refused(const struct stat *st)
{
	if (!S_ISREG(st->st_mode))
		return "not a regular file";
	if (st->st_uid != geteuid())
		return "owned by another user";
	if (st->st_nlink != 1)
		return "a hard link";
	if (st->st_mode & (S_IWGRP | S_IWOTH))
		return "writable by others";
	return NULL;
}

static int use_dir(const char *dir, char *out, size_t cap)
{
	int n, fd;

	if (mkdirs(dir) < 0)
		return TT_EIO;
	fd = open_dir(dir, NULL);
	if (fd < 0)
		return fd;
	close(fd);
	n = snprintf(out, cap, "%s", dir);
	return (n < 0 || (size_t)n >= cap) ? TT_ENOSPACE : 0;
}

int tt_spool_resolve(const char *explicit_dir, char *out, size_t cap)
{
	char buf[4096];
	const char *env;

	if (explicit_dir && explicit_dir[0])
		return use_dir(explicit_dir, out, cap);
	if (use_dir("/var/lib/tokentap/spool", out, cap) == 0)
		return 0;
	env = getenv("XDG_STATE_HOME");
	if (env && env[0] == '/') {
		snprintf(buf, sizeof(buf), "%s/tokentap/spool", env);
		return use_dir(buf, out, cap);
	}
	env = getenv("HOME");
	if (env && env[0] == '/') {
		snprintf(buf, sizeof(buf), "%s/.local/state/tokentap/spool", env);
		return use_dir(buf, out, cap);
	}
	return TT_EIO;
}

static int is_spool_name(const char *name)
{
	size_t n = strlen(name);
	return name[0] != '.' && n > 6 && strcmp(name + n - 6, ".jsonl") == 0;
}

/* Bytes of our own spool files in the open folder dfd (kept open). */
static size_t dir_bytes(int dfd)
{
	int fd = dup(dfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;
	size_t total = 0;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	rewinddir(d); /* a dup shares its offset */
	while ((e = readdir(d))) {
		struct stat st;
		if (!is_spool_name(e->d_name))
			continue;
		/* Another user's files are not ours to count: planted ones
		 * would fill our cap. */
		if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    !refused(&st))
			total += (size_t)st.st_size;
	}
	closedir(d);
	return total;
}

size_t tt_spool_bytes(const char *dir)
{
	int dfd = open_dir(dir, NULL);
	size_t n;

	if (dfd < 0)
		return 0;
	n = dir_bytes(dfd);
	close(dfd);
	return n;
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Write body as a new file of the open folder dfd: a dot-file first, then
 * renamed, so that a reader never sees half of it. */
static int write_in(int dfd, const void *body, size_t len)
{
	static unsigned seq;
	char tmp[128], final[128];
	struct timespec ts;
	int fd, rc = TT_EIO;

	clock_gettime(CLOCK_REALTIME, &ts);
	unsigned s = __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED);
	long long us = (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
	snprintf(final, sizeof(final), "%lld-%d-%u.jsonl", us, (int)getpid(), s);
	snprintf(tmp, sizeof(tmp), ".tmp-%lld-%d-%u", us, (int)getpid(), s);

	/* A new file of ours only: never one somebody put there (O_EXCL),
	 * never through a link (O_NOFOLLOW); 0600 whatever the umask. */
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return TT_EIO;
	if (fchmod(fd, 0600) < 0 || write_all(fd, body, len) < 0 || fsync(fd) < 0)
		goto out;
	if (renameat(dfd, tmp, dfd, final) < 0)
		goto out;
	rc = 0;
out:
	close(fd);
	if (rc)
		unlinkat(dfd, tmp, 0);
	return rc;
}

int tt_spool_write(const char *dir, const void *body, size_t len)
{
	int dfd = open_dir(dir, NULL), rc;

	if (dfd < 0)
		return dfd;
	if (len > TT_SPOOL_MAX_FILE || dir_bytes(dfd) + len > TT_SPOOL_MAX_BYTES)
		rc = TT_ETRUNCATED;
	else
		rc = write_in(dfd, body, len);
	close(dfd);
	return rc;
}

/* Read a whole spool file (already locked) into a new buffer. */
static char *read_file(int fd, size_t *len)
{
	struct stat st;
	char *buf;
	size_t got = 0;

	if (fstat(fd, &st) < 0 || st.st_nlink == 0 ||
	    (size_t)st.st_size > TT_SPOOL_MAX_FILE)
		return NULL;
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return NULL;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	buf[got] = '\0';
	*len = got;
	return buf;
}

/*
 * Open a spool entry for delivery, without following a link and without
 * waiting (a FIFO opens at once with O_NONBLOCK), and check it is a file
 * of ours.  -1 when it is not to be sent: gone, delivered by another
 * process meanwhile, or not ours (left where it is, said once).
 */
static int open_entry(const char *dir, int dfd, const char *name)
{
	static int warn_refused;
	const char *why;
	struct stat st;
	int fd;

	/* Look before opening: opening a device can have side effects. */
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -1;
	why = refused(&st);
	if (!why) {
		fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
		if (fd < 0)
			return -1; /* another process delivered it */
		/* What was opened, not what the name was a moment ago.  A
		 * file delivered and unlinked meanwhile has no link left. */
		if (fstat(fd, &st) < 0 || st.st_nlink == 0) {
			close(fd);
			return -1;
		}
		why = refused(&st);
		if (!why)
			return fd;
		close(fd);
	}
	tt_log_once(&warn_refused, TT_LOG_WARN,
		    "spool %s: %s left alone (%s): only this user's own spool files "
		    "are read", dir, name, why);
	return -1;
}

int tt_spool_drain(const char *dir, tt_spool_send_fn send, void *user,
		   unsigned max_files, int *left)
{
	int missing, dfd = open_dir(dir, &missing);
	DIR *d;
	struct dirent *e;
	int delivered = 0, rc = 0;

	if (left)
		*left = 0;
	if (dfd < 0)
		return missing ? 0 : dfd;
	d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return TT_EIO;
	}
	while ((e = readdir(d))) {
		if (!is_spool_name(e->d_name))
			continue;
		if ((unsigned)delivered >= max_files) {
			if (left)
				*left = 1;
			break;
		}
		int fd = open_entry(dir, dfd, e->d_name);
		if (fd < 0)
			continue;
		/* Someone else is sending this one: leave it to them. */
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			close(fd);
			if (left)
				*left = 1;
			continue;
		}
		/* Opened just before another process sent it, unlinked it and
		 * let go of the lock: it is delivered, do not send it twice. */
		struct stat st;
		if (fstat(fd, &st) < 0 || st.st_nlink == 0) {
			close(fd);
			continue;
		}
		size_t len = 0;
		char *body = read_file(fd, &len);
		if (!body) {
			close(fd);
			continue;
		}
		int r = send(body, len, user);
		free(body);
		if (r == 0) {
			unlinkat(dfd, e->d_name, 0);
			delivered++;
		} else if (r > 0) {
			char bad[600];
			snprintf(bad, sizeof(bad), ".bad-%s", e->d_name);
			renameat(dfd, e->d_name, dfd, bad);
		}
		close(fd); /* unlocks, after the unlink */
		if (r < 0) {
			if (left)
				*left = 1;
			rc = TT_EIO;
			break;
		}
	}
	closedir(d);
	return rc < 0 ? rc : delivered;
}
