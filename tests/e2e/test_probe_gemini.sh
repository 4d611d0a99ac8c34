#!/usr/bin/env bash
# tokentap-probe and the agent with Google's Gemini CLI (@google/gemini-cli
# from npm, pinned): a node script, so its TLS is the OpenSSL of the node
# that runs it.  Gemini CLI is pointed at the mock as its docs allow
# (GOOGLE_GEMINI_BASE_URL with the gemini-api-key auth type, the CA in
# NODE_EXTRA_CA_CERTS, telemetry and updates off) and run the way people
# run it, through its bin link (it relaunches itself in a child node):
# `gemini -p` asks the model router (generateContent, JSON mode), then
# streams the answer (streamGenerateContent?alt=sse).
#
#   - under the probe: once fast, once paced with a 10 s silence;
#   - under `tokentap run` beside the probe: each call counted once, by
#     the agent when node loads libssl, else (OpenSSL inside node, which
#     the agent cannot reach) by the probe.
#
# Each record's figures equal expect.py's for the body the mock sent; tls
# is "openssl", app "@google/gemini-cli"; the answer Gemini CLI prints is
# the streamed text; the key reaches no record and no log.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../mock/lib.sh"
. "$here/probe_clients/lib_probe.sh"

probe_preflight
AGENT=$TT_TOP/build/libtokentap.so
TOKENTAP=$TT_TOP/build/tokentap
[ -f "$AGENT" ] || fail "the agent ($AGENT) is not built"
[ -x "$TOKENTAP" ] || fail "$TOKENTAP is not built"
NODE=${NODE:-/usr/bin/node}
[ -x "$NODE" ] || fail "no $NODE to run Gemini CLI"
"$NODE" -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' ||
	fail "$NODE is older than Node 20, which Gemini CLI needs"
# Not installed is a failure, not a skip: make test installs it.
app_dir=$("$TT_TOP/scripts/npm-apps.sh" dir gemini-cli)
[ -f "$app_dir/.installed" ] || "$TT_TOP/scripts/npm-apps.sh" install gemini-cli >&2
[ -f "$app_dir/.installed" ] ||
	fail "gemini-cli is not installed (scripts/npm-apps.sh install gemini-cli; make test does)"
gemini=$app_dir/node_modules/.bin/gemini
[ -f "$(readlink -f "$gemini")" ] || fail "$gemini leads nowhere"
node_exe=$(readlink -f "$NODE")

# Three runs of a slow-starting CLI: room for a loaded machine.
export MOCK_MAX_SECONDS=${MOCK_MAX_SECONDS:-1200}
mock_start || fail "the mock did not start"
export NODE_EXTRA_CA_CERTS=$MOCK_CA HOME=$MOCK_TMP/home
mkdir -p "$HOME/.gemini" "$MOCK_TMP/work"
# GOOGLE_GEMINI_BASE_URL alone selects the "gateway" auth type, which
# 0.61's non-interactive check refuses ("Invalid auth method selected");
# the documented way is the gemini-api-key type, which takes it too.
cat >"$HOME/.gemini/settings.json" <<'EOF'
{
  "security": { "auth": { "selectedType": "gemini-api-key" } },
  "privacy": { "usageStatisticsEnabled": false },
  "telemetry": { "enabled": false },
  "general": { "enableAutoUpdate": false, "enableAutoUpdateNotification": false },
  "ide": { "enabled": false }
}
EOF

gemini_p() { # NAME BASE_PATH PROMPT [RUNNER...]: 2 calls, the router's and the answer
	local name=$1 base=$2 prompt=$3 n
	shift 3
	n=$(mock_log_count)
	# the temp dir is no trusted folder: trust it for this run only
	(cd "$MOCK_TMP/work" && GOOGLE_GEMINI_BASE_URL=$MOCK_URL$base \
		GEMINI_API_KEY=sk-tokentap-secret-gemini GEMINI_CLI_TRUST_WORKSPACE=true \
		timeout 300 "$@" "$NODE" "$gemini" -p "$prompt" </dev/null \
		>"$MOCK_TMP/$name.out" 2>"$MOCK_TMP/$name.err") ||
		fail "gemini -p ($name) failed: $(tail -n 5 "$MOCK_TMP/$name.err")"
	# a router answer Gemini CLI refused would show as retries, before the stream
	mock_wait_log $((n + 2)) || fail "gemini -p ($name) made $(($(mock_log_count) - n)) calls, want 2"
	[ "$(mock_log_count)" -eq $((n + 2)) ] ||
		fail "gemini -p ($name) made $(($(mock_log_count) - n)) calls, want 2: $(cut -c1-160 "$MOCK_LOG")"
}

probe_start -v
t0=$SECONDS
gemini_p fast "" "say hi"
t_fast=$((SECONDS - t0)) t0=$SECONDS
gemini_p paced /paced/stall/10000 "say hi slowly"
t_paced=$((SECONDS - t0)) t0=$SECONDS
# The agent's debug line names each process it was loaded into.
gemini_p agent "" "say hi under the agent" env TOKENTAP_LOG=debug \
	"$TOKENTAP" run --collector off --out "$MOCK_TMP/agent.jsonl" --
t_agent=$((SECONDS - t0))
probe_stop
grep -q "attached $node_exe .*openssl" "$PROBE_LOG" ||
	fail "node was not attached as OpenSSL: $(grep -F "$node_exe" "$PROBE_LOG")"

