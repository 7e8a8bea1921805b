#!/bin/bash
# Limits enforced on containers started through container_run(): memory
# (OOM kill recorded in the app cgroup), cpu quota (~20% of a core, measured),
# pids (fork bomb stops), disk (ENOSPC inside, nothing else harmed).
. "$(dirname "$0")/../lib/container.sh"
EXEC_AS="/run/tm_bin/treadle container exec-as --envdir /env --user nobody --"
P=/run/probe/probe

# memory: 32M limit, allocate 256M
service M alloc "$EXEC_AS $P alloc 256 >/run/tm_ctl/M.out 2>&1; echo rc=\$? >>/run/tm_ctl/M.out; exec sleep 100000"
start M --proid nobody --memory 32M --disk 16M || notok "M starts"
wait_file "$T/ctl/M.out" 10; for _ in $(seq 1 40); do grep -q rc= "$T/ctl/M.out" && break; sleep 0.1; done
echo "# $(tail -2 "$T/ctl/M.out" | tr '\n' ' ')"
assert "allocator past memory is killed" grep -qx 'rc=137' "$T/ctl/M.out"
kills=$(sed -n 's/^oom_kill //p' "$(cg_dir memory M)/services/memory.oom_control")
assert "the app cgroup records the OOM kill (oom_kill=$kills)" test "${kills:-0}" -ge 1
assert "the allocator never got past the limit" test -z "$(grep 'allocated all' "$T/ctl/M.out")"

# cpu: 20% of one core
service C spin "exec $EXEC_AS $P spin 30"
start C --proid nobody --cpu 20 --disk 16M || notok "C starts"
acct="$(cg_dir cpuacct C)/services/cpuacct.usage"
sleep 0.5
u0=$(cat "$acct"); t0=$(date +%s%N); sleep 3; u1=$(cat "$acct"); t1=$(date +%s%N)
pct=$(( (u1 - u0) * 100 / (t1 - t0) ))
echo "# cpu: busy loop used $pct% of a core with cpu: 20%"
# the quota caps it at 20% (+ tolerance); below that only if the machine is
# saturated (shared test hosts), so the floor is low and throttling must show
throttled=$(sed -n 's/^nr_throttled //p' "$(cg_dir cpu C)/services/cpu.stat")
assert "busy loop held at most ~20% (got $pct%)" test "$pct" -ge 5 -a "$pct" -le 26
assert "the CFS quota throttled it (nr_throttled=$throttled)" test "${throttled:-0}" -gt 0
stop C

# pids: 32
service F bomb "$EXEC_AS $P forkbomb 2000 >/run/tm_ctl/F.out 2>&1; echo rc=\$? >>/run/tm_ctl/F.out; exec sleep 100000"
start F --proid nobody --pids 32 --disk 16M || notok "F starts"
wait_file "$T/ctl/F.out" 10; for _ in $(seq 1 40); do grep -q rc= "$T/ctl/F.out" && break; sleep 0.1; done
echo "# $(cat "$T/ctl/F.out" | tr '\n' ' ')"
n=$(sed -n 's/^forked \([0-9]*\).*/\1/p' "$T/ctl/F.out")
assert "fork bomb stopped by the pids limit (forked ${n:-?})" test -n "$n" -a "${n:-999}" -lt 32
assert "fork failed with EAGAIN" grep -qx 'rc=0' "$T/ctl/F.out"

# disk: 16M volume, write 64M
service D fill "$EXEC_AS $P fill /tmp/fill 64 >/run/tm_ctl/D.out 2>&1; echo rc=\$? >>/run/tm_ctl/D.out; exec sleep 100000"
start D --proid nobody --disk 16M --write-bps 8M --read-bps 16M || notok "D starts"
loopdev=$(sed -n 's/.*"loop":"\/dev\/loop\([0-9]*\)".*/\1/p' "$T/apps/D/data/container.json")
assert "write throttle on the volume's loop device" grep -qx "7:$loopdev 8388608" "$(cg_dir blkio D)/services/blkio.throttle.write_bps_device"
assert "read throttle on the volume's loop device" grep -qx "7:$loopdev 16777216" "$(cg_dir blkio D)/services/blkio.throttle.read_bps_device"
wait_file "$T/ctl/D.out" 10; for _ in $(seq 1 60); do grep -q rc= "$T/ctl/D.out" && break; sleep 0.1; done
echo "# $(cat "$T/ctl/D.out" | tr '\n' ' ')"
assert "writer past disk gets ENOSPC" grep -q 'No space left on device' "$T/ctl/D.out"
assert "probe saw ENOSPC" grep -qx 'rc=0' "$T/ctl/D.out"
assert "the host file system is unharmed" sh -c "echo ok > '$T/after' && test -s '$T/after'"
assert "volume image stays sparse-sized" test "$(stat -c %s "$NODE/volumes/D.img")" = $((16 << 20))

for u in M F D; do stop $u; done
assert "no loop device left" test -z "$(losetup -a | grep "$T")"
assert "no cgroup left" test -z "$(find /sys/fs/cgroup/memory/$CGROOT/apps -mindepth 1 -type d 2>/dev/null)"
done_testing
