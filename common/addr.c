/* addr.c - the collector's address; see addr.h. */
#include "addr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokentap/error.h"

static int bad(char *err, size_t errlen, const char *s, const char *why)
{
	if (err)
		snprintf(err, errlen, "%.200s: %s", s, why);
	return TT_EINVAL;
}

static int parse_unix(const char *s, tt_addr *out, char *err, size_t errlen)
{
	const char *p = s + 5;
	size_t n = strlen(p);

	if (p[0] != '/' || n >= sizeof(out->path))
		return bad(err, errlen, s, "expected unix: and an absolute path of at most "
			   "107 bytes");
	out->is_unix = 1;
	memcpy(out->path, p, n + 1);
	return 0;
}

/* "0" .. "65535", digits only (0: a listener's "any free port"). */
static int parse_port(const char *p, size_t n, tt_addr *out)
{
	unsigned long v = 0;

	if (n == 0 || n > 5)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(p[i] - '0');
	}
	if (v > 65535)
		return -1;
	snprintf(out->port, sizeof(out->port), "%lu", v);
	return 0;
}

static int parse_http(const char *s, tt_addr *out, char *err, size_t errlen)
{
	const char *h = s + 7, *end = h + strcspn(h, "/?#"), *colon;
	size_t hl;
	unsigned char tmp[16];

	if (*h == '[') {
		const char *rb = memchr(h, ']', (size_t)(end - h));

		if (!rb)
			return bad(err, errlen, s, "an IPv6 address needs its closing ]");
		hl = (size_t)(rb - h - 1);
		h++;
		colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
		if (rb + 1 < end && !colon)
			return bad(err, errlen, s, "expected :port after ]");
	} else {
		colon = memchr(h, ':', (size_t)(end - h));
		hl = (size_t)((colon ? colon : end) - h);
	}
	if (hl == 0 || hl >= sizeof(out->host))
		return bad(err, errlen, s, "expected a host of 1 to 255 bytes");
	memcpy(out->host, h, hl);
	out->host[hl] = '\0';
	for (size_t i = 0; i < hl; i++)
		if ((unsigned char)out->host[i] <= ' ' || out->host[i] == '@')
			return bad(err, errlen, s, "the host holds a space, a control "
				   "character or a user name");
	if (colon ? parse_port(colon + 1, (size_t)(end - colon - 1), out)
		  : parse_port("80", 2, out))
		return bad(err, errlen, s, "expected a port from 0 to 65535");
	out->numeric = inet_pton(AF_INET, out->host, tmp) == 1 ||
		       inet_pton(AF_INET6, out->host, tmp) == 1;
	return 0;
}

int tt_addr_parse(const char *s, tt_addr *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (!s)
		return bad(err, errlen, "(none)", "no address");
	if (strncmp(s, "unix:", 5) == 0)
		return parse_unix(s, out, err, errlen);
	if (strncmp(s, "http://", 7) == 0)
		return parse_http(s, out, err, errlen);
	return bad(err, errlen, s, "expected unix:/path.sock or http://host:port");
}
