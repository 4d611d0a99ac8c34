/*
 * fuzz_dec_h2.c - libFuzzer target for HTTP/2 framing and HPACK
 * (decoder/h2.c), through the public decoder.
 *
 * The input:
 *
 *	byte 0   the seed of the splits: a xorshift generator seeded from it
 *	         picks, piece after piece, the direction (client or server)
 *	         and the length (1..256) of the next piece of the rest
 *	byte 1   bit 0: max_streams 2; bit 1: max_header_bytes 200;
 *	         bit 2: decode as the server end; bit 3: no opening exchange;
 *	         bit 4: also feed one byte at a time and require the same
 *	         records
 *	then     arbitrary bytes, fed in those pieces
 *
 * Before the fuzzer's bytes the client sends the preface and, unless bit 3
 * says otherwise, SETTINGS and one LLM request on stream 1 whose head is
 * real HPACK from nghttp2's encoder (so the dynamic table holds entries the
 * fuzzer can refer to), and the server its SETTINGS: the fuzzer's bytes
 * then land on an open stream.
 *
 * Oracles besides the sanitizers: every record serialises to valid JSON
 * without the API key; with bit 4, feeding byte by byte gives the same
 * records as the pieces.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include <nghttp2/nghttp2.h>

#include "tokentap/decoder.h"
#include "tokentap/record.h"

#define SECRET "sk-FUZZH2SECRET-0123456789"
#define MAX_KEPT 32

struct run {
	char *json[MAX_KEPT];
	size_t n;
	size_t total;
};

static void on_record(const tt_record *rec, void *user)
{
	struct run *r = user;
	char buf[TT_RECORD_JSON_MAX];
	tt_record c = *rec;
	int n;

	c.id[0] = '\0';
	n = tt_record_to_json(&c, buf, sizeof(buf));
	if (n < 0)
		abort();
	cJSON *j = cJSON_Parse(buf);
	if (!j)
		abort(); /* not JSON */
	cJSON_Delete(j);
	if (strstr(buf, SECRET))
		abort(); /* the key reached a record */
	r->total++;
	if (r->n < MAX_KEPT)
		r->json[r->n++] = strdup(buf);
}

static void run_free(struct run *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->json[i]);
	memset(r, 0, sizeof(*r));
}

static size_t frame(uint8_t *out, uint8_t type, uint8_t flags, uint32_t sid,
		    const void *p, size_t len)
{
	out[0] = (uint8_t)(len >> 16);
	out[1] = (uint8_t)(len >> 8);
	out[2] = (uint8_t)len;
	out[3] = type;
	out[4] = flags;
	out[5] = (uint8_t)(sid >> 24);
	out[6] = (uint8_t)(sid >> 16);
	out[7] = (uint8_t)(sid >> 8);
	out[8] = (uint8_t)sid;
	memcpy(out + 9, p, len);
	return 9 + len;
}

/* The opening: preface, SETTINGS, one request; the server's SETTINGS. */
static void opening(int full, uint8_t *cli, size_t *cn, uint8_t *srv,
		    size_t *sn)
{
	static const char body[] =
		"{\"model\":\"gpt-4o-mini\",\"stream\":true,\"messages\":"
		"[{\"role\":\"user\",\"content\":\"hi\"}]}";
	static const uint8_t settings[] = { 0, 1, 0, 0, 0x10, 0, /* 4096 */
					    0, 3, 0, 0, 0, 100 };
	nghttp2_nv nv[] = {
#define NV(n, v) { (uint8_t *)n, (uint8_t *)v, sizeof(n) - 1, sizeof(v) - 1, 0 }
		NV(":method", "POST"),
		NV(":scheme", "https"),
		NV(":path", "/v1/chat/completions"),
		NV(":authority", "api.openai.com"),
		NV("content-type", "application/json"),
		NV("authorization", "Bearer " SECRET),
		NV("accept-encoding", "gzip, br"),
#undef NV
	};
	uint8_t block[512];
	nghttp2_hd_deflater *def;

	memcpy(cli, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
	*cn = 24;
	*sn = 0;
	if (!full)
		return;
	*cn += frame(cli + *cn, 0x4, 0, 0, settings, sizeof(settings));
	if (nghttp2_hd_deflate_new(&def, 4096) != 0)
		abort();
	ssize_t bl = nghttp2_hd_deflate_hd(def, block, sizeof(block), nv,
					   sizeof(nv) / sizeof(nv[0]));
	nghttp2_hd_deflate_del(def);
	if (bl < 0)
		abort();
	*cn += frame(cli + *cn, 0x1, 0x4, 1, block, (size_t)bl);
	*cn += frame(cli + *cn, 0x0, 0x1, 1, body, sizeof(body) - 1);
	*sn += frame(srv, 0x4, 0, 0, settings, sizeof(settings));
}

static unsigned next_rand(unsigned *s)
{
	unsigned x = *s;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*s = x;
	return x;
}

/* bytewise: feed every piece one byte at a time. */
static void run_once(const uint8_t *data, size_t size, int bytewise,
		     struct run *out)
{
	uint8_t cli[1024], srv[64];
	size_t cn, sn;
	tt_decoder_config cfg;
	tt_decoder *d;
	unsigned seed = 0x9e3779b9u ^ data[0];
	uint8_t opts = data[1];
	int server_view = (opts & 4) != 0;
	int64_t now = 1700000000000000LL;

	tt_decoder_config_init(&cfg);
	cfg.on_record = on_record;
	cfg.user = out;
	if (opts & 1)
		cfg.max_streams = 2;
	if (opts & 2)
		cfg.max_header_bytes = 200;
	d = tt_decoder_new(&cfg);
	if (!d)
		return;

	/* The client writes what the client sends; the server reads it. */
	tt_dir cdir = server_view ? TT_DIR_RECV : TT_DIR_SENT;
	tt_dir sdir = server_view ? TT_DIR_SENT : TT_DIR_RECV;
	opening(!(opts & 8), cli, &cn, srv, &sn);
	for (size_t i = 0; i < cn; i += bytewise ? 1 : cn)
		tt_decoder_feed(d, cdir, cli + i, bytewise ? 1 : cn, now);
	if (sn)
		tt_decoder_feed(d, sdir, srv, sn, now);

	data += 2;
	size -= 2;
	while (size > 0) {
		unsigned r = next_rand(&seed);
		size_t k = 1 + (r >> 1) % 256;
		tt_dir dir = (r & 1) ? sdir : cdir;

		if (k > size)
			k = size;
		now += 1000;
		if (bytewise) {
			for (size_t i = 0; i < k; i++)
				tt_decoder_feed(d, dir, data + i, 1, now);
		} else {
			tt_decoder_feed(d, dir, data, k, now);
		}
		data += k;
		size -= k;
	}
	tt_decoder_close(d, now + 1000);
	tt_decoder_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run a = { 0 }, b = { 0 };

	if (size < 2)
		return 0;
	run_once(data, size, 0, &a);
	if (data[1] & 16) {
		run_once(data, size, 1, &b);
		if (a.total != b.total)
			abort();
		for (size_t i = 0; i < a.n; i++)
			if (strcmp(a.json[i], b.json[i]) != 0)
				abort();
	}
	run_free(&a);
	run_free(&b);
	return 0;
}
