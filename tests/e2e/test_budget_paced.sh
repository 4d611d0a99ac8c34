#!/usr/bin/env bash
# Enforce mode on real timing (issue #11):
#  1. A stream that outlasts the lease's lifetime keeps its hold: the
#     agent keeps the lease alive while a reservation is outstanding.  With
#     a budget of one call and leases of 2 s, process A streams for 5 s;
#     process B, starting at 3 s, is blocked (before: the collector forgot
#     A's lease at 2 s and granted B the same call: 2 calls for a budget
#     of 1).
#  2. A held request bigger than the socket buffers is sent whole by curl
#     (whose OpenSSL I/O layer gives no socket to wait on), with both CPUs
#     busy: three runs of a 3 MB request, each allowed and answered (before:
#     half of them failed with "SSL error 3").
set -euo pipefail
. "$(dirname "$0")/clients/agent_lib.sh"
agent_setup
[ -x "$BUILD/tokentapd" ] || skip "tokentapd not built"

start_collector() { # CONFIG_JSON
	printf '%s' "$1" >"$T/c.json"
	rm -f "$T/c.db"*
	"$BUILD/tokentapd" --listen "unix:$T/c.sock" --db "$T/c.db" --config "$T/c.json" \
		>"$T/c.out" 2>"$T/c.err" &
	CPID=$!
	on_exit "kill $CPID 2>/dev/null; wait $CPID 2>/dev/null"
	for _ in $(seq 100); do grep -q '^tokentapd: ready' "$T/c.out" && break; sleep 0.1; done
	grep -q '^tokentapd: ready' "$T/c.out" || fail "tokentapd did not start: $(cat "$T/c.err")"
}
stop_collector() { kill "$CPID"; wait "$CPID" 2>/dev/null || true; }

# 1. The lease outlives its TTL while A streams.
start_collector '{"budgets": [{"name": "one-call", "scope": {"task": "*"},
  "limit": {"calls": 1}, "window": "task", "action": "deny"}], "leases": {"ttl_s": 2}}'
printf '%s' '{"model":"gpt-4o-mini","max_tokens":1000,"stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"x"}]}' >"$T/req.json"
E=(TOKENTAP_MODE=enforce TOKENTAP_COLLECTOR="unix:$T/c.sock" TOKENTAP_TASK=one LD_PRELOAD="$AGENT_SO")
call() { # TAG MARKERS
	env "${E[@]}" "$TT_PY" "$AGENT_E2E_DIR/clients/paced_client.py" seq "$MOCK_CA" "$SENTINEL" \
		"$T/req.json" "$T/$1" "$(mock_url "$2/t-$1/v1/chat/completions")"
}
call A /ttft/0/rate/20/words/100 >"$T/A.out" 2>&1 &
a=$!
sleep 3
call B "" >"$T/B.out" 2>&1 || true
wait "$a" || fail "A failed: $(cat "$T/A.out")"
grep -q 'status=200' "$T/A.out" || fail "A was not answered: $(cat "$T/A.out")"
grep -q 'status=403' "$T/B.out" || fail "B was not blocked: $(cat "$T/B.out")"
[ "$(mock_log_count)" -eq 1 ] || fail "the mock answered $(mock_log_count) calls for a budget of 1"
dur=$(mock_log_last duration_ms)
"$TT_PY" -c 'import sys; sys.exit(0 if float(sys.argv[1]) >= 4500 else 1)' "$dur" ||
	fail "A's stream lasted $dur ms, want more than twice the 2 s lease"
echo "ok - a ${dur%.*} ms stream kept its lease past its 2 s TTL: the second call was blocked"
stop_collector

# 2. A 3 MB held request under load, three times.
start_collector '{"budgets": [{"name": "ten", "scope": {"task": "*"}, "limit": {"calls": 10},
  "window": "task", "action": "deny"}]}'
"$TT_PY" -c '
import json, sys
print(json.dumps({"model": "gpt-4o-mini", "max_tokens": 20,
      "messages": [{"role": "user", "content": "a " * 1500000}]}), end="")' >"$T/big.json"
burners=()
for _ in 1 2; do
	timeout 300 sh -c 'while :; do :; done' &
	burners+=($!)
done
on_exit "kill ${burners[*]} 2>/dev/null || true"
for i in 1 2 3; do
	code=$(env "${E[@]}" TOKENTAP_TASK=big curl -sS --max-time 60 --cacert "$MOCK_CA" --http1.1 \
		-H 'Content-Type: application/json' --data-binary @"$T/big.json" -o /dev/null \
		-w '%{http_code}' "$(mock_url /v1/chat/completions)" 2>"$T/big.$i.err") ||
		fail "run $i: curl failed: $(cat "$T/big.$i.err")"
	[ "$code" = 200 ] || fail "run $i: answered $code"
	grep -q 'SSL error' "$T/big.$i.err" && fail "run $i: $(cat "$T/big.$i.err")"
done
kill "${burners[@]}" 2>/dev/null || true
echo "ok - a 3 MB request held for its budget check was sent whole three times with both CPUs busy"
check_no_sentinel "$T/out.jsonl" "$T"/*.err "$T"/*.out
