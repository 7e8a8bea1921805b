#!/bin/bash
# Read-only commands need no writable disk (issue 9, item 7): with the store on
# a full tmpfs, or seen through a read-only bind mount, `show`, `trace` and
# `store get/ls` work (no session file is written) while writes fail cleanly
# (111, one line).  And every command refuses a store of an unknown format (100,
# naming the file and both versions) or with a garbage journal.  No cell needed.
set -u
T=${TREADLE_BIN:?}
[ "$(id -u)" = 0 ] || { echo "needs root (mounts)"; exit 77; }
id nobody >/dev/null 2>&1 || { echo "no user nobody"; exit 77; }
R=$(mktemp -d /tmp/treadle-it.XXXXXX)
cleanup() {
	umount "$R/ro" 2>/dev/null
	umount "$R/full" 2>/dev/null
	rm -rf "$R"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
n=0
check() { n=$((n + 1)); echo "ok $n - $*"; }

note_sessions() { ls "$1/sessions" | sort | tr '\n' ' '; }

note() { echo "--- $*"; }
note "a store on a full tmpfs"
mkdir "$R/full" "$R/ro"
mount -t tmpfs -o size=2m tmpfs "$R/full" || { echo "cannot mount tmpfs"; exit 77; }
F="file://$R/full/store"
inst=$("$T" run --store "$F" nobody.it47 -- true) || fail "run"
dd if=/dev/zero of="$R/full/fill" bs=64k 2>/dev/null
"$T" run --store "$F" nobody.it47 -- true 2>"$R/err"; rc=$?
[ "$rc" = 111 ] || fail "run on a full disk: exit $rc, expected 111"
[ "$(grep -c . "$R/err")" = 1 ] || fail "more than one line: $(cat "$R/err")"
check "a write on a full disk fails with 111 and one line"
before=$(note_sessions "$R/full/store")
"$T" show --store "$F" >"$R/out" 2>&1 || fail "show on a full disk: $(cat "$R/out")"
grep -qF "$inst" "$R/out" || fail "show does not list $inst"
"$T" show --store "$F" --json scheduled >"$R/out" 2>&1 || fail "show --json on a full disk"
grep -qF "$inst" "$R/out" || fail "show --json does not list $inst"
"$T" trace --store "$F" "$inst" >"$R/out" 2>&1; rc=$?
[ "$rc" = 111 ] && fail "trace on a full disk: $(cat "$R/out")"
grep -q pending "$R/out" || fail "trace shows no pending event: $(cat "$R/out")"
"$T" store get --store "$F" "/scheduled/$inst" >"$R/out" 2>&1 || fail "store get on a full disk: $(cat "$R/out")"
"$T" store ls --store "$F" /scheduled | grep -qF "$inst" || fail "store ls on a full disk"
[ "$before" = "$(note_sessions "$R/full/store")" ] || fail "a session file was left"
check "show, trace, store get/ls work on a full disk"

note "the same store through a read-only bind mount"
rm -f "$R/full/fill"
mount --bind "$R/full/store" "$R/ro" && mount -o remount,bind,ro "$R/ro" || { echo "cannot bind-mount read-only"; exit 77; }
O="file://$R/ro"
touch "$R/ro/x" 2>/dev/null && fail "the bind mount is writable"
"$T" show --store "$O" | grep -qF "$inst" || fail "show on a read-only store"
"$T" trace --store "$O" "$inst" | grep -q pending || fail "trace on a read-only store"
"$T" store tree --store "$O" --data /scheduled | grep -qF "$inst" || fail "store tree on a read-only store"
"$T" store create --store "$O" /x 2>"$R/err"; rc=$?
[ "$rc" = 111 ] || fail "store create on a read-only store: exit $rc"
grep -qi "read-only" "$R/err" || fail "unclear error: $(cat "$R/err")"
check "show, trace, store tree work read-only; a write says why"
umount "$R/ro"

note "an unknown format, a garbage journal"
S="$R/full/store"
printf 'treadle-store 9\n' >"$S/format"
for cmd in "show scheduled" "trace nobody.it47#0000000000" "store ls /" "run nobody.it47 -- true" "store fsck"; do
	# shellcheck disable=SC2086
	"$T" ${cmd%% *} --store "$F" ${cmd#* } >"$R/out" 2>"$R/err"; rc=$?
	[ "$rc" = 100 ] || fail "$cmd on an unknown format: exit $rc, expected 100 ($(cat "$R/err"))"
	[ "$(grep -c . "$R/err")" = 1 ] || fail "$cmd: not one line: $(cat "$R/err")"
	grep -qF "$S/format: unknown store format 'treadle-store 9' (expected 'treadle-store 1')" "$R/err" ||
		fail "$cmd: unclear error: $(cat "$R/err")"
done
check "every command refuses an unknown format with 100, naming the file and both versions"
printf 'treadle-store 1\n' >"$S/format"
printf 'TJ1 1\nthis is not a journal' >"$S/journal"
"$T" run --store "$F" nobody.it47 -- true 2>"$R/err"; rc=$?
[ "$rc" = 100 ] || fail "run with a garbage journal: exit $rc"
grep -qF "$S/journal: not a valid intent journal" "$R/err" || fail "unclear error: $(cat "$R/err")"
"$T" show --store "$F" | grep -qF "$inst" || fail "show (read-only) with a garbage journal"
"$T" store fsck --store "$F"; [ $? = 1 ] || fail "fsck does not report the journal"
"$T" store fsck --repair --store "$F" || fail "fsck --repair"
"$T" run --store "$F" nobody.it47 -- true >/dev/null || fail "run after the repair"
check "a garbage journal is refused (100) until fsck --repair sets it aside"
echo "ok: read-only commands work without a writable disk"
