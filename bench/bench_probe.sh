#!/usr/bin/env bash
# tokentap-probe's cost, measured per call (PITFALLS.md 14), issue #7.
# In one run, rounds interleaved, four set-ups side by side:
#   none    no instrumentation
#   null    do-nothing BPF programs on the same SSL_write/SSL_read symbols,
#           entry and return (build/bench/bench_probe_null): the trap floor
#   probe   tokentap-probe
#   agent   LD_PRELOAD=build/libtokentap.so, TOKENTAP_COLLECTOR=off
# for: TLS bulk throughput (MB/s), small TLS round trips (us each, Python
# over TCP), CPU added per SSL call (build/bench/bench_probe_calls: both
# ends in one C thread over a BIO pair, where the traps and BPF programs
# run, plus the probe reader's CPU), with probe/null as the ratio against
# the floor (goal <= 1.10); LLM call latency against the mock.
# Then events lost at ~1,000 LLM calls per second for BENCH_RATE_SECS:
# calls made vs client records out of the probe, and its drop counters.
#
# The TLS workloads are not HTTP: the probe's decoder gives such a
# connection up after its first bytes and, from then on, the kernel side
# ignores it.  The LLM figures are the full path: every byte copied and
# decoded.
#
#   bench/bench_probe.sh            (root; about 1.5 minutes)
#   BENCH_MIB=512 BENCH_CALLS=50000 BENCH_ROUNDS=3 bench/bench_probe.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../tests/mock/lib.sh"
. "$here/../tests/e2e/probe_clients/lib_probe.sh"

MIB=${BENCH_MIB:-128}
CALLS=${BENCH_CALLS:-10000}
CCALLS=${BENCH_CCALLS:-20000}
SIZE=${BENCH_SIZE:-256}
LLM=${BENCH_LLM:-300}
ROUNDS=${BENCH_ROUNDS:-2}
RATE=${BENCH_RATE:-1000}
RATE_SECS=${BENCH_RATE_SECS:-10}
RATE_CONNS=${BENCH_RATE_CONNS:-4}
TLS=$here/bench_probe_tls.py
NULL_BIN=$TT_TOP/build/bench/bench_probe_null
CALLS_BIN=$TT_TOP/build/bench/bench_probe_calls
AGENT_LIB=$TT_TOP/build/libtokentap.so
TCK=$(getconf CLK_TCK)

