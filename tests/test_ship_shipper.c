/*
 * test_ship_shipper.c - the shipper against a real HTTP collector stand-in
 * (a thread in this test serving POST /v1/records over a Unix socket or
 * TCP on 127.0.0.1), a real out file and a real spool folder.
 *
 * Each record gets a fresh random id; a test passes when every id it
 * submitted arrived exactly once where it should, counted from what the
 * stand-in received or the files hold, never from the shipper's word.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <cJSON.h>

#include "tokentap/error.h"
#include "tokentap/record.h"
#include "ship/ship.h"
#include "ship/spool.h"

/* ---- the collector stand-in ---- */

struct server {
	int fd;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int status;        /* what to answer */
	int hold;          /* 1: wait before answering */
	int requests;
	char *bodies;      /* every body received, concatenated */
	size_t len, cap;
	int stop;
	char sock_path[256];
	int port;
};

static int read_request(int c, struct server *s)
{
	char head[8192];
	size_t got = 0;
	char *end = NULL;

	while (!end) {
		if (got == sizeof(head) - 1)
			return -1;
		ssize_t n = read(c, head + got, sizeof(head) - 1 - got);
		if (n <= 0)
			return -1;
		got += (size_t)n;
		head[got] = '\0';
		end = strstr(head, "\r\n\r\n");
	}
	size_t hlen = (size_t)(end + 4 - head);
	long clen = 0;
	for (char *p = head; p < end; p = strstr(p, "\r\n") + 2)
		if (strncasecmp(p, "Content-Length:", 15) == 0)
			clen = strtol(p + 15, NULL, 10);
	assert_true(clen >= 0 && clen < (16 << 20));
	assert_true(strncmp(head, "POST /v1/records ", 17) == 0);
	char *body = malloc((size_t)clen + 1);
	size_t have = got - hlen;
	memcpy(body, head + hlen, have);
	while (have < (size_t)clen) {
		ssize_t n = read(c, body + have, (size_t)clen - have);
		if (n <= 0) {
			free(body);
			return -1;
		}
		have += (size_t)n;
	}
	pthread_mutex_lock(&s->mu);
	s->requests++;
	pthread_cond_broadcast(&s->cv);
	while (s->hold && !s->stop)
		pthread_cond_wait(&s->cv, &s->mu);
	int status = s->status;
	if (status == 200) {
		if (s->len + (size_t)clen + 1 > s->cap) {
			s->cap = (s->len + (size_t)clen + 1) * 2;
			s->bodies = realloc(s->bodies, s->cap);
		}
		memcpy(s->bodies + s->len, body, (size_t)clen);
		s->len += (size_t)clen;
		s->bodies[s->len] = '\0';
	}
	pthread_mutex_unlock(&s->mu);
	free(body);

	char resp[256];
	int n = snprintf(resp, sizeof(resp),
			 "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
			 "Content-Length: 2\r\n\r\n{}", status);
	return write(c, resp, (size_t)n) == n ? 0 : -1;
}

static void *serve(void *arg)
{
	struct server *s = arg;
	for (;;) {
		int c = accept(s->fd, NULL, NULL);
		if (c < 0)
			return NULL;
		while (read_request(c, s) == 0)
			;
		close(c);
	}
}

static struct server *server_start(const char *dir, int tcp, int status)
{
	struct server *s = calloc(1, sizeof(*s));
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	s->status = status;
	if (tcp) {
		struct sockaddr_in a = { .sin_family = AF_INET };
		socklen_t al = sizeof(a);
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		s->fd = socket(AF_INET, SOCK_STREAM, 0);
		assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
		getsockname(s->fd, (struct sockaddr *)&a, &al);
		s->port = ntohs(a.sin_port);
	} else {
		struct sockaddr_un a = { .sun_family = AF_UNIX };
		snprintf(s->sock_path, sizeof(s->sock_path), "%s/c.sock", dir);
		assert_true(strlen(s->sock_path) < sizeof(a.sun_path));
		memcpy(a.sun_path, s->sock_path, strlen(s->sock_path) + 1);
		s->fd = socket(AF_UNIX, SOCK_STREAM, 0);
		unlink(s->sock_path);
		assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	}
	assert_int_equal(listen(s->fd, 16), 0);
	pthread_create(&s->th, NULL, serve, s);
	return s;
}

