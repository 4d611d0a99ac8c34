/*
 * bench_probe_null - the floor for bench/bench_probe.sh: the do-nothing
 * programs of probes/nullprobe.bpf.c on SSL_write, SSL_write_ex, SSL_read
 * and SSL_read_ex (entry and return, as tokentap-probe places them) of
 * each FILE given, until SIGINT or SIGTERM.  Prints "ready" once attached.
 *
 *   bench_probe_null [--entry-only] FILE...
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "elfsym.h"
#include "nullprobe.skel.h"

#define MAX_LINKS 64

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	static const char *const names[] = {
		"SSL_write", "SSL_write_ex", "SSL_read", "SSL_read_ex",
	};
	struct bpf_link *links[MAX_LINKS];
	struct nullprobe_bpf *skel;
	struct sigaction sa = { 0 };
	size_t nlinks = 0, i;
	int entry_only = 0, a, ret = 1;

	if (argc > 1 && strcmp(argv[1], "--entry-only") == 0) {
		entry_only = 1;
		argv++;
		argc--;
	}
	if (argc < 2) {
		fprintf(stderr, "usage: bench_probe_null [--entry-only] FILE...\n");
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
		uint64_t off[4];
		int n = tt_elfsym_lookup(argv[a], names, 4, off);

		if (n <= 0) {
			fprintf(stderr, "bench_probe_null: %s: no SSL_write/SSL_read\n",
				argv[a]);
			goto out;
		}
		for (i = 0; i < 4; i++) {
			int r;

			if (!off[i])
				continue;
			for (r = 0; r < 2 - entry_only; r++) {
				struct bpf_link *l;

				if (nlinks == MAX_LINKS)
					goto out;
				l = bpf_program__attach_uprobe(
					r ? skel->progs.null_ret : skel->progs.null_enter,
					r, -1, argv[a], (size_t)off[i]);
				if (!l) {
					fprintf(stderr, "bench_probe_null: %s %s: %s\n",
						argv[a], names[i], strerror(errno));
					goto out;
				}
				links[nlinks++] = l;
			}
		}
	}
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
