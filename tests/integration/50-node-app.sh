#!/bin/bash
# Node agent: a placed app is configured, runs as its proid under s6 with its
# environment and logs; removing the placement terminates it (no terminal
# event), its logs are archived and `treadle`'s layout helpers find them.
. "$(dirname "$0")/../lib/node.sh"

start_svscan
start_agent
I='nobody.web#0000000007'
place "$I" "$(manifest '[{"name":"web","command":"echo hello from $SERVICE_GREETING; id -un; pwd; exec sleep 10007","restart":{"limit":3,"interval":60},"environ":[{"name":"SERVICE_GREETING","value":"treadle"}]},{"name":"forger","root":true,"command":"touch /services/.ctl/appevents/1.000,nobody.victim#0000000099,finished,0.0 /services/.ctl/tombstones/nobody.victim-0000000099-aaaaaaaaaaaaa,web,0000000001.000,001,000; touch /services/.ctl/appevents/.x; echo forged; exec sleep 20007","restart":{"limit":3,"interval":60}}]' '"environ":[{"name":"APPVAR","value":"x"}]')"

assert "/servers/$H has memory, cpu, disk" bash -c "'$BIN' store --store '$STORE' get /servers/$H | grep -q '\"cpu\":\"[0-9]*%\".*\"disk\":\"[0-9]*M\".*\"memory\"'"
assert "cache/.ready exists" test -e "$N/cache/.ready"
assert "/running/$I published" wait_for 20 st exists "/running/$I"
assert "/running/$I data is the hostname" test "$(st get "/running/$I")" = "$H"
U=$(unique_of "$I")
assert "container dir apps/<unique> with a 13-char uniqueid" bash -c "[[ '$U' =~ ^nobody\.web-0000000007-[0-9a-zA-Z]{13}$ ]]"
assert "running/<instance> links to it" test "$(readlink "$N/running/$I")" = "$N/apps/$U"
LOG=$N/apps/$U/data/services/web/data/log/current
assert "service log has its output" wait_for 10 grep -q "hello from treadle" "$LOG"
assert "service runs as the proid" wait_for 5 grep -qx nobody "$LOG"
assert "service runs in its service dir" wait_for 5 grep -qx /services/web "$LOG"
assert "app.json and manifest.yml written" test -s "$N/apps/$U/data/app.json" -a -s "$N/apps/$U/data/manifest.yml"
assert "configured event with the uniqueid" wait_for 5 bash -c "$(declare -f events st); BIN='$BIN' STORE='$STORE'; events '$I' | grep -qx 'configured,${U##*-}'"
assert "service_running event" bash -c "$(declare -f events st); BIN='$BIN' STORE='$STORE'; events '$I' | grep -qx 'service_running,${U##*-}.web'"
assert "appevents spool drained" bash -c "[ -z \"\$(ls '$N/appevents')\" ]"
assert "a container cannot post events for another instance" wait_for 5 grep -q forged "$N/apps/$U/data/services/forger/data/log/current"
sleep 1
assert "forged event not published" bash -c "! '$BIN' store --store '$STORE' exists '/finished/nobody.victim#0000000099' >/dev/null 2>&1 && [ -z \"\$('$BIN' store --store '$STORE' ls /trace/0063 2>/dev/null)\" ]"
assert "forged tombstone dropped" dir_empty "$N/tombstones/services"
assert "one process of the service" test "$(pgrep -fc 'sleep 1000[7]')" = 1

# blackout: the node drops its presence (and stays away); placements still
# removed from it must stop their containers
st create -p "/blackedout.servers/$H" "test" >/dev/null
assert "blacked out: presence gone" wait_for 10 bash -c "! '$BIN' store --store '$STORE' exists '/server.presence/$H' >/dev/null 2>&1"
unplace "$I"
assert "terminated: /running/$I removed" wait_for 20 bash -c "! '$BIN' store --store '$STORE' exists '/running/$I' >/dev/null 2>&1"
assert "terminated: container dir removed" wait_for 20 test ! -e "$N/apps/$U"
assert "terminated: process gone" wait_for 10 bash -c "! pgrep -f 'sleep [12]000[7]' >/dev/null"
assert "archived logs kept" grep -q "hello from treadle" "$N/archives/$U/services/web/log/current"
assert "archived terminated flag" test -e "$N/archives/$U/terminated"
assert "no terminal event for a terminated instance" bash -c "! '$BIN' store --store '$STORE' exists '/finished/$I' >/dev/null 2>&1"
assert "cache entry removed" test ! -e "$N/cache/$I"
st delete "/blackedout.servers/$H" >/dev/null
assert "blackout cleared: presence back" wait_for 10 st exists "/server.presence/$H"
assert "cgroup removed" bash -c "[ ! -d /sys/fs/cgroup/memory/$CGROOT/apps/$U ]"
[ "$FAILS" -eq 0 ] || show_logs
done_testing
