/*
 * agent.c - configuration, per-connection decoding, records, fork and exit.
 *
 * Hot path (tt_agent_observe on a connection known not to be LLM traffic):
 * one ex_data lookup and a pointer compare.  No lock, no allocation, no
 * syscall.  Everything slower happens once per connection or per record.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "common/addr.h"
#include "common/clock.h"
#include "common/log.h"
#include "conn.h"
#include "enforce.h"
#include "guard.h"
#include "lease.h"
#include "proc.h"
#include "ship/ship.h"

#define ENV_MAX 4096

static struct {
	char collector[ENV_MAX];
	char out[ENV_MAX];
	char spool[ENV_MAX];
	char task[128], tenant[128], feature[128];
	int have_collector, have_out, have_spool;
} conf;

/* At exit, how long the collector may take to acknowledge what is queued
 * before the rest goes to the spool (TOKENTAP_EXIT_TIMEOUT_MS). */
#define EXIT_TIMEOUT_MS 1000
static int exit_timeout_ms = EXIT_TIMEOUT_MS;

static pid_t my_pid;
static int disabled;       /* the shim gave up: every call passes through */
static int proc_loaded;
static tt_proc_info proc;
static tt_shipper *shipper;
static int shipper_failed;
static int exit_registered;
static pthread_mutex_t init_mu = PTHREAD_MUTEX_INITIALIZER;
/* Submitters hold it shared; the exit handler takes it exclusively to
 * retire the shipper, so that none submits to a freed one. */
static pthread_rwlock_t ship_lock = PTHREAD_RWLOCK_INITIALIZER;

static void agent_exit(void);
static int warn_slot, warn_conn, warn_ship, warn_drop, warn_h2dec;

/*
 * Wall-clock time for records, made of the monotonic clock plus an offset
 * taken again every 10 s, so that ts follows the wall clock while a
 * stream's ttft and duration move with the monotonic clock: adjustments
 * between refreshes never reach them, and a step of the wall clock
 * reaches only the exchanges in flight at the refresh that notices it.
 * Racy updates are benign: both values are whole 64-bit stores.
 */
#define CLOCK_REFRESH_US 10000000

static int64_t clock_off, clock_off_at;

static int64_t now_us(void)
{
	int64_t mono = tt_mono_us();
	int64_t at = __atomic_load_n(&clock_off_at, __ATOMIC_RELAXED);

	if (!at || mono - at > CLOCK_REFRESH_US) {
		__atomic_store_n(&clock_off, tt_real_us() - mono,
				 __ATOMIC_RELAXED);
		__atomic_store_n(&clock_off_at, mono, __ATOMIC_RELAXED);
	}
	return mono + __atomic_load_n(&clock_off, __ATOMIC_RELAXED);
}

/* An integer variable in [lo, hi], else def (and a warning). */
static int env_ms(const char *name, int lo, int hi, int def)
{
	const char *v = getenv(name);
	char *end;
	long n;

	if (!v)
		return def;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || end == v || *end || n < lo || n > hi) {
		tt_log(TT_LOG_WARN, "%s: expected %d to %d; using %d", name, lo, hi, def);
		return def;
	}
	return (int)n;
}

static void env_copy(const char *name, char *dst, size_t cap, int *have)
{
	const char *v = getenv(name);
	if (have)
		*have = v != NULL;
	if (v)
		tt_record_set(dst, cap, v, (size_t)-1);
}

static tt_shipper *get_shipper(void)
{
	tt_shipper *s = __atomic_load_n(&shipper, __ATOMIC_ACQUIRE);
	if (s || shipper_failed)
		return s;

	pthread_mutex_lock(&init_mu);
	if (!shipper && !shipper_failed) {
		tt_ship_config cfg = {
			.collector = conf.have_collector ? conf.collector : NULL,
			.out_path = conf.have_out ? conf.out : NULL,
			.spool_dir = conf.have_spool ? conf.spool : NULL,
			.token_file = getenv("TOKENTAP_TOKEN_FILE"),
		};
		s = tt_shipper_new(&cfg);
		if (!s) {
			shipper_failed = 1;
			tt_log_once(&warn_ship, TT_LOG_WARN,
				    "cannot start shipping; records are lost");
		}
		/* Registered now, after the host initialised OpenSSL (it did,
		 * to make the connection we decoded): atexit handlers run in
		 * reverse order, so our flush runs first, while the host's
		 * libraries all stand. */
		if (s && !exit_registered && atexit(agent_exit) == 0)
			exit_registered = 1;
		__atomic_store_n(&shipper, s, __ATOMIC_RELEASE);
	}
	s = shipper;
	pthread_mutex_unlock(&init_mu);
	return s;
}

