#!/usr/bin/env bash
# Children stay under the agent, even when their parent hands them an
# environment of its own: Python's subprocess with env= (execve),
# os.posix_spawn with env, and "env -i" (execvp after clearing environ).
# Each child makes one LLM call; each call must have its record, from the
# child's own pid, with the parent's TOKENTAP_* settings (task, out file).
set -euo pipefail
. "$(dirname "$0")/clients/agent_lib.sh"
[ -x /usr/bin/python3 ] || skip "/usr/bin/python3 absent"
agent_setup
PY=/usr/bin/python3
CL=$AGENT_E2E_DIR/clients/py_client.py
printf '%s' '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"from a child"}]}' >"$T/req.json"

# The parent: spawns three children with environments that lack the agent.
cat >"$T/parent.py" <<'PY'
import os, subprocess, sys
py, client, port, ca, key, req = sys.argv[1:7]
args = [py, client, "urllib", port, ca, key, "/v1/chat/completions", req]
bare = {"PATH": "/usr/bin:/bin"}
out = []
# execve with an explicit environment
out.append(subprocess.run(args, env=bare, check=True, capture_output=True).stdout)
# posix_spawn with an explicit environment
r, w = os.pipe()
pid = os.posix_spawn(py, args, bare, file_actions=[(os.POSIX_SPAWN_DUP2, w, 1)])
os.close(w)
data = b""
while chunk := os.read(r, 65536):
    data += chunk
os.waitpid(pid, 0)
out.append(data)
# env -i: the environment cleared, then execvp
out.append(subprocess.run(["env", "-i", "PATH=/usr/bin:/bin"] + args,
                          check=True, capture_output=True).stdout)
print(os.getpid())
print(" ".join(str(len(o)) for o in out))
PY

TOKENTAP_TASK=exec-test with_agent "$PY" "$T/parent.py" "$PY" "$CL" "$MOCK_PORT" \
	"$MOCK_CA" "$SENTINEL" "$T/req.json" >"$T/parent.out" 2>"$T/parent.err" ||
	fail "parent failed: $(cat "$T/parent.err")"
parent=$(head -1 "$T/parent.out")
mock_wait_count 3 || fail "the mock saw $(mock_log_count) calls, want 3"
for _ in $(seq 50); do [ "$(wc -l <"$T/out.jsonl")" -ge 3 ] && break; sleep 0.1; done

"$TT_PY" - "$T/out.jsonl" "$parent" <<'PY' || fail "records: see above"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
parent = int(sys.argv[2])
bad = 0
if len(recs) != 3:
    print("FAIL: %d records, want 3 (one per child)" % len(recs)); bad = 1
pids = {r["pid"] for r in recs}
if parent in pids or len(pids) != len(recs):
    print("FAIL: records must come from three distinct children: %s (parent %d)" % (pids, parent)); bad = 1
for r in recs:
    if r["task"] != "exec-test" or r["usage_source"] != "provider" or r["error"] is not None:
        print("FAIL: record %s" % r); bad = 1
sys.exit(bad)
PY
check_no_sentinel "$T/out.jsonl" "$T/parent.err"
echo "PASS: three children with their own environments stayed under the agent"
