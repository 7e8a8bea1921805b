# tests/lib/cell.sh: helpers for the cell end-to-end tests (sourced, not a test).
# Each test gets its own root, hostname and cgroup name, and a trap that takes
# the cell down and checks nothing was left behind.
set -u
T=${TREADLE_BIN:?TREADLE_BIN not set (run through tests/run.sh)}
SRC=${TREADLE_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}

skip() { echo "$*"; exit 77; }
fail() { echo "FAIL: $*"; cell_dump; exit 1; }
note() { echo "--- $*"; }

cell_require() {
	[ "$(id -u)" = 0 ] || skip "needs root (containers, cgroups, mounts)"
	command -v s6-svscan >/dev/null || skip "s6 not installed (scripts/install-deps.sh)"
	id nobody >/dev/null 2>&1 || skip "no user 'nobody' to run apps as"
	# The node agent and the store are other modules: fail clearly until they land.
	"$T" help node >/dev/null 2>&1 || fail "the node agent is not built into $T yet ('treadle node' missing)"
}

cell_setup() {
	R=$(mktemp -d /tmp/treadle-it.XXXXXX)
	H=it$$-$(basename "$R" | tr -dc 'a-zA-Z0-9' | tail -c 6)
	CG=treadle-it$$
	export TREADLE_ROOT=$R
	unset TREADLE_STORE
	trap cell_teardown EXIT
	"$T" cell up --daemon --hostname "$H" --cgroup-root "$CG" --timeout 30 || fail "cell up"
}

cell_dump() {
	[ -n "${R:-}" ] || return 0
	echo "=== cell $R"
	"$T" cell status 2>&1 | sed 's/^/    /'
	"$T" show 2>&1 | sed 's/^/    /'
	for s in master node running; do
		echo "=== log $s (tail)"; tail -n 15 "$R/log/$s/current" 2>/dev/null | sed 's/^/    /'
	done
	# the containers' own logs (setup errors of s6-svscan, pid 1), live and archived
	for f in "$R"/node/apps/*/data/log/current "$R"/node/archives/*/log/current; do
		[ -f "$f" ] || continue
		echo "=== ${f#"$R"/node/} (tail)"; tail -n 10 "$f" | sed 's/^/    /'
	done
}

# Checks after cell down: no process, mount or cgroup of the cell left.
cell_teardown() {
	local rc=$? left
	trap - EXIT
	if [ -n "${R:-}" ] && [ -d "$R" ]; then
		# the node's network (docs/NETWORK.md): its bridge and nft table must go with the cell
		local nb='' nt=''
		if [ -r "$R/node/node.json" ] && command -v python3 >/dev/null; then
			read -r nb nt < <(python3 -c 'import json, sys
n = json.load(open(sys.argv[1])).get("network") or {}
print(n.get("bridge", "-"), n.get("table", "-"))' "$R/node/node.json" 2>/dev/null) || true
		fi
		out=$("$T" cell down --timeout 20 2>&1) || { echo "cell down failed: $out"; rc=1; }
		if [ -n "$nb" ] && [ "$nb" != - ] && ip link show "$nb" >/dev/null 2>&1; then echo "LEAK: bridge $nb"; rc=1; fi
		if [ -n "$nt" ] && [ "$nt" != - ] && command -v nft >/dev/null && nft list table ip "$nt" >/dev/null 2>&1; then
			echo "LEAK: nft table $nt"; rc=1
		fi
		if [ -n "$(ls "$R/node/network/vips" 2>/dev/null)" ]; then echo "LEAK: VIP records $(ls "$R/node/network/vips")"; rc=1; fi
		# s6 restarts a crashed daemon: look for sanitizer reports in the logs.
		if grep -l -E 'runtime error|ERROR: AddressSanitizer|ERROR: LeakSanitizer' "$R"/log/*/current 2>/dev/null; then
			grep -h -A12 -E 'runtime error|ERROR: AddressSanitizer|ERROR: LeakSanitizer' "$R"/log/*/current | head -40
			rc=1
		fi
		if echo "$out" | grep -q 'swept'; then echo "LEAK: $out"; rc=1; fi
		left=$(grep -c " $R" /proc/self/mountinfo || true)
		[ "$left" = 0 ] || { echo "LEAK: $left mounts under $R"; grep " $R" /proc/self/mountinfo; rc=1; }
		for c in /sys/fs/cgroup/*/"$CG"; do
			[ -e "$c" ] && { echo "LEAK: cgroup $c"; rc=1; }
		done
		for p in /proc/[0-9]*; do
			c=$( { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null) || continue
			case "$c" in *"$R"*) echo "LEAK: process $(basename "$p"): $c"; rc=1 ;; esac
		done
		rm -rf "$R"
	fi
	exit $rc
}

# wait_for SECONDS CMD...: retry CMD every 0.1 s until it succeeds.
wait_for() {
	local end=$(( $(date +%s) + $1 )); shift
	until "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -ge "$end" ] && return 1
		sleep 0.1
	done
}

# Event types of an instance, one per line, in order.
events() { "$T" trace --json "$1" | sed -n 's/.*"type": *"\([a-z_]*\)".*/\1/p'; }
has_event() { events "$1" | grep -qx "$2"; }
count_event() { events "$1" | grep -cx "$2" || true; }
