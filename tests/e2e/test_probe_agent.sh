#!/usr/bin/env bash
# A process that runs the agent (LD_PRELOAD=libtokentap.so) is counted
# once: the agent reports its calls and the probe leaves them out; a
# process without the agent beside it is still seen by the probe.  The
# kernel side tells the agent's calls by their caller (the agent's code),
# so this holds for a process that is gone before the probe's reader
# could look at it (a curl under the agent, a few milliseconds), and for
# node under the agent: its OpenSSL is inside the node executable, the
# agent never sees those calls, and the probe must count them.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../mock/lib.sh"
. "$here/probe_clients/lib_probe.sh"

probe_preflight
AGENT=$TT_TOP/build/libtokentap.so
[ -f "$AGENT" ] || skip "the agent ($AGENT) is not built"
mock_start || fail "the mock did not start"
probe_start

body='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"under the agent"}]}'
LD_PRELOAD=$AGENT TOKENTAP_COLLECTOR=off TOKENTAP_OUT=$MOCK_TMP/agent.jsonl \
	"$TT_PY" - "$(mock_url /v1/chat/completions)" "$MOCK_CA" "$body" <<'PY' &
import ssl, sys, time, urllib.request
url, ca, body = sys.argv[1:4]
req = urllib.request.Request(url, data=body.encode(),
                             headers={"content-type": "application/json"})
ctx = ssl.create_default_context(cafile=ca)
urllib.request.urlopen(req, context=ctx, timeout=30).read()
PY
with_agent=$!
wait "$with_agent" || fail "the client under the agent failed"
# short-lived, under the agent: gone before the reader gets to it
LD_PRELOAD=$AGENT TOKENTAP_COLLECTOR=off TOKENTAP_OUT=$MOCK_TMP/agent.jsonl \
	curl -sS --cacert "$MOCK_CA" --http1.1 -o /dev/null \
	-H 'content-type: application/json' "$(mock_url /v1/chat/completions)" -d "$body" &
curl_agent=$!
wait "$curl_agent" || fail "curl under the agent failed"
curl -sS --cacert "$MOCK_CA" --http1.1 -o /dev/null \
	-H 'content-type: application/json' "$(mock_url /v1/chat/completions)" -d "$body" &
without=$!
wait "$without" || fail "plain curl failed"
node_agent=
if [ -x /usr/bin/node ] && ! ldd /usr/bin/node | grep -q libssl; then
	LD_PRELOAD=$AGENT TOKENTAP_COLLECTOR=off TOKENTAP_OUT=$MOCK_TMP/agent.jsonl \
		NODE_EXTRA_CA_CERTS=$MOCK_CA /usr/bin/node \
		"$PROBE_CLIENTS/node_once.mjs" "$(mock_url /v1/chat/completions)" agent >/dev/null &
	node_agent=$!
	wait "$node_agent" || fail "node under the agent failed"
else
	echo "note: no node with its own OpenSSL here: the node case is left out"
fi
probe_stop

"$TT_PY" - "$PROBE_OUT" "$MOCK_TMP/agent.jsonl" "$MOCK_PORT" "$with_agent" \
	"$without" "$curl_agent" "${node_agent:-0}" <<'PY' || fail "counted twice or not at all"
import json, sys
out, agent_out, port, with_agent, without, curl_agent, node_agent = sys.argv[1:8]
def load(p):
    try:
        return [json.loads(l) for l in open(p) if l.strip()]
    except FileNotFoundError:
        return []
probe = [r for r in load(out) if (r.get("host") or "").endswith(":" + port)
         and r["side"] == "client"]
agent = [r for r in load(agent_out) if r["side"] == "client"]
by_pid = lambda recs, pid: [r for r in recs if r["pid"] == int(pid)]
print("probe records of the agent's process:", len(by_pid(probe, with_agent)))
print("agent records:", len(agent), [r["source"] for r in agent])
print("probe records of the short curl under the agent:", len(by_pid(probe, curl_agent)))
print("probe records of the plain process:", len(by_pid(probe, without)))
ok = (not by_pid(probe, with_agent) and not by_pid(probe, curl_agent)
      and len(agent) == 2 and all(r["source"] == "preload" for r in agent)
      and sorted(r["pid"] for r in agent) == sorted([int(with_agent), int(curl_agent)])
      and len(by_pid(probe, without)) == 1)
if node_agent != "0":
    n = by_pid(probe, node_agent)
    print("probe records of node under the agent:", len(n))
    ok = ok and len(n) == 1 and not by_pid(agent, node_agent)
sys.exit(0 if ok else 1)
PY
[ "$(probe_counter agent_calls)" -gt 0 ] || fail "the probe did not notice the agent"
echo "ok - processes under the agent counted once (by the agent; a short curl too), the others (node under the agent included) by the probe"
