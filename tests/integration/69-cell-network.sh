#!/bin/bash
# The container network on a single-machine cell (docs/NETWORK.md "Use by the node"):
# - examples/web.yml (private network, port 8000) is reached at the host's address and at 127.0.0.1 on the
#   real port `treadle show endpoints` prints (and by the printed name where it resolves here);
# - a second cell whose --network overlaps this one's range is refused by `cell up` with one line, exit 100;
# - the node agent SIGKILLed, its table deleted by hand, a stale VIP record and a stale veth added: the
#   restarted agent rebuilds the table from the records (the endpoint answers again) and removes the rest;
# - the app stopped: its record, VIP record and table elements are gone; cell down (cell.sh's teardown)
#   checks that no bridge, table or VIP record is left.
# All traffic stays on this machine (the host's own address, loopback, the container's VIP).
. "$(dirname "$0")/../lib/cell.sh"
cell_require
command -v python3 >/dev/null || skip "python3 needed for the web server"
command -v nft >/dev/null || skip "nft needed to look at the table"
cell_setup

[ -r "$R/node/node.json" ] || fail "no node.json"
net() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['network'][sys.argv[2]])" "$R/node/node.json" "$1"; }
python3 -c "import json,sys; assert json.load(open(sys.argv[1])).get('network')" "$R/node/node.json" 2>/dev/null ||
	skip "the node has no container network here (no default route?)"
BR=$(net bridge) TB=$(net table) RANGE=$(net range) EXT=$(net external_ip)
note "network: bridge $BR, table $TB, range $RANGE, external $EXT"
ip link show "$BR" >/dev/null 2>&1 || fail "no bridge $BR"
nft list table ip "$TB" >/dev/null 2>&1 || fail "no table $TB"

note "examples/web.yml"
inst=$("$T" run nobody.itnet -m "$SRC/examples/web.yml") || fail "treadle run"
endpoint() { "$T" show endpoints nobody.itnet | awk '$3 == "http" {print $4}'; }
has_ep() { [ -n "$(endpoint)" ]; }
wait_for 60 has_ep || fail "no endpoint published"
ep=$(endpoint)
port=${ep##*:} host=${ep%:*}
get() { python3 -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2).read()" "$1"; }
wait_for 30 get "http://$EXT:$port/" || fail "http://$EXT:$port/ (the host's address) does not answer"
get "http://127.0.0.1:$port/" || fail "http://127.0.0.1:$port/ does not answer"
if getent ahostsv4 "$host" >/dev/null 2>&1; then
	get "http://$ep/" || fail "http://$ep/ (the name printed) does not answer"
fi
cdir=$(ls -d "$R"/node/apps/nobody.itnet-* | head -1)
[ -s "$cdir/data/network.json" ] || fail "no network record"
vip=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['vip'])" "$cdir/data/network.json")
[ -L "$R/node/network/vips/$vip" ] || fail "no VIP record for $vip"

note "a second cell with an overlapping --network is refused"
R2=$(mktemp -d /tmp/treadle-it.XXXXXX)
out=$("$T" cell up --daemon --root "$R2" --hostname "$H-2" --cgroup-root "$CG-2" --network "$RANGE" 2>&1)
rc=$?
[ -e "$R2/svc/master" ] && { "$T" cell down --root "$R2" >/dev/null 2>&1; rm -rf "$R2"; fail "the second cell started"; }
rm -rf "$R2"
[ "$rc" = 100 ] || fail "cell up --network $RANGE: exit $rc ($out), expected 100"
[ "$(echo "$out" | wc -l)" = 1 ] && echo "$out" | grep -q "overlaps.*$BR" || fail "refusal message: $out"
note "refused: $out"

