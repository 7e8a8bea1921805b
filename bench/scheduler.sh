#!/bin/bash
# Scheduler benchmarks: Treadmill's workloads (reference/treadmill-scheduler.md §6)
# in compatible and improved mode.  Prints one line per pass: wall and CPU
# seconds, peak RSS per process.  Not a test: figures only.
#   BENCH_SCHED_1M=1   also run 1,000,000 apps / 100,000 servers (~1.5 min, ~2 GB)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${TREADLE_BIN:-$PWD/${BUILD:-build}/treadle}
CONF=${TREADLE_CONFORMANCE:-$PWD/../shared/conformance/scheduler}
[ -d "$CONF" ] || CONF=/work/shared/conformance/scheduler
tmp=$(mktemp -d /tmp/treadle-bench-sched.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

run() { # label args...
	local label=$1; shift
	echo "== $label"
	/usr/bin/time -f "peak RSS %M KB" "$BIN" scheduler simulate "$@" 2>&1 | sed 's/^/   /'
}

echo "treadle scheduler benchmarks ($(nproc) cores, $(date -u +%FT%TZ))"
echo "Treadmill (Python) for reference, per cell.schedule(): 10k/1k init 0.51 s steady 0.13 s;"
echo "100k/10k init 9.2 s steady 1.6 s down 1.9 s, 295 MB; 200k/10k init 37 s"
for cell in s100 s1000; do
	[ -d "$CONF/$cell" ] || continue
	mkdir -p "$tmp/$cell"
	run "conformance $cell, compatible" --repeat 10 --out "$tmp/$cell" "$CONF/$cell"
done
"$BIN" scheduler simulate --quiet --generate 10000 10 42 "$tmp/g100k"
run "100,000 apps / 10,000 servers, compatible" --repeat 10 --events 20 "$tmp/g100k"
run "100,000 apps / 10,000 servers, improved" --mode improved --repeat 10 --events 500 "$tmp/g100k"
"$BIN" scheduler simulate --quiet --generate 10000 20 42 "$tmp/g200k"
run "200,000 apps / 10,000 servers (oversubscribed), compatible" "$tmp/g200k"
run "200,000 apps / 10,000 servers (oversubscribed), improved" --mode improved "$tmp/g200k"
if [ "${BENCH_SCHED_1M:-0}" = 1 ]; then
	"$BIN" scheduler simulate --quiet --generate 100000 10 42 "$tmp/g1m"
	run "1,000,000 apps / 100,000 servers, compatible" "$tmp/g1m"
	run "1,000,000 apps / 100,000 servers, improved" --mode improved "$tmp/g1m"
else
	echo "== 1,000,000 apps / 100,000 servers: skipped (BENCH_SCHED_1M=1 to run)"
fi
