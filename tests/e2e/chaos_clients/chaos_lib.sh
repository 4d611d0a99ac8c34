# shellcheck shell=bash
# Shared set-up for the chaos and secret tests (tests/e2e/test_chaos_*.sh,
# test_secrets_*.sh), on top of the agent's (agent_lib.sh, mock/lib.sh).
#
#   . "$(dirname "$0")/chaos_clients/chaos_lib.sh"
#   col_start DIR [ARGS...]  start tokentapd (TOKENTAPD_BIN, else the built
#                            one) on unix:DIR/c.sock with DIR/c.db; waits for
#                            "ready"; sets COL_PID, COL_SOCK, COL_DB, COL_PORT
#                            (when ARGS listen on TCP); stopped at exit
#   col_kill9                SIGKILL it (no clean-up of any kind)
#   col_stop                 SIGTERM it and wait; fails the test when a
#                            sanitized daemon reported an error
#   col_count                records the running daemon holds (/healthz)
#   col_wait_count N [SECS]  wait until it holds at least N (default 20 s)
#   db_ids DB                print the id of every record in DB, one a line
#   out_ids FILE             print the id of every record in a JSON Lines file
#
# A sanitized tokentapd (make test-asan) writes its reports to
# $TT_SAN_LOGS/tokentapd.PID; col_stop and the exit hook fail on any.
# TT_AGENT_PRELOAD (make test-asan) replaces the agent in with_agent (not
# in with_agent_curl).

CHAOS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$CHAOS_DIR/../clients/agent_lib.sh"
# curl under the agent.  Never under a preloaded libasan: curl itself
# then hangs at start (setlocale's lock), agent or not.
with_agent_curl() {
	LD_PRELOAD=$AGENT_SO${LD_PRELOAD:+:$LD_PRELOAD} "$@"
}
# make test-asan: libasan and the sanitized agent instead of the agent.
if [ -n "${TT_AGENT_PRELOAD:-}" ]; then
	with_agent() {
		LD_PRELOAD=$TT_AGENT_PRELOAD "$@"
	}
fi
TOKENTAPD=${TOKENTAPD_BIN:-$BUILD/tokentapd}
CHAOS_CLIENT=$BUILD/tests/chaos_clients/chaos_client
COL_PID=

col_start() {
	local dir=$1 i
	shift
	[ -x "$TOKENTAPD" ] || skip "tokentapd not built ($TOKENTAPD); run make"
	COL_SOCK=$dir/c.sock COL_DB=${COL_DB:-$dir/c.db}
	: >"$dir/c.out"
	"$TOKENTAPD" --listen "unix:$COL_SOCK" --db "$COL_DB" "$@" \
		>"$dir/c.out" 2>>"$dir/c.err" </dev/null &
	COL_PID=$!
	if [ -z "${_col_hooked:-}" ]; then
		on_exit col_exit
		_col_hooked=1
	fi
	for ((i = 0; i < 150; i++)); do
		grep -q '^tokentapd: ready' "$dir/c.out" && break
		kill -0 "$COL_PID" 2>/dev/null || break
		sleep 0.1
	done
	grep -q '^tokentapd: ready' "$dir/c.out" ||
		fail "tokentapd did not start: $(cat "$dir/c.err")"
	COL_PORT=$(sed -n 's|^tokentapd: listening on http://127.0.0.1:\([0-9]*\)$|\1|p' "$dir/c.out")
}

col_kill9() {
	[ -n "$COL_PID" ] || return 0
	kill -9 "$COL_PID" 2>/dev/null || true
	wait "$COL_PID" 2>/dev/null || true
	COL_PID=
	return 0
}

col_san_check() {
	local f
	[ -n "${TT_SAN_LOGS:-}" ] || return 0
	for f in "$TT_SAN_LOGS"/tokentapd.*; do
		[ -s "$f" ] || continue
		echo "sanitizer report from tokentapd: $f" >&2
		head -n 40 "$f" >&2
		return 1
	done
	return 0
}

col_stop() {
	local i
	if [ -n "$COL_PID" ]; then
		kill -TERM "$COL_PID" 2>/dev/null || true
		for ((i = 0; i < 100; i++)); do
			kill -0 "$COL_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$COL_PID" 2>/dev/null || true
		wait "$COL_PID" 2>/dev/null || true
		COL_PID=
	fi
	col_san_check || fail "sanitizer error in tokentapd"
}

col_exit() {
	col_kill9
	col_san_check || { echo "FAIL: sanitizer error in tokentapd" >&2; exit 1; }
}

col_count() {
	curl -sS --max-time 10 --unix-socket "$COL_SOCK" http://x/healthz |
		json_get - 'd["records"]'
}

col_wait_count() {
	local want=$1 secs=${2:-20} i n=0
	for ((i = 0; i < secs * 10; i++)); do
		n=$(col_count 2>/dev/null || echo 0)
		[ "$n" -ge "$want" ] && break
		sleep 0.1
	done
	echo "$n"
}

db_ids() {
	"$TT_PY" - "$1" <<'PY'
import sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
for (i,) in db.execute("SELECT id FROM records"):
    print(i.hex() if isinstance(i, bytes) and len(i) == 16 else
          (i.decode() if isinstance(i, bytes) else i))
PY
}

out_ids() {
	"$TT_PY" -c 'import json, sys
for l in open(sys.argv[1]):
    print(json.loads(l)["id"])' "$1"
}
