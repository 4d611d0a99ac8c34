#!/usr/bin/env bash
# The mock provider itself, seen from curl: HTTP/1.1 and HTTP/2, gzip,
# fixture replay byte for byte, statuses and usage headers from the fixture
# metadata, the log and its body copies, synthetic OpenAI/Anthropic answers
# whose usage follows the documented formulas, prompt-cache simulation,
# request bodies (chunked, 100-continue), keep-alive, h2 multiplexing, the
# /reset/ marker, a client that goes away mid-stream, and exit on SIGTERM.
# Also runs expect.py's self-test against the fixture manifest.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../mock/lib.sh"

command -v curl >/dev/null || skip "curl is not installed"
"$TT_PY" -c 'import h2' 2>/dev/null || skip "Debian python3-h2 is not installed"
curl --version | grep -q HTTP2 || skip "this curl has no HTTP/2"

mock_start --pause-ms 2 || fail "the mock did not start"
W=$MOCK_TMP/scratch
mkdir -p "$W"
n=0

check() { # check DESCRIPTION: count one passed check
	n=$((n + 1))
	echo "ok $n - $1"
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

# --- protocol basics ---------------------------------------------------------
v=$(mock_curl -o "$W/h" -w '%{http_version} %{http_code}' "$(mock_url /healthz)")
[ "$v" = "2 200" ] || fail "healthz over h2: $v"
check "ALPN h2 by default"
v=$(mock_curl --http1.1 -o "$W/h" -w '%{http_version} %{http_code}' "$(mock_url /healthz)")
[ "$v" = "1.1 200" ] || fail "healthz over HTTP/1.1: $v"
check "HTTP/1.1 when asked"
v=$(mock_curl -o /dev/null -w '%{http_code}' "$(mock_url /no/such/route)" -d '{}')
[ "$v" = 404 ] || fail "unknown route gave $v"
check "unknown route is 404"

# Two requests, one curl, HTTP/1.1: the second reuses the connection.
nlog=$(mock_log_count)
mock_curl --http1.1 -o /dev/null -o /dev/null "$(mock_url /fx/none/none/)" \
	"$(mock_url /fx/none/none/)" || true
mock_wait_log $((nlog + 2)) || fail "keep-alive requests not logged"
conns=$(tail -n 2 "$MOCK_LOG" | "$TT_PY" -c '
import json, sys
print(" ".join(str(json.loads(l)["conn"]) for l in sys.stdin))')
set -- $conns
[ "$#" = 2 ] && [ "$1" = "$2" ] || fail "no keep-alive: connections $conns"
check "HTTP/1.1 keep-alive serves two requests on one connection"

# --- fixture replay ----------------------------------------------------------
FX=$(fixtures_dir)
if [ -z "$FX" ]; then
	echo "skip: wire fixtures absent (../shared/fixtures/wire), fixture checks skipped"
else
	# name | fixture file | streamed
	while IFS='|' read -r name file streamed; do
		want=$FX/$file
		if [ "${file%.chunks.jsonl}" != "$file" ]; then
			# vercel/ai payload lines are served framed as SSE.
			"$TT_PY" -c '
import sys
lines = [l for l in open(sys.argv[1], "rb").read().split(b"\n") if l.strip()]
sys.stdout.buffer.write(b"".join(b"data: " + l + b"\n\n" for l in lines) + b"data: [DONE]\n\n")
' "$want" >"$W/want"
			want=$W/want
		fi
		for proto in --http1.1 --http2; do
			for comp in "" --compressed; do
				out=$W/out
				rm -f "$out" "$W/hdr"
				nlog=$(mock_log_count)
				v=$(mock_curl $proto $comp -D "$W/hdr" -o "$out" -w '%{http_version} %{http_code}' \
					"$(mock_url "/fx/$name/v1/x")")
				what="$name $proto ${comp:-identity}"
				case "$proto:$v" in
				--http1.1:"1.1 200" | --http2:"2 200") ;;
				*) fail "$what: got '$v'" ;;
				esac
				cmp -s "$out" "$want" || fail "$what: body differs from the fixture"
				hdrs=$(tr -d '\r' <"$W/hdr" | tr '[:upper:]' '[:lower:]')
				if [ -n "$comp" ]; then
					grep -q '^content-encoding: gzip$' <<<"$hdrs" || fail "$what: not gzip-encoded"
				else
					! grep -q '^content-encoding:' <<<"$hdrs" || fail "$what: encoded without Accept-Encoding"
				fi
				if [ "$proto" = --http1.1 ]; then
					if [ "$streamed" = yes ]; then
						grep -q '^transfer-encoding: chunked$' <<<"$hdrs" || fail "$what: not chunked"
					else
						grep -q '^content-length: ' <<<"$hdrs" || fail "$what: no Content-Length"
					fi
				fi
				mock_wait_log $((nlog + 1)) || fail "$what: not logged"
				"$TT_PY" - "$MOCK_LOG" "$want" "${v%% *}" "$([ -n "$comp" ] && echo gzip || echo identity)" <<'PY' ||
