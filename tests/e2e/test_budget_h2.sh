#!/usr/bin/env bash
# Enforce mode over HTTP/2: the curl command (HTTP/2 over TLS by default)
# under the agent against the mock provider, with a tokentapd whose
# per-task budget fits 2 calls.  A synthetic 403 cannot be slipped into an
# HTTP/2 stream, so a denied call's SSL_write fails: curl exits with an
# error whose text names tokentap, the rule and the task; the mock never
# receives the call; its record says blocked.  Both with one call per curl
# process (the lease comes and goes with the process) and with four calls
# on one reused connection (the third is refused, and the connection with
# it; curl opens a new one for the fourth, which is refused too).
set -euo pipefail
. "$(dirname "$0")/clients/agent_lib.sh"
agent_setup
[ -x "$BUILD/tokentapd" ] || skip "tokentapd not built; run make"
curl --version | grep -qw HTTP2 || skip "this curl has no HTTP/2"

cat >"$T/c.json" <<J
{"budgets": [{"name": "two-calls", "scope": {"task": "*"}, "limit": {"calls": 2},
              "window": "task", "action": "deny"}]}
J
"$BUILD/tokentapd" --listen "unix:$T/c.sock" --db "$T/c.db" --config "$T/c.json" \
	>"$T/c.out" 2>"$T/c.err" &
CPID=$!
on_exit "kill $CPID 2>/dev/null; wait $CPID 2>/dev/null"
for _ in $(seq 100); do grep -q '^tokentapd: ready' "$T/c.out" && break; sleep 0.1; done
grep -q '^tokentapd: ready' "$T/c.out" || fail "tokentapd did not start: $(cat "$T/c.err")"

printf '%s' '{"model":"gpt-4o-mini","max_tokens":30,"messages":[{"role":"user","content":"one more step"}]}' >"$T/req.json"

# call NAME TASK NURLS: one curl process, NURLS calls on one connection.
call() {
	local name=$1 task=$2 n=$3 urls=() i
	for ((i = 0; i < n; i++)); do urls+=(-o /dev/null "$(mock_url /v1/chat/completions)"); done
	TOKENTAP_MODE=enforce TOKENTAP_COLLECTOR="unix:$T/c.sock" TOKENTAP_TASK=$task \
		with_agent curl -sS --max-time 20 --cacert "$MOCK_CA" \
		-H "Authorization: Bearer $SENTINEL" -H 'Content-Type: application/json' \
		--data-binary @"$T/req.json" -w '%{http_code} %{http_version}\n' \
		"${urls[@]}" >"$T/$name.out" 2>"$T/$name.err"
}

# One call per process: 2 pass, the next 2 fail.
for i in 1 2 3 4; do
	before=$(mock_log_count)
	rc=0
	call "solo$i" solo 1 || rc=$?
	if [ "$i" -le 2 ]; then
		[ "$rc" = 0 ] || fail "call $i: curl failed ($rc): $(cat "$T/solo$i.err")"
		grep -qx '200 2' "$T/solo$i.out" || fail "call $i: not a 200 over HTTP/2: $(cat "$T/solo$i.out")"
		mock_wait_count $((before + 1)) || fail "call $i: the mock did not get it"
	else
		[ "$rc" != 0 ] || fail "call $i: curl succeeded past the budget"
		grep -q 'tokentap' "$T/solo$i.err" || fail "call $i: curl's error does not name tokentap: $(cat "$T/solo$i.err")"
		grep -q 'budget rule "two-calls" for task "solo"' "$T/solo$i.err" ||
			fail "call $i: curl's error does not name the rule and task: $(cat "$T/solo$i.err")"
		sleep 0.3
		[ "$(mock_log_count)" = "$before" ] || fail "call $i: a refused call reached the mock"
	fi
done
echo "solo: $(grep -m1 '^curl:' "$T/solo3.err")"
[ "$(grep -c '^tokentap: warn: enforce: blocking LLM calls' "$T/solo3.err")" = 1 ] ||
	fail "expected one tokentap line: $(cat "$T/solo3.err")"

# Four calls on one connection: 2 pass, then the connection is refused.
before=$(mock_log_count)
rc=0
call multi multi 4 || rc=$?
[ "$rc" != 0 ] || fail "multi: curl succeeded past the budget"
[ "$(grep -c '^200 2$' "$T/multi.out")" = 2 ] || fail "multi: expected 2 answered calls: $(cat "$T/multi.out" "$T/multi.err")"
grep -q 'budget rule "two-calls" for task "multi"' "$T/multi.err" || fail "multi: $(cat "$T/multi.err")"
mock_wait_count $((before + 2)) || fail "multi: the mock did not get 2 calls"
sleep 0.3
[ "$(mock_log_count)" = $((before + 2)) ] || fail "multi: the mock got $(( $(mock_log_count) - before )) calls, want 2"

# Records: per task 2 answered and 2 blocked, blocked ones with the request's fields.
"$TT_PY" - "$T/out.jsonl" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
for task in ("solo", "multi"):
    mine = [r for r in recs if r["task"] == task]
    ok = [r for r in mine if not r["blocked"]]
    b = [r for r in mine if r["blocked"]]
    assert len(ok) == 2 and len(b) == 2, (task, len(ok), len(b), mine)
    for r in ok:
        assert r["status"] == 200 and r["http"] == "2" and r["error"] is None, r
    for r in b:
        assert r["http"] == "2" and r["error"] == "blocked" and r["status"] is None, r
        assert r["request_model"] == "gpt-4o-mini" and r["max_tokens"] == 30, r
        assert r["provider"] == ok[0]["provider"] and r["api"] == "chat.completions", r
        assert r["path"] == "/v1/chat/completions" and r["prompt_hash"] == ok[0]["prompt_hash"], r
        assert r["input_tokens"] == 0 and r["output_tokens"] == 0 and r["side"] == "client", r
print("records: %d, per task 2 answered and 2 blocked" % len(recs))
PY
check_no_sentinel "$T/c.db" "$T/c.out" "$T/c.err" "$T/out.jsonl" "$T"/solo*.err "$T/multi.err"
echo PASS
