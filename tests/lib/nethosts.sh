# tests/lib/nethosts.sh: test hosts made of network namespaces, for multi-host cell tests (source it).
#
# Every test host is a network namespace (`ip netns add`) with `lo`, an `eth0` veth to the test's bridge,
# its own address, default route via the bridge, hostname (a UTS namespace) and /etc/hosts (a mount
# namespace with /etc/netns/<ns>/hosts bound over /etc/hosts, naming every test host). The bridge lives in
# a network namespace of its own, so nothing is added to the machine's network and no packet can leave it:
# the bridge namespace has no other interface and forwards nothing.
#
#   nh_require                  0 if namespaces, veths and bridges can be made here; else 1, NH_SKIP_REASON
#   nh_init                     NH_DIR (a fresh /tmp/treadle-nh.XXXXXX), NH_TAG, the bridge namespace
#   nh_host_add NAME            a host (NAME: a-z0-9-, up to 13): NH_NS[NAME], NH_ADDR[NAME], NH_HOSTNAME[NAME], NH_ROOT[NAME],
#                               NH_CG[NAME]; every host's hosts file gains its name
#   nh_exec NAME CMD...         run CMD in host NAME (its network, mounts, hostname), environment kept
#   nh_bg NAME CMD...           the same in the background; killed by nh_teardown (pid in NH_BG_PID)
#   nh_net_exec CMD...          run CMD in the bridge's namespace (address NH_GW)
#   nh_zk_start                 one ZooKeeper in the bridge namespace on NH_GW:2181 (tests/lib/zk.sh's
#                               config); sets NH_STORE=zk://NH_GW:2181/treadle-NH_TAG and ZK_PIDS[1]
#   nh_cell_up NAME ROLES       `treadle cell up --daemon --store NH_STORE --roles ROLES` in host NAME, with
#                               its own --root, --hostname and --cgroup-root
#   nh_cell_down NAME           `treadle cell down` of that cell (in the host); output in NH_DIR/NAME/down.out
#   nh_servers                  the hostnames present in the cell (/server.presence), one a line
#   nh_wait_servers SECS NAME.. wait until every NAME's server is present
#   nh_teardown                 cells down (masters first), background jobs, ZooKeeper, namespaces, hosts
#                               files, NH_DIR; returns 1 and prints `LEAK: ...` if anything was left
#   nh_dump                     tail of each cell's logs (call it when a test fails)
#
# Knobs: NH_SUBNET (first three octets of the test /24, default 10.79.0; it exists only inside the test's
# namespaces), NH_SELF_LOOPBACK=1 (a host's own name maps to 127.0.1.1 first in its hosts file, as on
# machines whose installer wrote that line), KEEP=1 (keep NH_DIR).
# Needs root, iproute2, util-linux (nsenter, unshare), and for the cell functions BIN (the treadle binary)
# and tests/lib/zk.sh sourced.
#
# Why not plain `ip netns exec`: it remounts /sys for the namespace, which hides /sys/fs/cgroup (the node
# agent then cannot make cgroups), and each call makes a new mount namespace, so a `cell down` would not see
# the mounts its cell made. Here a host's mount namespace is made once (persistent, like the network one),
# /sys is remounted for its network namespace with /sys/fs/cgroup moved back in, and every nh_exec of that
# host enters the same one. `ip netns exec <ns> CMD` still works for a quick look (it binds the same hosts
# file), but not for cells.

NH_SUBNET=${NH_SUBNET:-10.79.0}
NH_GW=$NH_SUBNET.254
NH_DIR=
NH_TAG=
NH_NETNS=
NH_STORE=
NH_SKIP_REASON=
NH_HOSTS=()          # host names in order of creation
NH_BG=()             # pids of nh_bg jobs
NH_BG_PID=
declare -A NH_NS NH_ADDR NH_HOSTNAME NH_ROOT NH_CG NH_ROLES

nh_require() {
	local p r
	[ "$(id -u)" = 0 ] || { NH_SKIP_REASON="needs root (network namespaces)"; return 1; }
	for p in ip nsenter unshare mount umount; do
		command -v "$p" >/dev/null 2>&1 || { NH_SKIP_REASON="$p not installed"; return 1; }
	done
	p=nhprobe$$-$RANDOM
	if ! r=$(ip netns add "$p" 2>&1); then
		NH_SKIP_REASON="cannot create a network namespace: $r"
		return 1
	fi
	r=$( { ip -n "$p" link add br0 type bridge && ip -n "$p" link add va type veth peer name vb &&
		nsenter --net="/run/netns/$p" true; } 2>&1) || NH_SKIP_REASON="cannot make a bridge or veth in a network namespace: $r"
	ip netns del "$p" 2>/dev/null
	[ -z "$NH_SKIP_REASON" ]
}

