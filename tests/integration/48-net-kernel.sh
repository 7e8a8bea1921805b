#!/bin/bash
# The net module against the real kernel, all traffic inside network namespaces
# this test makes: a "host" netns (bridge, nft table, external veth 10.77.0.1),
# an "outside" netns (another machine, 10.77.0.2), and three "container" netns
# whose veths net_container_setup() creates (c1 prod server, c2 nonprod client,
# c3 prod client).  Driven by `test-net drive` (tests/unit/test-net.c); the
# `ip netns` calls are scaffolding only.  Checks Treadmill's rules (§6.2): DNAT
# of host:real_port from another machine, from the host itself (its address and
# 127.0.0.1) and from a container (hairpin); masquerade with the environment's
# port range; per-endpoint SNAT; ephemeral ports; passthrough; nonprod->prod
# refused and counted; blackout; conntrack flush on VIP release; a rebuild from
# records gives exactly the incrementally built table; teardown leaves nothing.
set -u
[ "$(id -u)" = 0 ] || { echo "skip: needs root (network namespaces)"; exit 77; }
command -v nft >/dev/null && command -v conntrack >/dev/null || { echo "skip: nft/conntrack not installed"; exit 77; }
BUILD=${TREADLE_BUILD:-$PWD/build}
DRV_BIN=$BUILD/tests/test-net
[ -x "$DRV_BIN" ] || { echo "skip: $DRV_BIN not built (make unit)"; exit 77; }
PY=$(command -v /usr/bin/python3 python3 | head -n1)

TAPN=0 FAILS=0
ok() { TAPN=$((TAPN + 1)); echo "ok $TAPN - $*"; }
notok() { TAPN=$((TAPN + 1)); FAILS=$((FAILS + 1)); echo "not ok $TAPN - $*"; }
assert() { local d=$1; shift; if "$@"; then ok "$d"; else notok "$d"; fi; }

S=$$
H=tl48h$S O=tl48o$S C1=tl48a$S C2=tl48b$S C3=tl48c$S
T=$(mktemp -d /tmp/treadle-net48.XXXXXX)
export NET_BRIDGE=tl48br NET_TABLE=treadle_t48_$S NET_EXT_IP=10.77.0.1 NET_RANGE=192.168.0.0/16 \
	NET_GW=192.168.254.254 NET_MTU=1400
inh() { ip netns exec "$H" "$@"; }
drv() { ip netns exec "$H" "$DRV_BIN" drive "$@"; }

cleanup() {
	for p in $(jobs -p); do kill "$p" 2>/dev/null; done
	for n in $C1 $C2 $C3 ${C4:-} $O $H; do [ -n "$n" ] && ip netns del "$n" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT

# ---- scaffolding: namespaces, the external link ----
for n in $H $O $C1 $C2 $C3; do ip netns add "$n" || exit 1; done
inh ip link set lo up
ip netns exec "$O" ip link set lo up
ip link add tl48x$S netns "$H" type veth peer name eth0 netns "$O" || exit 1
inh ip link set tl48x$S name ext0
inh ip addr add 10.77.0.1/24 dev ext0
inh ip link set ext0 up mtu 1400
ip netns exec "$O" ip addr add 10.77.0.2/24 dev eth0
ip netns exec "$O" ip link set eth0 up mtu 1400
inh sysctl -qw net.ipv4.ip_local_port_range="49152 65535"

cat >"$T/srv.py" <<'EOF'
# listen on ADDR:PORT; answer every connection with "<peer ip> <peer port>"
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(64)
open(sys.argv[3], "w").close()
while True:
    c, a = s.accept(); c.sendall(("%s %d\n" % a).encode()); c.close()
EOF
cat >"$T/cli.py" <<'EOF'
# connect to HOST PORT [SRCPORT]; print the server's answer, or ERR <errno>
import socket, sys, errno
s = socket.socket(); s.settimeout(3)
if len(sys.argv) > 3:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("", int(sys.argv[3])))
try:
    s.connect((sys.argv[1], int(sys.argv[2]))); print(s.recv(100).decode().strip())
except socket.timeout:
    print("ERR timeout"); sys.exit(1)
