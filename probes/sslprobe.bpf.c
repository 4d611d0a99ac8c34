// SPDX-License-Identifier: GPL-2.0
/*
 * sslprobe.bpf.c - plaintext of OpenSSL connections, from uprobes.
 *
 * The entry probes save the buffer pointer per thread; the return probes
 * read what the call really moved (its return value, or *readbytes /
 * *written of the _ex pair when it returned 1) and push it into the ring
 * in chunks of at most SSLPROBE_CHUNK bytes, each event sized to what it
 * carries.  Every byte a call moved advances the connection's stream
 * position whether or not its event got through, so the loader sees gaps.
 *
 * Connections the loader gave up (skip_conns) cost the traps, a lookup at
 * entry and the thread's entry slot: no copy, no position, no event.  Such
 * a connection is never taken up again until SSL_free; a pointer reused by
 * a new connection starts afresh (see SSLPROBE_SKIP_FREED).
 *
 * Each process is tracked from its first call to its exit (procs): the
 * tracepoints on process exit and exec tell the loader, in the ring and
 * after every event of that process, that its connections are over, so
 * no clock and no /proc decides when a connection ends.  A process that
 * runs the agent (libtokentap.so) is recognised in the kernel at its first
 * call, from its mappings, and each call the agent makes is left to the
 * agent (the return address lies in the agent's code): counted once, even
 * for a process gone before the loader could look at it.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_tracing.h>

#include "sslprobe.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by the loader before load. */
const volatile bool filter_tgids = false; /* only tgids in only_tgids */
/*
 * Wake the reader only once this many bytes wait in the ring; below that
 * it drains on its own clock.  A wakeup is an irq_work, a self-IPI: on a
 * virtual machine that is a VM exit costing more than the trap itself.
 */
const volatile __u64 wake_bytes = 1 << 20;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20); /* resized by the loader */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SSLPROBE_ST_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* --pid: the processes to watch. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} only_tgids SEC(".maps");

/* Processes left out whole: the probe itself (its own shipping). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u8);
} skip_tgids SEC(".maps");

/* What the entry program left on the thread's stack for its return. */
enum entry_state {
	ENT_NONE = 0,
	ENT_ARMED,    /* a call to trace: ssl, buf, countp, dir are set */
	ENT_SKIP,     /* a call of a skipped connection: the return counts it */
	ENT_IGNORE,   /* a process not watched (--pid), or the agent's call */
};

struct entry {
	__u64 ssl;
	__u64 buf;
	__u64 countp; /* size_t * of the _ex calls, else 0 */
	__u64 sp;     /* the stack pointer at entry: pairs it with its return */
	__u32 dir;
	__u8 state;   /* enum entry_state */
	__u8 stack;   /* enum sslprobe_stack: the attach cookie */
	__u16 describe; /* the process's PROC event is still to be sent */
};

/*
 * The calls in flight on one thread.  Usually one; TLS inside TLS (a
 * connection through an HTTPS proxy, whose BIO reads the outer
 * connection) nests an SSL_read inside an SSL_read.  An entry and its
 * return are paired by the stack pointer, not by order: an entry whose
 * return never comes (its return probe was attached a moment after its
 * entry probe) is found stale and dropped, instead of taking the place
 * of the next call's.
 */
#define CALL_DEPTH 4

struct thread_calls {
	struct entry e[CALL_DEPTH];
	__u32 depth;
};

/*
 * In the thread's own storage: cheaper than a hash keyed by pid_tgid (no
 * hashing, no allocation per call, freed with the thread).
 */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct thread_calls);
} entries SEC(".maps");

/*
 * A return's stack pointer is its entry's plus what the return
 * instruction popped: the return address on x86 (8 bytes), nothing on
 * arm64 (the link register holds it).
 */
#if defined(__TARGET_ARCH_x86)
#define RET_SP_DELTA 8
#else
#define RET_SP_DELTA 0
#endif

/*
 * Connections not worth tracing, set by the loader (SSLPROBE_SKIP) and
 * marked by SSL_free (SSLPROBE_SKIP_FREED).  A plain hash, not an LRU: an
 * LRU may evict a fresh SSL_free mark under churn, and a late skip
 * decision would then land on the next connection at that pointer.  The
 * loader deletes entries at FREE events and when a process ends; when
 * the map is full a skip is simply not made (slower, never wrong).
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct sslprobe_conn_key);
	__type(value, __u8);
} skip_conns SEC(".maps");

struct pos_key {
	__u64 ssl;
	__u32 tgid;
	__u32 dir;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct pos_key);
	__type(value, __u64);
} positions SEC(".maps");

/*
 * One event under construction per CPU: too big for the BPF stack and
 * for a per-CPU map value.  Uprobe programs run with migration (not
 * preemption) disabled, so another program may preempt us on this CPU:
 * the busy flag makes that a counted loss instead of mixed bytes.
 */
