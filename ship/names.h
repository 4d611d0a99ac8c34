/*
 * names.h - the collector's host name, looked up off the caller's path.
 *
 * getaddrinfo() takes as long as the name servers want: seconds, or for
 * ever when one never answers.  A call in enforce mode waits for its
 * budget lease at most its deadline (1 s by default), so the lookup runs on
 * a thread of its own: the first request waits for the first answer at most
 * until its deadline; later requests use the last answer at once, while the
 * thread looks the name up again every TT_NAMES_REFRESH_S seconds (a
 * Service's address can change) and every second while it fails.  An
 * address (127.0.0.1, ::1) is parsed at once, with no thread.
 *
 * Thread-safe.  The thread blocks every signal (it may run inside someone
 * else's program) and needs nothing of the caller: when the object is
 * freed while the thread waits for a name server, the thread is left to
 * finish and frees what it shares on its way out.
 */
#ifndef TT_SHIP_NAMES_H
#define TT_SHIP_NAMES_H

#include <stdint.h>
#include <sys/socket.h>

#define TT_NAMES_REFRESH_S 30
#define TT_NAMES_MAX 4  /* addresses kept for one name */

typedef struct tt_names tt_names;

typedef struct tt_name_addr {
	struct sockaddr_storage sa;
	socklen_t len;
} tt_name_addr;

/* host and port are copied.  NULL when out of memory. */
tt_names *tt_names_new(const char *host, const char *port);

/*
 * Up to TT_NAMES_MAX addresses of the name into out.  Waits for the first
 * answer at most until deadline_us (CLOCK_MONOTONIC, microseconds).
 * Returns how many (>= 1), or TT_EIO when there is none: no answer by the
 * deadline, or the name does not resolve (err, may be NULL, says which).
 */
int tt_names_get(tt_names *n, tt_name_addr out[TT_NAMES_MAX], int64_t deadline_us,
		 char *err, size_t errlen);

/* Accepts NULL.  Never waits for the lookup thread. */
void tt_names_free(tt_names *n);

/*
 * In a fork child: the lookup thread stayed in the parent.  Its locks are
 * made new and the thread is started again when next needed; the last
 * answer is kept.
 */
void tt_names_atfork_child(tt_names *n);

#endif