probe_preflight
[ -x "$NULL_BIN" ] || fail "$NULL_BIN is not built (make)"
[ -x "$CALLS_BIN" ] || fail "$CALLS_BIN is not built (make)"
# Another probe on the node adds its traps to every set-up here.
others() {
	pgrep -x tokentap-probe | grep -vx "${PROBE_PID:-0}" | tr '\n' ' ' || true
}
OTHERS_BEFORE=$(others)
[ -f "$AGENT_LIB" ] || fail "$AGENT_LIB is not built (make)"
# The libssl the workloads call: where the floor's uprobes go.
LIBSSL=$("$TT_PY" -c 'import ssl
print([l.split()[-1] for l in open("/proc/self/maps") if "/libssl" in l][0])')
mock_start || fail "the mock did not start"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$MOCK_TMP/key.pem" \
	-out "$MOCK_TMP/cert.pem" -days 1 -subj /CN=bench >/dev/null 2>&1
RES=$MOCK_TMP/results.jsonl
: >"$RES"

NULL_PID=
null_kill() {
	[ -n "$NULL_PID" ] || return 0
	kill -INT "$NULL_PID" 2>/dev/null
	wait "$NULL_PID" 2>/dev/null || true
	NULL_PID=
}
on_exit null_kill
null_start() {
	"$NULL_BIN" "$LIBSSL" 2>"$MOCK_TMP/null.log" &
	NULL_PID=$!
	local i
	for ((i = 0; i < 100; i++)); do
		grep -q ready "$MOCK_TMP/null.log" && return 0
		kill -0 "$NULL_PID" 2>/dev/null || fail "bench_probe_null: $(cat "$MOCK_TMP/null.log")"
		sleep 0.1
	done
	fail "bench_probe_null not ready"
}

# CPU ticks of the probe's reader so far (0 when there is none).
reader_ticks() {
	if [ -n "${PROBE_PID:-}" ]; then
		awk '{print $14 + $15}' /proc/"$PROBE_PID"/stat
	else
		echo 0
	fi
}

# run MODE WORKLOAD ARGS...: one workload, its JSON plus mode and the
# reader's CPU seconds appended to $RES.
run() {
	local mode=$1 wl=$2 a b out
	shift
	local cmd=("$TT_PY" "$TLS")
	[ "$1" = ccalls ] && cmd=("$CALLS_BIN") && shift
	a=$(reader_ticks)
	if [ "$mode" = agent ]; then
		out=$(LD_PRELOAD=$AGENT_LIB TOKENTAP_COLLECTOR=off "${cmd[@]}" "$@")
	else
		out=$("${cmd[@]}" "$@")
	fi
	b=$(reader_ticks)
	echo "$out" | "$TT_PY" -c 'import json, sys
d = json.loads(sys.stdin.read())
d.update(mode=sys.argv[1], workload=sys.argv[2], reader_s=float(sys.argv[3]))
print(json.dumps(d))' "$mode" "$wl" "$(awk -v t="$((b - a))" -v h="$TCK" 'BEGIN{print t / h}')" >>"$RES"
}

workloads() {
	run "$1" bulk "$MOCK_TMP/cert.pem" "$MOCK_TMP/key.pem" "$MIB"
	run "$1" calls "$MOCK_TMP/cert.pem" "$MOCK_TMP/key.pem" "$CALLS" "$SIZE"
	run "$1" ccalls "$MOCK_TMP/cert.pem" "$MOCK_TMP/key.pem" "$CCALLS" "$SIZE"
	run "$1" llm "$MOCK_URL" "$MOCK_CA" "$LLM"
}

for ((r = 1; r <= ROUNDS; r++)); do
	workloads none
	null_start
	workloads null
	null_kill
	probe_start
	workloads probe
	probe_stop >/dev/null
	workloads agent
done

# Events lost at ~RATE LLM calls per second.
probe_start
rate=$("$TT_PY" "$TLS" rate "$MOCK_URL" "$MOCK_CA" "$RATE" "$RATE_SECS" "$RATE_CONNS")
probe_stop >/dev/null
OTHERS_AFTER=$(others)
lost_counters=""
for k in dropped_events dropped_bytes faults cut_bytes busy free_drops no_entry proc_drops gaps truncated_records; do
	lost_counters+="$k=$(probe_counter "$k") "
done
events=$(probe_counter events)

"$TT_PY" - "$RES" "$PROBE_OUT" "$MOCK_PORT" "$rate" "$lost_counters" "$events" "$ROUNDS" "$MIB" "$CCALLS" "$SIZE" "$LLM" <<'PY'
import json, statistics, sys
res, recs, port, rate, lost, events = sys.argv[1:7]
rounds, mib, calls, size, llm = map(int, sys.argv[7:12])
rows = [json.loads(l) for l in open(res)]
modes = ["none", "null", "probe", "agent"]

def med(mode, wl, f):
    return statistics.median(f(r) for r in rows
                             if r["mode"] == mode and r["workload"] == wl)

def line(name, vals, base="none"):
    b = vals[modes.index(base)]
    cells = "".join("%10.2f" % v for v in vals)
    ratios = "".join("%8.2f" % (v / b if b else float("nan")) for v in vals[1:])
    print("%-40s%s  |%s" % (name, cells, ratios))

print("median of %d rounds; ratios against no instrumentation" % rounds)
print("%-40s%10s%10s%10s%10s  |%8s%8s%8s" % ("", *modes, *modes[1:]))
line("TLS bulk MB/s (%d MiB, 16 KiB writes)" % mib,
     [med(m, "bulk", lambda r: r["mb_per_s"]) for m in modes])
line("us per %d-byte TLS round trip" % size,
     [med(m, "calls", lambda r: r["us_per_roundtrip"]) for m in modes])
line("small round trips per second",
     [1e6 / med(m, "calls", lambda r: r["us_per_roundtrip"]) for m in modes])
line("LLM call median ms (%d keep-alive)" % llm,
     [med(m, "llm", lambda r: r["ms_median"]) for m in modes])
line("LLM call p95 ms",
     [med(m, "llm", lambda r: r["ms_p95"]) for m in modes])

# CPU per SSL call: the process's own CPU (traps and BPF programs run in
# it) plus the reader's, over the small-call workload.
def cpu_call(mode):
    return med(mode, "ccalls",
               lambda r: (r["cpu_s"] + r["reader_s"]) / r["ssl_calls"] * 1e6)
def reader_call(mode):
    return med(mode, "ccalls", lambda r: r["reader_s"] / r["ssl_calls"] * 1e6)
def cpu_mb(mode):
    return med(mode, "bulk", lambda r: (r["cpu_s"] + r["reader_s"]) / r["mib"])
base = cpu_call("none")
print()
print("CPU per SSL call (%d calls of %d bytes, one thread, BIO pair), us:"
      % (4 * calls, size))
for m in modes:
    print("  %-6s %7.2f  added %6.2f  (reader %5.2f)"
          % (m, cpu_call(m), cpu_call(m) - base, reader_call(m)))
floor = cpu_call("null") - base
added = cpu_call("probe") - base
print("  probe's added CPU / the bare uprobe floor: %.2fx (goal <= 1.10)"
      % (added / floor if floor > 0 else float("nan")))
print("CPU ms per MiB of bulk TLS: " + "  ".join(
    "%s %.2f" % (m, cpu_mb(m) * 1e3) for m in modes))

r = json.loads(rate)
n = bad = 0
for l in open(recs):
    try:
        d = json.loads(l)
    except ValueError:
        continue
    if d.get("side") == "client" and str(d.get("host", "")).endswith(":" + port) \
            and d.get("path") == "/v1/chat/completions":
        n += 1
        bad += d.get("error") is not None
print()
print("LLM calls under the probe: %d in %.1f s (%.0f/s, %d failed), %d "
      "client records (%d with an error), %d missing; %s BPF events"
      % (r["calls"], r["seconds"], r["per_s"], r["errors"], n, bad,
         r["calls"] - n, events))
print("probe loss counters: " + lost)
PY
if [ -n "$OTHERS_BEFORE$OTHERS_AFTER" ]; then
	echo "warning: other tokentap-probe processes ran beside this benchmark" \
		"(pids $OTHERS_BEFORE$OTHERS_AFTER): their uprobes are in every column"
fi