struct scratch {
	__u64 busy;
	struct sslprobe_event ev;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1); /* set to the number of CPUs by the loader */
	__type(key, __u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

/* What the probe knows of a process, from its first call to its exit. */
struct proc_state {
	__u64 agent_lo;  /* the agent's code: [agent_lo, agent_hi), */
	__u64 agent_hi;  /* 0, 0 when the process does not run it */
	__u32 described; /* its SSLPROBE_EV_PROC is in the ring */
	__u32 _pad;
};

/*
 * Processes seen, by tgid.  A plain hash: entries go when the process
 * exits or execs (the tracepoints below), never by eviction, so a live
 * process is never described twice.  When full, a new process is still
 * traced but not described (counted: procs_full).
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct proc_state);
} procs SEC(".maps");

/* Open-coded iterator over a task's mappings (kernel 6.4+). */
extern int bpf_iter_task_vma_new(struct bpf_iter_task_vma *it,
				 struct task_struct *task, __u64 addr) __ksym;
extern struct vm_area_struct *
bpf_iter_task_vma_next(struct bpf_iter_task_vma *it) __ksym;
extern void bpf_iter_task_vma_destroy(struct bpf_iter_task_vma *it) __ksym;

static __always_inline void stat_add(__u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);

	if (v)
		__sync_fetch_and_add(v, n);
}

static __always_inline bool wanted(__u32 tgid)
{
	if (bpf_map_lookup_elem(&skip_tgids, &tgid))
		return false;
	if (filter_tgids && !bpf_map_lookup_elem(&only_tgids, &tgid))
		return false;
	return true;
}

#define AGENT_NAME "libtokentap.so"
#define VM_EXEC 0x00000004 /* include/linux/mm.h: not in BTF */

/* Does this mapping's file name start with "libtokentap.so"? */
static __always_inline bool is_agent_file(struct vm_area_struct *vma)
{
	char name[sizeof(AGENT_NAME)] = {};
	const unsigned char *dn;
	struct file *f;

	f = BPF_CORE_READ(vma, vm_file);
	if (!f)
		return false;
	dn = BPF_CORE_READ(f, f_path.dentry, d_name.name);
	if (bpf_probe_read_kernel_str(name, sizeof(name), dn) <
	    (long)sizeof(AGENT_NAME))
		return false;
	for (int i = 0; i < (int)sizeof(AGENT_NAME) - 1; i++)
		if (name[i] != AGENT_NAME[i])
			return false;
	return true;
}

/*
 * First call of a process: find the agent's executable mapping, if any,
 * and start tracking it.  NULL when the table is full.
 */
static __always_inline struct proc_state *track_process(__u32 tgid)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct proc_state st = {};
	struct bpf_iter_task_vma it;
	struct vm_area_struct *vma;

	bpf_iter_task_vma_new(&it, task, 0);
	while ((vma = bpf_iter_task_vma_next(&it))) {
		if (!(vma->vm_flags & VM_EXEC) || !is_agent_file(vma))
			continue;
		st.agent_lo = vma->vm_start;
		st.agent_hi = vma->vm_end;
		break;
	}
	bpf_iter_task_vma_destroy(&it);
	if (bpf_map_update_elem(&procs, &tgid, &st, BPF_NOEXIST) &&
	    !bpf_map_lookup_elem(&procs, &tgid)) {
		stat_add(SSLPROBE_ST_PROCS_FULL, 1);
		return NULL;
	}
	return bpf_map_lookup_elem(&procs, &tgid);
}

/* Where the hooked function returns to: its caller. */
static __always_inline __u64 caller_of(struct pt_regs *ctx)
{
#if defined(__TARGET_ARCH_x86)
	__u64 ra = 0;

	/* at the first instruction, the return address is on the stack */
	bpf_probe_read_user(&ra, sizeof(ra), (void *)PT_REGS_SP(ctx));
	return ra;
#else
	return PT_REGS_RET(ctx); /* the link register */
#endif
}

/*
 * Push a new entry for this call: NULL when too deep (counted).  A call
 * that encloses this one has its frame above ours (a higher stack
 * pointer): entries at or below our stack pointer are calls whose return
 * never came, and go.
 */
static __always_inline struct entry *push_entry(struct thread_calls *t,
						struct pt_regs *ctx)
{
	__u64 sp = PT_REGS_SP(ctx);
	struct entry *e;
	__u32 d;
	int i;

#pragma unroll
	for (i = CALL_DEPTH - 1; i >= 0; i--) {
		if (t->depth != (__u32)i + 1 || t->e[i].sp > sp)
			continue;
		stat_add(SSLPROBE_ST_STALE, 1);
		t->depth = i;
	}
	d = t->depth;
	if (d >= CALL_DEPTH) {
		stat_add(SSLPROBE_ST_TOO_DEEP, 1);
		return NULL;
	}
	e = &t->e[d & (CALL_DEPTH - 1)];
	__builtin_memset(e, 0, sizeof(*e));
	e->sp = sp;
	t->depth = d + 1;
	return e;
}

