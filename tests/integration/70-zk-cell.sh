#!/bin/bash
# A cell of "many machines" on a real 3-server ZooKeeper ensemble: two masters
# (each restarted when it exits, as s6 would), three node agents with their own
# root, hostname, cgroup root and s6-svscan, topology made with `treadle admin`.
# 30 instances with an affinity limit and a data retention timeout are placed and run; then the leading
# master is SIGKILLed (standby leads within 5 s, no placement lost or
# duplicated), a node agent is SIGKILLed and its session expires (its instances
# move and run elsewhere), one ZooKeeper server is killed (the cell keeps
# working), all of ZooKeeper is stopped for 30 s (apps keep running, the cell
# reconciles), and a server is blacked out (its apps move).  Skips without
# root, s6, java/ZooKeeper.
set -u
SRC=${TREADLE_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${TREADLE_BIN:-$SRC/build/treadle}
skip() { echo "skip: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root (containers, cgroups, loop devices)"
command -v s6-svscan >/dev/null || skip "s6 not installed"
[ -e /dev/loop-control ] || skip "no /dev/loop-control"
id nobody >/dev/null 2>&1 || skip "no user nobody"
# shellcheck source=../lib/zk.sh
. "$SRC/tests/lib/zk.sh"
zk_available || skip "java or /usr/share/java/zookeeper.jar missing"

T=$(mktemp -d /tmp/treadle-zkcell.XXXXXX)
chmod 755 "$T"
ZKDIR=$T/zk
TAG=7$$
HOSTS="h1 h2 h3"
declare -A AGENT SVSCAN
MLOOP=()
START=$(date +%s)
# shellcheck source=../lib/tap.sh
. "$SRC/tests/lib/tap.sh"
# shellcheck source=../lib/sweep.sh
. "$SRC/tests/lib/sweep.sh"
note() { echo "# [$(( $(date +%s) - START ))s] $*"; }
wait_for() { # SECS CMD...
	local end=$(( $(date +%s%N) / 1000000 + $1 * 1000 )); shift
	until "$@" >/dev/null 2>&1; do [ $(( $(date +%s%N) / 1000000 )) -ge "$end" ] && return 1; sleep 0.1; done
}

cg_of() { echo "treadle-zkcell-$$-$1"; }

start_node() { # H
	local h=$1 n=$T/$1
	mkdir -p "$n/running"
	if [ -z "${SVSCAN[$h]:-}" ]; then
		s6-svscan "$n/running" >>"$T/svscan-$h.log" 2>&1 &
		SVSCAN[$h]=$!
	fi
	TREADLE_ZK_SESSION_TIMEOUT=3000 "$BIN" node --store "$STORE" --root "$n" --hostname "$h" \
		--cgroup-root "$(cg_of "$h")" --setup-timeout 60 >>"$T/node-$h.log" 2>&1 &
	AGENT[$h]=$!
}

# A master restarted whenever it exits (what s6 does in a cell).
start_master() { # NAME
	(
		trap 'kill -TERM $child 2>/dev/null; wait $child; exit 0' TERM
		while :; do
			TREADLE_ZK_SESSION_TIMEOUT=2000 "$BIN" master --store "$STORE" --hostname "$1" \
				--server-down-grace 3 >>"$T/master-$1.log" 2>&1 &
			child=$!
			wait $child
			sleep 0.5
		done
	) &
	MLOOP+=($!)
}
leader() { # "<name>.<pid>" of the leading master: the lowest election node
	local first
	first=$(st ls /election/master 2>/dev/null | sort | head -1)
	[ -n "$first" ] && st get "/election/master/$first" 2>/dev/null
}

cleanup() {
	local h p c d
	set +e
	for p in "${MLOOP[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${MLOOP[@]}"; do wait "$p" 2>/dev/null; done
	for h in $HOSTS; do
		[ -n "${AGENT[$h]:-}" ] && kill -TERM "${AGENT[$h]}" 2>/dev/null
	done
	for h in $HOSTS; do [ -n "${AGENT[$h]:-}" ] && wait "${AGENT[$h]}" 2>/dev/null; done
	for h in $HOSTS; do
		svscan_stop "$T/$h/running" "${SVSCAN[$h]:-}"
		node_sweep "$T/$h" "$(cg_of "$h")"
	done
	zk_stop
	grep -q " $T/" /proc/mounts && awk -v t="$T/" 'index($2, t) == 1 {print $2}' /proc/mounts | sort -r | xargs -r -n1 umount -l
	if [ "$FAILS" -ne 0 ] || [ "${KEEP:-0}" = 1 ]; then
		for f in "$T"/master-*.log "$T"/node-*.log; do echo "# --- $f"; tail -25 "$f" | sed 's/^/# /'; done
	fi
	[ "${KEEP:-0}" = 1 ] && echo "# kept $T" || rm -rf "$T"
}
trap cleanup EXIT

st() { "$BIN" store --store "$STORE" "$@"; }
placements() { # "instance host" lines of every placement
	local h
	for h in $(st ls /placement 2>/dev/null); do st ls "/placement/$h" 2>/dev/null | sed "s/\$/ $h/"; done | sort
}
count_on() { placements | awk -v h="$1" '$2 == h' | wc -l; }
n_placed() { placements | awk '{print $1}' | sort -u | wc -l; }
no_duplicates() { [ -z "$(placements | awk '{print $1}' | sort | uniq -d)" ]; }
n_running() { st ls /running 2>/dev/null | grep -c "^nobody.zkc" ; }
procs() { pgrep -f "^sleep ${TAG}" | wc -l; }
all_running() { [ "$(n_running)" = "$1" ] && [ "$(n_placed)" = "$1" ]; }
running_on() { # the /running entries name their host
	local i bad=0
	for i in $(st ls /running 2>/dev/null | grep '^nobody.zkc'); do
		[ "$(st get "/running/$i")" = "$(placements | awk -v i="$i" '$1 == i {print $2}')" ] || bad=1
	done
	return $bad
}
max_per_server() { placements | awk '{print $2}' | sort | uniq -c | awk 'BEGIN {m = 0} $1 > m {m = $1} END {print m}'; }

note "starting a 3-server ZooKeeper ensemble"
zk_start_ensemble "$ZKDIR" 3 || { notok "ensemble started"; exit 1; }
STORE="zk://$ZK_HOSTS/treadle-zkcell-$$"
export TREADLE_STORE=$STORE

start_master m1
wait_for 20 sh -c "grep -q leading '$T/master-m1.log'"
start_master m2
assert "one master leads, the other stands by" wait_for 20 sh -c "grep -q 'standing by' '$T/master-m2.log'"

note "topology through treadle admin (TREADLE_STORE)"
"$BIN" admin bucket add pod:p1 && "$BIN" admin cell insert pod:p1 &&
	"$BIN" admin bucket add rack:r1 --parent pod:p1 && "$BIN" admin bucket add rack:r2 --parent pod:p1
assert "admin: buckets and cell" [ $? = 0 ]
for h in $HOSTS; do
	r=rack:r1; [ "$h" = h3 ] && r=rack:r2
	"$BIN" admin server add "$h" --parent "$r" --memory 4G --cpu 200 --disk 10G || notok "admin server add $h"
done
"$BIN" admin server add h4 --parent rack:nope 2>"$T/err"
assert "admin: bad parent refused with exit 100" [ $? = 100 ]
assert "admin: the error names the field" grep -q "parent 'rack:nope'" "$T/err"
assert "admin: nothing written for the refused server" sh -c "! '$BIN' store exists /servers/h4"

for h in $HOSTS; do start_node "$h"; done
assert "three nodes present" wait_for 20 sh -c "[ \$('$BIN' store ls /server.presence | wc -l) = 3 ]"
assert "node registration kept the admin topology" sh -c "'$BIN' store get /servers/h3 | grep -q '\"parent\":\"rack:r2\"'"

cat >"$T/app.yml" <<EOF
memory: 100M
cpu: 5%
disk: 100M
affinity_limits:
  server: 15
data_retention_timeout: 15s
services:
  - name: s
    command: exec sleep ${TAG}1
    restart:
      limit: 3
      interval: 60
EOF
note "30 instances"
"$BIN" run nobody.zkc -m "$T/app.yml" --count 30 >"$T/ids" || notok "run --count 30"
assert "30 instance ids" [ "$(wc -l <"$T/ids")" = 30 ]
assert "all 30 placed and running" wait_for 90 all_running 30
assert "30 processes" wait_for 10 sh -c "[ \$(pgrep -f '^sleep ${TAG}1' | wc -l) = 30 ]"
assert "no instance placed twice" no_duplicates
assert "every node runs some" sh -c "[ $(count_on h1) -gt 0 ] && [ $(count_on h2) -gt 0 ] && [ $(count_on h3) -gt 0 ]"
assert "affinity limit: at most 15 per server" [ "$(max_per_server)" -le 15 ]
assert "/running names the placed host" running_on
i1=$(head -1 "$T/ids")
assert "trace: scheduled and service_running" sh -c "'$BIN' trace --json '$i1' | grep -q '\"scheduled\"' &&
	'$BIN' trace --json '$i1' | grep -q '\"service_running\"'"
assert "show lists 30 running" sh -c "[ \$('$BIN' show running | grep -c nobody.zkc) = 30 ]"

note "SIGKILL the leading master"
before=$(placements)
LD=$(leader)
L=${LD%.*}
LP=${LD##*.}
assert "a leader is known ($LD)" [ -n "$LD" ]
[ "$L" = m1 ] && S=m2 || S=m1
n_lead=$(grep -c leading "$T/master-$S.log")
t0=$(date +%s%N)
kill -KILL "$LP"
wait_for 10 sh -c "[ \$(grep -c leading '$T/master-$S.log') -gt $n_lead ]"
t1=$(date +%s%N)
FAILOVER_MS=$(( (t1 - t0) / 1000000 ))
note "failover took ${FAILOVER_MS} ms"
assert "standby leads within 5 s (${FAILOVER_MS} ms)" [ "$FAILOVER_MS" -le 5000 ]
sleep 2
assert "no placement lost or duplicated over the failover" [ "$(placements)" = "$before" ]
assert "all 30 still running" all_running 30

note "SIGKILL node h3's agent; its session expires"
moved=$(placements | awk '$2 == "h3" {print $1}')
kill -KILL "${AGENT[h3]}"; wait "${AGENT[h3]}" 2>/dev/null; AGENT[h3]=
assert "h3 presence expires" wait_for 20 sh -c "! '$BIN' store exists /server.presence/h3"
sleep 5
assert "h3's instances stay placed during their data retention (15 s)" [ "$(count_on h3)" = "$(echo "$moved" | grep -c .)" ]
assert "h3's instances move to h1/h2" wait_for 40 sh -c "[ \$('$BIN' store ls /placement/h3 2>/dev/null | wc -l) = 0 ]"
assert "30 placed, none twice, 30 running" wait_for 60 all_running 30
assert "no duplicates after the move" no_duplicates
assert "affinity limit still holds" [ "$(max_per_server)" -le 15 ]
m=$(echo "$moved" | head -1)
assert "a moved instance traced pending/scheduled with h3" sh -c "'$BIN' trace --json '$m' | grep -q 'h3'"
note "restart h3's agent: it reconciles (stops its stale containers)"
start_node h3
assert "h3 back" wait_for 20 "$BIN" store exists /server.presence/h3
assert "h3 stale containers cleaned up" wait_for 60 sh -c "[ -z \"\$(ls '$T/h3/apps' 2>/dev/null)\" ]"
assert "30 processes again" wait_for 30 sh -c "[ \$(pgrep -f '^sleep ${TAG}1' | wc -l) = 30 ]"

note "kill one ZooKeeper server"
zk_kill 1
i31=$("$BIN" run nobody.zkc2 --memory 100M --disk 100M -- sleep "${TAG}2")
assert "run with one ZooKeeper server down" [ -n "$i31" ]
assert "it runs" wait_for 60 sh -c "'$BIN' store exists '/running/$i31'"
"$BIN" stop "$i31"
assert "stop works" wait_for 30 sh -c "'$BIN' store exists '/finished/$i31' && ! '$BIN' store exists '/running/$i31'"

note "stop all of ZooKeeper for 30 s"
pids_before=$(pgrep -f "^sleep ${TAG}1" | sort | tr '\n' ' ')
zk_kill 2; zk_kill 3
sleep 30
pids_during=$(pgrep -f "^sleep ${TAG}1" | sort | tr '\n' ' ')
assert "apps kept running without ZooKeeper" [ "$pids_before" = "$pids_during" ]
note "restart the ensemble"
for i in 1 2 3; do _zk_launch "$ZKDIR" "$i"; done
for i in 1 2 3; do zk_ready "${ZK_PORTS[$i]}" 60 || notok "zk $i back"; done
assert "a master leads again" wait_for 30 sh -c "[ -n \"\$('$BIN' store ls /election/master 2>/dev/null)\" ]"
assert "three nodes present again" wait_for 40 sh -c "[ \$('$BIN' store ls /server.presence | wc -l) = 3 ]"
assert "the cell reconciles: 30 placed and running" wait_for 60 all_running 30
assert "no duplicates after the outage" no_duplicates
sleep 3
pids_after=$(pgrep -f "^sleep ${TAG}1" | sort | tr '\n' ' ')
assert "the same processes still run (none restarted)" [ "$pids_before" = "$pids_after" ]
i32=$("$BIN" run nobody.zkc3 --memory 100M --disk 100M -- sleep "${TAG}3")
assert "a new instance runs after the outage" wait_for 60 sh -c "'$BIN' store exists '/running/$i32'"

note "blackout h2"
"$BIN" admin blackout set server h2 --reason "zk cell test"
assert "blackout recorded" sh -c "[ \"\$('$BIN' store get /blackedout.servers/h2)\" = 'zk cell test' ]"
assert "h2 presence gone and stays gone" sh -c "sleep 2; ! '$BIN' store exists /server.presence/h2"
assert "h2's apps move away" wait_for 40 sh -c "[ \$('$BIN' store ls /placement/h2 2>/dev/null | wc -l) = 0 ]"
assert "all instances run elsewhere" wait_for 60 all_running 31
assert "h2 stops its containers" wait_for 60 sh -c "[ -z \"\$(ls '$T/h2/apps' 2>/dev/null)\" ]"
"$BIN" admin blackout clear server h2
assert "cleared blackout: h2 registers again" wait_for 20 "$BIN" store exists /server.presence/h2
assert "admin server list shows presence" sh -c "'$BIN' admin server list --json | grep -q '\"presence\": true'"

note "total $(( $(date +%s) - START )) s"
done_testing
