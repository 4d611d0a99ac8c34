#!/usr/bin/env bash
# tokentap-probe's cost, measured per call (PITFALLS.md 14): TLS bulk
# throughput (MB/s), microseconds per small SSL_write/SSL_read round trip,
# and LLM-call latency against the mock, without and with the probe
# attached, side by side in one run, with the ratios; then the events per
# second the probe handled and every event it dropped or cut.
#
#   bench/bench_probe.sh            (root; ~1 minute)
#   BENCH_MIB=512 BENCH_CALLS=50000 BENCH_LLM=500 bench/bench_probe.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../tests/mock/lib.sh"
. "$here/../tests/e2e/probe_clients/lib_probe.sh"

MIB=${BENCH_MIB:-256}
CALLS=${BENCH_CALLS:-20000}
SIZE=${BENCH_SIZE:-256}
LLM=${BENCH_LLM:-300}
ROUNDS=${BENCH_ROUNDS:-2}
TLS=$here/bench_probe_tls.py

probe_preflight
mock_start || fail "the mock did not start"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$MOCK_TMP/key.pem" \
	-out "$MOCK_TMP/cert.pem" -days 1 -subj /CN=bench >/dev/null 2>&1

# One round of the three workloads; prints "bulk calls llm" figures.
workloads() {
	local b c l
	b=$("$TT_PY" "$TLS" bulk "$MOCK_TMP/cert.pem" "$MOCK_TMP/key.pem" "$MIB")
	c=$("$TT_PY" "$TLS" calls "$MOCK_TMP/cert.pem" "$MOCK_TMP/key.pem" "$CALLS" "$SIZE")
	l=$("$TT_PY" "$TLS" llm "$MOCK_URL" "$MOCK_CA" "$LLM")
	echo "$b" | json_get - 'd["mb_per_s"]'
	echo "$c" | json_get - 'd["us_per_roundtrip"]'
	echo "$l" | json_get - 'd["ms_median"]'
	echo "$l" | json_get - 'd["ms_p95"]'
}

declare -a off on
events=0 dropped=0 dropped_bytes=0 cut=0 secs=0
for ((r = 1; r <= ROUNDS; r++)); do
	mapfile -t res < <(workloads)
	off+=("${res[@]}")
	probe_start
	t0=$(date +%s%N)
	mapfile -t res < <(workloads)
	t1=$(date +%s%N)
	on+=("${res[@]}")
	probe_stop >/dev/null
	events=$((events + $(probe_counter events)))
	dropped=$((dropped + $(probe_counter dropped_events)))
	dropped_bytes=$((dropped_bytes + $(probe_counter dropped_bytes)))
	cut=$((cut + $(probe_counter cut_bytes) + $(probe_counter fault_bytes) + $(probe_counter busy_bytes)))
	secs=$((secs + (t1 - t0) / 1000000))
done

"$TT_PY" - "$ROUNDS" "$MIB" "$CALLS" "$SIZE" "$LLM" "${off[*]}" "${on[*]}" <<'PY'
import statistics, sys
rounds, mib, calls, size, llm = map(int, sys.argv[1:6])
off = list(map(float, sys.argv[6].split()))
on = list(map(float, sys.argv[7].split()))
def col(v, i):
    return statistics.median(v[i::4])
rows = [("TLS bulk MB/s (%d MiB, 16 KiB writes)" % mib, 0, "higher"),
        ("us per %d-byte SSL round trip (%d)" % (size, calls), 1, "lower"),
        ("LLM call median ms (%d keep-alive)" % llm, 2, "lower"),
        ("LLM call p95 ms", 3, "lower")]
print("%-44s %12s %12s %8s" % ("median of %d rounds" % rounds, "no probe",
                                "probe", "ratio"))
for name, i, _ in rows:
    a, b = col(off, i), col(on, i)
    print("%-44s %12.2f %12.2f %8.3f" % (name, a, b, b / a))
PY
echo "probe: $events events in ${secs} ms of load ($((events * 1000 / (secs > 0 ? secs : 1))) events/s), dropped events $dropped ($dropped_bytes bytes), cut/faulted/busy bytes $cut"
