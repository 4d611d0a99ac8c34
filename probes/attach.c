/*
 * attach.c - uprobes on every OpenSSL found, one set per inode.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <bpf/libbpf.h>
#include <linux/types.h>

#include "attach.h"
#include "elfsym.h"
#include "sslprobe.h"
#include "sslprobe.skel.h"
#include "tlsfind.h"
#include "tokentap/error.h"

#define ATTACH_MAX_FILES 4096
#define ATTACH_MAX_CHECKED 65536 /* inodes known not to hold OpenSSL */
#define ATTACH_MAX_WHYS 256      /* reasons kept for unhookable files */

enum { SYM_WRITE, SYM_WRITE_EX, SYM_READ, SYM_READ_EX, SYM_FREE, SYM_N };
static const char *const sym_names[SYM_N] = {
	"SSL_write", "SSL_write_ex", "SSL_read", "SSL_read_ex", "SSL_free",
};

struct file_key {
	dev_t dev;
	ino_t ino;
};

struct afile {
	struct file_key key;
	char label[256];
	enum tt_tls_stack stack;
	struct bpf_link **links;
	size_t nlinks, caplinks;
};

/* What to hook in one file, and whose TLS code it is. */
struct hooks {
	enum tt_tls_stack stack;
	tt_ssl_syms ssl;  /* OpenSSL and BoringSSL */
	tt_go_syms go;    /* Go */
	tt_rustls_syms rustls;
};

/* What the finders said of a file with TLS code they could not hook. */
struct why {
	struct file_key key;
	char text[200];
};

struct tt_attach {
	struct sslprobe_bpf *skel;
	int verbose;
	/* the exec gate's thread attaches too (execgate.h) */
	pthread_mutex_t lock;
	struct afile *files;
	size_t nfiles, capfiles;
	struct file_key *checked; /* executables without SSL_write */
	size_t nchecked, capchecked;
	size_t nlinks;
	size_t unhookable; /* files with TLS code the probe cannot hook */
	struct why *whys;  /* the first ATTACH_MAX_WHYS of them */
	size_t nwhys;
};

tt_attach *tt_attach_new(struct sslprobe_bpf *skel, int verbose)
{
	tt_attach *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->skel = skel;
	a->verbose = verbose;
	pthread_mutex_init(&a->lock, NULL);
	return a;
}

static void file_detach(tt_attach *a, struct afile *f)
{
	size_t i;

	/*
	 * Last attached first: each return probe goes before its entry
	 * probe, so no call returns to a program whose entry never ran
	 * (that would count as no_entry).
	 */
	for (i = f->nlinks; i > 0; i--)
		bpf_link__destroy(f->links[i - 1]);
	a->nlinks -= f->nlinks;
	f->nlinks = 0;
	free(f->links);
	f->links = NULL;
	f->caplinks = 0;
}

void tt_attach_free(tt_attach *a)
{
	size_t i;

	if (!a)
		return;
	for (i = 0; i < a->nfiles; i++)
		file_detach(a, &a->files[i]);
	free(a->files);
	free(a->checked);
	free(a->whys);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

static int key_in(const struct file_key *v, size_t n, struct file_key k)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (v[i].dev == k.dev && v[i].ino == k.ino)
			return 1;
	return 0;
}

static int known(const tt_attach *a, struct file_key k)
{
	size_t i;

	for (i = 0; i < a->nfiles; i++)
		if (a->files[i].key.dev == k.dev && a->files[i].key.ino == k.ino)
			return 1;
	return key_in(a->checked, a->nchecked, k);
}

static void remember_checked(tt_attach *a, struct file_key k)
{
	if (a->nchecked == a->capchecked) {
		size_t ncap = a->capchecked ? a->capchecked * 2 : 64;
		struct file_key *nv;

		if (ncap > ATTACH_MAX_CHECKED)
			return; /* checked again next time: slower, not wrong */
		nv = realloc(a->checked, ncap * sizeof(*nv));
		if (!nv)
			return;
		a->checked = nv;
		a->capchecked = ncap;
	}
	a->checked[a->nchecked++] = k;
}

