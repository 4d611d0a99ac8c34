#!/usr/bin/python3
"""Reference figures for an LLM response body: what tokentap's record must say.

An independent implementation, written from DESIGN.md's normalisation table
and the fixture corpus's NOTES.md (not from the C decoder), so that tests can
compare the decoder's records with it.

  expect.py --path P --status S [--header 'Name: value']... [--request REQ]
            BODYFILE
      prints one JSON object:
      {"input_tokens", "output_tokens", "cache_read_tokens",
       "cache_write_tokens", "reasoning_tokens", "usage_source", "model",
       "provider", "form", "output_text_bytes", "error_event"}
      usage_source is "provider" when the body reports usage, "estimated"
      when it is a 200 answer that carried generated text but no usage (the
      figures are then null: the estimate is the decoder's own), "none"
      otherwise (errors).  Absent figures are null, never 0, except where
      DESIGN.md says so (Ollama's absent prompt_eval_count is 0).

  expect.py --log-entry 'JSON'
      the same, for one line of the mock's --log: path, status, the usage
      response headers and body_file all come from it.

  expect.py --selftest FIXTURES_DIR
      checks this module against every row of MANIFEST.tsv: it normalises
      the manifest's raw figures (as recorded by the corpus authors) and
      compares them with what it computes from each body file.  Prints one
      line per row and "N ok / M mismatch"; exits 1 on any mismatch.

Rules (DESIGN.md "Normalisation"; NOTES.md sections 2 to 4):
  OpenAI-style chat (OpenAI, Azure, vLLM, Mistral, Together, Groq, DeepSeek,
    OpenRouter, llama.cpp): input = prompt_tokens, output = completion_tokens,
    cache_read = prompt_tokens_details.cached_tokens | prompt_cache_hit_tokens
    | usage.cached_tokens, cache_write = prompt_tokens_details.
    cache_write_tokens, reasoning = completion_tokens_details.reasoning_tokens.
    Groq's x_groq.usage counts the same as usage (counted once).
  OpenAI responses: input_tokens, output_tokens, input_tokens_details.
    cached_tokens, output_tokens_details.reasoning_tokens.
  Anthropic: input = input_tokens + cache_read_input_tokens +
    cache_creation_input_tokens; message_delta values supersede
    message_start's field by field (cumulative, never summed).
  Gemini: input = promptTokenCount + toolUsePromptTokenCount, output =
    candidatesTokenCount + thoughtsTokenCount, cache_read =
    cachedContentTokenCount, reasoning = thoughtsTokenCount; the last
    usageMetadata snapshot wins.
  Bedrock Converse: input = inputTokens + cacheRead + cacheWrite; the
    x-amzn-bedrock-*-token-count response headers and the stream's
    amazon-bedrock-invocationMetrics fill what the body lacks.
  Ollama: input = prompt_eval_count (absent: 0), output = eval_count.
  Cohere v2: billed_units.input_tokens / output_tokens.
  In every stream the last report wins.
"""

import argparse
import base64
import binascii
import csv
import json
import os
import re
import struct
import sys
import zlib
from urllib.parse import unquote, urlsplit

FIGS = ("input_tokens", "output_tokens", "cache_read_tokens",
        "cache_write_tokens", "reasoning_tokens")


def num(v):
    """An integer count, or None for absent/null/non-numbers."""
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str) and re.fullmatch(r"\d+", v.strip()):
        return int(v.strip())
    return None


def dget(obj, *keys):
    for k in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(k)
    return obj


def add(*vals):
    """Sum of the present values; None when all are absent."""
    present = [v for v in vals if v is not None]
    return sum(present) if present else None


def first(*vals):
    for v in vals:
        if v is not None:
            return v
    return None


# --------------------------------------------------------------------------
# Body framing: eventstream, JSON, JSON array, SSE, NDJSON


