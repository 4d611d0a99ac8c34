#!/usr/bin/env bash
# Chaos: kill -9 of the collector under sustained load, again and again.
# Agent processes (3 at a time, 4 threads each, kept-alive calls) run in a
# loop against tokentapd on a Unix socket while tokentapd is killed with
# SIGKILL and restarted on the same database KILLS times.  Afterwards every
# record any agent wrote (TOKENTAP_OUT) is in the database exactly once:
# what was acknowledged survived the kills, what was not waited in the
# spool and was delivered later; no agent dropped a record and none
# crashed.  CHAOS_FULL=0: 3 kills.
set -euo pipefail
. "$(dirname "$0")/chaos_clients/chaos_lib.sh"
[ -x "$CHAOS_CLIENT" ] || skip "chaos client not built ($CHAOS_CLIENT); run make"
agent_setup
if [ "${CHAOS_FULL:-1}" = 0 ]; then KILLS=3; else KILLS=6; fi
col_start "$T"
export TOKENTAP_COLLECTOR=unix:$COL_SOCK TOKENTAP_LOG=info
printf '%s' '{"model":"gpt-4o-mini","max_tokens":8,"messages":[{"role":"user","content":"chaos kill"}]}' >"$T/req.json"

# The load: rounds of 3 concurrent agent processes until told to stop.
(
	r=0
	while [ ! -e "$T/stop" ]; do
		r=$((r + 1))
		for k in 1 2 3; do
			with_agent "$CHAOS_CLIENT" --port "$MOCK_PORT" --ca "$MOCK_CA" --key "$SENTINEL" \
				--body "$T/req.json" --threads 4 --calls 10 \
				>"$T/load.$r.$k.out" 2>"$T/load.$r.$k.err" &
		done
		wait # the subshell's own children only
	done
	echo "$r" >"$T/rounds"
) &
LOAD=$!
on_exit "touch $T/stop; wait $LOAD 2>/dev/null"

for ((i = 1; i <= KILLS; i++)); do
	sleep 0.8
	n=$(col_count || echo '?')
	col_kill9
	echo "kill $i: tokentapd had $n records"
	sleep 0.4   # down for a while: agents spool meanwhile
	col_start "$T"
done
sleep 0.5
touch "$T/stop"
wait "$LOAD"
echo "load: $(cat "$T/rounds") rounds of 3 processes x 40 calls"

# Every load process: all calls answered, nothing dropped, no crash.
bad=0
for f in "$T"/load.*.out; do
	grep -q ' failed=0 ' "$f" || { echo "$f: $(cat "$f")"; bad=1; }
done
[ "$bad" = 0 ] || fail "a load process failed"
if grep -h 'dropped [1-9]\|still queued\|signal\|Segmentation' "$T"/load.*.err; then
	fail "an agent dropped records or crashed"
fi
calls=$(cat "$T"/load.*.out | sed -n 's/^calls=\([0-9]*\) .*/\1/p' | paste -sd+ | bc)
recs=$(wc -l <"$T/out.jsonl")
[ "$recs" -eq "$calls" ] || fail "$recs records in TOKENTAP_OUT for $calls calls"

# What the spool holds goes out with the next agent process: run small
# ones (each adds one call) until the collector has every record.
for ((i = 0; i < 30; i++)); do
	with_agent "$CHAOS_CLIENT" --port "$MOCK_PORT" --ca "$MOCK_CA" --key "$SENTINEL" \
		--body "$T/req.json" >/dev/null 2>>"$T/drain.err" || fail "drain client failed"
	want=$(wc -l <"$T/out.jsonl")
	got=$(col_wait_count "$want" 2)
	[ "$got" -ge "$want" ] && break
done
echo "after $((i + 1)) drain runs: collector $got, agents wrote $want"
col_stop
db_ids "$COL_DB" | sort >"$T/db.ids"
out_ids "$T/out.jsonl" | sort >"$T/out.ids"
[ "$(sort -u "$T/out.ids" | wc -l)" -eq "$want" ] || fail "duplicate ids in TOKENTAP_OUT"
if ! cmp -s "$T/db.ids" "$T/out.ids"; then
	echo "missing from the database: $(comm -13 "$T/db.ids" "$T/out.ids" | wc -l)"
	echo "in the database only: $(comm -23 "$T/db.ids" "$T/out.ids" | wc -l)"
	fail "the database and the agents' records differ"
fi
left=$(find "$T/spool" -type f 2>/dev/null | wc -l)
check_no_sentinel "$T/out.jsonl" "$COL_DB" "$COL_DB-wal" "$T/c.out" "$T/c.err" "$T"/load.*.err
echo "chaos collector kill: $KILLS kills under load, $want records, all in the database once, spool files left: $left"
echo PASS
