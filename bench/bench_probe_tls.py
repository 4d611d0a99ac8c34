#!/usr/bin/python3
"""TLS workloads for bench_probe.sh, one JSON line of results.

  bench_probe_tls.py bulk CERT KEY MIB        MB/s through one TLS connection
                                              (16 KiB writes, both ends here)
  bench_probe_tls.py calls CERT KEY N SIZE    microseconds per SSL_write +
                                              SSL_read of SIZE bytes (echo)
  bench_probe_tls.py llm URL CA N             latency of N keep-alive LLM
                                              calls (http.client) to the mock
  bench_probe_tls.py rate URL CA RATE SECS T  LLM calls paced at RATE per
                                              second for SECS seconds over T
                                              keep-alive connections

cpu_s is the CPU time (user + system, all threads) this process used for
the work: uprobe traps and their BPF programs run in the calling task, so
they show up here.
"""

import json
import resource
import socket
import ssl
import statistics
import sys
import threading
import time


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def pair(cert, key):
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(cert, key)
    cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cctx.check_hostname = False
    cctx.verify_mode = ssl.CERT_NONE
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    port = ls.getsockname()[1]
    out = {}

    def accept():
        s, _ = ls.accept()
        out["s"] = sctx.wrap_socket(s, server_side=True)

    t = threading.Thread(target=accept)
    t.start()
    c = cctx.wrap_socket(socket.create_connection(("127.0.0.1", port)))
    t.join()
    ls.close()
    return c, out["s"]


def bulk(cert, key, mib):
    c, s = pair(cert, key)
    total = mib << 20
    chunk = b"x" * 16384

    def sink():
        got = 0
        while got < total:
            got += len(s.recv(65536))

    t = threading.Thread(target=sink)
    c0 = cpu()
    t0 = time.perf_counter()
    t.start()
    sent = 0
    while sent < total:
        c.sendall(chunk)
        sent += len(chunk)
    t.join()
    dt = time.perf_counter() - t0
    return {"mib": mib, "seconds": dt, "mb_per_s": total / dt / 1e6,
            "cpu_s": cpu() - c0}


def calls(cert, key, n, size):
    c, s = pair(cert, key)
    msg = b"y" * size

    def echo():
        for _ in range(n):
            got = b""
            while len(got) < size:
                got += s.recv(size - len(got))
            s.sendall(got)

    t = threading.Thread(target=echo)
    c0 = cpu()
    t.start()
    t0 = time.perf_counter()
    for _ in range(n):
        c.sendall(msg)
        got = b""
        while len(got) < size:
            got += c.recv(size - len(got))
    dt = time.perf_counter() - t0
    t.join()
    # each round trip is 2 writes and at least 2 reads
    return {"n": n, "size": size, "us_per_roundtrip": dt / n * 1e6,
            "us_per_ssl_call": dt / (4 * n) * 1e6, "cpu_s": cpu() - c0,
            "ssl_calls": 4 * n}


def llm(url, ca, n):
    import http.client
    from urllib.parse import urlparse
    u = urlparse(url)
    ctx = ssl.create_default_context(cafile=ca)
    conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx)
    body = json.dumps({"model": "gpt-4o-mini", "max_tokens": 20, "messages": [
        {"role": "user", "content": "benchmark call"}]})
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        conn.request("POST", "/v1/chat/completions", body,
                     {"content-type": "application/json"})
        r = conn.getresponse()
        r.read()
        lat.append((time.perf_counter() - t0) * 1e3)
    lat.sort()
    return {"n": n, "ms_median": statistics.median(lat),
            "ms_p95": lat[int(0.95 * (n - 1))]}


def rate(url, ca, per_s, secs, nconn):
    """Paced calls; each thread keeps its own schedule and connection."""
    import http.client
    from urllib.parse import urlparse
    u = urlparse(url)
    ctx = ssl.create_default_context(cafile=ca)
    body = json.dumps({"model": "gpt-4o-mini", "max_tokens": 20, "messages": [
        {"role": "user", "content": "rate benchmark call"}]})
    done = [0] * nconn
    errors = [0] * nconn

    def run(k):
        conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx)
        step = nconn / per_s
        t0 = time.perf_counter()
        end = t0 + secs
        i = 0
        while True:
            due = t0 + i * step
            now = time.perf_counter()
            if due >= end or now >= end:
                break
            if due > now:
                time.sleep(due - now)
            try:
                conn.request("POST", "/v1/chat/completions", body,
                             {"content-type": "application/json"})
                r = conn.getresponse()
                r.read()
                done[k] += 1
            except OSError:
                errors[k] += 1
            i += 1
        conn.close()

    ts = [threading.Thread(target=run, args=(k,)) for k in range(nconn)]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    dt = time.perf_counter() - t0
    return {"calls": sum(done), "errors": sum(errors), "seconds": dt,
            "per_s": sum(done) / dt}


def main():
    mode = sys.argv[1]
    if mode == "bulk":
        r = bulk(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif mode == "calls":
        r = calls(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif mode == "llm":
        r = llm(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif mode == "rate":
        r = rate(sys.argv[2], sys.argv[3], float(sys.argv[4]),
                 float(sys.argv[5]), int(sys.argv[6]))
    else:
        sys.exit("unknown mode")
    print(json.dumps(r))


if __name__ == "__main__":
    main()
