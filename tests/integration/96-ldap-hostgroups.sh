#!/bin/bash
# LDAP host groups (docs/CELL.md "LDAP host groups") against a real OpenLDAP slapd started here (its own
# config and database in a temporary directory, on a loopback port; /etc/ldap is only read for the schema).
# Three servers on one embedded store: A the master with `cell up --ldap-*` (the hostgroups service), B and
# C nodes.  The members of cn=<proid>,ou=groups that name servers follow the placements exactly: stale ones
# removed at start, first placement adds, last removal deletes, through a move (B blacked out), a stop, and
# changes made while the daemon was SIGKILLed and kept down (reconciled when it is back).  A member that is
# not a server is never touched.
. "$(dirname "$0")/../lib/cell.sh"
cell_require
. "$(dirname "$0")/../lib/tap.sh"
command -v slapd >/dev/null || [ -x /usr/sbin/slapd ] || skip "slapd not installed (scripts/install-deps.sh)"
command -v ldapsearch >/dev/null || skip "ldap-utils not installed (scripts/install-deps.sh)"
SLAPD=$(command -v slapd || echo /usr/sbin/slapd)
id daemon >/dev/null 2>&1 || skip "no user 'daemon' for the second proid"

R=$(mktemp -d /tmp/treadle-it96.XXXXXX)
RA=$R/a RB=$R/b RC=$R/c L=$R/ldap
HA=it96a-$$ HB=it96b-$$ HC=it96c-$$
CG=treadle-it96-$$
BASE=dc=example,dc=org ADMIN=cn=admin,dc=example,dc=org
cleanup() {
	local rc=$?
	trap - EXIT
	for r in "$RC" "$RB" "$RA"; do
		[ -d "$r/svc" ] && { "$T" cell down --root "$r" --timeout 20 >/dev/null 2>&1 || { echo "cell down $r failed"; rc=1; }; }
		echo "# cell down $r at $(date +%T)"
	done
	[ -f "$L/slapd.pid" ] && kill "$(cat "$L/slapd.pid")" 2>/dev/null
	for _ in $(seq 50); do [ -f "$L/slapd.pid" ] && kill -0 "$(cat "$L/slapd.pid")" 2>/dev/null || break; sleep 0.1; done
	if grep -l -E 'runtime error|ERROR: AddressSanitizer|ERROR: LeakSanitizer' "$R"/*/log/*/current 2>/dev/null; then
		grep -h -A12 -E 'runtime error|ERROR: AddressSanitizer|ERROR: LeakSanitizer' "$R"/*/log/*/current | head -40
		rc=1
	fi
	for p in /proc/[0-9]*; do
		c=$( { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null) || continue
		case "$c" in *"$R"/*) echo "LEAK: process $(basename "$p"): $c"; rc=1 ;; esac
	done
	rm -rf "$R"
	exit $rc
}
trap cleanup EXIT
unset TREADLE_STORE TREADLE_ROOT TREADLE_ROLES TREADLE_HOSTNAME TREADLE_CGROUP_ROOT
fail() {
	echo "FAIL: $*"
	[ -f "$RA/log/hostgroups/current" ] && { echo "=== hostgroups"; tail -n 30 "$RA/log/hostgroups/current" | sed 's/^/    /'; }
	[ -f "$RA/log/master/current" ] && { echo "=== master"; tail -n 10 "$RA/log/master/current" | sed 's/^/    /'; }
	exit 1
}
ST() { "$T" store --store "file://$RA/store" "$@"; }
t_start=$(date +%s)

# --- the directory: slapd -f with its own config, database and pid file, on a free loopback port
mkdir -p "$L/db"
PORT=
for p in $(shuf -i 20000-40000 -n 20); do
	(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { PORT=$p; break; }
done
[ -n "$PORT" ] || fail "no free port"
URL=ldap://127.0.0.1:$PORT
cat >"$L/slapd.conf" <<EOF
include /etc/ldap/schema/core.schema
pidfile $L/slapd.pid
argsfile $L/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
maxsize 10485760
suffix "$BASE"
rootdn "$ADMIN"
rootpw secret
directory $L/db
EOF
printf 'secret\n' >"$L/password"
"$SLAPD" -f "$L/slapd.conf" -h "$URL/" || fail "slapd did not start"
wait_for 10 ldapsearch -x -H "$URL" -D "$ADMIN" -w secret -b "" -s base || fail "slapd does not answer on $URL"
LS() { ldapsearch -LLL -x -o ldif-wrap=no -H "$URL" -D "$ADMIN" -w secret "$@"; }
LM() { ldapmodify -x -H "$URL" -D "$ADMIN" -w secret "$@" >/dev/null; }
group() {
	printf 'dn: cn=%s,ou=groups,%s\nobjectClass: groupOfNames\ncn: %s\nmember: cn=placeholder,%s\n' "$1" "$BASE" "$1" "$BASE"
	shift 1
	for m in "$@"; do printf 'member: %s\n' "$m"; done
	echo
}
{
	printf 'dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: example\n\n' "$BASE"
	printf 'dn: ou=groups,%s\nobjectClass: organizationalUnit\nou: groups\n\n' "$BASE"
	printf 'dn: ou=servers,%s\nobjectClass: organizationalUnit\nou: servers\n\n' "$BASE"
	# stale members from an earlier life: reconciled away at start; a person stays
	group nobody "cn=$HC,ou=servers,$BASE" "cn=alice,ou=people,$BASE"
	group daemon
	group ghost "cn=$HB,ou=servers,$BASE"
} | ldapadd -x -H "$URL" -D "$ADMIN" -w secret >/dev/null || fail "ldapadd"
ok "slapd on $URL with its own config in $L"

# The server members of every group, "proid host" sorted, from the directory ...
members() {
	LS -b "ou=groups,$BASE" -s one '(objectClass=groupOfNames)' member |
		awk -v suf=",ou=servers,$BASE" '
			/^dn: cn=/ { g = $2; sub(/^cn=/, "", g); sub(/,.*/, "", g) }
			/^member: cn=/ { m = $2; if (substr(m, length(m) - length(suf) + 1) == suf) { sub(/^cn=/, "", m); sub(/,.*/, "", m); print g, m } }' |
		sort -u
}
# ... and from the placements in the store.
placed() {
	for h in $(ST ls /placement 2>/dev/null); do
		for i in $(ST ls "/placement/$h" 2>/dev/null); do echo "${i%%.*} $h"; done
	done | sort -u
}
# every placed instance, "host instance" a line
ls_placed() { for h in "$HB" "$HC"; do ST ls "/placement/$h" 2>/dev/null | sed "s/^/$h /"; done; }
n_placed() { ls_placed | grep -c -- "$1"; }
is_n_placed() { [ "$(n_placed "$1")" = "$2" ]; }
in_sync() { [ "$(members)" = "$(placed)" ]; }
check_sync() {
	wait_for 20 in_sync || fail "$1: directory [$(members | tr '\n' ';')] != placements [$(placed | tr '\n' ';')]"
	# and it stays so (no late extra change)
	sleep 1
	in_sync || fail "$1: drifted: directory [$(members | tr '\n' ';')] != placements [$(placed | tr '\n' ';')]"
}

