#!/bin/bash
# Watchdog leases and postmortem (docs/NODE.md "Watchdogs and postmortem"): three servers on one embedded
# store, A the master, B and C nodes, B's agent with a 5 s lease.  B's agent stopped (SIGSTOP): within the
# lease the watchdog blacks B out (presence gone, the master moves B's instance to C), writes a readable
# postmortem bundle and takes B's container down; B's agent continued: B stays blacked out until the blackout is cleared, then it is back
# in /server.presence.  `treadle admin postmortem` writes bundles on demand; the last three are kept.
. "$(dirname "$0")/../lib/cell.sh"
cell_require
. "$(dirname "$0")/../lib/tap.sh"

R=$(mktemp -d /tmp/treadle-it59.XXXXXX)
RA=$R/a RB=$R/b RC=$R/c
HA=it59a-$$ HB=it59b-$$ HC=it59c-$$
CG=treadle-it59-$$
STOPPED=
cleanup() {
	local rc=$?
	trap - EXIT
	[ -n "$STOPPED" ] && kill -CONT "$STOPPED" 2>/dev/null
	for r in "$RC" "$RB" "$RA"; do
		[ -d "$r/svc" ] && { "$T" cell down --root "$r" --timeout 20 >/dev/null 2>&1 || { echo "cell down $r failed"; rc=1; }; }
	done
	if grep -l -E 'runtime error|ERROR: AddressSanitizer|ERROR: LeakSanitizer' "$R"/*/log/*/current 2>/dev/null; then
		grep -h -A12 -E 'runtime error|ERROR: AddressSanitizer|ERROR: LeakSanitizer' "$R"/*/log/*/current | head -40
		rc=1
	fi
	for p in /proc/[0-9]*; do
		c=$( { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null) || continue
		case "$c" in *"$R"/*) echo "LEAK: process $(basename "$p"): $c"; rc=1 ;; esac
	done
	for c in /sys/fs/cgroup/*/"$CG"*; do [ -e "$c" ] && { echo "LEAK: cgroup $c"; rc=1; }; done
	rm -rf "$R"
	exit $rc
}
trap cleanup EXIT
unset TREADLE_STORE TREADLE_ROOT TREADLE_ROLES TREADLE_HOSTNAME TREADLE_CGROUP_ROOT
fail() {
	echo "FAIL: $*"
	for r in "$RA" "$RB" "$RC"; do
		for s in master node watchdog; do
			[ -f "$r/log/$s/current" ] && { echo "=== $r $s"; tail -n 15 "$r/log/$s/current" | sed 's/^/    /'; }
		done
	done
	exit 1
}
ST() { "$T" store --store "file://$RA/store" "$@"; }
t_start=$(date +%s)

"$T" cell up --daemon --root "$RA" --roles master --hostname "$HA" --timeout 30 || fail "cell up A"
"$T" cell up --daemon --root "$RB" --roles node --store "file://$RA/store" --hostname "$HB" \
	--cgroup-root "${CG}b" --network none --watchdog-lease 5 --timeout 30 || fail "cell up B"
[ -d "$RB/svc/watchdog" ] || fail "no watchdog service on B: $(ls "$RB/svc")"
wait_for 10 test -f "$RB/node/watchdogs/agent" || fail "the agent holds no lease"
grep -qx 'timeout 5' "$RB/node/watchdogs/agent" || fail "lease: $(cat "$RB/node/watchdogs/agent")"
dl=$(stat -c %Y "$RB/node/watchdogs/agent"); now=$(date +%s)
[ "$dl" -gt "$now" ] && [ "$dl" -le $((now + 5)) ] || fail "lease deadline $dl, now $now"
ok "the node agent holds a 5 s lease (mtime = deadline) watched by the cell's watchdog service"

tag=59$$
inst=$("$T" run --store "file://$RA/store" nobody.wd -- sleep "${tag}") || fail "run"
wait_for 30 sh -c "'$T' store --store file://$RA/store ls /placement/$HB | grep -qF '$inst'" || fail "$inst not placed on B"
wait_for 30 sh -c "pgrep -fx 'sleep ${tag}' >/dev/null" || fail "$inst never started on B"
"$T" cell up --daemon --root "$RC" --roles node --store "file://$RA/store" --hostname "$HC" \
	--cgroup-root "${CG}c" --network none --timeout 30 || fail "cell up C"

ST exists "/blackedout.servers/$HB" >/dev/null 2>&1 && fail "B blacked out while its agent runs"
note "SIGSTOP B's agent"
STOPPED=$(s6-svstat -o pid "$RB/svc/node")
[ "$STOPPED" -gt 0 ] || fail "no agent pid"
t0=$(date +%s)
kill -STOP "$STOPPED"
wait_for 10 ST exists "/blackedout.servers/$HB" || fail "B not blacked out within the lease (+5 s)"
ST exists "/server.presence/$HB" >/dev/null 2>&1 && fail "B's presence is still there"
reason=$(ST get "/blackedout.servers/$HB")
[[ $reason == *"watchdogs [agent] failed."* ]] || fail "blackout reason: $reason"
ok "a stalled agent blacked the node out after $(( $(date +%s) - t0 )) s (lease 5 s): '$reason', presence gone"

wait_for 30 sh -c "'$T' store --store file://$RA/store ls /placement/$HC | grep -qF '$inst'" ||
	fail "the master did not move $inst to C: B=$(ST ls "/placement/$HB" 2>&1) C=$(ST ls "/placement/$HC" 2>&1)"
[ "$(s6-svstat -o up "$RB/node/running/$inst")" = false ] ||
	wait_for 10 sh -c "[ \"\$(s6-svstat -o up '$RB/node/running/$inst')\" = false ]" ||
	fail "B's container of $inst still up while its agent is stopped"
[ -e "$RB/node/running/$inst/data/released" ] || fail "B's container was not released"
ok "the master moved $inst to C; the watchdog took B's container down (released)"

wait_for 15 sh -c "ls '$RB/node/postmortem/' | grep -q '^$HB-[0-9]\{8\}_[0-9]\{6\}UTC\.tar\.gz$'" ||
	fail "no postmortem bundle: $(ls "$RB/node/postmortem" 2>&1)"
pm=$(ls "$RB"/node/postmortem/*.tar.gz | head -1)
list=$(tar tzf "$pm") || fail "tar tzf $pm"
for want in reason.txt log/node/current log/watchdog/current node/node.json node/watchdogs/agent node/running.list \
	'diag/ps#-eo#pid,ppid,stat,etime,rss,args' 'diag/cat#/proc/meminfo'; do
	grep -qxF "$want" <<<"$list" || fail "bundle lacks $want: $(echo $list | head -c 600)"
done
grep -q '^apps/nobody.wd-.*/data/' <<<"$list" || fail "bundle lacks the container's data files"
grep -q '^cgroup/' <<<"$list" || fail "bundle lacks cgroup state"
[ "$(tar xzOf "$pm" reason.txt)" = "watchdogs [agent] failed." ] || fail "reason.txt: $(tar xzOf "$pm" reason.txt)"
tar xzOf "$pm" 'diag/ps#-eo#pid,ppid,stat,etime,rss,args' | grep -q 'treadle node' || fail "ps output lacks the agent"
ok "postmortem $(basename "$pm"): $(wc -l <<<"$list") members, readable by tar"

note "SIGCONT B's agent"
kill -CONT "$STOPPED"; STOPPED=
wait_for 20 sh -c "[ -z \"\$(find '$RB/node/running' '$RB/node/apps' -mindepth 1 -maxdepth 1 ! -name '.*')\" ]" ||
	fail "B's container of $inst was not stopped: $(ls "$RB/node/running" "$RB/node/apps")"
wait_for 10 sh -c "[ \$(stat -c %Y '$RB/node/watchdogs/agent') -gt \$(date +%s) ]" || fail "the lease was not renewed"
ST exists "/scheduled/$inst" >/dev/null || fail "$inst left /scheduled: the release ended it"
ST exists "/finished/$inst" >/dev/null 2>&1 && fail "$inst finished: $(ST get "/finished/$inst")"
ST ls "/placement/$HC" | grep -qF "$inst" || fail "$inst no longer placed on C"
sleep 2
ST exists "/server.presence/$HB" >/dev/null 2>&1 && fail "B came back while blacked out"
ok "continued, B renews its lease and stays blacked out (Treadmill: an operator clears it)"

"$T" admin --store "file://$RA/store" blackout clear server "$HB" || fail "blackout clear"
wait_for 15 ST exists "/server.presence/$HB" || fail "B did not come back after the blackout was cleared"
ok "blackout cleared: B is back in /server.presence"

for i in 1 2 3 4; do
	p=$("$T" admin --root "$RB" postmortem) || fail "admin postmortem $i"
	[ -f "$p" ] && tar tzf "$p" >/dev/null || fail "admin postmortem $i: $p unreadable"
	tar xzOf "$p" reason.txt | grep -q 'on demand' || fail "reason of $p"
done
n=$(ls "$RB/node/postmortem" | grep -c '\.tar\.gz$')
[ "$n" = 3 ] || fail "$n bundles kept: $(ls "$RB/node/postmortem")"
ls "$RB/node/postmortem" | grep -qxF "$(basename "$p")" || fail "the newest bundle was pruned"
[ -f "$pm" ] && fail "the oldest bundle ($pm) was kept"
ok "admin postmortem: four bundles written, the last three kept"
"$T" admin --root "$R/nothing" postmortem >/dev/null 2>&1; rc=$?
[ "$rc" = 100 ] || fail "admin postmortem without a cell: exit $rc, expected 100"
ok "admin postmortem without a cell server: exit 100 ($(( $(date +%s) - t_start )) s)"
done_testing
