/* peek.c - one client's HTTP/1.1 request read at once; see decoder.h (tt_peek). */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "request.h"
#include "route.h"
#include "tokentap/decoder.h"

/* ---- the head (RFC 9112) ------------------------------------------------ */

/*
 * RFC 9112 section 2.2: the head ends with an empty line; "a recipient
 * MAY recognize a single LF as a line terminator", as http1.c does.
 * Searched within the first n bytes only.  Returns the head's length, or 0.
 */
static size_t head_end(const char *p, size_t n)
{
	const char *end = p + n, *lf = p;

	while ((lf = memchr(lf, '\n', (size_t)(end - lf))) != NULL) {
		if (end - lf > 1 && lf[1] == '\n')
			return (size_t)(lf - p) + 2;
		if (end - lf > 2 && lf[1] == '\r' && lf[2] == '\n')
			return (size_t)(lf - p) + 3;
		lf++;
	}
	return 0;
}

/* The method characters http1.c accepts. */
static int method_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '-' || c == '_';
}

/*
 * "method SP request-target SP HTTP-version" (RFC 9112 section 3), as far
 * as the n bytes at p go (eol: the line's LF, or NULL when it has not
 * come yet).  Returns 0 when nothing seen contradicts it, else TT_EPROTO.
 */
static int request_line(tt_peek *pk, const char *p, size_t n, const char *eol)
{
	const char *end = eol ? eol : p + n, *sp1, *sp2, *v;
	size_t i;

	for (i = 0; i < (size_t)(end - p) && p[i] != ' '; i++)
		if (!method_char(p[i]) || i + 1 >= sizeof(pk->method))
			return TT_EPROTO;
	if (i == 0 && end > p)
		return TT_EPROTO;  /* a space first */
	if (!eol)
		return 0;
	if (i == (size_t)(end - p))
		return TT_EPROTO;
	sp1 = p + i;
	if (end > sp1 && end[-1] == '\r')
		end--;
	sp2 = memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1));
	if (!sp2 || sp2 == sp1 + 1)
		return TT_EPROTO;
	v = sp2 + 1;
	/* HTTP-version = "HTTP" "/" DIGIT "." DIGIT, major 1 here. */
	if (end - v != 8 || memcmp(v, "HTTP/1.", 7) != 0 || v[7] < '0' || v[7] > '9')
		return TT_EPROTO;
	memcpy(pk->method, p, i);
	pk->method[i] = '\0';
	pk->target = sp1 + 1;
	pk->target_len = (size_t)(sp2 - sp1 - 1);
	/* The path ends at the query (target is not NUL-terminated). */
	while (pk->path_len < pk->target_len && pk->target[pk->path_len] != '?' &&
	       pk->target[pk->path_len] != '#')
		pk->path_len++;
	return 0;
}

/* Content-Length = 1*DIGIT (RFC 9110 section 8.6); more than 18 digits is
 * no length we could wait for. */
static int content_length(tt_peek *pk, const char *v, size_t n)
{
	int64_t x = 0;

	if (n == 0 || n > 18)
		return TT_EPROTO;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return TT_EPROTO;
		x = x * 10 + (v[i] - '0');
	}
	/* "a sender MUST NOT send ... differing values" (section 8.6). */
	if (pk->content_length >= 0 && pk->content_length != x)
		return TT_EPROTO;
	pk->content_length = x;
	return 0;
}

/* One field line: the fields the peek tells, the others skipped. */
static int field(tt_peek *pk, const char *name, size_t nl, const char *v, size_t vl)
{
	while (vl && (*v == ' ' || *v == '\t')) {
		v++;
		vl--;
	}
	while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
		vl--;
#define IS(s) (nl == sizeof(s) - 1 && strncasecmp(name, s, nl) == 0)
	if (IS("host"))
		tt_record_set(pk->host, sizeof(pk->host), v, vl);
	else if (IS("content-length"))
		return content_length(pk, v, vl);
	else if (IS("transfer-encoding"))
		pk->chunked = 1;  /* it, not Content-Length, frames the body (6.3) */
	else if (IS("x-tokentap-task"))
		tt_record_set(pk->task, sizeof(pk->task), v, vl);
	else if (IS("x-tokentap-tenant"))
		tt_record_set(pk->tenant, sizeof(pk->tenant), v, vl);
	else if (IS("x-tokentap-feature"))
		tt_record_set(pk->feature, sizeof(pk->feature), v, vl);
#undef IS
	return 0;
}

