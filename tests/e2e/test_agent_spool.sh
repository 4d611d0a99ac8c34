#!/usr/bin/env bash
# Collector down: the records of short-lived programs (curl) land in the
# spool, with no key in them.  Collector back: the next program under the
# agent delivers the spool with its own record, each exactly once, and the
# spool is empty.  Figures checked at the collector come from the mock's
# bodies (expect.py).  Uses build/tokentapd; without it, a Python stand-in
# that records every POST (then duplicates are counted, not deduplicated;
# AGENT_E2E_STANDIN=1 forces it).
set -euo pipefail
. "$(dirname "$0")/clients/agent_lib.sh"
agent_setup
unset TOKENTAP_OUT
SOCK=$T/collector.sock
export TOKENTAP_COLLECTOR=unix:$SOCK

printf '%s' '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"spool me"}]}' >"$T/req.json"
call() {
	with_agent mock_curl --http1.1 -H "Authorization: Bearer $SENTINEL" \
		-H 'Content-Type: application/json' --data-binary @"$T/req.json" \
		-o /dev/null "$(mock_url /v1/chat/completions)" 2>>"$T/curl.err"
}

# 1. Nobody listens: three calls, three records in the spool.
for _ in 1 2 3; do call; done
[ ! -s "$T/curl.err" ] || fail "stderr while the collector is down: $(cat "$T/curl.err")"
spooled=$(cat "$TOKENTAP_SPOOL"/*.jsonl 2>/dev/null | wc -l)
[ "$spooled" -eq 3 ] || fail "spool holds $spooled records, want 3"
check_no_sentinel "$TOKENTAP_SPOOL"
cat "$TOKENTAP_SPOOL"/*.jsonl >"$T/spooled.jsonl"
mock_wait_count 3
$CHECK --records "$T/spooled.jsonl" --mock-log "$MOCK_LOG" --expect-count 3 --comm curl

# 2. The collector comes up.
if [ -x "$BUILD/tokentapd" ] && [ "${AGENT_E2E_STANDIN:-0}" != 1 ]; then
	kind=tokentapd
	"$BUILD/tokentapd" --listen "unix:$SOCK" --db "$T/db.sqlite" \
		>"$T/collector.log" 2>&1 &
else
	kind=stand-in
	echo "build/tokentapd absent: using the Python stand-in collector"
	"$TT_PY" "$AGENT_E2E_DIR/clients/recorder.py" "$SOCK" "$T/received.jsonl" \
		>"$T/collector.log" 2>&1 &
fi
cpid=$!
on_exit "kill $cpid 2>/dev/null || true"
for _ in $(seq 100); do
	curl -s --unix-socket "$SOCK" -o /dev/null http://x/healthz && break
	sleep 0.1
done

# 3. One more program: it delivers its own record and the spooled ones.
call
for _ in $(seq 50); do
	[ -z "$(ls -A "$TOKENTAP_SPOOL" | grep -v '^\.')" ] && break
	sleep 0.1
done
[ -z "$(ls -A "$TOKENTAP_SPOOL" | grep -v '^\.')" ] || fail "spool not drained: $(ls -A "$TOKENTAP_SPOOL")"
call # and once more: nothing may be delivered twice
mock_wait_count 5

if [ "$kind" = tokentapd ]; then
	curl -sS --unix-socket "$SOCK" 'http://x/v1/usage?by=model' >"$T/usage.json"
	"$TT_PY" - "$T/usage.json" "$MOCK_LOG" "$TT_MOCK_DIR/expect.py" <<'PY' || fail "collector totals wrong"
import json, subprocess, sys
u = json.load(open(sys.argv[1]))
want_in = want_out = 0
n = 0
for line in open(sys.argv[2]):
    e = json.loads(line)
    x = json.loads(subprocess.run(["/usr/bin/python3", sys.argv[3], "--path", e["path"],
        "--status", str(e["status"]), e["body_file"]], check=True,
        capture_output=True, text=True).stdout)
    want_in += x["input_tokens"]; want_out += x["output_tokens"]; n += 1
t = u["total"]
print("collector:", t["calls"], t["input_tokens"], t["output_tokens"], "want", n, want_in, want_out)
sys.exit(0 if (t["calls"], t["input_tokens"], t["output_tokens"]) == (n, want_in, want_out) else 1)
PY
else
	sort "$T/received.jsonl" | uniq -d | grep . && fail "a record arrived twice"
	$CHECK --records "$T/received.jsonl" --mock-log "$MOCK_LOG" --expect-count 5
fi
check_no_sentinel "$T/collector.log" "$TOKENTAP_SPOOL"
echo "PASS ($kind)"
