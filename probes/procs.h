/*
 * procs.h - what the loader knows of each process that made TLS calls.
 *
 * Filled from /proc/TGID on first sight, kept until the process is gone
 * (tt_procs_sweep), so a record still gets its process's name when the
 * process exited right after its last call.  Capped; when full, the entry
 * seen the longest ago is reloaded on its next use.
 */
#ifndef TOKENTAP_PROCS_H
#define TOKENTAP_PROCS_H

#include <stddef.h>
#include <stdint.h>

typedef struct tt_proc {
	uint32_t tgid;
	uint32_t ppid;
	uint64_t start;       /* starttime (clock ticks after boot): pid reuse */
	char comm[17];        /* the process's name: the tgid's, not a thread's */
	char exe[256];
	char app[128];        /* the program as a person names it (tt_app_name) */
	int agent;            /* runs the agent: the kernel side leaves it its calls */
	char cgroup[256];     /* from /proc/TGID/cgroup, when the id gives none */
	char container_id[72];
	char pod_uid[40];
} tt_proc;

/* What the kernel side tells of a process at its first call. */
typedef struct tt_proc_desc {
	uint32_t ppid;
	uint64_t start;       /* starttime, in clock ticks after boot */
	const char *comm;     /* NUL-terminated */
	const char *exe;      /* NUL-terminated, may be "" */
	const char *args;     /* NUL-separated, as /proc/PID/cmdline */
	size_t args_len;
	int agent;
} tt_proc_desc;

typedef struct tt_procs tt_procs;

tt_procs *tt_procs_new(size_t max); /* 0: default 8192. NULL on ENOMEM */
void tt_procs_free(tt_procs *p);    /* accepts NULL */

/*
 * The entry for tgid, loaded from /proc on first use.  Borrowed: valid
 * until the next tt_procs_* call.  Never NULL for a live process; for one
 * already gone, an entry with empty strings.
 */
const tt_proc *tt_procs_get(tt_procs *p, uint32_t tgid);

/* The entry for tgid if there is one, without loading it.  Borrowed. */
const tt_proc *tt_procs_peek(tt_procs *p, uint32_t tgid);

/*
 * What the kernel said of tgid at its first call (SSLPROBE_EV_PROC).  The
 * entry is (re)loaded: from /proc while the process is alive and is the
 * one described (same start time), else from d, so a process that exited
 * at once still gets its name, executable and app.  The caller ends what
 * an older process with this tgid left open before calling this.
 */
void tt_procs_describe(tt_procs *p, uint32_t tgid, const tt_proc_desc *d);

/* Drop tgid's entry (its exit was seen).  Accepts an unknown tgid. */
void tt_procs_forget(tt_procs *p, uint32_t tgid);

/*
 * Forget processes that exited without their exit event reaching us (the
 * ring was full): gone at two sweeps in a row, or replaced by another
 * process with the same pid.  gone(tgid, arg) is called for each while its
 * entry is still there (a record it completes still finds its name).
 */
void tt_procs_sweep(tt_procs *p, void (*gone)(uint32_t tgid, void *arg),
		    void *arg);


/* What the loader reads of /proc/PID/stat. */
typedef struct tt_proc_stat {
	uint32_t ppid;       /* field 4 */
	uint64_t starttime;  /* field 22: clock ticks after boot */
} tt_proc_stat;

/*
 * Parse one /proc/PID/stat line of len bytes (not NUL-terminated).
 * Returns 0, or TT_EPROTO when the line is cut or malformed.
 */
int tt_procs_parse_stat(const char *buf, size_t len, tt_proc_stat *out);

/* tt_procs_parse_stat of /proc/PID/stat; TT_EIO when it cannot be read. */
int tt_procs_read_stat(int pid, tt_proc_stat *out);

/* starttime (field 22 of /proc/PID/stat), 0 when unreadable. */
uint64_t tt_procs_starttime(int pid);

#endif
