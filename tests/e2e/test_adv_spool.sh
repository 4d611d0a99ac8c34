#!/usr/bin/env bash
# Adversarial: the agent's spool and TOKENTAP_OUT in folders other users
# can write to, and a collector that accepts connections but never answers.
#
#  1. A shared (1777) spool: another user (nobody, when this runs as root)
#     plants a file of forged records, a symlink to a file only root may
#     read, and a FIFO.  The victim's agent delivers its own records and
#     nothing else; the planted things stay where they are; no call waits.
#  2. A shared spool that is not sticky is not used (said once).
#  3. TOKENTAP_OUT at a FIFO nobody reads, at a symlink planted towards a
#     file of the victim, at a file of another user: refused at once (said
#     once), the program's output unchanged, nothing written through them.
#  4. A collector that accepts and never answers (monitor and enforce
#     mode): the program exits within TOKENTAP_EXIT_TIMEOUT_MS + 0.5 s
#     (+ the lease timeout its call waited, in enforce mode), and its
#     records are in the spool.
# Loopback and local files only; every case is bounded to a few seconds.
# ADV_CASES="1 3" runs some of the cases only.
set -euo pipefail
. "$(dirname "$0")/clients/agent_lib.sh"
agent_setup
command -v timeout >/dev/null || skip "timeout(1) not installed"
printf '%s' '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"adversary"}]}' >"$T/req.json"

# Another user plants the files when we are root; else we plant them
# ourselves (the ownership cases are then left out).
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	OTHER="setpriv --reuid=65534 --regid=65534 --clear-groups"
else
	OTHER=
	echo "not root: files are planted by this user; the other-user cases are skipped"
fi
plant() { $OTHER "$@"; }

SHARED=$(mktemp -d "${TMPDIR:-/tmp}/tt-adv.XXXXXX")
on_exit "rm -rf '$SHARED'"
chmod 1777 "$SHARED"

