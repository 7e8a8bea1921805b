#!/bin/bash
# Containers through container_run(): isolation checked by the probe from
# inside (processes, mounts, read-only system, hostname, identity, seccomp,
# TREADMILL_* env), treadle exec, setup aborts, and that stop + cleanup leave
# no cgroup, mount, loop device or process behind.
. "$(dirname "$0")/../lib/container.sh"
NOBODY=$(id -u nobody)

# B writes a secret into its own /tmp
service B writer 'echo secret > /tmp/secret-B; exec sleep 100000'
start B --proid nobody --disk 16M --hostname hostb || notok "B starts"
wait_file "$T/apps/B/data/vol/root/tmp/secret-B" 5 || true

EXEC_AS="/run/tm_bin/treadle container exec-as --envdir /env"
service A check "$EXEC_AS --user nobody -- /run/probe/probe check --hostname hosta --uid $NOBODY --no-caps \
 --max-procs 12 --absent $T --absent /tmp/secret-B --env TREADMILL_APP=proid.app --env TREADMILL_INSTANCEID=0000000042 \
 --seccomp --net-lo-only --reaped >/run/tm_ctl/A.check 2>&1; echo rc=\$? >>/run/tm_ctl/A.check; exec sleep 100000"
service A idle "exec $EXEC_AS --user nobody -- sleep 100000"
service A rootcheck "$EXEC_AS --root -- /run/probe/probe check --seccomp >/run/tm_ctl/A.root 2>&1; echo rc=\$? >>/run/tm_ctl/A.root; exec sleep 100000"
if start A --proid nobody --disk 16M --hostname hosta --env TREADMILL_APP=proid.app --env TREADMILL_INSTANCEID=0000000042 \
	--instance 'proid.app#0000000042'; then ok "A starts"; else notok "A starts"; cat "$T/A.log"; fi

wait_file "$T/ctl/A.check" 10 && sleep 0.3
grep -q 'rc=' "$T/ctl/A.check" 2>/dev/null || sleep 1
echo "# probe (proid):"; sed 's/^/#   /' "$T/ctl/A.check" 2>/dev/null
assert "probe checks pass as the proid" grep -qx 'rc=0' "$T/ctl/A.check"
assert "probe ran all its checks" test "$(grep -c '^ok - ' "$T/ctl/A.check")" -ge 20
wait_file "$T/ctl/A.root" 5; sleep 0.2
echo "# probe (root service):"; sed 's/^/#   /' "$T/ctl/A.root" 2>/dev/null
assert "seccomp denies mount/kexec/unshare even to root services" grep -qx 'rc=0' "$T/ctl/A.root"

# app processes in services/, helpers (s6) in sys/
svc_pids=$(cat "$(cg_dir memory A)/services/cgroup.procs" 2>/dev/null | wc -l)
sys_comms=$(for p in $(cat "$(cg_dir memory A)/sys/cgroup.procs" 2>/dev/null); do cat /proc/$p/comm; done | sort -u | tr '\n' ' ')
assert "app processes are in the services cgroup" test "$svc_pids" -ge 1
assert "s6 helpers are in the sys cgroup ($sys_comms)" grep -q s6-supervise <<<"$sys_comms"

# treadle exec
out=$("$BIN" exec "$T/apps/A" -- sh -c 'id -u; hostname; echo $TREADMILL_APP; cat /proc/self/cgroup | grep memory' 2>&1)
echo "# exec: $out" | tr '\n' ' '; echo
assert "exec runs as the proid" test "$(sed -n 1p <<<"$out")" = "$NOBODY"
assert "exec is in the container's uts namespace" test "$(sed -n 2p <<<"$out")" = hosta
assert "exec sees /env" test "$(sed -n 3p <<<"$out")" = proid.app
assert "exec joins the app cgroup" grep -q "apps/A/services" <<<"$out"
"$BIN" exec "$T/apps/A" -- sh -c 'exit 7'; assert "exec returns the command's status" test $? = 7
if command -v script >/dev/null; then
	out=$(script -qec "'$BIN' exec '$T/apps/A' -- tty" /dev/null </dev/null | tr -d '\r\0' | sed 's/^\^@//')
	assert "exec with a terminal gets a pty of the container's own devpts ($out)" test "$out" = /dev/pts/0
fi
out=$(echo 'echo shell-$(id -u)' | "$BIN" exec "$T/apps/A" 2>&1)
assert "exec without a command starts a login shell ($out)" test "$out" = "shell-$NOBODY"

# setup errors become data/aborted with Treadmill's reasons
service C s 'exec sleep 100000'
start C --proid no-such-user-$$; rc=$?
assert "missing proid aborts" test $rc -ne 0
assert "aborted why=proid" grep -q '"why":"proid"' "$T/apps/C/data/aborted"
service D s 'exec sleep 100000'
start D --proid nobody --image "file://$T/missing.tar"
assert "bad image aborts with why=image" grep -q '"why":"image"' "$T/apps/D/data/aborted"
assert "the abort payload says why" grep -q 'missing.tar' "$T/apps/D/data/aborted"

# stop + cleanup leave nothing behind
ipa=$(init_pid A); ipb=$(init_pid B)
stop A; stop B
for c in memory cpu pids blkio cpuset; do
	assert "no $c cgroup left" test ! -e "$(cg_dir $c A)" -a ! -e "$(cg_dir $c B)"
done
assert "no mount left" test "$(grep -c "$T" /proc/mounts)" = 0
assert "no loop device left" test -z "$(losetup -a | grep "$T")"
assert "no container process left" test ! -e /proc/$ipa -a ! -e /proc/$ipb
assert "volumes released" test -z "$(ls "$NODE/volumes" 2>/dev/null)"
done_testing
