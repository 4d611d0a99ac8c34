/*
 * attach.h - which files get the uprobes, and keeping them attached.
 *
 * Which TLS code a file carries is asked of the finders (tlsfind.h):
 * OpenSSL by symbol, Go's crypto/tls, a BoringSSL without symbols.
 *
 * Uprobes are placed per file (inode), for every process at once, so a
 * process that starts and ends between two scans is still seen once its
 * library or executable was attached.  Safe to call from several threads
 * (the exec gate attaches from its own).  Files come from:
 *   - libssl.so* in the usual library folders, at start;
 *   - every libssl.so* mapped by a running process, through
 *     /proc/PID/root so a container's own copy is found (tt_attach_scan);
 *   - executables that define SSL_write themselves (the official Node.js
 *     binary carries a static OpenSSL), found through /proc/PID/exe;
 *   - the program folders (PATH), at start;
 *   - the file of every exec, before it runs (execgate.h);
 *   - the --exe paths.
 */
#ifndef TOKENTAP_ATTACH_H
#define TOKENTAP_ATTACH_H

#include <stddef.h>
#include <stdint.h>

struct sslprobe_bpf;
typedef struct tt_attach tt_attach;

/* skel is borrowed and must outlive the object.  NULL on ENOMEM. */
tt_attach *tt_attach_new(struct sslprobe_bpf *skel, int verbose);

/* Detaches every uprobe.  Accepts NULL. */
void tt_attach_free(tt_attach *a);

/*
 * Attach to the file at path (label: how to name it in messages).
 * Returns 1 when newly attached, 0 when already attached or when it does
 * not define SSL_write/SSL_read, or a negative tt_error: TT_EIO (cannot
 * read), TT_ENOTSUP (not ELF64), TT_EPROTO (kernel refused the uprobe).
 */
int tt_attach_file(tt_attach *a, const char *path, const char *label);

/* libssl.so* in the standard library folders.  Returns files attached. */
int tt_attach_libdirs(tt_attach *a);

/*
 * Every executable in the usual program folders and in the folders of
 * path_env (a PATH value, may be NULL): programs that carry their own
 * OpenSSL are attached before they ever run.  Returns files attached.
 */
int tt_attach_path_dirs(tt_attach *a, const char *path_env);

/* Called for each process a scan looks at. */
typedef void (*tt_attach_visit_fn)(int pid, void *arg);

/*
 * One pass over /proc: attach what processes map or run; pids: when
 * npids > 0 only those are looked at.  visit (may be NULL) is called for
 * each process first.  Returns files newly attached.
 */
int tt_attach_scan(tt_attach *a, const int *pids, size_t npids,
		   tt_attach_visit_fn visit, void *arg);

/* Files attached now, and uprobe links held. */
size_t tt_attach_files(tt_attach *a);
size_t tt_attach_links(tt_attach *a);

/*
 * Files found to carry a TLS stack whose code the probe could not find
 * (a new release changed it): each is named once in the log.
 */
size_t tt_attach_unhookable(tt_attach *a);

/*
 * What the finders said of the file at path when it carried TLS code
 * they could not hook ("boringssl: SSL_write: ..."): 1 and the text in
 * why, else 0 and "".
 */
int tt_attach_why(tt_attach *a, const char *path, char *why, size_t cap);

/*
 * Does process pid map, executable, a file with our uprobes?  1 yes, 0
 * no, -1 when it is gone (its /proc/PID/maps cannot be read).
 */
int tt_attach_pid_hooked(tt_attach *a, int pid);

#endif
