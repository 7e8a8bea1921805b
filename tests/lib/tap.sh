# tests/lib/tap.sh: TAP output for integration tests (source it).
#   ok DESC / notok DESC      one TAP line, numbered; notok counts a failure (FAILS)
#   assert DESC CMD...        ok if CMD succeeds, notok otherwise
#   done_testing              the plan line "1..N"; returns 1 if anything failed (end a test with it)
#   test_tmp PREFIX           $tmp, a fresh /tmp/PREFIX.XXXXXX removed on exit (tests with no other trap)
TAPN=0
FAILS=0
ok() { TAPN=$((TAPN + 1)); echo "ok $TAPN - $*"; }
notok() { TAPN=$((TAPN + 1)); FAILS=$((FAILS + 1)); echo "not ok $TAPN - $*"; }
assert() { local d=$1; shift; if "$@"; then ok "$d"; else notok "$d"; fi; }
done_testing() { echo "1..$TAPN"; [ "$FAILS" -eq 0 ]; }
test_tmp() {
	tmp=$(mktemp -d "/tmp/$1.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
}
