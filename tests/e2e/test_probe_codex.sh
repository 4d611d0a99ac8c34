#!/usr/bin/env bash
# tokentap-probe with OpenAI's Codex CLI (@openai/codex from npm, pinned):
# a static Rust executable whose TLS is rustls, found by tokentap-probe
# without symbols.  Codex is pointed at the mock as its docs allow (a
# model provider in -c, its CA in CODEX_CA_CERTIFICATE) and run the way
# people run it, through the npm launcher (node spawns the native
# program): `codex exec` once fast, once paced with a 10 s silence in the
# stream.  Its calls go over HTTP/2, streamed and gzip-compressed.  Each
# record's figures equal expect.py's for the body the mock sent; tls is
# "rustls", app "codex", exe the native program; the key reaches no record.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../mock/lib.sh"
. "$here/probe_clients/lib_probe.sh"

probe_preflight
NODE=${NODE:-/usr/bin/node}
[ -x "$NODE" ] || skip "no $NODE"
probe_npm_app codex
launcher=$NPM_APP/node_modules/@openai/codex/bin/codex.js
native=$(find "$NPM_APP/node_modules/@openai" -path '*x86_64-unknown-linux-*/bin/codex' -type f | head -n1)
[ -n "$native" ] || skip "no x86-64 Linux build of codex in ${NPM_APP##*/} (this machine is $(uname -m))"
head -c 4 "$native" | grep -q ELF || fail "$native is not an ELF executable"
if grep -q -a 'libssl\.so' "$native"; then fail "$native loads libssl"; fi

mock_start || fail "the mock did not start"
export HOME=$MOCK_TMP/home CODEX_HOME=$MOCK_TMP/home/.codex
mkdir -p "$CODEX_HOME"
export CODEX_CA_CERTIFICATE=$MOCK_CA MOCK_API_KEY=sk-tokentap-secret-codex

codex() { # BASE_PATH PROMPT
	local provider
	provider="{name=\"mock\", base_url=\"$MOCK_URL$1/v1\", env_key=\"MOCK_API_KEY\","
	provider+=" wire_api=\"responses\", supports_websockets=false}"
	(cd "$MOCK_TMP" && timeout 120 "$NODE" "$launcher" exec --skip-git-repo-check \
		-c model_provider=mock -c "model_providers.mock=$provider" \
		-m gpt-5 "$2" </dev/null >>"$MOCK_TMP/codex.out" 2>&1) ||
		fail "codex exec failed: $(tail -n 5 "$MOCK_TMP/codex.out")"
}

probe_start -v
codex "" "say hi"
codex /paced/stall/10000 "say hi slowly"
n=$(mock_log_count)
[ "$n" -ge 2 ] || fail "the mock logged $n responses, want at least 2"
probe_stop
grep -q "attached $native .*rustls" "$PROBE_LOG" ||
	fail "codex was not attached as rustls: $(grep "$native" "$PROBE_LOG")"
probe_check --side client --min 2 --http 2 --want tls=rustls --want app=codex \
	--want exe="$native"

"$TT_PY" - "$PROBE_OUT" "$MOCK_PORT" "$MOCK_LOG" <<'PY' || fail "the paced call is not what it should be"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
recs = [r for r in recs if (r.get("host") or "").endswith(":" + sys.argv[2])
        and r["side"] == "client"]
log = [json.loads(l) for l in open(sys.argv[3]) if l.strip()]
assert any(e["encoding"] == "gzip" for e in log), "codex asked for no gzip"
stall = [r for r in recs if r["path"].startswith("/paced/stall/")]
assert stall and all(r["duration_ms"] >= 10000 and r["stream"] for r in stall), stall
print("ok - codex's paced stream lasted %.1f s, whole" % (stall[0]["duration_ms"] / 1000))
PY
if grep -l 'tokentap-secret' "$PROBE_OUT" "$PROBE_LOG"; then
	fail "the API key reached the probe's output"
fi
echo "ok - ${NPM_APP##*/} (rustls, static): $n calls, figures equal"
