/*
 * log.h - tokentap's few words on stderr (the agent, the shipper).
 *
 * Lines go out with one write(2) each, prefixed "tokentap: ", never through
 * stdio (the host owns its FILE buffers) and never to stdout.  The level
 * comes from TOKENTAP_LOG: error, warn (default), info, debug.  Nothing
 * logged may carry request or response content, keys or headers.
 */
#ifndef TT_COMMON_LOG_H
#define TT_COMMON_LOG_H

enum tt_log_level {
	TT_LOG_ERROR = 0,
	TT_LOG_WARN = 1,
	TT_LOG_INFO = 2,
	TT_LOG_DEBUG = 3,
};

/* Parse a level name; NULL or an unknown name gives TT_LOG_WARN. */
int tt_log_parse_level(const char *name);

/* Set the process-wide level (default TT_LOG_WARN). */
void tt_log_set_level(int level);
int tt_log_get_level(void);

/* printf-like; at most one line of 512 bytes, cut beyond that. */
void tt_log(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Log at most once per process for each distinct *once flag: the way to
 * say why the shim gave up on something without spamming the host's stderr.
 */
void tt_log_once(int *once, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