except OSError as e:
    print("ERR", errno.errorcode.get(e.errno, e.errno)); sys.exit(1)
EOF
serve() { # netns addr port
	ip netns exec "$1" "$PY" "$T/srv.py" "$2" "$3" "$T/ready.$1.$3" &
	for _ in $(seq 50); do [ -e "$T/ready.$1.$3" ] && return 0; sleep 0.1; done
	return 1
}
cli() { ip netns exec "$1" "$PY" "$T/cli.py" "${@:2}"; }
port_in() { local p; p=$(awk '{print $2}' <<<"$1"); [ -n "$p" ] && [ "$p" -ge "$2" ] && [ "$p" -le "$3" ]; }

# ---- bridge, VIPs, links ----
assert "bridge up (netlink)" drv bridge-up
assert "bridge up again (idempotent)" drv bridge-up
V1=$(drv vip-alloc "$T/vips" 'proid.srv#1') V2=$(drv vip-alloc "$T/vips" 'proid.cli#2') V3=$(drv vip-alloc "$T/vips" 'proid.cli#3')
assert "VIPs lowest first, distinct ($V1 $V2 $V3)" test "$V1 $V2 $V3" = "192.168.0.1 192.168.0.2 192.168.0.3"
assert "same owner, same VIP" test "$(drv vip-alloc "$T/vips" 'proid.srv#1')" = "$V1"
assert "veth c1 (peer created in the netns)" drv link-up tl48v1 /run/netns/$C1 "$V1"
assert "veth c2" drv link-up tl48v2 /run/netns/$C2 "$V2"
assert "veth c3" drv link-up tl48v3 /run/netns/$C3 "$V3"
assert "bridge ports" test "$(drv ports | tr '\n' ' ')" = "tl48v1 tl48v2 tl48v3 "
out=$(ip netns exec "$C1" ip -o -4 addr show eth0; ip netns exec "$C1" ip route; ip netns exec "$C1" ip -o link show eth0)
assert "c1: eth0 $V1/32, default via gateway src vip, MTU of ext" \
	grep -q "inet $V1/32 scope link" <<<"$out"
assert "c1: default route" grep -q "default via 192.168.254.254 dev eth0 src $V1" <<<"$out"
assert "c1: mtu 1400" grep -q "mtu 1400" <<<"$out"

SPEC1="proid.srv#1,$V1,prod,ep=tcp:8000:41234,ep=tcp:8001:41237,ep=tcp:41236:41236:eph,ep=udp:53:41235:infra"
SPEC2="proid.cli#2,$V2,nonprod"
SPEC3="proid.cli#3,$V3,prod"
assert "table created (rebuild, no containers)" drv fw-rebuild
assert "rules of c1 (one transaction)" drv fw-add "$SPEC1"
assert "rules of c2" drv fw-add "$SPEC2"
assert "rules of c3" drv fw-add "$SPEC3"

serve "$C1" 0.0.0.0 8000 || notok "listener in c1"
serve "$C1" 0.0.0.0 41236 || notok "ephemeral listener in c1"
serve "$O" 10.77.0.2 9000 || notok "listener outside"