/* One uprobe (ret: a return probe), its cookie saying whose TLS code. */
static int link_one(tt_attach *a, struct afile *f, struct bpf_program *prog,
		    int ret, const char *path, uint64_t off)
{
	LIBBPF_OPTS(bpf_uprobe_opts, opts, .retprobe = ret != 0,
		    .bpf_cookie = (__u64)f->stack);
	struct bpf_link *l;

	if (f->nlinks == f->caplinks) {
		size_t ncap = f->caplinks ? f->caplinks * 2 : 16;
		struct bpf_link **nv = realloc(f->links, ncap * sizeof(*nv));

		if (!nv)
			return TT_ENOMEM;
		f->links = nv;
		f->caplinks = ncap;
	}
	l = bpf_program__attach_uprobe_opts(prog, -1 /* every process */, path,
					    (size_t)off, &opts);
	if (!l) {
		int err = -errno;

		fprintf(stderr, "tokentap-probe: attaching %s to %s+0x%llx: %s\n",
			bpf_program__name(prog), f->label,
			(unsigned long long)off, strerror(-err));
		return TT_EPROTO;
	}
	f->links[f->nlinks++] = l;
	a->nlinks++;
	return 0;
}

/*
 * OpenSSL-shaped functions (OpenSSL, BoringSSL): each entry probe, then
 * its return probe (a return without its entry is never made).
 */
static int link_ssl(tt_attach *a, struct afile *f, const char *path,
		    const tt_ssl_syms *y)
{
	struct sslprobe_bpf *s = a->skel;
	int r;

	r = link_one(a, f, s->progs.ssl_write_enter, 0, path, y->write);
	if (!r)
		r = link_one(a, f, s->progs.ssl_ret, 1, path, y->write);
	if (!r)
		r = link_one(a, f, s->progs.ssl_read_enter, 0, path, y->read);
	if (!r)
		r = link_one(a, f, s->progs.ssl_ret, 1, path, y->read);
	/* OpenSSL < 1.1.1 has no _ex pair */
	if (!r && y->write_ex)
		r = link_one(a, f, s->progs.ssl_write_ex_enter, 0, path, y->write_ex);
	if (!r && y->write_ex)
		r = link_one(a, f, s->progs.ssl_ret_ex, 1, path, y->write_ex);
	if (!r && y->read_ex)
		r = link_one(a, f, s->progs.ssl_read_ex_enter, 0, path, y->read_ex);
	if (!r && y->read_ex)
		r = link_one(a, f, s->progs.ssl_ret_ex, 1, path, y->read_ex);
	if (!r && y->free)
		r = link_one(a, f, s->progs.ssl_free_enter, 0, path, y->free);
	return r;
}

/*
 * Go: Write's entry carries its bytes; Read's entry, then a probe on each
 * of its RETs (never a return probe on Go code); Close's entry.
 */
static int link_go(tt_attach *a, struct afile *f, const char *path,
		   const tt_go_syms *g)
{
	struct sslprobe_bpf *s = a->skel;
	int r;

	r = link_one(a, f, s->progs.go_write_enter, 0, path, g->write.entry);
	if (!r)
		r = link_one(a, f, s->progs.go_read_enter, 0, path, g->read.entry);
	for (size_t i = 0; !r && i < g->read.nrets; i++)
		r = link_one(a, f, s->progs.go_read_ret, 0, path, g->read.rets[i]);
	if (!r && g->close)
		r = link_one(a, f, s->progs.go_close_enter, 0, path, g->close);
	return r;
}

/* rustls: buffer_plaintext's entry and return, take_received_plaintext's entry. */
static int link_rustls(tt_attach *a, struct afile *f, const char *path,
		       const tt_rustls_syms *y)
{
	struct sslprobe_bpf *s = a->skel;
	int r;

	r = link_one(a, f, s->progs.rustls_send_enter, 0, path, y->send);
	if (!r)
		r = link_one(a, f, s->progs.rustls_send_ret, 1, path, y->send);
	if (!r)
		r = link_one(a, f, s->progs.rustls_recv_enter, 0, path, y->recv);
	return r;
}

