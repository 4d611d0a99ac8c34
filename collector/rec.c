/* rec.c - record validation against DESIGN.md's record table, see rec.h. */
#include "rec.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tokentap/error.h"

/* A record's null and seen sets are 64-bit masks. */
_Static_assert(TT_REC_NFIELDS <= 64, "more record fields than tt_rec.null has bits");

#define STRING(s) STRING_(s)
#define STRING_(s) #s

const struct tt_rec_field tt_rec_fields[TT_REC_NFIELDS] = {
#define TT_REC_ROW(e, nm, kind, bound, flags, allowed)                           \
	[TT_F_##e] = {#nm, STRING(TT_RECORD_NAME_##kind(nm)), TT_REC_TYPE_##kind, \
		      TT_REC_MAX_##kind(bound), flags, allowed},
	TT_RECORD_FIELDS(TT_REC_ROW)
#undef TT_REC_ROW
};

const char *tt_rec_str(const tt_rec *r, int f, const tt_buf *arena, size_t *len)
{
	if (tt_rec_is_null(r, f)) {
		if (len)
			*len = 0;
		return NULL;
	}
	if (len)
		*len = r->v[f].s.len;
	return arena->data ? arena->data + r->v[f].s.off : "";
}

/* RFC 3629: reject overlongs, surrogates and code points above U+10FFFF. */
static int utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		uint32_t cp;

		if (c < 0x80) {
			/* ASCII runs, eight bytes at a time. */
			while (i + 8 <= len) {
				uint64_t w;

				memcpy(&w, s + i, 8);
				if (w & UINT64_C(0x8080808080808080))
					break;
				i += 8;
			}
			while (i < len && s[i] < 0x80)
				i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return 0;
		}
		if (len - i <= n)
			return 0;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += n + 1;
	}
	return 1;
}

static int fail(char *err, size_t errlen, const char *field, const char *why)
{
	if (err && errlen)
		snprintf(err, errlen, "%s: %s", field, why);
	return TT_EINVAL;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const char *s, size_t len, size_t at, size_t n, int *out)
{
	int v = 0;

	if (at + n > len)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (s[at + i] < '0' || s[at + i] > '9')
			return 0;
		v = v * 10 + (s[at + i] - '0');
	}
	*out = v;
	return 1;
}

int tt_rec_parse_ts(const char *s, size_t len, int64_t *us)
{
	static const unsigned char mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int y, mo, d, h, mi, sec, oh = 0, om = 0;
	int64_t frac = 0, t;
	size_t i = 19;

	/* RFC 3339 §5.6: full-date "T" full-time; we also accept ' ' and 't'. */
	if (!digits(s, len, 0, 4, &y) || len < 19 || s[4] != '-' ||
	    !digits(s, len, 5, 2, &mo) || s[7] != '-' || !digits(s, len, 8, 2, &d) ||
	    (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
	    !digits(s, len, 11, 2, &h) || s[13] != ':' || !digits(s, len, 14, 2, &mi) ||
	    s[16] != ':' || !digits(s, len, 17, 2, &sec))
		return TT_EINVAL;
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 60)
		return TT_EINVAL;
	if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return TT_EINVAL;
	if (i < len && s[i] == '.') {
		int n = 0;

		i++;
		while (i < len && s[i] >= '0' && s[i] <= '9') {
			if (n < 6)
				frac = frac * 10 + (s[i] - '0');
			n++;
			i++;
		}
		if (n == 0 || n > 9)
			return TT_EINVAL;
		for (; n < 6; n++)
			frac *= 10;
	}
	if (i >= len)
		return TT_EINVAL;
	if (s[i] == 'Z' || s[i] == 'z') {
		i++;
	} else if (s[i] == '+' || s[i] == '-') {
		if (!digits(s, len, i + 1, 2, &oh) || i + 3 >= len || s[i + 3] != ':' ||
		    !digits(s, len, i + 4, 2, &om) || oh > 23 || om > 59)
			return TT_EINVAL;
		if (s[i] == '-') {
			oh = -oh;
			om = -om;
		}
		i += 6;
	} else {
		return TT_EINVAL;
	}
	if (i != len)
		return TT_EINVAL;
	if (sec == 60)  /* a leap second counts as the next one's start */
		sec = 59;
	t = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec;
	t -= (int64_t)oh * 3600 + (int64_t)om * 60;
	*us = t * 1000000 + frac;
	return 0;
}