# ---- DNAT of host:real_port ----
r=$(cli "$O" 10.77.0.1 41234)
assert "another machine reaches c1 at host:41234, c1 sees its address ($r)" grep -q '^10.77.0.2 ' <<<"$r"
r=$(cli "$H" 10.77.0.1 41234)
assert "the host reaches it through its own address ($r)" grep -q '^10.77.0.1 ' <<<"$r"
r=$(cli "$H" 127.0.0.1 41234)
assert "the host reaches it through 127.0.0.1 (name resolving to loopback) ($r)" grep -q '^10.77.0.1 ' <<<"$r"
r=$(cli "$C3" 10.77.0.1 41234)
assert "a prod container reaches it through the host address ($r)" grep -q '^10.77.0.1 ' <<<"$r"
assert "  ... with a source port of the prod range" port_in "$r" 32768 40959
r=$(cli "$C1" 10.77.0.1 41234)
assert "c1 reaches its own endpoint through the host address ($r)" grep -q '^10.77.0.1 ' <<<"$r"
r=$(cli "$O" 10.77.0.1 41236)
assert "ephemeral port forwarded to the same number ($r)" grep -q '^10.77.0.2 ' <<<"$r"
# ---- nonprod -> prod refused, counted ----
r=$(cli "$C2" 10.77.0.1 41234)
assert "nonprod container -> prod endpoint refused ($r)" grep -q 'ECONNREFUSED' <<<"$r"
r=$(cli "$C2" "$V1" 8000)
assert "nonprod container -> prod VIP directly refused ($r)" grep -q 'ECONNREFUSED' <<<"$r"
cnt=$(inh nft -j list chain ip "$NET_TABLE" filter_forward | "$PY" -c '
import json,sys
d=json.load(sys.stdin)["nftables"]
print(sum(e["counter"]["packets"] for r in d if "rule" in r for e in r["rule"]["expr"] if "counter" in e))')
assert "refusals counted and logged by the rule ($cnt packets)" test "${cnt:-0}" -ge 2
assert "  ... the rule logs" sh -c "ip netns exec $H nft list chain ip $NET_TABLE filter_forward | grep -q 'log prefix \"$NET_TABLE nonprod->prod: \"'"
# ---- masquerade by environment, per-endpoint SNAT ----
r=$(cli "$C2" 10.77.0.2 9000)
assert "nonprod container -> outside leaves as host, port 40960-49151 ($r)" port_in "$r" 40960 49151
assert "  ... host address" grep -q '^10.77.0.1 ' <<<"$r"
r=$(cli "$C3" 10.77.0.2 9000)
assert "prod container -> outside leaves as host, port 32768-40959 ($r)" port_in "$r" 32768 40959
r=$(cli "$C1" 10.77.0.2 9000 8001)
assert "new flow from endpoint port 8001 leaves as host:41237 ($r)" test "$r" = "10.77.0.2 9000" -o "$r" = "10.77.0.1 41237"
assert "  ... exactly host:real_port" test "$r" = "10.77.0.1 41237"
# ---- passthrough ----
r=$(cli "$O" 10.77.0.1 8000)
assert "without passthrough, host:8000 is not c1 ($r)" grep -q '^ERR' <<<"$r"
assert "passthrough 10.77.0.2 -> c1 added" drv fw-add "$SPEC1,pt=10.77.0.2"
r=$(cli "$O" 10.77.0.1 8000)
assert "passthrough source reaches c1 on any port ($r)" grep -q '^10.77.0.2 ' <<<"$r"
r=$(cli "$C3" 10.77.0.2 9000)
assert "containers reach a passthrough source as the host ($r)" grep -q '^10.77.0.1 ' <<<"$r"
# a change of a live container's rules = remove the old record's, add the new one's
assert "passthrough removed" drv fw-remove "$SPEC1,pt=10.77.0.2"
assert "  ... c1's other rules back" drv fw-add "$SPEC1"
r=$(cli "$O" 10.77.0.1 8000)
assert "  ... and gone ($r)" grep -q '^ERR' <<<"$r"
# ---- shared_ip: the app binds the host address inside its own netns ----
C4=tl48d$S
ip netns add "$C4"
V5=$(drv vip-alloc "$T/vips" 'proid.shared#5')
assert "shared_ip container set up ($V5)" drv link-up tl48v5 /run/netns/$C4 "$V5" shared_ip
assert "  ... its rules" drv fw-add "proid.shared#5,$V5,prod,ep=tcp:8100:41240"
serve "$C4" 10.77.0.1 8100 || notok "listener on the host address in c4"
r=$(cli "$O" 10.77.0.1 41240)
assert "shared_ip: host:41240 reaches the app bound to the host address in c4 ($r)" grep -q '^10.77.0.2 ' <<<"$r"
r=$(cli "$C4" 10.77.0.2 9000)
assert "shared_ip: its outgoing flows leave as the host ($r)" grep -q '^10.77.0.1 ' <<<"$r"
drv fw-remove "proid.shared#5,$V5,prod,ep=tcp:8100:41240"; drv link-down tl48v5 "$V5"
drv vip-release "$T/vips" "$V5" 'proid.shared#5'
kill %% 2>/dev/null; ip netns del "$C4"

# ---- blackout ----
assert "blackout on" drv fw-blackout on
r=$(cli "$O" 10.77.0.1 41234)
assert "blackout: endpoint unreachable ($r)" grep -q '^ERR' <<<"$r"
assert "blackout off" drv fw-blackout off
r=$(cli "$O" 10.77.0.1 41234)
assert "after blackout: reachable again ($r)" grep -q '^10.77.0.2 ' <<<"$r"

# ---- rebuild from records = the incrementally built table ----
norm() { inh nft -j list table ip "$NET_TABLE" | "$PY" -c '
import json,sys
out=[]
for o in json.load(sys.stdin)["nftables"]:
    if "metainfo" in o: continue
    (k,v),=o.items(); v=dict(v); v.pop("handle",None)
    if "elem" in v: v["elem"]=sorted(json.dumps(e,sort_keys=True) for e in v["elem"])
    if k=="rule":
        v["expr"]=[{"counter":{}} if "counter" in e else e for e in v["expr"]]
    out.append(json.dumps({k:v},sort_keys=True))
print("\n".join(sorted(out)))'; }
norm >"$T/incremental"
inh nft "add element ip $NET_TABLE prod { 192.168.9.9 }; flush chain ip $NET_TABLE nat_output"
norm >"$T/damaged"
assert "table damaged (stray element, flushed chain)" sh -c "! cmp -s $T/incremental $T/damaged"
assert "rebuild from the records" drv fw-rebuild "$SPEC1" "$SPEC2" "$SPEC3"
norm >"$T/rebuilt"
if cmp -s "$T/incremental" "$T/rebuilt"; then ok "rebuild leaves exactly the expected ruleset"
else notok "rebuild leaves exactly the expected ruleset"; diff "$T/incremental" "$T/rebuilt" | head -20 | sed 's/^/# /'; fi
r=$(cli "$O" 10.77.0.1 41234)
assert "after rebuild: reachable ($r)" grep -q '^10.77.0.2 ' <<<"$r"
assert "table holds the c1 DNAT element" sh -c "ip netns exec $H nft list map ip $NET_TABLE ep_dnat | grep -q '41234 : $V1 . 8000'"

# ---- removal, conntrack flush on VIP release ----
assert "rules of c1 removed" drv fw-remove "$SPEC1"
assert "removed again (idempotent)" drv fw-remove "$SPEC1"
r=$(cli "$O" 10.77.0.1 41234)
assert "c1's endpoint gone ($r)" grep -q '^ERR' <<<"$r"
assert "conntrack holds c1's flows" sh -c "ip netns exec $H conntrack -L 2>/dev/null | grep -q $V1"
assert "veth c1 down" drv link-down tl48v1 "$V1"
assert "VIP of c1 released (flushes its conntrack entries)" drv vip-release "$T/vips" "$V1" 'proid.srv#1'
assert "no conntrack entry of $V1 left" sh -c "! ip netns exec $H conntrack -L 2>/dev/null | grep -q '$V1 '"
V4=$(drv vip-alloc "$T/vips" 'proid.new#4')
assert "the freed VIP is reused first ($V4)" test "$V4" = "$V1"
# ---- reconcile: c2 and c4 die with the agent; only c3 lives ----
assert "reconcile frees the dead owners' VIPs" test "$(drv vip-reconcile "$T/vips" 'proid.cli#3')" = 2
assert "  ... only c3's record left" test "$(ls "$T/vips" | tr '\n' ' ')" = "$V3 "

# ---- teardown ----
assert "teardown: table deleted" drv fw-teardown
assert "teardown again (idempotent)" drv fw-teardown
assert "no table of ours left" sh -c "! ip netns exec $H nft list tables | grep -q $NET_TABLE"
drv link-down tl48v2 "$V2"; drv link-down tl48v3 "$V3"
assert "no veth left on the bridge" test -z "$(drv ports)"
assert "bridge removed" drv bridge-down
assert "no bridge left" sh -c "! ip netns exec $H ip link show tl48br 2>/dev/null"
echo "1..$TAPN"
[ "$FAILS" -eq 0 ]
