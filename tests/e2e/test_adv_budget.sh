#!/usr/bin/env bash
# Adversarial budget cases against the built tokentapd (issue 14 #1, #2,
# #6, #13), on a temporary Unix socket.  Every figure checked comes from
# what this script sent:
#   1. a record dated 9999-12-31 does not switch a day budget off, nor
#      after a restart, and raises no "resolved";
#   2. 60 records dated in the next hour do not empty a 1 h rolling window;
#   3. a full accounts table denies a new scope (with a reason, logged
#      once) and never lets an uncounted scope through;
#   4. 12,000 keep-alives and leases for keys under no rule take no slot;
#      a full lease table evicts and still grants no more than the limit;
#   5. a denied call raises the deny rule's 100% alert, once.
# ADV_CASES="1 4" runs only those cases.
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/../mock/lib.sh"
BUILD=${BUILD:-$TT_TOP/build}
TOKENTAPD=${TOKENTAPD_BIN:-$BUILD/tokentapd}
[ -x "$TOKENTAPD" ] || skip "tokentapd not built; run make"
T=$(mktemp -d "${TMPDIR:-/tmp}/tt-adv-budget.XXXXXX")
on_exit "rm -rf '$T'"
CPID=
on_exit '[ -n "$CPID" ] && kill "$CPID" 2>/dev/null; [ -n "$CPID" ] && wait "$CPID" 2>/dev/null'

# start NAME CONFIG-JSON: a daemon on $T/NAME.sock with $T/NAME.db.
start() {
	[ -f "$T/$1.json" ] || printf '%s\n' "$2" >"$T/$1.json"
	"$TOKENTAPD" --listen "unix:$T/$1.sock" --db "$T/$1.db" --config "$T/$1.json" \
		>"$T/$1.out" 2>>"$T/$1.err" &
	CPID=$!
	for _ in $(seq 100); do
		grep -q '^tokentapd: ready' "$T/$1.out" 2>/dev/null && return 0
		kill -0 "$CPID" 2>/dev/null || fail "$1: tokentapd exited: $(cat "$T/$1.err")"
		sleep 0.05
	done
	fail "$1: tokentapd not ready in 5 s: $(cat "$T/$1.err")"
}
stop() { kill -TERM "$CPID"; wait "$CPID" || true; CPID=; }
want() { [ -z "${ADV_CASES:-}" ] || [[ " $ADV_CASES " == *" $1 "* ]]; }

# The client: records, leases, verdicts and alerts over one keep-alive
# connection to the Unix socket.  Usage: api SOCK < commands (Python).
api() {
	"$TT_PY" - "$1" <<PY
import http.client, json, socket, sys, time
class C(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=10)
        self.path = path
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(self.path)
c = C(sys.argv[1])
def call(method, url, body=None):
    c.request(method, url, body=body, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    d = r.read()
    if r.status != 200:
        sys.exit("FAIL: %s %s -> %d %s" % (method, url, r.status, d[:300]))
    return json.loads(d)
n = [0]
def ts(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%06dZ" % int(t % 1 * 1e6)
def rec(task, when, tenant=None, pid=7):
    n[0] += 1
    return {"id": "%032x" % (n[0] + 0x5eed0000), "ts": when if isinstance(when, str) else ts(when),
            "pid": pid, "task": task, "tenant": tenant, "request_model": "m", "model": "m",
            "input_tokens": 10, "output_tokens": 1}
def post(recs):
    a = call("POST", "/v1/records", "\n".join(json.dumps(r) for r in recs))
    assert a["accepted"] == len(recs), a
def lease(id, pid, task=None, tenant=None, calls=1):
    return call("POST", "/v1/lease", json.dumps({"id": id, "pid": pid, "task": task,
        "tenant": tenant, "model": "m", "need": {"input_tokens": 0, "output_tokens": 0,
        "calls": calls}}))
def verdict(task):
    return call("GET", "/v1/verdict?task=" + task)
def alerts():
    return call("GET", "/v1/alerts")["alerts"]
def ok(msg):
    print("ok - " + msg, flush=True)
$(cat)
PY
}

# --- 1. a future-dated record and a day budget, across a restart ------------
if want 1; then
start future '{"budgets": [{"name": "day3", "scope": {"task": "*"}, "limit": {"calls": 3},
  "window": "day", "alert_at": [50, 100], "action": "deny"}]}'
api "$T/future.sock" <<'PY'
now = time.time()
post([rec("t1", now - 2), rec("t1", now - 1), rec("t1", "9999-12-31T23:59:59.000000Z")])
post([rec("t1", now)])                       # today's fourth call: counted, not "late"
v = verdict("t1")
assert v["allow"] is False, ("3-call day budget, 4 calls sent, still allowed", v)
a = lease("adv-1", 99, "t1")
assert a["allow"] is False and a["rule"] == "day3", a
ok("a record dated 9999-12-31 does not switch off a 3-call day budget (4 calls sent: denied)")
PY
grep -q 'budget: a record dated 9999-12-31' "$T/future.err" || fail "the clamp was not logged: $(cat "$T/future.err")"
stop
start future ''
sleep 1.2                                    # a tick runs: nothing may resolve
api "$T/future.sock" <<'PY'
assert verdict("t1")["allow"] is False, "allowed again after a restart"
res = [x for x in alerts() if x["state"] == "resolved"]
assert not res, ("a false resolved", res)
ok("after a restart the replay keeps the day budget exhausted and raises no 'resolved'")
PY
stop
fi

