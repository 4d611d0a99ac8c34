#!/usr/bin/env bash
# tokentap-probe on real timing (issue #11): streams paced like a real
# provider's (first byte after 0.5-2 s, 20-80 events/s), a 10 s silence in
# the middle of a stream, a stream of 60 s, slow readers, and a process
# whose memory keeps moving while it streams for 30 s.  Every family the
# probe's tests use: curl (HTTP/1.1, HTTP/2, gzip), Python urllib, node
# fetch and node with the official SDKs.  Each call has exactly one record,
# whole (no error), with expect.py's figures for the body the mock sent;
# the long ones really lasted (the mock's log and the record say so).
# The cases run side by side, under one probe.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../mock/lib.sh"
. "$here/probe_clients/lib_probe.sh"

probe_preflight
probe_node_sdks
mock_start || fail "the mock did not start"
export NODE_EXTRA_CA_CERTS=$MOCK_CA
probe_start

chat='{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"paced curl"}]}'
pids=()
bg() { "$@" & pids+=($!); }
mcurl() { # MARKERS [CURL ARGS...]
	local m=$1
	shift
	curl -sS --cacert "$MOCK_CA" -o /dev/null -H 'content-type: application/json' \
		-H 'authorization: Bearer sk-tokentap-secret-curl' \
		"$@" "$MOCK_URL$m/v1/chat/completions" -d "$chat"
}

# the long ones first: they set the test's length
bg mcurl /words/1200/rate/20 --http1.1                       # >= 60 s
bg "$TT_PY" "$PROBE_CLIENTS/stream_client.py" \
	"$MOCK_URL/words/600/rate/20/v1/chat/completions" "$MOCK_CA" --grow 40
bg "$NODE" "$PROBE_CLIENTS/node_stream.mjs" "$MOCK_URL/paced/stall/10000/v1/messages"
bg mcurl /paced --http1.1
bg mcurl /paced --http2
bg mcurl /paced --http2 --compressed
bg "$TT_PY" "$PROBE_CLIENTS/stream_client.py" "$MOCK_URL/paced/v1/messages" \
	"$MOCK_CA" --api anthropic --slow 64,20
bg "$NODE" "$PROBE_CLIENTS/node_sdk.mjs" "$MOCK_URL/paced"
for p in "${pids[@]}"; do
	wait "$p" || fail "a paced client failed (pid $p)"
done
n=$(mock_log_count)
[ "$n" -eq 11 ] || fail "the mock logged $n responses, want 11"
probe_stop
probe_check --side client --min 11

# The long cases really were long, and whole.
"$TT_PY" - "$MOCK_LOG" "$PROBE_OUT" "$MOCK_PORT" <<'PY' || fail "a long stream was not what it should be"
import json, sys
log = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
recs = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
recs = [r for r in recs if (r.get("host") or "").endswith(":" + sys.argv[3])
        and r["side"] == "client"]
bad = [r for r in recs if r["error"] is not None]
assert not bad, "records with an error: %s" % bad
def longest(pred):
    return max((e["duration_ms"] for e in log if pred(e)), default=0)
s60 = longest(lambda e: "/words/1200/" in e["path"])
s30 = longest(lambda e: "/words/600/" in e["path"])
gap = max((e.get("max_gap_ms") or 0) for e in log if "/stall/" in e["path"])
print("mock: 60 s stream %.1f s, 30 s stream %.1f s, longest silence %.1f s"
      % (s60 / 1000, s30 / 1000, gap / 1000))
assert s60 >= 60000 and s30 >= 29000 and gap >= 10000
rlong = max(r["duration_ms"] for r in recs)
print("longest record: %.1f s" % (rlong / 1000))
assert rlong >= 60000
# each program named as a person would: the script an interpreter runs
apps = sorted(set(r["app"] for r in recs))
print("apps:", apps)
assert apps == ["curl", "node_sdk", "node_stream", "stream_client"], apps
assert all(r["tls"] == "openssl" for r in recs)
PY
if grep -l 'tokentap-secret' "$PROBE_OUT" "$PROBE_LOG"; then
	fail "an API key reached the probe's output"
fi
echo "ok - 11 paced calls (60 s, 30 s while growing memory, a 10 s silence, slow reader, HTTP/1.1, HTTP/2, gzip, node fetch and SDKs) each recorded once, whole and exact"
