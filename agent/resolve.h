/*
 * resolve.h - the real OpenSSL functions behind our hooks.
 *
 * Each is looked up once, on first use, and cached.  dlsym(RTLD_NEXT)
 * first; when that finds nothing (CPython's _ssl module loads libssl with
 * RTLD_LOCAL, outside the global scope our RTLD_NEXT search walks) or finds
 * ourselves, the libssl already loaded in the process is asked directly:
 * dlopen(soname, RTLD_NOLOAD), then every loaded object whose name says
 * libssl (dl_iterate_phdr).  A result inside the shim is never returned.
 */
#ifndef TT_AGENT_RESOLVE_H
#define TT_AGENT_RESOLVE_H

#define TT_REAL_FUNCS(X)              \
	X(SSL_read)                   \
	X(SSL_write)                  \
	X(SSL_read_ex)                \
	X(SSL_write_ex)               \
	X(SSL_peek)                   \
	X(SSL_peek_ex)                \
	X(SSL_free)                   \
	X(SSL_shutdown)               \
	X(SSL_clear)                  \
	X(SSL_get_ex_data)            \
	X(SSL_set_ex_data)            \
	X(SSL_get_error)              \
	X(SSL_get_fd)                 \
	X(CRYPTO_get_ex_new_index)

enum tt_real_fn {
#define TT_REAL_ENUM(name) TT_REAL_##name,
	TT_REAL_FUNCS(TT_REAL_ENUM)
#undef TT_REAL_ENUM
	TT_REAL_COUNT
};

extern void *tt_real_cache[TT_REAL_COUNT];

/* Slow path of tt_real(): look up, cache, return; NULL when not found. */
void *tt_real_lookup(enum tt_real_fn fn);

/* The real function, or NULL when no loaded library has it. */
static inline void *tt_real(enum tt_real_fn fn)
{
	void *p = __atomic_load_n(&tt_real_cache[fn], __ATOMIC_ACQUIRE);
	return p ? p : tt_real_lookup(fn);
}

/* Forget the cache (tests). */
void tt_real_reset(void);

#endif
