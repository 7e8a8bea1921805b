#!/bin/bash
# API benchmark: GET /state with N scheduled instances (default 10,000; pending: no cell runs, so nothing
# is placed or started), latency p50/p99 over sequential keep-alive requests, and requests/s with C
# concurrent clients (default 4); plus GET /metrics; then S (default 100) concurrent subscribers of the
# trace stream receiving E (default 1,000) events (delivery latency: arrival - the event's timestamp);
# then, as root, GET /metrics of a single-machine cell running K (default 100) containers.
# usage: bench/api.sh [N] [C] [S] [E] [K].  Prints figures; not a test.
# COMPARE=<another treadle binary>: the K-container scrape also through an API of that binary on the same
# cell, interleaved request by request (before/after figures at the same moment).
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
N=${1:-10000} C=${2:-4} S=${3:-100} E=${4:-1000} K=${5:-100}
make -s -j2 "$BUILD/treadle"
id nobody >/dev/null 2>&1 || { echo "needs the user 'nobody' (the instances' proid)"; exit 1; }
tmp=$(mktemp -d /tmp/treadle-bench-api.XXXXXX)
"$BUILD/treadle" api --root "$tmp" --store "file://$tmp/store" 2>"$tmp/api.log" &
apid=$!
trap 'kill $apid 2>/dev/null; wait $apid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 50); do [ -S "$tmp/api.sock" ] && break; sleep 0.1; done
man='{"services":[{"name":"s","command":"exec sleep 1000","restart":{"limit":0,"interval":60}}],"memory":"100M","cpu":"5%","disk":"100M"}'
echo "api benchmark: $N instances, $C concurrent clients ($tmp)"
start=$(date +%s.%N)
left=$N i=0
while [ "$left" -gt 0 ]; do
	k=$((left > 1000 ? 1000 : left))
	curl -sf --unix-socket "$tmp/api.sock" -X POST -d "$man" "http://x/instance/nobody.bench$i?count=$k" >/dev/null
	left=$((left - k)) i=$((i + 1))
done
echo "fill: $N instances by POST /instance in $(echo "$(date +%s.%N) - $start" | bc) s"
python3 - "$tmp/api.sock" "$N" "$C" <<'PY'
import http.client, socket, sys, threading, time
path, n, c = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
class Conn(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
def get(conn, url):
    conn.request("GET", url)
    r = conn.getresponse()
    body = r.read()
    assert r.status == 200, (r.status, body[:200])
    return body
conn = Conn("x")
body = get(conn, "/state/")
assert body.count(b'"name"') == n, body.count(b'"name"')
print(f"GET /state/: {len(body)} bytes, {n} instances")
for url, reps in (("/state/", 1000), ("/metrics", 100), ("/state/?match=nobody.bench0%230000000007", 100)):
    lat = []
    for _ in range(reps):
        t = time.perf_counter(); get(conn, url); lat.append(time.perf_counter() - t)
    lat.sort()
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000
    print(f"GET {url}: p50 {p(0.50):.1f} ms, p99 {p(0.99):.1f} ms ({reps} sequential)")
done = [0] * c
stop = time.perf_counter() + 5
def worker(i):
    cn = Conn("x")
    while time.perf_counter() < stop:
        get(cn, "/state/"); done[i] += 1
th = [threading.Thread(target=worker, args=(i,)) for i in range(c)]
t0 = time.perf_counter()
[t.start() for t in th]; [t.join() for t in th]
print(f"GET /state/: {sum(done) / (time.perf_counter() - t0):.0f} requests/s with {c} clients")
PY

# the events come from a second API on the same store (as they come from the masters and nodes in a
# cell): what is measured is the delivery (store watch -> subscribers), not the POSTs' own work
"$BUILD/treadle" api --root "$tmp" --store "file://$tmp/store" --socket "$tmp/gen.sock" 2>"$tmp/gen.log" &
gpid=$!
trap 'kill $apid $gpid 2>/dev/null; wait $apid $gpid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 50); do [ -S "$tmp/gen.sock" ] && break; sleep 0.1; done
python3 - "$tmp/api.sock" "$S" "$E" "$tmp/gen.sock" <<'PY'
# S subscribers of /stream/trace (HTTP/1.0: no chunking, the stream ends with the connection), E events
# (POST /instance ?count=10 to the other API: each instance's "pending" trace event), latency = arrival -
# the event's timestamp.
import json, re, selectors, socket, sys, threading, time
TS = re.compile(rb'"timestamp":([0-9.e+]+)')
WHEN = re.compile(rb'"when":([0-9.e+]+)')
path, s_n, e_n, gen = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
sel = selectors.DefaultSelector()
subs = []
for i in range(s_n):
    so = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    so.connect(path)
    so.sendall(b"GET /stream/trace?filter=nobody.sbench* HTTP/1.0\r\nHost: x\r\n\r\n")
    so.setblocking(False)
    st = {"buf": b"", "sow": False, "got": 0}
    subs.append(st)
    sel.register(so, selectors.EVENT_READ, st)
lat, pub, send = [], [], []
def pump(timeout):
    for key, _ in sel.select(timeout):
        st = key.data
        try:
            d = key.fileobj.recv(1 << 20)
        except BlockingIOError:
            continue
        now = time.time()
        st["buf"] += d
        *lines, st["buf"] = st["buf"].split(b"\n")
        for l in lines:  # a regex, not json.loads: the measuring client must cost little
            if not l.startswith(b"data: "):
                continue
            if b'"sow_end":true' in l:
                st["sow"] = True
            elif b'"sow":true' not in l:
                m, w = TS.search(l), WHEN.search(l)
                if m:
                    lat.append(now - float(m.group(1)))
                    st["got"] += 1
                if m and w:
                    pub.append(float(w.group(1)) - float(m.group(1)))
                    send.append(now - float(w.group(1)))
end = time.time() + 60
while not all(s["sow"] for s in subs) and time.time() < end:
    pump(0.1)
assert all(s["sow"] for s in subs), "not every subscriber got its snapshot"
man = json.dumps({"services": [{"name": "s", "command": "exec sleep 1000", "restart": {"limit": 0, "interval": 60}}],
                  "memory": "100M", "cpu": "5%", "disk": "100M"})
def post():
    import http.client
    class Conn(http.client.HTTPConnection):
        def connect(self):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(gen)
    c = Conn("x")
    for _ in range(e_n // 10):
        c.request("POST", "/instance/nobody.sbench?count=10", body=man)
        r = c.getresponse(); r.read()
        assert r.status == 201, r.status
        time.sleep(0.01)
t0 = time.time()
th = threading.Thread(target=post); th.start()
end = time.time() + 120
while sum(s["got"] for s in subs) < s_n * (e_n // 10 * 10) and time.time() < end:
    pump(0.1)
th.join()
def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))] * 1000 if v else float("nan")
got = sum(s["got"] for s in subs)
print(f"stream trace: {s_n} subscribers, {e_n // 10 * 10} events, {got} deliveries of {s_n * (e_n // 10 * 10)} "
      f"in {time.time() - t0:.1f} s: latency p50 {pct(lat, .5):.1f} ms, p99 {pct(lat, .99):.1f} ms, "
      f"max {pct(lat, 1):.1f} ms")
