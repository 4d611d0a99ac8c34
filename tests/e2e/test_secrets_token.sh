#!/usr/bin/env bash
# The collector's doors: its Unix socket is not open to other users, TCP
# listens on loopback unless --allow-remote, and with --token-file a TCP
# listener wants "Authorization: Bearer <token>".  The agent sends it from
# TOKENTAP_TOKEN_FILE.  Without it (or with a wrong one) tokentapd answers
# 401 and the agent keeps the records in its spool, not dropping them; with
# the right one they all arrive, the spooled ones too.  The token appears
# in no record, spool file, log or database file.
set -euo pipefail
. "$(dirname "$0")/chaos_clients/chaos_lib.sh"
[ -x "$CHAOS_CLIENT" ] || skip "chaos client not built ($CHAOS_CLIENT); run make"
agent_setup
TOKEN="tok-SENTINEL-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
printf '%s\n' "$TOKEN" >"$T/token"
printf '%s\n' "tok-WRONG-0123456789abcdef" >"$T/wrong"
chmod 600 "$T/token" "$T/wrong"

# Loopback only by default.
if "$TOKENTAPD" --listen http://0.0.0.0:0 --db "$T/x.db" >"$T/any.out" 2>&1 </dev/null & then
	p=$!
	for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$p" 2>/dev/null; then
		kill "$p"; wait "$p" || true
		fail "tokentapd listens on 0.0.0.0 without --allow-remote"
	fi
	wait "$p" && fail "tokentapd exited 0 for 0.0.0.0 without --allow-remote" || true
fi
echo "0.0.0.0 without --allow-remote: $(head -n 1 "$T/any.out")"

col_start "$T" --listen http://127.0.0.1:0 --token-file "$T/token"
mode=$(stat -c %a "$COL_SOCK")
case $mode in 600 | 660 | 700 | 770) ;; *) fail "Unix socket mode $mode: open to other users" ;; esac
echo "unix socket mode $mode; TCP port $COL_PORT"
# The token is asked for on TCP, not on the socket (file permissions guard it).
st=$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$COL_PORT/v1/usage?by=task")
[ "$st" = 401 ] || fail "TCP without a token answered $st"

export TOKENTAP_COLLECTOR=http://127.0.0.1:$COL_PORT TOKENTAP_LOG=info
printf '%s' '{"model":"gpt-4o-mini","max_tokens":8,"messages":[{"role":"user","content":"token"}]}' >"$T/req.json"
run() { # NAME [TOKEN_FILE]
	local name=$1
	if [ $# -gt 1 ]; then export TOKENTAP_TOKEN_FILE=$2; else unset TOKENTAP_TOKEN_FILE; fi
	with_agent "$CHAOS_CLIENT" --port "$MOCK_PORT" --ca "$MOCK_CA" --key "$SENTINEL" \
		--body "$T/req.json" --threads 2 --calls "${CALLS:-5}" >"$T/$name.out" 2>"$T/$name.err" ||
		fail "$name: client failed"
	unset TOKENTAP_TOKEN_FILE
}
run none
run wrong "$T/wrong"
[ "$(col_count)" = 0 ] || fail "records accepted without the right token"
grep -h 'dropped [1-9]' "$T/none.err" "$T/wrong.err" && fail "records dropped on a 401"
spooled=$(find "$T/spool" -type f -name '*.jsonl' | wc -l)
[ "$spooled" -gt 0 ] || fail "nothing kept in the spool after a 401"
cp -r "$T/spool" "$T/spool.copy"
echo "without / with a wrong token: 0 accepted, $spooled spool files, nothing dropped"

CALLS=40 run right "$T/token"
want=$(wc -l <"$T/out.jsonl")
got=$(col_wait_count "$want" 20)
[ "$got" -eq "$want" ] || fail "with the token: collector has $got of $want records"
grep -q 'dropped 0' "$T/right.err" || fail "right: $(cat "$T/right.err")"
col_stop
for f in "$T/out.jsonl" "$T/spool.copy" "$T/spool" "$T"/*.err "$T/c.out" "$COL_DB" "$COL_DB-wal"; do
	[ -e "$f" ] || continue
	grep -rqaF -- "$TOKEN" "$f" && fail "the collector token leaked into $f"
done
check_no_sentinel "$T/out.jsonl" "$T"/*.err "$T/c.out" "$COL_DB"
echo "token: $want records delivered with TOKENTAP_TOKEN_FILE, the earlier ones from the spool"
echo PASS