void tt_rec_format_ts(int64_t us, char *buf, size_t cap)
{
	time_t secs = (time_t)(us >= 0 ? us / 1000000 : (us - 999999) / 1000000);
	long frac = (long)(us - (int64_t)secs * 1000000);
	struct tm tm;

	gmtime_r(&secs, &tm);
	snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

/* "unknown value (expected a, b, c)": every allowed value, cut to cap. */
static void unknown_value(const char *const *allowed, char *why, size_t cap)
{
	size_t n = (size_t)snprintf(why, cap, "unknown value (expected");

	for (const char *const *a = allowed; *a && n < cap; a++)
		n += (size_t)snprintf(why + n, cap - n, "%s %s", a == allowed ? "" : ",", *a);
	if (n < cap)
		snprintf(why + n, cap - n, ")");
}

static int check_str(const struct tt_rec_field *f, const char *s, size_t len,
		     char *err, size_t errlen)
{
	char why[128];

	if ((int64_t)len > f->max) {
		snprintf(why, sizeof(why), "longer than %lld bytes", (long long)f->max);
		return fail(err, errlen, f->name, why);
	}
	if (!utf8_valid((const unsigned char *)s, len))
		return fail(err, errlen, f->name, "not valid UTF-8");
	/* JSON may carry U+0000, but every C reader downstream (the price
	 * lookup, SQLite's text, the /metrics labels) would end the string
	 * there; no honest writer sends it, as the agent's fields are C strings. */
	if (memchr(s, '\0', len))
		return fail(err, errlen, f->name, "contains a NUL character (\\u0000)");
	if (f->flags & TT_RF_HEX) {
		if ((int64_t)len != f->max)
			goto bad_hex;
		for (size_t i = 0; i < len; i++)
			if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
			      (s[i] >= 'A' && s[i] <= 'F')))
				goto bad_hex;
	}
	if (f->allowed) {
		for (const char *const *a = f->allowed; *a; a++)
			if (strlen(*a) == len && memcmp(*a, s, len) == 0)
				return 0;
		unknown_value(f->allowed, why, sizeof(why));
		return fail(err, errlen, f->name, why);
	}
	return 0;
bad_hex:
	snprintf(why, sizeof(why), "expected %lld hexadecimal characters", (long long)f->max);
	return fail(err, errlen, f->name, why);
}

/* Field names in a small open-addressing hash, built once. */
#define FIELD_SLOTS 128
static signed char field_slot[FIELD_SLOTS];
static size_t field_len[TT_REC_NFIELDS];
static pthread_once_t field_once = PTHREAD_ONCE_INIT;

/* Length and three bytes tell the record's keys apart well enough; a clash
 * only costs a probe, as every slot is compared in full. */
static unsigned key_hash(const char *s, size_t len)
{
	if (len == 0)
		return 0;
	return (unsigned)len * 131u + (unsigned char)s[0] * 31u +
	       (unsigned char)s[len / 2] * 7u + (unsigned char)s[len - 1];
}

static void build_field_slots(void)
{
	memset(field_slot, -1, sizeof(field_slot));
	for (int i = 0; i < TT_REC_NFIELDS; i++) {
		const char *n = tt_rec_fields[i].name;
		unsigned h = key_hash(n, strlen(n)) % FIELD_SLOTS;

		field_len[i] = strlen(n);
		while (field_slot[h] >= 0)
			h = (h + 1) % FIELD_SLOTS;
		field_slot[h] = (signed char)i;
	}
}

