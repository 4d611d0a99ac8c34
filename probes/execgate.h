/*
 * execgate.h - attach to a program before its first instruction runs.
 *
 * Uprobes attach to a file, and the loader's rescan of /proc finds a new
 * executable only once a process runs it: too late for a program whose
 * one call is over in milliseconds.  The gate uses fanotify's
 * FAN_OPEN_EXEC_PERM: the kernel holds every execve() of a file on a
 * marked filesystem until the gate answers.  The gate hands the file to
 * its callback (does it carry its own TLS code? attach), and only then
 * lets the exec go on, so the new program's first call already traps.
 *
 * Cost: a file the gate has looked at gets an ignore mark, and its later
 * execs are not held at all; the kernel drops that mark when the file is
 * modified, so a rebuilt binary is looked at again.  Only the first exec
 * of each file waits, for as long as the callback takes.
 *
 * Failure: when the probe exits or dies (even by SIGKILL) the kernel
 * allows every exec still waiting as the fanotify descriptor closes.  The
 * gate can slow an exec; it never refuses one.
 *
 * The callback runs on the gate's own thread.
 */
#ifndef TOKENTAP_EXECGATE_H
#define TOKENTAP_EXECGATE_H

#include <stddef.h>
#include <stdint.h>

typedef struct tt_execgate tt_execgate;

/*
 * Look at the file being executed.  path opens it (a /proc/self/fd link,
 * valid during the call), label is its name for messages.
 */
typedef void (*tt_execgate_fn)(const char *path, const char *label,
			       void *arg);

typedef struct tt_execgate_stats {
	uint64_t held;      /* execs held until the callback had looked */
	uint64_t hold_us;   /* their total wait */
	uint64_t hold_max_us;
	uint64_t ignored;   /* ignore marks placed (files not held again) */
	uint64_t filesystems; /* filesystems watched */
	uint64_t errors;    /* events that could not be handled (allowed) */
} tt_execgate_stats;

/*
 * Start the gate's thread.  NULL with errno set when fanotify permission
 * events are not available (not root, no CAP_SYS_ADMIN, or a kernel
 * without CONFIG_FANOTIFY_ACCESS_PERMISSIONS).  No filesystem is watched
 * until tt_execgate_watch_mounts() or tt_execgate_watch().
 */
tt_execgate *tt_execgate_start(tt_execgate_fn fn, void *arg, int verbose);

/* Stop the thread, allow what waits, close.  Accepts NULL. */
void tt_execgate_stop(tt_execgate *g);

/*
 * Watch every filesystem mounted in this mount namespace that can hold
 * programs (not proc, sysfs, cgroup and the like), once each.  Call again
 * to pick up new mounts.  Returns the filesystems newly watched.
 */
int tt_execgate_watch_mounts(tt_execgate *g);

/*
 * Watch the filesystem that holds path (a container's root seen through
 * /proc/PID/root).  Returns 1 newly watched, 0 already, <0 tt_error.
 */
int tt_execgate_watch(tt_execgate *g, const char *path);

void tt_execgate_get_stats(tt_execgate *g, tt_execgate_stats *st);

#endif
