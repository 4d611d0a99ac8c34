#!/usr/bin/env bash
# Enforce mode end to end: a Python program loops on chat calls under the
# real agent (TOKENTAP_MODE=enforce) against the mock provider, with a
# tokentapd whose per-task dollar budget denies.  The calls past the limit
# never reach the mock, the program gets a 403 whose OpenAI-shaped JSON
# names tokentap, the rule and the task, the records say blocked, and the
# dollars spent stay within the budget (README: overshoot bound 0 when the
# request sets max_tokens).
set -euo pipefail
. "$(dirname "$0")/clients/agent_lib.sh"
agent_setup
[ -x "$BUILD/tokentapd" ] || skip "tokentapd not built; run make"

LIMIT=0.0005
cat >"$T/c.json" <<J
{"budgets": [{"name": "loop-cap", "scope": {"task": "*"}, "limit": {"usd": $LIMIT},
              "window": "task", "action": "deny"}]}
J
"$BUILD/tokentapd" --listen "unix:$T/c.sock" --db "$T/c.db" --config "$T/c.json" \
	>"$T/c.out" 2>"$T/c.err" &
CPID=$!
on_exit "kill $CPID 2>/dev/null; wait $CPID 2>/dev/null"
for _ in $(seq 100); do grep -q '^tokentapd: ready' "$T/c.out" && break; sleep 0.1; done
grep -q '^tokentapd: ready' "$T/c.out" || fail "tokentapd did not start: $(cat "$T/c.err")"

cat >"$T/loop.py" <<'PY'
import json, ssl, sys, urllib.error, urllib.request
port, ca, key, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
ctx = ssl.create_default_context(cafile=ca)
ctx.set_alpn_protocols(["http/1.1"])
ok = blocked = 0
for i in range(n):
    body = json.dumps({"model": "gpt-4o-mini", "max_tokens": 200,
                       "messages": [{"role": "user", "content": "step %d: keep going" % i}]}).encode()
    req = urllib.request.Request("https://127.0.0.1:%s/v1/chat/completions" % port, data=body,
                                 headers={"Authorization": "Bearer " + key,
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=20) as r:
            json.load(r)
            ok += 1
    except urllib.error.HTTPError as e:
        err = json.load(e)
        print("ERROR %d %s" % (e.code, json.dumps(err)))
        blocked += 1
print("ok=%d blocked=%d" % (ok, blocked))
PY
before=$(mock_log_count)
TOKENTAP_MODE=enforce TOKENTAP_COLLECTOR="unix:$T/c.sock" TOKENTAP_TASK=looper \
	with_agent "$TT_PY" "$T/loop.py" "$MOCK_PORT" "$MOCK_CA" "$SENTINEL" 12 \
	>"$T/loop.out" 2>"$T/loop.err" || fail "the looping client failed: $(cat "$T/loop.err")"
cat "$T/loop.out" | tail -n 2
ok=$(sed -n 's/^ok=\([0-9]*\) .*/\1/p' "$T/loop.out")
blocked=$(sed -n 's/.* blocked=\([0-9]*\)$/\1/p' "$T/loop.out")
[ "$blocked" -ge 1 ] || fail "no call was blocked ($ok allowed)"
[ "$ok" -ge 1 ] || fail "no call was allowed"
sleep 0.3
reached=$(( $(mock_log_count) - before ))
[ "$reached" = "$ok" ] || fail "the mock received $reached calls, the client had $ok answered"

# The error the program got: 403, OpenAI's shape, naming tokentap, rule, task.
grep '^ERROR' "$T/loop.out" | head -n 1 | "$TT_PY" -c '
import json, sys
line = sys.stdin.readline().split(" ", 2)
assert line[1] == "403", line
e = json.loads(line[2])["error"]
assert e["code"] == "tokentap_budget_exceeded" and e["type"] == "tokentap_budget_exceeded", e
m = e["message"]
assert m.startswith("tokentap:") and "\"loop-cap\"" in m and "\"looper\"" in m, m
print("client error:", m)'
[ "$(grep -c 'enforce: blocking LLM calls' "$T/loop.err")" = 1 ] || fail "expected one blocking line: $(cat "$T/loop.err")"

# Records: every call, the blocked ones marked; spend within the budget.
"$TT_PY" - "$T/out.jsonl" "$ok" "$blocked" "$LIMIT" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
ok, blocked, limit = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
b = [r for r in recs if r["blocked"]]
a = [r for r in recs if not r["blocked"]]
assert len(a) == ok and len(b) == blocked, (len(a), len(b), ok, blocked)
for r in b:
    assert r["status"] == 403 and r["task"] == "looper" and r["request_model"] == "gpt-4o-mini", r
    assert r["max_tokens"] == 200 and r["input_tokens"] == 0 and r["output_tokens"] == 0, r
# gpt-4o-mini: $0.15 / $0.60 per 1M tokens (data/prices.json)
spent = sum(r["input_tokens"] * 0.15e-6 + r["output_tokens"] * 0.60e-6 for r in a)
print("allowed %d, blocked %d, spent $%.6f of $%.6f (overshoot $%.6f)" % (
    ok, blocked, spent, limit, max(0.0, spent - limit)))
assert spent <= limit + 1e-12, spent
PY
check_no_sentinel "$T/c.db" "$T/c.out" "$T/c.err" "$T/loop.err" "$T/out.jsonl"
echo PASS
