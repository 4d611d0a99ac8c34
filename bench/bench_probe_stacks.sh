#!/usr/bin/env bash
# tokentap-probe's CPU per TLS call on the TLS stacks it finds inside
# programs (no libssl): Go's crypto/tls (bench/go/tlsloop.go, built here
# with the system's Go, offline) and BoringSSL inside Bun
# (bench/bench_tls_loop.mjs under the pinned bun, scripts/npm-apps.sh).
# Each loop is one process, client and server on one loopback TCP
# connection, N round trips of SIZE bytes; it reports its TLS calls
# (writes and reads, both ends) and its own CPU over the loop.
#
# In one run, rounds interleaved, three set-ups per stack, each for
# BENCH_RUNS measured runs a round (a probe's start and stop take
# seconds):
#   none    no instrumentation
#   null    do-nothing BPF programs (build/bench/bench_probe_null --find):
#           found by the probe's own finders, on exactly the places the
#           probe traps (Go: Write's and Read's entries, a uprobe on each
#           RET of Read, Close; BoringSSL: SSL_write/SSL_read entry and
#           return, SSL_free): the trap floor
#   probe   tokentap-probe
# CPU per TLS call = (the loop's CPU + the reader's: the probe's or
# bench_probe_null's, utime+stime of /proc/PID/stat over the run) / its
# TLS calls.  Printed: the medians over all runs, what each set-up adds
# over none, and the probe's added CPU over the floor's (goal <= 1.10),
# also per round.  A set-up's measured runs come after a short one of the
# same program, not counted, so that the probe's exec gate has looked at
# the executable (its first exec is held while the finders run).
#
# The payload is not HTTP (BENCH_SHAPE=raw): the probe's decoder gives
# such a connection up after its first bytes and, from then on, the
# kernel side ignores it: what is measured is the traps and the BPF
# programs' way out.  BENCH_SHAPE=http makes every request an HTTP/1.1
# POST and every answer a 200 of SIZE bytes with their headers, on one
# keep-alive connection: the probe then copies and decodes every byte.
#
#   bench/bench_probe_stacks.sh           (root; about 3 minutes)
#   BENCH_ROUNDS=5 BENCH_RUNS=3 BENCH_GO_N=20000 BENCH_BUN_N=20000 BENCH_SIZE=256 \
#   BENCH_SHAPE=raw BENCH_STACKS="go bun" bench/bench_probe_stacks.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../tests/mock/lib.sh"
. "$here/../tests/e2e/probe_clients/lib_probe.sh"

ROUNDS=${BENCH_ROUNDS:-3}
RUNS=${BENCH_RUNS:-3} # measured runs per set-up and round
GO_N=${BENCH_GO_N:-20000}
BUN_N=${BENCH_BUN_N:-20000}
SIZE=${BENCH_SIZE:-256}
SHAPE=${BENCH_SHAPE:-raw}
STACKS=${BENCH_STACKS:-go bun}
WARM=${BENCH_WARM:-200} # round trips of the run before each measured one
NULL_BIN=$TT_TOP/build/bench/bench_probe_null
GO_LOOP=$TT_TOP/build/bench/tlsloop
TCK=$(getconf CLK_TCK)

probe_preflight
[ -x "$NULL_BIN" ] || fail "$NULL_BIN is not built (make)"
case $SHAPE in raw | http) ;; *) fail "BENCH_SHAPE is raw or http" ;; esac
# Another probe or floor on the node adds its traps to every set-up here.
others() {
	{ pgrep -x tokentap-probe; pgrep -x bench_probe_nul; } |
		grep -vx -e "${PROBE_PID:-0}" -e "${NULL_PID:-0}" | tr '\n' ' ' || true
}
OTHERS_BEFORE=$(others)
MOCK_TMP=$(mktemp -d "${TMPDIR:-/tmp}/tt-stacks.XXXXXX")
on_exit "rm -rf '$MOCK_TMP'"
RES=$MOCK_TMP/results.jsonl
: >"$RES"

