/*
 * bench_paced - paced LLM streams at a fixed call rate over real TLS
 * sockets, for the paced stage of bench/bench_probe.sh: thousands of
 * streams open at once, each a few seconds long, as a provider sends them.
 * One C process for each end, each single-threaded (OpenSSL, epoll,
 * non-blocking sockets); the Python mock cannot hold this rate.
 *
 *   bench_paced server --port P --cert C --key K --events N --stream-ms D
 *                      [--prompt-tokens T] [--ready-file F] [--max-seconds S]
 *       TLS on 127.0.0.1, HTTP/1.1 keep-alive.  Each request (a head and
 *       its Content-Length body) is answered 200, text/event-stream,
 *       chunked: N OpenAI chat-completion chunks spaced evenly over D ms
 *       (chunk k at k*D/N ms; one timer per stream in a heap), then a usage
 *       chunk in the include_usage form (prompt T, completion N), then
 *       "data: [DONE]", then the chunked terminator: one HTTP chunk and one
 *       SSL_write per event.  Prints {"port":N} (to F, or stdout); at
 *       SIGINT or SIGTERM prints one JSON line of counters and exits 0.
 *
 *   bench_paced client --port P [--ca CA] --rate R --secs S [--events N]
 *                      [--max-conns M] [--drain-ms MS] [--warm W]
 *                      [--done-file F] [--hold-file H] [--watch NAME=PID]...
 *       Opens W keep-alive connections first (their handshakes done),
 *       creates H and waits until it is removed (to start a probe on this
 *       process in between), then starts R calls a second for S seconds on the event loop's clock
 *       (call k is due at k/R s), each on an idle connection or a new one
 *       (at most M open; a call waits for one then).  Call k carries the
 *       header "X-Tokentap-Task: paced-k", so its record can be found.  A
 *       call is completed when its response was 200, chunked, carried the
 *       usage chunk (completion_tokens N and N content chunks when --events
 *       is given), "data: [DONE]" and the terminator; F gets the k of each
 *       completed call, a line each.  Waits up to MS (default 15000) after
 *       the last start for calls in flight, then prints one JSON line: calls
 *       scheduled, started, completed, errors, unfinished, the lateness of
 *       starts against the schedule, stream durations, the connections
 *       opened, its CPU seconds, and, over the same window (first call due
 *       to last call over), the machine's idle CPU (/proc/stat, every CPU)
 *       and the CPU seconds of each watched process (cpu_NAME_s).
 *
 * Writes that meet SSL_ERROR_WANT_WRITE stay in a per-connection buffer
 * (bounded; SSL_MODE_ENABLE_PARTIAL_WRITE and
 * SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER) sent when the socket drains.
 * RLIMIT_NOFILE is raised as far as the process may.
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define OUT_LIMIT (256u << 10) /* bytes waiting for a slow peer, then drop it */
#define IN_LIMIT  (16u << 10)  /* a request, or a response's head or line */
#define EV_LIMIT  4096u        /* one SSE event */
#define MAX_EVENTS 1024
#define LATE_BUCKETS 600001    /* 0.1 ms buckets up to 60 s */

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("bench_paced: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	ERR_print_errors_fp(stderr);
	exit(1);
}

static long num(const char *name, const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = s ? strtol(s, &end, 10) : 0;
	if (!s || errno || end == s || *end || v < min || v > max) {
		fprintf(stderr, "bench_paced: bad %s '%s'\n", name, s ? s : "");
		exit(2);
	}
	return v;
}

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* As many descriptors as the process may have (root: up to nr_open). */
static void raise_nofile(rlim_t want)
{
	struct rlimit rl;
	FILE *f;
	unsigned long nr_open = 0;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	f = fopen("/proc/sys/fs/nr_open", "r");
	if (f) {
		if (fscanf(f, "%lu", &nr_open) != 1)
			nr_open = 0;
		fclose(f);
	}
	if (nr_open && want > nr_open)
		want = nr_open;
	if (rl.rlim_max < want) {
		struct rlimit up = {want, want};

		if (setrlimit(RLIMIT_NOFILE, &up) == 0)
			return;
	}
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
}

/* Lateness histogram: 0.1 ms buckets, the last one open-ended. */
struct late {
	uint32_t *b;
	uint64_t n, max_ns;
};

static void late_init(struct late *l)
{
	l->b = calloc(LATE_BUCKETS, sizeof(*l->b));
	if (!l->b)
		die("out of memory");
	l->n = l->max_ns = 0;
}

static void late_add(struct late *l, uint64_t ns)
{
	uint64_t i = ns / 100000u;

	l->b[i < LATE_BUCKETS - 1 ? i : LATE_BUCKETS - 1]++;
	l->n++;
	if (ns > l->max_ns)
		l->max_ns = ns;
}

