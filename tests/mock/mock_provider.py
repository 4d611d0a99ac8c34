#!/usr/bin/python3
"""tokentap mock LLM provider: a TLS server on 127.0.0.1 that plays OpenAI,
Anthropic, Gemini, Ollama, ... for real clients (curl, SDKs, C programs).

Routes (after optional leading path markers, see below):

  /fx/<provider>/<name>[/anything]   replay <fixtures>/<provider>/<name>.<ext>
  .../chat/completions               synthetic OpenAI chat completion
  .../v1/messages                    synthetic Anthropic message
  .../responses                      synthetic OpenAI Responses API
  ...:generateContent                synthetic Gemini (":streamGenerateContent"
                                     streams; "?alt=sse" as SSE, else a JSON array)
  .../api/chat, .../api/generate     synthetic Ollama (streams unless "stream": false)
  .../embeddings                     synthetic OpenAI embeddings
  /healthz                           {"status": "ok"}

Path markers, consumed from the front of the path in any order:
  /reset/      close the connection abruptly (TCP RST) after
               --reset-after-bytes uncompressed body bytes; /reset/<N>/ after N
  /chunked/    send even a non-streamed body in pieces (chunked / many DATA frames)
  /enc/<e>/    force the content coding: identity, gzip, br or zstd
  /pause/<ms>/ pause between pieces for this response (at most 10000)
  /pieces/<n>/ send this streamed response in n pieces
  /paced/      a realistic pace: first body byte after 0.5-2.0 s, then the
               body event by event, 12.5-50 ms between events (20-80/s);
               a non-streamed response only waits
  /ttft/<ms>/  wait this long before the first body byte (at most 120000);
               a streamed response sends its head at once, a non-streamed
               one waits whole, head included, as a real provider does
  /rate/<r>/   send a streamed body event by event, r events per second on
               average (1..1000; each gap drawn within +-50% of 1/r, then all
               scaled so that the n-1 gaps add up to exactly (n-1)/r)
  /stall/<ms>/ one silence of this long (at most 120000) in a streamed body,
               at the event boundary after half its events (a one-event body:
               at half its bytes)
  /words/<n>/  synthetic routes: the natural output length is n words (at
               most 100000) instead of 20 + h % 200
e.g. /reset/fx/openai/chat-stream-no-usage/v1/chat/completions,
     /paced/stall/10000/v1/chat/completions

Pacing.  Without /paced/, /rate/ (or --pace realistic) a streamed body goes
out in --pieces parts cut at pseudo-random offsets, --pause-ms apart; /ttft/
and /stall/ only add their waits.  /rate/ and /stall/ leave a non-streamed
response alone (add /chunked/ to pace one).  Paced, a body goes out event
by event: an SSE event ends at a blank line ("\n\n" or "\r\n\r\n"), an
NDJSON one at "\n", an AWS eventstream message after its length prelude, a
streamed JSON array (Gemini without alt=sse) after each top-level element
and its comma.  Now and then (about one event in three) an event is itself
written in two parts cut inside it, so that decoders keep seeing events
straddle reads.  Every random draw (time to first byte, gaps, cuts) comes
from a generator seeded with sha256(body + path), so a replay is paced
alike.  Events are scheduled against the clock, not one sleep after
another, so a stream lasts what its gaps add up to, plus the waits; a stall
is counted from the end of the write before it.  A client that reads slowly
holds the sender back (writes await drain; HTTP/2 waits for the peer's
window): nothing is buffered beyond the transport's high-water mark, and
the events behind are then sent as fast as the client takes them.
--pace realistic applies /paced/ to every streamed response (explicit
/ttft/ and /rate/ still win).  --max-seconds stops the mock whatever is in
flight, so it must exceed a test's whole run (tests/mock/lib.sh starts the
mock with 300 s, MOCK_MAX_SECONDS; the default is 600 s).

Synthetic usage formulas (deterministic; the tests rely on them):
  prompt text  = the concatenation, in request order and without separators,
                 of every text string of the prompt: the system prompt
                 (OpenAI system/developer messages, Anthropic "system",
                 Responses "instructions", Gemini "systemInstruction", Ollama
                 "system") and the messages ("content" strings, and the "text"
                 of content parts/blocks, recursively through "content").
  input tokens = ceil(utf8_bytes(prompt text) / 4)
  h            = first 4 bytes, big-endian, of sha256(model + "\\0" + prompt text)
  natural      = n with a /words/<n>/ marker, else 20 + h % 200
  output tokens= min(max_tokens, natural) when the request sets a ceiling
                 (max_tokens, max_completion_tokens, max_output_tokens,
                 generationConfig.maxOutputTokens, options.num_predict; values
                 below 1 count as 1), else natural.  The text is that many
                 words of lorem ipsum (one word = one token).  finish/stop
                 reason is "length"/"max_tokens"/"MAX_TOKENS" when cut.
  caching      = sys_tokens = ceil(utf8_bytes(system prompt) / 4).  When
                 sys_tokens >= 1024 and this process saw the same system prompt
                 before (per family: OpenAI chat+responses, Anthropic):
                   OpenAI:    prompt_tokens_details.cached_tokens = sys_tokens
                              (inside prompt_tokens = input tokens)
                   Anthropic: cache_read_input_tokens = sys_tokens and
                              input_tokens = input tokens - sys_tokens
                 First sight, Anthropic, the request has a "cache_control" key
                 anywhere: cache_creation_input_tokens = sys_tokens and
                 input_tokens = input tokens - sys_tokens.  Every request with
                 such a system prompt marks it as seen.
  Ollama       = when the whole (model, prompt text) was seen before,
                 prompt_eval_count is left out, like Ollama's omitempty when
                 the prompt came from its KV cache.
  Reasoning tokens are always 0.

Gemini JSON mode (generationConfig.responseMimeType "application/json",
as Gemini CLI's model router asks): the text is a JSON value built from
responseJsonSchema (or responseSchema): every property, the first string
holding the lorem words, numbers at their minimum (else 1), the first enum
value; streamed, it comes whole in one chunk.  The figures are unchanged.

Streams honour the real APIs: OpenAI chat carries usage only with
stream_options.include_usage (a last chunk with "choices": []); Anthropic
message_start holds input/cache counts and output_tokens 1, message_delta the
final cumulative counts; Responses ends with response.completed (or
response.incomplete when cut); Gemini repeats usageMetadata on every chunk
(snapshots); Ollama reports counts on the "done": true line.

The log (--log) holds one JSON line per response:
  seq, conn, ts, method, path, fixture, kind (fixture|synthetic|error|health),
  status, http ("1.1"|"2"), encoding, streamed, complete (false when the
  client left or /reset/ cut it), reset, request_bytes (a length only),
  body_bytes, body_sha256, body_file (a copy of exactly the uncompressed body
  bytes sent), usage_headers (the x-amzn-bedrock-*-token-count response
  headers sent, {} mostly), synthetic (null, or the figures the mock put in
  the body: api, model, stream, input_tokens, output_tokens,
  cache_read_tokens, cache_write_tokens, ..., usage_in_body), and the timing,
  in milliseconds from the moment the request was read: ttft_ms (to the first
  body byte written; null without body), duration_ms (to the end of the last
  write), events (events sent whole by a stream paced event by event, else
  null) and max_gap_ms (the longest silence between two body writes; null
  with fewer than two).
No request header and no request body is ever written, and the query string
is dropped from "path" (Gemini clients may put the API key there).
"""

import argparse
import asyncio
import gzip
import hashlib
import http
import json
import os
import random
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from urllib.parse import unquote, urlsplit, parse_qs

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

try:  # optional codings, only when Debian's python3-brotli is installed
    import brotli
except ImportError:
    brotli = None
try:  # python3-zstandard
    import zstandard
except ImportError:
    zstandard = None

SERVER = "tokentap-mock/1"
MAX_HEAD = 256 * 1024
MAX_WAIT_MS = 120000                    # cap of /ttft/ and /stall/
SPLIT_EVENT_P = 1 / 3                   # share of paced events sent in 2 writes
FIXTURE_SKIP = (".meta.json", ".request.json", ".decoded.jsonl", ".json.gz")
FIXTURE_EXTS = (".chunks.jsonl", ".sse", ".ndjson", ".eventstream", ".jsonl",
                ".json")
STREAM_EXTS = (".chunks.jsonl", ".sse", ".ndjson", ".eventstream", ".jsonl")
NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")
USAGE_HEADER_RE = re.compile(r"^x-amzn-bedrock-.*token-count$", re.I)

LOREM = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do "
         "eiusmod tempor incididunt ut labore et dolore magna aliqua ut enim "
         "ad minim veniam quis nostrud exercitation ullamco laboris nisi ut "
         "aliquip ex ea commodo consequat duis aute irure dolor in "
         "reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla "
         "pariatur excepteur sint occaecat cupidatat non proident sunt in "
         "culpa qui officia deserunt mollit anim id est laborum").split()


def log_err(msg):
    sys.stderr.write("mock_provider: %s\n" % msg)
    sys.stderr.flush()


