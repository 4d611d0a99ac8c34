/* resolve.c - find the real libssl entry points, never our own. */
#include <dlfcn.h>
#include <link.h>
#include <string.h>

#include "common/log.h"
#include "resolve.h"

void *tt_real_cache[TT_REAL_COUNT];

static const char *const names[TT_REAL_COUNT] = {
#define TT_REAL_NAME(name) #name,
	TT_REAL_FUNCS(TT_REAL_NAME)
#undef TT_REAL_NAME
};

static int warned[TT_REAL_COUNT];

/* The load address of the shim itself, to refuse our own symbols. */
static void *self_base(void)
{
	static void *base;
	Dl_info info;

	if (!base && dladdr((void *)&self_base, &info))
		base = info.dli_fbase;
	return base;
}

static int in_self(void *p)
{
	Dl_info info;
	return p && dladdr(p, &info) && info.dli_fbase == self_base();
}

static void *from_object(const char *path, const char *name)
{
	void *h = dlopen(path, RTLD_LAZY | RTLD_NOLOAD);
	void *p;

	if (!h)
		return NULL;
	p = dlsym(h, name);
	dlclose(h); /* only drops the reference NOLOAD took */
	return in_self(p) ? NULL : p;
}

struct phdr_search {
	const char *name;
	void *found;
};

static int phdr_cb(struct dl_phdr_info *info, size_t size, void *data)
{
	struct phdr_search *ps = data;
	const char *base;

	(void)size;
	if (!info->dlpi_name || !info->dlpi_name[0])
		return 0;
	base = strrchr(info->dlpi_name, '/');
	base = base ? base + 1 : info->dlpi_name;
	if (strncmp(base, "libssl", 6) != 0)
		return 0;
	ps->found = from_object(info->dlpi_name, ps->name);
	return ps->found != NULL;
}

void *tt_real_lookup(enum tt_real_fn fn)
{
	static const char *const sonames[] = { "libssl.so.3", "libssl.so.1.1",
					       "libssl.so" };
	const char *name = names[fn];
	const char *how = "RTLD_NEXT";
	void *p = dlsym(RTLD_NEXT, name);

	if (in_self(p))
		p = NULL;
	for (size_t i = 0; !p && i < sizeof(sonames) / sizeof(sonames[0]); i++) {
		p = from_object(sonames[i], name);
		how = sonames[i];
	}
	if (!p) {
		struct phdr_search ps = { name, NULL };
		dl_iterate_phdr(phdr_cb, &ps);
		p = ps.found;
		how = "dl_iterate_phdr";
	}
	if (!p) {
		tt_log_once(&warned[fn], TT_LOG_ERROR,
			    "no loaded library provides %s", name);
		return NULL;
	}
	tt_log(TT_LOG_DEBUG, "%s resolved through %s", name, how);
	/* Racing threads find the same address; any store wins. */
	__atomic_store_n(&tt_real_cache[fn], p, __ATOMIC_RELEASE);
	return p;
}

void tt_real_reset(void)
{
	for (int i = 0; i < TT_REAL_COUNT; i++)
		__atomic_store_n(&tt_real_cache[i], NULL, __ATOMIC_RELEASE);
}
