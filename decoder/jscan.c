/* jscan.c - JSON questions answered without a parse; see jscan.h. */
#include <stddef.h>
#include <string.h>

#include "jscan.h"

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * After a quoted key at q (q points just past its closing quote): the
 * start of its value, or NULL when q is not followed by a colon.
 */
static const char *value_after(const char *q, const char *end)
{
	while (q < end && is_space(*q))
		q++;
	if (q >= end || *q != ':')
		return NULL;
	q++;
	while (q < end && is_space(*q))
		q++;
	return q < end ? q : NULL;
}

/*
 * The next place at or after *pos where qkey (a quoted name) is used as a
 * member name: returns the start of its value and moves *pos past it, or
 * NULL when there is none.
 */
static const char *next_member(const char **pos, const char *end,
			       const char *qkey)
{
	size_t k = strlen(qkey);

	while (*pos < end) {
		const char *hit = memmem(*pos, (size_t)(end - *pos), qkey, k);
		if (!hit)
			break;
		*pos = hit + k;
		const char *v = value_after(hit + k, end);
		if (v)
			return v;
	}
	*pos = end;
	return NULL;
}

/* "key" with its quotes, into buf of size cap; 0 when it does not fit. */
static int quote(char *buf, size_t cap, const char *key)
{
	size_t k = strlen(key);
	if (k + 3 > cap)
		return 0;
	buf[0] = '"';
	memcpy(buf + 1, key, k);
	buf[k + 1] = '"';
	buf[k + 2] = '\0';
	return 1;
}

/*
 * Length of the JSON string starting at q (just past its opening quote):
 * up to the first quote not escaped by an odd run of backslashes.
 */
static size_t string_len(const char *q, const char *end)
{
	const char *s = q;

	while (s < end) {
		const char *quote = memchr(s, '"', (size_t)(end - s));
		if (!quote)
			return (size_t)(end - q);
		size_t slashes = 0;
		while (quote - slashes > q && quote[-1 - (ptrdiff_t)slashes] == '\\')
			slashes++;
		if (slashes % 2 == 0)
			return (size_t)(quote - q);
		s = quote + 1;
	}
	return (size_t)(end - q);
}

/* A name and its length, so that comparing costs no strlen per event. */
typedef struct name {
	const char *s;
	size_t len;
} name;
#define NAME(literal) { literal, sizeof(literal) - 1 }

static int key_is_name(const char *k, size_t len, const name *n)
{
	return len == n->len && memcmp(k, n->s, len) == 0;
}

#define key_is(k, len, literal) \
	((len) == sizeof(literal) - 1 && memcmp((k), literal, (len)) == 0)
#define key_ends(k, len, literal)            \
	((len) >= sizeof(literal) - 1 &&     \
	 memcmp((k) + (len) - (sizeof(literal) - 1), literal, sizeof(literal) - 1) == 0)

/* Members whose string value is generated text in some provider's stream. */
static int is_text_key(const char *k, size_t len)
{
	static const name keys[] = {
		NAME("content"), NAME("text"), NAME("delta"), NAME("thinking"),
		NAME("partial_json"), NAME("arguments"), NAME("reasoning_content"),
		NAME("reasoning"), NAME("response"), NAME("generation"),
	};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (key_is_name(k, len, &keys[i]))
			return 1;
	return 0;
}

/* Members that carry counts or an error, whatever their value. */
static int is_count_key(const char *k, size_t len)
{
	return key_is(k, len, "usageMetadata") || key_is(k, len, "error") ||
	       key_is(k, len, "invocationMetrics") ||
	       key_is(k, len, "amazon-bedrock-invocationMetrics") ||
	       key_ends(k, len, "Tokens") || key_ends(k, len, "TokenCount") ||
	       key_ends(k, len, "token_count") || key_ends(k, len, "eval_count");
}

int tt_jscan_event(const char *p, size_t n, uint64_t *text_bytes)
{
	const char *s = p, *end = p + n;
	uint64_t text = 0;

	while (s < end && (s = memchr(s, '"', (size_t)(end - s)))) {
		const char *k = s + 1;
		size_t klen = string_len(k, end);
		const char *after = k + klen + 1;
		if (after > end)
			break;
		const char *v = value_after(after, end);
		if (!v) {
			s = after; /* a string value, not a name */
			continue;
		}
		if (is_count_key(k, klen))
			return 1;
		/* OpenAI puts "usage": null on every chunk but the last. */
		if (key_is(k, klen, "usage") && *v != 'n')
			return 1;
		if (*v == '"') {
			size_t vlen = string_len(v + 1, end);
			/* "type": "error", "message_stop",
			 * "response.completed", ... */
			if (key_is(k, klen, "type") &&
			    ((vlen == 5 && !memcmp(v + 1, "error", 5)) ||
			     (vlen == 12 && !memcmp(v + 1, "message_stop", 12)) ||
			     (vlen > 9 && !memcmp(v + 1, "response.", 9))))
				return 1;
			if (is_text_key(k, klen))
				text += vlen;
			s = v + 1 + vlen + 1;
			continue;
		}
		s = v;
	}
	*text_bytes += text;
	return 0;
}

int tt_jscan_string(const char *p, size_t n, const char *key, char *out,
		    size_t cap)
{
	char qkey[64];
	const char *pos = p, *v;

	if (!quote(qkey, sizeof(qkey), key) || cap == 0)
		return 0;
	while ((v = next_member(&pos, p + n, qkey))) {
		if (*v != '"')
			continue;
		size_t len = string_len(v + 1, p + n);
		if (v + 1 + len >= p + n || memchr(v + 1, '\\', len))
			return 0;
		if (len >= cap)
			len = cap - 1;
		memcpy(out, v + 1, len);
		out[len] = '\0';
		return 1;
	}
	return 0;
}

const char *tt_jscan_last_value(const char *p, size_t n, const char *key)
{
	char qkey[64];
	const char *pos = p, *v, *last = NULL;

	if (!quote(qkey, sizeof(qkey), key))
		return NULL;
	while ((v = next_member(&pos, p + n, qkey)))
		last = v;
	return last;
}
