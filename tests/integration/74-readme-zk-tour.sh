#!/bin/bash
# The README's ZooKeeper tour, command for command: the code block between
# <!-- zk-tour-begin --> and <!-- zk-tour-end --> is extracted and run with
# bash -e, with free ports, private directories and cgroup roots substituted,
# so the README cannot drift from what works.  Then: the standby master led
# within the failover bound, both apps ran, nothing was swept.  Skips without
# root, s6, java/ZooKeeper.
set -u
SRC=${TREADLE_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${TREADLE_BIN:-$SRC/build/treadle}
skip() { echo "skip: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
[ "$(id -u)" = 0 ] || skip "needs root (containers, cgroups, loop devices)"
command -v s6-svscan >/dev/null || skip "s6 not installed"
[ -e /dev/loop-control ] || skip "no /dev/loop-control"
id nobody >/dev/null 2>&1 || skip "no user nobody"
command -v java >/dev/null && [ -r /usr/share/java/zookeeper.jar ] && [ -r /usr/share/java/slf4j-nop.jar ] ||
	skip "java or the ZooKeeper jars missing"

T=$(mktemp -d /tmp/treadle-it74.XXXXXX)
chmod 755 "$T"
CG=treadle-it74-$$
cleanup() {
	local rc=$?
	trap - EXIT
	for s in s1 s2; do [ -e "$T/$s/cell.json" ] && "$BIN" cell down --root "$T/$s" --timeout 20 >/dev/null 2>&1; done
	if grep -l -E 'runtime error|ERROR: AddressSanitizer|ERROR: LeakSanitizer' "$T"/s[12]/log/*/current 2>/dev/null; then
		grep -h -A12 -E 'runtime error|ERROR: AddressSanitizer|ERROR: LeakSanitizer' "$T"/s[12]/log/*/current | head -40
		rc=1
	fi
	for p in "$T"/zk/*/pid; do [ -e "$p" ] && kill -9 "$(cat "$p")" 2>/dev/null; done
	for c in /sys/fs/cgroup/*/"$CG"-s1 /sys/fs/cgroup/*/"$CG"-s2; do [ -e "$c" ] && rmdir "$c" 2>/dev/null; done
	rm -rf "$T"
	exit $rc
}
trap cleanup EXIT

# free port prefixes: P0..P3 are four digits, ports P1..P3 (client), Q1..Q3, R1..R3 (peers)
free() { python3 -c '
import socket, sys
for p in sys.argv[1:]:
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(p))); s.close()' "$@" 2>/dev/null; }
pick() { local p; for _ in $(seq 1 50); do p=$((2000 + RANDOM % 1200)); free "${p}1" "${p}2" "${p}3" && { echo "$p"; return; }; done; return 1; }
P=$(pick) && Q=$(pick) && RR=$(pick) || fail "no free ports"
[ "$P" != "$Q" ] && [ "$Q" != "$RR" ] && [ "$P" != "$RR" ] || { P=$(pick); Q=$(pick); }

sed -n '/<!-- zk-tour-begin -->/,/<!-- zk-tour-end -->/p' "$SRC/README.md" | sed '1,2d;$d' | sed '$d' >"$T/tour.orig"
grep -q 'cell up --daemon --roles master,node' "$T/tour.orig" || fail "no tour found between the README markers"
# ports through placeholders first: a picked port may itself contain 288x/388x
sed -e "s/218\([0-3]\)/@P@\1/g" -e "s/288\([1-3]\)/@Q@\1/g" -e "s/388\([1-3]\)/@R@\1/g" \
	-e "s/@P@/${P}/g" -e "s/@Q@/${Q}/g" -e "s/@R@/${RR}/g" \
	-e "s,/tmp/treadle-zk,$T/zk,g" -e "s,/tmp/tour-s\([12]\),$T/s\1,g" -e "s/treadle-s\([12]\)/$CG-s\1/g" \
	"$T/tour.orig" >"$T/tour.sh"
echo "# running the README tour ($(wc -l <"$T/tour.sh") lines), ports ${P}1-3 ${Q}1-3 ${RR}1-3"
grep -q -e '/tmp/' -e '2181' "$T/tour.sh" && grep -n -e '/tmp/' -e '2181' "$T/tour.sh" | grep -v "$T" && fail "unsubstituted paths or ports"

t0=$(date +%s)
PATH=$(dirname "$BIN"):$PATH timeout 300 bash -e "$T/tour.sh" >"$T/tour.out" 2>&1; rc=$?
sed 's/^/#   /' "$T/tour.out" | tail -40
[ "$rc" = 0 ] || { for s in s1 s2; do tail -5 "$T/$s"/log/*/current 2>/dev/null | sed "s/^/# $s: /"; done; fail "the tour failed (exit $rc) after $(( $(date +%s) - t0 )) s"; }
echo "ok 1 - the README's ZooKeeper tour ran command for command ($(( $(date +%s) - t0 )) s)"
ms=$(sed -n 's/^s2 leads after \([0-9]*\) ms$/\1/p' "$T/tour.out")
[ -n "$ms" ] || fail "no failover time in the output"
[ "$ms" -le 6000 ] || fail "the standby took $ms ms to lead (expected about 5 s at most)"
echo "ok 2 - the standby master led $ms ms after the leader was killed"
grep -q swept "$T/tour.out" && fail "a cell down swept: $(grep swept "$T/tour.out")"
echo "ok 3 - no cell down swept anything"
echo "1..3"