def eventstream_frames(body):
    """AWS event stream (application/vnd.amazon.eventstream): prelude
    total_len(4) headers_len(4) prelude_crc(4), headers, payload,
    message_crc(4).  Returns [(headers dict, payload bytes)] or None when the
    body is not a valid event stream."""
    frames = []
    off = 0
    if len(body) < 16:
        return None
    while off < len(body):
        if len(body) - off < 16:
            return None
        total, hlen, pcrc = struct.unpack(">III", body[off:off + 12])
        if total < 16 or off + total > len(body) or hlen > total - 16:
            return None
        if zlib.crc32(body[off:off + 8]) != pcrc:
            return None
        if zlib.crc32(body[off:off + total - 4]) != \
                struct.unpack(">I", body[off + total - 4:off + total])[0]:
            return None
        hdr = body[off + 12:off + 12 + hlen]
        payload = body[off + 12 + hlen:off + total - 4]
        headers = {}
        i = 0
        while i < len(hdr):
            nl = hdr[i]
            name = hdr[i + 1:i + 1 + nl].decode("utf-8", "replace")
            i += 1 + nl
            t = hdr[i]
            i += 1
            if t in (0, 1):
                val = t == 0
            elif t == 2:
                val = hdr[i]
                i += 1
            elif t == 3:
                val = struct.unpack(">h", hdr[i:i + 2])[0]
                i += 2
            elif t == 4:
                val = struct.unpack(">i", hdr[i:i + 4])[0]
                i += 4
            elif t in (5, 8):
                val = struct.unpack(">q", hdr[i:i + 8])[0]
                i += 8
            elif t in (6, 7):
                ln = struct.unpack(">H", hdr[i:i + 2])[0]
                raw = hdr[i + 2:i + 2 + ln]
                val = raw.decode("utf-8", "replace") if t == 7 else raw
                i += 2 + ln
            elif t == 9:
                val = hdr[i:i + 16]
                i += 16
            else:
                return None
            headers[name] = val
        frames.append((headers, payload))
        off += total
    return frames


def sse_events(text):
    """WHATWG server-sent events: lines end in CRLF, LF or CR; ':' starts a
    comment; data lines join with LF; a blank line dispatches.  An event
    left open at the end of the body is dispatched too (a cut stream)."""
    out = []
    data, event, has_data = [], "", False
    for line in re.split(r"\r\n|\r|\n", text):
        if line == "":
            if has_data:
                out.append((event or "message", "\n".join(data)))
            data, event, has_data = [], "", False
            continue
        if line.startswith(":"):
            continue
        field, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if field == "data":
            data.append(value)
            has_data = True
        elif field == "event":
            event = value
    if has_data:
        out.append((event or "message", "\n".join(data)))
    return out


def parse_body(body):
    """Return (form, [(event name, JSON value)])."""
    frames = eventstream_frames(body)
    if frames is not None:
        evs = []
        for headers, payload in frames:
            mtype = headers.get(":message-type", "event")
            etype = headers.get(":event-type") or \
                headers.get(":exception-type") or ""
            try:
                obj = json.loads(payload.decode("utf-8")) if payload else {}
            except ValueError:
                continue
            if mtype != "event":
                evs.append(("exception", {"error": obj,
                                          "exception": etype}))
                continue
            # InvokeModelWithResponseStream: the model's own event,
            # base64 in "bytes".
            if isinstance(obj, dict) and isinstance(obj.get("bytes"), str):
                try:
                    inner = json.loads(base64.b64decode(obj["bytes"]))
                except (ValueError, binascii.Error):
                    continue
                evs.append((etype, inner))
            else:
                evs.append((etype, obj))
        return "eventstream", evs
    text = body.decode("utf-8", "replace")
    try:
        whole = json.loads(text)
    except ValueError:
        whole = None
    else:
        if isinstance(whole, list):
            return "json-array", [("", x) for x in whole]
        return "json", [("", whole)]
    if re.search(r"(?m)^(data|event):", text):
        evs = []
        for name, data in sse_events(text):
            if data.strip() == "[DONE]":
                continue
            try:
                evs.append((name, json.loads(data)))
            except ValueError:
                pass
        return "sse", evs
    evs = []
    for line in text.splitlines():
        if line.strip():
            try:
                evs.append(("", json.loads(line)))
            except ValueError:
                pass
    return "ndjson", evs


# --------------------------------------------------------------------------
# Usage normalisation per API shape


