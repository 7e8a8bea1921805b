#!/bin/bash
# Node agent benchmark: agent RSS with 0 and N apps, and placement -> first
# service running latency (p50/p99) over N apps placed back to back.
# usage: bench/node.sh [N]   (default 50; needs root, s6, loop devices).
# NODE_ARGS: more `treadle node` flags, e.g. NODE_ARGS="--network none" for containers without the
# container network (only lo), to compare with the default (VIP, veth, firewall elements per container).
# Prints figures; not a test.  Everything is removed at the end.
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
make -s -j2 "$BUILD/treadle" || exit 1
export TREADLE_BIN=$PWD/$BUILD/treadle
COUNT=${1:-50}
SETUP_TIMEOUT=300
# shellcheck source=../tests/lib/node.sh
. tests/lib/node.sh

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

start_svscan
# shellcheck disable=SC2086 # flags, split on purpose
start_agent ${NODE_ARGS:-}
sleep 1
echo "node flags: ${NODE_ARGS:-(defaults: container network on)}"
echo "node agent RSS, 0 apps: $(rss_kb "$AGENT_PID") kB"
for i in $(seq 1 "$COUNT"); do
	st create -p "/scheduled/nobody.bench#$(printf %010d "$i")" \
		"$(manifest "[{\"name\":\"svc\",\"command\":\"exec sleep 3$(printf %05d "$i")\",\"restart\":{\"limit\":3,\"interval\":60}}]")" >/dev/null
done
declare -A placed
t0=$(date +%s.%N)
for i in $(seq 1 "$COUNT"); do
	st create -p "/placement/$H/nobody.bench#$(printf %010d "$i")" '{}' >/dev/null
done
wait_for 300 bash -c "[ \$('$BIN' store --store '$STORE' ls /running 2>/dev/null | wc -l) -ge $COUNT ]" ||
	echo "warning: not all $COUNT apps running"
t1=$(date +%s.%N)
sleep 1
echo "node agent RSS, $COUNT apps: $(rss_kb "$AGENT_PID") kB"
echo "all $COUNT placed -> all running: $(echo "$t1 - $t0" | bc) s"
lat=$T/latencies
: >"$lat"
# latency from the placement node's creation (store ctime), not from the CLI call
for i in $(seq 1 "$COUNT"); do
	inst="nobody.bench#$(printf %010d "$i")"
	placed[$inst]=$(st get --stat "/placement/$H/$inst" | awk '/^ctime_ms/ {printf "%.3f", $2 / 1000}')
done
for shard in $(st ls /trace); do st ls "/trace/$shard"; done >"$T/events"
# latency TYPE LABEL: from placement creation to the first TYPE event of each instance
latency() {
	: >"$lat"
	awk -F, -v t="$1" '$4 == t {print $1, $2}' "$T/events" | sort -k1,1 -k2,2n | awk '!seen[$1]++' |
		while read -r inst ts; do echo "$ts - ${placed[$inst]}" | bc >>"$lat"; done
	sort -n "$lat" | awk -v label="$2" '{a[NR] = $1} END {
		if (NR == 0) { print "no latencies"; exit }
		p50 = a[int((NR - 1) * 0.50) + 1]; p99 = a[int((NR - 1) * 0.99) + 1];
		printf "placement -> %s over %d apps: p50 %.0f ms, p99 %.0f ms, max %.0f ms\n", label, NR, p50 * 1000, p99 * 1000, a[NR] * 1000 }'
}
latency configured "configured (node agent alone)"
latency service_running "first service running"
for i in $(seq 1 "$COUNT"); do unplace "nobody.bench#$(printf %010d "$i")"; done
wait_for 300 bash -c "[ -z \"\$(ls '$N/apps')\" ]" || echo "warning: cleanup incomplete"
echo "all $COUNT terminated and cleaned up"
