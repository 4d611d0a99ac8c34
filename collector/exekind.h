/*
 * exekind.h - what kind of program a command is, as far as the agent is
 * concerned: `tokentap run` warns when LD_PRELOAD cannot reach the
 * program's TLS (a static executable, a Go program, a Bun-built one, a
 * program with its own OpenSSL such as NodeSource's node), and points at
 * tokentap-probe, which can.
 */
#ifndef TOKENTAP_EXEKIND_H
#define TOKENTAP_EXEKIND_H

#include <stddef.h>

typedef enum tt_exe_kind {
	TT_EXE_UNKNOWN = 0, /* not found, not readable, not ELF: say nothing */
	TT_EXE_DYNAMIC,     /* an ordinary dynamically linked program */
	TT_EXE_STATIC,      /* no program interpreter: ld.so never runs */
	TT_EXE_GO,          /* Go's crypto/tls, inside the executable */
	TT_EXE_BUN,         /* a Bun build: BoringSSL inside the executable */
	TT_EXE_OWN_SSL,     /* defines SSL_write itself: its own calls bind inside */
} tt_exe_kind;

/*
 * The kind of the program `cmd` names, resolved as execvp(3) would (a name
 * without '/' is looked up in PATH).  A script is judged by its "#!"
 * interpreter ("/usr/bin/env NAME" looked up in PATH too).  The path it
 * judged goes to path (at most cap bytes, always terminated).
 */
tt_exe_kind tt_exe_kind_of(const char *cmd, char *path, size_t cap);

/* "static", "Go", "Bun", "own OpenSSL"; NULL for the kinds the agent can enter. */
const char *tt_exe_kind_name(tt_exe_kind k);

#endif
