/*
 * sslprobe.h - what the uprobes on SSL_read/SSL_write tell the loader.
 *
 * Plain data shared by sslprobe.bpf.c and the loader; no includes, so the
 * including file provides __u8..__u64 (vmlinux.h or <linux/types.h>).
 *
 * A call that moved more than SSLPROBE_CHUNK bytes arrives as several DATA
 * events.  Each carries the stream offset of its first byte within its
 * direction of its connection (tgid, ssl), so the loader sees any gap: a
 * dropped or cut event never goes unnoticed.
 *
 * A connection the loader's decoder gave up (not HTTP, or HTTP that
 * switched protocols) goes into the skip_conns map: its calls then cost
 * the trap and a lookup, and move no byte and no position.
 */
#ifndef TOKENTAP_SSLPROBE_H
#define TOKENTAP_SSLPROBE_H

#define SSLPROBE_CHUNK 32768       /* data bytes in one event at most */
#define SSLPROBE_MAX_CHUNKS 1024   /* events per call: 32 MiB, then cut */

enum sslprobe_type {
	SSLPROBE_EV_DATA = 1, /* bytes of one SSL_read/SSL_write */
	SSLPROBE_EV_FREE = 2, /* SSL_free: the connection ended */
	SSLPROBE_EV_PROC = 3, /* first call of a process: its name and exe */
	/*
	 * A process the probe saw ended (its last thread exited), or replaced
	 * its program (execve): its connections end here.  In the ring after
	 * every event of that process, so the loader needs neither a clock
	 * nor /proc to know; a lost one is counted (exit_drops) and the
	 * loader's /proc sweep catches the exit a little later.
	 */
	SSLPROBE_EV_EXIT = 4,
	SSLPROBE_EV_EXEC = 5,
	/*
	 * A process sent a TLS ClientHello but maps no file the probe put
	 * uprobes on: its TLS is out of sight (struct sslprobe_proc, hdr.pos
	 * = the server's port).  Once per process.
	 */
	SSLPROBE_EV_HELLO = 6,
};

/*
 * Whose TLS code a call went through (the attach cookie of its uprobe);
 * the same values as tt_tls_stack in tlsfind.h.
 */
enum sslprobe_stack {
	SSLPROBE_STACK_OPENSSL = 0,
	SSLPROBE_STACK_BORINGSSL = 1,
	SSLPROBE_STACK_GOTLS = 2,
	SSLPROBE_STACK_RUSTLS = 3,
};

enum sslprobe_dir {
	SSLPROBE_DIR_SENT = 0, /* SSL_write*: the process sent these bytes */
	SSLPROBE_DIR_RECV = 1, /* SSL_read*: the process received them */
};

struct sslprobe_hdr {
	__u64 ts_ns;     /* bpf_ktime_get_ns() at the call's return */
	__u64 ssl;       /* the SSL pointer: with tgid, the connection */
	__u64 cgroup_id; /* cgroup v2 id of the calling task */
	__u64 pos;       /* DATA: stream offset of data[0]; FREE: sent total */
	__u64 aux;       /* DATA: bytes the whole call moved; FREE: recv total */
	__u32 tgid;
	__u32 tid;
	__u32 len;       /* DATA: bytes in data[] */
	__u8 type;       /* enum sslprobe_type */
	__u8 dir;        /* enum sslprobe_dir */
	__u8 stack;      /* DATA: enum sslprobe_stack, whose TLS code */
	__u8 _pad;
};

/* Only hdr plus len bytes of data are in the ring: never a fixed size. */
struct sslprobe_event {
	struct sslprobe_hdr hdr;
	__u8 data[SSLPROBE_CHUNK];
};

#define SSLPROBE_EXE_PARTS 8  /* path components of the executable */
#define SSLPROBE_EXE_PART 48
#define SSLPROBE_ARGS 512     /* bytes of the arguments (cmdline) */

/* sslprobe_proc.flags */
#define SSLPROBE_PROC_AGENT 0x1 /* maps libtokentap.so: its calls are its */

