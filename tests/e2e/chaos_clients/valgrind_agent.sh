#!/usr/bin/env bash
# make test-asan, part 3: curl under the normal agent under valgrind's
# memcheck (curl cannot run with a preloaded libasan): HTTP/1.1 and HTTP/2,
# a compressed response, a stream and a stream reset midway.  Any memcheck
# error or definite leak fails (exit 99 from valgrind); the records must be
# there.  Skips when valgrind is absent.
set -euo pipefail
. "$(dirname "$0")/chaos_lib.sh"
command -v valgrind >/dev/null || skip "valgrind not installed"
agent_setup
printf '%s' '{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"max_tokens":20,"messages":[{"role":"user","content":"valgrind"}]}' >"$T/s.json"
printf '%s' '{"model":"gpt-4o-mini","max_tokens":20,"messages":[{"role":"user","content":"valgrind"}]}' >"$T/n.json"
vg() { # curl ARGS...: under the agent under memcheck; curl's own failure is allowed
	local rc=0
	LD_PRELOAD=$AGENT_SO valgrind -q --error-exitcode=99 --leak-check=full \
		--errors-for-leak-kinds=definite --show-leak-kinds=definite \
		curl -sS --max-time 60 --cacert "$MOCK_CA" -H 'Content-Type: application/json' \
		-H "Authorization: Bearer $SENTINEL" -o /dev/null "$@" 2>>"$T/vg.err" || rc=$?
	echo "valgrind curl $*: exit $rc" >>"$T/vg.log"
	[ "$rc" = 99 ] && { cat "$T/vg.err"; fail "memcheck: curl $*"; }
	# valgrind runs the code it reads: an int3 that a uprobe put in libssl
	# (tokentap-probe, or any eBPF tool, attached node-wide) traps it.
	[ "$rc" = 133 ] && grep -q SIGTRAP "$T/vg.err" &&
		skip "SIGTRAP in libssl under valgrind: a uprobe is attached to it (a probe is running)"
	return 0
}
vg --http1.1 --compressed -d @"$T/n.json" "$(mock_url /enc/gzip/v1/chat/completions)"
vg --http2 -d @"$T/s.json" "$(mock_url /v1/chat/completions)" "$(mock_url /reset/200/v1/chat/completions)"
cat "$T/vg.log"
n=$(wc -l <"$T/out.jsonl")
[ "$n" -eq 3 ] || fail "$n records for 3 calls"
grep -q 'connection_closed' "$T/out.jsonl" || fail "the reset call's record lacks its error"
echo "valgrind: 3 calls under the agent, no memcheck error, no definite leak"
echo PASS
