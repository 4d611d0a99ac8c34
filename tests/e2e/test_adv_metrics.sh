#!/usr/bin/env bash
# Issue 14's adversarial cases against /metrics, on the built tokentapd over
# Unix sockets: 10,000 tenants against a cap of 1,000 label sets (the scrape
# stays bounded, the totals right); 70,000 pod UIDs against the default
# cap (no 500, records past the cap counted, a restart still starts);
# a NUL inside a label (refused with a clear error, no label shifted);
# 1,100 records of 2^53 tokens (exact, never negative, and the daemon
# starts again on that database); blocked calls (not in calls_total).
# Each case is bounded to seconds; the small scrapes pass promtool when it
# is installed (it takes 15 s over the 47 MB of 10,000 pod series).
set -euo pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$TOP/build
PY=/usr/bin/python3
T=$(mktemp -d /tmp/tt-adv-metrics.XXXXXX)
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
U=http://localhost

# start_daemon NAME ARGS...: starts tokentapd on unix:$T/NAME.sock, waits for "ready".
start_daemon() {
	local name=$1
	shift
	"$TOKENTAPD" --listen "unix:$T/$name.sock" "$@" >"$T/$name.out" 2>"$T/$name.err" &
	PIDS+=($!)
	for _ in $(seq 200); do
		grep -q '^tokentapd: ready' "$T/$name.out" 2>/dev/null && return 0
		kill -0 "${PIDS[-1]}" 2>/dev/null || { cat "$T/$name.err"; fail "$name did not start"; }
		sleep 0.1
	done
	fail "$name not ready in 20 s"
}

# stop_daemon: SIGTERM the last one started and wait for it.
stop_daemon() {
	local p=${PIDS[-1]}
	kill "$p"
	wait "$p" 2>/dev/null || true
	unset 'PIDS[-1]'
}

# post NAME FILE -> "CODE BODY"
post() {
	local f
	f=$(mktemp "$T/resp.XXXXXX")
	curl -sS --max-time 60 --unix-socket "$T/$1.sock" -o "$f" -w '%{http_code}' \
		--data-binary "@$2" "$U/v1/records"
	echo " $(cat "$f")"
	rm -f "$f"
}

# scrape NAME OUT [lint]: GET /metrics into OUT, must be 200 within 20 s; prints the seconds.
scrape() {
	local code
	code=$(curl -sS --max-time 20 --unix-socket "$T/$1.sock" -o "$2" \
		-w '%{http_code} %{time_total}' "$U/metrics")
	[ "${code% *}" = 200 ] || fail "$1: /metrics answered ${code% *}: $(head -c 300 "$2")"
	if [ "${3:-}" = lint ] && command -v promtool >/dev/null; then
		promtool check metrics <"$2" >/dev/null 2>"$T/promtool.err" ||
			{ head -5 "$T/promtool.err" >&2; fail "$1: promtool check metrics"; }
	fi
	echo "${code#* }"
}

# value FILE SERIES: the value of exactly that sample (name and labels).
value() {
	awk -v s="$2" 'substr($0, 1, length(s) + 1) == s " " { print substr($0, length(s) + 2); found = 1 }
		END { if (!found) exit 1 }' "$1" || fail "no sample $2"
}

# sum FILE NAME: the sum and count of NAME{...} samples.
sum() {
	awk -v n="$2{" 'substr($0, 1, length(n)) == n { s += $NF; c++ } END { printf "%.0f %d\n", s, c }' "$1"
}

# gen KIND N OUT: N records, one JSON object a line.
gen() {
	$PY - "$@" <<'PYEOF'
import json, sys
kind, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
prefix = {"tenants": 1, "pods": 2, "max": 3, "blocked": 4}[kind]
with open(out, "w") as f:
    for i in range(n):
        r = {"id": "%02x%030x" % (prefix, i + 1), "provider": "openai",
             "model": "gpt-4o-mini", "input_tokens": 3, "output_tokens": 2, "side": "client",
             "ts": "2026-03-01T00:00:00.000000Z"}
        if kind == "tenants":
            r["tenant"] = "tenant-%05d" % i
        elif kind == "pods":
            r["pod_uid"] = "%08x-0000-4000-8000-%012x" % (i, i)
        elif kind == "max":
            r["tenant"] = "big"
            r["input_tokens"] = r["output_tokens"] = 2 ** 53
        elif kind == "blocked":
            r["tenant"] = "enforced"
            if i < 3:
                r.update(input_tokens=0, output_tokens=0, usage_source="none",
                         error="blocked", blocked=True)
        f.write(json.dumps(r) + "\n")
PYEOF
}

OVF='{provider="_overflow",model="_overflow",tenant="_overflow",feature="_overflow",pod="_overflow"}'

# --- 10,000 tenants, cap 1,000: the scrape stays bounded ----------------------
echo '{"metrics": {"max_series": 1000, "series_idle_s": 3600}}' >"$T/cap.json"
start_daemon cap --db "$T/cap.db" --config "$T/cap.json"
gen tenants 10000 "$T/tenants.jsonl"
r=$(post cap "$T/tenants.jsonl")
case "$r" in '200 {"accepted":10000'*) ;; *) fail "tenants: $r" ;; esac
secs=$(scrape cap "$T/m.cap" lint)
size=$(stat -c %s "$T/m.cap")
[ "$(value "$T/m.cap" tokentap_series)" = 1001 ] || fail "tenants: series $(value "$T/m.cap" tokentap_series)"
[ "$(value "$T/m.cap" tokentap_metrics_series_dropped_total)" = 9000 ] || fail "tenants: dropped"
[ "$(value "$T/m.cap" "tokentap_calls_total$OVF")" = 9000 ] || fail "tenants: overflow calls"
[ "$(sum "$T/m.cap" tokentap_calls_total)" = "10000 1001" ] || fail "tenants: calls $(sum "$T/m.cap" tokentap_calls_total)"
[ "$(sum "$T/m.cap" tokentap_tokens_total)" = "50000 5005" ] || fail "tenants: tokens"
[ "$size" -lt $((1001 * 4096)) ] || fail "tenants: scrape of $size bytes"
echo "ok 10000 tenants, cap 1000: 1001 series, 9000 records in _overflow, $size bytes in ${secs} s"
stop_daemon

