#!/usr/bin/env bash
# Loop detectors: a realistic agent run (30 calls through the real agent to
# the mock provider: six sub-tasks whose context grows a little, varied
# prompts) raises nothing; then each loop pattern, posted as records with
# their own timestamps, fires its own detector and no other, with evidence.
set -euo pipefail
. "$(dirname "$0")/clients/agent_lib.sh"
agent_setup
[ -x "$BUILD/tokentapd" ] || skip "tokentapd not built; run make"

cat >"$T/c.json" <<'J'
{"detectors": {"rate": {"calls_per_minute": 60}, "repeat": {"count": 5},
               "snowball": {"factor": 3, "calls": 6}, "calls": {"max": 100}}}
J
"$BUILD/tokentapd" --listen "unix:$T/c.sock" --db "$T/c.db" --config "$T/c.json" \
	>"$T/c.out" 2>"$T/c.err" &
CPID=$!
on_exit "kill $CPID 2>/dev/null; wait $CPID 2>/dev/null"
for _ in $(seq 100); do grep -q '^tokentapd: ready' "$T/c.out" && break; sleep 0.1; done
grep -q '^tokentapd: ready' "$T/c.out" || fail "tokentapd did not start: $(cat "$T/c.err")"

cat >"$T/agent_run.py" <<'PY'
import json, ssl, sys, urllib.request
port, ca = sys.argv[1], sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
ctx.set_alpn_protocols(["http/1.1"])
topics = ["billing export", "login latency", "flaky test", "cache misses", "docs typo",
          "upgrade plan"]
for t, topic in enumerate(topics):
    msgs = [{"role": "system", "content": "You are a careful engineer."},
            {"role": "user", "content": "Investigate the %s issue, ticket %d." % (topic, 100 + t)}]
    for step in range(5):
        body = json.dumps({"model": "gpt-4o-mini", "max_tokens": 60, "messages": msgs}).encode()
        req = urllib.request.Request("https://127.0.0.1:%s/v1/chat/completions" % port, data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=ctx, timeout=20) as r:
            reply = json.load(r)["choices"][0]["message"]["content"]
        msgs.append({"role": "assistant", "content": reply[:80]})
        msgs.append({"role": "user", "content": "step %d of %s: check the next clue" % (step, topic)})
PY
TOKENTAP_COLLECTOR="unix:$T/c.sock" TOKENTAP_TASK=normal-run \
	with_agent "$TT_PY" "$T/agent_run.py" "$MOCK_PORT" "$MOCK_CA" || fail "agent run failed"
for _ in $(seq 100); do
	n=$(curl -sS --unix-socket "$T/c.sock" http://x/healthz | json_get - 'd["records"]')
	[ "$n" -ge 30 ] && break
	sleep 0.1
done
[ "$n" = 30 ] || fail "expected 30 records, got $n"
sleep 1.2  # a tick
curl -sS --unix-socket "$T/c.sock" http://x/v1/alerts >"$T/a0.json"
[ "$(json_get "$T/a0.json" 'len(d["alerts"])')" = 0 ] || fail "the normal run raised: $(cat "$T/a0.json")"
echo "normal agent run: 30 calls, no alert"

# The patterns, one task each, timestamps of the last minutes.
"$TT_PY" - >"$T/patterns.jsonl" <<'PY'
import json, time
now = time.time() - 300
n = 0
def rec(task, ts, inp, h):
    global n
    n += 1
    print(json.dumps({"id": "%032x" % (0xabc000 + n), "pid": 7, "task": task,
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + ".%06dZ" % int((ts % 1) * 1e6),
        "model": "gpt-4o-mini", "input_tokens": inp, "output_tokens": 20, "prompt_hash": h}))
for i in range(70): rec("r", now + i * 0.4, 100, "r%d" % i)          # 70 in 28 s
for i in range(5): rec("p", now + i * 10, 100, "same-prompt")       # repeat x5
for i in range(6): rec("s", now + i * 10, 100 * 2 ** i, "s%d" % i)  # 100 .. 3200
for i in range(101): rec("c", now - 250 + i * 2.5, 100 - i % 2 * 10, "c%d" % i)  # 24/min
PY
curl -sS --fail --unix-socket "$T/c.sock" http://x/v1/records --data-binary @"$T/patterns.jsonl" >/dev/null
sleep 1.2
curl -sS --unix-socket "$T/c.sock" http://x/v1/alerts >"$T/a1.json"
"$TT_PY" - "$T/a1.json" <<'PY'
import json, sys
a = json.load(open(sys.argv[1]))["alerts"]
firing = sorted((x["rule"], x["scope"]) for x in a if x["state"] == "firing")
assert firing == [("calls", "task=c"), ("rate", "task=r"), ("repeat", "task=p"),
                  ("snowball", "task=s")], firing
assert all(x["rule"] == "rate" for x in a if x["state"] == "resolved"), a
by = {x["rule"]: x for x in a if x["state"] == "firing"}
ev = by["repeat"]["evidence"]
assert ev["prompt_hash"] == "same-prompt" and ev["repeat_count"] == 5 and ev["calls"] == 5, ev
assert by["rate"]["evidence"]["calls"] == 61, by["rate"]["evidence"]
assert by["snowball"]["evidence"]["calls"] == 6 and "3200" in by["snowball"]["message"], by["snowball"]
assert by["calls"]["evidence"]["calls"] == 101, by["calls"]["evidence"]
for x in by.values():
    e = x["evidence"]
    assert e["first"] and e["last"] and e["tokens"] > 0 and e["cost_usd"] > 0, x
print("each pattern fired its own detector:", [k for k, _ in firing])
PY
echo PASS
