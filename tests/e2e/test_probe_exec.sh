#!/usr/bin/env bash
# tokentap-probe sees a program's first call however short its life
# (issue #11): uprobes attach to files, so a program must be attached
# before it runs.  Two ways, both checked with a node program (Node's
# OpenSSL is inside the executable) that makes one call in well under
# 200 ms and exits:
#   - the node on PATH, attached by the probe's start-up scan of the
#     program folders, with no node process running;
#   - a copy of node made after the probe started, outside PATH and
#     --exe, so only the exec gate (fanotify: the exec waits until the
#     file is attached) can have attached it.
# Every call gets its one record with expect.py's figures.  RUNS (default
# 10) runs of each; the issue's note used RUNS=100.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../mock/lib.sh"
. "$here/probe_clients/lib_probe.sh"

RUNS=${RUNS:-10}
NODE=${NODE:-/usr/bin/node}
probe_preflight
[ -x "$NODE" ] || skip "no $NODE"
"$NODE" -e 'process.exit(typeof fetch === "function" ? 0 : 1)' ||
	skip "$NODE has no fetch (Node 18 or later needed)"
mock_start || fail "the mock did not start"
export NODE_EXTRA_CA_CERTS=$MOCK_CA
url=$(mock_url /v1/chat/completions)

probe_start -v
grep -q 'exec_gate=on' "$PROBE_LOG" ||
	skip "the exec gate is not available here: $(grep -m1 'exec' "$PROBE_LOG")"

# The copy: made now, in a folder no scan looks at.
copy_dir=$MOCK_TMP/not-on-path
mkdir -p "$copy_dir"
cp "$NODE" "$copy_dir/node-copy"

run_many() { # LABEL BINARY
	local i
	for ((i = 1; i <= RUNS; i++)); do
		"$2" "$PROBE_CLIENTS/node_once.mjs" "$url" "$1-$i" >>"$MOCK_TMP/$1.times" ||
			fail "$1 run $i failed"
	done
	"$TT_PY" - "$MOCK_TMP/$1.times" "$1" "$RUNS" <<'PY'
import json, statistics, sys
t = [json.loads(l) for l in open(sys.argv[1])]
call = sorted(x["call_ms"] for x in t)
life = sorted(x["life_ms"] for x in t)
print("%s: %s programs, each one call: call median %.0f ms, max %.0f ms; "
      "whole life median %.0f ms" % (sys.argv[2], sys.argv[3],
      statistics.median(call), call[-1], statistics.median(life)))
PY
}

pgrep -x node >/dev/null && echo "note: another node process runs beside this test"
run_many path "$NODE"
run_many copy "$copy_dir/node-copy"
[ "$(mock_log_count)" -eq $((2 * RUNS)) ] ||
	fail "the mock logged $(mock_log_count) responses, want $((2 * RUNS))"
probe_stop
probe_check --side client --min $((2 * RUNS))
grep -q "attached $copy_dir/node-copy" "$PROBE_LOG" ||
	fail "the copy was not attached by its own name"
if grep -l 'tokentap-secret' "$PROBE_OUT" "$PROBE_LOG"; then
	fail "an API key reached the probe's output"
fi
echo "ok - $((2 * RUNS)) short node programs, each recorded once: $RUNS from PATH, $RUNS from a copy only the exec gate saw"
