#!/usr/bin/env bash
# The mock provider itself, seen from curl: HTTP/1.1 and HTTP/2, gzip,
# fixture replay byte for byte, statuses and usage headers from the fixture
# metadata, the log and its body copies, synthetic OpenAI/Anthropic answers
# whose usage follows the documented formulas, prompt-cache simulation,
# request bodies (chunked, 100-continue), keep-alive, h2 multiplexing, the
# /reset/ marker, a client that goes away mid-stream, and exit on SIGTERM.
# Also runs expect.py's self-test against the fixture manifest.
# Pacing, timed from the client side on a second mock (--pace realistic):
# /paced/ over HTTP/1.1 and HTTP/2, with and without gzip; /ttft/ on streamed
# and non-streamed answers; /rate/ on fixtures and a JSON array; /stall/; a
# 60 s stream (/words/1200/rate/20/); slow readers; 300 streams at once.  The
# long streams run in the background, so the whole takes about 65 s.
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

# --- pacing: a second mock and the long streams, started first ----------------
# Paced streams take seconds to a minute.  They go to a second mock, started
# with --pace realistic, so that their log lines never land between a request
# to the first mock and the mock_log_last that reads it; the long ones run in
# the background while the other checks go on, and are checked at the end.
# Their paths carry a tag (/t-NAME/) by which pcheck finds their log lines.
# Timing is measured on the client side: curl's --trace-time trace, or
# client.py's kernel arrival times.
PM=$MOCK_TMP/paced
mkdir -p "$PM"
"$TT_PY" "$TT_MOCK_DIR/mock_provider.py" --port 0 --ready-file "$PM/ready.json" \
	--log "$PM/mock.log" --log-dir "$PM/bodies" --cert "$MOCK_TMP/tls/cert.pem" \
	--key "$MOCK_TMP/tls/key.pem" --max-seconds "${MOCK_MAX_SECONDS:-300}" \
	--pace realistic </dev/null >"$PM/out" 2>&1 &
PM_PID=$!
bg_pids=()
on_exit 'kill $PM_PID ${bg_pids[*]} 2>/dev/null || true'
for i in $(seq 100); do
	[ -s "$PM/ready.json" ] && break
	sleep 0.1
done
[ -s "$PM/ready.json" ] || fail "the paced mock did not start: $(cat "$PM/out")"
PM_PORT=$(json_get "$PM/ready.json" 'd["port"]')
PM_URL=https://127.0.0.1:$PM_PORT

cat >"$W/client.py" <<'PY'
# A TLS client that timestamps every read with the kernel's arrival time
# (SO_TIMESTAMPNS), so that the gaps it sees do not depend on how promptly
# this process gets the CPU.  HTTP/1.1 (Connection: close, read to EOF) or
# HTTP/2 (python3-h2; --window sets its stream window).  --slow reads 64
# bytes off the socket every 20 ms.  Writes the body to --out and {"status",
# "sent", "head", "reads": [[arrival time, body bytes], ...]} to --times.
import argparse, json, socket, ssl, struct, sys, time
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
p = argparse.ArgumentParser()
for o in ("--port", "--rcvbuf", "--window"):
    p.add_argument(o, type=int, default=0)
for o in ("--ca", "--path", "--req", "--out", "--times"):
    p.add_argument(o, required=True)
p.add_argument("--h2", action="store_true")
p.add_argument("--slow", action="store_true")
a = p.parse_args()
req = open(a.req, "rb").read()
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
if a.rcvbuf:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, a.rcvbuf)
sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
sock.settimeout(180)
sock.connect(("127.0.0.1", a.port))
ctx = ssl.create_default_context(cafile=a.ca)
ctx.set_alpn_protocols(["h2" if a.h2 else "http/1.1"])
inc, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
tls = ctx.wrap_bio(inc, outb, server_hostname="127.0.0.1")


def push(data=b""):
    if data:
        tls.write(data)
    out = outb.read()
    if out:
        sock.sendall(out)


def pull(n):
    """One socket read: (arrival time, ciphertext); b"" at EOF."""
    data, anc, _, _ = sock.recvmsg(n, socket.CMSG_SPACE(16))
    ts = time.time()
    for level, kind, cdata in anc:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(cdata) >= 16:
            sec, nsec = struct.unpack("qq", cdata[:16])
            ts = sec + nsec / 1e9
    return ts, data


