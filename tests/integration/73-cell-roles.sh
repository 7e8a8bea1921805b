#!/bin/bash
# A node agent with nothing supervising its running dir refuses to start (exit
# 111, one line saying what is missing).  `cell up --roles`: one server runs
# the master only (daemon), another the node only, in the foreground with its
# settings from the environment (as a systemd unit runs it; options win over
# the environment); an app runs on the node server; `cell down` stops the
# foreground server (its instance finishes) and then the master server.
. "$(dirname "$0")/../lib/cell.sh"
cell_require

R=$(mktemp -d /tmp/treadle-it73.XXXXXX)
RA=$R/a RB=$R/b
HA=it73a-$$ HB=it73b-$$
CG=treadle-it73-$$
FG=
cleanup() {
	local rc=$?
	trap - EXIT
	"$T" cell down --root "$RB" --timeout 20 >/dev/null 2>&1
	"$T" cell down --root "$RA" --timeout 20 >/dev/null 2>&1
	# s6 restarts a crashed daemon: look for sanitizer reports in the logs
	if grep -l -E 'runtime error|ERROR: AddressSanitizer|ERROR: LeakSanitizer' "$RA"/log/*/current "$RB"/log/*/current 2>/dev/null; then
		grep -h -A12 -E 'runtime error|ERROR: AddressSanitizer|ERROR: LeakSanitizer' "$RA"/log/*/current "$RB"/log/*/current | head -40
		rc=1
	fi
	[ -n "$FG" ] && { kill "$FG" 2>/dev/null; wait "$FG" 2>/dev/null; }
	for c in /sys/fs/cgroup/*/"$CG"; do [ -e "$c" ] && rmdir "$c" 2>/dev/null; done
	rm -rf "$R"
	exit $rc
}
trap cleanup EXIT
unset TREADLE_STORE TREADLE_ROOT TREADLE_ROLES TREADLE_HOSTNAME TREADLE_CGROUP_ROOT
. "$(dirname "$0")/../lib/tap.sh"

# 1. the node alone, no s6-svscan on its running dir
mkdir -p "$R/lone"
t0=$(date +%s)
"$T" node --store "file://$R/lone/store" --root "$R/lone/node" --hostname lone-$$ 2>"$R/lone.err"; rc=$?
[ "$rc" = 111 ] || fail "node without s6-svscan: exit $rc, expected 111: $(cat "$R/lone.err")"
[ "$(wc -l <"$R/lone.err")" = 1 ] || fail "expected one line on stderr: $(cat "$R/lone.err")"
grep -qF "treadle: node: nothing supervises $R/lone/node/running (no s6-svscan reads $R/lone/node/running/.s6-svscan/control): run the node with \`treadle cell up --roles node\`" "$R/lone.err" ||
	fail "unexpected message: $(cat "$R/lone.err")"
[ $(( $(date +%s) - t0 )) -le 10 ] || fail "the refusal took more than 10 s"
"$T" store --store "file://$R/lone/store" exists "/server.presence/lone-$$" >/dev/null 2>&1 && fail "the refused node registered"
ok "a node without s6-svscan on its running dir exits 111 with one line saying so"

"$T" cell up --roles bogus --root "$RB" >/dev/null 2>&1; rc=$?
[ "$rc" = 2 ] || fail "--roles bogus: exit $rc, expected 2"
ok "--roles bogus is a usage error"

# 2. the master server (daemon), its own embedded store
"$T" cell up --daemon --root "$RA" --roles master --hostname "$HA" --timeout 30 || fail "cell up --roles master"
STORE=file://$RA/store
[ -e "$RA/svc/master" ] && [ ! -e "$RA/svc/node" ] && [ ! -e "$RA/svc/running" ] || fail "master-only server has the wrong services: $(ls "$RA/svc")"
ok "cell up --roles master runs only the master"

# 3. the node server in the foreground, settings from the environment (the hostname option wins)
TREADLE_ROOT=$RB TREADLE_STORE=$STORE TREADLE_ROLES=node TREADLE_HOSTNAME=wrong-$$ TREADLE_CGROUP_ROOT=$CG \
	"$T" cell up --hostname "$HB" >"$R/fg.out" 2>&1 &
FG=$!
wait_for 30 "$T" store --store "$STORE" exists "/server.presence/$HB" || fail "the node server did not register as $HB: $(cat "$R/fg.out")"
kill -0 "$FG" 2>/dev/null || fail "cell up (foreground) returned"
[ "$(cat "$RB/cell.pid")" = "$FG" ] || fail "cell.pid $(cat "$RB/cell.pid") is not the foreground process $FG"
grep -q "s6-svscan" "/proc/$FG/cmdline" || fail "the foreground process is not the s6-svscan"
grep -q '"roles": "node"' "$RB/cell.json" && grep -q "\"store\": \"$STORE\"" "$RB/cell.json" && grep -q "\"cgroup_root\": \"$CG\"" "$RB/cell.json" ||
	fail "cell.json does not have the environment's settings: $(cat "$RB/cell.json")"
"$T" store --store "$STORE" exists "/server.presence/wrong-$$" >/dev/null 2>&1 && fail "TREADLE_HOSTNAME won over --hostname"
[ -e "$RB/svc/node" ] && [ -e "$RB/svc/running" ] && [ ! -e "$RB/svc/master" ] || fail "node-only server has the wrong services: $(ls "$RB/svc")"
st=$("$T" cell status --root "$RB" --json) || fail "cell status of the node server"
echo "$st" | grep -q '"roles": "node"' || fail "cell status lacks the roles: $st"
ok "cell up in the foreground takes TREADLE_ROOT/STORE/ROLES/CGROUP_ROOT, --hostname wins, s6-svscan is the process"

inst=$("$T" run --store "$STORE" nobody.it73 --cpu 5% -- /bin/sh -c "exec sleep 73$$") || fail "treadle run"
has_event_s() { "$T" trace --store "$STORE" --json "$1" | grep -q "\"type\": *\"$2\""; }
wait_for 60 has_event_s "$inst" service_running || fail "$inst never ran on $HB"
"$T" show --store "$STORE" scheduled | grep -F "$inst" | grep -q "$HB" || fail "$inst is not on $HB"
ok "an app runs on the node server"

out=$("$T" cell down --root "$RB" 2>&1) || fail "cell down of the node server: $out"
echo "$out" | grep -q swept && fail "cell down swept: $out"
wait_for 10 bash -c "! kill -0 $FG 2>/dev/null" || fail "the foreground cell up did not exit after cell down"
wait "$FG"; FG=
"$T" trace --store "$STORE" --json "$inst" | grep -q '"finished"' || fail "$inst did not finish at cell down"
ok "cell down stops the foreground server; its instance finished, nothing swept"

out=$("$T" cell down --root "$RA" 2>&1) || fail "cell down of the master server: $out"
echo "$out" | grep -q swept && fail "cell down swept: $out"
"$T" cell status --root "$RA" >/dev/null && fail "master server still running"
ok "cell down stops the master server"
done_testing