def jdump(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def reason_phrase(status):
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return {529: "Overloaded"}.get(status, "Unknown")


class ClientGone(Exception):
    """The peer closed or reset the connection or stream."""


# --------------------------------------------------------------------------
# Certificates


def make_cert(tmpdir):
    """Make a throwaway CA and a server certificate for 127.0.0.1, ::1 and
    localhost signed by it.  Returns (ca, cert, key) paths.  A separate CA
    (CA:TRUE) and leaf (CA:FALSE, serverAuth) keeps strict verifiers (Python
    3.13 VERIFY_X509_STRICT, Node) as happy as curl."""
    ca_cnf = os.path.join(tmpdir, "ca.cnf")
    leaf_cnf = os.path.join(tmpdir, "leaf.cnf")
    with open(ca_cnf, "w") as f:
        f.write("[req]\ndistinguished_name=dn\nprompt=no\n"
                "x509_extensions=v3_ca\n[dn]\nCN=tokentap mock CA\n"
                "[v3_ca]\nbasicConstraints=critical,CA:TRUE\n"
                "keyUsage=critical,keyCertSign,cRLSign\n"
                "subjectKeyIdentifier=hash\n"
                "authorityKeyIdentifier=keyid:always\n")
    with open(leaf_cnf, "w") as f:
        f.write("[req]\ndistinguished_name=dn\nprompt=no\n[dn]\nCN=localhost\n"
                "[leaf]\nbasicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n"
                "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n"
                "subjectKeyIdentifier=hash\n"
                "authorityKeyIdentifier=keyid\n")
    ca = os.path.join(tmpdir, "ca.pem")
    ca_key = os.path.join(tmpdir, "ca.key")
    cert = os.path.join(tmpdir, "cert.pem")
    key = os.path.join(tmpdir, "key.pem")
    csr = os.path.join(tmpdir, "leaf.csr")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
          "-nodes"]
    cmds = [
        ["openssl", "req", "-x509", "-new"] + ec +
        ["-config", ca_cnf, "-keyout", ca_key, "-out", ca, "-days", "7"],
        ["openssl", "req", "-new"] + ec +
        ["-config", leaf_cnf, "-keyout", key, "-out", csr],
        ["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key,
         "-set_serial", str(random.randrange(1, 1 << 62)), "-days", "7",
         "-extfile", leaf_cnf, "-extensions", "leaf", "-out", cert],
    ]
    for cmd in cmds:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if r.returncode != 0:
            raise RuntimeError("openssl failed: %s" %
                               r.stderr.decode(errors="replace").strip())
    # The CA file also holds the leaf so that a client given only "ca" can
    # trust the server either way.
    with open(ca, "ab") as out, open(cert, "rb") as leaf:
        out.write(leaf.read())
    return ca, cert, key


# --------------------------------------------------------------------------
# Requests and planned responses


class Request:
    def __init__(self, method, target, headers, body, http_ver):
        self.method = method
        self.target = target
        self.headers = headers          # list of (lowercase name, value)
        self.body = body
        self.http = http_ver            # "1.1" or "2"
        parts = urlsplit(target)
        self.path = parts.path or "/"
        self.query = parse_qs(parts.query)
        self.t0 = time.monotonic()      # read in full: the log's timing origin

    def header(self, name):
        for k, v in self.headers:
            if k == name:
                return v
        return None


class Plan:
    """What to answer: status, headers, the whole uncompressed body, and
    whether to send it in pieces."""

    def __init__(self, status, ctype, body, streamed, kind, headers=None,
                 fixture=None, synthetic=None):
        self.status = status
        self.ctype = ctype
        self.body = body
        self.streamed = streamed
        self.kind = kind
        self.headers = headers or []
        self.fixture = fixture
        self.synthetic = synthetic
        self.encoding = None            # forced coding from /enc/<e>/
        self.reset = False
        self.reset_after = None         # /reset/<N>/
        self.pause_ms = None            # /pause/<ms>/
        self.pieces = None              # /pieces/<n>/
        self.paced = False              # /paced/
        self.ttft_ms = None             # /ttft/<ms>/
        self.rate = None                # /rate/<events per second>/
        self.stall_ms = None            # /stall/<ms>/


def json_plan(status, obj, kind="error"):
    return Plan(status, "application/json", (jdump(obj) + "\n").encode(),
                False, kind)


# --------------------------------------------------------------------------
# Fixture replay


class Fixtures:
    def __init__(self, root):
        self.root = root
        # MANIFEST.tsv's http_status column covers the pasted error bodies
        # whose .meta.json records no status.
        self.manifest_status = {}
        try:
            with open(os.path.join(root, "MANIFEST.tsv"),
                      encoding="utf-8") as f:
                cols = f.readline().rstrip("\n").split("\t")
                i_file, i_st = cols.index("file"), cols.index("http_status")
                for line in f:
                    row = line.rstrip("\n").split("\t")
                    if len(row) > i_st and row[i_st].isdigit():
                        self.manifest_status[row[i_file]] = int(row[i_st])
        except (OSError, ValueError):
            pass

    def find(self, provider, name):
        """Return (body path, meta path or None) for <provider>/<name>."""
        if not (NAME_RE.match(provider) and NAME_RE.match(name)):
            return None, None
        pdir = os.path.join(self.root, provider)
        if not os.path.isdir(pdir):
            return None, None
        try:
            entries = sorted(os.listdir(pdir))
        except OSError:
            return None, None
        # "<name>.chunks" and "<name>" both find "<name>.chunks.jsonl".
        for ext in FIXTURE_EXTS:
            fn = name + ext
            if fn not in entries or fn.endswith(FIXTURE_SKIP):
                continue
            kind = next(e for e in FIXTURE_EXTS if fn.endswith(e))
            base = fn[:-len(kind)]
            metas = [base + ".chunks.meta.json"] if kind == ".chunks.jsonl" \
                else []
            metas.append(base + ".meta.json")
            meta = next((os.path.join(pdir, m) for m in metas
                         if m in entries), None)
            return os.path.join(pdir, fn), meta
        return None, None

    def plan(self, provider, name):
        path, meta_path = self.find(provider, name)
        if path is None:
            return json_plan(404, {"error": {
                "message": "no fixture %s/%s" % (provider, name),
                "type": "mock_fixture_not_found"}})
        with open(path, "rb") as f:
            body = f.read()
        meta = {}
        if meta_path:
            try:
                with open(meta_path, "rb") as f:
                    meta = json.load(f)
            except (OSError, ValueError):
                meta = {}
        fn = os.path.basename(path)
        rel = os.path.relpath(path, self.root)
        status = meta.get("status")
        if not isinstance(status, int) or not 100 <= status <= 999:
            status = self.manifest_status.get(rel)
        if status is None:
            m = re.match(r"^error-(\d{3})-", fn)
            status = int(m.group(1)) if m else 200
        ext = next(e for e in FIXTURE_EXTS if fn.endswith(e))
        if ext in (".chunks.jsonl", ".jsonl"):
            # vercel/ai recorded payloads only: frame them as SSE (NOTES.md 5).
            lines = [ln for ln in body.split(b"\n") if ln.strip()]
            body = b"".join(b"data: " + ln.rstrip(b"\r") + b"\n\n"
                            for ln in lines) + b"data: [DONE]\n\n"
            ctype = "text/event-stream"
        elif ext == ".sse":
            ctype = "text/event-stream"
        elif ext == ".ndjson":
            ctype = "application/x-ndjson"
        elif ext == ".eventstream":
            ctype = "application/vnd.amazon.eventstream"
        else:
            ctype = "application/json"
        extra = []
        hdrs = meta.get("response_headers")
        if isinstance(hdrs, dict):
            for k, v in sorted(hdrs.items()):
                if USAGE_HEADER_RE.match(k):
                    val = v[0] if isinstance(v, list) and v else v
                    if isinstance(val, (str, int)):
                        extra.append((k.lower(), str(val)))
        return Plan(status, ctype, body, ext in STREAM_EXTS, "fixture",
                    headers=extra, fixture=rel)


# --------------------------------------------------------------------------
# Synthetic responses


def text_of(x):
    """Concatenate the prompt text strings of a content value."""
    if isinstance(x, str):
        return x
    if isinstance(x, list):
        return "".join(text_of(e) for e in x)
    if isinstance(x, dict):
        if isinstance(x.get("text"), str):
            return x["text"]
        if "content" in x:
            return text_of(x["content"])
        if "parts" in x:
            return text_of(x["parts"])
    return ""


def ntok(s):
    return (len(s.encode("utf-8")) + 3) // 4


def has_key(obj, key):
    if isinstance(obj, dict):
        return key in obj or any(has_key(v, key) for v in obj.values())
    if isinstance(obj, list):
        return any(has_key(v, key) for v in obj)
    return False


def int_or_none(v):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return max(1, int(v))


