#!/usr/bin/env bash
# Never silent: a program that makes TLS connections the probe cannot see
# is named once in the probe's log with its path, counted in tokentapd's
# /metrics (no path label) and listed by GET /v1/probe.
#
#   - a TLS stack no finder knows: a copy of bun whose BoringSSL no longer
#     names its source file (the finders find nothing in it);
#   - a new release that changed the code a finder checks: a copy of the
#     Go client whose build info says Go 1.16 (the Go finder refuses it,
#     saying why, and that reason comes with the program's name);
#   - programs the probe sees (curl, Python through libssl; the Go client
#     as built) are not named.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../mock/lib.sh"
. "$here/probe_clients/lib_probe.sh"

probe_preflight
# (grep -c reads it all: grep -q would stop bpftool early, and pipefail
# would take its SIGPIPE for an answer)
[ "$(bpftool btf dump file /sys/kernel/btf/vmlinux 2>/dev/null |
	grep -c 'btf_trace_tcp_sendmsg_locked')" -gt 0 ] ||
	skip "the kernel has no tcp_sendmsg_locked tracepoint (6.11+): the TLS watch is off"
TOKENTAPD=$TT_TOP/build/tokentapd
[ -x "$TOKENTAPD" ] || fail "$TOKENTAPD is not built"
probe_npm_app bun
bun=$NPM_APP/node_modules/bun/bin/bun.exe
command -v go >/dev/null || skip "go is not installed (golang-go)"

mock_start || fail "the mock did not start"
work=$MOCK_TMP/progs
mkdir -p "$work"

# The unknown stack: every "ssl_lib.cc" in bun becomes "ssl_lib.xx".
"$TT_PY" - "$bun" "$work/bun-unknown" <<'PY' || fail "could not make the bun copy"
import sys
b = bytearray(open(sys.argv[1], "rb").read())
n, i = 0, b.find(b"ssl_lib.cc")
while i != -1:
    b[i + 8:i + 10] = b"xx"
    n += 1
    i = b.find(b"ssl_lib.cc", i + 1)
assert n > 0, "no ssl_lib.cc in bun"
open(sys.argv[2], "wb").write(b)
PY
chmod +x "$work/bun-unknown"

# The changed release: the Go client, its build info set to go1.16.
gobin=$TT_TOP/build/go
mkdir -p "$gobin/home"
(cd "$gobin" && HOME=$gobin/home GOCACHE=$gobin/cache GOPROXY=off GOFLAGS= \
	CGO_ENABLED=0 go build -o "$work/go-client" "$TT_TOP/probes/tests/go/client.go") \
	>"$work/build.log" 2>&1 || fail "go build: $(tail -n 5 "$work/build.log")"
cp "$work/go-client" "$work/go-old"
"$TT_PY" - "$work/go-old" <<'PY' || fail "could not patch the Go build info"
import re, sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
h = b.find(b"\xff Go buildinf:")
assert h >= 0, "no Go build info"
m = re.compile(rb"go1\.(\d+)").search(b, h, h + 64)
assert m, "no version in the build info"
b[m.start(1):m.end(1)] = b"16".ljust(len(m.group(1)), b".")[:len(m.group(1))]
open(p, "wb").write(b)
PY

sock=$MOCK_TMP/c.sock
"$TOKENTAPD" --listen "unix:$sock" --db "$MOCK_TMP/c.db" >"$MOCK_TMP/c.out" 2>"$MOCK_TMP/c.err" &
cpid=$!
on_exit "kill $cpid 2>/dev/null; wait $cpid 2>/dev/null"
for _ in $(seq 100); do grep -q '^tokentapd: ready' "$MOCK_TMP/c.out" && break; sleep 0.1; done
grep -q '^tokentapd: ready' "$MOCK_TMP/c.out" || fail "tokentapd did not start: $(cat "$MOCK_TMP/c.err")"
host=$(hostname)

cat >"$work/fetch.mjs" <<'JS'
const r = await fetch(process.argv[2], {
	method: "POST",
	headers: { "content-type": "application/json", authorization: "Bearer sk-tokentap-secret-bun" },
	body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "unseen" }] }),
});
if (r.status !== 200) throw new Error("status " + r.status);
await r.text();
JS

