/*
 * probestats.c - the node probes' counters, kept for /metrics.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "common/json.h"
#include "probestats.h"
#include "tokentap/error.h"

#define PS_DEFAULT_HOSTS 256
#define PS_MAX_VALUES 64          /* counters, and gauges, a host */
#define PS_NAME_MAX 40
#define PS_HOST_MAX 64
#define PS_FORGET_US (3600LL * 1000000) /* a host silent this long goes */
#define PS_I53 ((double)(1LL << 53))
#define PS_UNHOOKED_MAX 16        /* programs whose TLS a probe cannot see */
#define PS_PATH_MAX 256

struct value {
	char name[PS_NAME_MAX + 1];
	uint64_t v;
};

struct host {
	char name[PS_HOST_MAX + 1];
	int64_t seen_us;
	struct value counters[PS_MAX_VALUES], gauges[PS_MAX_VALUES];
	size_t ncounters, ngauges;
	char unhooked[PS_UNHOOKED_MAX][PS_PATH_MAX + 1];
	size_t nunhooked;
};

struct tt_probestats {
	pthread_mutex_t lock;
	struct host *hosts;
	size_t n, max;
	uint64_t refused; /* posts of new hosts past max */
};

tt_probestats *tt_probestats_new(size_t max_hosts)
{
	tt_probestats *ps = calloc(1, sizeof(*ps));

	if (!ps)
		return NULL;
	ps->max = max_hosts ? max_hosts : PS_DEFAULT_HOSTS;
	ps->hosts = calloc(ps->max, sizeof(*ps->hosts));
	if (!ps->hosts) {
		free(ps);
		return NULL;
	}
	pthread_mutex_init(&ps->lock, NULL);
	return ps;
}

void tt_probestats_free(tt_probestats *ps)
{
	if (!ps)
		return;
	pthread_mutex_destroy(&ps->lock);
	free(ps->hosts);
	free(ps);
}

static int valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > PS_NAME_MAX)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || *s == '_'))
			return 0;
	return 1;
}

static int valid_host(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > PS_HOST_MAX)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '.' || *s == '-' || *s == '_'))
			return 0;
	return 1;
}

/* An object of name: integer into v[]; the reason in err on error. */
static int read_values(const cJSON *obj, const char *what, struct value *v,
		       size_t *n, char *err, size_t errlen)
{
	const cJSON *it;

	*n = 0;
	if (!obj)
		return 0;
	if (!cJSON_IsObject(obj)) {
		snprintf(err, errlen, "%s: expected an object", what);
		return TT_EINVAL;
	}
	cJSON_ArrayForEach(it, obj) {
		double d = it->valuedouble;

		if (*n == PS_MAX_VALUES) {
			snprintf(err, errlen, "%s: more than %d", what, PS_MAX_VALUES);
			return TT_EINVAL;
		}
		if (!valid_name(it->string)) {
			snprintf(err, errlen, "%s: a name must be 1 to %d of a-z and _",
				 what, PS_NAME_MAX);
			return TT_EINVAL;
		}
		if (!cJSON_IsNumber(it) || d < 0 || d > PS_I53 || d != (double)(uint64_t)d) {
			snprintf(err, errlen, "%s.%s: expected an integer from 0 to 2^53",
				 what, it->string);
			return TT_EINVAL;
		}
		snprintf(v[*n].name, sizeof(v[*n].name), "%s", it->string);
		v[*n].v = (uint64_t)d;
		(*n)++;
	}
	return 0;
}

