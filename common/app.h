/*
 * app.h - the app of a process: the program as a person names it.
 *
 * DESIGN.md's record field `app`: for an interpreter (node, python, bun,
 * deno, ruby, java) the script or package it runs, else the executable's
 * base name.  The agent and the probe loader read a process's executable
 * and arguments (/proc/PID/exe, /proc/PID/cmdline) and ask here; this does
 * no I/O of its own, keeps no state and allocates nothing.
 *
 *	char app[128];
 *	static const char args[] = "node\0/usr/local/bin/gemini\0-p\0hi";
 *
 *	tt_app_name("/usr/bin/node", args, sizeof(args), realpath_in_root, &pid,
 *		    NULL, app, sizeof(app));
 *	// "@google/gemini-cli" when the resolver finds that the bin link leads
 *	// to /usr/local/lib/node_modules/@google/gemini-cli/dist/index.js;
 *	// "gemini" without a resolver, or when it fails.
 *
 * The rules, in order:
 *
 *  1. The program is the base name of exe (of argv[0] when exe is empty),
 *     without a trailing " (deleted)".  Not an interpreter: the app is that
 *     name without ".exe" (a Bun-compiled "claude.exe" is "claude").
 *  2. Interpreters, by that name: node, nodejs, python, pythonN[.M], ruby,
 *     rubyN[.M], bun, bunx, deno, java.  Their options are skipped, the
 *     separate values of those that take one too (node -r X, python -W X,
 *     java -cp X, ...), up to what they run:
 *       - a script (node, python, ruby: the first argument that is no option;
 *         bun and deno: the one after `run` (deno `serve` too), or a file
 *         given in place of their own command; java: -jar JAR);
 *       - python -m MOD: MOD;  java's main class or -m MOD/CLASS: the last
 *         component of the class ("com.example.Main" is "Main");
 *       - bun x PKG, bunx PKG, deno's npm:PKG and jsr:PKG: the package,
 *         without its version ("@scope/name@1.2" is "@scope/name").
 *  3. A script path is resolved by `resolve` when given (a node CLI runs
 *     through a link in a bin folder that points into node_modules).  The
 *     resolved path, else the given one, names the app: inside node_modules
 *     the package after the LAST "node_modules/" ("@scope/name" or "name"),
 *     else the base name without .js .mjs .cjs .ts .mts .cts .jsx .tsx .py
 *     .rb or .jar.
 *  2b. An interpreter (known by exe) whose argv[0] names no interpreter
 *     renamed itself (node's process.title, Python's setproctitle): the app
 *     is argv[0]'s base name ("claude").
 *  4. Nothing run from a file (node -e/-p, python -c, ruby -e, a REPL, bun
 *     install, ...): parent_app when given and not empty, else the
 *     interpreter's name.
 *
 * The name is written as valid UTF-8 (other bytes and control characters
 * become '?', which the collector would otherwise refuse) and cut before
 * a character, never inside one.
 */
#ifndef TT_COMMON_APP_H
#define TT_COMMON_APP_H

#include <stddef.h>

/*
 * Turns the NUL-terminated script path `path` into its real path (the
 * caller uses realpath under /proc/PID/root): writes it, NUL-terminated,
 * into out (cap bytes) and returns 0, or returns < 0 and out is ignored.
 */
typedef int (*tt_app_resolve_fn)(const char *path, char *out, size_t cap, void *arg);

/*
 * Write the app name of a process into out (cap bytes, always
 * NUL-terminated when cap > 0) and return its length.
 *
 *   exe         the executable's path (/proc/PID/exe); NULL or "": argv[0]'s
 *   argv, len   the arguments as /proc/PID/cmdline gives them: NUL-separated,
 *               len bytes, perhaps cut short and without the final NUL; never
 *               read past len.  A cut script path is used as far as it goes.
 *   resolve     optional (NULL: paths are taken as given), with its arg
 *   parent_app  optional: the parent's app, for rule 4
 *
 * Uses about 8 KB of stack (two PATH_MAX paths).
 */
size_t tt_app_name(const char *exe, const char *argv, size_t len, tt_app_resolve_fn resolve,
		   void *arg, const char *parent_app, char *out, size_t cap);

#endif
