#!/usr/bin/env bash
# Overshoot under concurrency: 4 processes x 4 threads (16 callers, each
# call on its own connection, head and body in separate writes) all spend
# one task's dollar budget that fits 5 worst-case calls.  Worst case of a
# call = (body bytes / 2 + 16) input tokens + max_tokens output tokens at
# gpt-4o-mini's prices.  The documented bound (collector/README.md): the
# dollars the allowed calls really cost never exceed the limit when each
# call's real counts stay within its reservation - whatever the number of
# concurrent callers.  The test checks it on the records and prints the
# figures.
set -euo pipefail
. "$(dirname "$0")/clients/agent_lib.sh"
agent_setup
[ -x "$BUILD/tokentapd" ] || skip "tokentapd not built; run make"
[ -x "$CLIENTS/tt_client" ] || skip "tt_client not built; run make"

printf '%s' '{"model":"gpt-4o-mini","max_tokens":150,"messages":[{"role":"user","content":"summarise the ticket and propose a fix"}]}' >"$T/req.json"
BYTES=$(wc -c <"$T/req.json")
# 5 worst cases exactly.
LIMIT=$("$TT_PY" -c "b=$BYTES; print('%.12f' % (5 * ((b // 2 + 16) * 0.15e-6 + 150 * 0.60e-6)))")
cat >"$T/c.json" <<J
{"budgets": [{"name": "five-calls", "scope": {"task": "*"}, "limit": {"usd": $LIMIT},
              "window": "task", "action": "deny"}],
 "leases": {"fraction": 0.25}}
J
"$BUILD/tokentapd" --listen "unix:$T/c.sock" --db "$T/c.db" --config "$T/c.json" \
	>"$T/c.out" 2>"$T/c.err" &
CPID=$!
on_exit "kill $CPID 2>/dev/null; wait $CPID 2>/dev/null"
for _ in $(seq 100); do grep -q '^tokentapd: ready' "$T/c.out" && break; sleep 0.1; done
grep -q '^tokentapd: ready' "$T/c.out" || fail "tokentapd did not start: $(cat "$T/c.err")"

before=$(mock_log_count)
pids=()
for p in 1 2 3 4; do
	TOKENTAP_MODE=enforce TOKENTAP_COLLECTOR="unix:$T/c.sock" TOKENTAP_TASK=burst \
		with_agent "$CLIENTS/tt_client" --port "$MOCK_PORT" --ca "$MOCK_CA" \
		--body "$T/req.json" --threads 4 --calls 2 >"$T/p$p.out" 2>"$T/p$p.err" &
	pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || true; done
cat "$T"/p*.out >"$T/all.out"
ok=$(grep -c 'status=200' "$T/all.out" || true)
denied=$(grep -c 'status=403' "$T/all.out" || true)
[ $((ok + denied)) = 32 ] || fail "expected 32 answers (200 or 403): $(cat "$T/all.out" "$T"/p*.err)"
sleep 0.3
reached=$(( $(mock_log_count) - before ))
[ "$reached" = "$ok" ] || fail "the mock received $reached calls, the clients got $ok answers"

"$TT_PY" - "$T/out.jsonl" "$ok" "$denied" "$LIMIT" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
ok, denied, limit = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
a = [r for r in recs if not r["blocked"]]
b = [r for r in recs if r["blocked"]]
assert len(a) == ok and len(b) == denied, (len(a), len(b), ok, denied)
spent = sum(r["input_tokens"] * 0.15e-6 + r["output_tokens"] * 0.60e-6 for r in a)
print("16 callers: %d allowed, %d blocked; spent $%.6f of $%.6f; overshoot $%.6f (bound: $0)"
      % (ok, denied, spent, limit, max(0.0, spent - limit)))
assert ok >= 5, "a budget of 5 worst cases must let at least 5 calls through"
assert spent <= limit + 1e-12, "overshoot beyond the documented bound"
PY
echo PASS
