#!/bin/sh
# fuzz/seeds.sh DIR - write synthetic HTTP transcripts for fuzz_dec_conn
# into DIR, in the target's script format (see fuzz/fuzz_dec_conn.c):
# one complete LLM exchange per provider shape, over each prefix, in each
# response framing and coding the target can wrap, so that the fuzzer
# starts from inputs that reach every body parser and produce records.
set -eu
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
mkdir -p "$1"
exec /usr/bin/python3 - "$1" <<'EOF'
import base64, json, os, struct, sys, zlib

out = sys.argv[1]

# Header sets: Content-Type index + 5 * Content-Encoding index.
CT = {"json": 0, "sse": 1, "ndjson": 2, "es": 3, "none": 4}
CE = {"identity": 0, "gzip": 1, "deflate": 2, "br": 3, "zstd": 4}
RECV, WRAP, END = 1, 2, 4

def script(prefix, ct, ce, framing, pieces, caps=0, diff=True):
    b0 = prefix | (CT[ct] + 5 * CE[ce]) << 3
    b2 = framing | (4 if diff else 0)
    s = bytearray([b0, caps, b2])
    for ctl, data in pieces:
        if len(data) > 255:
            s += bytes([ctl | 8]) + struct.pack("<H", len(data))
        else:
            s += bytes([ctl, len(data)])
        s += data
    return bytes(s)

def write(name, data):
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)

def wrapped(events, step=0x10):
    """Received pieces, each wrapped; the last one ends the body."""
    p = [(step | RECV | WRAP, e) for e in events]
    p.append((step | RECV | WRAP | END, b""))
    return p

def sse(objs, event=None):
    r = []
    for o in objs:
        head = b"event: %s\n" % o.get("type", "").encode() if event else b""
        r.append(head + b"data: " + json.dumps(o).encode() + b"\n\n")
    return r

openai = [{"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4o-mini",
           "choices": [{"index": 0, "delta": {"content": w}}]}
          for w in ["Hel", "lo", " there"]]
openai.append({"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4o-mini",
               "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 3,
               "total_tokens": 15, "prompt_tokens_details": {"cached_tokens": 4},
               "completion_tokens_details": {"reasoning_tokens": 1}}})
oa = sse(openai) + [b"data: [DONE]\n\n"]

for ce in ("identity", "gzip", "deflate"):
    write("openai-sse-chunked-%s" % ce, script(1, "sse", ce, 0, wrapped(oa)))
    write("h2-openai-sse-%s" % ce, script(4, "sse", ce, 0, wrapped(oa)))
write("openai-sse-close", script(1, "sse", "identity", 1, wrapped(oa)))
write("openai-sse-smallcaps", script(1, "sse", "identity", 0, wrapped(oa),
                                     caps=0xA8))
full = {"id": "c2", "object": "chat.completion", "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}}
body = json.dumps(full).encode()
write("openai-json", script(1, "json", "identity", 0, wrapped([body[:40], body[40:]])))
write("openai-json-gzip", script(1, "json", "gzip", 0, wrapped([body])))
write("openai-json-length", script(1, "json", "identity", 2,
                                  [(0x11, body + b" " * (300 - len(body)))]))

# Bedrock InvokeModelWithResponseStream: event-stream messages whose
# payload is {"bytes": base64(Anthropic event)}.
def es_headers(event_type):
    h = b""
    for k, v in ((":event-type", event_type), (":content-type", "application/json"),
                 (":message-type", "event")):
        h += bytes([len(k)]) + k.encode() + b"\x07" + struct.pack(">H", len(v)) + v.encode()
    return h

anth = [
    {"type": "message_start", "message": {"id": "m1", "model": "claude-3-haiku-20240307",
     "usage": {"input_tokens": 20, "output_tokens": 1, "cache_read_input_tokens": 5,
               "cache_creation_input_tokens": 2}}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
    {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
     "usage": {"output_tokens": 7}},
    {"type": "message_stop", "amazon-bedrock-invocationMetrics":
     {"inputTokenCount": 27, "outputTokenCount": 7}},
]
ev = []
for o in anth:
    h = es_headers("chunk")
    payload = json.dumps({"bytes": base64.b64encode(json.dumps(o).encode()).decode()}).encode()
    ev.append(bytes([len(h)]) + h + payload)
write("bedrock-invoke-stream", script(2, "es", "identity", 0, wrapped(ev)))
write("bedrock-invoke-stream-close", script(2, "es", "identity", 1, wrapped(ev)))

gem = [{"candidates": [{"content": {"parts": [{"text": t}], "role": "model"}}],
        "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": n,
                          "thoughtsTokenCount": 3, "totalTokenCount": 11 + n},
        "modelVersion": "gemini-1.5-flash-002"} for t, n in (("Hi", 1), (" you", 2))]
write("gemini-sse", script(3, "sse", "identity", 0, wrapped(sse(gem))))
arr = json.dumps(gem, indent=1).encode()
write("gemini-array", script(3, "json", "gzip", 0, wrapped([arr[:70], arr[70:]])))

write("anthropic-sse", script(5, "sse", "gzip", 0, wrapped(sse(anth, event=True))))

oll = [{"model": "llama3.2", "message": {"role": "assistant", "content": "Hi"}, "done": False},
       {"model": "llama3.2", "message": {"role": "assistant", "content": ""}, "done": True,
        "prompt_eval_count": 26, "eval_count": 4}]
write("ollama-ndjson", script(6, "ndjson", "identity", 0,
                              wrapped([json.dumps(o).encode() + b"\n" for o in oll])))
write("ollama-none", script(6, "none", "identity", 1,
                            wrapped([json.dumps(o).encode() + b"\n" for o in oll])))
EOF
