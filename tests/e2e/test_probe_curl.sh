#!/usr/bin/env bash
# tokentap-probe with the curl command (libcurl on the system libssl):
# OpenAI and Anthropic calls over HTTP/1.1 and HTTP/2, streamed and not,
# compressed, and a recorded fixture replayed; every client record's
# figures equal expect.py's for the body the mock sent.  The mock (Python,
# same libssl) is the server end: its HTTP/1.1 records come out with side
# "server".  Afterwards no uprobe of the probe remains.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../mock/lib.sh"
. "$here/probe_clients/lib_probe.sh"

probe_preflight
command -v curl >/dev/null || skip "curl is not installed"
mock_start || fail "the mock did not start"
probe_start

json='content-type: application/json'
chat() { # chat HTTPFLAG BODY [CURLARGS...]
	local v=$1 body=$2
	shift 2
	mock_curl "$v" -o /dev/null -H "$json" "$(mock_url /v1/chat/completions)" \
		-d "$body" "$@"
}
chat --http1.1 '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello over HTTP/1.1"}]}'
chat --http1.1 '{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Stream with usage"}]}'
chat --http2 '{"model":"gpt-4o","max_tokens":40,"messages":[{"role":"user","content":"HTTP/2, gzip"}]}' --compressed
chat --http2 '{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"A stream without include_usage"}]}'
mock_curl --http2 -o /dev/null -H "$json" -H 'anthropic-version: 2023-06-01' \
	"$(mock_url /v1/messages)" -d '{"model":"claude-3-5-haiku-latest","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Anthropic, streamed"}]}'
mock_curl --http1.1 -o /dev/null -H "$json" -H 'anthropic-version: 2023-06-01' \
	"$(mock_url /v1/messages)" -d '{"model":"claude-3-5-haiku-latest","max_tokens":64,"messages":[{"role":"user","content":"Anthropic, not streamed"}]}'
mock_curl --http2 -o /dev/null -H "$json" "$(mock_url /v1/responses)" \
	-d '{"model":"gpt-4.1-mini","input":"The Responses API","stream":true}'
n=7
FX=$(fixtures_dir)
if [ -n "$FX" ] && [ -f "$FX/openai/chat-nonstream-cached-gpt4omini.json" ]; then
	mock_curl --http1.1 -o /dev/null -H "$json" \
		"$(mock_url /fx/openai/chat-nonstream-cached-gpt4omini/v1/chat/completions)" \
		-d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"fixture"}]}'
	n=8
else
	echo "skip: wire fixtures absent, fixture replay left out"
fi
[ "$(mock_log_count)" -eq "$n" ] || fail "the mock logged $(mock_log_count) responses, want $n"

# Records of a call leave when the exchange ends; stop the probe to be sure
# every connection has been closed and flushed.
probe_stop
probe_check --side client --comm curl --min "$n"
# The server end: the mock's own process, HTTP/1.1 and HTTP/2 alike.
probe_check --side server --pid "$MOCK_PID" --min "$n"
echo "ok - curl under tokentap-probe"
