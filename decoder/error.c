/* error.c - tt_strerror() from the one table in tokentap/error.h. */
#include "tokentap/error.h"

const char *tt_strerror(int err)
{
	switch (err) {
#define TT_ERROR_CASE(name, value, text) \
	case value:                      \
		return text;
		TT_ERRORS(TT_ERROR_CASE)
#undef TT_ERROR_CASE
	}
	return "unknown error";
}
