#!/bin/bash
# treadle admin through the binary on an embedded store (no master needed):
# every object and verb, exit codes (0, 2 usage, 100 refused), one-line errors
# naming the field, nothing written on refusal, events queued, --json lists,
# and the store found through --store, $TREADLE_STORE and --root.
set -u
T=${TREADLE_BIN:?}
D=$(mktemp -d /tmp/treadle-admin-it.XXXXXX)
trap 'rm -rf "$D"' EXIT
export TREADLE_STORE=file://$D/store
N=0
FAILS=0
check() { local d=$1; shift; N=$((N + 1)); if "$@"; then echo "ok $N - $d"; else echo "not ok $N - $d"; FAILS=$((FAILS + 1)); fi; }
rc_is() { local want=$1; shift; "$@" >/dev/null 2>"$D/err"; [ $? = "$want" ]; }
err_has() { grep -q -- "$1" "$D/err" && [ "$(wc -l <"$D/err")" = 1 ]; }
events() { "$T" store ls /events 2>/dev/null | grep -c "^000-$1-"; }

check "bucket add" rc_is 0 "$T" admin bucket add pod:p1
check "bucket add with parent" rc_is 0 "$T" admin bucket add rack:r1 --parent pod:p1 --traits 2
check "bucket with unknown parent refused (100)" rc_is 100 "$T" admin bucket add rack:r2 --parent pod:zz
check "... naming the parent" err_has "parent 'pod:zz'"
check "... nothing written" rc_is 1 "$T" store exists /buckets/rack:r2
check "two bucket events" [ "$(events buckets)" = 2 ]
check "cell insert" rc_is 0 "$T" admin cell insert pod:p1
check "cell list" [ "$("$T" admin cell list)" = pod:p1 ]
check "partition add" rc_is 0 "$T" admin partition add p2 --reboot-schedule '{"5": [23, 59, 59]}'
check "bad reboot schedule refused" rc_is 100 "$T" admin partition add p3 --reboot-schedule '{"8": [1, 2, 3]}'
check "... naming the field" err_has "reboot-schedule"
check "server add" rc_is 0 "$T" admin server add h1 --parent rack:r1 --partition p2 --memory 8G --cpu 400 --disk 100G --traits ssd,gpu
check "server stored in Treadmill's shape" sh -c "'$T' store get /servers/h1 | grep -q '\"memory\":\"8192M\"' &&
	'$T' store get /servers/h1 | grep -q '\"cpu\":\"400%\"' && '$T' store get /servers/h1 | grep -q '\"traits\":\\[\"ssd\",\"gpu\"\\]'"
check "bad memory refused" rc_is 100 "$T" admin server add h2 --memory 12Q
check "... naming memory" err_has "memory '12Q'"
check "bad host name refused" rc_is 100 "$T" admin server add 'h/3'
check "unknown partition refused" rc_is 100 "$T" admin server add h2 --partition nope
check "... no server written" rc_is 1 "$T" store exists /servers/h2
check "freeze queues a server_state event" sh -c "'$T' admin server freeze h1 --apps nobody.a#0000000001 &&
	[ \$('$T' store ls /events | grep -c '^000-server_state-') = 1 ]"
check "state of an unknown server refused" rc_is 100 "$T" admin server up nosuch
check "alloc set" rc_is 0 "$T" admin alloc set tenant/dev --partition p2 --memory 2G --cpu 100% --rank 90
check "alloc assign" rc_is 0 "$T" admin alloc assign tenant/dev 'nobody.*' 20
check "assignment priority out of range refused" rc_is 100 "$T" admin alloc assign tenant/dev 'nobody.*' 200
check "alloc list --json" sh -c "'$T' admin alloc list --json | grep -q '\"pattern\": \"nobody.\*\"'"
check "identity group" rc_is 0 "$T" admin identity-group set web --count 4
check "identity group without --count is a usage error" rc_is 2 "$T" admin identity-group set web
check "blackout app" rc_is 0 "$T" admin blackout set app 'nobody.bad*' --reason noisy
check "blackout server" rc_is 0 "$T" admin blackout set server h1 --reason disk
check "blackout list" sh -c "'$T' admin blackout list | grep -q 'nobody.bad\*'"
check "blackout clear" rc_is 0 "$T" admin blackout clear server h1
check "clear of a server not blacked out refused" rc_is 100 "$T" admin blackout clear server h1
check "server list --json has presence" sh -c "'$T' admin server list --json | grep -q '\"presence\": false'"
check "bucket still parent of a server cannot go" rc_is 100 "$T" admin bucket delete rack:r1
check "unknown object is a usage error" rc_is 2 "$T" admin frobnicate list
check "unknown verb is a usage error" rc_is 2 "$T" admin server explode h1
check "--store wins over TREADLE_STORE" sh -c "'$T' admin --store 'file://$D/other' bucket add pod:x &&
	'$T' store --store 'file://$D/other' exists /buckets/pod:x && ! '$T' store exists /buckets/pod:x"
mkdir -p "$D/root"
check "--root of a missing local cell refused" rc_is 100 env -u TREADLE_STORE "$T" admin --root "$D/nocell" server list
echo "1..$N"
[ "$FAILS" = 0 ]