def norm_openai(u):
    ptd = u.get("prompt_tokens_details")
    ctd = u.get("completion_tokens_details")
    return {
        "input_tokens": num(u.get("prompt_tokens")),
        "output_tokens": num(u.get("completion_tokens")),
        "cache_read_tokens": first(num(dget(ptd, "cached_tokens")),
                                   num(u.get("prompt_cache_hit_tokens")),
                                   num(u.get("cached_tokens"))),
        "cache_write_tokens": num(dget(ptd, "cache_write_tokens")),
        "reasoning_tokens": num(dget(ctd, "reasoning_tokens")),
    }


def norm_responses(u):
    return {
        "input_tokens": num(u.get("input_tokens")),
        "output_tokens": num(u.get("output_tokens")),
        "cache_read_tokens": num(dget(u, "input_tokens_details",
                                      "cached_tokens")),
        "cache_write_tokens": None,
        "reasoning_tokens": num(dget(u, "output_tokens_details",
                                     "reasoning_tokens")),
    }


def norm_anthropic(raw):
    i = raw.get("input_tokens")
    cr = raw.get("cache_read_input_tokens")
    cw = raw.get("cache_creation_input_tokens")
    return {
        "input_tokens": add(i, cr, cw),
        "output_tokens": raw.get("output_tokens"),
        "cache_read_tokens": cr,
        "cache_write_tokens": cw,
        "reasoning_tokens": raw.get("thinking_tokens"),
    }


def norm_gemini(um):
    th = num(um.get("thoughtsTokenCount"))
    return {
        "input_tokens": add(num(um.get("promptTokenCount")),
                            num(um.get("toolUsePromptTokenCount"))),
        "output_tokens": add(num(um.get("candidatesTokenCount")), th),
        "cache_read_tokens": num(um.get("cachedContentTokenCount")),
        "cache_write_tokens": None,
        "reasoning_tokens": th,
    }


def norm_bedrock(u):
    cr = first(num(u.get("cacheReadInputTokens")),
               num(u.get("cacheReadInputTokenCount")))
    cw = first(num(u.get("cacheWriteInputTokens")),
               num(u.get("cacheWriteInputTokenCount")))
    i = first(num(u.get("inputTokens")), num(u.get("inputTokenCount")))
    return {
        "input_tokens": add(i, cr, cw),
        "output_tokens": first(num(u.get("outputTokens")),
                               num(u.get("outputTokenCount"))),
        "cache_read_tokens": cr,
        "cache_write_tokens": cw,
        "reasoning_tokens": None,
    }


def norm_ollama(o):
    return {
        "input_tokens": num(o.get("prompt_eval_count")) or 0,
        "output_tokens": num(o.get("eval_count")) or 0,
        "cache_read_tokens": None, "cache_write_tokens": None,
        "reasoning_tokens": None,
    }


def norm_cohere(u):
    bu = u.get("billed_units") if isinstance(u.get("billed_units"),
                                             dict) else None
    src = bu if bu is not None else (u.get("tokens") or {})
    return {
        "input_tokens": num(src.get("input_tokens")),
        "output_tokens": num(src.get("output_tokens")),
        "cache_read_tokens": None, "cache_write_tokens": None,
        "reasoning_tokens": None,
    }


def text_len(s):
    return len(s.encode("utf-8")) if isinstance(s, str) else 0