/*
 * Sent before the first DATA event of a process, so that a process that
 * exits at once (curl) still gets its name and executable: /proc may be
 * gone by the time the loader reads it.  exe[] holds the executable's
 * path components from the file upwards, up to its mount's root.
 */
struct sslprobe_proc {
	struct sslprobe_hdr hdr;
	char comm[16]; /* the thread group leader's */
	char exe[SSLPROBE_EXE_PARTS][SSLPROBE_EXE_PART];
	__u32 ppid;    /* the parent's tgid */
	__u32 flags;   /* SSLPROBE_PROC_* */
	__u32 args_len; /* bytes in args[] (the arguments may be longer) */
	__u32 _pad2;
	char args[SSLPROBE_ARGS]; /* NUL-separated, as /proc/PID/cmdline */
};

/*
 * Key of the hooked_files map: a file the loader put uprobes on.  dev is
 * the kernel's encoding (major << 20 | minor), not st_dev's.
 */
struct sslprobe_file_key {
	__u64 ino;
	__u32 dev;
	__u32 _pad; /* zero */
};

/* Key of the skip_conns map: the connection, as in the events. */
struct sslprobe_conn_key {
	__u64 ssl;
	__u32 tgid;
	__u32 _pad; /* zero */
};

/* Values of skip_conns. */
enum sslprobe_skip {
	/* set by the loader: the connection carries no LLM traffic */
	SSLPROBE_SKIP = 1,
	/*
	 * set by SSL_free, cleared by the loader when it reads the FREE
	 * event: the loader may still decide to skip the freed connection
	 * (events in the ring lag the calls), and the new connection a
	 * reused SSL pointer may already carry must not inherit that.  The
	 * loader inserts SSLPROBE_SKIP with BPF_NOEXIST, so this value
	 * refuses it.
	 */
	SSLPROBE_SKIP_FREED = 2,
};

/* Counters in the per-CPU "stats" map; every loss has one. */
enum sslprobe_stat {
	SSLPROBE_ST_CALLS,       /* calls that moved bytes */
	SSLPROBE_ST_EVENTS,      /* DATA events delivered to the ring */
	SSLPROBE_ST_BYTES,       /* data bytes delivered */
	SSLPROBE_ST_DROPS,       /* events the full ring refused */
	SSLPROBE_ST_DROP_BYTES,  /* their data bytes */
	SSLPROBE_ST_FAULTS,      /* chunks whose user memory could not be read */
	SSLPROBE_ST_FAULT_BYTES,
	SSLPROBE_ST_CUT_BYTES,   /* bytes of calls beyond SSLPROBE_MAX_CHUNKS */
	SSLPROBE_ST_BUSY,        /* chunks lost to a busy per-CPU scratch */
	SSLPROBE_ST_BUSY_BYTES,
	SSLPROBE_ST_FREES,       /* SSL_free events delivered */
	SSLPROBE_ST_FREE_DROPS,  /* SSL_free events lost */
	SSLPROBE_ST_NO_ENTRY,    /* a return that matches no saved entry */
	SSLPROBE_ST_PROC_DROPS,  /* process events lost */
	SSLPROBE_ST_SKIPPED,     /* calls of connections in skip_conns */
	SSLPROBE_ST_AGENT,       /* calls the agent in the process reports */
	SSLPROBE_ST_EXIT_DROPS,  /* exit and exec events lost */
	SSLPROBE_ST_PROCS_FULL,  /* processes not tracked: the table was full */
	SSLPROBE_ST_NO_SLOT,     /* calls lost: no memory for a thread's slot */
	SSLPROBE_ST_RET_UNSEEN,  /* returns of calls that began before attach */
	SSLPROBE_ST_STALE,       /* entries whose return never came */
	SSLPROBE_ST_TOO_DEEP,    /* calls nested deeper than CALL_DEPTH: lost */
	SSLPROBE_ST_MAX,
};

#endif
