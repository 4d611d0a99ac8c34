#!/usr/bin/env bash
# A C client on raw OpenSSL under the agent: 32 threads making concurrent
# calls on separate connections; children forked without exec that call
# too (each ships its own records, none twice); SSL_peek before every read
# and the _ex entry points (peeked bytes are decoded once).  Output is
# compared byte for byte with a run without the agent.
set -euo pipefail
. "$(dirname "$0")/clients/agent_lib.sh"
CL=$CLIENTS/tt_client
[ -x "$CL" ] || skip "client not built ($CL); run make"
agent_setup
FX=$(fixtures_dir)
[ -n "$FX" ] || skip "fixtures absent: the replayed bodies make runs comparable"
# A recorded body, replayed byte for byte: both runs must print the same.
P=/fx/openai/chat-nonstream-cached-gpt4omini/v1/chat/completions
B=$FX/openai/chat-nonstream-cached-gpt4omini.request.json

run() { # name args...
	local name=$1
	shift
	"$CL" --port "$MOCK_PORT" --ca "$MOCK_CA" --key "$SENTINEL" "$@" \
		>"$T/$name.plain.out" 2>"$T/$name.plain.err" || fail "$name: plain run failed"
	local since
	mock_wait_count "$(($(wc -l <"$T/$name.plain.out") + ${done_calls:-0}))"
	since=$(mock_log_count)
	: >"$T/out.jsonl"
	with_agent "$CL" --port "$MOCK_PORT" --ca "$MOCK_CA" --key "$SENTINEL" "$@" \
		>"$T/$name.agent.out" 2>"$T/$name.agent.err" || fail "$name: agent run failed"
	cmp "$T/$name.plain.out" "$T/$name.agent.out" ||
		fail "$name: output differs with the agent"
	[ -s "$T/$name.agent.err" ] && fail "$name: stderr: $(cat "$T/$name.agent.err")"
	local calls
	calls=$(wc -l <"$T/$name.agent.out")
	mock_wait_count $((since + calls))
	$CHECK --records "$T/out.jsonl" --mock-log "$MOCK_LOG" --since "$since" \
		--expect-count "$calls" --comm tt_client >"$T/$name.check" ||
		fail "$name: records do not match"
	[ "$(wc -l <"$T/out.jsonl")" -eq "$calls" ] || fail "$name: record count"
	done_calls=$((${done_calls:-0} + 2 * calls))
	echo "case $name: $calls calls, $calls records: ok"
}

run threads32 --path "$P" --body "$B" --threads 32 --calls 2
run fork --path "$P" --body "$B" --threads 2 --fork 3
# Every process ships its own: the children's pids, not the parent's.
pids=$("$TT_PY" -c 'import json,sys; print(len({json.loads(l)["pid"] for l in open(sys.argv[1])}))' "$T/out.jsonl")
[ "$pids" -eq 4 ] || fail "fork: records from $pids processes, want 4"
run peek --path "$P" --body "$B" --threads 4 --peek
run peek-ex --path "$P" --body "$B" --threads 4 --peek --ex
# A streamed body read in small pieces after peeks.
run stream-peek --path /fx/anthropic/messages-stream-cache-write/v1/messages \
	--body "$FX/anthropic/messages-stream-cache-write.request.json" --threads 2 --peek

check_no_sentinel "$T/out.jsonl" "$T"/*.err
echo PASS