class Extractor:
    def __init__(self):
        self.report = None          # normalised figures, last one wins
        self.family = None
        self.anth = None            # merged raw Anthropic usage
        self.fallback = None        # amazon-bedrock-invocationMetrics
        self.model = None
        self.text_bytes = 0
        self.error = False

    def set(self, family, figs):
        self.family = family
        self.report = figs

    def anthropic(self, usage, reset):
        if not isinstance(usage, dict):
            return
        if reset or self.anth is None:
            self.anth = {}
        for k in ("input_tokens", "cache_read_input_tokens",
                  "cache_creation_input_tokens", "output_tokens"):
            v = num(usage.get(k))
            if v is not None:
                self.anth[k] = v
        tt = num(dget(usage, "output_tokens_details", "thinking_tokens"))
        if tt is not None:
            self.anth["thinking_tokens"] = tt
        self.set("anthropic", norm_anthropic(self.anth))

    def set_model(self, m):
        if isinstance(m, str) and m:
            self.model = m

    def feed(self, name, obj):
        if not isinstance(obj, dict):
            return
        t = obj.get("type")
        if name in ("error", "exception") or t == "error":
            self.error = True
        if isinstance(obj.get("error"), dict) or \
                isinstance(obj.get("error"), str):
            self.error = True
        m = obj.get("amazon-bedrock-invocationMetrics")
        if isinstance(m, dict):
            self.fallback = norm_bedrock(m)

        # Anthropic messages (also inside Bedrock invoke chunks).
        if t == "message_start":
            msg = obj.get("message") or {}
            self.set_model(msg.get("model"))
            self.anthropic(msg.get("usage"), reset=True)
            return
        if t == "message_delta":
            self.anthropic(obj.get("usage"), reset=False)
            return
        if t == "content_block_delta":
            d = obj.get("delta") or {}
            self.text_bytes += text_len(d.get("text")) + \
                text_len(d.get("thinking"))
            return
        if t == "message" and obj.get("role") == "assistant":
            self.set_model(obj.get("model"))
            for c in obj.get("content") or []:
                if isinstance(c, dict):
                    self.text_bytes += text_len(c.get("text"))
            self.anthropic(obj.get("usage"), reset=True)
            return

        # OpenAI Responses.
        if isinstance(t, str) and t.startswith("response."):
            r = obj.get("response")
            if isinstance(r, dict):
                self.set_model(r.get("model"))
                if isinstance(r.get("usage"), dict):
                    self.set("responses", norm_responses(r["usage"]))
                if t == "response.failed":
                    self.error = True
            if t == "response.output_text.delta":
                self.text_bytes += text_len(obj.get("delta"))
            return
        if obj.get("object") == "response":
            self.set_model(obj.get("model"))
            for item in obj.get("output") or []:
                for c in (item.get("content") or []) \
                        if isinstance(item, dict) else []:
                    if isinstance(c, dict):
                        self.text_bytes += text_len(c.get("text"))
            if isinstance(obj.get("usage"), dict):
                self.set("responses", norm_responses(obj["usage"]))
            return

        # Cohere v2.
        if t == "message-end":
            u = dget(obj, "delta", "usage")
            if isinstance(u, dict):
                self.set("cohere", norm_cohere(u))
            return
        if t == "content-delta":
            self.text_bytes += text_len(dget(obj, "delta", "message",
                                             "content", "text"))
            return
        u = obj.get("usage")
        if isinstance(u, dict) and ("billed_units" in u or "tokens" in u):
            for c in dget(obj, "message", "content") or []:
                if isinstance(c, dict):
                    self.text_bytes += text_len(c.get("text"))
            self.set("cohere", norm_cohere(u))
            return

        # Gemini / Vertex.
        if "candidates" in obj or "usageMetadata" in obj:
            self.set_model(obj.get("modelVersion"))
            for cand in obj.get("candidates") or []:
                for p in dget(cand, "content", "parts") or []:
                    if isinstance(p, dict):
                        self.text_bytes += text_len(p.get("text"))
            if isinstance(obj.get("usageMetadata"), dict):
                self.set("gemini", norm_gemini(obj["usageMetadata"]))
            return

        # Ollama (/api/chat, /api/generate): counts on the done line.
        if "done" in obj and ("message" in obj or "response" in obj or
                              "eval_count" in obj):
            self.set_model(obj.get("model"))
            self.text_bytes += text_len(dget(obj, "message", "content")) + \
                text_len(obj.get("response"))
            if obj.get("done") is True:
                self.set("ollama", norm_ollama(obj))
            return

        # Bedrock Converse / Nova native.
        if isinstance(dget(obj, "metadata", "usage"), dict):
            self.set("bedrock", norm_bedrock(obj["metadata"]["usage"]))
            return
        if isinstance(u, dict) and ("inputTokens" in u or
                                    "outputTokens" in u):
            for c in dget(obj, "output", "message", "content") or []:
                if isinstance(c, dict):
                    self.text_bytes += text_len(c.get("text"))
            self.set("bedrock", norm_bedrock(u))
            return
        cbd = obj.get("contentBlockDelta")
        if isinstance(obj.get("delta"), dict) and "contentBlockIndex" in obj:
            cbd = obj
        if isinstance(cbd, dict):
            self.text_bytes += text_len(dget(cbd, "delta", "text"))
            return

        # OpenAI chat and compatibles (Groq x_groq.usage: the same figures).
        self.set_model(obj.get("model"))
        for ch in obj.get("choices") or []:
            if isinstance(ch, dict):
                for k in ("delta", "message"):
                    d = ch.get(k)
                    if isinstance(d, dict):
                        for f in ("content", "reasoning_content",
                                  "reasoning"):
                            self.text_bytes += text_len(d.get(f))
                self.text_bytes += text_len(ch.get("text"))
        gu = dget(obj, "x_groq", "usage")
        if isinstance(u, dict) and ("prompt_tokens" in u or
                                    "completion_tokens" in u):
            self.set("openai", norm_openai(u))
        elif isinstance(gu, dict):
            self.set("openai", norm_openai(gu))