static __always_inline int on_enter(struct pt_regs *ctx, void *ssl,
				    const void *buf, void *countp, __u32 dir)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct sslprobe_conn_key k = {};
	struct thread_calls *t;
	struct proc_state *ps;
	struct entry *e;
	__u8 *skip;

	t = bpf_task_storage_get(&entries, bpf_get_current_task_btf(), 0,
				 BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!t) {
		/* no memory for the thread's storage: this call is lost */
		stat_add(SSLPROBE_ST_NO_SLOT, 1);
		return 0;
	}
	e = push_entry(t, ctx);
	if (!e)
		return 0;
	if (!wanted(tgid)) {
		e->state = ENT_IGNORE;
		return 0;
	}
	ps = bpf_map_lookup_elem(&procs, &tgid);
	if (!ps)
		ps = track_process(tgid);
	if (ps && ps->agent_hi) {
		__u64 ra = caller_of(ctx);

		if (ra >= ps->agent_lo && ra < ps->agent_hi) {
			/* the agent's hook called it: the agent reports it */
			stat_add(SSLPROBE_ST_AGENT, 1);
			e->state = ENT_IGNORE;
			return 0;
		}
	}
	k.ssl = (__u64)ssl;
	k.tgid = tgid;
	skip = bpf_map_lookup_elem(&skip_conns, &k);
	if (skip && *skip == SSLPROBE_SKIP) {
		e->state = ENT_SKIP;
		return 0;
	}
	e->ssl = (__u64)ssl;
	e->buf = (__u64)buf;
	e->countp = (__u64)countp;
	e->dir = dir;
	e->stack = (__u8)bpf_get_attach_cookie(ctx);
	e->describe = ps && !ps->described;
	e->state = ENT_ARMED;
	return 0;
}

/*
 * The entry of the call returning now, taken off the thread's stack;
 * false when there is none.  Entries above it (deeper calls whose return
 * never came) are dropped and counted.
 */
static __always_inline bool pop_entry(struct pt_regs *ctx, struct entry *out)
{
	struct thread_calls *t;
	__u64 want = PT_REGS_SP(ctx) - RET_SP_DELTA;
	int i;

	t = bpf_task_storage_get(&entries, bpf_get_current_task_btf(), 0, 0);
	if (!t) {
		/* this thread entered nothing since we attached: a call
		 * already in flight then, whose start we never saw */
		stat_add(SSLPROBE_ST_RET_UNSEEN, 1);
		return false;
	}
#pragma unroll
	for (i = CALL_DEPTH - 1; i >= 0; i--) {
		struct entry *e;

		if (t->depth != (__u32)i + 1)
			continue;
		e = &t->e[i];
		if (e->sp == want) {
			*out = *e;
			t->depth = i;
			return true;
		}
		if (e->sp > want)
			break; /* an outer call's: ours began before we attached */
		/* a deeper frame that never returned: stale */
		stat_add(SSLPROBE_ST_STALE, 1);
		t->depth = i;
	}
	stat_add(SSLPROBE_ST_NO_ENTRY, 1);
	return false;
}

struct emit_ctx {
	__u64 ubuf;
	__u64 len;
	__u64 off;
	__u64 pos;
	__u64 ts;
	__u64 ssl;
	__u64 cgid;
	__u32 tgid;
	__u32 tid;
	__u32 dir;
	__u32 cpu;
	__u8 stack;  /* enum sslprobe_stack */
	__u64 flags; /* for bpf_ringbuf_output: wake_flag() at the call */
};

