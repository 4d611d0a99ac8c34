/*
 * cgroup_names.h - cgroup v2 ids back to cgroup paths.
 *
 * The uprobes report bpf_get_current_cgroup_id(), the inode number of the
 * task's cgroup v2 directory.  tt_cgnames maps it back to the path by
 * walking the cgroup2 mount once and again on a miss (at most once a
 * second).  The container id and pod UID come out of that path through
 * the agent's parser (agent/cgroup.h), so both sources name them alike.
 */
#ifndef TOKENTAP_CGROUP_NAMES_H
#define TOKENTAP_CGROUP_NAMES_H

#include <stddef.h>
#include <stdint.h>

typedef struct tt_cgnames tt_cgnames;

/*
 * root: the cgroup2 mount point, or NULL to find it in
 * /proc/self/mountinfo.  Returns NULL when there is none (cgroup v1 only)
 * or on ENOMEM; lookups then simply find nothing.
 */
tt_cgnames *tt_cgnames_new(const char *root);
void tt_cgnames_free(tt_cgnames *cg); /* accepts NULL */

/*
 * The path of cgroup id relative to the cgroup2 root ("/" for the root),
 * copied into out (cap bytes, NUL-terminated).  Returns 0, or TT_EINVAL
 * when the id is unknown.
 */
int tt_cgnames_lookup(tt_cgnames *cg, uint64_t id, char *out, size_t cap);

#endif
