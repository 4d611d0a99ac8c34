/*
 * test_dec_parsers.c - the decoder's small parser modules: buf, lines,
 * sse, chunked, jsonseq, eventstream, and the request side (route,
 * request).
 *
 * Every parser case is fed whole, in random splits (several seeds, empty
 * pieces included: feeding 0 bytes must change nothing) and one byte at a
 * time; the outputs, written down as a transcript, must be identical in
 * every mode.  The expected transcripts are written by hand from the
 * specs the headers quote (WHATWG event stream, RFC 9112 chunked, the AWS
 * event stream format), never taken from the code under test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "support/split.h"
#include <cJSON.h>
#include <zlib.h>

#include "common/buf.h"
#include "decoder/chunked.h"
#include "decoder/eventstream.h"
#include "decoder/jsonseq.h"
#include "decoder/lines.h"
#include "decoder/request.h"
#include "decoder/route.h"
#include "decoder/sse.h"
#include "tokentap/error.h"
#include "tokentap/record.h"

/* ---- transcripts ------------------------------------------------------ */

/* A binary-safe growable string: what a parser produced, in order. */
struct out {
	char *s;
	size_t len, cap;
};

static void out_addn(struct out *o, const void *p, size_t n)
{
	if (o->len + n + 1 > o->cap) {
		size_t want = o->cap ? o->cap : 256;
		while (want < o->len + n + 1)
			want *= 2;
		o->s = realloc(o->s, want);
		assert_non_null(o->s);
		o->cap = want;
	}
	if (n)
		memcpy(o->s + o->len, p, n);
	o->len += n;
	o->s[o->len] = '\0';
}

static void out_printf(struct out *o, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < sizeof(tmp));
	out_addn(o, tmp, (size_t)n);
}

static void out_free(struct out *o)
{
	free(o->s);
	memset(o, 0, sizeof(*o));
}

/* ---- feeding in every way --------------------------------------------- */


typedef void (*run_fn)(const char *in, size_t len, int mode, void *cfg,
		       struct out *o);

/*
 * Run one input in every mode and require identical transcripts; returns
 * the whole-mode transcript (caller frees).
 */
static struct out run_all(run_fn run, const char *in, size_t len, void *cfg)
{
	struct out ref = { 0 };

	run(in, len, 0, cfg, &ref);
	out_addn(&ref, "", 0); /* never NULL, also when nothing came out */
	for (int mode = 1; mode < SPLIT_MODES; mode++) {
		struct out o = { 0 };
		run(in, len, mode, cfg, &o);
		out_addn(&o, "", 0);
		if (o.len != ref.len || memcmp(o.s, ref.s, o.len) != 0) {
			print_message("mode %d differs from whole input:\n%s\n"
				      "--- whole:\n%s\n", mode,
				      o.s ? o.s : "", ref.s ? ref.s : "");
			fail();
		}
		out_free(&o);
	}
	return ref;
}

static void expect_all(run_fn run, const char *in, size_t len, void *cfg,
		       const char *want)
{
	struct out got = run_all(run, in, len, cfg);
	if (strcmp(got.s, want) != 0)
		print_message("input:\n%.*s\n--- got:\n%s\n--- want:\n%s\n",
			      (int)len, in, got.s, want);
	assert_string_equal(got.s, want);
	out_free(&got);
}

#define EXPECT(run, lit, cfg, want) expect_all(run, lit, sizeof(lit) - 1, cfg, want)

/* ---- buf --------------------------------------------------------------- */

static void test_buf_cap(void **state)
{
	tt_buf b;

	(void)state;
	tt_buf_init(&b, 10);
	assert_null(b.data); /* nothing allocated until the first append */
	assert_int_equal(tt_buf_add_trunc(&b, "hello", 5), 0);
	assert_int_equal(tt_buf_add_trunc(&b, " world", 6), TT_ETRUNCATED);
	assert_int_equal(b.len, 10);
	assert_true(b.truncated);
	assert_memory_equal(b.data, "hello worl", 10);
	assert_int_equal(b.data[10], '\0');
	assert_int_equal(tt_buf_add_trunc(&b, "x", 1), TT_ETRUNCATED);
	assert_int_equal(b.len, 10);

	tt_buf_consume(&b, 6);
	assert_string_equal(b.data, "worl");
	assert_int_equal(b.len, 4);
	tt_buf_consume(&b, 99);
	assert_int_equal(b.len, 0);

	tt_buf_reset(&b);
	assert_false(b.truncated);
	assert_int_equal(tt_buf_add_trunc(&b, "0123456789", 10), 0);
	assert_string_equal(b.data, "0123456789");
	tt_buf_free(&b);
	assert_null(b.data);
	/* Reusable after free, with the same maximum. */
	assert_int_equal(tt_buf_add_trunc(&b, "again", 5), 0);
	assert_string_equal(b.data, "again");
	tt_buf_free(&b);
	tt_buf_free(&b); /* twice is harmless */
}

static void test_buf_grow(void **state)
{
	tt_buf b;
	char chunk[100];

	(void)state;
	tt_buf_init(&b, 5000);
	for (int i = 0; i < 50; i++) {
		memset(chunk, 'a' + i % 26, sizeof(chunk));
		assert_int_equal(tt_buf_add_trunc(&b, chunk, sizeof(chunk)), 0);
	}
	assert_int_equal(b.len, 5000);
	assert_false(b.truncated);
	for (int i = 0; i < 50; i++)
		assert_int_equal(b.data[i * 100 + 99], 'a' + i % 26);
	assert_int_equal(tt_buf_add_trunc(&b, "z", 1), TT_ETRUNCATED);
	tt_buf_free(&b);
}

/* ---- lines ------------------------------------------------------------- */

static void on_line(void *user, const char *line, size_t len, int truncated)
{
	struct out *o = user;
	out_printf(o, "%s[", truncated ? "T" : "");
	out_addn(o, line, len);
	out_addn(o, "]\n", 2);
}

static void run_lines(const char *in, size_t len, int mode, void *cfg,
		      struct out *o)
{
	size_t max = cfg ? *(size_t *)cfg : 1024;
	splitter s;
	const char *p;
	size_t n;
	tt_lines l;

	tt_lines_init(&l, max, on_line, o);
	split_init(&s, in, len, mode);
	while (split_next(&s, &p, &n))
		tt_lines_feed(&l, p, n);
	tt_lines_end(&l);
	tt_lines_free(&l);
}

static void test_lines_endings(void **state)
{
	(void)state;
	EXPECT(run_lines, "a\nb\rc\r\nd", NULL, "[a]\n[b]\n[c]\n[d]\n");
	/* CR CR is two line ends, CR LF one, LF CR two. */
	EXPECT(run_lines, "a\r\rb\r\n\r\nc\n\rd\n", NULL,
	       "[a]\n[]\n[b]\n[]\n[c]\n[]\n[d]\n");
	EXPECT(run_lines, "", NULL, "");
	EXPECT(run_lines, "\n", NULL, "[]\n");
	EXPECT(run_lines, "x\r", NULL, "[x]\n");
}

static void test_lines_cr_lf_across_pieces(void **state)
{
	struct out o = { 0 };
	tt_lines l;

	(void)state;
	tt_lines_init(&l, 100, on_line, &o);
	tt_lines_feed(&l, "one\r", 4);
	tt_lines_feed(&l, "\ntwo\r", 5);
	tt_lines_feed(&l, "", 0);          /* an empty piece changes nothing */
	tt_lines_feed(&l, "\nthree\r", 7);
	tt_lines_feed(&l, "\r", 1);        /* CR then CR: an empty line */
	tt_lines_end(&l);
	tt_lines_free(&l);
	assert_string_equal(o.s, "[one]\n[two]\n[three]\n[]\n");
	out_free(&o);
}

