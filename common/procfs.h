/*
 * procfs.h - reading a small file of /proc (stat, comm, cgroup, cmdline)
 * whole: open, read until the end or the cap, close.  No stdio (inside
 * someone else's program the FILE buffers are theirs), no allocation.
 */
#ifndef TT_COMMON_PROCFS_H
#define TT_COMMON_PROCFS_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Read at most cap - 1 bytes of path into buf and terminate them with a
 * NUL (a NUL-separated file such as cmdline keeps its own).  Returns the
 * bytes read, or -1 when the file cannot be opened.
 */
ssize_t tt_procfs_read(const char *path, char *buf, size_t cap);

#endif
