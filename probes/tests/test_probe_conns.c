/*
 * test_probe_conns.c - the connection table in front of the decoders:
 * byte positions, gaps marked "truncated", recovery after a gap, the end
 * of a connection with bytes never seen, independence of connections and
 * eviction.  The exchange is a recorded OpenAI answer from the wire
 * fixtures; the figures it must give come from MANIFEST.tsv (the corpus
 * authors' numbers), not from the decoder.  Each case is fed whole, in
 * random splits and one byte at a time.
 *
 * Skipping: a connection that is not HTTP, or that switched protocols, is
 * given up (the skip callback says so once, the bytes that still come are
 * dropped); an LLM keep-alive connection, a connection after a gap and the
 * next connection on the same (tgid, ssl) after SSL_free are not.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conns.h"
#include "tokentap/error.h"

#define FX_NAME "openai/chat-nonstream-cached-gpt4omini"

static char *req, *resp;     /* whole HTTP/1.1 messages */
static size_t req_len, resp_len, req_body_len, resp_body_len;
static long want_in, want_out, want_cache;

#define MAX_RECS 16
static tt_record recs[MAX_RECS];
static tt_conn_info infos[MAX_RECS];
static int nrecs;

static void on_rec(tt_record *rec, const tt_conn_info *ci, void *user)
{
	(void)user;
	if (nrecs < MAX_RECS) {
		recs[nrecs] = *rec;
		infos[nrecs] = *ci;
	}
	nrecs++;
}

/* What the skip callback was told. */
static struct {
	int on, off;
	uint32_t tgid;
	uint64_t ssl;
} skips;

static void on_skip(uint32_t tgid, uint64_t ssl, int on, void *user)
{
	(void)user;
	if (on)
		skips.on++;
	else
		skips.off++;
	skips.tgid = tgid;
	skips.ssl = ssl;
}

static tt_conns *new_conns(size_t max)
{
	tt_conns *c = tt_conns_new(on_rec, NULL, max, NULL);

	assert_non_null(c);
	tt_conns_set_skip(c, on_skip, NULL);
	memset(&skips, 0, sizeof(skips));
	nrecs = 0;
	return c;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fclose(f);
		free(buf);
		return NULL;
	}
	fclose(f);
	buf[n] = '\0';
	*len = (size_t)n;
	return buf;
}

/* The figures of FX_NAME from MANIFEST.tsv (columns 8, 9, 10). */
static int manifest_figures(const char *dir)
{
	char path[4300], line[8192];
	FILE *f;
	int ok = -1;

	snprintf(path, sizeof(path), "%s/MANIFEST.tsv", dir);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *col[12], *save = NULL, *t;
		int n = 0;

		for (t = strtok_r(line, "\t", &save); t && n < 12;
		     t = strtok_r(NULL, "\t", &save))
			col[n++] = t;
		if (n < 10 || strcmp(col[0], FX_NAME ".json") != 0)
			continue;
		want_in = strtol(col[7], NULL, 10);
		want_out = strtol(col[8], NULL, 10);
		want_cache = strtol(col[9], NULL, 10);
		ok = 0;
		break;
	}
	fclose(f);
	return ok;
}

static int setup(void **state)
{
	char dir[4096], path[4300];
	char *body, *rbody;
	FILE *p;

	(void)state;
	/* the fixtures sit beside the checkout: ../shared/fixtures/wire */
	p = popen("git rev-parse --show-toplevel 2>/dev/null", "r");
	if (!p || !fgets(dir, sizeof(dir), p)) {
		if (p)
			pclose(p);
		return -1;
	}
	pclose(p);
	dir[strcspn(dir, "\n")] = '\0';
	strncat(dir, "/../shared/fixtures/wire", sizeof(dir) - strlen(dir) - 1);
	if (getenv("TOKENTAP_FIXTURES"))
		snprintf(dir, sizeof(dir), "%s", getenv("TOKENTAP_FIXTURES"));
	snprintf(path, sizeof(path), "%s/%s.request.json", dir, FX_NAME);
	body = slurp(path, &req_body_len);
	snprintf(path, sizeof(path), "%s/%s.json", dir, FX_NAME);
	rbody = slurp(path, &resp_body_len);
	if (!body || !rbody || manifest_figures(dir) < 0) {
		printf("skip: wire fixtures absent (%s)\n", dir);
		exit(77);
	}
	req = malloc(req_body_len + 512);
	req_len = (size_t)snprintf(req, 512,
		"POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\n"
		"Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
		req_body_len);
	memcpy(req + req_len, body, req_body_len);
	req_len += req_body_len;
	resp = malloc(resp_body_len + 512);
	resp_len = (size_t)snprintf(resp, 512,
		"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
		"Content-Length: %zu\r\n\r\n", resp_body_len);
	memcpy(resp + resp_len, rbody, resp_body_len);
	resp_len += resp_body_len;
	free(body);
	free(rbody);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free(req);
	free(resp);
	return 0;
}