/* BPF_RB_NO_WAKEUP unless the ring holds wake_bytes already. */
static __always_inline __u64 wake_flag(void)
{
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wake_bytes ?
		BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

static long emit_chunk(__u32 i, struct emit_ctx *c)
{
	struct scratch *s;
	__u64 left, n;
	__u32 cpu = c->cpu;

	if (c->off >= c->len)
		return 1;
	left = c->len - c->off;
	n = left > SSLPROBE_CHUNK ? SSLPROBE_CHUNK : left;

	s = bpf_map_lookup_elem(&scratch, &cpu);
	if (!s)
		return 1;
	if (__sync_val_compare_and_swap(&s->busy, 0, 1) != 0) {
		stat_add(SSLPROBE_ST_BUSY, 1);
		stat_add(SSLPROBE_ST_BUSY_BYTES, n);
		goto next;
	}
	s->ev.hdr.ts_ns = c->ts;
	s->ev.hdr.ssl = c->ssl;
	s->ev.hdr.cgroup_id = c->cgid;
	s->ev.hdr.pos = c->pos + c->off;
	s->ev.hdr.aux = c->len;
	s->ev.hdr.tgid = c->tgid;
	s->ev.hdr.tid = c->tid;
	s->ev.hdr.len = n;
	s->ev.hdr.type = SSLPROBE_EV_DATA;
	s->ev.hdr.dir = c->dir;
	s->ev.hdr.stack = c->stack;
	if (n > SSLPROBE_CHUNK) /* tells the verifier */
		n = SSLPROBE_CHUNK;
	if (bpf_probe_read_user(s->ev.data, n, (void *)(c->ubuf + c->off))) {
		stat_add(SSLPROBE_ST_FAULTS, 1);
		stat_add(SSLPROBE_ST_FAULT_BYTES, n);
	} else if (bpf_ringbuf_output(&events, &s->ev,
				      sizeof(struct sslprobe_hdr) + n,
				      c->flags)) {
		stat_add(SSLPROBE_ST_DROPS, 1);
		stat_add(SSLPROBE_ST_DROP_BYTES, n);
	} else {
		stat_add(SSLPROBE_ST_EVENTS, 1);
		stat_add(SSLPROBE_ST_BYTES, n);
	}
	s->busy = 0;
next:
	c->off += n;
	return 0;
}

/*
 * Name the current process in e: who it is, what it runs, its arguments.
 * Read now, from the process itself, in case it is gone when the loader
 * looks at /proc.
 */
static __always_inline void fill_process(struct sslprobe_proc *e, __u32 tgid,
					 __u32 tid, __u8 type)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct dentry *d, *parent;
	__u64 arg_start, arg_end, n;
	int i;

	__builtin_memset(e, 0, sizeof(*e));
	e->hdr.ts_ns = bpf_ktime_get_ns();
	e->hdr.tgid = tgid;
	e->hdr.tid = tid;
	e->hdr.type = type;
	/* when it started, as /proc/PID/stat's starttime: pid reuse */
	e->hdr.aux = BPF_CORE_READ(task, group_leader, start_boottime);
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	BPF_CORE_READ_STR_INTO(&e->comm, task, group_leader, comm);
	d = BPF_CORE_READ(task, mm, exe_file, f_path.dentry);
#pragma unroll
	for (i = 0; i < SSLPROBE_EXE_PARTS; i++) {
		const unsigned char *name;

		if (!d)
			break;
		parent = BPF_CORE_READ(d, d_parent);
		if (!parent || parent == d)
			break; /* the root of its mount */
		name = BPF_CORE_READ(d, d_name.name);
		bpf_probe_read_kernel_str(e->exe[i], SSLPROBE_EXE_PART, name);
		d = parent;
	}
	/* its arguments name the program a person ran (app) */
	arg_start = BPF_CORE_READ(task, mm, arg_start);
	arg_end = BPF_CORE_READ(task, mm, arg_end);
	n = arg_end > arg_start ? arg_end - arg_start : 0;
	if (n > SSLPROBE_ARGS - 1)
		n = SSLPROBE_ARGS - 1;
	n &= SSLPROBE_ARGS - 1; /* tells the verifier */
	if (n && bpf_probe_read_user(e->args, n, (void *)arg_start) == 0)
		e->args_len = n;
}

static __always_inline void describe_process(__u32 tgid, __u32 tid)
{
	struct proc_state *ps = bpf_map_lookup_elem(&procs, &tgid);
	struct sslprobe_proc *e;

	if (!ps || ps->described)
		return;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		stat_add(SSLPROBE_ST_PROC_DROPS, 1);
		return; /* tried again at the next call */
	}
	ps->described = 1;
	fill_process(e, tgid, tid, SSLPROBE_EV_PROC);
	if (ps->agent_hi)
		e->flags |= SSLPROBE_PROC_AGENT;
	/*
	 * Once per process, wake the reader now: it reads /proc/PID (cgroup)
	 * while the process still exists.
	 */
	bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
}

/*
 * One call moved n bytes of plaintext at ubuf: give them a stream
 * position on their connection (conn, direction) and put them in the
 * ring.  Shared by every TLS stack the probe hooks.
 */
/* A BPF subprogram takes five arguments: direction, stack and describe
 * travel packed in one. */
#define CALL_HOW(dir, stack, describe) \
	((__u32)(dir) | (__u32)(stack) << 8 | (__u32)((describe) ? 1 : 0) << 16)

/*
 * A global function: the verifier checks it once, with its arguments as
 * any numbers, instead of once more at every call site.
 */
__noinline int record_call(__u64 conn, __u64 ubuf, __u64 n, __u32 how)
{
	__u32 dir = how & 0xff;
	__u8 stack = (how >> 8) & 0xff;
	bool describe = (how >> 16) & 1;
	__u64 id = bpf_get_current_pid_tgid();
	struct pos_key pk = {};
	struct emit_ctx c = {};
	__u64 zero = 0, *pp, nr;

	pk.ssl = conn;
	pk.tgid = id >> 32;
	pk.dir = dir;
	pp = bpf_map_lookup_elem(&positions, &pk);
	if (!pp) {
		bpf_map_update_elem(&positions, &pk, &zero, BPF_NOEXIST);
		pp = bpf_map_lookup_elem(&positions, &pk);
		if (!pp)
			return 0;
	}
	c.pos = __sync_fetch_and_add(pp, n);
	c.ubuf = ubuf;
	c.len = n;
	c.ts = bpf_ktime_get_ns();
	c.ssl = conn;
	c.cgid = bpf_get_current_cgroup_id();
	c.tgid = id >> 32;
	c.tid = (__u32)id;
	c.dir = dir;
	c.stack = stack;
	c.cpu = bpf_get_smp_processor_id();
	c.flags = wake_flag();
	stat_add(SSLPROBE_ST_CALLS, 1);
	if (describe)
		describe_process(c.tgid, c.tid);

	nr = (n + SSLPROBE_CHUNK - 1) / SSLPROBE_CHUNK;
	if (nr > SSLPROBE_MAX_CHUNKS) {
		/* the rest is counted; the position gap marks the record */
		stat_add(SSLPROBE_ST_CUT_BYTES,
			 n - (__u64)SSLPROBE_MAX_CHUNKS * SSLPROBE_CHUNK);
		c.len = (__u64)SSLPROBE_MAX_CHUNKS * SSLPROBE_CHUNK;
		nr = SSLPROBE_MAX_CHUNKS;
	}
	bpf_loop(nr, emit_chunk, &c, 0);
	return 0;
}

