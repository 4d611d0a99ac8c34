#!/usr/bin/python3
"""One streamed LLM call read the way slow or busy programs read it, for
the paced end-to-end tests.

  stream_client.py URL CA [--slow BYTES,MS] [--grow MIB_PER_S] [--api openai|anthropic]
                   [--words N]

--slow 64,20     read 64 bytes every 20 ms (a client that reads slowly)
--grow 40        meanwhile a thread allocates about 40 MiB/s and frees it
                 again every second: the process's memory size keeps
                 moving all through the stream, as a busy agent's does
Prints one JSON line: bytes read, seconds from send to the last byte.
"""

import argparse
import json
import ssl
import threading
import time
import urllib.request


def grow(rate_mib, stop):
    held = []
    t0 = time.monotonic()
    while not stop.is_set():
        held.append(bytearray(1 << 20))  # touched: really resident
        if time.monotonic() - t0 >= 1.0:
            held.clear()
            t0 = time.monotonic()
        time.sleep(1.0 / max(rate_mib, 1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("ca")
    ap.add_argument("--slow")
    ap.add_argument("--grow", type=float)
    ap.add_argument("--api", default="openai")
    ap.add_argument("--words", type=int)
    a = ap.parse_args()

    if a.api == "anthropic":
        body = {"model": "claude-3-5-haiku-latest", "max_tokens": 4096,
                "stream": True,
                "messages": [{"role": "user", "content": "paced, anthropic"}]}
    else:
        body = {"model": "gpt-4o-mini", "stream": True,
                "stream_options": {"include_usage": True},
                "messages": [{"role": "user", "content": "paced, openai"}]}
    req = urllib.request.Request(a.url, data=json.dumps(body).encode(),
                                 method="POST")
    req.add_header("Content-Type", "application/json")
    # a dummy key: the tests check it reaches no record or log
    req.add_header("Authorization", "Bearer sk-tokentap-secret-stream")
    ctx = ssl.create_default_context(cafile=a.ca)
    stop = threading.Event()
    if a.grow:
        threading.Thread(target=grow, args=(a.grow, stop), daemon=True).start()
    n, piece, pause = 0, 65536, 0.0
    if a.slow:
        b, ms = a.slow.split(",")
        piece, pause = int(b), int(ms) / 1000.0
    t0 = time.monotonic()
    with urllib.request.urlopen(req, context=ctx, timeout=300) as r:
        while True:
            got = r.read1(piece) if not a.slow else r.read(piece)
            if not got:
                break
            n += len(got)
            if pause:
                time.sleep(pause)
    stop.set()
    print(json.dumps({"bytes": n, "seconds": time.monotonic() - t0}))


if __name__ == "__main__":
    main()