/* The upper edge (ms) of the 0.1 ms bucket holding quantile q. */
static double late_q(const struct late *l, double q)
{
	uint64_t want = (uint64_t)((double)l->n * q), seen = 0;
	int i;

	if (!l->n)
		return 0;
	if (want >= l->n)
		want = l->n - 1;
	for (i = 0; i < LATE_BUCKETS; i++) {
		seen += l->b[i];
		if (seen > want)
			return (i + 1) / 10.0;
	}
	return LATE_BUCKETS / 10.0;
}

/* ---- buffers ----------------------------------------------------------- */

struct buf {
	char *p;
	size_t len, cap;
};

static int buf_reserve(struct buf *b, size_t more, size_t limit)
{
	size_t cap;
	char *p;

	if (b->len + more <= b->cap)
		return 0;
	if (b->len + more > limit)
		return -1;
	cap = b->cap ? b->cap : 512;
	while (cap < b->len + more)
		cap *= 2;
	if (cap > limit)
		cap = limit;
	p = realloc(b->p, cap); /* may move: SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER */
	if (!p)
		return -1;
	b->p = p;
	b->cap = cap;
	return 0;
}

static int buf_add(struct buf *b, const void *d, size_t n, size_t limit)
{
	if (buf_reserve(b, n, limit))
		return -1;
	memcpy(b->p + b->len, d, n);
	b->len += n;
	return 0;
}

static void buf_drop(struct buf *b, size_t n)
{
	memmove(b->p, b->p + n, b->len - n);
	b->len -= n;
}

static void buf_free(struct buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

/* ---- one TLS connection, either end ------------------------------------ */

enum { P_HEAD, P_SIZE, P_DATA, P_CRLF, P_TRAILER };

struct conn {
	int fd;
	SSL *ssl;
	uint32_t mask;      /* registered with epoll */
	int want_out;       /* an operation is waiting for the socket to drain */
	int hs_done;
	int dead;
	struct buf in, out;
	/* server: the stream being sent */
	int streaming, sent;
	uint64_t t0, due;
	size_t heap_i;
	/* client: the call on it, the idle list */
	struct conn *prev, *next;
	int busy, warming;
	uint64_t t_start, call;
	int ps;             /* response parser state */
	size_t chunk_left, crlf_left;
	struct buf ev;      /* the SSE event being read */
	long content, completion;
	int saw_usage, saw_done;
};

static SSL_CTX *ctx;
static int epfd;
static size_t open_conns, open_max;
static unsigned long long ssl_calls; /* SSL_read and SSL_write, what the probe traps */

static void set_mask(struct conn *c)
{
	uint32_t m = EPOLLIN | (c->want_out ? EPOLLOUT : 0);
	struct epoll_event ev = {.events = m, .data.ptr = c};

	if (m == c->mask)
		return;
	if (epoll_ctl(epfd, c->mask ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev))
		die("epoll_ctl: %s", strerror(errno));
	c->mask = m;
}

static struct conn *conn_new(int fd, int server)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (!c)
		die("out of memory");
	c->fd = fd;
	c->heap_i = SIZE_MAX;
	c->ssl = SSL_new(ctx);
	if (!c->ssl || !SSL_set_fd(c->ssl, fd))
		die("SSL_new");
	if (server)
		SSL_set_accept_state(c->ssl);
	else
		SSL_set_connect_state(c->ssl);
	if (++open_conns > open_max)
		open_max = open_conns;
	return c;
}

static void conn_free(struct conn *c)
{
	SSL_free(c->ssl);
	close(c->fd); /* leaves epoll with it */
	buf_free(&c->in);
	buf_free(&c->out);
	buf_free(&c->ev);
	free(c);
	open_conns--;
}

/* SSL_get_error of a failed call: 0 would block (want_out set when it
 * waits for the socket to drain), -1 the connection is over. */
static int ssl_wait(struct conn *c, int r)
{
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		return 0;
	case SSL_ERROR_WANT_WRITE:
		c->want_out = 1;
		return 0;
	default:
		ERR_clear_error();
		return -1;
	}
}

static int handshake(struct conn *c)
{
	int r;

	if (c->hs_done)
		return 0;
	ERR_clear_error();
	r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		c->hs_done = 1;
		return 0;
	}
	return ssl_wait(c, r);
}

/* Send what is buffered, as far as the socket takes it. */
static int flush_out(struct conn *c)
{
	int n;

	if (!c->hs_done)
		return 0;
	while (c->out.len) {
		ERR_clear_error();
		ssl_calls++;
		n = SSL_write(c->ssl, c->out.p, c->out.len > INT_MAX ? INT_MAX : (int)c->out.len);
		if (n > 0) {
			buf_drop(&c->out, (size_t)n);
			continue;
		}
		return ssl_wait(c, n);
	}
	return 0;
}

/* ---- server ------------------------------------------------------------ */

static struct {
	long events, stream_ms, prompt;
	struct conn **heap;
	size_t heap_len, heap_cap;
	uint64_t accepted, requests, streams, aborted, errors, chunks;
	struct late late;
} srv;

static uint64_t due_at(const struct conn *c, long k)
{
	return c->t0 + (uint64_t)k * (uint64_t)srv.stream_ms * 1000000u / (uint64_t)srv.events;
}

