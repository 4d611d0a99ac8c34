/*
 * test_common_app.c - the app name of a process (common/app.c): every rule
 * of app.h, with a resolver that maps a bin link into node_modules and one
 * that fails.  Every case runs with its arguments whole and cut at every
 * length, each cut in a heap block of exactly that size, so that a read
 * past len is an ASan report; a cut that only drops the final NUL names
 * the same app.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../common/app.h"

/* A bin folder's links, as realpath would see them. */
static const struct {
	const char *link, *real;
} links[] = {
	{"/usr/local/bin/gemini", "/usr/local/lib/node_modules/@google/gemini-cli/dist/index.js"},
	{"/usr/local/bin/claude", "/usr/local/lib/node_modules/@anthropic-ai/claude-code/cli.js"},
	{"/home/u/.npm-global/bin/codex",
	 "/home/u/.npm-global/lib/node_modules/@openai/codex/bin/codex.js"},
	{"/usr/bin/npx", "/usr/lib/node_modules/npm/bin/npx-cli.js"},
	{"./node_modules/.bin/tsx", "/srv/app/node_modules/tsx/dist/cli.mjs"},
	{"/usr/local/bin/summarise", "/srv/app/summarise.py"},
};

static int calls;  /* how often a resolver ran */

static int resolve_links(const char *path, char *out, size_t cap, void *arg)
{
	calls++;
	assert_ptr_equal(arg, &calls);
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++)
		if (strcmp(path, links[i].link) == 0) {
			snprintf(out, cap, "%s", links[i].real);
			return 0;
		}
	return -1;
}

static int resolve_fails(const char *path, char *out, size_t cap, void *arg)
{
	calls++;
	snprintf(out, cap, "/garbage/node_modules/not-this");  /* ignored: it failed */
	return -2;
}

struct app_case {
	const char *exe;
	const char *argv;  /* NUL-separated, as /proc/PID/cmdline */
	size_t len;
	int resolve;       /* 1: resolve_links, 2: resolve_fails */
	const char *parent;
	const char *want;
};

/* The arguments as a literal: "a\0b\0" (the final NUL written out). */
#define ARGS(s) s, sizeof(s) - 1

