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

OPENAI_VER=4.104.0
ANTHROPIC_VER=0.54.0
NODE=${NODE:-/usr/bin/node}

probe_preflight
[ -x "$NODE" ] || skip "no $NODE"
"$NODE" -e 'process.exit(+process.versions.node.split(".")[0] >= 18 ? 0 : 1)' ||
	skip "$NODE is older than Node 18"
export TT_NPM=$TT_TOP/build/npm
if [ ! -f "$TT_NPM/node_modules/openai/package.json" ] ||
	[ ! -f "$TT_NPM/node_modules/@anthropic-ai/sdk/package.json" ] ||
	! grep -q "\"version\": \"$OPENAI_VER\"" "$TT_NPM/node_modules/openai/package.json"; then
	command -v npm >/dev/null || skip "npm is not installed"
	timeout 180 npm install --no-save --no-audit --no-fund --prefix "$TT_NPM" \
		"openai@$OPENAI_VER" "@anthropic-ai/sdk@$ANTHROPIC_VER" >/dev/null 2>&1 ||
		skip "npm could not install openai@$OPENAI_VER @anthropic-ai/sdk@$ANTHROPIC_VER"
fi

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
