#!/usr/bin/env bash
# tokentap-probe with Go programs (crypto/tls inside the executable, no
# OpenSSL anywhere): probes/tests/go/client.go built here with Debian's Go,
# once as built and once stripped (-s -w: no symbol table, found through
# the pclntab).  Each calls the mock over HTTP/2 and HTTP/1.1, streamed and
# not, OpenAI and Anthropic routes, fast and paced (first byte after up to
# 2 s, a 10 s silence); one Go process is already running when the probe
# starts.  Every record's figures equal expect.py's for the body the mock
# sent, its tls is "gotls" and its exe the Go program (a native executable
# that loads no libssl); the API keys reach no record and no log line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../mock/lib.sh"
. "$here/probe_clients/lib_probe.sh"

probe_preflight
command -v go >/dev/null || skip "go is not installed (golang-go)"

# Built under build/ with a cache of its own there: later runs take a second.
gobin=$TT_TOP/build/go
mkdir -p "$gobin/home"
gobuild() { # OUT [FLAGS...]
	local out=$1
	shift
	(cd "$gobin" && HOME=$gobin/home GOCACHE=$gobin/cache GOPROXY=off \
		GOFLAGS= CGO_ENABLED=0 go build "$@" -o "$out" \
		"$TT_TOP/probes/tests/go/client.go") >"$gobin/build.log" 2>&1 ||
		fail "go build $*: $(tail -n 5 "$gobin/build.log")"
}
gobuild "$gobin/client"
gobuild "$gobin/client-stripped" -ldflags='-s -w'
for b in client client-stripped; do
	head -c 4 "$gobin/$b" | grep -q ELF || fail "$b is not an ELF executable"
	if grep -q -a 'libssl' "$gobin/$b"; then fail "$b names libssl"; fi
done
readelf -S "$gobin/client-stripped" | grep -q '\.symtab' &&
	fail "client-stripped still has a symbol table"

mock_start || fail "the mock did not start"
export SSL_CERT_FILE=$MOCK_CA
calls=(/v1/chat/completions /v1/chat/completions:stream /v1/messages:stream)

# 0. A Go process already running when the probe starts (found by the
# probe's scan of /proc, not at exec).
go_ready=$MOCK_TMP/go
CLIENT_WAIT_FOR=$go_ready "$gobin/client" "$MOCK_URL" h2 "${calls[@]}" \
	>"$MOCK_TMP/early.out" &
early=$!
on_exit "kill $early 2>/dev/null || true"
sleep 0.3
probe_start -v
touch "$go_ready"
wait "$early" || fail "the Go client already running failed"
grep -q "attached $gobin/client .*gotls" "$PROBE_LOG" ||
	fail "the running Go client was not attached: $(grep -F "$gobin/client" "$PROBE_LOG")"

# 1. Fast: both builds, both protocols, one after the other.
run_client() { # BUILD PROTO CALLS...
	local b=$1 p=$2
	shift 2
	"$gobin/$b" "$MOCK_URL" "$p" "$@" >>"$MOCK_TMP/clients.out" ||
		fail "$b $p failed"
}
run_client client h2 "${calls[@]}"
run_client client h1 "${calls[@]}"
run_client client-stripped h2 "${calls[@]}"
run_client client-stripped h1 "${calls[@]}"

# 2. Paced, side by side: the first byte after 0.5-2 s and 20-80 events/s;
# one stream falls silent for 10 s in the middle.
pids=()
"$gobin/client" "$MOCK_URL" h2 /paced/v1/chat/completions:stream \
	/paced/v1/messages:stream & pids+=($!)
"$gobin/client-stripped" "$MOCK_URL" h1 /paced/stall/10000/v1/messages:stream & pids+=($!)
"$gobin/client-stripped" "$MOCK_URL" h2 /paced/v1/chat/completions & pids+=($!)
for p in "${pids[@]}"; do
	wait "$p" || fail "a paced Go client failed (pid $p)"
done

want=$((3 * 5 + 4))
n=$(mock_log_count)
[ "$n" -eq "$want" ] || fail "the mock logged $n responses, want $want"
probe_stop
probe_check --side client --min "$want" --want tls=gotls
for h in 2 1.1; do
	probe_check --side client --http "$h" --min 5 --want tls=gotls >/dev/null ||
		fail "HTTP/$h records"
done

# Which program made each call, and the long one lasted.
"$TT_PY" - "$PROBE_OUT" "$MOCK_PORT" "$gobin" <<'PY' || fail "a record's process is wrong"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
recs = [r for r in recs if (r.get("host") or "").endswith(":" + sys.argv[2])
        and r["side"] == "client"]
exes = sorted(set(r["exe"] for r in recs))
want = sorted([sys.argv[3] + "/client", sys.argv[3] + "/client-stripped"])
assert exes == want, "exe %s, want %s" % (exes, want)
stall = [r for r in recs if "/stall/" in r["path"]]
assert len(stall) == 1 and stall[0]["duration_ms"] >= 10000, stall
print("ok - records from both Go builds; the stalled stream lasted %.1f s"
      % (stall[0]["duration_ms"] / 1000))
PY
if grep -l 'tokentap-secret' "$PROBE_OUT" "$PROBE_LOG"; then
	fail "an API key reached the probe's output"
fi
echo "ok - Go crypto/tls: $want calls from a plain and a stripped build, HTTP/2 and HTTP/1.1, figures equal"