# One call under the agent, at most LIMIT seconds (a hang fails the
# test); stdout to $T/NAME.out, stderr to $T/NAME.err, time in ms to
# $T/NAME.ms.
call() { # NAME LIMIT [ENV=VALUE...]
	local name=$1 limit=$2 t0 rc=0
	shift 2
	t0=$(date +%s%N)
	timeout "$limit" env "$@" LD_PRELOAD="$AGENT_SO" curl -sS --cacert "$MOCK_CA" \
		--max-time 30 --http1.1 -H "Authorization: Bearer $SENTINEL" \
		-H 'Content-Type: application/json' --data-binary @"$T/req.json" \
		"$(mock_url /v1/chat/completions)" >"$T/$name.out" 2>"$T/$name.err" || rc=$?
	echo $((($(date +%s%N) - t0) / 1000000)) >"$T/$name.ms"
	[ "$rc" -ne 124 ] || fail "$name: the program hung (killed after ${limit} s): $(cat "$T/$name.err")"
	[ "$rc" -eq 0 ] || fail "$name: curl failed ($rc): $(cat "$T/$name.err")"
	grep -q '"choices"' "$T/$name.out" || fail "$name: the program's output changed: $(head -c 300 "$T/$name.out")"
}
ids() { "$TT_PY" -c 'import json,sys
for f in sys.argv[1:]:
    for l in open(f):
        l = l.strip()
        if l: print(json.loads(l)["id"])' "$@"; }
ms() { cat "$T/$1.ms"; }
case_on() { [[ " ${ADV_CASES:-1 2 3 4} " == *" $1 "* ]]; }

# ---- 1. a shared spool with planted things ----
if case_on 1; then
SPOOL=$SHARED/spool
mkdir "$SPOOL"
chmod 1777 "$SPOOL"
FORGED=f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0
SECRET=5ec5ec5ec5ec5ec5ec5ec5ec5ec5ec5e
printf '{"id":"%s","secret":true}\n' "$SECRET" >"$T/root-only.jsonl"
chmod 600 "$T/root-only.jsonl"
# Forged records are another user's only: a file of ours is ours to send.
[ -z "$OTHER" ] ||
	plant sh -c "printf '{\"id\":\"$FORGED\",\"tenant\":\"acme\",\"model\":\"gpt-4o\",\"input_tokens\":5000000}\n' >'$SPOOL/1-1-1.jsonl'"
plant ln -s "$T/root-only.jsonl" "$SPOOL/2-1-1.jsonl"
plant mkfifo "$SPOOL/3-1-1.jsonl"
if [ -n "$OTHER" ]; then
	[ "$(stat -c %u "$SPOOL/1-1-1.jsonl")" = 65534 ] || fail "could not plant as another user"
fi

SOCK=$T/c.sock
RECEIVED=$T/received.jsonl
: >"$RECEIVED"
# Collector down: our record goes to the shared spool.
call down 10 TOKENTAP_COLLECTOR="unix:$SOCK" TOKENTAP_SPOOL="$SPOOL" TOKENTAP_OUT= TOKENTAP_LOG=info
grep -q 'spooled 1, dropped 0' "$T/down.err" || fail "record not spooled: $(cat "$T/down.err")"
# Collector up: the next program delivers the spool.
"$TT_PY" "$AGENT_E2E_DIR/clients/recorder.py" "$SOCK" "$RECEIVED" >"$T/recorder.log" 2>&1 &
rpid=$!
on_exit "kill $rpid 2>/dev/null || true"
for _ in $(seq 100); do
	curl -s --unix-socket "$SOCK" -o /dev/null http://x/healthz && break
	sleep 0.1
done
call up 10 TOKENTAP_COLLECTOR="unix:$SOCK" TOKENTAP_SPOOL="$SPOOL" TOKENTAP_OUT= TOKENTAP_LOG=info
for _ in $(seq 50); do
	[ "$(ids "$RECEIVED" | wc -l)" -ge 2 ] && break
	sleep 0.1
done
got=$(ids "$RECEIVED" | sort)
[ "$(echo "$got" | wc -l)" -eq 2 ] || fail "the collector got $(echo "$got" | wc -l) records, want our 2: $got"
! grep -q "$FORGED" "$RECEIVED" || fail "forged records planted by another user were shipped"
! grep -q "$SECRET" "$RECEIVED" || fail "a root-only file linked from the spool was read and shipped"
{ [ -z "$OTHER" ] || [ -f "$SPOOL/1-1-1.jsonl" ]; } && [ -L "$SPOOL/2-1-1.jsonl" ] && [ -p "$SPOOL/3-1-1.jsonl" ] ||
	fail "planted files were removed or moved: $(ls -la "$SPOOL")"
grep -q "left alone" "$T/up.err" || fail "nothing said about the planted files: $(cat "$T/up.err")"
[ "$(grep -c "left alone" "$T/up.err")" -eq 1 ] || fail "said more than once: $(cat "$T/up.err")"
[ "$(ms up)" -lt 5000 ] || fail "the program took $(ms up) ms next to a FIFO in the spool"
echo "shared spool: our 2 records delivered, forged/linked/FIFO left alone ($(ms up) ms)"
kill "$rpid" 2>/dev/null || true
fi

# ---- 2. a shared spool that is not sticky ----
if case_on 2; then
OPEN=$SHARED/open
mkdir "$OPEN"
chmod 0777 "$OPEN"
call open 10 TOKENTAP_COLLECTOR="unix:$T/nobody.sock" TOKENTAP_SPOOL="$OPEN" TOKENTAP_OUT= TOKENTAP_LOG=info
grep -q "not sticky" "$T/open.err" || fail "nothing said about a spool others may swap files in: $(cat "$T/open.err")"
[ -z "$(ls -A "$OPEN")" ] || fail "records written to a folder that is not sticky: $(ls -A "$OPEN")"
grep -q 'dropped 1' "$T/open.err" || fail "the lost record is not counted: $(cat "$T/open.err")"
echo "not sticky: not used, the record counted dropped"
fi

# ---- 3. TOKENTAP_OUT in a shared folder ----
if case_on 3; then
plant mkfifo "$SHARED/out.fifo"
call fifo 10 TOKENTAP_COLLECTOR=off TOKENTAP_OUT="$SHARED/out.fifo"
grep -q "TOKENTAP_OUT .*FIFO" "$T/fifo.err" || fail "nothing said about a FIFO: $(cat "$T/fifo.err")"
[ "$(grep -c "TOKENTAP_OUT" "$T/fifo.err")" -eq 1 ] || fail "said more than once: $(cat "$T/fifo.err")"
echo "TOKENTAP_OUT at a FIFO nobody reads: refused in $(ms fifo) ms"

: >"$T/victim.jsonl"
chmod 600 "$T/victim.jsonl"
plant ln -s "$T/victim.jsonl" "$SHARED/out.link"
call link 10 TOKENTAP_COLLECTOR=off TOKENTAP_OUT="$SHARED/out.link"
[ ! -s "$T/victim.jsonl" ] || fail "records appended through a symlink"
grep -q "TOKENTAP_OUT .*symbolic link" "$T/link.err" || fail "nothing said about a symlink: $(cat "$T/link.err")"
echo "TOKENTAP_OUT at a symlink: not followed"

if [ -n "$OTHER" ]; then
	plant sh -c "umask 0; : >'$SHARED/out.theirs'"
	call theirs 10 TOKENTAP_COLLECTOR=off TOKENTAP_OUT="$SHARED/out.theirs"
	[ ! -s "$SHARED/out.theirs" ] || fail "records appended to another user's file in a shared folder"
	grep -q "another user" "$T/theirs.err" || fail "nothing said: $(cat "$T/theirs.err")"
	echo "TOKENTAP_OUT at another user's file: refused"
fi
call mine 10 TOKENTAP_COLLECTOR=off TOKENTAP_OUT="$SHARED/out.mine"
[ "$(ids "$SHARED/out.mine" | wc -l)" -eq 1 ] || fail "our own file in the shared folder not written"
[ ! -s "$T/mine.err" ] || fail "stderr for a good out file: $(cat "$T/mine.err")"
fi

# ---- 4. a collector that accepts and never answers ----
if case_on 4; then
"$TT_PY" - "$T/silent.port" >"$T/silent.log" 2>&1 <<'PY' &
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(64)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1]))
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
held = []
s.settimeout(60)
while True:
    c, _ = s.accept()
    held.append(c)  # read nothing, answer nothing, close nothing
