#!/usr/bin/env bash
# Chaos: the collector's database on a full disk.  tokentapd runs with its
# SQLite file on a small tmpfs; a filler file takes the rest of the space.
# Batches of records are posted until the disk is full: then POST answers
# 503 (nothing of that batch stored, retry), while /healthz, /v1/usage and
# /metrics keep answering 200 from what is stored.  When the filler goes,
# the same batches are accepted again; at the end the database holds
# every acknowledged record exactly once.  Needs root (mount); skips
# otherwise.
set -euo pipefail
. "$(dirname "$0")/chaos_clients/chaos_lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root to mount a small tmpfs"
command -v curl >/dev/null || skip "curl not installed"
T=$(mktemp -d "${TMPDIR:-/tmp}/tt-chaos-disk.XXXXXX")
on_exit "rm -rf $T"
M=$T/disk
mkdir -p "$M"
mount -t tmpfs -o size=4m,mode=0700 tmpfs "$M" 2>"$T/mount.err" ||
	skip "cannot mount a tmpfs here: $(cat "$T/mount.err")"
on_exit "umount -l $M"
COL_DB=$M/c.db
col_start "$T"

# Batches of 100 records, ids from a fixed seed; long (but valid)
# attribution fields make each record large: the disk fills in a few.
"$TT_PY" - "$T" <<'PY'
import json, random, sys
rnd = random.Random(8)
for b in range(200):
    with open("%s/batch.%03d" % (sys.argv[1], b), "w") as f:
        for i in range(100):
            f.write(json.dumps({
                "id": "%032x" % rnd.getrandbits(128), "source": "preload",
                "ts": "2026-11-%02dT10:00:00.000000Z" % (1 + i % 20),
                "provider": "openai", "model": "gpt-4o-mini", "input_tokens": 100 + i,
                "output_tokens": 10, "usage_source": "provider",
                "task": "disk-full-%d-%s" % (b, "x" * 100), "tenant": "t%d-%s" % (i % 3, "y" * 100),
                "feature": "f%d-%s" % (i, "z" * 100), "comm": "chaos",
                "side": "client"}) + "\n")
PY
post() { # FILE: prints the HTTP status
	curl -sS --max-time 30 --unix-socket "$COL_SOCK" -o "$T/post.body" -w '%{http_code}' \
		-H 'Content-Type: application/x-ndjson' --data-binary @"$1" http://x/v1/records
}
get() { # PATH: prints the HTTP status
	curl -sS --max-time 30 --unix-socket "$COL_SOCK" -o "$T/get.body" -w '%{http_code}' "http://x$1"
}

# Fill the disk but for 512 KiB, then post until a 503.
avail=$(df --output=avail -B1 "$M" | tail -n 1)
dd if=/dev/zero of="$M/filler" bs=64k count=$(((avail - 512 * 1024) / 65536)) status=none
acked=() full=
for f in "$T"/batch.*; do
	st=$(post "$f")
	case $st in
	200) acked+=("$f") ;;
	503) full=$f; break ;;
	*) fail "POST answered $st: $(cat "$T/post.body")" ;;
	esac
done
[ -n "$full" ] || fail "the disk never filled ($(df -h "$M" | tail -n 1))"
grep -q '"error"' "$T/post.body" || fail "503 without a JSON error: $(cat "$T/post.body")"
echo "disk full after ${#acked[@]} acknowledged batches: 503 $(cat "$T/post.body")"

# Reads go on while the disk is full; a second write is refused the same way.
for p in /healthz '/v1/usage?by=tenant' /metrics; do
	st=$(get "$p")
	[ "$st" = 200 ] || fail "GET $p answered $st while the disk is full"
done
n=$(get /healthz >/dev/null; json_get "$T/get.body" 'd["records"]')
[ "$n" -eq $((${#acked[@]} * 100)) ] || fail "healthz: $n records, acknowledged $((${#acked[@]} * 100))"
[ "$(post "$full")" = 503 ] || fail "a second POST on the full disk was not refused"
kill -0 "$COL_PID" || fail "tokentapd died on the full disk"

# Space comes back: the refused batch and the ones after it go in.
rm -f "$M/filler"
for f in "$full" "$T"/batch.19[0-9]; do
	st=$(post "$f")
	[ "$st" = 200 ] || fail "POST after space returned answered $st: $(cat "$T/post.body")"
	acked+=("$f")
done
# Resending an acknowledged batch adds nothing.
post "${acked[0]}" >/dev/null
json_get "$T/post.body" 'd["duplicates"]' | grep -qx 100 || fail "resend: $(cat "$T/post.body")"
col_stop
cat "${acked[@]}" >"$T/acked.jsonl"
db_ids "$COL_DB" | sort >"$T/db.ids"
out_ids "$T/acked.jsonl" | sort -u >"$T/acked.ids"
cmp -s "$T/db.ids" "$T/acked.ids" || fail "database ids differ from the acknowledged ones"
echo "chaos disk full: 503 on a full disk, reads served, recovered; $(wc -l <"$T/db.ids") records once each"
echo PASS
