#!/usr/bin/env bash
# The agent on real timing: streams paced like a real provider's (the mock's
# /paced/: first body byte after 0.5-2 s, then 20-80 events/s), a 10 s
# silence mid-stream (/stall/10000/, as reasoning models do) and a stream of
# more than 60 s (/words/1200/rate/20/), for every family of clients the
# agent's tests use:
#   curl        HTTP/1.1, HTTP/2, --compressed on both, three streams
#               multiplexed on one HTTP/2 connection; the 10 s stall on an
#               Anthropic messages stream and the 60 s OpenAI stream, each
#               over both HTTP versions
#   python      urllib reading 64 bytes every 20 ms; asyncio (memory BIOs);
#               a process that forks mid-stream while a thread keeps
#               allocating memory, the child streaming too
#   tt_client   raw OpenSSL, three threads, SSL_peek + the _ex calls
#   enforce     a task under a deny budget of 5 calls (tokentapd, leases):
#               3 paced streams at once from two processes (python threads,
#               curl over HTTP/2), the collector's counts equal the records;
#               then a later process gets exactly the 2 calls left, its
#               third is blocked
# Every call has exactly one record (none lost, none doubled: the number of
# records equals the number of responses the mock logged), whole (error
# null, usage from the provider) and exact: tests/e2e/clients/check_records.py
# compares it with expect.py's figures for the body the mock logged.  What
# each client received equals that body; the record lasted at least as long
# as the mock took to send it; the long cases really were long (the mock's
# log says so).  The API key reaches no output.  The long cases run in the
# background while the rest go on and are checked, so the whole test takes
# about 65-70 s, the length of the longest stream.
set -euo pipefail
. "$(dirname "$0")/clients/agent_lib.sh"
[ -x /usr/bin/python3 ] || skip "/usr/bin/python3 absent"
"$TT_PY" -c 'import h2' 2>/dev/null || skip "Debian python3-h2 is not installed (the mock's HTTP/2)"
curl --version | grep -qw HTTP2 || skip "this curl has no HTTP/2"
[ -x "$BUILD/tokentapd" ] || skip "tokentapd not built; run make"
[ -x "$CLIENTS/tt_client" ] || skip "tt_client not built; run make"
agent_setup
PC=$AGENT_E2E_DIR/clients/paced_client.py
PYC=$AGENT_E2E_DIR/clients/py_client.py
t0=$(date +%s)

# ---- requests ---------------------------------------------------------------
printf '%s' '{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"system","content":"You answer slowly."},{"role":"user","content":"Tell me a long story about tokens and money."}]}' >"$T/chat.json"
printf '%s' '{"model":"claude-3-5-haiku-20241022","max_tokens":4096,"stream":true,"system":"Think first.","messages":[{"role":"user","content":"Reason about the budget, then answer."}]}' >"$T/anth.json"
printf '%s' '{"model":"gpt-4o-mini","max_tokens":200,"stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"one paced step under a budget"}]}' >"$T/enf.json"

# Each call carries a tag in its path (/<markers>/t-<tag>/v1/...): the mock
# ignores it, the record keeps it, and the checks below find the call's mock
# log entry, client output and record by it.  $T/spec gets one line per call:
#   CASE|OUT(records file)|COMM|TAG|CLIENT_BODY_FILE|MIN_MOCK_DURATION_MS|MIN_MOCK_GAP_MS
: >"$T/spec"
spec() { printf '%s|%s|%s|%s|%s|%s|%s\n' "$@" >>"$T/spec"; }

pids=() names=()
bg() { # NAME CMD...: run in the background, remembered for wait_all
	local name=$1
	shift
	"$@" &
	pids+=($!)
	names+=("$name")
}
to() { # STDOUT STDERR CMD...: run CMD with its output in files
	local o=$1 e=$2
	shift 2
	"$@" >"$o" 2>"$e"
}
wait_all() {
	local i rc
	for i in "${!pids[@]}"; do
		rc=0
		wait "${pids[i]}" || rc=$?
		[ "$rc" = 0 ] || fail "case ${names[i]} failed (exit $rc): $(head -c 2000 "$T/${names[i]}".err 2>/dev/null)"
	done
	pids=() names=()
}

