#!/bin/bash
# bench/faults.sh (`make bench-faults`): fault injection, on a single-machine cell (`treadle cell up`:
# master, node agent and the node's s6-svscan under s6) and on a ZooKeeper cell (3 private ZooKeeper
# servers on loopback, one master and one node agent restarted when they exit, as s6 would):
#  - SIGKILL of each daemon (master, node agent, `sproc run`, the container's s6-supervise, the node's
#    s6-svscan) at random points over FAULTS_N app lifecycles each (run -> running -> stop), twice per
#    lifecycle (while it starts, while it stops) for the daemons that outlive a container;
#  - ZooKeeper cell only: the ensemble's leader lost during FAULTS_N lifecycles, all of ZooKeeper
#    down for FAULTS_ZK_DOWN seconds (default 30), the node's disk full (its root is a small tmpfs, filled
#    up; FAULTS_N apps are submitted, then the space is freed).
# Two steady instances run throughout.  Per scenario it prints: instances lost (never ran, or a steady
# one gone), duplicated (two live containers for one instance), leaked cgroups, mounts and loop devices
# (beyond those of the live containers), and the time from the last fault to a reconciled cell (every
# instance in its expected state, nothing extra).  A bench: it prints figures and fails only when it
# cannot run.  FAULTS_SEED makes the random points repeatable; FAULTS_ONLY=single|zk runs one cell;
# FAULTS_SKIP_KILLS=1 skips the SIGKILL scenarios; KEEP=1 keeps the work dir (logs).
# Needs root, s6, the user nobody; the ZooKeeper cell needs java and the ZooKeeper jars.
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
BIN=${TREADLE_BIN:-$SRC/${BUILD:-build}/treadle}
N=${FAULTS_N:-2}
ZK_DOWN=${FAULTS_ZK_DOWN:-30}
SEED=${FAULTS_SEED:-$$}
RECONCILE_MAX=${FAULTS_RECONCILE_MAX:-90}
RANDOM=$SEED
[ "$(id -u)" = 0 ] || { echo "needs root (containers, cgroups, loop devices)"; exit 77; }
command -v s6-svscan >/dev/null || { echo "needs s6 (scripts/install-deps.sh)"; exit 77; }
id nobody >/dev/null 2>&1 || { echo "needs the user nobody"; exit 77; }
[ -x "$BIN" ] || { echo "no $BIN (make)"; exit 1; }
. "$SRC/tests/lib/zk.sh"

W=$(mktemp -d /tmp/treadle-faults.XXXXXX)
chmod 755 "$W"
TAG=9$$
K=0              # instances submitted so far
declare -A ARG   # instance id -> its unique sleep argument
STEADY=()        # instances that must run throughout
CELL= STORE= NODEROOT= CG=
MLOOP= NLOOP= SLOOP=
echo "faults: seed $SEED, $N lifecycles per daemon, work dir $W"

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
rand_sleep() { sleep "$(awk -v r="$RANDOM" -v m="$1" 'BEGIN { printf "%.3f", r / 32768 * m / 1000 }')"; } # 0..MS
wait_for() { # SECS CMD...
	local end=$(( $(now_ms) + $1 * 1000 )); shift
	until "$@" >/dev/null 2>&1; do [ "$(now_ms)" -ge "$end" ] && return 1; sleep 0.1; done
}
procs() { pgrep -fx "sleep ${ARG[$1]}" | wc -l; }
n_cgroups() { find "/sys/fs/cgroup/cpu/$CG/apps" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | wc -l; }
n_mounts() { grep -c " $NODEROOT" /proc/self/mountinfo; }
n_loops() { losetup -l -n -O BACK-FILE 2>/dev/null | grep -c "^$NODEROOT/"; }
n_apps() { find "$NODEROOT/apps" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | wc -l; }

submit() { # -> instance id in $id (not in a subshell: ARG and K are kept)
	local a
	K=$((K + 1))
	a=$TAG$(printf %04d "$K")
	id=$("$BIN" run nobody.faults --cpu 2% -- sleep "$a") || { id=; return 1; }
	ARG[$id]=$a
}
in_store() { "$BIN" store --store "$STORE" ls "$1" 2>/dev/null | grep -qxF "$2"; }