static void test_lines_cap(void **state)
{
	size_t max = 4;

	(void)state;
	EXPECT(run_lines, "abcdefgh\nxy\nabcd\nabcde\r\n", &max,
	       "T[abcd]\n[xy]\n[abcd]\nT[abcd]\n");
	EXPECT(run_lines, "abcdefgh", &max, "T[abcd]\n");
}

/* ---- sse --------------------------------------------------------------- */

static void on_event(void *user, const char *event, const char *data,
		     size_t len, int truncated)
{
	struct out *o = user;
	out_printf(o, "<%s>%s", event, truncated ? "T" : "");
	out_addn(o, data, len);
	out_addn(o, "|\n", 2);
}

static void run_sse(const char *in, size_t len, int mode, void *cfg,
		    struct out *o)
{
	size_t max = cfg ? *(size_t *)cfg : 4096;
	splitter s;
	const char *p;
	size_t n;
	tt_sse sse;

	tt_sse_init(&sse, max, on_event, o);
	split_init(&s, in, len, mode);
	while (split_next(&s, &p, &n))
		tt_sse_feed(&sse, p, n);
	tt_sse_end(&sse);
	tt_sse_free(&sse);
}

static void test_sse_line_ends(void **state)
{
	(void)state;
	EXPECT(run_sse, "data: hello\n\n", NULL, "<>hello|\n");
	EXPECT(run_sse, "data: hello\r\r", NULL, "<>hello|\n");
	EXPECT(run_sse, "data: hello\r\n\r\n", NULL, "<>hello|\n");
	EXPECT(run_sse, "data: a\r\ndata: b\rdata: c\n\r\ndata: d\r\r\n",
	       NULL, "<>a\nb\nc|\n<>d|\n");
}

static void test_sse_cr_lf_across_pieces(void **state)
{
	struct out o = { 0 };
	tt_sse s;

	(void)state;
	tt_sse_init(&s, 4096, on_event, &o);
	/* CR | LF is one line end: the event is not dispatched early. */
	tt_sse_feed(&s, "data: a\r", 8);
	tt_sse_feed(&s, "\ndata: b\r", 9);
	tt_sse_feed(&s, "\n\r", 2);
	tt_sse_feed(&s, "\n", 1);
	tt_sse_feed(&s, "data: c\r", 8);
	tt_sse_feed(&s, "\r", 1);        /* CR | CR: a blank line */
	tt_sse_end(&s);
	tt_sse_free(&s);
	assert_string_equal(o.s, "<>a\nb|\n<>c|\n");
	out_free(&o);
}

static void test_sse_fields(void **state)
{
	(void)state;
	/* Multi-line data joined with LF. */
	EXPECT(run_sse, "data: a\ndata: b\ndata: c\n\n", NULL, "<>a\nb\nc|\n");
	/* event: names the event; the type resets after each dispatch. */
	EXPECT(run_sse, "event: message_start\ndata: {}\n\ndata: 2\n\n", NULL,
	       "<message_start>{}|\n<>2|\n");
	/* The last event: line wins. */
	EXPECT(run_sse, "event: a\nevent: b\ndata: x\n\n", NULL, "<b>x|\n");
	/* Comments. */
	EXPECT(run_sse, ": x\ndata: a\n: y\n:\n\n: keepalive\n\n", NULL,
	       "<>a|\n");
	/* Unknown fields, id and retry are ignored. */
	EXPECT(run_sse, "id: 7\nretry: 100\nfoo: bar\nfoo\ndata: v\n\n", NULL,
	       "<>v|\n");
	/* Only a single leading space is removed; not a tab. */
	EXPECT(run_sse, "data:  two\n\ndata:none\n\ndata:\tx\n\n", NULL,
	       "<> two|\n<>none|\n<>\tx|\n");
	/* A value may contain colons. */
	EXPECT(run_sse, "data: {\"a\":\"b:c\"}\n\n", NULL, "<>{\"a\":\"b:c\"}|\n");
	/* Field names are case-sensitive. */
	EXPECT(run_sse, "Data: no\nDATA: no\ndata: yes\n\n", NULL, "<>yes|\n");
}

static void test_sse_empty_data(void **state)
{
	(void)state;
	/* No data field: nothing dispatched, and the type is forgotten. */
	EXPECT(run_sse, "event: ping\n\ndata: z\n\n", NULL, "<>z|\n");
	EXPECT(run_sse, "\n\n\n", NULL, "");
	/*
	 * A data field with no value makes the buffer "\n": the event is
	 * dispatched with empty data (spec: only an empty buffer is not).
	 */
	EXPECT(run_sse, "data:\n\n", NULL, "<>|\n");
	EXPECT(run_sse, "data\n\n", NULL, "<>|\n");
	EXPECT(run_sse, "event: e\ndata\ndata\n\n", NULL, "<e>\n|\n");
	/* event with no colon sets an empty type. */
	EXPECT(run_sse, "event: x\nevent\ndata: d\n\n", NULL, "<>d|\n");
}

static void test_sse_done_is_data(void **state)
{
	(void)state;
	/* [DONE] means nothing to SSE itself: it is data like any other. */
	EXPECT(run_sse, "data: {\"x\":1}\n\ndata: [DONE]\n\n", NULL,
	       "<>{\"x\":1}|\n<>[DONE]|\n");
	/* A stream that ends without [DONE] is complete all the same. */
	EXPECT(run_sse, "event: message_stop\ndata: {}\n\n", NULL,
	       "<message_stop>{}|\n");
}

static void test_sse_unterminated_end(void **state)
{
	(void)state;
	/*
	 * Dispatched at end of input all the same (sse.h: a deliberate
	 * deviation from the spec); not flagged, only a cap does that.
	 */
	EXPECT(run_sse, "data: a\n\ndata: last\n", NULL, "<>a|\n<>last|\n");
	EXPECT(run_sse, "event: u\ndata: last", NULL, "<u>last|\n");
	EXPECT(run_sse, "data: a\r\n\r\n", NULL, "<>a|\n");
	EXPECT(run_sse, "data: a\r\n\r", NULL, "<>a|\n");
	EXPECT(run_sse, "event: only\n", NULL, "");
}

static void test_sse_cap(void **state)
{
	size_t max = 16;

	(void)state;
	/* One line over the cap: cut to 16 bytes, "data: " included. */
	EXPECT(run_sse, "data: 0123456789abcdefghij\n\ndata: ok\n\n", &max,
	       "<>T0123456789|\n<>ok|\n");
	/* Data over the cap across lines: keeps the first 16 bytes. */
	EXPECT(run_sse, "data: 0123456\ndata: 789abcdef\n\ndata: ok\n\n", &max,
	       "<>T0123456\n789abcde|\n<>ok|\n");
	/* Exactly at the cap is not cut. */
	EXPECT(run_sse, "data: 0123456789\n\n", &max, "<>0123456789|\n");
}

static void test_sse_realistic(void **state)
{
	static const char in[] =
		": OPENROUTER PROCESSING\r\n\r\n"
		"event: message_start\r\n"
		"data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":25}}}\r\n\r\n"
		"event: ping\r\ndata: {\"type\": \"ping\"}\r\n\r\n"
		"event: message_delta\r\n"
		"data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":15}}\r\n\r\n";

	(void)state;
	EXPECT(run_sse, in, NULL,
	       "<message_start>{\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":25}}}|\n"
	       "<ping>{\"type\": \"ping\"}|\n"
	       "<message_delta>{\"type\":\"message_delta\",\"usage\":{\"output_tokens\":15}}|\n");
}

/* ---- chunked ----------------------------------------------------------- */

static void on_chunk(void *user, const char *p, size_t n)
{
	struct out *o = user;
	assert_true(n > 0);
	out_addn(o, p, n);
}

