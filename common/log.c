/* log.c - one write(2) per line to stderr, behind TOKENTAP_LOG. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"

static int log_level = TT_LOG_WARN;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

int tt_log_parse_level(const char *name)
{
	if (!name)
		return TT_LOG_WARN;
	for (int i = 0; i < 4; i++)
		if (strcasecmp(name, level_names[i]) == 0)
			return i;
	if (strcasecmp(name, "warning") == 0)
		return TT_LOG_WARN;
	return TT_LOG_WARN;
}

void tt_log_set_level(int level)
{
	if (level < TT_LOG_ERROR)
		level = TT_LOG_ERROR;
	if (level > TT_LOG_DEBUG)
		level = TT_LOG_DEBUG;
	__atomic_store_n(&log_level, level, __ATOMIC_RELAXED);
}

int tt_log_get_level(void)
{
	return __atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

static void vlog(int level, const char *fmt, va_list ap)
{
	char line[512];
	int saved = errno; /* the host may be looking at errno after our hook */
	int n = snprintf(line, sizeof(line), "tokentap: %s: ", level_names[level]);
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);

	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	/* One write: lines from several threads do not interleave. */
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
	errno = saved;
}

void tt_log(int level, const char *fmt, ...)
{
	va_list ap;

	if (level > tt_log_get_level())
		return;
	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}

void tt_log_once(int *once, int level, const char *fmt, ...)
{
	va_list ap;

	if (__atomic_exchange_n(once, 1, __ATOMIC_RELAXED))
		return;
	if (level > tt_log_get_level())
		return;
	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}
