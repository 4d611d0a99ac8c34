#!/usr/bin/env bash
# The record's app and tls fields, end to end.  A database made by the
# first schema (no app or tls columns) is read as it is by `tokentap report
# --db`, then migrated when tokentapd opens it (rows kept, each added column
# logged, once).  Records with app and tls are checked (a tls outside its
# five values and an app over 127 bytes refused, their valid neighbours
# stored), and /v1/usage?by=app and `tokentap report --by app` give the
# sums this script computes itself, with its own formula over
# data/prices.json; the same after a restart.  TOKENTAPD_BIN=build/san/tokentapd
# runs it against a sanitized daemon.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$TOP/build
PY=/usr/bin/python3
T=$(mktemp -d /tmp/tt-col-app.XXXXXX)
DPID=
cleanup() {
	[ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

TOKENTAPD=${TOKENTAPD_BIN:-$BIN/tokentapd}
for b in "$TOKENTAPD" "$BIN/tokentap"; do [ -x "$b" ] || fail "$b is missing (run make)"; done

# start NAME: tokentapd on $T/d.db; its stderr in $T/NAME.err.
start() {
	"$TOKENTAPD" --listen "unix:$T/d.sock" --db "$T/d.db" >"$T/$1.out" 2>"$T/$1.err" &
	DPID=$!
	for _ in $(seq 100); do
		grep -q '^tokentapd: ready' "$T/$1.out" && break
		kill -0 "$DPID" 2>/dev/null || { cat "$T/$1.err"; fail "$1: tokentapd did not start"; }
		sleep 0.1
	done
	grep -q '^tokentapd: ready' "$T/$1.out" || fail "$1: tokentapd not ready in 10 s"
}
stop() {
	kill "$DPID"
	wait "$DPID" 2>/dev/null || true
	DPID=
}
U=http://localhost
get() { curl -sS --max-time 30 --unix-socket "$T/d.sock" "$U$1"; }
post() {  # post FILE -> "CODE BODY"
	local f
	f=$(mktemp "$T/resp.XXXXXX")
	curl -sS --max-time 30 --unix-socket "$T/d.sock" -o "$f" -w '%{http_code}' \
		--data-binary @"$1" "$U/v1/records"
	echo " $(cat "$f")"
}

# --- the records, the old database, the expected roll-up --------------------
$PY - "$T" "$TOP/data/prices.json" <<'PYEOF'
import json, random, sqlite3, sys
t, prices_path = sys.argv[1], sys.argv[2]
table = {}
for prov in json.load(open(prices_path))["providers"].values():
    table.update(prov["models"])

def cost(r):
    p = table.get(r["model"])
    if p is None:
        return None
    tier = dict(p)
    lc = p.get("long_context")
    if lc and r["input_tokens"] > lc["threshold"]:
        tier.update({k: v for k, v in lc.items() if k != "threshold"})
    inp, cr = r["input_tokens"], r["cache_read_tokens"]
    return ((inp - cr) * tier["input"] + cr * tier.get("cache_read", tier["input"]) +
            r["output_tokens"] * tier["output"]) / 1e6

rnd = random.Random(17)
models = ["gpt-4o-mini", "gpt-4.1", "claude-sonnet-4-5", "unpriced-model-x"]
apps = ["@google/gemini-cli", "claude", "summarise", "uvicorn", "r\u00e9sum\u00e9-bot", None]
tls = ["openssl", "boringssl", "gotls", "rustls", "plain", None]

def record(i, **kw):
    inp = rnd.choice([10, 800, 5000, 120000])
    r = {"id": "%032x" % rnd.getrandbits(128), "ts": "2026-03-%02dT10:00:00Z" % (1 + i % 28),
         "provider": "openai", "model": rnd.choice(models), "input_tokens": inp,
         "output_tokens": rnd.randint(0, 3000), "cache_read_tokens": rnd.randint(0, inp // 2),
         "side": "server" if i % 9 == 8 else "client"}
    r.update(kw)
    return r

# Schema 1, as the first tokentapd created it, with rows of its time.
old = [record(i) for i in range(5)]
db = sqlite3.connect(t + "/d.db")
db.executescript("""
CREATE TABLE records (
  seq INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE,
  source TEXT, ts_us INTEGER NOT NULL, ttft_ms REAL, duration_ms REAL,
  pid INTEGER, tid INTEGER, comm TEXT, exe TEXT, cgroup TEXT, container_id TEXT,
  pod_uid TEXT, host TEXT, method TEXT, path TEXT, http TEXT, status INTEGER,
  provider TEXT, api TEXT, model TEXT, request_model TEXT, stream INTEGER,
  max_tokens INTEGER, input_tokens INTEGER, output_tokens INTEGER,
  cache_read_tokens INTEGER, cache_write_tokens INTEGER, reasoning_tokens INTEGER,
  usage_source TEXT, task TEXT, tenant TEXT, feature TEXT, prompt_hash TEXT,
  prefix_hash TEXT, request_bytes INTEGER, response_bytes INTEGER, error TEXT,
  blocked INTEGER, side TEXT,
  cost_usd REAL, cache_savings_usd REAL, received_us INTEGER NOT NULL);
CREATE INDEX records_ts ON records(ts_us);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
INSERT INTO meta VALUES ('schema', '1');
""")
for i, r in enumerate(old):
    db.execute("INSERT INTO records (id, ts_us, provider, model, input_tokens, output_tokens,"
               " cache_read_tokens, side, cost_usd, received_us) VALUES (?,?,?,?,?,?,?,?,?,?)",
               (bytes.fromhex(r["id"]), 1772000000000000 + i, r["provider"], r["model"],
                r["input_tokens"], r["output_tokens"], r["cache_read_tokens"], r["side"],
                cost(r), 1772000000000000))
db.commit()
db.close()

new = [record(i, app=rnd.choice(apps), tls=rnd.choice(tls)) for i in range(200)]
with open(t + "/new.jsonl", "w") as f:
    for r in new:
        f.write(json.dumps(r) + "\n")
# One batch: a tls no library has, an app one byte too long, and a valid
# record between them with the longest app there may be.
longest = record(0, app="a" * 127, tls="rustls", side="client")
with open(t + "/mixed.jsonl", "w") as f:
    f.write(json.dumps(record(1, tls="schannel")) + "\n")
    f.write(json.dumps(longest) + "\n")
    f.write(json.dumps(record(2, app="b" * 128)) + "\n")

rows = {}
for r in old + new + [longest]:
    if r["side"] == "server":
        continue
    row = rows.setdefault(r.get("app"), {"key": r.get("app"), "calls": 0, "input_tokens": 0,
                                         "output_tokens": 0, "cache_read_tokens": 0,
                                         "cost_usd": None, "unpriced_calls": 0})
    row["calls"] += 1
    for k in ("input_tokens", "output_tokens", "cache_read_tokens"):
        row[k] += r[k]
    c = cost(r)
    if c is None:
        row["unpriced_calls"] += 1
    else:
        row["cost_usd"] = (row["cost_usd"] or 0) + c
json.dump({"old": [r for r in old if r["side"] != "server"], "rows": list(rows.values()),
           "tls": {k: sum(1 for r in new + [longest] if r.get("tls") == k)
                   for k in tls if k}},
          open(t + "/expect.json", "w"))
PYEOF

# check_usage FILE WHICH: the by=app roll-up in FILE equals the expected
# rows (WHICH=old: only the schema-1 rows, all under a null app).
check_usage() {
	$PY - "$T/expect.json" "$1" "$2" <<'PYEOF'
import json, sys
expect = json.load(open(sys.argv[1]))
got = json.load(open(sys.argv[2]))
if sys.argv[3] == "old":
    want = [{"key": None, "calls": len(expect["old"]),
             "input_tokens": sum(r["input_tokens"] for r in expect["old"])}]
else:
    want = expect["rows"]
assert got["by"] == "app", got
g = {r["key"]: r for r in got["rows"]}
assert sorted(map(str, g)) == sorted(str(w["key"]) for w in want), (sorted(map(str, g)), want)
for w in want:
    r = g[w["key"]]
    for f, v in w.items():
        if f == "cost_usd" and v is not None:
            assert abs(r[f] - v) <= 1e-9 * max(1, v), (w["key"], f, r[f], v)
        else:
            assert r[f] == v, (w["key"], f, r[f], v)
costs = [r["cost_usd"] if r["cost_usd"] is not None else -1 for r in got["rows"]]
assert costs == sorted(costs, reverse=True), ("not biggest cost first", costs)
assert got["total"]["calls"] == sum(w["calls"] for w in want)
PYEOF
}

# schema_of: "VERSION has-app has-tls" of the database file
schema_of() {
	$PY - "$T/d.db" <<'PYEOF'
import sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
cols = {r[1] for r in db.execute("PRAGMA table_info(records)")}
print(db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0],
      "app" in cols, "tls" in cols)
PYEOF
}

# --- read-only: the old database as it is ------------------------------------
"$BIN/tokentap" report --db "$T/d.db" --by app --json >"$T/ro.json"
check_usage "$T/ro.json" old
"$BIN/tokentap" report --db "$T/d.db" --by app | grep -Eq '^ +1  \(none\) +[0-9]' ||
	fail "report --db --by app on the old database: no (none) row"
[ "$(schema_of)" = "1 False False" ] || fail "a read-only report changed the database: $(schema_of)"
echo "schema 1: tokentap report --db --by app reads it unchanged (app null)"

# --- migrated at start ---------------------------------------------------------
start first
grep -q "^tokentapd: database $T/d.db: added column app (schema 2)$" "$T/first.err" &&
	grep -q "^tokentapd: database $T/d.db: added column tls (schema 2)$" "$T/first.err" ||
	{ cat "$T/first.err"; fail "migration not logged"; }
[ "$(schema_of)" = "2 True True" ] || fail "after migration: $(schema_of)"
r=$(get /healthz)
case "$r" in *'"records":5'*) ;; *) fail "old rows after migration: $r" ;; esac
echo "migration: app and tls added, schema 2, the 5 old rows kept"