/* The field lines between the request line and the empty line. */
static int fields(tt_peek *pk, const char *p, const char *end)
{
	while (p < end) {
		const char *lf = memchr(p, '\n', (size_t)(end - p));
		const char *le = lf ? lf : end, *colon;
		int rc;

		if (le > p && le[-1] == '\r')
			le--;
		colon = memchr(p, ':', (size_t)(le - p));
		if (colon && colon > p) {
			rc = field(pk, p, (size_t)(colon - p), colon + 1, (size_t)(le - colon - 1));
			if (rc < 0)
				return rc;
		}
		p = lf ? lf + 1 : end;
	}
	return 0;
}

/* ---- the body: a scan of the top-level JSON members (RFC 8259) ----------- */

static const char *ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* p is just after a string's opening quote: its closing quote, or NULL. */
static const char *str_end(const char *p, const char *end)
{
	const char *q;

	while ((q = memchr(p, '"', (size_t)(end - p))) != NULL) {
		size_t bs = 0;

		while (q - bs > p && q[-1 - (ptrdiff_t)bs] == '\\')
			bs++;
		if (bs % 2 == 0)
			return q;
		p = q + 1;
	}
	return NULL;
}

/*
 * The end of the value at p: just past a string or a container, at the
 * ',' or '}' after a scalar.  Strings are skipped with memchr (their
 * bytes are most of a prompt); containers by counting brackets, without
 * recursion.  NULL when the bytes end first.
 */
static const char *skip_value(const char *p, const char *end)
{
	size_t depth = 0;

	for (; p < end; p++) {
		switch (*p) {
		case '"':
			p = str_end(p + 1, end);
			if (!p)
				return NULL;
			if (!depth)
				return p + 1;
			break;
		case '{':
		case '[':
			depth++;
			break;
		case '}':
		case ']':
			if (!depth)
				return p;
			if (--depth == 0)
				return p + 1;
			break;
		case ',':
			if (!depth)
				return p;
			break;
		default:
			break;
		}
	}
	return NULL;
}

/*
 * A JSON number as an output ceiling: 1 and *out when it is a number from
 * 0 to 1e12, the test tt_request_parse() applies to cJSON's value, cut to
 * an integer the same way.  Worked out in integers, digits times a power
 * of ten: no strtod, whose decimal point is the host program's locale.
 */
#define CEILING_MAX 1000000000000ull

static int ceiling_number(const char *p, const char *end, int64_t *out)
{
	uint64_t m = 0;           /* the first 17 or so significant digits */
	int scale = 0, e = 0;     /* the value is m * 10^(scale + e) */
	int digits = 0, neg = 0, eneg = 0;
	uint64_t frac = 0;        /* nonzero: digits cut off were not all 0 */

	if (p < end && *p == '-') {
		neg = 1;
		p++;
	}
	for (; p < end && *p >= '0' && *p <= '9'; p++, digits++) {
		if (m < 100000000000000000ull)
			m = m * 10 + (uint64_t)(*p - '0');
		else
			scale++;
	}
	if (!digits)
		return 0;
	if (p < end && *p == '.')
		for (p++; p < end && *p >= '0' && *p <= '9'; p++)
			if (m < 100000000000000000ull) {
				m = m * 10 + (uint64_t)(*p - '0');
				scale--;
			}
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			eneg = *p++ == '-';
		for (; p < end && *p >= '0' && *p <= '9'; p++)
			e = e < 100000 ? e * 10 + (*p - '0') : e;
	}
	scale += eneg ? -e : e;
	if (m && neg)
		return 0;  /* below zero; "-0" is 0 */
	for (; scale > 0 && m; scale--) {
		if (m > CEILING_MAX)
			return 0;
		m *= 10;
	}
	for (; scale < 0 && m; scale++) {
		frac |= m % 10;
		m /= 10;
	}
	if (m > CEILING_MAX || (m == CEILING_MAX && frac))
		return 0;
	*out = (int64_t)m;
	return 1;
}

