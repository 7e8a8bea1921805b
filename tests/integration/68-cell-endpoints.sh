#!/bin/bash
# Endpoints: sproc run gives every endpoint a real port (port 0 = the real
# port) and the ephemeral ports, holds them while the container runs, writes
# them to app.json and TREADMILL_ENDPOINT_* / TREADMILL_EPHEMERAL_*_PORTS;
# the node agent publishes /endpoints/<proid>/<app>#<n>:<proto>:<name> =
# "<host>:<real_port>" (ephemeral) when the services run and removes them
# when the instance stops.
. "$(dirname "$0")/../lib/cell.sh"
cell_require
command -v python3 >/dev/null || skip "python3 needed for a listening service"
cell_setup

# a service that serves HTTP on its endpoint, in the host's network
cat >"$R/web.yml" <<'EOF'
memory: 100M
cpu: 10%
disk: 100M
shared_network: true
endpoints:
  - name: http
    port: 0
  - name: admin
    port: 8000
    proto: udp
ephemeral_ports:
  tcp: 2
services:
  - name: web
    command: |
      env | grep '^TREADMILL_E' | sort
      exec python3 -m http.server "$TREADMILL_ENDPOINT_HTTP" --bind 127.0.0.1
    restart:
      limit: 3
EOF
inst=$("$T" run nobody.itweb -m "$R/web.yml") || fail "treadle run"
rest=${inst#nobody.}
wait_for 30 "$T" store exists "/endpoints/nobody/$rest:tcp:http" || fail "no endpoint node for http"
v=$("$T" store get "/endpoints/nobody/$rest:tcp:http") || fail "store get"
host=${v%:*}; port=${v##*:}
[ "$host" = "$H" ] || fail "endpoint host '$host', expected $H"
[ "$port" -ge 40960 ] && [ "$port" -lt 49152 ] || fail "http real port $port outside the non-prod range"
u=$("$T" store get "/endpoints/nobody/$rest:udp:admin") || fail "no endpoint node for the udp endpoint"
uport=${u##*:}
[ "$uport" != "$port" ] || fail "two endpoints got the same port"
"$T" store get "/endpoints/nobody/$rest:udp:admin" --stat 2>&1 | grep -q "ephemeral" ||
	"$T" store get "/endpoints/nobody/$rest:udp:admin" --stat 2>&1 | grep -qi "owner" ||
	fail "endpoint node is not ephemeral"

note "treadle show endpoints"
"$T" show endpoints nobody.itweb | grep -qE "^nobody\.itweb#[0-9]+ +tcp +http +$H:$port\$" ||
	fail "show endpoints: $("$T" show endpoints nobody.itweb)"
"$T" show endpoints "nobody.itweb#*" --json | python3 -c "
import json, sys
l = json.load(sys.stdin)
assert sorted(e['endpoint'] for e in l) == ['admin', 'http'], l
assert all(e['name'] == '$inst' for e in l), l" || fail "show endpoints --json"
[ "$("$T" show endpoints nobody.nosuch | wc -l)" = 1 ] || fail "show endpoints of no instance should print the header only"

note "the service listens on its real port"
wait_for 20 python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/', timeout=2)" ||
	fail "nothing serves http on 127.0.0.1:$port"

note "app.json and the environment carry the ports"
u2=${inst/\#/-}
dir=$(ls -d "$R"/node/apps/"$u2"-* | head -1)
python3 - "$dir/data/app.json" "$port" "$uport" <<'EOF' || fail "app.json endpoints/ephemeral_ports are wrong"
import json, sys
app = json.load(open(sys.argv[1]))
eps = {e["name"]: e for e in app["endpoints"]}
assert eps["http"]["real_port"] == int(sys.argv[2]) and eps["http"]["port"] == int(sys.argv[2]), eps
assert eps["admin"]["real_port"] == int(sys.argv[3]) and eps["admin"]["port"] == 8000, eps
tcp = app["ephemeral_ports"]["tcp"]
assert len(tcp) == 2 and len(set(tcp) | {int(sys.argv[2])}) == 3, app["ephemeral_ports"]
assert app["ephemeral_ports"]["udp"] == [], app["ephemeral_ports"]
EOF
wait_for 10 sh -c "'$T' logs '$inst/web' | grep -q TREADMILL_ENDPOINT_HTTP=" || fail "the service logged no environment"
env=$("$T" logs "$inst/web" | sed 's/^[0-9-]* [0-9:.]*  *//')
echo "$env" | grep -qx "TREADMILL_ENDPOINT_HTTP=$port" || fail "TREADMILL_ENDPOINT_HTTP: $env"
echo "$env" | grep -qx "TREADMILL_ENDPOINT_ADMIN=$uport" || fail "TREADMILL_ENDPOINT_ADMIN: $env"
echo "$env" | grep -qE "^TREADMILL_EPHEMERAL_TCP_PORTS=[0-9]+ [0-9]+$" || fail "TREADMILL_EPHEMERAL_TCP_PORTS: $env"

note "a private-network container's ports stay reserved on the host"
inst2=$("$T" run nobody.itres -m /dev/stdin <<'EOF'
memory: 100M
cpu: 10%
disk: 100M
endpoints:
  - name: svc
    port: 7000
services:
  - name: s
    command: exec sleep 1000
    restart:
      limit: 0
EOF
) || fail "treadle run (private network)"
rest2=${inst2#nobody.}
wait_for 30 "$T" store exists "/endpoints/nobody/$rest2:tcp:svc" || fail "no endpoint node for the private container"
p2=$("$T" store get "/endpoints/nobody/$rest2:tcp:svc"); p2=${p2##*:}
python3 -c "
import socket, sys
s = socket.socket()
try:
    s.bind(('0.0.0.0', $p2)); s.listen(1)
except OSError:
    sys.exit(0)
sys.exit(1)" || fail "port $p2 of a running container is free on the host"

note "stop: the endpoint nodes go"
"$T" stop "$inst" "$inst2" || fail "treadle stop"
wait_for 30 sh -c "! '$T' store exists '/endpoints/nobody/$rest:tcp:http' && ! '$T' store exists '/endpoints/nobody/$rest2:tcp:svc'" ||
	fail "endpoint nodes still there after stop"
echo "ok: endpoints"
