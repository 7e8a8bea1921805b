#!/bin/bash
# The store contract (tests/unit/store-contract.h) against a real ZooKeeper: one
# server, then a 3-server ensemble (plus session expiry and a killed member),
# and the treadle store CLI on a zk:// URL.  Skips when java/ZooKeeper are missing.
set -u
SRC=${TREADLE_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${TREADLE_BUILD:-$SRC/build}
BIN=${TREADLE_BIN:-$BUILD/treadle}
TEST=$BUILD/tests/test-store-zk
# shellcheck source=../lib/zk.sh
. "$SRC/tests/lib/zk.sh"

if ! zk_available; then echo "skip: java or /usr/share/java/zookeeper.jar missing"; exit 77; fi
if [ ! -x "$TEST" ]; then echo "skip: $TEST not built (make unit)"; exit 77; fi

dir=$(mktemp -d /tmp/treadle-zk-test.XXXXXX)
cleanup() { zk_stop; rm -rf "$dir"; }
trap cleanup EXIT
fail=0

echo "# single server"
mkdir -p "$dir/single"
zk_start_single "$dir/single" || exit 1
TREADLE_TEST_ZK_URL="zk://$ZK_HOSTS/treadle-test-$$" "$TEST" || fail=1

echo "# CLI on zk://"
url="zk://$ZK_HOSTS/treadle-cli-$$"
out=$("$BIN" store create -p /a/b hello --store "$url") && [ "$out" = /a/b ] || { echo "not ok cli create"; fail=1; }
out=$("$BIN" store get /a/b --store "$url") && [ "$out" = hello ] || { echo "not ok cli get: $out"; fail=1; }
"$BIN" store get /nope --store "$url" 2>/dev/null; rc=$?
[ "$rc" -eq 100 ] || { echo "not ok cli get missing: rc $rc"; fail=1; }
"$BIN" store delete -r /a --store "$url" && ! "$BIN" store exists /a --store "$url" || { echo "not ok cli delete"; fail=1; }
"$BIN" store create -p /m/x/leaf L --store "$url" >/dev/null && "$BIN" store set /m/x X --store "$url" &&
	"$BIN" mirror --dir "$dir/mirror" --once /m --store "$url" &&
	[ "$(cat "$dir/mirror/m/x/leaf")" = L ] && [ "$(cat "$dir/mirror/m/x/.data")" = X ] && [ -e "$dir/mirror/.modified" ] ||
	{ echo "not ok mirror --once on zk"; fail=1; }
"$BIN" store delete -r /m --store "$url"
[ "$fail" -eq 0 ] && echo "ok cli and mirror on zk"
zk_stop

echo "# 3-server ensemble"
mkdir -p "$dir/ens"
zk_start_ensemble "$dir/ens" 3 || exit 1
TREADLE_TEST_ZK_URL="zk://$ZK_HOSTS/treadle-test-$$" \
TREADLE_TEST_ZK_PIDS="${ZK_PIDS[1]},${ZK_PIDS[2]},${ZK_PIDS[3]}" \
TREADLE_TEST_ZK_PORTS="${ZK_PORTS[1]},${ZK_PORTS[2]},${ZK_PORTS[3]}" "$TEST" || fail=1
exit $fail
