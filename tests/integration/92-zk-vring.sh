#!/bin/bash
# The vring (treadmill-architecture.md §6.3, docs/NETWORK.md "vring") on test hosts in network namespaces
# (tests/lib/nethosts.sh): a master on m, nodes on h1, h2, h3, each with its own container network.
# - bad vring input is refused at `treadle run` with the field path, exit 100: a rule naming an endpoint the
#   app does not have, a cell not listed;
# - three server apps (private network, well-known ports 7001-7003, at most two per server) on h2 and h3;
#   a client app on h1 with the rule `nobody.nhsrv*` [ring] reaches each at <its host address>:<its
#   well-known port>, and its own endpoint at h1's address (reflective); h1's nft map vring_dnat holds
#   exactly those mappings, keyed by the client's VIP, and data/vring.json records them;
# - one server stopped and another started: the client no longer reaches the first, reaches the new one;
# - the node agent SIGKILLed: the mappings are still there after its restart (rebuilt from the record);
# - the client stopped: its mappings are gone from the map.
# All traffic stays inside the test's namespaces. Skips without root, s6, java/ZooKeeper, netns or nft.
set -u
SRC=${TREADLE_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${TREADLE_BIN:-$SRC/build/treadle}
# shellcheck source=../lib/tap.sh
. "$SRC/tests/lib/tap.sh"
not() { ! "$@" 2>/dev/null; }
skip_all() { echo "ok 1 # SKIP $*"; echo "1..1"; exit 0; }
[ "$(id -u)" = 0 ] || skip_all "needs root (network namespaces, containers, cgroups)"
command -v s6-svscan >/dev/null || skip_all "s6 not installed"
command -v nft >/dev/null || skip_all "nft not installed (used to look at the tables)"
[ -e /dev/loop-control ] || skip_all "no /dev/loop-control"
id nobody >/dev/null 2>&1 || skip_all "no user nobody"
command -v python3 >/dev/null || skip_all "python3 needed for the listeners"
# shellcheck source=../lib/zk.sh
. "$SRC/tests/lib/zk.sh"
zk_available || skip_all "java or /usr/share/java/zookeeper.jar missing"
export NH_SUBNET=10.92.0
# shellcheck source=../lib/nethosts.sh
. "$SRC/tests/lib/nethosts.sh"
nh_require || skip_all "$NH_SKIP_REASON"

nh_test_begin # note, wait_for; tears the hosts down at exit (dumps them first on a failure)

NODES="h1 h2 h3"
nh_init || { notok "bridge namespace"; exit 1; }
note "test hosts under $NH_DIR, tag $NH_TAG"
nh_zk_start || { notok "ZooKeeper on the bridge address"; exit 1; }
for h in m $NODES; do nh_host_add "$h" || { notok "host $h"; exit 1; }; done
export TREADLE_STORE=$NH_STORE
# the cell's name as `treadle run` knows it (with TREADLE_STORE set it only names the cell)
export TREADMILL_CELL=nhring
T() { nh_exec m "$BIN" "$@"; }

note "bad input, refused at treadle run"
cat >"$NH_DIR/bad-ep.yml" <<'EOF'
memory: 100M
cpu: 10%
disk: 100M
endpoints:
  - name: ring
    port: 7000
vring:
  cells: [nhring]
  rules:
    - pattern: nobody.nhsrv*
      endpoints: [ring, nope]
services:
  - name: c
    command: exec sleep 1000
    restart:
      limit: 0
EOF
sed 's/cells: \[nhring\]/cells: [othercell]/; s/, nope//' "$NH_DIR/bad-ep.yml" >"$NH_DIR/bad-cell.yml"
"$BIN" run nobody.nhbad -m "$NH_DIR/bad-ep.yml" >"$NH_DIR/bad1.out" 2>&1
rc=$?
assert "a rule naming a missing endpoint: exit 100 ($rc)" [ "$rc" = 100 ]
assert "... naming the field: vring.rules[0].endpoints[1]" grep -q "vring.rules\[0\].endpoints\[1\]: 'nope' is not one of the app's endpoints" "$NH_DIR/bad1.out"
"$BIN" run nobody.nhbad -m "$NH_DIR/bad-cell.yml" >"$NH_DIR/bad2.out" 2>&1
rc=$?
assert "a vring whose cells do not list this cell: exit 100 ($rc)" [ "$rc" = 100 ]
assert "... naming the field: vring.cells" grep -q "vring.cells: must list this cell 'nhring'" "$NH_DIR/bad2.out"
# asked from a test host: the store is in the test's namespaces (from the machine itself a sanitizer build's
# ZooKeeper client waits on the unreachable address instead of failing)
bad_scheduled() { T store ls /scheduled 2>/dev/null | grep -q nhbad; }
assert "nothing was scheduled" not bad_scheduled

note "cells: a master on m, nodes on $NODES"
nh_cell_up m master >"$NH_DIR/m/up.out" 2>&1 || { notok "cell up on m"; cat "$NH_DIR/m/up.out"; }
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
assert "every node host's server is present" nh_wait_servers 30 $NODES
net_field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['network'][sys.argv[2]])" "${NH_ROOT[$1]}/node/node.json" "$2"; }
TB1=$(net_field h1 table)

