#!/bin/bash
# Container escapes (issue 9, items 1 and 2), each probe asserting the refusal:
# - a tar image whose opt, var/tmp, var/log are absolute symlinks to host dirs
#   leaves those dirs untouched (mode, contents); a bind whose mount point is
#   under such a symlink (/mnt) creates nothing on the host; images with a device node or
#   a hard link through a planted symlink are refused;
# - as the proid and as a root service: mknod on /services, /dev, /tmp fails,
#   /dev/kmsg and /dev/loop-control are absent, a kmsg node planted from the host
#   in the container's /dev (device cgroup) or in /services (nodev + cgroup)
#   cannot be opened, /etc/shadow, /etc/gshadow and host ssh keys show nothing,
#   the host's /root is not there, CAP_MKNOD is in no set, every mount but /dev
#   is nodev; the same through `treadle exec --as-root`.
. "$(dirname "$0")/../lib/container.sh"
command -v python3 >/dev/null || { echo "skip: python3 needed to build the test images"; exit 77; }
NOBODY=$(id -u nobody)
CAP_MKNOD=27
EXEC_AS="/run/tm_bin/treadle container exec-as --envdir /env"

# ---- item 1: tar images with symlinks pointing at host paths
mkdir -p "$T/victim-opt" "$T/victim-vartmp" "$T/victim-log" "$T/img1/var" "$T/img2"
echo keep >"$T/victim-opt/marker"
chmod 0750 "$T/victim-opt"; chmod 0700 "$T/victim-vartmp"; chmod 0755 "$T/victim-log"
ln -s "$T/victim-opt" "$T/img1/opt"
ln -s "$T/victim-vartmp" "$T/img1/var/tmp"
ln -s "$T/victim-log" "$T/img1/var/log"
tar -C "$T/img1" -cf "$T/img1.tar" .
mkdir -p "$T/victim-mnt"
ln -s "$T/victim-mnt" "$T/img2/mnt"
tar -C "$T/img2" -cf "$T/img2.tar" .
before=$(stat -c '%a %U' "$T/victim-opt" "$T/victim-vartmp" "$T/victim-log"; ls -A "$T/victim-opt" "$T/victim-vartmp" "$T/victim-log")

service S1 s "$EXEC_AS --root -- sh -c 'ls -ld /opt /var/tmp /var/log; touch /opt/x /var/tmp/x' >/run/tm_ctl/S1.out 2>&1; exec sleep 100000"
if start S1 --proid nobody --disk 16M --image "file://$T/img1.tar"; then ok "image with opt, var/tmp, var/log -> host dirs starts"
else notok "image with opt, var/tmp, var/log -> host dirs starts"; cat "$T/apps/S1/data/aborted"; fi
wait_file "$T/ctl/S1.out" 5; sleep 0.2
after=$(stat -c '%a %U' "$T/victim-opt" "$T/victim-vartmp" "$T/victim-log"; ls -A "$T/victim-opt" "$T/victim-vartmp" "$T/victim-log")
assert "host dirs behind the image's symlinks unchanged (mode, owner, contents)" test "$before" = "$after"
assert "victim-opt still 750" test "$(stat -c %a "$T/victim-opt")" = 750
assert "nothing written through them by a root service" test ! -e "$T/victim-opt/x" -a ! -e "$T/victim-vartmp/x"

service S2 s 'exec sleep 100000'
start S2 --proid nobody --image "file://$T/img2.tar" --bind "$T/ctl:/mnt/sub"
assert "image whose mnt -> a host dir, bind on /mnt/sub: nothing created on the host" \
	test -z "$(ls -A "$T/victim-mnt")"
[ -e "$T/apps/S2/data/aborted" ] && echo "# S2: $(cat "$T/apps/S2/data/aborted")"

python3 - "$T" <<'EOF'
import io, sys, tarfile
t = sys.argv[1]
with tarfile.open(t + "/dev.tar", "w") as tf:
    d = tarfile.TarInfo("kmsg"); d.type = tarfile.CHRTYPE; d.devmajor, d.devminor = 1, 11; d.mode = 0o666
    tf.addfile(d)
with tarfile.open(t + "/hardlink.tar", "w") as tf:
    s = tarfile.TarInfo("link"); s.type = tarfile.SYMTYPE; s.linkname = "/etc"; tf.addfile(s)
    h = tarfile.TarInfo("stolen"); h.type = tarfile.LNKTYPE; h.linkname = "link/hostname"; tf.addfile(h)
EOF
service S3 s 'exec sleep 100000'
start S3 --proid nobody --image "file://$T/dev.tar"
assert "an image with a device node is refused (why=image)" grep -q '"why":"image"' "$T/apps/S3/data/aborted"
assert "the message names the member" grep -q 'kmsg' "$T/apps/S3/data/aborted"
service S4 s 'exec sleep 100000'
start S4 --proid nobody --image "file://$T/hardlink.tar"
assert "a hard link through a planted symlink is refused (why=image)" grep -q '"why":"image"' "$T/apps/S4/data/aborted"
assert "no host file linked into the image cache" test -z "$(find "$NODE/images" -name stolen 2>/dev/null)"