static int heap_less(size_t a, size_t b)
{
	return srv.heap[a]->due < srv.heap[b]->due;
}

static void heap_swap(size_t a, size_t b)
{
	struct conn *t = srv.heap[a];

	srv.heap[a] = srv.heap[b];
	srv.heap[b] = t;
	srv.heap[a]->heap_i = a;
	srv.heap[b]->heap_i = b;
}

static void heap_fix(size_t i)
{
	while (i && heap_less(i, (i - 1) / 2)) {
		heap_swap(i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < srv.heap_len && heap_less(l, m))
			m = l;
		if (r < srv.heap_len && heap_less(r, m))
			m = r;
		if (m == i)
			break;
		heap_swap(i, m);
		i = m;
	}
}

static void heap_push(struct conn *c)
{
	if (srv.heap_len == srv.heap_cap) {
		srv.heap_cap = srv.heap_cap ? 2 * srv.heap_cap : 1024;
		srv.heap = realloc(srv.heap, srv.heap_cap * sizeof(*srv.heap));
		if (!srv.heap)
			die("out of memory");
	}
	srv.heap[srv.heap_len] = c;
	c->heap_i = srv.heap_len++;
	heap_fix(c->heap_i);
}

static void heap_remove(struct conn *c)
{
	size_t i = c->heap_i;

	if (i == SIZE_MAX)
		return;
	c->heap_i = SIZE_MAX;
	if (i != --srv.heap_len) {
		srv.heap[i] = srv.heap[srv.heap_len];
		srv.heap[i]->heap_i = i;
		heap_fix(i);
	}
}

static void srv_close(struct conn *c)
{
	if (c->streaming)
		srv.aborted++;
	heap_remove(c);
	conn_free(c);
}

static int chunk(struct conn *c, const char *data)
{
	char head[32];
	size_t n = strlen(data);
	int h = snprintf(head, sizeof(head), "%zx\r\n", n);

	srv.chunks++;
	if (buf_add(&c->out, head, (size_t)h, OUT_LIMIT) ||
	    buf_add(&c->out, data, n, OUT_LIMIT) ||
	    buf_add(&c->out, "\r\n", 2, OUT_LIMIT))
		return -1;
	return flush_out(c);
}

/* A whole request in c->in: start its stream. */
static int srv_request(struct conn *c)
{
	static const char head[] =
		"HTTP/1.1 200 OK\r\n"
		"Content-Type: text/event-stream\r\n"
		"Transfer-Encoding: chunked\r\n"
		"Cache-Control: no-cache\r\n"
		"Connection: keep-alive\r\n"
		"\r\n";
	char *end, *p;
	size_t head_len, body = 0;

	if (c->streaming || !c->in.len)
		return 0;
	end = memmem(c->in.p, c->in.len, "\r\n\r\n", 4);
	if (!end)
		return c->in.len >= IN_LIMIT ? -1 : 0;
	head_len = (size_t)(end - c->in.p) + 4;
	for (p = c->in.p; p < end; p++) {
		if (*p == '\n' && end - p > 16 && !strncasecmp(p + 1, "content-length:", 15)) {
			body = strtoul(p + 16, NULL, 10);
			break;
		}
	}
	if (head_len + body > IN_LIMIT)
		return -1;
	if (c->in.len < head_len + body)
		return 0;
	buf_drop(&c->in, head_len + body);
	srv.requests++;
	c->streaming = 1;
	c->sent = 0;
	c->t0 = now_ns();
	c->due = due_at(c, 1);
	heap_push(c);
	if (buf_add(&c->out, head, sizeof(head) - 1, OUT_LIMIT))
		return -1;
	return flush_out(c);
}

/* The stream's next event is due: send it (and the end after the last). */
static int srv_tick(struct conn *c)
{
	static const char content[] =
		"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\","
		"\"choices\":[{\"index\":0,\"delta\":{\"content\":\"word \"}}]}\n\n";
	char usage[256];

	if (chunk(c, content))
		return -1;
	if (++c->sent < srv.events) {
		c->due = due_at(c, c->sent + 1);
		heap_fix(c->heap_i); /* still in the heap: moves down */
		return 0;
	}
	heap_remove(c);
	snprintf(usage, sizeof(usage),
		 "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\","
		 "\"choices\":[],\"usage\":{\"prompt_tokens\":%ld,\"completion_tokens\":%ld,"
		 "\"total_tokens\":%ld}}\n\n",
		 srv.prompt, srv.events, srv.prompt + srv.events);
	if (chunk(c, usage) || chunk(c, "data: [DONE]\n\n") ||
	    buf_add(&c->out, "0\r\n\r\n", 5, OUT_LIMIT) || flush_out(c))
		return -1;
	c->streaming = 0;
	srv.streams++;
	return srv_request(c); /* one already waiting (pipelined) */
}

