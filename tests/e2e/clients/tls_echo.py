#!/usr/bin/python3
"""Non-LLM TLS traffic for the agent's tests: an echo server and a client.

  tls_echo.py server CERT KEY READYFILE   serve one connection per accept,
                                          echo every byte; exits after 60 s
  tls_echo.py client PORT CA NBYTES       send NBYTES of seeded random bytes,
                                          read them back, print their sha256
"""
import hashlib
import random
import socket
import ssl
import sys
import threading


def server(cert, key, ready):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(8)
    ls.settimeout(60)
    with open(ready + ".tmp", "w") as f:
        f.write(str(ls.getsockname()[1]))
    import os
    os.rename(ready + ".tmp", ready)

    def echo(c):
        with ctx.wrap_socket(c, server_side=True) as s:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                s.sendall(b)

    while True:
        try:
            c, _ = ls.accept()
        except OSError:
            return
        threading.Thread(target=echo, args=(c,), daemon=True).start()


def client(port, ca, n):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False
    data = random.Random(7).randbytes(n)
    got = bytearray()
    # One thread, one chunk at a time: an SSL object is not for two
    # threads at once, and a 64 KiB echo fits the socket buffers.
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
        with ctx.wrap_socket(raw) as s:
            for off in range(0, n, 65536):
                chunk = data[off:off + 65536]
                s.sendall(chunk)
                want = off + len(chunk)
                while len(got) < want:
                    b = s.recv(65536)
                    if not b:
                        break
                    got.extend(b)
    print("sent", hashlib.sha256(data).hexdigest())
    print("got ", hashlib.sha256(bytes(got)).hexdigest())


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server(*sys.argv[2:5])
    else:
        client(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
