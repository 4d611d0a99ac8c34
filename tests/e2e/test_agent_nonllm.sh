#!/usr/bin/env bash
# What is not LLM traffic stays untouched: raw TLS (not HTTP) through both
# ends under the agent, plain HTTPS requests, programs that never load
# libssl.  Output identical with and without the agent, no record, no spool
# file, nothing on stderr.  Also: the library exports exactly the hooks.
set -euo pipefail
. "$(dirname "$0")/clients/agent_lib.sh"
[ -x /usr/bin/python3 ] || skip "/usr/bin/python3 absent"
command -v openssl >/dev/null || skip "openssl command absent"
agent_setup
PY=/usr/bin/python3
ECHO=$AGENT_E2E_DIR/clients/tls_echo.py

# Exactly the hooked symbols, nothing else.
want="SSL_clear SSL_free SSL_peek SSL_peek_ex SSL_read SSL_read_ex SSL_shutdown SSL_write SSL_write_ex execv execve execvp execvpe posix_spawn posix_spawnp"
got=$(nm -D --defined-only "$AGENT_SO" | awk '{print $3}' | sort | tr '\n' ' ')
[ "$got" = "$want " ] || fail "exports: '$got', want '$want'"

# A throw-away certificate for the echo server.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$T/key.pem" -out "$T/cert.pem" -days 1 -subj /CN=localhost \
	-addext subjectAltName=IP:127.0.0.1 2>/dev/null
with_agent "$PY" "$ECHO" server "$T/cert.pem" "$T/key.pem" "$T/port" \
	>"$T/server.out" 2>"$T/server.err" &
spid=$!
on_exit "kill $spid 2>/dev/null || true"
for _ in $(seq 100); do [ -s "$T/port" ] && break; sleep 0.1; done
port=$(cat "$T/port")

"$PY" "$ECHO" client "$port" "$T/cert.pem" 3000000 >"$T/echo.plain" 2>&1
with_agent "$PY" "$ECHO" client "$port" "$T/cert.pem" 3000000 >"$T/echo.agent" 2>&1
cmp "$T/echo.plain" "$T/echo.agent" || fail "echo output differs with the agent"
[ "$(awk '{print $2}' "$T/echo.agent" | sort -u | wc -l)" -eq 1 ] || fail "echo lost bytes: $(cat "$T/echo.agent")"

# Plain HTTPS that is no LLM call, HTTP/1.1 and h2, several on one
# connection (keep-alive).
with_agent mock_curl --http1.1 "$(mock_url /healthz)" "$(mock_url /healthz)" >"$T/h1.out"
with_agent mock_curl "$(mock_url /healthz)" "$(mock_url /healthz)" >"$T/h2.out"
mock_curl "$(mock_url /healthz)" "$(mock_url /healthz)" >"$T/plain.out"
cmp "$T/plain.out" "$T/h1.out" && cmp "$T/plain.out" "$T/h2.out" ||
	fail "healthz output differs with the agent"

# Programs without TLS at all.
[ "$(with_agent sh -c 'echo hello; ls / >/dev/null' 2>&1)" = hello ] ||
	fail "sh under the agent printed something else"

kill "$spid" 2>/dev/null || true
wait "$spid" 2>/dev/null || true
[ ! -s "$T/out.jsonl" ] || fail "non-LLM traffic made records: $(head -c 300 "$T/out.jsonl")"
[ ! -e "$TOKENTAP_SPOOL" ] || [ -z "$(ls -A "$TOKENTAP_SPOOL")" ] || fail "spool files appeared"
[ ! -s "$T/server.err" ] || fail "server stderr: $(cat "$T/server.err")"
echo PASS
