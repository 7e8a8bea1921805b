#!/bin/bash
# Store benchmark: ops/s for create/get/set/children and watch latency.
# usage: bench/store.sh [URL] [N]   (N nodes, default 1000)
# Without URL: a temporary embedded store, then (if java and ZooKeeper are
# installed) a private single ZooKeeper server started by tests/lib/zk.sh.
# Prints "store-fs|store-zk <what>: <figure>" lines; not a test.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
make -s -j2 "$BUILD/libtreadle.a"
mkdir -p "$BUILD/bench"
# shellcheck disable=SC2046
cc -std=gnu17 -D_GNU_SOURCE -DTHREADED -O2 -o "$BUILD/bench/bench-store" bench/bench-store.c "$BUILD/libtreadle.a" \
	$(pkg-config --libs yaml-0.1 jansson sqlite3 libcap libseccomp libarchive libcurl 2>/dev/null) -lz -lzookeeper_mt -lpthread -lm
n=${2:-1000}
if [ -n "${1:-}" ]; then
	exec "$BUILD/bench/bench-store" "$1" "$n"
fi
tmp=$(mktemp -d /tmp/treadle-bench-store.XXXXXX)
# shellcheck source=../tests/lib/zk.sh
. tests/lib/zk.sh
trap 'zk_stop; rm -rf "$tmp"' EXIT
"$BUILD/bench/bench-store" "file://$tmp/store" "$n"
if zk_available && zk_start_single "$tmp/zk"; then
	"$BUILD/bench/bench-store" "zk://$ZK_HOSTS/bench" "$n"
else
	echo "store-zk: skipped (no ZooKeeper)"
fi