/*
 * Which TLS code the file carries.  Returns 1 (h filled), 0 (none the
 * probe knows), TT_EIO (unreadable now), or another negative tt_error
 * when it carries a TLS stack whose code is not where it should be (why).
 */
static int find_hooks(const char *path, struct hooks *h, char *why, size_t cap)
{
	uint64_t off[SYM_N];
	int r;

	memset(h, 0, sizeof(*h));
	r = tt_elfsym_lookup(path, sym_names, SYM_N, off);
	if (r == TT_EIO || r == TT_ENOTSUP)
		return r == TT_EIO ? r : 0; /* not ELF64: nothing to hook */
	if (r >= 0 && off[SYM_WRITE] && off[SYM_READ]) {
		h->stack = TT_TLS_OPENSSL;
		h->ssl.write = off[SYM_WRITE];
		h->ssl.read = off[SYM_READ];
		h->ssl.write_ex = off[SYM_WRITE_EX];
		h->ssl.read_ex = off[SYM_READ_EX];
		h->ssl.free = off[SYM_FREE];
		return 1;
	}
	h->stack = TT_TLS_GOTLS;
	r = tt_gofind(path, &h->go, why, cap);
	if (r != 0)
		return r;
	h->stack = TT_TLS_BORINGSSL;
	r = tt_bsslfind(path, &h->ssl, why, cap);
	if (r != 0)
		return r;
	h->stack = TT_TLS_RUSTLS;
	return tt_rustlsfind(path, &h->rustls, why, cap);
}

/* A file with TLS code the probe cannot hook: named once, counted. */
static void unhookable(tt_attach *a, struct file_key k, const char *label,
		       enum tt_tls_stack stack, const char *why)
{
	a->unhookable++;
	if (a->nwhys < ATTACH_MAX_WHYS &&
	    (a->whys || (a->whys = calloc(ATTACH_MAX_WHYS, sizeof(*a->whys))))) {
		struct why *w = &a->whys[a->nwhys++];

		w->key = k;
		snprintf(w->text, sizeof(w->text), "%s: %s",
			 tt_tls_stack_name(stack), why);
	}
	fprintf(stderr, "tokentap-probe: %s carries %s TLS code the probe cannot hook "
		"(%s): its calls are not seen\n", label, tt_tls_stack_name(stack), why);
}

/*
 * Tell the kernel side this file has our uprobes: a process that maps it
 * is seen, one that opens TLS without it is reported (tls_hello).
 */
static void mark_hooked(tt_attach *a, struct file_key k)
{
	struct sslprobe_file_key fk = {
		.ino = k.ino,
		.dev = major(k.dev) << 20 | minor(k.dev), /* the kernel's MKDEV */
	};
	__u8 one = 1;

	bpf_map__update_elem(a->skel->maps.hooked_files, &fk, sizeof(fk), &one,
			     sizeof(one), BPF_ANY);
}

static struct afile *new_file(tt_attach *a, struct file_key k, const char *label,
			      enum tt_tls_stack stack)
{
	struct afile *f;

	if (a->nfiles == a->capfiles) {
		size_t ncap = a->capfiles ? a->capfiles * 2 : 16;
		struct afile *nv;

		if (ncap > ATTACH_MAX_FILES)
			return NULL;
		nv = realloc(a->files, ncap * sizeof(*nv));
		if (!nv)
			return NULL;
		a->files = nv;
		a->capfiles = ncap;
	}
	f = &a->files[a->nfiles];
	memset(f, 0, sizeof(*f));
	f->key = k;
	f->stack = stack;
	snprintf(f->label, sizeof(f->label), "%s", label);
	return f;
}

