#!/usr/bin/env bash
# The whole chain: `tokentap run` puts the real agent under curl, curl
# calls the mock provider over TLS, the agent ships its records to a
# tokentapd on a temporary Unix socket, and the collector's roll-ups equal
# the sums of the records the agent wrote to TOKENTAP_OUT.  With the shared
# corpus present, the cached gpt-4o-mini call also costs what the price
# table says (125 uncached x $0.15 + 1024 cached x $0.075 + 353 x $0.60 per 1M).
set -euo pipefail
. "$(dirname "$0")/clients/agent_lib.sh"
agent_setup
FX=$(fixtures_dir)
[ -x "$BUILD/tokentapd" ] && [ -x "$BUILD/tokentap" ] || skip "tokentapd/tokentap not built; run make"

"$BUILD/tokentapd" --listen "unix:$T/c.sock" --db "$T/c.db" >"$T/c.out" 2>"$T/c.err" &
CPID=$!
on_exit "kill $CPID 2>/dev/null; wait $CPID 2>/dev/null"
for _ in $(seq 100); do grep -q '^tokentapd: ready' "$T/c.out" && break; sleep 0.1; done
grep -q '^tokentapd: ready' "$T/c.out" || fail "tokentapd did not start: $(cat "$T/c.err")"

printf '%s' '{"model":"gpt-4o-mini","max_tokens":50,"messages":[{"role":"user","content":"hi"}]}' >"$T/req.json"
call() { # FEATURE PATH CURL_ARGS...
	local feature=$1 path=$2
	shift 2
	"$BUILD/tokentap" run --task chain-test --tenant acme --feature "$feature" \
		--collector "unix:$T/c.sock" --out "$T/out.jsonl" -- \
		curl -sS --max-time 30 --cacert "$MOCK_CA" -H "Authorization: Bearer $SENTINEL" \
		-H 'Content-Type: application/json' --data-binary @"$T/req.json" "$@" \
		-o /dev/null "$(mock_url "$path")" || fail "curl $path failed"
}
n=0
for i in 1 2 3; do
	call synth-chat /v1/chat/completions --http1.1
	call synth-messages /v1/messages -H 'anthropic-version: 2023-06-01'
	n=$((n + 2))
done
if [ -n "$FX" ]; then
	call cached /fx/openai/chat-nonstream-cached-gpt4omini/v1/chat/completions --compressed
	n=$((n + 1))
fi

# The agent ships in the background: wait (bounded) for every record.
for _ in $(seq 150); do
	got=$(curl -sS --unix-socket "$T/c.sock" http://x/healthz | "$TT_PY" -c 'import json,sys; print(json.load(sys.stdin)["records"])')
	[ "$got" -ge "$n" ] && break
	sleep 0.1
done
[ "$got" = "$n" ] || fail "collector has $got records, the agent made $n calls"
[ "$(wc -l <"$T/out.jsonl")" = "$n" ] || fail "TOKENTAP_OUT has $(wc -l <"$T/out.jsonl") records, want $n"

curl -sS --unix-socket "$T/c.sock" 'http://x/v1/usage?by=feature' >"$T/usage.json"
"$TT_PY" - "$T/out.jsonl" "$T/usage.json" "${FX:+yes}" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
usage = json.load(open(sys.argv[2]))
rows = {r["key"]: r for r in usage["rows"]}
want = {}
for r in recs:
    assert r["task"] == "chain-test" and r["tenant"] == "acme", r
    w = want.setdefault(r["feature"], {"calls": 0, "input_tokens": 0, "output_tokens": 0,
                                       "cache_read_tokens": 0})
    w["calls"] += 1
    for f in ("input_tokens", "output_tokens", "cache_read_tokens"):
        w[f] += r[f] or 0
assert set(rows) == set(want), (sorted(rows), sorted(want))
for k, w in want.items():
    for f, v in w.items():
        assert rows[k][f] == v, (k, f, rows[k][f], v)
if sys.argv[3] == "yes":
    c = rows["cached"]
    assert (c["input_tokens"], c["output_tokens"], c["cache_read_tokens"]) == (1149, 353, 1024), c
    assert abs(c["cost_usd"] - 307.35e-6) < 1e-12, c["cost_usd"]
print("collector roll-ups equal the agent's records:", {k: v["calls"] for k, v in want.items()})
PY
"$BUILD/tokentap" report --collector "unix:$T/c.sock" --by feature
check_no_sentinel "$T/c.db" "$T/c.db-wal" "$T/c.out" "$T/c.err"
echo PASS
