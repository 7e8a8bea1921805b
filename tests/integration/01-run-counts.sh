#!/bin/bash
# tests/run.sh counts as cmocka prints (CMOCKA_MESSAGE_OUTPUT=TAP, cmocka 1.1): "ok N - name" passes,
# "not ok N - name" fails, "not ok N # SKIP name" (cmocka's skip()) is a skip, not a failure; the summary
# ends "N passed, N failed, N skipped" and the exit code is 1 only when something failed.
set -u
SRC=${TREADLE_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$SRC/tests/lib/tap.sh"
test_tmp treadle-run-counts
mkdir -p "$tmp/b/tests"
# a unit binary printing what a cmocka group with a pass, a skip and (when FAILDEMO is set) a failure prints
cat >"$tmp/b/tests/test-demo" <<'SH'
#!/bin/sh
echo "1..3"
echo "ok 1 - passes"
echo "not ok 2 # SKIP skipped"
if [ -n "${FAILDEMO:-}" ]; then echo "not ok 3 - fails"; echo "# not ok - demo"; exit 1; fi
echo "ok 3 - fails"
echo "# ok - demo"
SH
chmod +x "$tmp/b/tests/test-demo"
run() { # [VAR=value...]: $out the summary line, $rc the exit code
	env "$@" TESTS=unit/test-demo BUILD="$tmp/b" "$SRC/tests/run.sh" >"$tmp/out" 2>&1; rc=$?
	rm -rf "$(sed -n 's/^logs in //p' "$tmp/out")"
	out=$(tail -n 1 "$tmp/out")
}
run
assert "a cmocka skip is a skip: '$out'" [ "$out" = "2 passed, 0 failed, 1 skipped" ]
assert "exit 0 with skips (rc $rc)" [ "$rc" = 0 ]
run FAILDEMO=1
assert "a failure beside a skip: '$out'" [ "$out" = "1 passed, 1 failed, 1 skipped" ]
assert "exit 1 on a failure (rc $rc)" [ "$rc" = 1 ]
grep -q '^FAIL unit/test-demo (1 failed)' "$tmp/out" && ! grep -q 'SKIP' "$tmp/out"
assert "the failure is named, the skip not listed as one" [ $? = 0 ]
done_testing
