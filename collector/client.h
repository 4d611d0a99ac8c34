/*
 * client.h - the command's HTTP client for a tokentapd (libcurl).
 *
 * `collector` is "unix:/path.sock" or "http://host:port" (DESIGN.md's
 * TOKENTAP_COLLECTOR forms).  The answer body is appended to out
 * (capped by out->max).
 */
#ifndef TT_COL_CLIENT_H
#define TT_COL_CLIENT_H

#include <stddef.h>

#include "common/buf.h"

/*
 * GET `path` (with its query string, already escaped) from the collector.
 * token: bearer token or NULL.  Sets *status to the HTTP status.  Returns
 * 0, or TT_EINVAL (bad collector address) / TT_EIO (transfer failed) with
 * the reason in err.
 */
int tt_client_get(const char *collector, const char *path, const char *token, tt_buf *out,
		  long *status, char *err, size_t errlen);

/* curl_easy_escape() into a malloc'd string the caller frees; NULL on failure. */
char *tt_client_escape(const char *s);

#endif
