#!/bin/bash
# bench/discovery.sh: discovery figures (docs/NODE.md "Discovery").
#  1. propagation through ZooKeeper: an instance's service running (its service_running event's
#     timestamp) -> a `treadle discovery --watch` prints its endpoint, over N instances (default 100,
#     started in waves of BENCH_WAVE, default 10) on 2 node agents; p50/p99.  Everything runs on this
#     machine: the watcher is a ZooKeeper client of its own, as it would be on another host.
#  2. the node's state scan: CPU per scan over BENCH_NETNS (default 200) network namespaces with
#     listening sockets, each standing for a container (bench/bench-discovery.c: the agent's own scan
#     code; one namespace per container is what the scan touches, the rest of a container is not).
# Prints "discovery ..." lines; not a test.  Needs root, s6, java + ZooKeeper.
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
BIN=${TREADLE_BIN:-$SRC/build/treadle}
N=${BENCH_APPS:-100}
W=${BENCH_WAVE:-10}
NS=${BENCH_NETNS:-200}
[ "$(id -u)" = 0 ] || { echo "needs root"; exit 77; }
command -v s6-svscan >/dev/null || { echo "needs s6"; exit 77; }
. "$SRC/tests/lib/zk.sh"
zk_available || { echo "needs java and ZooKeeper"; exit 77; }
make -s -C "$SRC" -j2 build/libtreadle.a build/treadle >/dev/null || exit 1
mkdir -p "$SRC/build/bench"
# shellcheck disable=SC2046
cc -std=gnu17 -D_GNU_SOURCE -DTHREADED -O2 -o "$SRC/build/bench/bench-discovery" "$SRC/bench/bench-discovery.c" \
	"$SRC/build/libtreadle.a" $(pkg-config --cflags --libs yaml-0.1 jansson sqlite3 libcap libseccomp libarchive \
		libcurl zlib libnl-route-3.0 libnl-3.0 libnftables libnetfilter_conntrack) -lzookeeper_mt -lpthread -lm || exit 1