BEDROCK_HDR = {
    "x-amzn-bedrock-input-token-count": "input",
    "x-amzn-bedrock-output-token-count": "output",
    "x-amzn-bedrock-cache-read-input-token-count": "cache_read",
    "x-amzn-bedrock-cache-write-input-token-count": "cache_write",
}


def bedrock_header_figs(headers):
    h = {}
    for k, v in headers.items():
        key = BEDROCK_HDR.get(k.lower())
        if key is not None and num(v) is not None:
            h[key] = num(v)
    if not h:
        return None
    return h


def guess_provider(path):
    p = urlsplit(path).path
    m = re.match(r"^/fx/([^/]+)/", p)
    if m:
        return m.group(1)
    if "/openai/deployments/" in p:
        return "azure_openai"
    if p.endswith("/v1/messages"):
        return "anthropic"
    if ":generateContent" in p or ":streamGenerateContent" in p:
        return "gemini"
    if p.endswith("/api/chat") or p.endswith("/api/generate"):
        return "ollama"
    if re.search(r"/model/[^/]+/(invoke|converse)", p):
        return "bedrock"
    if p.endswith("/v2/chat"):
        return "cohere"
    if "/chat/completions" in p or p.endswith("/responses") or \
            p.endswith("/embeddings") or p.endswith("/completions"):
        return "openai"
    return None


def path_model(path):
    p = urlsplit(path).path
    m = re.search(r"/models/([^/:]+):", p) or \
        re.search(r"/model/([^/]+)/(?:invoke|converse)", p)
    return unquote(m.group(1)) if m else None


def expect(body, path, status, headers=None, request=None):
    headers = headers or {}
    form, events = parse_body(body)
    ex = Extractor()
    for name, obj in events:
        ex.feed(name, obj)
    figs = dict(ex.report) if ex.report is not None else None
    # Bedrock: the token-count headers and the stream's invocation metrics
    # are authoritative where the body says nothing (NOTES.md trap 17).
    hdr = bedrock_header_figs(headers)
    if hdr is not None or ex.fallback is not None:
        fb = {}
        if ex.fallback is not None:
            fb = dict(ex.fallback)
        if hdr is not None:
            fb["output_tokens"] = first(hdr.get("output"),
                                        fb.get("output_tokens"))
            fb["cache_read_tokens"] = first(hdr.get("cache_read"),
                                            fb.get("cache_read_tokens"))
            fb["cache_write_tokens"] = first(hdr.get("cache_write"),
                                             fb.get("cache_write_tokens"))
            if hdr.get("input") is not None:
                fb["input_tokens"] = add(hdr["input"],
                                         hdr.get("cache_read"),
                                         hdr.get("cache_write"))
        if figs is None:
            figs = {k: fb.get(k) for k in FIGS}
        else:
            for k in ("output_tokens", "cache_read_tokens",
                      "cache_write_tokens"):
                if figs.get(k) is None and fb.get(k) is not None:
                    figs[k] = fb[k]
                    # Bedrock input includes both cache counts.
                    if k != "output_tokens" and \
                            ex.family == "bedrock" and \
                            figs.get("input_tokens") is not None:
                        figs["input_tokens"] += fb[k]
            if figs.get("input_tokens") is None:
                figs["input_tokens"] = fb.get("input_tokens")
    if figs is not None and all(figs.get(k) is None for k in FIGS):
        figs = None
    model = ex.model
    if model is None and isinstance(request, dict) and \
            isinstance(request.get("model"), str):
        model = request["model"]
    if model is None:
        model = path_model(path)
    out = {k: (figs or {}).get(k) for k in FIGS}
    if figs is not None:
        source = "provider"
    elif status < 400 and ex.text_bytes > 0:
        source = "estimated"
    else:
        source = "none"
    out.update({"usage_source": source, "model": model,
                "provider": guess_provider(path) or ex.family,
                "family": ex.family, "form": form,
                "output_text_bytes": ex.text_bytes,
                "error_event": ex.error})
    return out


