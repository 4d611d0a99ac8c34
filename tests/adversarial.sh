#!/usr/bin/env bash
# Every adversarial case of the collector and the agent (issue 14), against
# what is built: each tests/e2e/test_adv_*.sh runs in turn (make test runs
# them too).  Each case is bounded to seconds and uses loopback and Unix
# sockets only.
#
#   tests/adversarial.sh            all of them
#   tests/adversarial.sh budget     only test_adv_budget.sh
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
pass=0 failed=()
for t in "$here"/e2e/test_adv_${1:-*}.sh; do
	[ -e "$t" ] || { echo "no case matches '${1:-*}'" >&2; exit 2; }
	echo "== ${t##*/}"
	if bash "$t"; then pass=$((pass + 1)); else failed+=("${t##*/}"); fi
done
echo "adversarial: $pass passed, ${#failed[@]} failed${failed:+: ${failed[*]}}"
[ "${#failed[@]}" -eq 0 ]