static void load_proc(void)
{
	pthread_mutex_lock(&init_mu);
	if (!proc_loaded) {
		tt_proc_load(&proc);
		proc_loaded = 1;
	}
	pthread_mutex_unlock(&init_mu);
}

static void ship_record(tt_record *rec);

/* The decoder completed an exchange: settle its budget reservation, add
 * who and where, then ship it. */
static void on_record(const tt_record *rec_in, void *user)
{
	tt_record rec = *rec_in;
	tt_conn *c = user;

	/* A blocked HTTP/2 call's record went out when it was refused. */
	if (c && c->enf && tt_enforce_settle(c->enf, &rec))
		return;
	ship_record(&rec);
}

/* Enforce mode: the decoder read a whole request (HTTP/2: before it left). */
static void on_request(const tt_record *rec, void *user)
{
	tt_conn *c = user;

	if (c && c->enf)
		tt_enforce_request(c->enf, rec);
}

/* enforce.c: the attribution a lease key starts from. */
static void enforce_key(tt_lease_key *k)
{
	load_proc();
	tt_record_set(k->task, sizeof(k->task), conf.task, (size_t)-1);
	tt_record_set(k->tenant, sizeof(k->tenant), conf.tenant, (size_t)-1);
	tt_record_set(k->feature, sizeof(k->feature), conf.feature, (size_t)-1);
	tt_record_set(k->pod, sizeof(k->pod), proc.cg.pod_uid, (size_t)-1);
}

static void enforce_sent(void *ssl, const void *buf, size_t len)
{
	tt_agent_observe(ssl, TT_DIR_SENT, buf, len);
}

static void ship_record(tt_record *rec_p)
{
	tt_record rec = *rec_p;
	tt_shipper *s;

	pthread_mutex_lock(&init_mu);
	if (!proc_loaded) {
		tt_proc_load(&proc);
		proc_loaded = 1;
	}
	pthread_mutex_unlock(&init_mu);

	if (!rec.id[0])
		tt_record_new_id(&rec);
	TT_RECORD_SET(&rec, source, "preload", (size_t)-1);
	tt_proc_fill(&proc, &rec);
	/* A request's X-Tokentap-* header wins over the environment. */
	if (!rec.task[0])
		TT_RECORD_SET(&rec, task, conf.task, (size_t)-1);
	if (!rec.tenant[0])
		TT_RECORD_SET(&rec, tenant, conf.tenant, (size_t)-1);
	if (!rec.feature[0])
		TT_RECORD_SET(&rec, feature, conf.feature, (size_t)-1);

	pthread_rwlock_rdlock(&ship_lock);
	s = get_shipper();
	if (s && tt_shipper_submit(s, &rec) == TT_ETRUNCATED)
		tt_log_once(&warn_drop, TT_LOG_WARN,
			    "record queue full: records dropped");
	pthread_rwlock_unlock(&ship_lock);
	tt_log(TT_LOG_DEBUG, "record %s %s %s status=%d", rec.id, rec.provider,
	       rec.api, rec.status);
}

/* OpenSSL freed an SSL whose state we kept. */
static void conn_freed(tt_conn *c)
{
	int saved = errno;
	tt_guard_enter();
	/* A fork child does not finish its parent's exchanges. */
	tt_conn_end(c, c->pid == my_pid, now_us());
	tt_guard_leave();
	errno = saved;
}

void tt_agent_observe(void *ssl, tt_dir dir, const void *buf, size_t len)
{
	int idx;
	tt_conn *c;
	int saved;

	if (disabled)
		return;
	idx = tt_conn_slot_init();
	if (idx < 0) {
		disabled = 1;
		tt_log_once(&warn_slot, TT_LOG_WARN,
			    "cannot attach state to TLS connections; not observing");
		return;
	}
	c = tt_conn_get(ssl, idx);
	if (c == TT_CONN_PASS)
		return;

	saved = errno;
	tt_guard_enter();
	int64_t now = now_us();
	if (c && c->pid != my_pid) {
		/* Inherited across fork: mid-stream for us, not worth it. */
		tt_conn_end(c, 0, now);
		tt_conn_set(ssl, idx, TT_CONN_PASS);
		goto out;
	}
	if (!c) {
		c = tt_conn_new(my_pid, on_record, tt_enforce_on ? on_request : NULL, NULL);
		if (!c) {
			tt_log_once(&warn_conn, TT_LOG_WARN,
				    "out of memory for connection state; "
				    "connection not observed");
			tt_conn_set(ssl, idx, TT_CONN_PASS);
			goto out;
		}
		tt_conn_set(ssl, idx, c);
	}
	int rc = tt_decoder_feed(c->dec, dir, buf, len, now);
	if (rc < 0 || tt_decoder_is_idle(c->dec)) {
		tt_log(TT_LOG_DEBUG, "connection %p: pass-through (%s)", ssl,
		       rc < 0 ? tt_strerror(rc) : "no LLM traffic");
		tt_conn_set(ssl, idx, TT_CONN_PASS);
		tt_conn_end(c, 1, now);
	}
out:
	tt_guard_leave();
	errno = saved;
}

