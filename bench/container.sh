#!/bin/bash
# Container start and footprint benchmark (docs/CONTAINER.md "Benchmarks").
#
#   bench/container.sh [N]     (root; default N=100)
#
# 1. start latency: `treadle container run` (container_run: cgroups, volume,
#    namespaces, root, s6-svscan as pid 1) until the service's run script
#    has run inside, p50/p99 over N starts; in the same run `bwrap` and
#    `unshare` starting `true` in a similar root; and container_run without a
#    volume (tmpfs root) to show what the ext4 volume costs.
# 2. fixed memory per idle container with N containers up: PSS of the
#    node-side helpers (container parent, s6-svscan, s6-supervise) and the
#    memory charged to each container's sys cgroup.
set -u
N=${1:-100}
cd "$(dirname "$0")/.."
BIN=${TREADLE_BIN:-$PWD/build/treadle}
[ "$(id -u)" = 0 ] || { echo "bench/container.sh: needs root" >&2; exit 77; }
T=$(mktemp -d /tmp/treadle-bench-ct.XXXXXX)
CG=treadle-bench-$$
UNITS=()
cleanup() {
	for u in "${UNITS[@]}"; do
		p=$(cat "$T/$u.pid" 2>/dev/null); [ -n "$p" ] && kill -TERM "$p" 2>/dev/null
	done
	sleep 0.5
	for u in "${UNITS[@]}"; do "$BIN" container cleanup "$T/node" "$u" "$CG" >/dev/null 2>&1; done
	for c in /sys/fs/cgroup/*/"$CG"; do [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} + 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT
mkdir -p "$T/node" "$T/ctl"

ms() { echo $(( ($2 - $1) / 1000 )); } # ns -> us
pct() { # file p -> value at percentile p (us -> ms with 1 decimal)
	sort -n "$1" | awk -v p="$2" '{v[NR]=$1} END {i=int((NR*p+99)/100); if(i<1)i=1; printf "%.1f", v[i]/1000}'
}

start_one() { # name, extra options...; records us from launch to "ran" file
	local u=$1; shift
	mkdir -p "$T/apps/$u/data/services/s"
	printf '#!/bin/sh\ntouch /run/tm_ctl/%s.ran\nexec /run/tm_bin/treadle container exec-as --user nobody -- sleep 1000000\n' "$u" \
		>"$T/apps/$u/data/services/s/run"
	chmod +x "$T/apps/$u/data/services/s/run"
	UNITS+=("$u")
	local t0 t1 pid cj p1
	t0=$(date +%s%N)
	"$BIN" container run --dir "$T/apps/$u" --unique "$u" --node-root "$T/node" --cgroup-root "$CG" \
		--proid nobody --memory 64M --cpu 50 --pids 64 --bind "$T/ctl:/run/tm_ctl" "$@" >"$T/$u.log" 2>&1 &
	pid=$!
	echo $pid >"$T/$u.pid"
	cj=$T/apps/$u/data/container.json
	# CPU of setup: the parent's and pid 1's time on CPU (schedstat, ns) once container.json is written
	until [ -e "$cj" ] || ! kill -0 $pid 2>/dev/null; do sleep 0.0005; done
	p1=$(sed -n 's/.*"pid":\([0-9]*\).*/\1/p' "$cj" 2>/dev/null)
	echo $(( ($(cut -d' ' -f1 /proc/$pid/schedstat 2>/dev/null || echo 0) + $(cut -d' ' -f1 /proc/${p1:-0}/schedstat 2>/dev/null || echo 0)) / 1000 )) \
		>>"$T/$SETUP_FILE.cpu"
	until [ -e "$T/ctl/$u.ran" ]; do
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid"; echo "start of $u failed (status $?): $(tail -2 "$T/$u.log")" >&2; return 1
		fi
		sleep 0.0005
	done
	t1=$(date +%s%N)
	# setup only: launch -> s6-svscan exec'd (container.json is written right then)
	ms "$t0" "$(stat -c %.9Y "$cj" | tr -d .)" >>"$T/$SETUP_FILE"
	# exec + dynamic loading + argument parsing: launch -> container_run() entry
	echo $(( $(sed -n 's/.*"start_unix":\([0-9]*\).*/\1/p' "$cj") - t0 / 1000 )) >>"$T/$SETUP_FILE.load"
	ms "$t0" "$t1"
}
SETUP_FILE=setup.us

# a root like ours for bwrap: ro system dirs, merged-/usr symlinks, proc, dev, tmpfs
BWRAP_ARGS=(--unshare-all --share-net --die-with-parent --ro-bind /usr /usr --ro-bind /etc /etc
	--symlink usr/bin /bin --symlink usr/sbin /sbin --symlink usr/lib /lib --symlink usr/lib64 /lib64
	--proc /proc --dev /dev --tmpfs /tmp --tmpfs /run --hostname bench)

run_one() { # label, command...: one run: wall us, and CPU us (children's rusage)
	local label=$1 t0 t1 c; shift
	t0=$(date +%s%N)
	c=$( ("$@" >/dev/null 2>&1; times) | tail -1)
	t1=$(date +%s%N)
	ms "$t0" "$t1" >>"$T/$label.us"
	# "0m0.001s 0m0.002s": user, sys
	echo "$c" | awk '{ n = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); n += a[1] * 60 + a[2] } printf "%d\n", n * 1e6 }' \
		>>"$T/$label.us.cpu"
}

# Interleaved, so that bwrap and treadle see the same load: one of each per round.
echo "container start, $N rounds of: bwrap, treadle (ext4 volume), treadle (tmpfs root);" \
	"interleaved ($(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg), $(uname -r))"