/* Transcript: the data, then "|used=N done=D err=E". */
static void run_chunked(const char *in, size_t len, int mode, void *cfg,
			struct out *o)
{
	splitter s;
	const char *p;
	size_t n, used = 0;
	int err = 0, ended = 0;
	tt_chunked c;

	(void)cfg;
	tt_chunked_init(&c);
	split_init(&s, in, len, mode);
	while (split_next(&s, &p, &n)) {
		long r = tt_chunked_feed(&c, p, n, on_chunk, o);
		if (r < 0) {
			err = 1;
			/* Sticky: still an error. */
			assert_int_equal(tt_chunked_feed(&c, "0", 1, on_chunk, o), -1);
			break;
		}
		assert_true((size_t)r <= n);
		if (ended)
			assert_int_equal(r, 0);
		used += (size_t)r;
		if ((size_t)r < n)
			ended = 1;
	}
	/* Bytes used are only known while the body is well formed. */
	if (err)
		out_printf(o, "|used=? done=%d err=1", tt_chunked_done(&c));
	else
		out_printf(o, "|used=%zu done=%d err=0", used, tt_chunked_done(&c));
}

static void expect_chunked(const char *in, const char *data, long used)
{
	char want[1024];
	if (used < 0)
		snprintf(want, sizeof(want), "%s|used=", data);
	else
		snprintf(want, sizeof(want), "%s|used=%ld done=1 err=0", data, used);
	struct out got = run_all(run_chunked, in, strlen(in), NULL);
	if (used < 0) {
		/* Malformed: the data before the fault, then an error. */
		assert_memory_equal(got.s, want, strlen(want));
		assert_non_null(strstr(got.s, "done=0 err=1"));
	} else {
		assert_string_equal(got.s, want);
	}
	out_free(&got);
}

static void test_chunked_basic(void **state)
{
	static const char body[] = "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";

	(void)state;
	expect_chunked(body, "hello world", (long)strlen(body));
	expect_chunked("0\r\n\r\n", "", 5);
	expect_chunked("000\r\n\r\n", "", 7);
}

static void test_chunked_extensions(void **state)
{
	static const char body[] =
		"5;foo=bar\r\nhello\r\n"
		"6 ; name=\"q;x\"\r\n world\r\n"
		"0;last=1\r\n\r\n";

	(void)state;
	expect_chunked(body, "hello world", (long)strlen(body));
}

static void test_chunked_trailers(void **state)
{
	static const char body[] =
		"3\r\nabc\r\n0\r\nX-Checksum: 42\r\nServer-Timing: a;dur=1\r\n\r\n";

	(void)state;
	expect_chunked(body, "abc", (long)strlen(body));
}

static void test_chunked_bare_lf(void **state)
{
	static const char body[] = "5\nhello\n3\r\nabc\n0\nT: v\n\n";

	(void)state;
	expect_chunked(body, "helloabc", (long)strlen(body));
}

static void test_chunked_hex(void **state)
{
	char body[512];
	const char *d26 = "abcdefghijklmnopqrstuvwxyz";
	const char *d31 = "0123456789012345678901234567890";

	(void)state;
	snprintf(body, sizeof(body), "A\r\n0123456789\r\n1F\r\n%s\r\n1a\r\n%s\r\n"
		 "00000000000000A\r\n0123456789\r\n0\r\n\r\n", d31, d26);
	char want[256];
	snprintf(want, sizeof(want), "0123456789%s%s0123456789", d31, d26);
	expect_chunked(body, want, (long)strlen(body));
}

