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

#include "tokentap/error.h"
#include "spool.h"

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

static int use_dir(const char *dir, char *out, size_t cap)
{
	int n;

	if (mkdirs(dir) < 0)
		return TT_EIO;
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

size_t tt_spool_bytes(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t total = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		struct stat st;
		if (!is_spool_name(e->d_name))
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, 0) == 0)
			total += (size_t)st.st_size;
	}
	closedir(d);
	return total;
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

int tt_spool_write(const char *dir, const void *body, size_t len)
{
	static unsigned seq;
	char tmp[4200], final[4200];
	struct timespec ts;
	int fd, rc = TT_EIO;

	if (tt_spool_bytes(dir) + len > TT_SPOOL_MAX_BYTES || len > TT_SPOOL_MAX_FILE)
		return TT_ETRUNCATED;
	clock_gettime(CLOCK_REALTIME, &ts);
	unsigned s = __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED);
	long long us = (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
	snprintf(final, sizeof(final), "%s/%lld-%d-%u.jsonl", dir, us,
		 (int)getpid(), s);
	snprintf(tmp, sizeof(tmp), "%s/.tmp-%lld-%d-%u", dir, us, (int)getpid(), s);

	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return TT_EIO;
	if (write_all(fd, body, len) < 0 || fsync(fd) < 0)
		goto out;
	if (rename(tmp, final) < 0)
		goto out;
	rc = 0;
out:
	close(fd);
	if (rc)
		unlink(tmp);
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

int tt_spool_drain(const char *dir, tt_spool_send_fn send, void *user,
		   unsigned max_files, int *left)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int delivered = 0, rc = 0;

	if (left)
		*left = 0;
	if (!d)
		return errno == ENOENT ? 0 : TT_EIO;
	while ((e = readdir(d))) {
		if (!is_spool_name(e->d_name))
			continue;
		if ((unsigned)delivered >= max_files) {
			if (left)
				*left = 1;
			break;
		}
		int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue; /* another process delivered it */
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
			unlinkat(dirfd(d), e->d_name, 0);
			delivered++;
		} else if (r > 0) {
			char bad[600];
			snprintf(bad, sizeof(bad), ".bad-%s", e->d_name);
			renameat(dirfd(d), e->d_name, dirfd(d), bad);
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
