#!/bin/bash
# scripts/check-fresh.sh: prove that the README's two commands, `make run` then
# `make test`, each succeed the first time on a fresh Debian 12 machine, as root.
#
# It builds a minimal Debian 12 root with debootstrap from this machine's
# configured Debian archive (cached as a tarball between runs), copies a clean
# clone of HEAD into it (at /work/treadle, with ../shared/conformance beside it
# when this checkout has one), and runs the two commands inside it, each first
# on a machine that has only a minimal Debian (and make).  The root is given
# what a machine gives: its own mount, pid, uts, ipc and cgroup namespaces, the
# root a mount point (pivot_root), /proc, /sys, /dev, /dev/pts, /dev/shm, /run,
# /tmp (tmpfs) and a writable cgroup hierarchy of its own (a fresh cgroup under
# ours in every hierarchy of this host, bound at the root's /sys/fs/cgroup).
# Networking is the host's: apt inside needs the archive.
#
# Exit: 0 both passed, 1 one failed, 77 skipped (not root, no archive, no
# debootstrap), 111 the fresh root could not be built or entered.
#
# Environment:
#   CHECK_FRESH_CACHE  cache directory (default /var/cache/treadle-check-fresh): the
#                      root's tarball, and the .deb files apt downloads inside (debs/)
#   CHECK_FRESH_WORK   where the root is unpacked (default /var/tmp), removed after
#   CHECK_FRESH_KEEP=1 keep the unpacked root (its path is printed)
#   CHECK_FRESH_STEPS  the commands to run inside (default "make run;make test")
# The logs of tests/run.sh inside (/tmp/treadle-tests.* there) are copied to $CHECK_FRESH_CACHE/logs/tests/
# before the root is removed, pass or fail (the path is printed).
set -uo pipefail

SUITE=bookworm
CACHE=${CHECK_FRESH_CACHE:-/var/cache/treadle-check-fresh}
WORK=${CHECK_FRESH_WORK:-/var/tmp}
STEPS=${CHECK_FRESH_STEPS:-make run;make test}
SELF=$(readlink -f "$0")
RUN_TIMEOUT=600  # seconds per step: apt, build and demo; the whole suite
TEST_TIMEOUT=900

say() { printf 'check-fresh: %s\n' "$*"; }
skip() { say "SKIP: $*"; exit 77; }
die() { say "ERROR: $*" >&2; exit 111; }