static void test_chunked_next_message(void **state)
{
	static const char body[] = "4\r\nwxyz\r\n0\r\n\r\n";
	char in[256];

	(void)state;
	snprintf(in, sizeof(in), "%sHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		 body);
	expect_chunked(in, "wxyz", (long)strlen(body));

	/* Whole: the return value is exactly the body's length. */
	tt_chunked c;
	struct out o = { 0 };
	tt_chunked_init(&c);
	assert_int_equal(tt_chunked_feed(&c, in, strlen(in), on_chunk, &o),
			 (long)strlen(body));
	assert_true(tt_chunked_done(&c));
	assert_int_equal(tt_chunked_feed(&c, "5\r\n", 3, on_chunk, &o), 0);
	out_free(&o);
}

static void test_chunked_malformed(void **state)
{
	(void)state;
	expect_chunked("g\r\nabc", "", -1);
	expect_chunked("\r\n", "", -1);
	expect_chunked(";ext\r\n", "", -1);
	expect_chunked("-1\r\n", "", -1);
	expect_chunked("0x5\r\nhello\r\n", "", -1);
	expect_chunked("5\r\nhelloX\r\n0\r\n\r\n", "hello", -1);
	expect_chunked("5\r\nhello\rX0\r\n\r\n", "hello", -1);
	expect_chunked("3\r\nabc\r\nzz\r\n", "abc", -1);
	/* More than 15 hex digits, even if the value is small. */
	expect_chunked("1000000000000000\r\n", "", -1);
	expect_chunked("0000000000000005\r\nhello\r\n0\r\n\r\n", "", -1);
	expect_chunked("FFFFFFFFFFFFFFFFF\r\n", "", -1);
}

static void test_chunked_big_size(void **state)
{
	/* 15 hex digits is allowed: the data just keeps coming. */
	static const char in[] = "FFFFFFFFFFFFFFF\r\nabc";
	struct out got = run_all(run_chunked, in, sizeof(in) - 1, NULL);

	(void)state;
	assert_string_equal(got.s, "abc|used=20 done=0 err=0");
	out_free(&got);
}

/* ---- jsonseq ----------------------------------------------------------- */

static void on_value(void *user, const char *head, size_t head_len,
		     const char *tail, size_t tail_len, int truncated)
{
	struct out *o = user;
	out_printf(o, "%s(", truncated ? "T" : "");
	out_addn(o, head, head_len);
	if (tail_len) {
		out_addn(o, "...", 3);
		out_addn(o, tail, tail_len);
	}
	out_addn(o, ")\n", 2);
}

static void run_jsonseq(const char *in, size_t len, int mode, void *cfg,
			struct out *o)
{
	size_t max = cfg ? *(size_t *)cfg : 4096;
	splitter s;
	const char *p;
	size_t n;
	tt_jsonseq j;

	tt_jsonseq_init(&j, max, on_value, o);
	split_init(&s, in, len, mode);
	while (split_next(&s, &p, &n))
		tt_jsonseq_feed(&j, p, n);
	tt_jsonseq_end(&j);
	tt_jsonseq_free(&j);
}

static void test_jsonseq_object(void **state)
{
	(void)state;
	EXPECT(run_jsonseq, "{\"a\":1,\"b\":{\"c\":[1,2]}}", NULL,
	       "({\"a\":1,\"b\":{\"c\":[1,2]}})\n");
	EXPECT(run_jsonseq, " \r\n\t{\"usage\": {\"x\": 2}}\r\n", NULL,
	       "({\"usage\": {\"x\": 2}})\n");
	/* Values one after another (no array) each come out. */
	EXPECT(run_jsonseq, "{\"a\":1}\n{\"b\":2}\n", NULL,
	       "({\"a\":1})\n({\"b\":2})\n");
	EXPECT(run_jsonseq, "", NULL, "");
}

static void test_jsonseq_array(void **state)
{
	(void)state;
	EXPECT(run_jsonseq,
	       "[\r\n  {\"a\":1} ,\r\n{\"b\":[1,2]}\r\n,{}\r\n]\r\n", NULL,
	       "({\"a\":1})\n({\"b\":[1,2]})\n({})\n");
	EXPECT(run_jsonseq, "[{\"x\":1},{\"y\":2}]", NULL,
	       "({\"x\":1})\n({\"y\":2})\n");
	EXPECT(run_jsonseq, "[]", NULL, "");
	/* Nested arrays: each top-level element is one value. */
	EXPECT(run_jsonseq, "[[1,[2,3]],[4],[[]]]", NULL,
	       "([1,[2,3]])\n([4])\n([[]])\n");
}

static void test_jsonseq_strings(void **state)
{
	(void)state;
	/* Braces, brackets and escaped quotes inside strings are text. */
	EXPECT(run_jsonseq,
	       "[{\"s\":\"}]{[\"},{\"t\":\"a\\\"}b\\\\\"},{\"u\":\"\\\\\\\"]\"}]",
	       NULL,
	       "({\"s\":\"}]{[\"})\n({\"t\":\"a\\\"}b\\\\\"})\n"
	       "({\"u\":\"\\\\\\\"]\"})\n");
	EXPECT(run_jsonseq, "{\"k\":\"\\u007d\\\\\",\"z\":\"]\"}", NULL,
	       "({\"k\":\"\\u007d\\\\\",\"z\":\"]\"})\n");
}

static void test_jsonseq_unterminated(void **state)
{
	(void)state;
	/* A value still open at the end is delivered, truncated. */
	EXPECT(run_jsonseq, "[{\"a\":1}, {\"b\":", NULL,
	       "({\"a\":1})\nT({\"b\":)\n");
}

/* A value over the cap: head = first cap bytes, tail = the last bytes. */
static void check_jsonseq_huge(size_t cap, size_t filler)
{
	struct out in = { 0 }, want = { 0 };
	size_t vstart, vlen;

	out_addn(&in, "[{\"small\":1},\n", 14);
	vstart = in.len;
	out_addn(&in, "{\"data\":\"", 9);
	for (size_t i = 0; i < filler; i++) {
		char ch = (char)('a' + (i * 7 + i / 26) % 26);
		out_addn(&in, &ch, 1);
	}
	out_addn(&in, "\",\"usage\":{\"total_tokens\":12}}", 30);
	vlen = in.len - vstart;
	out_addn(&in, ",{\"after\":2}]", 13);

	size_t tail_len = vlen - cap;
	if (tail_len > TT_JSONSEQ_TAIL)
		tail_len = TT_JSONSEQ_TAIL;
	out_addn(&want, "({\"small\":1})\nT(", 16);
	out_addn(&want, in.s + vstart, cap);
	out_addn(&want, "...", 3);
	out_addn(&want, in.s + vstart + vlen - tail_len, tail_len);
	out_addn(&want, ")\n({\"after\":2})\n", 16);

	struct out got = run_all(run_jsonseq, in.s, in.len, &cap);
	assert_int_equal(got.len, want.len);
	assert_memory_equal(got.s, want.s, want.len);
	out_free(&got);
	out_free(&in);
	out_free(&want);
}

static void test_jsonseq_over_cap(void **state)
{
	(void)state;
	check_jsonseq_huge(32, 100);                    /* tail: all the rest */
	check_jsonseq_huge(64, TT_JSONSEQ_TAIL + 5000); /* tail: the last 64 KiB */
}

/* ---- eventstream ------------------------------------------------------- */

struct es_hdr {
	const char *name;
	int type;              /* 0..9, the AWS header value types */
	const void *val;       /* for types 6 and 7, and fixed widths */
	size_t vlen;           /* for types 6 and 7 */
};

static void put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* Append one encoded header to o. */
static void es_put_header(struct out *o, const struct es_hdr *h)
{
	static const size_t width[] = { 0, 0, 1, 2, 4, 8, 0, 0, 8, 16 };
	unsigned char b[3];

	b[0] = (unsigned char)strlen(h->name);
	out_addn(o, b, 1);
	out_addn(o, h->name, strlen(h->name));
	b[0] = (unsigned char)h->type;
	out_addn(o, b, 1);
	if (h->type == 6 || h->type == 7) {
		b[0] = (unsigned char)(h->vlen >> 8);
		b[1] = (unsigned char)h->vlen;
		out_addn(o, b, 2);
		out_addn(o, h->val, h->vlen);
	} else {
		out_addn(o, h->val, width[h->type]);
	}
}

/* Append one whole message to o, CRCs computed with zlib's crc32. */
static void es_put_message(struct out *o, const struct es_hdr *h, size_t nh,
			   const void *payload, size_t plen)
{
	struct out hdrs = { 0 };
	unsigned char pre[12], crcb[4];
	size_t start = o->len;

	for (size_t i = 0; i < nh; i++)
		es_put_header(&hdrs, &h[i]);
	put_be32(pre, (uint32_t)(16 + hdrs.len + plen));
	put_be32(pre + 4, (uint32_t)hdrs.len);
	put_be32(pre + 8, (uint32_t)crc32(0L, pre, 8));
	out_addn(o, pre, 12);
	out_addn(o, hdrs.s, hdrs.len);
	out_addn(o, payload, plen);
	put_be32(crcb, (uint32_t)crc32(0L, (const Bytef *)o->s + start,
				       (uInt)(o->len - start)));
	out_addn(o, crcb, 4);
	out_free(&hdrs);
}

#define STR(n, v) { n, 7, v, sizeof(v) - 1 }

static void es_put_event(struct out *o, const char *type, const char *json)
{
	struct es_hdr h[] = {
		{ ":event-type", 7, type, strlen(type) },
		STR(":content-type", "application/json"),
		STR(":message-type", "event"),
	};
	es_put_message(o, h, 3, json, strlen(json));
}

static void on_es(void *user, const tt_es_message *m)
{
	struct out *o = user;
	out_printf(o, "ev=%s mt=%s ex=%s {", m->event_type, m->message_type,
		   m->exception_type);
	out_addn(o, m->payload, m->payload_len);
	out_addn(o, "}\n", 2);
}

/* Transcript: messages, then "rc=<first error of feed> end=<end()>". */
static void run_es(const char *in, size_t len, int mode, void *cfg,
		   struct out *o)
{
	size_t max = cfg ? *(size_t *)cfg : 1 << 20;
	splitter s;
	const char *p;
	size_t n;
	int rc = 0;
	tt_eventstream e;

	tt_eventstream_init(&e, max, on_es, o);
	split_init(&s, in, len, mode);
	while (split_next(&s, &p, &n)) {
		int r = tt_eventstream_feed(&e, p, n);
		if (rc)
			assert_int_equal(r, rc); /* sticky */
		else
			rc = r;
	}
	out_printf(o, "rc=%d end=%d", rc, tt_eventstream_end(&e));
	tt_eventstream_free(&e);
}

static void test_es_messages(void **state)
{
	struct out in = { 0 };

	(void)state;
	es_put_event(&in, "messageStart", "{\"role\":\"assistant\"}");
	es_put_event(&in, "contentBlockDelta", "{\"delta\":{\"text\":\"Hi\"}}");
	es_put_event(&in, "metadata",
		     "{\"usage\":{\"inputTokens\":12,\"outputTokens\":3}}");
	/* No headers at all, empty payload. */
	es_put_message(&in, NULL, 0, "", 0);
	struct out got = run_all(run_es, in.s, in.len, NULL);
	assert_string_equal(got.s,
		"ev=messageStart mt=event ex= {{\"role\":\"assistant\"}}\n"
		"ev=contentBlockDelta mt=event ex= {{\"delta\":{\"text\":\"Hi\"}}}\n"
		"ev=metadata mt=event ex= {{\"usage\":{\"inputTokens\":12,\"outputTokens\":3}}}\n"
		"ev= mt= ex= {}\n"
		"rc=0 end=0");
	out_free(&got);
	out_free(&in);
}

static void test_es_header_types(void **state)
{
	static const unsigned char b8[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	static const unsigned char uuid[16] = { 0x3a, 0x07, 0x0b, 0xff };
	static const unsigned char one = 0x07, two[2] = { 0x3a, 0x00 };
	static const unsigned char four[4] = { 0, 0, 0, 0x0b };
	/* Values that look like a header name/type if mis-skipped. */
	struct es_hdr h[] = {
		{ "flag-true", 0, NULL, 0 },
		{ "flag-false", 1, NULL, 0 },
		{ "a-byte", 2, &one, 1 },
		{ "a-short", 3, two, 2 },
		{ "an-int", 4, four, 4 },
		{ "a-long", 5, b8, 8 },
		{ "some-bytes", 6, "\x0b:event-type\x07", 13 },
		{ ":event-type", 7, "chunk", 5 },
		{ "a-timestamp", 8, b8, 8 },
		{ "a-uuid", 9, uuid, 16 },
		STR(":message-type", "exception"),
		{ ":exception-type", 7, "throttlingException", 19 },
		{ ":event-type-x", 7, "not-this", 8 },
	};
	struct out in = { 0 };

	(void)state;
	es_put_message(&in, h, sizeof(h) / sizeof(h[0]), "{\"message\":\"slow\"}", 18);
	struct out got = run_all(run_es, in.s, in.len, NULL);
	assert_string_equal(got.s,
		"ev=chunk mt=exception ex=throttlingException {{\"message\":\"slow\"}}\n"
		"rc=0 end=0");
	out_free(&got);
	out_free(&in);
}

static void test_es_bad_crc(void **state)
{
	struct out in = { 0 };
	size_t second;

	(void)state;
	es_put_event(&in, "a", "{}");
	second = in.len;
	es_put_event(&in, "b", "{\"x\":1}");
	es_put_event(&in, "c", "{}");

	/* Prelude CRC of the second message. */
	in.s[second + 8] ^= 0x01;
	struct out got = run_all(run_es, in.s, in.len, NULL);
	assert_string_equal(got.s, "ev=a mt=event ex= {{}}\nrc=-4 end=-4");
	out_free(&got);
	in.s[second + 8] ^= 0x01;

	/* Message CRC of the second message. */
	size_t end2 = second + ((size_t)(unsigned char)in.s[second + 2] << 8 |
				(unsigned char)in.s[second + 3]);
	in.s[end2 - 1] ^= 0x80;
	got = run_all(run_es, in.s, in.len, NULL);
	assert_string_equal(got.s, "ev=a mt=event ex= {{}}\nrc=-4 end=-4");
	out_free(&got);
	in.s[end2 - 1] ^= 0x80;

	/* A payload byte of the second message. */
	in.s[end2 - 6] ^= 0x20;
	got = run_all(run_es, in.s, in.len, NULL);
	assert_string_equal(got.s, "ev=a mt=event ex= {{}}\nrc=-4 end=-4");
	out_free(&got);
	out_free(&in);
}

static void test_es_bad_headers(void **state)
{
	/* A header whose value length runs past the header block. */
	struct out in = { 0 };
	struct es_hdr h[] = { STR(":event-type", "chunk") };

	(void)state;
	es_put_message(&in, h, 1, "{}", 2);
	/* Rewrite the string length (1 + 11 + 1 bytes in) and fix the CRC. */
	in.s[12 + 13] = 0;
	in.s[12 + 14] = 50;
	put_be32((unsigned char *)in.s + in.len - 4,
		 (uint32_t)crc32(0L, (const Bytef *)in.s, (uInt)(in.len - 4)));
	struct out got = run_all(run_es, in.s, in.len, NULL);
	assert_string_equal(got.s, "rc=-4 end=-4");
	out_free(&got);
	out_free(&in);
}

/*
 * A bad prelude is known as soon as its 12 bytes are in: the verdict must
 * not depend on whether the rest of the claimed message arrived in the
 * same piece (DESIGN: the same result however the bytes are cut).
 */
static void test_es_bad_prelude_early(void **state)
{
	struct out in = { 0 };
	size_t second;

	(void)state;
	es_put_event(&in, "a", "{}");
	second = in.len;
	es_put_event(&in, "b", "{\"payload\":\"long enough to be cut\"}");
	in.s[second + 9] ^= 0x10; /* the prelude CRC */
	/* The stream stops halfway through the damaged message. */
	struct out got = run_all(run_es, in.s, second + 20, NULL);
	assert_string_equal(got.s, "ev=a mt=event ex= {{}}\nrc=-4 end=-4");
	out_free(&got);

	/* A length below the 16-byte minimum, with a valid prelude CRC. */
	unsigned char pre[12];
	put_be32(pre, 8);
	put_be32(pre + 4, 0);
	put_be32(pre + 8, (uint32_t)crc32(0L, pre, 8));
	got = run_all(run_es, (const char *)pre, sizeof(pre), NULL);
	assert_string_equal(got.s, "rc=-4 end=-4");
	out_free(&got);
	out_free(&in);
}

static void test_es_over_cap(void **state)
{
	struct out in = { 0 };
	char big[200];
	size_t max = 128;

	(void)state;
	es_put_event(&in, "small", "{}");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	es_put_event(&in, "big", big);
	struct out got = run_all(run_es, in.s, in.len, &max);
	/* The small one comes out; the big one is an error, not a crash. */
	assert_memory_equal(got.s, "ev=small mt=event ex= {{}}\nrc=-", 31);
	assert_null(strstr(got.s, "rc=0"));
	assert_null(strstr(got.s, "end=0"));
	out_free(&got);
	out_free(&in);
}

static void test_es_truncated(void **state)
{
	struct out in = { 0 };
	size_t first;

	(void)state;
	es_put_event(&in, "a", "{\"n\":1}");
	first = in.len;
	es_put_event(&in, "b", "{\"n\":2}");

	size_t cuts[] = { first + 5, first + 12, first + 20, in.len - 1 };
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		struct out got = run_all(run_es, in.s, cuts[i], NULL);
		assert_string_equal(got.s, "ev=a mt=event ex= {{\"n\":1}}\nrc=0 end=-3");
		out_free(&got);
	}
	struct out got = run_all(run_es, in.s, first, NULL);
	assert_string_equal(got.s, "ev=a mt=event ex= {{\"n\":1}}\nrc=0 end=0");
	out_free(&got);
	got = run_all(run_es, in.s, 0, NULL);
	assert_string_equal(got.s, "rc=0 end=0");
	out_free(&got);
	out_free(&in);
}

/*
 * The fixtures live beside the checkout, <top>/../shared/fixtures/wire;
 * make test runs us from the top of the checkout.
 */
static const char *fixture_dir(void)
{
	return "../shared/fixtures/wire/bedrock";
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *p = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0) {
		p = malloc((size_t)n + 1);
		assert_non_null(p);
		if (fread(p, 1, (size_t)n, f) != (size_t)n) {
			free(p);
			p = NULL;
		} else {
			p[n] = '\0';
			*len = (size_t)n;
		}
	}
	fclose(f);
	return p;
}