static __always_inline int on_return(struct pt_regs *ctx, int ex)
{
	struct entry e;
	__u64 n;

	if (!pop_entry(ctx, &e))
		return 0;
	if (e.state == ENT_SKIP) {
		stat_add(SSLPROBE_ST_SKIPPED, 1);
		return 0;
	}
	if (e.state != ENT_ARMED)
		return 0;

	if (ex) {
		/* SSL_read_ex/SSL_write_ex: 1 on success, count in *arg4 */
		int ret = (int)PT_REGS_RC(ctx);
		size_t cnt = 0;

		if (ret != 1 || !e.countp)
			return 0;
		if (bpf_probe_read_user(&cnt, sizeof(cnt), (void *)e.countp)) {
			stat_add(SSLPROBE_ST_FAULTS, 1);
			return 0;
		}
		n = cnt;
	} else {
		/* SSL_read/SSL_write return an int: <= 0 moved nothing */
		int ret = (int)PT_REGS_RC(ctx);

		if (ret <= 0)
			return 0;
		n = (__u64)ret;
	}
	if (n)
		record_call(e.ssl, e.buf, n, CALL_HOW(e.dir, e.stack, e.describe));
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(ssl_write_enter, void *ssl, const void *buf, int num)
{
	return on_enter(ctx, ssl, buf, 0, SSLPROBE_DIR_SENT);
}

SEC("uprobe")
int BPF_KPROBE(ssl_write_ex_enter, void *ssl, const void *buf, size_t num,
	       size_t *written)
{
	return on_enter(ctx, ssl, buf, written, SSLPROBE_DIR_SENT);
}

SEC("uprobe")
int BPF_KPROBE(ssl_read_enter, void *ssl, void *buf, int num)
{
	return on_enter(ctx, ssl, buf, 0, SSLPROBE_DIR_RECV);
}

SEC("uprobe")
int BPF_KPROBE(ssl_read_ex_enter, void *ssl, void *buf, size_t num,
	       size_t *readbytes)
{
	return on_enter(ctx, ssl, buf, readbytes, SSLPROBE_DIR_RECV);
}

/* SSL_read and SSL_write: the direction comes from the entry. */
SEC("uretprobe")
int ssl_ret(struct pt_regs *ctx)
{
	return on_return(ctx, 0);
}

/* SSL_read_ex and SSL_write_ex. */
SEC("uretprobe")
int ssl_ret_ex(struct pt_regs *ctx)
{
	return on_return(ctx, 1);
}

/*
 * A connection ends (SSL_free, Go's (*Conn).Close): tell the loader how
 * many bytes it moved each way, and mark its pointer for reuse.
 */
static __always_inline void conn_freed(__u64 conn)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct sslprobe_conn_key k = {};
	struct pos_key pk = {};
	struct sslprobe_hdr *h;
	__u64 *pp, sent = 0, recv = 0;
	__u8 freed = SSLPROBE_SKIP_FREED;
	bool skipped;

	if (!conn || !wanted(id >> 32))
		return;
	pk.ssl = conn;
	pk.tgid = id >> 32;
	pk.dir = SSLPROBE_DIR_SENT;
	pp = bpf_map_lookup_elem(&positions, &pk);
	if (pp) {
		sent = *pp;
		bpf_map_delete_elem(&positions, &pk);
	}
	pk.dir = SSLPROBE_DIR_RECV;
	pp = bpf_map_lookup_elem(&positions, &pk);
	if (pp) {
		recv = *pp;
		bpf_map_delete_elem(&positions, &pk);
	}
	k.ssl = conn;
	k.tgid = id >> 32;
	skipped = bpf_map_lookup_elem(&skip_conns, &k) != NULL;
	/* A connection that never moved a byte is of no interest. */
	if (!sent && !recv && !skipped)
		return;
	/*
	 * The loader may still decide to skip this connection (its events
	 * lag the calls): the mark refuses that decision, so that a new
	 * connection on the same pointer starts traced.  The loader drops
	 * the mark when it reads this FREE event: set it before the event.
	 */
	bpf_map_update_elem(&skip_conns, &k, &freed, BPF_ANY);

	h = bpf_ringbuf_reserve(&events, sizeof(*h), 0);
	if (!h) {
		/* the mark stays until the process ends: slower, never wrong */
		stat_add(SSLPROBE_ST_FREE_DROPS, 1);
		return;
	}
	__builtin_memset(h, 0, sizeof(*h));
	h->ts_ns = bpf_ktime_get_ns();
	h->ssl = conn;
	h->cgroup_id = bpf_get_current_cgroup_id();
	h->pos = sent;
	h->aux = recv;
	h->tgid = id >> 32;
	h->tid = (__u32)id;
	h->type = SSLPROBE_EV_FREE;
	bpf_ringbuf_submit(h, wake_flag());
	stat_add(SSLPROBE_ST_FREES, 1);
}