: >"$T/treadle.us"; : >"$T/treadle-tmpfs.us"
for i in $(seq 1 "$N"); do
	run_one bwrap bwrap "${BWRAP_ARGS[@]}" true
	run_one unshare unshare --mount --pid --uts --ipc --net --fork --mount-proc true
	# the exec alone: a dynamic binary's start before main (both print a version and exit)
	run_one load-bwrap bwrap --version
	run_one load-treadle "$BIN" version
	SETUP_FILE=setup.us
	start_one "c$i" --disk 64M >>"$T/treadle.us" || break
	SETUP_FILE=setup-tmpfs.us
	start_one "t$i" >>"$T/treadle-tmpfs.us" || break
	kill -TERM "$(cat "$T/t$i.pid")"; wait "$(cat "$T/t$i.pid")" 2>/dev/null
	"$BIN" container cleanup "$T/node" "t$i" "$CG" >/dev/null 2>&1
done
mapfile -t UNITS < <(printf 'c%s\n' $(seq 1 "$N") | while read -r u; do [ -e "$T/$u.pid" ] && echo "$u"; done)
echo "  (${#UNITS[@]} containers up)"
# idle footprint, measured while the N volume-backed containers run
pss=0; procs=0; sysmem=0; up=${#UNITS[@]}
for u in "${UNITS[@]}"; do
	ppid=$(cat "$T/$u.pid")
	for p in $ppid $(pgrep -P "$ppid") $(pgrep -P "$(pgrep -P "$ppid" | head -1)" 2>/dev/null); do
		case "$(cat /proc/$p/comm 2>/dev/null)" in treadle|s6-svscan|s6-supervise) ;; *) continue;; esac
		v=$(awk '/^Pss:/{s+=$2} END{print s+0}' /proc/$p/smaps_rollup 2>/dev/null)
		pss=$((pss + ${v:-0})); procs=$((procs + 1))
	done
	m=$(cat "/sys/fs/cgroup/memory/$CG/apps/$u/sys/memory.usage_in_bytes" 2>/dev/null || echo 0)
	sysmem=$((sysmem + m))
done
# where the time goes: container_run's own phase timings (data/container.json), medians
phases() { # dir glob
	for f in $1; do cat "$f"; echo; done | python3 -c '
import json, sys
rows = [json.loads(l)["setup_us"] for l in sys.stdin if l.strip()]
keys = ["cgroups", "cgroups_attach_wait", "image", "volume", "prepare", "namespaces_root_exec"]
med = lambda v: sorted(v)[len(v) // 2]
print(", ".join("%s %.1f" % (k, med([r.get(k, 0) for r in rows]) / 1000) for k in keys))
' 2>/dev/null
}
phases_vol=$(phases "$T/apps/c*/data/container.json")
phases_tmpfs=$(phases "$T/apps/t*/data/container.json")
for u in "${UNITS[@]}"; do kill -TERM "$(cat "$T/$u.pid")" 2>/dev/null; done
sleep 1
for u in "${UNITS[@]}"; do "$BIN" container cleanup "$T/node" "$u" "$CG" >/dev/null 2>&1; done
UNITS=()

printf '  %-42s %8s %8s %12s\n' "" "p50 ms" "p99 ms" "CPU p50 ms"
for l in bwrap unshare setup treadle setup-tmpfs treadle-tmpfs load-bwrap load-treadle setup.us.load setup-tmpfs.us.load; do
	case $l in
	bwrap) d="bwrap true (similar root)";;
	unshare) d="unshare -mpuin true";;
	setup) d="treadle: setup, pid 1 exec'd (vol)";;
	setup-tmpfs) d="treadle: setup, pid 1 exec'd (no vol)";;
	treadle) d="treadle: service running (ext4 vol)";;
	treadle-tmpfs) d="treadle: service running (no vol)";;
	load-bwrap) d="exec only: bwrap --version";;
	load-treadle) d="exec only: treadle version";;
	setup.us.load) d="treadle: launch -> container_run() (vol)";;
	setup-tmpfs.us.load) d="treadle: launch -> container_run() (no vol)";;
	esac
	f=$T/$l; [ -e "$f" ] || f=$T/$l.us
	cpu=-; [ -e "$f.cpu" ] && cpu=$(pct "$f.cpu" 50)
	case $l in setup|setup-tmpfs) cpu=$(pct "$T/$l.us.cpu" 50);; esac
	printf '  %-42s %8s %8s %12s\n' "$d" "$(pct "$f" 50)" "$(pct "$f" 99)" "$cpu"
done
b=$(pct "$T/bwrap.us" 50); v=$(pct "$T/setup.us" 50); n=$(pct "$T/setup-tmpfs.us" 50)
awk -v b="$b" -v v="$v" -v n="$n" 'BEGIN { printf "  ratio to bwrap (p50, same rounds): setup with volume %.2fx, without %.2fx\n", v / b, n / b }'
echo "  container_run phases, median ms (vol):    $phases_vol"
echo "  container_run phases, median ms (no vol): $phases_tmpfs"
echo "  (treadle CPU: container parent + pid 1 on CPU when pid 1 is exec'd (schedstat); others: rusage)"
echo "  (the rest, up to the service's first command, is s6-svscan scanning and s6-supervise spawning run)"
echo "idle footprint with $up containers: helpers PSS $((pss / up)) KiB/container ($procs processes)," \
	"sys cgroup charge $((sysmem / up / 1024)) KiB/container"