/* "unhooked": a list of program paths, printable, without control bytes. */
static int read_paths(const cJSON *arr, struct host *h, char *err, size_t errlen)
{
	const cJSON *it;

	h->nunhooked = 0;
	if (!arr)
		return 0;
	if (!cJSON_IsArray(arr)) {
		snprintf(err, errlen, "unhooked: expected an array of paths");
		return TT_EINVAL;
	}
	cJSON_ArrayForEach(it, arr) {
		const char *s = cJSON_IsString(it) ? it->valuestring : NULL;
		size_t n = s ? strlen(s) : 0;

		if (h->nunhooked == PS_UNHOOKED_MAX) {
			snprintf(err, errlen, "unhooked: more than %d paths", PS_UNHOOKED_MAX);
			return TT_EINVAL;
		}
		if (!s || n == 0 || n > PS_PATH_MAX) {
			snprintf(err, errlen, "unhooked: a path is a string of 1 to %d bytes",
				 PS_PATH_MAX);
			return TT_EINVAL;
		}
		for (size_t k = 0; k < n; k++)
			if ((unsigned char)s[k] < 0x20 || s[k] == 0x7f) {
				snprintf(err, errlen, "unhooked: control characters in a path");
				return TT_EINVAL;
			}
		memcpy(h->unhooked[h->nunhooked++], s, n + 1);
	}
	return 0;
}

/* The slot of host name, a free one, or one silent for too long. */
static struct host *slot_for(tt_probestats *ps, const char *name, int64_t now_us)
{
	size_t i;

	for (i = 0; i < ps->n; i++)
		if (strcmp(ps->hosts[i].name, name) == 0)
			return &ps->hosts[i];
	for (i = 0; i < ps->n; i++)
		if (now_us - ps->hosts[i].seen_us > PS_FORGET_US)
			return &ps->hosts[i];
	if (ps->n < ps->max)
		return &ps->hosts[ps->n++];
	return NULL;
}

int tt_probestats_put(tt_probestats *ps, const char *json, size_t len,
		      int64_t now_us, char *err, size_t errlen)
{
	cJSON *doc = cJSON_ParseWithLength(json, len);
	struct host h = {0}, *slot;
	const cJSON *host;
	int rc = TT_EINVAL;

	if (!doc || !cJSON_IsObject(doc)) {
		snprintf(err, errlen, "expected a JSON object");
		goto out;
	}
	host = cJSON_GetObjectItemCaseSensitive(doc, "host");
	if (!cJSON_IsString(host) || !valid_host(host->valuestring)) {
		snprintf(err, errlen, "host: expected 1 to %d of letters, digits, "
			 "'.', '-' and '_'", PS_HOST_MAX);
		goto out;
	}
	snprintf(h.name, sizeof(h.name), "%s", host->valuestring);
	if (read_values(cJSON_GetObjectItemCaseSensitive(doc, "counters"), "counters",
			h.counters, &h.ncounters, err, errlen) ||
	    read_values(cJSON_GetObjectItemCaseSensitive(doc, "gauges"), "gauges",
			h.gauges, &h.ngauges, err, errlen) ||
	    read_paths(cJSON_GetObjectItemCaseSensitive(doc, "unhooked"), &h, err, errlen))
		goto out;
	h.seen_us = now_us;
	pthread_mutex_lock(&ps->lock);
	slot = slot_for(ps, h.name, now_us);
	if (slot) {
		*slot = h;
		rc = 0;
	} else {
		ps->refused++;
		snprintf(err, errlen, "counters of more than %zu hosts are not kept",
			 ps->max);
		rc = TT_ETRUNCATED;
	}
	pthread_mutex_unlock(&ps->lock);
out:
	cJSON_Delete(doc);
	return rc;
}

/* Has a family of this name been written for a live host before index i? */
static int seen_before(const tt_probestats *ps, size_t i, const char *name, int gauge,
		       int64_t now_us)
{
	for (size_t j = 0; j < i; j++) {
		const struct host *h = &ps->hosts[j];
		const struct value *v = gauge ? h->gauges : h->counters;
		size_t n = gauge ? h->ngauges : h->ncounters;

		if (now_us - h->seen_us > PS_FORGET_US)
			continue;
		for (size_t k = 0; k < n; k++)
			if (strcmp(v[k].name, name) == 0)
				return 1;
	}
	return 0;
}

