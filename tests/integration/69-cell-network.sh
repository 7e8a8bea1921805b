#!/bin/bash
# The container network on a single-machine cell (docs/NETWORK.md "Use by the node"):
# - examples/web.yml (private network, port 8000) is reached at the host's address and at 127.0.0.1 on the
#   real port `treadle show endpoints` prints (and by the printed name where it resolves here);
# - a second cell whose --network overlaps this one's range is refused by `cell up` with one line, exit 100;
# - the node agent SIGKILLed, its table deleted by hand, a stale VIP record and a stale veth added: the
#   restarted agent rebuilds the table from the records (the endpoint answers again) and removes the rest;
# - the table deleted by hand: the next container's `sproc run` fails its add, rebuilds the table from the
#   records and starts; both containers answer;
# - the app stopped: its record, VIP record and table elements are gone; cell down (cell.sh's teardown)
#   checks that no bridge, table or VIP record is left;
# - churn: 20 starts and 6 stops interleaved, the agent SIGKILLed twice and sproc processes SIGKILLed: once
#   settled, no VIP is held by two containers, and the VIP records, the nft elements and the veths are exactly
#   those of the live containers, each of which answers at its endpoint.
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

note "the table deleted by hand: the next container's failed add rebuilds it from the records"
nft delete table ip "$TB" || fail "deleting the table"
inst2=$("$T" run nobody.itnet2 -m "$SRC/examples/web.yml") || fail "treadle run nobody.itnet2"
endpoint2() { "$T" show endpoints nobody.itnet2 | awk '$3 == "http" {print $4}'; }
has_ep2() { [ -n "$(endpoint2)" ]; }
wait_for 60 has_ep2 || fail "no endpoint published for nobody.itnet2"
ep2=$(endpoint2)
wait_for 30 get "http://$EXT:${ep2##*:}/" || fail "the new container does not answer at $EXT:${ep2##*:}"
# (the blackout above may have moved nobody.itnet to a new container, whose start can be the one that rebuilds)
wait_for 30 has_ep && wait_for 30 get "http://$EXT:$(endpoint | sed 's/.*://')/" ||
	fail "the first container does not answer after the rebuild by sproc"
grep -q "rebuilding the table from the records" "$R"/node/apps/*/data/log/current ||
	fail "no 'rebuilding the table from the records' line in a container's log"
"$T" stop "$inst2" >/dev/null || fail "stop $inst2"
note "stop: record, VIP record and elements go"
"$T" stop "$inst" >/dev/null || fail "stop"
gone() { [ ! -e "$cdir" ] && [ ! -e "$R/node/network/vips/$vip" ] && ! nft list table ip "$TB" | grep -q "$vip"; }
wait_for 30 gone || fail "after stop: container dir, VIP record or elements of $vip left"
nft list table ip "$TB" >/dev/null 2>&1 || fail "the table went with the container"
note "churn: 20 starts and 6 stops interleaved; the agent SIGKILLed twice, sproc processes SIGKILLed"
cat >"$R/churn.yml" <<'EOF'
memory: 100M
cpu: 5%
disk: 100M
endpoints:
  - name: http
    port: 8000
services:
  - name: web
    command: exec python3 -m http.server 8000
    restart:
      limit: 3
EOF
kill_agent() { local p; p=$(agent_pid); [ -n "$p" ] && kill -9 "$p" && note "agent $p SIGKILLed"; }
kill_sprocs() { # every `treadle sproc` of this cell (its cwd is under $R), now
	local p n=0
	for p in $(pgrep -f "treadle sproc"); do
		case "$(readlink "/proc/$p/cwd" 2>/dev/null)" in "$R"/*) kill -9 "$p" 2>/dev/null && n=$((n + 1)) ;; esac
	done
	note "$n sproc process(es) SIGKILLed"
}
ids=() stopped=()
for i in $(seq 1 20); do
	id=$("$T" run nobody.itchurn -m "$R/churn.yml") || fail "run $i"
	ids+=("$id")
	if [ $((i % 3)) = 0 ]; then "$T" stop "${ids[$((i - 3))]}" >/dev/null && stopped+=("${ids[$((i - 3))]}"); fi
	case $i in 7 | 15) kill_agent ;; 5 | 11 | 18) kill_sprocs ;; esac
	sleep 0.2
done
wait_for 30 sh -c "[ -n \"\$(pgrep -f 'treadle node --store file://$R/store')\" ]" || fail "the agent did not come back"
apps_state() { # the container dirs with their record, one a line; settled when the same for 3 s
	local d
	for d in "$R"/node/apps/*/; do
		[ -e "$d" ] || continue
		echo "$(basename "$d") $([ -s "$d/data/network.json" ] && echo rec)"
	done
}
settled() {
	local a b
	a=$(apps_state)
	echo "$a" | grep -qv ' rec$' && [ -n "$a" ] && return 1
	sleep 3
	b=$(apps_state)
	[ "$a" = "$b" ]
}
wait_for 180 settled || fail "the containers did not settle: $(apps_state | tr '\n' ' ')"
for s in "${stopped[@]}"; do
	ls -d "$R/node/apps/$(echo "$s" | tr '#' '-')"-* >/dev/null 2>&1 && fail "stopped $s still has a container"
