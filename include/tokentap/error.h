/*
 * error.h - the one table of tokentap error codes.
 *
 * Every fallible tokentap function returns 0 on success or one of these
 * negative codes.  The table is an X-macro so that the enum and
 * tt_strerror() can never drift apart.
 */
#ifndef TOKENTAP_ERROR_H
#define TOKENTAP_ERROR_H

#define TT_ERRORS(X)                                                        \
	X(TT_OK, 0, "success")                                              \
	X(TT_ENOMEM, -1, "out of memory")                                   \
	X(TT_EINVAL, -2, "invalid argument")                                \
	X(TT_ETRUNCATED, -3, "input exceeded a configured cap")             \
	X(TT_EPROTO, -4, "protocol violation in the byte stream")          \
	X(TT_ECLOSED, -5, "connection closed before the exchange ended")   \
	X(TT_EDECODE, -6, "content could not be decoded")                  \
	X(TT_EIO, -7, "input/output error")                                 \
	X(TT_ENOTSUP, -8, "not supported")                                  \
	X(TT_ENOSPACE, -9, "output buffer too small")

enum tt_error {
#define TT_ERROR_ENUM(name, value, text) name = value,
	TT_ERRORS(TT_ERROR_ENUM)
#undef TT_ERROR_ENUM
};

/* A static string that describes err; never NULL, also for unknown codes. */
const char *tt_strerror(int err);

#endif