# The whole script is one function, read before it runs: editing the file
# during a run (it takes a while) cannot change the running one.
main() {
# ---------------------------------------------------------------- inside
# `check-fresh.sh --inside ROOT`: run by unshare as pid 1 of the new pid
# namespace, in new mount/uts/ipc/cgroup namespaces.  Mounts the machine's file
# systems into ROOT, pivots into it, and runs the steps.
if [ "${1:-}" = --inside ]; then
	R=$2
	set -e
	hostname treadle-fresh
	mount --make-rprivate /
	mount --bind "$R" "$R" # the new root must be a mount point for pivot_root
	mount -t proc -o nosuid,nodev,noexec proc "$R/proc"
	mount -t sysfs -o nosuid,nodev,noexec sysfs "$R/sys"
	mount -t tmpfs -o nosuid,nodev,noexec,mode=755 cgroup "$R/sys/fs/cgroup"
	# this host's hierarchies, each at the fresh cgroup made for this run
	while read -r name path; do
		if [ -L "/sys/fs/cgroup/$name" ]; then
			ln -s "$(readlink "/sys/fs/cgroup/$name")" "$R/sys/fs/cgroup/$name"
		else
			mkdir -p "$R/sys/fs/cgroup/$name"
			mount --bind "$path" "$R/sys/fs/cgroup/$name"
		fi
	done <"$R/.check-fresh-cgroups"
	mount -o remount,ro,bind "$R/sys/fs/cgroup" 2>/dev/null || true
	mount --bind /dev "$R/dev"
	mount --bind /dev/pts "$R/dev/pts"
	mount -t tmpfs -o nosuid,nodev,mode=1777 shm "$R/dev/shm"
	mount -t tmpfs -o nosuid,nodev,mode=755 run "$R/run"
	mkdir -p "$R/run/lock"
	mount -t tmpfs -o nosuid,nodev,mode=1777 tmp "$R/tmp"
	# downloaded packages are kept between runs (apt checks them against the
	# archive's fresh indices; installing stays the machine's first)
	mkdir -p "$CACHE/debs/partial"
	mount --bind "$CACHE/debs" "$R/var/cache/apt/archives"
	cd "$R"
	mkdir -p .oldroot
	pivot_root . .oldroot
	cd /
	umount -l /.oldroot
	rmdir /.oldroot
	set +e
	# pid 1 of this namespace (reaps orphans): run each step as a login
	# shell of root would, and record its outcome for the outside.
	IFS=';' read -r -a steps <<<"$STEPS"
	i=0
	for step in "${steps[@]}"; do
		i=$((i + 1))
		t=$TEST_TIMEOUT
		[ "$step" = "make run" ] && t=$RUN_TIMEOUT
		start=$(date +%s)
		echo "check-fresh: [$i] $step" >/var/log/check-fresh/step$i.log
		env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
			TERM=dumb LANG=C.UTF-8 LOGNAME=root USER=root SHELL=/bin/bash \
			timeout -k 10 "$t" setsid bash -c "cd /work/treadle && $step" </dev/null \
			>>/var/log/check-fresh/step$i.log 2>&1 &
		wait $!
		rc=$?
		echo "$rc $(($(date +%s) - start))" >/var/log/check-fresh/step$i.rc
	done
	# what a user does after the demo (README): stop the cell it left running
	env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
		timeout 120 /work/treadle/build/treadle cell down >/var/log/check-fresh/cleanup.log 2>&1
	# the test logs (tests/run.sh writes them to /tmp/treadle-tests.*) live on this namespace's /tmp, a
	# tmpfs gone when it ends: keep them on the root's disk for the outside to copy out
	for d in /tmp/treadle-tests.*; do
		[ -d "$d" ] && cp -a "$d" /var/log/check-fresh/ 2>/dev/null
	done
	exit 0
fi

# ---------------------------------------------------------------- outside
[ "$(id -u)" = 0 ] || skip "must run as root (it builds and enters a Debian root)"
cd "$(dirname "$SELF")/.." || die "no checkout"
SRC=$PWD
git -C "$SRC" rev-parse --verify -q HEAD >/dev/null || die "$SRC is not a git checkout"
for c in unshare pivot_root curl tar; do
	command -v "$c" >/dev/null || skip "$c missing"
done

# The machine's configured Debian archive (deb822 sources or sources.list): the
# first URI serving the suite itself (not -updates / -security).
archive_uri() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		awk -v suite="$SUITE" '
			function flush() { if (uri != "" && deb && (" " suites " ") ~ (" " suite " ")) { print uri; exit } uri = ""; suites = ""; deb = 0 }
			/^[ \t]*$/ { flush(); next }
			/^[ \t]*#/ { next }
			tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
			tolower($1) == "uris:" { uri = $2 }
			tolower($1) == "suites:" { $1 = ""; suites = $0 }
			END { flush() }' "$f"
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		awk -v suite="$SUITE" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) while ($i !~ /\]$/) i++; if ($2 ~ /^\[/) i++;
			if ($(i + 1) == suite) { print $i; exit } }' "$f"
	done
}
URI=$(archive_uri | head -n 1)
[ -n "$URI" ] || skip "no Debian archive for $SUITE configured in /etc/apt (sources.list.d/*.sources, sources.list)"
URI=${URI%/}
if ! curl -fsS --max-time 30 -o /dev/null "$URI/dists/$SUITE/Release" 2>/dev/null; then
	skip "the Debian archive $URI cannot be reached ($URI/dists/$SUITE/Release); nothing was checked"
fi
say "archive $URI ($SUITE), source $SRC at $(git -C "$SRC" rev-parse --short HEAD)"

