#!/bin/bash
# bench/run.sh (`make bench`): runs every executable bench/*.sh and prints their figures.
# A bench script prints "name: figure" lines; exit 77 = skipped (reason on its last line).
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export TREADLE_BIN="$PWD/$BUILD/treadle" TREADLE_BUILD="$PWD/$BUILD" TREADLE_SRC="$PWD"
rc=0
for b in bench/*.sh; do
	[ "$b" = bench/run.sh ] && continue
	# fault injection takes minutes and kills daemons: `make bench-faults` (docs/TESTING.md)
	[ "$b" = bench/faults.sh ] && continue
	[ -x "$b" ] || continue
	echo "== $b"
	out=$(mktemp)
	"$b" 2>&1 | tee "$out"
	st=${PIPESTATUS[0]}
	if [ "$st" = 77 ]; then
		echo "   skipped: $(tail -n 1 "$out")"
	elif [ "$st" != 0 ]; then
		echo "   FAILED (exit $st)"
		rc=1
	fi
	rm -f "$out"
done
exit $rc
