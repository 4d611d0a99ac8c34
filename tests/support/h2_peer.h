/*
 * h2_peer.h - capture what real HTTP/2 peers put on the wire.
 *
 * A small relay (Python, asyncio) listens on 127.0.0.1 and forwards every
 * connection to an upstream port, logging what passes each way, in the
 * order it passed, to one capture file per connection.  A test points
 * real clients (curl, nghttp) at the relay and a real server (the mock
 * provider, h2c) behind it, then feeds the captures to the decoder.
 *
 * Capture file: records of  tag (1 byte: 'C' client->server, 'S' back),
 * length (4 bytes, big-endian), CLOCK_REALTIME microseconds (8 bytes,
 * big-endian), then the bytes.  conn-NNN.part while the connection is
 * open, renamed conn-NNN.cap once both directions ended.
 */
#ifndef TT_TEST_H2_PEER_H
#define TT_TEST_H2_PEER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct h2p_chunk {
	int from_client;
	int64_t at_us;
	const uint8_t *p;
	size_t n;
} h2p_chunk;

typedef struct h2p_capture {
	uint8_t *raw;
	h2p_chunk *chunks;
	size_t n;
} h2p_capture;

/* A fresh private folder under $TMPDIR (or /tmp); NULL on failure. */
char *h2p_tempdir(void);
/* Remove dir and everything in it (one level of files). */
void h2p_rmdir(const char *dir);

/*
 * Start argv[0] (a path) with stdin from /dev/null and stdout+stderr to
 * log; returns the pid or -1.
 */
pid_t h2p_spawn(char *const argv[], const char *log);
/* Wait up to timeout_ms for pid; kill it if it overruns. Exit code or -1. */
int h2p_wait(pid_t pid, int timeout_ms);
/* SIGTERM, then SIGKILL after a grace period; reaps it. pid <= 0: no-op. */
void h2p_stop(pid_t pid);

/* Wait until path exists (up to timeout_ms); 0 when it does. */
int h2p_wait_file(const char *path, int timeout_ms);

/*
 * Start the relay: 127.0.0.1:<new port> -> 127.0.0.1:upstream_port,
 * captures in dir.  Returns its pid and sets *port, or -1.
 */
pid_t h2p_relay_start(const char *python, const char *dir,
		      int upstream_port, int *port, int max_seconds);

/* Wait until want captures are complete in dir (up to timeout_ms). */
int h2p_wait_captures(const char *dir, int want, int timeout_ms);

/* Load dir/conn-NNN.cap (index from 1). 0, or -1 when absent or bad. */
int h2p_capture_load(const char *dir, int index, h2p_capture *out);
void h2p_capture_free(h2p_capture *c);

#endif