nh_init() {
	NH_DIR=$(mktemp -d /tmp/treadle-nh.XXXXXX) || return 1
	chmod 755 "$NH_DIR"   # the apps' user crosses it to reach its cell root
	local i
	# The persistent namespace files of the hosts: their parent mount must be private (else a mount
	# namespace could hold a reference to itself).
	mkdir -p "$NH_DIR/ns" /etc/netns
	_nh_write_setup
	mount --bind "$NH_DIR/ns" "$NH_DIR/ns" && mount --make-private "$NH_DIR/ns" || return 1
	# The tag names every namespace, host and cgroup root of the test: it is ours once the bridge's
	# namespace is (`ip netns add` refuses an existing name).
	for ((i = 0; i < 20; i++)); do
		NH_TAG=nh$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
		ip netns add "$NH_TAG-net" 2>/dev/null && break
	done
	[ "$i" -lt 20 ] || { echo "nethosts: cannot create a bridge namespace" >&2; return 1; }
	NH_NETNS=$NH_TAG-net
	ip -n "$NH_NETNS" link set lo up &&
		ip -n "$NH_NETNS" link add br0 type bridge &&
		ip -n "$NH_NETNS" addr add "$NH_GW/24" dev br0 &&
		ip -n "$NH_NETNS" link set br0 up
}

# Every host's hosts file, rewritten in place (the same inode stays bound over /etc/hosts).
_nh_write_hosts() {
	local h o
	for h in "${NH_HOSTS[@]}"; do
		{
			[ "${NH_SELF_LOOPBACK:-0}" = 1 ] && printf '127.0.1.1\t%s\n' "${NH_HOSTNAME[$h]}"
			printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n'
			printf '%s\t%s\n' "$NH_GW" "$NH_TAG-gw"
			for o in "${NH_HOSTS[@]}"; do printf '%s\t%s\n' "${NH_ADDR[$o]}" "${NH_HOSTNAME[$o]}"; done
		} >"/etc/netns/${NH_NS[$h]}/hosts"
	done
}

# No name server inside a host: a name missing from its hosts file fails at once (glibc's default server,
# 127.0.0.1:53 of the host, refuses) instead of timing out, and no query heads for the machine's server.
_nh_write_resolv() { # NS
	printf '# nethosts: every test host is in /etc/hosts; no name server\noptions timeout:1 attempts:1\n' \
		>"/etc/netns/$1/resolv.conf"
}

# Run inside a new host's namespaces once, from nh_host_add: hostname, hosts and resolv.conf, a /sys of its
# own network namespace (with the machine's /sys/fs/cgroup moved back in).
_nh_write_setup() {
	cat >"$NH_DIR/host-setup.sh" <<'EOF'
set -e
hostname "$1"
# Drop the copies of other tests' mounts (the machine's / may be private: their umount would not reach this
# namespace, and their loop devices would stay busy while it lives).
awk '{print $5}' /proc/self/mountinfo | grep -E '^(/tmp/|/var/tmp/|/dev/shm/|/var/lib/treadle/)' | sort -r |
	while read -r m; do umount -l "$m" 2>/dev/null || true; done
mount --bind "$2/hosts" /etc/hosts
mount --bind "$2/resolv.conf" /etc/resolv.conf
mkdir -p "$3"
mount --rbind /sys/fs/cgroup "$3"
umount -l /sys
mount -t sysfs sysfs /sys
mount --move "$3" /sys/fs/cgroup
EOF
}

