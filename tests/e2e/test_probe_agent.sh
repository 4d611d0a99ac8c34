#!/usr/bin/env bash
# A process that runs the agent (LD_PRELOAD=libtokentap.so) is counted
# once: the agent reports its calls and the probe leaves the process out;
# a process without the agent beside it is still seen by the probe.
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
# The probe learns that a process runs the agent from /proc/PID/maps when
# the process's first TLS call reaches it: a process that has exited by
# then cannot be checked (a documented limit of the probe).  The client
# under the agent therefore stays alive a moment after its call, as
# programs run under the agent do; a plain curl is the short-lived case.
LD_PRELOAD=$AGENT TOKENTAP_COLLECTOR=off TOKENTAP_OUT=$MOCK_TMP/agent.jsonl \
	"$TT_PY" - "$(mock_url /v1/chat/completions)" "$MOCK_CA" "$body" <<'PY' &
import ssl, sys, time, urllib.request
url, ca, body = sys.argv[1:4]
req = urllib.request.Request(url, data=body.encode(),
                             headers={"content-type": "application/json"})
ctx = ssl.create_default_context(cafile=ca)
urllib.request.urlopen(req, context=ctx, timeout=30).read()
time.sleep(1)
PY
with_agent=$!
wait "$with_agent" || fail "the client under the agent failed"
curl -sS --cacert "$MOCK_CA" --http1.1 -o /dev/null \
	-H 'content-type: application/json' "$(mock_url /v1/chat/completions)" -d "$body" &
without=$!
wait "$without" || fail "plain curl failed"
probe_stop

"$TT_PY" - "$PROBE_OUT" "$MOCK_TMP/agent.jsonl" "$MOCK_PORT" "$with_agent" "$without" <<'PY' || fail "counted twice or not at all"
import json, sys
out, agent_out, port, with_agent, without = sys.argv[1:6]
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
print("probe records of the plain process:", len(by_pid(probe, without)))
ok = (not by_pid(probe, with_agent) and len(agent) == 1
      and agent[0]["source"] == "preload"
      and len(by_pid(probe, without)) == 1)
sys.exit(0 if ok else 1)
PY
[ "$(probe_counter agent_events)" -gt 0 ] || fail "the probe did not notice the agent"
echo "ok - the agent's process counted once (by the agent), the other by the probe"
