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
	local t0 t1
	t0=$(date +%s%N)
	"$BIN" container run --dir "$T/apps/$u" --unique "$u" --node-root "$T/node" --cgroup-root "$CG" \
		--proid nobody --memory 64M --cpu 50 --pids 64 --bind "$T/ctl:/run/tm_ctl" "$@" >"$T/$u.log" 2>&1 &
	echo $! >"$T/$u.pid"
	until [ -e "$T/ctl/$u.ran" ]; do
		if ! kill -0 "$(cat "$T/$u.pid")" 2>/dev/null; then
			wait "$(cat "$T/$u.pid")"; echo "start of $u failed (status $?): $(tail -2 "$T/$u.log")" >&2; return 1
		fi
		sleep 0.0005
	done
	t1=$(date +%s%N)
	# setup only: launch -> s6-svscan exec'd (container.json is written right then)
	ms "$t0" "$(stat -c %.9Y "$T/apps/$u/data/container.json" | tr -d .)" >>"$T/$SETUP_FILE"
	ms "$t0" "$t1"
}
SETUP_FILE=setup.us

# a root like ours for bwrap: ro system dirs, merged-/usr symlinks, proc, dev, tmpfs
BWRAP_ARGS=(--unshare-all --share-net --die-with-parent --ro-bind /usr /usr --ro-bind /etc /etc
	--symlink usr/bin /bin --symlink usr/sbin /sbin --symlink usr/lib /lib --symlink usr/lib64 /lib64
	--proc /proc --dev /dev --tmpfs /tmp --tmpfs /run --hostname bench)

run_series() { # label, command...
	local label=$1; shift
	: >"$T/$label.us"
	for i in $(seq 1 "$N"); do
		t0=$(date +%s%N); "$@" >/dev/null 2>&1; t1=$(date +%s%N)
		ms "$t0" "$t1" >>"$T/$label.us"
	done
}

echo "container start, $N instances each ($(nproc) cores, $(uname -r))"
run_series bwrap bwrap "${BWRAP_ARGS[@]}" true
run_series unshare unshare --mount --pid --uts --ipc --net --fork --mount-proc true
: >"$T/treadle.us"
for i in $(seq 1 "$N"); do start_one "c$i" --disk 64M >>"$T/treadle.us" || break; done
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
# where the time goes: container_run's own phase timings (data/container.json)
phases=$(for f in "$T"/apps/c*/data/container.json; do cat "$f"; echo; done | python3 -c '
import json, sys
rows = [json.loads(l)["setup_us"] for l in sys.stdin if l.strip()]
keys = ["cgroups", "image", "volume", "prepare", "namespaces_root_exec"]
print("  container_run phases, mean ms: " + ", ".join("%s %.1f" % (k, sum(r[k] for r in rows) / len(rows) / 1000) for k in keys))
' 2>/dev/null)
for u in "${UNITS[@]}"; do kill -TERM "$(cat "$T/$u.pid")" 2>/dev/null; done
sleep 1
for u in "${UNITS[@]}"; do "$BIN" container cleanup "$T/node" "$u" "$CG" >/dev/null 2>&1; done
UNITS=()
: >"$T/treadle-tmpfs.us"
SETUP_FILE=setup-tmpfs.us
for i in $(seq 1 "$N"); do
	start_one "t$i" >>"$T/treadle-tmpfs.us" || break
	kill -TERM "$(cat "$T/t$i.pid")"; wait "$(cat "$T/t$i.pid")" 2>/dev/null; "$BIN" container cleanup "$T/node" "t$i" "$CG" >/dev/null 2>&1
done

printf '  %-38s %8s %8s\n' "" "p50 ms" "p99 ms"
for l in bwrap unshare setup treadle setup-tmpfs treadle-tmpfs; do
	case $l in
	bwrap) d="bwrap true (similar root)";;
	unshare) d="unshare -mpuin true";;
	setup) d="treadle: setup, pid 1 exec'd (vol)";;
	setup-tmpfs) d="treadle: setup, pid 1 exec'd (no vol)";;
	treadle) d="treadle: service running (ext4 vol)";;
	treadle-tmpfs) d="treadle: service running (no vol)";;
	esac
	printf '  %-38s %8s %8s\n' "$d" "$(pct "$T/$l.us" 50)" "$(pct "$T/$l.us" 99)"
done
echo "$phases"
echo "  (the rest, up to the service's first command, is s6-svscan scanning and s6-supervise spawning run)"
echo "idle footprint with $up containers: helpers PSS $((pss / up)) KiB/container ($procs processes)," \
	"sys cgroup charge $((sysmem / up / 1024)) KiB/container"