# ---- the cached minimal root: debootstrap once, a tarball after
mkdir -p "$CACHE" && rm -rf "$CACHE/logs" || die "cannot create $CACHE"
key=$(printf '%s %s minbase make\n' "$URI" "$SUITE" | sha256sum | cut -c1-12)
TARBALL=$CACHE/$SUITE-minbase-$key.tar.gz
if [ ! -s "$TARBALL" ]; then
	if ! command -v debootstrap >/dev/null; then
		say "installing debootstrap (to build the fresh root)"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null ||
			skip "debootstrap is missing and could not be installed"
	fi
	boot=$(mktemp -d "$WORK/treadle-debootstrap.XXXXXX") || die "mktemp in $WORK"
	say "debootstrap $SUITE (minbase + make) from $URI into $boot (cached as $TARBALL)"
	if ! debootstrap --variant=minbase --include=make "$SUITE" "$boot" "$URI" >"$boot.log" 2>&1; then
		tail -n 20 "$boot.log" >&2
		rm -rf --one-file-system "$boot"
		die "debootstrap failed (log $boot.log)"
	fi
	rm -f "$boot.log"
	apt_clean="$boot/var/cache/apt/archives"
	rm -f "$apt_clean"/*.deb
	tar -C "$boot" -czf "$TARBALL.tmp" . && mv -f "$TARBALL.tmp" "$TARBALL" || die "cannot write $TARBALL"
	rm -rf --one-file-system "$boot"
fi

# ---- a fresh root for this run
R=$(mktemp -d "$WORK/treadle-fresh.XXXXXX") || die "mktemp in $WORK"
CG=treadle-check-fresh.$$
LOGS=$R/var/log/check-fresh
cgdirs=()
inner=
cleanup() {
	local d i
	# interrupted: unshare's death kills the namespace's pid 1 (--kill-child), and with it the namespace
	if [ -n "$inner" ]; then
		kill "$inner" 2>/dev/null
		wait "$inner" 2>/dev/null
		sleep 1
	fi
	# the pid namespace is gone (its pid 1 exited): nothing runs in the cgroups;
	# remove the subtrees made there, deepest first
	for d in "${cgdirs[@]}"; do
		[ -d "$d" ] || continue
		for i in 1 2 3 4 5; do
			find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
			[ -d "$d" ] || break
			sleep 1
		done
	done
	if [ "${CHECK_FRESH_KEEP:-}" = 1 ]; then
		say "root kept at $R"
	else
		rm -rf --one-file-system "$R"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

tar -C "$R" -xzf "$TARBALL" || die "cannot unpack $TARBALL"
chmod 0755 "$R" # it becomes /: every user (apt's _apt, the apps' proids) walks through it (after tar, which sets its mode)
# what the Debian installer writes for a machine: its name, resolver, sources
echo treadle-fresh >"$R/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\ttreadle-fresh\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$R/etc/hosts"
cp -L /etc/resolv.conf "$R/etc/resolv.conf" 2>/dev/null || true
printf 'deb %s %s main\n' "$URI" "$SUITE" >"$R/etc/apt/sources.list"
mkdir -p "$LOGS" "$R/work"

# a clean clone of HEAD (only committed work), and the conformance data beside it
git clone -q --no-hardlinks --no-checkout "$SRC" "$R/work/treadle" || die "git clone $SRC"
git -C "$R/work/treadle" checkout -q --detach "$(git -C "$SRC" rev-parse HEAD)" || die "checkout HEAD"
for shared in "$SRC/../shared" /work/shared; do
	if [ -d "$shared/conformance" ]; then
		mkdir -p "$R/work/shared" && cp -a "$shared/conformance" "$R/work/shared/" && break
	fi
done

# a cgroup of its own in every hierarchy, under ours, as the machine's root
: >"$R/.check-fresh-cgroups"
for h in /sys/fs/cgroup/*; do
	name=${h##*/}
	if [ -L "$h" ]; then
		echo "$name -" >>"$R/.check-fresh-cgroups"
		continue
	fi
	mountpoint -q "$h" || continue
	if [ -e "$h/cgroup.procs" ]; then
		# v1 controller or named hierarchy: our cgroup there (line "N:ctrls:/path")
		case $name in unified) own=$(sed -n 's/^0::\(.*\)/\1/p' /proc/self/cgroup) ;;
		*) own=$(awk -F: -v n="$name" '{ if ($2 == n) { print $3; exit } split($2, c, ","); for (i in c) if (c[i] == n || c[i] == "name=" n) { print $3; exit } }' /proc/self/cgroup) ;;
		esac
		d=$h${own%/}/$CG
		mkdir -p "$d" || die "cannot create cgroup $d"
		cgdirs+=("$d")
		if [ -e "$d/cpuset.cpus" ]; then
			cat "$(dirname "$d")/cpuset.cpus" >"$d/cpuset.cpus"
			cat "$(dirname "$d")/cpuset.mems" >"$d/cpuset.mems"
		fi
		echo "$name $d" >>"$R/.check-fresh-cgroups"
	fi
