#!/usr/bin/python3
"""Python clients for the agent's end-to-end tests (stdlib only).

  py_client.py urllib  PORT CA KEY PATH BODYFILE   blocking http.client/urllib
  py_client.py asyncio PORT CA KEY PATH BODYFILE   asyncio streams over TLS
                                                   (memory BIOs in _ssl)
  py_client.py plain   PORT CA                     HTTPS GET /healthz, no LLM

Prints the response body to stdout, unchanged.  CPython's _ssl module calls
only SSL_read_ex/SSL_write_ex, on a libssl it loaded RTLD_LOCAL.
"""
import asyncio
import ssl
import sys
import urllib.request


def ctx(ca):
    c = ssl.create_default_context(cafile=ca)
    c.set_alpn_protocols(["http/1.1"])
    return c


def urllib_call(port, ca, key, path, body):
    req = urllib.request.Request(
        f"https://127.0.0.1:{port}{path}", data=body, method="POST",
        headers={"Authorization": f"Bearer {key}",
                 "Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=ctx(ca), timeout=30) as r:
        return r.read()


async def asyncio_call(port, ca, key, path, body):
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", int(port), ssl=ctx(ca), server_hostname="localhost")
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    writer.write(head.encode())
    writer.write(body)
    await writer.drain()
    data = await reader.read()
    writer.close()
    try:
        await writer.wait_closed()
    except (ssl.SSLError, ConnectionError):
        pass
    head, _, rest = data.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head.lower():
        out = b""
        while True:
            size, _, rest = rest.partition(b"\r\n")
            n = int(size.split(b";")[0], 16)
            if n == 0:
                break
            out += rest[:n]
            rest = rest[n + 2:]
        return out
    return rest


def main():
    mode = sys.argv[1]
    if mode == "plain":
        port, ca = sys.argv[2:4]
        with urllib.request.urlopen(f"https://127.0.0.1:{port}/healthz",
                                    context=ctx(ca), timeout=30) as r:
            out = r.read()
    else:
        port, ca, key, path, bodyf = sys.argv[2:7]
        body = open(bodyf, "rb").read()
        if mode == "urllib":
            out = urllib_call(port, ca, key, path, body)
        else:
            out = asyncio.run(asyncio_call(port, ca, key, path, body))
    sys.stdout.buffer.write(out)


if __name__ == "__main__":
    main()
