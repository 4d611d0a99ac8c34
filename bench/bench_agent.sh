#!/usr/bin/env bash
# bench_agent.sh - what libtokentap.so costs the programs it is preloaded
# into, measured side by side in one run (runs interleaved, medians):
#
#   1. non-LLM TLS: bulk throughput (MB/s), small requests on a keep-alive
#      connection (req/s), new connections with one request (conn/s);
#      ratio agent / none, goal >= 0.99
#   2. start-up cost for a program that never calls TLS
#   3. CPU per hooked SSL call on a pass-through connection (goal <= 0.5 us
#      added), and the decoding cost of an LLM exchange, separately
#   4. added latency of an LLM call (curl against the mock provider): the
#      agent vs a metering reverse proxy (mitmdump, when installed); p50/p99
#
# Options through the environment: RUNS (default 5), BULK_MIB (256),
# REQS (10000), CONNS (200), CALLS (300000), LAT_CALLS (60).
# Exits 0 after printing; the goals are reported, not enforced (a shared
# 2-core machine is too noisy to fail on them).
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$TOP/build}
SO=$BUILD/libtokentap.so
BIN=$BUILD/bench/bench_agent_tls
PY=/usr/bin/python3
RUNS=${RUNS:-5} BULK_MIB=${BULK_MIB:-256} REQS=${REQS:-10000}
CONNS=${CONNS:-200} CALLS=${CALLS:-300000} LAT_CALLS=${LAT_CALLS:-60}
[ -f "$SO" ] && [ -x "$BIN" ] || { echo "bench_agent: build first (make bench)"; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/tt-bench-agent.XXXXXX")
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	rm -rf "$TMP"
}
trap cleanup EXIT
export TOKENTAP_COLLECTOR=off TOKENTAP_LOG=error TOKENTAP_SPOOL=$TMP/spool
unset TOKENTAP_OUT

# Private copies of libssl and libcrypto: a node-wide uprobe tool attached
# to the system files' inodes adds microseconds to every call (and may treat
# a process under the agent differently).  One that discovers new files as
# they are mapped (tokentap-probe does) still reaches the copies: then the
# figures are not worth much, and the script says so.
mkdir -p "$TMP/lib"
for lib in $(ldd "$BIN" | awk '/libssl|libcrypto/ {print $3}'); do
	cp "$lib" "$TMP/lib/"
done
export LD_LIBRARY_PATH=$TMP/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
if pgrep -x tokentap-probe >/dev/null 2>&1; then
	echo "WARNING: tokentap-probe is running: its uprobes on libssl distort every figure below"
fi
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$TMP/key.pem" -out "$TMP/cert.pem" -days 1 -subj /CN=localhost 2>/dev/null

# result MODE ARGS... -> the figure of the RESULT line; FIELD=5 picks the
# per-CPU-second one of the TCP modes.
result() {
	"$BIN" "$1" "$TMP/cert.pem" "$TMP/key.pem" "${@:2}" |
		awk -v f="${FIELD:-3}" '/^RESULT/ {print $f}'
}
with_agent() {
	LD_PRELOAD=$SO "$@"
}
stats() { # label unit higher_is_better plain-values -- agent-values
	"$PY" - "$@" <<'PY'
import statistics, sys
label, unit, hib = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
rest = sys.argv[4:]
i = rest.index("--")
plain = [float(x) for x in rest[:i]]
agent = [float(x) for x in rest[i + 1:]]
p, a = statistics.median(plain), statistics.median(agent)
ratio = a / p if hib else p / a
print(f"  {label:<34} none {p:>10.1f}  agent {a:>10.1f} {unit:<14} ratio {ratio:.3f}")
PY
}

echo "== non-LLM TLS traffic (median of $RUNS interleaved runs; ratio = agent/none)"
declare -A P A
for kind in bulk rate conns; do P[$kind]= A[$kind]=; done
sample() { # kind args: "wall cpu" pairs
	"$BIN" "$1" "$TMP/cert.pem" "$TMP/key.pem" "${@:2}" | awk '/^RESULT/ {print $3 ":" $5}'
}
for ((r = 0; r < RUNS; r++)); do
	P[bulk]+=" $(sample bulk "$BULK_MIB")"
	A[bulk]+=" $(with_agent sample bulk "$BULK_MIB")"
	P[rate]+=" $(sample rate "$REQS")"
	A[rate]+=" $(with_agent sample rate "$REQS")"
	P[conns]+=" $(sample conns "$CONNS")"
	A[conns]+=" $(with_agent sample conns "$CONNS")"
done
both() { # label unit plain-pairs -- agent-pairs
	local label=$1 unit=$2 x p=() a=() pc=() ac=() side=p
	shift 2
	for x in "$@"; do
		[ "$x" = -- ] && { side=a; continue; }
		if [ $side = p ]; then p+=("${x%%:*}"); pc+=("${x##*:}")
		else a+=("${x%%:*}"); ac+=("${x##*:}"); fi
	done
	stats "$label" "$unit" 1 "${p[@]}" -- "${a[@]}"
	stats "  per CPU-second" "$unit/cpu-s" 1 "${pc[@]}" -- "${ac[@]}"
}
both "bulk, 16 KiB reads" MB/s ${P[bulk]} -- ${A[bulk]}
both "small requests, keep-alive" req/s ${P[rate]} -- ${A[rate]}
both "new connection + request" conn/s ${P[conns]} -- ${A[conns]}

