#!/usr/bin/env bash
# Enforce mode with the collector addressed by a host name (issue #12):
# leases used to resolve numeric hosts only, so TOKENTAP_COLLECTOR=
# http://localhost:PORT let every call through with one misleading
# warning.  With a budget of 2 calls per task:
#   1. http://localhost:PORT: 2 calls answered, the 3rd blocked;
#   2. a name from /etc/hosts (a private mount namespace adds it): the same;
#   3. a name whose name server never answers (a private resolv.conf points
#      at a UDP socket that reads and says nothing): no call is held past
#      the lease deadline (500 ms here): fail open lets the call through at
#      once, fail closed refuses it at once, each with one line saying the
#      collector cannot be reached.
set -euo pipefail
. "$(dirname "$0")/clients/agent_lib.sh"
agent_setup
[ -x "$BUILD/tokentapd" ] || skip "tokentapd not built; run make"
command -v unshare >/dev/null || skip "unshare (util-linux) is not installed"
[ "$(id -u)" -eq 0 ] || skip "a private /etc/hosts needs root (mount namespace)"
unshare -m true 2>/dev/null || skip "this machine refuses mount namespaces"

cat >"$T/c.json" <<'J'
{"budgets": [{"name": "two-calls", "scope": {"task": "*"}, "limit": {"calls": 2},
              "window": "task", "action": "deny"}]}
J
"$BUILD/tokentapd" --listen "http://127.0.0.1:0" --db "$T/c.db" --config "$T/c.json" \
	>"$T/c.out" 2>"$T/c.err" &
CPID=$!
on_exit "kill $CPID 2>/dev/null; wait $CPID 2>/dev/null"
for _ in $(seq 100); do grep -q '^tokentapd: ready' "$T/c.out" && break; sleep 0.1; done
grep -q '^tokentapd: ready' "$T/c.out" || fail "tokentapd did not start: $(cat "$T/c.err")"
CPORT=$(sed -n 's|^tokentapd: listening on http://127.0.0.1:\([0-9]*\)$|\1|p' "$T/c.out")
[ -n "$CPORT" ] || fail "no port in: $(cat "$T/c.out")"

cat >"$T/calls.py" <<'PY'
import json, ssl, sys, time, urllib.error, urllib.request
port, ca, key, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
ctx = ssl.create_default_context(cafile=ca)
ctx.set_alpn_protocols(["http/1.1"])
for i in range(n):
    body = json.dumps({"model": "gpt-4o-mini", "max_tokens": 20,
                       "messages": [{"role": "user", "content": "call %d" % i}]}).encode()
    req = urllib.request.Request("https://127.0.0.1:%s/v1/chat/completions" % port, data=body,
                                 headers={"Authorization": "Bearer " + key,
                                          "Content-Type": "application/json"})
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
            r.read()
            code = r.status
    except urllib.error.HTTPError as e:
        code = e.code
    except OSError:
        code = 0  # refused before the request left (fail closed)
    print("call %d %d %.3f" % (i, code, time.monotonic() - t0))
PY

# run TASK COLLECTOR N [ENV...]: N calls under the agent; prints the codes
run() {
	local task=$1 coll=$2 n=$3
	shift 3
	env TOKENTAP_MODE=enforce TOKENTAP_COLLECTOR="$coll" TOKENTAP_TASK="$task" "$@" \
		LD_PRELOAD="$AGENT_SO" "$TT_PY" "$T/calls.py" "$MOCK_PORT" "$MOCK_CA" "$SENTINEL" "$n"
}
codes() { awk '{print $3}' "$1" | tr '\n' ' '; }

# 1. localhost
run by-localhost "http://localhost:$CPORT" 3 >"$T/1.out" 2>"$T/1.err"
[ "$(codes "$T/1.out")" = "200 200 403 " ] ||
	fail "localhost: codes $(codes "$T/1.out"), want 200 200 403: $(cat "$T/1.err")"
echo "ok - http://localhost:$CPORT: 2 calls answered, the 3rd blocked"

# 2. a name from /etc/hosts, in a private mount namespace
{ echo "127.0.0.1 tt-collector.test"; cat /etc/hosts; } >"$T/hosts"
export -f run
export T AGENT_SO TT_PY MOCK_PORT MOCK_CA SENTINEL
unshare -m bash -c "mount --bind '$T/hosts' /etc/hosts &&
	run by-hosts-name http://tt-collector.test:$CPORT 3" >"$T/2.out" 2>"$T/2.err"
[ "$(codes "$T/2.out")" = "200 200 403 " ] ||
	fail "/etc/hosts name: codes $(codes "$T/2.out"), want 200 200 403: $(cat "$T/2.err")"
echo "ok - http://tt-collector.test:$CPORT (from /etc/hosts): 2 calls answered, the 3rd blocked"

# 3. a name server that never answers
"$TT_PY" - "$T/dns.ready" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.53", 53))
open(sys.argv[1], "w").close()
while True:
    s.recvfrom(4096)  # heard, never answered
PY
dns=$!
on_exit "kill $dns 2>/dev/null || true"
for _ in $(seq 50); do [ -f "$T/dns.ready" ] && break; sleep 0.1; done
[ -f "$T/dns.ready" ] || skip "cannot bind a UDP socket on 127.0.0.53:53"
printf 'nameserver 127.0.0.53\noptions timeout:5 attempts:2\n' >"$T/resolv.conf"
for fail_mode in open closed; do
	before=$(mock_log_count)
	unshare -m bash -c "mount --bind '$T/resolv.conf' /etc/resolv.conf &&
		run blackhole-$fail_mode http://tt-blackhole.test:$CPORT 2 \
			TOKENTAP_FAIL=$fail_mode TOKENTAP_LEASE_TIMEOUT_MS=500 TOKENTAP_LOG=warn" \
		>"$T/3$fail_mode.out" 2>"$T/3$fail_mode.err"
	cat "$T/3$fail_mode.out"
	slowest=$(awk '{print $4}' "$T/3$fail_mode.out" | sort -n | tail -n1)
	"$TT_PY" -c 'import sys; sys.exit(0 if float(sys.argv[1]) < 2.0 else 1)' "$slowest" ||
		fail "fail $fail_mode: a call took $slowest s with a silent name server (deadline 0.5 s)"
	grep -q "cannot be reached" "$T/3$fail_mode.err" ||
		fail "fail $fail_mode: no line says the collector cannot be reached: $(cat "$T/3$fail_mode.err")"
	reached=$(( $(mock_log_count) - before ))
	if [ "$fail_mode" = open ]; then
		[ "$(codes "$T/3open.out")" = "200 200 " ] || fail "fail open: $(codes "$T/3open.out")"
		[ "$reached" -eq 2 ] || fail "fail open: $reached calls reached the mock, want 2"
	else
		[ "$(codes "$T/3closed.out")" != "200 200 " ] || fail "fail closed let calls through"
		[ "$reached" -eq 0 ] || fail "fail closed: $reached calls reached the mock"
	fi
	echo "ok - a silent name server, fail $fail_mode: every call decided within $slowest s"
done
check_no_sentinel "$T"/*.out "$T"/*.err