static int field_index(const char *name, size_t len)
{
	unsigned h;

	pthread_once(&field_once, build_field_slots);
	for (h = key_hash(name, len) % FIELD_SLOTS; field_slot[h] >= 0; h = (h + 1) % FIELD_SLOTS) {
		int f = field_slot[h];

		if (field_len[f] == len && memcmp(tt_rec_fields[f].name, name, len) == 0)
			return f;
	}
	return -1;
}

/*
 * A JSON reader for one flat record object (RFC 8259), allocation-free:
 * decoded strings go straight into the arena.  A record is one object of
 * scalars; members with unknown keys may hold anything, which is checked
 * for well-formedness and skipped (nesting capped at MAX_DEPTH).
 */
#define MAX_DEPTH 64
#define E_SYNTAX 1    /* malformed JSON */
#define E_FIELD 2     /* well-formed, but a field is wrong: err says which */
#define E_ARENA 3     /* the arena is full */

struct jr {
	const char *p, *end, *start;
};

static void ws(struct jr *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static int hex4(const char *p, uint32_t *out)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++) {
		int c = p[i], d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return 0;
		v = v << 4 | (uint32_t)d;
	}
	*out = v;
	return 1;
}

/* Where a decoded string goes: an arena, a fixed buffer, or nowhere. */
struct sink {
	tt_buf *buf;
	char *fixed;
	size_t cap, len;
	int full;
};

static void put(struct sink *k, const char *p, size_t n)
{
	if (k->buf) {
		if (!k->full && tt_buf_add(k->buf, p, n))
			k->full = 1;
	} else if (k->fixed) {
		if (k->len + n > k->cap)
			k->full = 1;
		else
			memcpy(k->fixed + k->len, p, n);
	}
	k->len += n;
}

