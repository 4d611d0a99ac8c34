/*
 * exec.c - children stay under the agent.
 *
 * A program that starts a child with an environment of its own (Python's
 * subprocess with env=, "env -i", libuv's spawn, posix_spawn with envp)
 * drops LD_PRELOAD and the TOKENTAP_* variables, and its child runs
 * unseen.  These hooks put them back before the real call: the agent's
 * own path first in LD_PRELOAD, and each TOKENTAP_* variable the child's
 * environment lacks, as this process had it when it started.
 *
 * glibc's execv and execvp read `environ` and call execve internally, not
 * through our hook, so they are hooked too.  The hooks may run in a vfork
 * child, where nothing may be allocated: the new environment is built on
 * the caller's stack, bounded, and an environment too large for it is
 * passed on unchanged.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define TT_EXPORT __attribute__((visibility("default")))

/* Bounds of what we rebuild on the stack. */
#define ENV_MAX 2048
#define PRELOAD_MAX (PATH_MAX + 2048)
#define CARRY_MAX 24
#define CARRY_BYTES 8192

extern char **environ;

static char self_path[PATH_MAX];      /* this library, as loaded */
static char carry_buf[CARRY_BYTES];   /* "TOKENTAP_X=v\0" ... */
static const char *carry[CARRY_MAX];  /* into carry_buf */
static int ncarry;

/*
 * At load, before main changes anything: where we are, and the
 * TOKENTAP_* settings a child should inherit.
 */
__attribute__((constructor)) static void exec_capture(void)
{
	Dl_info info;
	size_t used = 0;

	if (dladdr((void *)exec_capture, &info) && info.dli_fname &&
	    strlen(info.dli_fname) < sizeof(self_path) && info.dli_fname[0] == '/')
		memcpy(self_path, info.dli_fname, strlen(info.dli_fname) + 1);
	for (char **e = environ; e && *e && ncarry < CARRY_MAX; e++) {
		size_t len = strlen(*e) + 1;
		if (strncmp(*e, "TOKENTAP_", 9) != 0 || used + len > sizeof(carry_buf))
			continue;
		memcpy(carry_buf + used, *e, len);
		carry[ncarry++] = carry_buf + used;
		used += len;
	}
}

/* Does the environment list define the variable of "KEY=value" entry? */
static int has_key(char *const *envp, const char *entry)
{
	size_t k = strcspn(entry, "=") + 1;
	for (; *envp; envp++)
		if (strncmp(*envp, entry, k) == 0)
			return 1;
	return 0;
}

/*
 * The environment a child should get: envp with the agent put back, built
 * in vec (ENV_MAX slots) and preload (PRELOAD_MAX bytes), or envp itself
 * when nothing is missing or it does not fit.
 */
static char *const *with_agent(char *const *envp, char **vec, char *preload)
{
	size_t n = 0, at = (size_t)-1;
	int changed = 0;

	if (!envp || !self_path[0])
		return envp;
	for (; envp[n]; n++) {
		if (n + CARRY_MAX + 2 >= ENV_MAX)
			return envp;
		if (strncmp(envp[n], "LD_PRELOAD=", 11) == 0)
			at = n;
	}
	memcpy(vec, envp, n * sizeof(*vec));
	if (at == (size_t)-1 || !strstr(envp[at] + 11, self_path)) {
		const char *old = at == (size_t)-1 ? "" : envp[at] + 11;
		int len = snprintf(preload, PRELOAD_MAX, "LD_PRELOAD=%s%s%s", self_path,
				   *old ? " " : "", old);
		if (len < 0 || len >= PRELOAD_MAX)
			return envp;
		if (at == (size_t)-1)
			vec[n++] = preload;
		else
			vec[at] = preload;
		changed = 1;
	}
	for (int i = 0; i < ncarry; i++) {
		if (!has_key(envp, carry[i])) {
			vec[n++] = (char *)carry[i];
			changed = 1;
		}
	}
	vec[n] = NULL;
	return changed ? vec : envp;
}

/* The next definition of name after ours (libc's). */
static void *real(void **cache, const char *name)
{
	void *p = __atomic_load_n(cache, __ATOMIC_ACQUIRE);
	if (!p) {
		p = dlsym(RTLD_NEXT, name);
		__atomic_store_n(cache, p, __ATOMIC_RELEASE);
	}
	return p;
}

/*
 * Declares real_NAME; a hook whose real function is missing fails the way
 * that function reports failure (exec: -1 and errno; posix_spawn: the
 * error number).
 */
#define REAL(type, name, failure)                          \
	static void *cache_##name;                         \
	type real_##name = (type)real(&cache_##name, #name); \
	if (!real_##name) {                                \
		errno = ENOSYS;                            \
		return failure;                            \
	}

typedef int (*execve_fn)(const char *, char *const[], char *const[]);
typedef int (*posix_spawn_fn)(pid_t *, const char *,
			      const posix_spawn_file_actions_t *,
			      const posix_spawnattr_t *, char *const[], char *const[]);

TT_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	REAL(execve_fn, execve, -1);
	char *vec[ENV_MAX], preload[PRELOAD_MAX];
	return real_execve(path, argv, with_agent(envp, vec, preload));
}

TT_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	REAL(execve_fn, execvpe, -1);
	char *vec[ENV_MAX], preload[PRELOAD_MAX];
	return real_execvpe(file, argv, with_agent(envp, vec, preload));
}

TT_EXPORT int execv(const char *path, char *const argv[])
{
	REAL(execve_fn, execve, -1);
	char *vec[ENV_MAX], preload[PRELOAD_MAX];
	return real_execve(path, argv, with_agent(environ, vec, preload));
}

TT_EXPORT int execvp(const char *file, char *const argv[])
{
	REAL(execve_fn, execvpe, -1);
	char *vec[ENV_MAX], preload[PRELOAD_MAX];
	return real_execvpe(file, argv, with_agent(environ, vec, preload));
}

TT_EXPORT int posix_spawn(pid_t *pid, const char *path,
			  const posix_spawn_file_actions_t *actions,
			  const posix_spawnattr_t *attr, char *const argv[],
			  char *const envp[])
{
	REAL(posix_spawn_fn, posix_spawn, ENOSYS);
	char *vec[ENV_MAX], preload[PRELOAD_MAX];
	return real_posix_spawn(pid, path, actions, attr, argv,
				with_agent(envp, vec, preload));
}

TT_EXPORT int posix_spawnp(pid_t *pid, const char *file,
			   const posix_spawn_file_actions_t *actions,
			   const posix_spawnattr_t *attr, char *const argv[],
			   char *const envp[])
{
	REAL(posix_spawn_fn, posix_spawnp, ENOSYS);
	char *vec[ENV_MAX], preload[PRELOAD_MAX];
	return real_posix_spawnp(pid, file, actions, attr, argv,
				 with_agent(envp, vec, preload));
}
