/*
 * pstats.c - the probe's counters as a log line and as JSON.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/json.h"
#include "pstats.h"

void tt_pstats_add(tt_pstats *s, const char *name, uint64_t value, int gauge)
{
	if (s->n == TT_PSTATS_MAX)
		return;
	s->v[s->n].name = name;
	s->v[s->n].value = value;
	s->v[s->n].gauge = gauge;
	s->n++;
}

/* snprintf that remembers overflow: *o goes past cap and stays there. */
static void put(char *buf, size_t cap, size_t *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*o >= cap)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *o, cap - *o, fmt, ap);
	va_end(ap);
	*o += n < 0 ? cap : (size_t)n;
}

void tt_pstats_line(const tt_pstats *s, char *buf, size_t cap)
{
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < s->n; i++)
		put(buf, cap, &o, "%s%s=%llu", i ? " " : "", s->v[i].name,
		    (unsigned long long)s->v[i].value);
}

static void put_group(const tt_pstats *s, int gauge, char *buf, size_t cap,
		      size_t *o)
{
	int first = 1;

	put(buf, cap, o, "{");
	for (size_t i = 0; i < s->n; i++) {
		if (s->v[i].gauge != gauge)
			continue;
		put(buf, cap, o, "%s\"%s\":%llu", first ? "" : ",", s->v[i].name,
		    (unsigned long long)s->v[i].value);
		first = 0;
	}
	put(buf, cap, o, "}");
}

int tt_pstats_json(const tt_pstats *s, const char *host, char *buf, size_t cap)
{
	size_t o = 0;

	/* host comes from gethostname(): letters, digits, '.', '-' */
	put(buf, cap, &o, "{\"host\":\"");
	for (const char *h = host; *h; h++)
		if ((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') ||
		    (*h >= '0' && *h <= '9') || *h == '.' || *h == '-' || *h == '_')
			put(buf, cap, &o, "%c", *h);
	put(buf, cap, &o, "\",\"counters\":");
	put_group(s, 0, buf, cap, &o);
	put(buf, cap, &o, ",\"gauges\":");
	put_group(s, 1, buf, cap, &o);
	put(buf, cap, &o, ",\"unhooked\":[");
	for (size_t i = 0; i < s->nunhooked; i++) {
		put(buf, cap, &o, "%s\"", i ? "," : "");
		if (o < cap)
			o += tt_json_escape(buf + o, cap - o, s->unhooked[i]);
		put(buf, cap, &o, "\"");
	}
	put(buf, cap, &o, "]}");
	return o < cap ? (int)o : -1;
}