static const struct app_case cases[] = {
	/* Not an interpreter: the executable's base name, without .exe. */
	{"/usr/bin/curl", ARGS("curl\0-s\0https://api.openai.com/v1/models\0"), 0, NULL, "curl"},
	{"/home/u/.local/share/claude/claude.exe", ARGS("claude\0-p\0hi\0"), 0, NULL, "claude"},
	{"/opt/tools/my.exe.d", ARGS("x\0"), 0, NULL, "my.exe.d"},
	{"/usr/bin/codex (deleted)", ARGS("codex\0exec\0"), 0, NULL, "codex"},
	{"", ARGS("/usr/bin/curl\0-s\0"), 0, NULL, "curl"},
	{NULL, ARGS("wget\0"), 0, NULL, "wget"},
	{"/usr/bin/pythonista", ARGS("pythonista\0x.py\0"), 0, NULL, "pythonista"},
	{"/usr/bin/python3.", ARGS("python3.\0x.py\0"), 0, NULL, "python3."},
	{"/usr/bin/nodejs-helper", ARGS("x\0y.js\0"), 0, NULL, "nodejs-helper"},

	/* node: the script, through a resolver into node_modules. */
	{"/usr/bin/node", ARGS("node\0/usr/local/bin/gemini\0-p\0hi\0"), 1, NULL, "@google/gemini-cli"},
	/* renamed itself (process.title, setproctitle): its own name wins */
	{"/usr/bin/node", ARGS("claude\0\0\0\0"), 0, "bash", "claude"},
	{"/usr/bin/node", ARGS("claude"), 0, NULL, "claude"},
	{"/usr/bin/python3.11", ARGS("celery worker: main\0"), 0, NULL, "celery worker: main"},
	{"/usr/bin/node", ARGS("/usr/local/bin/node\0app.js\0"), 0, NULL, "app"},
	{"/usr/bin/node", ARGS("node\0/usr/local/bin/gemini\0"), 0, NULL, "gemini"},
	{"/usr/bin/node", ARGS("node\0/usr/local/bin/gemini\0"), 2, NULL, "gemini"},
	{"/usr/bin/node", ARGS("/usr/bin/node\0/usr/local/bin/claude\0--resume\0"), 1, NULL,
	 "@anthropic-ai/claude-code"},
	{"/usr/bin/node", ARGS("node\0/home/u/.npm-global/bin/codex\0"), 1, NULL, "@openai/codex"},
	{"/usr/bin/node", ARGS("node\0/usr/bin/npx\0cowsay\0"), 1, NULL, "npm"},
	{"/usr/bin/node", ARGS("node\0/srv/app/dist/server.mjs\0"), 1, NULL, "server"},
	/* Already inside node_modules: the package after the LAST node_modules/. */
	{"/usr/bin/node",
	 ARGS("node\0/app/node_modules/.pnpm/@x+y@1.0.0/node_modules/@x/y/bin/cli.js\0"), 0, NULL,
	 "@x/y"},
	{"/usr/bin/node", ARGS("node\0node_modules/vite/bin/vite.js\0dev\0"), 0, NULL, "vite"},
	{"/usr/bin/node", ARGS("node\0./node_modules/.bin/tsx\0src/main.ts\0"), 0, NULL, "tsx"},
	{"/usr/bin/node", ARGS("node\0./node_modules/.bin/tsx\0src/main.ts\0"), 1, NULL, "tsx"},
	{"/usr/bin/node", ARGS("node\0/srv/my_node_modules/x/app.js\0"), 0, NULL, "app"},
	/* Options and their separate values are skipped. */
	{"/usr/bin/node", ARGS("node\0-r\0ts-node/register\0--import\0tsx\0src/index.ts\0"), 0, NULL,
	 "index"},
	{"/usr/bin/node", ARGS("node\0--require=dotenv/config\0--max-old-space-size\0"
			       "4096\0--inspect\0srv.cjs\0"), 0, NULL, "srv"},
	{"/usr/bin/node", ARGS("node\0--env-file\0.env\0--conditions\0dev\0-C\0x\0app.js\0"), 0, NULL,
	 "app"},
	{"/usr/bin/node", ARGS("node\0--experimental-loader\0./l.mjs\0--loader\0l\0"
			       "--inspect-port\09229\0w.js\0"), 0, NULL, "w"},
	{"/usr/bin/node", ARGS("node\0-rdotenv/config\0main.js\0"), 0, NULL, "main"},
	{"/usr/bin/node", ARGS("node\0--\0-weird-name.js\0"), 0, NULL, "-weird-name"},
	{"/usr/bin/node", ARGS("node\0--run\0build\0"), 0, NULL, "build"},
	/* No script: the parent's app, else the interpreter. */
	{"/usr/bin/node", ARGS("node\0-e\0require('x')\0"), 0, "@google/gemini-cli",
	 "@google/gemini-cli"},
	{"/usr/bin/node", ARGS("node\0-e\0console.log(1)\0"), 0, NULL, "node"},
	{"/usr/bin/node", ARGS("node\0--eval=1\0"), 0, "", "node"},
	{"/usr/bin/node", ARGS("node\0-pe\0process.version\0"), 0, NULL, "node"},
	{"/usr/bin/node", ARGS("node\0--print\0x\0"), 0, NULL, "node"},
	{"/usr/bin/node", ARGS("node\0-\0"), 0, NULL, "node"},
	{"/usr/bin/node", ARGS("node\0"), 0, "claude", "claude"},
	{"/usr/bin/node", ARGS("node\0--inspect\0"), 0, NULL, "node"},
	{"/usr/bin/node", ARGS("node\0-r\0"), 0, NULL, "node"},
	{"/usr/bin/nodejs", ARGS("nodejs\0srv.js\0"), 0, NULL, "srv"},
	{"", ARGS("node\0/usr/local/bin/gemini\0"), 1, NULL, "@google/gemini-cli"},

	/* python */
	{"/usr/bin/python3.12", ARGS("python3\0/srv/app/summarise.py\0--in\0x\0"), 0, NULL,
	 "summarise"},
	{"/usr/bin/python3.12", ARGS("python3\0-m\0uvicorn\0main:app\0"), 0, NULL, "uvicorn"},
	{"/usr/bin/python3", ARGS("python3\0-muvicorn\0main:app\0"), 0, NULL, "uvicorn"},
	{"/usr/bin/python3", ARGS("python3\0-um\0http.server\0"), 0, NULL, "http.server"},
	{"/usr/bin/python3", ARGS("python3\0-W\0ignore\0-X\0dev\0-OO\0-u\0job.py\0"), 0, NULL, "job"},
	{"/usr/bin/python3", ARGS("python3\0-Wignore\0-Ximporttime\0job.py\0"), 0, NULL, "job"},
	{"/usr/bin/python2.7", ARGS("python\0-Q\0new\0old.py\0"), 0, NULL, "old"},
	{"/usr/bin/python3", ARGS("python3\0--check-hash-based-pycs\0never\0t.py\0"), 0, NULL, "t"},
	{"/usr/bin/python3", ARGS("/usr/bin/python3\0/usr/local/bin/summarise\0"), 1, NULL,
	 "summarise"},
	{"/usr/bin/python3", ARGS("/usr/bin/python3\0/usr/local/bin/aider\0"), 2, NULL, "aider"},
	{"/usr/bin/python3", ARGS("python3\0myapp/\0"), 0, NULL, "myapp"},
	{"/usr/bin/python3", ARGS("python3\0-c\0import openai\0"), 0, "summarise", "summarise"},
	{"/usr/bin/python3", ARGS("python3\0-uc\0print(1)\0"), 0, NULL, "python3"},
	{"/usr/bin/python3.11", ARGS("python3\0"), 0, NULL, "python3.11"},
	{"/usr/bin/python3", ARGS("python3\0-i\0"), 0, NULL, "python3"},
	{"/usr/bin/python3", ARGS("python3\0-\0"), 0, NULL, "python3"},
	{"/opt/py/bin/python", ARGS("python\0-m\0"), 0, NULL, "python"},

	/* ruby */
	{"/usr/bin/ruby3.1", ARGS("ruby\0/usr/local/bin/rails\0server\0"), 0, NULL, "rails"},
	{"/usr/bin/ruby", ARGS("ruby\0-I\0lib\0-rjson\0bin/tool.rb\0"), 0, NULL, "tool"},
	{"/usr/bin/ruby", ARGS("ruby\0-Ke\0-W2\0x.rb\0"), 0, NULL, "x"},
	{"/usr/bin/ruby", ARGS("ruby\0-ne\0puts $_\0"), 0, NULL, "ruby"},
	{"/usr/bin/ruby", ARGS("ruby\0--disable\0gems\0s.rb\0"), 0, NULL, "s"},

	/* java */
	{"/usr/lib/jvm/java-21/bin/java", ARGS("java\0-jar\0/opt/app/indexer-1.2.jar\0--x\0"), 0, NULL,
	 "indexer-1.2"},
	{"/usr/bin/java", ARGS("java\0-Xmx2g\0-Dspring.profiles.active=prod\0-cp\0a.jar:b.jar\0"
			       "com.example.ChatService\0arg\0"), 0, NULL, "ChatService"},
	{"/usr/bin/java", ARGS("java\0--add-opens\0java.base/java.lang=ALL-UNNAMED\0-classpath\0"
			       "lib/*\0Main\0"), 0, NULL, "Main"},
	{"/usr/bin/java", ARGS("java\0--add-opens=java.base/java.io=ALL-UNNAMED\0-jar\0svc.jar\0"), 0,
	 NULL, "svc"},
	{"/usr/bin/java", ARGS("java\0-p\0mods\0-m\0com.acme.app/com.acme.app.Cli\0"), 0, NULL, "Cli"},
	{"/usr/bin/java", ARGS("java\0--module=com.acme.tool\0"), 0, NULL, "tool"},
	{"/usr/bin/java", ARGS("java\0@opts.txt\0src/Tool.java\0"), 0, NULL, "Tool"},
	{"/usr/bin/java", ARGS("java\0-version\0"), 0, NULL, "java"},

	/* bun */
	{"/usr/local/bin/bun", ARGS("bun\0run\0--watch\0src/agent.ts\0"), 0, NULL, "agent"},
	{"/usr/local/bin/bun", ARGS("bun\0--smol\0run\0dev\0"), 0, NULL, "dev"},
	{"/usr/local/bin/bun", ARGS("bun\0index.tsx\0"), 0, NULL, "index"},
	{"/usr/local/bin/bun", ARGS("bun\0-r\0./setup.ts\0x\0cowsay@1.5.0\0moo\0"), 0, NULL, "cowsay"},
	{"/usr/local/bin/bun", ARGS("bunx\0@google/gemini-cli@latest\0-p\0hi\0"), 0, NULL,
	 "@google/gemini-cli"},
	{"/usr/local/bin/bun", ARGS("bunx\0--bun\0prettier\0"), 0, NULL, "prettier"},
	{"/usr/local/bin/bun", ARGS("bun\0install\0"), 0, NULL, "bun"},
	{"/usr/local/bin/bun", ARGS("bun\0test\0"), 0, "ci", "ci"},
	{"/usr/local/bin/bun", ARGS("bun\0-e\0fetch(u)\0"), 0, NULL, "bun"},
	{"/usr/local/bin/bun", ARGS("bun\0run\0/usr/local/bin/gemini\0"), 1, NULL,
	 "@google/gemini-cli"},

	/* deno */
	{"/usr/bin/deno", ARGS("deno\0run\0--allow-net\0-c\0deno.json\0main.ts\0"), 0, NULL, "main"},
	{"/usr/bin/deno", ARGS("deno\0run\0-A\0npm:@anthropic-ai/sdk@0.30/x\0"), 0, NULL,
	 "@anthropic-ai/sdk"},
	{"/usr/bin/deno", ARGS("deno\0run\0jsr:@std/http@1/file-server\0"), 0, NULL, "@std/http"},
	{"/usr/bin/deno", ARGS("deno\0serve\0--port=8000\0server.ts\0"), 0, NULL, "server"},
	{"/usr/bin/deno", ARGS("deno\0run\0https://deno.land/std/examples/welcome.ts\0"), 0, NULL,
	 "welcome"},
	{"/usr/bin/deno", ARGS("deno\0bot.ts\0"), 0, NULL, "bot"},
	{"/usr/bin/deno", ARGS("deno\0eval\0console.log(1)\0"), 0, NULL, "deno"},
	{"/usr/bin/deno", ARGS("deno\0task\0dev\0"), 0, NULL, "deno"},

	/* Cut arguments: a script path cut short is used as far as it goes. */
	{"/usr/bin/python3", "python3\0/srv/app/summar", 23, 0, NULL, "summar"},
	{"/usr/bin/node", "node\0/usr/local/lib/node_modules/@google/gem", 44, 0, NULL, "@google/gem"},
	{"/usr/bin/node", "node\0/usr/local/bin/gemini", 26, 1, NULL, "@google/gemini-cli"},
	{"/usr/bin/node", "node\0/usr/local/bin/gem", 23, 1, NULL, "gem"},
	{"/usr/bin/python3", "python3\0-m\0uvi", 14, 0, NULL, "uvi"},
	{"/usr/bin/python3", "python3\0-W", 10, 0, "p", "p"},

	/* Names are valid UTF-8 without control characters. */
	{"/usr/bin/python3", ARGS("python3\0/srv/r\xc3\xa9sum\xc3\xa9.py\0"), 0, NULL,
	 "r\xc3\xa9sum\xc3\xa9"},
	{"/usr/bin/python3", ARGS("python3\0/srv/bad\xff\xc3x\x01.py\0"), 0, NULL, "bad??x?"},
	{"/usr/bin/tool\xed\xa0\x80", ARGS("x\0"), 0, NULL, "tool???"},
	{"/usr/bin/node", ARGS("node\0\0"), 0, NULL, "node"},
	{"/", ARGS("\0"), 0, NULL, ""},
	{"", "", 0, 0, NULL, ""},
};

