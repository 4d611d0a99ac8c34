// SPDX-License-Identifier: GPL-2.0
/*
 * nullprobe.bpf.c - uprobes that do nothing, for bench/bench_probe.sh.
 *
 * Attached to the same SSL_read/SSL_write entry points as sslprobe.bpf.c,
 * entry and return alike, they cost what the traps cost and nothing more:
 * the floor the probe's per-call cost is measured against.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("uprobe")
int null_enter(void *ctx)
{
	return 0;
}

SEC("uretprobe")
int null_ret(void *ctx)
{
	return 0;
}