static void srv_drive(struct conn *c)
{
	int n;

	c->want_out = 0;
	if (handshake(c))
		goto dead;
	while (c->hs_done) {
		if (buf_reserve(&c->in, 2048, IN_LIMIT)) {
			if (!c->streaming)
				goto dead; /* a head or body over IN_LIMIT */
			break;     /* read the rest after this stream */
		}
		ERR_clear_error();
		ssl_calls++;
		n = SSL_read(c->ssl, c->in.p + c->in.len, (int)(c->in.cap - c->in.len));
		if (n > 0) {
			c->in.len += (size_t)n;
			if (!SSL_has_pending(c->ssl))
				break; /* epoll says when there is more */
			continue;
		}
		if (ssl_wait(c, n))
			goto gone;
		break;
	}
	if (srv_request(c) || flush_out(c))
		goto dead;
	set_mask(c);
	return;
dead:
	srv.errors++;
gone:
	srv_close(c);
}

static void srv_accept(int lfd)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;
		struct conn *c;

		if (fd < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			srv.errors++; /* EMFILE and the like: the client sees it */
			return;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		srv.accepted++;
		c = conn_new(fd, 1);
		srv_drive(c);
	}
}

static int server(int argc, char **argv)
{
	const char *cert = NULL, *key = NULL, *ready = NULL;
	long port = 0, max_secs = 600;
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);
	struct epoll_event evs[MAX_EVENTS], lev = {.events = EPOLLIN};
	int lfd, one = 1, i;
	uint64_t t_end;
	char line[64];

	srv.events = 40;
	srv.stream_ms = 2000;
	srv.prompt = 12;
	for (i = 0; i < argc; i += 2) { /* --option value */
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--port"))
			port = num(a, v, 0, 65535);
		else if (!strcmp(a, "--cert"))
			cert = v;
		else if (!strcmp(a, "--key"))
			key = v;
		else if (!strcmp(a, "--events"))
			srv.events = num(a, v, 1, 1000000);
		else if (!strcmp(a, "--stream-ms"))
			srv.stream_ms = num(a, v, 0, 3600000);
		else if (!strcmp(a, "--prompt-tokens"))
			srv.prompt = num(a, v, 0, 1000000);
		else if (!strcmp(a, "--ready-file"))
			ready = v;
		else if (!strcmp(a, "--max-seconds"))
			max_secs = num(a, v, 1, 86400);
		else
			die("server: unknown argument %s", a);
	}
	if (!cert || !key)
		die("server: --cert and --key are needed");

	ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
		die("server: cannot load %s / %s", cert, key);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
			 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_read_ahead(ctx, 1); /* one read(2) per socket wake-up, not two per record */
	SSL_CTX_set_num_tickets(ctx, 0);

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		die("socket: %s", strerror(errno));
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)port);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 65535) ||
	    getsockname(lfd, (struct sockaddr *)&sa, &sl))
		die("listen: %s", strerror(errno));
	epfd = epoll_create1(EPOLL_CLOEXEC);
	lev.data.ptr = NULL;
	if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev))
		die("epoll: %s", strerror(errno));
	late_init(&srv.late);

	snprintf(line, sizeof(line), "{\"port\":%u}\n", ntohs(sa.sin_port));
	if (ready) {
		char tmp[4096];
		FILE *f;

		snprintf(tmp, sizeof(tmp), "%s.tmp", ready);
		f = fopen(tmp, "w");
		if (!f || fputs(line, f) < 0 || fclose(f) || rename(tmp, ready))
			die("cannot write %s", ready);
	} else {
		fputs(line, stdout);
		fflush(stdout);
	}

	t_end = now_ns() + (uint64_t)max_secs * 1000000000u;
	while (!stop) {
		uint64_t now = now_ns();
		int timeout = 100, n;

		while (srv.heap_len && srv.heap[0]->due <= now) {
			struct conn *c = srv.heap[0];

			late_add(&srv.late, now - c->due);
			c->want_out = 0;
			if (srv_tick(c)) {
				srv.errors++;
				srv_close(c);
			} else {
				set_mask(c);
			}
		}
		if (now >= t_end)
			break;
		if (srv.heap_len) {
			uint64_t d = srv.heap[0]->due - now;

			timeout = (int)((d + 999999u) / 1000000u);
			if (timeout > 100)
				timeout = 100;
		}
		n = epoll_wait(epfd, evs, MAX_EVENTS, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait: %s", strerror(errno));
		}
		for (i = 0; i < n; i++) {
			if (!evs[i].data.ptr)
				srv_accept(lfd);
			else
				srv_drive(evs[i].data.ptr);
		}
	}
	printf("{\"accepted\":%llu,\"requests\":%llu,\"streams\":%llu,\"chunks\":%llu,"
	       "\"aborted\":%llu,\"errors\":%llu,\"open_max\":%zu,"
	       "\"tick_late_p99_ms\":%.1f,\"tick_late_max_ms\":%.1f,\"ssl_calls\":%llu,"
	       "\"cpu_s\":%.3f}\n",
	       (unsigned long long)srv.accepted, (unsigned long long)srv.requests,
	       (unsigned long long)srv.streams, (unsigned long long)srv.chunks,
	       (unsigned long long)srv.aborted, (unsigned long long)srv.errors, open_max,
	       late_q(&srv.late, 0.99), (double)srv.late.max_ns / 1e6, ssl_calls, cpu_seconds());
	fflush(stdout);
	return 0;
}

