#!/bin/bash
# bench/cell.sh: in a real single-machine cell,
#  - submit -> first service running latency over N apps (default 50), p50/p99
#    (from the trace: `pending created` timestamp to the first `service_running`);
#  - node agent RSS with 0 and N apps running.
set -u
T=${TREADLE_BIN:-$(cd "$(dirname "$0")/.." && pwd)/build/treadle}
N=${BENCH_APPS:-50}
[ "$(id -u)" = 0 ] || { echo "needs root"; exit 77; }
"$T" help node >/dev/null 2>&1 || { echo "the node agent is not built yet"; exit 77; }

R=$(mktemp -d /tmp/treadle-bench.XXXXXX)
H=bench$$
export TREADLE_ROOT=$R
trap '"$T" cell down --timeout 60 >/dev/null 2>&1; rm -rf "$R"' EXIT
"$T" cell up --daemon --hostname "$H" --cgroup-root "treadle-bench$$" >/dev/null || { echo "cell up failed"; exit 1; }

rss() { awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$(s6-svstat -o pid "$R/svc/$1")/status"; }
sleep 2
rss0=$(rss node)

t0=$(date +%s.%N)
for i in $(seq 1 "$N"); do
	"$T" run nobody.bench --cpu 1% -- sleep "99$$" >>"$R/instances" || { echo "run $i failed"; exit 1; }
done
t1=$(date +%s.%N)

end=$(( $(date +%s) + 300 ))
for inst in $(cat "$R/instances"); do
	until "$T" trace --json "$inst" | grep -q '"type":"service_running"'; do
		[ "$(date +%s)" -ge "$end" ] && { echo "timeout waiting for $inst"; exit 1; }
		sleep 0.2
	done
done
t2=$(date +%s.%N)
sleep 2
rssN=$(rss node)
rssM=$(rss master)

# Per instance: pending(created) -> scheduled -> configured -> service_running, and inside the
# container start, from the app's data/container.json (written when pid 1 is exec'd):
# configured -> container_run() entry (node s6 scan, s6-supervise, `treadle sproc run` exec, services
# and ports), container_run setup (cgroups, volume, namespaces, root) -> pid 1 exec'd, then pid 1 ->
# service_running (s6-svscan, s6-supervise, the service's `treadle sproc exec`).
find "$R" -path '*/apps/*/data/container.json' 2>/dev/null | while read -r f; do
	python3 -c 'import json, os, sys; j = json.load(open(sys.argv[1])); print(j["unique_name"].rsplit("-", 1)[-1], j["setup_us"].get("start_unix", 0) / 1e6, os.stat(sys.argv[1]).st_mtime)' "$f"
done >"$R/containers"
for inst in $(cat "$R/instances"); do
	"$T" trace --json "$inst" | awk -F'[:,]' -v cf="$R/containers" '
		function ts() { for (i = 1; i <= NF; i++) if ($i ~ /"timestamp"/) return $(i + 1) }
		function data() { if (match($0, /"data":"[^"]*"/)) return substr($0, RSTART + 8, RLENGTH - 9) }
		/"type":"pending"/ && !p { p = ts() }
		/"type":"scheduled"/ && !s { s = ts() }
		/"type":"configured"/ && !c { c = ts(); uid = data() }
		/"type":"service_running"/ && !r { r = ts() }
		END {
			while ((getline l < cf) > 0) { split(l, a, " "); if (uid != "" && a[1] == uid) { e = a[2]; x = a[3] } }
			if (!(e && x)) { e = c; x = c }
			if (p && s && c && r) printf "%.3f %.3f %.3f %.3f %.3f %.3f %.3f\n", r - p, s - p, c - s, r - c, e - c, x - e, r - x }'
done >"$R/phases"
n=$(wc -l <"$R/phases")
pct() { # column percentile
	sort -n -k "$1" "$R/phases" | awk -v k="$1" -v q="$2" -v n="$n" 'NR == int((q * n + 99) / 100) { print $k }'
}
ms() { awk -v v="$(pct "$1" "$2")" 'BEGIN { printf "%.0f", v * 1000 }'; }
echo "cell: submit -> first service running, $n apps: p50 $(ms 1 50) ms, p99 $(ms 1 99) ms (load $(cut -d' ' -f1 /proc/loadavg))"
echo "cell:   phases p50/p99 ms: placement (pending->scheduled) $(ms 2 50)/$(ms 2 99)," \
	"node configure (scheduled->configured) $(ms 3 50)/$(ms 3 99)," \
	"container start (configured->service_running) $(ms 4 50)/$(ms 4 99)"
echo "cell:   container start p50/p99 ms: configured -> container_run() (s6 scan, supervise, sproc run exec, services, ports)" \
	"$(ms 5 50)/$(ms 5 99), container_run -> pid 1 exec'd $(ms 6 50)/$(ms 6 99)," \
	"pid 1 -> service_running (s6-svscan, s6-supervise, sproc exec) $(ms 7 50)/$(ms 7 99)"
awk -v n="$N" -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN { printf "cell: %d submissions (one treadle run each) took %.2f s; all running %.2f s after the first\n", n, b - a, c - a }'
echo "cell: node agent RSS: 0 apps ${rss0} MiB, $N apps ${rssN} MiB (master ${rssM} MiB)"
s=$(date +%s.%N)
"$T" cell down --timeout 60 >/dev/null 2>&1
awk -v n="$N" -v a="$s" -v b="$(date +%s.%N)" 'BEGIN { printf "cell: cell down with %d containers: %.2f s\n", n, b - a }'
trap 'rm -rf "$R"' EXIT
