/*
 * sslprobe.c - tokentap-probe: TLS plaintext from uprobes on OpenSSL,
 * decoded into usage records for the whole node.
 *
 * Lifecycle (libbpf-tools style): open the skeleton, set its read-only
 * data, load, attach (per file: attach.c), poll the ring buffer, and on
 * SIGINT/SIGTERM drain it, close every connection (pending exchanges come
 * out as records), flush the shipper and destroy everything in reverse.
 */
#include <errno.h>
#include <limits.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/types.h>

#include "attach.h"
#include "common/addr.h"
#include "common/cgroup.h"
#include "execgate.h"
#include "cgroup_names.h"
#include "conns.h"
#include "procs.h"
#include "pstats.h"
#include "push.h"
#include "sslprobe.h"
#include "sslprobe.skel.h"
#include "tlsfind.h"
#include "tokentap/decoder.h"
#include "tokentap/error.h"
#include "tokentap/record.h"
#include "unhooked.h"
#include "ship/ship.h"

#define MAX_PIDS 1024
#define MAX_EXES 64
/*
 * The BPF side does not wake us per event (see wake_bytes in
 * sslprobe.bpf.c): we drain the ring every DRAIN_MS, or sooner once an
 * eighth of it is full.  Records wait at most that long.
 */
#define DRAIN_MS 20
/* How often the counters go to the collector (tokentap_probe_*). */
#define PUSH_MS 10000

/* Exit statuses a caller (or a test) can tell apart. */
enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,     /* runtime failure */
	EXIT_USAGE = 2,    /* bad command line */
	EXIT_NO_BPF = 3,   /* not root, no BTF, or the kernel refused BPF */
};

static const char usage_text[] =
"Usage: tokentap-probe [OPTION]...\n"
"Measure the LLM API calls of every process on this node through eBPF\n"
"uprobes on OpenSSL (libssl and executables with their own OpenSSL, such\n"
"as Node.js), and ship one usage record per call.  Needs root.\n"
"\n"
"  --collector URL|off  where records go: unix:/path.sock, http://host:port\n"
"                       or off (default: " TT_DEFAULT_COLLECTOR ")\n"
"  --out FILE           also append every record, one JSON object a line\n"
"  --exe PATH           also attach to this executable (repeatable)\n"
"  --pid PID            only watch this process (repeatable)\n"
"  --stats[=SECONDS]    print counters every SECONDS (default 5)\n"
"  --rescan-ms MS       look for new processes and libraries every MS\n"
"                       milliseconds (default 1000)\n"
"  --ringbuf-mb N       ring buffer size in MiB, a power of two (default 32)\n"
"  --no-exec-gate       do not hold new programs at exec until they are\n"
"                       attached (their first calls may then be missed)\n"
"  -v, --verbose        say what gets attached, and libbpf's messages\n"
"  -h, --help           this text\n"
"\n"
"Runs until SIGINT or SIGTERM, then flushes records and detaches every\n"
"uprobe.  A process that runs the agent (libtokentap.so) is left to it.\n"
"Counters of lost or cut bytes are printed at exit; records whose bytes\n"
"were lost carry error \"truncated\".\n"
"Exit status: 0 ok, 1 failure, 2 usage, 3 BPF unavailable (not root,\n"
"no BTF, or the kernel refused the programs).\n";

struct opts {
	const char *collector;
	const char *out;
	const char *exes[MAX_EXES];
	size_t nexes;
	int pids[MAX_PIDS];
	size_t npids;
	int stats_secs;
	int rescan_ms;
	int no_exec_gate;
	unsigned ringbuf_mb;
	int verbose;
};