import hashlib, json, sys
log, want, http, enc = sys.argv[1:]
d = json.loads(open(log).read().splitlines()[-1])
w = open(want, "rb").read()
assert d["body_sha256"] == hashlib.sha256(w).hexdigest(), "body_sha256"
assert open(d["body_file"], "rb").read() == w, "body_file"
assert d["http"] == http and d["encoding"] == enc and d["complete"], d
PY
					fail "$what: the log line is wrong"
				check "$what: body equals the fixture, headers and log right"
			done
		done
	done <<'EOF'
openai/chat-stream-include-usage-toolcall|openai/chat-stream-include-usage-toolcall.sse|yes
bedrock/converse-stream-claude3-sonnet|bedrock/converse-stream-claude3-sonnet.eventstream|yes
deepseek/chat-stream-cache-hit|deepseek/chat-stream-cache-hit.chunks.jsonl|yes
anthropic/messages-nonstream-cache-write|anthropic/messages-nonstream-cache-write.json|no
EOF

	v=$(mock_curl -o "$W/out" -w '%{http_code}' "$(mock_url /fx/anthropic/error-529-overloaded/v1/messages)")
	[ "$v" = 529 ] || fail "529 fixture answered $v"
	check "status comes from the fixture metadata"
	nlog=$(mock_log_count)
	mock_curl --http1.1 -D "$W/hdr" -o "$W/out" \
		"$(mock_url /fx/bedrock/invoke-nova-nonstream-guardrail-partial-usage/model/m/invoke)"
	out_hdr=$(tr -d '\r' <"$W/hdr" | sed -n 's/^[Xx]-[Aa]mzn-[Bb]edrock-[Oo]utput-[Tt]oken-[Cc]ount: //p')
	want_hdr=$(json_get "$FX/bedrock/invoke-nova-nonstream-guardrail-partial-usage.meta.json" \
		'd["response_headers"]["X-Amzn-Bedrock-Output-Token-Count"][0]')
	[ -n "$out_hdr" ] && [ "$out_hdr" = "$want_hdr" ] || fail "bedrock token-count header: '$out_hdr'"
	check "bedrock token-count headers are replayed"
	mock_wait_log $((nlog + 1)) || fail "bedrock fixture not logged"
	got=$("$TT_PY" "$TT_MOCK_DIR/expect.py" --log-entry "$(mock_log_last)" | json_get - 'd["output_tokens"]')
	[ "$got" = "$out_hdr" ] || fail "expect.py --log-entry: output $got, header says $out_hdr"
	check "expect.py --log-entry takes the output count from the logged header"
	grep -qi '^content-type: application/vnd.amazon.eventstream' <(
		mock_curl -D - -o /dev/null "$(mock_url /fx/bedrock/invoke-stream-nova/x)") ||
		fail "eventstream content type"
	check "content type from the extension"
	v=$(mock_curl -o /dev/null -w '%{http_code}' "$(mock_url /fx/openai/..%2f..%2fMANIFEST/x)")
	[ "$v" = 404 ] || fail "path traversal answered $v"
	check "fixture names cannot leave the fixture tree"

	# h2 multiplexing: 12 concurrent streams on one connection.
	args=()
	for i in $(seq 12); do
		args+=(-o "$W/par.$i" "$(mock_url "/fx/openai/chat-stream-include-usage-toolcall/$i")")
	done
	# (curl draws its parallel progress meter even with -s: keep it aside.)
	mock_curl --http2 -Z --parallel-max 12 "${args[@]}" 2>"$W/par.err" ||
		fail "parallel h2 transfers: $(cat "$W/par.err")"
	for i in $(seq 12); do
		cmp -s "$W/par.$i" "$FX/openai/chat-stream-include-usage-toolcall.sse" ||
			fail "parallel stream $i differs"
	done
	check "12 parallel h2 streams all complete and intact"

	# Every fixture of the manifest, replayed in one parallel h2 curl: the
	# bytes and the status (the manifest's http_status, else 200).
	nlog=$(mock_log_count)
	"$TT_PY" - "$FX" "$MOCK_URL" "$W" >"$W/all.cfg" <<'PY'
