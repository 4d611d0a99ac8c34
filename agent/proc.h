/*
 * proc.h - who this process is, for the record's pid/comm/exe/cgroup.
 *
 * Read once per process (and again in a fork child), never per call.
 */
#ifndef TT_AGENT_PROC_H
#define TT_AGENT_PROC_H

#include <sys/types.h>

#include "tokentap/record.h"
#include "common/cgroup.h"

typedef struct tt_proc_info {
	pid_t pid;
	char comm[17];  /* the process's name: the main thread's, not ours */
	char exe[256];
	char app[128];  /* the program as a person names it (common/app.h) */
	tt_cgroup_info cg;
} tt_proc_info;

/* Fill *info from /proc/self; fields that cannot be read stay empty. */
void tt_proc_load(tt_proc_info *info);

/* Copy the process fields (pid, tid of the caller, comm, exe, app, tls,
 * cgroup, container_id, pod_uid) into rec. */
void tt_proc_fill(const tt_proc_info *info, tt_record *rec);

#endif