# --------------------------------------------------------------------------
# Self-test against MANIFEST.tsv


# Where the manifest's columns leave out a figure that DESIGN.md's table
# does count.  Each entry was read off the body by hand; the reason says where.
MANIFEST_GAPS = {
    # DESIGN.md: Together `cached_tokens` is cache_read; NOTES.md 3: "cached_tokens
    # is top-level inside usage"; the manifest column says "-".  Both bodies
    # carry "cached_tokens":0.
    "together/chat-nonstream-toolcall.json": {"cache_read_tokens": 0},
    "together/chat-stream.sse": {"cache_read_tokens": 0},
}


def manifest_expected(row, meta):
    """Normalise the manifest's raw, as-recorded figures (NOTES.md 1: each
    is a number, '-' for not reported, 'none' for no usage at all)."""
    raw = {}
    for col, key in (("prompt_input_tokens", "p"),
                     ("completion_output_tokens", "c"),
                     ("cached_read_tokens", "cr"),
                     ("cache_write_tokens", "cw"),
                     ("reasoning_tokens", "r")):
        v = row[col].strip()
        raw[key] = "none" if v == "none" else (None if v == "-" else int(v))
    if raw["p"] == "none":
        return None
    try:
        extra = json.loads(row["extra_usage"]) \
            if row["extra_usage"].strip() not in ("", "-") else {}
    except ValueError:
        extra = {}
    prov = row["provider"].split("(")[0]
    api = row["api"]
    uri = (meta or {}).get("uri") or ""
    try:
        uri = uri or json.loads(row["request_summary"]).get("uri", "")
    except (ValueError, AttributeError):
        pass
    p, c, cr, cw, r = raw["p"], raw["c"], raw["cr"], raw["cw"], raw["r"]
    if prov == "anthropic" or (prov == "bedrock" and api.startswith("invoke")
                               and "anthropic." in uri):
        e = {"input_tokens": add(p, cr, cw), "output_tokens": c,
             "cache_read_tokens": cr, "cache_write_tokens": cw,
             "reasoning_tokens": r}
    elif prov == "gemini":
        e = {"input_tokens": add(p, num(extra.get("toolUsePromptTokenCount"))),
             "output_tokens": add(c, r), "cache_read_tokens": cr,
             "cache_write_tokens": cw, "reasoning_tokens": r}
    elif prov == "bedrock":
        e = {"input_tokens": add(p, cr, cw), "output_tokens": c,
             "cache_read_tokens": cr, "cache_write_tokens": cw,
             "reasoning_tokens": r}
    elif prov == "ollama":
        e = {"input_tokens": p if p is not None else 0,
             "output_tokens": c if c is not None else 0,
             "cache_read_tokens": None, "cache_write_tokens": None,
             "reasoning_tokens": None}
    elif prov == "cohere":
        e = {"input_tokens": num(extra.get("billed_input")),
             "output_tokens": num(extra.get("billed_output")),
             "cache_read_tokens": None, "cache_write_tokens": None,
             "reasoning_tokens": None}
    else:
        e = {"input_tokens": p, "output_tokens": c, "cache_read_tokens": cr,
             "cache_write_tokens": cw, "reasoning_tokens": r}
    if prov == "bedrock":
        # Header figures fill what the body lacks (trap 17).
        hdr = {k[4:]: v for k, v in extra.items() if k.startswith("hdr:")}
        h = bedrock_header_figs(hdr) or {}
        for key, col in (("output", "output_tokens"),
                         ("cache_read", "cache_read_tokens"),
                         ("cache_write", "cache_write_tokens")):
            if e[col] is None and h.get(key) is not None:
                e[col] = h[key]
    for k, v in MANIFEST_GAPS.get(row["file"], {}).items():
        if e[k] is None:
            e[k] = v
    return e


