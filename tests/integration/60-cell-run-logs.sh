#!/bin/bash
# An app runs in a real cell and its output shows in `treadle logs`; `logs -f`
# keeps following across an s6-log rotation; cell down leaves nothing behind.
. "$(dirname "$0")/../lib/cell.sh"
cell_require
cell_setup

m=marker-$$-$RANDOM
# The service waits for the file "go" in its service dir (its cwd) before the big output.
cmd="echo first-$m; while [ ! -e go ]; do sleep 0.2; done; head -c 1100000 /dev/zero | tr '\\0' x | fold -w 99; echo after-rotate-$m; exec sleep 86$$"
inst=$("$T" run nobody.itlogs --cpu 5% -- /bin/sh -c "$cmd") || fail "treadle run"
[[ $inst =~ ^nobody\.itlogs#[0-9]{10}$ ]] || fail "bad instance id '$inst'"
note "instance $inst"

wait_for 30 has_event "$inst" service_running || fail "service never reported running"
"$T" show --json | grep -q "\"$inst\"" || fail "show does not list $inst"
"$T" show scheduled | grep -F "$inst" | grep -q -- "$H" || fail "show does not place $inst on $H"

# The service is named after the command's basename: "sh".
wait_for 10 sh -c "'$T' logs '$inst/sh' | grep -q first-$m" || fail "first marker not in treadle logs"
"$T" logs "$inst" | grep -q "first-$m" || fail "logs without /SERVICE (single service) failed"
"$T" logs "$inst/nosuch" >/dev/null 2>&1 && fail "logs of a missing service succeeded"

# Follow across rotation (s6-log rotates `current` at 1 MB).
"$T" logs -f "$inst/sh" >"$R/follow.out" 2>&1 &
fpid=$!
wait_for 20 grep -q "first-$m" "$R/follow.out" || { kill $fpid; fail "logs -f did not print the first marker"; }
svcdir=$(echo "$R"/node/apps/*/data/services/sh)
touch "$svcdir/go" || fail "cannot reach the service dir"
wait_for 30 grep -q "after-rotate-$m" "$R/follow.out" || { kill $fpid; fail "logs -f lost the output after rotation"; }
kill $fpid; wait $fpid 2>/dev/null
ls "$R"/node/apps/*/data/services/sh/data/log/ | grep -q '^@' || note "(no rotated file seen; s6-log did not rotate?)"
n=$(grep -c "first-$m" "$R/follow.out"); [ "$n" = 1 ] || { grep -n -v "^x*$" "$R/follow.out" | head; ls -li "$R"/node/apps/*/data/services/sh/data/log/; fail "logs -f printed the first marker $n times"; }
# cell down with the container running: the node cleans it up first, the
# instance finishes (killed by SIGTERM), nothing is swept (teardown checks leaks).
out=$("$T" cell down 2>&1) || fail "cell down: $out"
echo "$out" | grep -q swept && fail "cell down had to sweep: $out"
"$T" cell status >/dev/null 2>&1 && fail "cell still running after cell down"
pgrep -f "sleep 86$$" >/dev/null && fail "the service survived cell down"
"$T" trace "$inst" >/dev/null; rc=$?
[ "$rc" = 143 ] || fail "trace exit after cell down: $rc, expected 143 (finished, killed by SIGTERM)"
echo "ok: run, show, logs, logs -f across rotation, cell down"
