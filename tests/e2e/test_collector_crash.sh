#!/usr/bin/env bash
# kill -9 while senders are mid-stream: after a restart on the same
# database every acknowledged record is there exactly once, and resending
# every acknowledged batch adds nothing.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$TOP/build
PY=/usr/bin/python3
T=$(mktemp -d /tmp/tt-col-crash.XXXXXX)
DPID=
cleanup() {
	[ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null || true
	[ -n "${SPID:-}" ] && kill "$SPID" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

start() {
	: >"$T/out"
	"$BIN/tokentapd" --listen "unix:$T/d.sock" --listen http://127.0.0.1:0 --db "$T/d.db" \
		>"$T/out" 2>>"$T/err" &
	DPID=$!
	for _ in $(seq 100); do
		grep -q '^tokentapd: ready' "$T/out" && break
		sleep 0.1
	done
	grep -q '^tokentapd: ready' "$T/out" || { cat "$T/err"; fail "daemon did not start"; }
	PORT=$(sed -n 's|^tokentapd: listening on http://127.0.0.1:\([0-9]*\)$|\1|p' "$T/out")
}
start

# Four senders post batches of 25 new records until told to stop; each
# batch's ids are logged only once a 200 came back.
$PY - "$T" "$PORT" <<'PYEOF' &
import http.client, json, os, random, socket, sys, threading, time
t, port = sys.argv[1], int(sys.argv[2])

class UnixConn(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(t + "/d.sock")

def sender(n):
    rnd = random.Random(n)
    acked = open("%s/acked%d" % (t, n), "w")
    while not os.path.exists(t + "/stop"):
        batch = [{"id": "%032x" % rnd.getrandbits(128), "model": "gpt-4o-mini",
                  "input_tokens": 100, "output_tokens": 10} for _ in range(25)]
        body = "\n".join(json.dumps(r) for r in batch)
        try:
            c = UnixConn("x") if n % 2 else http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("POST", "/v1/records", body)
            r = c.getresponse()
            data = r.read()
            c.close()
        except OSError:
            time.sleep(0.05)   # the daemon is down: try again
            continue
        if r.status == 200:
            acked.write(json.dumps({"ids": [x["id"] for x in batch], "body": body}) + "\n")
            acked.flush()
ths = [threading.Thread(target=sender, args=(i,)) for i in range(4)]
[x.start() for x in ths]
[x.join() for x in ths]
PYEOF
SPID=$!

sleep 1.5
kill -9 "$DPID"
wait "$DPID" 2>/dev/null || true
echo "killed tokentapd (-9) mid-stream after $(cat "$T"/acked* | wc -l) acknowledged batches"
sleep 0.3
start
sleep 1
touch "$T/stop"
wait "$SPID"
SPID=
kill -TERM "$DPID"
wait "$DPID" 2>/dev/null || true
DPID=

# Every acknowledged id is stored exactly once.
$PY - "$T" <<'PYEOF'
import json, glob, sqlite3, sys
t = sys.argv[1]
acked = []
for f in glob.glob(t + "/acked*"):
    for line in open(f):
        acked += json.loads(line)["ids"]
db = sqlite3.connect(t + "/d.db")
stored = [bytes(r[0]).hex() for r in db.execute("SELECT id FROM records")]
assert len(stored) == len(set(stored)), "a record is stored twice"
missing = set(acked) - set(stored)
assert not missing, "%d acknowledged records lost" % len(missing)
print("%d acknowledged records, all stored once (%d stored in total)" % (len(acked), len(stored)))
assert len(acked) > 100, "too few batches went through to say anything"
PYEOF

# Resending every acknowledged batch after the restart adds nothing.
start
$PY - "$T" <<'PYEOF'
import http.client, glob, json, socket, sys
t = sys.argv[1]
class UnixConn(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(t + "/d.sock")
acc = dup = 0
for f in glob.glob(t + "/acked*"):
    for line in open(f):
        c = UnixConn("x")
        c.request("POST", "/v1/records", json.loads(line)["body"])
        r = json.loads(c.getresponse().read())
        acc += r["accepted"]
        dup += r["duplicates"]
assert acc == 0, "%d records counted twice" % acc
print("resent: %d duplicates, 0 accepted" % dup)
PYEOF
echo PASS