SEC("uprobe")
int BPF_KPROBE(ssl_free_enter, void *ssl)
{
	conn_freed((__u64)ssl);
	return 0;
}

/* ---- Go crypto/tls -------------------------------------------------------- */

/*
 * Go's register ABI (1.17 and later, amd64): a method's receiver and
 * arguments in AX, BX, CX, DI, ...; results in AX, BX, ...; the running
 * goroutine's g in R14.  A call is keyed by its goroutine, not its thread:
 * a goroutine blocked in Read may come back on another thread.  There is
 * no return probe on Go code (goroutine stacks move, and a uretprobe's
 * return address on a moved stack kills the process): the loader puts a
 * probe on every RET of Read instead.  Write's bytes are all there at its
 * entry, so Write needs no return at all.
 */
#if defined(__TARGET_ARCH_x86)
#define GO_ARG0(ctx) ((ctx)->ax)
#define GO_ARG1(ctx) ((ctx)->bx)
#define GO_ARG2(ctx) ((ctx)->cx)
#define GO_RET0(ctx) ((ctx)->ax)
#define GO_G(ctx) ((ctx)->r14)
#else
#define GO_ARG0(ctx) 0
#define GO_ARG1(ctx) 0
#define GO_ARG2(ctx) 0
#define GO_RET0(ctx) 0
#define GO_G(ctx) 0
#endif

struct go_key {
	__u64 g;
	__u32 tgid;
	__u32 _pad;
};

struct go_read {
	__u64 conn;
	__u64 buf;
};

/* Reads in flight, by goroutine.  LRU: a goroutine that never returns
 * (the process exits under it) is forgotten, never fills the map. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct go_key);
	__type(value, struct go_read);
} go_reads SEC(".maps");

/* A Go process's first call: tracked, and described once. */
static __always_inline bool go_watched(__u32 tgid, bool *describe)
{
	struct proc_state *ps;

	if (!wanted(tgid))
		return false;
	ps = bpf_map_lookup_elem(&procs, &tgid);
	if (!ps)
		ps = track_process(tgid);
	*describe = ps && !ps->described;
	return true;
}

static __always_inline bool go_skipped(__u64 conn, __u32 tgid)
{
	struct sslprobe_conn_key k = {.ssl = conn, .tgid = tgid};
	__u8 *skip = bpf_map_lookup_elem(&skip_conns, &k);

	if (skip && *skip == SSLPROBE_SKIP) {
		stat_add(SSLPROBE_ST_SKIPPED, 1);
		return true;
	}
	return false;
}

/* func (c *Conn) Write(b []byte) (int, error): c, b.ptr, b.len */
SEC("uprobe")
int go_write_enter(struct pt_regs *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 conn = GO_ARG0(ctx), len = GO_ARG2(ctx);
	bool describe;

	if (!len || !go_watched(tgid, &describe) || go_skipped(conn, tgid))
		return 0;
	record_call(conn, GO_ARG1(ctx), len,
		    CALL_HOW(SSLPROBE_DIR_SENT, SSLPROBE_STACK_GOTLS, describe));
	return 0;
}

/* func (c *Conn) Read(b []byte) (int, error): remember c and b.ptr */
SEC("uprobe")
int go_read_enter(struct pt_regs *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct go_key k = {.g = GO_G(ctx), .tgid = tgid};
	struct go_read r = {.conn = GO_ARG0(ctx), .buf = GO_ARG1(ctx)};

	if (!wanted(tgid))
		return 0;
	bpf_map_update_elem(&go_reads, &k, &r, BPF_ANY);
	return 0;
}

/* Each RET of (*Conn).Read: n in AX. */
SEC("uprobe")
int go_read_ret(struct pt_regs *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct go_key k = {.g = GO_G(ctx), .tgid = tgid};
	__s64 n = (__s64)GO_RET0(ctx);
	struct go_read *rp, r;
	bool describe;

	rp = bpf_map_lookup_elem(&go_reads, &k);
	if (!rp) {
		if (wanted(tgid))
			stat_add(SSLPROBE_ST_RET_UNSEEN, 1);
		return 0;
	}
	r = *rp;
	bpf_map_delete_elem(&go_reads, &k);
	if (n <= 0 || !go_watched(tgid, &describe) || go_skipped(r.conn, tgid))
		return 0;
	record_call(r.conn, r.buf, (__u64)n,
		    CALL_HOW(SSLPROBE_DIR_RECV, SSLPROBE_STACK_GOTLS, describe));
	return 0;
}

/* func (c *Conn) Close() error */
SEC("uprobe")
int go_close_enter(struct pt_regs *ctx)
{
	conn_freed(GO_ARG0(ctx));
	return 0;
}

/* ---- rustls (a Rust program's own TLS) ------------------------------------ */

