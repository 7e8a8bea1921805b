#!/bin/bash
# Master benchmark: the leader's scheduler loop (src/master/msched.c) with
# 100,000 scheduled apps on 1,000 servers in the embedded store (real store
# nodes, the same loader path as the daemon): first pass (load + place + write
# 100k /placement nodes), a no-change pass, per-event costs, peak RSS.
#   BENCH_MASTER_APPS=N BENCH_MASTER_SERVERS=S to change the size.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${TREADLE_BUILD:-$PWD/${BUILD:-build}}
mkdir -p "$BUILD/bench"
cc -std=gnu17 -D_GNU_SOURCE -DTHREADED -O2 -o "$BUILD/bench/bench-master" bench/bench-master.c "$BUILD/libtreadle.a" \
	$(pkg-config --libs yaml-0.1 jansson sqlite3 libcap libseccomp libarchive libcurl 2>/dev/null) -lz -lzookeeper_mt -lpthread -lm
tmp=$(mktemp -d /tmp/treadle-bench-master.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
"$BUILD/bench/bench-master" "$tmp/store" "${BENCH_MASTER_APPS:-100000}" "${BENCH_MASTER_SERVERS:-1000}" 2>/dev/null
