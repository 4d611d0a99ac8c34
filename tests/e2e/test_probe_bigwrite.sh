#!/usr/bin/env bash
# One SSL_write_ex of a several-MiB request (a long prompt) is carried in
# many ring-buffer events and reassembled whole: the record's request_bytes
# equals what the client sent and its figures equal the mock's.  When the
# kernel side lost bytes (its counters say so), the record must say
# "truncated" instead: never a silent cut.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../mock/lib.sh"
. "$here/probe_clients/lib_probe.sh"

MIB=${PROBE_BIG_MIB:-6}
probe_preflight
mock_start || fail "the mock did not start"
probe_start

out=$("$TT_PY" "$PROBE_CLIENTS/urllib_client.py" "$MOCK_URL" "$MOCK_CA" big "$MIB" &
	echo "pid $!"; wait $!) || fail "the client failed"
client=$(echo "$out" | sed -n 's/^pid //p')
sent=$(echo "$out" | sed -n 's/^request_bytes //p')
[ "$sent" -gt $((MIB << 20)) ] || fail "the client sent only $sent bytes"
[ "$(mock_log_last request_bytes)" -eq "$sent" ] ||
	fail "the mock got $(mock_log_last request_bytes) bytes, the client sent $sent"

probe_stop
lost=$(( $(probe_counter dropped_bytes) + $(probe_counter fault_bytes) +
	$(probe_counter cut_bytes) + $(probe_counter busy_bytes) ))
if [ "$lost" -gt 0 ]; then
	# Bytes of this node were lost: if ours, the record must say so.
	"$TT_PY" - "$PROBE_OUT" "$MOCK_PORT" "$client" "$sent" <<'PY' || fail "lost bytes without a truncated record"
import json, sys
out, port, pid, sent = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
recs = [json.loads(l) for l in open(out) if l.strip()]
recs = [r for r in recs if (r.get("host") or "").endswith(":" + port)
        and r["pid"] == pid and r["side"] == "client"]
ok = any(r["request_bytes"] == sent and r["error"] is None for r in recs) or \
     any(r["error"] == "truncated" for r in recs)
print("records:", [(r["request_bytes"], r["error"]) for r in recs])
sys.exit(0 if ok else 1)
PY
	echo "ok - $lost bytes lost on this node, and the record says so or is whole"
else
	probe_check --side client --pid "$client" --min 1
	echo "ok - a $sent-byte request in one SSL_write_ex came out whole"
fi