for s in $STACKS; do
	case $s in
	go)
		command -v go >/dev/null ||
			skip "go is not installed (golang-go); BENCH_STACKS=bun runs without it"
		# Offline, with a cache of its own under build/ (as test_probe_go.sh).
		gobin=$TT_TOP/build/go
		mkdir -p "$gobin/home" "$(dirname "$GO_LOOP")"
		(cd "$gobin" && HOME=$gobin/home GOCACHE=$gobin/cache GOPROXY=off \
			GOFLAGS='' CGO_ENABLED=0 go build -o "$GO_LOOP" \
			"$here/go/tlsloop.go") >"$MOCK_TMP/go-build.log" 2>&1 ||
			fail "go build tlsloop.go: $(tail -n 5 "$MOCK_TMP/go-build.log")"
		;;
	bun)
		probe_npm_app bun
		BUN=$(readlink -f "$NPM_APP/node_modules/bun/bin/bun.exe")
		[ -x "$BUN" ] || fail "no bun executable in $NPM_APP"
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
			-nodes -keyout "$MOCK_TMP/key.pem" -out "$MOCK_TMP/cert.pem" \
			-days 1 -subj /CN=bench -addext subjectAltName=DNS:bench \
			>/dev/null 2>&1 || fail "openssl could not make a certificate"
		;;
	*) fail "BENCH_STACKS: go and bun, not '$s'" ;;
	esac
done

# The executable whose TLS code is trapped, and the loop's command line.
stack_exe() {
	case $1 in
	go) echo "$GO_LOOP" ;;
	bun) echo "$BUN" ;;
	esac
}
loop() { # STACK N
	case $1 in
	go) "$GO_LOOP" "$2" "$SIZE" "$SHAPE" ;;
	bun) "$BUN" "$here/bench_tls_loop.mjs" "$MOCK_TMP/cert.pem" \
		"$MOCK_TMP/key.pem" "$2" "$SIZE" "$SHAPE" ;;
	esac
}
loop_n() {
	case $1 in
	go) echo "$GO_N" ;;
	bun) echo "$BUN_N" ;;
	esac
}

NULL_PID=
null_kill() {
	[ -n "$NULL_PID" ] || return 0
	kill -INT "$NULL_PID" 2>/dev/null
	wait "$NULL_PID" 2>/dev/null || true
	NULL_PID=
}
on_exit null_kill
null_start() { # FILE
	"$NULL_BIN" --find "$1" 2>"$MOCK_TMP/null.log" &
	NULL_PID=$!
	local i
	for ((i = 0; i < 300; i++)); do
		grep -q ready "$MOCK_TMP/null.log" && return 0
		kill -0 "$NULL_PID" 2>/dev/null || fail "bench_probe_null: $(cat "$MOCK_TMP/null.log")"
		sleep 0.1
	done
	fail "bench_probe_null not ready"
}

# CPU ticks of the reader (the probe or the floor) so far, 0 without one.
reader_ticks() {
	local pid=${PROBE_PID:-}
	[ -n "$pid" ] || pid=$NULL_PID
	if [ -n "$pid" ]; then
		awk '{print $14 + $15}' /proc/"$pid"/stat
	else
		echo 0
	fi
}

# add MODE STACK WARM READER_TICKS: the loop's JSON (stdin) with mode,
# stack, round, warm (1: the short run) and the reader's CPU seconds,
# appended to $RES.
add() {
	"$TT_PY" -c 'import json, sys
d = json.loads(sys.stdin.read())
d.update(mode=sys.argv[1], stack=sys.argv[2], round=int(sys.argv[3]),
         warm=int(sys.argv[4]), reader_s=float(sys.argv[5]))
print(json.dumps(d))' "$1" "$2" "$r" "$3" "$(awk -v t="$4" -v h="$TCK" 'BEGIN{print t / h}')" >>"$RES"
}

# run MODE STACK: the short run, then the measured ones.
run() {
	local mode=$1 s=$2 a b out i
	out=$(loop "$s" "$WARM") || fail "$s loop failed ($mode)"
	echo "$out" | add "$mode" "$s" 1 0
	for ((i = 0; i < RUNS; i++)); do
		a=$(reader_ticks)
		out=$(loop "$s" "$(loop_n "$s")") || fail "$s loop failed ($mode)"
		b=$(reader_ticks)
		echo "$out" | add "$mode" "$s" 0 "$((b - a))"
	done
}

# What each set-up hooked, for the table: "N uprobes (stack)" of the
# floor, the probe's own count for the same file, and the SSL calls the
# probe counted (calls + skipped) against the loops' (both runs).
: >"$MOCK_TMP/hooks.txt"
for ((r = 1; r <= ROUNDS; r++)); do
	for s in $STACKS; do
		exe=$(stack_exe "$s")
		run none "$s"
		null_start "$exe"
		null_hooks=$(grep -o 'ready: .*' "$MOCK_TMP/null.log" | sed 's/^ready: //')
		run null "$s"
		null_kill
		probe_start -v
		run probe "$s"
		probe_stop >"$MOCK_TMP/probe-stop.log"
		probe_hooks=$(grep -F "attached $exe (" "$PROBE_LOG" | tail -n1 |
			sed 's/.*(\(.*\))$/\1/')
		counted=$(($(probe_counter calls) + $(probe_counter skipped)))
		echo "$s	$null_hooks	${probe_hooks:-not attached}	$counted" >>"$MOCK_TMP/hooks.txt"
	done