struct scan {
	tt_peek *pk;
	int model_seen;
	unsigned seen;      /* bit k: a member named tt_request_ceiling_keys[k] met */
	unsigned parents;   /* bit j: tt_request_ceiling_parents[j] met */
	int best;           /* rank of the ceiling kept; lower wins */
	int base, nkeys;    /* inside a parent: its ranks, how many keys apply */
};

#define NO_RANK 0x7fff

static int key_index(const char *const *list, int n, const char *k, size_t kl)
{
	for (int i = 0; i < n && list[i]; i++)
		if (strlen(list[i]) == kl && memcmp(list[i], k, kl) == 0)
			return i;
	return -1;
}

/* A ceiling key's member at this level: only its first one counts, as
 * cJSON_GetObjectItem finds it. */
static void ceiling_member(struct scan *s, int k, const char *v, const char *end)
{
	int64_t x;

	if (s->seen & (1u << k))
		return;
	s->seen |= 1u << k;
	if (s->base + k < s->best && ceiling_number(v, end, &x)) {
		s->best = s->base + k;
		s->pk->max_tokens = x;
	}
}

typedef int (*member_fn)(struct scan *s, const char *k, size_t kl, const char *v,
			 const char *end);

/* Each member of the object whose '{' is at p, until fn returns 1 or the
 * bytes stop being JSON. */
static void members(struct scan *s, const char *p, const char *end, member_fn fn)
{
	p = ws(p, end);
	if (p >= end || *p != '{')
		return;
	for (p++;;) {
		const char *k, *ke;

		p = ws(p, end);
		if (p >= end || *p != '"')
			return;
		k = p + 1;
		ke = str_end(k, end);
		if (!ke)
			return;
		p = ws(ke + 1, end);
		if (p >= end || *p != ':')
			return;
		p = ws(p + 1, end);
		if (p >= end || fn(s, k, (size_t)(ke - k), p, end))
			return;
		p = skip_value(p, end);
		if (!p)
			return;
		p = ws(p, end);
		if (p >= end || *p != ',')
			return;
		p++;
	}
}

static int nested_member(struct scan *s, const char *k, size_t kl, const char *v,
			 const char *end)
{
	int i = key_index(tt_request_ceiling_keys, s->nkeys, k, kl);

	if (i >= 0)
		ceiling_member(s, i, v, end);
	return 0;
}

static void model_member(struct scan *s, const char *v, const char *end)
{
	const char *q;

	s->model_seen = 1;
	if (*v != '"' || !(q = str_end(v + 1, end)))
		return;
	/* Escapes are not decoded: such a name counts as not there. */
	if (!memchr(v + 1, '\\', (size_t)(q - v - 1)))
		tt_record_set(s->pk->model, sizeof(s->pk->model), v + 1, (size_t)(q - v - 1));
}

static int top_member(struct scan *s, const char *k, size_t kl, const char *v, const char *end)
{
	int i;

	if (kl == 5 && memcmp(k, "model", 5) == 0) {
		if (!s->model_seen)
			model_member(s, v, end);
	} else if ((i = key_index(tt_request_ceiling_keys, TT_REQUEST_CEILING_TOP, k, kl)) >= 0) {
		ceiling_member(s, i, v, end);
	} else if ((i = key_index(tt_request_ceiling_parents, 32, k, kl)) >= 0 &&
		   !(s->parents & (1u << i))) {
		struct scan in = *s;

		s->parents |= 1u << i;
		if (*v != '{')
			return 0;
		/* Ranks after every top-level key, parents in list order. */
		in.seen = 0;
		in.base = TT_REQUEST_CEILING_TOP + i * 32;
		in.nkeys = 32;
		members(&in, v, end, nested_member);
		s->best = in.best;
	}
	/* Done when nothing later could change the answer. */
	return s->model_seen && s->best == 0;
}

