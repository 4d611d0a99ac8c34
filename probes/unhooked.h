/*
 * unhooked.h - programs that make TLS connections the probe cannot see.
 *
 * The kernel side reports a process whose first TLS ClientHello leaves
 * from a process that maps no file with our uprobes (SSLPROBE_EV_HELLO):
 * a TLS stack no finder knows, or one whose code a new release moved.
 * Each such program is named once in the log, with its path; the count
 * goes to the probe's counters (tokentapd's /metrics, no path label) and
 * the first paths to a short list the collector keeps (GET /v1/probe).
 * Bounded: at most TT_UNHOOKED_MAX programs are remembered, the rest only
 * counted.  Not thread-safe: the ring buffer's reader owns it.
 */
#ifndef TOKENTAP_UNHOOKED_H
#define TOKENTAP_UNHOOKED_H

#include <stddef.h>
#include <stdint.h>

#define TT_UNHOOKED_MAX 1024 /* programs remembered (named once each) */
#define TT_UNHOOKED_LIST 16  /* of those, paths sent to the collector */

typedef struct tt_unhooked tt_unhooked;

tt_unhooked *tt_unhooked_new(void);       /* NULL on ENOMEM */
void tt_unhooked_free(tt_unhooked *u);    /* accepts NULL */

/*
 * Process pid (comm) running exe opened TLS to port with nothing hooked;
 * why, when not NULL or "", is what the finders said of exe.  Logs the
 * program the first time.  Returns 1 when exe was new, else 0.
 */
int tt_unhooked_note(tt_unhooked *u, const char *exe, uint32_t pid,
		     const char *comm, unsigned port, const char *why);

uint64_t tt_unhooked_procs(const tt_unhooked *u); /* processes reported */
size_t tt_unhooked_programs(const tt_unhooked *u); /* distinct programs */

/* The first TT_UNHOOKED_LIST paths, in the order they were seen. */
size_t tt_unhooked_list(const tt_unhooked *u, const char **paths, size_t cap);

#endif
