#!/bin/bash
# The master places with the scheduler on a real single-machine cell: fake
# servers with topology, a partition and an allocation set in the store (the
# docs/MASTER.md contract), apps with affinity limits placed per the
# scheduler; a blacked-out server's apps move; the master killed with SIGKILL
# and restarted by s6 restores every placement (none lost or duplicated).
. "$(dirname "$0")/../lib/cell.sh"
cell_require
cell_setup

holders=()
trap 'rc=$?; for p in "${holders[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; (exit $rc); cell_teardown' EXIT
st() { "$T" store "$@"; }
# all placements "server/app" of apps named nobody.ms*
placements() {
	for s in $(st ls /placement 2>/dev/null); do
		st ls "/placement/$s" 2>/dev/null | grep '^nobody\.ms' | sed "s|^|$s/|"
	done | sort
}
where() { placements | grep -F "/$1" | cut -d/ -f1; }
count_of() { placements | grep -cF "/$1" || true; }

note "topology: pod p1 / racks r1 (f1) and r2 (f2, f3), partition fake, allocation for nobody.ms*"
st create -p /cell/pod:p1 '' >/dev/null
st create -p /buckets/pod:p1 '{"parent": null}' >/dev/null
st create -p /buckets/rack:r1 '{"parent": "pod:p1"}' >/dev/null
st create -p /buckets/rack:r2 '{"parent": "pod:p1"}' >/dev/null
st create -p /partitions/fake '{}' >/dev/null
st set /allocations '[{"name": "it/ms", "partition": "fake", "rank": 100, "memory": "1G", "cpu": "100%", "disk": "1G", "assignments": [{"pattern": "nobody.ms*", "priority": 50}]}]' >/dev/null ||
	st create -p /allocations '[{"name": "it/ms", "partition": "fake", "rank": 100, "memory": "1G", "cpu": "100%", "disk": "1G", "assignments": [{"pattern": "nobody.ms*", "priority": 50}]}]' >/dev/null ||
	fail "writing /allocations"
for s in f1:r1 f2:r2 f3:r2; do
	n=${s%%:*}; r=${s##*:}
	st create -p "/servers/$n$$" "{\"parent\": \"rack:$r\", \"partition\": \"fake\", \"memory\": \"4G\", \"cpu\": \"400%\", \"disk\": \"10G\"}" >/dev/null ||
		fail "create /servers/$n$$"
	"$T" store create -p -e --hold "/server.presence/$n$$" '{"seen": false}' >/dev/null & holders+=($!) # not through st(): $! must be the holder itself
done
F1=f1$$ F2=f2$$ F3=f3$$
wait_for 10 sh -c "[ \$('$T' store ls /server.presence | grep -c '^f[123]$$') = 3 ]" || fail "presences"
st create -s /events/000-servers- 'null' >/dev/null || fail "posting the servers event"
st create -s /events/000-cell- 'null' >/dev/null || fail "posting the cell event"
wait_for 10 sh -c "[ -z \"\$('$T' store ls /events)\" ]" || fail "events not processed"

note "two instances limited to one per rack: different racks; a third stays pending"
mk() { st create -s "/scheduled/nobody.ms$1#" "$2" | sed 's|.*/||'; }
lim='{"memory": "100M", "cpu": "10%", "disk": "100M", "affinity_limits": {"rack": 1}}'
a1=$(mk rack "$lim"); a2=$(mk rack "$lim")
wait_for 15 sh -c "'$T' store ls /placement/$F1 2>/dev/null | grep -q nobody.msrack" || fail "no rack-limited app on $F1 (the only server of r1)"
wait_for 15 sh -c "[ \$(for s in $F2 $F3; do '$T' store ls /placement/\$s 2>/dev/null; done | grep -c nobody.msrack) = 1 ]" ||
	fail "not exactly one rack-limited app in r2: $(placements)"
a3=$(mk rack "$lim")
sleep 1.5
[ "$(count_of "$a3")" = 0 ] || fail "$a3 placed beyond the rack limit: $(placements)"
"$T" trace "$a1" >/dev/null 2>&1; has_event "$a1" scheduled || fail "$a1 has no scheduled event"

note "blackout: the apps of a blacked-out server move"
b1=$(mk srv '{"memory": "100M", "cpu": "10%", "disk": "100M", "affinity_limits": {"server": 1}}')
wait_for 15 sh -c "[ -n \"\$('$T' store ls /placement/$F2 2>/dev/null; '$T' store ls /placement/$F3 2>/dev/null; '$T' store ls /placement/$F1 2>/dev/null)\" ]"
wait_for 15 sh -c "for s in $F1 $F2 $F3; do '$T' store ls /placement/\$s 2>/dev/null; done | grep -qF '$b1'" || fail "$b1 not placed"
old=$(where "$b1")
st create -p "/blackedout.servers/$old" '"test"' >/dev/null || fail "blackout"
wait_for 15 sh -c "for s in $F1 $F2 $F3; do [ \$s = $old ] && continue; '$T' store ls /placement/\$s 2>/dev/null; done | grep -qF '$b1'" ||
	fail "$b1 did not leave blacked-out $old: $(placements)"
[ "$(count_of "$b1")" = 1 ] || fail "$b1 placed $(count_of "$b1") times"
wait_for 10 sh -c "'$T' trace '$b1' 2>/dev/null | grep -q '$old:down'" || fail "no scheduled event with why $old:down"
[ "$(st get "/placement/$old" | grep -o '"state":"[a-z]*"')" = '"state":"down"' ] || fail "$old not recorded down"

note "SIGKILL the master: placements restored, none lost or duplicated"
before=$(placements)
[ "$(echo "$before" | wc -l)" = 3 ] || fail "expected 3 placements, got: $before"
p=$(s6-svstat -o pid "$R/svc/master"); [ "$p" -gt 0 ] || fail "master not running"
kill -9 "$p"
wait_for 20 sh -c "p=\$(s6-svstat -o pid '$R/svc/master'); [ \"\$p\" -gt 0 ] && [ \"\$p\" != $p ]" || fail "s6 did not restart the master"
wait_for 20 grep -q 'model loaded' "$R/log/master/current" || true
sleep 3
after=$(placements)
[ "$before" = "$after" ] || fail "placements changed across the restart: '$before' -> '$after'"
dups=$(echo "$after" | cut -d/ -f2 | sort | uniq -d)
[ -z "$dups" ] || fail "duplicated: $dups"
[ "$(count_of "$a3")" = 0 ] || fail "$a3 placed after the restart"
echo "ok: scheduler placements, blackout move and master SIGKILL restore"