done
nlive=$(ls "$R/node/apps" | wc -l)
note "$nlive container(s) live after the churn"
[ "$nlive" -ge 1 ] || fail "no container left running"
python3 - "$R" "$TB" "$RANGE" "$BR" <<'EOF' || fail "network state after the churn does not match the live containers"
import ipaddress, json, os, subprocess, sys
R, TB, RANGE, BR = sys.argv[1:]
net = ipaddress.ip_network(RANGE)
node = json.load(open(R + "/node/node.json"))["network"]
gw = node["gateway"]
apps = R + "/node/apps"
vips, veths = {}, set()
for u in os.listdir(apps):
    rec = json.load(open("%s/%s/data/network.json" % (apps, u)))
    assert rec["vip"] not in vips, "VIP %s given to %s and %s" % (rec["vip"], vips[rec["vip"]], u)
    vips[rec["vip"]] = u
    veths.add(rec["veth"])
recs = {v: os.readlink(R + "/node/network/vips/" + v) for v in os.listdir(R + "/node/network/vips") if not v.startswith(".")}
assert recs == vips, "VIP records %s != live %s" % (recs, vips)
found = set()
def walk(x):
    if isinstance(x, dict):
        for v in x.values(): walk(v)
    elif isinstance(x, list):
        for v in x: walk(v)
    elif isinstance(x, str):
        try:
            a = ipaddress.ip_address(x)
        except ValueError:
            return
        if a in net and x != gw:
            found.add(x)
t = json.loads(subprocess.check_output(["nft", "-j", "list", "table", "ip", TB]))
for o in t["nftables"]:
    for k in ("set", "map"):
        if k in o:
            walk(o[k].get("elem", []))
assert found == set(vips), "nft elements name %s, live VIPs %s" % (sorted(found), sorted(vips))
links = subprocess.check_output(["ip", "-br", "link", "show", "master", BR], text=True).split("\n")
tv = {l.split()[0].split("@")[0] for l in links if l.startswith("tv")}
assert tv == veths, "veths %s != records %s" % (sorted(tv), sorted(veths))
print("--- %d live: VIPs unique, VIP records, nft elements and veths match" % len(vips))
EOF
for d in "$R"/node/apps/*/; do
	p=$(python3 -c "import json,sys; print([e['real_port'] for e in json.load(open(sys.argv[1]))['endpoints']][0])" "$d/data/app.json")
	wait_for 30 get "http://$EXT:$p/" || fail "$(basename "$d") does not answer at $EXT:$p after the churn"
done
note "every live container answers at its endpoint"
for id in "${ids[@]}"; do "$T" stop "$id" >/dev/null 2>&1; done
churn_gone() { [ -z "$(ls "$R/node/apps")" ] && [ -z "$(ls "$R/node/network/vips")" ]; }
wait_for 120 churn_gone || fail "after stopping all: $(ls "$R/node/apps" "$R/node/network/vips")"
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
