#!/bin/bash
# Discovery and identity groups on a ZooKeeper cell of test hosts (tests/lib/nethosts.sh): a master on m,
# nodes on h1 and h2. Three instances of an app with a private network, two endpoints (http, which
# listens, and idle, which nothing listens on) and an identity group of 3, spread over both hosts:
# - `treadle discovery` lists every endpoint with its host:port on both hosts; --json gives the same;
# - a `--watch` started before prints each instance's endpoints as they start, and the going and coming
#   when one instance is stopped and another started (so does `--watch --api` over the cell's API);
# - `--check-state` reports http up and idle down (the node reads the container's listening sockets
#   from the kernel), and up for a shared_network app's endpoint (the host's own namespace); a readiness
#   file overrides the scan, and a real readiness check (sproc check) keeps a listening endpoint down
#   until it passes; /discovery/<host> and /discovery.state/<host> hold Treadmill's records;
# - the instances hold identities 0..2, one each (/identity-groups/<group>/<n> = {app, host}, and
#   TREADMILL_IDENTITY/_COUNT/_GROUP in their containers); a stopped instance's identity goes to the
#   instance started in its place, with no duplicate;
# - `--api` lists the same endpoints and states as the store;
# - an endpoint whose address changes (a move, as a watcher sees it) is printed again with it.
# All traffic stays inside the test's namespaces. Skips without root, s6, java/ZooKeeper or netns.
set -u
SRC=${TREADLE_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${TREADLE_BIN:-$SRC/build/treadle}
# shellcheck source=../lib/tap.sh
. "$SRC/tests/lib/tap.sh"
not() { ! "$@" 2>/dev/null; }
skip_all() { echo "ok 1 # SKIP $*"; echo "1..1"; exit 0; }
[ "$(id -u)" = 0 ] || skip_all "needs root (network namespaces, containers, cgroups)"
command -v s6-svscan >/dev/null || skip_all "s6 not installed"
[ -e /dev/loop-control ] || skip_all "no /dev/loop-control"
id nobody >/dev/null 2>&1 || skip_all "no user nobody"
command -v python3 >/dev/null || skip_all "python3 needed for the web servers"
# shellcheck source=../lib/zk.sh
. "$SRC/tests/lib/zk.sh"
zk_available || skip_all "java or /usr/share/java/zookeeper.jar missing"
# shellcheck source=../lib/nethosts.sh
. "$SRC/tests/lib/nethosts.sh"
nh_require || skip_all "$NH_SKIP_REASON"

nh_test_begin

nh_init || { notok "bridge namespace"; exit 1; }
nh_zk_start || { notok "ZooKeeper on the bridge address"; exit 1; }
for h in m h1 h2; do nh_host_add "$h" || { notok "host $h"; exit 1; }; done
export TREADLE_STORE=$NH_STORE
nh_cell_up m master >"$NH_DIR/m/up.out" 2>&1 || { notok "cell up on m"; cat "$NH_DIR/m/up.out"; }
nh_cell_up h1 node >"$NH_DIR/h1/up.out" 2>&1 &
p1=$!
nh_cell_up h2 node >"$NH_DIR/h2/up.out" 2>&1 || { notok "cell up on h2"; cat "$NH_DIR/h2/up.out"; }
wait $p1 || { notok "cell up on h1"; cat "$NH_DIR/h1/up.out"; }
assert "h1's and h2's servers are present" nh_wait_servers 30 h1 h2
T() { nh_exec m "$BIN" "$@"; }
API=${NH_ROOT[m]}/api.sock
H1=${NH_HOSTNAME[h1]} H2=${NH_HOSTNAME[h2]}

T admin identity-group set nobody.dgrp --count 3 >/dev/null || notok "admin identity-group set"
cat >"$NH_DIR/web.yml" <<'EOF'
memory: 100M
cpu: 5%
disk: 100M
identity_group: nobody.dgrp
affinity_limits:
  server: 2
endpoints:
  - name: http
    port: 8000
  - name: idle
    port: 9000
services:
  - name: web
    command: |
      echo "ID=$TREADMILL_IDENTITY/$TREADMILL_IDENTITY_COUNT/$TREADMILL_IDENTITY_GROUP"
      exec python3 -m http.server 8000
    restart:
      limit: 3
EOF

note "watchers first: the store's and the API's"
nh_bg h2 "$BIN" discovery --watch nobody.dweb >"$NH_DIR/watch.out" 2>&1
nh_bg h1 "$BIN" discovery --watch --api "$API" nobody.dweb tcp:http >"$NH_DIR/watch-api.out" 2>&1
nh_bg h1 "$BIN" discovery --watch --check-state nobody.dweb http >"$NH_DIR/watch-state.out" 2>&1

mapfile -t insts < <(T run nobody.dweb --count 3 -m "$NH_DIR/web.yml")
assert "three instances scheduled (${insts[*]})" [ "${#insts[@]}" = 3 ]
lines() { T discovery nobody.dweb "$@" 2>/dev/null; }
count_is() { [ "$(lines "${@:2}" | wc -l)" = "$1" ]; }
assert "discovery lists 6 endpoints (3 instances x http, idle)" wait_for 60 count_is 6
lines >"$NH_DIR/list"
sed 's/^/#   /' "$NH_DIR/list"
fmt_ok() { ! grep -vE "^nobody\.dweb#[0-9]{10}:tcp:(http|idle) ($H1|$H2):[0-9]+\$" "$NH_DIR/list"; }
assert "each line is <instance>:<proto>:<endpoint> <host>:<port>" fmt_ok
assert "instances on both hosts" sh -c "grep -q ' $H1:' '$NH_DIR/list' && grep -q ' $H2:' '$NH_DIR/list'"
sel_ok() { [ "$(lines tcp:http | wc -l)" = 3 ] && [ "$(lines idle | wc -l)" = 3 ] && [ -z "$(lines 'udp:*')" ]; }
assert "PROTO:ENDPOINT selects (tcp:http: 3, idle: 3, udp:*: 0)" sel_ok
assert "an instance pattern selects one instance" [ "$(T discovery "${insts[0]}" | wc -l)" = 2 ]
assert "another app's pattern selects nothing" [ -z "$(T discovery nobody.dwe)" ]
json_ok() {
	T discovery --json nobody.dweb tcp:http | python3 -c 'import json, sys
l = [json.loads(x) for x in sys.stdin]
assert len(l) == 3 and all(e["host"] and e["port"] > 0 and e["endpoint"] == "http" for e in l)'
}
assert "--json: one object a line with host and port" json_ok
T discovery nobody.dweb a:b:c 2>/dev/null
assert "a bad PROTO:ENDPOINT is a usage error (exit 2)" [ $? = 2 ]

note "state: http listens in each container, idle does not"
http_up() { [ "$(lines tcp:http --check-state | grep -c ' up$')" = 3 ]; }
assert "--check-state: http up on all 3" wait_for 30 http_up
assert "--check-state: idle down on all 3 (nothing listens on it)" [ "$(lines idle --check-state | grep -c ' down$')" = 3 ]
rec_ok() { # /discovery/<host> lists its endpoints; /discovery.state/<host> has 1 for http, 0 for idle
	local h=$1 d s
	d=$(T store get "/discovery/$h") && s=$(T store get "/discovery.state/$h") || return 1
	python3 - "$d" "$s" "$(lines)" "$h" <<'EOF'
import json, sys
d, s, out, host = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
assert d == sorted(d), d
want = set()
for l in out.splitlines():
    name, hp = l.split(" ")
    h, p = hp.rsplit(":", 1)
    if h == host:
        want.add(name + ":" + p)
assert set(x for x in d if x.startswith("nobody.dweb#")) == want, (d, want)
for x in d:
    inst, proto, ep, port = x.rsplit(":", 3)
    if inst.startswith("nobody.dweb#"):
        assert s[port] == (1 if ep == "http" else 0), (x, s)
EOF
}
assert "/discovery/$H1 and /discovery.state/$H1: Treadmill's records" wait_for 10 rec_ok "$H1"
assert "/discovery/$H2 and /discovery.state/$H2: Treadmill's records" wait_for 10 rec_ok "$H2"

note "a shared_network app: its state is read in the host's own namespace"
cat >"$NH_DIR/sh.yml" <<'EOF'
memory: 100M
cpu: 5%
disk: 100M
shared_network: true
endpoints:
  - name: http
    port: 0
services:
  - name: web
    command: exec python3 -m http.server "$TREADMILL_ENDPOINT_HTTP" --bind 0.0.0.0
    restart:
      limit: 3
EOF
T run nobody.dsh -m "$NH_DIR/sh.yml" >/dev/null || notok "treadle run nobody.dsh"
sh_up() { T discovery --check-state nobody.dsh http | grep -q ' up$'; }
assert "a shared_network app's listening endpoint is up" wait_for 40 sh_up

note "a readiness verdict (data/ready/<endpoint>) overrides the socket scan"
i0=${insts[0]}
hp=$(lines tcp:http | awk -v i="$i0:tcp:http" '$1 == i {print $2}')
h=h1
[ "${hp%:*}" = "$H2" ] && h=h2
cdir=$(readlink -f "${NH_ROOT[$h]}/node/running/$i0")
state_of() { [ "$(T discovery --check-state "$i0" tcp:http | awk '{print $3}')" = "$1" ]; }
mkdir -p "$cdir/data/ready" && echo down >"$cdir/data/ready/.http" && mv "$cdir/data/ready/.http" "$cdir/data/ready/http"
assert "$i0's http reads down while data/ready/http says down (it listens)" wait_for 15 state_of down
rm -f "$cdir/data/ready/http"
assert "and up again once the file is gone" wait_for 15 state_of up
note "a readiness check (ctr's sproc check) gates an endpoint that listens"
cat >"$NH_DIR/chk.yml" <<'EOF'
memory: 100M
cpu: 5%
disk: 100M
endpoints:
  - name: http
    port: 8000
services:
  - name: web
    command: exec python3 -m http.server 8000
    restart:
      limit: 3
    check:
      command: "test -e /tmp/ok"
      interval: 1
      timeout: 1
      failures: 100
      endpoints: [http]
EOF
chk=$(T run nobody.dchk -m "$NH_DIR/chk.yml") || notok "treadle run nobody.dchk"
chk_state() { [ "$(T discovery --check-state "$chk" http | awk '{print $3}')" = "$1" ]; }
chk_listens() { # its port listens (the http server answers) while the check fails
	local hp h2
	hp=$(T discovery "$chk" http | awk '{print $2}')
	h2=h1
	[ "${hp%:*}" = "$H2" ] && h2=h2
	nh_exec "$h2" python3 -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2).read()" "http://$hp/"
}
assert "its endpoint listens" wait_for 40 chk_listens
assert "but reads down while its check fails" chk_state down
chk_host() { local hp; hp=$(T discovery "$chk" http | awk '{print $2}'); [ "${hp%:*}" = "$H2" ] && echo h2 || echo h1; }
ch=$(chk_host)
nh_exec "$ch" "$BIN" exec --root "${NH_ROOT[$ch]}" "$chk" -- touch /tmp/ok || notok "exec touch /tmp/ok"
assert "and up once the check passes" wait_for 20 chk_state up

