#!/bin/bash
# `treadle api` on a single-machine cell: every REST resource, who may do what (root, a user of its own
# proid, a user of another, a reader) on the Unix socket by peer credentials and on TCP by bearer tokens,
# JSON errors (400 with every field path for a bad manifest, 403 that changes nothing, 404), an event
# stream receiving a live event, the CLI over --api (run, show, trace, stop), and /metrics by promtool.
. "$(dirname "$0")/../lib/cell.sh"
cell_require
command -v curl >/dev/null || skip "curl not installed"
command -v setpriv >/dev/null || skip "setpriv not installed"
id daemon >/dev/null 2>&1 || skip "no user 'daemon' (the user of another proid)"
cell_setup
chmod 711 "$R" # the socket is for every user (0666); the cell root must be traversable
PORT=$((20000 + $$ % 20000))
TOK=$(mktemp "$R/tokens.XXXXXX")
printf '# token role [user]\nroot-tok-%s root\nnobody-tok-%s user nobody\nread-tok-%s reader\n' $$ $$ $$ >"$TOK"
chmod 600 "$TOK"
"$T" api --root "$R" --socket "$R/api-test.sock" --listen "127.0.0.1:$PORT" --tokens "$TOK" >"$R/api.log" 2>&1 &
APID=$!
stop_api() { kill "$APID" 2>/dev/null; wait "$APID" 2>/dev/null; }
trap 'r=$?; stop_api; (exit $r); cell_teardown' EXIT
S=$R/api-test.sock
[ -S "$R/api.sock" ] || fail "cell up started no API at $R/api.sock"
wait_for 10 test -S "$S" || fail "no socket $S"

# curl as root, as nobody (proid nobody), as daemon (another user); prints the body, then the status.
req() { curl -s -o "$R/body" -w '%{http_code}' --unix-socket "$S" "$@" >"$R/code"; cat "$R/code"; }
as() { local u=$1; shift; setpriv --reuid "$u" --regid "$(id -g "$u")" --clear-groups \
	curl -s -w '\n%{http_code}' --unix-socket "$S" "$@"; }
tcp() { curl -s -w '\n%{http_code}' "$@"; }
code() { tail -n1 <<<"$1"; }
body() { sed '$d' <<<"$1"; }
U=http://x
man='{"services":[{"name":"s","command":"exec sleep 1000","restart":{"limit":0,"interval":60}}],"memory":"100M","cpu":"5%","disk":"100M"}'

