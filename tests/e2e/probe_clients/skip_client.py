#!/usr/bin/python3
"""One process, two kinds of TLS connections, for test_probe_skip.sh.

  skip_client.py BASE_URL CA CERT KEY SECONDS

An echo server thread on 127.0.0.1 (CERT, KEY) carries traffic that is
not HTTP; the mock (BASE_URL, CA) gets LLM calls from the same process:

  1. short connections that are not HTTP, each closed right after its
     first echo (freed before the probe can have decided to skip it), each
     followed at once by an LLM call on a new connection (which may get the
     freed SSL pointer);
  2. one long connection that is not HTTP, echoing for SECONDS, while
     another thread makes LLM calls over one keep-alive connection.

Prints one JSON line: echo round trips, LLM calls made.
"""

import http.client
import json
import socket
import ssl
import sys
import threading
import time
from urllib.parse import urlparse


def echo_server(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(8)
    ls.settimeout(60)

    def echo(c):
        with ctx.wrap_socket(c, server_side=True) as s:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                s.sendall(b)

    def serve():
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return
            threading.Thread(target=echo, args=(c,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return ls.getsockname()[1]


def echo_conn(port):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", port), timeout=30)
    return ctx.wrap_socket(raw)


def round_trip(s, i):
    # a binary framing, nothing like HTTP
    msg = b"\x00\x01" + i.to_bytes(4, "big") + b"\xfe" * 58
    s.sendall(msg)
    got = b""
    while len(got) < len(msg):
        b = s.recv(len(msg) - len(got))
        if not b:
            raise OSError("echo closed")
        got += b
    if got != msg:
        raise OSError("echo differs")


def llm_call(conn, i):
    body = json.dumps({"model": "gpt-4o-mini", "max_tokens": 20, "messages": [
        {"role": "user", "content": "skip test call %d" % i}]})
    conn.request("POST", "/v1/chat/completions", body,
                 {"content-type": "application/json"})
    r = conn.getresponse()
    r.read()
    if r.status != 200:
        raise OSError("mock said %d" % r.status)


def main():
    base, ca, cert, key, secs = sys.argv[1:6]
    u = urlparse(base)
    lctx = ssl.create_default_context(cafile=ca)
    port = echo_server(cert, key)
    trips = calls = 0

    # 1. freed before the probe decides; an LLM call right after each
    for i in range(10):
        s = echo_conn(port)
        round_trip(s, i)
        s.close()
        del s
        conn = http.client.HTTPSConnection(u.hostname, u.port, context=lctx,
                                           timeout=30)
        llm_call(conn, calls)
        conn.close()
        calls += 1
        trips += 1

    # 2. a long connection beside a keep-alive LLM connection
    stop = threading.Event()
    errors = []

    def llm_thread():
        nonlocal calls
        conn = http.client.HTTPSConnection(u.hostname, u.port, context=lctx,
                                           timeout=30)
        try:
            while not stop.is_set():
                llm_call(conn, calls)
                calls += 1
                time.sleep(0.05)
        except OSError as e:
            errors.append(str(e))
        conn.close()

    t = threading.Thread(target=llm_thread)
    t.start()
    s = echo_conn(port)
    end = time.monotonic() + float(secs)
    try:
        while time.monotonic() < end:
            round_trip(s, trips)
            trips += 1
            time.sleep(0.001)
    finally:
        stop.set()
        t.join()
    s.close()
    if errors:
        sys.exit("LLM calls failed: " + "; ".join(errors))
    print(json.dumps({"trips": trips, "calls": calls}))


if __name__ == "__main__":
    main()