/*
 * rustls 0.23's own CommonState methods, found by rustlsfind.c (the method
 * and its evidence: rustlsfind_notes.md):
 *   buffer_plaintext(&mut self, payload: &OutboundChunks, ...) -> usize
 *     rdi = the connection, rsi = 32 bytes: Single {0, ptr, len} or
 *     Multiple {chunks, nchunks, start, end}; rax at return = bytes taken
 *   take_received_plaintext(&mut self, bytes: &Payload)
 *     rdi = the same connection, rsi = 24 bytes {cap, ptr, len}: one
 *     record's application data
 * Rust does not move stacks: a return probe is safe here.
 */
#define RUSTLS_MAX_SLICES 8

struct rustls_send {
	__u64 conn;
	__u64 q[4];
};

/* The send in flight on each thread (buffer_plaintext is not re-entered). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct rustls_send);
} rustls_sends SEC(".maps");

SEC("uprobe")
int rustls_send_enter(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct rustls_send v = {.conn = PT_REGS_PARM1(ctx)};

	if (!wanted(id >> 32))
		return 0;
	if (bpf_probe_read_user(v.q, sizeof(v.q), (void *)PT_REGS_PARM2(ctx))) {
		stat_add(SSLPROBE_ST_FAULTS, 1);
		return 0;
	}
	bpf_map_update_elem(&rustls_sends, &id, &v, BPF_ANY);
	return 0;
}

/* An HTTP/2 client preface starts a connection: a new one at this address. */
static __always_inline void rustls_new_conn(__u64 conn, __u64 ubuf, __u64 n)
{
	char pri[4] = {};

	if (n >= 4 && !bpf_probe_read_user(pri, sizeof(pri), (void *)ubuf) &&
	    pri[0] == 'P' && pri[1] == 'R' && pri[2] == 'I' && pri[3] == ' ')
		conn_freed(conn);
}

/* Walking a Multiple payload's slices, one bpf_loop step each. */
struct slices_ctx {
	const struct rustls_send *v;
	__u64 skip;     /* bytes of the slices before start still to pass */
	__u64 left;     /* bytes rustls took, still to record */
	bool describe;
};

static long rustls_slice(__u32 i, struct slices_ctx *c)
{
	__u64 sl[2] = {}, take;

	if (!c->left || (__u64)i >= c->v->q[1] ||
	    bpf_probe_read_user(sl, sizeof(sl), (void *)(c->v->q[0] + 16 * (__u64)i)))
		return 1;
	if (c->skip >= sl[1]) {
		c->skip -= sl[1];
		return 0;
	}
	take = sl[1] - c->skip < c->left ? sl[1] - c->skip : c->left;
	record_call(c->v->conn, sl[0] + c->skip, take,
		    CALL_HOW(SSLPROBE_DIR_SENT, SSLPROBE_STACK_RUSTLS, c->describe));
	c->describe = false;
	c->left -= take;
	c->skip = 0;
	return 0;
}

/* The first n bytes of a Multiple payload: its slices from start on. */
static __always_inline void rustls_send_slices(const struct rustls_send *v, __u64 n,
					       bool describe)
{
	struct slices_ctx c = {.v = v, .skip = v->q[2], .left = n, .describe = describe};

	bpf_loop(RUSTLS_MAX_SLICES, rustls_slice, &c, 0);
	if (c.left)
		stat_add(SSLPROBE_ST_CUT_BYTES, c.left);
}

SEC("uretprobe")
int rustls_send_ret(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid(), n = PT_REGS_RC(ctx);
	struct rustls_send *vp, v;
	bool describe;

	vp = bpf_map_lookup_elem(&rustls_sends, &id);
	if (!vp) {
		if (wanted(id >> 32))
			stat_add(SSLPROBE_ST_RET_UNSEEN, 1);
		return 0;
	}
	v = *vp;
	bpf_map_delete_elem(&rustls_sends, &id);
	if (!n || !go_watched(id >> 32, &describe) || go_skipped(v.conn, id >> 32))
		return 0;
	if (v.q[0] == 0) {
		__u64 take = n < v.q[2] ? n : v.q[2];

		rustls_new_conn(v.conn, v.q[1], take);
		record_call(v.conn, v.q[1], take,
			    CALL_HOW(SSLPROBE_DIR_SENT, SSLPROBE_STACK_RUSTLS, describe));
	} else {
		rustls_send_slices(&v, n, describe);
	}
	return 0;
}

SEC("uprobe")
int rustls_recv_enter(struct pt_regs *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 conn = PT_REGS_PARM1(ctx), q[3];
	bool describe;

	if (!go_watched(tgid, &describe) || go_skipped(conn, tgid))
		return 0;
	if (bpf_probe_read_user(q, sizeof(q), (void *)PT_REGS_PARM2(ctx))) {
		stat_add(SSLPROBE_ST_FAULTS, 1);
		return 0;
	}
	if (q[2])
		record_call(conn, q[1], q[2],
			    CALL_HOW(SSLPROBE_DIR_RECV, SSLPROBE_STACK_RUSTLS, describe));
	return 0;
}

/* ---- TLS that nothing hooked: never silent ---- */

