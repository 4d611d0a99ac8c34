#!/usr/bin/env bash
# The tree's rooms (issue #12): every part includes only what is public to
# it.  A quoted include names a file of the part's own folder, a public
# header (tokentap/...), or one of the shared rooms it may use:
#
#   folder       may include
#   include/     tokentap/
#   common/      tokentap/
#   decoder/     tokentap/, common/
#   ship/        tokentap/, common/
#   agent/       tokentap/, common/, ship/
#   probes/      tokentap/, common/, ship/ (and its generated skeleton)
#   collector/   tokentap/, common/, ship/client.h (the tokentap command)
#
# and nothing of agent/ is compiled into tokentap-probe.  Tests, fuzz
# targets and benchmarks may look inside the part they test.
set -euo pipefail
cd "$(dirname "$0")/../.."

bad=0
check() { # FOLDER ALLOWED-REGEX
	local dir=$1 allowed=$2 f inc
	for f in "$dir"/*.[ch]; do
		[ -e "$f" ] || continue
		while IFS= read -r inc; do
			# a file of the same folder, by its bare name
			if [[ $inc != */* ]] && [ -e "$dir/$inc" ]; then
				continue
			fi
			if [[ ! $inc =~ $allowed ]]; then
				echo "FAIL: $f includes \"$inc\""
				bad=1
			fi
		done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
	done
}
check include/tokentap '^tokentap/'
check common '^tokentap/'
check decoder '^(tokentap|common)/'
check ship '^(tokentap|common)/'
check agent '^(tokentap|common|ship)/'
check probes '^((tokentap|common|ship)/|sslprobe\.skel\.h$|nullprobe\.skel\.h$|vmlinux\.h$)'
check collector '^((tokentap|common)/|ship/client\.h$)'

# What the probe is linked from.
# make -q exits 1 when the target is not up to date: the database is
# printed all the same
srcs=$( (make -s -p -q build/tokentap-probe 2>/dev/null || true) | sed -n 's/^PROBE_SRCS := //p' | head -n1)
[ -n "$srcs" ] || { echo "FAIL: cannot read PROBE_SRCS from make"; exit 1; }
for s in $srcs; do
	case $s in agent/*) echo "FAIL: tokentap-probe compiles $s"; bad=1 ;; esac
done
[ "$bad" -eq 0 ] || exit 1
echo "ok - every part includes only what is public to it; tokentap-probe is built from: $srcs (and ship/, common/, decoder/)"