# a server: replies its name on its well-known port
server_yml() { # NAME PORT
	cat <<EOF
memory: 100M
cpu: 10%
disk: 100M
affinity: nobody.nhring
affinity_limits:
  server: 2
endpoints:
  - name: ring
    port: $2
services:
  - name: srv
    command: |
      exec python3 -c 'import socket, sys
      s = socket.socket()
      s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
      s.bind(("0.0.0.0", int(sys.argv[1])))
      s.listen(16)
      while True:
          c, _ = s.accept()
          c.sendall((sys.argv[2] + "\n").encode())
          c.close()' $2 $1
    restart:
      limit: 3
EOF
}
placed_on() { # INSTANCE: the test host it is placed on
	local h
	for h in $NODES; do
		T store ls "/placement/${NH_HOSTNAME[$h]}" 2>/dev/null | grep -qxF "$1" && { echo "$h"; return 0; }
	done
	return 1
}
declare -A SRV PORT HOST
run_server() { # NAME PORT
	server_yml "$1" "$2" >"$NH_DIR/$1.yml"
	SRV[$1]=$(T run "nobody.nhsrv-$1" -m "$NH_DIR/$1.yml") || { notok "treadle run nobody.nhsrv-$1"; return 1; }
	PORT[$1]=$2
}
endpoint_of() { T show endpoints "nobody.nhsrv-$1" | awk '$3 == "ring" {print $4}'; }
has_endpoint() { [ -n "$(endpoint_of "$1")" ]; }

note "three servers on h2 and h3 (h1 takes no new apps meanwhile)"
T admin server freeze "${NH_HOSTNAME[h1]}" >/dev/null || notok "freeze h1"
run_server a 7001 && run_server b 7002 && run_server c 7003
for s in a b c; do
	assert "server $s has its endpoint" wait_for 60 has_endpoint "$s"
	HOST[$s]=$(placed_on "${SRV[$s]}")
done
note "servers: a on ${HOST[a]:-?}, b on ${HOST[b]:-?}, c on ${HOST[c]:-?}"
assert "the servers are on h2 and h3, both used" sh -c "printf '%s\n' ${HOST[a]:-x} ${HOST[b]:-x} ${HOST[c]:-x} | sort -u | tr '\n' ' ' | grep -qx 'h2 h3 '"

note "the client on h1"
T admin server up "${NH_HOSTNAME[h1]}" >/dev/null || notok "up h1"
T admin server freeze "${NH_HOSTNAME[h2]}" >/dev/null || notok "freeze h2"
T admin server freeze "${NH_HOSTNAME[h3]}" >/dev/null || notok "freeze h3"
cat >"$NH_DIR/client.yml" <<'EOF'
memory: 100M
cpu: 10%
disk: 100M
endpoints:
  - name: ring
    port: 7000
vring:
  cells: [nhring]
  rules:
    - pattern: nobody.nhsrv*
      endpoints: [ring]
services:
  - name: self
    command: |
      exec python3 -c 'import socket
      s = socket.socket()
      s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
      s.bind(("0.0.0.0", 7000))
      s.listen(16)
      while True:
          c, _ = s.accept()
          c.sendall(b"client\n")
          c.close()'
    restart:
      limit: 3
EOF
client=$(T run nobody.nhclient -m "$NH_DIR/client.yml") || notok "treadle run nobody.nhclient"
wait_for 30 placed_on "$client"
CH=$(placed_on "$client")
assert "the client is on h1 (${CH:-none})" [ "${CH:-}" = h1 ]
[ "${CH:-}" = h1 ] || exit 1

# ADDR PORT: what the client reads from ADDR:PORT, from inside its container
probe() {
	nh_exec h1 "$BIN" exec --root "${NH_ROOT[h1]}" "$client" -- python3 -c \
		'import socket, sys; s = socket.create_connection((sys.argv[1], int(sys.argv[2])), 2); print(s.recv(100).decode().strip())' \
		"$1" "$2" 2>/dev/null
}
reaches() { [ "$(probe "${NH_ADDR[${HOST[$1]}]}" "${PORT[$1]}")" = "$1" ]; }
for s in a b c; do
	assert "the client reaches server $s at ${NH_ADDR[${HOST[$s]:-h2}]}:${PORT[$s]} (well-known port)" wait_for 40 reaches "$s"