/* ---- client ------------------------------------------------------------ */

#define MAX_WATCH 8

static struct {
	struct sockaddr_in sa;
	long port, events, rate;
	uint64_t t0;
	size_t max_conns;
	const char *body;
	struct conn idle;   /* list head */
	uint64_t *queue;    /* calls waiting for a connection */
	size_t q_head, q_len, q_cap;
	uint64_t started, completed, errors, bad, opened, inflight, inflight_max;
	uint64_t connect_fail, dur_sum_ns, dur_max_ns, warming, warm_fail;
	FILE *done_f;
	struct late late;
	int n_watch;
	const char *watch_name[MAX_WATCH];
	long watch_pid[MAX_WATCH];
	double watch_s[MAX_WATCH];
} cli;

static uint64_t cli_due(uint64_t k)
{
	return cli.t0 + k * 1000000000u / (uint64_t)cli.rate;
}

/* idle+iowait and all jiffies of the machine, every CPU */
static void machine_jiffies(unsigned long long *idle, unsigned long long *total)
{
	unsigned long long v[8] = {0};
	FILE *f = fopen("/proc/stat", "r");
	int i;

	*idle = *total = 0;
	if (!f)
		return;
	if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
		   &v[3], &v[4], &v[5], &v[6], &v[7]) == 8) {
		*idle = v[3] + v[4];
		for (i = 0; i < 8; i++)
			*total += v[i];
	}
	fclose(f);
}

/* CPU seconds of a process so far (utime + stime), -1 when it is gone */
static double proc_cpu(long pid)
{
	char path[64], line[1024], *p;
	unsigned long long ut, st;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	n = fread(line, 1, sizeof(line) - 1, f);
	fclose(f);
	line[n] = '\0';
	p = strrchr(line, ')');
	/* after the comm: state ppid pgrp session tty tpgid flags minflt
	 * cminflt majflt cmajflt utime stime */
	if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
			 &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static void idle_push(struct conn *c)
{
	c->next = cli.idle.next;
	c->prev = &cli.idle;
	cli.idle.next->prev = c;
	cli.idle.next = c;
}

static void idle_unlink(struct conn *c)
{
	if (!c->prev)
		return;
	c->prev->next = c->next;
	c->next->prev = c->prev;
	c->prev = c->next = NULL;
}

static void cli_close(struct conn *c)
{
	idle_unlink(c);
	if (c->warming) {
		cli.warming--;
		cli.warm_fail++;
	}
	if (c->busy) {
		cli.errors++;
		cli.inflight--;
	}
	conn_free(c);
}

/* One complete SSE event in c->ev. */
static void sse_event(struct conn *c)
{
	const char *e = c->ev.p, *u;

	if (c->ev.len >= 12 && !memcmp(e, "data: [DONE]", 12)) {
		c->saw_done = 1;
		return;
	}
	if ((u = strstr(e, "\"usage\":{"))) {
		const char *t = strstr(u, "\"completion_tokens\":");

		c->saw_usage = 1;
		c->completion = t ? strtol(t + 20, NULL, 10) : -1;
	} else if (strstr(e, "\"delta\"")) {
		c->content++;
	}
}

static int sse_feed(struct conn *c, const char *p, size_t n)
{
	while (n) {
		const char *nl = memchr(p, '\n', n);
		size_t k = nl ? (size_t)(nl - p) + 1 : n;

		if (buf_add(&c->ev, p, k, EV_LIMIT))
			return -1;
		p += k;
		n -= k;
		if (nl && c->ev.len >= 2 && c->ev.p[c->ev.len - 2] == '\n') {
			c->ev.p[c->ev.len - 1] = '\0';
			sse_event(c);
			c->ev.len = 0;
		}
	}
	return 0;
}

/* Bytes of the response: how many were used, -1 on a broken response;
 * *done when the terminator has been read. */
static long cli_feed(struct conn *c, const char *p, size_t n, int *done)
{
	size_t i = 0, k;
	char ch;

	*done = 0;
	while (i < n) {
		switch (c->ps) {
		case P_HEAD:
		case P_SIZE:
		case P_TRAILER:
			ch = p[i++];
			if (buf_add(&c->in, &ch, 1, IN_LIMIT))
				return -1;
			if (ch != '\n')
				break;
			if (c->ps == P_HEAD) {
				if (c->in.len < 4 || memcmp(c->in.p + c->in.len - 4, "\r\n\r\n", 4))
					break;
				c->in.p[c->in.len - 1] = '\0';
				if (strncmp(c->in.p, "HTTP/1.1 200 ", 13) ||
				    !strcasestr(c->in.p, "\r\ntransfer-encoding: chunked\r"))
					return -1;
				c->ps = P_SIZE;
			} else if (c->ps == P_SIZE) {
				char *end;
				unsigned long sz;

				c->in.p[c->in.len - 1] = '\0';
				sz = strtoul(c->in.p, &end, 16);
				if (end == c->in.p)
					return -1;
				c->chunk_left = sz;
				c->ps = sz ? P_DATA : P_TRAILER;
			} else if (c->in.len == 2) { /* the empty line after "0" */
				c->in.len = 0;
				*done = 1;
				return (long)i;
			}
			c->in.len = 0;
			break;
		case P_DATA:
			k = n - i < c->chunk_left ? n - i : c->chunk_left;
			if (sse_feed(c, p + i, k))
				return -1;
			i += k;
			c->chunk_left -= k;
			if (!c->chunk_left) {
				c->ps = P_CRLF;
				c->crlf_left = 2;
			}
			break;
		case P_CRLF:
			if (p[i++] != (c->crlf_left == 2 ? '\r' : '\n'))
				return -1;
			if (!--c->crlf_left)
				c->ps = P_SIZE;
			break;
		}
	}
	return (long)i;
}

/* Call k (due at cli_due(k)) on c, now. */
static void cli_begin(struct conn *c, uint64_t k, uint64_t now)
{
	uint64_t due = cli_due(k);

	c->busy = 1;
	c->t_start = now;
	c->ps = P_HEAD;
	c->in.len = c->ev.len = 0;
	c->content = c->completion = 0;
	c->saw_usage = c->saw_done = 0;
	c->call = k;
	cli.started++;
	if (++cli.inflight > cli.inflight_max)
		cli.inflight_max = cli.inflight;
	late_add(&cli.late, now > due ? now - due : 0);
	/* the task header names the call in the probe's record */
	if (buf_reserve(&c->out, 1024, OUT_LIMIT))
		die("request over the output limit");
	c->out.len += (size_t)snprintf(c->out.p + c->out.len, c->out.cap - c->out.len,
		"POST /v1/chat/completions HTTP/1.1\r\n"
		"Host: 127.0.0.1:%ld\r\n"
		"Content-Type: application/json\r\n"
		"Accept: text/event-stream\r\n"
		"X-Tokentap-Task: paced-%llu\r\n"
		"Content-Length: %zu\r\n"
		"\r\n%s", cli.port, (unsigned long long)k, strlen(cli.body), cli.body);
}

static void cli_drive(struct conn *c);

static struct conn *cli_connect(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return NULL;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&cli.sa, sizeof(cli.sa)) && errno != EINPROGRESS) {
		close(fd);
		return NULL;
	}
	cli.opened++;
	return conn_new(fd, 0);
}