def read_some():
    """One read through TLS: (arrival time, plaintext, eof)."""
    ts, data = pull(64 if a.slow else 65536)
    if data:
        inc.write(data)
    else:
        inc.write_eof()
    plain = bytearray()
    while True:
        try:
            chunk = tls.read(65536)
        except ssl.SSLWantReadError:
            break
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            return ts, bytes(plain), True
        if not chunk:
            return ts, bytes(plain), True
        plain += chunk
    if a.slow:
        time.sleep(0.02)
    return ts, bytes(plain), not data


while True:
    try:
        tls.do_handshake()
        break
    except ssl.SSLWantReadError:
        push()
        ts, data = pull(65536)
        if not data:
            sys.exit("EOF during the TLS handshake")
        inc.write(data)
push()
res = {"status": None, "sent": None, "head": None, "reads": []}
body = bytearray()
if not a.h2:
    push(("POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
          "Content-Length: %d\r\nConnection: close\r\n\r\n" % (a.path, a.port, len(req))).encode() + req)
    res["sent"] = time.time()
    raw, hend = bytearray(), -1
    while True:
        ts, plain, eof = read_some()
        if plain:
            raw += plain
            if hend < 0 and b"\r\n\r\n" in raw:
                hend = raw.index(b"\r\n\r\n") + 4
                res["head"] = ts
                if len(raw) > hend:
                    res["reads"].append([ts, len(raw) - hend])
            elif hend >= 0:
                res["reads"].append([ts, len(plain)])
        if eof:
            break
    head = raw[:hend].decode("latin-1").split("\r\n")
    res["status"] = int(head[0].split()[1])
    hdrs = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in head[1:] if ":" in l}
    rest = bytes(raw[hend:])
    assert hdrs.get("transfer-encoding", "").lower() == "chunked", hdrs
    pos = 0
    while True:   # a missing last chunk (a cut stream) raises here
        eol = rest.index(b"\r\n", pos)
        size = int(rest[pos:eol].split(b";")[0], 16)
        if size == 0:
            break
        body += rest[eol + 2:eol + 2 + size]
        assert rest[eol + 2 + size:eol + 4 + size] == b"\r\n", "bad chunk end"
        pos = eol + 4 + size
else:
    import h2.config, h2.connection, h2.events, h2.settings
    assert tls.selected_alpn_protocol() == "h2", "no h2 from ALPN"
    conn = h2.connection.H2Connection(h2.config.H2Configuration(
        client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    if a.window:
        conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: a.window})
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", "POST"), (":path", a.path), (":scheme", "https"),
                            (":authority", "127.0.0.1:%d" % a.port),
                            ("content-type", "application/json"),
                            ("content-length", str(len(req)))])
    conn.send_data(sid, req, end_stream=True)
    push(conn.data_to_send())
    res["sent"] = time.time()
    done = False
    while not done:
        ts, plain, eof = read_some()
        n = 0
        for ev in conn.receive_data(plain) if plain else []:
            if isinstance(ev, h2.events.ResponseReceived):
                res["status"] = int(dict(ev.headers)[":status"])
                res["head"] = ts
            elif isinstance(ev, h2.events.DataReceived):
                body += ev.data
                n += len(ev.data)
                # Consumed: h2 sends WINDOW_UPDATE once half the window is.
                conn.acknowledge_received_data(ev.flow_controlled_length, sid)
            elif isinstance(ev, h2.events.StreamEnded):
                done = True
            elif isinstance(ev, (h2.events.StreamReset, h2.events.ConnectionTerminated)):
                sys.exit("h2: %r" % ev)
        if n:
            res["reads"].append([ts, n])
        push(conn.data_to_send())
        if eof and not done:
            sys.exit("EOF before the end of the h2 stream")
open(a.out, "wb").write(body)
json.dump(res, open(a.times, "w"))
PY