done
self() { [ "$(probe "${NH_ADDR[h1]}" 7000)" = client ]; }
assert "the client reaches its own endpoint at h1's address:7000 (reflective)" wait_for 10 self

cdir=$(ls -d "${NH_ROOT[h1]}"/node/apps/nobody.nhclient-* | head -1)
vip=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['vip'])" "$cdir/data/network.json")
# protocols by name whether or not /etc/protocols names them (a minimal root prints 6 for tcp)
vmap() { ip netns exec "${NH_NS[h1]}" nft list map ip "$TB1" vring_dnat | sed -E 's/\. 6 \./. tcp ./g; s/\. 17 \./. udp ./g'; }
has_elem() { vmap | tr -d '\n\t' | grep -q "$1"; }
real_of() { endpoint_of "$1" | sed 's/.*://'; }
assert "h1's map vring_dnat: the reflective element ($vip . ${NH_ADDR[h1]} . tcp . 7000 : $vip . 7000)" \
	has_elem "$vip . ${NH_ADDR[h1]} . tcp . 7000 : $vip . 7000"
for s in a b c; do
	assert "... server $s's element (-> ${NH_ADDR[${HOST[$s]:-h2}]} . its real port)" \
		has_elem "$vip . ${NH_ADDR[${HOST[$s]:-h2}]} . tcp . ${PORT[$s]} : ${NH_ADDR[${HOST[$s]:-h2}]} . $(real_of "$s")"
done
nelem() { # elements keyed by the client's VIP
	ip netns exec "${NH_NS[h1]}" nft -j list map ip "$TB1" vring_dnat |
		python3 -c "import json,sys; m = [x['map'] for x in json.load(sys.stdin)['nftables'] if 'map' in x][0]; print(sum(1 for e in m.get('elem', []) if e[0]['concat'][0] == sys.argv[1]))" "$vip"
}
assert "... and nothing else (4 elements: $(nelem))" [ "$(nelem)" = 4 ]
assert "data/vring.json records the 4 mappings" \
	python3 -c "import json,sys; r = json.load(open(sys.argv[1])); assert r['vip'] == sys.argv[2] and len(r['maps']) == 4" "$cdir/data/vring.json" "$vip"

note "server a stopped, server d started"
T admin server up "${NH_HOSTNAME[h2]}" >/dev/null && T admin server up "${NH_HOSTNAME[h3]}" >/dev/null || notok "up h2 h3"
T admin server freeze "${NH_HOSTNAME[h1]}" >/dev/null || notok "freeze h1"
t0=$(date +%s.%N)
T stop "${SRV[a]}" >/dev/null || notok "treadle stop ${SRV[a]}"
gone_a() { not has_elem "$vip . ${NH_ADDR[${HOST[a]:-h2}]} . tcp . 7001 "; }
assert "server a's element leaves h1's map" wait_for 30 gone_a
note "server a's mapping gone $(python3 -c "import sys; print('%.1f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$t0" "$(date +%s.%N)") s after its stop"
assert "the client no longer reaches anything at ${NH_ADDR[${HOST[a]:-h2}]}:7001" not reaches a
run_server d 7004
assert "server d has its endpoint" wait_for 60 has_endpoint d
HOST[d]=$(placed_on "${SRV[d]}")
note "server d on ${HOST[d]:-?}"
assert "the client reaches server d at ${NH_ADDR[${HOST[d]:-h2}]}:7004" wait_for 30 reaches d
for s in b c; do assert "... and still server $s" reaches "$s"; done

note "the node agent on h1 SIGKILLed: its restart rebuilds the table from the records"
nh_exec h1 s6-svc -k "${NH_ROOT[h1]}/svc/node" || notok "s6-svc -k the node agent"
sleep 2
for s in b c d; do assert "after the agent's restart the client reaches server $s" wait_for 30 reaches "$s"; done
four() { [ "$(nelem)" = 4 ]; }
assert "... with 4 elements in the map" wait_for 10 four

note "the client stopped: its mappings go with it"
T stop "$client" >/dev/null || notok "treadle stop $client"
no_elems() { [ "$(nelem)" = 0 ]; }
assert "no element of $vip is left in h1's map" wait_for 60 no_elems

note "teardown"
trap - EXIT
out=$(mktemp /tmp/treadle-nh-down.XXXXXX)
nh_teardown >"$out" 2>&1
rc=$?
sed 's/^/# /' "$out"
rm -f "$out"
assert "teardown: nothing left" [ "$rc" = 0 ]
note "total $(($(date +%s) - NH_START)) s"
done_testing