enum mode { WHOLE, RANDOM, BYTES };

/*
 * Feed data[0, len) of one direction as events at stream offsets pos
 * onwards; returns the number of events.
 */
static size_t feed_at(tt_conns *c, const tt_conn_info *ci, tt_dir dir,
		      uint64_t pos, const char *data, size_t len, enum mode m,
		      unsigned *seed, int64_t *now)
{
	size_t o = 0, events = 0;

	while (o < len) {
		size_t n = len - o;

		if (m == BYTES)
			n = 1;
		else if (m == RANDOM)
			n = 1 + rand_r(seed) % (n < 3000 ? n : 3000);
		assert_int_equal(tt_conns_data(c, ci, dir, pos + o, data + o, n,
					       (*now)++), 0);
		o += n;
		events++;
	}
	return events;
}

/* Feed buf[from, to) of one direction at offsets from..to. */
static size_t feed(tt_conns *c, const tt_conn_info *ci, tt_dir dir,
		   const char *buf, size_t from, size_t to, enum mode m,
		   unsigned *seed, int64_t *now)
{
	return feed_at(c, ci, dir, from, buf + from, to - from, m, seed, now);
}

static void check_whole_record(const tt_record *r)
{
	assert_int_equal(r->input_tokens, want_in);
	assert_int_equal(r->output_tokens, want_out);
	assert_int_equal(r->cache_read_tokens, want_cache);
	assert_int_equal(r->request_bytes, (int64_t)req_body_len);
	assert_int_equal(r->response_bytes, (int64_t)resp_body_len);
	assert_string_equal(r->side, "client");
	assert_string_equal(r->error, "");
}

static void test_in_order(void **state)
{
	tt_conn_info ci = { .tgid = 100, .tid = 101, .ssl = 0x1000, .cgroup_id = 1 };
	unsigned seed = 7;
	int m;

	(void)state;
	for (m = WHOLE; m <= BYTES; m++) {
		tt_conns *c = new_conns(0);
		tt_conns_stats st;
		int64_t now = 1000;

		feed(c, &ci, TT_DIR_SENT, req, 0, req_len, m, &seed, &now);
		feed(c, &ci, TT_DIR_RECV, resp, 0, resp_len, m, &seed, &now);
		/* keep-alive HTTP/1.1 after an LLM call: still decoded */
		assert_int_equal(skips.on, 0);
		tt_conns_end(c, ci.tgid, ci.ssl, req_len, resp_len, now);
		assert_int_equal(nrecs, 1);
		check_whole_record(&recs[0]);
		assert_int_equal(infos[0].tgid, 100);
		assert_int_equal(infos[0].tid, 101);
		tt_conns_get_stats(c, &st);
		assert_int_equal(st.gaps, 0);
		assert_int_equal(st.live, 0);
		assert_int_equal(st.skipped, 0);
		tt_conns_free(c, now);
	}
}

/*
 * Bytes of the response body lost: the exchange comes out "truncated";
 * the next exchange on the connection, after the gap, is whole again.
 */
