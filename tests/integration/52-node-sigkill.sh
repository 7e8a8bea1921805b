#!/bin/bash
# Node agent killed with SIGKILL at arbitrary points (while configuring,
# while cleaning up, with placements changing while it is down) and
# restarted: it converges with exactly one container per placement, no
# duplicate processes, and nothing left of removed instances.
. "$(dirname "$0")/../lib/node.sh"

app() { # SEQ: a long-running service whose command line is unique to it
	manifest "[{\"name\":\"svc\",\"command\":\"exec sleep 200$1\",\"restart\":{\"limit\":3,\"interval\":60}}]"
}
nproc_of() { pgrep -fc "sleep 200$1\$" || true; }
nproc_is() { [ "$(nproc_of "$1")" = "$2" ]; }

start_svscan
start_agent
"$BIN" node --store "$STORE" --root "$N" --hostname "$H" --cgroup-root "$CGROOT" >"$T/second.log" 2>&1
assert "a second agent on the same root refuses to start (exit 111)" test $? = 111
assert "  ... saying why" grep -q "another node agent is running" "$T/second.log"
for s in 21 22 23; do place "nobody.k#00000000$s" "$(app "$s")"; done
# kill it repeatedly while it is configuring, restart each time
for d in 0.05 0.15 0.3 0.1; do
	sleep "$d"
	stop_agent KILL
	start_agent
done
for s in 21 22 23; do
	assert "k#$s running" wait_for 30 st exists "/running/nobody.k#00000000$s"
done
assert "exactly 3 container dirs" test "$(ls "$N/apps" | wc -l)" = 3
assert "exactly 3 running links" test "$(ls "$N/running" | wc -l)" = 3
for s in 21 22 23; do
	assert "exactly one process for k#$s" wait_for 30 nproc_is "$s" 1
	echo "# k#$s: $(nproc_of "$s") process(es)"
done
assert "exactly one configured event per instance" bash -c "
	for s in 21 22 23; do
		n=\$('$BIN' store --store '$STORE' ls /trace/00\$(printf %02X \$s) | grep -c ',configured,')
		[ \"\$n\" -ge 1 ] || exit 1
	done"

# placements change; the agent is killed during the cleanups and while down
U21=$(unique_of 'nobody.k#0000000021'); U22=$(unique_of 'nobody.k#0000000022')
unplace 'nobody.k#0000000021'
unplace 'nobody.k#0000000022'
sleep 0.2
stop_agent KILL
place 'nobody.k#0000000024' "$(app 24)"
unplace 'nobody.k#0000000023'
U23=$(unique_of 'nobody.k#0000000023')
start_agent
sleep 0.3
stop_agent KILL
start_agent
assert "k#24 running" wait_for 30 st exists "/running/nobody.k#0000000024"
for u in "$U21" "$U22" "$U23"; do
	assert "$u cleaned up and archived" wait_for 30 bash -c "[ ! -e '$N/apps/$u' ] && [ -d '$N/archives/$u' ]"
	assert "$u cgroup gone" test ! -d "/sys/fs/cgroup/memory/$CGROOT/apps/$u"
done
for s in 21 22 23; do
	assert "no process left for k#$s" wait_for 10 nproc_is "$s" 0
	assert "/running for k#$s gone" bash -c "! '$BIN' store --store '$STORE' exists '/running/nobody.k#00000000$s' >/dev/null 2>&1"
done
assert "exactly one process for k#24" wait_for 10 nproc_is 24 1
assert "only k#24's container remains" test "$(ls "$N/apps")" = "$(unique_of 'nobody.k#0000000024')"
assert "cleanup/ empty" test -z "$(ls "$N/cleanup")"
assert "appevents/ drained" wait_for 5 dir_empty "$N/appevents"

# the whole node stops (agent, then every container, as `treadle cell down`
# does) and starts again: the instance comes back, once
stop_agent TERM
s6-svscanctl -t "$N/running"
wait "$SVSCAN_PID" 2>/dev/null
SVSCAN_PID=
assert "node stopped: k#24's process gone" wait_for 20 nproc_is 24 0
# as if configured long ago and the agent up before s6 gets to the container:
# the setup timeout must count from the agent's start, not from app.json
UK=$(unique_of 'nobody.k#0000000024')
touch -d '1 hour ago' "$N/apps/$UK/data/app.json"
rm -f "$N/apps/$UK/data/container.json" "$N/apps/$UK/data/run-started"
start_agent_nowait
sleep 1.5
start_svscan
wait_for 10 st exists "/server.presence/$H" >/dev/null
assert "node started: k#24 running again" wait_for 30 st exists "/running/nobody.k#0000000024"
assert "node started: exactly one process for k#24" wait_for 20 nproc_is 24 1
sleep 2
assert "still exactly one process for k#24" test "$(nproc_of 24)" = 1
assert "one container for k#24" test "$(ls "$N/apps" | wc -l)" = 1
assert "k#24 not aborted by the setup timeout" test ! -e "$N/apps/$UK/data/aborted"
assert "k#24 not finished" bash -c "! '$BIN' store --store '$STORE' exists '/finished/nobody.k#0000000024' >/dev/null 2>&1"

# re-placed while the agent is down (placement deleted and created again):
# the old container goes, a new one (new unique) comes
OLD=$(unique_of 'nobody.k#0000000024')
stop_agent TERM
unplace 'nobody.k#0000000024'
st create "/placement/$H/nobody.k#0000000024" '{}' >/dev/null
start_agent
assert "re-placed: old container cleaned up" wait_for 30 bash -c "[ ! -e '$N/apps/$OLD' ] && [ -e '$N/archives/$OLD/terminated' ]"
assert "re-placed: a new container runs" wait_for 30 bash -c "u=\$(ls '$N/apps'); [ -n \"\$u\" ] && [ \"\$u\" != '$OLD' ] && [ -L '$N/running/nobody.k#0000000024' ]"
assert "re-placed: exactly one process" wait_for 20 nproc_is 24 1
[ "$FAILS" -eq 0 ] || show_logs
done_testing
