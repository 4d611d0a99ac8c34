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

if [ "${BENCH_ONLY_PACED:-0}" != 1 ]; then # else only the paced stage, at the end
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
fi # BENCH_ONLY_PACED

# ---- Paced streams at a call rate ------------------------------------------
# Every call is a paced stream: BENCH_PACED_EVENTS content events spread
# evenly over BENCH_PACED_STREAM_MS, then the usage event (include_usage
# form) and [DONE], each its own HTTP chunk and SSL_write.  Calls start at
# each rate of BENCH_PACED_RATES for BENCH_PACED_SECS, so rate x stream
# seconds are open at once (1,000/s x 2 s: about 2,000 connections), on a
# keep-alive pool opened before the first call (BENCH_PACED_WARM=0: none,
# every connection opened by a call).  Both ends are build/bench/bench_paced
# (C, epoll, one thread each; the Python mock cannot hold this rate).  Each
# rate runs first without the probe (what client and server alone sustain
# here), then under it: calls started and completed, how late the client
# started them, each completed call's client record (found by its
# X-Tokentap-Task; whole: usage_source provider, output_tokens == events, no
# error), the probe's loss counters and CPU, the idle CPU left.  The probe
# watches the whole node, so here it traps and decodes both ends of every
# call: twice what a client node at the same rate gives it.  Mode "client"
# (BENCH_PACED_MODES="none probe client") runs the probe as on a client
# node: --pid of the client only, the server on a private copy of libssl
# (so no uprobe of the probe's is in it).
#
#   BENCH_ONLY_PACED=1 bench/bench_probe.sh      this stage alone
#   BENCH_PACED_RATES="1000 500" BENCH_PACED_SECS=20 ...
#   BENCH_PACED_KEY=rsa   the earlier stages' RSA-2048 certificate (default
#                         ec: a P-256 one, as most providers serve)
PACED_BIN=$TT_TOP/build/bench/bench_paced
PACED_RATES=${BENCH_PACED_RATES:-1000 500 250 100}
PACED_SECS=${BENCH_PACED_SECS:-10}
PACED_MS=${BENCH_PACED_STREAM_MS:-2000}
PACED_EVENTS=${BENCH_PACED_EVENTS:-40}
PACED_WARM=${BENCH_PACED_WARM:-1}
PACED_MODES=${BENCH_PACED_MODES:-none probe}
PACED_LATE_MS=${BENCH_PACED_LATE_MS:-100} # kept up: no call started later
PACED_RES=$MOCK_TMP/paced.jsonl
[ -x "$PACED_BIN" ] || fail "$PACED_BIN is not built (make)"
case ${BENCH_PACED_KEY:-ec} in
rsa)
	PACED_CERT=$MOCK_TMP/cert.pem PACED_KEYF=$MOCK_TMP/key.pem
	;;
ec)
	PACED_CERT=$MOCK_TMP/paced-cert.pem PACED_KEYF=$MOCK_TMP/paced-key.pem
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$PACED_KEYF" -out "$PACED_CERT" -days 1 -subj /CN=bench >/dev/null 2>&1
	;;
*) fail "BENCH_PACED_KEY is ec or rsa" ;;
esac
: >"$PACED_RES"

PACED_SRV=
paced_server_stop() {
	[ -n "$PACED_SRV" ] || return 0
	kill -INT "$PACED_SRV" 2>/dev/null || true
	wait "$PACED_SRV" 2>/dev/null || true
	PACED_SRV=
}
on_exit paced_server_stop

paced_server_start() { # [LIBDIR]
	local ready=$MOCK_TMP/paced-ready.json i
	rm -f "$ready"
	LD_LIBRARY_PATH=${1:-${LD_LIBRARY_PATH:-}} "$PACED_BIN" server --port 0 \
		--cert "$PACED_CERT" --key "$PACED_KEYF" --events "$PACED_EVENTS" --stream-ms "$PACED_MS" --ready-file "$ready" \
		--max-seconds 900 </dev/null >"$MOCK_TMP/paced-server.json" \
		2>"$MOCK_TMP/paced-server.log" &
	PACED_SRV=$!
	for ((i = 0; i < 100; i++)); do
		[ -s "$ready" ] && break
		kill -0 "$PACED_SRV" 2>/dev/null ||
			fail "bench_paced server: $(cat "$MOCK_TMP/paced-server.log")"
		sleep 0.1
	done
	[ -s "$ready" ] || fail "bench_paced server not ready"
	PACED_PORT=$(json_get "$ready" 'd["port"]')
}

