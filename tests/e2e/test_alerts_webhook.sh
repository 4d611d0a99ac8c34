#!/usr/bin/env bash
# Alerts end to end: a webhook receiver started here (one generic JSON hook
# whose first answer is a 500, to see the retry; one Slack-format hook)
# gets exactly the expected alerts from tokentapd, no duplicates, across a
# restart of tokentapd on the same database; GET /v1/alerts serves the
# history.  Records are posted with curl, as an agent would.
set -euo pipefail
. "$(dirname "$0")/../mock/lib.sh"
BUILD=${BUILD:-$TT_TOP/build}
[ -x "$BUILD/tokentapd" ] || skip "tokentapd not built; run make"
command -v curl >/dev/null || skip "curl not installed"
T=$(mktemp -d "${TMPDIR:-/tmp}/tt-alerts.XXXXXX")
on_exit "[ \"${KEEP:-0}\" = 1 ] || rm -rf '$T'"

cat >"$T/hook.py" <<'PY'
import http.server, json, os, sys, threading
out, ready = sys.argv[1], sys.argv[2]
lock, failed = threading.Lock(), []
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with lock:
            if self.path == "/json" and not failed:
                failed.append(1)       # the first delivery fails: retried
                self.send_response(500); self.end_headers(); return
            with open(out, "a") as f:
                f.write(json.dumps({"path": self.path, "body": json.loads(body)}) + "\n")
        self.send_response(204); self.end_headers()
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(ready + ".tmp", "w") as f: f.write(str(s.server_address[1]))
os.rename(ready + ".tmp", ready)
s.serve_forever()
PY
"$TT_PY" "$T/hook.py" "$T/hook.jsonl" "$T/hook.port" &
HPID=$!
on_exit "kill $HPID 2>/dev/null; wait $HPID 2>/dev/null"
for _ in $(seq 100); do [ -s "$T/hook.port" ] && break; sleep 0.05; done
HPORT=$(cat "$T/hook.port")
: >"$T/hook.jsonl"

cat >"$T/c.json" <<J
{"budgets": [{"name": "acme-calls", "scope": {"tenant": "acme"}, "limit": {"calls": 10},
              "window": "month", "alert_at": [50, 80, 100], "action": "alert"},
             {"name": "burst", "scope": {"task": "*"}, "limit": {"tokens": 1000},
              "window": "3s", "alert_at": [100], "action": "alert"}],
 "detectors": {"repeat": {"count": 4}},
 "alerts": {"webhooks": [{"url": "http://127.0.0.1:$HPORT/json", "format": "json"},
                         {"url": "http://127.0.0.1:$HPORT/slack", "format": "slack"}],
            "retries": 5, "backoff_ms": 100, "timeout_ms": 2000}}