done
OTHERS_AFTER=$(others)

"$TT_PY" - "$RES" "$MOCK_TMP/hooks.txt" "$ROUNDS" "$RUNS" "$SIZE" "$SHAPE" "$STACKS" <<'PY'
import json, statistics, sys
res, hooks, rounds, runs, size, shape, stacks = sys.argv[1:8]
rounds, runs, size = int(rounds), int(runs), int(size)
stacks = stacks.split()
rows = [json.loads(l) for l in open(res)]
warm_rows = [r for r in rows if r["warm"]]
rows = [r for r in rows if not r["warm"]]
modes = ["none", "null", "probe"]
hook = {}
for l in open(hooks):
    s, null_h, probe_h, counted = l.rstrip("\n").split("\t")
    hook.setdefault(s, []).append((null_h, probe_h, int(counted)))

def per_call(r):
    return (r["cpu_s"] + r["reader_s"]) / r["ssl_calls"] * 1e6

def med(s, m, f=per_call):
    return statistics.median(f(r) for r in rows
                             if r["stack"] == s and r["mode"] == m)

def ratio(added, floor):
    return added / floor if floor > 0 else float("nan")

print("tokentap-probe's CPU per TLS call, median of %d rounds x %d runs; each "
      "run: one connection, both ends in one process, %s payload of %d bytes "
      "each way" % (rounds, runs, shape, size))
print("us per TLS call = (the loop's CPU + the reader's: the probe's or "
      "bench_probe_null's) / the loop's TLS calls")
print("%-5s %-10s %8s | %8s %8s %8s | %8s %8s | %7s | %s"
      % ("stack", "tls", "calls", "none", "null", "probe", "+null",
         "+probe", "reader", "probe/floor"))
for s in stacks:
    null_h, probe_h, _ = hook[s][-1]
    tls = null_h[null_h.find("(") + 1:-1] if "(" in null_h else "?"
    v = [med(s, m) for m in modes]
    calls = int(med(s, "none", lambda r: r["ssl_calls"]))
    reader = med(s, "probe", lambda r: r["reader_s"] / r["ssl_calls"] * 1e6)
    print("%-5s %-10s %8d | %8.2f %8.2f %8.2f | %8.2f %8.2f | %7.3f | %.2fx"
          % (s, tls, calls, v[0], v[1], v[2], v[1] - v[0], v[2] - v[0],
             reader, ratio(v[2] - v[0], v[1] - v[0])))
print("+null, +probe: CPU added over none (us per call); reader: the probe's "
      "own process, us per call")
print()
for s in stacks:
    v = [med(s, m) for m in modes]
    by_round = []
    for rd in range(1, rounds + 1):
        x = {m: statistics.median(per_call(r) for r in rows
                                  if r["stack"] == s and r["mode"] == m
                                  and r["round"] == rd) for m in modes}
        by_round.append(ratio(x["probe"] - x["none"], x["null"] - x["none"]))
    print("%s: probe's added CPU / the bare uprobe floor: %.2fx (goal <= 1.10)"
          "; each round: %s"
          % (s, ratio(v[2] - v[0], v[1] - v[0]),
             " ".join("%.2f" % x for x in by_round)))
print()
for s in stacks:
    null_h, probe_h, _ = hook[s][-1]
    loop_calls = sum(r["ssl_calls"] for r in rows + warm_rows
                     if r["stack"] == s and r["mode"] == "probe")
    counted = sum(c for _, _, c in hook[s])
    print("%s: floor %s; probe %s; the probe counted %.2f SSL calls "
          "(calls + skipped) per TLS call of the loops"
          % (s, null_h, probe_h, counted / loop_calls))
PY
if [ -n "$OTHERS_BEFORE$OTHERS_AFTER" ]; then
	echo "warning: other tokentap-probe or bench_probe_null processes ran beside" \
		"this benchmark (pids $OTHERS_BEFORE$OTHERS_AFTER): their uprobes are in every column"
fi