probe_start --collector "unix:$sock"
export NODE_EXTRA_CA_CERTS=$MOCK_CA SSL_CERT_FILE=$MOCK_CA
for i in 1 2; do
	"$work/bun-unknown" "$work/fetch.mjs" "$MOCK_URL/v1/chat/completions" ||
		fail "the bun copy failed"
done
"$work/go-old" "$MOCK_URL" h2 /v1/chat/completions >/dev/null || fail "go-old failed"
"$work/go-client" "$MOCK_URL" h2 /v1/chat/completions >/dev/null || fail "go-client failed"
curl -sS --cacert "$MOCK_CA" -o /dev/null "$MOCK_URL/v1/chat/completions" \
	-H 'content-type: application/json' -d '{"model":"gpt-4o-mini","messages":[]}' ||
	fail "curl failed"
"$TT_PY" "$PROBE_CLIENTS/urllib_client.py" "$MOCK_URL" "$MOCK_CA" calls >/dev/null ||
	fail "the python client failed"
sleep 2.5 # one more post of the counters (every second)
probe_stop

# The log: each unseen program once, with its path; the Go one with why.
n=$(grep -c "bun-unknown (pid .*) makes TLS connections (port $MOCK_PORT) but nothing in it can be hooked" "$PROBE_LOG" || true)
[ "$n" -eq 1 ] || fail "the bun copy is named $n times in the log, want once"
grep -q "$work/go-old (pid .*) makes TLS connections (port $MOCK_PORT) but nothing in it can be hooked (gotls: .*1\.17.*)" "$PROBE_LOG" ||
	fail "the old Go is not named with the finder's reason: $(grep go-old "$PROBE_LOG")"
grep -q "$work/go-old carries gotls TLS code the probe cannot hook" "$PROBE_LOG" ||
	fail "the Go finder's refusal was not logged at exec"
for seen in go-client curl python; do
	if grep "makes TLS connections" "$PROBE_LOG" | grep -q "$seen"; then
		fail "$seen is named as unseen, but the probe sees it"
	fi
done
[ "$(probe_counter tls_unhooked)" = 3 ] ||
	fail "tls_unhooked=$(probe_counter tls_unhooked), want 3 (bun twice, go-old once)"
[ "$(probe_counter unhookable_files)" = 1 ] ||
	fail "unhookable_files=$(probe_counter unhookable_files) at exit, want 1 (go-old)"
echo "ok - the log names the two unseen programs once each; the seen ones not"

# /metrics: the count, by host only; GET /v1/probe: the paths.
m=$(curl -sS --unix-socket "$sock" http://x/metrics)
echo "$m" | grep -q "^tokentap_probe_tls_unhooked_total{host=\"$host\"} 3\$" ||
	fail "/metrics: $(echo "$m" | grep unhooked)"
echo "$m" | grep -q "^tokentap_probe_tls_unhooked_programs{host=\"$host\"} 2\$" ||
	fail "/metrics: $(echo "$m" | grep unhooked)"
if echo "$m" | grep -q 'bun-unknown\|go-old'; then fail "a path in /metrics"; fi
curl -sS --unix-socket "$sock" http://x/v1/probe >"$MOCK_TMP/probe.json"
"$TT_PY" - "$MOCK_TMP/probe.json" "$host" "$work" <<'PY' || fail "GET /v1/probe: $(cat "$MOCK_TMP/probe.json")"
import json, sys
d = json.load(open(sys.argv[1]))
h = [p for p in d["probes"] if p["host"] == sys.argv[2]]
assert len(h) == 1, d
got = sorted(h[0]["unhooked"])
want = sorted([sys.argv[3] + "/bun-unknown", sys.argv[3] + "/go-old"])
assert got == want, (got, want)
print("ok - GET /v1/probe lists", got)
PY
if grep -l 'tokentap-secret' "$PROBE_LOG" "$MOCK_TMP/probe.json"; then
	fail "an API key reached the probe's output"
fi
echo "ok - never silent: unseen TLS named, counted and listed"
