#!/bin/bash
# Node agent: a container that does not reach running within --setup-timeout
# is aborted with reason `timeout`; a container whose memory cgroup OOMs is
# taken down and reported `killed` with `oom`.
SETUP_TIMEOUT=3
. "$(dirname "$0")/../lib/node.sh"

# The agent only starts with an s6-svscan on running/; stop that one once the
# agent runs: nothing can start
start_svscan
start_agent
s6-svscanctl -t "$N/running"
wait "$SVSCAN_PID" 2>/dev/null
SVSCAN_PID=
I='nobody.slow#0000000031'
place "$I" "$(manifest '[{"name":"svc","command":"exec sleep 10031","restart":{"limit":3,"interval":60}}]')"
assert "aborted after the setup timeout" wait_for 20 st exists "/finished/$I"
F=$(st get "/finished/$I")
assert "/finished: state aborted, data timeout" bash -c "echo '$F' | grep -q '\"state\":\"aborted\"' && echo '$F' | grep -q '\"data\":\"timeout\"'"
assert "aborted event traced" bash -c "$(declare -f events st); BIN='$BIN' STORE='$STORE'; events '$I' | tail -1 | grep -qx 'aborted,timeout'"
assert "container cleaned up" wait_for 10 dir_empty "$N/apps"
U=$(ls "$N/archives" | head -1)
assert "archived aborted record" grep -q '"why":"timeout"' "$N/archives/$U/aborted"

# a manifest the runtime refuses (docker image service): aborted at configure
I4='nobody.bad#0000000034'
place "$I4" '{"proid":"nobody","environment":"dev","memory":"100M","cpu":"10%","disk":"100M","services":[{"name":"d","image":"docker://busybox","restart":{"limit":1,"interval":60}}]}'
assert "bad manifest: aborted at configure" wait_for 20 st exists "/finished/$I4"
assert "bad manifest: state aborted, data unknown" bash -c "'$BIN' store --store '$STORE' get '/finished/$I4' | grep -q '\"state\":\"aborted\".*' && '$BIN' store --store '$STORE' get '/finished/$I4' | grep -q '\"data\":\"unknown\"'"
assert "bad manifest: unscheduled, no container" bash -c "! '$BIN' store --store '$STORE' exists '/scheduled/$I4' >/dev/null 2>&1 && [ -z \"\$(ls '$N/apps')\" ]"

start_svscan
I2='nobody.hog#0000000032'
place "$I2" "$(manifest '[{"name":"hog","command":"exec python3 -c \"b = bytearray(600 * 1024 * 1024)\"","restart":{"limit":5,"interval":60}}]')"
assert "OOM: instance ends" wait_for 60 st exists "/finished/$I2"
F2=$(st get "/finished/$I2")
assert "/finished: state killed, data oom" bash -c "echo '$F2' | grep -q '\"state\":\"killed\"' && echo '$F2' | grep -q '\"data\":\"oom\"'"
assert "killed event traced" bash -c "$(declare -f events st); BIN='$BIN' STORE='$STORE'; events '$I2' | tail -1 | grep -qx 'killed,oom'"
[ "$FAILS" -eq 0 ] || show_logs
done_testing