cat >"$W/pcheck.py" <<'PY'
# pcheck MOCKDIR LOG TAG URLPATH SOURCE BODY COND: the response whose path
# holds /TAG/, seen from the client.  SOURCE is a curl --trace-ascii
# --trace-time file (TAG.w beside it holds -w '%{time_starttransfer}
# %{time_total}'), a client.py times file, or "-".  Checks that the body is
# the one the mock logged, complete, and for a synthetic answer that
# expect.py reads off it the figures the mock put in; then evaluates COND
# over: d (the log line), s (its synthetic figures), e (expect.py's), body,
# n_events (SSE events in body), sent/head (absolute s), ttft (first body
# byte - sent), head_gap (first body byte - head), span (last - first body
# read), total (last body read - sent), max_gap (between body reads),
# nreads, starttransfer and time_total (curl only), es_messages(b) and
# ndjson_lines(b).
import hashlib, json, os, re, struct, sys, time
sys.dont_write_bytecode = True
mockdir, log, tag, urlpath, src, body_file, cond = sys.argv[1:8]
sys.path.insert(0, mockdir)
import expect
# The mock logs a response just after its last byte: wait for the line.
for _ in range(100):
    hits = [json.loads(l) for l in open(log) if "/%s/" % tag in l]
    if hits:
        break
    time.sleep(0.1)
assert len(hits) == 1, "%s: %d log lines" % (tag, len(hits))
d = hits[0]
s = d["synthetic"]
body = open(body_file, "rb").read()
assert d["complete"], "%s: not complete" % tag
assert open(d["body_file"], "rb").read() == body, "the body is not the one the mock logged"
assert d["body_sha256"] == hashlib.sha256(body).hexdigest(), "body_sha256"
e = None
if s is not None:
    e = expect.expect(body, urlpath, d["status"])
    if not s["usage_in_body"]:
        assert e["usage_source"] == "estimated", e
    else:
        for k in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"):
            assert e[k] == s[k], (k, e[k], s[k])
        assert e["usage_source"] == "provider", e
    assert e["model"] == s["model"], e
n_events = len([b for b in re.split(rb"\r?\n\r?\n", body) if b.strip()])


def es_messages(b):
    """AWS eventstream messages, walked by their total-length preludes."""
    n = pos = 0
    while pos < len(b):
        pos += struct.unpack_from(">I", b, pos)[0]
        n += 1
    assert pos == len(b)
    return n


def ndjson_lines(b):
    return len([l for l in b.split(b"\n") if l.strip()])


sent = head = starttransfer = time_total = None
reads = []
if src.endswith(".trace"):
    # "13:23:07.637563 <= Recv data, 229 bytes (0xe5)": wall-clock times of
    # day, made monotonic across midnight.
    prev = 0.0
    for line in open(src, errors="replace"):
        m = re.match(r"(\d\d):(\d\d):(\d\d\.\d+) (<=|=>) (Send|Recv) (header|data), (\d+) bytes", line)
        if not m:
            continue
        t = int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3])
        while t < prev - 43200:
            t += 86400
        prev = t
        if m[5] == "Send" and head is None:
            sent = t
        elif m[5] == "Recv" and m[6] == "header" and head is None:
            head = t
        elif m[5] == "Recv" and m[6] == "data":
            reads.append((t, int(m[7])))
    w = os.path.join(os.path.dirname(src), tag + ".w")
    starttransfer, time_total = (float(x) for x in open(w).read().split())
elif src != "-":
    t = json.load(open(src))
    sent, head, reads = t["sent"], t["head"], [tuple(r) for r in t["reads"]]
ttft = head_gap = span = total = max_gap = None
nreads = len(reads)
if reads:
    ttft = reads[0][0] - sent
    head_gap = reads[0][0] - head
    span = reads[-1][0] - reads[0][0]
    total = reads[-1][0] - sent
    max_gap = max([b[0] - a[0] for a, b in zip(reads, reads[1:])] or [0.0])
ok = eval("(" + cond + ")", dict(globals()))
fmt = lambda v: "-" if v is None else "%.3f" % v
summary = "%s: %d events, %d body reads; client: ttft %s s, span %s s, total %s s, max gap %s s; mock: ttft %s ms, duration %s ms, events %s, max gap %s ms" % (
    tag, n_events, nreads, fmt(ttft), fmt(span), fmt(total), fmt(max_gap),
    d["ttft_ms"], d["duration_ms"], d["events"], d["max_gap_ms"])
if not ok:
    sys.exit("FAILED %s\n  condition: %s" % (summary, cond))
