#!/usr/bin/env bash
# Adversarial storage cases (issue 14), against the built daemon over a
# Unix socket:
#  #3  1,100 records at the documented maximum (input_tokens = 2^53): the
#      token sums pass 2^63 - 1.  /v1/usage still answers 200 with exact
#      sums, `tokentap report --db` works, and the daemon starts again on
#      that database (it used to refuse: "cannot read the records").
#  #12 blocked calls (enforce mode) are not calls: /v1/usage counts them
#      in blocked_calls only, and `tokentap report` says so.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${BIN:-$TOP/build}
T=$(mktemp -d /tmp/tt-adv-store.XXXXXX)
DPID=
cleanup() {
	[ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

start() {
	: >"$T/out"
	"$BIN/tokentapd" --listen "unix:$T/d.sock" --db "$T/d.db" --sync normal >"$T/out" 2>&1 &
	DPID=$!
	for _ in $(seq 100); do
		grep -q '^tokentapd: ready' "$T/out" && return 0
		kill -0 "$DPID" 2>/dev/null || break
		sleep 0.1
	done
	cat "$T/out"
	fail "daemon did not start${1:+ ($1)}"
}
stop() {
	kill "$DPID" && wait "$DPID" 2>/dev/null || true
	DPID=
}
get() { curl -sS -o "$T/body" -w '%{http_code}' --unix-socket "$T/d.sock" "http://x$1"; }

start
# 1,100 records of 2^53 input tokens (and cache reads, output, reasoning).
MAX=9007199254740992
SUM=9907919180215091200  # 1100 x 2^53
for i in $(seq 1100); do
	printf '{"id":"%032x","ts":"2026-03-0%dT%02d:%02d:00Z","provider":"openai","model":"gpt-4o","input_tokens":%s,"output_tokens":%s,"cache_read_tokens":%s,"reasoning_tokens":%s,"feature":"big"}\n' \
		"$i" $((1 + i % 2)) $((i % 24)) $((i % 60)) $MAX $MAX $MAX $MAX
done >"$T/max.jsonl"
r=$(curl -sS --unix-socket "$T/d.sock" --data-binary @"$T/max.jsonl" http://x/v1/records)
[ "$r" = '{"accepted":1100,"duplicates":0}' ] || fail "ingest: $r"

# Blocked calls: two blocked (as the agent writes them), one that reached the provider.
{
	printf '{"id":"%032x","ts":"2026-03-05T10:00:00Z","model":"gpt-4o-mini","input_tokens":0,"output_tokens":0,"usage_source":"none","error":"blocked","blocked":true,"feature":"guarded"}\n' 5001 5002
	printf '{"id":"%032x","ts":"2026-03-05T10:00:01Z","model":"gpt-4o-mini","input_tokens":1000,"output_tokens":10,"feature":"guarded"}\n' 5003
} >"$T/blk.jsonl"
r=$(curl -sS --unix-socket "$T/d.sock" --data-binary @"$T/blk.jsonl" http://x/v1/records)
[ "$r" = '{"accepted":3,"duplicates":0}' ] || fail "ingest blocked: $r"

check_usage() {
	local code q
	for q in "by=model" "by=feature&since=2026-03-01T00:30:00Z&until=2026-03-06T10:00:00.5Z" "by=task"; do
		code=$(get "/v1/usage?$q")
		[ "$code" = 200 ] || { cat "$T/body"; fail "/v1/usage?$q answered $code ($1)"; }
	done
	get "/v1/usage?by=feature" >/dev/null
	/usr/bin/python3 - "$T/body" "$SUM" <<'PY' || fail "usage figures ($1)"
import json, sys
u = json.load(open(sys.argv[1]))
want = int(sys.argv[2])
rows = {r["key"]: r for r in u["rows"]}
big, g = rows["big"], rows["guarded"]
assert big["calls"] == 1100 and big["input_tokens"] == want, big
assert big["output_tokens"] == want and big["reasoning_tokens"] == want, big
assert big["cache_read_tokens"] == want and big["blocked_calls"] == 0, big
assert g["calls"] == 1 and g["blocked_calls"] == 2 and g["input_tokens"] == 1000, g
assert u["total"]["calls"] == 1101 and u["total"]["blocked_calls"] == 2, u["total"]
PY
}
check_usage "first run"

"$BIN/tokentap" report --collector "unix:$T/d.sock" --by feature >"$T/rep1" 2>&1 ||
	{ cat "$T/rep1"; fail "report through the collector"; }
stop
"$BIN/tokentap" report --db "$T/d.db" --by feature >"$T/rep2" 2>&1 || { cat "$T/rep2"; fail "report --db"; }
cat "$T/rep2"
cmp "$T/rep1" "$T/rep2" || fail "--db report differs from the collector's"
grep -Eq '^ +[0-9]+  guarded +1 .*\(2 blocked\)' "$T/rep2" || fail "report: blocked row"
grep -q '2 calls blocked by a budget' "$T/rep2" || fail "report: blocked line"
grep -Eq '^ +[0-9]+  big +1100 +9\.9e\+18' "$T/rep2" || fail "report: big row"

# The daemon starts again on this database, and answers the same.
start "restart"
check_usage "after a restart"
code=$(get /metrics)
[ "$code" = 200 ] || fail "/metrics answered $code after a restart"
stop
echo "PASS test_adv_store"
