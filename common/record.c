/*
 * record.c - the record's defaults, its id and its JSON form, all three
 * expanded from the field list (include/tokentap/record_fields.h).
 *
 * The JSON writer is hand-rolled on purpose: it runs inside the host
 * program for every LLM call, and a fixed struct with a bounded output
 * needs no allocation, unlike building a cJSON tree first.  Strings are
 * escaped by the tree's one escaper (json.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "json.h"
#include "tokentap/error.h"
#include "tokentap/record.h"

/* What each kind starts as, beyond the zero bytes of memset (record_fields.h). */
#define INIT_STR(m)
#define INIT_TS(m)
#define INIT_MS(m)    (m) = -1;
#define INIT_INT64(m) (m) = TT_NULL;
#define INIT_INT(m)   (m) = TT_NULL;
#define INIT_BOOL(m)  (m) = TT_TRI_NULL;
#define INIT_FLAG(m)

void tt_record_init(tt_record *rec)
{
	memset(rec, 0, sizeof(*rec));
#define INIT(id, name, kind, bound, flags, allowed) INIT_##kind(rec->TT_RECORD_NAME_##kind(name))
	TT_RECORD_FIELDS(INIT)
#undef INIT
}

void tt_record_set(char *dst, size_t cap, const char *src, size_t len)
{
	if (cap == 0)
		return;
	if (!src) {
		dst[0] = '\0';
		return;
	}
	if (len == (size_t)-1)
		len = strlen(src);
	if (len >= cap) {
		len = cap - 1;
		/* Do not leave half a UTF-8 sequence at the end. */
		while (len > 0 && ((unsigned char)src[len] & 0xC0) == 0x80)
			len--;
	}
	memcpy(dst, src, len);
	dst[len] = '\0';
}

void tt_record_new_id(tt_record *rec)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[16];
	size_t got = 0;

	while (got < sizeof(raw)) {
		ssize_t n = getrandom(raw + got, sizeof(raw) - got, GRND_NONBLOCK);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got < sizeof(raw)) {
		/* No entropy yet (early boot): time and address still differ. */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		unsigned long long x = (unsigned long long)ts.tv_nsec ^
				       ((unsigned long long)ts.tv_sec << 20) ^
				       (unsigned long long)(uintptr_t)rec;
		for (size_t i = got; i < sizeof(raw); i++) {
			x = x * 6364136223846793005ULL + 1442695040888963407ULL;
			raw[i] = (unsigned char)(x >> 56);
		}
	}
	for (size_t i = 0; i < sizeof(raw); i++) {
		rec->id[2 * i] = hex[raw[i] >> 4];
		rec->id[2 * i + 1] = hex[raw[i] & 15];
	}
	rec->id[32] = '\0';
}

/* A bounded output cursor: once full, it stays full and says so. */
struct out {
	char *p;
	size_t cap, len;
	int full;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->full || o->len + n >= o->cap) {
		o->full = 1;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

static void puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static void put_key(struct out *o, const char *key)
{
	if (o->len > 1)
		put(o, ",", 1);
	put(o, "\"", 1);
	puts_(o, key);
	put(o, "\":", 2);
}

/* A string, escaped by json.h; the bytes it leaves alone go in runs. */
static void put_str(struct out *o, const char *key, const char *s)
{
	const char *run = s;

	put_key(o, key);
	if (!s[0]) {
		put(o, "null", 4);
		return;
	}
	put(o, "\"", 1);
	for (; *s; s++) {
		char e[TT_JSON_ESC_MAX];
		size_t n = tt_json_escape_byte((unsigned char)*s, e);

		if (n == 1)
			continue;
		put(o, run, (size_t)(s - run));
		put(o, e, n);
		run = s + 1;
	}
	put(o, run, (size_t)(s - run));
	put(o, "\"", 1);
}

static void put_int(struct out *o, const char *key, int64_t v)
{
	char num[24];
	put_key(o, key);
	if (v < 0) {
		put(o, "null", 4);
		return;
	}
	int n = snprintf(num, sizeof(num), "%lld", (long long)v);
	put(o, num, (size_t)n);
}

static void put_ms(struct out *o, const char *key, double v)
{
	char num[32];
	put_key(o, key);
	int n = v < 0 ? 0 : snprintf(num, sizeof(num), "%.3f", v);
	/* Negative is absent; over 31 characters (above 1e27 ms) is no
	 * duration, and snprintf's count would overrun num. */
	if (n <= 0 || (size_t)n >= sizeof(num)) {
		put(o, "null", 4);
		return;
	}
	put(o, num, (size_t)n);
}

static void put_bool(struct out *o, const char *key, int v)
{
	put_key(o, key);
	puts_(o, v < 0 ? "null" : v ? "true" : "false");
}

#define TS_TEXT 40  /* put_ts's buffer: at most 39 characters, none escaped */

static void put_ts(struct out *o, const char *key, int64_t us)
{
	char ts[TS_TEXT];
	struct tm tm;
	time_t sec = (time_t)(us / 1000000);

	if (us <= 0 || !gmtime_r(&sec, &tm)) {
		put_key(o, key);
		put(o, "null", 4);
		return;
	}
	size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + n, sizeof(ts) - n, ".%06lldZ", (long long)(us % 1000000));
	put_str(o, key, ts);
}

/* The writer of each kind. */
#define WRITE_STR   put_str
#define WRITE_TS    put_ts
#define WRITE_MS    put_ms
#define WRITE_INT64 put_int
#define WRITE_INT   put_int
#define WRITE_BOOL  put_bool
#define WRITE_FLAG  put_bool

/*
 * TT_RECORD_JSON_MAX is enough for any record: the braces, the NUL put()
 * keeps room for, and for each field its key (quoted, a colon and a comma)
 * and the longest value of its kind - a string of bound - 1 bytes with
 * every byte escaped as \u00XX, and its quotes; a timestamp; put_ms's 31
 * characters; an int64 ("null" when negative); "false".
 */
#define LONGEST_STR(bound)   (TT_JSON_ESC_MAX * ((bound) - 1) + 2)
#define LONGEST_TS(bound)    (TS_TEXT - 1 + 2)
#define LONGEST_MS(bound)    31
#define LONGEST_INT64(bound) 20
#define LONGEST_INT(bound)   20
#define LONGEST_BOOL(bound)  5
#define LONGEST_FLAG(bound)  5
#define LONGEST(id, name, kind, bound, flags, allowed) \
	+(sizeof(#name) - 1 + 4) + LONGEST_##kind(bound)
_Static_assert(2 + 1 TT_RECORD_FIELDS(LONGEST) <= TT_RECORD_JSON_MAX,
	       "TT_RECORD_JSON_MAX cannot hold the largest record");
#undef LONGEST

int tt_record_to_json(const tt_record *r, char *buf, size_t cap)
{
	struct out o = { .p = buf, .cap = cap };

	put(&o, "{", 1);
#define WRITE(id, name, kind, bound, flags, allowed) \
	WRITE_##kind(&o, #name, r->TT_RECORD_NAME_##kind(name));
	TT_RECORD_FIELDS(WRITE)
#undef WRITE
	put(&o, "}", 1);
	if (o.full)
		return TT_ENOSPACE;
	buf[o.len] = '\0';
	return (int)o.len;
}
