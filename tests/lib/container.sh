# tests/lib/container.sh, sourced by tests/integration/4N-container-*.sh: start containers through
# `treadle container run` (the container_run() seam) in a private temp dir,
# with a unique cgroup root, and remove everything on exit.
set -u
BIN=${TREADLE_BIN:-$PWD/build/treadle}
BUILD_DIR=${TREADLE_BUILD:-$(dirname "$BIN")}
PROBE_DIR=$BUILD_DIR/helpers
[ "$(id -u)" = 0 ] || { echo "skip: needs root (namespaces, cgroups, loop devices)"; exit 77; }
command -v s6-svscan >/dev/null || { echo "skip: s6 not installed"; exit 77; }
[ -x "$PROBE_DIR/probe" ] || { echo "skip: $PROBE_DIR/probe not built (make build/helpers/probe)"; exit 77; }
[ -e /dev/loop-control ] || { echo "skip: no /dev/loop-control"; exit 77; }

T=$(mktemp -d /tmp/treadle-ct.XXXXXX)
CGROOT=treadle-test-$$
NODE=$T/node
mkdir -p "$NODE" "$T/ctl" "$T/apps"
STARTED=()
# shellcheck source=tap.sh
. "$(dirname "${BASH_SOURCE[0]}")/tap.sh"

parent_pid() { sed -n 's/.*"parent":\([0-9]*\).*/\1/p' "$T/apps/$1/data/container.json" 2>/dev/null; }
init_pid() { sed -n 's/.*"pid":\([0-9]*\).*/\1/p' "$T/apps/$1/data/container.json" 2>/dev/null; }

# service U NAME SCRIPT: a service whose run script is "#!/bin/sh\n"SCRIPT
service() {
	mkdir -p "$T/apps/$1/data/services/$2"
	printf '#!/bin/sh\n%s\n' "$3" >"$T/apps/$1/data/services/$2/run"
	chmod +x "$T/apps/$1/data/services/$2/run"
}

# start U [container run options]: start in the background, wait until
# running (container.json) or aborted; returns 1 if aborted
start() {
	local u=$1; shift
	mkdir -p "$T/apps/$u/data/services"
	STARTED+=("$u")
	"$BIN" container run --dir "$T/apps/$u" --unique "$u" --node-root "$NODE" --cgroup-root "$CGROOT" \
		--bind "$T/ctl:/run/tm_ctl" --bind "$PROBE_DIR:/run/probe:ro" "$@" >"$T/$u.log" 2>&1 &
	echo $! >"$T/$u.runpid"
	for _ in $(seq 1 200); do
		[ -s "$T/apps/$u/data/container.json" ] && return 0
		[ -e "$T/apps/$u/data/aborted" ] && { wait "$(cat "$T/$u.runpid")" 2>/dev/null; return 1; }
		sleep 0.05
	done
	return 1
}

# wait_file PATH [SECONDS]
wait_file() {
	local n=$(( ${2:-10} * 20 ))
	for _ in $(seq 1 "$n"); do [ -s "$1" ] && return 0; sleep 0.05; done
	return 1
}

# stop U: SIGTERM the container's parent (what s6-svc -d does), wait, clean up
stop() {
	local u=$1 p
	p=$(cat "$T/$u.runpid" 2>/dev/null)
	[ -n "$p" ] && kill -TERM "$p" 2>/dev/null
	for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
	[ -n "$p" ] && kill -KILL "$p" 2>/dev/null
	wait "$p" 2>/dev/null
	"$BIN" container cleanup "$NODE" "$u" "$CGROOT"
}

cg_dir() { echo "/sys/fs/cgroup/$1/$CGROOT/apps/$2"; }

container_lib_cleanup() {
	local u c
	for u in "${STARTED[@]}"; do stop "$u" >/dev/null 2>&1; done
	for c in /sys/fs/cgroup/*/; do
		[ -d "$c$CGROOT" ] || continue
		find "$c$CGROOT" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	rm -rf "$T"
}
trap container_lib_cleanup EXIT