wants=(--want tls=openssl --want app=@google/gemini-cli --want exe="$node_exe")
if ldd "$node_exe" | grep -q 'libssl\.so'; then
	seen_by=agent
	# no --allow-extra: a probe record of the agent's calls fails here
	probe_check --side client --upto 4 --min 4 "${wants[@]}"
	n=$(grep -c . "$MOCK_TMP/agent.jsonl" 2>/dev/null) || true
	[ "${n:-0}" -eq 2 ] || fail "the agent wrote ${n:-0} records for Gemini CLI's 2 calls"
	# the agent's records against the mock's bodies, as check_records.py does
	"$TT_PY" - "$MOCK_TMP/agent.jsonl" "$MOCK_LOG" "$TT_MOCK_DIR/expect.py" "$node_exe" <<'PY' ||
import json, subprocess, sys
out, log, expect, exe = sys.argv[1:5]
recs = [json.loads(l) for l in open(out) if l.strip()]
calls = [json.loads(l) for l in open(log) if l.strip()][4:]
figs = ("input_tokens", "output_tokens", "cache_read_tokens",
        "cache_write_tokens", "reasoning_tokens", "usage_source", "model")
bad = 0
for e in calls:
    m = [r for r in recs if r["path"] == e["path"] and r["side"] == "client"
         and r["request_bytes"] == e["request_bytes"]
         and r["response_bytes"] == e["body_bytes"]]
    x = json.loads(subprocess.run([expect, "--path", e["path"], "--status",
                                   str(e["status"]), e["body_file"]],
                                  check=True, capture_output=True, text=True).stdout)
    want = {k: x.get(k) for k in figs if k != "model" or x.get(k)}
    want.update(source="preload", tls="openssl", app="@google/gemini-cli", exe=exe,
                status=e["status"])
    diffs = [] if len(m) == 1 else ["%d records match" % len(m)]
    if m:
        diffs += ["%s=%r want %r" % (k, m[0].get(k), v)
                  for k, v in want.items() if m[0].get(k) != v]
    print("%s - agent record of seq %d %s%s" % ("FAIL" if diffs else "ok", e["seq"],
                                                e["path"], ": " + "; ".join(diffs) if diffs else ""))
    bad += bool(diffs)
sys.exit(1 if bad else 0)
PY
		fail "the agent's records are not what the mock sent"
else
	# node's own OpenSSL: the agent cannot reach it; the probe counts it
	seen_by=probe
	if [ -s "$MOCK_TMP/agent.jsonl" ]; then
		fail "the agent recorded calls it cannot see: $(head -c 300 "$MOCK_TMP/agent.jsonl")"
	fi
	probe_check --side client --min 6 "${wants[@]}"
fi

"$TT_PY" - "$PROBE_OUT" "$MOCK_PORT" "$MOCK_LOG" "$MOCK_TMP" "$seen_by" <<'PY' ||
import json, re, sys
out, port, log, tmp, seen_by = sys.argv[1:6]
def load(p):
    try:
        return [json.loads(l) for l in open(p) if l.strip()]
    except FileNotFoundError:
        return []
recs = [r for r in load(out) if (r.get("host") or "").endswith(":" + port)
        and r["side"] == "client"]
calls = load(log)
# each run: the router's JSON call, then the answer streamed as SSE
for i, name in enumerate(("fast", "paced", "agent")):
    router, answer = calls[2 * i:2 * i + 2]
    assert router["path"].endswith(":generateContent") and not router["streamed"], router
    assert answer["path"].endswith(":streamGenerateContent") and answer["streamed"], answer
    text = ""
    for line in open(answer["body_file"], encoding="utf-8"):
        if line.startswith("data: "):
            for c in json.loads(line[6:]).get("candidates", []):
                text += "".join(p.get("text", "") for p in c["content"]["parts"])
    printed = open("%s/%s.out" % (tmp, name), encoding="utf-8").read().strip()
    assert printed == text.strip(), (name, printed[:80], text[:80])
# under the agent: it was loaded into the process that made the calls
err = open(tmp + "/agent.err").read()
loaded = {int(p) for p in re.findall(r"loaded in pid (\d+)", err)}
assert loaded, "no agent debug line in gemini's stderr"
by = recs if seen_by == "probe" else load(tmp + "/agent.jsonl")
mine = {(e["path"], e["request_bytes"], e["body_bytes"]) for e in calls[4:6]}
pids = {r["pid"] for r in by
        if (r["path"], r["request_bytes"], r["response_bytes"]) in mine}
assert pids and pids <= loaded, (pids, loaded)
stall = [r for r in recs if r["path"].startswith("/paced/stall/") and r["stream"]]
assert len(stall) == 1 and stall[0]["duration_ms"] >= 10000, stall
print("ok - Gemini CLI printed each streamed answer; the agent was in the calling process")
print("ok - Gemini CLI's paced stream lasted %.1f s, whole" % (stall[0]["duration_ms"] / 1000))
PY
	fail "Gemini CLI's runs are not what they should be"

if grep -l -s 'tokentap-secret' "$PROBE_OUT" "$PROBE_LOG" "$MOCK_LOG" "$MOCK_TMP/mock.out" \
	"$MOCK_TMP/agent.jsonl" "$MOCK_TMP"/*.err; then
	fail "the API key reached a record or a log"
fi
echo "ok - Gemini CLI (node's OpenSSL): 3 runs of 2 calls (fast ${t_fast} s, paced ${t_paced} s, under tokentap run ${t_agent} s, counted by the $seen_by), figures equal"