print("   ", summary)
PY

# pcheck TAG URLPATH SOURCE COND: see pcheck.py; the body is $W/TAG.body.
pcheck() {
	"$TT_PY" "$W/pcheck.py" "$TT_MOCK_DIR" "$PM/mock.log" "$1" "$2" "$3" "$W/$1.body" "$4" ||
		fail "paced $1: check failed"
}

# paced_curl TAG PATH REQ [curl args]: a request to the paced mock; body,
# trace and -w figures to $W/TAG.{body,trace,w}.  PURL=URL: another mock.
paced_curl() {
	local tag=$1 path=$2 req=$3
	shift 3
	mock_curl "$@" -o "$W/$tag.body" --trace-ascii "$W/$tag.trace" --trace-time \
		-w '%{time_starttransfer} %{time_total}' -H 'Content-Type: application/json' \
		--data-binary "@$req" "${PURL:-$PM_URL}$path" >"$W/$tag.w"
}

"$TT_PY" -c '
import json, sys
w = sys.argv[1]
def chat(**kw):
    d = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Tell me a long story."}],
         "stream": True, "stream_options": {"include_usage": True}}
    d.update(kw)
    return d
json.dump(chat(), open(w + "/p_free.json", "w"))
json.dump(chat(max_tokens=60), open(w + "/p_60.json", "w"))
json.dump(chat(max_tokens=40), open(w + "/p_40.json", "w"))
json.dump(chat(stream=False, max_tokens=20), open(w + "/p_ns.json", "w"))
json.dump({"contents": [{"role": "user", "parts": [{"text": "Tell me a story."}]}],
           "generationConfig": {"maxOutputTokens": 50}}, open(w + "/p_gm.json", "w"))
' "$W"

# A stream of 1200 words at 20 events per second: 1204 events, so 1203 gaps
# adding up to 60.15 s exactly (/rate/ scales its jitter to the mean).
paced_curl t-long /words/1200/rate/20/t-long/v1/chat/completions "$W/p_free.json" \
	--http2 --max-time 200 &
long_pid=$!
# Ten seconds of silence half-way, as a reasoning model takes.
"$TT_PY" "$W/client.py" --port "$PM_PORT" --ca "$MOCK_CA" --req "$W/p_40.json" \
	--path /paced/stall/10000/t-stall/v1/chat/completions \
	--out "$W/t-stall.body" --times "$W/t-stall.times" &
stall_pid=$!
# Slow readers, 64 bytes every 20 ms: HTTP/1.1 through a small receive
# buffer, HTTP/2 through a 1 KiB stream window.
"$TT_PY" "$W/client.py" --port "$PM_PORT" --ca "$MOCK_CA" --req "$W/p_free.json" \
	--path /words/100/rate/200/t-slow1/v1/chat/completions --slow --rcvbuf 4096 \
	--out "$W/t-slow1.body" --times "$W/t-slow1.times" &
slow1_pid=$!
"$TT_PY" "$W/client.py" --port "$PM_PORT" --ca "$MOCK_CA" --req "$W/p_free.json" \
	--path /words/100/rate/200/t-slow2/v1/chat/completions --slow --h2 --window 1024 \
	--out "$W/t-slow2.body" --times "$W/t-slow2.times" &
slow2_pid=$!
bg_pids=("$long_pid" "$stall_pid" "$slow1_pid" "$slow2_pid")

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

# --- pacing, seen from the client -------------------------------------------------
# Times come from curl's --trace-time trace: its time_starttransfer does not
# tell the first body byte (over HTTP/1.1 it is the head's arrival, which a
# streamed answer sends at once, as real providers do; over HTTP/2, curl
# 7.88 sets it before the head even arrives).  A /paced/ stream of n
# events: first body byte 0.5-2 s after the request, n-1 gaps of 12.5-50 ms.
PACED='ttft >= 0.5 and ttft <= 4 and head_gap >= 0.3
 and (n_events - 1) * 0.0125 - 0.05 <= span <= (n_events - 1) * 0.05 + 2
 and 0.5 + (n_events - 1) * 0.0125 <= time_total <= 2 + (n_events - 1) * 0.05 + 4
 and nreads >= n_events / 3 and d["events"] == n_events and d["ttft_ms"] >= 500
 and s["output_tokens"] == 60'