# curl_case NAME TAG MARKERS API(chat|anth) CURL_ARGS...: one call, under the
# agent, records to $T/out.NAME.jsonl, the body to $T/NAME.body.
curl_case() {
	local name=$1 tag=$2 markers=$3 api=$4 path req hdr=()
	shift 4
	if [ "$api" = anth ]; then
		path=/v1/messages req=$T/anth.json hdr=(-H 'anthropic-version: 2023-06-01')
	else
		path=/v1/chat/completions req=$T/chat.json
	fi
	TOKENTAP_OUT=$T/out.$name.jsonl with_agent curl -sS --max-time 150 --cacert "$MOCK_CA" \
		-H "Authorization: Bearer $SENTINEL" -H 'Content-Type: application/json' "${hdr[@]}" \
		--data-binary @"$req" "$@" -o "$T/$name.body" \
		"$(mock_url "$markers/t-$tag$path")" 2>"$T/$name.err" || return 1
	[ ! -s "$T/$name.err" ] || { cat "$T/$name.err" >&2; return 1; }
}

# Per case: check_records.py on that case's records against that case's mock
# entries (exact figures, one record per response), then what it does not
# look at: error null, usage from the provider, the client got the body the
# mock sent, the record lasted as long as the stream, the mock's timings.
check_cases() { # CASE...
	"$TT_PY" - "$T/spec" "$MOCK_LOG" "$T" "$AGENT_E2E_DIR/clients/check_records.py" "$@" <<'PY' ||
import collections, json, re, subprocess, sys, time
spec_f, mock_log, T, check = sys.argv[1:5]
want = sys.argv[5:]
CHECK = [sys.executable, check]
cases = collections.OrderedDict()
for line in open(spec_f):
    case, out, comm, tag, body, min_dur, min_gap = line.rstrip("\n").split("|")
    c = cases.setdefault(case, {"out": out, "comm": comm, "calls": []})
    c["calls"].append((tag, body, int(min_dur), int(min_gap)))

def tag_of(path):
    m = re.search(r"/t-([a-z0-9-]+)/", path)
    return m.group(1) if m else None

for name in want:
    c = cases[name]
    tags = [t for t, *_ in c["calls"]]
    # The mock logs a response just after its last byte: wait a little.
    for _ in range(100):
        mine = [e for e in map(json.loads, open(mock_log)) if tag_of(e["path"]) in tags]
        if len(mine) >= len(tags):
            break
        time.sleep(0.1)
    if len(mine) != len(tags):
        sys.exit(f"{name}: the mock logged {len(mine)} responses, want {len(tags)}")
    sub = f"{T}/mock.{name}.log"
    with open(sub, "w") as f:
        f.writelines(json.dumps(e) + "\n" for e in mine)
    r = subprocess.run(CHECK + ["--records", c["out"], "--mock-log", sub,
                                "--expect-count", str(len(tags))] +
                       (["--comm", c["comm"]] if c["comm"] != "-" else []),
                       capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"{name}: check_records: {r.stderr.strip()}\n{r.stdout}")
    recs = [json.loads(l) for l in open(c["out"])]
    for rec in recs:
        if rec["error"] is not None or rec["usage_source"] != "provider" or rec["blocked"]:
            sys.exit(f"{name}: record not whole: error={rec['error']!r} "
                     f"usage_source={rec['usage_source']!r} blocked={rec['blocked']!r}")
        if rec["status"] != 200 or rec["stream"] is not True or not rec["output_tokens"]:
            sys.exit(f"{name}: record: status {rec['status']} stream {rec['stream']} "
                     f"output_tokens {rec['output_tokens']}")
    # Pair records and responses by path (several calls on one path: by
    # duration, shortest with shortest).
    by_path = collections.defaultdict(lambda: ([], []))
    for e in mine:
        by_path[e["path"]][0].append(e)
    for rec in recs:
        by_path[rec["path"]][1].append(rec)
    for path, (es, rs) in by_path.items():
        es.sort(key=lambda e: e["duration_ms"])
        rs.sort(key=lambda r: r["duration_ms"])
        for e, rec in zip(es, rs):
            if not e["complete"] or e["status"] != 200 or not e["streamed"]:
                sys.exit(f"{name}: the mock did not send {path} whole: {e}")
            # The record spans request start to the last byte read; the
            # mock's duration runs from the request read to its last write.
            if rec["duration_ms"] is None or rec["duration_ms"] + 50 < e["duration_ms"]:
                sys.exit(f"{name}: {path}: the record lasted {rec['duration_ms']} ms, "
                         f"the mock sent for {e['duration_ms']} ms: cut short")
    for tag, body, min_dur, min_gap in c["calls"]:
        e = next(e for e in mine if tag_of(e["path"]) == tag)
        if e["duration_ms"] < min_dur:
            sys.exit(f"{name}: {tag}: the stream lasted {e['duration_ms']} ms, want >= {min_dur}")
        if min_gap and (e["max_gap_ms"] or 0) < min_gap:
            sys.exit(f"{name}: {tag}: longest silence {e['max_gap_ms']} ms, want >= {min_gap}")
        if body != "-" and open(body, "rb").read() != open(e["body_file"], "rb").read():
            sys.exit(f"{name}: {tag}: the client's body differs from what the mock sent")
    d = [e["duration_ms"] for e in mine]
    print(f"case {name}: {len(recs)} records exact, whole; mock ttft "
          f"{min(e['ttft_ms'] for e in mine):.0f}-{max(e['ttft_ms'] for e in mine):.0f} ms, "
          f"duration {min(d) / 1000:.1f}-{max(d) / 1000:.1f} s, events "
          f"{sorted({e['events'] for e in mine}, key=str)}, max gap "
          f"{max(e['max_gap_ms'] or 0 for e in mine):.0f} ms")
PY
		fail "paced records: $*"
}


