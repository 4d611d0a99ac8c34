#!/usr/bin/env bash
# tokentap-probe with Bun-built programs, whose TLS is a BoringSSL linked
# into the executable without symbols: Claude Code (its native build from
# npm) and bun itself (both pinned, scripts/npm-apps.sh).
#
#   - Claude Code, pointed at the mock as its docs allow (ANTHROPIC_BASE_URL,
#     NODE_EXTRA_CA_CERTS), `claude -p` once fast and once paced with a 10 s
#     silence in the stream;
#   - bun running the official openai and @anthropic-ai/sdk packages
#     (node_sdk.mjs, 4 calls, streamed and not) and a paced fetch read as it
#     comes (node_stream.mjs).
#
# Each record's figures equal expect.py's for the body the mock sent; its
# tls is "boringssl", its exe the Bun-built program and app names it; the
# keys reach no record and no log line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../mock/lib.sh"
. "$here/probe_clients/lib_probe.sh"

probe_preflight
probe_node_sdks
probe_npm_app claude-code
claude=$NPM_APP/node_modules/@anthropic-ai/claude-code/bin/claude.exe
probe_npm_app bun
bun=$NPM_APP/node_modules/bun/bin/bun.exe
for b in "$claude" "$bun"; do
	[ -x "$b" ] || skip "$b is not there (its npm package has no build for $(uname -m)?)"
	head -c 4 "$b" | grep -q ELF || fail "$b is not an ELF executable"
	if grep -q -a 'libssl\.so' "$b"; then fail "$b loads libssl"; fi
done
claude=$(readlink -f "$claude") bun=$(readlink -f "$bun")

mock_start || fail "the mock did not start"
export NODE_EXTRA_CA_CERTS=$MOCK_CA HOME=$MOCK_TMP/home
mkdir -p "$HOME"

claude_p() { # BASE_PATH PROMPT
	(cd "$MOCK_TMP" && ANTHROPIC_BASE_URL=$MOCK_URL$1 \
		ANTHROPIC_API_KEY=sk-ant-tokentap-secret-claude \
		CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 DISABLE_AUTOUPDATER=1 \
		timeout 120 "$claude" -p "$2" </dev/null >>"$MOCK_TMP/claude.out" 2>&1) ||
		fail "claude -p failed: $(tail -n 5 "$MOCK_TMP/claude.out")"
}

probe_start -v

# Claude Code: the first run meets the exec gate (a 400 MB program).
claude_p "" "say hi"
n_claude=$(mock_log_count)
[ "$n_claude" -ge 1 ] || fail "claude made no call"
claude_p /paced/stall/10000 "say hi slowly"
n_claude=$(mock_log_count)

# bun: the SDKs and a paced stream, side by side.
"$bun" "$PROBE_CLIENTS/node_sdk.mjs" "$MOCK_URL" >"$MOCK_TMP/bun-sdk.out" 2>&1 &
sdk=$!
"$bun" "$PROBE_CLIENTS/node_stream.mjs" "$MOCK_URL/paced/v1/messages" \
	>"$MOCK_TMP/bun-stream.out" 2>&1 &
stream=$!
wait "$sdk" || fail "bun node_sdk.mjs failed: $(tail -n 5 "$MOCK_TMP/bun-sdk.out")"
wait "$stream" || fail "bun node_stream.mjs failed: $(tail -n 5 "$MOCK_TMP/bun-stream.out")"
n=$(mock_log_count)
[ "$n" -eq $((n_claude + 5)) ] || fail "the mock logged $n responses, want $n_claude + 5"
probe_stop
for b in "$claude" "$bun"; do
	grep -q "attached $b .*boringssl" "$PROBE_LOG" ||
		fail "$b was not attached as BoringSSL: $(grep -F "$b" "$PROBE_LOG")"
done

probe_check --side client --upto "$n_claude" --min "$n_claude" --comm "${claude##*/}" \
	--want tls=boringssl --want exe="$claude" --want app=claude
probe_check --side client --after "$n_claude" --min 5 --comm "${bun##*/}" \
	--want tls=boringssl --want exe="$bun" --want app=bun

"$TT_PY" - "$PROBE_OUT" "$MOCK_PORT" <<'PY' || fail "a paced call is not what it should be"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
recs = [r for r in recs if (r.get("host") or "").endswith(":" + sys.argv[2])
        and r["side"] == "client"]
stall = [r for r in recs if r["path"].startswith("/paced/stall/")]
assert stall and all(r["duration_ms"] >= 10000 and r["stream"] for r in stall), stall
print("ok - Claude Code's paced stream lasted %.1f s, whole" % (stall[0]["duration_ms"] / 1000))
PY
if grep -l 'tokentap-secret' "$PROBE_OUT" "$PROBE_LOG"; then
	fail "an API key reached the probe's output"
fi
echo "ok - Bun-built programs (BoringSSL without symbols): Claude Code $n_claude calls, bun 5, figures equal"
