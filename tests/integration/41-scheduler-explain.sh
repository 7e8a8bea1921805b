#!/bin/bash
# treadle scheduler explain/view read the cell from the store and name the
# failed constraint and its level.
set -euo pipefail
BIN=${TREADLE_BIN:-$PWD/build/treadle}
. "$(dirname "$0")/../lib/store.sh"
store_tmp treadle-sched-explain
st_two_servers rack:r1
st '/scheduled/proid.web#0000000001' '{"memory":"6G","cpu":"100%","disk":"1G","affinity_limits":{"rack":1}}'
st '/scheduled/proid.web#0000000002' '{"memory":"6G","cpu":"100%","disk":"1G","affinity_limits":{"rack":1}}'
st '/scheduled/proid.big#0000000003' '{"memory":"16G","cpu":"100%","disk":"1G"}'
st '/placement/s1/proid.web#0000000001' '{"expires":0,"identity":null}'

out=$("$BIN" scheduler explain 'proid.web#0000000001')
echo "$out"; [[ $out == *"placed on s1"*"rack:r1"* ]]
out=$("$BIN" scheduler explain 'proid.web#0000000002')
echo "$out"; [[ $out == *"pending"*"affinity limit rack=1"*"rack:r1"* ]]
out=$("$BIN" scheduler explain 'proid.big#0000000003')
echo "$out"; [[ $out == *"pending"*"capacity: memory"*"16384"* ]]
echo "ok explain"

out=$("$BIN" scheduler view servers --json)
echo "$out" | python3 -c 'import json,sys; s={x["name"]:x for x in json.load(sys.stdin)}; assert s["s1"]["free"]==[2048,300,101376], s; assert s["s2"]["apps"]==0'
out=$("$BIN" scheduler view apps --json)
echo "$out" | python3 -c 'import json,sys; a=json.load(sys.stdin); assert [x["instance"] for x in a]==["proid.web#0000000001","proid.web#0000000002","proid.big#0000000003"], a; assert a[0]["server"]=="s1"'
"$BIN" scheduler view allocs | grep -q '_default/proid'
echo "ok view"

set +e
"$BIN" scheduler explain 'proid.none#0000000009' 2>"$tmp/err"; rc=$?
set -e
[ "$rc" -eq 100 ] && grep -q "no such scheduled instance" "$tmp/err"
echo "ok unknown instance"
