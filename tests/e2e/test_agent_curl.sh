#!/usr/bin/env bash
# The curl command under the agent: HTTP/1.1 and HTTP/2, with and without
# --compressed, synthetic calls and recorded provider bodies (non-streamed
# JSON, OpenAI and Anthropic SSE).  Checks: curl's output is byte-identical
# to what the mock sent, with and without the agent; one record per call
# with the figures expect.py reads from the mock's body; attribution from
# the environment and from X-Tokentap-* headers; no record for a non-LLM
# request; the API key nowhere.
set -euo pipefail
. "$(dirname "$0")/clients/agent_lib.sh"
agent_setup
FX=$(fixtures_dir)

req='{"model":"gpt-4o-mini","max_tokens":50,"messages":[{"role":"user","content":"Say something about tokens and money."}]}'
printf '%s' "$req" >"$T/req.json"

# run_case NAME URL_PATH BODY_FILE CURL_ARGS...: one call without and one
# with the agent; each output must equal the body the mock logged.
n=0
run_case() {
	local name=$1 path=$2 bodyf=$3
	shift 3
	local mode
	for mode in plain agent; do
		local pre=()
		[ "$mode" = agent ] && pre=(env "LD_PRELOAD=$AGENT_SO")
		"${pre[@]}" curl -sS --max-time 30 --cacert "$MOCK_CA" \
			-H "Authorization: Bearer $SENTINEL" \
			-H 'Content-Type: application/json' \
			--data-binary @"$bodyf" "$@" \
			-o "$T/$name.$mode.out" "$(mock_url "$path")" \
			2>"$T/$name.$mode.err" || fail "$name ($mode): curl failed"
		n=$((n + 1))
		mock_wait_count "$n"
		[ "$(mock_log_count)" -eq "$n" ] || fail "$name: mock saw $(mock_log_count) calls, want $n"
		cmp -s "$T/$name.$mode.out" "$(mock_log_last body_file)" ||
			fail "$name ($mode): output differs from what the mock sent"
		[ -s "$T/$name.$mode.err" ] && fail "$name ($mode): stderr: $(cat "$T/$name.$mode.err")"
	done
	# Recorded bodies are replayed byte for byte: compare the two runs too.
	cmp -s "$T/$name.plain.out" "$T/$name.agent.out" ||
		[ "${path#/fx/}" = "$path" ] ||
		fail "$name: output with the agent differs from without"
	echo "case $name: ok"
}

run_case h1 /v1/chat/completions "$T/req.json" --http1.1
run_case h1gz /v1/chat/completions "$T/req.json" --http1.1 --compressed
run_case h2 /v1/chat/completions "$T/req.json"
run_case h2gz /v1/chat/completions "$T/req.json" --compressed
run_case h2anth /v1/messages "$T/req.json" --compressed -H 'anthropic-version: 2023-06-01'

if [ -n "$FX" ]; then
	fx() { # provider name suffix
		local rq="$FX/$1/$2.request.json"
		[ -f "$rq" ] || rq=$T/req.json
		run_case "fx-$2" "/fx/$1/$2$3" "$rq" "${@:4}"
	}
	fx openai chat-nonstream-cached-gpt4omini /v1/chat/completions --compressed
	fx openai chat-stream-include-usage-toolcall /v1/chat/completions --http1.1
	fx openai responses-stream-basic /v1/responses
	fx anthropic messages-stream-cache-write /v1/messages --http1.1 --compressed
	fx anthropic messages-nonstream-cache-read /v1/messages
else
	echo "fixtures absent: recorded bodies not replayed (synthetic calls only)"
fi

# Only the agent runs produced records: half of the mock's responses, so
# check them against the agent runs' log entries only.
"$TT_PY" - "$MOCK_LOG" "$T/agent.log" <<'PY'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
with open(sys.argv[2], "w") as out:
    for i, l in enumerate(lines):
        if i % 2 == 1:
            out.write(l + "\n")
PY
$CHECK --records "$T/out.jsonl" --mock-log "$T/agent.log" \
	--expect-count $((n / 2)) --comm curl --exe "$(readlink -f "$(command -v curl)")" \
	--app curl --tls openssl --task '' --tenant ''

# Attribution: the environment, and a request header that overrides it.
: >"$T/out.jsonl"
since=$(mock_log_count)
TOKENTAP_TASK=env-task TOKENTAP_TENANT=acme TOKENTAP_FEATURE=search \
	with_agent mock_curl --http1.1 -H "Authorization: Bearer $SENTINEL" \
	-H 'Content-Type: application/json' -H 'X-Tokentap-Task: header-task' \
	--data-binary @"$T/req.json" -o /dev/null "$(mock_url /v1/chat/completions)"
mock_wait_count $((since + 1))
$CHECK --records "$T/out.jsonl" --mock-log "$MOCK_LOG" --since "$since" \
	--expect-count 1 --task header-task --tenant acme --feature search

# A request that is no LLM call: answered, and no record.
: >"$T/out.jsonl"
with_agent mock_curl -o "$T/health.out" "$(mock_url /healthz)"
with_agent mock_curl --http1.1 -o "$T/health.out" "$(mock_url /healthz)"
[ -s "$T/health.out" ] || fail "healthz: empty answer"
[ ! -s "$T/out.jsonl" ] || fail "a non-LLM request made a record: $(cat "$T/out.jsonl")"

# Fail open: an out file that cannot be opened costs one warning line and
# nothing else.
before=$(mock_log_count)
TOKENTAP_OUT=$T/no/such/dir/out.jsonl with_agent mock_curl --http1.1 \
	-H 'Content-Type: application/json' --data-binary @"$T/req.json" \
	"$(mock_url /v1/chat/completions)" >"$T/failopen.out" 2>"$T/failopen.err" ||
	fail "fail-open: curl failed"
mock_wait_count $((before + 1))
cmp -s "$T/failopen.out" "$(mock_log_last body_file)" || fail "fail-open: output differs"
[ "$(wc -l <"$T/failopen.err")" -eq 1 ] && grep -q '^tokentap: warn: TOKENTAP_OUT' "$T/failopen.err" ||
	fail "fail-open: want one warning line, got: $(cat "$T/failopen.err")"

check_no_sentinel "$T/out.jsonl" "$T"/*.err "$TOKENTAP_SPOOL"
echo "PASS: $n curl calls"
