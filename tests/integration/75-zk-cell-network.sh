#!/bin/bash
# Container networking across test hosts (tests/lib/nethosts.sh, NH_SELF_LOOPBACK=1: each host's own name
# resolves to 127.0.1.1 first, as on machines whose installer wrote that line). A master on m, nodes on h1
# and (later) h2, each in its own network namespace with its own bridge, VIP range and nft table.
# - a server app with a private network (prod) on h1: its endpoint, as `treadle show endpoints` prints it,
#   is reached from host h1 itself by its address and by its name (a loopback address), and by a client app
#   on h2 by host:port; the server sees the client's host address;
# - client apps on h1 (prod and dev) reach a listener outside the cell (on m), which sees h1's address with
#   a source port in the environment's range (prod 32768-40959, dev 40960-49151);
# - the dev client cannot open a connection to the prod server's endpoint on its node; the prod one can;
# - the containers have eth0 <vip>/32, TREADMILL_CONTAINER_IP/HOST_IP/GATEWAY_IP, /app.json network/vip;
# - a passthrough host (m) reaches a container on any port of its node's address, another host does not;
# - after cell down: no bridge, veth, nft table or VIP record is left in any host.
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
export NH_SELF_LOOPBACK=1 NH_SUBNET=10.75.0
# shellcheck source=../lib/nethosts.sh
. "$SRC/tests/lib/nethosts.sh"
nh_require || skip_all "$NH_SKIP_REASON"

nh_test_begin # note, wait_for; tears the hosts down at exit (dumps them first on a failure)

nh_init || { notok "bridge namespace"; exit 1; }
note "test hosts under $NH_DIR, tag $NH_TAG"
nh_zk_start || { notok "ZooKeeper on the bridge address"; exit 1; }
for h in m h1 h2; do nh_host_add "$h" || { notok "host $h"; exit 1; }; done
export TREADLE_STORE=$NH_STORE
nh_cell_up m master >"$NH_DIR/m/up.out" 2>&1 || { notok "cell up on m"; cat "$NH_DIR/m/up.out"; }
nh_cell_up h1 node >"$NH_DIR/h1/up.out" 2>&1 || { notok "cell up on h1"; cat "$NH_DIR/h1/up.out"; }
assert "h1's server is present" nh_wait_servers 30 h1
T() { nh_exec m "$BIN" "$@"; }

# its network: a bridge tl<8 hex>, a table treadle_<8 hex>, the range and gateway in node.json
net_field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['network'][sys.argv[2]])" "${NH_ROOT[$1]}/node/node.json" "$2"; }
BR1=$(net_field h1 bridge) TB1=$(net_field h1 table) GW1=$(net_field h1 gateway)
assert "h1's node.json names its network ($BR1, $TB1, $(net_field h1 range), external ${NH_ADDR[h1]})" \
	[ "$(net_field h1 external_ip)" = "${NH_ADDR[h1]}" ]
assert "h1 has its bridge with the gateway address" sh -c "ip -n ${NH_NS[h1]} -br addr show $BR1 | grep -q '$GW1/'"
assert "h1 has its nft table" sh -c "ip netns exec ${NH_NS[h1]} nft list tables | grep -qx 'table ip $TB1'"

note "a server app (prod, private network) with an endpoint on port 8000"
cat >"$NH_DIR/srv.yml" <<'EOF'
memory: 100M
cpu: 10%
disk: 100M
affinity: nobody.nhpair
affinity_limits:
  server: 1
endpoints:
  - name: http
    port: 8000
services:
  - name: web
    command: |
      env | grep -E '^TREADMILL_(CONTAINER|HOST|GATEWAY)_IP=' | sort
      exec python3 -m http.server 8000
    restart:
      limit: 3
