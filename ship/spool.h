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
 *
 * A spool may be shared by several users (a 1777 folder): then each reads
 * only its own files.  A folder that others may write to must be sticky,
 * or it is not used at all (TT_EINVAL, said once).  A spool entry is read
 * only when it is a regular file owned by this process's effective uid,
 * with one link, writable by nobody else; anything else (another user's
 * forged records, a symlink, a FIFO, a device, a hard link) is left where
 * it is, neither sent nor removed, and said once.  Entries are looked at
 * before they are opened, and opened with O_NOFOLLOW | O_NONBLOCK, then
 * checked again: nothing here follows a link or waits on a FIFO.  Files
 * this module writes are new (O_EXCL, O_NOFOLLOW) and 0600.
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
 * Writes the path into out (cap bytes).  Returns 0, TT_EIO, TT_ENOSPACE,
 * or TT_EINVAL (others may write to it and it is not sticky).
 */
int tt_spool_resolve(const char *explicit_dir, char *out, size_t cap);

/* Write one body as a new spool file.  Returns 0, TT_ETRUNCATED when the
 * spool is at its cap (our own files counted), TT_EIO, TT_EINVAL (an
 * unsafe folder). */
int tt_spool_write(const char *dir, const void *body, size_t len);

/*
 * The send callback of tt_spool_drain: returns 0 when the collector took
 * the body (the file is removed), 1 when it refused it for good (the file
 * is set aside as ".bad-*" and never sent again), < 0 on a transient
 * failure (draining stops, the file stays).
 */
typedef int (*tt_spool_send_fn)(const char *body, size_t len, void *user);

/*
 * Offer up to max_files of our spool files to send.  Returns the number of
 * files delivered (0 when the folder does not exist), or a negative
 * tt_error when sending failed (TT_EIO) or the folder cannot be read or
 * is unsafe (TT_EINVAL).  *left (may be NULL) receives 1 when files of
 * ours remain; files left alone do not count.
 */
int tt_spool_drain(const char *dir, tt_spool_send_fn send, void *user,
		   unsigned max_files, int *left);

/* Bytes held in our own spool files now. */
size_t tt_spool_bytes(const char *dir);

#endif
