/*
 * jsonseq.h - cut a JSON body into its top-level values as they arrive.
 *
 * A body that is one object gives one value.  A body that is an array
 * gives each element (Vertex AI's streamGenerateContent without alt=sse
 * streams one array of responses).  Only the structure is tracked
 * (depth, strings, escapes): the values are parsed by the caller.
 *
 * A value larger than the cap is not kept whole: the first bytes (up to
 * the cap) and the last TT_JSONSEQ_TAIL bytes are kept, so that a usage
 * object at the end of a huge body (an embeddings response) can still be
 * found.  The value is then delivered with truncated set.
 */
#ifndef TOKENTAP_JSONSEQ_H
#define TOKENTAP_JSONSEQ_H

#include <stddef.h>

#include "common/buf.h"

#define TT_JSONSEQ_TAIL 65536

/*
 * head holds the value (or its first cap bytes); tail, when truncated, the
 * last bytes of it (tail_len may be 0 when nothing was kept).
 */
typedef void (*tt_jsonseq_fn)(void *user, const char *head, size_t head_len,
			      const char *tail, size_t tail_len, int truncated);

typedef struct tt_jsonseq {
	tt_buf value;
	char *tail;            /* ring of the last TT_JSONSEQ_TAIL bytes */
	size_t tail_pos, tail_fill;
	int in_array;          /* the body is an array: values are elements */
	int started;           /* first non-space byte seen */
	int depth;             /* nesting inside the current value */
	int in_string, escape;
	int in_value;
	int scalar;            /* the current value is a bare scalar */
	int oom;
	tt_jsonseq_fn fn;
	void *user;
} tt_jsonseq;

void tt_jsonseq_init(tt_jsonseq *j, size_t max_value, tt_jsonseq_fn fn,
		     void *user);
void tt_jsonseq_feed(tt_jsonseq *j, const char *p, size_t n);
/* End of body: a value still open is delivered as truncated. */
void tt_jsonseq_end(tt_jsonseq *j);
void tt_jsonseq_free(tt_jsonseq *j);

#endif
