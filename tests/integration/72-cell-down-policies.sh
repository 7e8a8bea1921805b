#!/bin/bash
# `cell down` with running apps of several restart policies (limit 0, limit 1
# in 60 s, limit 5 in 60 s): every container goes down once, on purpose; the
# node cleans each up and posts one terminal event (finished 256.15, killed by
# SIGTERM) whatever the policy; no container is started again; the instances
# leave /scheduled; nothing is swept; it takes seconds.
. "$(dirname "$0")/../lib/cell.sh"
cell_require
cell_setup

insts=()
for pol in "0 60" "1 60" "5 60"; do
	set -- $pol
	cat >"$R/p$1.yml" <<YML
memory: 100M
cpu: 5%
disk: 100M
services:
  - name: sleeper
    command: exec sleep 7$$
    restart:
      limit: $1
      interval: $2
YML
	out=$("$T" run "nobody.itdown$1" -m "$R/p$1.yml" --count 2) || fail "treadle run (limit $1)"
	for i in $out; do insts+=("$i"); done
done
[ "${#insts[@]}" = 6 ] || fail "expected 6 instances, got ${#insts[@]}: ${insts[*]}"
note "instances ${insts[*]}"
for i in "${insts[@]}"; do
	wait_for 60 has_event "$i" service_running || fail "$i never reported running"
done
echo "ok 1 - six instances of three restart policies run"

t0=$(date +%s%N)
out=$("$T" cell down 2>&1) || fail "cell down: $out"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
note "cell down took $ms ms: $out"
echo "$out" | grep -q swept && fail "cell down had to sweep: $out"
echo "ok 2 - cell down swept nothing"
[ "$ms" -lt 12000 ] || fail "cell down took $ms ms (expected seconds)"
echo "ok 3 - cell down took $ms ms"
pgrep -f "sleep 7$$" >/dev/null && fail "a service survived cell down"

for i in "${insts[@]}"; do
	ev=$(events "$i" | tr '\n' ' ')
	[ "$(count_event "$i" configured)" = 1 ] || fail "$i: configured more than once (restarted): $ev"
	[ "$(count_event "$i" service_running)" = 1 ] || fail "$i: service restarted: $ev"
	n=$(events "$i" | grep -cxE 'finished|killed|aborted')
	[ "$n" = 1 ] || fail "$i: $n terminal events: $ev"
	"$T" trace --json "$i" | grep '"finished"' | grep -q '"data":"256\.15"' ||
		fail "$i: finished is not 256.15 (killed by SIGTERM): $("$T" trace "$i" 2>&1 | tail -3)"
	"$T" store ls /scheduled 2>/dev/null | grep -qxF "$i" && fail "$i still in /scheduled"
done
echo "ok 4 - each instance: one container, one terminal event (finished 256.15), gone from /scheduled"
grep -q "ended without finishing" "$R"/log/node/current && fail "the node restarted a container: $(grep 'ended without' "$R"/log/node/current | head -3)"
echo "ok 5 - no container started again"
echo "1..5"