def json_instance(schema, words):
    """A value that fits JSON schema `schema` (the subset Gemini takes); the
    first string gets the lorem words (a one-item list, emptied on use)."""
    if not isinstance(schema, dict):
        return None
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for k in ("anyOf", "oneOf"):
        if isinstance(schema.get(k), list) and schema[k]:
            return json_instance(schema[k][0], words)
    t = schema.get("type")
    if isinstance(t, list):
        t = next((x for x in t if str(x).lower() != "null"), "null")
    t = str(t or ("object" if "properties" in schema else "string")).lower()
    if t == "object":
        props = schema.get("properties")
        props = props if isinstance(props, dict) else {}
        return {k: json_instance(v, words) for k, v in props.items()}
    if t == "array":
        n = schema.get("minItems")
        n = int(n) if isinstance(n, (int, float)) and n > 0 else 0
        return [json_instance(schema.get("items"), words) for _ in range(n)]
    if t in ("number", "integer"):
        lo, hi = schema.get("minimum"), schema.get("maximum")
        v = lo if isinstance(lo, (int, float)) else 1
        return hi if isinstance(hi, (int, float)) and v > hi else v
    if t == "boolean":
        return False
    if t == "null":
        return None
    return words.pop() if words else ""


class Synth:
    def __init__(self):
        self.seen = set()
        self.seq = 0
        # The /words/<n>/ marker of the request being planned.  plan() is
        # synchronous, so no other request can see it meanwhile.
        self.words = None

    # -- shared pieces ----------------------------------------------------

    def _figures(self, model, prompt, max_tokens):
        h = int.from_bytes(hashlib.sha256(
            (model + "\0" + prompt).encode("utf-8")).digest()[:4], "big")
        natural = self.words if self.words is not None else 20 + h % 200
        out = natural if max_tokens is None else min(max_tokens, natural)
        cut = max_tokens is not None and max_tokens < natural
        words = [LOREM[(h + i) % len(LOREM)] for i in range(out)]
        return h, out, cut, words

    def _cache(self, family, system):
        """Returns (sys_tokens, seen_before) for a cacheable system prompt,
        (0, False) for one below the 1024-token minimum."""
        st = ntok(system)
        if st < 1024:
            return 0, False
        key = (family, hashlib.sha256(system.encode("utf-8")).digest())
        seen = key in self.seen
        self.seen.add(key)
        return st, seen

    def _id(self, prefix, h):
        self.seq += 1
        return "%smock%06d%08x" % (prefix, self.seq, h)

    # -- routing ----------------------------------------------------------

    def plan(self, req, path, words=None):
        self.words = words
        try:
            return self._plan(req, path)
        finally:
            self.words = None

    def _plan(self, req, path):
        if req.method != "POST":
            return json_plan(405, {"error": {"message": "use POST",
                                             "type": "invalid_request_error"}})
        api = None
        if path.endswith("/chat/completions"):
            api = "openai_chat"
        elif path.endswith("/v1/messages"):
            api = "anthropic"
        elif path.endswith("/responses"):
            api = "responses"
        elif path.endswith(":generateContent"):
            api = "gemini"
        elif path.endswith(":streamGenerateContent"):
            api = "gemini_stream"
        elif path.endswith("/api/chat"):
            api = "ollama_chat"
        elif path.endswith("/api/generate"):
            api = "ollama_generate"
        elif path.endswith("/embeddings"):
            api = "embeddings"
        if api is None:
            return json_plan(404, {"error": {"message": "unknown route",
                                             "type": "invalid_request_error"}})
        try:
            body = json.loads(req.body.decode("utf-8")) if req.body else {}
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except (ValueError, UnicodeDecodeError) as e:
            return self._error(api, 400, "invalid JSON body: %s" % e)
        return getattr(self, "_" + api.replace("_stream", ""))(req, path,
                                                               body, api)

    def _error(self, api, status, msg):
        if api == "anthropic":
            obj = {"type": "error", "error": {"type": "invalid_request_error",
                                              "message": msg}}
        elif api.startswith("gemini"):
            obj = {"error": {"code": status, "message": msg,
                             "status": "INVALID_ARGUMENT"}}
        elif api.startswith("ollama"):
            obj = {"error": msg}
        else:
            obj = {"error": {"message": msg, "type": "invalid_request_error",
                             "param": None, "code": None}}
        return json_plan(status, obj)

    def _done(self, api, ctype, chunks, streamed, info):
        body = "".join(chunks).encode("utf-8")
        return Plan(200, ctype, body, streamed, "synthetic", synthetic=info)

    # -- OpenAI chat completions -----------------------------------------

    def _openai_chat(self, req, path, body, api):
        model = body.get("model") if isinstance(body.get("model"), str) \
            else "gpt-4o-mini"
        msgs = body.get("messages") if isinstance(body.get("messages"),
                                                  list) else []
        system = ""
        for m in msgs:
            if isinstance(m, dict) and m.get("role") in ("system",
                                                         "developer"):
                system = text_of(m.get("content"))
                break
        prompt = "".join(text_of(m.get("content")) for m in msgs
                         if isinstance(m, dict))
        mt = int_or_none(body.get("max_completion_tokens"))
        if mt is None:
            mt = int_or_none(body.get("max_tokens"))
        h, out, cut, words = self._figures(model, prompt, mt)
        st, seen = self._cache("openai", system)
        pt = ntok(prompt)
        cached = st if seen else 0
        usage = {"prompt_tokens": pt, "completion_tokens": out,
                 "total_tokens": pt + out,
                 "prompt_tokens_details": {"cached_tokens": cached,
                                           "audio_tokens": 0},
                 "completion_tokens_details": {
                     "reasoning_tokens": 0, "audio_tokens": 0,
                     "accepted_prediction_tokens": 0,
                     "rejected_prediction_tokens": 0}}
        finish = "length" if cut else "stop"
        cid = self._id("chatcmpl-", h)
        created = int(time.time())
        stream = body.get("stream") is True
        so = body.get("stream_options")
        include_usage = stream and isinstance(so, dict) and \
            so.get("include_usage") is True
        info = {"api": "chat.completions", "model": model, "stream": stream,
                "include_usage": include_usage, "input_tokens": pt,
                "output_tokens": out, "cache_read_tokens": cached,
                "cache_write_tokens": None, "reasoning_tokens": 0,
                "usage_in_body": (not stream) or include_usage}
        text = " ".join(words)
        if not stream:
            obj = {"id": cid, "object": "chat.completion", "created": created,
                   "model": model,
                   "choices": [{"index": 0,
                                "message": {"role": "assistant",
                                            "content": text, "refusal": None,
                                            "annotations": []},
                                "logprobs": None, "finish_reason": finish}],
                   "usage": usage, "service_tier": "default",
                   "system_fingerprint": "fp_mock"}
            return self._done(api, "application/json", [jdump(obj)], False,
                              info)

        def chunk(delta, fin):
            c = {"id": cid, "object": "chat.completion.chunk",
                 "created": created, "model": model,
                 "service_tier": "default", "system_fingerprint": "fp_mock",
                 "choices": [{"index": 0, "delta": delta, "logprobs": None,
                              "finish_reason": fin}]}
            if include_usage:
                c["usage"] = None   # 2025 streams: "usage": null until the end
            return "data: " + jdump(c) + "\n\n"

        out_chunks = [chunk({"role": "assistant", "content": "",
                             "refusal": None}, None)]
        for i, w in enumerate(words):
            out_chunks.append(chunk({"content": w if i == 0 else " " + w},
                                    None))
        out_chunks.append(chunk({}, finish))
        if include_usage:
            out_chunks.append("data: " + jdump({
                "id": cid, "object": "chat.completion.chunk",
                "created": created, "model": model,
                "service_tier": "default", "system_fingerprint": "fp_mock",
                "choices": [], "usage": usage}) + "\n\n")
        out_chunks.append("data: [DONE]\n\n")
        return self._done(api, "text/event-stream; charset=utf-8", out_chunks,
                          True, info)

    # -- OpenAI embeddings ---------------------------------------------------

    def _embeddings(self, req, path, body, api):
        model = body.get("model") if isinstance(body.get("model"), str) \
            else "text-embedding-3-small"
        inp = body.get("input")
        items = inp if isinstance(inp, list) else [inp]
        texts = [x if isinstance(x, str) else "" for x in items]
        pt = ntok("".join(texts))
        data = []
        for i, t in enumerate(texts):
            d = hashlib.sha256(t.encode("utf-8")).digest()
            data.append({"object": "embedding", "index": i,
                         "embedding": [round(b / 255.0 - 0.5, 6)
                                       for b in d[:8]]})
        obj = {"object": "list", "data": data, "model": model,
               "usage": {"prompt_tokens": pt, "total_tokens": pt}}
        info = {"api": "embeddings", "model": model, "stream": False,
                "input_tokens": pt, "output_tokens": None,
                "cache_read_tokens": None, "cache_write_tokens": None,
                "reasoning_tokens": None, "usage_in_body": True}
        return self._done(api, "application/json", [jdump(obj)], False, info)

    # -- Anthropic messages ------------------------------------------------

    def _anthropic(self, req, path, body, api):
        model = body.get("model") if isinstance(body.get("model"), str) \
            else "claude-3-5-haiku-latest"
        system = text_of(body.get("system"))
        msgs = body.get("messages") if isinstance(body.get("messages"),
                                                  list) else []
        prompt = system + "".join(text_of(m.get("content")) for m in msgs
                                  if isinstance(m, dict))
        mt = int_or_none(body.get("max_tokens"))
        h, out, cut, words = self._figures(model, prompt, mt)
        st, seen = self._cache("anthropic", system)
        total = ntok(prompt)
        read = write = 0
        if st and seen:
            read = st
        elif st and has_key(body, "cache_control"):
            write = st
        inp = total - read - write
        stop = "max_tokens" if cut else "end_turn"
        mid = self._id("msg_", h)
        usage = {"input_tokens": inp, "cache_creation_input_tokens": write,
                 "cache_read_input_tokens": read,
                 "cache_creation": {"ephemeral_5m_input_tokens": write,
                                    "ephemeral_1h_input_tokens": 0},
                 "output_tokens": out, "service_tier": "standard"}
        stream = body.get("stream") is True
        info = {"api": "messages", "model": model, "stream": stream,
                "input_tokens": total, "output_tokens": out,
                "cache_read_tokens": read, "cache_write_tokens": write,
                "reasoning_tokens": 0, "usage_in_body": True,
                "raw_input_tokens": inp}
        text = " ".join(words)
        if not stream:
            obj = {"id": mid, "type": "message", "role": "assistant",
                   "model": model,
                   "content": [{"type": "text", "text": text}],
                   "stop_reason": stop, "stop_sequence": None,
                   "usage": usage}
            return self._done(api, "application/json", [jdump(obj)], False,
                              info)

        def ev(name, obj):
            return "event: %s\ndata: %s\n\n" % (name, jdump(obj))

        start_usage = dict(usage, output_tokens=1)
        chunks = [ev("message_start", {"type": "message_start", "message": {
            "id": mid, "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": start_usage}}),
            ev("content_block_start", {"type": "content_block_start",
                                       "index": 0, "content_block": {
                                           "type": "text", "text": ""}}),
            "event: ping\ndata: {\"type\": \"ping\"}\n\n"]
        for i, w in enumerate(words):
            chunks.append(ev("content_block_delta", {
                "type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta",
                          "text": w if i == 0 else " " + w}}))
        chunks.append(ev("content_block_stop", {"type": "content_block_stop",
                                                "index": 0}))
        chunks.append(ev("message_delta", {
            "type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": None},
            "usage": {"input_tokens": inp,
                      "cache_creation_input_tokens": write,
                      "cache_read_input_tokens": read,
                      "output_tokens": out}}))
        chunks.append(ev("message_stop", {"type": "message_stop"}))
        return self._done(api, "text/event-stream; charset=utf-8", chunks,
                          True, info)

    # -- OpenAI Responses ----------------------------------------------------

    def _responses(self, req, path, body, api):
        model = body.get("model") if isinstance(body.get("model"), str) \
            else "gpt-4o-mini"
        instr = body.get("instructions") \
            if isinstance(body.get("instructions"), str) else ""
        inp = body.get("input")
        system = instr
        if isinstance(inp, str):
            prompt = instr + inp
        else:
            items = inp if isinstance(inp, list) else []
            if not system:
                for it in items:
                    if isinstance(it, dict) and it.get("role") in (
                            "system", "developer"):
                        system = text_of(it.get("content"))
                        break
            prompt = instr + "".join(text_of(it) for it in items)
        mt = int_or_none(body.get("max_output_tokens"))
        h, out, cut, words = self._figures(model, prompt, mt)
        st, seen = self._cache("openai", system)
        it_ = ntok(prompt)
        cached = st if seen else 0
        usage = {"input_tokens": it_,
                 "input_tokens_details": {"cached_tokens": cached},
                 "output_tokens": out,
                 "output_tokens_details": {"reasoning_tokens": 0},
                 "total_tokens": it_ + out}
        rid = self._id("resp_", h)
        msg_id = "msg_" + rid[5:]
        text = " ".join(words)
        stream = body.get("stream") is True
        status = "incomplete" if cut else "completed"
        info = {"api": "responses", "model": model, "stream": stream,
                "input_tokens": it_, "output_tokens": out,
                "cache_read_tokens": cached, "cache_write_tokens": None,
                "reasoning_tokens": 0, "usage_in_body": True}

        def response(state, with_output, with_usage):
            part = {"type": "output_text", "text": text, "annotations": [],
                    "logprobs": []}
            return {
                "id": rid, "object": "response", "created_at": int(time.time()),
                "status": state, "background": False, "error": None,
                "incomplete_details": {"reason": "max_output_tokens"}
                if state == "incomplete" else None,
                # The real API echoes the instructions; the mock does not, so
                # that no prompt text sits in its body copies.
                "instructions": None, "max_output_tokens": mt,
                "model": model,
                "output": [{"id": msg_id, "type": "message",
                            "status": state, "role": "assistant",
                            "content": [part]}] if with_output else [],
                "parallel_tool_calls": True, "previous_response_id": None,
                "reasoning": {"effort": None, "summary": None},
                "service_tier": "default", "store": True, "temperature": 1.0,
                "text": {"format": {"type": "text"}, "verbosity": "medium"},
                "tool_choice": "auto", "tools": [], "top_p": 1.0,
                "truncation": "disabled",
                "usage": usage if with_usage else None,
                "user": None, "metadata": {}}

        if not stream:
            return self._done(api, "application/json",
                              [jdump(response(status, True, True))], False,
                              info)
        seq = [0]

        def ev(name, obj):
            obj = dict({"type": name}, **obj)
            obj["sequence_number"] = seq[0]
            seq[0] += 1
            return "event: %s\ndata: %s\n\n" % (name, jdump(obj))

        chunks = [ev("response.created",
                     {"response": response("in_progress", False, False)}),
                  ev("response.in_progress",
                     {"response": response("in_progress", False, False)}),
                  ev("response.output_item.added", {
                      "output_index": 0,
                      "item": {"id": msg_id, "type": "message",
                               "status": "in_progress", "role": "assistant",
                               "content": []}}),
                  ev("response.content_part.added", {
                      "item_id": msg_id, "output_index": 0,
                      "content_index": 0,
                      "part": {"type": "output_text", "text": "",
                               "annotations": [], "logprobs": []}})]
        for i, w in enumerate(words):
            chunks.append(ev("response.output_text.delta", {
                "item_id": msg_id, "output_index": 0, "content_index": 0,
                "delta": w if i == 0 else " " + w, "logprobs": []}))
        chunks.append(ev("response.output_text.done", {
            "item_id": msg_id, "output_index": 0, "content_index": 0,
            "text": text, "logprobs": []}))
        chunks.append(ev("response.content_part.done", {
            "item_id": msg_id, "output_index": 0, "content_index": 0,
            "part": {"type": "output_text", "text": text, "annotations": [],
                     "logprobs": []}}))
        chunks.append(ev("response.output_item.done", {
            "output_index": 0,
            "item": {"id": msg_id, "type": "message", "status": status,
                     "role": "assistant",
                     "content": [{"type": "output_text", "text": text,
                                  "annotations": [], "logprobs": []}]}}))
        chunks.append(ev("response." + status,
                         {"response": response(status, True, True)}))
        return self._done(api, "text/event-stream; charset=utf-8", chunks,
                          True, info)

    # -- Gemini ----------------------------------------------------------------

    def _gemini(self, req, path, body, api):
        m = re.search(r"models/([^/:]+):", path)
        model = unquote(m.group(1)) if m else "gemini-2.0-flash"
        system = text_of(body.get("systemInstruction"))
        contents = body.get("contents")
        if isinstance(contents, dict):
            contents = [contents]
        contents = contents if isinstance(contents, list) else []
        prompt = system + "".join(text_of(c) for c in contents)
        gc = body.get("generationConfig")
        mt = int_or_none(gc.get("maxOutputTokens")) \
            if isinstance(gc, dict) else None
        h, out, cut, words = self._figures(model, prompt, mt)
        pt = ntok(prompt)
        finish = "MAX_TOKENS" if cut else "STOP"
        rid = self._id("", h)
        stream = api == "gemini_stream"
        sse = stream and "sse" in req.query.get("alt", [])
        as_json = isinstance(gc, dict) and \
            gc.get("responseMimeType") == "application/json"
        if as_json:
            schema = gc.get("responseJsonSchema", gc.get("responseSchema"))
            as_json = jdump(json_instance(schema, [" ".join(words)]))
        info = {"api": "generate_content", "model": model, "stream": stream,
                "input_tokens": pt, "output_tokens": out,
                "cache_read_tokens": None, "cache_write_tokens": None,
                "reasoning_tokens": None, "usage_in_body": True}

        def resp(text, fin, cand_tokens):
            um = {"promptTokenCount": pt}
            if cand_tokens is not None:
                um["candidatesTokenCount"] = cand_tokens
            um["totalTokenCount"] = pt + (cand_tokens or 0)
            um["promptTokensDetails"] = [{"modality": "TEXT",
                                          "tokenCount": pt}]
            cand = {"content": {"parts": [{"text": text}], "role": "model"},
                    "index": 0}
            if fin:
                cand["finishReason"] = fin
            return {"candidates": [cand], "usageMetadata": um,
                    "modelVersion": model, "responseId": rid}

        if not stream:
            text = as_json if as_json else " ".join(words)
            return self._done(api, "application/json",
                              [jdump(resp(text, finish, out))],
                              False, info)
        # A chunk per 8 words; every chunk repeats usageMetadata as a
        # snapshot (intermediate ones without candidatesTokenCount, like the
        # recorded gemini-2.0-flash stream), the last one carries the totals.
        objs = [resp(as_json, finish, out)] if as_json else []
        step = 8
        for i in range(0, 0 if as_json else max(len(words), 1), step):
            part = words[i:i + step]
            txt = ("" if i == 0 else " ") + " ".join(part)
            last = i + step >= len(words)
            objs.append(resp(txt, finish if last else None,
                             out if last else None))
        if sse:
            chunks = ["data: " + jdump(o) + "\r\n\r\n" for o in objs]
            ctype = "text/event-stream"
        else:
            chunks = ["[" + ",\r\n".join(json.dumps(o, indent=2)
                                        for o in objs) + "]"]
            ctype = "application/json; charset=UTF-8"
        return self._done(api, ctype, chunks, True, info)

    # -- Ollama ------------------------------------------------------------------

    def _ollama_chat(self, req, path, body, api):
        return self._ollama(req, body, api, chat=True)

    def _ollama_generate(self, req, path, body, api):
        return self._ollama(req, body, api, chat=False)

    def _ollama(self, req, body, api, chat):
        model = body.get("model") if isinstance(body.get("model"), str) \
            else "llama3.2"
        if chat:
            msgs = body.get("messages") if isinstance(body.get("messages"),
                                                      list) else []
            prompt = "".join(text_of(m.get("content")) for m in msgs
                             if isinstance(m, dict))
        else:
            prompt = text_of(body.get("system")) + text_of(body.get("prompt"))
        opts = body.get("options")
        mt = int_or_none(opts.get("num_predict")) \
            if isinstance(opts, dict) else None
        h, out, cut, words = self._figures(model, prompt, mt)
        key = ("ollama", hashlib.sha256(
            (model + "\0" + prompt).encode("utf-8")).digest())
        kv_hit = key in self.seen
        self.seen.add(key)
        pt = ntok(prompt)
        stream = body.get("stream") is not False      # Ollama's default
        info = {"api": "ollama.chat" if chat else "ollama.generate",
                "model": model, "stream": stream,
                "input_tokens": 0 if kv_hit else pt, "output_tokens": out,
                "cache_read_tokens": None, "cache_write_tokens": None,
                "reasoning_tokens": None, "usage_in_body": True,
                "prompt_eval_count_omitted": kv_hit}
        now = time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime())

        def piece(text, done):
            o = {"model": model, "created_at": now}
            if chat:
                o["message"] = {"role": "assistant", "content": text}
            else:
                o["response"] = text
            o["done"] = done
            if done:
                o["done_reason"] = "length" if cut else "stop"
                o["total_duration"] = 1000000 * (out + 5)
                o["load_duration"] = 1000000
                if not kv_hit:
                    o["prompt_eval_count"] = pt
                o["prompt_eval_duration"] = 100000 * (pt + 1)
                o["eval_count"] = out
                o["eval_duration"] = 1000000 * out
            return o

        if not stream:
            return self._done(api, "application/json",
                              [jdump(piece(" ".join(words), True))], False,
                              info)
        chunks = [jdump(piece(w if i == 0 else " " + w, False)) + "\n"
                  for i, w in enumerate(words)]
        chunks.append(jdump(piece("", True)) + "\n")
        return self._done(api, "application/x-ndjson", chunks, True, info)