# paced_run none|probe|client RATE: one line of $PACED_RES
paced_run() {
	local mode=$1 rate=$2 b0 b1 p0 p1 out others_run counters='' watch=() cpid i
	local done_ids=$MOCK_TMP/paced-done.txt hold=$MOCK_TMP/paced-hold
	local libdir=$MOCK_TMP/paced-lib
	if [ "$mode" = client ]; then
		mkdir -p "$libdir"
		cp "$LIBSSL" "$libdir/$(basename "$LIBSSL")"
		paced_server_start "$libdir"
	else
		paced_server_start
	fi
	watch=(--watch "server=$PACED_SRV")
	if [ "$mode" = probe ]; then
		probe_start
	fi
	# the machine's idle CPU before the calls: someone else's load shows here
	b0=$(awk '/^cpu /{print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9; exit}' /proc/stat)
	sleep 1
	b1=$(awk '/^cpu /{print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9; exit}' /proc/stat)
	rm -f "$hold"
	"$PACED_BIN" client --port "$PACED_PORT" --ca "$PACED_CERT" \
		--rate "$rate" --secs "$PACED_SECS" --events "$PACED_EVENTS" \
		--warm "$((PACED_WARM ? rate * PACED_MS / 1000 : 0))" \
		--done-file "$done_ids" --hold-file "$hold" "${watch[@]}" \
		>"$MOCK_TMP/paced-client.json" &
	cpid=$!
	for ((i = 0; i < 600; i++)); do
		[ -e "$hold" ] && break
		kill -0 "$cpid" 2>/dev/null || break
		sleep 0.1
	done
	[ -e "$hold" ] || fail "bench_paced client did not open its connections"
	if [ "$mode" = client ]; then
		probe_start --pid "$cpid"
	fi
	p0=$(reader_ticks)
	rm -f "$hold" # go
	wait "$cpid" || fail "bench_paced client failed"
	p1=$(reader_ticks)
	out=$(cat "$MOCK_TMP/paced-client.json")
	others_run=$(others)
	if [ "$mode" != none ]; then
		probe_stop >"$MOCK_TMP/paced-probe-stop.log"
		counters=$(grep 'tokentap-probe: exit: ' "$PROBE_LOG" | tail -n1 | sed 's/.*exit: //')
	fi
	paced_server_stop
	"$TT_PY" - "$mode" "$rate" "$out" "$MOCK_TMP/paced-server.json" "$counters" \
		"${PROBE_OUT:-/dev/null}" "$PACED_PORT" "$PACED_EVENTS" "$done_ids" \
		"$b0" "$b1" "$others_run" "$(((p1 - p0) * 1000 / TCK))" >>"$PACED_RES" <<'PY'
import collections, json, sys
(mode, rate, out, srv, counters, recs, port, events, done_ids,
 b0, b1, others, probe_ms) = sys.argv[1:14]
events = int(events)
a, b = [list(map(int, x.split())) for x in (b0, b1)]
c = json.loads(out)
try:
    s = json.loads(open(srv).read())
except ValueError:
    s = {}
row = dict(mode=mode, rate=int(rate), client=c, server=s,
           idle_before_pct=100.0 * (b[0] - a[0]) / max(1, b[1] - a[1]),
           others=others.split())
if mode != "none":
    c["cpu_probe_s"] = int(probe_ms) / 1000.0
    row["counters"] = dict(kv.split("=", 1) for kv in counters.split() if "=" in kv)
    done = {"paced-" + l.strip() for l in open(done_ids) if l.strip()}
    per = collections.defaultdict(list)
    server_recs = untagged = 0
    for l in open(recs):
        try:
            d = json.loads(l)
        except ValueError:
            continue
        if not str(d.get("host") or "").endswith(":" + port) \
                or d.get("path") != "/v1/chat/completions":
            continue
        if d.get("side") != "client":
            server_recs += 1
        elif not str(d.get("task") or "").startswith("paced-"):
            untagged += 1
        else:
            per[d["task"]].append(d)
    def whole(d):
        return (d.get("error") is None and d.get("usage_source") == "provider"
                and d.get("output_tokens") == events)
    ok = {t for t in done if any(whole(d) for d in per.get(t, ()))}
    missing = done - ok
    row.update(
        whole=len(ok), missing=len(missing),
        with_error=sum(any(d.get("error") is not None for d in per.get(t, ()))
                       for t in missing),
        dup=sum(len(v) - 1 for v in per.values() if len(v) > 1),
        not_completed_records=sum(len(v) for t, v in per.items() if t not in done),
        untagged=untagged, server_records=server_recs,
        missing_sample=sorted(missing)[:5])
print(json.dumps(row))
PY
}

