#!/bin/bash
# Readiness checks (docs/NODE.md "Readiness checks", MANIFEST.md): a service with an http check gating
# its endpoint `http`, on a single-machine cell.
# - while the check fails (nothing listens: the service sleeps until /tmp/healthy exists) the endpoint's
#   file data/ready/http says `down` and the service is restarted every `failures` x `interval`, each
#   restart counted in its exit history (the restart policy's log) as any other exit;
# - once /tmp/healthy exists the restarted service serves http: the file says `up` and the restarts stop;
# - a malformed check is refused by `treadle run` with the field path, exit 100;
# - the check is a real process: `check@web` under the container's s6-svscan.
. "$(dirname "$0")/../lib/cell.sh"
cell_require
command -v python3 >/dev/null || skip "python3 needed for the web server"
cell_setup

cat >"$R/bad.yml" <<'EOF2'
memory: 100M
cpu: 5%
disk: 100M
endpoints: [{name: http, port: 8000}]
services:
  - name: web
    command: exec sleep 100
    restart: {limit: 3}
    check: {tcp: 8000, command: "true", endpoints: [nope], timeout: 20}
EOF2
out=$("$T" run nobody.itbad -m "$R/bad.yml" 2>&1)
rc=$?
[ "$rc" = 100 ] || fail "treadle run with a malformed check: exit $rc ($out), expected 100"
for p in "services\[0\].check: needs exactly one of tcp, http or command" \
	"services\[0\].check.timeout: must not exceed interval" "services\[0\].check.endpoints\[0\]: no endpoint named 'nope'"; do
	echo "$out" | grep -q "$p" || fail "refusal does not say '$p': $out"
done
note "malformed check refused: $(echo "$out" | head -1)"

cat >"$R/ready.yml" <<'EOF2'
memory: 100M
cpu: 10%
disk: 100M
endpoints: [{name: http, port: 8000}]
services:
  - name: web
    command: if [ -e /tmp/healthy ]; then exec python3 -m http.server 8000; else exec sleep 1000; fi
    restart: {limit: 10, interval: 60}
    check:
      http: {port: 8000, path: /}
      interval: 1
      timeout: 1
      failures: 2
      endpoints: [http]
EOF2
inst=$("$T" run nobody.itready -m "$R/ready.yml") || fail "treadle run"
cdir_of() { ls -d "$R"/node/apps/nobody.itready-* 2>/dev/null | head -1; }
wait_for 60 sh -c "[ -n \"\$(ls -d $R/node/apps/nobody.itready-* 2>/dev/null)\" ]" || fail "no container"
cdir=$(cdir_of)
ready() { cat "$cdir/data/ready/http" 2>/dev/null; }
exits() { [ -f "$cdir/data/services/web/data/exits/log" ] && wc -l <"$cdir/data/services/web/data/exits/log" || echo 0; }
wait_for 30 sh -c "[ -f '$cdir/data/ready/http' ]" || fail "no data/ready/http"
[ "$(ready)" = down ] || fail "data/ready/http says '$(ready)' before the check passed"
wait_for 30 sh -c "[ -d '$cdir/data/services/check@web/supervise' ]" || fail "no check@web service"
wait_for 40 sh -c "[ \$( ([ -f '$cdir/data/services/web/data/exits/log' ] && wc -l <'$cdir/data/services/web/data/exits/log') || echo 0) -ge 2 ]" ||
	fail "the failing service was not restarted twice (exits: $(exits))"
[ "$(ready)" = down ] || fail "data/ready/http says '$(ready)' while the check fails"
pgrep -f "sproc check --service web" >/dev/null || fail "no checker process"
note "failing check: $(exits) restarts, ready file 'down'"
has_event "$inst" service_exited || fail "no service_exited event for the restarts"

"$T" exec "$inst" -- touch /tmp/healthy || fail "treadle exec touch /tmp/healthy"
wait_for 40 sh -c "[ \"\$(cat '$cdir/data/ready/http' 2>/dev/null)\" = up ]" || fail "data/ready/http never said up (says '$(ready)')"
n=$(exits)
sleep 4
[ "$(exits)" = "$n" ] || fail "restarts went on once the check passed ($n -> $(exits))"
[ "$(ready)" = up ] || fail "data/ready/http went back to '$(ready)'"
[ -e "$cdir/data/exitinfo" ] && fail "the instance finished"
note "passing check: ready file 'up', restarts stopped at $n"
echo "ok"
