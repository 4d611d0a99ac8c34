#!/usr/bin/env bash
# The probe's end-to-end cases on a loaded machine (issue #11): two
# processes burn both CPUs while the skip case runs SKIP_RUNS times
# (default 3; 50 for the issue's note) and the exec, curl and agent cases
# once.  Every record must be present and whole; the cases check that
# themselves.  A loaded machine once cut streams and lost records here: a
# process that allocated memory looked reborn (/proc/PID/stat read one
# field off) and its connections were ended under it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../mock/lib.sh"
. "$here/probe_clients/lib_probe.sh"

probe_preflight
SKIP_RUNS=${SKIP_RUNS:-3}
burners=()
for _ in 1 2; do
	# bounded, should this script be killed before its exit trap runs
	timeout 900 sh -c 'while :; do :; done' &
	burners+=($!)
done
on_exit "kill ${burners[*]} 2>/dev/null || true"

run() { # NAME SCRIPT [ENV...]
	local name=$1 script=$2 t0=$SECONDS
	shift 2
	if ! env "$@" bash "$here/$script" >"$MOCK_TMP/$name.log" 2>&1; then
		tail -n 20 "$MOCK_TMP/$name.log"
		fail "$name failed under load"
	fi
	echo "ok - $name under load ($((SECONDS - t0)) s)"
}

mock_start >/dev/null # only for MOCK_TMP: each case starts its own mock
for ((i = 1; i <= SKIP_RUNS; i++)); do
	run "skip-$i" test_probe_skip.sh
done
run exec test_probe_exec.sh RUNS=10
run curl test_probe_curl.sh
run agent test_probe_agent.sh
echo "ok - the probe's cases pass with both CPUs busy"
