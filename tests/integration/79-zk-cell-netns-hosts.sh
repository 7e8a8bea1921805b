#!/bin/bash
# A ZooKeeper cell over test hosts that are network namespaces (tests/lib/nethosts.sh): a bridge in a
# namespace of its own, ZooKeeper on the bridge's address, a master host and three node hosts, each with its
# own address, hostname, /etc/hosts, cell root and cgroup root. Proves the harness with what works today
# (shared_network apps): every host's server registers; each host resolves every other's name to its test
# address; an app's endpoint found with `treadle show endpoints` is reached from another host's namespace
# by the host:port printed (and from its own host by its name, and from no other host's address), and the
# server sees the client host's address; a client app on one host reaching listeners on the other hosts by
# name is seen with its host's address; everything is torn down (cells, ZooKeeper, namespaces, hosts files)
# with nothing left. All traffic stays inside the test's namespaces. Skips (TAP # SKIP) without root, s6,
# java/ZooKeeper, or when network namespaces cannot be made.
set -u
SRC=${TREADLE_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${TREADLE_BIN:-$SRC/build/treadle}
if [ -r "$SRC/tests/lib/tap.sh" ]; then
	# shellcheck source=../lib/tap.sh
	. "$SRC/tests/lib/tap.sh"
else
	TAPN=0 FAILS=0
	ok() { TAPN=$((TAPN + 1)); echo "ok $TAPN - $*"; }
	notok() { TAPN=$((TAPN + 1)); FAILS=$((FAILS + 1)); echo "not ok $TAPN - $*"; }
	assert() { local d=$1; shift; if "$@"; then ok "$d"; else notok "$d"; fi; }
	done_testing() { echo "1..$TAPN"; [ "$FAILS" -eq 0 ]; }
fi
not() { ! "$@" 2>/dev/null; }
skip_all() { echo "ok 1 # SKIP $*"; echo "1..1"; exit 0; }
[ "$(id -u)" = 0 ] || skip_all "needs root (network namespaces, containers, cgroups)"
command -v s6-svscan >/dev/null || skip_all "s6 not installed"
[ -e /dev/loop-control ] || skip_all "no /dev/loop-control"
id nobody >/dev/null 2>&1 || skip_all "no user nobody"
command -v python3 >/dev/null || skip_all "python3 needed for the listeners"
# shellcheck source=../lib/zk.sh
. "$SRC/tests/lib/zk.sh"
zk_available || skip_all "java or /usr/share/java/zookeeper.jar missing"
# shellcheck source=../lib/nethosts.sh
. "$SRC/tests/lib/nethosts.sh"
nh_require || skip_all "$NH_SKIP_REASON"

nh_test_begin # note, wait_for; tears the hosts down at exit (dumps them first on a failure)

NODES="h1 h2 h3"
nh_init || { notok "bridge namespace"; exit 1; }
note "test hosts under $NH_DIR, tag $NH_TAG, subnet $NH_SUBNET.0/24"
nh_zk_start || { notok "ZooKeeper on the bridge address"; exit 1; }
for h in m $NODES; do nh_host_add "$h" || { notok "host $h"; exit 1; }; done
export TREADLE_STORE=$NH_STORE
ok "bridge, ZooKeeper on $ZK_HOSTS, hosts m $NODES"

names_resolve() { # every host resolves every name to its address, and its own hostname is its name
	local h o
	for h in "${NH_HOSTS[@]}"; do
		[ "$(nh_exec "$h" hostname)" = "${NH_HOSTNAME[$h]}" ] || return 1
		for o in "${NH_HOSTS[@]}"; do
			[ "$(nh_exec "$h" getent ahostsv4 "${NH_HOSTNAME[$o]}" | awk 'NR == 1 {print $1}')" = "${NH_ADDR[$o]}" ] || return 1
		done
	done
}
assert "each host has its hostname and resolves every host's name to its test address" names_resolve
assert "the machine's /etc/hosts is untouched" sh -c "! grep -q '$NH_TAG' /etc/hosts"

note "cells: a master on m, a node on each of $NODES"
nh_cell_up m master >"$NH_DIR/m/up.out" 2>&1 || { notok "cell up on m (master)"; cat "$NH_DIR/m/up.out"; }
pids=()
for h in $NODES; do
	nh_cell_up "$h" node >"$NH_DIR/$h/up.out" 2>&1 &
	pids+=($!)
done
i=0
for h in $NODES; do
	wait "${pids[$i]}" || { notok "cell up on $h"; cat "$NH_DIR/$h/up.out"; }
	i=$((i + 1))
done
# shellcheck disable=SC2086
assert "every host's server is present in the cell" nh_wait_servers 30 $NODES
nh_exec h1 "$BIN" cell status --root "${NH_ROOT[h1]}" >"$NH_DIR/status" 2>&1
assert "cell status on h1 shows the leading master (m)" grep -q "leader *${NH_HOSTNAME[m]}\." "$NH_DIR/status"

note "a web app (shared_network) with an endpoint"
cat >"$NH_DIR/web.yml" <<'EOF'
memory: 100M
cpu: 10%
disk: 100M
shared_network: true
endpoints:
  - name: http
    port: 0
services:
  - name: web
    command: exec python3 -m http.server "$TREADMILL_ENDPOINT_HTTP" --bind 0.0.0.0
    restart:
      limit: 3
EOF
web=$(nh_exec m "$BIN" run nobody.nhweb -m "$NH_DIR/web.yml") || notok "treadle run nobody.nhweb"
endpoint() { nh_exec m "$BIN" show endpoints nobody.nhweb | awk '$3 == "http" {print $4}'; }
has_endpoint() { [ -n "$(endpoint)" ]; }
assert "show endpoints lists the web app's endpoint" wait_for 40 has_endpoint
ep=$(endpoint)
ehost=${ep%:*} eport=${ep##*:}
S='' C='' O=''
for h in $NODES; do [ "${NH_HOSTNAME[$h]}" = "$ehost" ] && S=$h; done
for h in $NODES; do [ "$h" != "$S" ] && { if [ -z "$C" ]; then C=$h; else O=$h; fi; }; done
note "endpoint $ep: server host ${S:-?}, client host $C"
assert "the endpoint names a test host ($ep)" [ -n "$S" ]
[ -n "$S" ] || exit 1

get() { # HOST URL: one HTTP GET from that host's namespace
	nh_exec "$1" python3 -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2).read()" "$2"
}
assert "host $C reaches the endpoint by the host:port printed" wait_for 20 get "$C" "http://$ep/"
assert "host $S reaches its own endpoint by its name" get "$S" "http://$ep/"
assert "nothing answers on that port at host $O's address" not get "$O" "http://${NH_ADDR[$O]}:$eport/"
saw_client() { nh_exec "$S" "$BIN" logs --root "${NH_ROOT[$S]}" "$web/web" | grep -q "^.*${NH_ADDR[$C]} - - .*GET / "; }
assert "the web server saw host $C's address (${NH_ADDR[$C]}) as the client" wait_for 10 saw_client

note "a client app: connects to a listener on every host by name"
cat >"$NH_DIR/listen.py" <<'EOF'
import socket, sys
addr, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, port))
s.listen(16)
open(out + ".ready", "w").close()
while True:
    c, peer = s.accept()
    with open(out, "a") as f:
        f.write(peer[0] + "\n")
    c.sendall(("hello from " + socket.gethostname() + "\n").encode())
    c.close()
