#!/usr/bin/env bash
# tokentapd's HTTP API with curl, on a temporary Unix socket and a loopback
# port: ingest (JSON Lines and arrays) then roll-ups equal to the sums of
# the records, computed here with this script's own formula over
# data/prices.json; the same batch twice counts once; 8 concurrent senders;
# bad inputs each get a clear 4xx or a timeout and the daemon keeps
# serving; /metrics passes promtool; bearer token; refused configurations.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$TOP/build
PY=/usr/bin/python3
T=$(mktemp -d /tmp/tt-col-api.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

TOKENTAPD=${TOKENTAPD_BIN:-$BIN/tokentapd}
[ -x "$TOKENTAPD" ] || fail "$TOKENTAPD is missing (run make)"

# start_daemon NAME ARGS...: starts tokentapd, waits for "ready", sets PORT.
start_daemon() {
	local name=$1
	shift
	"$TOKENTAPD" "$@" >"$T/$name.out" 2>"$T/$name.err" &
	PIDS+=($!)
	for _ in $(seq 100); do
		grep -q '^tokentapd: ready' "$T/$name.out" 2>/dev/null && break
		kill -0 "${PIDS[-1]}" 2>/dev/null || { cat "$T/$name.err"; fail "$name did not start"; }
		sleep 0.1
	done
	grep -q '^tokentapd: ready' "$T/$name.out" || fail "$name not ready in 10 s"
	PORT=$(sed -n 's|^tokentapd: listening on http://127.0.0.1:\([0-9]*\)$|\1|p' "$T/$name.out")
}

start_daemon main --listen "unix:$T/d.sock" --listen http://127.0.0.1:0 --db "$T/d.db" --timeout 2
SOCK=(--unix-socket "$T/d.sock")
U=http://localhost
H=http://127.0.0.1:$PORT
[ -n "$PORT" ] || fail "no port printed"
[ "$(stat -c %a "$T/d.sock")" = 660 ] || fail "socket mode is $(stat -c %a "$T/d.sock"), want 660"
echo "daemon up: unix:$T/d.sock and $H"

# post ARGS... -> prints "CODE BODY"
post() {
	local f
	f=$(mktemp "$T/resp.XXXXXX")
	curl -sS --max-time 30 -o "$f" -w '%{http_code}' "$@"
	echo " $(cat "$f")"
	rm -f "$f"
}

# --- generate records and the expected roll-ups ----------------------------
$PY - "$T" "$TOP/data/prices.json" <<'PYEOF'
import json, random, sys
t, prices_path = sys.argv[1], sys.argv[2]
table = {}
for prov in json.load(open(prices_path))["providers"].values():
    for name, p in prov["models"].items():
        table[name] = p
rnd = random.Random(7)
models = [("openai", "gpt-4o-mini"), ("openai", "gpt-4.1"), ("anthropic", "claude-sonnet-4-5"),
          ("gemini", "gemini-2.5-pro"), ("deepseek", "deepseek-chat"), ("acme", "mystery-model")]
features = ["summarise", "chat", "search", None]
tenants = ["acme", "globex", None]
apps = ["@google/gemini-cli", "claude", "summarise", None]
recs = []
for i in range(600):
    prov, model = rnd.choice(models)
    inp = rnd.choice([10, 500, 3000, 150000, 250000])
    cr = rnd.randint(0, inp // 2)
    cw = rnd.randint(0, (inp - cr) // 4) if prov == "anthropic" else 0
    out = rnd.randint(0, 4000)
    rs = rnd.randint(0, out // 2)
    recs.append({"id": "%032x" % rnd.getrandbits(128), "source": "preload",
                 "ts": "2026-11-%02dT%02d:00:00.000000Z" % (1 + i % 20, i % 24),
                 "ttft_ms": rnd.uniform(50, 3000), "duration_ms": rnd.uniform(100, 60000),
                 "pid": 1000 + i % 7, "comm": "python3", "exe": "/usr/bin/python3",
                 "provider": prov, "model": model, "input_tokens": inp, "output_tokens": out,
                 "cache_read_tokens": cr, "cache_write_tokens": cw, "reasoning_tokens": rs,
                 "usage_source": "provider", "task": "task-%d" % (i % 5),
                 "tenant": rnd.choice(tenants), "feature": rnd.choice(features),
                 "pod_uid": None, "side": "server" if i % 10 == 9 else "client",
                 "app": apps[i % len(apps)], "tls": rnd.choice(["openssl", "boringssl", None])})

def cost(r):
    p = table.get(r["model"])
    if p is None:
        return None
    inp, cr, cw = r["input_tokens"], r["cache_read_tokens"], r["cache_write_tokens"]
    tier = dict(p)
    lc = p.get("long_context")
    if lc and inp > lc["threshold"]:
        tier.update({k: v for k, v in lc.items() if k != "threshold"})
    pin = tier["input"]
    return ((inp - cr - cw) * pin + cr * tier.get("cache_read", pin) +
            cw * tier.get("cache_write", pin) + r["output_tokens"] * tier["output"]) / 1e6

expect = {}
for by, col in [("feature", "feature"), ("model", "model"), ("tenant", "tenant"),
                ("provider", "provider"), ("task", "task"), ("app", "app")]:
    rows = {}
    for r in recs:
        if r["side"] == "server":
            continue
        k = r[col]
        row = rows.setdefault(k, {"calls": 0, "input_tokens": 0, "output_tokens": 0,
                                  "cache_read_tokens": 0, "cache_write_tokens": 0,
                                  "reasoning_tokens": 0, "cost_usd": None, "unpriced_calls": 0})
        row["calls"] += 1
        for f in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
                  "reasoning_tokens"):
            row[f] += r[f]
        c = cost(r)
        if c is None:
            row["unpriced_calls"] += 1
        else:
            row["cost_usd"] = (row["cost_usd"] or 0) + c
    expect[by] = rows
json.dump({str(k): v for k, v in expect.items()}, open(t + "/expect.json", "w"),
          default=str)
# expect.json keys: None -> "None"; rewrite explicitly
out = {by: [{"key": k, **v} for k, v in rows.items()] for by, rows in expect.items()}
json.dump(out, open(t + "/expect.json", "w"))
with open(t + "/a.jsonl", "w") as f:
    for r in recs[:300]:
        f.write(json.dumps(r) + "\n")
json.dump(recs[300:], open(t + "/b.json", "w"), indent=1)
PYEOF

r=$(post "${SOCK[@]}" -H 'Content-Type: application/x-ndjson' --data-binary @"$T/a.jsonl" $U/v1/records)
[ "$r" = '200 {"accepted":300,"duplicates":0}' ] || fail "JSON Lines post: $r"
r=$(post -H 'Content-Type: application/json' --data-binary @"$T/b.json" "$H/v1/records")
[ "$r" = '200 {"accepted":300,"duplicates":0}' ] || fail "JSON array post: $r"
r=$(post "${SOCK[@]}" --data-binary @"$T/a.jsonl" $U/v1/records)
[ "$r" = '200 {"accepted":0,"duplicates":300}' ] || fail "same batch twice: $r"
echo "ingest: 600 records, resend counted as duplicates"

# --- roll-ups equal the sums ------------------------------------------------
for by in feature model tenant provider task app; do
	curl -sS --max-time 30 "${SOCK[@]}" "$U/v1/usage?by=$by" >"$T/usage-$by.json"
done
$PY - "$T" <<'PYEOF'
import json, sys
t = sys.argv[1]
expect = json.load(open(t + "/expect.json"))
for by, rows in expect.items():
    got = json.load(open("%s/usage-%s.json" % (t, by)))
    assert got["by"] == by, got
    g = {r["key"]: r for r in got["rows"]}
    assert len(g) == len(rows), (by, sorted(map(str, g)), rows)
    for e in rows:
        r = g[e["key"]]
        for f in ("calls", "input_tokens", "output_tokens", "cache_read_tokens",
                  "cache_write_tokens", "reasoning_tokens", "unpriced_calls"):
            assert r[f] == e[f], (by, e["key"], f, r[f], e[f])
        if e["cost_usd"] is None:
            assert r["cost_usd"] is None, (by, e["key"], r)
        else:
            assert abs(r["cost_usd"] - e["cost_usd"]) <= 1e-9 * max(1, e["cost_usd"]), \
                (by, e["key"], r["cost_usd"], e["cost_usd"])
    costs = [r["cost_usd"] if r["cost_usd"] is not None else -1 for r in got["rows"]]
    assert costs == sorted(costs, reverse=True), ("not biggest cost first", by, costs)
    assert got["total"]["calls"] == sum(e["calls"] for e in rows)
print("usage: roll-ups by feature, model, tenant, provider, task, app equal the record sums")
PYEOF

# since/until: the records span 2026-11-01 .. 2026-11-20
a=$(curl -sS "${SOCK[@]}" "$U/v1/usage?by=provider&since=2026-11-05&until=2026-11-10" |
	$PY -c 'import json,sys; print(json.load(sys.stdin)["total"]["calls"])')
e=$($PY -c "
import json
n=0
for l in open('$T/a.jsonl'): 
    r=json.loads(l); n += r['side']!='server' and '2026-11-05' <= r['ts'][:10] < '2026-11-10'
for r in json.load(open('$T/b.json')): n += r['side']!='server' and '2026-11-05' <= r['ts'][:10] < '2026-11-10'
print(n)")
[ "$a" = "$e" ] || fail "since/until window: $a calls, want $e"
echo "usage: since/until window: $a calls"

# --- 8 concurrent senders ---------------------------------------------------
$PY - "$T" <<'PYEOF'
import json, random, sys
t = sys.argv[1]
rnd = random.Random(11)
for s in range(8):
    for b in range(5):
        with open("%s/c%d-%d.jsonl" % (t, s, b), "w") as f:
            for i in range(100):
                f.write(json.dumps({"id": "%032x" % rnd.getrandbits(128), "model": "gpt-4o",
                                    "provider": "openai", "input_tokens": 100,
                                    "output_tokens": 10, "feature": "concurrent"}) + "\n")
PYEOF
before=$(curl -sS "${SOCK[@]}" $U/healthz | $PY -c 'import json,sys; print(json.load(sys.stdin)["records"])')
spids=()
for s in $(seq 0 7); do
	(
		for b in 0 1 2 3 4; do
			if [ $((s % 2)) = 0 ]; then
				post "${SOCK[@]}" --data-binary @"$T/c$s-$b.jsonl" $U/v1/records
			else
				post --data-binary @"$T/c$s-$b.jsonl" "$H/v1/records"
			fi
		done >"$T/sender$s.log"
	) &
	spids+=($!)
done
for p in "${spids[@]}"; do wait "$p"; done
[ "$(cat "$T"/sender*.log | grep -c '^200 {"accepted":100,"duplicates":0}$')" = 40 ] ||
	{ cat "$T"/sender*.log; fail "concurrent senders: not every batch acknowledged"; }
after=$(curl -sS "${SOCK[@]}" $U/healthz | $PY -c 'import json,sys; print(json.load(sys.stdin)["records"])')
[ $((after - before)) = 4000 ] || fail "concurrent: $((after - before)) stored, want 4000"
r=$(curl -sS "${SOCK[@]}" "$U/v1/usage?by=feature" | $PY -c '
import json,sys
print([r["calls"] for r in json.load(sys.stdin)["rows"] if r["key"]=="concurrent"][0])')
[ "$r" = 4000 ] || fail "concurrent feature calls $r"
echo "concurrency: 8 senders x 5 batches x 100 records, 4000 stored once"

# --- bad inputs -------------------------------------------------------------
expect_code() {  # expect_code WANT_CODE WANT_SUBSTRING CURL_ARGS...
	local want=$1 sub=$2
	shift 2
	local r
	r=$(post "$@")
	case "$r" in
	"$want "*"$sub"*) echo "  ok $want: ${r:4:110}" ;;
	*) fail "want $want with '$sub', got: $r" ;;
	esac
}
ID=0123456789abcdef0123456789abcdef
printf '{"id":"%s","input_tokens":1}\n{"id": oops\n' "${ID/0/a}" >"$T/bad1"
expect_code 422 '{"line":2,"error":"malformed JSON at byte 8 of the record"}' "${SOCK[@]}" --data-binary @"$T/bad1" $U/v1/records
printf '[{"id":"%s","input_tokens":"12"}]' "${ID/0/b}" >"$T/bad2"
expect_code 422 '"index":0,"error":"input_tokens: expected integer"' "${SOCK[@]}" --data-binary @"$T/bad2" $U/v1/records
printf '[{"id":"%s"},{"id":"%s"' "${ID/0/c}" "${ID/0/d}" >"$T/bad3"
expect_code 400 'unterminated JSON array' "${SOCK[@]}" --data-binary @"$T/bad3" $U/v1/records
expect_code 400 'empty body' "${SOCK[@]}" --data-binary '' $U/v1/records
truncate -s 100M "$T/big"
expect_code 413 'body larger than 16777216 bytes' "${SOCK[@]}" --data-binary @"$T/big" $U/v1/records
# chunked (no Content-Length): read, dropped, then 413
head -c 20000000 /dev/zero | tr '\0' ' ' >"$T/big2"
expect_code 413 'body larger' "${SOCK[@]}" -H 'Transfer-Encoding: chunked' --data-binary @"$T/big2" $U/v1/records
expect_code 415 'Content-Encoding not supported' "${SOCK[@]}" -H 'Content-Encoding: gzip' --data-binary @"$T/bad1" $U/v1/records
expect_code 404 'not found' "${SOCK[@]}" $U/v2/nothing
expect_code 405 'use POST' "${SOCK[@]}" $U/v1/records
expect_code 405 'use GET, HEAD' "${SOCK[@]}" -X POST --data-binary x $U/v1/usage
expect_code 400 'by: expected one of' "${SOCK[@]}" "$U/v1/usage?by=pid"
expect_code 400 'since: expected' "${SOCK[@]}" "$U/v1/usage?by=model&since=yesterday"
expect_code 200 '{"allow":true,"reason":null}' "${SOCK[@]}" "$U/v1/verdict?task=t1&tenant=acme"
# the valid record of bad1 was stored even though its batch was refused in part
r=$(post "${SOCK[@]}" --data-binary @"$T/bad1" $U/v1/records)
case "$r" in 422\ \{\"accepted\":0,\"duplicates\":1,*) ;; *) fail "bad1 resend: $r" ;; esac

# slow senders: idle (timeout 2 s) and a drip feed that never idles (4 x 2 s cap)
$PY - "$PORT" <<'PYEOF'
import socket, sys, threading, time
port = int(sys.argv[1])
res = {}
def slow(name, drip):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(b"POST /v1/records HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{")
    t0 = time.time()
    try:
        while time.time() - t0 < 25:
            if drip:
                s.sendall(b" ")
            s.settimeout(1)
            try:
                if s.recv(4096) == b"":
                    break
            except socket.timeout:
                pass
    except (ConnectionResetError, BrokenPipeError):
        pass
    res[name] = time.time() - t0
    s.close()
th = [threading.Thread(target=slow, args=(n, d)) for n, d in (("idle", False), ("drip", True))]
[x.start() for x in th]
[x.join() for x in th]
for n, secs in res.items():
    assert secs < 20, (n, secs)
    print("  ok slow sender (%s): closed after %.1f s" % (n, secs))
PYEOF
r=$(curl -sS --max-time 10 "${SOCK[@]}" $U/healthz)
case "$r" in '{"status":"ok"'*) echo "daemon still serving: $r" ;; *) fail "healthz after bad inputs: $r" ;; esac

# --- metrics ----------------------------------------------------------------
curl -sS --max-time 30 "$H/metrics" >"$T/metrics"
grep -q '^tokentap_calls_total{provider="openai",model="gpt-4o",tenant="",feature="concurrent",pod=""} 4000$' "$T/metrics" ||
	fail "metrics: concurrent calls line missing"
if grep -E '^tokentap_[a-z_]+\{[^}]*(task|pid)=' "$T/metrics"; then fail "metrics carry task or pid labels"; fi
grep -q '^tokentap_ttft_seconds_bucket{.*le="+Inf"}' "$T/metrics" || fail "metrics: no ttft histogram"
if command -v promtool >/dev/null; then
	promtool check metrics <"$T/metrics" || fail "promtool check metrics"
	echo "metrics: promtool check metrics passed"
else
	echo "metrics: promtool not installed, lint skipped (scripts/deps.sh installs it)"
fi

# The in-memory series after a restart (loaded from the database) equal the
# ones built record by record; counters of this process start again (and
# the connection counters are per listener, which differ here).
kill "${PIDS[0]}"
wait "${PIDS[0]}" 2>/dev/null || true
start_daemon again --listen "unix:$T/d2.sock" --db "$T/d.db"
curl -sS --max-time 30 --unix-socket "$T/d2.sock" $U/metrics >"$T/metrics2"
$PY - "$T/metrics" "$T/metrics2" <<'PYEOF'
import sys
def series(path):
    out = {}
    for line in open(path):
        if line.startswith(("#", "tokentap_ingest", "tokentap_stored", "tokentap_http_")):
            continue
        name, value = line.rsplit(" ", 1)
        out[name] = float(value)
    return out
a, b = series(sys.argv[1]), series(sys.argv[2])
assert a.keys() == b.keys(), set(a) ^ set(b)
for k in a:
    assert abs(a[k] - b[k]) <= 1e-9 * max(1.0, abs(a[k])), (k, a[k], b[k])
print("metrics: %d samples identical after a restart" % len(a))
PYEOF

# --- bearer token, refused configurations -----------------------------------
printf 'not-a-secret-test-token-0123456789\n' >"$T/token"
chmod 600 "$T/token"
start_daemon tok --listen http://127.0.0.1:0 --db "$T/tok.db" --token-file "$T/token"
expect_code 401 'bearer token' --data-binary '[]' "http://127.0.0.1:$PORT/v1/records"
expect_code 401 'bearer token' -H 'Authorization: Bearer wrong' "http://127.0.0.1:$PORT/v1/usage?by=model"
expect_code 200 '"accepted":0' -H 'Authorization: Bearer not-a-secret-test-token-0123456789' \
	--data-binary '[]' "http://127.0.0.1:$PORT/v1/records"
expect_code 200 '"status":"ok"' "http://127.0.0.1:$PORT/healthz"
if timeout 10 "$TOKENTAPD" --listen http://0.0.0.0:0 --db "$T/x.db" 2>"$T/remote.err"; then fail "0.0.0.0 accepted"; fi
grep -q 'not a loopback address; add --allow-remote' "$T/remote.err" || fail "remote: $(cat "$T/remote.err")"
echo '{"prices": {"models": {"m": {"input": "cheap", "output": 1}}}}' >"$T/bad.json"
if timeout 10 "$TOKENTAPD" --config "$T/bad.json" --check-config 2>"$T/cfg.err"; then fail "bad config accepted"; fi
grep -q 'prices.models.m.input: expected a number' "$T/cfg.err" || fail "config error: $(cat "$T/cfg.err")"
if timeout 10 "$TOKENTAPD" --listen "unix:$T/d2.sock" --db "$T/y.db" 2>"$T/busy.err"; then fail "second daemon on a live socket"; fi
grep -q 'another daemon is listening' "$T/busy.err" || fail "busy socket: $(cat "$T/busy.err")"
"$TOKENTAPD" --help | grep -q -- '--listen ADDR' || fail "--help"
echo "token, loopback-only, config errors, live socket: refused with clear messages"
echo "PASS"