# --- the cell
"$T" cell up --daemon --root "$RA" --roles master --hostname "$HA" --timeout 30 --ldap-url "$URL" \
	--ldap-group-dn "cn={proid},ou=groups,$BASE" --ldap-server-dn "cn={host},ou=servers,$BASE" \
	--ldap-bind-dn "$ADMIN" --ldap-password-file "$L/password" || fail "cell up A"
[ -d "$RA/svc/hostgroups" ] || fail "no hostgroups service: $(ls "$RA/svc")"
for x in B C; do
	eval "r=\$R$x h=\$H$x"
	"$T" cell up --daemon --root "$r" --roles node --store "file://$RA/store" --hostname "$h" \
		--cgroup-root "$CG$x" --network none --timeout 30 || fail "cell up $x"
done
wait_for 20 grep -q 'leading' "$RA/log/hostgroups/current" || fail "hostgroups never led"
check_sync "start"
LS -b "cn=nobody,ou=groups,$BASE" member | grep -q "cn=alice,ou=people" || fail "a member that is not a server was removed"
LS -b "cn=nobody,ou=groups,$BASE" member | grep -q "cn=placeholder" || fail "the placeholder was removed"
ok "start: stale members removed ($HC from nobody, $HB from ghost), others kept"

tag=96$$
"$T" run --store "file://$RA/store" nobody.hga --count 3 -- sleep "${tag}1" >/dev/null || fail "run nobody"
db=$("$T" run --store "file://$RA/store" daemon.hgb -- sleep "${tag}2") || fail "run daemon"
wait_for 30 is_n_placed '#' 4 ||
	fail "4 instances not placed: $(placed | tr '\n' ';')"