struct es_fixture_cap {
	cJSON *msgs; /* array of {"t": event type, "m": message type, "p": payload} */
};

static void on_es_fixture(void *user, const tt_es_message *m)
{
	struct es_fixture_cap *c = user;
	cJSON *o = cJSON_CreateObject();
	cJSON *payload = cJSON_ParseWithLength(m->payload, m->payload_len);

	assert_non_null(payload);
	cJSON_AddStringToObject(o, "t", m->event_type);
	cJSON_AddStringToObject(o, "m", m->message_type);
	cJSON_AddItemToObject(o, "p", payload);
	cJSON_AddItemToArray(c->msgs, o);
}

static void check_es_fixture(const char *stem)
{
	char path[512];
	size_t len = 0, jlen = 0;
	char *bin, *jsonl;

	snprintf(path, sizeof(path), "%s/%s.eventstream", fixture_dir(), stem);
	bin = slurp(path, &len);
	snprintf(path, sizeof(path), "%s/%s.decoded.jsonl", fixture_dir(), stem);
	jsonl = slurp(path, &jlen);
	if (!bin || !jsonl) {
		print_message("skip fixture %s: not readable\n", stem);
		free(bin);
		free(jsonl);
		return;
	}

	for (int mode = 0; mode < SPLIT_MODES; mode++) {
		struct es_fixture_cap c = { cJSON_CreateArray() };
		tt_eventstream e;
		splitter s;
		const char *p;
		size_t n;

		tt_eventstream_init(&e, 1 << 20, on_es_fixture, &c);
		split_init(&s, bin, len, mode);
		while (split_next(&s, &p, &n))
			assert_int_equal(tt_eventstream_feed(&e, p, n), 0);
		assert_int_equal(tt_eventstream_end(&e), 0);
		tt_eventstream_free(&e);

		/* One recorded line per message, in order. */
		int i = 0;
		char *line = jsonl, *nl;
		for (; *line; line = nl + 1, i++) {
			nl = strchr(line, '\n');
			if (!nl)
				nl = line + strlen(line);
			if (nl == line) {
				i--;
				if (!*nl)
					break;
				continue;
			}
			cJSON *rec = cJSON_ParseWithLength(line, (size_t)(nl - line));
			assert_non_null(rec);
			cJSON *got = cJSON_GetArrayItem(c.msgs, i);
			if (!got)
				fail_msg("%s: message %d missing", stem, i);
			cJSON *hdrs = cJSON_GetObjectItem(rec, "headers");
			cJSON *et = cJSON_GetObjectItem(hdrs, ":event-type");
			cJSON *mt = cJSON_GetObjectItem(hdrs, ":message-type");
			assert_true(cJSON_IsString(et));
			assert_string_equal(cJSON_GetObjectItem(got, "t")->valuestring,
					    et->valuestring);
			if (cJSON_IsString(mt))
				assert_string_equal(cJSON_GetObjectItem(got, "m")->valuestring,
						    mt->valuestring);
			/* The recorder added bytes_decoded: not on the wire. */
			cJSON *want = cJSON_GetObjectItem(rec, "payload");
			cJSON_DeleteItemFromObject(want, "bytes_decoded");
			assert_true(cJSON_Compare(want, cJSON_GetObjectItem(got, "p"), 1));
			cJSON_Delete(rec);
			if (!*nl) {
				i++;
				break;
			}
		}
		assert_int_equal(cJSON_GetArraySize(c.msgs), i);
		assert_true(i > 0);
		cJSON_Delete(c.msgs);
	}
	free(bin);
	free(jsonl);
}

