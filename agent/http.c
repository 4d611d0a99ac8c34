/* http.c - the collector client: libcurl through a run-time function table. */
#include <curl/curl.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tokentap/error.h"
#include "http.h"
#include "log.h"

/* The libcurl entry points we use, resolved once per process. */
static struct curl_api {
	CURLcode (*global_init)(long);
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
	CURLcode (*easy_perform)(CURL *);
	CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
	void (*easy_cleanup)(CURL *);
	struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
	void (*slist_free_all)(struct curl_slist *);
	const char *(*easy_strerror)(CURLcode);
	int ok;
} api;

static pthread_once_t api_once = PTHREAD_ONCE_INIT;

/*
 * Set while this process loads libcurl.  A fork() meanwhile (another
 * thread of the host) gives a child whose copy of libcurl may be half
 * relocated, dlopen() having run in a thread the child does not have; and
 * glibc's pthread_once runs api_load again in such a child, where dlopen()
 * returns that same half-made copy: its first call crashed the child
 * (SIGSEGV in libcurl, 1,000 forks while calling).  The child sees the
 * flag in its copy of our memory and leaves libcurl alone: its records go
 * to the spool (http_new fails with TT_ENOTSUP) and TOKENTAP_OUT.
 */
static int loading;

static void api_load_locked(void)
{
	static const char *const names[] = { "libcurl.so.4", "libcurl.so",
					     "libcurl-gnutls.so.4" };
	void *h = NULL;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) && !h; i++)
		h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
	if (!h)
		return;
#define LOAD(field, sym)                                      \
	do {                                                  \
		*(void **)&api.field = dlsym(h, sym);         \
		if (!api.field)                               \
			return;                               \
	} while (0)
	LOAD(global_init, "curl_global_init");
	LOAD(easy_init, "curl_easy_init");
	LOAD(easy_setopt, "curl_easy_setopt");
	LOAD(easy_perform, "curl_easy_perform");
	LOAD(easy_getinfo, "curl_easy_getinfo");
	LOAD(easy_cleanup, "curl_easy_cleanup");
	LOAD(slist_append, "curl_slist_append");
	LOAD(slist_free_all, "curl_slist_free_all");
	LOAD(easy_strerror, "curl_easy_strerror");
#undef LOAD
	/* The handle stays open for the life of the process on purpose. */
	api.global_init(CURL_GLOBAL_DEFAULT);
	api.ok = 1;
}

static void api_load(void)
{
	if (__atomic_load_n(&loading, __ATOMIC_ACQUIRE)) {
		tt_log(TT_LOG_WARN, "forked while the parent loaded libcurl: "
		       "this process spools its records");
		return;
	}
	__atomic_store_n(&loading, 1, __ATOMIC_RELEASE);
	api_load_locked();
	__atomic_store_n(&loading, 0, __ATOMIC_RELEASE);
}

void tt_http_preload(void)
{
	pthread_once(&api_once, api_load);
}

struct tt_http {
	CURL *curl;
	struct curl_slist *headers;
	char url[512];
	char unix_path[256];
	char errbuf[CURL_ERROR_SIZE];
};

/* Like tokentapd's --token-file: one line; trailing CR, LF, spaces cut. */
#define TOKEN_MAX 4096

/*
 * TOKENTAP_TOKEN_FILE names a file holding the collector's bearer token.
 * Adds "Authorization: Bearer <token>" to h's headers.  The token is never
 * logged and is wiped from our buffers once libcurl holds its copy.
 * Returns 0 (also when the variable is unset) or TT_EINVAL / TT_EIO with a
 * warning; the caller goes on without a token (the collector then answers
 * 401 and the records wait in the spool).
 */
static int add_token(tt_http *h)
{
	const char *path = getenv("TOKENTAP_TOKEN_FILE");
	char tok[TOKEN_MAX + 2], line[TOKEN_MAX + 32];
	struct curl_slist *l;
	size_t len = 0;
	ssize_t r;
	int fd, rc = 0;

	if (!path || !*path)
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		tt_log(TT_LOG_WARN, "TOKENTAP_TOKEN_FILE %s: cannot open it", path);
		return TT_EIO;
	}
	while (len < sizeof(tok) - 1 &&
	       (r = read(fd, tok + len, sizeof(tok) - 1 - len)) > 0)
		len += (size_t)r;
	close(fd);
	while (len && (tok[len - 1] == '\n' || tok[len - 1] == '\r' ||
		       tok[len - 1] == ' '))
		len--;
	tok[len] = '\0';
	/* A header value: visible ASCII only, or the request is malformed. */
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)tok[i] <= 0x20 || (unsigned char)tok[i] >= 0x7f)
			rc = TT_EINVAL;
	if (len == 0 || len > TOKEN_MAX)
		rc = TT_EINVAL;
	if (rc) {
		tt_log(TT_LOG_WARN, "TOKENTAP_TOKEN_FILE %s: expected one line "
		       "of at most %d visible characters", path, TOKEN_MAX);
		goto out;
	}
	snprintf(line, sizeof(line), "Authorization: Bearer %s", tok);
	l = api.slist_append(h->headers, line);
	if (l)
		h->headers = l;
	else
		rc = TT_ENOMEM;
