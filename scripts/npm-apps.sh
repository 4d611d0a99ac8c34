#!/usr/bin/env bash
# The LLM programs people run, pinned, as test clients: installed from the
# npm registry into build/npm-apps/NAME@VERSION, once (Claude Code alone is
# a 400 MB executable), and kept between runs.
#
#   npm-apps.sh install [NAME...]  install the missing ones (all by default);
#                                  a failed install warns and goes on: the
#                                  tests that need it skip, saying so
#   npm-apps.sh dir NAME           print NAME's folder (installed or not)
#   npm-apps.sh list               print NAME PACKAGE VERSION, one per line
#
# A pin moves only with a test run against the new version.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
root=$top/build/npm-apps

# NAME PACKAGE VERSION
apps="claude-code @anthropic-ai/claude-code 2.1.332
codex @openai/codex 0.171.0
bun bun 1.4.5
gemini-cli @google/gemini-cli 0.61.0"

usage() {
	sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
	exit "${1:-0}"
}

pin() { # NAME -> "PACKAGE VERSION"
	local line
	line=$(echo "$apps" | awk -v n="$1" '$1 == n { print $2, $3 }')
	[ -n "$line" ] || { echo "npm-apps: no app named '$1' (see: $0 list)" >&2; exit 2; }
	echo "$line"
}

dir_of() {
	local pkg ver
	read -r pkg ver <<<"$(pin "$1")"
	echo "$root/$1@$ver"
}

install_one() {
	local name=$1 pkg ver dir
	read -r pkg ver <<<"$(pin "$name")"
	dir=$(dir_of "$name")
	[ -f "$dir/.installed" ] && return 0
	if ! command -v npm >/dev/null; then
		echo "npm-apps: npm is not installed: $name not installed" >&2
		return 0
	fi
	echo "npm-apps: installing $pkg@$ver (once) into ${dir#"$top"/} ..."
	rm -rf "$dir"
	mkdir -p "$dir"
	if timeout 900 npm install --no-save --no-audit --no-fund --prefix "$dir" \
		"$pkg@$ver" >"$dir/npm.log" 2>&1 </dev/null; then
		touch "$dir/.installed"
	else
		echo "npm-apps: npm could not install $pkg@$ver (the tests that run it will skip):" >&2
		tail -n 3 "$dir/npm.log" | sed 's/^/  /' >&2
	fi
}

case "${1:-}" in
install)
	shift
	names=("$@")
	[ ${#names[@]} -gt 0 ] || mapfile -t names < <(echo "$apps" | awk '{ print $1 }')
	for n in "${names[@]}"; do
		pin "$n" >/dev/null
		install_one "$n"
	done
	;;
dir)
	[ $# -eq 2 ] || usage 2
	dir_of "$2"
	;;
list) echo "$apps" ;;
-h | --help) usage 0 ;;
*) usage 2 ;;
esac