EOF
for h in $NODES; do
	nh_bg "$h" python3 "$NH_DIR/listen.py" "${NH_ADDR[$h]}" 7979 "$NH_DIR/$h/peers"
done
assert "listeners up on every node host" wait_for 10 sh -c "ls $NH_DIR/h1/peers.ready $NH_DIR/h2/peers.ready $NH_DIR/h3/peers.ready"
targets=""
for h in $NODES; do targets="$targets ${NH_HOSTNAME[$h]}"; done
cat >"$NH_DIR/client.yml" <<EOF
memory: 100M
cpu: 10%
disk: 100M
shared_network: true
services:
  - name: client
    command: |
      for t in$targets; do
        until python3 -c 'import socket, sys; s = socket.create_connection((sys.argv[1], 7979), 2); print(sys.argv[1], "->", s.recv(100).decode().strip())' \$t; do sleep 0.5; done
      done
      exec sleep 100000
    restart:
      limit: 0
EOF
client=$(nh_exec m "$BIN" run nobody.nhclient -m "$NH_DIR/client.yml") || notok "treadle run nobody.nhclient"
placed_on() { # INSTANCE: the test host it is placed on
	local h
	for h in $NODES; do
		nh_exec m "$BIN" store ls "/placement/${NH_HOSTNAME[$h]}" 2>/dev/null | grep -qxF "$1" && { echo "$h"; return 0; }
	done
	return 1
}
assert "the client app is placed" wait_for 30 placed_on "$client"
CH=$(placed_on "$client")
note "client app on ${CH:-?}"
all_peers() { [ -s "$NH_DIR/h1/peers" ] && [ -s "$NH_DIR/h2/peers" ] && [ -s "$NH_DIR/h3/peers" ]; }
assert "the client app reached the listener of every host by name" wait_for 40 all_peers
for h in $NODES; do
	[ "$h" = "$CH" ] && continue
	assert "the listener on $h saw the client's host address (${NH_ADDR[$CH]})" \
		[ "$(sort -u "$NH_DIR/$h/peers")" = "${NH_ADDR[$CH]}" ]
done
answered() { # every listener answered the client app with its own hostname
	local l t
	l=$(nh_exec "$CH" "$BIN" logs --root "${NH_ROOT[$CH]}" "$client/client")
	for t in $targets; do grep -q "$t -> hello from $t\$" <<<"$l" || return 1; done
}
assert "the listeners answered with their hostnames" wait_for 10 answered

note "teardown"
t0=$(date +%s)
trap - EXIT
out=$(mktemp /tmp/treadle-nh-down.XXXXXX)
nh_teardown >"$out" 2>&1
rc=$?
sed 's/^/# /' "$out"
rm -f "$out"
assert "teardown: cells down, ZooKeeper stopped, namespaces and hosts files gone, nothing left ($(($(date +%s) - t0)) s)" [ "$rc" = 0 ]
assert "no namespace of the test is left" sh -c "! ip netns list | grep -q '^$NH_TAG-'"
assert "no hosts file of the test is left" sh -c "! ls -d /etc/netns/$NH_TAG-* 2>/dev/null | grep -q ."
note "total $(($(date +%s) - NH_START)) s"
done_testing
