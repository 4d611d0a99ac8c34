#!/usr/bin/env bash
# tokentap's demo: a collector on a fresh database, a local mock provider,
# three unmodified programs under the agent, then the report.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

. tests/mock/lib.sh

work=$(mktemp -d "${TMPDIR:-/tmp}/tokentap-demo.XXXXXX")
on_exit "rm -rf '$work'"
sock=$work/tokentapd.sock

echo "== starting tokentapd (SQLite at $work/tokentap.db)"
build/tokentapd --listen "unix:$sock" --db "$work/tokentap.db" \
	>"$work/tokentapd.log" 2>&1 &
daemon=$!
on_exit "kill $daemon 2>/dev/null; wait $daemon 2>/dev/null"
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || { cat "$work/tokentapd.log"; fail "tokentapd did not start"; }

echo "== starting the mock LLM provider"
mock_start >/dev/null || fail "the mock provider did not start"
export MOCK_URL MOCK_CA SSL_CERT_FILE=$MOCK_CA
export TOKENTAP_COLLECTOR=unix:$sock

run() { build/tokentap run "$@"; }

echo "== running three programs under the agent"
run --feature support-copilot -- /usr/bin/python3 demo/apps.py copilot
run --feature summariser --tenant acme -- /usr/bin/python3 demo/apps.py summarise
run --feature planner --task ticket-4711 --tenant globex -- /usr/bin/python3 demo/apps.py agent
# The curl command too: one call, streamed, over HTTP/2.
run --feature cli --task one-off -- curl -sS --cacert "$MOCK_CA" -o /dev/null \
	"$MOCK_URL/v1/chat/completions" -H 'Content-Type: application/json' \
	-d '{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hello"}]}'

echo
echo "== where the money goes, by feature"
build/tokentap report --collector "unix:$sock" --by feature
echo
echo "== by model"
build/tokentap report --collector "unix:$sock" --by model
echo
echo "== by task"
build/tokentap report --collector "unix:$sock" --by task --top 5
