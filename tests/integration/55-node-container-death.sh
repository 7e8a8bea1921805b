#!/bin/bash
# A container's death outside the restart policy (its `sproc run`, the
# container's parent, SIGKILLed) is traced and counted: each death posts
# service_exited <uniqueid>.<service>.256.9 for its services and counts against
# their restart policy, across containers and across a SIGKILL of the node
# agent; with limit 2 the third death within the interval finishes the
# instance (finished 256.9) after exactly three containers.  A requested stop
# (treadle stop) is not counted.
. "$(dirname "$0")/../lib/cell.sh"
cell_require
cell_setup

tag=55$$
N=$R/node
node_pid() { s6-svstat -o pid "$R/svc/node"; }
cat >"$R/app.yml" <<YML
memory: 100M
cpu: 5%
disk: 100M
services:
  - name: web
    command: exec sleep ${tag}1
    restart:
      limit: 2
      interval: 60
YML

# sproc_run_pid INSTANCE: pid of the running container's `sproc run`
sproc_run_pid() { s6-svstat -o pid "$N/running/$1" 2>/dev/null; }
running_n() { [ "$(count_event "$1" service_running)" = "$2" ] && [ "$(sproc_run_pid "$1")" -gt 0 ]; }
kill_container() { # INSTANCE
	local p; p=$(sproc_run_pid "$1")
	[ -n "$p" ] && [ "$p" -gt 0 ] || fail "no sproc run for $1"
	kill -9 "$p"
}

inst=$("$T" run nobody.itdie -m "$R/app.yml") || fail "treadle run"
note "instance $inst"
wait_for 30 running_n "$inst" 1 || fail "first container did not start"
u1=$(ls "$N/apps")

note "death 1: sproc run SIGKILLed"
kill_container "$inst"
wait_for 30 running_n "$inst" 2 || fail "no second container after the first death: $(events "$inst" | tr '\n' ' ')"
[ "$(count_event "$inst" service_exited)" = 1 ] || fail "death 1 not traced as service_exited"
"$T" trace --json "$inst" | grep '"service_exited"' | grep -q "\"data\":\"${u1##*-}\.web\.256\.9\"" ||
	fail "service_exited data is not <uniqueid>.web.256.9: $("$T" trace --json "$inst" | grep service_exited)"
[ "$(grep -c . "$N/exits/$inst/web")" = 1 ] || fail "history of web does not hold one exit"
u2=$(readlink "$N/running/$inst")
echo "ok 1 - death 1 traced (service_exited ${u1##*-}.web.256.9), counted, new container"

note "the node agent SIGKILLed: the count survives"
p=$(node_pid)
kill -9 "$p"
wait_for 20 sh -c "p=\$(s6-svstat -o pid '$R/svc/node'); [ \"\$p\" -gt 0 ] && [ \"\$p\" != $p ]" || fail "node agent not restarted"
wait_for 20 "$T" store exists "/server.presence/$H" || fail "node agent did not register again"
sleep 1
wait_for 30 running_n "$inst" 2 || fail "the container did not stay up across the agent's restart"
[ "$(readlink "$N/running/$inst")" = "$u2" ] || fail "the agent's restart replaced the container ($u2 -> $(readlink "$N/running/$inst"))"

note "death 2"
kill_container "$inst"
wait_for 30 running_n "$inst" 3 || fail "no third container after the second death: $(events "$inst" | tr '\n' ' ')"
[ "$(grep -c . "$N/exits/$inst/web")" = 2 ] || fail "history of web does not hold two exits"
echo "ok 2 - death 2 counted after an agent SIGKILL (2 exits in the history)"

note "the new container sees the history (its exits log is seeded)"
u3=$(readlink "$N/running/$inst"); u3=${u3##*/}
[ "$(grep -c . "$N/apps/$u3/data/services/web/data/exits/log")" = 2 ] || fail "container 3's exits log not seeded"
echo "ok 3 - container 3's exits log starts with the 2 earlier exits"

note "death 3: limit 2 exceeded within 60 s -> finished"
kill_container "$inst"
wait_for 30 has_event "$inst" finished || fail "no finished event after the third death: $(events "$inst" | tr '\n' ' ')"
sleep 2
ev=$(events "$inst" | tr '\n' ' ')
note "events: $ev"
[ "$(count_event "$inst" configured)" = 3 ] || fail "expected exactly 3 containers (configured events): $ev"
[ "$(count_event "$inst" service_running)" = 3 ] || fail "expected 3 service_running: $ev"
[ "$(count_event "$inst" service_exited)" = 3 ] || fail "expected 3 service_exited: $ev"
[ "$(events "$inst" | grep -vx deleted | tail -n 1)" = finished ] || fail "last event is not finished: $ev"
"$T" trace --json "$inst" | grep '"finished"' | grep -q '"data":"256\.9"' || fail "finished data is not 256.9"
echo "ok 4 - the third death finishes the instance: 3 containers, 3 service_exited, finished 256.9"
wait_for 20 sh -c "! '$T' show scheduled | grep -qF '$inst'" || fail "finished instance still scheduled"
wait_for 20 sh -c "[ ! -e '$N/exits/$inst' ]" || fail "exit history not removed once the instance left"
[ -z "$(ls "$N/apps")" ] || wait_for 20 sh -c "[ -z \"\$(ls '$N/apps')\" ]" || fail "a container is left: $(ls "$N/apps")"
echo "ok 5 - instance gone from the node: no container, no history"

note "a requested stop is not a death outside the policy"
i2=$("$T" run nobody.itstop -m "$R/app.yml") || fail "treadle run 2"
wait_for 30 running_n "$i2" 1 || fail "second instance did not start"
"$T" stop "$i2" >/dev/null || fail "treadle stop"
wait_for 30 sh -c "[ ! -e '$N/running/$i2' ] && [ -z \"\$(ls '$N/apps')\" ]" || fail "stopped container still there"
[ "$(count_event "$i2" service_exited)" -le 1 ] || fail "stop produced extra service_exited"
[ ! -e "$N/exits/$i2" ] || fail "a stop was counted: $(cat "$N/exits/$i2"/* 2>/dev/null)"
echo "ok 6 - treadle stop is not counted"
echo "1..6"