# --- 2. 60 future records and a 1 h rolling window ------------------------
if want 2; then
start rolling '{"budgets": [{"name": "hour3", "scope": {"task": "*"}, "limit": {"calls": 3},
  "window": "1h", "action": "deny"}]}'
api "$T/rolling.sock" <<'PY'
now = time.time()
post([rec("t2", now + 60 * (i + 1)) for i in range(60)])
allowed = 0
for i in range(10):
    if lease("roll-%d" % i, 100 + i, "t2")["allow"]:
        allowed += 1
assert allowed == 0, ("60 calls counted against 3, yet %d of 10 leases allowed" % allowed)
assert verdict("t2")["allow"] is False
ok("60 future-dated records count now in a 1 h window of 3 calls: 0 of 10 leases allowed")
PY
stop
fi

# --- 3. the accounts table full ----------------------------------------------
if want 3; then
start accts '{"budgets": [{"name": "per-task", "scope": {"task": "*"}, "limit": {"calls": 2},
  "window": "day", "action": "deny"}], "leases": {"max_accounts": 50}}'
api "$T/accts.sock" <<'PY'
now = time.time()
post([rec("a%02d" % i, now) for i in range(50)])
a = lease("acc-1", 7, "newcomer")
assert a["allow"] is False and "max_accounts" in a["reason"], a
post([rec("untracked", now) for _ in range(5)])     # 5 calls of a 2-call task, uncounted
v = verdict("untracked")
assert v["allow"] is False and "uncounted" in v["reason"], v
assert lease("acc-2", 8, "untracked")["allow"] is False
assert lease("acc-3", 9, "a07")["allow"] is True     # 1 of 2 used: a known scope goes on
ok("50 accounts full: a new scope is denied with a reason; 5 uncounted calls never let it through")
PY
[ "$(grep -c 'budget: .*accounts, the most allowed' "$T/accts.err")" = 1 ] ||
	fail "expected the full table said once: $(cat "$T/accts.err")"
echo "ok - the full accounts table is logged once"
m=$(curl -sS --unix-socket "$T/accts.sock" http://x/metrics)
echo "$m" | grep -q '^tokentap_budget_accounts 50$' &&
	echo "$m" | grep -q '^tokentap_budget_accounts_max 50$' &&
	echo "$m" | grep -Eq '^tokentap_budget_accounts_refused_total [1-9]' &&
	echo "$m" | grep -Eq '^tokentap_budget_records_uncounted_total [5-9]' ||
	fail "/metrics does not show the full table: $(echo "$m" | grep tokentap_budget_)"
echo "ok - /metrics: 50 of 50 accounts, refusals and the 5 uncounted records counted"
stop
fi

# --- 4. lease floods -------------------------------------------------------------
if want 4; then
start leases '{"budgets": [{"name": "acme", "scope": {"tenant": "acme"}, "limit": {"calls": 20},
  "window": "task", "action": "deny"}], "leases": {"max_leases": 8, "fraction": 0.01}}'
api "$T/leases.sock" <<'PY'
for i in range(12000):
    a = lease("flood-%d" % i, 10000 + i, "job-%d" % i, None, i % 2)
    assert a["allow"] is True, a
ok("12,000 keep-alives and leases under no rule: all answered, none refused")
granted = 0
for i in range(20):
    a = lease("acme-%d" % i, 500 + i, "job", "acme")
    assert a["allow"] is True, (i, a)
    granted += a["grant"]["calls"]
assert granted == 20, granted
a = lease("acme-20", 520, "job", "acme")
assert a["allow"] is False, ("a 20-call budget granted a 21st call", a)
ok("8 lease slots, 20 processes of a 20-call budget: 20 granted, the 21st denied (evicted holds still count)")
PY
stop
fi

# --- 5. the exhausted alert of a deny rule ---------------------------------------
if want 5; then
start alert '{"budgets": [{"name": "cap2", "scope": {"task": "*"}, "limit": {"calls": 2},
  "window": "day", "alert_at": [100], "action": "deny"}], "leases": {"fraction": 0.01}}'
api "$T/alert.sock" <<'PY'
assert lease("al-1", 1, "t5")["allow"] and lease("al-2", 2, "t5")["allow"]
assert not alerts(), alerts()                       # 2 held, 0 spent: nothing yet
for i in range(3):
    assert lease("al-d%d" % i, 10 + i, "t5")["allow"] is False
time.sleep(0.3)
al = [x for x in alerts() if x["rule"] == "cap2"]
assert len(al) == 1 and al[0]["threshold"] == 100 and al[0]["state"] == "firing", al
assert al[0]["evidence"]["calls"] == 2, al
ok("3 calls denied by a 2-call deny rule: one 100% alert, evidence 2 calls held")
PY
stop
fi
echo PASS
