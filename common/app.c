/* app.c - a process's app name from its executable and arguments, see app.h. */
#include "app.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>

/* Bytes inside the caller's buffers: never NUL-terminated, never copied. */
struct span {
	const char *p;  /* NULL: absent (an option without an attached value) */
	size_t n;
};

static const struct span none = {NULL, 0};

static struct span span_of(const char *s)
{
	return (struct span){s, s ? strlen(s) : 0};
}

static struct span span_from(struct span s, size_t at)
{
	return (struct span){s.p + at, s.n - at};
}

static int span_is(struct span s, const char *word)
{
	size_t n = strlen(word);

	return s.n == n && memcmp(s.p, word, n) == 0;
}

static int span_starts(struct span s, const char *prefix)
{
	size_t n = strlen(prefix);

	return s.n >= n && memcmp(s.p, prefix, n) == 0;
}

static int span_ends(struct span s, const char *suffix)
{
	size_t n = strlen(suffix);

	return s.n >= n && memcmp(s.p + s.n - n, suffix, n) == 0;
}

static int span_in(struct span s, const char *const *words)
{
	for (; *words; words++)
		if (span_is(s, *words))
			return 1;
	return 0;
}

/* s without suffix, unless that would leave nothing. */
static struct span strip_suffix(struct span s, const char *suffix)
{
	if (span_ends(s, suffix) && s.n > strlen(suffix))
		s.n -= strlen(suffix);
	return s;
}

/* The last path component; a trailing '/' is not one ("dir/" is "dir"). */
static struct span base_name(struct span path)
{
	while (path.n > 1 && path.p[path.n - 1] == '/')
		path.n--;
	for (size_t i = path.n; i > 0; i--)
		if (path.p[i - 1] == '/')
			return span_from(path, i);
	return path;
}

/* --- the arguments -------------------------------------------------------- */

/* /proc/PID/cmdline: NUL-separated arguments, the last perhaps cut short. */
struct args {
	const char *p, *end;
};

static int next_arg(struct args *a, struct span *out)
{
	const char *nul;

	if (a->p >= a->end)
		return 0;
	nul = memchr(a->p, '\0', (size_t)(a->end - a->p));
	out->p = a->p;
	out->n = (size_t)((nul ? nul : a->end) - a->p);
	a->p = nul ? nul + 1 : a->end;
	return 1;
}

/* --- interpreters and their options --------------------------------------- */

enum interp { NOT_INTERP, NODE, PYTHON, RUBY, BUN, DENO, JAVA };

/* name, or name followed by a version: python3, python3.12, ruby3.1. */
static int versioned(struct span s, const char *name)
{
	size_t i = strlen(name), digits;

	if (!span_starts(s, name))
		return 0;
	while (i < s.n && s.p[i] >= '0' && s.p[i] <= '9')
		i++;
	if (i < s.n && s.p[i] == '.' && i > strlen(name)) {
		digits = ++i;
		while (i < s.n && s.p[i] >= '0' && s.p[i] <= '9')
			i++;
		if (i == digits)
			return 0;
	}
	return i == s.n;
}

static enum interp interp_of(struct span prog)
{
	if (span_is(prog, "node") || span_is(prog, "nodejs"))
		return NODE;
	if (versioned(prog, "python"))
		return PYTHON;
	if (versioned(prog, "ruby"))
		return RUBY;
	if (span_is(prog, "bun") || span_is(prog, "bunx"))
		return BUN;
	if (span_is(prog, "deno"))
		return DENO;
	if (span_is(prog, "java"))
		return JAVA;
	return NOT_INTERP;
}

enum opt_kind {
	OPT_VALUE,      /* takes a value: attached (--x=v, -xv), else the next argument */
	OPT_NO_SCRIPT,  /* no script: code on the command line (-e), or nothing to run */
	OPT_MODULE,     /* its value names what runs (python -m, java -m) */
	OPT_SCRIPT,     /* its value is the script (java -jar) */
};

