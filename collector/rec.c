/* rec.c - record validation against DESIGN.md's record table, see rec.h. */
#include "rec.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tokentap/error.h"

const char *const tt_rec_enum_source[] = {"preload", "ebpf", NULL};
const char *const tt_rec_enum_usage_source[] = {"provider", "estimated", "none", NULL};
const char *const tt_rec_enum_side[] = {"client", "server", NULL};

const struct tt_rec_field tt_rec_fields[TT_REC_NFIELDS] = {
#define TT_REC_ROW(e, nm, type, mx, flags, allowed) \
	[TT_F_##e] = {#nm, type, (int64_t)(mx), flags, allowed},
	TT_REC_FIELDS(TT_REC_ROW)
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

static int check_str(const struct tt_rec_field *f, const char *s, size_t len,
		     char *err, size_t errlen)
{
	char why[64];

	if ((int64_t)len > f->max) {
		snprintf(why, sizeof(why), "longer than %lld bytes", (long long)f->max);
		return fail(err, errlen, f->name, why);
	}
	if (!utf8_valid((const unsigned char *)s, len))
		return fail(err, errlen, f->name, "not valid UTF-8");
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
		snprintf(why, sizeof(why), "unknown value (expected %s%s%s%s%s)",
			 f->allowed[0], f->allowed[1] ? ", " : "",
			 f->allowed[1] ? f->allowed[1] : "",
			 f->allowed[1] && f->allowed[2] ? ", " : "",
			 f->allowed[1] && f->allowed[2] ? f->allowed[2] : "");
		return fail(err, errlen, f->name, why);
	}
	return 0;
bad_hex:
	snprintf(why, sizeof(why), "expected %lld hexadecimal characters", (long long)f->max);
	return fail(err, errlen, f->name, why);
}

int tt_rec_from_json(const cJSON *obj, tt_buf *arena, tt_rec *out, char *err, size_t errlen)
{
	int rc;

	if (err && errlen)
		err[0] = '\0';
	memset(out, 0, sizeof(*out));
	if (!cJSON_IsObject(obj))
		return fail(err, errlen, "record", "expected a JSON object");
	for (int i = 0; i < TT_REC_NFIELDS; i++) {
		const struct tt_rec_field *f = &tt_rec_fields[i];
		/* Keys are case-sensitive: "ID" is not "id". */
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, f->name);

		if (!v || cJSON_IsNull(v)) {
			if (f->flags & TT_RF_REQUIRED)
				return fail(err, errlen, f->name, "required");
			out->null |= (uint64_t)1 << i;
			continue;
		}
		switch (f->type) {
		case TT_FT_STR: {
			size_t len;

			if (!cJSON_IsString(v) || !v->valuestring)
				return fail(err, errlen, f->name, "expected string");
			len = strlen(v->valuestring);
			rc = check_str(f, v->valuestring, len, err, errlen);
			if (rc)
				return rc;
			if (arena->len > UINT32_MAX - len)
				return TT_ETRUNCATED;
			out->v[i].s.off = (uint32_t)arena->len;
			out->v[i].s.len = (uint32_t)len;
			rc = tt_buf_add(arena, v->valuestring, len);
			if (rc)
				return rc;
			break;
		}
		case TT_FT_INT: {
			double d;
			char why[64];

			if (!cJSON_IsNumber(v))
				return fail(err, errlen, f->name, "expected integer");
			d = v->valuedouble;
			if (!isfinite(d) || d != floor(d))
				return fail(err, errlen, f->name, "expected integer");
			if (d < 0)
				return fail(err, errlen, f->name, "must not be negative");
			if (d > (double)f->max) {
				snprintf(why, sizeof(why), "larger than %lld", (long long)f->max);
				return fail(err, errlen, f->name, why);
			}
			out->v[i].i = (int64_t)d;
			break;
		}
		case TT_FT_NUM:
			if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
				return fail(err, errlen, f->name, "expected number");
			if (v->valuedouble < 0)
				return fail(err, errlen, f->name, "must not be negative");
			out->v[i].d = v->valuedouble;
			break;
		case TT_FT_BOOL:
			if (!cJSON_IsBool(v))
				return fail(err, errlen, f->name, "expected true, false or null");
			out->v[i].i = cJSON_IsTrue(v) ? 1 : 0;
			break;
		case TT_FT_TS:
			if (!cJSON_IsString(v) || !v->valuestring)
				return fail(err, errlen, f->name, "expected RFC 3339 string");
			if (tt_rec_parse_ts(v->valuestring, strlen(v->valuestring), &out->v[i].i))
				return fail(err, errlen, f->name,
					    "not an RFC 3339 date-time (e.g. 2026-01-02T03:04:05.000000Z)");
			break;
		}
	}

	/* DESIGN.md: input_tokens counts cached and cache-written tokens too,
	 * output_tokens counts reasoning; a record that breaks this would price
	 * a negative number of uncached tokens. */
	if (!tt_rec_is_null(out, TT_F_INPUT_TOKENS) &&
	    tt_rec_int(out, TT_F_CACHE_READ_TOKENS, 0) + tt_rec_int(out, TT_F_CACHE_WRITE_TOKENS, 0) >
		    out->v[TT_F_INPUT_TOKENS].i)
		return fail(err, errlen, "cache_read_tokens",
			    "cache_read_tokens + cache_write_tokens exceed input_tokens");
	if (!tt_rec_is_null(out, TT_F_OUTPUT_TOKENS) &&
	    tt_rec_int(out, TT_F_REASONING_TOKENS, 0) > out->v[TT_F_OUTPUT_TOKENS].i)
		return fail(err, errlen, "reasoning_tokens", "exceeds output_tokens");
	return 0;
}
