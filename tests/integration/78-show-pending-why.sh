#!/bin/bash
# treadle show says why a pending instance waits (the scheduler's explanation), and every explanation
# names its cause: a blacked-out server (admin blackout), an app too big for any server.
set -euo pipefail
BIN=${TREADLE_BIN:-$PWD/build/treadle}
. "$(dirname "$0")/../lib/store.sh"
store_tmp treadle-show-pending
st_two_servers pod:p1
st '/scheduled/proid.web#0000000001' '{"memory":"1G","cpu":"10%","disk":"1G"}'
st '/scheduled/proid.big#0000000002' '{"memory":"16G","cpu":"10%","disk":"1G"}'
st '/placement/s1/proid.web#0000000001' '{"expires":0,"identity":null}'

# An app too big: show names the capacity it lacks, in the INFO column and in --json.
out=$("$BIN" show)
echo "$out"
line=$(grep 'proid.big#0000000002' <<<"$out")
[[ $line == *pending*"capacity: memory (needs 16384 MB) short on 2"* ]]
grep 'proid.web#0000000001' <<<"$out" | grep -q 'scheduled *s1'
"$BIN" show pending --json | python3 -c '
import json, sys
l = json.load(sys.stdin)
assert [e["name"] for e in l] == ["proid.big#0000000002"], l
assert "capacity: memory" in l[0]["why"], l'
echo "ok 1 - show: a too big app waits for capacity"

# Both servers blacked out: the explanation names the blackout and its reason, not an empty list.
"$BIN" admin blackout set server s1 --reason 'disk swap'
"$BIN" admin blackout set server s2 --reason 'disk swap'
st '/scheduled/proid.small#0000000003' '{"memory":"1G","cpu":"10%","disk":"1G"}'
out=$("$BIN" scheduler explain 'proid.small#0000000003')
echo "$out"
[[ $out == *"pending"*"2 down (e.g. s1, blacked out: disk swap)"* ]]
[[ $out != *: ]]
out=$("$BIN" show pending)
echo "$out"
grep 'proid.small#0000000003' <<<"$out" | grep -q 'blacked out: disk swap'
echo "ok 2 - explain and show name the blackout"

# Servers absent (not blacked out): named as not present.
"$BIN" admin blackout clear server s1
"$BIN" admin blackout clear server s2
out=$("$BIN" scheduler explain 'proid.small#0000000003')
echo "$out"
[[ $out == *"2 down (e.g. s1, not present)"* ]]
echo "ok 3 - an absent server is named"
