#!/bin/bash
# The master through the real binaries and the embedded store, without a node
# agent (servers are simulated with `treadle store create -e --hold`):
# leader election and take-over, placement with capacity, pending and
# re-placement when a server's presence vanishes, deletion on stop.
set -u
T=${TREADLE_BIN:?}
D=$(mktemp -d /tmp/treadle-it.XXXXXX)
U=file://$D/store
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait "${pids[@]}" 2>/dev/null; rm -rf "$D"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; for f in "$D"/*.log; do echo "== $f"; cat "$f"; done; exit 1; }
wait_for() {
	local end=$(( $(date +%s) + $1 )); shift
	until "$@" >/dev/null 2>&1; do [ "$(date +%s)" -ge "$end" ] && return 1; sleep 0.1; done
}
id nobody >/dev/null 2>&1 || { echo "no user nobody"; exit 77; }
placed_on() { "$T" store ls --store "$U" "/placement/$1" 2>/dev/null | grep -qF "$2"; }
events() { "$T" trace --store "$U" --json "$1" | sed -n 's/.*"type":"\([a-z_]*\)".*/\1/p'; }
event_data() { "$T" trace --store "$U" --json "$1" | grep "\"type\":\"$2\"" | sed -n 's/.*"data":"\([^"]*\)".*/\1/p'; }
presence() { # name: ephemeral presence held by a process
	"$T" store create --store "$U" -p -e --hold "/server.presence/$1" '{"seen": false}' >/dev/null &
	pids+=($!)
	eval "presence_$1=$!"
}
server() { # name capacity-json: /servers entry + presence
	"$T" store create --store "$U" -p "/servers/$1" "$2" >/dev/null 2>&1 || "$T" store set --store "$U" "/servers/$1" "$2"
	presence "$1"
}

"$T" master --store "$U" --hostname m1 --server-down-grace 4 2>"$D/m1.log" & m1=$!; pids+=($m1)
wait_for 10 grep -q leading "$D/m1.log" || fail "m1 never led"
"$T" master --store "$U" --hostname m2 --server-down-grace 4 2>"$D/m2.log" & m2=$!; pids+=($m2)
wait_for 10 grep -q 'standing by' "$D/m2.log" || fail "m2 is not standing by"
wait_for 20 sh -c "[ \$('$T' store ls --store '$U' /trace | wc -l) = 256 ]" || fail "the 256 trace shards are missing"

server h1 '{"memory": "1000M", "cpu": "100%", "disk": "10G"}'
i1=$("$T" run --store "$U" nobody.a --memory 400M -- true) || fail "run"
i2=$("$T" run --store "$U" nobody.a --memory 400M -- true) || fail "run"
i3=$("$T" run --store "$U" nobody.a --memory 400M -- true) || fail "run"
wait_for 10 placed_on h1 "$i1" || fail "$i1 not placed on h1"
wait_for 10 placed_on h1 "$i2" || fail "$i2 not placed on h1"
sleep 0.5
placed_on h1 "$i3" && fail "$i3 placed beyond h1's memory"
"$T" show --store "$U" pending | grep -qF "$i3" || fail "$i3 not shown pending"
[ "$(event_data "$i1" scheduled)" = "h1:" ] || fail "scheduled data '$(event_data "$i1" scheduled)', expected 'h1:'"
"$T" store get --store "$U" /placement/h1 | grep -q '"state":"up"' || fail "/placement/h1 state not up"
"$T" store get --store "$U" "/placement/h1/$i1" | grep -q '"expires"' || fail "placement data lacks expires"

# The leader dies: the standby takes over and keeps placing.
kill "$m1"
wait_for 10 grep -q leading "$D/m2.log" || fail "m2 did not take over"
i4=$("$T" run --store "$U" nobody.a --memory 100M -- true) || fail "run"
wait_for 10 placed_on h1 "$i4" || fail "$i4 not placed by m2" # m2 has its model now
"$T" stop --store "$U" "$i1" || fail "stop"
wait_for 10 sh -c "! '$T' store ls --store '$U' /placement/h1 | grep -qF '$i1'" || fail "placement of stopped $i1 kept"
wait_for 10 placed_on h1 "$i3" || fail "$i3 not placed after $i1 freed memory"
events "$i1" | grep -qx deleted || fail "no deleted event for $i1"
"$T" trace --store "$U" --json "$i3" | grep '"type":"scheduled"' | grep -q '"source":"m2"' ||
	fail "$i3 not scheduled by m2"
"$T" store get --store "$U" "/finished/$i1" | grep -q terminated || fail "/finished/$i1 not terminated"

# A server that vanishes and comes back within the grace keeps its instances
# (a restarting node agent); one gone for longer loses them to pending.
kill "$presence_h1"
presence h1
sleep 3
placed_on h1 "$i2" || fail "$i2 lost its placement although h1 came back within the grace"
events "$i2" | grep -qx pending && [ "$(events "$i2" | grep -c pending)" != 1 ] && fail "$i2 went pending during the grace"
kill "$presence_h1"
wait_for 10 sh -c "'$T' show --store '$U' pending | grep -qF '$i2'" || fail "$i2 not pending after h1 vanished"
[ "$(event_data "$i2" pending | tail -n 1)" = "h1:down" ] || fail "pending reason is not h1:down"
"$T" store get --store "$U" /placement/h1 | grep -q '"state":"down"' || fail "/placement/h1 not marked down"
server h2 '{"memory": "2000M", "cpu": "100%", "disk": "10G"}'
wait_for 10 placed_on h2 "$i2" || fail "$i2 not re-placed on h2"
wait_for 10 placed_on h2 "$i3" || fail "$i3 not re-placed on h2"
# Treadmill: the move went through pending, so the new placement has no reason.
[ "$(event_data "$i2" scheduled | tail -n 1)" = "h2:" ] || fail "re-placement data: $(event_data "$i2" scheduled | tail -n 1)"
n=$("$T" store ls --store "$U" /placement/h1 | grep -c . || true)
[ "$n" = 0 ] || fail "h1 still holds $n placements"

# Restart of the only master: placements are restored, not duplicated.
for i in "$i2" "$i3"; do events "$i" | grep -c scheduled >"$D/sched.$i"; done
kill "$m2"
"$T" master --store "$U" --hostname m3 --server-down-grace 4 2>"$D/m3.log" & pids+=($!)
wait_for 10 grep -q leading "$D/m3.log" || fail "m3 never led"
sleep 1
for i in "$i2" "$i3"; do
	c=$(for s in h1 h2; do "$T" store ls --store "$U" "/placement/$s"; done | grep -cF "$i")
	[ "$c" = 1 ] || fail "$i placed $c times after master restart"
	[ "$(events "$i" | grep -c scheduled)" = "$(cat "$D/sched.$i")" ] || fail "$i got extra scheduled events after restart"
done
echo "ok: election, take-over, capacity, down server, restore"
