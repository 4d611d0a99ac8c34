#!/usr/bin/env bash
# Collector unreachable in enforce mode: by default the agent fails open
# (the call goes to the provider) and says so once; TOKENTAP_FAIL=closed
# refuses the call (it never reaches the provider) with a 403 naming
# tokentap, and says so once.
set -euo pipefail
. "$(dirname "$0")/clients/agent_lib.sh"
agent_setup
[ -x "$CLIENTS/tt_client" ] || skip "tt_client not built; run make"

printf '%s' '{"model":"gpt-4o-mini","max_tokens":20,"messages":[{"role":"user","content":"ping"}]}' >"$T/req.json"
NOWHERE="unix:$T/nobody-listens.sock"

run() { # FAILMODE OUTFILE
	TOKENTAP_MODE=enforce TOKENTAP_COLLECTOR="$NOWHERE" TOKENTAP_FAIL=$1 TOKENTAP_TASK=t \
		with_agent "$CLIENTS/tt_client" --port "$MOCK_PORT" --ca "$MOCK_CA" \
		--body "$T/req.json" --threads 2 --calls 3 >"$2" 2>"$2.err" || true
}

# Open (default and explicit): every call reaches the provider.
for mode in "" open; do
	before=$(mock_log_count)
	run "$mode" "$T/open.out"
	[ "$(grep -c 'status=200' "$T/open.out")" = 6 ] || fail "fail-open: $(cat "$T/open.out" "$T/open.out.err")"
	mock_wait_count $((before + 6)) || fail "fail-open: the mock did not get 6 calls"
	[ "$(grep -c 'cannot be reached' "$T/open.out.err")" = 1 ] ||
		fail "fail-open: expected one line: $(cat "$T/open.out.err")"
	grep -q 'go through unchecked (TOKENTAP_FAIL=open)' "$T/open.out.err" || fail "fail-open line"
done

# Closed: no call reaches the provider; each gets the 403.
before=$(mock_log_count)
run closed "$T/closed.out"
[ "$(grep -c 'status=403' "$T/closed.out")" = 6 ] || fail "fail-closed: $(cat "$T/closed.out" "$T/closed.out.err")"
sleep 0.3
[ "$(mock_log_count)" = "$before" ] || fail "fail-closed: a call reached the mock"
[ "$(grep -c 'cannot be reached' "$T/closed.out.err")" = 1 ] ||
	fail "fail-closed: expected one line: $(cat "$T/closed.out.err")"
grep -q 'calls are refused (TOKENTAP_FAIL=closed)' "$T/closed.out.err" || fail "fail-closed line"

# The body a fail-closed call gets (python: SSL_read_ex/SSL_write_ex).
body=$(TOKENTAP_MODE=enforce TOKENTAP_COLLECTOR="$NOWHERE" TOKENTAP_FAIL=closed TOKENTAP_TASK=t \
	with_agent "$TT_PY" -c '
import json, ssl, sys, urllib.error, urllib.request
ctx = ssl.create_default_context(cafile=sys.argv[2]); ctx.set_alpn_protocols(["http/1.1"])
req = urllib.request.Request("https://127.0.0.1:%s/v1/messages" % sys.argv[1],
    data=open(sys.argv[3], "rb").read(), headers={"anthropic-version": "2023-06-01"})
try:
    urllib.request.urlopen(req, context=ctx, timeout=10); print("ALLOWED")
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode())' "$MOCK_PORT" "$MOCK_CA" "$T/req.json" 2>/dev/null)
echo "fail-closed answer: $body"
"$TT_PY" -c '
import json, sys
code, body = sys.argv[1].split(" ", 1)
d = json.loads(body)
assert code == "403" and d["type"] == "error", d
assert d["error"]["type"] == "tokentap_budget_exceeded" and "fail-closed" in d["error"]["message"], d
assert d["error"]["message"].startswith("tokentap:"), d' "$body"
grep -c '"blocked":true' "$T/out.jsonl" >/dev/null || fail "no blocked record"
echo PASS