# --------------------------------------------------------------------------
# Content codings


class Encoder:
    """Stateful content coder; each piece is flushed so the client can
    decode it as soon as it arrives."""

    def __init__(self, name):
        self.name = name
        if name == "gzip":
            self.c = zlib.compressobj(6, zlib.DEFLATED, 31)
        elif name == "br":
            self.c = brotli.Compressor()
        elif name == "zstd":
            self.c = zstandard.ZstdCompressor().compressobj()
        else:
            self.c = None

    def piece(self, data, last):
        if self.c is None:
            return data
        if self.name == "gzip":
            return self.c.compress(data) + self.c.flush(
                zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)
        if self.name == "br":
            out = self.c.process(data)
            return out + (self.c.finish() if last else self.c.flush())
        out = self.c.compress(data)
        return out + self.c.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH if last
                                  else zstandard.COMPRESSOBJ_FLUSH_BLOCK)


def available_encodings():
    enc = ["gzip"]
    if brotli is not None:
        enc.append("br")
    if zstandard is not None:
        enc.append("zstd")
    return enc


def choose_encoding(accept, prefer):
    if not accept:
        return "identity"
    acc = {}
    for item in accept.split(","):
        parts = item.strip().split(";")
        name = parts[0].strip().lower()
        q = 1.0
        for p in parts[1:]:
            p = p.strip()
            if p.startswith("q="):
                try:
                    q = float(p[2:])
                except ValueError:
                    q = 0.0
        if name:
            acc[name] = q
    for e in prefer:
        if acc.get(e, 0.0) > 0:
            return e
    return "identity"