# ---- the long ones first: they set the test's length ------------------------
spec long-h1 "$T/out.long-h1.jsonl" curl long-h1 "$T/long-h1.body" 60000 0
bg long-h1 curl_case long-h1 long-h1 /words/1200/rate/20 chat --http1.1
spec long-h2 "$T/out.long-h2.jsonl" curl long-h2 "$T/long-h2.body" 60000 0
bg long-h2 curl_case long-h2 long-h2 /words/1200/rate/20 chat --http2
spec stall-h1 "$T/out.stall-h1.jsonl" curl stall-h1 "$T/stall-h1.body" 10000 10000
bg stall-h1 curl_case stall-h1 stall-h1 /paced/stall/10000 anth --http1.1
spec stall-h2 "$T/out.stall-h2.jsonl" curl stall-h2 "$T/stall-h2.body" 10000 10000
bg stall-h2 curl_case stall-h2 stall-h2 /paced/stall/10000 anth --compressed
long_pids=("${pids[@]}") long_names=("${names[@]}")
pids=() names=()

# ---- 1. curl, /paced/ ---------------------------------------------------------
for c in "h1 --http1.1" "h2 --http2" "h1gz --http1.1 --compressed" "h2gz --compressed"; do
	# shellcheck disable=SC2086 # a name and curl's options, split on spaces
	set -- $c
	spec "curl-$1" "$T/out.curl-$1.jsonl" curl "$1" "$T/curl-$1.body" 0 0
	bg "curl-$1" curl_case "curl-$1" "$1" /paced chat "${@:2}"
