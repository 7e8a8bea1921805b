# tests/lib/sweep.sh: take down what a test's node left (source it; needs $BIN, the treadle binary).
#   svscan_stop RUNNING_DIR PID   s6-svscanctl -t, wait up to 10 s, then SIGKILL (nothing if PID is empty)
#   node_sweep ROOT CGROOT        `sproc cleanup` of every app under ROOT/apps, then remove CGROOT's cgroups
#                                 and the node's bridge and nft table (ROOT/node.json's network)
svscan_stop() {
	local dir=$1 pid=$2
	[ -n "$pid" ] || return 0
	s6-svscanctl -t "$dir" 2>/dev/null
	for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
}

node_sweep() {
	local root=$1 cg=$2 d c
	for d in "$root"/apps/*; do
		[ -d "$d" ] || continue
		timeout 20 "$BIN" sproc cleanup --root "$root" --cgroup-root "$cg" "$(basename "$d")" >/dev/null 2>&1
	done
	for c in /sys/fs/cgroup/*/"$cg" /sys/fs/cgroup/"$cg"; do
		[ -d "$c" ] || continue
		find "$c" -depth -mindepth 1 -type d -exec rmdir {} + 2>/dev/null
		rmdir "$c" 2>/dev/null
	done
	# a node agent run alone keeps its network when it stops (a restart adopts the containers);
	# `cell down` removes it, here the test does (docs/NETWORK.md)
	if [ -r "$root/node.json" ] && command -v python3 >/dev/null; then
		local nb nt
		read -r nb nt < <(python3 -c 'import json, sys
n = json.load(open(sys.argv[1])).get("network") or {}
print(n.get("bridge", "-"), n.get("table", "-"))' "$root/node.json" 2>/dev/null) || return 0
		[ "$nb" != - ] && ip link del "$nb" 2>/dev/null
		[ "$nt" != - ] && command -v nft >/dev/null && nft delete table ip "$nt" 2>/dev/null
	fi
	return 0
}
