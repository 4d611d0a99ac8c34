#!/usr/bin/python3
"""Python clients for tests/e2e/test_agent_paced.sh (stdlib only): calls
that last as long as the mock's paced streams, in the shapes that stress
the agent's timing.

  paced_client.py slow URL CA KEY BODYFILE OUT [--chunk 64] [--every-ms 20]
      urllib (blocking socket, SSL_read_ex); reads the body CHUNK bytes at
      a time with a pause between reads, writes it to OUT.
  paced_client.py fork URL_PARENT URL_CHILD CA KEY BODYFILE OUT_PREFIX
      [--grow-mb 128]
      The parent starts a thread that keeps allocating memory (a list of
      bytearrays, filled, dropped at GROW_MB and grown again), opens its
      stream and reads its first bytes, then forks: the child (which
      inherits the open connection and leaves it alone) makes its own call
      and exits with exit() (so that the agent's exit flush runs); the
      parent reads its stream to the end meanwhile.  Bodies go to
      OUT_PREFIX.parent and OUT_PREFIX.child; stdout says
      "parent PID child PID grown MB".
  paced_client.py threads CA KEY BODYFILE OUT_PREFIX URL...
      One thread per URL, all at once (urllib); each body goes to
      OUT_PREFIX.<i>; stdout gets "call <i> status=<S>" per URL in order.
  paced_client.py seq CA KEY BODYFILE OUT_PREFIX URL...
      The same, one call after another, on one thread.

HTTP/1.1 only (ALPN), like py_client.py.  Exit 0 when every call got an
answer (any status for `threads` and `seq`, 200 for the others).
"""
import argparse
import os
import ssl
import sys
import threading
import time
import urllib.error
import urllib.request


def ctx(ca):
    c = ssl.create_default_context(cafile=ca)
    c.set_alpn_protocols(["http/1.1"])
    return c


def request(url, key, body):
    return urllib.request.Request(
        url, data=body, method="POST",
        headers={"Authorization": f"Bearer {key}",
                 "Content-Type": "application/json"})


def open_call(url, ca, key, body, timeout=120):
    return urllib.request.urlopen(request(url, key, body), context=ctx(ca),
                                  timeout=timeout)


def read_slowly(r, chunk, pause):
    out = bytearray()
    while True:
        b = r.read(chunk)
        if not b:
            return bytes(out)
        out += b
        if pause:
            time.sleep(pause)


def cmd_slow(a):
    body = open(a.bodyfile, "rb").read()
    with open_call(a.url, a.ca, a.key, body) as r:
        if r.status != 200:
            sys.exit(f"status {r.status}")
        data = read_slowly(r, a.chunk, a.every_ms / 1000.0)
    open(a.out, "wb").write(data)


def cmd_fork(a):
    body = open(a.bodyfile, "rb").read()
    stop = threading.Event()
    grown = [0]

    def grow():
        chunks = []
        one = b"\xa5" * (1 << 20)
        while not stop.is_set():
            chunks.append(bytearray(one))       # 1 MiB, every page touched
            grown[0] += 1
            if len(chunks) >= a.grow_mb:
                chunks = []
            time.sleep(0.002)

    t = threading.Thread(target=grow, daemon=True)
    t.start()
    r = open_call(a.url_parent, a.ca, a.key, body)
    if r.status != 200:
        sys.exit(f"parent: status {r.status}")
    first = r.read(256)                         # the stream is under way
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            with open_call(a.url_child, a.ca, a.key, body) as rc:
                if rc.status != 200:
                    code = 3
                data = read_slowly(rc, 512, 0)
            open(a.out_prefix + ".child", "wb").write(data)
        except Exception as e:  # noqa: BLE001 - report and fail
            print(f"child: {e!r}", file=sys.stderr)
            code = 4
        sys.stdout.flush()
        sys.exit(code)                          # exit(), not _exit()
    data = first + read_slowly(r, 1024, 0)
    r.close()
    _, st = os.waitpid(pid, 0)
    stop.set()
    t.join()
    open(a.out_prefix + ".parent", "wb").write(data)
    print(f"parent {os.getpid()} child {pid} grown {grown[0]}")
    if not os.WIFEXITED(st) or os.WEXITSTATUS(st) != 0:
        sys.exit(f"child failed: wait status {st}")


def cmd_threads(a):
    body = open(a.bodyfile, "rb").read()
    status = [None] * len(a.urls)

    def one(i, url):
        try:
            with open_call(url, a.ca, a.key, body) as r:
                data = r.read()
                status[i] = r.status
        except urllib.error.HTTPError as e:
            data = e.read()
            status[i] = e.code
        except Exception as e:  # noqa: BLE001 - report and fail
            print(f"call {i}: {e!r}", file=sys.stderr)
            return
        open(f"{a.out_prefix}.{i}", "wb").write(data)

    if a.mode == "seq":
        for i, u in enumerate(a.urls):
            one(i, u)
    else:
        th = [threading.Thread(target=one, args=(i, u)) for i, u in enumerate(a.urls)]
        for t in th:
            t.start()
        for t in th:
            t.join()
    for i, s in enumerate(status):
        print(f"call {i} status={s}")
    if None in status:
        sys.exit(1)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("slow")
    for n in ("url", "ca", "key", "bodyfile", "out"):
        p.add_argument(n)
    p.add_argument("--chunk", type=int, default=64)
    p.add_argument("--every-ms", type=float, default=20)
    p = sub.add_parser("fork")
    for n in ("url_parent", "url_child", "ca", "key", "bodyfile", "out_prefix"):
        p.add_argument(n)
    p.add_argument("--grow-mb", type=int, default=128)
    for mode in ("threads", "seq"):
        p = sub.add_parser(mode)
        for n in ("ca", "key", "bodyfile", "out_prefix"):
            p.add_argument(n)
        p.add_argument("urls", nargs="+")
    a = ap.parse_args()
    {"slow": cmd_slow, "fork": cmd_fork, "threads": cmd_threads,
     "seq": cmd_threads}[a.mode](a)


if __name__ == "__main__":
    main()