/* Call k: on an idle connection, a new one, or queued. */
static void cli_start(uint64_t k, uint64_t now)
{
	uint64_t due = cli_due(k);

	struct conn *c = cli.idle.next != &cli.idle ? cli.idle.next : NULL;

	if (c) {
		idle_unlink(c);
	} else if (open_conns < cli.max_conns) {
		c = cli_connect();
		if (!c) {
			cli.started++;
			cli.errors++;
			cli.connect_fail++;
			late_add(&cli.late, now > due ? now - due : 0);
			return;
		}
	} else {
		if (cli.q_len == cli.q_cap) {
			uint64_t *q = malloc(2 * (cli.q_cap + 512) * sizeof(*q));
			size_t i;

			if (!q)
				die("out of memory");
			for (i = 0; i < cli.q_len; i++)
				q[i] = cli.queue[(cli.q_head + i) % cli.q_cap];
			free(cli.queue);
			cli.queue = q;
			cli.q_head = 0;
			cli.q_cap = 2 * (cli.q_cap + 512);
		}
		cli.queue[(cli.q_head + cli.q_len++) % cli.q_cap] = k;
		return;
	}
	cli_begin(c, k, now);
	cli_drive(c);
}

/* The call on c is over (its terminator read): judge it, reuse c. */
static void cli_done(struct conn *c)
{
	uint64_t now = now_ns(), d = now - c->t_start;
	int ok = c->saw_usage && c->saw_done &&
		 (!cli.events || (c->content == cli.events && c->completion == cli.events));

	c->busy = 0;
	cli.inflight--;
	if (ok) {
		cli.completed++;
		if (cli.done_f)
			fprintf(cli.done_f, "%llu\n", (unsigned long long)c->call);
		cli.dur_sum_ns += d;
		if (d > cli.dur_max_ns)
			cli.dur_max_ns = d;
	} else {
		cli.errors++;
		cli.bad++;
	}
	if (cli.q_len) {
		uint64_t k = cli.queue[cli.q_head];

		cli.q_head = (cli.q_head + 1) % cli.q_cap;
		cli.q_len--;
		cli_begin(c, k, now);
	} else {
		idle_push(c);
	}
}

