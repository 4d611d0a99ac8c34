/*
 * record.c - the record's defaults, its id and its JSON form.
 *
 * The JSON writer is hand-rolled on purpose: it runs inside the host
 * program for every LLM call, and a fixed struct with a bounded output
 * needs no allocation, unlike building a cJSON tree first.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "tokentap/error.h"
#include "tokentap/record.h"

void tt_record_init(tt_record *rec)
{
	memset(rec, 0, sizeof(*rec));
	rec->ttft_ms = -1;
	rec->duration_ms = -1;
	rec->pid = rec->tid = TT_NULL;
	rec->status = TT_NULL;
	rec->stream = TT_TRI_NULL;
	rec->max_tokens = TT_NULL;
	rec->input_tokens = rec->output_tokens = TT_NULL;
	rec->cache_read_tokens = rec->cache_write_tokens = TT_NULL;
	rec->reasoning_tokens = TT_NULL;
	rec->request_bytes = rec->response_bytes = TT_NULL;
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

/*
 * TT_RECORD_JSON_MAX is enough for any record.  Values: a string of cap
 * bytes takes at most 6 * (cap - 1) + 2 (every byte escaped as \u00XX, and
 * its quotes), an int64 at most 20, a timestamp 29, a duration 31 (put_ms),
 * an int 11: none more than 6 bytes per byte of the struct.  Keys: 41 of at
 * most 18 bytes, each with two quotes, a colon and a comma, and the braces:
 * under 500 today (test_col_records.c measures it against KEYS_MAX).
 */
#define KEYS_MAX 2048
_Static_assert(6 * sizeof(tt_record) + KEYS_MAX <= TT_RECORD_JSON_MAX,
	       "TT_RECORD_JSON_MAX cannot hold the largest record");

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

/* RFC 8259 string escaping; control characters as \u00XX. */
static void put_str(struct out *o, const char *key, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	put_key(o, key);
	if (!s[0]) {
		put(o, "null", 4);
		return;
	}
	put(o, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			char e[2] = { '\\', (char)c };
			put(o, e, 2);
		} else if (c < 0x20) {
			char e[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
			put(o, e, 6);
		} else {
			put(o, (const char *)&c, 1);
		}
	}
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

static void put_ts(struct out *o, const char *key, int64_t us)
{
	char ts[40];
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

int tt_record_to_json(const tt_record *r, char *buf, size_t cap)
{
	struct out o = { .p = buf, .cap = cap };

	put(&o, "{", 1);
	put_str(&o, "id", r->id);
	put_str(&o, "source", r->source);
	put_ts(&o, "ts", r->ts_us);
	put_ms(&o, "ttft_ms", r->ttft_ms);
	put_ms(&o, "duration_ms", r->duration_ms);
	put_int(&o, "pid", r->pid);
	put_int(&o, "tid", r->tid);
	put_str(&o, "comm", r->comm);
	put_str(&o, "exe", r->exe);
	put_str(&o, "cgroup", r->cgroup);
	put_str(&o, "container_id", r->container_id);
	put_str(&o, "pod_uid", r->pod_uid);
	put_str(&o, "host", r->host);
	put_str(&o, "method", r->method);
	put_str(&o, "path", r->path);
	put_str(&o, "http", r->http);
	put_int(&o, "status", r->status);
	put_str(&o, "provider", r->provider);
	put_str(&o, "api", r->api);
	put_str(&o, "model", r->model);
	put_str(&o, "request_model", r->request_model);
	put_bool(&o, "stream", r->stream);
	put_int(&o, "max_tokens", r->max_tokens);
	put_int(&o, "input_tokens", r->input_tokens);
	put_int(&o, "output_tokens", r->output_tokens);
	put_int(&o, "cache_read_tokens", r->cache_read_tokens);
	put_int(&o, "cache_write_tokens", r->cache_write_tokens);
	put_int(&o, "reasoning_tokens", r->reasoning_tokens);
	put_str(&o, "usage_source", r->usage_source);
	put_str(&o, "task", r->task);
	put_str(&o, "tenant", r->tenant);
	put_str(&o, "feature", r->feature);
	put_str(&o, "prompt_hash", r->prompt_hash);
	put_str(&o, "prefix_hash", r->prefix_hash);
	put_int(&o, "request_bytes", r->request_bytes);
	put_int(&o, "response_bytes", r->response_bytes);
	put_str(&o, "error", r->error);
	put_bool(&o, "blocked", r->blocked);
	put_str(&o, "side", r->side);
	put_str(&o, "app", r->app);
	put_str(&o, "tls", r->tls);
	put(&o, "}", 1);
	if (o.full)
		return TT_ENOSPACE;
	buf[o.len] = '\0';
	return (int)o.len;
}