# --------------------------------------------------------------------------
# Pacing


SSE_EVENT_END = re.compile(rb"\r?\n\r?\n")
LINE_END = re.compile(rb"\n")
JSON_WS = " \t\r\n"


def json_array_cuts(body):
    """Offsets just past each top-level element of a JSON array, its comma
    and the whitespace after that ("[{..}\n,\r\n{..}]": before the second
    "{"), so each event starts with its element; [] when the body is not a
    JSON array.  raw_decode does the scanning in C: a big array costs little
    time on the event loop."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return []
    ascii_only = len(text) == len(body)
    dec = json.JSONDecoder()
    n = len(text)
    i = 0
    while i < n and text[i] in JSON_WS:
        i += 1
    if i >= n or text[i] != "[":
        return []
    i += 1
    cuts, pos, byte_pos = [], 0, 0
    while True:
        while i < n and text[i] in JSON_WS:
            i += 1
        if i >= n or text[i] == "]":
            break
        try:
            _, i = dec.raw_decode(text, i)
        except ValueError:
            break
        while i < n and text[i] in JSON_WS:
            i += 1
        if i >= n or text[i] != ",":
            break
        i += 1
        while i < n and text[i] in JSON_WS:
            i += 1
        # Character offsets to byte offsets, a slice at a time.
        byte_pos += (i - pos) if ascii_only else \
            len(text[pos:i].encode("utf-8"))
        pos = i
        cuts.append(byte_pos)
    return cuts


def eventstream_cuts(body):
    """AWS eventstream: each message starts with its total length (4 bytes,
    big-endian, the whole message included; 16 bytes at least)."""
    cuts, pos = [], 0
    while pos + 16 <= len(body):
        total = struct.unpack_from(">I", body, pos)[0]
        if total < 16 or pos + total > len(body):
            break
        pos += total
        cuts.append(pos)
    return cuts


def split_events(body, ctype):
    """Cut a streamed body into its events; b"".join(result) == body.  What
    is left after the last boundary (an unterminated event, a JSON array's
    last element and "]") is an event too."""
    ct = ctype.split(";")[0].strip().lower()
    if ct == "text/event-stream":
        cuts = [m.end() for m in SSE_EVENT_END.finditer(body)]
    elif ct == "application/vnd.amazon.eventstream":
        cuts = eventstream_cuts(body)
    elif ct == "application/json":
        cuts = json_array_cuts(body)
    else:                       # NDJSON, and any other line-based body
        cuts = [m.end() for m in LINE_END.finditer(body)]
    out, prev = [], 0
    for c in cuts:
        if prev < c < len(body):
            out.append(body[prev:c])
            prev = c
    if prev < len(body):
        out.append(body[prev:])
    return out


class Clock:
    """The timing of one response for its log line, in seconds of
    time.monotonic(); the log turns it into ms from the request read."""

    def __init__(self, t0):
        self.t0 = t0
        self.first = None           # start of the first body write
        self.last_write = None      # end of the latest body write
        self.end = None             # end of the latest write, head included
        self.max_gap = None

    def before_write(self, nbytes):
        if not nbytes:
            return
        now = time.monotonic()
        if self.first is None:
            self.first = now
        if self.last_write is not None:
            gap = now - self.last_write
            if self.max_gap is None or gap > self.max_gap:
                self.max_gap = gap

    def after_write(self, nbytes):
        self.end = time.monotonic()
        if nbytes:
            self.last_write = self.end

    def fields(self):
        def ms(t):
            return None if t is None else round((t - self.t0) * 1000, 1)
        return {"ttft_ms": ms(self.first), "duration_ms": ms(self.end),
                "max_gap_ms": None if self.max_gap is None
                else round(self.max_gap * 1000, 1)}


# --------------------------------------------------------------------------
# Server


class Server:
    def __init__(self, args):
        self.args = args
        self.fixtures = Fixtures(args.fixtures) if args.fixtures else None
        self.synth = Synth()
        self.log_seq = 0
        self.conn_seq = 0
        self.conns = set()
        self.log_fp = None
        self.log_dir = None
        avail = available_encodings()
        want = [e.strip() for e in args.encodings.split(",") if e.strip()]
        self.prefer = [] if args.no_gzip else [e for e in want if e in avail]
        self.avail = avail
        if args.log:
            self.log_fp = open(args.log, "a", encoding="utf-8")
            self.log_dir = args.log_dir or (args.log + ".d")
            os.makedirs(self.log_dir, exist_ok=True)

    # -- routing ------------------------------------------------------------

    def route(self, req):
        segs = req.path.split("/")
        # Strip markers from the front: "", "reset", "chunked", "enc", <e>.
        i = 1
        reset = chunked = paced = False
        enc = None
        reset_n = pause = pieces = ttft = rate = stall = words = None
        while i < len(segs):
            s = segs[i]
            nxt = segs[i + 1] if i + 1 < len(segs) else ""
            if s == "reset":
                reset = True
                i += 1
                if nxt.isdigit() and len(nxt) <= 9:
                    reset_n = int(nxt)
                    i += 1
            elif s == "pause" and nxt.isdigit() and len(nxt) <= 5:
                pause = min(int(nxt), 10000)
                i += 2
            elif s == "pieces" and nxt.isdigit() and len(nxt) <= 5:
                pieces = max(1, min(int(nxt), 10000))
                i += 2
            elif s == "chunked":
                chunked = True
                i += 1
            elif s == "paced":
                paced = True
                i += 1
            elif s == "ttft" and nxt.isdigit() and len(nxt) <= 9:
                ttft = min(int(nxt), MAX_WAIT_MS)
                i += 2
            elif s == "rate" and nxt.isdigit() and len(nxt) <= 9:
                rate = max(1, min(int(nxt), 1000))
                i += 2
            elif s == "stall" and nxt.isdigit() and len(nxt) <= 9:
                stall = min(int(nxt), MAX_WAIT_MS)
                i += 2
            elif s == "words" and nxt.isdigit() and len(nxt) <= 9:
                words = min(int(nxt), 100000)
                i += 2
            elif s == "enc" and i + 1 < len(segs):
                enc = segs[i + 1]
                i += 2
            else:
                break
        rest = "/" + "/".join(segs[i:])
        if enc is not None and enc != "identity" and enc not in self.avail:
            plan = json_plan(400, {"error": {
                "message": "coding %s not available" % enc,
                "type": "mock_bad_marker"}})
        elif rest in ("/healthz", "/health"):
            plan = json_plan(200, {"status": "ok"}, kind="health")
        elif len(segs) > i + 2 and segs[i] == "fx":
            if self.fixtures is None:
                plan = json_plan(404, {"error": {
                    "message": "no fixtures directory",
                    "type": "mock_fixture_not_found"}})
            else:
                plan = self.fixtures.plan(segs[i + 1], segs[i + 2])
        else:
            plan = self.synth.plan(req, rest, words)
        if chunked:
            plan.streamed = True
        plan.reset = reset
        plan.reset_after = reset_n
        plan.pause_ms = pause
        plan.pieces = pieces
        plan.encoding = enc
        plan.paced = paced or (self.args.pace == "realistic" and
                               plan.streamed)
        plan.ttft_ms = ttft
        plan.rate = rate
        plan.stall_ms = stall
        return plan

    # -- response pipeline ----------------------------------------------------

    def pieces(self, body, streamed, want=None):
        """Split a streamed body at pseudo-random offsets (seeded by the body,
        so a replay splits alike), deliberately not on event boundaries."""
        want = want or self.args.pieces
        if not streamed or len(body) < 2 or want < 2:
            return [body]
        n = min(want, len(body))
        rng = random.Random(hashlib.sha256(body).digest())
        cuts = sorted(rng.sample(range(1, len(body)), n - 1))
        out, prev = [], 0
        for c in cuts + [len(body)]:
            out.append(body[prev:c])
            prev = c
        return out

    def schedule(self, plan, body, rng):
        """Plan how the body goes out.  Returns (ttft, writes, paced): the
        wait before the first body byte (s); the writes, each [gap s,
        stall s, bytes, ends an event]; paced when the body goes event by
        event, its gaps then counted on the clock from the first write."""
        if plan.ttft_ms is not None:
            ttft = plan.ttft_ms / 1000.0
        else:
            ttft = rng.uniform(0.5, 2.0) if plan.paced else 0.0
        streamed = plan.streamed
        paced = streamed and (plan.paced or plan.rate is not None)
        events = split_events(body, plan.ctype) \
            if paced or (streamed and plan.stall_ms) else []
        if paced:
            n = len(events)
            if plan.rate is not None:
                # Jitter of +-50% around 1/rate, then scaled so that the
                # mean is exact: a test can count on (n-1)/rate.
                gaps = [rng.uniform(0.5, 1.5) for _ in range(n - 1)]
                scale = (n - 1) / plan.rate / sum(gaps) if gaps else 0.0
                gaps = [g * scale for g in gaps]
            else:
                gaps = [rng.uniform(0.0125, 0.05) for _ in range(n - 1)]
            writes = []
            for k, ev in enumerate(events):
                gap = gaps[k - 1] if k else 0.0
                if len(ev) >= 2 and rng.random() < SPLIT_EVENT_P:
                    # Now and then an event in two writes, back to back:
                    # two TLS records, two chunks or two DATA frames.
                    c = rng.randrange(1, len(ev))
                    writes += [[gap, 0.0, ev[:c], False],
                               [0.0, 0.0, ev[c:], True]]
                else:
                    writes.append([gap, 0.0, ev, True])
            if not writes:
                writes = [[0.0, 0.0, b"", False]]
        else:
            pause = (plan.pause_ms if plan.pause_ms is not None
                     else self.args.pause_ms) / 1000.0
            parts = self.pieces(body, True, plan.pieces) if streamed \
                else [body]
            writes = [[pause if k else 0.0, 0.0, p, False]
                      for k, p in enumerate(parts)]
        if streamed and plan.stall_ms:
            # The silence goes at the event boundary after half the events,
            # splitting the write that spans it if need be.
            if len(events) >= 2:
                at = sum(len(e) for e in events[:len(events) // 2])
            else:
                at = len(body) // 2
            pos = 0
            for k, w in enumerate(writes):
                if pos == at or pos < at < pos + len(w[2]):
                    if pos < at:
                        c = at - pos
                        writes[k:k + 1] = [[w[0], w[1], w[2][:c], False],
                                           [0.0, 0.0, w[2][c:], w[3]]]
                        k += 1
                    writes[k][1] = plan.stall_ms / 1000.0
                    break
                pos += len(w[2])
        return ttft, writes, paced

    async def respond(self, req, out, conn_id):
        """Answer one request through `out` (an H1Out or H2Out); log it."""
        try:
            plan = self.route(req)
        except Exception as e:  # a bug in a plan must not kill the server
            log_err("internal error on %s: %r" % (req.path, e))
            plan = json_plan(500, {"error": {"message": "mock internal error",
                                             "type": "mock_internal"}})
        enc = plan.encoding
        if enc is None:
            enc = choose_encoding(req.header("accept-encoding"), self.prefer)
        headers = [("content-type", plan.ctype)]
        if enc != "identity":
            headers.append(("content-encoding", enc))
        headers += plan.headers
        body = plan.body
        limit = None
        if plan.reset:
            limit = plan.reset_after if plan.reset_after is not None \
                else self.args.reset_after_bytes
        # Seeded by body and path (markers included): a replay paces alike.
        rng = random.Random(hashlib.sha256(
            body + b"\0" + req.path.encode("utf-8", "replace")).digest())
        ttft, writes, paced = self.schedule(plan, body, rng)
        clock = Clock(req.t0)
        events = 0 if paced else None
        sent = bytearray()
        complete = False
        try:
            if not plan.streamed and ttft > 0:
                # A non-streamed answer comes once the model has finished:
                # all of it waits, head included.
                await asyncio.sleep(ttft)
            if not plan.streamed and limit is None:
                data = body if enc == "identity" else \
                    Encoder(enc).piece(body, True)
                await out.start(plan.status, headers, len(data))
                clock.after_write(0)
                clock.before_write(len(body))
                await out.write(data, last=True)
                clock.after_write(len(body))
                sent += body
            else:
                await out.start(plan.status, headers, None)
                clock.after_write(0)
                coder = Encoder(enc)
                if plan.streamed and ttft > 0:
                    # The head is out; the first token takes its time.
                    await asyncio.sleep(ttft)
                target = time.monotonic()
                for k, (gap, stall, p, ends) in enumerate(writes):
                    if stall:
                        await asyncio.sleep(stall)
                        target = time.monotonic()
                    if paced:
                        # On the clock: a write held up (a slow reader, a
                        # busy machine) does not push back the ones after.
                        target += gap
                        delay = target - time.monotonic()
                        if delay > 0:
                            await asyncio.sleep(delay)
                    elif k:
                        await asyncio.sleep(gap)
                    last = k == len(writes) - 1
                    if limit is not None and len(sent) + len(p) >= limit:
                        p = p[:max(0, limit - len(sent))]
                        clock.before_write(len(p))
                        await out.write(coder.piece(p, False), last=False)
                        clock.after_write(len(p))
                        sent += p
                        await out.drain()
                        out.abort()
                        raise ClientGone("reset by /reset/ marker")
                    clock.before_write(len(p))
                    await out.write(coder.piece(p, last), last=last)
                    clock.after_write(len(p))
                    sent += p
                    if ends and events is not None:
                        events += 1
            complete = True
        except ClientGone:
            pass
        finally:
            timing = clock.fields()
            timing["events"] = events
            self.log(req, plan, enc, bytes(sent), complete, conn_id, timing)
        return complete

    def log(self, req, plan, enc, sent, complete, conn_id, timing):
        if self.log_fp is None:
            return
        self.log_seq += 1
        sha = hashlib.sha256(sent).hexdigest()
        bf = os.path.join(self.log_dir, "%06d-%s.body" % (self.log_seq,
                                                          sha[:12]))
        try:
            with open(bf, "wb") as f:
                f.write(sent)
            entry = {"seq": self.log_seq, "conn": conn_id,
                     "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                     "method": req.method, "path": req.path,
                     "fixture": plan.fixture, "kind": plan.kind,
                     "status": plan.status, "http": req.http,
                     "encoding": enc, "streamed": plan.streamed,
                     "complete": complete, "reset": plan.reset,
                     "request_bytes": len(req.body),
                     "body_bytes": len(sent), "body_sha256": sha,
                     "body_file": os.path.abspath(bf),
                     "usage_headers": dict(plan.headers),
                     "synthetic": plan.synthetic,
                     "ttft_ms": timing["ttft_ms"],
                     "duration_ms": timing["duration_ms"],
                     "events": timing["events"],
                     "max_gap_ms": timing["max_gap_ms"]}
            self.log_fp.write(jdump(entry) + "\n")
            self.log_fp.flush()
        except OSError as e:
            log_err("log: %s" % e)

    # -- connections ---------------------------------------------------------

    async def on_conn(self, reader, writer):
        self.conn_seq += 1
        cid = self.conn_seq
        task = asyncio.current_task()
        self.conns.add(task)
        try:
            sslobj = writer.get_extra_info("ssl_object")
            alpn = sslobj.selected_alpn_protocol() if sslobj else None
            if alpn == "h2":
                await H2Conn(self, reader, writer, cid).run(b"")
            else:
                await H1Conn(self, reader, writer, cid).run()
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError,
                ClientGone, OSError):
            pass
        except asyncio.CancelledError:
            pass
        except Exception as e:
            log_err("connection %d: %r" % (cid, e))
        finally:
            self.conns.discard(task)
            try:
                writer.close()
            except Exception:
                pass


class H1Out:
    def __init__(self, conn, keep_alive, http10):
        self.c = conn
        self.w = conn.w
        self.keep = keep_alive
        self.http10 = http10
        self.chunked = False

    def _check(self):
        if self.w.is_closing():
            raise ClientGone()

    async def start(self, status, headers, length):
        lines = ["HTTP/1.1 %d %s" % (status, reason_phrase(status)),
                 "Date: " + time.strftime("%a, %d %b %Y %H:%M:%S GMT",
                                          time.gmtime()),
                 "Server: " + SERVER]
        for k, v in headers:
            lines.append("%s: %s" % (k, v))
        if length is not None:
            lines.append("Content-Length: %d" % length)
        elif self.http10:
            self.keep = False           # close-delimited body
        else:
            self.chunked = True
            lines.append("Transfer-Encoding: chunked")
        lines.append("Connection: " + ("keep-alive" if self.keep else "close"))
        self._check()
        self.w.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await self.drain()

    async def write(self, data, last):
        self._check()
        if self.chunked:
            buf = b""
            if data:
                buf = b"%x\r\n" % len(data) + data + b"\r\n"
            if last:
                buf += b"0\r\n\r\n"
            self.w.write(buf)
        elif data:
            self.w.write(data)
        await self.drain()

    async def drain(self):
        try:
            await self.w.drain()
        except (ConnectionError, OSError, ssl.SSLError):
            raise ClientGone()

    def abort(self):
        self.c.abort()


class H1Conn:
    """HTTP/1.1 (RFC 9112) with keep-alive, pipelining, Content-Length and
    chunked request bodies, Expect: 100-continue; also spots an HTTP/2
    prior-knowledge preface and hands the connection to H2Conn."""

    def __init__(self, server, reader, writer, cid):
        self.s = server
        self.r = reader
        self.w = writer
        self.cid = cid

    def abort(self):
        sock = self.w.get_extra_info("socket")
        try:
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.w.transport.abort()

    async def simple(self, status, msg):
        body = (jdump({"error": {"message": msg,
                                 "type": "invalid_request_error"}}) +
                "\n").encode()
        self.w.write(("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                      "Content-Length: %d\r\nConnection: close\r\n\r\n" %
                      (status, reason_phrase(status), len(body))).encode() +
                     body)
        try:
            await self.w.drain()
        except (ConnectionError, OSError):
            pass

    async def run(self):
        while True:
            try:
                head = await self.r.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return
            except asyncio.LimitOverrunError:
                await self.simple(431, "request head too large")
                return
            if head.startswith(b"PRI * HTTP/2.0\r\n"):
                await H2Conn(self.s, self.r, self.w, self.cid).run(head)
                return
            lines = head[:-4].split(b"\r\n")
            try:
                method, target, version = lines[0].decode("latin-1").split(
                    " ")
                if not version.startswith("HTTP/1."):
                    raise ValueError(version)
                headers = []
                for ln in lines[1:]:
                    k, sep, v = ln.decode("latin-1").partition(":")
                    if not sep or not k or k != k.strip():
                        raise ValueError("bad header")
                    headers.append((k.lower(), v.strip()))
            except ValueError:
                await self.simple(400, "malformed request")
                return
            hd = {}
            for k, v in headers:
                hd[k] = hd[k] + "," + v if k in hd else v
            http10 = version == "HTTP/1.0"
            conn_tokens = [t.strip().lower()
                           for t in hd.get("connection", "").split(",")]
            keep = not http10 and "close" not in conn_tokens
            te = hd.get("transfer-encoding", "").lower()
            cl = hd.get("content-length")
            has_body = "chunked" in te or (cl is not None and cl != "0")
            if hd.get("expect", "").lower() == "100-continue" and has_body:
                self.w.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                await self.w.drain()
            cap = self.s.args.max_body
            body = bytearray()
            if "chunked" in te:
                while True:
                    line = await self.r.readuntil(b"\r\n")
                    try:
                        size = int(line.split(b";")[0].strip(), 16)
                    except ValueError:
                        await self.simple(400, "bad chunk size")
                        return
                    if size == 0:
                        # Trailer section, up to the empty line.
                        while (await self.r.readuntil(b"\r\n")) != b"\r\n":
                            pass
                        break
                    if len(body) + size > cap:
                        await self.simple(413, "request body too large")
                        return
                    body += await self.r.readexactly(size)
                    if await self.r.readexactly(2) != b"\r\n":
                        await self.simple(400, "bad chunk end")
                        return
            elif cl is not None:
                if not cl.strip().isdigit():
                    await self.simple(400, "bad content-length")
                    return
                n = int(cl.strip())
                if n > cap:
                    await self.simple(413, "request body too large")
                    return
                body = await self.r.readexactly(n)
            body = decode_request_body(bytes(body),
                                       hd.get("content-encoding"))
            req = Request(method, target, headers, body, "1.1")
            out = H1Out(self, keep, http10)
            done = await self.s.respond(req, out, self.cid)
            if not done or not out.keep:
                return


def decode_request_body(body, coding):
    if not coding or not body:
        return body
    try:
        if coding.strip().lower() == "gzip":
            return gzip.decompress(body)
        if coding.strip().lower() == "deflate":
            return zlib.decompress(body)
    except (OSError, zlib.error, EOFError):
        pass
    return body


class H2Out:
    def __init__(self, conn, sid):
        self.c = conn
        self.sid = sid
        self.ended = False

    async def start(self, status, headers, length):
        hdrs = [(":status", str(status)),
                ("date", time.strftime("%a, %d %b %Y %H:%M:%S GMT",
                                       time.gmtime())),
                ("server", SERVER)]
        hdrs += [(k.lower(), v) for k, v in headers]
        if length is not None:
            hdrs.append(("content-length", str(length)))
        self.c.guard(self.sid)
        try:
            self.c.h2.send_headers(self.sid, hdrs,
                                   end_stream=(length == 0))
        except h2.exceptions.ProtocolError:
            raise ClientGone()
        await self.c.flush()
        if length == 0:
            self.ended = True

    async def write(self, data, last):
        if self.ended:
            return
        await self.c.send_data(self.sid, data, last)

    async def drain(self):
        await self.c.flush()

    def abort(self):
        self.c.abort()


class H2Conn:
    """HTTP/2 (RFC 9113) server side on top of the h2 state machine: many
    concurrent streams, each answered by its own task, DATA sent within the
    peer's flow-control windows."""

    def __init__(self, server, reader, writer, cid):
        self.s = server
        self.r = reader
        self.w = writer
        self.cid = cid
        cfg = h2.config.H2Configuration(client_side=False,
                                        header_encoding="utf-8",
                                        validate_inbound_headers=False)
        self.h2 = h2.connection.H2Connection(config=cfg)
        self.streams = {}
        self.tasks = {}
        self.gone = set()
        self.window = asyncio.Event()
        self.closed = False

    def abort(self):
        H1Conn.abort(self)

    def guard(self, sid):
        if self.closed or sid in self.gone:
            raise ClientGone()

    async def flush(self):
        data = self.h2.data_to_send()
        if data:
            if self.w.is_closing():
                raise ClientGone()
            self.w.write(data)
        try:
            await self.w.drain()
        except (ConnectionError, OSError, ssl.SSLError):
            raise ClientGone()

    async def send_data(self, sid, data, end):
        view = memoryview(data)
        while True:
            self.guard(sid)
            if not view:
                break
            try:
                win = min(self.h2.local_flow_control_window(sid),
                          self.h2.max_outbound_frame_size)
            except (h2.exceptions.StreamClosedError,
                    h2.exceptions.ProtocolError):
                raise ClientGone()
            if win <= 0:
                self.window.clear()
                await self.window.wait()
                continue
            try:
                self.h2.send_data(sid, bytes(view[:win]))
            except (h2.exceptions.StreamClosedError,
                    h2.exceptions.FlowControlError,
                    h2.exceptions.ProtocolError):
                raise ClientGone()
            view = view[win:]
            await self.flush()
        if end:
            try:
                self.h2.end_stream(sid)
            except (h2.exceptions.StreamClosedError,
                    h2.exceptions.ProtocolError):
                raise ClientGone()
            await self.flush()

    async def serve_stream(self, sid):
        st = self.streams.pop(sid, None)
        if st is None:
            return
        hdrs, body = st
        pseudo = {k: v for k, v in hdrs if k.startswith(":")}
        regular = [(k.lower(), v) for k, v in hdrs if not k.startswith(":")]
        body = decode_request_body(bytes(body),
                                   dict(regular).get("content-encoding"))
        req = Request(pseudo.get(":method", "GET"), pseudo.get(":path", "/"),
                      regular, body, "2")
        try:
            await self.s.respond(req, H2Out(self, sid), self.cid)
        except ClientGone:
            pass
        finally:
            self.tasks.pop(sid, None)

    async def run(self, initial):
        self.h2.initiate_connection()
        self.h2.update_settings({
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 512,
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20})
        self.h2.increment_flow_control_window(1 << 24)
        try:
            await self.flush()
            data = initial
            while True:
                if data:
                    try:
                        events = self.h2.receive_data(data)
                    except h2.exceptions.ProtocolError:
                        await self.flush()
                        return
                    for ev in events:
                        self.on_event(ev)
                    await self.flush()
                data = await self.r.read(65536)
                if not data:
                    return
        finally:
            self.closed = True
            self.window.set()
            for t in list(self.tasks.values()):
                t.cancel()
            if self.tasks:
                await asyncio.gather(*self.tasks.values(),
                                     return_exceptions=True)

    def on_event(self, ev):
        E = h2.events
        if isinstance(ev, E.RequestReceived):
            self.streams[ev.stream_id] = (ev.headers, bytearray())
        elif isinstance(ev, E.DataReceived):
            st = self.streams.get(ev.stream_id)
            if st is not None:
                if len(st[1]) + len(ev.data) > self.s.args.max_body:
                    self.h2.reset_stream(ev.stream_id, 0x7)  # REFUSED_STREAM
                    self.streams.pop(ev.stream_id, None)
                else:
                    st[1].extend(ev.data)
            try:
                self.h2.acknowledge_received_data(ev.flow_controlled_length,
                                                  ev.stream_id)
            except (h2.exceptions.StreamClosedError,
                    h2.exceptions.ProtocolError):
                pass
        elif isinstance(ev, E.StreamEnded):
            if ev.stream_id in self.streams:
                self.tasks[ev.stream_id] = asyncio.ensure_future(
                    self.serve_stream(ev.stream_id))
        elif isinstance(ev, E.StreamReset):
            self.gone.add(ev.stream_id)
            self.streams.pop(ev.stream_id, None)
            self.window.set()
        elif isinstance(ev, (E.WindowUpdated, E.RemoteSettingsChanged)):
            self.window.set()
        elif isinstance(ev, E.ConnectionTerminated):
            self.closed = True
            self.window.set()


