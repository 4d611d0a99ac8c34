#!/usr/bin/env bash
# tokentap-probe with Python's urllib (Debian's /usr/bin/python3, whose
# _ssl module calls only SSL_read_ex/SSL_write_ex): every record's figures
# equal expect.py's for the body the mock sent.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../mock/lib.sh"
. "$here/probe_clients/lib_probe.sh"

probe_preflight
mock_start || fail "the mock did not start"
probe_start

"$TT_PY" "$PROBE_CLIENTS/urllib_client.py" "$MOCK_URL" "$MOCK_CA" calls &
client=$!
wait "$client" || fail "the urllib client failed"
[ "$(mock_log_count)" -eq 3 ] || fail "the mock logged $(mock_log_count) responses, want 3"

probe_stop
probe_check --side client --pid "$client" --min 3
echo "ok - urllib under tokentap-probe"