echo
echo "== paced streams: $PACED_EVENTS events over $PACED_MS ms a call," \
	"rates $PACED_RATES/s for $PACED_SECS s each, modes: $PACED_MODES"
for rate in $PACED_RATES; do
	for mode in $PACED_MODES; do
		paced_run "$mode" "$rate"
	done
done

"$TT_PY" - "$PACED_RES" "$PACED_EVENTS" "$PACED_MS" "$PACED_SECS" "$PACED_LATE_MS" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
events, ms, secs, late_ms = map(int, sys.argv[2:6])
traced = {"probe": "the probe on the whole node (both ends traced)",
          "client": "the probe on the client only (--pid)"}
print("every call: a stream of %d ms, %d content events + the usage event + "
      "[DONE] = %d SSE events (%.0f events/s per stream); the server makes "
      "%d SSL_writes a call (head, events, terminator)"
      % (ms, events, events + 2, events * 1000.0 / ms, events + 4))
print("modes: none = no probe; " + "; ".join(
    "%s = %s" % kv for kv in traced.items() if any(r["mode"] == kv[0] for r in rows)))
print("late: how far behind its schedule the client started calls (p99/max ms); "
      "tick: how late the server sent events (p99 ms); stream: the longest "
      "call, start to terminator (ms); conns: opened ahead + by calls")
print("%-6s %6s %6s %6s %6s %4s %11s %5s %6s %11s %7s | %6s %4s %5s %3s | %7s %7s %4s %5s | %6s %5s"
      % ("", "rate/s", "sched", "start", "done", "err", "late", "tick",
         "stream", "conns", "cli/srv%", "whole", "miss", "w/err", "dup",
         "dropped", "no_entr", "gaps", "trunc", "probe%", "idle%"))

def kept_up(r):
    c = r["client"]
    return (c["started"] == c["scheduled"] and c["completed"] == c["started"]
            and c["errors"] == 0 and c["unfinished"] == 0
            and c["late_max_ms"] <= late_ms)

def pct(r, k):
    v = r["client"].get(k, -1)
    return 100.0 * v / r["client"]["wall_s"] if v >= 0 else float("nan")

for r in rows:
    c, s = r["client"], r["server"]
    line = ("%-6s %6d %6d %6d %6d %4d %4.0f/%-6.0f %5.0f %6.0f %5d+%-5d %3.0f/%-3.0f |"
            % (r["mode"], r["rate"], c["scheduled"], c["started"], c["completed"],
               c["errors"], c["late_p99_ms"], c["late_max_ms"],
               s.get("tick_late_p99_ms", float("nan")), c["dur_max_ms"],
               c["warm"] - c["warm_failed"], c["conns_opened"] - c["warm"],
               pct(r, "cpu_s"), pct(r, "cpu_server_s")))
    if r["mode"] != "none":
        k = r["counters"]
        line += (" %6d %4d %5d %3d | %7s %7s %4s %5s | %6.1f"
                 % (r["whole"], r["missing"], r["with_error"], r["dup"],
                    k.get("dropped_events", "?"), k.get("no_entry", "?"),
                    k.get("gaps", "?"), k.get("truncated_records", "?"),
                    pct(r, "cpu_probe_s")))
    else:
        line += " %6s %4s %5s %3s | %7s %7s %4s %5s | %6s" % (("-",) * 9)
    line += " %5.1f" % c["idle_pct"]
    if r["idle_before_pct"] < 90:
        line += "  (idle %.0f%% before the calls)" % r["idle_before_pct"]
    if r["others"]:
        line += "  (other probes: %s)" % " ".join(r["others"])
    print(line)
print("cli/srv%: each end's CPU from the first call due to the last one over, "
      "% of one CPU; probe%: the probe's own process, same window (its BPF "
      "programs run in the traced processes); idle%: the machine's, all CPUs, "
      "same window; whole/miss: completed calls with/without a whole client "
      "record, w/err: missing ones whose record has an error")