struct opt {
	const char *name;
	enum opt_kind kind;
};

struct syntax {
	const struct opt *opts;  /* ends with {NULL} */
	int clusters;            /* single letters combine: -pe is -p -e */
	const char *attached;    /* letters whose optional value is only attached (ruby -Ku) */
};

/* What the options lead to. */
enum found {
	FOUND_NEXT,       /* (scanning: go on with the next argument) */
	FOUND_NOTHING,    /* no more arguments */
	FOUND_NO_SCRIPT,  /* code from the command line or stdin, or nothing to run */
	FOUND_OPERAND,    /* the first argument that is no option */
	FOUND_SCRIPT,     /* an option's value that is the script */
	FOUND_MODULE,     /* an option's value that names what runs */
	FOUND_PACKAGE,    /* a package to fetch and run (bun x) */
};

/* Node.js, `node --help` (v22). */
static const struct opt node_opts[] = {
	{"-e", OPT_NO_SCRIPT}, {"--eval", OPT_NO_SCRIPT},
	{"-p", OPT_NO_SCRIPT}, {"--print", OPT_NO_SCRIPT},
	{"-r", OPT_VALUE}, {"--require", OPT_VALUE}, {"--import", OPT_VALUE},
	{"--loader", OPT_VALUE}, {"--experimental-loader", OPT_VALUE},
	{"-C", OPT_VALUE}, {"--conditions", OPT_VALUE}, {"--env-file", OPT_VALUE},
	{"--env-file-if-exists", OPT_VALUE}, {"--inspect-port", OPT_VALUE},
	{"--debug-port", OPT_VALUE}, {"--title", OPT_VALUE}, {"--input-type", OPT_VALUE},
	{"--experimental-default-type", OPT_VALUE}, {"--redirect-warnings", OPT_VALUE},
	{"--disable-warning", OPT_VALUE}, {"--diagnostic-dir", OPT_VALUE},
	{"--report-dir", OPT_VALUE}, {"--report-directory", OPT_VALUE},
	{"--report-filename", OPT_VALUE}, {"--report-signal", OPT_VALUE},
	{"--heapsnapshot-signal", OPT_VALUE}, {"--icu-data-dir", OPT_VALUE},
	{"--openssl-config", OPT_VALUE}, {"--tls-keylog", OPT_VALUE},
	{"--tls-cipher-list", OPT_VALUE}, {"--unhandled-rejections", OPT_VALUE},
	{"--dns-result-order", OPT_VALUE}, {"--watch-path", OPT_VALUE},
	{"--secure-heap", OPT_VALUE}, {"--secure-heap-min", OPT_VALUE},
	{"--max-old-space-size", OPT_VALUE}, {"--max-semi-space-size", OPT_VALUE},
	{"--stack-size", OPT_VALUE}, {"--run", OPT_MODULE},
	{NULL, 0},
};

/* CPython, `python3 --help`; -Q is Python 2's. */
static const struct opt python_opts[] = {
	{"-c", OPT_NO_SCRIPT}, {"-m", OPT_MODULE},
	{"-W", OPT_VALUE}, {"-X", OPT_VALUE}, {"-Q", OPT_VALUE},
	{"--check-hash-based-pycs", OPT_VALUE},
	{NULL, 0},
};

/* Ruby, `ruby --help`. */
static const struct opt ruby_opts[] = {
	{"-e", OPT_NO_SCRIPT},
	{"-I", OPT_VALUE}, {"-r", OPT_VALUE}, {"-C", OPT_VALUE}, {"-E", OPT_VALUE},
	{"-F", OPT_VALUE}, {"--encoding", OPT_VALUE}, {"--external-encoding", OPT_VALUE},
	{"--internal-encoding", OPT_VALUE}, {"--enable", OPT_VALUE}, {"--disable", OPT_VALUE},
	{"--dump", OPT_VALUE},
	{NULL, 0},
};