static void cli_drive(struct conn *c)
{
	char buf[16384];
	int n, done;
	long used;

	c->want_out = 0;
	if (handshake(c))
		goto dead;
	if (c->hs_done && c->warming) { /* opened ahead: idle now */
		c->warming = 0;
		cli.warming--;
		idle_push(c);
	}
	while (c->hs_done) {
		if (flush_out(c))
			goto dead;
		ERR_clear_error();
		ssl_calls++;
		n = SSL_read(c->ssl, buf, sizeof(buf));
		if (n <= 0) {
			if (ssl_wait(c, n))
				goto dead;
			break;
		}
		if (!c->busy)
			goto dead; /* bytes nobody asked for */
		used = cli_feed(c, buf, (size_t)n, &done);
		if (used < 0 || (done && used != n)) {
			if (c->busy)
				cli.bad++;
			goto dead;
		}
		if (done)
			cli_done(c);
		if (!SSL_has_pending(c->ssl))
			break; /* epoll says when there is more */
	}
	if (flush_out(c))
		goto dead;
	set_mask(c);
	return;
dead:
	cli_close(c);
}

/* Open n connections ahead of the calls, at most 256 handshakes at a time:
 * how long it took. */
static double cli_warm(uint64_t n)
{
	struct epoll_event evs[MAX_EVENTS];
	uint64_t t = now_ns(), limit = t + 60 * 1000000000ull, opened = 0;
	int i, k;

	while (!stop && (opened < n || cli.warming) && now_ns() < limit) {
		while (opened < n && cli.warming < 256) {
			struct conn *c = cli_connect();

			opened++;
			if (!c) {
				cli.warm_fail++;
				continue;
			}
			c->warming = 1;
			cli.warming++;
			cli_drive(c);
		}
		k = epoll_wait(epfd, evs, MAX_EVENTS, 100);
		for (i = 0; i < k; i++)
			cli_drive(evs[i].data.ptr);
	}
	return (double)(now_ns() - t) / 1e9;
}

