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
	uint64_t start;       /* starttime from /proc/TGID/stat: pid reuse */
	char comm[17];        /* the process's name: the tgid's, not a thread's */
	char exe[256];
	int agent;            /* maps libtokentap.so: the agent reports it */
	char cgroup[256];     /* from /proc/TGID/cgroup, when the id gives none */
	char container_id[72];
	char pod_uid[40];
} tt_proc;

typedef struct tt_procs tt_procs;

tt_procs *tt_procs_new(size_t max); /* 0: default 8192. NULL on ENOMEM */
void tt_procs_free(tt_procs *p);    /* accepts NULL */

/*
 * The entry for tgid, loaded from /proc on first use.  Borrowed: valid
 * until the next tt_procs_* call.  Never NULL for a live process; for one
 * already gone, an entry with empty strings.
 */
const tt_proc *tt_procs_get(tt_procs *p, uint32_t tgid);

/*
 * What the kernel said of tgid (SSLPROBE_EV_PROC): fills comm and exe
 * when /proc could not (the process already exited).
 */
void tt_procs_hint(tt_procs *p, uint32_t tgid, const char *comm,
		   const char *exe);

/*
 * Forget processes that exited; gone(tgid, arg) is called for each while
 * its entry is still there (a record it completes still finds its name).
 */
void tt_procs_sweep(tt_procs *p, void (*gone)(uint32_t tgid, void *arg),
		    void *arg);

/*
 * Does /proc/PID/maps map a file whose name starts with prefix?  Returns
 * 1, 0, or TT_EIO when the maps cannot be read.
 */
int tt_procs_maps_has(int pid, const char *prefix);

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
