#!/bin/bash
# `treadle api` over TLS and its node-local logs, on a single-machine cell started with `cell up
# --api-listen --api-tokens --api-tls-cert --api-tls-key` (a self-signed certificate made here): HTTPS with
# curl --cacert, plain HTTP and an unknown CA refused, bad TLS settings refused at start; GET /local-app/...
# (list, one container, a service log with start/limit/order, follow across new lines and to the end of
# the container) allowed for root and the instance's proid, denied (403) to another user and to readers, on
# the socket and on TCP; `treadle logs --api` (socket and https); the server-trace and identity-groups
# streams (snapshot, since, filter, live); the node's metrics (agent loop latency, capacity) by promtool.
. "$(dirname "$0")/../lib/cell.sh"
cell_require
command -v curl >/dev/null || skip "curl not installed"
command -v openssl >/dev/null || skip "openssl not installed (the test's certificate)"
command -v setpriv >/dev/null || skip "setpriv not installed"
id daemon >/dev/null 2>&1 || skip "no user 'daemon' (the user of another proid)"

R=$(mktemp -d /tmp/treadle-it.XXXXXX)
H=it$$-$(basename "$R" | tr -dc 'a-zA-Z0-9' | tail -c 6)
CG=treadle-it$$
export TREADLE_ROOT=$R
unset TREADLE_STORE TREADLE_API TREADLE_API_TOKEN TREADLE_API_CACERT
trap cell_teardown EXIT
mkdir -m 777 "$R/out" && chmod 777 "$R/out" # what the other users write
chmod 711 "$R" # the socket is for every user (0666); the cell root must be traversable
PORT=$((40000 + $$ % 20000))
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=localhost \
	-addext "subjectAltName=IP:127.0.0.1,DNS:localhost" -keyout "$R/tls.key" -out "$R/tls.crt" 2>"$R/openssl.log" ||
	fail "openssl: $(cat "$R/openssl.log")"
chmod 600 "$R/tls.key"
printf 'root-tok-%s root\nnobody-tok-%s user nobody\nread-tok-%s reader\n' $$ $$ $$ >"$R/tokens"
chmod 600 "$R/tokens"
"$T" cell up --daemon --hostname "$H" --cgroup-root "$CG" --timeout 30 --api-listen "127.0.0.1:$PORT" \
	--api-tokens "$R/tokens" --api-tls-cert "$R/tls.crt" --api-tls-key "$R/tls.key" || fail "cell up"
S=$R/api.sock
TU=https://127.0.0.1:$PORT
U=http://x
wait_for 10 test -S "$S" || fail "no socket $S"

req() { curl -s -o "$R/body" -w '%{http_code}' --unix-socket "$S" "$@"; }
as() { local u=$1; shift; setpriv --reuid "$u" --regid "$(id -g "$u")" --clear-groups \
	curl -s -o "$R/out/body.$u" -w '%{http_code}' --unix-socket "$S" "$@"; }
tls() { curl -s -o "$R/tbody" -w '%{http_code}' --cacert "$R/tls.crt" "$@"; }

note "TLS: https with the CA, nothing in plain text, an unknown CA refused"
wait_for 10 curl -sf --cacert "$R/tls.crt" "$TU/state/" || fail "no https on $TU: $(tail -5 "$R/log/api/current")"
[ "$(tls "$TU/cell/")" = 200 ] || fail "https GET /cell/: $(cat "$R/tbody")"
curl -s -m 5 "http://127.0.0.1:$PORT/state/" >"$R/plain" 2>&1 && grep -q '^\[' "$R/plain" && fail "plain HTTP answered on the TLS port"
curl -s -m 5 "$TU/state/" >/dev/null && fail "an unknown CA was accepted"
[ "$(tls -H "Authorization: Bearer bad" "$TU/state/")" = 401 ] || fail "bad token over TLS not 401"

