#!/usr/bin/env bash
# The tokentap command: `report` against a running tokentapd (Unix socket
# and TCP) and straight from its database, with figures checked against
# the records; `run` with a stand-in agent library: LD_PRELOAD first, the
# TOKENTAP_* variables set, the exit status passed through; clear errors.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$TOP/build
T=$(mktemp -d /tmp/tt-col-cli.XXXXXX)
DPID=
cleanup() {
	[ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$BIN/tokentapd" --listen "unix:$T/d.sock" --listen http://127.0.0.1:0 --db "$T/d.db" >"$T/out" 2>&1 &
DPID=$!
for _ in $(seq 100); do grep -q '^tokentapd: ready' "$T/out" && break; sleep 0.1; done
grep -q '^tokentapd: ready' "$T/out" || { cat "$T/out"; fail "daemon did not start"; }
PORT=$(sed -n 's|^tokentapd: listening on http://127.0.0.1:\([0-9]*\)$|\1|p' "$T/out")

# Three features: summarise 6 x gpt-4o (1M in, 100k out: $3.50 each = $21),
# chat 3 x claude-haiku-4-5 (1M in of which 800k cache reads, 100k out:
# 200k x $1 + 800k x $0.10 + 100k x $5 = $0.78 each = $2.34), and search:
# 2 calls of a model with no price.  Cache savings: 3 x 800k x ($1 - $0.10) = $2.16.
{
	for i in 1 2 3 4 5 6; do
		printf '{"id":"%032x","provider":"openai","model":"gpt-4o","input_tokens":1000000,"output_tokens":100000,"feature":"summarise","task":"t%d"}\n' "$i" "$i"
	done
	for i in 7 8 9; do
		printf '{"id":"%032x","provider":"anthropic","model":"claude-haiku-4-5","input_tokens":1000000,"cache_read_tokens":800000,"output_tokens":100000,"feature":"chat"}\n' "$i"
	done
	for i in 10 11; do
		printf '{"id":"%032x","provider":"acme","model":"acme-secret-1","input_tokens":500,"output_tokens":50,"feature":"search"}\n' "$i"
	done
} >"$T/recs.jsonl"
r=$(curl -sS --unix-socket "$T/d.sock" --data-binary @"$T/recs.jsonl" http://x/v1/records)
[ "$r" = '{"accepted":11,"duplicates":0}' ] || fail "ingest: $r"

"$BIN/tokentap" report --collector "unix:$T/d.sock" >"$T/rep1"
cat "$T/rep1"
grep -Eq '^ +1  summarise +6 +6\.0M +600\.0k +\$21\.00 +90\.0% +90\.0%' "$T/rep1" || fail "row 1"
grep -Eq '^ +2  chat +3 +3\.0M +300\.0k +\$2\.34 +10\.0% +100\.0%' "$T/rep1" || fail "row 2"
grep -Eq '^ +3  search +2 .* unpriced .*\(2 unpriced\)' "$T/rep1" || fail "row 3: unpriced flag"
grep -Eq '^ +total +11 .* \$23\.34$' "$T/rep1" || fail "total"
grep -q '1 of 3 features makes 90% of the cost.' "$T/rep1" || fail "80/20 line"
grep -q 'Cache savings realised: \$2.16 (2.4M input tokens served from the prompt cache)' "$T/rep1" ||
	fail "cache savings"
grep -q '! 2 calls unpriced' "$T/rep1" || fail "unpriced warning"

# The same figures over TCP and from the database file, --top and --json.
TOKENTAP_COLLECTOR="http://127.0.0.1:$PORT" "$BIN/tokentap" report >"$T/rep2"
cmp "$T/rep1" "$T/rep2" || fail "TCP report differs"
"$BIN/tokentap" report --db "$T/d.db" >"$T/rep3"
cmp "$T/rep1" "$T/rep3" || fail "--db report differs"
"$BIN/tokentap" report --db "$T/d.db" --by model --top 1 >"$T/rep4"
grep -Eq '^ +\(2 more\) +5 .* \$2\.34 +10\.0% +100\.0% +\(2 unpriced\)' "$T/rep4" || { cat "$T/rep4"; fail "--top"; }
"$BIN/tokentap" report --db "$T/d.db" --by task --json | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["by"] == "task" and d["total"]["calls"] == 11, d
assert [r["key"] for r in d["rows"]][-1] is None'
"$BIN/tokentap" report --db "$T/d.db" --since 2000-01-01 --until 2001-01-01 | grep -q 'No calls recorded in this window' ||
	fail "empty window"
echo "report: figures, shares, unpriced flag, savings; unix, tcp and --db agree"

# Errors are clear and exit 2 (usage) or 1 (runtime).
set +e
"$BIN/tokentap" report --by pid 2>"$T/e1"; [ $? = 2 ] || fail "--by pid exit"
"$BIN/tokentap" report --since yesterday 2>"$T/e2"; [ $? = 2 ] || fail "--since exit"
"$BIN/tokentap" report --collector "unix:$T/none.sock" 2>"$T/e3"; [ $? = 1 ] || fail "no collector exit"
"$BIN/tokentap" frobnicate 2>"$T/e4"; [ $? = 2 ] || fail "unknown command exit"
set -e
grep -q 'expected one of task, tenant, feature, model, provider, pod, process, app' "$T/e1" || fail "e1"
grep -q -- '--since yesterday: expected RFC 3339' "$T/e2" || fail "e2"
grep -q 'cannot reach the collector' "$T/e3" || fail "e3"
grep -q "unknown command 'frobnicate'" "$T/e4" || fail "e4"
for c in report run; do "$BIN/tokentap" $c --help | grep -q "Usage: tokentap $c" || fail "$c --help"; done
"$BIN/tokentap" --help | grep -q 'Usage: tokentap COMMAND' || fail "--help"

# run: with a stand-in agent next to a copy of the binary.
mkdir "$T/bin"
cp "$BIN/tokentap" "$T/bin/tokentap"
echo 'int tt_stand_in_agent;' | cc -shared -fPIC -x c - -o "$T/bin/libtokentap.so"
LD_PRELOAD= "$T/bin/tokentap" run --task build-42 --tenant acme --feature docs \
	--collector "unix:$T/d.sock" --out "$T/recs.out" --enforce -- env >"$T/env"
grep -qx "LD_PRELOAD=$T/bin/libtokentap.so" "$T/env" || fail "LD_PRELOAD: $(grep LD_PRELOAD "$T/env")"
for kv in TOKENTAP_TASK=build-42 TOKENTAP_TENANT=acme TOKENTAP_FEATURE=docs \
	"TOKENTAP_COLLECTOR=unix:$T/d.sock" "TOKENTAP_OUT=$T/recs.out" TOKENTAP_MODE=enforce; do
	grep -qx "$kv" "$T/env" || fail "run: $kv missing"
done
echo 'int other;' | cc -shared -fPIC -x c - -o "$T/other.so"
LD_PRELOAD="$T/other.so" "$T/bin/tokentap" run -- env | grep -qx "LD_PRELOAD=$T/bin/libtokentap.so:$T/other.so" ||
	fail "run: existing LD_PRELOAD not kept after ours"
# A program the agent cannot enter is run all the same, with a warning
# that names it and the probe; an ordinary one runs without a word.
"$T/bin/tokentap" run -- true 2>"$T/w1" || fail "run true"
[ ! -s "$T/w1" ] || fail "a warning for an ordinary program: $(cat "$T/w1")"
if echo 'int main(void) { return 3; }' | cc -static -x c - -o "$T/static-prog" 2>/dev/null; then
	set +e
	"$T/bin/tokentap" run -- "$T/static-prog" 2>"$T/w2"
	[ $? = 3 ] || fail "the static program did not run"
	set -e
	grep -q "$T/static-prog is a static program: .*tokentap-probe" "$T/w2" ||
		fail "no warning for a static program: $(cat "$T/w2")"
	printf '#!/usr/bin/env static-prog\n' >"$T/script"
	chmod +x "$T/script"
	PATH=$T:$PATH "$T/bin/tokentap" run -- "$T/script" 2>"$T/w3" || true
	grep -q "$T/static-prog is a static program" "$T/w3" ||
		fail "no warning for a script run by a static program: $(cat "$T/w3")"
	echo "run: warns for a static program (and a script it runs), not for an ordinary one"
else
	echo "run: no static libc, the static-program warning is not checked"
fi
set +e
"$T/bin/tokentap" run -- sh -c 'exit 7'; [ $? = 7 ] || fail "exit status not passed through"
"$T/bin/tokentap" run -- /nonexistent/cmd 2>"$T/e5"; [ $? = 127 ] || fail "missing command exit"
"$T/bin/tokentap" run --task "" -- true 2>"$T/e6"; [ $? = 2 ] || fail "empty --task exit"
rm "$T/bin/libtokentap.so"
"$T/bin/tokentap" run -- true 2>"$T/e7"; rc=$?
set -e
grep -q 'cannot run /nonexistent/cmd' "$T/e5" || fail "e5"
grep -q -- '--task: expected 1 to 127 bytes' "$T/e6" || fail "e6"
if [ -e /usr/local/lib/tokentap/libtokentap.so ]; then
	echo "run: an installed agent exists, the not-found case is not checked"
else
	[ $rc = 1 ] && grep -q 'libtokentap.so not found' "$T/e7" || fail "agent not found: $(cat "$T/e7")"
fi
echo "run: LD_PRELOAD, TOKENTAP_* variables, exit status, errors"
echo PASS
