#!/usr/bin/env bash
# Chaos: 1,000 fork()s without exec under the agent while two threads of
# the parent keep calling: half the children make one LLM call, the others
# none (leaving by exit() or _exit()).  No child hangs (a lock held across
# fork would deadlock it), every call answered, one record per call, each
# from the process that made it, and a collector on a Unix socket gets them
# all too (the children ship theirs at exit).  CHAOS_FULL=0: 200 forks.
set -euo pipefail
. "$(dirname "$0")/chaos_clients/chaos_lib.sh"
CL=$BUILD/tests/chaos_clients/chaos_client
TOKENTAPD=${TOKENTAPD_BIN:-$BUILD/tokentapd}
[ -x "$CL" ] || skip "chaos client not built ($CL); run make"
[ -x "$TOKENTAPD" ] || skip "tokentapd not built; run make"
agent_setup
if [ "${CHAOS_FULL:-1}" = 0 ]; then FORKS=200; else FORKS=1000; fi

"$TOKENTAPD" --listen "unix:$T/c.sock" --db "$T/c.db" >"$T/c.out" 2>"$T/c.err" &
CPID=$!
on_exit "kill $CPID 2>/dev/null; wait $CPID 2>/dev/null"
for _ in $(seq 100); do grep -q '^tokentapd: ready' "$T/c.out" && break; sleep 0.1; done
grep -q '^tokentapd: ready' "$T/c.out" || fail "tokentapd did not start: $(cat "$T/c.err")"
export TOKENTAP_COLLECTOR=unix:$T/c.sock

start=$(date +%s%N)
with_agent timeout 300 "$CL" --port "$MOCK_PORT" --ca "$MOCK_CA" --key "$SENTINEL" \
	--threads 1 --calls 1 --forks "$FORKS" >"$T/client.out" 2>"$T/client.err" ||
	fail "client failed (exit $?): $(cat "$T/client.out" "$T/client.err")"
ms=$((($(date +%s%N) - start) / 1000000))
line=$(tail -n 1 "$T/client.out")
echo "client: $line"
calls=$(sed -n 's/^calls=\([0-9]*\) .*/\1/p' <<<"$line")
grep -q " failed=0 children=$FORKS child_calls=$((FORKS / 2)) hung=0$" <<<"$line" ||
	fail "client: $line"
[ -s "$T/client.err" ] && fail "client stderr: $(cat "$T/client.err")"

got=$(wc -l <"$T/out.jsonl")
[ "$got" -eq "$calls" ] || fail "$got records in TOKENTAP_OUT for $calls calls"
"$TT_PY" - "$T/out.jsonl" "$((FORKS / 2))" <<'PY'
import collections, json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert len({r["id"] for r in recs}) == len(recs), "duplicate record ids"
bad = [r for r in recs if r["status"] != 200 or r["error"] is not None]
assert not bad, "%d partial records, e.g. %r" % (len(bad), bad[0])
per = collections.Counter(r["pid"] for r in recs)
parent = per.most_common(1)[0][0]
children = [p for p in per if p != parent]
assert len(children) == int(sys.argv[2]), (len(children), sys.argv[2])
assert all(per[p] == 1 for p in children), "a child has records not its own"
print("records: %d (parent %d, %d children one each)" % (len(recs), per[parent], len(children)))
PY

# The collector: every record once (children shipped theirs at exit).
for _ in $(seq 200); do
	n=$(curl -sS --unix-socket "$T/c.sock" http://x/healthz | json_get - 'd["records"]')
	[ "$n" -ge "$calls" ] && break
	sleep 0.1
done
[ "$n" -eq "$calls" ] || fail "collector has $n records for $calls calls"
check_no_sentinel "$T/out.jsonl" "$T/client.out" "$T/client.err" "$T/c.db" "$T/c.out" "$T/c.err"
echo "chaos forks: $FORKS forks, $calls calls, $got records, collector $n, ${ms} ms"
echo PASS