struct probe {
	struct opts o;
	struct sslprobe_bpf *skel;
	struct ring_buffer *rb;
	tt_attach *att;
	tt_execgate *gate;
	tt_execgate_stats gate_st; /* the gate's last counters */
	size_t unhookable_files;   /* kept past tt_attach_free for the exit line */
	tt_push *push;             /* our counters to the collector */
	char host[256];
	tt_conns *conns;
	tt_procs *procs;
	tt_cgnames *cgn;
	tt_unhooked *unhooked;     /* TLS the probe cannot see */
	tt_shipper *ship;
	int64_t mono_to_real_ns;
	struct bpf_link *exit_link, *exec_link, *hello_link;
	long ticks_ns; /* nanoseconds per clock tick of /proc/PID/stat */
	uint64_t ev_data, ev_free, ev_bad, ev_exit, records;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int verbose_libbpf;

static int libbpf_print(enum libbpf_print_level level, const char *fmt,
			va_list ap)
{
	if (level == LIBBPF_DEBUG || (!verbose_libbpf && level == LIBBPF_INFO))
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static int64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* bpf_ktime_get_ns() is CLOCK_MONOTONIC; records want wall-clock time. */
static void sync_clocks(struct probe *p)
{
	int64_t m1 = clock_ns(CLOCK_MONOTONIC);
	int64_t r = clock_ns(CLOCK_REALTIME);
	int64_t m2 = clock_ns(CLOCK_MONOTONIC);

	p->mono_to_real_ns = r - (m1 + (m2 - m1) / 2);
}

static int64_t now_us(const struct probe *p)
{
	return clock_ns(CLOCK_REALTIME) / 1000;
	(void)p;
}

static void ship_record(struct probe *p, const tt_record *rec)
{
	tt_shipper_submit(p->ship, rec);
}

static void on_record(tt_record *rec, const tt_conn_info *ci, void *user)
{
	struct probe *p = user;
	const tt_proc *pr = tt_procs_get(p->procs, ci->tgid);
	char cg[256] = "";

	TT_RECORD_SET(rec, source, "ebpf", (size_t)-1);
	rec->pid = ci->tgid;
	rec->tid = ci->tid;
	TT_RECORD_SET(rec, comm, pr->comm, (size_t)-1);
	TT_RECORD_SET(rec, exe, pr->exe, (size_t)-1);
	TT_RECORD_SET(rec, app, pr->app, (size_t)-1);
	TT_RECORD_SET(rec, tls, tt_tls_stack_name((enum tt_tls_stack)ci->stack), (size_t)-1);
	/*
	 * The cgroup v2 path of the calling task comes from its id; on a
	 * host whose containers live in v1 hierarchies that is "/" and the
	 * process's /proc/PID/cgroup says more.
	 */
	if (tt_cgnames_lookup(p->cgn, ci->cgroup_id, cg, sizeof(cg)) == 0 &&
	    strcmp(cg, "/") != 0) {
		TT_RECORD_SET(rec, cgroup, cg, (size_t)-1);
		tt_cgroup_path_ids(cg, strlen(cg), rec->container_id,
				   sizeof(rec->container_id), rec->pod_uid,
				   sizeof(rec->pod_uid));
	} else {
		TT_RECORD_SET(rec, cgroup, pr->cgroup[0] ? pr->cgroup : cg,
			      (size_t)-1);
	}
	if (!rec->container_id[0])
		TT_RECORD_SET(rec, container_id, pr->container_id, (size_t)-1);
	if (!rec->pod_uid[0])
		TT_RECORD_SET(rec, pod_uid, pr->pod_uid, (size_t)-1);
	p->records++;
	ship_record(p, rec);
}

static void skip_tgid(struct probe *p, uint32_t tgid)
{
	__u8 one = 1;

	bpf_map__update_elem(p->skel->maps.skip_tgids, &tgid, sizeof(tgid),
			     &one, sizeof(one), BPF_ANY);
}

/*
 * tt_conns gave a connection up (on) or forgets one (off).  The insert
 * never replaces: an SSLPROBE_SKIP_FREED mark there means the connection
 * was freed already and the pointer may carry a new one.
 */
static void skip_conn(uint32_t tgid, uint64_t ssl, int on, void *arg)
{
	struct probe *p = arg;
	struct sslprobe_conn_key k = { .ssl = ssl, .tgid = tgid };
	__u8 v = SSLPROBE_SKIP;

	if (on)
		bpf_map__update_elem(p->skel->maps.skip_conns, &k, sizeof(k),
				     &v, sizeof(v), BPF_NOEXIST);
	else
		bpf_map__delete_elem(p->skel->maps.skip_conns, &k, sizeof(k), 0);
}

/* The executable's path from the components the kernel walked. */
static void exe_path(const struct sslprobe_proc *e, char *exe, size_t cap)
{
	size_t o = 0;
	int i;

	exe[0] = '\0';
	for (i = SSLPROBE_EXE_PARTS - 1; i >= 0; i--) {
		size_t n = strnlen(e->exe[i], SSLPROBE_EXE_PART);

		if (!n || o + n + 2 > cap)
			continue;
		exe[o++] = '/';
		memcpy(exe + o, e->exe[i], n);
		o += n;
		exe[o] = '\0';
	}
}

/*
 * A process made its first call.  Its tgid may have belonged to a process
 * whose exit event was lost: what that one left open ends first.
 */
static void proc_event(struct probe *p, const struct sslprobe_proc *e)
{
	char exe[SSLPROBE_EXE_PARTS * (SSLPROBE_EXE_PART + 1) + 1];
	char comm[sizeof(e->comm) + 1];
	const tt_proc *old = tt_procs_peek(p->procs, e->hdr.tgid);
	tt_proc_desc d = { 0 };

	exe_path(e, exe, sizeof(exe));
	memcpy(comm, e->comm, sizeof(e->comm));
	comm[sizeof(e->comm)] = '\0';
	d.ppid = e->ppid;
	d.start = e->hdr.aux / (uint64_t)p->ticks_ns;
	d.comm = comm;
	d.exe = exe;
	d.args = e->args;
	d.args_len = e->args_len < sizeof(e->args) ? e->args_len : sizeof(e->args);
	d.agent = (e->flags & SSLPROBE_PROC_AGENT) != 0;
	if (old && old->start != d.start) {
		tt_conns_end_tgid(p->conns, e->hdr.tgid, now_us(p));
		tt_procs_forget(p->procs, e->hdr.tgid);
	}
	tt_procs_describe(p->procs, e->hdr.tgid, &d);
}

/*
 * A process opened TLS while it mapped no file with our uprobes.  A
 * library it loaded a moment ago may not be attached yet: while it runs,
 * look at it once more before naming it.
 */
static void hello_event(struct probe *p, const struct sslprobe_proc *e)
{
	char exe[PATH_MAX], comm[sizeof(e->comm) + 1], why[256], link[64];
	int pid = (int)e->hdr.tgid;
	ssize_t n;

	/* the last drain at exit comes after the files are detached */
	if (!p->att)
		return;
	if (tt_attach_scan(p->att, &pid, 1, NULL, NULL) > 0 ||
	    tt_attach_pid_hooked(p->att, pid) == 1)
		return;
	/* /proc names the whole path; the kernel's walk stops at a mount */
	snprintf(link, sizeof(link), "/proc/%d/exe", pid);
	n = readlink(link, exe, sizeof(exe) - 1);
	if (n > 0)
		exe[n] = '\0';
	else
		exe_path(e, exe, sizeof(exe));
	memcpy(comm, e->comm, sizeof(e->comm));
	comm[sizeof(e->comm)] = '\0';
	tt_attach_why(p->att, exe, why, sizeof(why));
	tt_unhooked_note(p->unhooked, exe, (uint32_t)pid, comm, (unsigned)e->hdr.pos,
			 why);
}

/* Exit or exec: every connection of the process is over. */
static void process_over(struct probe *p, const struct sslprobe_hdr *h,
			 int64_t ts_us)
{
	p->ev_exit++;
	tt_conns_end_tgid(p->conns, h->tgid, ts_us);
	tt_procs_forget(p->procs, h->tgid);
}

static int handle_event(void *ctx, void *data, size_t size)
{
	struct probe *p = ctx;
	const struct sslprobe_hdr *h = data;
	tt_conn_info ci;
	int64_t ts_us;

	if (size < sizeof(*h) || (h->type == SSLPROBE_EV_DATA &&
				  h->len > size - sizeof(*h))) {
		p->ev_bad++;
		return 0;
	}
	ts_us = ((int64_t)h->ts_ns + p->mono_to_real_ns) / 1000;
	if (h->type == SSLPROBE_EV_FREE) {
		p->ev_free++;
		tt_conns_end(p->conns, h->tgid, h->ssl, h->pos, h->aux, ts_us);
		/* SSL_free's mark (or a skip): the pointer is free for reuse */
		skip_conn(h->tgid, h->ssl, 0, p);
		return 0;
	}
	if (h->type == SSLPROBE_EV_PROC) {
		if (size >= sizeof(struct sslprobe_proc))
			proc_event(p, data);
		return 0;
	}
	if (h->type == SSLPROBE_EV_HELLO) {
		if (size >= sizeof(struct sslprobe_proc))
			hello_event(p, data);
		return 0;
	}
	if (h->type == SSLPROBE_EV_EXIT || h->type == SSLPROBE_EV_EXEC) {
		process_over(p, h, ts_us);
		return 0;
	}
	if (h->type != SSLPROBE_EV_DATA) {
		p->ev_bad++;
		return 0;
	}
	p->ev_data++;
	ci.tgid = h->tgid;
	ci.tid = h->tid;
	ci.ssl = h->ssl;
	ci.cgroup_id = h->cgroup_id;
	ci.stack = h->stack;
	tt_conns_data(p->conns, &ci,
		      h->dir == SSLPROBE_DIR_RECV ? TT_DIR_RECV : TT_DIR_SENT,
		      h->pos, (const char *)data + sizeof(*h), h->len, ts_us);
	return 0;
}

static void read_stats(struct probe *p, __u64 out[SSLPROBE_ST_MAX])
{
	int ncpu = libbpf_num_possible_cpus();
	__u64 *vals;
	__u32 i;
	int c;

	memset(out, 0, sizeof(__u64) * SSLPROBE_ST_MAX);
	if (ncpu <= 0)
		return;
	vals = calloc((size_t)ncpu, sizeof(*vals));
	if (!vals)
		return;
	for (i = 0; i < SSLPROBE_ST_MAX; i++) {
		if (bpf_map__lookup_elem(p->skel->maps.stats, &i, sizeof(i),
					 vals, sizeof(*vals) * (size_t)ncpu, 0))
			continue;
		for (c = 0; c < ncpu; c++)
			out[i] += vals[c];
	}
	free(vals);
}

/*
 * Runs of our programs the kernel skipped because another BPF program was
 * running on that CPU (recursion protection): an entry or a return that
 * never ran.  Each is a loss the kernel counts, not us.
 */
static uint64_t prog_misses(struct probe *p)
{
	struct bpf_program *prog;
	uint64_t n = 0;

	bpf_object__for_each_program(prog, p->skel->obj) {
		struct bpf_prog_info info;
		__u32 len = sizeof(info);
		int fd = bpf_program__fd(prog);

		memset(&info, 0, sizeof(info));
		if (fd >= 0 && bpf_obj_get_info_by_fd(fd, &info, &len) == 0)
			n += info.recursion_misses;
	}
	return n;
}

/* Every counter of the probe, kernel side and loader, in one table. */
static void collect_stats(struct probe *p, tt_pstats *st, size_t nfiles)
{
	__u64 s[SSLPROBE_ST_MAX];
	tt_conns_stats cs;

	read_stats(p, s);
	tt_conns_get_stats(p->conns, &cs);
	if (p->gate)
		tt_execgate_get_stats(p->gate, &p->gate_st);
	st->n = 0;
#define K(name, v) tt_pstats_add(st, name, (uint64_t)(v), 0)
#define G(name, v) tt_pstats_add(st, name, (uint64_t)(v), 1)
	K("calls", s[SSLPROBE_ST_CALLS]);
	K("events", s[SSLPROBE_ST_EVENTS]);
	K("bytes", s[SSLPROBE_ST_BYTES]);
	K("dropped_events", s[SSLPROBE_ST_DROPS]);
	K("dropped_bytes", s[SSLPROBE_ST_DROP_BYTES]);
	K("faults", s[SSLPROBE_ST_FAULTS]);
	K("fault_bytes", s[SSLPROBE_ST_FAULT_BYTES]);
	K("cut_bytes", s[SSLPROBE_ST_CUT_BYTES]);
	K("busy", s[SSLPROBE_ST_BUSY]);
	K("busy_bytes", s[SSLPROBE_ST_BUSY_BYTES]);
	K("frees", s[SSLPROBE_ST_FREES]);
	K("free_drops", s[SSLPROBE_ST_FREE_DROPS]);
	K("no_entry", s[SSLPROBE_ST_NO_ENTRY]);
	K("no_slot", s[SSLPROBE_ST_NO_SLOT]);
	K("ret_unseen", s[SSLPROBE_ST_RET_UNSEEN]);
	K("stale_entries", s[SSLPROBE_ST_STALE]);
	K("too_deep", s[SSLPROBE_ST_TOO_DEEP]);
	K("proc_drops", s[SSLPROBE_ST_PROC_DROPS]);
	K("skipped", s[SSLPROBE_ST_SKIPPED]);
	K("agent_calls", s[SSLPROBE_ST_AGENT]);
	K("prog_misses", prog_misses(p));
	K("exits", p->ev_exit);
	K("exit_drops", s[SSLPROBE_ST_EXIT_DROPS]);
	K("procs_full", s[SSLPROBE_ST_PROCS_FULL]);
	G("conns_live", cs.live);
	K("conns_opened", cs.opened);
	K("conns_evicted", cs.evicted);
	K("conns_skipped", cs.skipped);
	K("skip_late", cs.skip_late);
	K("gaps", cs.gaps);
	K("records", cs.records);
	K("truncated_records", cs.truncated);
	K("exec_held", p->gate_st.held);
	G("exec_hold_max_us", p->gate_st.hold_max_us);
	G("exec_gate_fs", p->gate_st.filesystems);
	G("files", nfiles);
	G("uprobes_now", tt_attach_links(p->att));
	if (p->att)
		p->unhookable_files = tt_attach_unhookable(p->att);
	K("unhookable_files", p->unhookable_files);
	K("tls_unhooked", tt_unhooked_procs(p->unhooked));
	G("tls_unhooked_programs", tt_unhooked_programs(p->unhooked));
	st->nunhooked = tt_unhooked_list(p->unhooked, st->unhooked, TT_PSTATS_UNHOOKED);
#undef K
#undef G
}

static void print_stats(struct probe *p, const char *what, size_t nfiles)
{
	char line[4096];
	tt_pstats st;

	collect_stats(p, &st, nfiles);
	tt_pstats_line(&st, line, sizeof(line));
	fprintf(stderr, "tokentap-probe: %s: %s\n", what, line);
}

/* The counters as the collector takes them; "" when they do not fit. */
static void stats_json(struct probe *p, size_t nfiles, char *buf, size_t cap)
{
	tt_pstats st;

	collect_stats(p, &st, nfiles);
	if (tt_pstats_json(&st, p->host, buf, cap) < 0)
		buf[0] = '\0';
}

/* The exec gate holds a new program: attach it if it carries OpenSSL. */
static void on_exec_file(const char *path, const char *label, void *arg)
{
	struct probe *p = arg;
	int r = tt_attach_file(p->att, path, label);

	if (r < 0 && p->o.verbose)
		fprintf(stderr, "tokentap-probe: %s: %s\n", label, tt_strerror(r));
}

/* A process the rescan looks at: its root may be a container's. */
static void watch_root(int pid, void *arg)
{
	struct probe *p = arg;
	char root[64];

	snprintf(root, sizeof(root), "/proc/%d/root/", pid);
	tt_execgate_watch(p->gate, root);
}

/*
 * Hold new programs at exec until they are attached.  Without it (no
 * fanotify permission events here, or --no-exec-gate, or --pid), a
 * program is found by the rescan, and one that starts, calls and exits
 * between two rescans is missed: say so once.
 */
static void start_exec_gate(struct probe *p)
{
	if (p->o.npids || p->o.no_exec_gate)
		return;
	p->gate = tt_execgate_start(on_exec_file, p, p->o.verbose);
	if (!p->gate) {
		fprintf(stderr, "tokentap-probe: warning: cannot hold new "
			"programs at exec (fanotify: %s); a program not yet "
			"running is attached within --rescan-ms of its start, "
			"and its first calls may be missed\n", strerror(errno));
		return;
	}
	tt_execgate_watch_mounts(p->gate);
}

/* The sweep found a process gone whose exit event was lost. */
static void on_gone(uint32_t tgid, void *arg)
{
	struct probe *p = arg;

	tt_conns_end_tgid(p->conns, tgid, now_us(p));
}

/*
 * Open, size and load the BPF programs; with_hello: with the TLS watch
 * (tls_hello).  0, or a negative errno (-ENOMEM: said already).
 */
static int load_bpf(struct probe *p, int with_hello)
{
	int ncpu = libbpf_num_possible_cpus();

	p->skel = sslprobe_bpf__open();
	if (!p->skel) {
		fprintf(stderr, "tokentap-probe: cannot open the BPF object: %s\n",
			strerror(errno));
		return -errno;
	}
	p->skel->rodata->filter_tgids = p->o.npids > 0;
	p->skel->rodata->wake_bytes = ((__u64)p->o.ringbuf_mb << 20) / 8;
	if (ncpu <= 0 ||
	    bpf_map__set_max_entries(p->skel->maps.scratch, (__u32)ncpu) ||
	    bpf_map__set_max_entries(p->skel->maps.events,
				     p->o.ringbuf_mb << 20)) {
		fprintf(stderr, "tokentap-probe: cannot size the BPF maps\n");
		return -ENOMEM;
	}
	if (!with_hello)
		bpf_program__set_autoload(p->skel->progs.tls_hello, false);
	return sslprobe_bpf__load(p->skel);
}

static int parse_int(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	enum { O_COLLECTOR = 256, O_OUT, O_EXE, O_PID, O_STATS, O_RESCAN,
	       O_RINGBUF, O_NO_EXEC_GATE };
	static const struct option longopts[] = {
		{ "collector", required_argument, NULL, O_COLLECTOR },
		{ "out", required_argument, NULL, O_OUT },
		{ "exe", required_argument, NULL, O_EXE },
		{ "pid", required_argument, NULL, O_PID },
		{ "stats", optional_argument, NULL, O_STATS },
		{ "rescan-ms", required_argument, NULL, O_RESCAN },
		{ "ringbuf-mb", required_argument, NULL, O_RINGBUF },
		{ "no-exec-gate", no_argument, NULL, O_NO_EXEC_GATE },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	long v;
	int c;

	o->rescan_ms = 1000;
	o->ringbuf_mb = 32;
	while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		switch (c) {
		case O_COLLECTOR:
			o->collector = optarg;
			break;
		case O_OUT:
			o->out = optarg;
			break;
		case O_EXE:
			if (o->nexes == MAX_EXES) {
				fprintf(stderr, "tokentap-probe: too many --exe\n");
				return -1;
			}
			o->exes[o->nexes++] = optarg;
			break;
		case O_PID:
			if (parse_int(optarg, 1, 0x7fffffff, &v) < 0 ||
			    o->npids == MAX_PIDS) {
				fprintf(stderr, "tokentap-probe: bad --pid '%s'\n",
					optarg);
				return -1;
			}
			o->pids[o->npids++] = (int)v;
			break;
		case O_STATS:
			o->stats_secs = 5;
			if (optarg && parse_int(optarg, 1, 86400, &v) == 0)
				o->stats_secs = (int)v;
			else if (optarg) {
				fprintf(stderr, "tokentap-probe: bad --stats '%s'\n",
					optarg);
				return -1;
			}
			break;
		case O_RESCAN:
			if (parse_int(optarg, 50, 3600000, &v) < 0) {
				fprintf(stderr, "tokentap-probe: bad --rescan-ms '%s'\n",
					optarg);
				return -1;
			}
			o->rescan_ms = (int)v;
			break;
		case O_RINGBUF:
			if (parse_int(optarg, 1, 1024, &v) < 0 || (v & (v - 1))) {
				fprintf(stderr, "tokentap-probe: --ringbuf-mb wants a "
					"power of two from 1 to 1024\n");
				return -1;
			}
			o->ringbuf_mb = (unsigned)v;
			break;
		case O_NO_EXEC_GATE:
			o->no_exec_gate = 1;
			break;
		case 'v':
			o->verbose = 1;
			break;
		case 'h':
			fputs(usage_text, stdout);
			exit(EXIT_OK);
		default:
			fputs("Try 'tokentap-probe --help'.\n", stderr);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "tokentap-probe: unexpected argument '%s'\n",
			argv[optind]);
		return -1;
	}
	return 0;
}

static int open_sinks(struct probe *p)
{
	tt_ship_config sc = {
		.collector = p->o.collector,
		.out_path = p->o.out,
		.token_file = getenv("TOKENTAP_TOKEN_FILE"),
	};

	p->ship = tt_shipper_new(&sc);
	if (!p->ship) {
		fprintf(stderr, "tokentap-probe: cannot start the shipper\n");
		return -1;
	}
	return 0;
}

static void close_sinks(struct probe *p)
{
	if (p->ship) {
		tt_shipper_flush(p->ship, 5000);
		tt_shipper_free(p->ship);
		p->ship = NULL;
	}
}

static int preflight(void)
{
	struct stat st;

	if (geteuid() != 0) {
		fprintf(stderr, "tokentap-probe: must run as root (it loads "
			"eBPF programs and places uprobes)\n");
		return -1;
	}
	if (stat("/sys/kernel/btf/vmlinux", &st) < 0) {
		fprintf(stderr, "tokentap-probe: this kernel has no BTF "
			"(/sys/kernel/btf/vmlinux is missing; it needs "
			"CONFIG_DEBUG_INFO_BTF=y)\n");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct probe p = { 0 };
	struct sigaction sa = { 0 };
	int64_t next_scan, next_stats = 0, t;
	int err, ret = EXIT_FAIL;
	__u32 self = (__u32)getpid();
	size_t i, nfiles = 0;

	if (parse_args(argc, argv, &p.o) < 0)
		return EXIT_USAGE;
	if (preflight() < 0)
		return EXIT_NO_BPF;
	verbose_libbpf = p.o.verbose;
	libbpf_set_print(libbpf_print);

	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	err = load_bpf(&p, 1);
	if (err == -ENOMEM)
		goto cleanup;
	if (err) {
		/* an older kernel may refuse only the TLS watch: go without */
		int first = err;

		sslprobe_bpf__destroy(p.skel);
		p.skel = NULL;
		err = load_bpf(&p, 0);
		if (!err)
			fprintf(stderr, "tokentap-probe: the kernel refused the TLS "
				"watch (%s): programs whose TLS cannot be hooked "
				"will not be named\n", strerror(-first));
	}
	if (err) {
		fprintf(stderr, "tokentap-probe: the kernel refused the BPF "
			"programs: %s%s\n", strerror(-err),
			p.o.verbose ? "" : " (run with -v for the verifier log)");
		ret = EXIT_NO_BPF;
		goto cleanup;
	}
	for (i = 0; i < p.o.npids; i++) {
		__u32 pid = (__u32)p.o.pids[i];
		__u8 one = 1;

		bpf_map__update_elem(p.skel->maps.only_tgids, &pid, sizeof(pid),
				     &one, sizeof(one), BPF_ANY);
	}
	/* our own shipping (https collector) is not an LLM call to measure */
	skip_tgid(&p, self);
	/* the ends of processes: exit and exec */
	p.exit_link = bpf_program__attach(p.skel->progs.proc_exit);
	p.exec_link = bpf_program__attach(p.skel->progs.proc_exec);
	if (!p.exit_link || !p.exec_link) {
		fprintf(stderr, "tokentap-probe: cannot attach to the process "
			"exit and exec tracepoints: %s\n", strerror(errno));
		ret = EXIT_NO_BPF;
		goto cleanup;
	}
	/* TLS opened with nothing hooked (unhooked.h) */
	if (bpf_program__autoload(p.skel->progs.tls_hello) &&
	    !(p.hello_link = bpf_program__attach(p.skel->progs.tls_hello)))
		fprintf(stderr, "tokentap-probe: cannot watch TLS connections "
			"(%s): programs whose TLS cannot be hooked will not be "
			"named\n", strerror(errno));
	p.ticks_ns = 1000000000L / sysconf(_SC_CLK_TCK);

	p.conns = tt_conns_new(on_record, &p, 0, NULL);
	p.procs = tt_procs_new(0);
	p.unhooked = tt_unhooked_new();
	p.cgn = tt_cgnames_new(NULL); /* NULL without cgroup2: fine */
	p.att = tt_attach_new(p.skel, p.o.verbose);
	if (!p.conns || !p.procs || !p.att || !p.unhooked) {
		fprintf(stderr, "tokentap-probe: out of memory\n");
		goto cleanup;
	}
	tt_conns_set_skip(p.conns, skip_conn, &p);
	if (open_sinks(&p) < 0)
		goto cleanup;
	if (gethostname(p.host, sizeof(p.host) - 1) < 0)
		snprintf(p.host, sizeof(p.host), "unknown");
	p.push = tt_push_start(p.o.collector ? p.o.collector
					     : TT_DEFAULT_COLLECTOR,
			       PUSH_MS);
	sync_clocks(&p);
	p.rb = ring_buffer__new(bpf_map__fd(p.skel->maps.events), handle_event,
				&p, NULL);
	if (!p.rb) {
		fprintf(stderr, "tokentap-probe: cannot open the ring buffer: %s\n",
			strerror(errno));
		goto cleanup;
	}

	for (i = 0; i < p.o.nexes; i++) {
		err = tt_attach_file(p.att, p.o.exes[i], p.o.exes[i]);
		if (err < 0) {
			fprintf(stderr, "tokentap-probe: --exe %s: %s\n",
				p.o.exes[i], tt_strerror(err));
			goto cleanup;
		}
		if (err == 0 && p.o.verbose)
			fprintf(stderr, "tokentap-probe: --exe %s: already "
				"attached or no SSL_write/SSL_read in it\n",
				p.o.exes[i]);
	}
	/* the gate first: nothing exec'd during the scans below escapes */
	start_exec_gate(&p);
	if (!p.o.npids) {
		tt_attach_libdirs(p.att);
		tt_attach_path_dirs(p.att, getenv("PATH"));
	}
	tt_attach_scan(p.att, p.o.pids, p.o.npids, p.gate ? watch_root : NULL,
		       &p);
	fprintf(stderr, "tokentap-probe: ready: %zu files, %zu uprobes, "
		"exec_gate=%s\n", tt_attach_files(p.att), tt_attach_links(p.att),
		p.gate ? "on" : "off");

	t = clock_ns(CLOCK_MONOTONIC) / 1000000;
	next_scan = t + p.o.rescan_ms;
	if (p.o.stats_secs)
		next_stats = t + p.o.stats_secs * 1000;
	while (!stop) {
		err = ring_buffer__poll(p.rb, DRAIN_MS);
		if (err >= 0)
			err = ring_buffer__consume(p.rb);
		if (err < 0 && err != -EINTR) {
			fprintf(stderr, "tokentap-probe: polling the ring buffer: "
				"%s\n", strerror(-err));
			break;
		}
		t = clock_ns(CLOCK_MONOTONIC) / 1000000;
		if (t >= next_scan) {
			sync_clocks(&p);
			if (p.gate)
				tt_execgate_watch_mounts(p.gate);
			tt_attach_scan(p.att, p.o.pids, p.o.npids,
				       p.gate ? watch_root : NULL, &p);
			tt_procs_sweep(p.procs, on_gone, &p);
			next_scan = t + p.o.rescan_ms;
			if (p.push) {
				char doc[8192];

				stats_json(&p, tt_attach_files(p.att), doc,
					   sizeof(doc));
				tt_push_set(p.push, doc);
			}
		}
		if (next_stats && t >= next_stats) {
			print_stats(&p, "stats", tt_attach_files(p.att));
			next_stats = t + p.o.stats_secs * 1000;
		}
	}
	/* what is already in the ring belongs to calls that happened */
	ring_buffer__consume(p.rb);
	ret = EXIT_OK;

cleanup:
	if (p.gate)
		tt_execgate_get_stats(p.gate, &p.gate_st);
	tt_execgate_stop(p.gate);  /* allows whatever exec still waits */
	p.gate = NULL;
	if (p.att) {
		nfiles = tt_attach_files(p.att);
		p.unhookable_files = tt_attach_unhookable(p.att);
	}
	tt_attach_free(p.att);     /* no more events from here on */
	p.att = NULL;
	bpf_link__destroy(p.hello_link);
	bpf_link__destroy(p.exec_link);
	bpf_link__destroy(p.exit_link);
	if (p.rb)
		ring_buffer__consume(p.rb);
	tt_conns_end_all(p.conns, now_us(&p)); /* pending records out */
	if (p.skel && p.rb && p.conns) {
		char doc[8192];

		print_stats(&p, "exit", nfiles);
		stats_json(&p, nfiles, doc, sizeof(doc));
		tt_push_stop(p.push, doc);
		p.push = NULL;
	}
	tt_push_stop(p.push, NULL);
	tt_conns_free(p.conns, now_us(&p));
	p.conns = NULL;
	close_sinks(&p);
	ring_buffer__free(p.rb);
	tt_cgnames_free(p.cgn);
	tt_procs_free(p.procs);
	tt_unhooked_free(p.unhooked);
	sslprobe_bpf__destroy(p.skel);
	return ret;
}
