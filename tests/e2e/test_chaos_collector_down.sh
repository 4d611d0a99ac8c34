#!/usr/bin/env bash
# Chaos: the collector is down for a while, then back.  Agent processes
# that run meanwhile (4 at a time, 4 threads x 10 calls) put their records
# in the spool; once tokentapd is up, four agent processes started at the
# same moment drain it concurrently.  Every record arrives exactly once:
# the database holds the same ids as TOKENTAP_OUT, and tokentapd counted
# no duplicate (no spool file was sent twice).
set -euo pipefail
. "$(dirname "$0")/chaos_clients/chaos_lib.sh"
[ -x "$CHAOS_CLIENT" ] || skip "chaos client not built ($CHAOS_CLIENT); run make"
agent_setup
export TOKENTAP_COLLECTOR=unix:$T/c.sock TOKENTAP_LOG=info
printf '%s' '{"model":"gpt-4o-mini","max_tokens":8,"messages":[{"role":"user","content":"chaos down"}]}' >"$T/req.json"
load() { # NAME THREADS CALLS
	with_agent "$CHAOS_CLIENT" --port "$MOCK_PORT" --ca "$MOCK_CA" --key "$SENTINEL" \
		--body "$T/req.json" --threads "$2" --calls "$3" >"$T/$1.out" 2>"$T/$1.err"
}
# Never a bare `wait`: the mock is a child of this shell too.
pids=()
wait_load() {
	local p
	for p in "${pids[@]}"; do wait "$p" || true; done
	pids=()
}

# Down: nothing listens on the socket.
for r in 1 2 3; do
	for k in 1 2 3 4; do
		load "down.$r.$k" 4 10 &
		pids+=($!)
	done
	wait_load
done
for f in "$T"/down.*.out "$T"/up.*.out; do
	[ -e "$f" ] || continue
	grep -q ' failed=0 ' "$f" || fail "calls failed: $f: $(cat "$f")"
done
down=$(wc -l <"$T/out.jsonl")
files=$(find "$T/spool" -type f | wc -l)
[ "$down" -eq 480 ] || fail "$down records for 480 calls"
spooled=$(cat "$T"/down.*.err | sed -n 's/.*exit: sent [0-9]*, spooled \([0-9]*\), dropped 0$/\1/p' | paste -sd+ | bc)
[ "$spooled" -eq 480 ] || fail "the agents spooled ${spooled:-?} of 480 records"
[ "$files" -gt 0 ] || fail "nothing in the spool"
echo "collector down: 480 calls, $files spool files"

# Back: four processes, calling for a while, drain at once (a shipper
# sends 8 spool files a round between its own batches).
col_start "$T"
start=$(date +%s%N)
for k in 1 2 3 4; do
	load "up.$k" 1 150 &
	pids+=($!)
done
wait_load
want=$(wc -l <"$T/out.jsonl")
got=$(col_wait_count "$want" 5)
# A drain cut short by a process's exit is finished by the next one.
for ((i = 0; i < 10 && got < want; i++)); do
	load "more.$i" 1 100
	want=$(wc -l <"$T/out.jsonl")
	got=$(col_wait_count "$want" 2)
done
ms=$((($(date +%s%N) - start) / 1000000))
echo "collector back: $got of $want records after ${ms} ms, $i more drain runs"
dups=$(curl -sS --unix-socket "$COL_SOCK" http://x/metrics |
	sed -n 's/^tokentap_ingested_records_total{outcome="duplicate"} //p')
col_stop
db_ids "$COL_DB" | sort >"$T/db.ids"
out_ids "$T/out.jsonl" | sort >"$T/out.ids"
cmp -s "$T/db.ids" "$T/out.ids" || fail "database and TOKENTAP_OUT differ: $(comm -3 "$T/db.ids" "$T/out.ids" | wc -l) ids"
[ "${dups:-x}" = 0 ] || fail "tokentapd counted ${dups:-no} duplicates: a spool file was sent twice"
left=$(find "$T/spool" -type f | wc -l)
[ "$left" -eq 0 ] || fail "$left files left in the spool"
check_no_sentinel "$T/out.jsonl" "$COL_DB" "$T/c.out" "$T/c.err" "$T"/*.err
echo "chaos collector down: $want records, all in the database once, 0 duplicates, spool empty"
echo PASS
