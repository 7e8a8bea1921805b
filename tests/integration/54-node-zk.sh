#!/bin/bash
# Node agent on a real ZooKeeper: registration, an app running, and the agent
# SIGKILLed: its old session's ephemerals (/server.presence, /running) linger
# until the session expires; the restarted agent must take them over without
# a duplicate container.  Skips when java/ZooKeeper are missing.
SRC=${TREADLE_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=../lib/zk.sh
. "$SRC/tests/lib/zk.sh"
zk_available || { echo "skip: java or /usr/share/java/zookeeper.jar missing"; exit 77; }
ZKDIR=$(mktemp -d /tmp/treadle-node-zk.XXXXXX)
zk_start_ensemble "$ZKDIR" 3 || { zk_stop; rm -rf "$ZKDIR"; echo "could not start ZooKeeper"; exit 1; }
STORE="zk://$ZK_HOSTS/treadle-node-$$"
# the agent talks to the first server only, so freezing it expires its session
AGENT_STORE="zk://${ZK_HOSTS%%,*}/treadle-node-$$"
. "$(dirname "$0")/../lib/node.sh"
trap 'cleanup_all; zk_stop; rm -rf "$ZKDIR"' EXIT

owner() { st get --stat "$1" 2>/dev/null | awk '/^ephemeral_owner/ {print $2}'; }

start_svscan
start_agent
I='nobody.zk#0000000041'
place "$I" "$(manifest '[{"name":"svc","command":"exec sleep 10041","restart":{"limit":3,"interval":60}}]')"
assert "running on ZooKeeper" wait_for 30 st exists "/running/$I"
O1=$(owner "/running/$I")
P1=$(owner "/server.presence/$H")
stop_agent KILL
start_agent
assert "presence taken over by the new session" wait_for 20 bash -c "[ \"\$('$BIN' store --store '$STORE' get --stat '/server.presence/$H' 2>/dev/null | awk '/^ephemeral_owner/ {print \$2}')\" != '$P1' ]"
assert "/running taken over by the new session" wait_for 20 bash -c "o=\$('$BIN' store --store '$STORE' get --stat '/running/$I' 2>/dev/null | awk '/^ephemeral_owner/ {print \$2}'); [ -n \"\$o\" ] && [ \"\$o\" != '$O1' ]"
assert "one container, one process" bash -c "[ \$(ls '$N/apps' | wc -l) = 1 ] && [ \$(pgrep -fc 'sleep 1004[1]') = 1 ]"

# session expiry: the agent's server frozen longer than the session timeout,
# the ensemble expires the session; the agent must open a new one and
# re-register presence and /running
O2=$(owner "/running/$I")
zk_pause 1
# (a frozen leader first needs a new election, then the session's full timeout: allow 60 s)
assert "while frozen: the ensemble expires the agent's /running" wait_for 60 bash -c "! '$BIN' store --store '$STORE' exists '/running/$I' >/dev/null 2>&1"
zk_resume 1
assert "after expiry: presence re-created" wait_for 60 bash -c "o=\$('$BIN' store --store '$STORE' get --stat '/server.presence/$H' 2>/dev/null | awk '/^ephemeral_owner/ {print \$2}'); [ -n \"\$o\" ]"
assert "after expiry: /running re-published by a new session" wait_for 60 bash -c "o=\$('$BIN' store --store '$STORE' get --stat '/running/$I' 2>/dev/null | awk '/^ephemeral_owner/ {print \$2}'); [ -n \"\$o\" ] && [ \"\$o\" != '$O2' ]"
assert "after expiry: the agent is still the same process" kill -0 "$AGENT_PID"
assert "after expiry: still one process" bash -c "[ \$(pgrep -fc 'sleep 1004[1]') = 1 ]"
unplace "$I"
assert "terminated: /running gone" wait_for 20 bash -c "! '$BIN' store --store '$STORE' exists '/running/$I' >/dev/null 2>&1"
assert "terminated: cleaned up" wait_for 20 dir_empty "$N/apps"
[ "$FAILS" -eq 0 ] || show_logs
done_testing
