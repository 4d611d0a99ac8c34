/*
 * bench_ingest.c - tokentapd's ingest over HTTP, measured from outside.
 *
 * Starts build/tokentapd on a temporary database and a loopback port,
 * then measures:
 *   - batched ingest: BENCH_RECORDS records (default 1,000,000) in POSTs of
 *     BENCH_BATCH records (default 1000) from BENCH_SENDERS threads
 *     (default 2): records/s, and p50/p99 latency per POST;
 *   - single-record ingest: 2,000 POSTs of one record, from 1 sender and
 *     from 8 senders: records/s and p50/p99 latency;
 *   - the daemon's resident memory (VmRSS, VmHWM) after the batched run,
 *     and the database size.
 * Records are ~700 bytes, shaped like the agent's (every field present).
 * BENCH_SYNC=normal runs the daemon with --sync normal (default full).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

static int port;
static pid_t daemon_pid;
static char tmpdir[] = "/tmp/tt-bench-ingest-XXXXXX";

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *record_fmt =
	"{\"id\":\"%032llx\",\"source\":\"preload\",\"ts\":\"2026-11-27T05:00:00.000000Z\","
	"\"ttft_ms\":312.5,\"duration_ms\":2210.25,\"pid\":4242,\"tid\":4243,\"comm\":\"python3\","
	"\"exe\":\"/usr/bin/python3.11\",\"cgroup\":\"/kubepods/burstable/pod1234/abcdef\","
	"\"container_id\":\"abcdef0123456789\",\"pod_uid\":\"1234-5678\",\"host\":\"api.openai.com\","
	"\"method\":\"POST\",\"path\":\"/v1/chat/completions\",\"http\":\"2\",\"status\":200,"
	"\"provider\":\"openai\",\"api\":\"chat.completions\",\"model\":\"gpt-4o-mini-2024-07-18\","
	"\"request_model\":\"gpt-4o-mini\",\"stream\":true,\"max_tokens\":1024,"
	"\"input_tokens\":1149,\"output_tokens\":353,\"cache_read_tokens\":1024,"
	"\"cache_write_tokens\":null,\"reasoning_tokens\":0,\"usage_source\":\"provider\","
	"\"task\":\"task-%d\",\"tenant\":\"tenant-%d\",\"feature\":\"feature-%d\","
	"\"prompt_hash\":\"0123456789abcdef0123456789abcdef\","
	"\"prefix_hash\":\"fedcba9876543210fedcba9876543210\",\"request_bytes\":5120,"
	"\"response_bytes\":20480,\"error\":null,\"blocked\":false,\"side\":\"client\"}\n";

struct body {
	char *p;
	size_t len;
	size_t id_at[10000];  /* offset of each record's id */
	int n;
};

static void body_build(struct body *b, int n)
{
	size_t cap = (size_t)n * 1100, len = 0;

	b->p = malloc(cap);
	b->n = n;
	for (int i = 0; i < n; i++) {
		int w = snprintf(b->p + len, cap - len, record_fmt, 0ULL, i % 50, i % 7, i % 12);

		b->id_at[i] = len + 7;  /* {"id":" */
		len += (size_t)w;
	}
	b->len = len;
}

/* Give every record of the body a new id: counter in the low 64 bits. */
static void body_renumber(struct body *b, uint64_t hi, uint64_t *next)
{
	char hex[33];

	for (int i = 0; i < b->n; i++) {
		snprintf(hex, sizeof(hex), "%016llx%016llx", (unsigned long long)hi,
			 (unsigned long long)(*next)++);
		memcpy(b->p + b->id_at[i], hex, 32);
	}
}

static size_t sink(char *p, size_t s, size_t n, void *arg)
{
	return s * n;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct sender {
	int batch, posts;
	uint64_t hi;
	double *lat;
	int failed;
	pthread_t th;
};

static void *send_main(void *arg)
{
	struct sender *s = arg;
	struct body b;
	uint64_t next = 0;
	char url[64];
	CURL *c = curl_easy_init();
	struct curl_slist *h = curl_slist_append(NULL, "Expect:");

	body_build(&b, s->batch);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/records", port);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
	for (int i = 0; i < s->posts; i++) {
		long code = 0;
		double t0;

		body_renumber(&b, s->hi, &next);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, b.p);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)b.len);
		t0 = now_s();
		if (curl_easy_perform(c) != CURLE_OK ||
		    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code) || code != 200)
			s->failed++;
		s->lat[i] = now_s() - t0;
	}
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	free(b.p);
	return NULL;
}