static void server_stop(struct server *s)
{
	pthread_mutex_lock(&s->mu);
	s->stop = 1;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	/* accept() fails once the socket is shut down; every shipper (and
	 * so every keep-alive connection) is gone by now. */
	shutdown(s->fd, SHUT_RDWR);
	pthread_join(s->th, NULL);
	close(s->fd);
	if (s->sock_path[0])
		unlink(s->sock_path);
	free(s->bodies);
	free(s);
}

/* ---- helpers ---- */

static char tmpdir[256];

static void make_record(tt_record *r, int i)
{
	tt_record_init(r);
	tt_record_new_id(r);
	TT_RECORD_SET(r, source, "preload", (size_t)-1);
	TT_RECORD_SET(r, provider, "openai", (size_t)-1);
	r->input_tokens = i;
	r->output_tokens = 2 * i;
}

/* The ids of every record in JSON Lines text, parsed once; fails the test
 * on a line that is not one JSON object with an id. */
struct idset {
	char (*ids)[33];
	size_t n;
};

static struct idset parse_ids(const char *text)
{
	struct idset set = { NULL, 0 };
	size_t cap = 0;
	const char *p = text;
	while (p && *p) {
		const char *eol = strchr(p, '\n');
		assert_non_null(eol); /* every record ends with a newline */
		cJSON *j = cJSON_ParseWithLength(p, (size_t)(eol - p));
		assert_non_null(j);
		cJSON *jid = cJSON_GetObjectItemCaseSensitive(j, "id");
		assert_true(cJSON_IsString(jid));
		assert_int_equal(strlen(jid->valuestring), 32);
		if (set.n == cap) {
			cap = cap ? cap * 2 : 64;
			set.ids = realloc(set.ids, cap * sizeof(*set.ids));
		}
		memcpy(set.ids[set.n++], jid->valuestring, 33);
		cJSON_Delete(j);
		p = eol + 1;
	}
	return set;
}

static int count_in(const struct idset *set, const char *id)
{
	int n = 0;
	for (size_t i = 0; i < set->n; i++)
		n += strcmp(set->ids[i], id) == 0;
	return n;
}

/* How often id occurs as a record id in JSON Lines text. */
static int count_id(const char *text, const char *id)
{
	struct idset set = parse_ids(text);
	int n = count_in(&set, id);
	free(set.ids);
	return n;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *b = malloc((size_t)n + 1);
	size_t r = fread(b, 1, (size_t)n, f);
	b[r] = '\0';
	fclose(f);
	return b;
}