# pid of a daemon (empty if none now); for container daemons, of instance $2.
daemon_pid() {
	local sup
	case $1 in
	master) pgrep -f "treadle master --store $STORE" | head -1 ;;
	node) pgrep -f "treadle node --store $STORE" | head -1 ;;
	svscan) pgrep -fx "s6-svscan $NODEROOT/running" | head -1 ;;
	supervise) pgrep -fx "s6-supervise $2" | head -1 ;;
	sproc)
		sup=$(pgrep -fx "s6-supervise $2" | head -1)
		[ -n "$sup" ] && pgrep -P "$sup" -f "sproc run" | head -1 ;;
	esac
}
KILLS=0 LAST_FAULT=0
kill_daemon() { # DAEMON [INSTANCE]: SIGKILL it, waiting up to 20 s for it to exist
	local p end=$(( $(now_ms) + 20000 ))
	until p=$(daemon_pid "$@"); [ -n "$p" ]; do
		[ "$(now_ms)" -ge "$end" ] && return 1
		sleep 0.05
	done
	kill -KILL "$p" 2>/dev/null && KILLS=$((KILLS + 1)) LAST_FAULT=$(now_ms)
}

# Per scenario: LOST DUP NEVER (instances that never ran) and the baseline of mounts.
LOST=0 DUP=0 BASE_MOUNTS=0 LIFE=() STUCK=0
scenario_start() { LOST=0 DUP=0 KILLS=0 LIFE=() STUCK=0 BASE_MOUNTS=$(n_mounts) LAST_FAULT=$(now_ms); }
# An instance that must run: it runs within 60 s, once (sampled 1 s later).
expect_running() {
	if ! wait_for 60 sh -c "[ \$(pgrep -fx 'sleep ${ARG[$1]}' | wc -l) -ge 1 ]"; then
		LOST=$((LOST + 1)); echo "   $1 did not run"; return 1
	fi
	sleep 1
	[ "$(procs "$1")" -le 1 ] || { DUP=$((DUP + 1)); echo "   $1 runs $(procs "$1") times"; }
}
lifecycle() { # DAEMON: run -> running -> stop, the daemon SIGKILLed at a random point of each half
	local id stop
	submit || { echo "   run failed"; LOST=$((LOST + 1)); return; }
	LIFE+=("$id")
	rand_sleep 1500
	kill_daemon "$1" "$id" || echo "   no $1 to kill for $id"
	expect_running "$id"
	"$BIN" stop "$id" >/dev/null &
	stop=$!
	case $1 in master | node | svscan) rand_sleep 1000; kill_daemon "$1" "$id" ;; esac
	wait "$stop"
}
# Reconciled: each steady instance runs once, each lifecycle one is gone (no process, not in /running
# nor /scheduled), and only the steady containers have an app dir, a cgroup and a loop device.
reconciled() {
	local i s=${#STEADY[@]}
	for i in "${STEADY[@]}"; do [ "$(procs "$i")" = 1 ] || return 1; done
	for i in "${LIFE[@]}"; do
		[ "$(procs "$i")" = 0 ] || return 1
		in_store /running "$i" && return 1
		in_store /scheduled "$i" && return 1
	done
	[ "$(n_apps)" = "$s" ] && [ "$(n_cgroups)" = "$s" ] && [ "$(n_loops)" -le "$s" ]
}
scenario_end() { # NAME
	local t i s=${#STEADY[@]} took
	if wait_for "$RECONCILE_MAX" reconciled; then
		t=$(now_ms); took=$(awk -v d="$((t - LAST_FAULT))" 'BEGIN { printf "%.1f s", d / 1000 }')
		[ "$STUCK" = 0 ] || took="$took, only once the bench stopped $STUCK stuck instance(s)"
	else
		took="NOT reconciled within ${RECONCILE_MAX} s"
	fi
	for i in "${STEADY[@]}"; do
		case $(procs "$i") in 0) LOST=$((LOST + 1)); echo "   steady $i is gone" ;; 1) ;; *) DUP=$((DUP + 1)) ;; esac
	done
	for i in "${LIFE[@]}"; do [ "$(procs "$i")" -le 1 ] || DUP=$((DUP + 1)); done
	printf 'faults: %-6s %-34s lost %d, duplicated %d, leaked cgroups %d, mounts %d, loop devices %d; reconciled in %s\n' \
		"$CELL" "$1:" "$LOST" "$DUP" "$(( $(n_cgroups) > s ? $(n_cgroups) - s : 0 ))" \
		"$(( $(n_mounts) > BASE_MOUNTS ? $(n_mounts) - BASE_MOUNTS : 0 ))" \
		"$(( $(n_loops) > s ? $(n_loops) - s : 0 ))" "$took"
}