r=$(post "$T/new.jsonl")
[ "$r" = '200 {"accepted":200,"duplicates":0}' ] || fail "records with app and tls: $r"
r=$(post "$T/mixed.jsonl")
$PY - "$r" <<'PYEOF' || fail "mixed batch: $r"
import json, sys
code, body = sys.argv[1].split(" ", 1)
b = json.loads(body)
assert code == "422" and b["accepted"] == 1 and b["rejected_count"] == 2, b
errs = {x["line"]: x["error"] for x in b["rejected"]}
assert errs == {1: "tls: unknown value (expected openssl, boringssl, gotls, rustls, plain)",
                3: "app: longer than 127 bytes"}, errs
PYEOF
echo "validation: tls outside its values and a 128-byte app refused, the valid record kept"

get "/v1/usage?by=app" >"$T/usage.json"
check_usage "$T/usage.json" all
echo "usage: by=app equals the record sums ($($PY -c "
import json; print(len(json.load(open('$T/usage.json'))['rows']))") apps)"

"$BIN/tokentap" report --collector "unix:$T/d.sock" --by app --json >"$T/cli.json"
cmp -s <($PY -m json.tool "$T/usage.json") <($PY -m json.tool "$T/cli.json") ||
	fail "tokentap report --by app --json differs from /v1/usage?by=app"
