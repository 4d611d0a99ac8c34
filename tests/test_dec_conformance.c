/*
 * test_dec_conformance.c - the decoder against real recorded traffic.
 *
 * Every body of ../shared/fixtures/wire is put behind its request in five
 * HTTP/1.1 shapes (Content-Length, chunked, gzip, gzip+chunked and
 * close-delimited) and fed whole, in random pieces and one byte at a time.
 * The figures must equal the manifest's, normalised by wire.c (not by the
 * decoder), and the records must not depend on how the bytes were cut.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "support/feed.h"
#include "support/wire.h"

static const char *variant_name[] = { "length", "chunked", "gzip", "gzip+chunked",
				      "close" };

static int check_row(const wire_row *row, const feed_result *res, const char *how)
{
	const tt_record *r = &res->rec[0];
	int bad = 0;

	if (res->n != 1) {
		printf("FAIL %s (%s): %d records, want 1\n", row->file, how, res->n);
		return 1;
	}
#define SAME(field, want)                                                        \
	if (r->field != (want)) {                                                \
		printf("FAIL %s (%s): " #field " = %lld, want %lld\n", row->file, how, \
		       (long long)r->field, (long long)(want));                  \
		bad = 1;                                                         \
	}
	if (strcmp(row->usage_source, "estimated") != 0) {
		SAME(input_tokens, row->input);
		SAME(output_tokens, row->output);
		SAME(cache_read_tokens, row->cache_read);
		SAME(cache_write_tokens, row->cache_write);
		SAME(reasoning_tokens, row->reasoning);
	} else if (r->input_tokens < 0 || r->output_tokens <= 0) {
		printf("FAIL %s (%s): estimate in=%lld out=%lld\n", row->file, how,
		       (long long)r->input_tokens, (long long)r->output_tokens);
		bad = 1;
	}
	SAME(status, row->status);
	SAME(stream, row->streaming);
#undef SAME
	if (strcmp(r->usage_source, row->usage_source) != 0) {
		printf("FAIL %s (%s): usage_source %s, want %s\n", row->file, how,
		       r->usage_source, row->usage_source);
		bad = 1;
	}
	int want_error = row->provider_error;
	if (want_error != !strcmp(r->error, "provider_error") ||
	    (!want_error && r->error[0])) {
		printf("FAIL %s (%s): error \"%s\", want %s\n", row->file, how, r->error,
		       want_error ? "provider_error" : "none");
		bad = 1;
	}
	/* Secrets never reach the record. */
	char json[TT_RECORD_JSON_MAX];
	tt_record_to_json(r, json, sizeof(json));
	if (strstr(json, "SENTINEL")) {
		printf("FAIL %s: the API key reached the record\n", row->file);
		bad = 1;
	}
	return bad;
}

static void test_corpus(void **state)
{
	(void)state;
	wire_row *rows;
	size_t n = wire_load(&rows);
	tt_decoder_config cfg;
	int failures = 0, checked = 0;

	if (n == 0) {
		free(rows);
		skip(); /* the corpus is not beside the checkout */
		return;
	}
	tt_decoder_config_init(&cfg);
	for (size_t i = 0; i < n; i++) {
		size_t blen;
		char *body = wire_body(&rows[i], &blen);
		assert_non_null(body);
		tbuf req = { 0 };
		wire_request(&rows[i], &req);
		for (int v = 0; v < WIRE_VARIANTS; v++) {
			tbuf resp = { 0 };
			wire_response(&rows[i], body, blen, v, &resp);
			feed_piece pieces[] = {
				{ TT_DIR_SENT, req.p, req.n },
				{ TT_DIR_RECV, resp.p, resp.n },
			};
			char first[TT_RECORD_JSON_MAX] = "";
			for (int mode = FEED_WHOLE; mode <= FEED_BYTES; mode++) {
				/* One-byte feeding is slow under ASan: once per body. */
				if (mode == FEED_BYTES && v != WIRE_GZIP_CHUNKED)
					continue;
				feed_result res;
				char how[64];
				snprintf(how, sizeof(how), "%s/%s", variant_name[v],
					 mode == FEED_WHOLE ? "whole" :
					 mode == FEED_RANDOM ? "random" : "bytes");
				feed_run(&cfg, pieces, 2, (feed_mode)mode, (unsigned)(i * 31 + v), &res);
				failures += check_row(&rows[i], &res, how);
				checked++;
				if (res.n != 1)
					continue;
				char json[TT_RECORD_JSON_MAX];
				feed_stable_json(&res.rec[0], json, sizeof(json));
				if (!first[0]) {
					strcpy(first, json);
				} else if (strcmp(first, json) != 0) {
					printf("FAIL %s (%s): record differs from whole feed\n%s\n%s\n",
					       rows[i].file, how, first, json);
					failures++;
				}
			}
			tbuf_free(&resp);
		}
		tbuf_free(&req);
		free(body);
	}
	printf("conformance: %zu bodies, %d runs, %d failures\n", n, checked, failures);
	free(rows);
	assert_int_equal(failures, 0);
}

/* The two bodies the corpus keeps in their original gzip bytes. */
static void test_original_gzip(void **state)
{
	(void)state;
	wire_row *rows;
	size_t n = wire_load(&rows);
	tt_decoder_config cfg;
	int seen = 0;

	tt_decoder_config_init(&cfg);
	for (size_t i = 0; i < n; i++) {
		char path[4400];
		size_t glen;
		snprintf(path, sizeof(path), "%s/%s.gz", wire_dir(), rows[i].file);
		char *gz = tbuf_read_file(path, &glen);
		if (!gz)
			continue;
		tbuf req = { 0 }, resp = { 0 };
		wire_request(&rows[i], &req);
		tbuf_addf(&resp, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
				 "Content-Encoding: gzip\r\nContent-Length: %zu\r\n\r\n", glen);
		tbuf_add(&resp, gz, glen);
		feed_piece pieces[] = { { TT_DIR_SENT, req.p, req.n },
					{ TT_DIR_RECV, resp.p, resp.n } };
		feed_result res;
		feed_run(&cfg, pieces, 2, FEED_RANDOM, 7, &res);
		assert_int_equal(check_row(&rows[i], &res, "original gzip"), 0);
		seen++;
		tbuf_free(&req);
		tbuf_free(&resp);
		free(gz);
	}
	free(rows);
	if (!n) {
		skip();
		return;
	}
	assert_true(seen >= 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_corpus),
		cmocka_unit_test(test_original_gzip),
	};
	if (!wire_dir())
		printf("SKIP: ../shared/fixtures/wire is not beside the checkout\n");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