/* One family: its TYPE line, then the value of every host that has it. */
static int render_family(const tt_probestats *ps, const char *name, int gauge,
			 int64_t now_us, tt_buf *out)
{
	const char *suffix = gauge ? "" : "_total";
	int rc = tt_buf_printf(out, "# TYPE tokentap_probe_%s%s %s\n", name, suffix,
			       gauge ? "gauge" : "counter");

	for (size_t i = 0; i < ps->n && !rc; i++) {
		const struct host *h = &ps->hosts[i];
		const struct value *v = gauge ? h->gauges : h->counters;
		size_t n = gauge ? h->ngauges : h->ncounters;

		if (now_us - h->seen_us > PS_FORGET_US)
			continue;
		for (size_t k = 0; k < n && !rc; k++)
			if (strcmp(v[k].name, name) == 0)
				rc = tt_buf_printf(out, "tokentap_probe_%s%s{host=\"%s\"} %llu\n",
						   name, suffix, h->name,
						   (unsigned long long)v[k].v);
	}
	return rc;
}

int tt_probestats_render(tt_probestats *ps, int64_t now_us, tt_buf *out)
{
	int rc;

	pthread_mutex_lock(&ps->lock);
	rc = tt_buf_printf(out, "# HELP tokentap_probe_hosts_refused_total Posts of "
			   "probe counters from hosts past the limit.\n"
			   "# TYPE tokentap_probe_hosts_refused_total counter\n"
			   "tokentap_probe_hosts_refused_total %llu\n",
			   (unsigned long long)ps->refused);
	for (size_t i = 0; i < ps->n && !rc; i++) {
		const struct host *h = &ps->hosts[i];

		if (now_us - h->seen_us > PS_FORGET_US)
			continue;
		for (size_t k = 0; k < h->ncounters && !rc; k++)
			if (!seen_before(ps, i, h->counters[k].name, 0, now_us))
				rc = render_family(ps, h->counters[k].name, 0, now_us, out);
		for (size_t k = 0; k < h->ngauges && !rc; k++)
			if (!seen_before(ps, i, h->gauges[k].name, 1, now_us))
				rc = render_family(ps, h->gauges[k].name, 1, now_us, out);
	}
	pthread_mutex_unlock(&ps->lock);
	return rc;
}

/* One host's document, as posted (host, counters, gauges, unhooked). */
static int host_json(const struct host *h, tt_buf *out)
{
	int rc = tt_buf_printf(out, "{\"host\":\"%s\",\"counters\":{", h->name);

	for (size_t k = 0; k < h->ncounters && !rc; k++)
		rc = tt_buf_printf(out, "%s\"%s\":%llu", k ? "," : "", h->counters[k].name,
				   (unsigned long long)h->counters[k].v);
	rc = rc ? rc : tt_buf_adds(out, "},\"gauges\":{");
	for (size_t k = 0; k < h->ngauges && !rc; k++)
		rc = tt_buf_printf(out, "%s\"%s\":%llu", k ? "," : "", h->gauges[k].name,
				   (unsigned long long)h->gauges[k].v);
	rc = rc ? rc : tt_buf_adds(out, "},\"unhooked\":[");
	for (size_t k = 0; k < h->nunhooked && !rc; k++) {
		char esc[PS_PATH_MAX * TT_JSON_ESC_MAX + 1];

		tt_json_escape(esc, sizeof(esc), h->unhooked[k]);
		rc = tt_buf_printf(out, "%s\"%s\"", k ? "," : "", esc);
	}
	return rc ? rc : tt_buf_adds(out, "]}");
}

int tt_probestats_json(tt_probestats *ps, int64_t now_us, tt_buf *out)
{
	int rc, first = 1;

	pthread_mutex_lock(&ps->lock);
	rc = tt_buf_adds(out, "{\"probes\":[");
	for (size_t i = 0; i < ps->n && !rc; i++) {
		if (now_us - ps->hosts[i].seen_us > PS_FORGET_US)
			continue;
		rc = first ? 0 : tt_buf_adds(out, ",");
		rc = rc ? rc : host_json(&ps->hosts[i], out);
		first = 0;
	}
	rc = rc ? rc : tt_buf_adds(out, "]}\n");
	pthread_mutex_unlock(&ps->lock);
	return rc;
}