import csv, os, sys
fx, url, w = sys.argv[1:]
rows = list(csv.DictReader(open(os.path.join(fx, "MANIFEST.tsv")), delimiter="\t", quoting=csv.QUOTE_NONE))
for i, r in enumerate(rows):
    prov, fn = r["file"].split("/", 1)
    name = fn.split(".")[0]
    print('url = "%s/fx/%s/%s/all/%d"\noutput = "%s/all.%d"' % (url, prov, name, i, w, i))
PY
	mock_curl --http2 --compressed -Z --parallel-max 20 -K "$W/all.cfg" 2>"$W/all.err" ||
		fail "replaying every fixture: $(cat "$W/all.err")"
	total=$(grep -c '^url' "$W/all.cfg")
	mock_wait_log $((nlog + total)) || fail "not every fixture was logged"
	"$TT_PY" - "$FX" "$W" "$MOCK_LOG" <<'PY' || fail "a replayed fixture differs"
import csv, json, os, sys
fx, w, log = sys.argv[1:]
rows = list(csv.DictReader(open(os.path.join(fx, "MANIFEST.tsv")), delimiter="\t", quoting=csv.QUOTE_NONE))
status = {}
for line in open(log):
    e = json.loads(line)
    if "/all/" in e["path"]:
        status[int(e["path"].rsplit("/", 1)[1])] = e["status"]
for i, r in enumerate(rows):
    want = open(os.path.join(fx, r["file"]), "rb").read()
    if r["file"].endswith(".chunks.jsonl"):
        want = b"".join(b"data: " + l + b"\n\n" for l in want.split(b"\n") if l.strip()) + b"data: [DONE]\n\n"
    got = open(os.path.join(w, "all.%d" % i), "rb").read()
    assert got == want, r["file"]
    st = int(r["http_status"]) if r["http_status"].isdigit() else 200
    assert status.get(i) == st, (r["file"], status.get(i), st)