# --------------------------------------------------------------------------
# Main


def default_fixtures():
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        top = subprocess.run(["git", "-C", here, "rev-parse",
                              "--show-toplevel"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True,
                             check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        top = os.path.normpath(os.path.join(here, "..", ".."))
    return os.path.normpath(os.path.join(top, "..", "shared", "fixtures",
                                         "wire"))


def parse_args(argv):
    p = argparse.ArgumentParser(description="tokentap mock LLM provider")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--ready-file", help="write {port, pid, ca} here once "
                   "listening")
    p.add_argument("--cert", help="server certificate (PEM); default: a "
                   "throwaway CA and certificate made with openssl")
    p.add_argument("--key", help="private key for --cert")
    p.add_argument("--cert-dir", help="where to make the throwaway CA and "
                   "certificate (kept at exit); default: a temp dir removed "
                   "at exit")
    p.add_argument("--plain", action="store_true",
                   help="serve plaintext HTTP/1.1 and h2c (prior knowledge) "
                   "instead of TLS")
    p.add_argument("--fixtures", default=None,
                   help="fixture tree (default ../shared/fixtures/wire "
                   "beside the checkout)")
    p.add_argument("--log", help="append one JSON line per response")
    p.add_argument("--log-dir", help="where body copies go (default "
                   "LOG.d)")
    p.add_argument("--no-gzip", action="store_true",
                   help="never compress responses (unless /enc/<e>/)")
    p.add_argument("--encodings", default="gzip,br,zstd",
                   help="codings to use, in order of preference, when the "
                   "client accepts them (br/zstd only if the python module "
                   "exists)")
    p.add_argument("--pieces", type=int, default=6,
                   help="pieces a streamed body is sent in")
    p.add_argument("--pause-ms", type=float, default=15.0,
                   help="pause between pieces")
    p.add_argument("--pace", choices=("off", "realistic"), default="off",
                   help="realistic: pace every streamed response as the "
                   "/paced/ marker does")
    p.add_argument("--reset-after-bytes", type=int, default=100,
                   help="body bytes sent before a /reset/ path is cut")
    p.add_argument("--max-body", type=int, default=64 << 20,
                   help="largest request body accepted")
    p.add_argument("--max-seconds", type=float, default=600.0,
                   help="exit after this long, whatever happens (streams "
                   "in flight included: keep it above a test's whole run)")
    a = p.parse_args(argv)
    if a.fixtures is None:
        a.fixtures = default_fixtures()
    if not os.path.isdir(a.fixtures):
        if "--fixtures" in " ".join(argv):
            log_err("no fixture directory %s: /fx/ answers 404" % a.fixtures)
        a.fixtures = None
    if bool(a.cert) != bool(a.key):
        p.error("--cert and --key go together")
    if a.pieces < 1:
        p.error("--pieces must be >= 1")
    return a


async def amain(args):
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    loop.call_later(args.max_seconds, stop.set)

    def on_exc(loop_, context):
        exc = context.get("exception")
        if isinstance(exc, (ConnectionError, ssl.SSLError, OSError,
                            asyncio.CancelledError)):
            return
        log_err("asyncio: %s" % context.get("message"))
    loop.set_exception_handler(on_exc)

    tmpdir = None
    ctx = None
    ca = None
    if not args.plain:
        if args.cert:
            cert, key, ca = args.cert, args.key, args.cert
        else:
            if args.cert_dir:
                os.makedirs(args.cert_dir, exist_ok=True)
                ca, cert, key = make_cert(args.cert_dir)
            else:
                tmpdir = tempfile.mkdtemp(prefix="tokentap-mock-")
                ca, cert, key = make_cert(tmpdir)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        # RFC 9113 9.2.1: TLS 1.2 or later, no renegotiation.
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.options |= getattr(ssl, "OP_NO_RENEGOTIATION", 0)
    srv = Server(args)
    try:
        server = await asyncio.start_server(
            srv.on_conn, args.host, args.port, ssl=ctx, limit=MAX_HEAD,
            ssl_handshake_timeout=10 if ctx else None)
        port = server.sockets[0].getsockname()[1]
        if args.ready_file:
            ready = {"port": port, "pid": os.getpid()}
            if ca:
                ready["ca"] = os.path.abspath(ca)
            ready["scheme"] = "http" if args.plain else "https"
            tmp = args.ready_file + ".tmp"
            with open(tmp, "w") as f:
                f.write(json.dumps(ready) + "\n")
            os.replace(tmp, args.ready_file)
        await stop.wait()
        server.close()
        for t in list(srv.conns):
            t.cancel()
        if srv.conns:
            await asyncio.wait(list(srv.conns), timeout=2)
    finally:
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)
        if srv.log_fp:
            srv.log_fp.close()


def main(argv):
    args = parse_args(argv)
    try:
        asyncio.run(amain(args))
    except RuntimeError as e:
        log_err(str(e))
        return 1
    except OSError as e:
        log_err(str(e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
