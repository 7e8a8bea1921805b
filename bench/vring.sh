#!/bin/bash
# vring benchmark: update latency of a container's vring mapping after a peer moves, p50/p99.
# A node agent alone (tests/lib/node.sh: embedded store, container network on) runs one client container
# with the rule `nobody.vpeer*` [ring]; the bench rewrites the peer's endpoint record
# /endpoints/nobody/vpeer#0000000001:tcp:ring with a new "<host>:<port>" (hosts 10.255.0.1 / .2 in turn: a
# move to another host) N times, one after the other, and times each from the record's write (its store
# mtime) to the moment `nft monitor` shows the new element of map vring_dnat in the node's table.
# usage: bench/vring.sh [N]   (default 100; needs root, s6, nft, python3).  Prints figures; not a test.
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
make -s -j2 "$BUILD/treadle" || exit 1
export TREADLE_BIN=$PWD/$BUILD/treadle
COUNT=${1:-100}
command -v nft >/dev/null || { echo "skip: nft not installed"; exit 77; }
command -v python3 >/dev/null || { echo "skip: python3 needed"; exit 77; }
# ZooKeeper when it is installed (the store of a real cell; its watches are what the vring waits on),
# else the embedded store.  VRING_STORE=file keeps the embedded one.
# shellcheck source=../tests/lib/zk.sh
. tests/lib/zk.sh
ZT=
if [ "${VRING_STORE:-zk}" = zk ] && zk_available; then
	ZT=$(mktemp -d /tmp/treadle-vring-zk.XXXXXX)
	zk_start_single "$ZT" >/dev/null 2>&1 || { echo "ZooKeeper did not start"; exit 1; }
	export STORE="zk://$ZK_HOSTS/vringbench$$"
fi
# shellcheck source=../tests/lib/node.sh
. tests/lib/node.sh
trap 'cleanup_all; [ -n "$ZT" ] && { zk_stop; rm -rf "$ZT"; }' EXIT
echo "store: $STORE"

start_svscan
start_agent
TABLE=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['network']['table'])" "$N/node.json" 2>/dev/null)
[ -n "$TABLE" ] || { echo "skip: the node has no container network (no default route?)"; exit 77; }
place "nobody.vclient#0000000001" "$(manifest '[{"name":"svc","command":"exec sleep 100000","restart":{"limit":3,"interval":60}}]' \
	'"endpoints":[{"name":"ring","port":7000}],"vring":{"cells":[],"rules":[{"pattern":"nobody.vpeer*","endpoints":["ring"]}]}')"
reflective() { nft list map ip "$TABLE" vring_dnat 2>/dev/null | grep -q ' . 7000 : '; }
wait_for 120 reflective || { echo "the client's vring did not come up"; show_logs; exit 1; }
echo "client container running, its reflective mapping in $TABLE"

python3 - "$BIN" "$STORE" "$TABLE" "$COUNT" <<'PY'
import os, select, subprocess, sys, time
bin_, store, table, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
path = "/endpoints/nobody/vpeer#0000000001:tcp:ring"
def st(*a):
    return subprocess.run([bin_, "store", "--store", store] + list(a), capture_output=True, text=True)
mon = subprocess.Popen(["nft", "monitor", "elements"], stdout=subprocess.PIPE)
time.sleep(0.5)
pending = b""
def wait_elem(needle, timeout=10):
    # raw reads: a buffered reader would hold lines select() no longer reports
    global pending
    end = time.time() + timeout
    while True:
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            line = line.decode()
            if line.startswith("add element ip %s vring_dnat" % table) and needle in line:
                return time.time()
        left = end - time.time()
        if left <= 0 or not select.select([mon.stdout], [], [], left)[0]:
            return None
        pending += os.read(mon.stdout.fileno(), 65536)
st("create", "-p", path, "10.255.0.2:40000")
wait_elem(": 10.255.0.2 . 40000 }")
lat, cli = [], []
for i in range(count):
    host, port = "10.255.0.%d" % (1 + i % 2), 40001 + i
    t0 = time.time()
    if st("set", path, "%s:%d" % (host, port)).returncode != 0:
        print("store set failed"); sys.exit(1)
    cli.append(time.time() - t0)
    t = wait_elem(": %s . %d }" % (host, port))
    if t is None:
        print("move %d: no element after 10 s" % i); continue
    m = [l for l in st("get", "--stat", path).stdout.splitlines() if l.startswith("mtime_ms")]
    written = float(m[0].split()[1]) / 1000 if m else t0
    lat.append(t - written)
mon.kill()
def pct(v, p): v = sorted(v); return v[min(len(v) - 1, int((len(v) - 1) * p))]
if lat:
    print("vring update after a peer moves (record written -> element in nft), %d moves: p50 %.1f ms, p99 %.1f ms, max %.1f ms"
          % (len(lat), pct(lat, .5) * 1000, pct(lat, .99) * 1000, max(lat) * 1000))
print("(for comparison: the `treadle store set` command that writes the record: p50 %.1f ms)" % (pct(cli, .5) * 1000))
PY
unplace "nobody.vclient#0000000001"
wait_for 60 bash -c "[ -z \"\$(ls '$N/apps')\" ]" || echo "warning: cleanup incomplete"
