#!/usr/bin/env bash
# tokentap-probe's counters reach tokentapd (POST /v1/probe) and /metrics
# serves them as tokentap_probe_* series with the host as the only label;
# the records go to the same collector.  A loss the probe cannot prevent
# (a ring buffer too small for one 8 MiB write) is counted there, and the
# call's record says "truncated": never silent.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../mock/lib.sh"
. "$here/probe_clients/lib_probe.sh"

probe_preflight
TOKENTAPD=$TT_TOP/build/tokentapd
[ -x "$TOKENTAPD" ] || fail "$TOKENTAPD is not built"
mock_start || fail "the mock did not start"
sock=$MOCK_TMP/c.sock
"$TOKENTAPD" --listen "unix:$sock" --db "$MOCK_TMP/c.db" >"$MOCK_TMP/c.out" 2>"$MOCK_TMP/c.err" &
cpid=$!
on_exit "kill $cpid 2>/dev/null; wait $cpid 2>/dev/null"
for _ in $(seq 100); do grep -q '^tokentapd: ready' "$MOCK_TMP/c.out" && break; sleep 0.1; done
grep -q '^tokentapd: ready' "$MOCK_TMP/c.out" || fail "tokentapd did not start: $(cat "$MOCK_TMP/c.err")"
metrics() { curl -sS --unix-socket "$sock" http://x/metrics; }
host=$(hostname)

# 1. Counters and records of a normal run.
probe_start --collector "unix:$sock"
curl -sS --cacert "$MOCK_CA" -o /dev/null -H 'content-type: application/json' \
	"$(mock_url /v1/chat/completions)" \
	-d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"counted"}]}' ||
	fail "curl failed"
probe_stop
m=$(metrics)
echo "$m" | grep '^tokentap_probe_' | grep -E 'calls|records|files|dropped_events' | sed 's/^/  /'
calls=$(echo "$m" | sed -n "s/^tokentap_probe_calls_total{host=\"$host\"} //p")
recs=$(echo "$m" | sed -n "s/^tokentap_probe_records_total{host=\"$host\"} //p")
files=$(echo "$m" | sed -n "s/^tokentap_probe_files{host=\"$host\"} //p")
[ "${calls:-0}" -ge 2 ] || fail "tokentap_probe_calls_total is '${calls:-}', want the calls counted"
[ "${recs:-0}" -ge 1 ] || fail "tokentap_probe_records_total is '${recs:-}'"
[ "${files:-0}" -ge 1 ] || fail "tokentap_probe_files is '${files:-}'"
[ "$calls" = "$(probe_counter calls)" ] ||
	fail "/metrics says $calls calls, the probe's exit line $(probe_counter calls)"
echo "$m" | grep '^tokentap_probe_' | grep -v "{host=\"$host\"}" |
	grep -v '^tokentap_probe_hosts_refused_total ' && fail "a probe series without the host label"
usage=$(curl -sS --unix-socket "$sock" 'http://x/v1/usage?by=app')
echo "$usage" | grep -q '"key":"curl"' || fail "the record did not reach the collector: $usage"
echo "ok - the probe's counters in /metrics (host=\"$host\"), its record in /v1/usage"

# 2. A loss: one 8 MiB write into a 1 MiB ring.
PROBE_OUT=$MOCK_TMP/probe-records-2.jsonl
probe_start --collector "unix:$sock" --ringbuf-mb 1
"$TT_PY" "$PROBE_CLIENTS/urllib_client.py" "$MOCK_URL" "$MOCK_CA" big 8 >/dev/null &
client=$!
wait "$client" || fail "the big client failed"
probe_stop
dropped=$(metrics | sed -n "s/^tokentap_probe_dropped_events_total{host=\"$host\"} //p")
[ "${dropped:-0}" -gt 0 ] ||
	fail "an 8 MiB write through a 1 MiB ring lost nothing? dropped_events_total=${dropped:-}"
"$TT_PY" - "$PROBE_OUT" "$MOCK_PORT" "$client" <<'PY' || fail "lost bytes without a truncated record"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
mine = [r for r in recs if r["pid"] == int(sys.argv[3]) and r["side"] == "client"
        and (r.get("host") or "").endswith(":" + sys.argv[2])]
print("records of the big call:", [(r["request_bytes"], r["error"]) for r in mine])
sys.exit(0 if mine and all(r["error"] == "truncated" for r in mine) else 1)
PY
echo "ok - $dropped lost events counted in /metrics, the call's record says truncated"