watch_state() { grep -qx "$i0:tcp:http $hp up" "$NH_DIR/watch-state.out" && grep -qx "$i0:tcp:http $hp down" "$NH_DIR/watch-state.out" &&
	[ "$(grep -c "^$i0:tcp:http " "$NH_DIR/watch-state.out")" -ge 3 ]; }
assert "--watch --check-state printed its state changes (up, down, up)" wait_for 10 watch_state

note "identity groups"
ids() { T store ls /identity-groups/nobody.dgrp 2>/dev/null | sort -n | tr '\n' ' '; }
ids_ok() { # identities 0 1 2, each held by a distinct live instance, whose container got it
	local i d app host h seen=""
	[ "$(ids)" = "0 1 2 " ] || return 1
	for i in 0 1 2; do
		d=$(T store get "/identity-groups/nobody.dgrp/$i") || return 1
		app=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["app"])' "$d")
		host=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["host"])' "$d")
		grep -qxF "$app" <<<"$seen" && return 1
		seen="$seen$app"$'\n'
		h=h1
		[ "$host" = "$H2" ] && h=h2
		nh_exec "$h" "$BIN" logs --root "${NH_ROOT[$h]}" "$app/web" | grep -qx "ID=$i/3/nobody.dgrp" || return 1
	done
}
assert "identities 0 1 2, one per instance, in each container's environment" wait_for 20 ids_ok
holder() { T store get "/identity-groups/nobody.dgrp/$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["app"])'; }
victim=$(holder 1)
note "stop the holder of identity 1 ($victim), start another instance"
T stop "$victim" >/dev/null || notok "stop $victim"
gone() { ! lines | grep -q "^$victim:"; }
assert "its endpoints leave discovery" wait_for 30 gone
mapfile -t more < <(T run nobody.dweb -m "$NH_DIR/web.yml")
assert "a new instance scheduled (${more[*]})" [ "${#more[@]}" = 1 ]
new_holds_1() { [ "$(holder 1)" = "${more[0]}" ]; }
assert "the new instance holds identity 1" wait_for 40 new_holds_1
assert "identities 0 1 2 again, no duplicate, environment right" wait_for 20 ids_ok

note "the watchers"
watch_saw() { # every instance's http line, the victim's going, the new one's coming
	local f=$1 i
	for i in "${insts[@]}" "${more[@]}"; do grep -qE "^$i:tcp:http ($H1|$H2):[0-9]+\$" "$f" || return 1; done
	grep -qx "$victim:tcp:http" "$f" || return 1
	[ "$(grep -n "^${more[0]}:tcp:http " "$f" | head -1 | cut -d: -f1)" -gt "$(grep -nx "$victim:tcp:http" "$f" | head -1 | cut -d: -f1)" ]
}
assert "--watch printed each instance as it started, the stopped one going, the new one after" wait_for 20 watch_saw "$NH_DIR/watch.out"
assert "--watch printed idle endpoints too (no PROTO:ENDPOINT given)" grep -q ":tcp:idle " "$NH_DIR/watch.out"
assert "--watch --api printed the same (http only)" wait_for 20 watch_saw "$NH_DIR/watch-api.out"
assert "--watch --api printed no idle endpoint" not grep -q ":idle" "$NH_DIR/watch-api.out"
sed 's/^/#   watch: /' "$NH_DIR/watch.out" | tail -4

note "--api lists what the store does"
api_same() {
	[ "$(T discovery --api "$API" --check-state nobody.dweb | sort)" = "$(T discovery --check-state nobody.dweb | sort)" ]
}
assert "discovery --api --check-state = the store's" wait_for 15 api_same
api_states() {
	local o
	o=$(T discovery --api "$API" --check-state nobody.dweb)
	[ "$(grep -c ':http .* up$' <<<"$o")" = 3 ] && [ "$(grep -c ':idle .* down$' <<<"$o")" = 3 ]
}
assert "--api: 6 lines, http up, idle down" wait_for 15 api_states

note "a move: an endpoint node's address changes in place (what a watcher sees of an instance moving)"
mv_inst=${more[0]}
T store set "/endpoints/nobody/${mv_inst#nobody.}:tcp:http" "$H1:1" >/dev/null || notok "store set"
moved() { grep -qx "$mv_inst:tcp:http $H1:1" "$NH_DIR/watch.out"; }
assert "--watch printed the endpoint's new address" wait_for 10 moved

note "teardown"
t0=$(date +%s)
trap - EXIT
out=$(mktemp /tmp/treadle-nh-down.XXXXXX)
nh_teardown >"$out" 2>&1
rc=$?
sed 's/^/# /' "$out"
rm -f "$out"
assert "teardown: nothing left ($(($(date +%s) - t0)) s)" [ "$rc" = 0 ]
note "total $(($(date +%s) - NH_START)) s"
done_testing