/* Run `senders` threads of `posts` POSTs of `batch` records; print the figures. */
static void run(const char *name, int senders, int posts, int batch, uint64_t hi)
{
	struct sender *s = calloc((size_t)senders, sizeof(*s));
	double *all = malloc(sizeof(double) * (size_t)senders * (size_t)posts), t0, el;
	int n = 0, failed = 0;

	t0 = now_s();
	for (int i = 0; i < senders; i++) {
		s[i].batch = batch;
		s[i].posts = posts;
		s[i].hi = hi + (uint64_t)i;
		s[i].lat = malloc(sizeof(double) * (size_t)posts);
		pthread_create(&s[i].th, NULL, send_main, &s[i]);
	}
	for (int i = 0; i < senders; i++) {
		pthread_join(s[i].th, NULL);
		memcpy(all + n, s[i].lat, sizeof(double) * (size_t)posts);
		n += posts;
		failed += s[i].failed;
		free(s[i].lat);
	}
	el = now_s() - t0;
	qsort(all, (size_t)n, sizeof(double), cmp_double);
	printf("%-34s %9.0f records/s  %8d records in %6.2f s  "
	       "POST latency p50 %7.2f ms  p99 %7.2f ms%s\n",
	       name, (double)senders * posts * batch / el, senders * posts * batch, el,
	       all[n / 2] * 1e3, all[(int)(n * 0.99)] * 1e3, failed ? "  FAILED POSTS" : "");
	if (failed)
		fprintf(stderr, "bench_ingest: %d POSTs failed\n", failed);
	free(all);
	free(s);
}

static long status_kb(const char *key)
{
	char path[64], line[256];
	FILE *f;
	long v = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)daemon_pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, strlen(key)) == 0)
			v = strtol(line + strlen(key) + 1, NULL, 10);
	fclose(f);
	return v;
}

static int start_daemon(const char *self)
{
	char exe[PATH_MAX], db[128], line[512], *slash;
	const char *sync = getenv("BENCH_SYNC") ? getenv("BENCH_SYNC") : "full";
	int pipefd[2];
	FILE *f;

	if (getenv("TOKENTAPD")) {
		snprintf(exe, sizeof(exe), "%s", getenv("TOKENTAPD"));
	} else {
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

		if (n <= 0)
			snprintf(exe, sizeof(exe), "%s", self);
		else
			exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (slash)
			*slash = '\0';
		slash = strrchr(exe, '/');  /* build/bench -> build */
		if (slash)
			*slash = '\0';
		strncat(exe, "/tokentapd", sizeof(exe) - strlen(exe) - 1);
	}
	if (!mkdtemp(tmpdir) || pipe(pipefd))
		return -1;
	snprintf(db, sizeof(db), "%s/bench.db", tmpdir);
	daemon_pid = fork();
	if (daemon_pid == 0) {
		/* The daemon goes with this process, however it ends. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		dup2(pipefd[1], 1);
		close(pipefd[0]);
		execl(exe, exe, "--listen", "http://127.0.0.1:0", "--db", db, "--sync", sync,
		      (char *)NULL);
		fprintf(stderr, "bench_ingest: cannot run %s: %s\n", exe, strerror(errno));
		_exit(127);
	}
	close(pipefd[1]);
	f = fdopen(pipefd[0], "r");
	while (f && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "tokentapd: listening on http://127.0.0.1:%d", &port) == 1)
			continue;
		if (strncmp(line, "tokentapd: ready", 16) == 0)
			break;
	}
	printf("tokentapd: %s, database %s, --sync %s\n", exe, db, sync);
	return port > 0 ? 0 : -1;
}

/* A positive number from the environment, dflt when unset, -1 when malformed. */
static long env_num(const char *name, long dflt)
{
	const char *v = getenv(name);
	char *end;
	long n;

	if (!v || !*v)
		return dflt;
	errno = 0;
	n = strtol(v, &end, 10);
	return errno || *end || n <= 0 || n > 1000000000L ? -1 : n;
}

int main(int argc, char **argv)
{
	long records = env_num("BENCH_RECORDS", 1000000);
	int batch = (int)env_num("BENCH_BATCH", 1000);
	int senders = (int)env_num("BENCH_SENDERS", 2);
	char db[160], cmd[256];
	struct stat st;
	int rc = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (batch < 1 || batch > 10000 || senders < 1 || senders > 64 || records < batch) {
		fprintf(stderr, "bench_ingest: bad BENCH_RECORDS / BENCH_BATCH / BENCH_SENDERS\n");
		return 2;
	}
	curl_global_init(CURL_GLOBAL_ALL);
	if (start_daemon(argv[0])) {
		fprintf(stderr, "bench_ingest: tokentapd did not start\n");
		rc = 1;
		goto out;
	}
	{
		char name[64];

		snprintf(name, sizeof(name), "batched (%d/POST, %d senders)", batch, senders);
		run(name, senders, (int)(records / batch / senders), batch, 1);
	}
	printf("%-34s VmRSS %ld MiB, VmHWM %ld MiB after %ld records\n", "daemon memory",
	       status_kb("VmRSS:") / 1024, status_kb("VmHWM:") / 1024, records);
	run("single-record, 1 sender", 1, 2000, 1, 1000);
	run("single-record, 8 senders", 8, 250, 1, 2000);
out:
	if (daemon_pid > 0) {
		kill(daemon_pid, SIGTERM);
		waitpid(daemon_pid, NULL, 0);
	}
	/* After a clean stop the WAL is checkpointed into the database file. */
	snprintf(db, sizeof(db), "%s/bench.db", tmpdir);
	if (rc == 0 && stat(db, &st) == 0)
		printf("%-34s %.0f MiB (%.0f bytes per record)\n", "database size",
		       (double)st.st_size / (1 << 20), (double)st.st_size / (double)(records + 4000));
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (strncmp(tmpdir, "/tmp/tt-bench-ingest-", 21) == 0 && system(cmd) != 0)
		rc = rc ? rc : 1;
	curl_global_cleanup();
	return rc;
}
