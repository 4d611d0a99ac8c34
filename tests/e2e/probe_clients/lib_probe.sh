# shellcheck shell=bash
# Helpers for the tokentap-probe end-to-end tests (tests/e2e/test_probe_*).
# Source after tests/mock/lib.sh:
#
#   probe_preflight          skip (exit 77) unless root, BTF and the binary
#                            are there
#   probe_start [ARGS...]    run build/tokentap-probe --collector off --out
#                            $PROBE_OUT ARGS, wait until it says "ready";
#                            skip when the kernel refuses BPF; stopped at exit
#   probe_stop               SIGINT, wait, then check it exited 0 and left
#                            no uprobe, BPF link or program behind
#   probe_check ARGS...      check_records.py with the probe's records and
#                            the mock's log
#   probe_node_sdks          skip unless $NODE (Node 18+) runs; install the
#                            pinned openai and @anthropic-ai/sdk packages
#                            into $TT_NPM (build/npm) when missing
#   probe_npm_app NAME       a real LLM program from npm (claude-code,
#                            codex, bun, gemini-cli; scripts/npm-apps.sh),
#                            installed when missing; sets NPM_APP to its
#                            folder; skip when npm or the registry is not
#                            there
#
# The probe sees the whole node, and other tests may run beside this one:
# checks only look at records whose host is this test's mock port.

PROBE_BIN=$TT_TOP/build/tokentap-probe
PROBE_CLIENTS=$TT_TOP/tests/e2e/probe_clients

probe_preflight() {
	[ "$(id -u)" -eq 0 ] || skip "tokentap-probe needs root"
	[ -r /sys/kernel/btf/vmlinux ] || skip "kernel has no BTF (/sys/kernel/btf/vmlinux)"
	[ -x "$PROBE_BIN" ] || fail "$PROBE_BIN is not built"
	command -v bpftool >/dev/null || skip "bpftool is not installed"
}