check_sync "placed"
ok "placed: $(members | tr '\n' ';')"

note "blackout B: its instances move to C"
"$T" admin --store "file://$RA/store" blackout set server "$HB" --reason it96 || fail "blackout"
wait_for 40 is_n_placed "^$HC .*#" 4 ||
	fail "instances not moved to C: $(placed | tr '\n' ';')"
check_sync "moved"
members | grep -q " $HB\$" && fail "B still a member after the move"
ok "moved to C: $(members | tr '\n' ';')"
"$T" admin --store "file://$RA/store" blackout clear server "$HB" || fail "blackout clear"

note "stop daemon.hgb: the last daemon instance goes"
"$T" stop --store "file://$RA/store" "$db" >/dev/null || fail "stop"
wait_for 30 is_n_placed daemon 0 || fail "daemon.hgb still placed"
check_sync "stopped"
members | grep -q '^daemon ' && fail "a server left in the daemon group"
ok "last instance of daemon stopped: its group has no server member"

note "SIGKILL hostgroups and keep it down; change placements and the directory meanwhile"
pid=$(s6-svstat -o pid "$RA/svc/hostgroups")
s6-svc -O "$RA/svc/hostgroups" # once: s6 does not restart it after this death
kill -9 "$pid"
wait_for 10 sh -c "[ \$(s6-svstat -o pid '$RA/svc/hostgroups') = -1 ]" || fail "hostgroups still running"
"$T" run --store "file://$RA/store" daemon.hgc --count 2 -- sleep "${tag}3" >/dev/null || fail "run daemon.hgc"
printf 'dn: cn=nobody,ou=groups,%s\nchangetype: modify\nadd: member\nmember: cn=%s,ou=servers,%s\n' "$BASE" "$HB" "$BASE" | LM ||
	fail "ldapmodify"
wait_for 30 is_n_placed daemon 2 ||
	fail "daemon.hgc not placed"
in_sync && fail "directory unexpectedly in sync while the daemon is down"
s6-svc -u "$RA/svc/hostgroups"
check_sync "restarted"
ok "restarted after SIGKILL: missed placements added, the injected member removed: $(members | tr '\n' ';')"
note "the directory down while placements change, then back"
kill "$(cat "$L/slapd.pid")"
wait_for 10 sh -c "! kill -0 $(cat "$L/slapd.pid") 2>/dev/null" || fail "slapd did not stop"
# the last nobody instances go: their servers' memberships must be deleted
for i in $(ST ls /scheduled | grep '^nobody\.hga#'); do "$T" stop --store "file://$RA/store" "$i" >/dev/null || fail "stop $i"; done
wait_for 30 is_n_placed nobody 0 || fail "nobody.hga still placed"
wait_for 10 grep -q "Can't contact LDAP server" "$RA/log/hostgroups/current" || fail "no directory failure logged"
"$SLAPD" -f "$L/slapd.conf" -h "$URL/" || fail "slapd did not restart"
check_sync "directory back"
ok "the directory back after an outage: reconciled ($(members | tr '\n' ';'))"
ok "LDAP host groups test took $(( $(date +%s) - t_start )) s"
done_testing
