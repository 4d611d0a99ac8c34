/*
 * cgroup.c - container id and pod uid from a cgroup path.
 *
 * The kubelet names a pod's cgroup "pod<uid>" (cgroupfs driver) or
 * "kubepods-<qos>-pod<uid>.slice" with the uid's dashes turned into
 * underscores (systemd driver, which reserves '-' as its hierarchy
 * separator).  Runtimes name the container's cgroup by its 64-hex id, bare
 * (cgroupfs) or as "<runtime>-<id>.scope" (systemd).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "tokentap/error.h"
#include "cgroup.h"
#include "procfs.h"

static int is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static void copy_out(char *dst, size_t cap, const char *src, size_t len)
{
	if (!dst || cap == 0)
		return;
	if (len >= cap)
		len = cap - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

static int ends_with(const char *s, size_t len, const char *suffix)
{
	size_t n = strlen(suffix);
	return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

static int contains(const char *s, size_t len, const char *needle)
{
	size_t n = strlen(needle);
	for (size_t i = 0; i + n <= len; i++)
		if (memcmp(s + i, needle, n) == 0)
			return 1;
	return 0;
}

/* A component names a container when, without ".scope" and up to its last
 * '-', it is 64 hex characters.  CRI-O's "crio-conmon-<id>" is the monitor
 * process next to the container, not the container. */
static int component_container(const char *c, size_t len, const char **id)
{
	if (ends_with(c, len, ".scope"))
		len -= 6;
	if (contains(c, len, "conmon"))
		return 0;
	size_t start = 0;
	for (size_t i = 0; i < len; i++)
		if (c[i] == '-')
			start = i + 1;
	if (len - start != 64)
		return 0;
	for (size_t i = start; i < len; i++)
		if (!is_hex(c[i]))
			return 0;
	*id = c + start;
	return 1;
}

/* "pod<uid>" or "kubepods-<qos>-pod<uid>.slice"; writes the uid with
 * dashes.  A uid is a UUID (36) or, for static pods, a 32-hex hash. */
static int component_pod(const char *c, size_t len, char *uid, size_t cap)
{
	if (ends_with(c, len, ".slice"))
		len -= 6;
	size_t start = 0;
	/* cgroupfs: "pod" + the uid with its dashes; systemd: the last
	 * '-'-separated part, whose uid has underscores for dashes. */
	if (!(len > 3 && memcmp(c, "pod", 3) == 0)) {
		for (size_t i = 0; i < len; i++)
			if (c[i] == '-')
				start = i + 1;
		if (len - start < 3 || memcmp(c + start, "pod", 3) != 0)
			return 0;
	}
	start += 3;
	size_t n = len - start;
	if (n != 32 && n != 36)
		return 0;
	char tmp[40];
	for (size_t i = 0; i < n; i++) {
		char ch = c[start + i];
		if (ch == '_')
			ch = '-';
		if (ch != '-' && !is_hex(ch))
			return 0;
		tmp[i] = ch;
	}
	if (n == 36 && (tmp[8] != '-' || tmp[13] != '-' || tmp[18] != '-' ||
			tmp[23] != '-'))
		return 0;
	copy_out(uid, cap, tmp, n);
	return 1;
}

void tt_cgroup_path_ids(const char *path, size_t len, char *container_id,
			size_t cid_cap, char *pod_uid, size_t pod_cap)
{
	if (container_id && cid_cap)
		container_id[0] = '\0';
	if (pod_uid && pod_cap)
		pod_uid[0] = '\0';

	/* Walk components from the last: the innermost container wins. */
	size_t end = len;
	int have_cid = 0, have_pod = 0;
	while (end > 0) {
		size_t start = end;
		while (start > 0 && path[start - 1] != '/')
			start--;
		const char *c = path + start;
		size_t clen = end - start;
		const char *id;

		if (clen > 0) {
			if (!have_cid && component_container(c, clen, &id)) {
				copy_out(container_id, cid_cap, id, 64);
				have_cid = 1;
			} else if (!have_pod &&
				   component_pod(c, clen, pod_uid, pod_cap)) {
				have_pod = 1;
			}
		}
		if (start == 0)
			break;
		end = start - 1;
	}
}

int tt_cgroup_parse(const char *text, size_t len, tt_cgroup_info *out)
{
	/* Best line so far: its rank (higher wins) and where its path is. */
	int best_rank = -1;
	const char *best = NULL;
	size_t best_len = 0;
	size_t pos = 0;

	memset(out, 0, sizeof(*out));
	while (pos < len) {
		size_t eol = pos;
		while (eol < len && text[eol] != '\n')
			eol++;
		const char *line = text + pos;
		size_t llen = eol - pos;
		pos = eol + 1;

		/* hierarchy-ID:controller-list:cgroup-path (cgroups(7)) */
		const char *c1 = memchr(line, ':', llen);
		if (!c1)
			continue;
		const char *c2 = memchr(c1 + 1, ':', llen - (size_t)(c1 + 1 - line));
		if (!c2)
			continue;
		const char *p = c2 + 1;
		size_t plen = llen - (size_t)(p - line);
		if (plen == 0 || p[0] != '/')
			continue;
		int unified = (c1 - line == 1 && line[0] == '0' && c2 == c1 + 1);
		int systemd = (size_t)(c2 - c1 - 1) == strlen("name=systemd") &&
			      memcmp(c1 + 1, "name=systemd", 12) == 0;

		char cid[72], pod[40];
		tt_cgroup_path_ids(p, plen, cid, sizeof(cid), pod, sizeof(pod));
		int rank;
		if (cid[0] || pod[0])
			rank = unified ? 5 : 4;
		else if (unified && !(plen == 1))
			rank = 3;
		else if (unified)
			rank = 2;
		else if (systemd)
			rank = 1;
		else
			rank = 0;
		if (rank > best_rank) {
			best_rank = rank;
			best = p;
			best_len = plen;
		}
	}
	if (!best)
		return TT_EINVAL;
	copy_out(out->path, sizeof(out->path), best, best_len);
	tt_cgroup_path_ids(best, best_len, out->container_id,
			   sizeof(out->container_id), out->pod_uid,
			   sizeof(out->pod_uid));
	return 0;
}

int tt_cgroup_read_self(tt_cgroup_info *out)
{
	char buf[4096];
	ssize_t got = tt_procfs_read("/proc/self/cgroup", buf, sizeof(buf));

	memset(out, 0, sizeof(*out));
	if (got < 0)
		return TT_EIO;
	return tt_cgroup_parse(buf, (size_t)got, out);
}