/* Bun, `bun --help` and `bun run --help`. */
static const struct opt bun_opts[] = {
	{"-e", OPT_NO_SCRIPT}, {"--eval", OPT_NO_SCRIPT},
	{"-p", OPT_NO_SCRIPT}, {"--print", OPT_NO_SCRIPT},
	{"-r", OPT_VALUE}, {"--preload", OPT_VALUE}, {"--require", OPT_VALUE},
	{"--import", OPT_VALUE}, {"-c", OPT_VALUE}, {"--config", OPT_VALUE},
	{"--cwd", OPT_VALUE}, {"--env-file", OPT_VALUE}, {"--tsconfig-override", OPT_VALUE},
	{"-d", OPT_VALUE}, {"--define", OPT_VALUE}, {"-l", OPT_VALUE}, {"--loader", OPT_VALUE},
	{"--conditions", OPT_VALUE}, {"--main-fields", OPT_VALUE}, {"-F", OPT_VALUE},
	{"--filter", OPT_VALUE}, {"--shell", OPT_VALUE}, {"--port", OPT_VALUE},
	{"--title", OPT_VALUE}, {"--console-depth", OPT_VALUE}, {"--elide-lines", OPT_VALUE},
	{"--max-http-header-size", OPT_VALUE}, {"--dns-result-order", OPT_VALUE},
	{"--fetch-preconnect", OPT_VALUE},
	{NULL, 0},
};

/* Bun's own commands: none of them runs a script of the user's. */
static const char *const bun_commands[] = {
	"install", "i", "add", "a", "remove", "rm", "update", "upgrade", "link", "unlink",
	"pm", "build", "test", "init", "create", "c", "outdated", "publish", "patch",
	"patch-commit", "repl", "exec", "completions", "discord", "help", "info", "audit",
	"why", "feedback", NULL,
};

/* Deno, `deno run --help`: most options attach their values with '='. */
static const struct opt deno_opts[] = {
	{"-c", OPT_VALUE}, {"--config", OPT_VALUE}, {"--import-map", OPT_VALUE},
	{"--cert", OPT_VALUE}, {"--location", OPT_VALUE}, {"--seed", OPT_VALUE},
	{"--ext", OPT_VALUE}, {"--preload", OPT_VALUE}, {"-L", OPT_VALUE},
	{"--log-level", OPT_VALUE},
	{NULL, 0},
};

static const char *const deno_commands[] = {
	"eval", "repl", "task", "test", "fmt", "lint", "install", "uninstall", "compile",
	"bundle", "cache", "check", "doc", "info", "init", "upgrade", "lsp", "bench",
	"coverage", "types", "vendor", "publish", "add", "remove", "jupyter", "clean",
	"outdated", "update", "completions", "help", NULL,
};

/* The java launcher, `java --help`: long options with one dash, no clusters. */
static const struct opt java_opts[] = {
	{"-jar", OPT_SCRIPT}, {"-m", OPT_MODULE}, {"--module", OPT_MODULE},
	{"-cp", OPT_VALUE}, {"-classpath", OPT_VALUE}, {"--class-path", OPT_VALUE},
	{"-p", OPT_VALUE}, {"--module-path", OPT_VALUE}, {"--upgrade-module-path", OPT_VALUE},
	{"--add-modules", OPT_VALUE}, {"--add-opens", OPT_VALUE}, {"--add-exports", OPT_VALUE},
	{"--add-reads", OPT_VALUE}, {"--patch-module", OPT_VALUE},
	{"--limit-modules", OPT_VALUE}, {"--enable-native-access", OPT_VALUE},
	{"--source", OPT_VALUE}, {"-d", OPT_NO_SCRIPT}, {"--describe-module", OPT_NO_SCRIPT},
	{NULL, 0},
};

static const struct syntax node_syntax = {node_opts, 1, NULL};
static const struct syntax python_syntax = {python_opts, 1, NULL};
static const struct syntax ruby_syntax = {ruby_opts, 1, "0iKTWx"};
static const struct syntax bun_syntax = {bun_opts, 1, NULL};
static const struct syntax deno_syntax = {deno_opts, 1, NULL};
static const struct syntax java_syntax = {java_opts, 0, NULL};