static void test_es_fixtures(void **state)
{
	static const char *const stems[] = {
		"converse-stream-claude3-sonnet",
		"invoke-stream-anthropic",
		"invoke-stream-nova",
	};
	char probe[512];
	FILE *f;

	(void)state;
	snprintf(probe, sizeof(probe), "%s/%s.eventstream", fixture_dir(), stems[0]);
	f = fopen(probe, "rb");
	if (!f) {
		print_message("skip: Bedrock wire fixtures not found at %s\n",
			      fixture_dir());
		skip();
	}
	fclose(f);
	for (size_t i = 0; i < sizeof(stems) / sizeof(stems[0]); i++)
		check_es_fixture(stems[i]);
}

/* ---- route ------------------------------------------------------------- */

struct route_case {
	const char *method, *target, *host;
	int llm;
	tt_family family;
	const char *provider, *api;
	int stream_by_path, stream_default;
	const char *path_model;
};

static const struct route_case route_cases[] = {
	{ "POST", "/v1/chat/completions", "api.openai.com", 1,
	  TT_FAMILY_OPENAI_CHAT, "openai", "chat.completions", 0, 0, "" },
	{ "POST", "/v1/chat/completions?trace=1", "api.openai.com:443", 1,
	  TT_FAMILY_OPENAI_CHAT, "openai", "chat.completions", 0, 0, "" },
	{ "POST", "/v1/chat/completions/", "evilapi.openai.com", 1,
	  TT_FAMILY_OPENAI_CHAT, "openai_compatible", "chat.completions", 0, 0, "" },
	{ "POST", "/proxy/openai/v1/chat/completions?x=y#f", "gw.internal", 1,
	  TT_FAMILY_OPENAI_CHAT, "openai_compatible", "chat.completions", 0, 0, "" },
	{ "POST", "/chat/completions", "api.deepseek.com", 1,
	  TT_FAMILY_OPENAI_CHAT, "deepseek", "chat.completions", 0, 0, "" },
	{ "POST", "/v1/chat/completions", "api.mistral.ai", 1,
	  TT_FAMILY_OPENAI_CHAT, "mistral", "chat.completions", 0, 0, "" },
	{ "POST", "/openai/v1/chat/completions", "api.groq.com", 1,
	  TT_FAMILY_OPENAI_CHAT, "groq", "chat.completions", 0, 0, "" },
	{ "POST", "/api/v1/chat/completions", "openrouter.ai", 1,
	  TT_FAMILY_OPENAI_CHAT, "openrouter", "chat.completions", 0, 0, "" },
	{ "POST", "/v1/chat/completions", NULL, 1,
	  TT_FAMILY_OPENAI_CHAT, "openai_compatible", "chat.completions", 0, 0, "" },
	{ "POST", "/v1/completions", "localhost:8000", 1,
	  TT_FAMILY_OPENAI_CHAT, "openai_compatible", "completions", 0, 0, "" },
	{ "POST", "/v1/responses?stream=true", "api.openai.com", 1,
	  TT_FAMILY_OPENAI_RESPONSES, "openai", "responses", 0, 0, "" },
	{ "POST", "/v1/embeddings", "api.openai.com", 1,
	  TT_FAMILY_OPENAI_EMBEDDINGS, "openai", "embeddings", 0, 0, "" },
	/* Azure: the deployment names the model. */
	{ "POST", "/openai/deployments/my-gpt4o/chat/completions?api-version=2024-06-01",
	  "res.openai.azure.com", 1, TT_FAMILY_OPENAI_CHAT, "azure_openai",
	  "chat.completions", 0, 0, "my-gpt4o" },
	{ "POST", "/gw/openai/deployments/emb-small/embeddings?api-version=2024-06-01",
	  "gateway.corp", 1, TT_FAMILY_OPENAI_EMBEDDINGS, "azure_openai",
	  "embeddings", 0, 0, "emb-small" },
	{ "POST", "/v1/messages", "api.anthropic.com", 1,
	  TT_FAMILY_ANTHROPIC, "anthropic", "messages", 0, 0, "" },
	{ "POST", "/anthropic/v1/messages?beta=true", "gw.internal", 1,
	  TT_FAMILY_ANTHROPIC, "anthropic", "messages", 0, 0, "" },
	{ "POST", "/v1/messages/count_tokens", "api.anthropic.com", 0,
	  TT_FAMILY_NONE, NULL, NULL, 0, 0, "" },
	{ "POST", "/v1/messages/batches", "api.anthropic.com", 0,
	  TT_FAMILY_NONE, NULL, NULL, 0, 0, "" },
	{ "POST", "/v1beta/models/gemini-1.5-pro:generateContent?key=SECRET",
	  "generativelanguage.googleapis.com", 1, TT_FAMILY_GEMINI, "gemini",
	  "generate_content", -1, 0, "gemini-1.5-pro" },
	{ "POST", "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
	  "generativelanguage.googleapis.com", 1, TT_FAMILY_GEMINI, "gemini",
	  "generate_content", 1, 0, "gemini-2.0-flash" },
	{ "POST", "/v1/projects/p1/locations/us-central1/publishers/google/models/"
		  "gemini-1.5-flash-002:streamGenerateContent",
	  "us-central1-aiplatform.googleapis.com", 1, TT_FAMILY_GEMINI, "gemini",
	  "generate_content", 1, 0, "gemini-1.5-flash-002" },
	{ "POST", "/model/anthropic.claude-3-sonnet-20240229-v1%3A0/converse",
	  "bedrock-runtime.us-east-1.amazonaws.com", 1, TT_FAMILY_BEDROCK_CONVERSE,
	  "bedrock", "converse", -1, 0, "anthropic.claude-3-sonnet-20240229-v1:0" },
	{ "POST", "/model/us.amazon.nova-lite-v1%3a0/converse-stream",
	  "bedrock-runtime.us-east-1.amazonaws.com", 1, TT_FAMILY_BEDROCK_CONVERSE,
	  "bedrock", "converse_stream", 1, 0, "us.amazon.nova-lite-v1:0" },
	{ "POST", "/model/anthropic.claude-3-sonnet-20240229-v1%3A0/invoke",
	  "bedrock-runtime.us-east-1.amazonaws.com", 1, TT_FAMILY_BEDROCK_INVOKE,
	  "bedrock", "invoke", -1, 0, "anthropic.claude-3-sonnet-20240229-v1:0" },
	{ "POST", "/model/anthropic.claude-3-sonnet-20240229-v1%3A0/invoke-with-response-stream",
	  "bedrock-runtime.us-east-1.amazonaws.com", 1, TT_FAMILY_BEDROCK_INVOKE,
	  "bedrock", "invoke_stream", 1, 0, "anthropic.claude-3-sonnet-20240229-v1:0" },
	{ "POST", "/api/chat", "localhost:11434", 1, TT_FAMILY_OLLAMA,
	  "ollama", "ollama.chat", 0, 1, "" },
	{ "POST", "/api/generate", "localhost:11434", 1, TT_FAMILY_OLLAMA,
	  "ollama", "ollama.generate", 0, 1, "" },
	{ "POST", "/api/embed", "localhost:11434", 1, TT_FAMILY_OLLAMA,
	  "ollama", "ollama.embed", -1, 0, "" },
	{ "POST", "/v2/chat", "api.cohere.com", 1, TT_FAMILY_COHERE,
	  "cohere", "cohere.chat", 0, 0, "" },
	/* Not LLM calls. */
	{ "GET", "/v1/chat/completions", "api.openai.com", 0, TT_FAMILY_NONE,
	  NULL, NULL, 0, 0, "" },
	{ "PUT", "/v1/messages", "api.anthropic.com", 0, TT_FAMILY_NONE,
	  NULL, NULL, 0, 0, "" },
	{ "GET", "/v1/models", "api.openai.com", 0, TT_FAMILY_NONE,
	  NULL, NULL, 0, 0, "" },
	{ "POST", "/v1/models", "api.openai.com", 0, TT_FAMILY_NONE,
	  NULL, NULL, 0, 0, "" },
	{ "POST", "/v1/files", "api.openai.com", 0, TT_FAMILY_NONE,
	  NULL, NULL, 0, 0, "" },
	{ "POST", "/search?q=/v1/chat/completions", "example.com", 0,
	  TT_FAMILY_NONE, NULL, NULL, 0, 0, "" },
	{ "POST", "/", "example.com", 0, TT_FAMILY_NONE, NULL, NULL, 0, 0, "" },
};

