# shellcheck shell=bash
# Shared set-up for the agent's end-to-end tests (tests/e2e/test_agent_*.sh).
#
#   . "$(dirname "$0")/clients/agent_lib.sh"
#   agent_setup            # mock running, agent env ready, $T scratch dir
#   with_agent CMD...      # run CMD under LD_PRELOAD=libtokentap.so
#   check_records ...      # tests/e2e/clients/check_records.py
#
# The records go to $T/out.jsonl (TOKENTAP_OUT) with the collector off,
# unless a test says otherwise.  Everything a test starts is stopped at
# exit through lib.sh's on_exit.

AGENT_E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$AGENT_E2E_DIR/../mock/lib.sh"
TOP=$TT_TOP
BUILD=${BUILD:-$TOP/build}
AGENT_SO=$BUILD/libtokentap.so
CLIENTS=$BUILD/tests/clients
CHECK="$TT_PY $AGENT_E2E_DIR/clients/check_records.py"
SENTINEL=sk-SENTINEL-e2e-7c1f0d2a9b8e4f6a

agent_setup() {
	[ -f "$AGENT_SO" ] || skip "agent not built ($AGENT_SO); run make"
	command -v curl >/dev/null || skip "curl not installed"
	mock_start "$@" || fail "mock provider did not start"
	T=$MOCK_TMP/agent
	mkdir -p "$T"
	export TOKENTAP_COLLECTOR=off TOKENTAP_OUT=$T/out.jsonl
	export TOKENTAP_SPOOL=$T/spool TOKENTAP_LOG=${TOKENTAP_LOG:-warn}
	unset TOKENTAP_TASK TOKENTAP_TENANT TOKENTAP_FEATURE
	: >"$T/out.jsonl"
}

with_agent() {
	LD_PRELOAD=$AGENT_SO${LD_PRELOAD:+:$LD_PRELOAD} "$@"
}

# No file the agent wrote, no log line, contains the API key.
check_no_sentinel() {
	local f
	for f in "$@"; do
		[ -e "$f" ] || continue
		if grep -rqa -- "$SENTINEL" "$f"; then
			fail "the API key leaked into $f"
		fi
		if grep -rqai -- "authorization" "$f"; then
			fail "an Authorization header leaked into $f"
		fi
	done
}

# The mock logs a response just after sending it: wait (bounded) until it
# has logged at least N.
mock_wait_count() {
	local i
	for ((i = 0; i < 100; i++)); do
		[ "$(mock_log_count)" -ge "$1" ] && return 0
		sleep 0.05
	done
	return 1
}
