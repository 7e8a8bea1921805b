#!/bin/bash
# treadle store on the embedded store: every verb, exit codes, the URL from
# --store / $TREADLE_STORE / --root / $TREADLE_ROOT, and an ephemeral held by a
# process that is SIGKILLed vanishing for a waiting CLI.
set -u
BIN=${TREADLE_BIN:-$(cd "$(dirname "$0")/../.." && pwd)/build/treadle}
dir=$(mktemp -d /tmp/treadle-store-cli.XXXXXX)
holder=
cleanup() { [ -n "$holder" ] && kill -KILL "$holder" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
n=0 bad=0
check() { # description, command...
	local d=$1; shift
	n=$((n + 1))
	if "$@"; then echo "ok $n - $d"; else echo "not ok $n - $d"; bad=1; fi
}
S=(--store "file://$dir/store")

check "create prints the path" test "$("$BIN" store create /a hello "${S[@]}")" = /a
check "get returns the data" test "$("$BIN" store get /a "${S[@]}")" = hello
check "set replaces it" "$BIN" store set /a world "${S[@]}"
check "set with a stale version fails with 100" bash -c '"$0" store set /a x --version 0 "${@}" 2>/dev/null; [ $? -eq 100 ]' "$BIN" "${S[@]}"
check "stat shows version 1" bash -c '"$0" store get /a --stat "${@}" | grep -qx "version 1"' "$BIN" "${S[@]}"
check "data from stdin" bash -c 'printf "x\ny" | "$0" store set /a - "${@}" && [ "$("$0" store get /a "${@}")" = "$(printf "x\ny")" ]' "$BIN" "${S[@]}"
check "sequential create" test "$("$BIN" store create -s /a/q- "${S[@]}")" = /a/q-0000000000
check "create -p makes parents" "$BIN" store create -p /b/c/d "${S[@]}"
check "ls lists children sorted" test "$("$BIN" store ls / "${S[@]}" | tr '\n' ' ')" = "a b "
check "tree --data" bash -c '"$0" store tree --data "${@}" | grep -qx "/a = x y"' "$BIN" "${S[@]}"
check "get --json" bash -c '"$0" store get /a --json "${@}" | python3 -c "import json,sys; d=json.load(sys.stdin); assert d[\"data\"]==\"x\\ny\" and d[\"stat\"][\"version\"]==2, d"' "$BIN" "${S[@]}"
check "ls --json" bash -c '"$0" store ls / --json "${@}" | python3 -c "import json,sys; assert json.load(sys.stdin)==[\"a\",\"b\"]"' "$BIN" "${S[@]}"
check "missing node: exit 100" bash -c '"$0" store get /nope "${@}" 2>/dev/null; [ $? -eq 100 ]' "$BIN" "${S[@]}"
check "exists: 0 and 1" bash -c '"$0" store exists /a "${@}" && ! "$0" store exists /nope "${@}"' "$BIN" "${S[@]}"
check "delete non-empty fails" bash -c '! "$0" store delete /b "${@}" 2>/dev/null' "$BIN" "${S[@]}"
check "delete -r" bash -c '"$0" store delete -r /b "${@}" && ! "$0" store exists /b "${@}"' "$BIN" "${S[@]}"
check "usage error: exit 2" bash -c '"$0" store frob /a "${@}" 2>/dev/null; [ $? -eq 2 ]' "$BIN" "${S[@]}"
check "TREADLE_STORE" bash -c 'TREADLE_STORE="file://'"$dir"'/store" "$0" store exists /a' "$BIN"
check "--root DIR means DIR/store" bash -c '"$0" store exists /a --root "'"$dir"'"' "$BIN"
check "TREADLE_ROOT" bash -c 'TREADLE_ROOT="'"$dir"'" "$0" store exists /a' "$BIN"

# an ephemeral held by a live process, then SIGKILL: a waiting CLI sees it go
"$BIN" store create -e /eph owner --hold "${S[@]}" >"$dir/held" &
holder=$!
check "ephemeral appears" "$BIN" store wait /eph --timeout 10 "${S[@]}"
check "ephemeral has an owner" bash -c '! "$0" store get /eph --stat "${@}" | grep -qx "ephemeral_owner 0"' "$BIN" "${S[@]}"
"$BIN" store wait /eph --gone --timeout 10 "${S[@]}" &
waiter=$!
sleep 0.2
kill -KILL "$holder"; wait "$holder" 2>/dev/null; holder=
check "waiter sees the ephemeral go after SIGKILL" wait "$waiter"
check "ephemeral gone" bash -c '! "$0" store exists /eph "${@}"' "$BIN" "${S[@]}"
check "wait times out with 1" bash -c '"$0" store wait /never --timeout 1 "${@}"; [ $? -eq 1 ]' "$BIN" "${S[@]}"

# treadle store watch prints events
"$BIN" store watch /a --timeout 3 "${S[@]}" >"$dir/events" &
watcher=$!
sleep 0.3
"$BIN" store set /a changed "${S[@]}"
"$BIN" store create /a/w1 "${S[@]}" >/dev/null
wait "$watcher"
check "watch saw the change" grep -qx "changed /a" "$dir/events"
check "watch saw the child" grep -qx "child /a" "$dir/events"

# treadle mirror: --once, then live until SIGTERM
check "mirror --once" bash -c '"$0" mirror --dir "'"$dir"'/m1" --once / "${@}" && [ "$(cat "'"$dir"'/m1/a/.data")" = changed ] && [ -e "'"$dir"'/m1/.done" ] && [ -e "'"$dir"'/m1/.modified" ]' "$BIN" "${S[@]}"
"$BIN" mirror --dir "$dir/m2" /a "${S[@]}" &
mirror=$!
check "live mirror is ready" bash -c 'for i in $(seq 50); do [ -e "$0/m2/.modified" ] && exit 0; sleep 0.1; done; exit 1' "$dir"
"$BIN" store create /a/live L "${S[@]}" >/dev/null
check "live mirror follows a create" bash -c 'for i in $(seq 50); do [ "$(cat "$0/m2/a/live" 2>/dev/null)" = L ] && exit 0; sleep 0.1; done; exit 1' "$dir"
kill -TERM "$mirror"
check "mirror exits 0 on SIGTERM" wait "$mirror"
echo "1..$n"
exit $bad
