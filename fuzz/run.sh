#!/bin/sh
# fuzz/run.sh SECONDS TARGET... - run each libFuzzer binary for SECONDS.
#
# Each target NAME (the binary's file name) keeps its corpus in
# BUILD/fuzz-corpus/NAME, next to the binary's folder, seeded from
# fuzz/corpus/NAME and, when fuzz/seeds.sh knows the target, from the
# synthetic transcripts it writes (fuzz/fixture_seeds.sh: from the recorded
# provider bodies, for the focused decoder targets).  Crashes, leaks,
# timeouts and OOMs go to BUILD/fuzz-artifacts/NAME/, the full log to
# BUILD/fuzz-logs/NAME.log.
# Prints one line per target; exits 1 if any target failed.
set -u

if [ $# -lt 1 ]; then
	echo "usage: $0 SECONDS [TARGET...]" >&2
	exit 2
fi
secs=$1
shift
case $secs in
'' | *[!0-9]*) echo "$0: SECONDS must be a number, not '$secs'" >&2; exit 2 ;;
esac
if [ $# -eq 0 ]; then
	echo "fuzz: no fuzz targets given, nothing to do"
	exit 0
fi

src=$(cd "$(dirname "$0")" && pwd)
failed=0

fstat() { # fstat NAME LOG: the last value libFuzzer printed for stat::NAME
	sed -n "s/^stat::$1: *//p" "$2" | tail -n 1
}

for t in "$@"; do
	name=$(basename "$t")
	if [ ! -x "$t" ]; then
		echo "$name: FAILED, $t is not an executable (build it first)"
		failed=1
		continue
	fi
	build=$(cd "$(dirname "$t")/.." && pwd)
	corpus=$build/fuzz-corpus/$name
	arts=$build/fuzz-artifacts/$name
	logs=$build/fuzz-logs
	log=$logs/$name.log
	mkdir -p "$corpus" "$arts" "$logs"

	# Seeds: never overwrite what earlier runs found.
	if [ -d "$src/corpus/$name" ]; then
		for f in "$src/corpus/$name"/*; do
			[ -f "$f" ] || continue
			[ -e "$corpus/seed-$(basename "$f")" ] ||
				cp "$f" "$corpus/seed-$(basename "$f")"
		done
	fi
	case $name in
	fuzz_dec_conn)
		if ! "$src/seeds.sh" "$corpus/synthetic"; then
			echo "$name: FAILED, fuzz/seeds.sh could not write the seeds"
			failed=1
			continue
		fi
		;;
	fuzz_dec_sse | fuzz_dec_ndjson | fuzz_dec_eventstream | \
	fuzz_dec_decompress | fuzz_dec_usage)
		if ! "$src/fixture_seeds.sh" "$name" "$corpus/synthetic" >/dev/null; then
			echo "$name: FAILED, fuzz/fixture_seeds.sh could not write the seeds"
			failed=1
			continue
		fi
		;;
	esac
	seeddirs=$corpus
	[ -d "$corpus/synthetic" ] && seeddirs="$corpus $corpus/synthetic"

	# Crash files of this run are the ones newer than this mark.
	mark=$arts/.run-mark
	: >"$mark"
	# shellcheck disable=SC2086
	"$t" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=25 \
		-max_len=8192 -print_final_stats=1 -artifact_prefix="$arts/" \
		$seeddirs </dev/null >"$log" 2>&1
	rc=$?

	execs=$(fstat number_of_executed_units "$log")
	rate=$(fstat average_exec_per_sec "$log")
	units=$(ls "$corpus" | wc -l)
	rss=$(fstat peak_rss_mb "$log")
	new=$(find "$arts" -maxdepth 1 -type f -newer "$mark" \
		\( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
		-o -name 'oom-*' -o -name 'slow-unit-*' \) | sort)
	bad=$(printf '%s\n' "$new" | grep -v '/slow-unit-' | grep -c .)

	if [ "$rc" -eq 0 ] && [ "$bad" -eq 0 ]; then
		echo "$name: ok, ${execs:-?} execs in ${secs}s, ${rate:-?} exec/s, corpus $units files, peak ${rss:-?} MB"
		continue
	fi
	failed=1
	echo "$name: FAILED (exit $rc), ${execs:-?} execs, ${rate:-?} exec/s; log $log"
	for f in $new; do
		echo "  artifact: $f"
		echo "  reproduce: $t $f"
	done
	# The report: sanitizer or libFuzzer's own, with its stack.
	grep -n -m 1 -E '^==[0-9]+==ERROR|runtime error|^SUMMARY|deadly signal|records differ|secret or prompt|tt_record_to_json failed|not a JSON object' "$log" >/dev/null &&
		sed -n '/==[0-9]*==ERROR\|runtime error\|deadly signal\|records differ\|secret or prompt\|tt_record_to_json failed\|not a JSON object/,/^SUMMARY/p' "$log" |
		head -n 60 | sed 's/^/  | /'
done
exit $failed