for r in rows:
    if r["mode"] == "none":
        continue
    if r["not_completed_records"] or r["untagged"]:
        print("  %s %d/s: %d records of calls the client did not complete, %d "
              "client records without a paced-N task"
              % (r["mode"], r["rate"], r["not_completed_records"], r["untagged"]))
    if r["missing"]:
        print("  %s %d/s: missing e.g. %s"
              % (r["mode"], r["rate"], " ".join(r["missing_sample"])))
    lost = {k: v for k, v in r["counters"].items()
            if k in ("dropped_bytes", "faults", "cut_bytes", "busy", "free_drops",
                     "no_slot", "proc_drops", "prog_misses", "conns_evicted")
            and v != "0"}
    if lost:
        print("  %s %d/s: other loss counters: %s" % (r["mode"], r["rate"], " ".join(
            "%s=%s" % kv for kv in sorted(lost.items()))))

def get(rate, mode):
    m = [r for r in rows if r["rate"] == rate and r["mode"] == mode]
    return m[0] if m else None

rates = sorted({r["rate"] for r in rows}, reverse=True)
# What the probe costs per SSL call, where both runs of a rate kept up.
for mode in traced:
    for rate in rates:
        n, p = get(rate, "none"), get(rate, mode)
        if not n or not p or not kept_up(n) or not kept_up(p):
            continue
        n, p = n["client"], p["client"]
        if p.get("cpu_server_s", -1) < 0 or n.get("cpu_server_s", -1) < 0:
            continue
        if mode == "probe":
            ssl = p["ssl_calls"] + get(rate, mode)["server"].get("ssl_calls", 0)
            added = (p["cpu_s"] + p["cpu_server_s"]) - (n["cpu_s"] + n["cpu_server_s"])
        else:
            ssl = p["ssl_calls"]
            added = p["cpu_s"] - n["cpu_s"]
        if ssl:
            print("%s %d/s: %d SSL calls traced; the probe added %.1f us of CPU per "
                  "SSL call inside the traced processes (uprobe traps, BPF "
                  "programs) and used %.1f us per SSL call in its own process "
                  "(%.0f us per LLM call)"
                  % (mode, rate, ssl, 1e6 * added / ssl, 1e6 * p["cpu_probe_s"] / ssl,
                     1e6 * p["cpu_probe_s"] / max(1, p["completed"])))

for mode in traced:
    if not any(r["mode"] == mode for r in rows):
        continue
    best = None
    for rate in rates:
        n, p = get(rate, "none"), get(rate, mode)
        if not n or not p:
            continue
        ok = kept_up(p) and p["missing"] == 0 and p["dup"] == 0
        if ok and best is None:
            best = rate
        if ok:
            continue
        why = []
        for r, name in ((n, "alone"), (p, "under " + traced[mode])):
            c, s = r["client"], r["server"]
            if kept_up(r):
                continue
            who = []
            if s.get("tick_late_p99_ms", 0) > late_ms:
                who.append("the server sent events late (tick p99 %.0f ms)"
                           % s["tick_late_p99_ms"])
            if c["late_max_ms"] > late_ms:
                who.append("the client started calls late (max %.0f ms)"
                           % c["late_max_ms"])
            if c["completed"] != c["scheduled"]:
                who.append("%d of %d calls completed"
                           % (c["completed"], c["scheduled"]))
            why.append("%s: %s; client %.0f%%, server %.0f%% of a CPU, machine "
                       "%.0f%% idle" % (name, ", ".join(who) or "errors",
                                        pct(r, "cpu_s"), pct(r, "cpu_server_s"),
                                        c["idle_pct"]))
        if p["missing"] or p["dup"]:
            why.append("%d of %d completed calls without a whole record, %d "
                       "duplicate records"
                       % (p["missing"], p["client"]["completed"], p["dup"]))
        print("%s %d/s not clean. %s" % (mode, rate, "; ".join(why)))
    if best is None:
        print("%s: no rate here had every call completed on schedule with 0 "
              "missing records" % traced[mode])
    else:
        print("%s: highest rate with 0 missing records and the client keeping "
              "up (every call completed, none started more than %d ms late): "
              "%d calls/s" % (traced[mode], late_ms, best))
PY
