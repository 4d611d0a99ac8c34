#!/usr/bin/env bash
# TLS inside TLS: curl talks to the mock through an HTTPS proxy, so its
# TLS connection to the provider runs inside its TLS connection to the
# proxy and each SSL_read of the inner connection calls SSL_read on the
# outer one.  The kernel side keeps a small stack of calls per thread,
# paired with their returns by the stack pointer: every call is matched
# (no_entry=0), and each LLM call through the tunnel has its one record
# with expect.py's figures, streamed and not, HTTP/1.1 and HTTP/2.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../mock/lib.sh"
. "$here/probe_clients/lib_probe.sh"

probe_preflight
curl -V | grep -qi 'HTTPS-proxy' || skip "this curl has no HTTPS-proxy support"
mock_start || fail "the mock did not start"
"$TT_PY" "$PROBE_CLIENTS/https_proxy.py" "$MOCK_TMP/tls/cert.pem" "$MOCK_TMP/tls/key.pem" \
	"$MOCK_TMP/proxy.json" &
ppid=$!
on_exit "kill $ppid 2>/dev/null || true"
for _ in $(seq 100); do [ -f "$MOCK_TMP/proxy.json" ] && break; sleep 0.1; done
pport=$(json_get "$MOCK_TMP/proxy.json" 'd["port"]')
probe_start

body='{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"through a proxy"}]}'
for v in --http1.1 --http2; do
	for m in "" /paced; do
		curl -sS --proxy "https://127.0.0.1:$pport" --proxy-cacert "$MOCK_CA" \
			--cacert "$MOCK_CA" $v -o /dev/null -H 'content-type: application/json' \
			"$MOCK_URL$m/v1/chat/completions" -d "$body" ||
			fail "curl $v $m through the proxy failed"
	done
done
[ "$(mock_log_count)" -eq 4 ] || fail "the mock logged $(mock_log_count) responses, want 4"
probe_stop
probe_check --side client --comm curl --min 4
[ "$(probe_counter no_entry)" -eq 0 ] || fail "no_entry=$(probe_counter no_entry): a return matched no entry"
echo "ok - 4 calls through an HTTPS proxy (TLS in TLS) recorded once each; every return matched its entry (stale_entries=$(probe_counter stale_entries))"
