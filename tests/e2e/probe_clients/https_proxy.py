#!/usr/bin/python3
"""An HTTPS proxy (TLS to the proxy, then CONNECT), for the nested-TLS
test: a client's TLS connection to the provider runs inside its TLS
connection to this proxy, so its SSL_read calls the proxy connection's
SSL_read from inside its own.

  https_proxy.py CERT KEY READY_FILE      writes {"port": N} when listening
"""

import asyncio
import json
import os
import ssl
import sys


async def pipe(reader, writer):
    try:
        while True:
            b = await reader.read(65536)
            if not b:
                break
            writer.write(b)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def handle(reader, writer):
    head = await reader.readuntil(b"\r\n\r\n")
    line = head.split(b"\r\n", 1)[0].decode()
    method, target, _ = line.split(" ", 2)
    if method != "CONNECT":
        writer.write(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
        writer.close()
        return
    host, port = target.rsplit(":", 1)
    up_r, up_w = await asyncio.open_connection(host, int(port))
    writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
    await writer.drain()
    await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))


async def main():
    cert, key, ready = sys.argv[1:4]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
    port = srv.sockets[0].getsockname()[1]
    with open(ready + ".tmp", "w") as f:
        json.dump({"port": port}, f)
    os.rename(ready + ".tmp", ready)
    async with srv:
        await srv.serve_forever()


asyncio.run(main())
