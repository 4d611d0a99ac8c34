/*
 * tlsfind.h - where a program's own TLS code moves plaintext: the file
 * offsets the probe puts its uprobes on, found in the program's code, not
 * in a per-release table.
 *
 *   OpenSSL and BoringSSL  SSL_read/SSL_write (and the _ex pair, SSL_free)
 *                          by symbol, else (a stripped BoringSSL inside a
 *                          Bun-built program) by validated signatures
 *                          (bsslfind.c)
 *   rustls                 CommonState::buffer_plaintext and
 *                          take_received_plaintext, by anchors on rustls's
 *                          panic sites and trait-object vtables
 *                          (rustlsfind.c)
 *   Go crypto/tls          (*Conn).Write, (*Conn).Read: the entry and every
 *                          RET (a return probe would crash Go), and
 *                          (*Conn).Close's entry; by .symtab, else by
 *                          .gopclntab (gofind.c)
 *
 * Every finder answers 1 (found, *out filled), 0 (not this kind of
 * program: look elsewhere) or a negative tt_error when it IS this kind of
 * program but what it looks for is not where it should be (a new release
 * changed the code): why then says what did not match, for the probe's
 * log.  All offsets are file offsets, as uprobes want them.
 */
#ifndef TOKENTAP_TLSFIND_H
#define TOKENTAP_TLSFIND_H

#include <stddef.h>
#include <stdint.h>

/* Whose TLS code: the record's `tls` field. */
enum tt_tls_stack {
	TT_TLS_OPENSSL = 0,
	TT_TLS_BORINGSSL,
	TT_TLS_GOTLS,
	TT_TLS_RUSTLS,
};

/* The record's name for a stack ("openssl", ...). */
const char *tt_tls_stack_name(enum tt_tls_stack s);

/* OpenSSL-shaped entry points; 0 where the program has none. */
typedef struct tt_ssl_syms {
	uint64_t write, read, write_ex, read_ex, free;
} tt_ssl_syms;

#define TT_GO_MAX_RETS 64

/* One Go function: its entry and each of its RET instructions. */
typedef struct tt_go_func {
	uint64_t entry;
	uint64_t rets[TT_GO_MAX_RETS];
	size_t nrets;
} tt_go_func;

typedef struct tt_go_syms {
	tt_go_func write, read;  /* crypto/tls.(*Conn).Write, (*Conn).Read */
	uint64_t close;          /* crypto/tls.(*Conn).Close's entry, 0: none */
	int go_minor;            /* 1.N of the toolchain (17 and later: register ABI) */
	int stripped;            /* found through .gopclntab, not .symtab */
} tt_go_syms;

/*
 * rustls 0.23 (a Rust program's own TLS, e.g. Codex): its CommonState
 * methods buffer_plaintext (send: entry and return) and
 * take_received_plaintext (recv: entry).  The method and its evidence:
 * rustlsfind_notes.md.
 */
typedef struct tt_rustls_syms {
	uint64_t send;          /* buffer_plaintext: entry + return probe */
	uint64_t recv;          /* take_received_plaintext: entry probe */
	uint64_t send_va, recv_va;
	uint32_t may_send_off;  /* the flag byte both send anchors agree on */
	uint32_t recv_queue_off;/* CommonState offset of the VecDeque recv pushes to */
	int ncallers_send;      /* direct/GOT callers of send (the generic write copies) */
	int ncallers_recv;      /* State::handle methods calling recv */
	char version[24];       /* "0.23.46", from the source paths */
} tt_rustls_syms;

/* rustlsfind.c: rustls inside a program without its symbols. */
int tt_rustlsfind(const char *path, tt_rustls_syms *out, char *why, size_t cap);

/* gofind.c: a Go program's crypto/tls. */
int tt_gofind(const char *path, tt_go_syms *out, char *why, size_t cap);

/* bsslfind.c: a BoringSSL linked into a program without its symbols. */
int tt_bsslfind(const char *path, tt_ssl_syms *out, char *why, size_t cap);

/*
 * The same on an ELF image in memory (size bytes at image, borrowed, not
 * modified), with the same answers: what the unit tests run on exact-size
 * copies, cut and flipped.
 */
int tt_rustlsfind_mem(const void *image, size_t size, tt_rustls_syms *out,
		      char *why, size_t cap);
int tt_gofind_mem(const void *image, size_t size, tt_go_syms *out,
		  char *why, size_t cap);
int tt_bsslfind_mem(const void *image, size_t size, tt_ssl_syms *out,
		    char *why, size_t cap);

#endif
