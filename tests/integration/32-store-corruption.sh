#!/bin/bash
# One bad store file does not stop the cell (issue 9, items 3 and 4): a corrupt
# /scheduled node is reported once by the master and skipped while other apps
# keep being placed and running (also across a master restart); `treadle store
# fsck` lists it (exit 1) and `--repair` moves it away (exit 0); /scheduled data
# that cannot be a manifest ([1,2,3], garbage) ends with an aborted event
# (reason invalid_manifest) and `treadle trace` exits 101, whether the master
# sees it first or the node agent is handed such a placement.
. "$(dirname "$0")/../lib/cell.sh"
cell_require
cell_setup

tag=46$$
S=$R/store
n=0
check() { n=$((n + 1)); echo "ok $n - $*"; }
running() { wait_for 30 has_event "$1" service_running; }

a=$("$T" run nobody.it46a -- sleep "${tag}1") || fail "run a"
running "$a" || fail "$a never ran"

note "a corrupt /scheduled node appears (made aside, renamed in as the store does) ($(date +%T))"
bad="nobody.it46bad#0000009999"
mkdir "$S/tree/scheduled/.tmp.it46" || fail "mkdir"
printf 'garbage\n{"memory": "100M"}' >"$S/tree/scheduled/.tmp.it46/.node"
mv "$S/tree/scheduled/.tmp.it46" "$S/tree/scheduled/$bad"
"$T" store get "/scheduled/$bad" 2>"$R/err"; rc=$?
[ "$rc" = 111 ] || fail "reading the corrupt node: exit $rc"

b=$("$T" run nobody.it46b -- sleep "${tag}2") || fail "run b"
running "$b" || fail "$b was not placed and run next to the corrupt node"
check "apps keep being placed and running next to a corrupt node"
wait_for 10 grep -qF "/scheduled/$bad: unreadable" "$R/log/master/current" || fail "the master did not report it"
[ "$(grep -cF "/scheduled/$bad: unreadable" "$R/log/master/current")" = 1 ] || fail "reported more than once"
grep -q "loading the cell: \(Input/output\|I/O\) error" "$R/log/master/current" && fail "the master stopped on it"
check "the master reported it once"

note "restart the master: it loads the cell with the corrupt node in it ($(date +%T))"
old=$(s6-svstat -o pid "$R/svc/master")
kill -9 "$old"
wait_for 20 sh -c "p=\$(s6-svstat -o pid '$R/svc/master'); [ \"\$p\" -gt 0 ] && [ \"\$p\" != $old ]" ||
	fail "s6 did not restart the master"
d=$("$T" run nobody.it46d -- sleep "${tag}4") || fail "run d"
running "$d" || fail "$d not run after the master restart"
for p in 1 2 4; do
	[ "$(pgrep -fx "sleep ${tag}$p" | wc -l)" = 1 ] || fail "sleep ${tag}$p runs $(pgrep -fx "sleep ${tag}$p" | wc -l) times"
done
check "a restarted master schedules the rest"

note "a corrupt trace event node: the instance's other events still read ($(date +%T))"
ev=$(cd "$S/tree/trace" && ls -d -- */"$a,"*",configured,"* 2>/dev/null | head -n 1)
[ -n "$ev" ] || fail "no configured event node of $a under $S/tree/trace"
printf 'garbage' >"$S/tree/trace/$ev/.node"
"$T" trace "$a" >"$R/trace" 2>&1 || true
cat "$R/trace"
grep -q service_running "$R/trace" || fail "trace of $a stopped at its corrupt event node"
check "a corrupt trace event node is skipped, the rest of the trace reads"

"$T" store fsck >"$R/fsck" 2>&1; rc=$?
cat "$R/fsck"
[ "$rc" = 1 ] || fail "fsck of a store with a corrupt node: exit $rc, expected 1"
grep -qF "/scheduled/$bad: unreadable node" "$R/fsck" || fail "fsck did not list the node"
[ -d "$S/tree/scheduled/$bad" ] || fail "fsck without --repair changed the store"
"$T" store fsck --repair >"$R/fsck" 2>&1; rc=$?
cat "$R/fsck"
[ "$rc" = 0 ] || fail "fsck --repair: exit $rc"
grep -q "repaired, moved to $S/lost+found/" "$R/fsck" || fail "fsck --repair did not say where the node went"
[ -e "$S/tree/scheduled/$bad" ] && fail "the corrupt node is still there"
"$T" store fsck >/dev/null || fail "fsck after the repair is not clean"
check "fsck lists (exit 1), repairs (exit 0), then is clean"

note "/scheduled data that cannot be a manifest ($(date +%T))"
for data in '[1,2,3]' 'not json{' '{"memory": "lots"}'; do
	inst=$("$T" store create -s "/scheduled/nobody.it46inv#" "$data") || fail "store create $data"
	inst=${inst#/scheduled/}
	wait_for 20 has_event "$inst" aborted || fail "$inst ($data): no aborted event"
	"$T" trace "$inst" >"$R/trace" 2>&1; rc=$?
	cat "$R/trace"
	[ "$rc" = 101 ] || fail "trace of $inst ($data): exit $rc, expected 101"
	grep -q "invalid_manifest" "$R/trace" || fail "$inst: the reason is not named"
	grep -q "invalid manifest: " "$R/trace" || fail "$inst: no details"
	[ "$(count_event "$inst" aborted)" = 1 ] || fail "$inst: aborted $(count_event "$inst" aborted) times"
	wait_for 10 sh -c "! '$T' store exists '/scheduled/$inst'" || fail "$inst still in /scheduled"
	check "$data: aborted (invalid_manifest), unscheduled, trace exits 101"
done
note "the node agent's own guard: a placement whose /scheduled data is not an object (master down)"
s6-svc -d "$R/svc/master"
wait_for 20 sh -c "[ \"\$(s6-svstat -o up '$R/svc/master')\" = false ]" || fail "the master did not stop"
inst=$("$T" store create -s "/scheduled/nobody.it46node#" '[1,2,3]') || fail "store create"
inst=${inst#/scheduled/}
"$T" store create "/placement/$H/$inst" '{"expires": null, "identity": null, "identity_count": null}' >/dev/null ||
	fail "placing $inst by hand"
wait_for 20 has_event "$inst" aborted || fail "$inst: the node did not abort it"
"$T" trace "$inst" >"$R/trace" 2>&1; rc=$?
cat "$R/trace"
[ "$rc" = 101 ] || fail "trace of $inst: exit $rc, expected 101"
grep -q "invalid_manifest" "$R/trace" || fail "$inst: the node's reason is not named"
[ "$(count_event "$inst" aborted)" = 1 ] || fail "$inst: aborted $(count_event "$inst" aborted) times"
wait_for 10 sh -c "! '$T' store exists '/scheduled/$inst'" || fail "$inst still in /scheduled"
s6-svc -u "$R/svc/master"
wait_for 20 sh -c "! '$T' store exists '/placement/$H/$inst'" || fail "the restarted master kept the placement"
check "the node aborts a placement it cannot use (invalid_manifest), trace exits 101"
for p in 1 2 4; do
	[ "$(pgrep -fx "sleep ${tag}$p" | wc -l)" = 1 ] || fail "sleep ${tag}$p no longer runs"
done
check "the cell goes on ($(date +%T))"
echo "ok: a bad store file or bad data does not stop the cell"