/* At the opening quote; decode into k. Returns 0 or E_SYNTAX. */
static int jstring(struct jr *j, struct sink *k)
{
	j->p++;
	for (;;) {
		const char *run = j->p;
		char u8[4];
		uint32_t cp, lo;
		size_t n;

		while (j->p < j->end && (unsigned char)*j->p >= 0x20 && *j->p != '"' && *j->p != '\\')
			j->p++;
		put(k, run, (size_t)(j->p - run));
		if (j->p >= j->end || (unsigned char)*j->p < 0x20)
			return E_SYNTAX;  /* unterminated, or a raw control character */
		if (*j->p == '"') {
			j->p++;
			return 0;
		}
		if (j->end - j->p < 2)
			return E_SYNTAX;
		switch (j->p[1]) {
		case '"': put(k, "\"", 1); j->p += 2; continue;
		case '\\': put(k, "\\", 1); j->p += 2; continue;
		case '/': put(k, "/", 1); j->p += 2; continue;
		case 'b': put(k, "\b", 1); j->p += 2; continue;
		case 'f': put(k, "\f", 1); j->p += 2; continue;
		case 'n': put(k, "\n", 1); j->p += 2; continue;
		case 'r': put(k, "\r", 1); j->p += 2; continue;
		case 't': put(k, "\t", 1); j->p += 2; continue;
		case 'u': break;
		default: return E_SYNTAX;
		}
		if (j->end - j->p < 6 || !hex4(j->p + 2, &cp))
			return E_SYNTAX;
		if (cp >= 0xdc00 && cp <= 0xdfff)
			return E_SYNTAX;  /* a lone low surrogate */
		if (cp >= 0xd800 && cp <= 0xdbff) {
			if (j->end - j->p < 12 || j->p[6] != '\\' || j->p[7] != 'u' ||
			    !hex4(j->p + 8, &lo) || lo < 0xdc00 || lo > 0xdfff)
				return E_SYNTAX;  /* a high surrogate without its low half */
			j->p += 6;
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
		}
		j->p += 6;
		if (cp < 0x80) {
			u8[0] = (char)cp;
			n = 1;
		} else if (cp < 0x800) {
			u8[0] = (char)(0xc0 | cp >> 6);
			u8[1] = (char)(0x80 | (cp & 0x3f));
			n = 2;
		} else if (cp < 0x10000) {
			u8[0] = (char)(0xe0 | cp >> 12);
			u8[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
			u8[2] = (char)(0x80 | (cp & 0x3f));
			n = 3;
		} else {
			u8[0] = (char)(0xf0 | cp >> 18);
			u8[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
			u8[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
			u8[3] = (char)(0x80 | (cp & 0x3f));
			n = 4;
		}
		put(k, u8, n);
	}
}

/* RFC 8259 number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int jnumber(struct jr *j, const char **start, size_t *len, int *integral)
{
	const char *p = j->p;

	*start = p;
	*integral = 1;
	if (p < j->end && *p == '-')
		p++;
	if (p >= j->end || *p < '0' || *p > '9')
		return E_SYNTAX;
	if (*p == '0')
		p++;
	else
		while (p < j->end && *p >= '0' && *p <= '9')
			p++;
	if (p < j->end && *p == '.') {
		*integral = 0;
		p++;
		if (p >= j->end || *p < '0' || *p > '9')
			return E_SYNTAX;
		while (p < j->end && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < j->end && (*p == 'e' || *p == 'E')) {
		*integral = 0;
		p++;
		if (p < j->end && (*p == '+' || *p == '-'))
			p++;
		if (p >= j->end || *p < '0' || *p > '9')
			return E_SYNTAX;
		while (p < j->end && *p >= '0' && *p <= '9')
			p++;
	}
	*len = (size_t)(p - *start);
	j->p = p;
	return 0;
}

static int jword(struct jr *j, const char *w)
{
	size_t n = strlen(w);

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, w, n) != 0)
		return E_SYNTAX;
	j->p += n;
	return 0;
}

/* Check and skip any value. */
static int jskip(struct jr *j, int depth)
{
	struct sink none = {0};
	const char *s;
	size_t n;
	int integral, rc;

	ws(j);
	if (j->p >= j->end)
		return E_SYNTAX;
	switch (*j->p) {
	case '"':
		return jstring(j, &none);
	case 't':
		return jword(j, "true");
	case 'f':
		return jword(j, "false");
	case 'n':
		return jword(j, "null");
	case '[':
	case '{': {
		char close = *j->p == '[' ? ']' : '}';
		int first = 1;

		if (depth >= MAX_DEPTH)
			return E_SYNTAX;
		j->p++;
		for (;;) {
			ws(j);
			if (j->p < j->end && *j->p == close && first) {
				j->p++;
				return 0;
			}
			if (close == '}') {
				if (j->p >= j->end || *j->p != '"')
					return E_SYNTAX;
				if ((rc = jstring(j, &none)))
					return rc;
				ws(j);
				if (j->p >= j->end || *j->p != ':')
					return E_SYNTAX;
				j->p++;
			}
			if ((rc = jskip(j, depth + 1)))
				return rc;
			ws(j);
			if (j->p >= j->end)
				return E_SYNTAX;
			if (*j->p == close) {
				j->p++;
				return 0;
			}
			if (*j->p != ',')
				return E_SYNTAX;
			j->p++;
			first = 0;
		}
	}
	default:
		return jnumber(j, &s, &n, &integral);
	}
}

/* The value of a known field, at j->p (after white space). */
static int jfield(struct jr *j, int i, tt_buf *arena, tt_rec *out, char *err, size_t errlen)
{
	const struct tt_rec_field *f = &tt_rec_fields[i];
	char c = *j->p, num[512], why[64];
	const char *s;
	size_t n;
	int integral, rc;

	if (c == 'n') {
		if ((rc = jword(j, "null")))
			return rc;
		if (f->flags & TT_RF_REQUIRED)
			return fail(err, errlen, f->name, "required"), E_FIELD;
		out->null |= (uint64_t)1 << i;
		return 0;
	}
	switch (f->type) {
	case TT_FT_STR:
	case TT_FT_TS: {
		struct sink k = {.buf = arena};
		size_t mark = arena->len;

		if (c != '"') {
			if ((rc = jskip(j, 0)))
				return rc;
			return fail(err, errlen, f->name, f->type == TT_FT_TS ? "expected RFC 3339 string"
									      : "expected string"), E_FIELD;
		}
		if ((rc = jstring(j, &k)))
			return rc;
		if (k.full)
			return E_ARENA;
		if (f->type == TT_FT_TS) {
			rc = tt_rec_parse_ts(arena->data + mark, k.len, &out->v[i].i);
			arena->len = mark;  /* the text is not kept */
			if (rc)
				return fail(err, errlen, f->name,
					    "not an RFC 3339 date-time (e.g. 2026-01-02T03:04:05.000000Z)"),
				       E_FIELD;
			return 0;
		}
		if (check_str(f, arena->data + mark, k.len, err, errlen))
			return E_FIELD;
		if (mark > UINT32_MAX - k.len)
			return E_ARENA;
		out->v[i].s.off = (uint32_t)mark;
		out->v[i].s.len = (uint32_t)k.len;
		return 0;
	}
	case TT_FT_BOOL:
		if (c == 't' || c == 'f') {
			if ((rc = jword(j, c == 't' ? "true" : "false")))
				return rc;
			out->v[i].i = c == 't';
			return 0;
		}
		if ((rc = jskip(j, 0)))
			return rc;
		return fail(err, errlen, f->name, "expected true, false or null"), E_FIELD;
	case TT_FT_INT:
	case TT_FT_NUM:
		if (c != '-' && (c < '0' || c > '9')) {
			if ((rc = jskip(j, 0)))
				return rc;
			return fail(err, errlen, f->name, f->type == TT_FT_INT ? "expected integer"
									       : "expected number"), E_FIELD;
		}
		if ((rc = jnumber(j, &s, &n, &integral)))
			return rc;
		if (f->type == TT_FT_INT && integral && n <= 16 && s[0] != '-') {
			int64_t v = 0;  /* fast path: at most 16 digits cannot overflow */

			for (size_t d = 0; d < n; d++)
				v = v * 10 + (s[d] - '0');
			if (v > f->max) {
				snprintf(why, sizeof(why), "larger than %lld", (long long)f->max);
				return fail(err, errlen, f->name, why), E_FIELD;
			}
			out->v[i].i = v;
			return 0;
		}
		if (n >= sizeof(num))
			return fail(err, errlen, f->name, "number too long"), E_FIELD;
		memcpy(num, s, n);
		num[n] = '\0';
		{
			double d = strtod(num, NULL);

			if (!isfinite(d))
				return fail(err, errlen, f->name, f->type == TT_FT_INT
						    ? "expected integer" : "expected number"), E_FIELD;
			if (f->type == TT_FT_NUM) {
				if (d < 0)
					return fail(err, errlen, f->name, "must not be negative"), E_FIELD;
				out->v[i].d = d;
				return 0;
			}
			if (d != floor(d))
				return fail(err, errlen, f->name, "expected integer"), E_FIELD;
			if (d < 0)
				return fail(err, errlen, f->name, "must not be negative"), E_FIELD;
			if (d > (double)f->max) {
				snprintf(why, sizeof(why), "larger than %lld", (long long)f->max);
				return fail(err, errlen, f->name, why), E_FIELD;
			}
			out->v[i].i = (int64_t)d;
			return 0;
		}
	}
	return E_SYNTAX;
}

static int parse_object(struct jr *j, tt_buf *arena, tt_rec *out, char *err, size_t errlen)
{
	uint64_t seen = 0;
	int rc, first = 1;

	ws(j);
	if (j->p >= j->end)
		return E_SYNTAX;
	if (*j->p != '{') {
		if ((rc = jskip(j, 0)))
			return rc;
		ws(j);
		if (j->p != j->end)
			return E_SYNTAX;
		return fail(err, errlen, "record", "expected a JSON object"), E_FIELD;
	}
	j->p++;
	for (;;) {
		char key[40];
		struct sink k = {.fixed = key, .cap = sizeof(key)};
		int f;

		ws(j);
		if (first && j->p < j->end && *j->p == '}') {
			j->p++;
			break;
		}
		if (j->p >= j->end || *j->p != '"')
			return E_SYNTAX;
		if ((rc = jstring(j, &k)))
			return rc;
		ws(j);
		if (j->p >= j->end || *j->p != ':')
			return E_SYNTAX;
		j->p++;
		ws(j);
		if (j->p >= j->end)
			return E_SYNTAX;
		f = k.full ? -1 : field_index(key, k.len);
		/* Unknown keys are skipped (the record may grow); a repeated key's
		 * first value wins. */
		if (f < 0 || (seen >> f & 1))
			rc = jskip(j, 1);
		else {
			seen |= (uint64_t)1 << f;
			rc = jfield(j, f, arena, out, err, errlen);
		}
		if (rc)
			return rc;
		ws(j);
		if (j->p >= j->end)
			return E_SYNTAX;
		if (*j->p == '}') {
			j->p++;
			break;
		}
		if (*j->p != ',')
			return E_SYNTAX;
		j->p++;
		first = 0;
	}
	ws(j);
	if (j->p != j->end)
		return E_SYNTAX;
	/* Missing keys are null. */
	for (int i = 0; i < TT_REC_NFIELDS; i++)
		if (!(seen >> i & 1)) {
			if (tt_rec_fields[i].flags & TT_RF_REQUIRED)
				return fail(err, errlen, tt_rec_fields[i].name, "required"), E_FIELD;
			out->null |= (uint64_t)1 << i;
		}
	return 0;
}

int tt_rec_parse(const char *json, size_t len, tt_buf *arena, tt_rec *out, char *err,
		 size_t errlen)
{
	struct jr j = {.p = json, .end = json + len, .start = json};
	size_t mark = arena->len;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	memset(out, 0, sizeof(*out));
	rc = parse_object(&j, arena, out, err, errlen);
	if (rc) {
		arena->len = mark;  /* forget the strings of a rejected record */
		if (rc == E_SYNTAX)
			snprintf(err, errlen, "malformed JSON at byte %zu of the record",
				 (size_t)(j.p - j.start) + 1);
		return rc == E_ARENA ? TT_ETRUNCATED : TT_EINVAL;
	}

	/* DESIGN.md: input_tokens counts cached and cache-written tokens too,
	 * output_tokens counts reasoning; a record that breaks this would price
	 * a negative number of uncached tokens. */
	if (!tt_rec_is_null(out, TT_F_INPUT_TOKENS) &&
	    tt_rec_int(out, TT_F_CACHE_READ_TOKENS, 0) + tt_rec_int(out, TT_F_CACHE_WRITE_TOKENS, 0) >
		    out->v[TT_F_INPUT_TOKENS].i)
		rc = fail(err, errlen, "cache_read_tokens",
			  "cache_read_tokens + cache_write_tokens exceed input_tokens");
	else if (!tt_rec_is_null(out, TT_F_OUTPUT_TOKENS) &&
		 tt_rec_int(out, TT_F_REASONING_TOKENS, 0) > out->v[TT_F_OUTPUT_TOKENS].i)
		rc = fail(err, errlen, "reasoning_tokens", "exceeds output_tokens");
	if (rc)
		arena->len = mark;
	return rc;
}