nh_host_add() { # NAME
	local h=$1 n ns addr
	n=$((${#NH_HOSTS[@]} + 1))
	# its veth in the bridge namespace is v-NAME (at most 15 characters)
	[[ $h =~ ^[a-z0-9][a-z0-9-]{0,12}$ ]] || { echo "nethosts: bad host name '$h' (a-z0-9-, 1-13)" >&2; return 1; }
	[ -z "${NH_NS[$h]:-}" ] && [ "$n" -lt 254 ] || { echo "nethosts: host '$h' exists or too many" >&2; return 1; }
	ns=$NH_TAG-$h
	addr=$NH_SUBNET.$n
	NH_NS[$h]=$ns
	NH_ADDR[$h]=$addr
	NH_HOSTNAME[$h]=$NH_TAG-$h
	NH_ROOT[$h]=$NH_DIR/$h/root
	NH_CG[$h]=treadle-$NH_TAG-$h
	NH_HOSTS+=("$h")
	mkdir -p "$NH_DIR/$h" "/etc/netns/$ns"
	_nh_write_hosts
	_nh_write_resolv "$ns"
	ip netns add "$ns" || return 1
	ip -n "$ns" link set lo up &&
		ip -n "$NH_NETNS" link add "v-$h" type veth peer name eth0 netns "$ns" &&
		ip -n "$NH_NETNS" link set "v-$h" master br0 &&
		ip -n "$NH_NETNS" link set "v-$h" up &&
		ip -n "$ns" addr add "$addr/24" dev eth0 &&
		ip -n "$ns" link set eth0 up &&
		ip -n "$ns" route add default via "$NH_GW" || return 1
	touch "$NH_DIR/ns/$h.mnt" "$NH_DIR/ns/$h.uts"
	nsenter --net="/run/netns/$ns" unshare --mount="$NH_DIR/ns/$h.mnt" --uts="$NH_DIR/ns/$h.uts" \
		--propagation slave sh "$NH_DIR/host-setup.sh" "${NH_HOSTNAME[$h]}" "/etc/netns/$ns" \
		"$NH_DIR/$h/.cgroup" || { echo "nethosts: setting up host $h failed" >&2; return 1; }
}

nh_exec() { # NAME CMD...
	local h=$1
	shift
	nsenter --net="/run/netns/${NH_NS[$h]}" --mount="$NH_DIR/ns/$h.mnt" --uts="$NH_DIR/ns/$h.uts" \
		--wd="$PWD" -- "$@"
}

nh_bg() { # NAME CMD...
	local h=$1
	shift
	# exec: $! is the command itself (nsenter execs it), so nh_teardown's kill reaches it
	(exec nsenter --net="/run/netns/${NH_NS[$h]}" --mount="$NH_DIR/ns/$h.mnt" --uts="$NH_DIR/ns/$h.uts" \
		--wd="$PWD" -- "$@") &
	NH_BG_PID=$!
	NH_BG+=("$NH_BG_PID")
}

nh_net_exec() { nsenter --net="/run/netns/$NH_NETNS" -- "$@"; }

nh_zk_start() {
	local dir=$NH_DIR/zk cp i
	_zk_conf "$dir" 1 2181 || return 1
	sed -i "s/^clientPortAddress=.*/clientPortAddress=$NH_GW/" "$dir/conf1/zoo.cfg"
	cp="$dir/conf1:/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar"
	cp="$cp:/usr/share/java/slf4j-api.jar:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar"
	# nsenter execs java (no fork without a pid namespace): $! is the server
	(exec nsenter --net="/run/netns/$NH_NETNS" -- java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -cp "$cp" \
		org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/conf1/zoo.cfg") >"$dir/server1.log" 2>&1 &
	ZK_PIDS[1]=$!
	# shellcheck disable=SC2034 # zk.sh's
	ZK_PORTS[1]=2181
	ZK_HOSTS=$NH_GW:2181
	NH_STORE=zk://$ZK_HOSTS/treadle-$NH_TAG
	for ((i = 0; i < 600; i++)); do
		nh_net_exec bash -c "exec 3<>/dev/tcp/$NH_GW/2181 && printf srvr >&3 && timeout 2 cat <&3" 2>/dev/null |
			grep -q Mode: && return 0
		kill -0 "${ZK_PIDS[1]}" 2>/dev/null || break
		sleep 0.1
	done
	echo "nethosts: ZooKeeper on $ZK_HOSTS did not start" >&2
	tail -20 "$dir/server1.log" >&2
	return 1
}

nh_cell_up() { # NAME ROLES
	local h=$1
	NH_ROLES[$h]=$2
	nh_exec "$h" "$BIN" cell up --daemon --store "$NH_STORE" --roles "$2" --root "${NH_ROOT[$h]}" \
		--hostname "${NH_HOSTNAME[$h]}" --cgroup-root "${NH_CG[$h]}" --timeout 30
}

nh_cell_down() { # NAME
	local h=$1 rc
	[ -e "${NH_ROOT[$h]}/cell.json" ] || return 0
	nh_exec "$h" "$BIN" cell down --root "${NH_ROOT[$h]}" --timeout 20 >"$NH_DIR/$h/down.out" 2>&1
	rc=$?
	grep -q swept "$NH_DIR/$h/down.out" && { echo "LEAK: cell down of $h: $(cat "$NH_DIR/$h/down.out")"; rc=1; }
	return $rc
}

nh_servers() { nh_exec "${NH_HOSTS[0]}" "$BIN" store --store "$NH_STORE" ls /server.presence 2>/dev/null; }

nh_wait_servers() { # SECS NAME...
	local end=$(($(date +%s) + $1)) h have missing
	shift
	while :; do
		have=$(nh_servers)
		missing=0
		for h in "$@"; do grep -qx "${NH_HOSTNAME[$h]}" <<<"$have" || missing=1; done
		[ "$missing" = 0 ] && return 0
		[ "$(date +%s)" -ge "$end" ] && return 1
		sleep 0.2
	done
}

nh_dump() {
	local h s
	for h in "${NH_HOSTS[@]}"; do
		[ -d "${NH_ROOT[$h]}/log" ] || continue
		for s in master node running; do
			[ -f "${NH_ROOT[$h]}/log/$s/current" ] || continue
			echo "# --- host $h (${NH_HOSTNAME[$h]}, ${NH_ADDR[$h]}): log $s"
			tail -n 15 "${NH_ROOT[$h]}/log/$s/current" | sed 's/^/#   /'
		done
	done
}

nh_teardown() {
	local rc=0 h p pids c left
	[ -n "$NH_DIR" ] || return 0
	# cells: masters first (so no instance is moved while the nodes release theirs), nodes in parallel
	for h in "${NH_HOSTS[@]}"; do
		[ "${NH_ROLES[$h]:-}" = master ] && { nh_cell_down "$h" || rc=1; }
	done
	pids=()
	for h in "${NH_HOSTS[@]}"; do
		[ "${NH_ROLES[$h]:-}" = master ] && continue
		nh_cell_down "$h" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || rc=1; done
	for p in "${NH_BG[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${NH_BG[@]}"; do wait "$p" 2>/dev/null; done
	NH_BG=()
	declare -F zk_stop >/dev/null && zk_stop
	for h in "${NH_HOSTS[@]}"; do
		left=$(ip netns pids "${NH_NS[$h]}" 2>/dev/null)
		if [ -n "$left" ]; then
			echo "LEAK: processes left in host $h: $(for p in $left; do tr '\0' ' ' </proc/"$p"/cmdline; echo; done 2>/dev/null)"
			# shellcheck disable=SC2086 # one pid a word
			kill -KILL $left 2>/dev/null
			rc=1
		fi
		for c in /sys/fs/cgroup/*/"${NH_CG[$h]}" /sys/fs/cgroup/"${NH_CG[$h]}"; do
			[ -d "$c" ] || continue
			echo "LEAK: cgroup $c"
			find "$c" -depth -mindepth 1 -type d -exec rmdir {} + 2>/dev/null
			rmdir "$c" 2>/dev/null
			rc=1
		done
		umount "$NH_DIR/ns/$h.mnt" "$NH_DIR/ns/$h.uts" 2>/dev/null
		ip netns del "${NH_NS[$h]}" 2>/dev/null
		rm -rf "/etc/netns/${NH_NS[$h]}"
	done
	ip netns del "$NH_NETNS" 2>/dev/null
	rmdir /etc/netns 2>/dev/null   # only if empty (another user's hosts files stay)
	umount "$NH_DIR/ns" 2>/dev/null
	if grep -q " $NH_DIR/" /proc/self/mountinfo; then
		echo "LEAK: mounts under $NH_DIR: $(awk -v d="$NH_DIR/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo)"
		awk -v d="$NH_DIR/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l
		rc=1
	fi
	for c in $(grep -lsF -- "$NH_DIR/" /proc/[0-9]*/cmdline); do
		p=${c#/proc/}
		p=${p%/cmdline}
		c=$( { tr '\0' ' ' <"$c"; } 2>/dev/null)
		case "$c" in "grep -lsF"* | "") continue ;; esac   # the grep itself, or gone
		echo "LEAK: process $p: $c"
		kill -KILL "$p" 2>/dev/null
		rc=1
	done
	if [ "${KEEP:-0}" = 1 ]; then echo "# kept $NH_DIR"; else rm -rf "$NH_DIR"; fi
	NH_DIR=
	NH_HOSTS=()
	return $rc
}

# A test on test hosts: note (timestamped comment), wait_for SECS CMD..., and
# the hosts torn down at exit (dumped first when a check failed: FAILS of tap.sh).
nh_test_begin() {
	NH_START=$(date +%s)
	trap nh_test_finish EXIT
	trap 'exit 1' INT TERM HUP
}
note() { echo "# [$(($(date +%s) - NH_START))s] $*"; }
wait_for() { # SECS CMD...
	local end=$(($(date +%s) + $1))
	shift
	until "$@" >/dev/null 2>&1; do [ "$(date +%s)" -ge "$end" ] && return 1; sleep 0.2; done
}
nh_test_finish() {
	local rc=$?
	trap - EXIT
	[ "${FAILS:-0}" -ne 0 ] && nh_dump
	nh_teardown || rc=1
	exit $rc
}