fg=()
paced_curl t-h1 /paced/t-h1/v1/chat/completions "$W/p_60.json" --http1.1 &
fg+=($!)
paced_curl t-h2 /paced/t-h2/v1/chat/completions "$W/p_60.json" --http2 &
fg+=($!)
paced_curl t-gz1 /paced/t-gz1/v1/chat/completions "$W/p_60.json" --http1.1 --compressed &
fg+=($!)
paced_curl t-gz2 /paced/t-gz2/v1/chat/completions "$W/p_60.json" --http2 --compressed &
fg+=($!)
paced_curl t-glob /t-glob/v1/chat/completions "$W/p_60.json" --http2 &
fg+=($!)
paced_curl t-ttfts /ttft/800/t-ttfts/v1/chat/completions "$W/p_60.json" --http1.1 &
fg+=($!)
paced_curl t-ttftn /ttft/800/t-ttftn/v1/chat/completions "$W/p_ns.json" --http2 &
fg+=($!)
paced_curl t-gm /ttft/0/rate/100/t-gm/v1beta/models/gemini-2.0-flash:streamGenerateContent \
	"$W/p_gm.json" --http2 &
fg+=($!)
for p in "${fg[@]}"; do wait "$p" || fail "a paced curl failed"; done
pcheck t-h1 /v1/chat/completions "$W/t-h1.trace" "$PACED and d['http'] == '1.1' and d['encoding'] == 'identity'"
check "/paced/ over HTTP/1.1: first body byte after 0.5 s, events 12.5-50 ms apart, body and usage intact"
pcheck t-h2 /v1/chat/completions "$W/t-h2.trace" "$PACED and d['http'] == '2' and d['encoding'] == 'identity'"
check "/paced/ over HTTP/2: the same"
pcheck t-gz1 /v1/chat/completions "$W/t-gz1.trace" "$PACED and d['http'] == '1.1' and d['encoding'] == 'gzip'"
check "/paced/ gzip over HTTP/1.1 decodes to the logged body"
pcheck t-gz2 /v1/chat/completions "$W/t-gz2.trace" "$PACED and d['http'] == '2' and d['encoding'] == 'gzip'"
check "/paced/ gzip over HTTP/2 decodes to the logged body"
pcheck t-glob /v1/chat/completions "$W/t-glob.trace" "$PACED"
check "--pace realistic paces a stream without marker like /paced/"
pcheck t-ttfts /v1/chat/completions "$W/t-ttfts.trace" \
	'ttft >= 0.8 and head_gap >= 0.6 and d["ttft_ms"] >= 800 and d["events"] == n_events'
check "/ttft/800/ on a stream: the head at once, the first body byte after 0.8 s"
pcheck t-ttftn /v1/chat/completions "$W/t-ttftn.trace" \
	'not d["streamed"] and head - sent >= 0.8 and d["ttft_ms"] >= 800 and d["events"] is None'
check "/ttft/800/ on a non-streamed answer: all of it, head included, after 0.8 s"
pcheck t-gm ':streamGenerateContent' "$W/t-gm.trace" \
	'd["events"] == len(json.loads(body)) == 7 and nreads >= 2 and d["ttft_ms"] < 500'
check "/rate/ on a streamed JSON array (Gemini): one event per element"

# Pieces mode (the first mock, --pause-ms 2) with a stall: the silence falls
# between two events.
PURL=$MOCK_URL paced_curl t-pst /stall/300/t-pst/v1/chat/completions "$W/oa_nu.json" --http1.1
"$TT_PY" "$W/pcheck.py" "$TT_MOCK_DIR" "$MOCK_LOG" t-pst /v1/chat/completions "$W/t-pst.trace" \
	"$W/t-pst.body" 'max_gap >= 0.25 and d["max_gap_ms"] >= 300 and d["events"] is None and nreads >= 3' ||
	fail "/stall/ in pieces mode"
check "/stall/300/ without pacing: one silence between the pieces, events null"