T=$(mktemp -d /tmp/treadle-bench-disc.XXXXXX)
chmod 755 "$T"
HOSTS="h1 h2"
declare -A AGENT SVSCAN
MASTER='' WPID='' TPID=''
cg_of() { echo "treadle-benchdisc-$$-$1"; }
wait_for() {
	local end=$(($(date +%s) + $1))
	shift
	until "$@" >/dev/null 2>&1; do [ "$(date +%s)" -ge "$end" ] && return 1; sleep 0.1; done
}
start_node() {
	local h=$1 n=$T/$1
	mkdir -p "$n/running"
	s6-svscan "$n/running" >>"$T/svscan-$h.log" 2>&1 &
	SVSCAN[$h]=$!
	"$BIN" node --store "$STORE" --root "$n" --hostname "$h" --cgroup-root "$(cg_of "$h")" \
		>>"$T/node-$h.log" 2>&1 &
	AGENT[$h]=$!
}
stop_node() {
	local h=$1 d c
	[ -n "${AGENT[$h]:-}" ] && { kill -TERM "${AGENT[$h]}" 2>/dev/null; wait "${AGENT[$h]}" 2>/dev/null; AGENT[$h]=; }
	if [ -n "${SVSCAN[$h]:-}" ]; then
		s6-svscanctl -t "$T/$h/running" 2>/dev/null
		for _ in $(seq 1 100); do kill -0 "${SVSCAN[$h]}" 2>/dev/null || break; sleep 0.1; done
		kill -9 "${SVSCAN[$h]}" 2>/dev/null
		wait "${SVSCAN[$h]}" 2>/dev/null
		SVSCAN[$h]=
	fi
	for d in "$T/$h"/apps/*; do
		[ -d "$d" ] && timeout 20 "$BIN" sproc cleanup --root "$T/$h" --cgroup-root "$(cg_of "$h")" "$(basename "$d")" >/dev/null 2>&1
	done
	for c in /sys/fs/cgroup/*/"$(cg_of "$h")" /sys/fs/cgroup/"$(cg_of "$h")"; do
		[ -d "$c" ] && { find "$c" -depth -mindepth 1 -type d -exec rmdir {} + 2>/dev/null; rmdir "$c" 2>/dev/null; }
	done
}
cleanup() {
	set +e
	[ -n "$WPID" ] && kill "$WPID" 2>/dev/null
	[ -n "$TPID" ] && kill "$TPID" 2>/dev/null
	[ -n "$MASTER" ] && { kill -TERM "$MASTER" 2>/dev/null; wait "$MASTER" 2>/dev/null; }
	for h in $HOSTS; do stop_node "$h"; done
	zk_stop
	if [ "${KEEP:-0}" = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT

echo "discovery: part 2 first (no cell needed)"
"$SRC/build/bench/bench-discovery" "$NS" 20 || echo "discovery scan: FAILED"

zk_start_single "$T/zk" || exit 1
STORE="zk://$ZK_HOSTS/bench-disc-$$"
export TREADLE_STORE=$STORE
"$BIN" master --store "$STORE" --hostname m1 >>"$T/master.log" 2>&1 &
MASTER=$!
wait_for 30 grep -q leading "$T/master.log" || { echo "no leader"; exit 1; }
for h in $HOSTS; do start_node "$h"; done
wait_for 30 sh -c "[ \$('$BIN' store ls /server.presence | wc -l) = 2 ]" || { echo "nodes missing"; exit 1; }

# the watcher: every line it prints, stamped with the time it came out
mkfifo "$T/watch.fifo"
python3 -u -c '
import sys, time
for l in sys.stdin:
    print("%.6f %s" % (time.time(), l.rstrip()), flush=True)' <"$T/watch.fifo" >"$T/watch.log" &
TPID=$!
"$BIN" discovery --watch nobody.dbench tcp:http >"$T/watch.fifo" 2>"$T/watch.err" &
WPID=$!
sleep 1

done_n=0
while [ "$done_n" -lt "$N" ]; do
	k=$((N - done_n < W ? N - done_n : W))
	"$BIN" run nobody.dbench --count "$k" --cpu 1% --endpoint http 0 -- sleep 100000 \
		>>"$T/instances" 2>>"$T/run.err" || { echo "run failed: $(tail -1 "$T/run.err")"; exit 1; }
	done_n=$((done_n + k))
	wait_for 120 sh -c "[ \$(grep -c ':tcp:http ' '$T/watch.log') -ge $done_n ]" || { echo "the watcher saw $(grep -c ':tcp:http ' "$T/watch.log") of $done_n"; break; }
done
while read -r inst; do
	# when the node published the endpoint (ZooKeeper's ctime of the node: this machine's clock)
	c=$("$BIN" store get --stat "/endpoints/nobody/${inst#nobody.}:tcp:http" </dev/null 2>/dev/null | awk '$1 == "ctime_ms" {print $2}')
	echo "$inst ${c:-0}" >>"$T/published"
	"$BIN" trace --json "$inst" | python3 -c '
import json, sys
for l in sys.stdin:
    e = json.loads(l)
    if e.get("type", e.get("event_type")) == "service_running":
        print(sys.argv[1], e["timestamp"])
        break' "$inst"
done <"$T/instances" >"$T/running"
python3 - "$T/running" "$T/published" "$T/watch.log" <<'EOF'
import sys
run = {a: float(b) for a, b in (l.split() for l in open(sys.argv[1]))}
pub = {a: float(b) / 1000 for a, b in (l.split() for l in open(sys.argv[2])) if b != "0"}
seen = {}
for l in open(sys.argv[3]):
    t, rest = l.split(" ", 1)
    if ":tcp:http " in rest:
        seen.setdefault(rest.split(":tcp:http ")[0], float(t))

def report(what, start):
    lat = sorted((seen[i] - start[i]) * 1000 for i in start if i in seen)
    n = len(lat)
    if not n:
        print("discovery: %s: nothing measured" % what)
        return
    pct = lambda q: lat[min(n - 1, max(0, (q * n + 99) // 100 - 1))]
    print("discovery: %s, %d instances on 2 nodes: p50 %.1f ms, p99 %.1f ms, max %.1f ms"
          % (what, n, pct(50), pct(99), lat[-1]))

report("propagation (endpoint node created by the node -> --watch prints it)", pub)
report("service running (its service_running event) -> --watch prints it (negative: printed before)", run)
EOF
