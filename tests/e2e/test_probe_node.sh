#!/usr/bin/env bash
# tokentap-probe with Node.js (its OpenSSL is inside the node executable)
# running the official openai and @anthropic-ai/sdk packages against the
# mock, streamed and not: every record's figures equal expect.py's for the
# body the mock sent.  Twice: attached with --exe, and found on its own
# (a node process already running when the probe starts).  The API keys
# never appear in a record or in the probe's output.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../mock/lib.sh"
. "$here/probe_clients/lib_probe.sh"

NODE=${NODE:-/usr/bin/node}

probe_preflight
probe_node_sdks
mock_start || fail "the mock did not start"
export NODE_EXTRA_CA_CERTS=$MOCK_CA

# 1. --exe: the node executable is attached before node starts.
probe_start --exe "$NODE"
"$NODE" "$PROBE_CLIENTS/node_sdk.mjs" "$MOCK_URL" &
client=$!
wait "$client" || fail "the node client failed"
[ "$(mock_log_count)" -eq 4 ] || fail "the mock logged $(mock_log_count) responses, want 4"
probe_stop
probe_check --side client --pid "$client" --min 4
if grep -l 'tokentap-secret' "$PROBE_OUT" "$PROBE_LOG"; then
	fail "an API key reached the probe's output"
fi
echo "ok - node with --exe: 4 SDK calls, figures equal"

# 2. Found on its own: node runs before the probe starts and calls after.
PROBE_OUT=$MOCK_TMP/probe-records-2.jsonl
go=$MOCK_TMP/go
"$NODE" "$PROBE_CLIENTS/node_sdk.mjs" "$MOCK_URL" "$go" &
client=$!
on_exit "kill $client 2>/dev/null || true"
sleep 0.5 # let node map its executable (it is, from exec on)
probe_start -v
grep -q "attached $(readlink -f "$NODE") " "$PROBE_LOG" ||
	fail "the running node was not found: $(cat "$PROBE_LOG")"
touch "$go"
wait "$client" || fail "the node client failed"
[ "$(mock_log_count)" -eq 8 ] || fail "the mock logged $(mock_log_count) responses, want 8"
probe_stop
probe_check --side client --pid "$client" --after 4 --min 4
echo "ok - a running node found without --exe: 4 SDK calls, figures equal"