"$BIN/tokentap" report --collector "unix:$T/d.sock" --by app --top 0 >"$T/cli.txt"
grep -Eq '^ +#  APP ' "$T/cli.txt" && grep -q ' @google/gemini-cli ' "$T/cli.txt" &&
	grep -q ' résumé-bot ' "$T/cli.txt" || { cat "$T/cli.txt"; fail "report --by app table"; }
echo "report: --by app, table and JSON"

set +e
"$BIN/tokentap" report --db "$T/d.db" --by application 2>"$T/e1"; rc=$?
set -e
[ $rc = 2 ] && grep -q 'expected one of task, tenant, feature, model, provider, pod, process, app' "$T/e1" ||
	fail "--by application: exit $rc, $(cat "$T/e1")"
r=$(get "/v1/usage?by=application")
case "$r" in *'by: expected one of task, tenant, feature, model, provider, pod, process, app'*) ;;
*) fail "by=application: $r" ;; esac
echo "errors: an unknown --by / by= lists app among the choices"

# --- a restart: nothing left to migrate, the same figures --------------------
stop
start second
if grep -q 'added column' "$T/second.err"; then fail "migrated twice: $(cat "$T/second.err")"; fi
get "/v1/usage?by=app" >"$T/usage2.json"
check_usage "$T/usage2.json" all
stop
$PY - "$T/d.db" "$T/expect.json" <<'PYEOF' || fail "tls column"
import json, sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
got = dict(db.execute("SELECT tls, count(*) FROM records WHERE tls IS NOT NULL GROUP BY tls"))
want = {k: v for k, v in json.load(open(sys.argv[2]))["tls"].items() if v}
assert got == want, (got, want)
PYEOF
echo "restart: no second migration, same roll-up; tls stored as sent"
echo PASS