EOF
srv=$(T run nobody.nhsrv --env prod -m "$NH_DIR/srv.yml") || notok "treadle run nobody.nhsrv"
endpoint() { T show endpoints nobody.nhsrv | awk '$3 == "http" {print $4}'; }
has_endpoint() { [ -n "$(endpoint)" ]; }
assert "show endpoints lists the server's endpoint" wait_for 60 has_endpoint
ep=$(endpoint)
ehost=${ep%:*} eport=${ep##*:}
assert "the endpoint is h1's name and a prod real port ($ep)" \
	[ "$ehost" = "${NH_HOSTNAME[h1]}" -a "$eport" -ge 32768 -a "$eport" -le 40959 ]
get() { # HOST URL: one HTTP GET from that host's namespace
	nh_exec "$1" python3 -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2).read()" "$2"
}
assert "host h1 reaches the endpoint through its own address" wait_for 30 get h1 "http://${NH_ADDR[h1]}:$eport/"
self_loopback() { [ "$(nh_exec h1 getent ahostsv4 "${NH_HOSTNAME[h1]}" | awk 'NR == 1 {print $1}')" = 127.0.1.1 ]; }
assert "h1's own name resolves to 127.0.1.1 there" self_loopback
assert "host h1 reaches the endpoint by the host:port printed (its name: 127.0.1.1)" get h1 "http://$ep/"
srvlog() { nh_exec h1 "$BIN" logs --root "${NH_ROOT[h1]}" "$srv/web"; }
saw() { srvlog | grep -q "^.*$1 - - .*GET / "; }
assert "the server saw h1's address as the client (not the loopback)" wait_for 10 saw "${NH_ADDR[h1]}"
assert "the server did not see a loopback address" not saw "127\.0\.[01]\.1"

cdir=$(ls -d "${NH_ROOT[h1]}"/node/apps/nobody.nhsrv-* | head -1)
vip=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['vip'])" "$cdir/data/network.json")
assert "the server's record names its VIP ($vip) in h1's range" [ -n "$vip" ]
assert "its VIP record is a symlink to its owner" [ "$(readlink "${NH_ROOT[h1]}/node/network/vips/$vip")" = "$(basename "$cdir")" ]
srv_env() {
	local l
	l=$(srvlog)
	grep -q "TREADMILL_CONTAINER_IP=$vip$" <<<"$l" && grep -q "TREADMILL_HOST_IP=${NH_ADDR[h1]}$" <<<"$l" &&
		grep -q "TREADMILL_GATEWAY_IP=$GW1$" <<<"$l"
}
assert "the environment has TREADMILL_CONTAINER_IP=$vip, HOST_IP, GATEWAY_IP" wait_for 10 srv_env
app_ok() {
	nh_exec h1 "$BIN" exec --root "${NH_ROOT[h1]}" "$srv" -- cat /app.json >"$NH_DIR/app.json" || return 1
	python3 - "$NH_DIR/app.json" "$vip" "$GW1" "${NH_ADDR[h1]}" <<'EOF'
import json, sys
a = json.load(open(sys.argv[1]))
n = a["network"]
assert n["vip"] == sys.argv[2] and n["gateway"] == sys.argv[3] and n["external_ip"] == sys.argv[4], n
assert a["vip"] == {"ip0": sys.argv[3], "ip1": sys.argv[2]}, a["vip"]
EOF
}
assert "/app.json has network {vip, veth, gateway, external_ip} and vip {ip0, ip1}" app_ok
eth0_vip() { nh_exec h1 "$BIN" exec --root "${NH_ROOT[h1]}" "$srv" -- cat /proc/net/fib_trie | grep -q "$vip"; }
assert "inside, the container's interface holds $vip" eth0_vip

note "a listener outside the cell, on m"
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
        f.write("%s %d\n" % peer)
    c.sendall(b"hello\n")
    c.close()
EOF
nh_bg m python3 "$NH_DIR/listen.py" "${NH_ADDR[m]}" 7979 "$NH_DIR/m/peers"
assert "listener up on m" wait_for 10 test -e "$NH_DIR/m/peers.ready"