print(f"  of which event -> published (the writer's store write, the watch, the API's listing): "
      f"p50 {pct(pub, .5):.1f} ms, p99 {pct(pub, .99):.1f} ms; published -> read by the client: "
      f"p50 {pct(send, .5):.1f} ms, p99 {pct(send, .99):.1f} ms")
PY

# GET /metrics of a cell running K containers (root: containers; the API of `cell up`)
if [ "$K" = 0 ]; then
	echo "metrics with containers: skipped (K=0)"
	exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v s6-svscan >/dev/null; then
	echo "metrics with $K containers: skipped (needs root and s6)"
	exit 0
fi
kill $apid $gpid 2>/dev/null; wait $apid $gpid 2>/dev/null || true
cell=$tmp/cell
mkdir -p "$cell"
export TREADLE_ROOT=$cell
trap '"$BUILD/treadle" cell down --timeout 60 >/dev/null 2>&1; rm -rf "$tmp"' EXIT
"$BUILD/treadle" cell up --daemon --hostname "bench$$" --cgroup-root "treadle-bench$$" --network none --timeout 60 >/dev/null
small='{"services":[{"name":"s","command":"exec sleep 100000","restart":{"limit":0,"interval":60}}],"memory":"100M","cpu":"1%","disk":"100M"}'
curl -s --unix-socket "$cell/api.sock" -X POST -d "$small" "http://x/instance/nobody.mbench?count=$K" | grep -q instances ||
	{ echo "metrics with $K containers: the POST failed"; exit 1; }
t0=$(date +%s)
while [ "$(curl -s --unix-socket "$cell/api.sock" 'http://x/state/?match=nobody.mbench*' | grep -o '"running"' | wc -l)" -lt "$K" ] &&
	[ $(( $(date +%s) - t0 )) -lt 600 ]; do sleep 2; done
running=$(curl -s --unix-socket "$cell/api.sock" 'http://x/state/?match=nobody.mbench*' | grep -o '"running"' | wc -l)
echo "cell: $running of $K containers running after $(( $(date +%s) - t0 )) s"
socks="$cell/api.sock"
if [ -n "${COMPARE:-}" ]; then
	"$COMPARE" api --root "$cell" --store "file://$cell/store" --socket "$tmp/cmp.sock" 2>"$tmp/cmp.log" &
	cpid=$!
	trap 'kill $cpid 2>/dev/null; wait $cpid 2>/dev/null; "$BUILD/treadle" cell down --timeout 60 >/dev/null 2>&1; rm -rf "$tmp"' EXIT
	for _ in $(seq 50); do [ -S "$tmp/cmp.sock" ] && break; sleep 0.1; done
	socks="$socks $tmp/cmp.sock"
fi
python3 - $socks <<'PY'
import http.client, socket, sys, time
names = {sys.argv[1]: "", **({sys.argv[2]: " (COMPARE)"} if len(sys.argv) > 2 else {})}
def conn(path):
    class Conn(http.client.HTTPConnection):
        def connect(self):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(path)
    return Conn("x")
cs = {p: conn(p) for p in names}
lat = {p: [] for p in names}
body = {}
for _ in range(100):
    for p, c in cs.items():
        t = time.perf_counter()
        c.request("GET", "/metrics"); r = c.getresponse(); body[p] = r.read()
        lat[p].append(time.perf_counter() - t)
for p in names:
    l = sorted(lat[p])
    q = lambda x: l[min(len(l) - 1, int(x * len(l)))] * 1000
    n = len({x.split(b'"')[1] for x in body[p].split(b"\n") if x.startswith(b"treadle_instance_memory_bytes{")})
    print(f"GET /metrics{names[p]} with {n} containers: {len(body[p])} bytes, p50 {q(0.5):.1f} ms, p99 {q(0.99):.1f} ms (100 sequential)")
if len(names) > 2 - 1 and len(body) == 2:
    series = [{x.rsplit(b" ", 1)[0] for x in b.split(b"\n") if x and not x.startswith(b"#")} for b in body.values()]
    print("  the same series from both" if series[0] == series[1] else
          f"  series differ: {sorted(series[0] ^ series[1])[:10]}")
PY
