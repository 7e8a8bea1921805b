#!/bin/bash
# `treadle stop` ends a running instance: its processes go, its placement goes,
# and the trace shows the stop.
. "$(dirname "$0")/../lib/cell.sh"
cell_require
cell_setup

tag=87$$
inst=$("$T" run nobody.itstop -- sleep "$tag") || fail "treadle run"
wait_for 30 has_event "$inst" service_running || fail "service never ran"
wait_for 5 pgrep -fx "sleep $tag" || fail "no 'sleep $tag' process"
"$T" stop "$inst" || fail "treadle stop"
wait_for 30 sh -c "! pgrep -fx 'sleep $tag'" || fail "the service still runs after stop"
wait_for 10 sh -c "[ ! -e '$R/node/running/$inst' ]" || fail "running/$inst still there"
has_event "$inst" pending_delete || fail "no pending_delete event"
wait_for 10 has_event "$inst" deleted || fail "no deleted event"
"$T" show scheduled | grep -qF "$inst" && fail "still scheduled after stop"
"$T" stop "$inst" 2>/dev/null; [ $? = 100 ] || fail "stopping a stopped instance should exit 100"
"$T" stop "not-an-instance" 2>/dev/null; [ $? = 100 ] || fail "stop of a malformed id should exit 100"
echo "ok: stop"