static int attach_file(tt_attach *a, const char *path, const char *label)
{
	struct hooks h;
	char why[256] = "";
	struct file_key k;
	struct afile *f;
	struct stat st;
	int r;

	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return TT_EIO;
	k.dev = st.st_dev;
	k.ino = st.st_ino;
	if (known(a, k))
		return 0;
	label = label ? label : path;
	r = find_hooks(path, &h, why, sizeof(why));
	if (r <= 0) {
		/* no TLS code we know (or unreadable now): do not look again */
		if (r != TT_EIO)
			remember_checked(a, k);
		if (r < 0 && r != TT_EIO)
			unhookable(a, k, label, h.stack, why);
		return r == TT_EIO ? r : 0;
	}
	f = new_file(a, k, label, h.stack);
	if (!f)
		return TT_ENOMEM;
	if (h.stack == TT_TLS_GOTLS)
		r = link_go(a, f, path, &h.go);
	else if (h.stack == TT_TLS_RUSTLS)
		r = link_rustls(a, f, path, &h.rustls);
	else
		r = link_ssl(a, f, path, &h.ssl);
	if (r) {
		file_detach(a, f);
		remember_checked(a, k);
		return r;
	}
	a->nfiles++;
	mark_hooked(a, k);
	if (a->verbose)
		fprintf(stderr, "tokentap-probe: attached %s (%s, %zu uprobes)\n",
			f->label, tt_tls_stack_name(f->stack), f->nlinks);
	return 1;
}

int tt_attach_file(tt_attach *a, const char *path, const char *label)
{
	int r;

	pthread_mutex_lock(&a->lock);
	r = attach_file(a, path, label);
	pthread_mutex_unlock(&a->lock);
	return r;
}

static int is_libssl(const char *base)
{
	return strncmp(base, "libssl.so", 9) == 0;
}

static int attach_dir(tt_attach *a, const char *dir)
{
	struct dirent *de;
	int n = 0;
	DIR *d = opendir(dir);

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char path[512];

		if (!is_libssl(de->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (tt_attach_file(a, path, path) == 1)
			n++;
	}
	closedir(d);
	return n;
}

int tt_attach_libdirs(tt_attach *a)
{
	static const char *const dirs[] = {
		"/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/local/lib",
		"/usr/local/lib64",
	};
	size_t i;
	int n = 0;

	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		struct dirent *de;
		DIR *d;

		n += attach_dir(a, dirs[i]);
		/* multiarch folders: /usr/lib/x86_64-linux-gnu and the like */
		d = opendir(dirs[i]);
		if (!d)
			continue;
		while ((de = readdir(d))) {
			char sub[512];
			size_t len = strlen(de->d_name);

			if (len < 10 || strcmp(de->d_name + len - 10, "-linux-gnu") != 0)
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", dirs[i], de->d_name);
			n += attach_dir(a, sub);
		}
		closedir(d);
	}
	return n;
}

/* Every regular executable file of one folder. */
static int attach_programs(tt_attach *a, const char *dir)
{
	struct dirent *de;
	int n = 0;
	DIR *d = opendir(dir);

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char path[4096];
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		/* symlinks are followed: one inode is looked at once */
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode) ||
		    !(st.st_mode & 0111))
			continue;
		if (tt_attach_file(a, path, path) == 1)
			n++;
	}
	closedir(d);
	return n;
}

int tt_attach_path_dirs(tt_attach *a, const char *path_env)
{
	static const char *const std_dirs[] = {
		"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin",
		"/sbin", "/bin",
	};
	char *copy, *dir, *save = NULL;
	size_t i;
	int n = 0;

	for (i = 0; i < sizeof(std_dirs) / sizeof(std_dirs[0]); i++)
		n += attach_programs(a, std_dirs[i]);
	if (!path_env || !(copy = strdup(path_env)))
		return n;
	for (dir = strtok_r(copy, ":", &save); dir;
	     dir = strtok_r(NULL, ":", &save))
		if (dir[0] == '/') /* relative entries mean nothing here */
			n += attach_programs(a, dir);
	free(copy);
	return n;
}

