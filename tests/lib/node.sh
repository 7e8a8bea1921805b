# tests/lib/node.sh, sourced by tests/integration/5N-node-*.sh: a node agent (`treadle node`)
# against an embedded store, with a real `s6-svscan N/running`, in a private
# temp dir with a unique cgroup root; everything is removed on exit.
set -u
BIN=${TREADLE_BIN:-$PWD/build/treadle}
[ "$(id -u)" = 0 ] || { echo "skip: needs root (namespaces, cgroups, loop devices)"; exit 77; }
command -v s6-svscan >/dev/null || { echo "skip: s6 not installed"; exit 77; }
[ -e /dev/loop-control ] || { echo "skip: no /dev/loop-control"; exit 77; }

T=$(mktemp -d /tmp/treadle-node.XXXXXX)
chmod 755 "$T" # services run as the proid (nobody) and must reach their dirs
CGROOT=treadle-nodetest-$$
N=$T/N
H=node1
STORE=${STORE:-file://$T/store}
SETUP_TIMEOUT=${SETUP_TIMEOUT:-30}
AGENT_PID=
SVSCAN_PID=
mkdir -p "$N/running"
# shellcheck source=tap.sh
. "$(dirname "${BASH_SOURCE[0]}")/tap.sh"
# shellcheck source=sweep.sh
. "$(dirname "${BASH_SOURCE[0]}")/sweep.sh"

st() { "$BIN" store --store "$STORE" "$@"; }

start_svscan() {
	s6-svscan "$N/running" >>"$T/svscan.log" 2>&1 &
	SVSCAN_PID=$!
}

# The agent refuses to start (exit 111) unless an s6-svscan reads N/running
# within 5 s: start_svscan first, or start_agent_nowait then start_svscan.
start_agent_nowait() {
	"$BIN" node --store "${AGENT_STORE:-$STORE}" --root "$N" --hostname "$H" --cgroup-root "$CGROOT" \
		--setup-timeout "$SETUP_TIMEOUT" "$@" >>"$T/node.log" 2>&1 &
	AGENT_PID=$!
}

start_agent() {
	start_agent_nowait "$@"
	wait_for 10 st exists "/server.presence/$H" >/dev/null
}

stop_agent() { # SIG
	[ -n "$AGENT_PID" ] || return 0
	kill -"${1:-TERM}" "$AGENT_PID" 2>/dev/null
	wait "$AGENT_PID" 2>/dev/null
	AGENT_PID=
}

# wait_for SECONDS CMD...: poll CMD every 50 ms until it succeeds
wait_for() {
	local n=$(( $1 * 20 )); shift
	for _ in $(seq 1 "$n"); do "$@" && return 0; sleep 0.05; done
	return 1
}

# place INSTANCE MANIFEST_JSON: what the cell API and the master would write
place() {
	st create -p "/scheduled/$1" "$2" >/dev/null && st create -p "/placement/$H/$1" '{"identity":null,"identity_count":null,"expires":0}' >/dev/null
}
unplace() { st delete "/placement/$H/$1" >/dev/null; }

# manifest SERVICES_JSON [extra top-level JSON members]
manifest() {
	echo "{\"proid\":\"nobody\",\"environment\":\"dev\",\"memory\":\"100M\",\"cpu\":\"10%\",\"disk\":\"100M\",\"services\":$1${2:+,$2}}"
}

# events INSTANCE: "type,data" lines of its trace, in time order
events() {
	local shard
	shard=$(printf '%04X' $(( 10#${1##*#} % 256 )))
	st ls "/trace/$shard" 2>/dev/null | grep -F "$1," | sort -t, -k2,2n | cut -d, -f4,5
}

# dir_empty DIR: no (non-dot) entries; for wait_for, which re-runs it
dir_empty() { [ -z "$(ls "$1" 2>/dev/null)" ]; }

unique_of() { ls "$N/apps" 2>/dev/null | grep -F "$(echo "$1" | tr '#' '-')-" | head -1; }

cleanup_all() {
	stop_agent TERM
	svscan_stop "$N/running" "$SVSCAN_PID"
	node_sweep "$N" "$CGROOT"
	if [ "${KEEP:-0}" = 1 ]; then echo "# kept $T"; else rm -rf "$T"; fi
}
trap cleanup_all EXIT

show_logs() { echo "# --- node.log"; sed 's/^/# /' "$T/node.log" | tail -40; }