static void test_gap_then_recovery(void **state)
{
	tt_conn_info ci = { .tgid = 200, .tid = 200, .ssl = 0x2000 };
	unsigned seed = 11;
	int m;

	(void)state;
	for (m = WHOLE; m <= BYTES; m++) {
		tt_conns *c = tt_conns_new(on_rec, NULL, 0, NULL);
		size_t hole = resp_len - resp_body_len / 2;
		tt_conns_stats st;
		int64_t now = 1000;

		nrecs = 0;
		feed(c, &ci, TT_DIR_SENT, req, 0, req_len, m, &seed, &now);
		feed(c, &ci, TT_DIR_RECV, resp, 0, hole, m, &seed, &now);
		/* the kernel side lost 100 bytes: the next event is further on */
		feed(c, &ci, TT_DIR_RECV, resp, hole + 100, resp_len, m, &seed, &now);
		assert_int_equal(nrecs, 1);
		assert_string_equal(recs[0].error, "truncated");
		/* a second request/response, at the offsets that follow */
		{
			char *r2 = malloc(req_len * 2), *p2 = malloc(resp_len * 2);

			memcpy(r2 + req_len, req, req_len);
			memcpy(p2 + resp_len, resp, resp_len);
			feed(c, &ci, TT_DIR_SENT, r2, req_len, 2 * req_len, m, &seed, &now);
			feed(c, &ci, TT_DIR_RECV, p2, resp_len, 2 * resp_len, m, &seed, &now);
			free(r2);
			free(p2);
		}
		tt_conns_end(c, ci.tgid, ci.ssl, 2 * req_len, 2 * resp_len, now);
		assert_int_equal(nrecs, 2);
		check_whole_record(&recs[1]);
		tt_conns_get_stats(c, &st);
		assert_int_equal(st.gaps, 1);
		assert_int_equal(st.truncated, 1);
		tt_conns_free(c, now);
	}
}

/* SSL_free says more was received than was seen: the end was lost. */
static void test_lost_tail(void **state)
{
	tt_conn_info ci = { .tgid = 300, .tid = 300, .ssl = 0x3000 };
	tt_conns *c = tt_conns_new(on_rec, NULL, 0, NULL);
	unsigned seed = 3;
	int64_t now = 1;

	(void)state;
	nrecs = 0;
	feed(c, &ci, TT_DIR_SENT, req, 0, req_len, WHOLE, &seed, &now);
	feed(c, &ci, TT_DIR_RECV, resp, 0, resp_len - 10, WHOLE, &seed, &now);
	tt_conns_end(c, ci.tgid, ci.ssl, req_len, resp_len, now);
	assert_int_equal(nrecs, 1);
	assert_string_equal(recs[0].error, "truncated");
	tt_conns_free(c, now);
}

/* Same SSL pointer in two processes: two connections; eviction when full. */
static void test_identity_and_eviction(void **state)
{
	tt_conn_info a = { .tgid = 1, .tid = 1, .ssl = 0x5000 };
	tt_conn_info b = { .tgid = 2, .tid = 2, .ssl = 0x5000 };
	tt_conn_info x = { .tgid = 3, .tid = 3, .ssl = 0x6000 };
	tt_conns *c = tt_conns_new(on_rec, NULL, 2, NULL);
	tt_conns_stats st;
	unsigned seed = 5;
	int64_t now = 1;

	(void)state;
	nrecs = 0;
	feed(c, &a, TT_DIR_SENT, req, 0, req_len, RANDOM, &seed, &now);
	feed(c, &b, TT_DIR_SENT, req, 0, req_len, RANDOM, &seed, &now);
	feed(c, &a, TT_DIR_RECV, resp, 0, resp_len, RANDOM, &seed, &now);
	feed(c, &b, TT_DIR_RECV, resp, 0, resp_len, RANDOM, &seed, &now);
	assert_int_equal(nrecs, 2);
	check_whole_record(&recs[0]);
	check_whole_record(&recs[1]);
	assert_int_not_equal(infos[0].tgid, infos[1].tgid);
	/* a third connection evicts the least recently used one (a) */
	feed(c, &x, TT_DIR_SENT, req, 0, 10, WHOLE, &seed, &now);
	tt_conns_get_stats(c, &st);
	assert_int_equal(st.evicted, 1);
	assert_int_equal(st.live, 2);
	tt_conns_end_tgid(c, 2, now);
	tt_conns_get_stats(c, &st);
	assert_int_equal(st.live, 1);
	tt_conns_free(c, now);
	/* ten bytes of a request head are no LLM call yet: no record */
	assert_int_equal(nrecs, 2);
}

/* Bytes that are no HTTP: an SMTP-like exchange, then binary. */
static void nonhttp(char *buf, size_t n, unsigned seed)
{
	static const char greet[] = "EHLO example.org\r\n";
	size_t i;

	for (i = 0; i < n; i++)
		buf[i] = i < sizeof(greet) - 1 ? greet[i] : (char)rand_r(&seed);
}

/*
 * A connection that is not HTTP is given up at its first bytes: one skip,
 * for its (tgid, ssl); what still comes is dropped (every such event asks
 * for the skip again: the kernel side may have lost it), nothing is
 * recorded, its end counts no gap.  An LLM connection of the same process
 * beside it is recorded whole, and the next connection on the same pointer
 * (SSL_free, then reuse) is decoded again from its first byte.
 */