/* Files the loader put uprobes on (attach.c keeps it). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct sslprobe_file_key);
	__type(value, __u8);
} hooked_files SEC(".maps");

/*
 * Processes whose first ClientHello was looked at, by tgid: once each,
 * until it exits or execs.  LRU: one forgotten is looked at again, no worse.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u8);
} hellos SEC(".maps");

/* Does the current process map, executable, a file with our uprobes? */
static __always_inline bool maps_hooked_file(void)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct sslprobe_file_key k = {};
	struct bpf_iter_task_vma it;
	struct vm_area_struct *vma;
	bool found = false;

	bpf_iter_task_vma_new(&it, task, 0);
	while ((vma = bpf_iter_task_vma_next(&it))) {
		struct inode *ino;

		if (!(vma->vm_flags & VM_EXEC) || !vma->vm_file)
			continue;
		ino = BPF_CORE_READ(vma, vm_file, f_inode);
		k.ino = BPF_CORE_READ(ino, i_ino);
		k.dev = BPF_CORE_READ(ino, i_sb, s_dev);
		if (bpf_map_lookup_elem(&hooked_files, &k)) {
			found = true;
			break;
		}
	}
	bpf_iter_task_vma_destroy(&it);
	return found;
}

/* Do the bytes a TCP send starts with open a TLS ClientHello? */
static __always_inline bool is_client_hello(struct msghdr *msg)
{
	__u8 type = BPF_CORE_READ(msg, msg_iter.iter_type);
	const char *base = NULL;
	__u8 b[6];

	if (!bpf_core_field_exists(msg->msg_iter.ubuf) ||
	    !bpf_core_field_exists(msg->msg_iter.__iov))
		return false; /* a kernel before 6.4: not looked at */
	if (type == bpf_core_enum_value(enum iter_type, ITER_UBUF)) {
		base = BPF_CORE_READ(msg, msg_iter.ubuf);
	} else if (type == bpf_core_enum_value(enum iter_type, ITER_IOVEC)) {
		const struct iovec *iov = BPF_CORE_READ(msg, msg_iter.__iov);

		base = BPF_CORE_READ(iov, iov_base);
	}
	if (!base || bpf_probe_read_user(b, sizeof(b),
					 base + BPF_CORE_READ(msg, msg_iter.iov_offset)))
		return false;
	/* a handshake record (22) of TLS 1.x (3, x) whose first message is
	 * a ClientHello (1) */
	return b[0] == 0x16 && b[1] == 0x03 && b[5] == 0x01;
}

/*
 * The first bytes of a TCP connection: a process that opens TLS while no
 * file it maps has our uprobes makes calls no one sees.  Tell the loader,
 * once a process, so that it names the program.  A tracepoint (kernel
 * 6.11+), as the kernels without kprobes or ftrace have them too; in the
 * sender's context, before its bytes are copied.
 */
SEC("tp_btf/tcp_sendmsg_locked")
int BPF_PROG(tls_hello, const struct sock *sk, struct msghdr *msg,
	     const struct sk_buff *skb, int size_goal)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct sslprobe_proc *e;
	__u8 one = 1;

	if (BPF_CORE_READ((struct tcp_sock *)sk, bytes_sent) != 0 ||
	    BPF_CORE_READ(msg, msg_iter.count) < 6)
		return 0; /* not the first bytes of the connection */
	if (!wanted(tgid) || bpf_map_lookup_elem(&procs, &tgid) ||
	    bpf_map_lookup_elem(&hellos, &tgid) || !is_client_hello(msg))
		return 0;
	if (bpf_map_update_elem(&hellos, &tgid, &one, BPF_NOEXIST))
		return 0; /* another thread of it was first */
	if (maps_hooked_file())
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		stat_add(SSLPROBE_ST_PROC_DROPS, 1);
		return 0;
	}
	fill_process(e, tgid, (__u32)id, SSLPROBE_EV_HELLO);
	e->hdr.pos = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
	return 0;
}

/* The end of a tracked process (or of its program): one event, in order. */
static __always_inline void process_over(__u32 tgid, __u8 type)
{
	struct sslprobe_hdr *h;

	bpf_map_delete_elem(&hellos, &tgid);
	if (bpf_map_delete_elem(&procs, &tgid))
		return; /* not one the probe saw calling */
	bpf_map_delete_elem(&skip_tgids, &tgid);
	h = bpf_ringbuf_reserve(&events, sizeof(*h), 0);
	if (!h) {
		stat_add(SSLPROBE_ST_EXIT_DROPS, 1);
		return;
	}
	__builtin_memset(h, 0, sizeof(*h));
	h->ts_ns = bpf_ktime_get_ns();
	h->tgid = tgid;
	h->type = type;
	bpf_ringbuf_submit(h, wake_flag());
}

/*
 * A thread exits.  The process is over when its last thread goes:
 * signal->live is decremented before this tracepoint fires, so 0 means
 * every thread has left user space and no call of it can follow.
 */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(proc_exit, struct task_struct *task)
{
	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	process_over(BPF_CORE_READ(task, tgid), SSLPROBE_EV_EXIT);
	return 0;
}

/* execve replaced the program: its connections and mappings are gone. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(proc_exec, struct task_struct *task)
{
	process_over(BPF_CORE_READ(task, tgid), SSLPROBE_EV_EXEC);
	return 0;
}
