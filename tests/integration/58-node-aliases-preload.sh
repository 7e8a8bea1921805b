#!/bin/bash
# Host aliases and the bind preload (docs/CONTAINER.md "Host aliases", "Bind preload") on a single-machine
# cell with the container network (as test 69).  The test runs in a mount namespace of its own where the
# host's /etc/hosts has three test names (.invalid: nothing leaves the machine) and the host's
# /etc/ld.so.preload lists the host's libm (a library that does not define bind); the cell runs inside it, so these are "the host's" files.
# - an alias created inside the container (/run/host-aliases/web-db -> alpha...) resolves inside it, from
#   the host's resolution, and follows a change of its target; a name that does not resolve yet is retried
#   and appears once the host resolves it;
# - a program that binds port 0 (TCP and UDP) gets one of the container's reserved ephemeral ports; a bind
#   to an explicit port or to loopback is left alone;
# - the container's /etc/ld.so.preload keeps the host's entries and adds the library.
if [ -z "${TREADLE_IT58_NS:-}" ]; then
	[ "$(id -u)" = 0 ] || { echo "needs root"; exit 77; }
	command -v unshare >/dev/null || { echo "unshare needed"; exit 77; }
	# the file the node would create anyway (empty: preloads nothing), so it can be covered here
	[ -e /etc/ld.so.preload ] || : >>/etc/ld.so.preload
	exec env TREADLE_IT58_NS=1 unshare -m --propagation private "$0" "$@"
fi
. "$(dirname "$0")/../lib/cell.sh"
cell_require
command -v python3 >/dev/null || skip "python3 needed"
command -v getent >/dev/null || skip "getent needed"
HOSTLIB=$(ldconfig -p 2>/dev/null | awk '/libm.so.6 \(/ {print $NF; exit}')
[ -f "$HOSTLIB" ] || skip "no libm.so.6 in ldconfig -p"
ETC=$(mktemp -d /tmp/treadle-it58.XXXXXX)
cp /etc/hosts "$ETC/hosts"
printf '10.250.7.1\talpha.treadle-test.invalid alpha\n10.250.7.2\tbeta.treadle-test.invalid beta\n' >>"$ETC/hosts"
cat /etc/ld.so.preload >"$ETC/ld.so.preload"
echo "$HOSTLIB" >>"$ETC/ld.so.preload"
mount --bind "$ETC/hosts" /etc/hosts && mount --bind "$ETC/ld.so.preload" /etc/ld.so.preload ||
	skip "cannot bind test files over /etc in a private mount namespace"
# the ASan runtime of a sanitizer build must not insist on coming first (the host's preload names libm)
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0
cleanup58() { rm -rf "$ETC"; }
cell_setup
trap 'rc=$?; cleanup58; (exit $rc); cell_teardown' EXIT
python3 -c "import json,sys; assert json.load(open(sys.argv[1])).get('network')" "$R/node/node.json" 2>/dev/null ||
	skip "the node has no container network here (no default route?)"
[ -f "$(dirname "$T")/lib/treadle-bind.so" ] || fail "no $(dirname "$T")/lib/treadle-bind.so (make all builds it)"

cat >"$R/app.yml" <<'EOF2'
memory: 100M
cpu: 10%
disk: 100M
ephemeral_ports: {tcp: 2, udp: 1}
services:
  - name: main
    command: exec sleep 1000
    restart: {limit: 3}
EOF2
inst=$("$T" run nobody.italias -m "$R/app.yml") || fail "treadle run"
wait_for 60 sh -c "ls $R/node/apps/nobody.italias-*/data/container.json" || fail "the container did not start"
cdir=$(ls -d "$R"/node/apps/nobody.italias-* | head -1)
inside() { "$T" exec "$inst" -- "$@"; }
wait_for 30 inside true || fail "treadle exec does not work"