done
# Three paced streams multiplexed on one HTTP/2 connection: their events
# interleave in the connection's reads.
mux_urls=()
for i in 1 2 3; do
	spec curl-mux "$T/out.curl-mux.jsonl" curl "mux$i" "$T/curl-mux.$i.body" 0 0
	mux_urls+=(-o "$T/curl-mux.$i.body" "$(mock_url "/paced/words/80/t-mux$i/v1/chat/completions")")
done
mux() {
	# curl 7.88 shows --parallel's progress meter even with -s.
	TOKENTAP_OUT=$T/out.curl-mux.jsonl with_agent curl -sS --no-progress-meter --max-time 60 --cacert "$MOCK_CA" \
		-H "Authorization: Bearer $SENTINEL" -H 'Content-Type: application/json' \
		--data-binary @"$T/chat.json" --http2 --parallel --parallel-max 3 \
		-w '%{http_version} %{num_connects}\n' "${mux_urls[@]}" \
		>"$T/curl-mux.w" 2>"$T/curl-mux.err" && [ ! -s "$T/curl-mux.err" ]
}
bg curl-mux mux

# ---- 4. python urllib, a slow reader -------------------------------------------
spec py-slow "$T/out.py-slow.jsonl" python3 slow "$T/py-slow.body" 0 0
bg py-slow to /dev/null "$T/py-slow.err" \
	env TOKENTAP_OUT="$T/out.py-slow.jsonl" LD_PRELOAD="$AGENT_SO" "$TT_PY" "$PC" slow \
	"$(mock_url /paced/t-slow/v1/messages)" "$MOCK_CA" "$SENTINEL" "$T/anth.json" \
	"$T/py-slow.body" --chunk 64 --every-ms 20

# ---- 5. python asyncio (memory BIOs) -------------------------------------------
spec py-async "$T/out.py-async.jsonl" python3 async "$T/py-async.body" 0 0
bg py-async to "$T/py-async.body" "$T/py-async.err" \
	env TOKENTAP_OUT="$T/out.py-async.jsonl" LD_PRELOAD="$AGENT_SO" "$TT_PY" "$PYC" asyncio \
	"$MOCK_PORT" "$MOCK_CA" "$SENTINEL" /paced/t-async/v1/chat/completions "$T/chat.json"

# ---- 7. fork mid-stream, the parent allocating, the child streaming too --------
spec py-fork "$T/out.py-fork.jsonl" python3 fork-p "$T/py-fork.parent" 0 0
spec py-fork "$T/out.py-fork.jsonl" python3 fork-c "$T/py-fork.child" 0 0
bg py-fork to "$T/py-fork.out" "$T/py-fork.err" \
	env TOKENTAP_OUT="$T/out.py-fork.jsonl" LD_PRELOAD="$AGENT_SO" "$TT_PY" "$PC" fork \
	"$(mock_url /paced/words/150/t-fork-p/v1/chat/completions)" \
	"$(mock_url /paced/t-fork-c/v1/chat/completions)" "$MOCK_CA" "$SENTINEL" "$T/chat.json" \
	"$T/py-fork" --grow-mb 128

# ---- tt_client: raw OpenSSL, threads, SSL_peek and the _ex calls ----------------
for i in 1 2 3; do spec tt-client "$T/out.tt-client.jsonl" tt_client ttc - 0 0; done
bg tt-client to "$T/tt-client.out" "$T/tt-client.err" \
	env TOKENTAP_OUT="$T/out.tt-client.jsonl" LD_PRELOAD="$AGENT_SO" "$CLIENTS/tt_client" \
	--port "$MOCK_PORT" --ca "$MOCK_CA" --key "$SENTINEL" --path /paced/t-ttc/v1/messages \
	--body "$T/anth.json" --threads 3 --peek --ex