static tt_app_resolve_fn resolver(int which)
{
	return which == 1 ? resolve_links : which == 2 ? resolve_fails : NULL;
}

static size_t name_of(const struct app_case *c, const char *argv, size_t len, char *out,
		      size_t cap)
{
	return tt_app_name(c->exe, argv, len, resolver(c->resolve), &calls, c->parent, out, cap);
}

/* Valid UTF-8 (the collector's check), no control characters. */
static int clean_utf8(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		size_t n = *p < 0x80 ? 1 : *p >= 0xc2 && *p <= 0xdf ? 2 : *p >= 0xe0 && *p <= 0xef ? 3
			 : *p >= 0xf0 && *p <= 0xf4 ? 4 : 0;

		if (n == 0 || (n == 1 && (*p < 0x20 || *p == 0x7f)))
			return 0;
		for (size_t i = 1; i < n; i++)
			if ((p[i] & 0xc0) != 0x80)
				return 0;
		p += n;
	}
	return 1;
}

static void test_cases(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct app_case *c = &cases[i];
		char *argv = malloc(c->len ? c->len : 1), out[128];
		size_t n;

		/* Exactly len bytes on the heap: a read past them is an ASan report. */
		assert_non_null(argv);
		memcpy(argv, c->argv, c->len);
		calls = 0;
		n = name_of(c, argv, c->len, out, sizeof(out));
		if (strcmp(out, c->want) != 0 || n != strlen(out))
			fail_msg("case %zu (%s): '%s' (%zu), want '%s'", i, c->exe ? c->exe : "NULL", out,
				 n, c->want);
		assert_true(clean_utf8(out));
		if (c->resolve == 0)
			assert_int_equal(calls, 0);
		free(argv);
	}
}