static void test_skip_nonhttp_then_reuse(void **state)
{
	tt_conn_info x = { .tgid = 400, .tid = 401, .ssl = 0x4000 };
	tt_conn_info llm = { .tgid = 400, .tid = 402, .ssl = 0x4100 };
	static char out[20000], back[20000];
	unsigned seed = 13;
	int m;

	(void)state;
	nonhttp(out, sizeof(out), 1);
	nonhttp(back, sizeof(back), 2);
	for (m = WHOLE; m <= BYTES; m++) {
		tt_conns *c = new_conns(0);
		tt_conns_stats st;
		int64_t now = 1;
		size_t late, o;

		feed(c, &llm, TT_DIR_SENT, req, 0, req_len / 2, m, &seed, &now);
		/* "EHLO": given up within its first four bytes */
		for (o = 0; o < 4 && !skips.on; o++)
			feed(c, &x, TT_DIR_SENT, out, o, o + 1, BYTES, &seed, &now);
		assert_int_equal(skips.on, 1);
		assert_int_equal(skips.tgid, x.tgid);
		assert_int_equal(skips.ssl, x.ssl);
		late = feed(c, &x, TT_DIR_SENT, out, o, sizeof(out), m, &seed, &now);
		late += feed(c, &x, TT_DIR_RECV, back, 0, sizeof(back), m, &seed,
			     &now);
		feed(c, &llm, TT_DIR_SENT, req, req_len / 2, req_len, m, &seed, &now);
		feed(c, &llm, TT_DIR_RECV, resp, 0, resp_len, m, &seed, &now);
		tt_conns_get_stats(c, &st);
		assert_int_equal(st.skipped, 1);
		assert_int_equal(st.skip_late, late);
		assert_int_equal(skips.on, 1 + (int)late);
		assert_int_equal(nrecs, 1);
		check_whole_record(&recs[0]);
		assert_int_equal(infos[0].tid, llm.tid);

		/* SSL_free with the positions the kernel counted: no gap */
		tt_conns_end(c, x.tgid, x.ssl, sizeof(out), sizeof(back), now);
		tt_conns_get_stats(c, &st);
		assert_int_equal(st.gaps, 0);
		assert_int_equal(st.live, 1);

		/* the pointer again, a new connection: an LLM call, whole */
		skips.on = 0;
		feed(c, &x, TT_DIR_SENT, req, 0, req_len, m, &seed, &now);
		feed(c, &x, TT_DIR_RECV, resp, 0, resp_len, m, &seed, &now);
		tt_conns_end(c, x.tgid, x.ssl, req_len, resp_len, now);
		assert_int_equal(skips.on, 0);
		assert_int_equal(nrecs, 2);
		check_whole_record(&recs[1]);
		assert_int_equal(infos[1].ssl, x.ssl);
		tt_conns_get_stats(c, &st);
		assert_int_equal(st.skipped, 1);
		assert_int_equal(st.gaps, 0);
		tt_conns_free(c, now);
	}
}

/* HTTP/1.1 that switches protocols (101) is given up after the 101. */
static void test_skip_after_upgrade(void **state)
{
	static const char up_req[] =
		"GET /chat HTTP/1.1\r\nHost: example.org\r\n"
		"Upgrade: websocket\r\nConnection: Upgrade\r\n"
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		"Sec-WebSocket-Version: 13\r\n\r\n";
	static const char up_resp[] =
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
		"Connection: Upgrade\r\n"
		"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
	tt_conn_info ci = { .tgid = 500, .tid = 500, .ssl = 0x5500 };
	static char frames[5000];
	size_t rl = sizeof(up_req) - 1, pl = sizeof(up_resp) - 1;
	unsigned seed = 17;
	int m;

	(void)state;
	nonhttp(frames, sizeof(frames), 3);
	frames[0] = (char)0x81; /* a websocket text frame's first byte */
	for (m = WHOLE; m <= BYTES; m++) {
		tt_conns *c = new_conns(0);
		tt_conns_stats st;
		int64_t now = 1;
		size_t late;

		feed(c, &ci, TT_DIR_SENT, up_req, 0, rl, m, &seed, &now);
		feed(c, &ci, TT_DIR_RECV, up_resp, 0, pl - 1, m, &seed, &now);
		assert_int_equal(skips.on, 0); /* the 101 is not whole yet */
		feed(c, &ci, TT_DIR_RECV, up_resp, pl - 1, pl, m, &seed, &now);
		assert_int_equal(skips.on, 1);
		late = feed_at(c, &ci, TT_DIR_RECV, pl, frames, sizeof(frames), m,
			       &seed, &now);
		tt_conns_get_stats(c, &st);
		assert_int_equal(st.skipped, 1);
		assert_int_equal(st.skip_late, late);
		tt_conns_end(c, ci.tgid, ci.ssl, rl, pl + sizeof(frames), now);
		tt_conns_get_stats(c, &st);
		assert_int_equal(st.gaps, 0);
		assert_int_equal(nrecs, 0);
		tt_conns_free(c, now);
	}
}

