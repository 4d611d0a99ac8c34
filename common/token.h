/*
 * token.h - the one reader of a bearer-token file (tokentapd
 * --token-file, tokentap --token-file, TOKENTAP_TOKEN_FILE).
 *
 * The file holds one line: the token, 1 to TT_TOKEN_MAX visible ASCII
 * characters (what an HTTP header value may carry).  Trailing CR, LF and
 * spaces are cut; anything else is refused, with the reason in err, which
 * never contains the token.
 */
#ifndef TT_COMMON_TOKEN_H
#define TT_COMMON_TOKEN_H

#include <stddef.h>

#define TT_TOKEN_MAX 4096
#define TT_TOKEN_BUF (TT_TOKEN_MAX + 3) /* what the reader needs to hold */

/*
 * Read the token of path into out (cap >= TT_TOKEN_BUF).  Returns its
 * length, or TT_EIO (cannot read) / TT_EINVAL (not one line of visible
 * characters) with out wiped.  *loose (may be NULL) is set when others
 * than the owner may read the file.
 */
int tt_token_read(const char *path, char *out, size_t cap, int *loose, char *err,
		  size_t errlen);

#endif
