#!/usr/bin/python3
"""LLM calls with nothing but urllib (CPython's _ssl: SSL_read_ex and
SSL_write_ex only), for the tokentap-probe tests.

  urllib_client.py BASE_URL CA_FILE calls        a few OpenAI/Anthropic calls
  urllib_client.py BASE_URL CA_FILE big MIB      one chat call whose prompt
                                                 is MIB MiB, sent in one write
"""

import json
import ssl
import sys
import urllib.request


def post(base, ctx, path, body, headers=None):
    data = json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method="POST")
    req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    with urllib.request.urlopen(req, context=ctx, timeout=60) as r:
        got = r.read()
    return len(data), len(got)


def main():
    base, ca, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    ctx = ssl.create_default_context(cafile=ca)
    if mode == "calls":
        post(base, ctx, "/v1/chat/completions",
             {"model": "gpt-4o-mini", "messages": [
                 {"role": "user", "content": "urllib, not streamed"}]})
        post(base, ctx, "/v1/chat/completions",
             {"model": "gpt-4o-mini", "stream": True,
              "stream_options": {"include_usage": True},
              "max_completion_tokens": 30,
              "messages": [{"role": "user", "content": "urllib, streamed"}]})
        post(base, ctx, "/v1/messages",
             {"model": "claude-3-5-haiku-latest", "max_tokens": 50,
              "stream": True,
              "messages": [{"role": "user", "content": "urllib, Anthropic"}]},
             {"anthropic-version": "2023-06-01"})
    elif mode == "big":
        mib = int(sys.argv[4])
        # A long prompt: text the mock counts, one write of the whole body
        # (http.client sends a bytes body with one sendall, which is one
        # SSL_write_ex of all of it).
        text = ("lorem ipsum dolor sit amet " * ((mib << 20) // 27 + 1))
        text = text[:mib << 20]
        n, _ = post(base, ctx, "/v1/chat/completions",
                    {"model": "gpt-4o-mini", "max_tokens": 5,
                     "messages": [{"role": "user", "content": text}]})
        print("request_bytes %d" % n)
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
