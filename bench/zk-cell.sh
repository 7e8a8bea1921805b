#!/bin/bash
# bench/zk-cell.sh: a cell on a real ZooKeeper ensemble (3 servers), 2 masters, 3 node agents:
#  - submit -> first service running over N instances (default 100, one `treadle run` each), p50/p99;
#  - ZooKeeper writes (zxid delta) and transaction-log bytes per instance lifecycle (run, place, start,
#    running, stop, finish);
#  - failover time (SIGKILL of the leading master -> the standby leads), 3 times;
#  - leader master RSS with BENCH_BIG (default 100000) scheduled apps (loaded with multi batches; the node
#    agents are stopped first, so every app stays pending).
# Prints figures; not a test.  Needs root, s6, java + ZooKeeper.
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
BIN=${TREADLE_BIN:-$SRC/build/treadle}
N=${BENCH_APPS:-100}
BIG=${BENCH_BIG:-100000}
[ "$(id -u)" = 0 ] || { echo "needs root"; exit 77; }
. "$SRC/tests/lib/zk.sh"
zk_available || { echo "needs java and ZooKeeper"; exit 77; }
make -s -C "$SRC" -j2 build/libtreadle.a >/dev/null
mkdir -p "$SRC/build/bench"
# shellcheck disable=SC2046
cc -std=gnu17 -D_GNU_SOURCE -DTHREADED -O2 -o "$SRC/build/bench/bench-zk-load" "$SRC/bench/bench-zk-load.c" \
	"$SRC/build/libtreadle.a" $(pkg-config --libs jansson 2>/dev/null) -lzookeeper_mt -lpthread -lm || exit 1

T=$(mktemp -d /tmp/treadle-bench-zkcell.XXXXXX)
chmod 755 "$T"
TAG=8$$
HOSTS="h1 h2 h3"
declare -A AGENT SVSCAN
MLOOP=()
cg_of() { echo "treadle-benchzk-$$-$1"; }
st() { "$BIN" store --store "$STORE" "$@"; }
wait_for() {
	local end=$(( $(date +%s) + $1 )); shift
	until "$@" >/dev/null 2>&1; do [ "$(date +%s)" -ge "$end" ] && return 1; sleep 0.1; done
}
start_node() {
	local h=$1 n=$T/$1
	mkdir -p "$n/running"
	[ -n "${SVSCAN[$h]:-}" ] || { s6-svscan "$n/running" >>"$T/svscan-$h.log" 2>&1 & SVSCAN[$h]=$!; }
	"$BIN" node --store "$STORE" --root "$n" --hostname "$h" --cgroup-root "$(cg_of "$h")" \
		--setup-timeout 120 >>"$T/node-$h.log" 2>&1 &
	AGENT[$h]=$!
}
stop_node() {
	local h=$1 d c
	[ -n "${AGENT[$h]:-}" ] && { kill -TERM "${AGENT[$h]}" 2>/dev/null; wait "${AGENT[$h]}" 2>/dev/null; AGENT[$h]=; }
	if [ -n "${SVSCAN[$h]:-}" ]; then
		s6-svscanctl -t "$T/$h/running" 2>/dev/null
		for _ in $(seq 1 100); do kill -0 "${SVSCAN[$h]}" 2>/dev/null || break; sleep 0.1; done
		kill -9 "${SVSCAN[$h]}" 2>/dev/null; wait "${SVSCAN[$h]}" 2>/dev/null; SVSCAN[$h]=
	fi
	for d in "$T/$h"/apps/*; do
		[ -d "$d" ] && timeout 20 "$BIN" sproc cleanup --root "$T/$h" --cgroup-root "$(cg_of "$h")" "$(basename "$d")" >/dev/null 2>&1
	done
	for c in /sys/fs/cgroup/*/"$(cg_of "$h")"; do
		[ -d "$c" ] && { find "$c" -depth -mindepth 1 -type d -exec rmdir {} + 2>/dev/null; rmdir "$c" 2>/dev/null; }
	done
}
start_master() {
	(
		trap 'kill -TERM $child 2>/dev/null; wait $child; exit 0' TERM
		while :; do
			TREADLE_ZK_SESSION_TIMEOUT=2000 "$BIN" master --store "$STORE" --hostname "$1" >>"$T/master-$1.log" 2>&1 &
			child=$!
			wait $child
			sleep 0.2
		done
	) &
	MLOOP+=($!)
}
cleanup() {
	set +e
	for p in "${MLOOP[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${MLOOP[@]}"; do wait "$p" 2>/dev/null; done
	for h in $HOSTS; do stop_node "$h"; done
	zk_stop
	[ "${KEEP:-0}" = 1 ] && echo "kept $T" || rm -rf "$T"
}
trap cleanup EXIT

zxid() { # write transactions so far (low 32 bits of the leader's zxid)
	local i out
	for i in 1 2 3; do
		out=$( (exec 3<>"/dev/tcp/127.0.0.1/${ZK_PORTS[$i]}" && printf srvr >&3 && timeout 2 cat <&3) 2>/dev/null)
		case $out in *"Mode: leader"*) echo $(( $(echo "$out" | awk '/^Zxid/ {print $2}') & 0xffffffff )); return ;; esac
	done
	echo 0
}
logbytes() { # bytes of transaction log written on server 1 (logs are preallocated with zeros)
	python3 - "$T/zk/data1/version-2" <<'EOF'
import os, sys
d = sys.argv[1]; total = 0
for f in sorted(os.listdir(d)):
    if not f.startswith("log."): continue
    b = open(os.path.join(d, f), "rb").read().rstrip(b"\0")
    total += len(b)
print(total)
EOF
}

