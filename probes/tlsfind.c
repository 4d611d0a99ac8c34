/*
 * tlsfind.c - what tlsfind.h's finders share: the record's name of each
 * TLS stack.
 */
#include "tlsfind.h"

/* The values the record's `tls` field accepts (record_fields.h). */
static const char *const stack_names[] = {
	[TT_TLS_OPENSSL] = "openssl",
	[TT_TLS_BORINGSSL] = "boringssl",
	[TT_TLS_GOTLS] = "gotls",
	[TT_TLS_RUSTLS] = "rustls",
};

const char *tt_tls_stack_name(enum tt_tls_stack s)
{
	if ((unsigned)s >= sizeof(stack_names) / sizeof(stack_names[0]))
		return "unknown";
	return stack_names[s];
}
