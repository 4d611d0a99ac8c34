#!/usr/bin/env bash
# Chaos: connections reset (TCP RST) in the middle of streamed responses,
# at several depths, over HTTP/1.1 and HTTP/2, while another client in the
# same run streams normally.  Each cut exchange gives one record that says
# so (error set, status kept), the others stay whole, nothing is lost, no
# process crashes.  The mock's /reset/<N>/ marker cuts after N body bytes.
set -euo pipefail
. "$(dirname "$0")/chaos_clients/chaos_lib.sh"
CL=$BUILD/tests/chaos_clients/chaos_client
[ -x "$CL" ] || skip "chaos client not built ($CL); run make"
agent_setup
printf '%s' '{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"max_tokens":60,"messages":[{"role":"user","content":"chaos reset"}]}' >"$T/chat.json"
printf '%s' '{"model":"claude-3-5-haiku-latest","stream":true,"max_tokens":60,"messages":[{"role":"user","content":"chaos reset"}]}' >"$T/msg.json"

pids=()
# Whole streams, kept-alive connections: 8 x 25.
with_agent "$CL" --port "$MOCK_PORT" --ca "$MOCK_CA" --key "$SENTINEL" --body "$T/chat.json" \
	--threads 8 --calls 25 >"$T/whole.out" 2>"$T/whole.err" &
pids+=($!)
# Cut streams: after 1, 300 and 2000 body bytes, 4 x 10 each.
for n in 1 300 2000; do
	with_agent "$CL" --port "$MOCK_PORT" --ca "$MOCK_CA" --key "$SENTINEL" --body "$T/chat.json" \
		--close --threads 4 --calls 10 --path "/reset/$n/v1/chat/completions" \
		>"$T/reset$n.out" 2>"$T/reset$n.err" &
	pids+=($!)
done
# HTTP/2, Anthropic streams, cut after 400 bytes.
for i in 1 2 3 4; do
	with_agent_curl curl -sS --max-time 30 --cacert "$MOCK_CA" --http2 -H "x-api-key: $SENTINEL" \
		-H 'anthropic-version: 2023-06-01' -H 'Content-Type: application/json' \
		--data-binary @"$T/msg.json" -o /dev/null "$(mock_url /reset/400/v1/messages)" \
		2>>"$T/curl.err" &
	pids+=($!)
done
rcs=()
for p in "${pids[@]}"; do
	rc=0
	wait "$p" || rc=$?
	rcs+=("$rc")
done
echo "exit codes: ${rcs[*]}"
# The whole client must succeed; the cut ones report failed calls (exit 1);
# curl says "Recv failure" (56) or an HTTP/2 stream error (16/92).
[ "${rcs[0]}" = 0 ] || fail "whole client: $(cat "$T/whole.out" "$T/whole.err")"
grep -q '^calls=200 ok=200 failed=0 ' "$T/whole.out" || fail "whole client: $(cat "$T/whole.out")"
for n in 1 300 2000; do
	grep -q '^calls=40 ok=0 failed=40 ' "$T/reset$n.out" || fail "reset $n: $(cat "$T/reset$n.out")"
done
for rc in "${rcs[@]:4}"; do
	case $rc in 56 | 16 | 92) ;; *) fail "curl exit $rc: $(cat "$T/curl.err")" ;; esac
done
for f in "$T"/whole.err "$T"/reset*.err; do
	[ -s "$f" ] && fail "$(basename "$f"): $(cat "$f")"
done

"$TT_PY" - "$T/out.jsonl" <<'PY'
import collections, json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert len({r["id"] for r in recs}) == len(recs), "duplicate record ids"
by = collections.defaultdict(list)
for r in recs:
    by[(r["path"], r["http"])].append(r)
want = {("/v1/chat/completions", "1.1"): 200,
        ("/reset/1/v1/chat/completions", "1.1"): 40,
        ("/reset/300/v1/chat/completions", "1.1"): 40,
        ("/reset/2000/v1/chat/completions", "1.1"): 40,
        ("/reset/400/v1/messages", "2"): 4}
got = {k: len(v) for k, v in by.items()}
assert got == want, got
for r in by[("/v1/chat/completions", "1.1")]:
    assert r["error"] is None and r["status"] == 200 and r["usage_source"] == "provider" \
        and r["input_tokens"] and r["output_tokens"], r
for k, rs in by.items():
    if k[0].startswith("/reset/"):
        for r in rs:
            assert r["error"] is not None, ("cut exchange without an error", r)
            assert r["status"] == 200, r
            assert r["usage_source"] != "provider" or k[0].startswith("/reset/2000/"), r
print("records:", got, "errors:", dict(collections.Counter(
    r["error"] for r in recs if r["error"])))
PY
check_no_sentinel "$T/out.jsonl" "$T"/*.out "$T"/*.err
echo PASS
