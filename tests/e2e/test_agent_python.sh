#!/usr/bin/env bash
# CPython under the agent: urllib (blocking sockets) and asyncio streams
# (memory BIOs), both through SSL_read_ex/SSL_write_ex on a libssl that
# _ssl loaded RTLD_LOCAL.  Checks that the hooks really see those calls
# (the real functions are found through the loaded libssl, not RTLD_NEXT),
# output identical to what the mock sent, one correct record per call, no
# record for a non-LLM request, the key nowhere.
set -euo pipefail
. "$(dirname "$0")/clients/agent_lib.sh"
[ -x /usr/bin/python3 ] || skip "/usr/bin/python3 absent"
agent_setup
PY=/usr/bin/python3
CL=$AGENT_E2E_DIR/clients/py_client.py
FX=$(fixtures_dir)

printf '%s' '{"model":"gpt-4o-mini","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello from python"}]}' >"$T/req.json"

n=0
run_case() { # name mode path bodyfile
	local name=$1 mode=$2 path=$3 bodyf=$4 run
	for run in plain agent; do
		local pre=()
		[ "$run" = agent ] && pre=(env "LD_PRELOAD=$AGENT_SO" TOKENTAP_LOG=debug)
		"${pre[@]}" "$PY" "$CL" "$mode" "$MOCK_PORT" "$MOCK_CA" "$SENTINEL" \
			"$path" "$bodyf" >"$T/$name.$run.out" 2>"$T/$name.$run.err" ||
			fail "$name ($run): client failed: $(cat "$T/$name.$run.err")"
		n=$((n + 1))
		mock_wait_count "$n"
		[ "$(mock_log_count)" -eq "$n" ] || fail "$name: mock saw $(mock_log_count) calls, want $n"
		cmp -s "$T/$name.$run.out" "$(mock_log_last body_file)" ||
			fail "$name ($run): output differs from what the mock sent"
	done
	# The debug log proves the path taken: _ssl's libssl is not in the
	# global scope, so RTLD_NEXT cannot have found SSL_read_ex.
	grep -q "SSL_read_ex resolved through libssl" "$T/$name.agent.err" ||
		fail "$name: SSL_read_ex not resolved through the loaded libssl: $(cat "$T/$name.agent.err")"
	grep -Ev '^tokentap: (debug|info): ' "$T/$name.agent.err" | grep . &&
		fail "$name: unexpected stderr"
	echo "case $name: ok"
}

run_case urllib urllib /v1/chat/completions "$T/req.json"
run_case asyncio asyncio /v1/chat/completions "$T/req.json"
if [ -n "$FX" ]; then
	run_case urllib-fx urllib /fx/anthropic/messages-stream-basic-haiku3/v1/messages \
		"$FX/anthropic/messages-stream-basic-haiku3.request.json"
	run_case asyncio-fx asyncio /fx/openai/chat-stream-include-usage-toolcall/v1/chat/completions \
		"$FX/openai/chat-stream-include-usage-toolcall.request.json"
fi

"$TT_PY" -c '
import sys
lines = open(sys.argv[1]).read().splitlines()
open(sys.argv[2], "w").write("".join(l + "\n" for i, l in enumerate(lines) if i % 2))
' "$MOCK_LOG" "$T/agent.log"
$CHECK --records "$T/out.jsonl" --mock-log "$T/agent.log" --expect-count $((n / 2)) \
	--comm python3 --exe "$(readlink -f "$PY")" --app py_client --tls openssl

: >"$T/out.jsonl"
with_agent "$PY" "$CL" plain "$MOCK_PORT" "$MOCK_CA" >"$T/plain.out"
[ -s "$T/plain.out" ] || fail "healthz: no answer"
[ ! -s "$T/out.jsonl" ] || fail "a non-LLM request made a record"

check_no_sentinel "$T/out.jsonl" "$T"/*.err
echo "PASS: $n python calls"
