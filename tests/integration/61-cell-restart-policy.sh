#!/bin/bash
# A crashing service is restarted exactly `limit` times within `interval`; the
# next exit finishes the instance with the service's exit code, and `treadle
# trace` shows the whole event sequence and exits with that code.
. "$(dirname "$0")/../lib/cell.sh"
cell_require
cell_setup

cat >"$R/crash.yml" <<'YML'
memory: 100M
cpu: 5%
disk: 100M
services:
  - name: crash
    command: echo crashing; exit 3
    restart:
      limit: 2
      interval: 60
YML
inst=$("$T" run nobody.itcrash -m "$R/crash.yml") || fail "treadle run"
note "instance $inst"
timeout 60 "$T" trace --follow "$inst" >"$R/trace.out"; rc=$?
cat "$R/trace.out"
[ "$rc" = 3 ] || fail "trace --follow exit code $rc, expected the service's 3"
ev=$(events "$inst" | tr '\n' ' ')
note "events: $ev"
[[ $ev == "pending scheduled configured service_running "* ]] || fail "event sequence starts wrong: $ev"
[ "$(count_event "$inst" service_running)" = 3 ] || fail "expected 3 service_running (1 + limit 2 restarts)"
[ "$(count_event "$inst" service_exited)" = 3 ] || fail "expected 3 service_exited"
# The master posts `deleted` once the finished instance leaves /scheduled (as Treadmill's remove_app).
[ "$(events "$inst" | grep -vx deleted | tail -n 1)" = finished ] || fail "last event is not finished"
wait_for 10 has_event "$inst" deleted || fail "no deleted event after finished"
"$T" trace --json "$inst" | grep '"finished"' | grep -q '"data":"3\.0"' || fail "finished data is not 3.0"
grep -q 'exited, return code: 3' "$R/trace.out" || fail "trace does not print the exit code readably"
"$T" trace "$inst" >/dev/null; [ $? = 3 ] || fail "trace (no --follow) exit code is not 3"
wait_for 10 sh -c "'$T' show finished | grep -F '$inst' | grep -q 'rc=3'" || fail "show finished lacks rc=3"
"$T" show scheduled | grep -qF "$inst" && fail "finished instance still scheduled"
# Its logs outlive the container (the node archives them at cleanup).
wait_for 20 sh -c "[ \$('$T' logs '$inst/crash' 2>/dev/null | grep -c crashing) = 3 ]" ||
	fail "logs of the finished instance do not show 3 runs: $("$T" logs "$inst/crash" 2>&1 | head -5)"
echo "ok: restart policy, finished rc 3, trace sequence, archived logs"
