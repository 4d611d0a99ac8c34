#!/usr/bin/python3
"""A stand-in collector for when build/tokentapd is absent: answers
POST /v1/records with 200 and appends each body to a file, so that a test
can count every record id it received (duplicates included).

  recorder.py SOCKET_PATH OUTFILE      (exits after 60 s)
"""
import http.server
import os
import socketserver
import sys
import threading


class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        with open(sys.argv[2], "ab") as f:
            f.write(body)
        lines = body.count(b"\n")
        out = b'{"accepted": %d, "duplicates": 0}' % lines
        self.send_response(200)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *a):
        pass

    def address_string(self):
        return "unix"


class S(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


if __name__ == "__main__":
    if os.path.exists(sys.argv[1]):
        os.unlink(sys.argv[1])
    srv = S(sys.argv[1], H)
    threading.Timer(60, srv.shutdown).start()
    srv.serve_forever()