zk_start_ensemble "$T/zk" 3 || exit 1
STORE="zk://$ZK_HOSTS/bench-$$"
export TREADLE_STORE=$STORE
start_master m1
wait_for 30 grep -q leading "$T/master-m1.log" || { echo "no leader"; exit 1; }
start_master m2
for h in $HOSTS; do start_node "$h"; done
wait_for 30 sh -c "[ \$('$BIN' store ls /server.presence | wc -l) = 3 ]" || { echo "nodes missing"; exit 1; }
sleep 2

if [ "${BENCH_SKIP_SMALL:-0}" != 1 ]; then
z0=$(zxid); b0=$(logbytes)
t0=$(date +%s.%N)
for i in $(seq 1 "$N"); do
	"$BIN" run nobody.bench --cpu 1% -- sleep "${TAG}" >>"$T/instances" || { echo "run $i failed"; exit 1; }
done
t1=$(date +%s.%N)
wait_for 600 sh -c "[ \$('$BIN' store ls /running | grep -c nobody.bench) = $N ]" || echo "not all running"
t2=$(date +%s.%N)
for inst in $(cat "$T/instances"); do
	"$BIN" trace --json "$inst" | awk -F'[:,]' '
		function ts() { for (i = 1; i <= NF; i++) if ($i ~ /"timestamp"/) return $(i + 1) }
		/"type":"pending"/ && !p { p = ts() }
		/"type":"scheduled"/ && !s { s = ts() }
		/"type":"service_running"/ && !r { r = ts() }
		END { if (p && s && r) printf "%.3f %.3f %.3f\n", r - p, s - p, r - s }'
done >"$T/phases"
n=$(wc -l <"$T/phases")
pct() { sort -n -k "$1" "$T/phases" | awk -v k="$1" -v q="$2" -v n="$n" 'NR == int((q * n + 99) / 100) { print $k }'; }
echo "zk-cell: submit -> first service running, $n instances on 3 nodes: p50 $(pct 1 50) s, p99 $(pct 1 99) s"
echo "zk-cell:   placement (pending->scheduled) p50/p99 $(pct 2 50)/$(pct 2 99) s; node (scheduled->running) $(pct 3 50)/$(pct 3 99) s"
awk -v n="$N" -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN { printf "zk-cell: %d submissions took %.2f s; all running %.2f s after the first\n", n, b - a, c - a }'

# shellcheck disable=SC2046
"$BIN" stop $(cat "$T/instances") >/dev/null
wait_for 300 sh -c "[ \$('$BIN' store ls /running | grep -c nobody.bench) = 0 ] && [ \$('$BIN' store ls /finished | grep -c nobody.bench) = $N ]" || echo "not all finished"
sleep 3
z1=$(zxid); b1=$(logbytes)
awk -v n="$N" -v z="$((z1 - z0))" -v b="$((b1 - b0))" 'BEGIN { printf "zk-cell: per instance lifecycle (run..finished): %.1f ZooKeeper writes, %.0f bytes of transaction log\n", z / n, b / n }'
echo "zk-cell: leader master RSS with $N instances: $(awk '/^VmHWM/ {printf "%.1f MiB", $2 / 1024}' /proc/"$(pgrep -f "master --store $STORE --hostname m1" | head -1)"/status 2>/dev/null)"

for k in 1 2 3; do
	first=$(st ls /election/master | sort | head -1)
	ld=$(st get "/election/master/$first")
	l=${ld%.*}; [ "$l" = m1 ] && s=m2 || s=m1
	c=$(grep -c leading "$T/master-$s.log")
	a=$(date +%s%N)
	kill -KILL "${ld##*.}"
	wait_for 30 sh -c "[ \$(grep -c leading '$T/master-$s.log') -gt $c ]"
	b=$(date +%s%N)
	echo "zk-cell: failover $k ($l -> $s): $(( (b - a) / 1000000 )) ms (session timeout 2000 ms)"
	sleep 3
done

fi
for h in $HOSTS; do stop_node "$h"; done
a=$(date +%s.%N)
"$SRC/build/bench/bench-zk-load" "$STORE" "$BIG" || exit 1
b=$(date +%s.%N)
awk -v n="$BIG" -v a="$a" -v b="$b" 'BEGIN { printf "zk-cell: loaded %d scheduled apps in %.1f s\n", n, b - a }'
# the leader has read them all once /scheduled-stats says so
wait_for 900 sh -c "'$BIN' store get /scheduled-stats | grep -q '\"nobody\":$BIG'" || echo "the leader did not load all $BIG apps"
b=$(date +%s.%N)
awk -v a="$a" -v b="$b" 'BEGIN { printf "zk-cell: the leader had them all in /scheduled-stats %.1f s after the load started\n", b - a }'
sleep 20
first=$(st ls /election/master | sort | head -1)
ld=$(st get "/election/master/$first")
echo "zk-cell: leader master (${ld%.*}) with $BIG scheduled apps: $(awk '/^VmRSS/ {r = $2} /^VmHWM/ {h = $2} END {printf "RSS %.1f MiB, peak %.1f MiB", r / 1024, h / 1024}' "/proc/${ld##*.}/status")"
echo "zk-cell: /scheduled-stats: $(st get /scheduled-stats | head -c 200)"