note "client apps on h1, prod and dev: the listener on m, then the prod server's endpoint"
cat >"$NH_DIR/client.py" <<'EOF'
import socket, sys, time
tag = sys.argv[1]
def attempt(target, http):
    host, port = target.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), 3)
    if http:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    s.recv(100)
    s.close()
for i in range(60):  # the listener: until it answers
    try:
        attempt(sys.argv[2], False)
        print("RESULT", tag, sys.argv[2], "ok", flush=True)
        break
    except OSError:
        time.sleep(0.5)
res = "failed"
for i in range(5):  # the server: a refusal stays a refusal
    try:
        attempt(sys.argv[3], True)
        res = "ok"
        break
    except OSError as e:
        res = "failed " + e.__class__.__name__
        time.sleep(0.5)
print("RESULT", tag, sys.argv[3], res, flush=True)
time.sleep(100000)
EOF
# the script goes into the manifest's command (a heredoc): the container needs no bind
for env in prod dev; do
	python3 - "$NH_DIR/cl-$env.yml" "$NH_DIR/client.py" "$env" "${NH_ADDR[m]}:7979" "${NH_ADDR[h1]}:$eport" <<'EOF'
import sys
yml, script, env, *targets = sys.argv[1:]
code = open(script).read()
with open(yml, "w") as f:
    f.write("memory: 100M\ncpu: 10%\ndisk: 100M\nservices:\n  - name: client\n    command: |\n")
    f.write("      cat > /tmp/client.py <<'PYEOF'\n")
    for line in code.splitlines():
        f.write(("      " + line).rstrip() + "\n")
    f.write("      PYEOF\n")
    f.write("      exec python3 /tmp/client.py %s %s\n" % (env, " ".join(targets)))
    f.write("    restart:\n      limit: 0\n")
EOF
done
clp=$(T run nobody.nhclp --env prod -m "$NH_DIR/cl-prod.yml") || notok "treadle run nobody.nhclp"
cld=$(T run nobody.nhcld --env dev -m "$NH_DIR/cl-dev.yml") || notok "treadle run nobody.nhcld"
cllog() { nh_exec h1 "$BIN" logs --root "${NH_ROOT[h1]}" "$1/client"; }
result() { cllog "$1" | grep -o "RESULT $2 ${NH_ADDR[h1]}:$eport .*"; }
assert "the prod client got a result for the server" wait_for 60 result "$clp" prod
assert "the dev client got a result for the server" wait_for 60 result "$cld" dev
note "prod: $(result "$clp" prod); dev: $(result "$cld" dev)"
res_is() { result "$1" "$2" | grep -q " $3$"; }
assert "a prod client opens a connection to the prod container" res_is "$clp" prod ok
assert "a dev client cannot open a connection to the prod container (refused)" res_is "$cld" dev "failed ConnectionRefusedError"
two_peers() { [ "$(wc -l <"$NH_DIR/m/peers" 2>/dev/null)" -ge 2 ]; }
assert "the listener on m saw both clients" wait_for 30 two_peers
note "listener on m saw: $(tr '\n' ' ' <"$NH_DIR/m/peers")"
in_range() { # LO HI: a peer from h1's address with a port in [LO, HI]
	awk -v a="${NH_ADDR[h1]}" -v lo="$1" -v hi="$2" '$1 == a && $2 >= lo && $2 <= hi {f = 1} END {exit !f}' "$NH_DIR/m/peers"
}
only_h1() { [ "$(awk '{print $1}' "$NH_DIR/m/peers" | sort -u)" = "${NH_ADDR[h1]}" ]; }
assert "every peer the listener saw is h1's address" only_h1
assert "the prod client left from a port in 32768-40959" in_range 32768 40959
assert "the dev client left from a port in 40960-49151" in_range 40960 49151

note "a client app in another container on h1 reaches the server by the host:port printed ($ep)"
cat >"$NH_DIR/near.yml" <<EOF
memory: 100M
cpu: 10%
disk: 100M
services:
  - name: client
    command: |
      grep -v '^#' /etc/hosts | sed 's/^/HOSTS /'
      until python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2).read()' http://$ep/; do sleep 0.5; done
      echo REACHED $ep
      exec sleep 100000
    restart:
      limit: 0