echo "== start-up of a program that makes no TLS call (/bin/true, 300 runs, best of 3)"
startup() {
	local best=999999 r t0 t1 i
	for r in 1 2 3; do
		t0=$(date +%s%N)
		for ((i = 0; i < 300; i++)); do "$@" /bin/true; done
		t1=$(date +%s%N)
		(((t1 - t0) / 300000 < best)) && best=$(((t1 - t0) / 300000))
	done
	echo "$best"
}
s0=$(startup env)
s1=$(startup env "LD_PRELOAD=$SO")
echo "  none $s0 us, agent $s1 us per exec: +$((s1 - s0)) us (loading the decoder's libraries)"

echo "== CPU per call (best batch of each run, median of 3 runs)"
pc= ac= pl= al=
for ((r = 0; r < 3; r++)); do
	pc+=" $(result calls "$CALLS")"
	ac+=" $(with_agent result calls "$CALLS")"
done
"$PY" - $pc -- $ac <<'PY'
import statistics, sys
a = sys.argv[1:]
i = a.index("--")
p, g = statistics.median(map(float, a[:i])), statistics.median(map(float, a[i + 1:]))
print(f"  64-byte write+read, pass-through   none {p:8.1f} ns  agent {g:8.1f} ns  "
      f"added per hooked SSL_read {g - p:+.1f} ns (goal <= 500)")
PY
body=$TMP/sse.body
FX=$TOP/../shared/fixtures/wire/openai/chat-stream-include-usage-toolcall.sse
if [ -f "$FX" ]; then
	cp "$FX" "$body"
else # a small stand-in stream with usage
	{
		for i in $(seq 20); do
			printf 'data: {"id":"x","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"word%d "}}]}\n\n' "$i"
		done
		printf 'data: {"id":"x","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":20,"total_tokens":29}}\n\ndata: [DONE]\n\n'
	} >"$body"
fi
for ((r = 0; r < 3; r++)); do
	pl+=" $(result llm 2000 "$body" )"
	al+=" $(with_agent result llm 2000 "$body")"
done
"$PY" - "$(wc -c <"$body")" $pl -- $al <<'PY'
import statistics, sys
n = int(sys.argv[1]); a = sys.argv[2:]
i = a.index("--")
p, g = statistics.median(map(float, a[:i])), statistics.median(map(float, a[i + 1:]))
print(f"  LLM exchange, {n}-byte SSE reply   none {p:8.2f} us  agent {g:8.2f} us  "
      f"decode + record {g - p:+.2f} us per exchange")
PY

echo "== latency of an LLM call (curl to the mock provider, $LAT_CALLS calls each)"
. "$TOP/tests/mock/lib.sh"
trap cleanup EXIT # lib.sh sets its own; keep ours, then stop the mock too
pids+=()
mock_start --no-gzip >/dev/null || { echo "  mock provider did not start: skipped"; exit 0; }
pids+=("$MOCK_PID")
printf '%s' '{"model":"gpt-4o-mini","max_tokens":40,"messages":[{"role":"user","content":"latency"}]}' >"$TMP/req.json"
lat() { # URL CAFLAG... -> time_total per call, one a line
	local url=$1 i
	shift
	for ((i = 0; i < LAT_CALLS; i++)); do
		curl -sS --http1.1 -o /dev/null -w '%{time_total}\n' "$@" \
			-H 'Content-Type: application/json' --data-binary @"$TMP/req.json" "$url"
	done
}
url=$MOCK_URL/v1/chat/completions
lat "$url" --cacert "$MOCK_CA" >"$TMP/lat.none"
LD_PRELOAD=$SO lat "$url" --cacert "$MOCK_CA" >"$TMP/lat.agent"
proxy=none
if command -v mitmdump >/dev/null; then
	mport=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	mitmdump -q --mode "reverse:$MOCK_URL" --listen-host 127.0.0.1 \
		--listen-port "$mport" --ssl-insecure --set confdir="$TMP/mitm" \
		>"$TMP/mitm.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do
		curl -sk -o /dev/null "https://127.0.0.1:$mport/healthz" && break
		sleep 0.1
	done
	lat "https://127.0.0.1:$mport/v1/chat/completions" -k >"$TMP/lat.proxy"
	proxy=mitmdump
fi
"$PY" - "$TMP" "$proxy" <<'PY'
import sys
d, proxy = sys.argv[1], sys.argv[2]
def pct(xs, q):
    xs = sorted(xs); return xs[min(len(xs) - 1, int(q * len(xs)))]
def load(n): return [float(x) * 1000 for x in open(f"{d}/lat.{n}")]
none, agent = load("none"), load("agent")
rows = [("direct, no agent", none), ("direct, agent", agent)]
if proxy != "none":
    rows.append(("reverse proxy (mitmdump)", load("proxy")))
for name, xs in rows:
    print(f"  {name:<28} p50 {pct(xs, .5):7.2f} ms  p99 {pct(xs, .99):7.2f} ms  "
          f"added p99 {pct(xs, .99) - pct(none, .99):+7.2f} ms")
if proxy == "none":
    print("  mitmdump not installed (Debian package mitmproxy): proxy not measured")
PY