/* The connection's state for enforcement, made on its first write. */
static tt_conn *enforce_conn(void *ssl, int create)
{
	int idx;
	tt_conn *c;

	if (disabled || (idx = tt_conn_slot_init()) < 0)
		return NULL;
	c = tt_conn_get(ssl, idx);
	if (c == TT_CONN_PASS || (c && c->pid != my_pid))
		return NULL;
	if (!c && create) {
		c = tt_conn_new(my_pid, on_record, on_request, NULL);
		if (!c)
			return NULL;
		tt_conn_set(ssl, idx, c);
	}
	if (c && !c->enf && create)
		c->enf = tt_enforce_new();
	return c && c->enf ? c : NULL;
}

int tt_agent_enforce_write(void *ssl, const void *buf, size_t len, long *ret)
{
	int saved = errno, handled = 0;
	tt_conn *c;

	tt_guard_enter();
	c = enforce_conn(ssl, 1);
	if (c)
		handled = tt_enforce_write(c->enf, ssl, buf, len, ret);
	if (handled == TT_ENFORCE_PREFED && tt_decoder_is_idle(c->dec)) {
		/* The decoder gave up on the connection: nothing more to check.
		 * The write goes out; the hook's report finds no state. */
		tt_log_once(&warn_h2dec, TT_LOG_WARN, "enforce: an HTTP/2 connection could not be "
			    "decoded; its calls are not checked");
		tt_conn_set(ssl, tt_conn_slot_init(), TT_CONN_PASS);
		tt_conn_end(c, 1, now_us());
	}
	tt_guard_leave();
	errno = saved;
	return handled;
}

void tt_agent_enforce_sent(void *ssl, size_t n)
{
	tt_conn *c = enforce_conn(ssl, 0);

	if (c)
		tt_enforce_sent(c->enf, n);
}

/* enforce.c (HTTP/2): the decoder sees a write before it leaves.  Its
 * errors show in tt_decoder_is_idle, checked by tt_agent_enforce_write. */
static void enforce_feed(void *ssl, const void *buf, size_t len)
{
	tt_conn *c = enforce_conn(ssl, 0);

	if (c)
		tt_decoder_feed(c->dec, TT_DIR_SENT, buf, len, now_us());
}

int tt_agent_enforce_read(void *ssl, void *buf, size_t cap, size_t *got, int peek)
{
	tt_conn *c = enforce_conn(ssl, 0);

	return c ? tt_enforce_read(c->enf, buf, cap, got, peek) : 0;
}

void tt_agent_conn_over(void *ssl, int forget)
{
	int idx;
	tt_conn *c;
	int saved;

	if (disabled)
		return;
	idx = tt_conn_slot_init();
	if (idx < 0)
		return;
	c = tt_conn_get(ssl, idx);
	if (!c || (c == TT_CONN_PASS && !forget))
		return;
	saved = errno;
	tt_guard_enter();
	/* SSL_clear readies the object for a new connection: start afresh.
	 * SSL_shutdown ends this one; later reads (close_notify) pass. */
	tt_conn_set(ssl, idx, forget ? NULL : TT_CONN_PASS);
	if (c != TT_CONN_PASS)
		tt_conn_end(c, c->pid == my_pid, now_us());
	tt_guard_leave();
	errno = saved;
}

/* Lock order: ship_lock, then init_mu (as on_record takes them). */
static void atfork_prepare(void)
{
	pthread_rwlock_wrlock(&ship_lock);
	pthread_mutex_lock(&init_mu);
}

static void atfork_parent(void)
{
	pthread_mutex_unlock(&init_mu);
	pthread_rwlock_unlock(&ship_lock);
}

/* The child has one thread and a copy of our memory: the shipper's thread
 * is gone, so its queue belongs to the parent.  Start over lazily. */
