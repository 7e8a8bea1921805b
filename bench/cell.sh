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

# Per instance: pending(created) -> scheduled -> configured -> service_running.
for inst in $(cat "$R/instances"); do
	"$T" trace --json "$inst" | awk -F'[:,]' '
		function ts() { for (i = 1; i <= NF; i++) if ($i ~ /"timestamp"/) return $(i + 1) }
		/"type":"pending"/ && !p { p = ts() }
		/"type":"scheduled"/ && !s { s = ts() }
		/"type":"configured"/ && !c { c = ts() }
		/"type":"service_running"/ && !r { r = ts() }
		END { if (p && s && c && r) printf "%.3f %.3f %.3f %.3f\n", r - p, s - p, c - s, r - c }'
done >"$R/phases"
n=$(wc -l <"$R/phases")
pct() { # column percentile
	sort -n -k "$1" "$R/phases" | awk -v k="$1" -v q="$2" -v n="$n" 'NR == int((q * n + 99) / 100) { print $k }'
}
echo "cell: submit -> first service running, $n apps: p50 $(pct 1 50) s, p99 $(pct 1 99) s"
echo "cell:   phases p50/p99: placement (pending->scheduled) $(pct 2 50)/$(pct 2 99) s," \
	"node configure (scheduled->configured) $(pct 3 50)/$(pct 3 99) s," \
	"container start (configured->service_running) $(pct 4 50)/$(pct 4 99) s"
awk -v n="$N" -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN { printf "cell: %d submissions (one treadle run each) took %.2f s; all running %.2f s after the first\n", n, b - a, c - a }'
echo "cell: node agent RSS: 0 apps ${rss0} MiB, $N apps ${rssN} MiB (master ${rssM} MiB)"
s=$(date +%s.%N)
"$T" cell down --timeout 60 >/dev/null 2>&1
awk -v n="$N" -v a="$s" -v b="$(date +%s.%N)" 'BEGIN { printf "cell: cell down with %d containers: %.2f s\n", n, b - a }'
trap 'rm -rf "$R"' EXIT
