#!/bin/bash
# Runs every test: unit binaries (cmocka, TAP output), fuzz corpus replays, and
# the integration scripts tests/integration/NN-*.sh (exit 0 pass, 77 skip with
# a reason on the last line of output, anything else fail).
# Ends with "N passed, N failed, N skipped".  Filter with TESTS=pattern.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export TREADLE_BIN="$PWD/$BUILD/treadle" TREADLE_BUILD="$PWD/$BUILD" TREADLE_SRC="$PWD"
export CMOCKA_MESSAGE_OUTPUT=TAP
pass=0 fail=0 skip=0 failed=()
logdir=$(mktemp -d /tmp/treadle-tests.XXXXXX)

count_tap() { # name logfile rc
	local name=$1 log=$2 rc=$3 ok nok sk
	# TAP "# SKIP" directives (cmocka prints "not ok N - name # SKIP") count as skips, not failures.
	sk=$(grep -ciE '^(not )?ok .*# SKIP' "$log")
	ok=$(grep -E '^ok ' "$log" | grep -cviE '# SKIP')
	nok=$(grep -E '^not ok ' "$log" | grep -cviE '# SKIP')
	skip=$((skip + sk))
	[ "$sk" -gt 0 ] && [ "$ok" -eq 0 ] && [ "$nok" -eq 0 ] && { echo "skip $name ($sk)"; return; }
	if [ "$ok" -eq 0 ] && [ "$nok" -eq 0 ]; then
		if [ "$rc" -eq 0 ]; then ok=1; else nok=1; fi
	elif [ "$rc" -ne 0 ] && [ "$nok" -eq 0 ]; then
		nok=1   # crashed after reporting: count one failure
	fi
	pass=$((pass + ok)); fail=$((fail + nok))
	if [ "$nok" -gt 0 ]; then
		failed+=("$name"); echo "FAIL $name ($nok failed)"
		grep -E '^not ok|^#' "$log" | grep -viE '^(not )?ok .*# SKIP' | head -20 | sed 's/^/    /'
	else
		echo "ok   $name ($ok)"
	fi
}

match() { [ -z "${TESTS:-}" ] || [[ "$1" == *${TESTS}* ]]; }

for t in "$BUILD"/tests/test-*; do
	[ -x "$t" ] || continue
	name=unit/$(basename "$t"); match "$name" || continue
	log=$logdir/$(basename "$t").log
	timeout 300 "$t" >"$log" 2>&1; rc=$?
	count_tap "$name" "$log" "$rc"
done

for f in "$BUILD"/fuzz/fuzz-*; do
	[ -x "$f" ] || continue
	name=fuzz/$(basename "$f"); match "$name" || continue
	corpus=tests/fuzz/corpus/$(basename "$f" | sed 's/^fuzz-//')
	log=$logdir/$(basename "$f").log
	timeout 300 "$f" "$corpus" >"$log" 2>&1; rc=$?
	count_tap "$name" "$log" "$rc"
done

for t in tests/integration/[0-9]*.sh; do
	[ -f "$t" ] || continue
	name=integration/$(basename "$t" .sh); match "$name" || continue
	log=$logdir/$(basename "$t").log
	timeout 900 bash "$t" >"$log" 2>&1; rc=$?
	if [ "$rc" -eq 77 ]; then
		skip=$((skip + 1)); echo "skip $name: $(tail -n 1 "$log")"
		continue
	fi
	count_tap "$name" "$log" "$rc"
	[ "$rc" -ne 0 ] && tail -n 25 "$log" | sed 's/^/    | /'
done

echo "logs in $logdir"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