note "create as root (count 2), get, list"
[ "$(req -X POST -d "$man" "$U/instance/nobody.itapi?count=2")" = 201 ] || fail "root create: $(cat "$R/body")"
mapfile -t ids < <(python3 -c 'import json,sys; print("\n".join(json.load(sys.stdin)["instances"]))' <"$R/body")
[ ${#ids[@]} = 2 ] || fail "count=2 gave ${#ids[@]} instances: $(cat "$R/body")"
i0=${ids[0]}; e0=${i0/\#/%23}
[ "$(req "$U/instance/$e0")" = 200 ] || fail "get $i0"
grep -q '"proid":"nobody"' "$R/body" || fail "get $i0: no proid: $(cat "$R/body")"
[ "$(req "$U/instance/?match=nobody.itapi*")" = 200 ] && grep -qF "\"$i0\"" "$R/body" || fail "instance list"
[ "$(req "$U/instance/nobody.none%230000000099")" = 404 ] || fail "get of a missing instance not 404"
grep -q '"message":"nobody.none#0000000099: no such instance"' "$R/body" || fail "404 message: $(cat "$R/body")"

note "state, server, cell, allocation, identity-group, endpoint, trace, explain"
wait_for 30 sh -c "curl -s --unix-socket '$S' '$U/state/$e0' | grep -q '\"state\":\"running\"'" || fail "state of $i0 never running"
[ "$(req "$U/state/")" = 200 ] && grep -qF "\"name\":\"$i0\"" "$R/body" || fail "state list"
[ "$(req "$U/state/?match=nosuch.*")" = 200 ] && [ "$(cat "$R/body")" = "[]" ] || fail "state match"
[ "$(req "$U/server/")" = 200 ] && grep -qF "\"_id\":\"$H\"" "$R/body" || fail "server list: $(cat "$R/body")"
[ "$(req "$U/server/$H")" = 200 ] && grep -q '"present":true' "$R/body" || fail "server $H: $(cat "$R/body")"
[ "$(req "$U/server/nosuch")" = 404 ] || fail "missing server not 404"
[ "$(req "$U/cell/")" = 200 ] || fail "cell: $(cat "$R/body")"
"$T" admin alloc set ittenant/italloc --memory 1G --cpu 100% >/dev/null || fail "admin alloc set"
[ "$(req "$U/allocation/")" = 200 ] && grep -q 'ittenant/italloc' "$R/body" || fail "allocation: $(cat "$R/body")"
[ "$(req "$U/allocation/ittenant/italloc")" = 200 ] && grep -q '"name":"ittenant/italloc"' "$R/body" || fail "allocation get: $(cat "$R/body")"
[ "$(req "$U/allocation/ittenant/nosuch")" = 404 ] || fail "missing allocation not 404"
"$T" admin identity-group set itgroup --count 3 >/dev/null || fail "admin identity-group set"
[ "$(req "$U/identity-group/")" = 200 ] && grep -q itgroup "$R/body" || fail "identity-group list: $(cat "$R/body")"
[ "$(req "$U/identity-group/itgroup")" = 200 ] || fail "identity-group get: $(cat "$R/body")"
[ "$(req "$U/endpoint/nobody.itapi")" = 200 ] || fail "endpoint"
[ "$(req "$U/trace/$e0")" = 200 ] && grep -q '"event_type":"service_running"' "$R/body" || fail "trace $i0: $(cat "$R/body")"
[ "$(req "$U/trace/nobody.itapi")" = 200 ] && grep -qF "\"$i0\"" "$R/body" || fail "trace of the app"
[ "$(req "$U/scheduler/explain/$e0")" = 200 ] && grep -q '"explain"' "$R/body" || fail "explain: $(cat "$R/body")"
[ "$(req "$U/nosuch")" = 404 ] || fail "unknown resource not 404"

note "a bad manifest: 400 with every field path, nothing created"
before=$("$T" store ls /scheduled | wc -l)
[ "$(req -X POST -d '{"services":[{"name":"s","restart":{"limit":"x"}}],"memory":"lots"}' "$U/instance/nobody.itbad")" = 400 ] || fail "bad manifest not 400: $(cat "$R/body")"
python3 - "$R/body" <<'PY' || fail "bad manifest answer: $(cat "$R/body")"
import json, sys
b = json.load(open(sys.argv[1]))
errs = b["errors"]
assert b["message"].count("\n") + 1 == len(errs) and len(errs) >= 3, b
assert any(e.startswith("memory") for e in errs) and any("services[0].restart.limit" in e for e in errs) \
    and any(e.startswith("services[0]:") for e in errs), errs
PY
[ "$("$T" store ls /scheduled | wc -l)" = "$before" ] || fail "a bad manifest created something"

note "roles on the socket: a user of its own proid, of another, reads by anyone"
out=$(as nobody -X POST -d "$man" "$U/instance/nobody.itapi2"); [ "$(code "$out")" = 201 ] || fail "nobody create own proid: $out"
i2=$(body "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["instances"][0])')
out=$(as nobody -X POST -d "$man" "$U/instance/daemon.itapi"); [ "$(code "$out")" = 403 ] || fail "nobody create of daemon: $out"
grep -q "user nobody may not create instances of proid 'daemon'" <<<"$out" || fail "403 reason: $out"
out=$(as daemon -X DELETE "$U/instance/${i2/\#/%23}"); [ "$(code "$out")" = 403 ] || fail "daemon delete of nobody's: $out"
"$T" store exists "/scheduled/$i2" || fail "a denied delete changed something"
out=$(as daemon -X POST -d "{\"instances\":[\"$i2\"]}" "$U/instance/_bulk/delete"); [ "$(code "$out")" = 403 ] || fail "bulk delete denied: $out"
"$T" store exists "/scheduled/$i2" || fail "a denied bulk delete changed something"
out=$(as daemon "$U/state/"); [ "$(code "$out")" = 200 ] || fail "daemon read: $out"
out=$(as nobody -X DELETE "$U/instance/${i2/\#/%23}"); [ "$(code "$out")" = 200 ] || fail "nobody delete own: $out"
"$T" store exists "/scheduled/$i2" 2>/dev/null && fail "delete did not unschedule $i2"

note "roles on TCP: tokens"
TU=http://127.0.0.1:$PORT
out=$(tcp "$TU/state/"); [ "$(code "$out")" = 200 ] || fail "anonymous TCP read: $out"
out=$(tcp -X POST -d "$man" "$TU/instance/nobody.ittcp"); [ "$(code "$out")" = 403 ] || fail "anonymous TCP create: $out"
out=$(tcp -H "Authorization: Bearer read-tok-$$" -X POST -d "$man" "$TU/instance/nobody.ittcp"); [ "$(code "$out")" = 403 ] || fail "reader create: $out"
out=$(tcp -H "Authorization: Bearer bad" "$TU/state/"); [ "$(code "$out")" = 401 ] || fail "bad token: $out"
out=$(tcp -H "Authorization: Bearer nobody-tok-$$" -X POST -d "$man" "$TU/instance/daemon.ittcp"); [ "$(code "$out")" = 403 ] || fail "user token, other proid: $out"
out=$(tcp -H "Authorization: Bearer nobody-tok-$$" -X POST -d "$man" "$TU/instance/nobody.ittcp"); [ "$(code "$out")" = 201 ] || fail "user token create: $out"
i3=$(body "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["instances"][0])')
out=$(tcp -H "Authorization: Bearer root-tok-$$" -X POST -d "{\"instances\":[\"$i3\"]}" "$TU/instance/_bulk/delete"); [ "$(code "$out")" = 200 ] || fail "root bulk delete: $out"
"$T" store exists "/scheduled/$i3" 2>/dev/null && fail "bulk delete did not unschedule $i3"

note "a stream: snapshot, then a live event"
curl -s -N --unix-socket "$S" "$U/stream/running?filter=nobody.itapi" >"$R/stream.out" &
spid=$!
wait_for 10 grep -q '"sow_end":true' "$R/stream.out" || { kill $spid; fail "no snapshot end on the stream"; }
grep -qF "\"name\":\"$i0\"" "$R/stream.out" || { kill $spid; fail "snapshot misses $i0: $(cat "$R/stream.out")"; }
curl -s -N --unix-socket "$S" "$U/stream/trace?filter=${ids[1]/\#/%23}" >"$R/trace.out" &
tpid=$!
wait_for 10 grep -q '"sow_end":true' "$R/trace.out" || { kill $spid $tpid; fail "no snapshot end on the trace stream"; }
[ "$(req "$U/state/")" = 200 ] && grep -qF "{\"name\":\"${ids[1]}\",\"state\":\"running\"" "$R/body" || fail "state/ before the delete: $(cat "$R/body")"
[ "$(req -X DELETE "$U/instance/${ids[1]/\#/%23}")" = 200 ] || fail "root delete ${ids[1]}"
wait_for 30 grep -qF "{\"name\":\"${ids[1]}\",\"host\":null" "$R/stream.out" || { kill $spid $tpid; fail "the stream did not see ${ids[1]} stop: $(cat "$R/stream.out")"; }
wait_for 30 grep -q '"event_type":"pending_delete"' "$R/trace.out" || { kill $spid $tpid; fail "trace stream: no pending_delete: $(cat "$R/trace.out")"; }
kill $spid $tpid; wait $spid $tpid 2>/dev/null
[ "$(req "$U/state/")" = 200 ] && ! grep -qF "\"${ids[1]}\"" "$R/body" || fail "the cached state/ still lists ${ids[1]}: $(cat "$R/body")"
snap=$(curl -s -m 10 --unix-socket "$S" "$U/stream/scheduled?snapshot=1") || fail "snapshot stream did not end"
grep -q '"sow_end":true' <<<"$snap" || fail "snapshot=1: $snap"

note "the CLI over --api"
export TREADLE_API=$S
curl -s -N --unix-socket "$S" "$U/stream/trace?filter=nobody.itcli" >"$R/trace2.out" &
t2pid=$!
wait_for 10 grep -q '"sow_end":true' "$R/trace2.out" || { kill $t2pid; fail "no snapshot end on the second trace stream"; }
curl -s -N --unix-socket "$S" "$U/stream/endpoints?filter=nobody.itcli" >"$R/ep.out" &
eppid=$!
wait_for 10 grep -q '"sow_end":true' "$R/ep.out" || { kill $t2pid $eppid; fail "no snapshot end on the endpoints stream"; }
inst=$("$T" run nobody.itcli --cpu 5% --endpoint http 8000 -- /bin/sleep 1000) || fail "run --api"
[[ $inst =~ ^nobody\.itcli#[0-9]{10}$ ]] || fail "run --api printed '$inst'"
# the instance's trace shard was empty when the stream started: its first event is news too
wait_for 30 grep -qF "\"instanceid\":\"$inst\"" "$R/trace2.out" || { kill $t2pid; fail "trace stream missed $inst's first event: $(cat "$R/trace2.out")"; }
kill $t2pid; wait $t2pid 2>/dev/null
wait_for 30 grep -qF "{\"name\":\"$inst\",\"proto\":\"tcp\",\"endpoint\":\"http\",\"host\":\"$H\"" "$R/ep.out" || { kill $eppid; fail "endpoints stream: $(cat "$R/ep.out")"; }
kill $eppid; wait $eppid 2>/dev/null
[ "$(req "$U/endpoint/nobody.itcli/tcp/http")" = 200 ] || fail "endpoint get"
python3 -c 'import json,sys; e=json.load(sys.stdin); assert len(e)==1 and e[0]["port"]>0 and e[0]["endpoint"]=="http", e' <"$R/body" || fail "endpoint: $(cat "$R/body")"
[ "$(req "$U/endpoint/nobody.itcli/udp")" = 200 ] && [ "$(cat "$R/body")" = "[]" ] || fail "endpoint proto filter: $(cat "$R/body")"
"$T" show endpoints nobody.itcli | grep -q "http.*$H:" || fail "show endpoints --api: $("$T" show endpoints nobody.itcli)"
"$T" show --json | grep -qF "\"$inst\"" || fail "show --api"
"$T" trace "$inst" | grep -q pending || fail "trace --api"
# a pending instance's reason (the scheduler's explanation) over --api as over the store
big=$("$T" run nobody.itbig --memory 100000G -- /bin/true) || fail "run of a too big app --api"
wait_for 30 sh -c "\"$T\" show pending | grep -qF '$big'" || fail "show pending --api: $("$T" show pending)"
wait_for 30 sh -c "\"$T\" show pending | grep -F '$big' | grep -q 'capacity: memory'" ||
	fail "show pending --api gives no reason: $("$T" show pending)"
"$T" stop "$big" >/dev/null || fail "stop $big --api"
out=$("$T" run daemon.x --cpu 5% -- /bin/true 2>&1); rc=$?
[ "$rc" = 0 ] || fail "root run of daemon.x over the API: $out"
out=$(setpriv --reuid nobody --regid "$(id -g nobody)" --clear-groups "$T" run daemon.y --api "$S" -- /bin/true 2>&1); rc=$?
[ "$rc" = 100 ] && [ "$out" = "treadle: run: user nobody may not create instances of proid 'daemon'" ] || fail "denied run over --api: rc $rc: $out"
out=$("$T" stop nobody.none#0000000077 2>&1); rc=$?
[ "$rc" = 100 ] || fail "stop of a missing instance over --api: rc $rc"
unset TREADLE_API
out2=$("$T" stop nobody.none#0000000077 2>&1)
[ "$out" = "$out2" ] || fail "the API's message differs from the CLI's: '$out' vs '$out2'"
wait_for 30 sh -c "'$T' trace --api '$S' '$inst' | grep -q 'service_running\|/service/sleep running'" || fail "$inst never running"
"$T" trace --api "$S" -f "$inst" >"$R/follow.out" 2>&1 &
fpid=$!
"$T" stop --api "$S" "$inst" "$i0" || fail "stop --api"
wait_for 60 sh -c "! kill -0 $fpid 2>/dev/null" || { kill $fpid; fail "trace -f --api did not end: $(cat "$R/follow.out")"; }
wait $fpid; frc=$?
grep -q "delete requested" "$R/follow.out" || fail "trace -f --api missed the stop: $(cat "$R/follow.out")"
"$T" trace "$inst" >/dev/null; [ "$?" = "$frc" ] || fail "trace -f --api exit $frc differs from trace's"

note "metrics"
[ "$(req "$U/metrics")" = 200 ] || fail "metrics"
grep -q '^treadle_cell_instances{state="pending"} ' "$R/body" || fail "metrics: $(cat "$R/body")"
grep -q '^treadle_cell_servers{state="up"} 1$' "$R/body" || fail "metrics servers: $(cat "$R/body")"
if command -v promtool >/dev/null; then
	promtool check metrics <"$R/body" || fail "promtool check metrics"
else
	note "(promtool not installed: format not checked)"
fi
note "SIGTERM ends the daemon (a stream open), exit 0, nothing reported by the sanitizers"
curl -s -N --unix-socket "$S" "$U/stream/scheduled" >"$R/last.out" &
lpid=$!
wait_for 10 grep -q '"sow_end":true' "$R/last.out" || fail "no snapshot on the last stream"
kill -TERM "$APID"; wait "$APID"; arc=$?
[ "$arc" = 0 ] || fail "treadle api exited $arc on SIGTERM: $(tail -5 "$R/api.log")"
wait_for 10 sh -c "! kill -0 $lpid 2>/dev/null" || fail "the stream did not end with the daemon"
! grep -E 'runtime error|AddressSanitizer|LeakSanitizer' "$R/api.log" || fail "sanitizer report in the api log"
echo "ok: REST resources, roles (socket and TCP), errors, streams, CLI over --api, metrics"
