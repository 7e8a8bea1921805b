#!/bin/bash
# tests/fuzz/fuzz.sh (`make fuzz`): runs each libFuzzer fuzzer of $BUILD/fuzz/
# (built by `make FUZZ=1`) for FUZZ_SECONDS over its corpus, one after the other.
#   $BUILD/fuzz-corpus/<name>/  inputs libFuzzer found (kept between runs)
#   tests/fuzz/corpus/<name>/   the seeds, replayed by `make test` (only read here)
#   $BUILD/crashes/<name>/      crash-*, leak-*, timeout-*, oom-* inputs it found
# Arguments: fuzzer names (e.g. store-fs image) to run only those.  Extra
# libFuzzer flags: FUZZ_FLAGS.  Exit: 0 no crash, 1 crash(es) found, 2 usage.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build-fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-60}
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
	for f in tests/fuzz/fuzz-*.c; do
		n=$(basename "$f" .c)
		names+=("${n#fuzz-}")
	done
fi
found=0
for n in "${names[@]}"; do
	bin=$BUILD/fuzz/fuzz-$n
	if [ ! -x "$bin" ]; then
		echo "fuzz.sh: $bin missing (make FUZZ=1)" >&2
		exit 2
	fi
	work=$BUILD/fuzz-corpus/$n crashes=$BUILD/crashes/$n
	mkdir -p "$work" "$crashes" "tests/fuzz/corpus/$n"
	before=$(ls "$crashes" | wc -l)
	echo "== fuzz-$n: ${SECONDS_EACH}s"
	# Relative paths: fuzz-image chroot()s into a scratch dir and keeps its cwd.
	# shellcheck disable=SC2086
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0} \
		"$bin" -max_total_time="$SECONDS_EACH" -timeout=25 -rss_limit_mb=2048 -max_len=65536 \
		-artifact_prefix="$crashes/" -print_final_stats=1 ${FUZZ_FLAGS:-} \
		"$work" "tests/fuzz/corpus/$n" >"$BUILD/fuzz-$n.log" 2>&1
	rc=$?
	grep -E '^(stat::number_of_executed_units|stat::new_units_added|stat::peak_rss_mb)' "$BUILD/fuzz-$n.log" |
		sed 's/^stat::/   /'
	after=$(ls "$crashes" | wc -l)
	if [ "$rc" != 0 ] || [ "$after" != "$before" ]; then
		found=1
		echo "   CRASH (exit $rc): $(grep -m1 -E 'ERROR|runtime error|deadly signal' "$BUILD/fuzz-$n.log")"
		ls "$crashes" | sed "s,^,   $crashes/,"
		echo "   log: $BUILD/fuzz-$n.log"
	fi
done
if [ "$found" = 1 ]; then
	echo "fuzz: crashes found; once fixed, copy each input to tests/fuzz/corpus/<name>/ (make test replays it; docs/TESTING.md)"
	exit 1
fi
echo "fuzz: no crash"