if [ -n "$FX" ]; then
	# Fixture replays, event by event: byte for byte, events counted apart.
	while IFS='|' read -r tag fx file proto cond; do
		paced_curl "$tag" "/ttft/0/rate/200/$fx/$tag/x" "$W/p_60.json" "$proto" ||
			fail "$tag: curl failed"
		pcheck "$tag" - "$W/$tag.trace" "body == open('$FX/$file', 'rb').read() and $cond"
		check "paced replay of $file ($proto): byte for byte, $cond"
	done <<'EOF2'
t-fx1|fx/openai/chat-stream-include-usage-toolcall|openai/chat-stream-include-usage-toolcall.sse|--http1.1|d["events"] == n_events
t-fx2|fx/bedrock/converse-stream-claude3-sonnet|bedrock/converse-stream-claude3-sonnet.eventstream|--http2|d["events"] == es_messages(body)
t-fx3|fx/ollama/api-chat-stream|ollama/api-chat-stream.ndjson|--http1.1|d["events"] == ndjson_lines(body)
t-fx4|chunked/fx/gemini/vertex-stream-json-array-enum-int|gemini/vertex-stream-json-array-enum-int.json|--http2|d["events"] == len(json.loads(body))
EOF2
fi

# /reset/ still cuts at its byte count when pacing.
rc=0
paced_curl t-reset /reset/500/ttft/0/rate/100/t-reset/v1/chat/completions "$W/p_60.json" \
	--http2 2>/dev/null || rc=$?
[ "$rc" -ne 0 ] || fail "paced /reset/500/ did not break the transfer"
"$TT_PY" - "$PM/mock.log" "$W/t-reset.body" <<'PY' || fail "paced /reset/500/: wrong cut"
import json, sys, time
for _ in range(100):
    hits = [json.loads(l) for l in open(sys.argv[1]) if "/t-reset/" in l]
    if hits:
        break
    time.sleep(0.1)
d = hits[0]
got = open(sys.argv[2], "rb").read()
assert d["body_bytes"] == 500 and not d["complete"] and d["events"] >= 1, d
assert open(d["body_file"], "rb").read().startswith(got), "what arrived is not a prefix"
PY
check "paced /reset/500/ cuts after 500 body bytes (curl exit $rc)"

# /words/<n>/ sets the natural length; max_tokens still caps it.
"$TT_PY" -c '
import json, sys
json.dump({"model": "claude-sonnet-4-5", "max_tokens": 1024, "stream": True,
           "messages": [{"role": "user", "content": "Hi"}]}, open(sys.argv[1] + "/an_w.json", "w"))
' "$W"
echo "1 333 333" >"$W/formula"
synth "/words/333/: Anthropic stream of 333 words" /words/333/v1/messages "$W/an_w.json" '
evs = [(e, json.loads(d)) for e, d in sse(raw)]
text = "".join(d["delta"]["text"] for e, d in evs if e == "content_block_delta")
u = [d for e, d in evs if e == "message_delta"][-1]
assert len(text.split()) == 333 and u["usage"]["output_tokens"] == 333, u
assert u["delta"]["stop_reason"] == "end_turn"
'
synth "/words/500/ with max_tokens 25: cut at 25" /words/500/v1/chat/completions "$W/oa_s.json" '
chunks = [json.loads(d) for _, d in sse(raw)[:-1]]
assert chunks[-1]["usage"]["completion_tokens"] == 25
assert chunks[-2]["choices"][0]["finish_reason"] == "length"
'

# Many paced streams at once: 150 over one or two HTTP/2 connections and 150
# HTTP/1.1 connections, 44 events at 40 a second (1.075 s each), while the
# long streams go on.  The mock must keep their pace (it may lag while it
# shakes hands with 150 new TLS connections) and answer /healthz meanwhile.
for i in $(seq 300); do
	printf 'url = "%s/ttft/0/rate/40/words/40/t-c%d/v1/chat/completions"\noutput = "%s/t-c%d.body"\n' \
		"$PM_URL" "$i" "$W" "$i" >>"$W/c$((i > 150 ? 1 : 2)).cfg"
done
mock_curl --http2 -Z --parallel-max 150 -H 'Content-Type: application/json' \
	--data-binary "@$W/p_free.json" -K "$W/c2.cfg" 2>"$W/c2.err" &
c2=$!
mock_curl --http1.1 -Z --parallel-max 150 -H 'Content-Type: application/json' \
	--data-binary "@$W/p_free.json" -K "$W/c1.cfg" 2>"$W/c1.err" &