/* Every spool file's text, concatenated. */
static char *spool_text(const char *dir, int *files)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char *all = calloc(1, 1);
	size_t len = 0;
	*files = 0;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char p[600];
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		char *t = slurp(p);
		size_t n = strlen(t);
		all = realloc(all, len + n + 1);
		memcpy(all + len, t, n + 1);
		len += n;
		free(t);
		(*files)++;
	}
	if (d)
		closedir(d);
	return all;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static int setup(void **state)
{
	(void)state;
	/* the stand-in answers a shipper that already hung up */
	signal(SIGPIPE, SIG_IGN);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/tt-ship-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- tests ---- */

static void test_out_file(void **state)
{
	char out[300];
	tt_record recs[50];
	(void)state;
	snprintf(out, sizeof(out), "%s/out.jsonl", tmpdir);
	tt_ship_config cfg = { .collector = "off", .out_path = out };
	tt_shipper *s = tt_shipper_new(&cfg);
	assert_non_null(s);
	for (int i = 0; i < 50; i++) {
		make_record(&recs[i], i);
		assert_int_equal(tt_shipper_submit(s, &recs[i]), 0);
	}
	assert_int_equal(tt_shipper_flush(s, 5000), 0);
	char *text = slurp(out);
	assert_non_null(text);
	for (int i = 0; i < 50; i++)
		assert_int_equal(count_id(text, recs[i].id), 1);
	free(text);
	uint64_t sent, spooled, dropped;
	tt_shipper_stats(s, &sent, &spooled, &dropped);
	assert_int_equal(sent + spooled + dropped, 0);
	tt_shipper_free(s);
}

/* Submit n records to a shipper with only an out file and flush. */
static void ship_to_out(const char *out, int n)
{
	tt_record rec;
	tt_ship_config cfg = { .collector = "off", .out_path = out };
	tt_shipper *s = tt_shipper_new(&cfg);
	assert_non_null(s);
	for (int i = 0; i < n; i++) {
		make_record(&rec, i);
		assert_int_equal(tt_shipper_submit(s, &rec), 0);
	}
	assert_int_equal(tt_shipper_flush(s, 2000), 0);
	tt_shipper_free(s);
}

static off_t size_of(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

/* TOKENTAP_OUT at a FIFO nobody reads: open(2) used to wait for a reader
 * for ever, inside the host program.  Now refused at once. */
static void test_out_fifo(void **state)
{
	char out[300];
	(void)state;
	snprintf(out, sizeof(out), "%s/fifo", tmpdir);
	assert_int_equal(mkfifo(out, 0666), 0);
	alarm(10); /* a hang fails the test */
	ship_to_out(out, 3);
	alarm(0);
}

/* TOKENTAP_OUT at a symlink (planted in a shared folder, pointing at a
 * file the victim may write): not followed. */
static void test_out_symlink(void **state)
{
	char out[300], target[300];
	(void)state;
	snprintf(target, sizeof(target), "%s/target", tmpdir);
	snprintf(out, sizeof(out), "%s/link", tmpdir);
	close(open(target, O_WRONLY | O_CREAT, 0600));
	assert_int_equal(symlink(target, out), 0);
	ship_to_out(out, 3);
	assert_int_equal(size_of(target), 0);
}

/* Another user's file, or a hard link, in a folder others may write to:
 * they put it there.  Refused; our own file there is used. */
static void test_out_shared_folder(void **state)
{
	char dir[300], out[400], other[300];
	(void)state;
	snprintf(dir, sizeof(dir), "%s/shared", tmpdir);
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(chmod(dir, 01777), 0);

	snprintf(out, sizeof(out), "%s/mine.jsonl", dir);
	ship_to_out(out, 2);
	assert_true(size_of(out) > 0);

	snprintf(other, sizeof(other), "%s/elsewhere", tmpdir);
	close(open(other, O_WRONLY | O_CREAT, 0600));
	snprintf(out, sizeof(out), "%s/hardlink.jsonl", dir);
	assert_int_equal(link(other, out), 0);
	ship_to_out(out, 2);
	assert_int_equal(size_of(other), 0);

	if (geteuid() != 0)
		return; /* a file of another user needs root to make */
	snprintf(out, sizeof(out), "%s/theirs.jsonl", dir);
	close(open(out, O_WRONLY | O_CREAT, 0666));
	assert_int_equal(chown(out, 65534, 65534), 0);
	ship_to_out(out, 2);
	assert_int_equal(size_of(out), 0);
}

enum { THREADS = 8, PER = 60 };
static tt_record many[THREADS * PER];

struct producer {
	tt_shipper *s;
	int base;
};

static void *produce(void *arg)
{
	struct producer *p = arg;
	for (int i = 0; i < PER; i++)
		assert_int_equal(tt_shipper_submit(p->s, &many[p->base + i]), 0);
	return NULL;
}

static void deliver_many(int tcp)
{
	char coll[300], spool[300];
	struct server *srv = server_start(tmpdir, tcp, 200);
	if (tcp)
		snprintf(coll, sizeof(coll), "http://127.0.0.1:%d", srv->port);
	else
		snprintf(coll, sizeof(coll), "unix:%s", srv->sock_path);
	snprintf(spool, sizeof(spool), "%s/spool", tmpdir);
	tt_ship_config cfg = { .collector = coll, .spool_dir = spool };
	tt_shipper *s = tt_shipper_new(&cfg);
	assert_non_null(s);

	/* Several producer threads at once. */
	pthread_t th[THREADS];
	struct producer args[THREADS];
	for (int i = 0; i < THREADS * PER; i++)
		make_record(&many[i], i);
	for (int t = 0; t < THREADS; t++) {
		args[t].s = s;
		args[t].base = t * PER;
		assert_int_equal(pthread_create(&th[t], NULL, produce, &args[t]), 0);
	}
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	assert_int_equal(tt_shipper_flush(s, 10000), 0);
	uint64_t sent, spooled, dropped;
	tt_shipper_stats(s, &sent, &spooled, &dropped);
	assert_int_equal(sent, THREADS * PER);
	assert_int_equal(spooled, 0);
	assert_int_equal(dropped, 0);
	tt_shipper_free(s);
	pthread_mutex_lock(&srv->mu);
	assert_true(srv->requests >= 2); /* 480 records: more than one batch */
	struct idset got = parse_ids(srv->bodies);
	assert_int_equal(got.n, THREADS * PER);
	for (int i = 0; i < THREADS * PER; i++)
		assert_int_equal(count_in(&got, many[i].id), 1);
	free(got.ids);
	pthread_mutex_unlock(&srv->mu);
	server_stop(srv);
}

static void test_collector_unix(void **state)
{
	(void)state;
	deliver_many(0);
}

static void test_collector_http(void **state)
{
	(void)state;
	deliver_many(1);
}

/* Collector down: records go to the spool; a later shipper (another
 * process, in real life) delivers them once the collector is back, and
 * removes the files. */
static void test_spool_then_deliver(void **state)
{
	enum { N = 20 };
	tt_record recs[N];
	char coll[300], spool[300];
	int files;
	(void)state;
	snprintf(coll, sizeof(coll), "unix:%s/c.sock", tmpdir);
	snprintf(spool, sizeof(spool), "%s/spool", tmpdir);
	tt_ship_config cfg = { .collector = coll, .spool_dir = spool };

	tt_shipper *s = tt_shipper_new(&cfg);
	assert_non_null(s);
	for (int i = 0; i < N; i++) {
		make_record(&recs[i], i);
		assert_int_equal(tt_shipper_submit(s, &recs[i]), 0);
		if (i == N / 2)
			sleep_ms(50); /* a second batch, while known down */
	}
	assert_int_equal(tt_shipper_flush(s, 5000), 0);
	uint64_t sent, spooled, dropped;
	tt_shipper_stats(s, &sent, &spooled, &dropped);
	assert_int_equal(sent, 0);
	assert_int_equal(spooled, N);
	assert_int_equal(dropped, 0);
	tt_shipper_free(s);

	char *text = spool_text(spool, &files);
	assert_true(files >= 1);
	for (int i = 0; i < N; i++)
		assert_int_equal(count_id(text, recs[i].id), 1);
	free(text);

	struct server *srv = server_start(tmpdir, 0, 200);
	s = tt_shipper_new(&cfg);
	assert_non_null(s);
	for (int tries = 0; tries < 100 && tt_spool_bytes(spool) > 0; tries++)
		sleep_ms(50);
	assert_int_equal(tt_spool_bytes(spool), 0);
	tt_shipper_stats(s, &sent, NULL, NULL);
	assert_int_equal(sent, N);
	tt_shipper_free(s);
	pthread_mutex_lock(&srv->mu);
	for (int i = 0; i < N; i++)
		assert_int_equal(count_id(srv->bodies, recs[i].id), 1);
	pthread_mutex_unlock(&srv->mu);
	server_stop(srv);
	text = spool_text(spool, &files);
	assert_int_equal(files, 0);
	free(text);
}

/* A full queue drops (and counts) instead of blocking the producer. */
static void test_queue_full(void **state)
{
	tt_record recs[5];
	char coll[300], spool[300];
	(void)state;
	struct server *srv = server_start(tmpdir, 0, 200);
	srv->hold = 1;
	snprintf(coll, sizeof(coll), "unix:%s", srv->sock_path);
	snprintf(spool, sizeof(spool), "%s/spool", tmpdir);
	tt_ship_config cfg = { .collector = coll, .spool_dir = spool,
			       .queue_max = 2 };
	tt_shipper *s = tt_shipper_new(&cfg);
	for (int i = 0; i < 5; i++)
		make_record(&recs[i], i);
	assert_int_equal(tt_shipper_submit(s, &recs[0]), 0);
	/* Wait until the thread is stuck in its POST of record 0. */
	pthread_mutex_lock(&srv->mu);
	while (srv->requests == 0)
		pthread_cond_wait(&srv->cv, &srv->mu);
	pthread_mutex_unlock(&srv->mu);
	assert_int_equal(tt_shipper_submit(s, &recs[1]), 0);
	assert_int_equal(tt_shipper_submit(s, &recs[2]), 0);
	assert_int_equal(tt_shipper_submit(s, &recs[3]), TT_ETRUNCATED);
	assert_int_equal(tt_shipper_submit(s, &recs[4]), TT_ETRUNCATED);
	pthread_mutex_lock(&srv->mu);
	srv->hold = 0;
	pthread_cond_broadcast(&srv->cv);
	pthread_mutex_unlock(&srv->mu);
	assert_int_equal(tt_shipper_flush(s, 5000), 0);
	uint64_t sent, dropped;
	tt_shipper_stats(s, &sent, NULL, &dropped);
	assert_int_equal(sent, 3);
	assert_int_equal(dropped, 2);
	tt_shipper_free(s);
	pthread_mutex_lock(&srv->mu);
	for (int i = 0; i < 3; i++)
		assert_int_equal(count_id(srv->bodies, recs[i].id), 1);
	assert_int_equal(count_id(srv->bodies, recs[3].id), 0);
	pthread_mutex_unlock(&srv->mu);
	server_stop(srv);
}

/* A collector that refuses the records (4xx) does not make them loop
 * through the spool forever. */
static void test_refused(void **state)
{
	tt_record rec;
	char coll[300], spool[300];
	int files;
	(void)state;
	struct server *srv = server_start(tmpdir, 0, 400);
	snprintf(coll, sizeof(coll), "unix:%s", srv->sock_path);
	snprintf(spool, sizeof(spool), "%s/spool", tmpdir);
	tt_ship_config cfg = { .collector = coll, .spool_dir = spool };
	tt_shipper *s = tt_shipper_new(&cfg);
	make_record(&rec, 1);
	assert_int_equal(tt_shipper_submit(s, &rec), 0);
	assert_int_equal(tt_shipper_flush(s, 5000), 0);
	uint64_t sent, spooled, dropped;
	tt_shipper_stats(s, &sent, &spooled, &dropped);
	assert_int_equal(sent, 0);
	assert_int_equal(spooled, 0);
	assert_int_equal(dropped, 1);
	tt_shipper_free(s);
	free(spool_text(spool, &files));
	assert_int_equal(files, 0);
	pthread_mutex_lock(&srv->mu);
	assert_int_equal(srv->requests, 1);
	pthread_mutex_unlock(&srv->mu);
	server_stop(srv);
}

/* A collector string we cannot use is not fatal: the records wait in the
 * spool for a process that can deliver them. */
static void test_bad_collector(void **state)
{
	tt_record rec;
	char spool[300];
	int files;
	(void)state;
	snprintf(spool, sizeof(spool), "%s/spool", tmpdir);
	tt_ship_config cfg = { .collector = "ftp://nowhere", .spool_dir = spool };
	tt_shipper *s = tt_shipper_new(&cfg);
	assert_non_null(s);
	make_record(&rec, 1);
	assert_int_equal(tt_shipper_submit(s, &rec), 0);
	assert_int_equal(tt_shipper_flush(s, 5000), 0);
	uint64_t spooled;
	tt_shipper_stats(s, NULL, &spooled, NULL);
	assert_int_equal(spooled, 1);
	tt_shipper_free(s);
	char *text = spool_text(spool, &files);
	assert_int_equal(count_id(text, rec.id), 1);
	free(text);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * A collector that accepts and reads but never answers.  N records: the
 * first batch is in flight, the rest queued behind it.  Closing takes the
 * time allowed plus at most the grace, and every record is in the spool
 * once (or, with no usable spool, counted dropped).
 */
enum { SILENT_N = 8 };

static tt_shipper *silent_shipper(struct server **srv, const char *spool,
				  tt_record recs[SILENT_N])
{
	char coll[300];
	*srv = server_start(tmpdir, 1, 200);
	(*srv)->hold = 1;
	snprintf(coll, sizeof(coll), "http://127.0.0.1:%d", (*srv)->port);
	tt_ship_config cfg = { .collector = coll, .spool_dir = spool };
	tt_shipper *s = tt_shipper_new(&cfg);
	assert_non_null(s);
	make_record(&recs[0], 0);
	assert_int_equal(tt_shipper_submit(s, &recs[0]), 0);
	pthread_mutex_lock(&(*srv)->mu);
	while ((*srv)->requests == 0)
		pthread_cond_wait(&(*srv)->cv, &(*srv)->mu);
	pthread_mutex_unlock(&(*srv)->mu);
	for (int i = 1; i < SILENT_N; i++) {
		make_record(&recs[i], i);
		assert_int_equal(tt_shipper_submit(s, &recs[i]), 0);
	}
	return s;
}

static void check_spooled(const char *spool, tt_record recs[SILENT_N])
{
	int files;
	char *text = spool_text(spool, &files);
	for (int i = 0; i < SILENT_N; i++)
		assert_int_equal(count_id(text, recs[i].id), 1);
	free(text);
}

static void test_close_silent_collector(void **state)
{
	tt_record recs[SILENT_N];
	struct server *srv;
	char spool[300];
	uint64_t sent = 9, spooled = 9, dropped = 9;
	(void)state;
	snprintf(spool, sizeof(spool), "%s/spool", tmpdir);
	tt_shipper *s = silent_shipper(&srv, spool, recs);
	int64_t t0 = now_ms();
	assert_int_equal(tt_shipper_close(s, 300, &sent, &spooled, &dropped), 0);
	int64_t took = now_ms() - t0;
	printf("close with a silent collector: %lld ms (allowed 300 + %d)\n",
	       (long long)took, TT_SHIP_CLOSE_GRACE_MS);
	assert_true(took >= 290 && took <= 300 + TT_SHIP_CLOSE_GRACE_MS);
	assert_int_equal(sent, 0);
	assert_int_equal(spooled, SILENT_N);
	assert_int_equal(dropped, 0);
	check_spooled(spool, recs);
	server_stop(srv);
}

/* tt_shipper_free: its 2 s, and the records spooled, not left behind. */
static void test_free_silent_collector(void **state)
{
	tt_record recs[SILENT_N];
	struct server *srv;
	char spool[300];
	(void)state;
	snprintf(spool, sizeof(spool), "%s/spool", tmpdir);
	tt_shipper *s = silent_shipper(&srv, spool, recs);
	int64_t t0 = now_ms();
	tt_shipper_free(s);
	int64_t took = now_ms() - t0;
	assert_true(took <= 2000 + TT_SHIP_CLOSE_GRACE_MS);
	check_spooled(spool, recs);
	server_stop(srv);
}

/* No usable spool (others may write to it and it is not sticky): the
 * records are counted dropped, and the close is as bounded. */
static void test_close_silent_no_spool(void **state)
{
	tt_record recs[SILENT_N];
	struct server *srv;
	char spool[300];
	uint64_t sent, spooled, dropped;
	(void)state;
	snprintf(spool, sizeof(spool), "%s/open", tmpdir);
	assert_int_equal(mkdir(spool, 0700), 0);
	assert_int_equal(chmod(spool, 0777), 0);
	tt_shipper *s = silent_shipper(&srv, spool, recs);
	int64_t t0 = now_ms();
	assert_int_equal(tt_shipper_close(s, 100, &sent, &spooled, &dropped), 0);
	assert_true(now_ms() - t0 <= 100 + TT_SHIP_CLOSE_GRACE_MS);
	assert_int_equal(spooled, 0);
	assert_int_equal(dropped, SILENT_N);
	server_stop(srv);
}

static void test_null(void **state)
{
	uint64_t a = 1, b = 1, c = 1;
	tt_record rec;
	(void)state;
	tt_shipper_free(NULL);
	tt_shipper_stats(NULL, &a, &b, &c);
	assert_int_equal(a + b + c, 0);
	make_record(&rec, 0);
	assert_int_equal(tt_shipper_submit(NULL, &rec), TT_EINVAL);
	assert_int_equal(tt_shipper_flush(NULL, 10), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_out_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_out_fifo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_out_symlink, setup, teardown),
		cmocka_unit_test_setup_teardown(test_out_shared_folder, setup, teardown),
		cmocka_unit_test_setup_teardown(test_collector_unix, setup, teardown),
		cmocka_unit_test_setup_teardown(test_collector_http, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spool_then_deliver, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_collector, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_silent_collector, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_silent_collector, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_silent_no_spool, setup, teardown),
		cmocka_unit_test(test_null),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
