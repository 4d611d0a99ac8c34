/*
 * spool.h - records that wait on disk while the collector is unreachable.
 *
 * A spool is a folder of files "<usec>-<pid>-<seq>.jsonl", each one POST
 * body (JSON Lines) written whole: to a dot-file first, then renamed, so a
 * reader never sees half a file.  Several processes share one spool; a
 * process delivers a file while holding flock(LOCK_EX) on it and removes it
 * only after the collector answered 200, so each record reaches the
 * collector at least once, and the collector's dedup by record id makes
 * that exactly once.
 */
#ifndef TT_SHIP_SPOOL_H
#define TT_SHIP_SPOOL_H

#include <stddef.h>

/* Hard caps: the spool never grows past this, one file is never read
 * beyond this. */
#define TT_SPOOL_MAX_BYTES (256u << 20)
#define TT_SPOOL_MAX_FILE (8u << 20)

/*
 * Choose the spool folder and create it (mode 0700) if needed: explicit
 * when not NULL/empty, else /var/lib/tokentap/spool when that is writable,
 * else $XDG_STATE_HOME/tokentap/spool, else ~/.local/state/tokentap/spool.
 * Writes the path into out (cap bytes).  Returns 0, TT_EIO or TT_ENOSPACE.
 */
int tt_spool_resolve(const char *explicit_dir, char *out, size_t cap);

/* Write one body as a new spool file.  Returns 0, TT_ETRUNCATED when the
 * spool is at its cap, TT_EIO. */
int tt_spool_write(const char *dir, const void *body, size_t len);

/*
 * The send callback of tt_spool_drain: returns 0 when the collector took
 * the body (the file is removed), 1 when it refused it for good (the file
 * is set aside as ".bad-*" and never sent again), < 0 on a transient
 * failure (draining stops, the file stays).
 */
typedef int (*tt_spool_send_fn)(const char *body, size_t len, void *user);

/*
 * Offer up to max_files spool files to send.  Returns the number of files
 * delivered, or a negative tt_error when sending failed (TT_EIO) or the
 * folder cannot be read.  *left (may be NULL) receives 1 when files remain.
 */
int tt_spool_drain(const char *dir, tt_spool_send_fn send, void *user,
		   unsigned max_files, int *left);

/* Bytes held in spool files now. */
size_t tt_spool_bytes(const char *dir);

#endif
