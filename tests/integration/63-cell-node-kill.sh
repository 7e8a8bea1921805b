#!/bin/bash
# The node agent killed with SIGKILL (steady state, and in the middle of
# starting a container) and restarted by s6 reconciles: every instance runs
# exactly once, no duplicate container, nothing leaked (checked at teardown).
. "$(dirname "$0")/../lib/cell.sh"
cell_require
cell_setup

tag=88$$
node_pid() { s6-svstat -o pid "$R/svc/node"; }
kill_node() {
	local p; p=$(node_pid)
	[ "$p" -gt 0 ] || fail "node agent not running"
	kill -9 "$p"
	wait_for 20 sh -c "p=\$(s6-svstat -o pid '$R/svc/node'); [ \"\$p\" -gt 0 ] && [ \"\$p\" != $p ]" ||
		fail "s6 did not restart the node agent"
}
procs() { pgrep -fx "sleep $1" | wc -l; }

ids=$("$T" run nobody.itkill --count 2 -- sleep "${tag}1") || fail "run"
i1=$(echo "$ids" | sed -n 1p); i2=$(echo "$ids" | sed -n 2p)
wait_for 30 sh -c "[ \$(pgrep -fx 'sleep ${tag}1' | wc -l) = 2 ]" || fail "two instances did not start"
before=$(pgrep -fx "sleep ${tag}1" | sort | tr '\n' ' ')

note "SIGKILL the node agent in steady state"
kill_node
sleep 3
after=$(pgrep -fx "sleep ${tag}1" | sort | tr '\n' ' ')
[ "$before" = "$after" ] || fail "containers were restarted or duplicated: '$before' -> '$after'"

note "SIGKILL the node agent while it starts a container"
i3=$("$T" run nobody.itkill2 -- sleep "${tag}2") || fail "run"
wait_for 10 sh -c "ls '$R/node/cache' | grep -qF '$i3'" || true
kill_node
wait_for 30 sh -c "[ \$(pgrep -fx 'sleep ${tag}2' | wc -l) -ge 1 ]" || fail "$i3 never started after the restart"
sleep 3
[ "$(procs "${tag}2")" = 1 ] || fail "$i3 runs $(procs "${tag}2") times"
[ "$(procs "${tag}1")" = 2 ] || fail "first instances run $(procs "${tag}1") times"
for i in "$i1" "$i2" "$i3"; do
	u=${i/\#/-}
	n=$(ls "$R/node/apps" | grep -c "^$u-")
	[ "$n" = 1 ] || fail "$i has $n container dirs in apps/"
done
[ "$(ls "$R/node/running" | grep -c .)" = 3 ] || fail "running/ has $(ls "$R/node/running" | wc -l) entries, expected 3"
echo "ok: node agent SIGKILL reconciles"