# --- 70,000 pod UIDs, default cap: no 500, drops counted, restart starts -------
start_daemon pods --db "$T/pods.db"
gen pods 70000 "$T/pods.jsonl"
r=$(post pods "$T/pods.jsonl")
case "$r" in '200 {"accepted":70000'*) ;; *) fail "pods: $r" ;; esac
for pass in live restarted; do
	secs=$(scrape pods "$T/m.pods")
	size=$(stat -c %s "$T/m.pods")
	[ "$(value "$T/m.pods" tokentap_series)" = 10001 ] || fail "pods ($pass): series"
	[ "$(value "$T/m.pods" tokentap_metrics_series_max)" = 10000 ] || fail "pods ($pass): max"
	[ "$(value "$T/m.pods" tokentap_metrics_series_dropped_total)" = 60000 ] ||
		fail "pods ($pass): dropped $(value "$T/m.pods" tokentap_metrics_series_dropped_total)"
	[ "$(sum "$T/m.pods" tokentap_calls_total)" = "70000 10001" ] || fail "pods ($pass): calls"
	[ "$size" -lt $((10001 * 5120)) ] || fail "pods ($pass): scrape of $size bytes"
	echo "ok 70000 pod uids ($pass): 10001 series, 60000 records in _overflow, $size bytes in ${secs} s"
	if [ $pass = live ]; then
		stop_daemon
		s=$(date +%s.%N)
		start_daemon pods --db "$T/pods.db"
		echo "   restarted on 70000 label sets in $($PY -c "import time; print('%.1f' % (time.time() - $s))") s"
	fi
done
stop_daemon

# --- a NUL in a label, 2^53 tokens, blocked calls; then a restart ------------
start_daemon adv --db "$T/adv.db"
printf '%s\n' '{"id":"000000000000000000000000000000a1","provider":"openai","model":"gpt-4o-mini\u0000acme","input_tokens":1000000,"output_tokens":0}' \
	'{"id":"000000000000000000000000000000a2","provider":"openai","model":"gpt-4o-mini","tenant":"q\"uote\\back\nline","input_tokens":1,"output_tokens":1}' >"$T/nul.jsonl"
r=$(post adv "$T/nul.jsonl")
case "$r" in '422 '*'"accepted":1'*'model: contains a NUL character'*) ;; *) fail "nul: $r" ;; esac
gen max 1100 "$T/max.jsonl"
r=$(post adv "$T/max.jsonl")
case "$r" in '200 {"accepted":1100'*) ;; *) fail "max: $r" ;; esac
gen blocked 5 "$T/blocked.jsonl"
r=$(post adv "$T/blocked.jsonl")
case "$r" in '200 {"accepted":5'*) ;; *) fail "blocked: $r" ;; esac
L='{provider="openai",model="gpt-4o-mini",tenant="%s",feature="",pod=""%s}'
for pass in live restarted; do
	scrape adv "$T/m.adv" lint >/dev/null
	if grep -q 'tenant="acme"' "$T/m.adv"; then fail "nul ($pass): a label shifted onto tenant"; fi
	[ "$(value "$T/m.adv" "tokentap_calls_total$(printf "$L" 'q\\"uote\\\\back\\nline' '')")" = 1 ] ||
		fail "escapes ($pass)"
	[ "$(value "$T/m.adv" "tokentap_tokens_total$(printf "$L" big ',type="input"')")" = 9907919180215091200 ] ||
		fail "max ($pass): input tokens $(grep 'tenant="big".*input' "$T/m.adv")"
	[ "$(value "$T/m.adv" "tokentap_calls_total$(printf "$L" big '')")" = 1100 ] || fail "max ($pass): calls"
	if grep -E '^tokentap_[a-z_]+(\{[^}]*\})? -' "$T/m.adv"; then fail "max ($pass): a negative value"; fi
	[ "$(value "$T/m.adv" "tokentap_calls_total$(printf "$L" enforced '')")" = 2 ] || fail "blocked ($pass): calls"
	[ "$(value "$T/m.adv" "tokentap_blocked_calls_total$(printf "$L" enforced '')")" = 3 ] ||
		fail "blocked ($pass): blocked calls"
	echo "ok NUL refused, labels escaped, 1100 x 2^53 tokens = 9907919180215091200, 2 calls + 3 blocked ($pass)"
	if [ $pass = live ]; then
		stop_daemon
		start_daemon adv --db "$T/adv.db"
	fi
done
stop_daemon

# --- the metrics section of the config is checked like the rest -------------
echo '{"metrics": {"max_series": 0}}' >"$T/bad.json"
if timeout 10 "$TOKENTAPD" --config "$T/bad.json" --check-config 2>"$T/cfg.err"; then fail "max_series 0 accepted"; fi
grep -q 'metrics.max_series: expected a number of label sets' "$T/cfg.err" || fail "config: $(cat "$T/cfg.err")"
echo "ok metrics.max_series 0 refused: $(cat "$T/cfg.err")"
echo "test_adv_metrics: all passed"