static const struct opt *find_opt(const struct syntax *sx, struct span name)
{
	for (const struct opt *o = sx->opts; o->name; o++)
		if (span_is(name, o->name))
			return o;
	return NULL;
}

/* Option o, with its attached value (or none): where it leads. */
static enum found take_opt(struct args *a, const struct opt *o, struct span attached,
			   struct span *what)
{
	if (o->kind == OPT_NO_SCRIPT)
		return FOUND_NO_SCRIPT;
	if (attached.p)
		*what = attached;
	else if (!next_arg(a, what))
		return FOUND_NOTHING;  /* the arguments end before the value */
	switch (o->kind) {
	case OPT_MODULE: return FOUND_MODULE;
	case OPT_SCRIPT: return FOUND_SCRIPT;
	default: return FOUND_NEXT;
	}
}

/* --name, --name=value, or java's -name. */
static enum found long_opt(struct args *a, const struct syntax *sx, struct span arg,
			   struct span *what)
{
	const char *eq = memchr(arg.p, '=', arg.n);
	struct span name = {arg.p, eq ? (size_t)(eq - arg.p) : arg.n};
	const struct opt *o = find_opt(sx, name);

	if (!o)
		return FOUND_NEXT;  /* a flag, or an option we need not know */
	return take_opt(a, o, eq ? span_from(arg, name.n + 1) : none, what);
}

/* -abc: letters, until one that takes a value (the rest, else the next argument). */
static enum found short_opts(struct args *a, const struct syntax *sx, struct span arg,
			     struct span *what)
{
	for (size_t i = 1; i < arg.n; i++) {
		char name[3] = {'-', arg.p[i], '\0'};
		const struct opt *o = find_opt(sx, span_of(name));
		struct span rest = span_from(arg, i + 1);

		if (o)
			return take_opt(a, o, rest.n ? rest : none, what);
		if (sx->attached && strchr(sx->attached, arg.p[i]))
			break;  /* the rest is this letter's value */
	}
	return FOUND_NEXT;
}

static enum found scan_arg(struct args *a, const struct syntax *sx, struct span arg,
			   struct span *what)
{
	if (span_is(arg, "--"))
		return next_arg(a, what) ? FOUND_OPERAND : FOUND_NOTHING;
	if (span_is(arg, "-"))
		return FOUND_NO_SCRIPT;  /* the program comes from stdin */
	if (arg.n == 0 || arg.p[0] != '-') {
		*what = arg;
		return FOUND_OPERAND;
	}
	if (sx->clusters && arg.p[1] != '-')
		return short_opts(a, sx, arg, what);
	return long_opt(a, sx, arg, what);
}

/* Skip options up to what the interpreter runs; its text in *what. */
static enum found scan(struct args *a, const struct syntax *sx, struct span *what)
{
	struct span arg;

	while (next_arg(a, &arg)) {
		enum found f = scan_arg(a, sx, arg, what);

		if (f != FOUND_NEXT)
			return f;
	}
	return FOUND_NOTHING;
}

/* bun and deno: [options] run [options] SCRIPT, x PKG, SCRIPT, or a command of their own. */
static enum found scan_launcher(struct args *a, const struct syntax *sx,
				const char *const *commands, struct span *what)
{
	enum found f = scan(a, sx, what);

	if (f != FOUND_OPERAND)
		return f;
	if (span_is(*what, "run") || span_is(*what, "serve"))
		return scan(a, sx, what);
	if (span_is(*what, "x")) {
		f = scan(a, sx, what);
		return f == FOUND_OPERAND ? FOUND_PACKAGE : f;
	}
	return span_in(*what, commands) ? FOUND_NOTHING : FOUND_OPERAND;
}

/* java [options] CLASS | -jar JAR | -m MODULE[/CLASS]; @files hold more options. */
static enum found scan_java(struct args *a, struct span *what)
{
	enum found f;

