/* sse.c - WHATWG server-sent events parsing; see sse.h. */
#include <string.h>

#include "sse.h"

static void dispatch(tt_sse *s)
{
	if (s->data.len || s->data.truncated) {
		size_t len = s->data.len;
		/* The algorithm strips the one LF that follows the last line. */
		if (len && s->data.data[len - 1] == '\n')
			len--;
		/* Only a cap makes an event truncated; one cut by the end
		 * of input is whole JSON or not, as the parser will tell. */
		s->fn(s->user, s->event, s->data.data ? s->data.data : "", len,
		      s->truncated || s->data.truncated || s->data.oom);
	}
	tt_buf_reset(&s->data);
	s->event[0] = '\0';
	s->truncated = 0;
}

static void on_line(void *user, const char *line, size_t len, int truncated)
{
	tt_sse *s = user;
	const char *value;
	size_t name_len, value_len;

	if (len == 0 && !truncated) {
		dispatch(s);
		return;
	}
	if (truncated)
		s->truncated = 1;
	if (line[0] == ':')
		return;

	const char *colon = memchr(line, ':', len);
	if (colon) {
		name_len = (size_t)(colon - line);
		value = colon + 1;
		value_len = len - name_len - 1;
		if (value_len && value[0] == ' ') {
			value++;
			value_len--;
		}
	} else {
		name_len = len;
		value = "";
		value_len = 0;
	}

	if (name_len == 4 && memcmp(line, "data", 4) == 0) {
		tt_buf_add_trunc(&s->data, value, value_len);
		tt_buf_add_trunc(&s->data, "\n", 1);
	} else if (name_len == 5 && memcmp(line, "event", 5) == 0) {
		size_t n = value_len < sizeof(s->event) - 1 ? value_len
							     : sizeof(s->event) - 1;
		memcpy(s->event, value, n);
		s->event[n] = '\0';
	}
}

void tt_sse_init(tt_sse *s, size_t max_event, tt_sse_event_fn fn, void *user)
{
	memset(s, 0, sizeof(*s));
	tt_lines_init(&s->lines, max_event, on_line, s);
	tt_buf_init(&s->data, max_event);
	s->fn = fn;
	s->user = user;
}

void tt_sse_feed(tt_sse *s, const char *p, size_t n)
{
	tt_lines_feed(&s->lines, p, n);
}

void tt_sse_end(tt_sse *s)
{
	tt_lines_end(&s->lines);
	dispatch(s);
}

void tt_sse_free(tt_sse *s)
{
	tt_lines_free(&s->lines);
	tt_buf_free(&s->data);
}
