#!/bin/bash
# Trace benchmark: publish rate, prune+compaction time, snapshot sizes, read
# time live and from history.  usage: bench/trace.sh [URL] [N]; default a
# temporary embedded store and N=5000.  Prints figures; not a test.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
make -s -j2 "$BUILD/libtreadle.a"
mkdir -p "$BUILD/bench"
# shellcheck disable=SC2046
cc -std=gnu17 -D_GNU_SOURCE -DTHREADED -O2 -o "$BUILD/bench/bench-trace" bench/bench-trace.c "$BUILD/libtreadle.a" \
	$(pkg-config --libs yaml-0.1 jansson sqlite3 zlib 2>/dev/null) -lzookeeper_mt -lpthread -lm
tmp=""
url=${1:-}
if [ -z "$url" ]; then
	tmp=$(mktemp -d /tmp/treadle-bench-trace.XXXXXX)
	trap 'rm -rf "$tmp"' EXIT
	url="file://$tmp/store"
fi
echo "trace benchmark: $url"
"$BUILD/bench/bench-trace" "$url" "${2:-5000}"