J
start() {
	"$BUILD/tokentapd" --listen "unix:$T/c.sock" --db "$T/c.db" --config "$T/c.json" \
		>"$T/c.out" 2>>"$T/c.err" &
	CPID=$!
	for _ in $(seq 100); do grep -q '^tokentapd: ready' "$T/c.out" 2>/dev/null && return 0; sleep 0.05; done
	fail "tokentapd did not start: $(cat "$T/c.err")"
}
stop() { kill -TERM "$CPID"; wait "$CPID" || true; }
on_exit 'kill $CPID 2>/dev/null; wait $CPID 2>/dev/null'
N=0
post() { # COUNT TASK TOKENS [HASH]: without HASH every prompt differs
	local i now
	now=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
	for ((i = 0; i < $1; i++)); do
		N=$((N + 1))
		printf '{"id":"%032x","ts":"%s","pid":42,"task":"%s","tenant":"acme","request_model":"gpt-4o-mini","model":"gpt-4o-mini","input_tokens":%d,"output_tokens":10,"prompt_hash":"%s"}\n' \
			"$N" "$now" "$2" "$3" "${4:-h-$N}"
	done >"$T/batch"
	curl -sS --fail --unix-socket "$T/c.sock" http://x/v1/records --data-binary @"$T/batch" >/dev/null
}
hooks() { [ -s "$T/hook.jsonl" ] && "$TT_PY" -c '
import json, sys
n = sum(1 for l in open(sys.argv[1]) if json.loads(l)["path"] == sys.argv[2]); print(n)' "$T/hook.jsonl" "$1" || echo 0; }
wait_hooks() { # N
	for _ in $(seq 100); do [ "$(hooks /json)" -ge "$1" ] && [ "$(hooks /slack)" -ge "$1" ] && return 0; sleep 0.1; done
	fail "expected $1 alerts on each hook, got $(hooks /json) / $(hooks /slack): $(cat "$T/c.err")"
}

start
post 5 t1 100              # acme 5 calls: 50%; burst t1 550 tokens
wait_hooks 1
post 3 t2 100              # acme 8 calls: 80%
wait_hooks 2
stop                       # the 100% alert must come from the next run only once
start
post 1 t3 900 h-c          # acme 9; burst t3: 910 tokens
post 1 t3 100 h-c          # acme 10 (100%); burst t3 1020 tokens: 100% of 3 s
wait_hooks 4
post 3 t3 1 h-c            # repeat: h-c 5 times (count 4) -> detector; burst t3 over
wait_hooks 5
sleep 4                    # the 3 s window of t3 passes: resolved
wait_hooks 6
stop
start                      # replays the records: nothing new may be sent
sleep 1.5
stop

"$TT_PY" - "$T/hook.jsonl" <<'PY'
import collections, json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
j = [r["body"] for r in rows if r["path"] == "/json"]
s = [r["body"] for r in rows if r["path"] == "/slack"]
keys = [a["dedup_key"] for a in j]
dup = [k for k, n in collections.Counter(keys).items() if n > 1]
assert not dup, ("duplicates", dup)
want = {("budget", "acme-calls", 50, "firing"), ("budget", "acme-calls", 80, "firing"),
        ("budget", "acme-calls", 100, "firing"), ("budget", "burst", 100, "firing"),
        ("detector", "repeat", 0, "firing"), ("budget", "burst", 100, "resolved")}
got = {(a["kind"], a["rule"], a["threshold"], a["state"]) for a in j}
assert got == want, ("got", sorted(got), "want", sorted(want))
assert len(j) == len(want) and len(s) == len(want), (len(j), len(s))
rep = next(a for a in j if a["rule"] == "repeat")
assert rep["scope"] == "task=t3" and rep["evidence"]["prompt_hash"] == "h-c", rep
assert rep["evidence"]["repeat_count"] == 4 and rep["evidence"]["calls"] == 4, rep
assert rep["evidence"]["first"] and rep["evidence"]["last"], rep
b = next(a for a in j if a["rule"] == "burst" and a["state"] == "firing")
assert b["scope"] == "task=t3" and b["evidence"]["tokens"] >= 1000, b
for m in s:
    assert set(m) == {"text"} and "tokentap" in m["text"], m
print("webhooks: %d alerts, each once, on both hooks" % len(j))
PY
start
curl -sS --unix-socket "$T/c.sock" http://x/v1/alerts >"$T/alerts.json"
stop
"$TT_PY" -c '
import json, sys
a = json.load(open(sys.argv[1]))["alerts"]
assert len(a) == 6, len(a)
assert all(x["delivery"] == "delivered" for x in a), [(x["dedup_key"], x["delivery"]) for x in a]
assert max(x["attempts"] for x in a) == 2, "the first delivery was refused once, then retried"
print("GET /v1/alerts: 6, all delivered")' "$T/alerts.json"
[ "$(grep -c 'tokentapd: alert:' "$T/c.err")" = 6 ] || fail "expected 6 alert log lines: $(cat "$T/c.err")"
echo PASS
