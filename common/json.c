/* json.c - JSON string escaping; see json.h. */
#include "json.h"

size_t tt_json_escape_byte(unsigned char c, char e[TT_JSON_ESC_MAX])
{
	static const char hex[] = "0123456789abcdef";

	if (c >= 0x20 && c != '"' && c != '\\') {
		e[0] = (char)c;
		return 1;
	}
	e[0] = '\\';
	switch (c) {
	case '"':
	case '\\':
		e[1] = (char)c;
		return 2;
	case '\n':
		e[1] = 'n';
		return 2;
	case '\r':
		e[1] = 'r';
		return 2;
	case '\t':
		e[1] = 't';
		return 2;
	default:
		e[1] = 'u';
		e[2] = '0';
		e[3] = '0';
		e[4] = hex[c >> 4];
		e[5] = hex[c & 15];
		return 6;
	}
}

size_t tt_json_escape(char *dst, size_t cap, const char *s)
{
	size_t n = 0;

	for (; *s; s++) {
		char e[TT_JSON_ESC_MAX];
		size_t el = tt_json_escape_byte((unsigned char)*s, e);

		if (n + el >= cap)
			break;
		for (size_t i = 0; i < el; i++)
			dst[n++] = e[i];
	}
	dst[n] = '\0';
	return n;
}
