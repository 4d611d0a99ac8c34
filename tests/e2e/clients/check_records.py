#!/usr/bin/python3
"""Check the agent's records against what the mock provider really sent.

  check_records.py --records OUT.jsonl --mock-log MOCK_LOG [--since SEQ]
                   [--expect-count N] [--pid PID ...] [--comm C] [--exe E]
                   [--app A] [--tls T]
                   [--task T] [--tenant T] [--feature F]

Every mock log entry after --since (an LLM response the mock sent) must
match exactly one record, and every record one entry: same path, HTTP
version and status, and the token figures that tests/mock/expect.py reads
from the body the mock logged (body_file).  None of the expected figures
come from tokentap's C code.  Prints one line per match; exits 1 on the
first mismatch.
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
EXPECT = os.path.join(HERE, "..", "..", "mock", "expect.py")
FIGURES = ["input_tokens", "output_tokens", "cache_read_tokens",
           "cache_write_tokens", "reasoning_tokens", "usage_source"]


def die(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def expected(entry):
    cmd = ["/usr/bin/python3", EXPECT, "--path", entry["path"],
           "--status", str(entry["status"]), entry["body_file"]]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", required=True)
    ap.add_argument("--mock-log", required=True)
    ap.add_argument("--since", type=int, default=0)
    ap.add_argument("--expect-count", type=int)
    ap.add_argument("--pid", type=int, action="append")
    ap.add_argument("--comm")
    ap.add_argument("--exe")
    ap.add_argument("--app")
    ap.add_argument("--tls")
    for f in ("task", "tenant", "feature"):
        ap.add_argument("--" + f)
    a = ap.parse_args()

    records = []
    with open(a.records) as f:
        for n, line in enumerate(f, 1):
            if not line.endswith("\n"):
                die(f"record line {n} is not newline-terminated")
            records.append(json.loads(line))
    entries = []
    with open(a.mock_log) as f:
        for line in f:
            e = json.loads(line)
            if e["seq"] > a.since:
                entries.append(e)
    if a.expect_count is not None and len(entries) != a.expect_count:
        die(f"the mock logged {len(entries)} responses, expected {a.expect_count}")

    ids = [r["id"] for r in records]
    if len(set(ids)) != len(ids):
        die("duplicate record ids")
    for r in records:
        if r["source"] != "preload":
            die(f"source {r['source']!r}")
        if a.pid and r["pid"] not in a.pid:
            die(f"pid {r['pid']} not in {a.pid}")
        if a.comm and r["comm"] != a.comm:
            die(f"comm {r['comm']!r} != {a.comm!r}")
        if a.exe and r["exe"] != a.exe:
            die(f"exe {r['exe']!r} != {a.exe!r}")
        if a.app and r["app"] != a.app:
            die(f"app {r['app']!r} != {a.app!r}")
        if a.tls and r["tls"] != a.tls:
            die(f"tls {r['tls']!r} != {a.tls!r}")
        for f in ("task", "tenant", "feature"):
            want = getattr(a, f)
            if want is not None and r[f] != (want or None):
                die(f"{f} {r[f]!r} != {want!r}")
        if not isinstance(r["tid"], int) or r["tid"] <= 0:
            die("no tid")

    unused = list(records)
    for e in entries:
        exp = expected(e)
        match = None
        for r in unused:
            if r["path"] != e["path"].split("?")[0] or r["http"] != e["http"] \
                    or r["status"] != e["status"]:
                continue
            if all(r[k] == exp.get(k) for k in FIGURES):
                match = r
                break
        if match is None:
            cands = [{k: r[k] for k in ["path", "http", "status"] + FIGURES}
                     for r in unused if r["path"] == e["path"].split("?")[0]]
            die(f"no record for mock response seq {e['seq']} {e['path']} "
                f"http {e['http']}: expected {[(k, exp.get(k)) for k in FIGURES]}; "
                f"records on that path: {cands}")
        unused.remove(match)
        print(f"ok seq={e['seq']} {e['path']} http={e['http']} "
              f"in={match['input_tokens']} out={match['output_tokens']} "
              f"cache_read={match['cache_read_tokens']}")
    if unused:
        die(f"{len(unused)} records match no response the mock sent: "
            f"{[(r['path'], r['status']) for r in unused]}")


if __name__ == "__main__":
    main()