def selftest(root):
    mpath = os.path.join(root, "MANIFEST.tsv")
    with open(mpath, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t",
                                   quoting=csv.QUOTE_NONE))
    ok = bad = 0
    for row in rows:
        fn = row["file"]
        body_path = os.path.join(root, fn)
        base = re.sub(r"\.(chunks\.jsonl|sse|ndjson|eventstream|jsonl|json)$",
                      "", fn)
        meta = None
        metas = [base + ".meta.json"]
        if fn.endswith(".chunks.jsonl"):
            metas.insert(0, base + ".chunks.meta.json")
        for mp in metas:
            full = os.path.join(root, mp)
            if os.path.exists(full):
                with open(full, encoding="utf-8") as mf:
                    meta = json.load(mf)
                break
        status = num(row.get("http_status")) or \
            num((meta or {}).get("status")) or 200
        uri = (meta or {}).get("uri")
        if uri:
            sp = urlsplit(uri)
            path = sp.path + ("?" + sp.query if sp.query else "")
        else:
            path = "/fx/%s/%s/" % (fn.split("/")[0],
                                   os.path.basename(base))
        headers = {}
        for k, v in ((meta or {}).get("response_headers") or {}).items():
            headers[k] = v[0] if isinstance(v, list) and v else v
        with open(body_path, "rb") as bf:
            got = expect(bf.read(), path, status, headers)
        want = manifest_expected(row, meta)
        problems = []
        if want is None:
            if got["usage_source"] == "provider":
                problems.append("usage_source: expected no provider usage, "
                                "got provider")
        else:
            if got["usage_source"] != "provider":
                problems.append("usage_source: expected provider, got %s" %
                                got["usage_source"])
            for k in FIGS:
                if got[k] != want[k]:
                    problems.append("%s: expected %s got %s" %
                                    (k, want[k], got[k]))
        if problems:
            bad += 1
            print("MISMATCH %s: %s" % (fn, "; ".join(problems)))
        else:
            ok += 1
            print("ok       %s %s" % (fn, json.dumps(
                {k: got[k] for k in FIGS + ("usage_source",)})))
    print("%d ok / %d mismatch" % (ok, bad))
    return 0 if bad == 0 and ok > 0 else 1


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--path", default="/", help="request path (with query)")
    ap.add_argument("--status", type=int, default=200)
    ap.add_argument("--header", action="append", default=[],
                    help="response header 'Name: value' (repeatable)")
    ap.add_argument("--request", help="request body file (for the model "
                    "when the response names none)")
    ap.add_argument("--selftest", metavar="FIXTURES_DIR")
    ap.add_argument("--log-entry", metavar="JSON",
                    help="one line of mock_provider.py's log")
    ap.add_argument("body", nargs="?")
    a = ap.parse_args(argv)
    if a.selftest:
        return selftest(a.selftest)
    if a.log_entry:
        try:
            e = json.loads(a.log_entry)
            with open(e["body_file"], "rb") as f:
                body = f.read()
        except (ValueError, KeyError, OSError) as err:
            ap.error("bad --log-entry: %s" % err)
        print(json.dumps(expect(body, e.get("path") or "/",
                                int(e.get("status") or 200),
                                e.get("usage_headers") or {}),
                         sort_keys=True))
        return 0
    if not a.body:
        ap.error("BODYFILE is required")
    headers = {}
    for h in a.header:
        k, sep, v = h.partition(":")
        if not sep:
            ap.error("bad --header %r" % h)
        headers[k.strip()] = v.strip()
    req = None
    if a.request:
        try:
            with open(a.request, "rb") as f:
                req = json.load(f)
        except (OSError, ValueError):
            req = None
    with open(a.body, "rb") as f:
        body = f.read()
    print(json.dumps(expect(body, a.path, a.status, headers, req),
                     sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
