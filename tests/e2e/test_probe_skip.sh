#!/usr/bin/env bash
# tokentap-probe gives up TLS connections that carry no LLM traffic (issue
# #7): one Python process echoes binary messages over TLS (both ends its
# own) while it makes LLM calls to the mock.  The echo connections are
# skipped in the kernel (the "skipped" counter grows by at least a quarter
# of their calls, no call of theirs counts as a return without entry);
# every LLM call of the same process is recorded with expect.py's figures,
# including those made on a fresh connection right after a skipped one was
# freed (its SSL pointer may be reused).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../mock/lib.sh"
. "$here/probe_clients/lib_probe.sh"

probe_preflight
command -v openssl >/dev/null || skip "openssl is not installed"
mock_start || fail "the mock did not start"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$MOCK_TMP/echo-key.pem" \
	-out "$MOCK_TMP/echo-cert.pem" -days 1 -subj /CN=echo >/dev/null 2>&1 ||
	fail "openssl could not make a certificate"
probe_start

"$TT_PY" "$PROBE_CLIENTS/skip_client.py" "$MOCK_URL" "$MOCK_CA" \
	"$MOCK_TMP/echo-cert.pem" "$MOCK_TMP/echo-key.pem" 2 \
	>"$MOCK_TMP/skip-client.json" &
client=$!
wait "$client" || fail "the client failed"
out=$(cat "$MOCK_TMP/skip-client.json")
trips=$(json_get "$MOCK_TMP/skip-client.json" 'd["trips"]')
calls=$(json_get "$MOCK_TMP/skip-client.json" 'd["calls"]')
echo "client: $out"
[ "$(mock_log_count)" -eq "$calls" ] ||
	fail "the mock logged $(mock_log_count) responses, the client made $calls calls"

probe_stop
probe_check --side client --pid "$client" --min "$calls"

skipped=$(probe_counter skipped)
conns_skipped=$(probe_counter conns_skipped)
no_entry=$(probe_counter no_entry)
echo "skipped=$skipped conns_skipped=$conns_skipped no_entry=$no_entry" \
	"skip_late=$(probe_counter skip_late) (echo round trips: $trips, 4 calls each)"
# The long echo connection, both ends, once the reader has decided.
[ "${conns_skipped:-0}" -ge 2 ] ||
	fail "conns_skipped=$conns_skipped: the echo connections were not given up"
[ "${skipped:-0}" -ge "$trips" ] ||
	fail "skipped=$skipped calls, want at least $trips (a quarter of the echo calls)"
[ "${no_entry:-1}" -eq 0 ] ||
	fail "no_entry=$no_entry: returns without their entry (skipped calls must not count)"
echo "ok - connections without LLM traffic skipped in the kernel, the LLM calls beside them recorded"
