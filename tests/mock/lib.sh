# shellcheck shell=bash
# Helpers for tokentap's end-to-end tests.  Source it from a test script:
#
#   . "$(cd "$(dirname "$0")" && pwd)/../mock/lib.sh"
#   mock_start                # exports MOCK_PORT MOCK_CA MOCK_LOG MOCK_PID ...
#   mock_curl "$(mock_url /v1/chat/completions)" -d @req.json
#   on_exit "rm -f $tmpfile"  # instead of your own `trap ... EXIT`
#
# Functions:
#   skip "reason"          print "SKIP: reason" and exit 77
#   fail "reason"          print "FAIL: reason" to stderr and exit 1
#   on_exit CMD            run CMD (eval'd) when the script exits, latest
#                          first; lib.sh owns the EXIT/INT/TERM traps
#   fixtures_dir           print the wire-fixture directory (the checkout's
#                          ../shared/fixtures/wire, or $TOKENTAP_FIXTURES),
#                          or nothing when absent
#   mock_start [ARGS...]   start tests/mock/mock_provider.py on 127.0.0.1 with
#                          a free port, a fresh temp dir, a log and body copies;
#                          ARGS go to the mock (e.g. --no-gzip, --pieces 20).
#                          Waits up to 10 s for it to listen; exports
#                          MOCK_PORT, MOCK_CA (CA file for --cacert,
#                          SSL_CERT_FILE, NODE_EXTRA_CA_CERTS), MOCK_LOG (JSON
#                          lines), MOCK_PID, MOCK_TMP (scratch dir, removed at
#                          exit), MOCK_URL (https://127.0.0.1:PORT).  Stops the
#                          mock at exit.  Returns 1 when it does not start.
#   mock_stop              SIGTERM the mock, wait (SIGKILL after 5 s), remove
#                          MOCK_TMP unless MOCK_KEEP=1.  Idempotent.
#   mock_url PATH          print $MOCK_URL$PATH
#   mock_curl ARGS...      curl -sS --cacert $MOCK_CA --max-time 30 ARGS...
#   mock_log_last [FIELD]  print the last log line, or one field of it
#   mock_log_count         print how many responses the mock has logged
#   mock_wait_log N        wait (up to 10 s) until the log has N lines: the
#                          mock writes a response's line just after its last
#                          byte, so a client can finish a moment before it.
#                          Typical: n=$(mock_log_count); <request>;
#                          mock_wait_log $((n + 1)); mock_log_last ...
#   mock_expect BODY PATH [STATUS]
#                          run expect.py on a body file: the figures a record
#                          of this exchange must carry (one JSON object)
#   json_get FILE|- EXPR   print a value of a JSON document; EXPR is a Python
#                          expression over `d` (e.g. 'd["usage"]["prompt_tokens"]')

TT_PY=/usr/bin/python3
TT_MOCK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TT_TOP=$(git -C "$TT_MOCK_DIR" rev-parse --show-toplevel 2>/dev/null ||
	(cd "$TT_MOCK_DIR/../.." && pwd))

skip() {
	echo "SKIP: $*"
	exit 77
}

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

_tt_exit_cmds=()

on_exit() {
	_tt_exit_cmds+=("$1")
}

_tt_cleanup() {
	local rc=$? i
	trap - EXIT
	for ((i = ${#_tt_exit_cmds[@]} - 1; i >= 0; i--)); do
		eval "${_tt_exit_cmds[i]}" || true
	done
	exit "$rc"
}
trap _tt_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fixtures_dir() {
	local d=${TOKENTAP_FIXTURES:-$TT_TOP/../shared/fixtures/wire}
	[ -f "$d/MANIFEST.tsv" ] && (cd "$d" && pwd)
	return 0
}

mock_start() {
	[ -x "$TT_PY" ] || { echo "mock_start: $TT_PY not found" >&2; return 1; }
	MOCK_TMP=$(mktemp -d "${TMPDIR:-/tmp}/tt-mock.XXXXXX")
	MOCK_LOG=$MOCK_TMP/mock.log
	: >"$MOCK_LOG"
	"$TT_PY" "$TT_MOCK_DIR/mock_provider.py" --port 0 \
		--ready-file "$MOCK_TMP/ready.json" --log "$MOCK_LOG" \
		--log-dir "$MOCK_TMP/bodies" --cert-dir "$MOCK_TMP/tls" \
		--max-seconds "${MOCK_MAX_SECONDS:-300}" "$@" \
		</dev/null >"$MOCK_TMP/mock.out" 2>&1 &
	MOCK_PID=$!
	on_exit mock_stop
	local i
	for ((i = 0; i < 100; i++)); do
		[ -s "$MOCK_TMP/ready.json" ] && break
		if ! kill -0 "$MOCK_PID" 2>/dev/null; then
			echo "mock_start: the mock exited:" >&2
			cat "$MOCK_TMP/mock.out" >&2
			return 1
		fi
		sleep 0.1
	done
	if [ ! -s "$MOCK_TMP/ready.json" ]; then
		echo "mock_start: not listening after 10 s" >&2
		cat "$MOCK_TMP/mock.out" >&2
		return 1
	fi
	MOCK_PORT=$(json_get "$MOCK_TMP/ready.json" 'd["port"]')
	MOCK_CA=$(json_get "$MOCK_TMP/ready.json" 'd.get("ca", "")')
	MOCK_URL=$(json_get "$MOCK_TMP/ready.json" 'd["scheme"]')://127.0.0.1:$MOCK_PORT
	export MOCK_PORT MOCK_CA MOCK_LOG MOCK_PID MOCK_TMP MOCK_URL
}

mock_stop() {
	local i
	if [ -n "${MOCK_PID:-}" ] && kill -0 "$MOCK_PID" 2>/dev/null; then
		kill -TERM "$MOCK_PID" 2>/dev/null
		for ((i = 0; i < 50; i++)); do
			kill -0 "$MOCK_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$MOCK_PID" 2>/dev/null
		wait "$MOCK_PID" 2>/dev/null
	fi
	MOCK_PID=
	if [ -n "${MOCK_TMP:-}" ] && [ "${MOCK_KEEP:-0}" != 1 ]; then
		rm -rf "$MOCK_TMP"
	fi
	MOCK_TMP=
	return 0
}

mock_url() {
	printf '%s%s\n' "$MOCK_URL" "$1"
}

mock_curl() {
	if [ -n "${MOCK_CA:-}" ]; then
		curl -sS --cacert "$MOCK_CA" --max-time 30 "$@"
	else
		curl -sS --max-time 30 "$@"
	fi
}

mock_log_last() {
	if [ $# -eq 0 ]; then
		tail -n 1 "$MOCK_LOG"
	else
		tail -n 1 "$MOCK_LOG" | json_get - "d[\"$1\"]"
	fi
}

mock_log_count() {
	wc -l <"$MOCK_LOG" | tr -d ' '
}

mock_wait_log() {
	local i
	for ((i = 0; i < 100; i++)); do
		[ "$(mock_log_count)" -ge "$1" ] && return 0
		sleep 0.1
	done
	echo "mock_wait_log: fewer than $1 log lines after 10 s" >&2
	return 1
}

mock_expect() {
	"$TT_PY" "$TT_MOCK_DIR/expect.py" --path "$2" --status "${3:-200}" "$1"
}

json_get() {
	"$TT_PY" -c '
import json, sys
src = sys.argv[1]
d = json.load(sys.stdin if src == "-" else open(src))
v = eval(sys.argv[2], {"d": d})
print(json.dumps(v) if isinstance(v, (dict, list, bool)) or v is None else v)
' "$1" "$2"
}