# The BPF programs and links the running probe holds, from its fdinfo.
probe_bpf_ids() {
	grep -hE '^(prog_id|link_id):' /proc/"$1"/fdinfo/* 2>/dev/null |
		sort -u | tr -d '\t ' || true
}

# What of ours the kernel still has: programs or links by id (another
# probe running beside this test has its own ids), and uprobe_events.
probe_leftovers() {
	local kind id
	for kv in $PROBE_IDS; do
		kind=${kv%%:*} id=${kv#*:}
		case $kind in
		prog_id) bpftool prog show id "$id" >/dev/null 2>&1 && echo "program $id" ;;
		link_id) bpftool link show id "$id" >/dev/null 2>&1 && echo "link $id" ;;
		esac
	done
	if [ -r /sys/kernel/tracing/uprobe_events ]; then
		diff <(echo "$PROBE_UPROBE_EVENTS_BEFORE") \
			/sys/kernel/tracing/uprobe_events >/dev/null ||
			echo "uprobe_events changed"
	fi
	return 0
}

probe_start() {
	PROBE_OUT=${PROBE_OUT:-$MOCK_TMP/probe-records.jsonl}
	PROBE_LOG=$MOCK_TMP/probe.log
	: >"$PROBE_OUT"
	PROBE_UPROBE_EVENTS_BEFORE=$(cat /sys/kernel/tracing/uprobe_events 2>/dev/null || true)
	"$PROBE_BIN" --collector off --out "$PROBE_OUT" "$@" \
		</dev/null >"$PROBE_LOG" 2>&1 &
	PROBE_PID=$!
	on_exit probe_kill
	local i
	for ((i = 0; i < 300; i++)); do
		if grep -q 'tokentap-probe: ready' "$PROBE_LOG"; then
			PROBE_IDS=$(probe_bpf_ids "$PROBE_PID")
			[ -n "$PROBE_IDS" ] || fail "no BPF program in the probe's fds"
			return 0
		fi
		if ! kill -0 "$PROBE_PID" 2>/dev/null; then
			wait "$PROBE_PID"
			local rc=$?
			PROBE_PID=
			cat "$PROBE_LOG"
			[ "$rc" -eq 3 ] && skip "the kernel refused the BPF programs: $(tail -n1 "$PROBE_LOG")"
			fail "tokentap-probe exited $rc before it was ready"
		fi
		sleep 0.1
	done
	fail "tokentap-probe not ready after 30 s"
}

# At exit, whatever happened: never leave the probe running.
probe_kill() {
	if [ -n "${PROBE_PID:-}" ] && kill -0 "$PROBE_PID" 2>/dev/null; then
		kill -INT "$PROBE_PID" 2>/dev/null
		local i
		for ((i = 0; i < 100; i++)); do
			kill -0 "$PROBE_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$PROBE_PID" 2>/dev/null
		wait "$PROBE_PID" 2>/dev/null
	fi
	PROBE_PID=
	return 0
}

probe_stop() {
	local pid=$PROBE_PID rc i left
	[ -n "$pid" ] || fail "probe_stop: no probe running"
	kill -"${1:-INT}" "$pid"
	for ((i = 0; i < 150; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$pid" 2>/dev/null && fail "tokentap-probe still running 15 s after SIG${1:-INT}"
	wait "$pid"
	rc=$?
	PROBE_PID=
	sed 's/^/  probe| /' "$PROBE_LOG"
	[ "$rc" -eq 0 ] || fail "tokentap-probe exited $rc"
	grep -q 'tokentap-probe: exit: ' "$PROBE_LOG" ||
		fail "no final counters line at exit"
	left=$(probe_leftovers)
	[ -z "$left" ] || fail "uprobes left behind after exit: $left"
	echo "ok - probe exited 0, printed its counters, left none of its $(echo "$PROBE_IDS" | grep -c .) BPF programs and uprobe links behind"
}

# A counter from the probe's final line.
probe_counter() {
	grep 'tokentap-probe: exit: ' "$PROBE_LOG" | tail -n1 |
		grep -o " $1=[0-9]*" | cut -d= -f2
}

probe_check() {
	"$TT_PY" "$PROBE_CLIENTS/check_records.py" --records "$PROBE_OUT" \
		--mock-log "$MOCK_LOG" --port "$MOCK_PORT" \
		--expect "$TT_MOCK_DIR/expect.py" "$@"
}

# The official SDKs, pinned, for node clients (node_sdk.mjs).
PROBE_OPENAI_VER=4.104.0
PROBE_ANTHROPIC_VER=0.54.0

probe_node_sdks() {
	NODE=${NODE:-/usr/bin/node}
	[ -x "$NODE" ] || skip "no $NODE"
	"$NODE" -e 'process.exit(+process.versions.node.split(".")[0] >= 18 ? 0 : 1)' ||
		skip "$NODE is older than Node 18"
	export TT_NPM=$TT_TOP/build/npm
	if [ ! -f "$TT_NPM/node_modules/openai/package.json" ] ||
		[ ! -f "$TT_NPM/node_modules/@anthropic-ai/sdk/package.json" ] ||
		! grep -q "\"version\": \"$PROBE_OPENAI_VER\"" "$TT_NPM/node_modules/openai/package.json"; then
		command -v npm >/dev/null || skip "npm is not installed"
		timeout 180 npm install --no-save --no-audit --no-fund --prefix "$TT_NPM" \
			"openai@$PROBE_OPENAI_VER" "@anthropic-ai/sdk@$PROBE_ANTHROPIC_VER" >/dev/null 2>&1 ||
			skip "npm could not install openai@$PROBE_OPENAI_VER @anthropic-ai/sdk@$PROBE_ANTHROPIC_VER"
	fi
}

# Real LLM programs from npm, pinned in scripts/npm-apps.sh (make test
# installs them before the tests; this installs one a test run alone needs).
probe_npm_app() {
	local name=$1
	NPM_APP=$("$TT_TOP/scripts/npm-apps.sh" dir "$name")
	[ -f "$NPM_APP/.installed" ] || "$TT_TOP/scripts/npm-apps.sh" install "$name" >&2
	[ -f "$NPM_APP/.installed" ] ||
		skip "npm could not install $name ($(tail -n 1 "$NPM_APP/npm.log" 2>/dev/null))"
}