static void body_fields(tt_peek *pk, const tt_route *rt)
{
	struct scan s = {.pk = pk, .best = NO_RANK};

	members(&s, pk->body, pk->body + pk->body_len, top_member);
	if (!pk->model[0])
		tt_record_set(pk->model, sizeof(pk->model), rt->path_model, (size_t)-1);
}

/* ---- the request ---------------------------------------------------------- */

static void peek_reset(tt_peek *pk)
{
	memset(pk, 0, sizeof(*pk));
	pk->content_length = -1;
	pk->max_tokens = TT_NULL;
}

int tt_peek_request(tt_peek *pk, const void *buf, size_t len)
{
	const char *p = buf, *eol;
	size_t n = len < TT_PEEK_HEAD_MAX ? len : TT_PEEK_HEAD_MAX, hl;
	tt_route rt;
	int rc;

	peek_reset(pk);
	if (!len)
		return TT_PEEK_MORE;
	hl = head_end(p, n);
	eol = memchr(p, '\n', hl ? hl : n);
	rc = request_line(pk, p, n, eol);
	if (rc < 0)
		return rc;
	if (!hl)
		return len >= TT_PEEK_HEAD_MAX ? TT_ETRUNCATED : TT_PEEK_MORE;
	rc = fields(pk, eol + 1, p + hl);
	if (rc < 0)
		return rc;
	pk->head_len = hl;
	if (!pk->chunked) {
		uint64_t cl = pk->content_length > 0 ? (uint64_t)pk->content_length : 0;

		pk->total = cl > SIZE_MAX - hl ? SIZE_MAX : hl + (size_t)cl;
	}
	pk->llm = tt_route_match(&rt, pk->method, pk->target, pk->target_len,
				 pk->host[0] ? pk->host : NULL);
	pk->provider = pk->llm ? rt.provider : NULL;
	pk->api = pk->llm ? rt.api : NULL;
	if (pk->chunked || len < pk->total)
		return TT_PEEK_HEAD;
	pk->body = p + hl;
	pk->body_len = pk->total - hl;
	if (pk->llm)
		body_fields(pk, &rt);
	return TT_PEEK_WHOLE;
}

void tt_peek_record(const tt_peek *pk, tt_record *rec)
{
	tt_route rt;
	tt_request_info info;

	tt_record_init(rec);
	TT_RECORD_SET(rec, method, pk->method, (size_t)-1);
	TT_RECORD_SET(rec, path, pk->target, pk->path_len);
	TT_RECORD_SET(rec, host, pk->host, (size_t)-1);
	TT_RECORD_SET(rec, http, "1.1", 3);
	TT_RECORD_SET(rec, task, pk->task, (size_t)-1);
	TT_RECORD_SET(rec, tenant, pk->tenant, (size_t)-1);
	TT_RECORD_SET(rec, feature, pk->feature, (size_t)-1);
	TT_RECORD_SET(rec, side, "client", 6);
	if (!pk->target || !tt_route_match(&rt, pk->method, pk->target, pk->target_len,
					   pk->host[0] ? pk->host : NULL))
		return;
	TT_RECORD_SET(rec, provider, rt.provider, (size_t)-1);
	TT_RECORD_SET(rec, api, rt.api, (size_t)-1);
	rec->request_bytes = (int64_t)pk->body_len;
	tt_request_parse(&info, &rt, pk->body ? pk->body : "", pk->body_len);
	TT_RECORD_SET(rec, request_model, info.model, (size_t)-1);
	rec->max_tokens = info.max_tokens;
	TT_RECORD_SET(rec, prompt_hash, info.prompt_hash, (size_t)-1);
	TT_RECORD_SET(rec, prefix_hash, info.prefix_hash, (size_t)-1);
	/* What the decoder's record says (exchange.c): the path, else the
	 * body, else the API's default. */
	if (rt.stream_by_path)
		rec->stream = rt.stream_by_path > 0;
	else if (info.stream >= 0)
		rec->stream = info.stream;
	else
		rec->stream = info.parsed ? rt.stream_default : TT_TRI_NULL;
}
