#!/bin/bash
# Store benchmark: ops/s for create/get/set/children and watch latency; group
# commit (creates/s of concurrent writers, threads and processes, and of
# store_multi batches; BIG creates through batches of 1000 and 32 threads);
# `treadle run --count 1000` on a fresh store and again on a warm one.
# usage: bench/store.sh [URL] [N] [BIG]   (N nodes, default 1000; BIG default 100000)
# Without URL: a temporary embedded store, then (if java and ZooKeeper are
# installed) a private single ZooKeeper server started by tests/lib/zk.sh.
# Prints "store-fs|store-zk <what>: <figure>" lines; not a test.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
make -s -j2 "$BUILD/libtreadle.a" "$BUILD/treadle"
mkdir -p "$BUILD/bench"
# shellcheck disable=SC2046
cc -std=gnu17 -D_GNU_SOURCE -DTHREADED -O2 -o "$BUILD/bench/bench-store" bench/bench-store.c "$BUILD/libtreadle.a" \
	$(pkg-config --libs yaml-0.1 jansson sqlite3 libcap libseccomp libarchive libcurl 2>/dev/null) -lz -lzookeeper_mt -lpthread -lm
n=${2:-1000}
big=${3:-100000}
if [ -n "${1:-}" ]; then
	exec "$BUILD/bench/bench-store" "$1" "$n" "$big"
fi
tmp=$(mktemp -d /tmp/treadle-bench-store.XXXXXX)
# shellcheck source=../tests/lib/zk.sh
. tests/lib/zk.sh
trap 'zk_stop; rm -rf "$tmp"' EXIT
cat >"$tmp/m.yml" <<'YML'
services:
- name: web
  command: /bin/sleep 1000
  restart:
    limit: 0
memory: 100M
cpu: 10%
disk: 100M
YML
# run --count 1000: the seconds of one `treadle run` (store writes: creates and pending events in batches)
run_count() { # label url
	local t0 t1
	t0=$(date +%s.%N)
	"$BUILD/treadle" run --store "$2" "$(id -un).web" --count 1000 -m "$tmp/m.yml" >"$tmp/run.out"
	t1=$(date +%s.%N)
	[ "$(wc -l <"$tmp/run.out")" = 1000 ] || { echo "$1 run --count 1000: wrong output"; return 1; }
	echo "$1 run --count 1000 ($3): $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }') s"
}
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
run_count store-fs "file://$tmp/cell" "fresh store"
run_count store-fs "file://$tmp/cell" "warm store, 1000 scheduled"
"$BUILD/bench/bench-store" "file://$tmp/store" "$n" "$big"
if zk_available && zk_start_single "$tmp/zk"; then
	run_count store-zk "zk://$ZK_HOSTS/cell" "fresh store"
	run_count store-zk "zk://$ZK_HOSTS/cell" "warm store, 1000 scheduled"
	"$BUILD/bench/bench-store" "zk://$ZK_HOSTS/bench" "$n" "$((big / 10))"
else
	echo "store-zk: skipped (no ZooKeeper)"
fi
