#!/bin/bash
# Master benchmark: the leader's scheduler loop (src/master/msched.c) on the
# embedded store (real store nodes, the same loader path as the daemon), at
# 10,000 and 100,000 scheduled apps (100 per server): first pass (load + place
# + write every /placement node), a no-change pass, per-event costs (median,
# CPU and wall), a reload, a new leader's first pass, peak RSS; then a
# sustained submission load into the 100k cell.
#   BENCH_MASTER_SIZES="10000 100000"   cells to measure (apps; servers = apps/100)
#   BENCH_MASTER_RATE=1000 BENCH_MASTER_SECONDS=60 BENCH_MASTER_SUBMITTERS=4
#   BENCH_MASTER_RATES="1000 2000"      rates for the load (default 1000; 0: none)
#   BENCH_MASTER_ZK=1   on a ZooKeeper server started here (tests/lib/zk.sh) instead of the embedded
#                       store (needs java and ZooKeeper; skipped without)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${TREADLE_BUILD:-$PWD/${BUILD:-build}}
mkdir -p "$BUILD/bench"
cc -std=gnu17 -D_GNU_SOURCE -DTHREADED -O2 -o "$BUILD/bench/bench-master" bench/bench-master.c "$BUILD/libtreadle.a" \
	$(pkg-config --libs yaml-0.1 jansson sqlite3 libcap libseccomp libarchive libcurl 2>/dev/null) -lz -lzookeeper_mt -lpthread -lm
tmp=$(mktemp -d /tmp/treadle-bench-master.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
store() { echo "$tmp/store"; }
if [ -n "${BENCH_MASTER_ZK:-}" ]; then
	. tests/lib/zk.sh
	zk_available || { echo "needs java and ZooKeeper"; exit 77; }
	trap 'zk_kill 1; rm -rf "$tmp"' EXIT
	zk_start_single "$tmp/zk" >/dev/null
	store() { echo "zk://$ZK_HOSTS/bench$(date +%s%N)"; }
fi
sizes=${BENCH_MASTER_SIZES:-10000 100000}
rates=${BENCH_MASTER_RATES:-1000}
last=${sizes##* }
for n in $sizes; do
	if [ "$n" = "$last" ]; then
		for rate in $rates; do
			rm -rf "$tmp/store"
			"$BUILD/bench/bench-master" "$(store)" "$n" $((n / 100)) "$rate" \
				"${BENCH_MASTER_SECONDS:-60}" "${BENCH_MASTER_SUBMITTERS:-4}" 2>/dev/null
		done
	else
		rm -rf "$tmp/store"
		"$BUILD/bench/bench-master" "$(store)" "$n" $((n / 100)) 2>/dev/null
	fi
done
