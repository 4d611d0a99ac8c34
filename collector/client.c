/* client.c - libcurl GET against a tokentapd, see client.h. */
#include "client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "tokentap/error.h"

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	tt_buf *b = arg;

	if (tt_buf_add(b, p, size * n))
		return 0;  /* over the cap: curl stops with CURLE_WRITE_ERROR */
	return size * n;
}

char *tt_client_escape(const char *s)
{
	char *e = curl_easy_escape(NULL, s, 0), *copy;

	if (!e)
		return NULL;
	copy = strdup(e);
	curl_free(e);
	return copy;
}

int tt_client_get(const char *collector, const char *path, const char *token, tt_buf *out,
		  long *status, char *err, size_t errlen)
{
	CURL *c = NULL;
	struct curl_slist *hdrs = NULL;
	char url[4096], auth[4200];
	CURLcode cc;
	int rc = 0;

	*status = 0;
	if (strncmp(collector, "unix:", 5) == 0 && collector[5] == '/') {
		snprintf(url, sizeof(url), "http://localhost%s", path);
	} else if (strncmp(collector, "http://", 7) == 0 && collector[7]) {
		size_t n = strlen(collector);

		while (n > 7 && collector[n - 1] == '/')
			n--;
		snprintf(url, sizeof(url), "%.*s%s", (int)n, collector, path);
	} else {
		snprintf(err, errlen, "collector %s: expected unix:/path.sock or http://HOST:PORT",
			 collector);
		return TT_EINVAL;
	}
	c = curl_easy_init();
	if (!c) {
		snprintf(err, errlen, "cannot start libcurl");
		return TT_ENOMEM;
	}
	if (collector[0] == 'u')
		curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, collector + 5);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
	if (token) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
		hdrs = curl_slist_append(hdrs, auth);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	}
	cc = curl_easy_perform(c);
	if (cc != CURLE_OK) {
		snprintf(err, errlen, "cannot reach the collector at %s: %s", collector,
			 curl_easy_strerror(cc));
		rc = TT_EIO;
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
out:
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	return rc;
}