out:
	explicit_bzero(tok, sizeof(tok));
	explicit_bzero(line, sizeof(line));
	return rc;
}

/* The answer body is a short JSON document we do not need. */
static size_t discard(char *ptr, size_t size, size_t nmemb, void *user)
{
	(void)ptr;
	(void)user;
	return size * nmemb;
}

tt_http *tt_http_new(const char *collector, int *err)
{
	return tt_http_new_for(collector, "/v1/records", err);
}

tt_http *tt_http_new_for(const char *collector, const char *api_path, int *err)
{
	tt_http *h;

	*err = TT_EINVAL;
	if (!collector)
		return NULL;
	h = calloc(1, sizeof(*h));
	if (!h) {
		*err = TT_ENOMEM;
		return NULL;
	}
	if (strncmp(collector, "unix:", 5) == 0) {
		const char *p = collector + 5;
		if (p[0] != '/' || strlen(p) >= sizeof(h->unix_path))
			goto fail;
		memcpy(h->unix_path, p, strlen(p) + 1);
		snprintf(h->url, sizeof(h->url), "http://localhost%s", api_path);
	} else if (strncmp(collector, "http://", 7) == 0 ||
		   strncmp(collector, "https://", 8) == 0) {
		const char *hostport = collector + (collector[4] == 's' ? 8 : 7);
		size_t n = strcspn(hostport, "/");
		if (n == 0 || n > 300)
			goto fail;
		snprintf(h->url, sizeof(h->url), "%.*s%.*s%s",
			 (int)(hostport - collector), collector, (int)n, hostport,
			 api_path);
	} else {
		goto fail;
	}

	pthread_once(&api_once, api_load);
	if (!api.ok) {
		*err = TT_ENOTSUP;
		goto fail;
	}
	h->curl = api.easy_init();
	if (!h->curl) {
		*err = TT_ENOMEM;
		goto fail;
	}
	h->headers = api.slist_append(NULL, "Content-Type: application/x-ndjson");
	if (h->headers)
		h->headers = api.slist_append(h->headers, "Expect:");
	if (h->headers)
		add_token(h);
	api.easy_setopt(h->curl, CURLOPT_URL, h->url);
	if (h->unix_path[0])
		api.easy_setopt(h->curl, CURLOPT_UNIX_SOCKET_PATH, h->unix_path);
	/* Never route our own records through the host's http_proxy. */
	api.easy_setopt(h->curl, CURLOPT_NOPROXY, "*");
	api.easy_setopt(h->curl, CURLOPT_NOSIGNAL, 1L);
	api.easy_setopt(h->curl, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
	api.easy_setopt(h->curl, CURLOPT_TIMEOUT_MS, 5000L);
	api.easy_setopt(h->curl, CURLOPT_HTTPHEADER, h->headers);
	api.easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, discard);
	api.easy_setopt(h->curl, CURLOPT_ERRORBUFFER, h->errbuf);
	api.easy_setopt(h->curl, CURLOPT_USERAGENT, "tokentap-agent");
	*err = 0;
	return h;
fail:
	tt_http_free(h);
	return NULL;
}

long tt_http_post(tt_http *h, const char *body, size_t len)
{
	long status = 0;
	CURLcode rc;

	api.easy_setopt(h->curl, CURLOPT_POSTFIELDS, body);
	api.easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	h->errbuf[0] = '\0';
	rc = api.easy_perform(h->curl);
	if (rc != CURLE_OK) {
		tt_log(TT_LOG_DEBUG, "collector %s: %s", h->url,
		       h->errbuf[0] ? h->errbuf : api.easy_strerror(rc));
		return TT_EIO;
	}
	api.easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
	return status > 0 ? status : TT_EIO;
}

void tt_http_free(tt_http *h)
{
	if (!h)
		return;
	if (h->curl)
		api.easy_cleanup(h->curl);
	if (h->headers)
		api.slist_free_all(h->headers);
	free(h);
}