note "TLS settings refused at start"
"$T" api --root "$R" --socket "$R/x.sock" --listen 127.0.0.1:1 --tls-cert "$R/tls.crt" >/dev/null 2>&1; rc=$?
[ "$rc" = 2 ] || fail "--tls-cert without --tls-key: exit $rc, not 2"
"$T" api --root "$R" --socket "$R/x.sock" --tls-cert "$R/tls.crt" --tls-key "$R/tls.key" >/dev/null 2>&1; rc=$?
[ "$rc" = 2 ] || fail "TLS without --listen: exit $rc, not 2"
cp "$R/tls.key" "$R/open.key"; chmod 644 "$R/open.key"
out=$("$T" api --root "$R" --socket "$R/x.sock" --listen 127.0.0.1:1 --tls-cert "$R/tls.crt" --tls-key "$R/open.key" 2>&1); rc=$?
[ "$rc" = 100 ] && grep -q "readable by others" <<<"$out" || fail "a key readable by others: exit $rc: $out"
out=$("$T" api --root "$R" --socket "$R/x.sock" --listen 127.0.0.1:1 --tls-cert "$R/tokens" --tls-key "$R/tls.key" 2>&1); rc=$?
[ "$rc" = 100 ] && grep -q "no PEM certificate" <<<"$out" || fail "a certificate that is none: exit $rc: $out"
[ -e "$R/x.sock" ] && fail "a refused start left a socket"

note "the CLI over https (CA from TREADLE_API_CACERT)"
man='{"services":[{"name":"s","command":"i=0; while :; do i=$((i+1)); echo tick$i; sleep 0.3; done","restart":{"limit":0,"interval":60}}],"memory":"100M","cpu":"5%","disk":"100M"}'
printf '%s\n' "$man" >"$R/m.json"
out=$(TREADLE_API=$TU "$T" run nobody.itlogs -m "$R/m.json" 2>&1); rc=$?
[ "$rc" = 111 ] || fail "https without the CA: exit $rc ($out), not 111"
inst=$(TREADLE_API=$TU TREADLE_API_CACERT=$R/tls.crt TREADLE_API_TOKEN=nobody-tok-$$ "$T" run nobody.itlogs -m "$R/m.json") ||
	fail "run over https"
