#!/usr/bin/env bash
# Chaos: one client process, 64 threads x 100 LLM calls on kept-alive
# connections, under the agent.  No crash, every call answered, and exactly
# one record per call (every record whole: status 200, provider usage,
# no error), nothing of the API key in any output.
# CHAOS_FULL=0: 16 threads x 25 calls.
set -euo pipefail
. "$(dirname "$0")/chaos_clients/chaos_lib.sh"
CL=$BUILD/tests/chaos_clients/chaos_client
[ -x "$CL" ] || skip "chaos client not built ($CL); run make"
agent_setup
if [ "${CHAOS_FULL:-1}" = 0 ]; then TH=16 CALLS=25; else TH=64 CALLS=100; fi
printf '%s' '{"model":"gpt-4o-mini","max_tokens":16,"messages":[{"role":"user","content":"chaos threads"}]}' >"$T/req.json"

start=$(date +%s%N)
with_agent "$CL" --port "$MOCK_PORT" --ca "$MOCK_CA" --key "$SENTINEL" \
	--body "$T/req.json" --threads "$TH" --calls "$CALLS" >"$T/client.out" 2>"$T/client.err" ||
	fail "client failed: $(cat "$T/client.out" "$T/client.err")"
ms=$((($(date +%s%N) - start) / 1000000))
want=$((TH * CALLS))
grep -q "^calls=$want ok=$want failed=0 " "$T/client.out" || fail "client: $(cat "$T/client.out")"
[ -s "$T/client.err" ] && fail "client stderr: $(cat "$T/client.err")"

# The records are written by the calling threads, at the end of each exchange.
got=$(wc -l <"$T/out.jsonl")
[ "$got" -eq "$want" ] || fail "$got records for $want calls"
"$TT_PY" - "$T/out.jsonl" "$want" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
ids = {r["id"] for r in recs}
assert len(ids) == len(recs), "duplicate record ids"
bad = [r for r in recs if r["status"] != 200 or r["error"] is not None
       or r["usage_source"] != "provider" or r["input_tokens"] is None
       or r["output_tokens"] is None or r["model"] is None]
assert not bad, "%d partial records, e.g. %r" % (len(bad), bad[0])
assert len({r["pid"] for r in recs}) == 1
print("records: %d, ids unique, all whole, threads seen: %d" %
      (len(recs), len({r["tid"] for r in recs})))
PY
check_no_sentinel "$T/out.jsonl" "$T/client.out" "$T/client.err"
echo "chaos threads: $TH threads x $CALLS calls = $want calls, $got records, ${ms} ms"
echo PASS
