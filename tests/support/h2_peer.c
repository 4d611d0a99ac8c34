/* h2_peer.c - capture real HTTP/2 peers through a relay; see h2_peer.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "h2_peer.h"
#include "tbuf.h"

extern char **environ;

/*
 * The relay.  One event loop, so the log of a connection holds its two
 * directions in the order the relay read them: a response can only be
 * read after the request that caused it was forwarded.
 */
static const char relay_py[] =
	"import asyncio, os, struct, sys, time\n"
	"up, out, limit = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])\n"
	"count = 0\n"
	"async def pipe(r, w, f, tag):\n"
	"    try:\n"
	"        while True:\n"
	"            b = await r.read(65536)\n"
	"            if not b:\n"
	"                break\n"
	"            f.write(tag + struct.pack('>Iq', len(b), time.time_ns() // 1000) + b)\n"
	"            w.write(b)\n"
	"            await w.drain()\n"
	"    except (ConnectionError, OSError):\n"
	"        pass\n"
	"    try:\n"
	"        w.write_eof()\n"
	"    except (ConnectionError, OSError, RuntimeError):\n"
	"        pass\n"
	"async def handle(cr, cw):\n"
	"    global count\n"
	"    count += 1\n"
	"    name = os.path.join(out, 'conn-%03d' % count)\n"
	"    sr, sw = await asyncio.open_connection('127.0.0.1', up)\n"
	"    with open(name + '.part', 'wb') as f:\n"
	"        await asyncio.gather(pipe(cr, sw, f, b'C'), pipe(sr, cw, f, b'S'))\n"
	"    cw.close()\n"
	"    sw.close()\n"
	"    os.rename(name + '.part', name + '.cap')\n"
	"async def main():\n"
	"    srv = await asyncio.start_server(handle, '127.0.0.1', 0)\n"
	"    port = srv.sockets[0].getsockname()[1]\n"
	"    tmp = os.path.join(out, 'relay.port.tmp')\n"
	"    with open(tmp, 'w') as f:\n"
	"        f.write('%d\\n' % port)\n"
	"    os.rename(tmp, os.path.join(out, 'relay.port'))\n"
	"    await asyncio.sleep(limit)\n"
	"asyncio.run(main())\n";

char *h2p_tempdir(void)
{
	const char *base = getenv("TMPDIR");
	char path[512];

	snprintf(path, sizeof(path), "%s/tt-h2peer-XXXXXX",
		 base && *base ? base : "/tmp");
	if (!mkdtemp(path))
		return NULL;
	return strdup(path);
}

void h2p_rmdir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[1024];

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

pid_t h2p_spawn(char *const argv[], const char *log)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int rc;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, log,
					 O_WRONLY | O_CREAT | O_APPEND, 0600);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	return rc == 0 ? pid : -1;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

int h2p_wait(pid_t pid, int timeout_ms)
{
	int status;

	for (int waited = 0;; waited += 10) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		if (r < 0)
			return -1;
		if (waited >= timeout_ms) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		sleep_ms(10);
	}
}

void h2p_stop(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	h2p_wait(pid, 3000); /* kills and reaps it if it lingers */
}

int h2p_wait_file(const char *path, int timeout_ms)
{
	struct stat st;

	for (int waited = 0; waited <= timeout_ms; waited += 20) {
		if (stat(path, &st) == 0)
			return 0;
		sleep_ms(20);
	}
	return -1;
}

pid_t h2p_relay_start(const char *python, const char *dir,
		      int upstream_port, int *port, int max_seconds)
{
	char script[600], portfile[600], log[600], up[16], lim[16];
	FILE *f;
	pid_t pid;

	snprintf(script, sizeof(script), "%s/relay.py", dir);
	snprintf(portfile, sizeof(portfile), "%s/relay.port", dir);
	snprintf(log, sizeof(log), "%s/relay.log", dir);
	snprintf(up, sizeof(up), "%d", upstream_port);
	snprintf(lim, sizeof(lim), "%d", max_seconds);
	f = fopen(script, "w");
	if (!f)
		return -1;
	fputs(relay_py, f);
	fclose(f);

	char *argv[] = { (char *)python, script, up, (char *)dir, lim, NULL };
	pid = h2p_spawn(argv, log);
	if (pid < 0)
		return -1;
	if (h2p_wait_file(portfile, 10000) != 0) {
		h2p_stop(pid);
		return -1;
	}
	size_t len;
	char *text = tbuf_read_file(portfile, &len);
	char *end;
	long v = text ? strtol(text, &end, 10) : 0;
	free(text);
	if (v <= 0 || v > 65535) {
		h2p_stop(pid);
		return -1;
	}
	*port = (int)v;
	return pid;
}

int h2p_wait_captures(const char *dir, int want, int timeout_ms)
{
	char path[600];

	for (int i = 1; i <= want; i++) {
		snprintf(path, sizeof(path), "%s/conn-%03d.cap", dir, i);
		if (h2p_wait_file(path, timeout_ms) != 0)
			return -1;
	}
	return 0;
}

static uint64_t be(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

int h2p_capture_load(const char *dir, int index, h2p_capture *out)
{
	char path[600];
	size_t len, pos = 0, cap = 0;

	memset(out, 0, sizeof(*out));
	snprintf(path, sizeof(path), "%s/conn-%03d.cap", dir, index);
	out->raw = (uint8_t *)tbuf_read_file(path, &len);
	if (!out->raw)
		return -1;
	while (pos < len) {
		if (len - pos < 13)
			goto bad;
		uint8_t tag = out->raw[pos];
		size_t n = (size_t)be(out->raw + pos + 1, 4);
		int64_t at = (int64_t)be(out->raw + pos + 5, 8);
		if ((tag != 'C' && tag != 'S') || n > len - pos - 13)
			goto bad;
		if (out->n == cap) {
			cap = cap ? 2 * cap : 64;
			h2p_chunk *c = realloc(out->chunks, cap * sizeof(*c));
			if (!c)
				goto bad;
			out->chunks = c;
		}
		out->chunks[out->n++] = (h2p_chunk){ tag == 'C', at,
						     out->raw + pos + 13, n };
		pos += 13 + n;
	}
	return 0;
bad:
	h2p_capture_free(out);
	return -1;
}

void h2p_capture_free(h2p_capture *c)
{
	free(c->raw);
	free(c->chunks);
	memset(c, 0, sizeof(*c));
}