static void test_route(void **state)
{
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(route_cases) / sizeof(route_cases[0]); i++) {
		const struct route_case *c = &route_cases[i];
		tt_route r;
		int llm = tt_route_match(&r, c->method, c->target,
					 strlen(c->target), c->host);
		int ok = llm == c->llm;
		if (ok && llm) {
			ok = r.family == c->family &&
			     !strcmp(r.provider, c->provider) &&
			     !strcmp(r.api, c->api) &&
			     r.stream_by_path == c->stream_by_path &&
			     r.stream_default == c->stream_default &&
			     !strcmp(r.path_model, c->path_model);
		}
		if (!ok) {
			print_message("route %s %s (host %s): got llm=%d family=%d "
				      "provider=%s api=%s stream=%d/%d model=%s\n",
				      c->method, c->target, c->host ? c->host : "-",
				      llm, r.family, llm ? r.provider : "-",
				      llm ? r.api : "-", r.stream_by_path,
				      r.stream_default, r.path_model);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

/*
 * Bedrock bodies never name the model: the path is the only source.  A raw
 * colon is legal in a path (RFC 3986 pchar), and a client or proxy that
 * does not escape it must still give the whole model id.
 */
static void test_route_bedrock_raw_colon(void **state)
{
	static const char t[] =
		"/model/anthropic.claude-3-sonnet-20240229-v1:0/converse";
	tt_route r;

	(void)state;
	assert_int_equal(tt_route_match(&r, "POST", t, sizeof(t) - 1, NULL), 1);
	assert_int_equal(r.family, TT_FAMILY_BEDROCK_CONVERSE);
	assert_string_equal(r.path_model, "anthropic.claude-3-sonnet-20240229-v1:0");
}

static void test_route_target_len(void **state)
{
	/* Only target_len bytes are the target. */
	static const char buf[] = "/v1/chat/completionsXYZ";
	tt_route r;

	(void)state;
	assert_int_equal(tt_route_match(&r, "POST", buf, 20, NULL), 1);
	assert_string_equal(r.api, "chat.completions");
	assert_int_equal(tt_route_match(&r, "POST", buf, 19, NULL), 0);
}

/* ---- request ----------------------------------------------------------- */

static void parse_req(tt_request_info *info, const char *target,
		      const char *body)
{
	tt_route r;
	assert_int_equal(tt_route_match(&r, "POST", target, strlen(target),
					 "example.com"), 1);
	tt_request_parse(info, &r, body, strlen(body));
}

static int is_hex32(const char *s)
{
	if (strlen(s) != 32)
		return 0;
	for (int i = 0; i < 32; i++)
		if (!strchr("0123456789abcdef", s[i]))
			return 0;
	return 1;
}

static void test_request_fields(void **state)
{
	tt_request_info in;

	(void)state;
	parse_req(&in, "/v1/chat/completions",
		  "{\"model\":\"gpt-4o-mini\",\"stream\":true,"
		  "\"stream_options\":{\"include_usage\":true},\"max_tokens\":50,"
		  "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
	assert_int_equal(in.parsed, 1);
	assert_string_equal(in.model, "gpt-4o-mini");
	assert_int_equal(in.stream, 1);
	assert_int_equal(in.include_usage, 1);
	assert_int_equal(in.max_tokens, 50);
	assert_true(is_hex32(in.prompt_hash));

	parse_req(&in, "/v1/chat/completions",
		  "{\"model\":\"o3-mini\",\"stream\":true,\"max_completion_tokens\":77,"
		  "\"stream_options\":{\"include_usage\":false},"
		  "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
	assert_string_equal(in.model, "o3-mini");
	assert_int_equal(in.include_usage, 0);
	assert_int_equal(in.max_tokens, 77);

	parse_req(&in, "/v1/chat/completions",
		  "{\"model\":\"m\",\"messages\":[]}");
	assert_int_equal(in.stream, -1);
	assert_int_equal(in.include_usage, 0);
	assert_int_equal(in.max_tokens, TT_NULL);

	parse_req(&in, "/v1/responses",
		  "{\"model\":\"gpt-4.1\",\"stream\":false,\"max_output_tokens\":99,"
		  "\"instructions\":\"be brief\",\"input\":\"hello\"}");
	assert_string_equal(in.model, "gpt-4.1");
	assert_int_equal(in.stream, 0);
	assert_int_equal(in.max_tokens, 99);

	parse_req(&in, "/v1/messages",
		  "{\"model\":\"claude-3-5-haiku-latest\",\"max_tokens\":1024,"
		  "\"system\":\"s\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
	assert_string_equal(in.model, "claude-3-5-haiku-latest");
	assert_int_equal(in.stream, -1);
	assert_int_equal(in.max_tokens, 1024);

	/* Gemini: model from the path, ceiling in generationConfig. */
	parse_req(&in, "/v1beta/models/gemini-1.5-pro:generateContent",
		  "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"x\"}]}],"
		  "\"generationConfig\":{\"temperature\":0.2,\"maxOutputTokens\":256}}");
	assert_string_equal(in.model, "gemini-1.5-pro");
	assert_int_equal(in.max_tokens, 256);

	/* Ollama: options.num_predict. */
	parse_req(&in, "/api/chat",
		  "{\"model\":\"llama3.2\",\"options\":{\"num_predict\":42},"
		  "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
	assert_string_equal(in.model, "llama3.2");
	assert_int_equal(in.stream, -1);
	assert_int_equal(in.max_tokens, 42);

	/* Bedrock Converse: inferenceConfig.maxTokens, model from the path. */
	parse_req(&in, "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse",
		  "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"x\"}]}],"
		  "\"inferenceConfig\":{\"maxTokens\":512,\"temperature\":0.5}}");
	assert_string_equal(in.model, "anthropic.claude-3-haiku-20240307-v1:0");
	assert_int_equal(in.max_tokens, 512);
}

static void test_request_hashes(void **state)
{
	tt_request_info a, b, c, d, e;

	(void)state;
	parse_req(&a, "/v1/chat/completions",
		  "{\"model\":\"m\",\"messages\":["
		  "{\"role\":\"system\",\"content\":\"You are terse.\"},"
		  "{\"role\":\"user\",\"content\":\"What is 2+2?\"}]}");
	/* Same, formatted differently: the hashes are over compact JSON. */
	parse_req(&b, "/v1/chat/completions",
		  "{ \"model\": \"m\",\n  \"messages\": [\n"
		  "  { \"role\": \"system\", \"content\": \"You are terse.\" },\n"
		  "  { \"role\": \"user\", \"content\": \"What is 2+2?\" } ] }");
	/* Another user message. */
	parse_req(&c, "/v1/chat/completions",
		  "{\"model\":\"m\",\"messages\":["
		  "{\"role\":\"system\",\"content\":\"You are terse.\"},"
		  "{\"role\":\"user\",\"content\":\"What is 3+3?\"},"
		  "{\"role\":\"assistant\",\"content\":\"6\"}]}");
	/* Another system message. */
	parse_req(&d, "/v1/chat/completions",
		  "{\"model\":\"m\",\"messages\":["
		  "{\"role\":\"system\",\"content\":\"You are verbose.\"},"
		  "{\"role\":\"user\",\"content\":\"What is 2+2?\"}]}");
	/* The model does not take part in the prompt. */
	parse_req(&e, "/v1/chat/completions",
		  "{\"model\":\"other\",\"max_tokens\":5,\"messages\":["
		  "{\"role\":\"system\",\"content\":\"You are terse.\"},"
		  "{\"role\":\"user\",\"content\":\"What is 2+2?\"}]}");

	tt_request_info *all[] = { &a, &b, &c, &d, &e };
	for (int i = 0; i < 5; i++) {
		assert_true(is_hex32(all[i]->prompt_hash));
		assert_true(is_hex32(all[i]->prefix_hash));
	}
	assert_string_equal(a.prompt_hash, b.prompt_hash);
	assert_string_equal(a.prefix_hash, b.prefix_hash);
	assert_string_not_equal(a.prompt_hash, c.prompt_hash);
	assert_string_equal(a.prefix_hash, c.prefix_hash);
	assert_string_not_equal(a.prefix_hash, d.prefix_hash);
	assert_string_not_equal(a.prompt_hash, d.prompt_hash);
	assert_string_equal(a.prompt_hash, e.prompt_hash);
	assert_string_not_equal(a.prompt_hash, a.prefix_hash);

	/* Anthropic: top-level system and tools are the prefix. */
	parse_req(&a, "/v1/messages",
		  "{\"model\":\"c\",\"max_tokens\":9,\"system\":\"S\","
		  "\"tools\":[{\"name\":\"t\"}],"
		  "\"messages\":[{\"role\":\"user\",\"content\":\"one\"}]}");
	parse_req(&b, "/v1/messages",
		  "{\"model\":\"c\",\"max_tokens\":9,\"system\":\"S\","
		  "\"tools\":[{\"name\":\"t\"}],"
		  "\"messages\":[{\"role\":\"user\",\"content\":\"two\"}]}");
	parse_req(&c, "/v1/messages",
		  "{\"model\":\"c\",\"max_tokens\":9,\"system\":\"S\","
		  "\"tools\":[{\"name\":\"u\"}],"
		  "\"messages\":[{\"role\":\"user\",\"content\":\"one\"}]}");
	assert_string_not_equal(a.prompt_hash, b.prompt_hash);
	assert_string_equal(a.prefix_hash, b.prefix_hash);
	assert_string_not_equal(a.prefix_hash, c.prefix_hash);
	assert_true(a.prompt_text_bytes >= strlen("S") + strlen("one"));
}

static void test_request_not_json(void **state)
{
	tt_request_info in;

	(void)state;
	parse_req(&in, "/v1/chat/completions", "model=gpt-4o&stream=true");
	assert_int_equal(in.parsed, 0);
	assert_string_equal(in.model, "");
	assert_int_equal(in.stream, -1);
	assert_int_equal(in.max_tokens, TT_NULL);
	parse_req(&in, "/v1/chat/completions", "[{\"model\":\"x\"}]");
	assert_int_equal(in.parsed, 0);
	parse_req(&in, "/v1/chat/completions", "{\"model\":\"x\",");
	assert_int_equal(in.parsed, 0);
	/* The path still names the model. */
	parse_req(&in, "/v1beta/models/gemini-pro:generateContent", "\x01\x02");
	assert_int_equal(in.parsed, 0);
	assert_string_equal(in.model, "gemini-pro");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_cap),
		cmocka_unit_test(test_buf_grow),
		cmocka_unit_test(test_lines_endings),
		cmocka_unit_test(test_lines_cr_lf_across_pieces),
		cmocka_unit_test(test_lines_cap),
		cmocka_unit_test(test_sse_line_ends),
		cmocka_unit_test(test_sse_cr_lf_across_pieces),
		cmocka_unit_test(test_sse_fields),
		cmocka_unit_test(test_sse_empty_data),
		cmocka_unit_test(test_sse_done_is_data),
		cmocka_unit_test(test_sse_unterminated_end),
		cmocka_unit_test(test_sse_cap),
		cmocka_unit_test(test_sse_realistic),
		cmocka_unit_test(test_chunked_basic),
		cmocka_unit_test(test_chunked_extensions),
		cmocka_unit_test(test_chunked_trailers),
		cmocka_unit_test(test_chunked_bare_lf),
		cmocka_unit_test(test_chunked_hex),
		cmocka_unit_test(test_chunked_next_message),
		cmocka_unit_test(test_chunked_malformed),
		cmocka_unit_test(test_chunked_big_size),
		cmocka_unit_test(test_jsonseq_object),
		cmocka_unit_test(test_jsonseq_array),
		cmocka_unit_test(test_jsonseq_strings),
		cmocka_unit_test(test_jsonseq_unterminated),
		cmocka_unit_test(test_jsonseq_over_cap),
		cmocka_unit_test(test_es_messages),
		cmocka_unit_test(test_es_header_types),
		cmocka_unit_test(test_es_bad_crc),
		cmocka_unit_test(test_es_bad_headers),
		cmocka_unit_test(test_es_bad_prelude_early),
		cmocka_unit_test(test_es_over_cap),
		cmocka_unit_test(test_es_truncated),
		cmocka_unit_test(test_es_fixtures),
		cmocka_unit_test(test_route),
		cmocka_unit_test(test_route_bedrock_raw_colon),
		cmocka_unit_test(test_route_target_len),
		cmocka_unit_test(test_request_fields),
		cmocka_unit_test(test_request_hashes),
		cmocka_unit_test(test_request_not_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