	while ((f = scan(a, &java_syntax, what)) == FOUND_OPERAND && span_starts(*what, "@"))
		;
	return f;
}

static enum found find_target(enum interp in, struct args *a, struct span arg0,
			      struct span *what)
{
	enum found f;

	switch (in) {
	case NODE: return scan(a, &node_syntax, what);
	case PYTHON: return scan(a, &python_syntax, what);
	case RUBY: return scan(a, &ruby_syntax, what);
	case DENO: return scan_launcher(a, &deno_syntax, deno_commands, what);
	case JAVA: return scan_java(a, what);
	case BUN:
		if (!span_is(base_name(arg0), "bunx"))
			return scan_launcher(a, &bun_syntax, bun_commands, what);
		f = scan(a, &bun_syntax, what);
		return f == FOUND_OPERAND ? FOUND_PACKAGE : f;
	default: return FOUND_NOTHING;
	}
}

/* --- names ---------------------------------------------------------------- */

/* Length of the valid UTF-8 character at s (RFC 3629), or 0. */
static size_t utf8_char(const unsigned char *s, size_t n)
{
	/* By the lead byte: the length, the payload mask, the smallest code point. */
	static const struct { unsigned char lo, hi, len, mask; uint32_t min; } leads[] = {
		{0xc2, 0xdf, 2, 0x1f, 0x80},
		{0xe0, 0xef, 3, 0x0f, 0x800},
		{0xf0, 0xf4, 4, 0x07, 0x10000},
	};

	if (s[0] < 0x80)
		return 1;
	for (size_t k = 0; k < sizeof(leads) / sizeof(leads[0]); k++) {
		uint32_t cp = s[0] & leads[k].mask;
		size_t len = leads[k].len;

		if (s[0] < leads[k].lo || s[0] > leads[k].hi)
			continue;
		if (n < len)
			return 0;
		for (size_t i = 1; i < len; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i] & 0x3f);
		}
		/* overlong forms, surrogates and beyond U+10FFFF are not UTF-8 */
		if (cp < leads[k].min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		return len;
	}
	return 0;
}

/* Copy name into out as app.h says: valid UTF-8, cut between characters. */
static size_t put_name(char *out, size_t cap, struct span name)
{
	const unsigned char *s = (const unsigned char *)name.p;
	size_t o = 0;

	for (size_t i = 0; i < name.n;) {
		size_t len = utf8_char(s + i, name.n - i);
		const char *c = name.p + i;

		if (len == 0 || (len == 1 && (s[i] < 0x20 || s[i] == 0x7f))) {
			c = "?";
			len = 1;
		}
		if (o + len >= cap)
			break;
		memcpy(out + o, c, len);
		o += len;
		i += len;
	}
	out[o] = '\0';
	return o;
}

/* "@scope/name@1.2/sub" -> "@scope/name", "name@latest" -> "name". */
static struct span package_name(struct span spec)
{
	size_t end = 0, slashes = spec.n && spec.p[0] == '@' ? 2 : 1;

	while (end < spec.n && !(spec.p[end] == '/' && --slashes == 0))
		end++;
	for (size_t i = 1; i < end; i++)  /* from 1: a scope's '@' stays */
		if (spec.p[i] == '@')
			return (struct span){spec.p, i};
	return (struct span){spec.p, end};
}

/* The package a path inside node_modules belongs to (after the LAST one). */
static int node_package(struct span path, struct span *pkg)
{
	static const char dir[] = "node_modules/";
	const size_t dn = sizeof(dir) - 1;
	size_t after = 0;

	for (size_t i = 0; i + dn <= path.n; i++)
		if (memcmp(path.p + i, dir, dn) == 0 && (i == 0 || path.p[i - 1] == '/'))
			after = i + dn;
	if (!after)
		return 0;
	*pkg = package_name(span_from(path, after));
	/* node_modules/.bin/x is a link to a package, not one. */
	return pkg->n > 0 && pkg->p[0] != '.';
}

