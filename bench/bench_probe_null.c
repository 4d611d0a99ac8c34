/*
 * bench_probe_null - the floor for bench/bench_probe.sh and
 * bench/bench_probe_stacks.sh: the do-nothing programs of
 * probes/nullprobe.bpf.c where tokentap-probe puts its uprobes, until
 * SIGINT or SIGTERM.  Prints "ready" once attached.
 *
 *   bench_probe_null [--entry-only] FILE...
 *       SSL_write, SSL_write_ex, SSL_read and SSL_read_ex of each FILE by
 *       symbol, entry and return (--entry-only: entry alone)
 *   bench_probe_null --find FILE...
 *       each FILE's TLS code found by the probe's own finders, in the
 *       probe's order (probes/attach.c, find_hooks), with a null program
 *       on every place the probe traps (link_ssl, link_go, link_rustls):
 *         OpenSSL, BoringSSL  write, read, write_ex, read_ex: entry and
 *                             return; free: entry
 *         Go crypto/tls       Write's entry, Read's entry and a plain
 *                             uprobe on each of its RETs, Close's entry
 *         rustls              send: entry and return; recv: entry
 *       and says whose ("ready: N uprobes (gotls)").
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "elfsym.h"
#include "nullprobe.skel.h"
#include "tlsfind.h"
#include "tokentap/error.h"

/* A Go Read has up to TT_GO_MAX_RETS returns, plus three per file. */
#define MAX_LINKS 512

static volatile sig_atomic_t stop;
static struct bpf_link *links[MAX_LINKS];
static size_t nlinks;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* One null program at off in path: a return probe when ret. */
static int link_one(struct nullprobe_bpf *skel, int ret, const char *path,
		    uint64_t off, const char *what)
{
	struct bpf_link *l;

	if (nlinks == MAX_LINKS) {
		fprintf(stderr, "bench_probe_null: more than %d uprobes\n",
			MAX_LINKS);
		return -1;
	}
	l = bpf_program__attach_uprobe(ret ? skel->progs.null_ret :
					     skel->progs.null_enter,
				       ret, -1, path, (size_t)off);
	if (!l) {
		fprintf(stderr, "bench_probe_null: %s %s+0x%llx: %s\n", path,
			what, (unsigned long long)off, strerror(errno));
		return -1;
	}
	links[nlinks++] = l;
	return 0;
}

/* The existing mode: the four SSL functions by symbol. */
static int link_syms(struct nullprobe_bpf *skel, const char *path,
		     int entry_only)
{
	static const char *const names[] = {
		"SSL_write", "SSL_write_ex", "SSL_read", "SSL_read_ex",
	};
	uint64_t off[4];
	int n = tt_elfsym_lookup(path, names, 4, off);
	size_t i;
	int r;

	if (n <= 0) {
		fprintf(stderr, "bench_probe_null: %s: no SSL_write/SSL_read\n",
			path);
		return -1;
	}
	for (i = 0; i < 4; i++) {
		if (!off[i])
			continue;
		for (r = 0; r < 2 - entry_only; r++)
			if (link_one(skel, r, path, off[i], names[i]))
				return -1;
	}
	return 0;
}

/* link_ssl's places: entry then return, free's entry. */
static int link_ssl(struct nullprobe_bpf *skel, const char *path,
		    const tt_ssl_syms *y)
{
	const struct {
		uint64_t off;
		const char *what;
	} f[] = {
		{ y->write, "write" }, { y->read, "read" },
		{ y->write_ex, "write_ex" }, { y->read_ex, "read_ex" },
	};
	size_t i;

	for (i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		if (!f[i].off)
			continue; /* OpenSSL < 1.1.1 has no _ex pair */
		if (link_one(skel, 0, path, f[i].off, f[i].what) ||
		    link_one(skel, 1, path, f[i].off, f[i].what))
			return -1;
	}
	if (y->free && link_one(skel, 0, path, y->free, "free"))
		return -1;
	return 0;
}

/* link_go's places: never a return probe on Go code, an entry one per RET. */
static int link_go(struct nullprobe_bpf *skel, const char *path,
		   const tt_go_syms *g)
{
	size_t i;

	if (link_one(skel, 0, path, g->write.entry, "Write") ||
	    link_one(skel, 0, path, g->read.entry, "Read"))
		return -1;
	for (i = 0; i < g->read.nrets; i++)
		if (link_one(skel, 0, path, g->read.rets[i], "Read RET"))
			return -1;
	if (g->close && link_one(skel, 0, path, g->close, "Close"))
		return -1;
	return 0;
}

