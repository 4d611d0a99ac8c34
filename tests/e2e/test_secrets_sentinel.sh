#!/usr/bin/env bash
# No secret leaves the process.  Several clients under the agent send a
# sentinel API key (Authorization: Bearer, x-api-key, x-goog-api-key, a
# Gemini ?key= query) and a sentinel prompt text (plain, gzip-compressed
# request body, HTTP/1.1 and HTTP/2, streamed and not, C, curl and Python
# clients) with agent logging at debug.  Part of the run has the collector
# down (records wait in the spool), then tokentapd takes them all.  Then
# neither sentinel, nor any "Bearer"/Authorization text, appears in: the
# records (TOKENTAP_OUT), the spool files, the agents' logs, tokentapd's
# output, its SQLite database, WAL and shared-memory files (read while it
# runs and after it stops), `tokentap report` output.  Positive controls:
# the same grep finds the task name in the database file, and the records
# carry a prompt hash (the prompt was seen).
set -euo pipefail
. "$(dirname "$0")/chaos_clients/chaos_lib.sh"
[ -x "$CHAOS_CLIENT" ] || skip "chaos client not built ($CHAOS_CLIENT); run make"
agent_setup
PROMPT="PROMPT-SENTINEL-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
TASK=secrets-task-5f2c
export TOKENTAP_LOG=debug TOKENTAP_TASK=$TASK
export TOKENTAP_COLLECTOR=unix:$T/c.sock

printf '{"model":"gpt-4o-mini","max_tokens":20,"messages":[{"role":"system","content":"%s system"},{"role":"user","content":"%s"}]}' \
	"$PROMPT" "$PROMPT" >"$T/chat.json"
printf '{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"%s"}]}' \
	"$PROMPT" >"$T/chat-stream.json"
printf '{"model":"claude-3-5-haiku-latest","max_tokens":30,"stream":true,"system":"%s","messages":[{"role":"user","content":"%s"}]}' \
	"$PROMPT" "$PROMPT" >"$T/msg.json"
printf '{"contents":[{"role":"user","parts":[{"text":"%s"}]}]}' "$PROMPT" >"$T/gem.json"
gzip -c "$T/chat.json" >"$T/chat.json.gz"

clients() { # the same set, run with the collector down and then up
	local tag=$1
	with_agent "$CHAOS_CLIENT" --port "$MOCK_PORT" --ca "$MOCK_CA" --key "$SENTINEL" \
		--body "$T/chat.json" --threads 4 --calls 5 >"$T/$tag.c.out" 2>"$T/$tag.c.err" ||
		fail "$tag: C client failed"
	with_agent_curl curl -sS --max-time 30 --cacert "$MOCK_CA" --http1.1 -H "Authorization: Bearer $SENTINEL" \
		-H 'Content-Type: application/json' --data-binary @"$T/chat-stream.json" \
		-o "$T/$tag.curl1.body" "$(mock_url /v1/chat/completions)" 2>"$T/$tag.curl1.err" ||
		fail "$tag: curl 1"
	with_agent_curl curl -sS --max-time 30 --cacert "$MOCK_CA" --http2 -H "x-api-key: $SENTINEL" \
		-H 'anthropic-version: 2023-06-01' -H 'Content-Type: application/json' \
		--data-binary @"$T/msg.json" -o "$T/$tag.curl2.body" "$(mock_url /v1/messages)" \
		2>"$T/$tag.curl2.err" || fail "$tag: curl 2"
	with_agent_curl curl -sS --max-time 30 --cacert "$MOCK_CA" --http2 -H "x-goog-api-key: $SENTINEL" \
		-H 'Content-Type: application/json' --data-binary @"$T/gem.json" -o "$T/$tag.curl3.body" \
		"$(mock_url "/v1beta/models/gemini-2.0-flash:generateContent?key=$SENTINEL")" \
		2>"$T/$tag.curl3.err" || fail "$tag: curl 3"
	with_agent_curl curl -sS --max-time 30 --cacert "$MOCK_CA" --http1.1 -H "Authorization: Bearer $SENTINEL" \
		-H 'Content-Type: application/json' -H 'Content-Encoding: gzip' \
		--data-binary @"$T/chat.json.gz" -o "$T/$tag.curl4.body" "$(mock_url /v1/chat/completions)" \
		2>"$T/$tag.curl4.err" || fail "$tag: curl 4"
	with_agent "$TT_PY" "$AGENT_E2E_DIR/clients/py_client.py" urllib "$MOCK_PORT" "$MOCK_CA" \
		"$SENTINEL" /v1/chat/completions "$T/chat.json" >"$T/$tag.py.body" 2>"$T/$tag.py.err" ||
		fail "$tag: python client: $(cat "$T/$tag.py.err")"
}

# Collector down: the records wait in the spool.  Keep a copy of it.
clients down
[ -n "$(find "$T/spool" -type f)" ] || fail "nothing was spooled while the collector was down"
cp -r "$T/spool" "$T/spool.copy"

col_start "$T"
clients up
want=$(wc -l <"$T/out.jsonl")
# Long enough a call for the spool to drain.
with_agent "$CHAOS_CLIENT" --port "$MOCK_PORT" --ca "$MOCK_CA" --key "$SENTINEL" \
	--body "$T/chat.json" --calls 60 >"$T/drain.out" 2>"$T/drain.err" || fail "drain client"
want=$(wc -l <"$T/out.jsonl")
got=$(col_wait_count "$want" 20)
[ "$got" -eq "$want" ] || fail "collector has $got of $want records"
"$BUILD/tokentap" report --collector "unix:$COL_SOCK" --by task >"$T/report.txt" 2>&1 ||
	fail "tokentap report failed: $(cat "$T/report.txt")"

# Positive controls: the prompt was seen, and grep reads the database pages.
"$TT_PY" - "$T/out.jsonl" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert all(r["prompt_hash"] for r in recs), "a record without its prompt hash"
print("records:", len(recs), "providers:", sorted({r["provider"] for r in recs}))
PY
grep -qa "$TASK" "$COL_DB" "$COL_DB-wal" 2>/dev/null || fail "control: the task name is not in the database files"

scan() { # FILES...: no sentinel, no Authorization/Bearer text
	local f
	for f in "$@"; do
		[ -e "$f" ] || continue
		grep -rqaF -- "$SENTINEL" "$f" && fail "the API key leaked into $f"
		grep -rqaF -- "$PROMPT" "$f" && fail "the prompt text leaked into $f"
		grep -rqaiE -- 'authorization|bearer|x-api-key|x-goog-api-key' "$f" &&
			fail "an authentication header leaked into $f"
	done
	return 0
}
scan "$COL_DB" "$COL_DB-wal" "$COL_DB-shm"   # while tokentapd runs
col_stop
logs=("$T"/*.err "$T/c.out" "$T/report.txt")
[ -s "$T/down.c.err" ] || fail "control: the agent logged nothing at debug"
scan "$T/out.jsonl" "$T/spool.copy" "$T/spool" "${logs[@]}" "$COL_DB" "$COL_DB-wal" "$COL_DB-shm"
echo "secrets: $want records, spool, $(ls "${logs[@]}" | wc -l) logs, database and WAL free of the key and the prompt"
echo PASS
