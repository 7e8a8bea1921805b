#!/bin/bash
# API benchmark: GET /state with N scheduled instances (default 10,000; pending: no cell runs, so nothing
# is placed or started), latency p50/p99 over sequential keep-alive requests, and requests/s with C
# concurrent clients (default 4); plus GET /metrics.  usage: bench/api.sh [N] [C].  Prints figures; not a test.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
N=${1:-10000} C=${2:-4}
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
for url, reps in (("/state/", 200), ("/metrics", 100), ("/state/?match=nobody.bench0%230000000007", 100)):
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
