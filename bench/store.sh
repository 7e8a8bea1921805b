#!/bin/bash
# Store benchmark: ops/s for create/get/set and watch latency.
# usage: bench/store.sh [URL] [N]   default: a temporary embedded store, N=1000;
# a zk:// URL benchmarks a running ZooKeeper.  Prints figures; not a test.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
make -s -j2 "$BUILD/libtreadle.a"
mkdir -p "$BUILD/bench"
# shellcheck disable=SC2046
cc -std=gnu17 -D_GNU_SOURCE -DTHREADED -O2 -o "$BUILD/bench/bench-store" bench/bench-store.c "$BUILD/libtreadle.a" \
	$(pkg-config --libs yaml-0.1 jansson sqlite3 libcap libseccomp libarchive libcurl 2>/dev/null) -lzookeeper_mt -lpthread -lm
tmp=""
url=${1:-}
if [ -z "$url" ]; then
	tmp=$(mktemp -d /tmp/treadle-bench-store.XXXXXX)
	trap 'rm -rf "$tmp"' EXIT
	url="file://$tmp/store"
fi
echo "store benchmark: $url"
"$BUILD/bench/bench-store" "$url" "${2:-1000}"