done
# a cgroup2-only host: one hierarchy at /sys/fs/cgroup itself
if [ -e /sys/fs/cgroup/cgroup.controllers ]; then
	own=$(sed -n 's/^0::\(.*\)/\1/p' /proc/self/cgroup)
	die "cgroup2-only hosts are not handled yet (own cgroup $own)"
fi

say "fresh root $R; running inside: ${STEPS//;/, then }"
# enter our cgroups, then the namespaces; the root's pid 1 is this script --inside
bash -c '
	while read -r name path; do [ "$path" = - ] || echo $$ >"$path/cgroup.procs" || exit 111; done <"$1/.check-fresh-cgroups"
	exec unshare --mount --pid --fork --kill-child --uts --ipc --cgroup --propagation private "$2" --inside "$1"' \
	check-fresh "$R" "$SELF" &
inner=$!
wait "$inner"
rc=$?
inner=
[ "$rc" = 0 ] || die "could not enter the fresh root (unshare/mounts/pivot_root exited $rc)"

# ---- the test logs out of the root (it is removed on exit): every run's, pass or fail
TESTLOGS=$CACHE/logs/tests
rm -rf "$TESTLOGS"
for d in "$LOGS"/treadle-tests.*; do
	[ -d "$d" ] || continue
	mkdir -p "$TESTLOGS" && cp -a "$d" "$TESTLOGS/" || say "cannot copy $d to $TESTLOGS"
done
[ -d "$TESTLOGS" ] && say "test logs (tests/run.sh, /tmp/treadle-tests.* inside) copied to $TESTLOGS"

# ---- report
IFS=';' read -r -a steps <<<"$STEPS"
failed=0 i=0
for step in "${steps[@]}"; do
	i=$((i + 1))
	if [ ! -r "$LOGS/step$i.rc" ]; then
		say "$step: NOT RUN"
		failed=1
		continue
	fi
	read -r src secs <"$LOGS/step$i.rc"
	if [ "$src" = 0 ]; then
		summary=$(grep -E '^[0-9]+ passed' "$LOGS/step$i.log" | tail -n 1)
		say "$step: ok (${secs}s)${summary:+: $summary}"
	else
		what="exit $src"
		[ "$src" = 124 ] && what="timed out"
		say "$step: FAILED ($what after ${secs}s); the end of its output:"
		tail -n 60 "$LOGS/step$i.log" | sed 's/^/    | /'
		failed=1
	fi
done
if [ "$failed" = 0 ]; then
	say "PASS: each of: ${STEPS//;/, } succeeded the first time on a fresh Debian $SUITE root"
else
	mkdir -p "$CACHE/logs" && cp "$LOGS"/*.log "$CACHE/logs/" 2>/dev/null &&
		say "full logs in $CACHE/logs/"
	say "FAIL"
fi
exit "$failed"
}
main "$@"; exit $? # one line: bash has read it before main runs