/* link_rustls's places. */
static int link_rustls(struct nullprobe_bpf *skel, const char *path,
		       const tt_rustls_syms *y)
{
	if (link_one(skel, 0, path, y->send, "send") ||
	    link_one(skel, 1, path, y->send, "send") ||
	    link_one(skel, 0, path, y->recv, "recv"))
		return -1;
	return 0;
}

/*
 * find_hooks' order: OpenSSL symbols, then Go, BoringSSL without
 * symbols, rustls.  Returns the stack's name, NULL (said why) when the
 * file has none the probe would hook.
 */
static const char *link_found(struct nullprobe_bpf *skel, const char *path)
{
	static const char *const names[] = {
		"SSL_write", "SSL_write_ex", "SSL_read", "SSL_read_ex", "SSL_free",
	};
	uint64_t off[5];
	tt_ssl_syms ssl = { 0 };
	tt_go_syms go = { 0 };
	tt_rustls_syms rustls = { 0 };
	char why[256] = "";
	int r;

	r = tt_elfsym_lookup(path, names, 5, off);
	if (r < 0 && r != TT_EPROTO) {
		fprintf(stderr, "bench_probe_null: %s: not a readable 64-bit "
			"ELF file (%d)\n", path, r);
		return NULL;
	}
	if (r >= 0 && off[0] && off[2]) {
		ssl.write = off[0];
		ssl.write_ex = off[1];
		ssl.read = off[2];
		ssl.read_ex = off[3];
		ssl.free = off[4];
		return link_ssl(skel, path, &ssl) ? NULL :
			tt_tls_stack_name(TT_TLS_OPENSSL);
	}
	r = tt_gofind(path, &go, why, sizeof(why));
	if (r > 0)
		return link_go(skel, path, &go) ? NULL :
			tt_tls_stack_name(TT_TLS_GOTLS);
	if (r == 0) {
		r = tt_bsslfind(path, &ssl, why, sizeof(why));
		if (r > 0)
			return link_ssl(skel, path, &ssl) ? NULL :
				tt_tls_stack_name(TT_TLS_BORINGSSL);
	}
	if (r == 0) {
		r = tt_rustlsfind(path, &rustls, why, sizeof(why));
		if (r > 0)
			return link_rustls(skel, path, &rustls) ? NULL :
				tt_tls_stack_name(TT_TLS_RUSTLS);
	}
	fprintf(stderr, "bench_probe_null: %s: %s\n", path,
		r ? why : "no TLS code the probe knows");
	return NULL;
}

int main(int argc, char **argv)
{
	struct nullprobe_bpf *skel;
	struct sigaction sa = { 0 };
	char stacks[256] = "";
	size_t used = 0;
	int entry_only = 0, find = 0, a, ret = 1;

	if (argc > 1 && strcmp(argv[1], "--entry-only") == 0) {
		entry_only = 1;
		argv++;
		argc--;
	} else if (argc > 1 && strcmp(argv[1], "--find") == 0) {
		find = 1;
		argv++;
		argc--;
	}
	if (argc < 2) {
		fprintf(stderr, "usage: bench_probe_null [--entry-only | --find] FILE...\n");
		return 2;
	}
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	skel = nullprobe_bpf__open_and_load();
	if (!skel) {
		fprintf(stderr, "bench_probe_null: cannot load: %s\n",
			strerror(errno));
		return 3;
	}
	for (a = 1; a < argc; a++) {
		const char *s;

		if (!find) {
			if (link_syms(skel, argv[a], entry_only))
				goto out;
			continue;
		}
		s = link_found(skel, argv[a]);
		if (!s)
			goto out;
		if (used < sizeof(stacks))
			used += snprintf(stacks + used, sizeof(stacks) - used,
					 "%s%s", used ? ", " : "", s);
	}
	if (find)
		fprintf(stderr, "bench_probe_null: ready: %zu uprobes (%s)\n",
			nlinks, stacks);
	else
		fprintf(stderr, "bench_probe_null: ready: %zu uprobes\n", nlinks);
	while (!stop)
		pause();
	ret = 0;
out:
	while (nlinks)
		bpf_link__destroy(links[--nlinks]);
	nullprobe_bpf__destroy(skel);
	return ret;
}
