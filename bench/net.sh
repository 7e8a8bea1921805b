#!/bin/bash
# Network benchmark (src/net): one container's firewall change with 0/1/100/1,000
# containers loaded, full-table rebuild of 1,000 x 3 endpoints, VIP allocate and
# release, veth setup and teardown per container.  Runs in a private network
# namespace (root); prints "net <what>: <figure>" lines; not a test.
# usage: bench/net.sh [ITERATIONS]   (per figure, default 200)
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
[ "$(id -u)" = 0 ] || { echo "skipped: needs root (network namespaces)"; exit 77; }
make -s -j2 "$BUILD/libtreadle.a"
mkdir -p "$BUILD/bench"
# shellcheck disable=SC2046
cc -std=gnu17 -D_GNU_SOURCE -DTHREADED -O2 -o "$BUILD/bench/bench-net" bench/bench-net.c "$BUILD/libtreadle.a" \
	$(pkg-config --cflags --libs yaml-0.1 jansson sqlite3 libcap libseccomp libarchive libcurl zlib \
		libnl-route-3.0 libnl-3.0 libnftables libnetfilter_conntrack) -lzookeeper_mt -lpthread -lm
exec "$BUILD/bench/bench-net" "${1:-200}"