note "the container's /etc/ld.so.preload: the host's entries, then the library"
pre=$(inside cat /etc/ld.so.preload) || fail "cat /etc/ld.so.preload inside"
[ "$(echo "$pre" | head -1)" = "$HOSTLIB" ] || fail "the host's entry $HOSTLIB is not kept first: $pre"
echo "$pre" | grep -qx /run/tm_bin/treadle-bind.so || fail "no treadle-bind.so in the container's preload: $pre"
inside test -r /run/tm_bin/treadle-bind.so || fail "the library is not in the container"

note "bind to port 0 takes a reserved ephemeral port (TCP and UDP); other binds are left alone"
eph() { python3 -c "import json,sys; print(' '.join(map(str, json.load(open(sys.argv[1]))['ephemeral_ports'][sys.argv[2]])))" "$cdir/data/app.json" "$1"; }
tcp=$(eph tcp) udp=$(eph udp)
[ -n "$tcp" ] && [ -n "$udp" ] || fail "no ephemeral ports in app.json"
out=$(inside python3 -c '
import socket
t = socket.socket(); t.bind(("", 0))
t2 = socket.socket(); t2.bind(("0.0.0.0", 0))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("", 0))
try:
    t3 = socket.socket(); t3.bind(("", 0)); third = t3.getsockname()[1]
except OSError as e:
    third = "errno%d" % e.errno
x = socket.socket(); x.bind(("", 5555))
l = socket.socket(); l.bind(("127.0.0.1", 0))
print(t.getsockname()[1], t2.getsockname()[1], u.getsockname()[1], third, x.getsockname()[1], l.getsockname()[1])
') || fail "the bind program failed inside: $out"
read -r p1 p2 pu p3 px pl <<<"$out"
note "reserved tcp [$tcp] udp [$udp]; bound: tcp $p1 $p2, udp $pu, third tcp $p3, explicit $px, loopback $pl"
for p in $p1 $p2; do [[ " $tcp " == *" $p "* ]] || fail "TCP bind to port 0 got $p, not one of $tcp"; done
[ "$p1" != "$p2" ] || fail "two TCP sockets got the same port $p1"
[[ " $udp " == *" $pu "* ]] || fail "UDP bind to port 0 got $pu, not one of $udp"
[ "$p3" = errno99 ] || fail "a third TCP bind with 2 reserved ports got '$p3', expected EADDRNOTAVAIL"
[ "$px" = 5555 ] || fail "explicit bind to 5555 got $px"
[[ " $tcp " == *" $pl "* ]] && fail "a loopback bind to port 0 took a reserved port $pl"

note "host aliases: created inside, resolved on the host, followed"
inside ln -s alpha.treadle-test.invalid /run/host-aliases/web-db || fail "creating the alias inside"
res() { inside getent hosts "$1"; }
wait_for 20 sh -c "'$T' exec '$inst' -- getent hosts web-db | grep -q '^10.250.7.1 .*web-db'" ||
	fail "web-db does not resolve to 10.250.7.1 inside ($(res web-db); hosts: $(inside tail -3 /etc/hosts))"
note "web-db: $(res web-db)"
inside ln -sfn beta.treadle-test.invalid /run/host-aliases/web-db || fail "changing the alias"
wait_for 20 sh -c "'$T' exec '$inst' -- getent hosts web-db | grep -q '^10.250.7.2 .*web-db'" ||
	fail "web-db did not follow its change to beta ($(res web-db))"
note "web-db changed: $(res web-db)"
inside ln -s gamma.treadle-test.invalid /run/host-aliases/later || fail "creating a second alias"
sleep 1
res later && fail "'later' resolves before its target does"
printf '10.250.7.3\tgamma.treadle-test.invalid gamma\n' >>"$ETC/hosts"
wait_for 25 sh -c "'$T' exec '$inst' -- getent hosts later | grep -q '^10.250.7.3 .*later'" ||
	fail "'later' did not resolve once the host resolved its target ($(inside tail -3 /etc/hosts))"
res web-db | grep -q '^10.250.7.2' || fail "web-db lost"
note "later (retried): $(res later)"
echo ok
