#!/bin/bash
# treadle run merges its flags over the manifest (Treadmill's run), validates the merged manifest, and
# the cell comes from --cell / $TREADLE_CELL / global options before the command.  On a ZooKeeper cell
# the proid need not be a user of the submitting host; on a file:// cell it must.
set -uo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${TREADLE_BIN:-$SRC/build/treadle}
# shellcheck source=../lib/zk.sh
. "$SRC/tests/lib/zk.sh"
id nobody >/dev/null 2>&1 || { echo "no user nobody"; exit 77; }
D=$(mktemp -d /tmp/treadle-76.XXXXXX)
cleanup() { zk_stop; rm -rf "$D"; }
trap cleanup EXIT
. "$(dirname "$0")/../lib/tap.sh"
fail() { echo "not ok - $*"; exit 1; }

cat >"$D/app.yml" <<'YML'
memory: 100M
cpu: 10%
disk: 100M
services:
- name: S
  command: sleep 1000
  restart: {limit: 1, interval: 60}
- name: other
  command: sleep 1000
  restart: {limit: 1, interval: 60}
endpoints:
- name: http
  port: 80
YML
STORE=file://$D/store
get() { "$BIN" store --store "$STORE" get "/scheduled/$1"; }

# 1. Every flag wins over the manifest; --service picks the service the restart flags apply to.
id=$("$BIN" run nobody.web -m "$D/app.yml" --memory 333M --disk 500M --endpoint http 8080 --endpoint ssh 22 \
	--restart-limit 4 --restart-interval 30 --cpu 50% --service S --store "$STORE") || fail "run refused"
get "$id" | python3 -c '
import json, sys
m = json.load(sys.stdin)
assert (m["memory"], m["cpu"], m["disk"]) == ("333M", "50%", "500M"), m
assert m["endpoints"] == [{"name": "http", "port": 8080}, {"name": "ssh", "port": 22}], m["endpoints"]
s = {x["name"]: x for x in m["services"]}
assert s["S"]["restart"] == {"limit": 4, "interval": 30}, s
assert s["other"]["restart"] == {"limit": 1, "interval": 60}, s
assert m["proid"] == "nobody" and m["environment"] == "dev", m' || fail "merged manifest: $(get "$id")"
ok "run -m with flags: memory/cpu/disk/endpoint/restart merged over the manifest"

# 2. Without --service the restart flags apply to every service; a command replaces its service's.
id=$("$BIN" run nobody.web -m "$D/app.yml" --restart-limit 2 --service other --store "$STORE" -- /bin/echo hi 'a b') ||
	fail "run with a command refused"
get "$id" | python3 -c '
import json, sys
m = json.load(sys.stdin)
s = {x["name"]: x for x in m["services"]}
assert s["other"]["command"] == "/bin/echo hi '"'"'a b'"'"'", s
assert s["other"]["restart"]["limit"] == 2 and s["S"]["restart"]["limit"] == 1, s' || fail "command merge: $(get "$id")"
id=$("$BIN" run nobody.web -m "$D/app.yml" --restart-limit 3 --store "$STORE") || fail "run refused"
get "$id" | python3 -c '
import json, sys
m = json.load(sys.stdin)
assert [x["restart"]["limit"] for x in m["services"]] == [3, 3], m' || fail "restart on all: $(get "$id")"
ok "--service names the command's service; restart flags without it set every service"

# 3. The merged manifest is validated (field paths), exit 100, nothing stored.
before=$("$BIN" store --store "$STORE" ls /scheduled | wc -l)
out=$("$BIN" run nobody.web -m "$D/app.yml" --memory 33Q --store "$STORE" 2>&1) && fail "bad --memory accepted"
[[ $? -eq 100 && $out == *"memory: must match"* ]] || fail "bad --memory: $out"
out=$("$BIN" run nobody.web -m "$D/app.yml" --restart-limit 99 --store "$STORE" 2>&1)
[[ $? -eq 100 && $out == *"services[0].restart.limit"* ]] || fail "bad --restart-limit: $out"
out=$("$BIN" run nobody.web -m "$D/app.yml" --service nope --store "$STORE" 2>&1)
[[ $? -eq 100 && $out == *"--service nope"* ]] || fail "unknown --service: $out"
[ "$("$BIN" store --store "$STORE" ls /scheduled | wc -l)" -eq "$before" ] || fail "a refused run stored something"
ok "the merged manifest is validated; a refusal stores nothing"

# 4. --cell NAME from $TREADLE_CONF_DIR/cells/NAME.env, also as $TREADLE_CELL / $TREADMILL_CELL, and global
#    options before the command.
export TREADLE_CONF_DIR=$D/etc
mkdir -p "$D/etc/cells" "$D/root"
printf '# the test cell\nTREADLE_ROOT=%s\nTREADLE_STORE="%s"\n' "$D/root" "$STORE" >"$D/etc/cells/c76.env"
id=$("$BIN" run nobody.cell -m "$D/app.yml" --cell c76) || fail "run --cell refused"
"$BIN" show --cell c76 --json | python3 -c '
import json, sys
assert "'"$id"'" in [e["name"] for e in json.load(sys.stdin)]' || fail "show --cell"
TREADLE_CELL=c76 "$BIN" show --json | grep -q "\"$id\"" || fail "TREADLE_CELL"
TREADMILL_CELL=c76 "$BIN" show --json | grep -q "\"$id\"" || fail "TREADMILL_CELL"
"$BIN" --cell c76 show --json | grep -q "\"$id\"" || fail "treadle --cell c76 show"
"$BIN" --store "$STORE" show --json | grep -q "\"$id\"" || fail "treadle --store URL show"
printf 'TREADLE_STORE=file://%s/elsewhere\n' "$D" >"$D/etc/cells/c76b.env"
"$BIN" --store "$STORE" --cell c76b show --json | grep -q "\"$id\"" || fail "--store must win over --cell"
"$BIN" --store="$STORE" stop "$id" || fail "treadle --store=URL stop"
out=$("$BIN" --cell nosuch show 2>&1)
[[ $? -eq 100 && $(wc -l <<<"$out") -eq 1 && $out == *"cell nosuch: unknown"* ]] || fail "unknown cell: $out"
out=$("$BIN" show --cell nosuch 2>&1)
[[ $? -eq 100 && $out == *"cell nosuch: unknown"* ]] || fail "unknown cell (command option): $out"
out=$("$BIN" --bogus show 2>&1)
[[ $? -eq 2 ]] || fail "unknown global option: $out"
ok "--cell, TREADLE_CELL, TREADMILL_CELL and global --root/--store/--cell before the command"

# 5. The proid check: a file:// cell refuses an unknown user; a ZooKeeper cell leaves it to the node.
out=$("$BIN" run nosuchuser76.web -m "$D/app.yml" --store "$STORE" 2>&1)
[[ $? -eq 100 && $out == *"not a user on this host"* ]] || fail "file:// proid check: $out"
if zk_available && zk_start_single "$D/zk"; then
	id=$("$BIN" run nosuchuser76.web -m "$D/app.yml" --memory 200M --store "zk://$ZK_HOSTS") ||
		fail "zk:// run refused an unknown proid"
	"$BIN" store --store "zk://$ZK_HOSTS" get "/scheduled/$id" | grep -q '"memory":"200M"' || fail "zk:// stored"
	ok "the proid is checked on a file:// cell, not on a ZooKeeper cell"
else
	ok "# skip no ZooKeeper: zk:// proid check not tried"
fi