/*
 * After a gap, bytes that begin like a request but are no HTTP are a
 * false start, not a reason to give the connection up: the next request
 * is recorded whole.
 */
static void test_no_skip_after_gap(void **state)
{
	tt_conn_info ci = { .tgid = 600, .tid = 600, .ssl = 0x6600 };
	static const char ehlo[] = "EHLO example.org\r\n";
	size_t el = sizeof(ehlo) - 1;
	unsigned seed = 19;
	int m;

	(void)state;
	for (m = WHOLE; m <= BYTES; m++) {
		tt_conns *c = new_conns(0);
		tt_conns_stats st;
		int64_t now = 1;
		size_t s0 = req_len + 50 + el;

		feed(c, &ci, TT_DIR_SENT, req, 0, req_len, m, &seed, &now);
		/* 50 bytes lost, then a false start */
		feed_at(c, &ci, TT_DIR_SENT, req_len + 50, ehlo, el, WHOLE, &seed,
			&now);
		/* the response lost 100 bytes at its start: never recorded */
		feed(c, &ci, TT_DIR_RECV, resp, 100, resp_len, m, &seed, &now);
		assert_int_equal(skips.on, 0);
		/* the next exchange, at the offsets that follow */
		feed_at(c, &ci, TT_DIR_SENT, s0, req, req_len, m, &seed, &now);
		feed_at(c, &ci, TT_DIR_RECV, resp_len, resp, resp_len, m, &seed,
			&now);
		tt_conns_end(c, ci.tgid, ci.ssl, s0 + req_len, 2 * resp_len, now);
		assert_int_equal(skips.on, 0);
		tt_conns_get_stats(c, &st);
		assert_int_equal(st.skipped, 0);
		/* the first request, its response lost: truncated */
		assert_int_equal(nrecs, 2);
		assert_string_equal(recs[0].error, "truncated");
		check_whole_record(&recs[1]);
		tt_conns_free(c, now);
	}
}

/* The process ended: its skipped connections are forgotten, one by one. */
static void test_skip_forgotten_at_exit(void **state)
{
	tt_conn_info a = { .tgid = 700, .tid = 700, .ssl = 0x7000 };
	tt_conn_info b = { .tgid = 701, .tid = 701, .ssl = 0x7100 };
	char out[64];
	unsigned seed = 23;
	int64_t now = 1;
	tt_conns *c = new_conns(0);

	(void)state;
	nonhttp(out, sizeof(out), 4);
	feed(c, &a, TT_DIR_SENT, out, 0, sizeof(out), WHOLE, &seed, &now);
	feed(c, &b, TT_DIR_SENT, out, 0, sizeof(out), WHOLE, &seed, &now);
	assert_int_equal(skips.on, 2);
	tt_conns_end_tgid(c, b.tgid, now);
	assert_int_equal(skips.off, 1);
	assert_int_equal(skips.tgid, b.tgid);
	assert_int_equal(skips.ssl, b.ssl);
	/* shutdown: the maps go with the probe, nothing to forget */
	tt_conns_free(c, now);
	assert_int_equal(skips.off, 1);
	assert_int_equal(nrecs, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_in_order),
		cmocka_unit_test(test_gap_then_recovery),
		cmocka_unit_test(test_lost_tail),
		cmocka_unit_test(test_identity_and_eviction),
		cmocka_unit_test(test_skip_nonhttp_then_reuse),
		cmocka_unit_test(test_skip_after_upgrade),
		cmocka_unit_test(test_no_skip_after_gap),
		cmocka_unit_test(test_skip_forgotten_at_exit),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
