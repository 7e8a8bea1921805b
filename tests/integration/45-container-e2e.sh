#!/bin/bash
# Containers end to end through a real cell (`treadle run`): from inside the
# running instance (`treadle exec`) the app sees its own processes only, a
# read-only system, its TREADMILL_* environment, no capabilities, its disk
# size (ENOSPC past it); its cgroup carries the limits; an allocator past
# `memory` finishes as killed/oom; after `treadle stop` nothing is left.
. "$(dirname "$0")/../lib/cell.sh"
cell_require
cell_setup
. "$(dirname "$0")/../lib/tap.sh"

inst=$("$T" run nobody.ctest --memory 100M --cpu 20% --disk 100M -- /bin/sh -c "exec sleep 86$$") || fail "treadle run"
wait_for 30 has_event "$inst" service_running || fail "service never reported running"
dir=$(readlink -f "$R/node/running/$inst")
unique=$(basename "$dir")
note "instance $inst in $dir"

x() { "$T" exec "$inst" -- /bin/sh -c "$1" 2>&1; }
assert "exec runs as the proid" test "$(x 'id -u')" = "$(id -u nobody)"
np=$(x 'ls /proc | grep -c "^[0-9]"'); hostp=$(ls /proc | grep -c '^[0-9]')
assert "only the container's processes are visible ($np of $hostp)" test "$np" -le 15
assert "exec --service runs as that service's user" test "$("$T" exec "$inst" --service sh -- id -u 2>&1)" = "$(id -u nobody)"
assert "pid 1 is s6-svscan" test "$(x 'cat /proc/1/comm')" = s6-svscan
assert "/usr is read-only" test -n "$(x 'touch /usr/x 2>&1 | grep -i read-only')"
assert "the cell root is invisible" test "$(x "ls -d $R 2>/dev/null | wc -l")" = 0
assert "TREADMILL_APP is set" test "$(x 'echo $TREADMILL_APP')" = nobody.ctest
assert "no capabilities" test "$(x 'grep CapEff /proc/self/status' | awk '{print $2}')" = 0000000000000000
size_k=$(x "df -k / | awk 'NR==2 {print \$2}'")
assert "root is the 100M volume (${size_k}K)" test "${size_k:-0}" -gt 80000 -a "${size_k:-0}" -le 102400
assert "writing past the disk gives ENOSPC" test -n "$(x 'head -c 120000000 /dev/zero 2>&1 >/tmp/fill; rm -f /tmp/fill' | grep -i 'no space')"
assert "memory limit on the app cgroup" test "$(cat /sys/fs/cgroup/memory/$CG/apps/$unique/services/memory.limit_in_bytes)" = 104857600
assert "cpu quota for 20%" test "$(cat /sys/fs/cgroup/cpu/$CG/apps/$unique/services/cpu.cfs_quota_us)" = 20000
assert "pids limit on the app cgroup (node default 4096)" test "$(cat /sys/fs/cgroup/pids/$CG/apps/$unique/services/pids.max)" = 4096
loop=$(losetup -a | grep -F "$unique" | cut -d: -f1)
assert "the volume is on a loop device" test -n "$loop"

# OOM: 100M limit, a shell holding 300 MB
# (python fills 300 MB at once; a shell loop under the default 10% cpu quota took minutes on a busy host)
oom=$("$T" run nobody.cthog --memory 100M --cpu 100% -- /usr/bin/python3 -c 'import time; b = b"x" * (300 << 20); time.sleep(100)') || fail "run oom"
if wait_for 120 sh -c "'$T' trace --json '$oom' | grep -q '\"type\":\"killed\"'"; then ok "OOM instance finishes"
else notok "OOM instance finishes"; "$T" trace "$oom" | sed 's/^/# /'; fi
assert "OOM is traced as killed oom" sh -c "'$T' trace --json '$oom' | grep '\"type\":\"killed\"' | grep -q '\"data\":\"oom\"'"

# tar image through a manifest, served over HTTP on loopback; a wrong sha256 aborts with `image`
mkdir -p "$R/img/opt/app" "$R/www"
echo "hello from the image" >"$R/img/opt/app/hello.txt"
tar -C "$R/img" -cf "$R/www/app.tar" .
sum=$(sha256sum "$R/www/app.tar" | cut -d' ' -f1)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$R/www" "$port" >/dev/null 2>&1 &
httpd=$!
trap 'st=$?; kill $httpd 2>/dev/null; (exit $st); cell_teardown' EXIT
for _ in $(seq 1 50); do curl -sf -o /dev/null "http://127.0.0.1:$port/app.tar" && break; sleep 0.1; done
mk() { printf 'memory: 100M\ncpu: 10%%\ndisk: 100M\nimage: http://127.0.0.1:%s/app.tar?sha256=%s\nservices:\n- name: web\n  command: exec sleep 86%s\n  restart:\n    limit: 0\n    interval: 60\n' "$port" "$1" "$$" >"$R/$2.yml"; }
mk "$sum" img
mk "$(printf '%064d' 7)" badimg
img=$("$T" run nobody.ctimg -m "$R/img.yml") || fail "run image"
bad=$("$T" run nobody.ctbad -m "$R/badimg.yml") || fail "run bad image"
wait_for 60 has_event "$img" service_running || notok "tar image instance runs"
assert "the tar image's files are in the container" test "$("$T" exec "$img" -- cat /opt/app/hello.txt 2>&1)" = "hello from the image"
wait_for 90 sh -c "'$T' trace --json '$bad' | grep -q '\"type\":\"aborted\"'" || notok "bad image instance finishes"
assert "a wrong sha256 is traced as aborted image" sh -c "'$T' trace --json '$bad' | grep '\"type\":\"aborted\"' | grep -q '\"data\":\"image\"'"
kill $httpd; wait $httpd 2>/dev/null
trap cell_teardown EXIT
"$T" stop "$img" >/dev/null

"$T" stop "$inst" >/dev/null || fail "treadle stop"
wait_for 30 sh -c "! test -e '$dir'" || note "(container dir still there after 30 s)"
wait_for 30 sh -c "! losetup -a | grep -qF '$unique'"
assert "no loop device left after stop" sh -c "! losetup -a | grep -qF '$unique'"
assert "no cgroup left after stop" test ! -e "/sys/fs/cgroup/memory/$CG/apps/$unique"
assert "no volume image left" test ! -e "$R/node/volumes/$unique.img"
done_testing
