#!/bin/bash
# The master on a real ZooKeeper (zk:// store): election and take-over,
# root namespace, capacity placement, stop -> deleted.  Servers are simulated
# with `treadle store create -e --hold`.  Skips without java/ZooKeeper.
set -u
SRC=${TREADLE_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
T=${TREADLE_BIN:?}
# shellcheck source=../lib/zk.sh
. "$SRC/tests/lib/zk.sh"
zk_available || { echo "java or /usr/share/java/zookeeper.jar missing"; exit 77; }
id nobody >/dev/null 2>&1 || { echo "no user nobody"; exit 77; }

D=$(mktemp -d /tmp/treadle-it.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait "${pids[@]}" 2>/dev/null; zk_stop; rm -rf "$D"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; for f in "$D"/*.log; do echo "== $f"; cat "$f"; done; exit 1; }
wait_for() {
	local end=$(( $(date +%s) + $1 )); shift
	until "$@" >/dev/null 2>&1; do [ "$(date +%s)" -ge "$end" ] && return 1; sleep 0.1; done
}

mkdir -p "$D/zk"
zk_start_single "$D/zk" || fail "ZooKeeper did not start"
U="zk://$ZK_HOSTS/treadle-master-$$"
placed_on() { "$T" store ls --store "$U" "/placement/$1" 2>/dev/null | grep -qF "$2"; }
events() { "$T" trace --store "$U" --json "$1" | sed -n 's/.*"type":"\([a-z_]*\)".*/\1/p'; }

"$T" store create --store "$U" -p /servers/z1 '{"memory": "1000M", "cpu": "100%", "disk": "10G"}' >/dev/null ||
	fail "store create on $U"
"$T" master --store "$U" --hostname m1 2>"$D/m1.log" & m1=$!; pids+=($m1)
wait_for 20 grep -q leading "$D/m1.log" || fail "m1 never led"
"$T" master --store "$U" --hostname m2 2>"$D/m2.log" & pids+=($!)
wait_for 20 grep -q 'standing by' "$D/m2.log" || fail "m2 is not standing by"
"$T" store create --store "$U" -p -e --hold /server.presence/z1 '{"seen": false}' >/dev/null & pids+=($!)

i1=$("$T" run --store "$U" nobody.z --memory 600M -- true) || fail "run"
i2=$("$T" run --store "$U" nobody.z --memory 600M -- true) || fail "run"
wait_for 20 placed_on z1 "$i1" || fail "$i1 not placed on z1"
sleep 1
placed_on z1 "$i2" && fail "$i2 placed beyond z1's memory"
"$T" store exists --store "$U" /trace/00FF >/dev/null || wait_for 30 "$T" store exists --store "$U" /trace/00FF ||
	fail "trace shards not created"

kill "$m1" # graceful: its session (and election node) ends at once
wait_for 20 grep -q leading "$D/m2.log" || fail "m2 did not take over"
i3=$("$T" run --store "$U" nobody.z --memory 100M -- true) || fail "run"
wait_for 20 placed_on z1 "$i3" || fail "$i3 not placed by m2" # m2 has its model now
"$T" stop --store "$U" "$i1" || fail "stop"
wait_for 20 placed_on z1 "$i2" || fail "$i2 not placed after $i1 was stopped"
placed_on z1 "$i1" && fail "placement of stopped $i1 kept"
wait_for 10 sh -c "'$T' trace --store '$U' --json '$i1' | grep -q '\"type\":\"deleted\"'" || fail "no deleted event"
"$T" trace --store "$U" --json "$i2" | grep '"type":"scheduled"' | grep -q '"source":"m2"' || fail "$i2 not scheduled by m2"
"$T" show --store "$U" scheduled | grep -F "$i2" | grep -q z1 || fail "show on zk:// does not list $i2 on z1"
echo "ok: master on ZooKeeper"