# ---- 6. enforce mode: paced streams under a deny budget ------------------------
# A budget of 5 calls for the task.  Three paced streams (about 3 s each) at
# once from two processes (python threads over HTTP/1.1, curl over HTTP/2):
# all allowed (a process may hold one call more than it uses, prefetched:
# 2 + 1 and 1 + 1 fit in 5), each with its whole record; the collector then
# counts 3 calls with the records' tokens.  Both processes have exited and
# settled their leases, so a later process gets exactly the 2 calls left:
# its third call is blocked and never reaches the mock.  Had a lease not
# been settled or given back, that process would get fewer.
cat >"$T/c.json" <<J
{"budgets": [{"name": "paced-five", "scope": {"task": "*"}, "limit": {"calls": 5},
              "window": "task", "action": "deny"}]}
J
"$BUILD/tokentapd" --listen "unix:$T/c.sock" --db "$T/c.db" --config "$T/c.json" \
	>"$T/c.out" 2>"$T/c.err" &
CPID=$!
on_exit "kill $CPID 2>/dev/null; wait $CPID 2>/dev/null"
for _ in $(seq 100); do grep -q '^tokentapd: ready' "$T/c.out" && break; sleep 0.1; done
grep -q '^tokentapd: ready' "$T/c.out" || fail "tokentapd did not start: $(cat "$T/c.err")"
spec enforce "$T/out.enforce.jsonl" - enf1 "$T/enf-py.0" 0 0
spec enforce "$T/out.enforce.jsonl" - enf2 "$T/enf-py.1" 0 0
spec enforce "$T/out.enforce.jsonl" - enf3 "$T/enf-curl.body" 0 0
spec enforce-after "$T/out.enforce-after.ok.jsonl" python3 enf4 "$T/enf-after.0" 0 0
spec enforce-after "$T/out.enforce-after.ok.jsonl" python3 enf5 "$T/enf-after.1" 0 0
collector_records() { # N: wait (bounded) until the collector holds N records
	local got=0
	for _ in $(seq 100); do
		got=$(curl -sS --unix-socket "$T/c.sock" http://x/healthz | json_get - 'd["records"]')
		[ "$got" -ge "$1" ] && break
		sleep 0.1
	done
	[ "$got" = "$1" ] || { echo "enforce: the collector has $got records, want $1" >&2; return 1; }
}
enforce_case() {
	# A lease round trip may take long on a loaded machine: this test is
	# about streams, not about the collector's latency.
	local e=(TOKENTAP_MODE=enforce TOKENTAP_COLLECTOR="unix:$T/c.sock" TOKENTAP_TASK=paced-budget
		TOKENTAP_LEASE_TIMEOUT_MS=10000 TOKENTAP_OUT="$T/out.enforce.jsonl" LD_PRELOAD="$AGENT_SO")
	env "${e[@]}" "$TT_PY" "$PC" threads "$MOCK_CA" "$SENTINEL" "$T/enf.json" "$T/enf-py" \
		"$(mock_url /paced/words/60/t-enf1/v1/chat/completions)" \
		"$(mock_url /paced/words/60/t-enf2/v1/chat/completions)" \
		>"$T/enf-py.out" 2>"$T/enf-py.err" &
	local p=$!
	env "${e[@]}" curl -sS --max-time 60 --cacert "$MOCK_CA" --http2 \
		-H "Authorization: Bearer $SENTINEL" -H 'Content-Type: application/json' \
		--data-binary @"$T/enf.json" -o "$T/enf-curl.body" -w '%{http_code}\n' \
		"$(mock_url /paced/words/60/t-enf3/v1/chat/completions)" \
		>"$T/enf-curl.out" 2>"$T/enf-curl.err" || { echo "enforce: curl failed: $(cat "$T/enf-curl.err")" >&2; return 1; }
	wait "$p" || { echo "enforce: python failed: $(cat "$T/enf-py.err")" >&2; return 1; }
	if ! [ "$(cat "$T/enf-py.out")" = "$(printf 'call 0 status=200\ncall 1 status=200')" ] ||
		! [ "$(cat "$T/enf-curl.out")" = 200 ] || [ -s "$T/enf-curl.err" ] || [ -s "$T/enf-py.err" ]; then
		echo "enforce: a call within the budget failed: $(cat "$T/enf-py.out" "$T/enf-curl.out" "$T/enf-py.err" "$T/enf-curl.err")" >&2
		return 1
	fi
	collector_records 3 || return 1
	curl -sS --unix-socket "$T/c.sock" 'http://x/v1/usage?by=task' >"$T/enf-usage.json"
	curl -sS --unix-socket "$T/c.sock" 'http://x/v1/verdict?task=paced-budget' >"$T/enf-verdict.json"
	# A later process, three calls one after another: 2 allowed, the 3rd
	# blocked with a 403 (over HTTP/1.1 on a socket the agent can answer).
	env "${e[@]}" TOKENTAP_OUT="$T/out.enforce-after.jsonl" "$TT_PY" "$PC" seq "$MOCK_CA" \
		"$SENTINEL" "$T/enf.json" "$T/enf-after" \
		"$(mock_url /paced/words/30/t-enf4/v1/chat/completions)" \
		"$(mock_url /paced/words/30/t-enf5/v1/chat/completions)" \
		"$(mock_url /paced/words/30/t-enf6/v1/chat/completions)" \
		>"$T/enf-after.out" 2>"$T/enf-after.err" ||
		{ echo "enforce: the later process failed: $(cat "$T/enf-after.err")" >&2; return 1; }
	[ "$(cat "$T/enf-after.out")" = "$(printf 'call 0 status=200\ncall 1 status=200\ncall 2 status=403')" ] ||
		{ echo "enforce: the later process got $(cat "$T/enf-after.out"), want 200 200 403 (2 calls left)" >&2; return 1; }
	collector_records 6 || return 1
	curl -sS --unix-socket "$T/c.sock" 'http://x/v1/verdict?task=paced-budget' >"$T/enf-verdict2.json"
}
bg enforce enforce_case

wait_all
t_short=$(($(date +%s) - t0))
echo "short cases done after ${t_short}s; checking them while the long ones go on"

# ---- checks -------------------------------------------------------------------
# The later enforce process wrote allowed and blocked records to one file.
"$TT_PY" - "$T/out.enforce-after.jsonl" <<'PY'
import json, sys
f = sys.argv[1]
lines = open(f).read().splitlines(True)
with open(f[:-6] + ".ok.jsonl", "w") as ok, open(f[:-6] + ".blocked.jsonl", "w") as blk:
    for l in lines:
        (blk if json.loads(l)["blocked"] else ok).write(l)
PY
rm -f "$T/out.enforce-after.jsonl"
check_cases curl-h1 curl-h2 curl-h1gz curl-h2gz curl-mux py-slow py-async py-fork \
	tt-client enforce enforce-after

# curl multiplexed the three streams on one connection.
[ "$(sort "$T/curl-mux.w" | tr '\n' ' ')" = "2 0 2 0 2 1 " ] ||
	fail "curl-mux: not three HTTP/2 streams on one connection: $(cat "$T/curl-mux.w")"

# The forked child's record has its own pid, the parent's the parent's.
read -r _ ppid _ cpid _ grown <"$T/py-fork.out"
"$TT_PY" - "$T/out.py-fork.jsonl" "$ppid" "$cpid" <<'PY' || fail "fork: records from the wrong process"
import json, sys
recs = {r["path"]: r["pid"] for r in map(json.loads, open(sys.argv[1]))}
want = {"/paced/words/150/t-fork-p/v1/chat/completions": int(sys.argv[2]),
        "/paced/t-fork-c/v1/chat/completions": int(sys.argv[3])}
assert recs == want, (recs, want)
PY
echo "case py-fork: parent $ppid and child $cpid each have their record; the parent allocated $grown MiB meanwhile"

# tt_client: three answers.
[ "$(grep -c ' status=200 ' "$T/tt-client.out")" = 3 ] || fail "tt_client: $(cat "$T/tt-client.out")"

# Enforce: the collector counted the three calls with the records' figures;
# the later process's 2 allowed calls are whole and exact (checked above
# with the rest), its 3rd is blocked and reached no mock; the budget is spent.
"$TT_PY" - "$T/out.enforce.jsonl" "$T/enf-usage.json" "$T/enf-verdict.json" \
	"$T/out.enforce-after.blocked.jsonl" "$T/enf-after.2" "$T/enf-verdict2.json" <<'PY' || fail "enforce"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
usage = json.load(open(sys.argv[2]))
verdict = json.load(open(sys.argv[3]))
rows = {r["key"]: r for r in usage["rows"]}
row = rows.get("paced-budget")
assert row is not None, usage
for f in ("input_tokens", "output_tokens"):
    assert row[f] == sum(r[f] for r in recs), (f, row[f], [r[f] for r in recs])
assert row["calls"] == 3 == len(recs), row
assert all(r["task"] == "paced-budget" for r in recs), recs
assert verdict["allow"] is True, verdict
blk = [json.loads(l) for l in open(sys.argv[4])]
assert len(blk) == 1 and blk[0]["blocked"] is True and blk[0]["status"] == 403, blk
assert blk[0]["path"].endswith("/t-enf6/v1/chat/completions"), blk
err = json.load(open(sys.argv[5]))["error"]
assert err["code"] == "tokentap_budget_exceeded" and "paced-five" in err["message"], err
v2 = json.load(open(sys.argv[6]))
assert v2["allow"] is False and "paced-five" in (v2["reason"] or ""), v2
print("case enforce: 3 paced calls at once allowed; the collector counted %d calls, "
      "%d in + %d out tokens, equal to the records; a later process got the 2 calls "
      "left, its 3rd was blocked (403); budget spent" %
      (row["calls"], row["input_tokens"], row["output_tokens"]))
PY
[ "$(grep -c '^tokentap: warn: enforce: blocking LLM calls' "$T/enf-after.err")" = 1 ] ||
	fail "enforce: want one blocking line: $(cat "$T/enf-after.err")"

pids=("${long_pids[@]}") names=("${long_names[@]}")
wait_all
t_all=$(($(date +%s) - t0))
echo "all calls done after ${t_all}s"
check_cases long-h1 long-h2 stall-h1 stall-h2

# None lost, none doubled: as many records as the mock logged responses, and
# every response belongs to a call of the test.
"$TT_PY" - "$T/spec" "$MOCK_LOG" <<'PY' || fail "records and responses do not add up"
import json, re, sys
spec = [l.rstrip("\n").split("|") for l in open(sys.argv[1])]
tags = {s[3] for s in spec}
entries = [json.loads(l) for l in open(sys.argv[2])]
def tag_of(path):
    m = re.search(r"/t-([a-z0-9-]+)/", path)
    return m.group(1) if m else None
stray = [e["path"] for e in entries if tag_of(e["path"]) not in tags]
assert not stray, f"responses no case made: {stray}"
records = sum(1 for out in sorted({s[1] for s in spec}) for _ in open(out))
assert len(entries) == len(spec) == records, (len(entries), len(spec), records)
print(f"{records} records for {len(entries)} responses")
PY

# No output anywhere holds the API key.
check_no_sentinel "$T"/out.*.jsonl "$T"/*.err "$T"/*.out "$T/c.db" "$T/c.db-wal" "$T/c.out" \
	"$T/c.err" "$TOKENTAP_SPOOL"
echo "PASS: $(wc -l <"$T/spec") paced calls (long ones $t_all s, the rest $t_short s)"