static void atfork_child(void)
{
	my_pid = getpid();
	shipper = NULL;      /* the parent's copy is abandoned, not freed */
	shipper_failed = 0;
	proc_loaded = 0;
	/* Re-initialised, not unlocked: glibc's rwlock remembers the writer's
	 * tid, and the child's thread has another one. */
	pthread_mutex_init(&init_mu, NULL);
	pthread_rwlock_init(&ship_lock, NULL);
	if (tt_enforce_on) {
		tt_lease_atfork_child();
		tt_enforce_atfork_child();
	}
}

__attribute__((constructor)) static void agent_init(void)
{
	const char *mode;

	tt_log_set_level(tt_log_parse_level(getenv("TOKENTAP_LOG")));
	my_pid = getpid();
	env_copy("TOKENTAP_COLLECTOR", conf.collector, sizeof(conf.collector),
		 &conf.have_collector);
	env_copy("TOKENTAP_OUT", conf.out, sizeof(conf.out), &conf.have_out);
	env_copy("TOKENTAP_SPOOL", conf.spool, sizeof(conf.spool),
		 &conf.have_spool);
	exit_timeout_ms = env_ms("TOKENTAP_EXIT_TIMEOUT_MS", 0, 60000, EXIT_TIMEOUT_MS);
	env_copy("TOKENTAP_TASK", conf.task, sizeof(conf.task), NULL);
	env_copy("TOKENTAP_TENANT", conf.tenant, sizeof(conf.tenant), NULL);
	env_copy("TOKENTAP_FEATURE", conf.feature, sizeof(conf.feature), NULL);
	mode = getenv("TOKENTAP_MODE");
	if (mode && strcmp(mode, "enforce") == 0) {
		const char *fail = getenv("TOKENTAP_FAIL");
		int ms = env_ms("TOKENTAP_LEASE_TIMEOUT_MS", 10, 60000, 1000);

		if (fail && strcmp(fail, "open") != 0 && strcmp(fail, "closed") != 0)
			tt_log(TT_LOG_WARN, "TOKENTAP_FAIL: expected open or closed; using open");
		tt_lease_setup(conf.have_collector ? conf.collector : TT_DEFAULT_COLLECTOR,
			       getenv("TOKENTAP_TOKEN_FILE"), fail && strcmp(fail, "closed") == 0,
			       ms);
		tt_enforce_setup(enforce_key, ship_record, enforce_sent);
		tt_enforce_set_feed(enforce_feed);
		tt_enforce_on = 1;
	} else if (mode && strcmp(mode, "monitor") != 0 && mode[0]) {
		tt_log(TT_LOG_WARN, "TOKENTAP_MODE: expected monitor or enforce; monitoring");
	}
	tt_conn_set_free_hook(conn_freed);
	if (pthread_atfork(atfork_prepare, atfork_parent, atfork_child) != 0)
		tt_log(TT_LOG_WARN, "pthread_atfork failed; a fork child "
				    "will not ship its records");
	tt_log(TT_LOG_DEBUG, "loaded in pid %d", (int)my_pid);
}

/*
 * A short-lived program (curl runs 100 ms) must not lose its records, nor
 * wait on a collector that does not answer: at exit, the collector gets
 * TOKENTAP_EXIT_TIMEOUT_MS (lease releases included) to acknowledge what
 * is queued; what it has not acknowledged then goes to the spool, and the
 * thread stops while the libraries it uses still stand.  Bounded by that
 * plus TT_SHIP_CLOSE_GRACE_MS.  Records completed later (another thread
 * still running) are dropped.
 */
static void agent_exit(void)
{
	int64_t t0 = tt_mono_ms();
	uint64_t sent, spooled, dropped;
	tt_shipper *s;

	tt_guard_enter();
	if (tt_enforce_on)
		tt_lease_release_all();
	pthread_rwlock_wrlock(&ship_lock);
	s = shipper;
	shipper = NULL;
	shipper_failed = 1; /* no new shipper this late */
	pthread_rwlock_unlock(&ship_lock);
	if (!s)
		goto out;
	int64_t left = exit_timeout_ms - (tt_mono_ms() - t0);
	tt_shipper_close(s, left > 0 ? (int)left : 0, &sent, &spooled, &dropped);
	tt_log(dropped ? TT_LOG_WARN : TT_LOG_INFO,
	       "exit: sent %llu, spooled %llu, dropped %llu",
	       (unsigned long long)sent, (unsigned long long)spooled,
	       (unsigned long long)dropped);
out:
	tt_guard_leave();
}

/* In case atexit could not be used (or the program ends through a path
 * that runs destructors only). */
__attribute__((destructor)) static void agent_fini(void)
{
	agent_exit();
}