[[ $inst =~ ^nobody\.itlogs#[0-9]{10}$ ]] || fail "run over https printed '$inst'"
e=${inst/\#/%23}
TREADLE_API=$TU TREADLE_API_CACERT=$R/tls.crt "$T" show --json | grep -qF "\"$inst\"" || fail "show over https"

note "local-app: the node's containers, readable by anyone"
wait_for 60 sh -c "curl -s --unix-socket '$S' '$U/state/$e' | grep -q '\"state\":\"running\"'" || fail "$inst never running"
wait_for 30 sh -c "curl -s --unix-socket '$S' '$U/local-app/$e/running/service/s' | grep -q tick3" ||
	fail "no log of $inst: $(req "$U/local-app/$e/running/service/s"; cat "$R/body")"
[ "$(as daemon "$U/local-app/")" = 200 ] && grep -qF "\"name\":\"$inst\"" "$R/out/body.daemon" || fail "local-app list: $(cat "$R/out/body.daemon")"
[ "$(tls "$TU/local-app/$e")" = 200 ] && grep -q '"state":"live"' "$R/tbody" || fail "local-app of $inst: $(cat "$R/tbody")"
[ "$(req "$U/local-app/$e/running")" = 200 ] && grep -q '"services":\["s"\]' "$R/body" || fail "local-app container: $(cat "$R/body")"
uniq=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["uniq"])' "$R/body")
[ "$(req "$U/local-app/$e/$uniq/service/s")" = 200 ] && grep -qx tick1 "$R/body" || fail "log by uniq: $(head -3 "$R/body")"
[ "$(req "$U/local-app/$e/running/sys/container")" = 200 ] || fail "container log: $(cat "$R/body")"
[ "$(req "$U/local-app/$e/running/service/nosuch")" = 404 ] || fail "missing service not 404"
[ "$(req "$U/local-app/nobody.none%230000000001/running")" = 404 ] || fail "missing instance not 404"
grep -q "no container of this instance on this node" "$R/body" || fail "404 message: $(cat "$R/body")"
[ "$(req "$U/local-app/$e/running/service/s?limit=x")" = 400 ] || fail "bad limit not 400"

note "a log: start, limit, order"
[ "$(req "$U/local-app/$e/running/service/s?start=1&limit=2")" = 200 ] || fail "start/limit"
[ "$(cat "$R/body")" = "$(printf 'tick2\ntick3')" ] || fail "start=1&limit=2: $(cat "$R/body")"
[ "$(req "$U/local-app/$e/running/service/s?order=desc&limit=1")" = 200 ] || fail "order desc"
last=$(cat "$R/body"); n=${last#tick}
[[ $n =~ ^[0-9]+$ ]] && [ "$n" -ge 3 ] || fail "order=desc&limit=1: '$last'"

note "who may read logs: root and the proid; not another user, not a reader"
[ "$(as nobody "$U/local-app/$e/running/service/s")" = 200 ] || fail "nobody reads its own: $(cat "$R/out/body.nobody")"
[ "$(as daemon "$U/local-app/$e/running/service/s")" = 403 ] || fail "daemon reads nobody's: $(cat "$R/out/body.daemon")"
grep -qF "logs: user daemon may not read the logs of proid 'nobody'" "$R/out/body.daemon" || fail "403 reason: $(cat "$R/out/body.daemon")"
[ "$(tls "$TU/local-app/$e/running/service/s")" = 403 ] || fail "anonymous TCP read of a log: $(cat "$R/tbody")"
[ "$(tls -H "Authorization: Bearer read-tok-$$" "$TU/local-app/$e/running/service/s")" = 403 ] || fail "reader token read of a log"
[ "$(tls -H "Authorization: Bearer nobody-tok-$$" "$TU/local-app/$e/running/service/s")" = 200 ] || fail "user token, own proid"
[ "$(tls -H "Authorization: Bearer root-tok-$$" "$TU/local-app/$e/running/sys/container")" = 200 ] || fail "root token"

note "treadle logs --api (socket, https), allowed and denied"
"$T" logs --api "$S" "$inst" | grep -qx tick2 || fail "logs --api socket"
TREADLE_API=$TU TREADLE_API_CACERT=$R/tls.crt TREADLE_API_TOKEN=nobody-tok-$$ "$T" logs "$inst/s" | grep -qx tick2 || fail "logs over https"
out=$(setpriv --reuid daemon --regid "$(id -g daemon)" --clear-groups "$T" logs --api "$S" "$inst" 2>&1); rc=$?
[ "$rc" = 100 ] && [ "$out" = "treadle: logs: user daemon may not read the logs of proid 'nobody'" ] || fail "denied logs --api: rc $rc: $out"
out=$("$T" logs --api "$S" nobody.none#0000000001/s 2>&1); rc=$?
[ "$rc" = 100 ] || fail "logs --api of a missing instance: rc $rc: $out"

note "streams: server-trace and identity-groups (snapshot, filter, live)"
"$T" store create -p "/server-trace/0001/it83old,1000000000.000,test,server_state,up" "" || fail "store create"
# (this one over TLS, as a reader: a live stream through the suspended and resumed HTTPS connection)
curl -s -N --cacert "$R/tls.crt" -H "Authorization: Bearer read-tok-$$" "$TU/stream/server-trace?filter=it83*&since=1500000000" >"$R/st.out" &
stpid=$!
curl -s -N --unix-socket "$S" "$U/stream/identity-groups?filter=itg83" >"$R/ig.out" &
igpid=$!
wait_for 10 grep -q '"sow_end":true' "$R/st.out" || { kill $stpid $igpid; fail "no server-trace snapshot"; }
wait_for 10 grep -q '"sow_end":true' "$R/ig.out" || { kill $stpid $igpid; fail "no identity-groups snapshot"; }
grep -q it83old "$R/st.out" && { kill $stpid $igpid; fail "since: an older event in the snapshot: $(cat "$R/st.out")"; }
now=$(date +%s)
"$T" store create -p "/server-trace/0002/it83new,$now.000,test,server_blackout,maintenance" "" || fail "store create"
"$T" store create -p "/server-trace/0002/other83,$now.000,test,server_state,up" "" || fail "store create"
wait_for 10 grep -q '"servername":"it83new"' "$R/st.out" || { kill $stpid $igpid; fail "server-trace: no live event: $(cat "$R/st.out")"; }
grep -q '"event_type":"server_blackout"' "$R/st.out" && grep -q '"data":"maintenance"' "$R/st.out" || fail "server-trace event: $(cat "$R/st.out")"
"$T" store create -p /identity-groups/itg83/3 '{"host":"h83","app":"nobody.x#0000000001"}' || fail "store create"
"$T" store create -p /identity-groups/other83/1 '{"host":"h83","app":"nobody.y#0000000001"}' || fail "store create"
wait_for 10 grep -qF '"identity-group":"itg83","identity":3,"host":"h83","app":"nobody.x#0000000001"' "$R/ig.out" ||
	{ kill $stpid $igpid; fail "identity-groups: no live event: $(cat "$R/ig.out")"; }
"$T" store delete /identity-groups/itg83/3 || fail "store delete"
wait_for 10 grep -qF '"identity-group":"itg83","identity":3,"host":null' "$R/ig.out" ||
	{ kill $stpid $igpid; fail "identity-groups: no removal: $(cat "$R/ig.out")"; }
kill $stpid $igpid; wait $stpid $igpid 2>/dev/null
grep -q other83 "$R/st.out" "$R/ig.out" && fail "the filter let another server/group through"
"$T" store create /identity-groups/itg83/4 '{"host":"h84","app":"nobody.x#0000000002"}' || fail "store create"
snap=$(curl -s -m 10 --unix-socket "$S" "$U/stream/identity-groups?filter=itg83&snapshot=1") || fail "snapshot did not end"
grep -qF '"identity-group":"itg83","identity":4,"host":"h84"' <<<"$snap" && grep -q '"sow":true' <<<"$snap" || fail "identity-groups snapshot: $snap"
out=$(tls -H "Authorization: Bearer read-tok-$$" -m 5 "$TU/stream/server-trace?snapshot=1"); [ "$out" = 200 ] || fail "a reader's stream over TLS: $out"

note "metrics: the agent's loop latency and the node's capacity"
wait_for 10 sh -c "curl -s --unix-socket '$S' '$U/metrics' | grep -q '^treadle_node_agent_loop_seconds_count [1-9]'" ||
	fail "no agent loop latency: $(req "$U/metrics"; grep agent "$R/body")"
[ "$(tls "$TU/metrics")" = 200 ] || fail "metrics over TLS"
grep -q '^treadle_node_capacity_memory_bytes [1-9]' "$R/tbody" && grep -q '^treadle_node_capacity_cpus ' "$R/tbody" ||
	fail "no capacity: $(grep capacity "$R/tbody")"
if command -v promtool >/dev/null; then
	promtool check metrics <"$R/tbody" || fail "promtool check metrics"
fi

note "follow: new lines as they come, the end with the container"
curl -s -N --unix-socket "$S" "$U/local-app/$e/running/service/s?follow=1" >"$R/follow.out" &
fpid=$!
wait_for 10 grep -qx tick2 "$R/follow.out" || { kill $fpid; fail "follow: no start"; }
n0=$(grep -c '^tick' "$R/follow.out")
wait_for 20 sh -c "[ \$(grep -c '^tick' '$R/follow.out') -ge $((n0 + 3)) ]" || { kill $fpid; fail "follow: no new lines after $n0"; }
"$T" logs --api "$S" -f "$inst" >"$R/follow2.out" &
f2pid=$!
wait_for 10 grep -qx tick2 "$R/follow2.out" || { kill $fpid $f2pid; fail "logs --api -f: no start"; }
"$T" stop --api "$S" "$inst" || fail "stop"
wait_for 60 sh -c "! kill -0 $fpid 2>/dev/null" || { kill $fpid $f2pid; fail "follow did not end with the container"; }
wait_for 30 sh -c "! kill -0 $f2pid 2>/dev/null" || { kill $f2pid; fail "logs --api -f did not end with the container"; }
wait $f2pid || fail "logs --api -f exit $?"
wait_for 30 sh -c "curl -s --unix-socket '$S' '$U/local-app/$e/running' | grep -q '\"state\":\"archived\"'" || fail "not archived"
[ "$(req "$U/local-app/$e/running/service/s?limit=1")" = 200 ] && [ "$(cat "$R/body")" = tick1 ] || fail "archived log: $(cat "$R/body")"
timeout 10 curl -s --unix-socket "$S" "$U/local-app/$e/running/service/s?follow=1&tail=1" >/dev/null || fail "following an archived log did not end"
grep -E 'runtime error|AddressSanitizer|LeakSanitizer' "$R/log/api/current" && fail "sanitizer report in the api log"
echo "ok: TLS, local-app logs (roles, start/limit/order, follow), logs --api, server-trace and identity-groups streams, node metrics"
