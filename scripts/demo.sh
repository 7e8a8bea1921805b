#!/bin/bash
# scripts/demo.sh (`make run`, after the build): start a single-machine cell,
# run examples/hello.yml, and tour the CLI: show, trace, logs, a restart (the
# crashing examples/crash.yml) and a stop.  The cell is left running; stop it
# with `build/treadle cell down` (same root).
#
# Environment: TREADLE_ROOT (default /var/lib/treadle), TREADLE_BIN (default build/treadle).
set -euo pipefail
cd "$(dirname "$0")/.."
T=${TREADLE_BIN:-$PWD/build/treadle}
export TREADLE_ROOT=${TREADLE_ROOT:-/var/lib/treadle}
PROID=treadle-demo

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show_cmd() { printf '$ treadle %s\n' "$*"; "$T" "$@"; }
die() { echo "demo: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (containers need it): sudo make run"
[ -x "$T" ] || die "$T missing: run 'make' first"

if ! id "$PROID" >/dev/null 2>&1; then
	step "creating the system user '$PROID' the demo apps run as"
	useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$PROID" ||
		die "could not create user $PROID"
fi

step "cell at $TREADLE_ROOT"
if "$T" cell status >/dev/null 2>&1; then
	echo "a cell already runs there: reusing it"
else
	show_cmd cell up --daemon
fi
show_cmd cell status

step "run examples/hello.yml"
printf '$ treadle run %s.hello -m examples/hello.yml\n' "$PROID"
inst=$("$T" run "$PROID.hello" -m examples/hello.yml)
echo "$inst"

wait_event() { # instance type seconds
	local end=$(( $(date +%s) + $3 ))
	local out
	while out=$("$T" trace --json "$1" 2>/dev/null || true); [[ $out != *"\"type\":\"$2\""* ]]; do
		[ "$(date +%s)" -ge "$end" ] && return 1
		sleep 0.2
	done
}
wait_event "$inst" service_running 60 || {
	"$T" trace "$inst" || true
	die "$inst did not start; see $TREADLE_ROOT/log/node/current"
}
sleep 3 # let it print a few ticks

step "where it runs"
show_cmd show
show_cmd show endpoints "$PROID.hello"
step "its trace (exit code 100 = still running)"
show_cmd trace "$inst" || true
step "its output"
show_cmd logs "$inst/hello"

step "a restart: examples/crash.yml exits 3 after a second; its policy allows 2 restarts in 60 s"
printf '$ treadle run %s.crash -m examples/crash.yml\n' "$PROID"
crash=$("$T" run "$PROID.crash" -m examples/crash.yml)
echo "$crash"
printf '$ treadle trace --follow %s\n' "$crash"
set +e
timeout 60 "$T" trace --follow "$crash"
rc=$?
set -e
echo "(treadle trace exited with $rc: the service's exit code)"

step "a stop"
show_cmd stop "$inst"
printf '$ treadle trace --follow %s\n' "$inst"
timeout 30 "$T" trace --follow "$inst" || true
show_cmd show all

step "a web server with an endpoint: examples/web.yml (private network, port 8000 inside)"
printf '$ treadle run %s.web -m examples/web.yml\n' "$PROID"
web=$("$T" run "$PROID.web" -m examples/web.yml)
echo "$web"
wait_event "$web" service_running 60 || die "$web did not start; see $TREADLE_ROOT/log/node/current"
ep=""
for _ in $(seq 50); do
	ep=$("$T" show endpoints "$PROID.web" | awk '$3 == "http" {print $4}')
	[ -n "$ep" ] && break
	sleep 0.2
done
show_cmd show endpoints "$PROID.web"
printf '$ curl -s http://%s/ | head -3\n' "$ep"
ok=""
for _ in $(seq 50); do
	if out=$(python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode()[:120])' "http://$ep/" 2>/dev/null); then
		echo "$out"
		ok=1
		break
	fi
	sleep 0.2
done
[ -n "$ok" ] || die "http://$ep/ did not answer"
show_cmd stop "$web"

step "done"
cat <<MSG
The cell keeps running at $TREADLE_ROOT (master, node agent, containers under s6).
Try:   $T run $PROID.hello -m examples/hello.yml
       $T show;  $T trace --follow INSTANCE;  $T logs -f INSTANCE/hello
Stop:  $T cell down        (TREADLE_ROOT=$TREADLE_ROOT)
MSG
