/*
 * cgroup.h - where a process runs, from the text of /proc/PID/cgroup.
 *
 * Understands cgroup v2 ("0::/path") and v1 ("N:controllers:/path"), the
 * systemd and cgroupfs drivers, and the scopes Docker, containerd, CRI-O and
 * podman create, for example:
 *
 *   /kubepods.slice/kubepods-burstable.slice/
 *       kubepods-burstable-pod<uid_with_underscores>.slice/
 *       cri-containerd-<64hex>.scope
 *   /kubepods/besteffort/pod<uid>/<64hex>
 *   /docker/<64hex>
 *   /system.slice/docker-<64hex>.scope, crio-<64hex>.scope
 *
 * No allocation, no I/O apart from tt_cgroup_read_self().
 */
#ifndef TT_COMMON_CGROUP_H
#define TT_COMMON_CGROUP_H

#include <stddef.h>

typedef struct tt_cgroup_info {
	char path[256];         /* the cgroup path chosen, "" if none */
	char container_id[72];  /* 64 hex characters, "" if none */
	char pod_uid[40];       /* with dashes, "" if none */
} tt_cgroup_info;

/*
 * Parse the whole text of a /proc/PID/cgroup file (len bytes, need not be
 * NUL-terminated) into *out, which is always fully written.  Returns 0, or
 * TT_EINVAL when no line could be parsed (out is then all empty).
 *
 * Which line: the first whose path names a container or a pod, the unified
 * (v2) line winning over v1 lines; else the unified line; else v1's
 * name=systemd line; else the first line.
 */
int tt_cgroup_parse(const char *text, size_t len, tt_cgroup_info *out);

/* Extract from one cgroup path; the outputs may be NULL. Internal, tested. */
void tt_cgroup_path_ids(const char *path, size_t len, char *container_id,
			size_t cid_cap, char *pod_uid, size_t pod_cap);

/* Read and parse /proc/self/cgroup. Returns 0 or a negative tt_error. */
int tt_cgroup_read_self(tt_cgroup_info *out);

#endif