note "SIGKILL of the node agent; table deleted, a stale VIP record and veth added meanwhile"
agent_pid() { pgrep -f "treadle node --store file://$R/store" | head -1; }
pid=$(agent_pid)
[ -n "$pid" ] || fail "no node agent"
s6-svc -d "$R/svc/node" 2>/dev/null || true
kill -9 "$pid" 2>/dev/null
wait_for 10 sh -c "! kill -0 $pid" || fail "agent still there"
nft delete table ip "$TB" || fail "deleting the table"
stale=$(python3 -c "import ipaddress,sys; n=ipaddress.ip_network(sys.argv[1]); print(list(n.hosts())[-3])" "$RANGE")
ln -s nobody.gone-0000000099-zzzzzzzzzzzzz "$R/node/network/vips/$stale" || fail "stale VIP record"
ip link add tvstale0000001 type veth peer name tvstalepeer01 && ip link set tvstale0000001 master "$BR" ||
	fail "stale veth"
s6-svc -u "$R/svc/node"
rebuilt() { nft list table ip "$TB" 2>/dev/null | grep -q "$vip"; }
wait_for 30 rebuilt || fail "the restarted agent did not rebuild the table with $vip"
wait_for 10 get "http://$EXT:$port/" || fail "the endpoint does not answer after the rebuild"
[ -e "$R/node/network/vips/$stale" ] && fail "the stale VIP record $stale is still there"
ip link show tvstale0000001 >/dev/null 2>&1 && { ip link del tvstale0000001; fail "the stale veth is still there"; }

note "blackout of the server: forwarding off for its containers, and back"
"$T" admin blackout set server "$H" >/dev/null || fail "blackout set"
blacked() { [ -e "$R/node/network/blackout" ] && nft list set ip "$TB" blackout | grep -q "$BR"; }
wait_for 30 blacked || fail "blackout: no N/network/blackout or the bridge is not in the table's blackout set"
"$T" admin blackout clear server "$H" >/dev/null || fail "blackout clear"
cleared() { [ ! -e "$R/node/network/blackout" ] && ! nft list set ip "$TB" blackout | grep -q "$BR"; }
wait_for 30 cleared || fail "blackout cleared: still blacked out"

note "stop: record, VIP record and elements go"
"$T" stop "$inst" >/dev/null || fail "stop"
gone() { [ ! -e "$cdir" ] && [ ! -e "$R/node/network/vips/$vip" ] && ! nft list table ip "$TB" | grep -q "$vip"; }
wait_for 30 gone || fail "after stop: container dir, VIP record or elements of $vip left"
nft list table ip "$TB" >/dev/null 2>&1 || fail "the table went with the container"
note "a cell with a /30 (one VIP): the second private-network container is aborted with reason network"
R3=$(mktemp -d /tmp/treadle-it.XXXXXX)
down3() { "$T" cell down --root "$R3" --timeout 20 >/dev/null 2>&1; rm -rf "$R3"; }
trap 'rc3=$?; down3; (exit $rc3); cell_teardown' EXIT
chmod 755 "$R3"
"$T" cell up --daemon --root "$R3" --hostname "$H-3" --cgroup-root "$CG-3" --network 10.253.77.0/30 --timeout 30 ||
	fail "cell up --network 10.253.77.0/30"
a1=$(TREADLE_ROOT=$R3 "$T" run nobody.itvip1 -m "$SRC/examples/web.yml") || fail "run 1"
TREADLE_ROOT=$R3 wait_for 60 has_event "$a1" service_running || fail "$a1 did not run"
a2=$(TREADLE_ROOT=$R3 "$T" run nobody.itvip2 -m "$SRC/examples/web.yml") || fail "run 2"
TREADLE_ROOT=$R3 wait_for 60 has_event "$a2" aborted || fail "$a2 was not aborted"
TREADLE_ROOT=$R3 "$T" trace --json "$a2" | grep -q '"network"' &&
	TREADLE_ROOT=$R3 "$T" trace "$a2" | grep -q "network: VIP range 10.253.77.0/30 exhausted" ||
	fail "abort reason: $(TREADLE_ROOT=$R3 "$T" trace "$a2" | tail -2)"
b3=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['network']['bridge'])" "$R3/node/node.json")
down3
trap cell_teardown EXIT
ip link show "$b3" >/dev/null 2>&1 && fail "bridge $b3 left after cell down"
note "aborted: network, VIP range exhausted; nothing left after cell down"

echo "ok: endpoint $ep reached, overlap refused, rebuild after SIGKILL, cleanup complete"