PY
spid=$!
on_exit "kill $spid 2>/dev/null || true"
for _ in $(seq 50); do [ -s "$T/silent.port" ] && break; sleep 0.1; done
SILENT=http://127.0.0.1:$(cat "$T/silent.port")
EXIT_MS=300 LEASE_MS=300 GRACE_MS=500 SLACK_MS=700
call base 10 TOKENTAP_COLLECTOR=off TOKENTAP_OUT=
base=$(ms base)
for mode in monitor enforce; do
	S=$T/spool.$mode
	call "$mode" 10 TOKENTAP_COLLECTOR="$SILENT" TOKENTAP_SPOOL="$S" TOKENTAP_OUT="$T/$mode.jsonl" \
		TOKENTAP_MODE=$mode TOKENTAP_EXIT_TIMEOUT_MS=$EXIT_MS TOKENTAP_LEASE_TIMEOUT_MS=$LEASE_MS \
		TOKENTAP_LOG=info
	took=$(ms "$mode")
	bound=$((base + EXIT_MS + GRACE_MS + SLACK_MS))
	[ "$mode" = monitor ] || bound=$((bound + LEASE_MS))
	echo "silent collector, $mode: exit after $took ms (the program alone: $base ms; bound $bound)"
	[ "$took" -le "$bound" ] || fail "$mode: $took ms with a silent collector, bound $bound"
	want=$(ids "$T/$mode.jsonl")
	[ -n "$want" ] || fail "$mode: no record made"
	have=$(cat "$S"/*.jsonl 2>/dev/null | ids /dev/stdin || true)
	[ "$have" = "$want" ] || fail "$mode: the spool holds [$have], want [$want]: $(cat "$T/$mode.err")"
	grep -q 'spooled 1, dropped 0' "$T/$mode.err" || fail "$mode: $(cat "$T/$mode.err")"
done
fi
check_no_sentinel "$T"/*.err "$SHARED" "$T"/spool* "$T"/received.jsonl
echo PASS