static int client(int argc, char **argv)
{
	const char *ca = NULL, *done_file = NULL, *hold_file = NULL;
	long secs = 0, drain_ms = 15000, warm = 0;
	struct epoll_event evs[MAX_EVENTS];
	uint64_t total, k = 0, end, deadline, unfinished;
	unsigned long long idle0, tot0, idle1, tot1;
	double cpu0, wall, warm_s = 0;
	unsigned long long ssl0;
	int i, n;
	struct conn *c;

	cli.max_conns = 100000;
	for (i = 0; i < argc; i += 2) { /* --option value */
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--port"))
			cli.port = num(a, v, 1, 65535);
		else if (!strcmp(a, "--ca"))
			ca = v;
		else if (!strcmp(a, "--rate"))
			cli.rate = num(a, v, 1, 1000000);
		else if (!strcmp(a, "--secs"))
			secs = num(a, v, 1, 86400);
		else if (!strcmp(a, "--events"))
			cli.events = num(a, v, 0, 1000000);
		else if (!strcmp(a, "--max-conns"))
			cli.max_conns = (size_t)num(a, v, 1, 1000000);
		else if (!strcmp(a, "--drain-ms"))
			drain_ms = num(a, v, 0, 3600000);
		else if (!strcmp(a, "--warm"))
			warm = num(a, v, 0, 1000000);
		else if (!strcmp(a, "--done-file"))
			done_file = v;
		else if (!strcmp(a, "--hold-file"))
			hold_file = v;
		else if (!strcmp(a, "--watch")) {
			const char *eq = v ? strchr(v, '=') : NULL;

			if (!eq || cli.n_watch == MAX_WATCH)
				die("client: --watch NAME=PID (at most %d)", MAX_WATCH);
			cli.watch_name[cli.n_watch] = strndup(v, (size_t)(eq - v));
			cli.watch_pid[cli.n_watch++] = num(a, eq + 1, 1, INT_MAX);
		} else
			die("client: unknown argument %s", a);
	}
	if (!cli.port || !cli.rate || !secs)
		die("client: --port, --rate and --secs are needed");
	raise_nofile(cli.max_conns + (size_t)warm + 1024);
	if (done_file && !(cli.done_f = fopen(done_file, "w")))
		die("client: cannot write %s", done_file);

	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		die("SSL_CTX_new");
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
			 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_read_ahead(ctx, 1); /* one read(2) per socket wake-up, not two per record */
	if (ca) {
		if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1)
			die("client: cannot load %s", ca);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
	cli.sa.sin_family = AF_INET;
	cli.sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cli.sa.sin_port = htons((uint16_t)cli.port);
	cli.body = "{\"model\":\"gpt-4o-mini\",\"stream\":true,"
		   "\"stream_options\":{\"include_usage\":true},"
		   "\"messages\":[{\"role\":\"user\",\"content\":\"paced bench call\"}]}";
	cli.idle.next = cli.idle.prev = &cli.idle;
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		die("epoll: %s", strerror(errno));
	late_init(&cli.late);
	if (warm)
		warm_s = cli_warm((uint64_t)warm);
	if (hold_file) { /* say so, then wait until it is gone */
		FILE *f = fopen(hold_file, "w");

		if (!f || fclose(f))
			die("client: cannot write %s", hold_file);
		while (!stop && access(hold_file, F_OK) == 0)
			usleep(10000);
	}

	/* The window measured: from the first call due to the last one over. */
	total = (uint64_t)cli.rate * (uint64_t)secs;
	for (i = 0; i < cli.n_watch; i++)
		cli.watch_s[i] = proc_cpu(cli.watch_pid[i]);
	machine_jiffies(&idle0, &tot0);
	cpu0 = cpu_seconds();
	ssl0 = ssl_calls;
	cli.t0 = now_ns();
	end = cli.t0 + (uint64_t)secs * 1000000000u;
	deadline = end + (uint64_t)drain_ms * 1000000u;
	while (!stop) {
		uint64_t now = now_ns();
		int timeout;

		while (k < total && cli_due(k) <= now)
			cli_start(k++, now);
		if (k >= total && !cli.inflight && !cli.q_len)
			break;
		if (now >= deadline)
			break;
		timeout = 100;
		if (k < total)
			timeout = (int)((cli_due(k) - now + 999999u) / 1000000u);
		n = epoll_wait(epfd, evs, MAX_EVENTS, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait: %s", strerror(errno));
		}
		for (i = 0; i < n; i++)
			cli_drive(evs[i].data.ptr);
	}
	wall = (double)(now_ns() - cli.t0) / 1e9;
	cpu0 = cpu_seconds() - cpu0;
	machine_jiffies(&idle1, &tot1);
	for (i = 0; i < cli.n_watch; i++) {
		double v = proc_cpu(cli.watch_pid[i]);

		cli.watch_s[i] = v < 0 || cli.watch_s[i] < 0 ? -1 : v - cli.watch_s[i];
	}
	unfinished = cli.inflight + cli.q_len + (total - k);
	if (cli.done_f && fclose(cli.done_f))
		die("client: cannot write %s", done_file);
	/* Every connection is idle now, unless the drain ran out. */
	while ((c = cli.idle.next) != &cli.idle)
		cli_close(c);
	printf("{\"rate\":%ld,\"secs\":%ld,\"scheduled\":%llu,\"started\":%llu,"
	       "\"completed\":%llu,\"errors\":%llu,\"bad_responses\":%llu,"
	       "\"connect_failures\":%llu,\"unfinished\":%llu,"
	       "\"late_p50_ms\":%.1f,\"late_p99_ms\":%.1f,\"late_max_ms\":%.1f,"
	       "\"dur_avg_ms\":%.1f,\"dur_max_ms\":%.1f,"
	       "\"warm\":%ld,\"warm_failed\":%llu,\"warm_s\":%.3f,"
	       "\"conns_opened\":%llu,\"open_max\":%zu,\"inflight_max\":%llu,"
	       "\"ssl_calls\":%llu,\"wall_s\":%.3f,\"cpu_s\":%.3f,\"idle_pct\":%.1f",
	       cli.rate, secs, (unsigned long long)total, (unsigned long long)cli.started,
	       (unsigned long long)cli.completed, (unsigned long long)cli.errors,
	       (unsigned long long)cli.bad, (unsigned long long)cli.connect_fail,
	       (unsigned long long)unfinished, late_q(&cli.late, 0.5),
	       late_q(&cli.late, 0.99), (double)cli.late.max_ns / 1e6,
	       cli.completed ? (double)cli.dur_sum_ns / (double)cli.completed / 1e6 : 0.0,
	       (double)cli.dur_max_ns / 1e6, warm, (unsigned long long)cli.warm_fail, warm_s,
	       (unsigned long long)cli.opened, open_max,
	       (unsigned long long)cli.inflight_max, ssl_calls - ssl0, wall, cpu0,
	       tot1 > tot0 ? 100.0 * (double)(idle1 - idle0) / (double)(tot1 - tot0) : 0.0);
	for (i = 0; i < cli.n_watch; i++)
		printf(",\"cpu_%s_s\":%.3f", cli.watch_name[i], cli.watch_s[i]);
	printf("}\n");
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa = {.sa_handler = on_signal};

	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (argc >= 2 && !strcmp(argv[1], "server")) {
		raise_nofile(1 << 17);
		return server(argc - 2, argv + 2);
	}
	if (argc >= 2 && !strcmp(argv[1], "client"))
		return client(argc - 2, argv + 2);
	fprintf(stderr, "usage: bench_paced server --port P --cert C --key K --events N "
			"--stream-ms D [--prompt-tokens T] [--ready-file F] [--max-seconds S]\n"
			"       bench_paced client --port P [--ca CA] --rate R --secs S "
			"[--events N] [--max-conns M] [--drain-ms MS] [--warm W]\n"
			"                          [--done-file F] [--hold-file H] [--watch NAME=PID]...\n");
	return 2;
}
