#!/usr/bin/env bash
# Run test programs and scripts; print one summary line at the end.
# A test exits 0 (passed), 77 (skipped: it prints why) or anything else
# (failed).  Output of each test goes to build/test-logs/NAME.log and is
# shown in full when the test fails.
set -u
logs=${TEST_LOGS:-build/test-logs}
mkdir -p "$logs"
pass=0 fail=0 skip=0 failed=()
for t in "$@"; do
	name=$(basename "$t")
	log="$logs/$name.log"
	start=$(date +%s%N)
	"$t" >"$log" 2>&1 </dev/null
	rc=$?
	ms=$((($(date +%s%N) - start) / 1000000))
	secs=$((ms / 1000)).$((ms % 1000 / 100))
	case $rc in
	0) pass=$((pass + 1)); printf '  PASS  %-40s %6ss\n' "$name" "$secs" ;;
	77) skip=$((skip + 1))
	    printf '  SKIP  %-40s %s\n' "$name" "$(grep -m1 -i 'skip' "$log" | cut -c1-100)" ;;
	*) fail=$((fail + 1)); failed+=("$name")
	   printf '  FAIL  %-40s (exit %d)\n' "$name" "$rc"
	   sed 's/^/    | /' "$log" | tail -n 80 ;;
	esac
done
echo
[ ${#failed[@]} -gt 0 ] && echo "failed: ${failed[*]}"
echo "tests: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