print("replayed", len(rows), "fixtures")
PY
	check "all $total manifest fixtures replay byte for byte with their status"

	# Optional codings: only when Debian's python3-brotli / python3-zstandard
	# are installed (the mock then offers them).
	for enc in br:brotli zstd:zstandard; do
		mod=${enc#*:} enc=${enc%%:*}
		if ! "$TT_PY" -c "import $mod" 2>/dev/null; then
			echo "skip: $enc coding not checked (python module $mod absent)"
			continue
		fi
		for proto in --http1.1 --http2; do
			mock_curl $proto --compressed -H "Accept-Encoding: $enc" -D "$W/hdr" -o "$W/out" \
				"$(mock_url /fx/openai/chat-stream-include-usage-toolcall/x)"
			grep -qi "^content-encoding: $enc" "$W/hdr" || fail "$enc $proto: not $enc-encoded"
			cmp -s "$W/out" "$FX/openai/chat-stream-include-usage-toolcall.sse" || fail "$enc $proto: body differs"
			check "$enc $proto: streamed body decodes to the fixture"
		done
	done

	sel=$("$TT_PY" "$TT_MOCK_DIR/expect.py" --selftest "$FX" | tail -n 1)
	echo "expect.py --selftest: $sel"
	case "$sel" in
	*" ok / 0 mismatch") ;;
	*) "$TT_PY" "$TT_MOCK_DIR/expect.py" --selftest "$FX" | grep MISMATCH >&2
	   fail "expect.py self-test: $sel" ;;
	esac
	check "expect.py agrees with every MANIFEST row"
fi

