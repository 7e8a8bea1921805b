#!/bin/bash
# The web UI served by `treadle api` at /, in a real browser: headless Chromium driven over the DevTools
# protocol by 81-api-ui.py loads the cell overview, the apps and instances (a filter; a new instance
# appearing live and turning running), a pending
# instance's page (the scheduler's explanation) and a running instance's page (its trace, its endpoints, its
# live log tail once given a token), checks what
# each shows against the API, stops the instance and waits for its 'deleted' entry to appear live (from
# the trace stream), saves screenshots and fails on any console error.  Loopback only.
. "$(dirname "$0")/../lib/cell.sh"
cell_require
command -v chromium >/dev/null || skip "chromium not installed (scripts/install-deps.sh)"
command -v python3 >/dev/null || skip "python3 not installed"
cell_setup
# Screenshots next to this test's log (tests/run.sh sends stdout to LOGDIR/81-api-ui.sh.log), else in /tmp.
log=$(readlink /proc/$$/fd/1 || true)
if [ -f "$log" ]; then SHOTS=${log%.log}.shots; else SHOTS=$(mktemp -d /tmp/treadle-ui-shots.XXXXXX); fi
mkdir -p "$SHOTS"
PORT=$((20000 + ($$ + 7) % 20000))
printf 'ui-root-tok-%s root\n' $$ >"$R/ui-tokens"; chmod 600 "$R/ui-tokens"
export TREADLE_UI_TOKEN=ui-root-tok-$$ # the instance page's log tail: a reader is asked for a token
"$T" api --root "$R" --socket "$R/api-ui.sock" --listen "127.0.0.1:$PORT" --tokens "$R/ui-tokens" >"$R/api-ui.log" 2>&1 &
APID=$!
trap 'r=$?; kill "$APID" 2>/dev/null; wait "$APID" 2>/dev/null; (exit $r); cell_teardown' EXIT
U=http://127.0.0.1:$PORT
wait_for 10 curl -sf "$U/state/" || fail "no API at $U: $(cat "$R/api-ui.log")"

note "the UI's files are served"
curl -sf "$U/" | grep -q '<script src="/ui/app.js">' || fail "GET / is not the UI"
[ "$(curl -s -o /dev/null -w '%{content_type}' "$U/ui/app.js")" = "text/javascript; charset=utf-8" ] || fail "app.js type"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$U/ui/nosuch.js")" = 404 ] || fail "a missing UI file not 404"
curl -sf "$U/scheduler/servers" | grep -q "\"name\":\"$H\"" || fail "/scheduler/servers: $(curl -s "$U/scheduler/servers")"

note "two running instances and one that cannot be placed"
man='{"services":[{"name":"s","command":"exec sleep 1000","restart":{"limit":0,"interval":60}}],"memory":"100M","cpu":"5%","disk":"100M"}'
run=$(curl -sf -X POST --unix-socket "$R/api-ui.sock" -d "$man" "http://x/instance/nobody.uiweb?count=2") || fail "create"
big='{"services":[{"name":"s","command":"exec sleep 1000","restart":{"limit":0,"interval":60}}],"memory":"900G","cpu":"5%","disk":"100M"}'
pend=$(curl -sf -X POST --unix-socket "$R/api-ui.sock" -d "$big" "http://x/instance/nobody.uihuge") || fail "create pending"
I0=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["instances"][0])' "$run")
P0=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["instances"][0])' "$pend")
for i in $(python3 -c 'import json,sys; print(" ".join(json.loads(sys.argv[1])["instances"]))' "$run"); do
	wait_for 30 sh -c "curl -s '$U/state/${i/\#/%23}' | grep -q '\"state\":\"running\"'" || fail "$i never running"
done
wait_for 10 sh -c "curl -s '$U/state/${P0/\#/%23}' | grep -q '\"state\":\"pending\"'" || fail "$P0 not pending"

note "the browser (screenshots in $SHOTS)"
timeout 240 python3 "$(dirname "$0")/81-api-ui.py" "$U" "$R/api-ui.sock" "$SHOTS" "$H" "$I0" "$P0" "$T" stop "$I0" ||
	fail "the UI in the browser (chromium's log: $SHOTS/chromium.log)"
rm -rf "$SHOTS"/chromium-*
ls "$SHOTS"/*.png >/dev/null || fail "no screenshots"
echo "ok: web UI in headless Chromium; screenshots in $SHOTS"