static struct span without_extension(struct span name)
{
	static const char *const exts[] = {".js", ".mjs", ".cjs", ".ts", ".mts", ".cts",
					   ".jsx", ".tsx", ".py", ".rb", ".jar", NULL};

	for (const char *const *e = exts; *e; e++)
		if (span_ends(name, *e))
			return strip_suffix(name, *e);
	return name;
}

/* Rule 3 of app.h: a script path, resolved when we can. */
static size_t script_name(struct span path, tt_app_resolve_fn resolve, void *arg, char *out,
			  size_t cap)
{
	char given[PATH_MAX], real[PATH_MAX];
	struct span pkg;

	if (path.n == 0)
		return 0;
	if (span_starts(path, "npm:") || span_starts(path, "jsr:"))  /* deno's specifiers */
		return put_name(out, cap, package_name(span_from(path, 4)));
	if (resolve) {
		size_t n = path.n < sizeof(given) ? path.n : sizeof(given) - 1;

		memcpy(given, path.p, n);
		given[n] = '\0';
		real[0] = '\0';
		if (resolve(given, real, sizeof(real), arg) == 0 && real[0]) {
			real[sizeof(real) - 1] = '\0';
			path = span_of(real);
		}
	}
	if (node_package(path, &pkg))
		return put_name(out, cap, pkg);
	return put_name(out, cap, without_extension(base_name(path)));
}

/* java's "com.example.Main" -> "Main", "mod/com.example.Main" too; "Tool.java" -> "Tool". */
static struct span class_name(struct span cls)
{
	if (span_ends(cls, ".java"))
		return strip_suffix(base_name(cls), ".java");
	for (size_t i = cls.n; i > 0; i--)
		if (cls.p[i - 1] == '.' || cls.p[i - 1] == '/')
			return span_from(cls, i);
	return cls;
}

static size_t name_target(enum interp in, enum found f, struct span what,
			  tt_app_resolve_fn resolve, void *arg, char *out, size_t cap)
{
	switch (f) {
	case FOUND_OPERAND:
		if (in == JAVA)
			return put_name(out, cap, class_name(what));
		return script_name(what, resolve, arg, out, cap);
	case FOUND_SCRIPT:
		return script_name(what, resolve, arg, out, cap);
	case FOUND_MODULE:
		return put_name(out, cap, in == JAVA ? class_name(what) : what);
	case FOUND_PACKAGE:
		return put_name(out, cap, package_name(what));
	default:
		return 0;
	}
}

size_t tt_app_name(const char *exe, const char *argv, size_t len, tt_app_resolve_fn resolve,
		   void *arg, const char *parent_app, char *out, size_t cap)
{
	struct args a = {argv, argv ? argv + len : NULL};
	struct span arg0 = {"", 0}, prog, what = none;
	enum interp in;
	size_t n;

	if (cap == 0)
		return 0;
	next_arg(&a, &arg0);
	/* readlink(/proc/PID/exe) of a binary replaced since it started */
	prog = base_name(strip_suffix(span_of(exe), " (deleted)"));
	if (prog.n == 0)
		prog = base_name(arg0);
	in = interp_of(prog);
	if (in == NOT_INTERP)
		return put_name(out, cap, strip_suffix(prog, ".exe"));
	/*
	 * An interpreter whose first argument names no interpreter renamed
	 * itself (node's process.title, Python's setproctitle: Claude Code's
	 * npm build calls itself "claude"): that is its name for people.
	 */
	if (arg0.n > 0 && interp_of(base_name(arg0)) == NOT_INTERP &&
	    span_of(exe).n > 0)
		return put_name(out, cap, base_name(arg0));
	n = name_target(in, find_target(in, &a, arg0, &what), what, resolve, arg, out, cap);
	if (n > 0)
		return n;
	if (parent_app && parent_app[0])
		return put_name(out, cap, span_of(parent_app));
	return put_name(out, cap, prog);
}