EOF
near=$(T run nobody.nhnear --env prod -m "$NH_DIR/near.yml") || notok "treadle run nobody.nhnear"
nearlog() { nh_exec h1 "$BIN" logs --root "${NH_ROOT[h1]}" "$near/client"; }
near_hosts() { nearlog | grep -qE "HOSTS ${NH_ADDR[h1]}[[:space:]].*${NH_HOSTNAME[h1]}"; }
assert "inside a container, h1's own name (127.0.1.1 on h1) maps to h1's address" wait_for 60 near_hosts
no_loop_name() { ! nearlog | grep -qE "HOSTS 127\.[0-9.]+[[:space:]].*${NH_HOSTNAME[h1]}"; }
assert "inside, no loopback line names h1" no_loop_name
near_reached() { nearlog | grep -q "REACHED $ep"; }
assert "a container on h1 reached the server on h1 by $ep" wait_for 60 near_reached
T stop "$near" >/dev/null 2>&1

note "bad input on h1: every dev port taken on the host; a passthrough host that does not resolve"
vips_now() { ls "${NH_ROOT[h1]}/node/network/vips" | sort; }
veths_now() { ip -n "${NH_NS[h1]}" -br link | awk '$1 ~ /^tv/ {print $1}' | sed 's/@.*//' | sort; }
near_gone() { ! ls -d "${NH_ROOT[h1]}"/node/apps/nobody.nhnear-* >/dev/null 2>&1; }
wait_for 30 near_gone
vips0=$(vips_now) veths0=$(veths_now)
cat >"$NH_DIR/hold.py" <<'EOF'
import os, resource, socket, sys, time
lo, hi, d = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
resource.setrlimit(resource.RLIMIT_NOFILE, (hi - lo + 100, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
held = []
for p in range(lo, hi + 1):
    s = socket.socket()
    try:
        s.bind(("0.0.0.0", p))
        s.listen(1)
        held.append(s)
    except OSError:
        s.close()
open(d + "/hold.ready", "w").close()
while not os.path.exists(d + "/hold.stop"):
    time.sleep(0.2)
EOF
nh_bg h1 python3 "$NH_DIR/hold.py" 40960 49151 "$NH_DIR"
assert "every dev port (40960-49151) of h1 is held by another process" wait_for 30 test -e "$NH_DIR/hold.ready"
cat >"$NH_DIR/ep.yml" <<'EOF'
memory: 100M
cpu: 10%
disk: 100M
endpoints:
  - name: http
    port: 8000
services:
  - name: web
    command: exec sleep 100000
    restart:
      limit: 0
EOF
taken=$(T run nobody.nhtaken --env dev -m "$NH_DIR/ep.yml") || notok "treadle run nobody.nhtaken"
trace_has() { T trace "$1" | grep -q "$2"; }
assert "an endpoint with no free port on the host: aborted, reason ports" wait_for 60 trace_has "$taken" "aborted.*ports"
note "trace: $(T trace "$taken" | grep aborted | tail -1)"
touch "$NH_DIR/hold.stop"
cat >"$NH_DIR/ptbad.yml" <<EOF
memory: 100M
cpu: 10%
disk: 100M
passthrough:
  - nohost-$NH_TAG.invalid
services:
  - name: web
    command: exec sleep 100000
    restart:
      limit: 0
EOF
ptbad=$(T run nobody.nhptbad -m "$NH_DIR/ptbad.yml") || notok "treadle run nobody.nhptbad"
assert "a passthrough host that does not resolve: aborted, reason network" wait_for 60 trace_has "$ptbad" "aborted.*network"
assert "its trace names the host" trace_has "$ptbad" "cannot resolve 'nohost-$NH_TAG.invalid'"
note "trace: $(T trace "$ptbad" | grep aborted | tail -1)"
bad_gone() { ! ls -d "${NH_ROOT[h1]}"/node/apps/nobody.nhtaken-* "${NH_ROOT[h1]}"/node/apps/nobody.nhptbad-* >/dev/null 2>&1; }
assert "both aborted containers are cleaned up" wait_for 60 bad_gone
assert "no VIP record left of them" [ "$(vips_now)" = "$vips0" ]
assert "no veth left of them" [ "$(veths_now)" = "$veths0" ]
assert "the agent is still there (no crash)" nh_wait_servers 5 h1

note "a second node host, h2: a client there reaches the server on h1 by host:port"
nh_cell_up h2 node >"$NH_DIR/h2/up.out" 2>&1 || { notok "cell up on h2"; cat "$NH_DIR/h2/up.out"; }
assert "h2's server is present" nh_wait_servers 30 h2
cat >"$NH_DIR/far.yml" <<EOF
memory: 100M
cpu: 10%
disk: 100M
affinity: nobody.nhpair
affinity_limits:
  server: 1
services:
  - name: client
    command: |
      until python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2).read()' http://$ep/; do sleep 0.5; done
      echo REACHED $ep
      exec sleep 100000
    restart:
      limit: 0
EOF
far=$(T run nobody.nhfar -m "$NH_DIR/far.yml") || notok "treadle run nobody.nhfar"
placed_h2() { T store ls "/placement/${NH_HOSTNAME[h2]}" 2>/dev/null | grep -qxF "$far"; }
assert "the far client is placed on h2 (affinity limit: one of the pair per server)" wait_for 30 placed_h2
reached() { nh_exec h2 "$BIN" logs --root "${NH_ROOT[h2]}" "$far/client" | grep -q "REACHED $ep"; }
assert "the client app on h2 reached the server on h1 by $ep" wait_for 60 reached
assert "the server saw h2's address (${NH_ADDR[h2]}) as the client" wait_for 10 saw "${NH_ADDR[h2]}"

note "passthrough: everything m sends to the node's address goes to the container, on any port"
cat >"$NH_DIR/pt.yml" <<EOF
memory: 100M
cpu: 10%
disk: 100M
passthrough:
  - ${NH_HOSTNAME[m]}
services:
  - name: web
    command: exec python3 -m http.server 9999
    restart:
      limit: 3
EOF
pt=$(T run nobody.nhpt -m "$NH_DIR/pt.yml") || notok "treadle run nobody.nhpt"
placed_pt() { local h; for h in h1 h2; do T store ls "/placement/${NH_HOSTNAME[$h]}" 2>/dev/null | grep -qxF "$pt" && { echo "$h"; return 0; }; done; return 1; }
assert "the passthrough app is placed" wait_for 30 placed_pt
P=$(placed_pt)
assert "m reaches the passthrough container at $P's address on port 9999 (no endpoint)" \
	wait_for 60 get m "http://${NH_ADDR[$P]}:9999/"
other=h1; [ "$P" = h1 ] && other=h2
assert "$other (not a passthrough source) does not reach it there" not get "$other" "http://${NH_ADDR[$P]}:9999/"

note "cell down on the nodes: nothing of the network is left"
for h in h1 h2; do nh_cell_down "$h" >/dev/null 2>&1; done
for h in h1 h2; do
	assert "$h: no bridge or container veth left" sh -c "! ip -n ${NH_NS[$h]} -br link | grep -qE '^(tl|tv)'"
	assert "$h: no nft table left" sh -c "[ -z \"\$(ip netns exec ${NH_NS[$h]} nft list tables)\" ]"
	assert "$h: no VIP record left" sh -c "[ -z \"\$(ls ${NH_ROOT[$h]}/node/network/vips 2>/dev/null)\" ]"
done
note "teardown"
trap - EXIT
out=$(mktemp /tmp/treadle-nh-down.XXXXXX)
nh_teardown >"$out" 2>&1
rc=$?
sed 's/^/# /' "$out"
rm -f "$out"
assert "teardown: nothing left" [ "$rc" = 0 ]
done_testing