# --- synthetic answers ---------------------------------------------------------
# The formulas (documented in mock_provider.py), computed here on their own.
formula() { # formula MODEL PROMPT_FILE MAX_TOKENS|-  -> "input natural output"
	"$TT_PY" -c '
import hashlib, sys
model, prompt, mt = sys.argv[1], open(sys.argv[2], encoding="utf-8").read(), sys.argv[3]
b = prompt.encode("utf-8")
h = int.from_bytes(hashlib.sha256(model.encode() + b"\0" + b).digest()[:4], "big")
nat = 20 + h % 200
out = nat if mt == "-" else min(int(mt), nat)
print((len(b) + 3) // 4, nat, out)
' "$@"
}

# One synthetic exchange: api path, request JSON, then a Python check
# over (req, body, f) where f = (input, natural, output); extra curl args.
synth() { # synth NAME PATH REQFILE PYCHECK [curl args...]
	local name=$1 path=$2 req=$3 code=$4
	shift 4
	local nlog
	nlog=$(mock_log_count)
	mock_curl "$@" -o "$W/body" -w '%{http_code}' -H 'Content-Type: application/json' \
		-H 'Authorization: Bearer sk-mock-secret-key' --data-binary "@$req" \
		"$(mock_url "$path")" >"$W/code"
	[ "$(cat "$W/code")" = 200 ] || fail "$name: HTTP $(cat "$W/code")"
	"$TT_PY" - "$req" "$W/body" "$W/prompt" "$W/formula" <<EOF || fail "$name: check failed"
import json, re, sys
req = json.load(open(sys.argv[1]))
raw = open(sys.argv[2], "rb").read()
f = [int(x) for x in open(sys.argv[4]).read().split()]
def sse(raw):
    evs = []
    for block in re.split(r"\n\n", raw.decode()):
        ev, data = None, []
        for line in block.split("\n"):
            if line.startswith("event: "): ev = line[7:]
            elif line.startswith("data: "): data.append(line[6:])
        if data: evs.append((ev, "\n".join(data)))
    return evs
$code
EOF
	# expect.py must read the same figures off the body the mock logged.
	mock_wait_log $((nlog + 1)) || fail "$name: not logged"
	"$TT_PY" - "$TT_MOCK_DIR" "$MOCK_LOG" "$path" <<'EOF' || fail "$name: expect.py disagrees with the mock"
import json, sys
sys.dont_write_bytecode = True
sys.path.insert(0, sys.argv[1])
import expect
d = json.loads(open(sys.argv[2]).read().splitlines()[-1])
s = d["synthetic"]
e = expect.expect(open(d["body_file"], "rb").read(), sys.argv[3], d["status"])
if not s["usage_in_body"]:
    assert e["usage_source"] == "estimated", e
else:
    for k in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"):
        assert e[k] == s[k], (k, e[k], s[k])
    assert e["usage_source"] == "provider", e
assert e["model"] == s["model"], (e["model"], s["model"])
EOF
	grep -q 'sk-mock-secret' "$MOCK_LOG" && fail "$name: the log holds the API key"
	check "$name"
}

prompt_text="Say hello to the tokentap test suite, please. ünïcödé"
printf '%s' "$prompt_text" >"$W/prompt"
"$TT_PY" -c '
import json, sys
p = sys.argv[1]
json.dump({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": p}], "max_tokens": 500}, open(sys.argv[2] + "/oa.json", "w"))
json.dump({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": [{"type": "text", "text": p}]}], "stream": True, "stream_options": {"include_usage": True}, "max_tokens": 25}, open(sys.argv[2] + "/oa_s.json", "w"))
json.dump({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": p}], "stream": True}, open(sys.argv[2] + "/oa_nu.json", "w"))
json.dump({"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": [{"role": "user", "content": p}]}, open(sys.argv[2] + "/an.json", "w"))
json.dump({"model": "claude-sonnet-4-5", "max_tokens": 7, "stream": True, "messages": [{"role": "user", "content": [{"type": "text", "text": p}]}]}, open(sys.argv[2] + "/an_s.json", "w"))
' "$prompt_text" "$W"

formula gpt-4o-mini "$W/prompt" 500 >"$W/formula"
synth "OpenAI chat, not streamed, HTTP/2" /v1/chat/completions "$W/oa.json" '
d = json.loads(raw)
u = d["usage"]
assert d["object"] == "chat.completion" and d["model"] == "gpt-4o-mini"
assert u["prompt_tokens"] == f[0] and u["completion_tokens"] == f[2], (u, f)
assert u["total_tokens"] == f[0] + f[2]
assert u["prompt_tokens_details"]["cached_tokens"] == 0
assert len(d["choices"][0]["message"]["content"].split()) == f[2]
assert d["choices"][0]["finish_reason"] == ("length" if f[2] < f[1] else "stop")
'
formula gpt-4o-mini "$W/prompt" 25 >"$W/formula"
synth "OpenAI chat, streamed with include_usage, HTTP/1.1 gzip" /v1/chat/completions "$W/oa_s.json" '
evs = sse(raw)
assert evs[-1][1] == "[DONE]"
chunks = [json.loads(d) for _, d in evs[:-1]]
with_usage = [c for c in chunks if c.get("usage")]
assert len(with_usage) == 1 and with_usage[0] is chunks[-1] and chunks[-1]["choices"] == []
u = chunks[-1]["usage"]
assert u["prompt_tokens"] == f[0] and u["completion_tokens"] == f[2] == 25, (u, f)
text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
assert len(text.split()) == f[2]
assert chunks[-2]["choices"][0]["finish_reason"] == "length"
' --http1.1 --compressed
formula gpt-4o-mini "$W/prompt" - >"$W/formula"
synth "OpenAI chat, streamed without include_usage: no usage anywhere" /v1/chat/completions "$W/oa_nu.json" '
evs = sse(raw)
assert evs[-1][1] == "[DONE]"
chunks = [json.loads(d) for _, d in evs[:-1]]
assert all("usage" not in c for c in chunks)
text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
assert len(text.split()) == f[2] == f[1]
'
formula claude-sonnet-4-5 "$W/prompt" 1024 >"$W/formula"
synth "Anthropic, not streamed" /v1/messages "$W/an.json" '
d = json.loads(raw)
u = d["usage"]
assert d["type"] == "message" and d["model"] == "claude-sonnet-4-5"
assert u["input_tokens"] == f[0] and u["output_tokens"] == f[2]
assert u["cache_read_input_tokens"] == 0 and u["cache_creation_input_tokens"] == 0
assert len(d["content"][0]["text"].split()) == f[2]
'
formula claude-sonnet-4-5 "$W/prompt" 7 >"$W/formula"
synth "Anthropic, streamed, HTTP/1.1" /v1/messages "$W/an_s.json" '
evs = [(e, json.loads(d)) for e, d in sse(raw)]
names = [e for e, _ in evs]
assert names[0] == "message_start" and names[-1] == "message_stop", names
assert all(e == d["type"] for e, d in evs)
start = evs[0][1]["message"]["usage"]
delta = [d for e, d in evs if e == "message_delta"][-1]["usage"]
assert start["input_tokens"] == f[0] and delta["output_tokens"] == f[2] == 7
assert [d for e, d in evs if e == "message_delta"][-1]["delta"]["stop_reason"] == "max_tokens"
text = "".join(d["delta"]["text"] for e, d in evs if e == "content_block_delta")
assert len(text.split()) == f[2]
' --http1.1

# Prompt caching: a system prompt of >= 1024 tokens seen before is cached.
"$TT_PY" -c '
import json, sys
w = sys.argv[1]
sys_p = "You are a careful assistant. " * 160          # 4640 bytes: 1160 tokens
user = "What is two plus two?"
open(w + "/sys", "w").write(sys_p)
open(w + "/sysprompt", "w").write(sys_p + user)
json.dump({"model": "gpt-4o", "max_tokens": 50, "messages": [
    {"role": "system", "content": sys_p}, {"role": "user", "content": user}]},
    open(w + "/oa_c.json", "w"))
json.dump({"model": "claude-sonnet-4-5", "max_tokens": 50, "system": [
    {"type": "text", "text": sys_p, "cache_control": {"type": "ephemeral"}}],
    "messages": [{"role": "user", "content": user}]}, open(w + "/an_c.json", "w"))
d = json.load(open(w + "/an_c.json"))
d["stream"] = True
json.dump(d, open(w + "/an_cs.json", "w"))
' "$W"
sys_tokens=$(( ($(wc -c <"$W/sys") + 3) / 4 ))
[ "$sys_tokens" -ge 1024 ] || fail "test system prompt too short"
cp "$W/sysprompt" "$W/prompt"
formula gpt-4o "$W/prompt" 50 >"$W/formula"
synth "OpenAI cache: first sight is not cached" /v1/chat/completions "$W/oa_c.json" '
u = json.loads(raw)["usage"]
assert u["prompt_tokens"] == f[0] and u["prompt_tokens_details"]["cached_tokens"] == 0, u
'
synth "OpenAI cache: second sight is cached, inside prompt_tokens" /v1/chat/completions "$W/oa_c.json" "
u = json.loads(raw)['usage']
assert u['prompt_tokens'] == f[0] and u['prompt_tokens_details']['cached_tokens'] == $sys_tokens, u
"
formula claude-sonnet-4-5 "$W/prompt" 50 >"$W/formula"
synth "Anthropic cache: cache_control writes the first time" /v1/messages "$W/an_c.json" "
u = json.loads(raw)['usage']
assert u['cache_creation_input_tokens'] == $sys_tokens and u['cache_read_input_tokens'] == 0, u
assert u['input_tokens'] == f[0] - $sys_tokens, u
"
synth "Anthropic cache: then reads, outside input_tokens (streamed)" /v1/messages "$W/an_cs.json" "
evs = [(e, json.loads(d)) for e, d in sse(raw)]
u = [d for e, d in evs if e == 'message_delta'][-1]['usage']
assert u['cache_read_input_tokens'] == $sys_tokens and u['cache_creation_input_tokens'] == 0, u
assert u['input_tokens'] == f[0] - $sys_tokens, u
"

# --- request bodies ------------------------------------------------------------
"$TT_PY" -c '
import json, sys
p = "lorem " * 40000
open(sys.argv[1] + "/big_prompt", "w").write(p)
json.dump({"model": "m", "max_tokens": 3, "messages": [{"role": "user", "content": p}]}, open(sys.argv[1] + "/big.json", "w"))
' "$W"
exp_in=$(( ($(wc -c <"$W/big_prompt") + 3) / 4 ))
mock_curl --http1.1 -v -H 'Expect: 100-continue' -H 'Content-Type: application/json' \
	--data-binary "@$W/big.json" -o "$W/out" "$(mock_url /v1/chat/completions)" 2>"$W/verbose"
grep -q '< HTTP/1.1 100 Continue' "$W/verbose" || fail "no 100 Continue"
[ "$(json_get "$W/out" 'd["usage"]["prompt_tokens"]')" = "$exp_in" ] || fail "100-continue body lost"
check "Expect: 100-continue is answered and the 240 KB body read"
mock_curl --http1.1 -H 'Transfer-Encoding: chunked' -H 'Content-Type: application/json' \
	--data-binary "@$W/big.json" -o "$W/out" "$(mock_url /v1/chat/completions)"
[ "$(json_get "$W/out" 'd["usage"]["prompt_tokens"]')" = "$exp_in" ] || fail "chunked request body lost"
check "chunked request body"
mock_curl --http2 -H 'Content-Type: application/json' \
	--data-binary "@$W/big.json" -o "$W/out" "$(mock_url /v1/chat/completions)"
[ "$(json_get "$W/out" 'd["usage"]["prompt_tokens"]')" = "$exp_in" ] || fail "h2 request body lost"
check "240 KB request body over h2 (flow control)"

# --- robustness ------------------------------------------------------------------
if [ -n "$FX" ]; then
	rc=0
	nlog=$(mock_log_count)
	mock_curl --http1.1 -o "$W/out" "$(mock_url /reset/fx/openai/chat-stream-include-usage-toolcall/x)" 2>/dev/null || rc=$?
	[ "$rc" -ne 0 ] || fail "/reset/ did not break the transfer"
	mock_wait_log $((nlog + 1)) || fail "/reset/ not logged"
	[ "$(mock_log_last complete)" = false ] || fail "/reset/ logged as complete"
	[ "$(mock_log_last body_bytes)" = 100 ] || fail "/reset/ cut at $(mock_log_last body_bytes) bytes"
	check "/reset/ cuts the connection after --reset-after-bytes (curl exit $rc)"
	rc=0
	nlog=$(mock_log_count)
	mock_curl --http2 --compressed -o "$W/out" "$(mock_url /reset/777/fx/openai/chat-stream-include-usage-toolcall/x)" 2>/dev/null || rc=$?
	[ "$rc" -ne 0 ] || fail "/reset/777/ did not break the h2 transfer"
	mock_wait_log $((nlog + 1)) || fail "/reset/777/ not logged"
	[ "$(mock_log_last body_bytes)" = 777 ] || fail "/reset/777/ cut at $(mock_log_last body_bytes) bytes"
	cmp -s "$W/out" <(head -c 777 "$FX/openai/chat-stream-include-usage-toolcall.sse") ||
		cmp -s "$W/out" <(head -c "$(stat -c %s "$W/out")" "$FX/openai/chat-stream-include-usage-toolcall.sse") ||
		fail "/reset/777/: what arrived is not a prefix of the fixture"
	check "/reset/<N>/ over h2 and gzip cuts after N body bytes (curl exit $rc)"
fi
# A client that reads a little and leaves; then one that resets h2 streams.
mock_curl --http1.1 -N --data-binary "@$W/oa_nu.json" "$(mock_url /v1/chat/completions)" 2>/dev/null | head -c 10 >/dev/null || true
mock_curl --http2 --max-time 0.05 --data-binary "@$W/oa_nu.json" -o /dev/null "$(mock_url /v1/chat/completions)" 2>/dev/null || true
sleep 0.3
kill -0 "$MOCK_PID" || fail "the mock died after a client went away"
v=$(mock_curl -o /dev/null -w '%{http_code}' "$(mock_url /healthz)")
[ "$v" = 200 ] || fail "mock does not answer after a client went away"
check "clients leaving mid-response do not hurt the server"

pid=$MOCK_PID
kill -TERM "$pid"
for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && fail "the mock ignores SIGTERM"
rc=0
wait "$pid" || rc=$?
[ "$rc" = 0 ] || fail "the mock exited $rc on SIGTERM"
check "SIGTERM stops the mock cleanly"

echo "all $n checks passed"
