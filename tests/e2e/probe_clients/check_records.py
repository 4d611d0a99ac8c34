#!/usr/bin/python3
"""Compare tokentap-probe records with what the mock provider sent.

For every response in the mock's log (optionally only seq > --after), find
the one record of the chosen side whose host is the mock's port and whose
path, request_bytes and response_bytes match, and check its figures against
expect.py's for the body the mock logged.  Fails on a missing record, a
figure that differs, or a record that matches no response (counted twice).

  check_records.py --records OUT --mock-log LOG --port PORT --expect EXPECT
                   [--side client|server] [--comm NAME] [--pid PID]
                   [--after SEQ] [--upto SEQ] [--http 1.1|2] [--min N] [--allow-extra]
                   [--want FIELD=VALUE ...]

--want checks a field of every matched record (a string field, compared as
written: --want tls=gotls --want app=codex).
"""

import argparse
import json
import subprocess
import sys

FIGS = ("input_tokens", "output_tokens", "cache_read_tokens",
        "cache_write_tokens", "reasoning_tokens")


def load_lines(path):
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                out.append(json.loads(line))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", required=True)
    ap.add_argument("--mock-log", required=True)
    ap.add_argument("--port", required=True)
    ap.add_argument("--expect", required=True)
    ap.add_argument("--side", default="client")
    ap.add_argument("--comm")
    ap.add_argument("--pid", type=int)
    ap.add_argument("--after", type=int, default=0)
    ap.add_argument("--upto", type=int, help="only responses with seq <= this")
    ap.add_argument("--http", help="only responses of this HTTP version")
    ap.add_argument("--min", type=int, default=1)
    ap.add_argument("--allow-extra", action="store_true")
    ap.add_argument("--want", action="append", default=[],
                    metavar="FIELD=VALUE")
    a = ap.parse_args()
    wants = []
    for w in a.want:
        if "=" not in w:
            ap.error("--want takes FIELD=VALUE, not %r" % w)
        wants.append(tuple(w.split("=", 1)))

    host_suffix = ":" + str(a.port)
    recs = [r for r in load_lines(a.records)
            if (r.get("host") or "").endswith(host_suffix)
            and r.get("side") == a.side
            and (a.http is None or r.get("http") == a.http)
            and (a.comm is None or r.get("comm") == a.comm)
            and (a.pid is None or r.get("pid") == a.pid)]
    calls = [e for e in load_lines(a.mock_log) if e["seq"] > a.after
             and (a.upto is None or e["seq"] <= a.upto)
             and (a.http is None or e["http"] == a.http)]
    if len(calls) < a.min:
        print("FAIL: the mock logged %d responses, expected at least %d"
              % (len(calls), a.min))
        return 1

    bad = 0
    used = set()
    for e in calls:
        match = None
        for i, r in enumerate(recs):
            if i in used:
                continue
            if (r.get("path") == e["path"]
                    and r.get("request_bytes") == e["request_bytes"]
                    and r.get("response_bytes") == e["body_bytes"]):
                match = i
                break
        what = "seq %d %s %s (%s, http %s)" % (
            e["seq"], e["method"], e["path"],
            "stream" if e["streamed"] else "json", e["http"])
        if match is None:
            near = [(r.get("path"), r.get("request_bytes"),
                     r.get("response_bytes"), r.get("error"))
                    for i, r in enumerate(recs) if i not in used]
            print("FAIL: %s: no %s record with request_bytes=%d "
                  "response_bytes=%d; unmatched records: %s"
                  % (what, a.side, e["request_bytes"], e["body_bytes"], near))
            bad += 1
            continue
        used.add(match)
        r = recs[match]
        exp = json.loads(subprocess.run(
            [a.expect, "--path", e["path"], "--status", str(e["status"]),
             e["body_file"]], check=True, capture_output=True,
            text=True).stdout)
        diffs = []
        if exp["usage_source"] == "provider":
            for k in FIGS:
                if r.get(k) != exp.get(k):
                    diffs.append("%s=%r want %r" % (k, r.get(k), exp.get(k)))
        if r.get("usage_source") != exp["usage_source"]:
            diffs.append("usage_source=%r want %r"
                         % (r.get("usage_source"), exp["usage_source"]))
        if exp.get("model") and r.get("model") != exp["model"]:
            diffs.append("model=%r want %r" % (r.get("model"), exp["model"]))
        if r.get("status") != e["status"]:
            diffs.append("status=%r want %r" % (r.get("status"), e["status"]))
        if r.get("http") != e["http"]:
            diffs.append("http=%r want %r" % (r.get("http"), e["http"]))
        if r.get("source") != "ebpf":
            diffs.append("source=%r" % r.get("source"))
        if e["complete"] and r.get("error") is not None:
            diffs.append("error=%r" % r.get("error"))
        if not r.get("comm") or not r.get("exe") or not r.get("pid"):
            diffs.append("process fields missing: pid=%r comm=%r exe=%r"
                         % (r.get("pid"), r.get("comm"), r.get("exe")))
        for k, v in wants:
            if str(r.get(k)) != v:
                diffs.append("%s=%r want %r" % (k, r.get(k), v))
        if diffs:
            print("FAIL: %s: %s" % (what, "; ".join(diffs)))
            bad += 1
        else:
            print("ok - %s: %s record in=%s out=%s cache_read=%s "
                  "usage_source=%s (pid %s %s, tls %s)"
                  % (what, a.side, r.get("input_tokens"),
                     r.get("output_tokens"), r.get("cache_read_tokens"),
                     r.get("usage_source"), r.get("pid"), r.get("comm"),
                     r.get("tls")))
    extra = [recs[i] for i in range(len(recs)) if i not in used]
    if extra and not a.allow_extra:
        for r in extra:
            print("FAIL: record matching no response (counted twice?): "
                  "%s %s req=%s resp=%s error=%s"
                  % (r.get("method"), r.get("path"), r.get("request_bytes"),
                     r.get("response_bytes"), r.get("error")))
        bad += len(extra)
    if bad:
        return 1
    print("ok - %d %s records equal the mock's responses" % (len(calls),
                                                             a.side))
    return 0


if __name__ == "__main__":
    sys.exit(main())
