#!/bin/sh
# fuzz/fixture_seeds.sh TARGET DIR - write seeds for one of the focused
# decoder fuzz targets into DIR, from the recorded provider bodies of the
# wire fixtures (the checkout's ../shared/fixtures/wire, or
# $TOKENTAP_FIXTURES), in the input format of that target (see the comment
# at the top of fuzz/TARGET.c).  The fixtures are read where they lie and
# never copied into the repository; without them this writes nothing and
# says so (the committed seeds in fuzz/corpus/TARGET still apply).
set -eu
[ $# -eq 2 ] || { echo "usage: $0 TARGET DIR" >&2; exit 2; }
top=$(cd "$(dirname "$0")/.." && pwd)
fx=${TOKENTAP_FIXTURES:-$top/../shared/fixtures/wire}
if [ ! -f "$fx/MANIFEST.tsv" ]; then
	echo "fixture_seeds: no fixtures at $fx, committed seeds only"
	exit 0
fi
mkdir -p "$2"
exec /usr/bin/python3 - "$1" "$2" "$fx" <<'PYEOF'
import gzip, hashlib, json, os, sys

target, out, fx = sys.argv[1:4]

# tt_family values (decoder/route.h).
CHAT, RESPONSES, EMBED, ANTHROPIC, GEMINI, CONVERSE, INVOKE, OLLAMA, COHERE = range(1, 10)

def family(prov, name):
    if prov == "anthropic":
        return ANTHROPIC
    if prov == "gemini":
        return GEMINI
    if prov == "bedrock":
        return CONVERSE if name.startswith("converse") else INVOKE
    if prov == "ollama":
        return OLLAMA
    if prov == "cohere":
        return COHERE
    if "responses" in name:
        return RESPONSES
    if "embedding" in name:
        return EMBED
    return CHAT

def bodies():
    for prov in sorted(os.listdir(fx)):
        d = os.path.join(fx, prov)
        if not os.path.isdir(d):
            continue
        for fn in sorted(os.listdir(d)):
            if ".meta." in fn or ".request." in fn:
                continue
            with open(os.path.join(d, fn), "rb") as f:
                yield prov, fn, f.read()

def put(data):
    data = data[:8192]
    with open(os.path.join(out, "fx-" + hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)

def usage_lines(fn, body):
    """The JSON values of a body, one compact value a line."""
    vals = []
    if fn.endswith(".sse"):
        for line in body.split(b"\n"):
            if line.startswith(b"data:"):
                vals.append(line[5:].strip())
    elif fn.endswith((".jsonl", ".ndjson")):
        vals = [l for l in body.split(b"\n") if l.strip()]
    elif fn.endswith(".json"):
        try:
            vals = [json.dumps(json.loads(body), separators=(",", ":")).encode()]
        except ValueError:
            pass
    return b"\n".join(vals)

n = 0
for i, (prov, fn, body) in enumerate(bodies()):
    if target == "fuzz_dec_sse" and fn.endswith(".sse"):
        put(bytes([n & 255, 0]) + body)
        put(bytes([n & 255, 1]) + body)
    elif target == "fuzz_dec_sse" and fn.endswith((".jsonl", ".ndjson")):
        put(bytes([n & 255, 2]) + body)
    elif target == "fuzz_dec_ndjson" and fn.endswith((".json", ".jsonl", ".ndjson")):
        put(bytes([n & 255, 0]) + body)
    elif target == "fuzz_dec_eventstream" and fn.endswith(".eventstream"):
        put(bytes([n & 255, 0]) + body)
        put(bytes([n & 255, 2]) + body)
    elif target == "fuzz_dec_decompress" and fn.endswith(".gz"):
        put(bytes([n & 255, 1]) + body)
        put(bytes([n & 255, 2]) + gzip.decompress(body))  # raw for deflate
    elif target == "fuzz_dec_decompress" and fn.endswith(".json") and i % 8 == 0:
        put(bytes([n & 255, 8 | (1 + n % 2)]) + body)  # round trips
        put(bytes([n & 255, 8 | 4]) + body)
    elif target == "fuzz_dec_usage":
        lines = usage_lines(fn, body)
        if lines:
            put(bytes([family(prov, fn)]) + lines)
    else:
        continue
    n += 1
print("fixture_seeds: %s: %d seeds from %s" % (target, n, fx))
PYEOF