# ---- item 2: devices, CAP_MKNOD, host secrets, as the proid and as root
hostroot=$(ls -A /root 2>/dev/null | head -1)
CHECKS="--no-mknod /services/n --no-mknod /dev/n --no-mknod /tmp/n --no-mknod /run/n --no-open /dev/kmsg \
 --no-open /dev/loop-control --can-open /dev/null --can-open /dev/urandom --empty /etc/shadow --empty /etc/gshadow \
 --no-cap $CAP_MKNOD --nodev ${hostroot:+--absent /root/$hostroot}"
for k in /etc/ssh/ssh_host_*; do case $k in *.pub|*'*'*) ;; *) CHECKS="$CHECKS --empty $k" ;; esac; done
PLANTED="--no-open /dev/kmsg-planted --no-open /services/kmsg-planted"
WAIT='while [ ! -e /run/tm_ctl/go ]; do sleep 0.05; done'
service E user "$WAIT; $EXEC_AS --user nobody -- /run/probe/probe check --uid $NOBODY $CHECKS $PLANTED >/run/tm_ctl/E.user 2>&1; echo rc=\$? >>/run/tm_ctl/E.user; exec sleep 100000"
service E root "$WAIT; $EXEC_AS --root -- /run/probe/probe check $CHECKS $PLANTED >/run/tm_ctl/E.root 2>&1; echo rc=\$? >>/run/tm_ctl/E.root; exec sleep 100000"
if start E --proid nobody --disk 16M; then ok "E starts"; else notok "E starts"; cat "$T/E.log"; fi
pid1=$(init_pid E)
# device nodes planted from the host (which may): in the container's own /dev
# (only the device cgroup stands in the way) and in /services (nodev too)
mknod "/proc/$pid1/root/dev/kmsg-planted" c 1 11 && chmod 666 "/proc/$pid1/root/dev/kmsg-planted"
mknod "$T/apps/E/data/services/kmsg-planted" c 1 11 && chmod 666 "$T/apps/E/data/services/kmsg-planted"
touch "$T/ctl/go"
wait_file "$T/ctl/E.user" 10; wait_file "$T/ctl/E.root" 10
for _ in $(seq 1 40); do grep -q rc= "$T/ctl/E.user" "$T/ctl/E.root" 2>/dev/null && [ "$(grep -l rc= "$T/ctl/E.user" "$T/ctl/E.root" | wc -l)" = 2 ] && break; sleep 0.1; done
echo "# probe (proid):"; sed 's/^/#   /' "$T/ctl/E.user" 2>/dev/null
echo "# probe (root service):"; sed 's/^/#   /' "$T/ctl/E.root" 2>/dev/null
assert "every escape probe refused for the proid" grep -qx 'rc=0' "$T/ctl/E.user"
assert "every escape probe refused for a root service" grep -qx 'rc=0' "$T/ctl/E.root"
n=$(grep -c '^ok - ' "$T/ctl/E.root" 2>/dev/null)
assert "the root probe ran all its checks ($n)" test "${n:-0}" -ge 20
# the /dev node is on a device-capable mount: only the cgroup refuses it
grep -A1 'ok - /dev/kmsg-planted cannot be opened' "$T/ctl/E.root" | grep -q 'Operation not permitted'
assert "the planted /dev node: refused by the device cgroup (EPERM)" test $? = 0
grep -q 'ok - /services/kmsg-planted cannot be opened' "$T/ctl/E.root"
assert "the planted /services node: refused" test $? = 0

# the cgroups: both groups carry the allowlist, nothing else
want=$(printf 'c 1:3 rw\nc 1:5 rw\nc 1:7 rw\nc 1:8 rw\nc 1:9 rw\nc 5:0 rw\nc 5:2 rw\nc 136:* rw')
for g in services sys; do
	got=$(cat "$(cg_dir devices E)/$g/devices.list" 2>/dev/null)
	assert "devices.list of $g/ is the allowlist" test "$got" = "$want"
done
assert "s6-svscan (pid 1) has no CAP_MKNOD in its bounding set" \
	test $(( 0x$(sed -n 's/^CapBnd:\t//p' /proc/$pid1/status) >> CAP_MKNOD & 1 )) = 0

# treadle exec --as-root goes through exec-as too
out=$("$BIN" exec "$T/apps/E" --as-root -- sh -c 'grep CapBnd /proc/self/status; wc -c </etc/shadow; id -u' 2>&1)
echo "# exec --as-root: $out" | tr '\n' ' '; echo
bnd=$(sed -n 's/^CapBnd:\t//p' <<<"$out")
assert "exec --as-root: root, without CAP_MKNOD" test "$(sed -n 3p <<<"$out")" = 0 -a -n "$bnd" -a $(( 0x${bnd:-1} >> CAP_MKNOD & 1 )) = 0
assert "exec --as-root: /etc/shadow is empty" test "$(sed -n 2p <<<"$out")" = 0
"$BIN" exec "$T/apps/E" --as-root -- mknod /tmp/null c 1 3 2>/dev/null
assert "exec --as-root: mknod fails" test $? -ne 0

stop E; stop S1
assert "host dirs still untouched after stop" test "$before" = "$(stat -c '%a %U' "$T/victim-opt" "$T/victim-vartmp" "$T/victim-log"; ls -A "$T/victim-opt" "$T/victim-vartmp" "$T/victim-log")"
assert "no mount left" test "$(grep -c "$T" /proc/mounts)" = 0
done_testing
