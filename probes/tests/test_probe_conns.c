/*
 * test_probe_conns.c - the connection table in front of the decoders:
 * byte positions, gaps marked "truncated", recovery after a gap, the end
 * of a connection with bytes never seen, independence of connections and
 * eviction.  The exchange is a recorded OpenAI answer from the wire
 * fixtures; the figures it must give come from MANIFEST.tsv (the corpus
 * authors' numbers), not from the decoder.  Each case is fed whole, in
 * random splits and one byte at a time.
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

/* Feed [from, to) of one direction as events at their stream offsets. */
static void feed(tt_conns *c, const tt_conn_info *ci, tt_dir dir,
		 const char *buf, size_t from, size_t to, enum mode m,
		 unsigned *seed, int64_t *now)
{
	size_t o = from;

	while (o < to) {
		size_t n = to - o;

		if (m == BYTES)
			n = 1;
		else if (m == RANDOM)
			n = 1 + rand_r(seed) % (n < 3000 ? n : 3000);
		assert_int_equal(tt_conns_data(c, ci, dir, o, buf + o, n, (*now)++), 0);
		o += n;
	}
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
		tt_conns *c = tt_conns_new(on_rec, NULL, 0, NULL);
		tt_conns_stats st;
		int64_t now = 1000;

		nrecs = 0;
		feed(c, &ci, TT_DIR_SENT, req, 0, req_len, m, &seed, &now);
		feed(c, &ci, TT_DIR_RECV, resp, 0, resp_len, m, &seed, &now);
		tt_conns_end(c, ci.tgid, ci.ssl, req_len, resp_len, now);
		assert_int_equal(nrecs, 1);
		check_whole_record(&recs[0]);
		assert_int_equal(infos[0].tgid, 100);
		assert_int_equal(infos[0].tid, 101);
		tt_conns_get_stats(c, &st);
		assert_int_equal(st.gaps, 0);
		assert_int_equal(st.live, 0);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_in_order),
		cmocka_unit_test(test_gap_then_recovery),
		cmocka_unit_test(test_lost_tail),
		cmocka_unit_test(test_identity_and_eviction),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