/* Every case cut at every length: no read past the cut, a clean name. */
static void test_every_cut(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct app_case *c = &cases[i];
		char whole[128];

		name_of(c, c->argv, c->len, whole, sizeof(whole));
		for (size_t cut = 0; cut <= c->len; cut++) {
			char *argv = malloc(cut ? cut : 1), out[128];
			size_t n;

			assert_non_null(argv);
			memcpy(argv, c->argv, cut);
			n = name_of(c, argv, cut, out, sizeof(out));
			assert_int_equal(n, strlen(out));
			assert_true(clean_utf8(out));
			/* Without the final NUL the arguments are the same. */
			if (cut + 1 == c->len && c->argv[cut] == '\0')
				assert_string_equal(out, whole);
			free(argv);
		}
	}
}

/* The output is capped and cut between characters, never inside one. */
static void test_output_cap(void **state)
{
	static const char args[] = "python3\0/srv/caf\xc3\xa9-bot.py";
	char out[16];

	memset(out, 'x', sizeof(out));
	assert_int_equal(tt_app_name("/usr/bin/python3", args, sizeof(args), NULL, NULL, NULL, out,
				     0), 0);
	assert_int_equal(out[0], 'x');  /* cap 0: nothing written */
	assert_int_equal(tt_app_name("/usr/bin/python3", args, sizeof(args), NULL, NULL, NULL, out,
				     1), 0);
	assert_string_equal(out, "");
	assert_int_equal(tt_app_name("/usr/bin/python3", args, sizeof(args), NULL, NULL, NULL, out,
				     4), 3);
	assert_string_equal(out, "caf");  /* é does not fit in the 4th byte with the NUL */
	assert_int_equal(tt_app_name("/usr/bin/python3", args, sizeof(args), NULL, NULL, NULL, out,
				     6), 5);
	assert_string_equal(out, "caf\xc3\xa9");
	assert_int_equal(tt_app_name("/usr/bin/python3", args, sizeof(args), NULL, NULL, NULL, out,
				     sizeof(out)), 9);
	assert_string_equal(out, "caf\xc3\xa9-bot");
	/* The parent's app is cut the same way. */
	assert_int_equal(tt_app_name("/usr/bin/node", "node\0-e\0x", 9, NULL, NULL,
				     "@google/gemini-cli", out, 8), 7);
	assert_string_equal(out, "@google");
}

/* A path longer than PATH_MAX reaches the resolver cut and NUL-terminated. */
static int resolve_long(const char *path, char *out, size_t cap, void *arg)
{
	size_t *seen = arg;

	*seen = strlen(path);
	snprintf(out, cap, "/r/node_modules/long-pkg/x.js");
	return 0;
}

static void test_long_path(void **state)
{
	size_t len = 10000, seen = 0;
	char *argv = malloc(len), out[64];

	assert_non_null(argv);
	memcpy(argv, "node\0", 5);
	memset(argv + 5, 'a', len - 5);
	argv[6] = '/';
	assert_int_equal(tt_app_name("/usr/bin/node", argv, len, resolve_long, &seen, NULL, out,
				     sizeof(out)), 8);
	assert_string_equal(out, "long-pkg");
	assert_true(seen > 0 && seen < len - 5);
	/* Without a resolver: the base name, cut to the output. */
	assert_int_equal(tt_app_name("/usr/bin/node", argv, len, NULL, NULL, NULL, out, sizeof(out)),
			 63);
	free(argv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_every_cut),
		cmocka_unit_test(test_output_cap),
		cmocka_unit_test(test_long_path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