kill_scenarios() {
	local d k
	for d in master node sproc supervise svscan; do
		scenario_start
		for ((k = 0; k < N; k++)); do lifecycle "$d"; done
		case $d in
		sproc) scenario_end "SIGKILL sproc run x$KILLS" ;;
		supervise) scenario_end "SIGKILL container s6-supervise x$KILLS" ;;
		svscan) scenario_end "SIGKILL node s6-svscan x$KILLS" ;;
		*) scenario_end "SIGKILL $d x$KILLS" ;;
		esac
	done
}
start_steady() {
	local i id
	for i in 1 2; do
		submit || { echo "faults: run failed"; return 1; }
		STEADY+=("$id")
	done
	for id in "${STEADY[@]}"; do
		wait_for 60 sh -c "[ \$(pgrep -fx 'sleep ${ARG[$id]}' | wc -l) = 1 ]" || { echo "faults: $id did not start"; return 1; }
	done
}
stop_steady() {
	# shellcheck disable=SC2068
	[ ${#STEADY[@]} -gt 0 ] && "$BIN" stop ${STEADY[@]} >/dev/null 2>&1
	STEADY=()
}
# After the cell is taken down: what is left of it.
leftovers() { # CGROUP-ROOT ROOT
	local c=0 p=0 f
	for f in /sys/fs/cgroup/*/"$1"/apps; do [ -d "$f" ] && c=$((c + $(find "$f" -mindepth 1 -type d | wc -l))); done
	for f in /proc/[0-9]*; do
		case $( { tr '\0' ' ' <"$f/cmdline"; } 2>/dev/null) in *"$2"*) p=$((p + 1)) ;; esac
	done
	echo "faults: $CELL after teardown: cgroups $c, mounts $(grep -c " $2" /proc/self/mountinfo), loop devices $(losetup -l -n -O BACK-FILE 2>/dev/null | grep -c "^$2/"), processes $p"
}

# ---- the single-machine cell ----------------------------------------------------------------
single_cell() {
	local R=$W/single
	CELL=single CG=treadle-faults$$ NODEROOT=$R/node STORE=file://$R/store
	mkdir -p "$R"
	export TREADLE_ROOT=$R
	unset TREADLE_STORE
	"$BIN" cell up --daemon --hostname "faults$$" --cgroup-root "$CG" --timeout 30 >/dev/null || { echo "faults: cell up failed"; return 1; }
	if start_steady; then
		[ "${FAULTS_SKIP_KILLS:-0}" = 1 ] || kill_scenarios
		stop_steady
	fi
	"$BIN" cell down --timeout 30 >/dev/null 2>&1 || echo "faults: single: cell down failed"
	leftovers "$CG" "$R"
	unset TREADLE_ROOT
}

# ---- the ZooKeeper cell ---------------------------------------------------------------------
loop() { # LOGFILE CMD...: restart CMD 0.2 s after it exits, as s6 would
	local log=$1; shift
	(
		trap 'kill -TERM $child 2>/dev/null; wait $child; exit 0' TERM
		while :; do "$@" >>"$log" 2>&1 & child=$!; wait $child; sleep 0.2; done
	) 2>/dev/null &
}
zk_leader() { # index of the ensemble's leader (1 if none answers)
	local i out
	for i in 1 2 3; do
		out=$( (exec 3<>"/dev/tcp/127.0.0.1/${ZK_PORTS[$i]}" && printf srvr >&3 && timeout 2 cat <&3) 2>/dev/null)
		case $out in *"Mode: leader"*) echo "$i"; return ;; esac
	done
	echo 1
}
zk_relaunch() { local i; for i in "$@"; do _zk_launch "$W/zk" "$i"; done; for i in "$@"; do zk_ready "${ZK_PORTS[$i]}" 90; done; }
zk_cell_down() {
	local d
	[ -n "$MLOOP" ] && { kill -TERM "$MLOOP"; wait "$MLOOP" 2>/dev/null; }
	[ -n "$NLOOP" ] && { kill -TERM "$NLOOP"; wait "$NLOOP" 2>/dev/null; }
	if [ -n "$SLOOP" ]; then
		kill -TERM "$SLOOP" 2>/dev/null # the loop; its s6-svscan brings the containers down
		s6-svscanctl -t "$NODEROOT/running" 2>/dev/null
		wait_for 20 sh -c "! pgrep -fx 's6-svscan $NODEROOT/running'"
		wait "$SLOOP" 2>/dev/null
	fi
	MLOOP= NLOOP= SLOOP=
	for d in "$NODEROOT"/apps/*; do
		[ -d "$d" ] && timeout 30 "$BIN" sproc cleanup --root "$NODEROOT" --cgroup-root "$CG" "$(basename "$d")" >/dev/null 2>&1
	done
	zk_stop
}
zk_cell() {
	CELL=zk CG=treadle-faultszk$$ NODEROOT=$W/h1
	local disk=${FAULTS_NODE_DISK:-400m} k id ran lead
	zk_start_ensemble "$W/zk" 3 >/dev/null || { echo "faults: ZooKeeper did not start"; return 1; }
	STORE="zk://$ZK_HOSTS/faults-$$"
	export TREADLE_STORE=$STORE
	mkdir -p "$NODEROOT"
	mount -t tmpfs -o size="$disk" faults-node "$NODEROOT" || { echo "faults: tmpfs"; return 1; }
	mkdir -p "$NODEROOT/running"
	loop "$W/svscan.log" s6-svscan "$NODEROOT/running"; SLOOP=$!
	loop "$W/master.log" env TREADLE_ZK_SESSION_TIMEOUT=2000 "$BIN" master --store "$STORE" --hostname m1; MLOOP=$!
	loop "$W/node.log" env TREADLE_ZK_SESSION_TIMEOUT=3000 "$BIN" node --store "$STORE" --root "$NODEROOT" \
		--hostname h1 --cgroup-root "$CG" --setup-timeout 60; NLOOP=$!
	wait_for 60 sh -c "'$BIN' store --store '$STORE' ls /server.presence | grep -q '^h1'" || { echo "faults: zk: the node did not register"; return 1; }
	start_steady || return 1
	[ "${FAULTS_SKIP_KILLS:-0}" = 1 ] || kill_scenarios

	scenario_start
	lead=$(zk_leader)
	for ((k = 0; k < N; k++)); do
		submit && LIFE+=("$id")
		[ "$k" = 0 ] && { rand_sleep 1000; zk_kill "$lead"; LAST_FAULT=$(now_ms); }
		[ -n "$id" ] && expect_running "$id" && "$BIN" stop "$id" >/dev/null
	done
	scenario_end "ZooKeeper leader lost (1 of 3)"
	zk_relaunch "$lead"

	scenario_start
	for k in 1 2 3; do zk_kill "$k"; done
	sleep "$ZK_DOWN"
	zk_relaunch 1 2 3
	LAST_FAULT=$(now_ms)
	submit && LIFE+=("$id") && expect_running "$id" && "$BIN" stop "$id" >/dev/null
	scenario_end "all of ZooKeeper down ${ZK_DOWN} s"

	scenario_start
	dd if=/dev/zero of="$NODEROOT/fill" bs=1M 2>/dev/null
	LIFE=()
	for ((k = 0; k < N; k++)); do submit && LIFE+=("$id"); done
	sleep 15
	ran=0
	for id in "${LIFE[@]}"; do [ "$(procs "$id")" -ge 1 ] && ran=$((ran + 1)); done
	rm -f "$NODEROOT/fill"
	LAST_FAULT=$(now_ms)
	echo "faults: zk     node disk full: $ran of ${#LIFE[@]} submitted apps ran while full; space freed"
	for id in "${LIFE[@]}"; do
		if expect_running "$id"; then "$BIN" stop "$id" >/dev/null
		else
			echo "   $id: $("$BIN" trace "$id" 2>/dev/null | tail -n 2 | tr -s ' \n' ' ')"
			"$BIN" stop "$id" >/dev/null 2>&1; STUCK=$((STUCK + 1))
		fi
	done
	scenario_end "node disk full (${disk} tmpfs)"
	stop_steady
	wait_for 60 sh -c "[ \$(find '$NODEROOT/apps' -mindepth 1 -maxdepth 1 | wc -l) = 0 ]"
}

cleanup() {
	set +e
	if [ "$CELL" = single ] && [ -d "$W/single" ]; then TREADLE_ROOT=$W/single "$BIN" cell down --timeout 30 >/dev/null 2>&1; fi
	if [ "$CELL" = zk ]; then
		zk_cell_down
		umount "$NODEROOT" 2>/dev/null
		leftovers "$CG" "$NODEROOT"
		mountpoint -q "$NODEROOT" && umount -l "$NODEROOT" 2>/dev/null
		for c in /sys/fs/cgroup/*/"$CG"; do
			[ -d "$c" ] && { find "$c" -depth -mindepth 1 -type d -exec rmdir {} + 2>/dev/null; rmdir "$c" 2>/dev/null; }
		done
	fi
	CELL=
	[ "${KEEP:-0}" = 1 ] && echo "kept $W" || rm -rf "$W"
}
trap cleanup EXIT

start=$(now_ms)
[ "${FAULTS_ONLY:-}" = zk ] || single_cell
CELL=
if [ "${FAULTS_ONLY:-}" != single ]; then
	if zk_available; then
		zk_cell
	else
		echo "faults: zk cell skipped: java or /usr/share/java/zookeeper.jar missing"
	fi
fi
echo "faults: total $(( ($(now_ms) - start) / 1000 )) s"
