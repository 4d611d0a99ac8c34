/*
 * eventstream.h - AWS event stream binary framing
 * (application/vnd.amazon.eventstream), used by Bedrock's ConverseStream
 * and InvokeModelWithResponseStream.
 *
 * A message is:
 *	total length   4 bytes, big-endian, the whole message
 *	headers length 4 bytes
 *	prelude CRC    4 bytes, CRC-32 of the 8 bytes before it
 *	headers        name length (1), name, value type (1), value
 *	payload        total - headers - 16 bytes
 *	message CRC    4 bytes, CRC-32 of everything before it
 * Both CRCs are checked; a bad one makes the stream undecodable.
 */
#ifndef TOKENTAP_EVENTSTREAM_H
#define TOKENTAP_EVENTSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* The headers that matter to us, NUL-terminated (empty when absent). */
typedef struct tt_es_message {
	char event_type[64];     /* :event-type, e.g. "chunk", "metadata" */
	char message_type[32];   /* :message-type, "event" or "exception" */
	char exception_type[64]; /* :exception-type */
	const char *payload;
	size_t payload_len;
} tt_es_message;

typedef void (*tt_es_fn)(void *user, const tt_es_message *msg);

typedef struct tt_eventstream {
	tt_buf frame;
	int error;         /* sticky: a negative tt_error */
	tt_es_fn fn;
	void *user;
} tt_eventstream;

void tt_eventstream_init(tt_eventstream *e, size_t max_frame, tt_es_fn fn,
			 void *user);
/* Returns 0 or the sticky error (TT_EPROTO on a bad frame or CRC). */
int tt_eventstream_feed(tt_eventstream *e, const char *p, size_t n);
/* 0 if the stream ended on a frame boundary, else TT_ETRUNCATED. */
int tt_eventstream_end(tt_eventstream *e);
void tt_eventstream_free(tt_eventstream *e);

#endif