c1=$!
sleep 0.5
hz=""
for _ in 1 2 3; do
	hz="$hz $(mock_curl -o /dev/null -w '%{time_total}' "$PM_URL/healthz")"
	sleep 0.2
done
wait "$c2" || fail "300 streams: the HTTP/2 curl failed: $(tail -c 300 "$W/c2.err")"
wait "$c1" || fail "300 streams: the HTTP/1.1 curl failed: $(tail -c 300 "$W/c1.err")"
"$TT_PY" - "$PM/mock.log" "$W" $hz <<'PY' || fail "300 concurrent paced streams"
import json, sys, time
log, w = sys.argv[1:3]
hz = [float(x) for x in sys.argv[3:]]
for _ in range(100):
    ds = {}
    for l in open(log):
        d = json.loads(l)
        if "/t-c" in d["path"]:
            ds[int(d["path"].split("/t-c")[1].split("/")[0])] = d
    if len(ds) == 300:
        break
    time.sleep(0.1)
assert len(ds) == 300, len(ds)
late = max(d["duration_ms"] for d in ds.values())
for i, d in ds.items():
    assert d["complete"] and d["events"] == 44, d
    assert open(d["body_file"], "rb").read() == open("%s/t-c%d.body" % (w, i), "rb").read(), i
# Bounds loose enough for a machine with every CPU busy (seen there: 1.9 s
# and 2 s; idle: 1.4 s and 0.3 s); a mock that blocked its event loop per
# event would take minutes.
assert late <= 1075 + 5000, "the mock fell behind: a stream took %d ms" % late
assert max(hz) <= 5, "/healthz took %s s" % hz
print("    300 streams: the longest took %.0f ms (1075 scheduled); /healthz meanwhile: %s s" % (late, " ".join(map(str, hz))))
PY
check "300 concurrent paced streams keep their pace, bodies intact, /healthz answers meanwhile"

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

# --- pacing: the background streams ------------------------------------------------
wait "$stall_pid" || fail "the /stall/ client failed"
pcheck t-stall /v1/chat/completions "$W/t-stall.times" \
	'max_gap >= 10 and d["max_gap_ms"] >= 10000 and ttft >= 0.5 and d["events"] == n_events and s["output_tokens"] == e["output_tokens"] == 40'
check "/stall/10000/: 10 s without a byte half-way (kernel arrival times), then the rest, usage intact"
wait "$slow1_pid" || fail "the HTTP/1.1 slow reader failed"
pcheck t-slow1 /v1/chat/completions "$W/t-slow1.times" 'd["events"] == n_events == 104 and s["output_tokens"] == 100'
check "a slow HTTP/1.1 reader (64 bytes every 20 ms) gets the whole body"
wait "$slow2_pid" || fail "the HTTP/2 slow reader failed"
# The mock can be at most a 1 KiB window ahead of a reader taking 3200 bytes
# a second: its last write cannot come before (body - 1 KiB) / 3200 s.
pcheck t-slow2 /v1/chat/completions "$W/t-slow2.times" \
	'd["events"] == n_events == 104 and d["duration_ms"] / 1000 >= (len(body) - 1024) / 3200 * 0.9'
check "a slow HTTP/2 reader with a 1 KiB window holds the mock back and gets the whole body"
wait "$long_pid" || fail "the long stream failed"
pcheck t-long /v1/chat/completions "$W/t-long.trace" \
	'time_total >= 60 and span >= 60 and n_events == d["events"] == 1204 and s["output_tokens"] == 1200 and time_total <= 90'
check "/words/1200/rate/20/: a stream of 60 s or more, 1204 events, usage intact"
bg_pids=()
kill -TERM "$PM_PID"
rc=0
wait "$PM_PID" || rc=$?
[ "$rc" = 0 ] || fail "the paced mock exited $rc on SIGTERM"

pid=$MOCK_PID
kill -TERM "$pid"
for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && fail "the mock ignores SIGTERM"
rc=0
wait "$pid" || rc=$?
[ "$rc" = 0 ] || fail "the mock exited $rc on SIGTERM"
check "SIGTERM stops the mock cleanly"

echo "all $n checks passed"