/* One process: its libssl mappings and its executable. */
static int scan_pid(tt_attach *a, int pid, tt_attach_visit_fn visit,
		    void *arg)
{
	char fn[64], line[4096], path[4600], exe[4096];
	int n = 0;
	ssize_t len;
	FILE *f;

	if (visit)
		visit(pid, arg);
	snprintf(fn, sizeof(fn), "/proc/%d/maps", pid);
	f = fopen(fn, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		char *p = strchr(line, '/'), *base;

		if (!p)
			continue;
		p[strcspn(p, "\n")] = '\0';
		base = strrchr(p, '/') + 1;
		if (!is_libssl(base) || strstr(p, " (deleted)"))
			continue;
		/* the path is in the process's mount namespace */
		snprintf(path, sizeof(path), "/proc/%d/root%s", pid, p);
		if (tt_attach_file(a, path, p) == 1)
			n++;
	}
	fclose(f);

	snprintf(fn, sizeof(fn), "/proc/%d/exe", pid);
	len = readlink(fn, exe, sizeof(exe) - 1);
	if (len <= 0)
		return n;
	exe[len] = '\0';
	if (strstr(exe, " (deleted)"))
		return n;
	snprintf(path, sizeof(path), "/proc/%d/root%s", pid, exe);
	if (tt_attach_file(a, path, exe) == 1)
		n++;
	return n;
}

int tt_attach_scan(tt_attach *a, const int *pids, size_t npids,
		   tt_attach_visit_fn visit, void *arg)
{
	struct dirent *de;
	size_t i;
	int n = 0;
	DIR *d;

	if (npids) {
		for (i = 0; i < npids; i++)
			n += scan_pid(a, pids[i], visit, arg);
		return n;
	}
	d = opendir("/proc");
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char *end;
		long pid;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 0 || pid > 0x7fffffff)
			continue;
		if (pid == getpid())
			continue;
		n += scan_pid(a, (int)pid, visit, arg);
	}
	closedir(d);
	return n;
}

/* One counter, read under the lock (the exec gate's thread moves them). */
static size_t counter(tt_attach *a, const size_t *field)
{
	size_t n;

	if (!a)
		return 0;
	pthread_mutex_lock(&a->lock);
	n = *field;
	pthread_mutex_unlock(&a->lock);
	return n;
}

size_t tt_attach_files(tt_attach *a)
{
	return a ? counter(a, &a->nfiles) : 0;
}

size_t tt_attach_links(tt_attach *a)
{
	return a ? counter(a, &a->nlinks) : 0;
}

size_t tt_attach_unhookable(tt_attach *a)
{
	return a ? counter(a, &a->unhookable) : 0;
}

int tt_attach_why(tt_attach *a, const char *path, char *why, size_t cap)
{
	struct stat st;
	int r = 0;

	if (cap)
		why[0] = '\0';
	if (stat(path, &st) < 0)
		return 0;
	pthread_mutex_lock(&a->lock);
	for (size_t i = 0; i < a->nwhys; i++) {
		if (a->whys[i].key.dev == st.st_dev && a->whys[i].key.ino == st.st_ino) {
			snprintf(why, cap, "%s", a->whys[i].text);
			r = 1;
			break;
		}
	}
	pthread_mutex_unlock(&a->lock);
	return r;
}

int tt_attach_pid_hooked(tt_attach *a, int pid)
{
	char path[64], line[1024];
	int found = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	pthread_mutex_lock(&a->lock);
	while (!found && fgets(line, sizeof(line), f)) {
		char perms[8];
		unsigned maj, min;
		unsigned long long ino;
		struct file_key k;

		/* start-end perms offset major:minor inode path */
		if (sscanf(line, "%*s %7s %*s %x:%x %llu", perms, &maj, &min, &ino) != 4 ||
		    perms[2] != 'x' || ino == 0)
			continue;
		k.dev = makedev(maj, min);
		k.ino = (ino_t)ino;
		for (size_t i = 0; i < a->nfiles && !found; i++)
			found = a->files[i].key.dev == k.dev && a->files[i].key.ino == k.ino;
	}
	pthread_mutex_unlock(&a->lock);
	fclose(f);
	return found;
}
