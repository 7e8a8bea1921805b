#!/bin/bash
# Kerberos hooks (docs/KERBEROS.md) against a real MIT KDC and kadmind started here on loopback with a
# private realm and their own config files (KRB5_CONFIG, KRB5_KDC_PROFILE; /etc/krb5.conf untouched):
# `treadle locker` registers in /ticket-locker and /keytab-locker; a user forwards a TGT (`treadle krb
# forward`); a cell with --hooks krb5keytab,tickets runs an app that reads its ticket (klist) and
# authenticates with the keytab krb5keytab fetched (kinit -k), gets its manifest keytab as its proid mode
# 0600; a forged host principal and a user principal are refused; another proid's container gets nothing of
# the first; an app whose tickets cannot be had is aborted with reason tickets after --tickets-wait.
. "$(dirname "$0")/../lib/cell.sh"
cell_require
for b in krb5kdc kadmind kdb5_util kadmin.local kinit klist; do
	command -v $b >/dev/null || skip "$b not installed (krb5-kdc, krb5-admin-server, krb5-user: scripts/install-deps.sh)"
done
id daemon >/dev/null 2>&1 || skip "no user 'daemon' for a second proid"

K=$(mktemp -d /tmp/treadle-krb.XXXXXX)
REALM=TREADLE$$.TEST
# two free loopback ports: the KDC, kadmind
read -r KP AP < <(python3 -c 'import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
export KRB5_CONFIG=$K/krb5.conf KRB5_KDC_PROFILE=$K/kdc.conf KRB5CCNAME=FILE:$K/default.cc
cat >"$KRB5_CONFIG" <<EOF
[libdefaults]
 default_realm = $REALM
 dns_lookup_kdc = false
 dns_lookup_realm = false
 dns_canonicalize_hostname = false
 rdns = false
 forwardable = true
 udp_preference_limit = 1
[realms]
 $REALM = {
  kdc = 127.0.0.1:$KP
  admin_server = 127.0.0.1:$AP
 }
EOF
cat >"$KRB5_KDC_PROFILE" <<EOF
[kdcdefaults]
 kdc_listen = 127.0.0.1:$KP
 kdc_tcp_listen = 127.0.0.1:$KP
[realms]
 $REALM = {
  database_name = $K/principal
  key_stash_file = $K/stash
  acl_file = $K/kadm5.acl
  kadmind_listen = 127.0.0.1:$AP
  kdc_listen = 127.0.0.1:$KP
  kdc_tcp_listen = 127.0.0.1:$KP
 }
[logging]
 kdc = FILE:$K/kdc.log
 admin_server = FILE:$K/kadmind.log
EOF
echo "locker/admin@$REALM acmie" >"$K/kadm5.acl"

krb_stop() {
	local rc=$?
	[ -n "${LPID:-}" ] && kill "$LPID" 2>/dev/null && wait "$LPID" 2>/dev/null
	for p in kdc kadmind; do [ -s "$K/$p.pid" ] && kill "$(cat "$K/$p.pid")" 2>/dev/null; done
	rm -rf "$K"
	(exit $rc); cell_teardown
}
krb_fail() { echo "=== locker log"; tail -n 20 "$K/locker.log" 2>/dev/null; echo "=== kdc log"; tail -n 5 "$K/kdc.log"; fail "$@"; }

note "a KDC and kadmind for $REALM on 127.0.0.1:$KP,$AP"
kdb5_util create -s -P "master$$" -r "$REALM" >/dev/null 2>&1 || fail "kdb5_util create"
kadm() { kadmin.local -r "$REALM" -q "$*" >>"$K/kadmin.out" 2>&1 || fail "kadmin.local $*"; }

cell_setup_krb() {
	R=$(mktemp -d /tmp/treadle-it.XXXXXX)
	H=it$$-$(basename "$R" | tr -dc 'a-z0-9' | tail -c 6)
	CG=treadle-it$$
	export TREADLE_ROOT=$R
	unset TREADLE_STORE
}
cell_setup_krb
trap krb_stop EXIT

for p in "host/$H" host/localhost host/forged locker/admin; do kadm "addprinc -randkey $p"; done
kadm "ktadd -k $K/host.kt host/$H"
kadm "ktadd -k $K/locker.kt host/localhost"
kadm "ktadd -k $K/forged.kt host/forged"
kadm "ktadd -k $K/admin.kt locker/admin"
kadm "addprinc -pw alice$$ alice"
krb5kdc -P "$K/kdc.pid" || fail "krb5kdc"
kadmind -P "$K/kadmind.pid" || fail "kadmind"

"$T" cell up --daemon --hostname "$H" --cgroup-root "$CG" --timeout 30 --hooks krb5keytab,tickets \
	--host-keytab "$K/host.kt" --tickets-wait 3 || fail "cell up"
grep -q '"hooks": "krb5keytab,tickets"' "$R/node/node.json" || fail "node.json has no hooks: $(cat "$R/node/node.json")"
"$T" cell up --hooks nosuch 2>&1 | grep -q "unknown hook 'nosuch'" || fail "an unknown hook was not refused"

"$T" locker --listen 127.0.0.1:0 --hostname localhost --keytab "$K/locker.kt" --dir "$K/locker" \
	--kadmin-principal locker/admin --kadmin-keytab "$K/admin.kt" >"$K/locker.log" 2>&1 &
LPID=$!
wait_for 10 sh -c "'$T' store ls /keytab-locker | grep -q localhost:" || krb_fail "the locker did not register"
LOCKER=$("$T" store ls /ticket-locker | grep localhost: | head -1)
note "locker $LOCKER"

note "alice forwards her TGT"
echo "alice$$" | KRB5CCNAME=FILE:$K/alice.cc kinit -f alice >/dev/null || fail "kinit alice"
out=$(KRB5CCNAME=FILE:$K/alice.cc "$T" krb forward 2>&1) || krb_fail "krb forward: $out"
[ -s "$K/locker/alice@$REALM" ] || krb_fail "the locker holds no ticket of alice"

cat >"$R/app.yml" <<EOF
memory: 100M
cpu: 10%
disk: 100M
shared_network: true
tickets: [alice@$REALM]
keytabs: ['nobody#svc@$REALM']
services:
  - name: main
    command: |
      while [ ! -s /var/spool/keytabs/nobody ]; do sleep 0.2; done
      echo "ccname=\$KRB5CCNAME user=\$(id -un)"
      klist
      ls -ln /var/spool/keytabs /var/spool/tickets
      KRB5CCNAME=FILE:/tmp/kt.cc kinit -k -t /var/spool/keytabs/nobody nobody/$H@$REALM && echo KINIT-OK
      KRB5CCNAME=FILE:/tmp/kt.cc klist
      KRB5CCNAME=FILE:/tmp/svc.cc kinit -k -t '/var/spool/keytabs/nobody#svc@$REALM' nobody/svc@$REALM && echo SVC-OK
      echo DONE; exec sleep 86$$
    restart:
      limit: 0
EOF
inst=$("$T" run nobody.itkrb -m "$R/app.yml") || fail "treadle run"
note "instance $inst"
wait_for 60 sh -c "'$T' logs '$inst/main' | grep -q DONE" || krb_fail "the app did not get through its Kerberos steps: $("$T" logs "$inst/main" 2>&1 | tail -5)"
log=$("$T" logs "$inst/main")
echo "$log" | grep -q "ccname=FILE:/var/spool/tickets/alice@$REALM user=nobody" || fail "KRB5CCNAME not set: $log"
echo "$log" | grep -q "Default principal: alice@$REALM" || fail "klist does not show alice's ticket: $log"
echo "$log" | grep -q KINIT-OK || fail "kinit -k with the proid's keytab failed: $log"
echo "$log" | grep -q "Default principal: nobody/$H@$REALM" || fail "no ticket for nobody/$H: $log"
echo "$log" | grep -q SVC-OK || fail "the manifest keytab nobody#svc did not authenticate: $log"
uid=$(id -u nobody)
echo "$log" | grep -E "^-rw------- +1 $uid " | grep -q " nobody$" || fail "keytab not owned by nobody, mode 0600: $log"
echo "$log" | grep -E "^-rw------- +1 $uid " | grep -q " alice@$REALM$" || fail "ticket not owned by nobody, mode 0600: $log"
wait_for 20 sh -c "'$T' logs '$inst/tickets' | grep -q 'refreshed (0 missing)'" || fail "the tickets refresher: $("$T" logs "$inst/tickets" 2>&1 | tail -3)"
"$T" logs "$inst/krb5keytab" | grep -q "keytab written to /var/spool/keytabs/nobody" || fail "krb5keytab: $("$T" logs "$inst/krb5keytab" 2>&1 | tail -3)"
cdir=$(echo "$R"/node/apps/nobody.itkrb-*)
[ -s "$cdir/data/keytabs/nobody" ] || fail "krb5keytab wrote no keytab"

note "a forged host principal, and a user, are refused"
kinit -k -t "$K/forged.kt" -c "FILE:$K/forged.cc" host/forged >/dev/null 2>&1 || fail "kinit host/forged"
out=$("$T" krb keytab --ccache "$K/forged.cc" --instance "$inst" --lockers "$LOCKER" --out "$K/stolen.kt" 2>&1)
rc=$?
[ $rc = 100 ] && echo "$out" | grep -q "not placed on forged" || fail "forged host got a keytab (exit $rc): $out"
[ -e "$K/stolen.kt" ] && fail "a keytab was written for a forged host"
out=$("$T" krb tickets --ccache "$K/forged.cc" --instance "$inst" --lockers "$LOCKER" --out "$K" 2>&1)
[ $? = 100 ] && echo "$out" | grep -q "not placed on forged" || fail "forged host got tickets: $out"
out=$("$T" krb tickets --ccache "$K/alice.cc" --instance "$inst" --lockers "$LOCKER" --out "$K" 2>&1)
[ $? = 100 ] && echo "$out" | grep -q "not a host principal" || fail "a user got tickets as a host: $out"

note "another proid's container gets nothing of nobody's"
cat >"$R/other.yml" <<EOF
memory: 100M
cpu: 10%
disk: 100M
shared_network: true
services:
  - name: other
    command: |
      while [ ! -s /var/spool/keytabs/daemon ]; do sleep 0.2; done
      echo "spool: \$(ls -A /var/spool/keytabs /var/spool/tickets 2>&1 | tr '\n' ' ')"
      echo "ccname=\${KRB5CCNAME:-none}"; echo DONE; exec sleep 87$$
    restart:
      limit: 0
EOF
other=$("$T" run daemon.itkrb -m "$R/other.yml") || fail "treadle run other"
wait_for 60 sh -c "'$T' logs '$other/other' | grep -q DONE" || krb_fail "the other app did not start: $("$T" logs "$other/other" 2>&1 | tail -3)"
olog=$("$T" logs "$other/other")
echo "$olog" | grep -q "alice\|nobody" && fail "nobody's credentials reached daemon's container: $olog"
echo "$olog" | grep -q "ccname=none" || fail "daemon's container has a KRB5CCNAME: $olog"
odir=$(echo "$R"/node/apps/daemon.itkrb-*)
[ "$(ls -A "$odir/data/keytabs")" = daemon ] || fail "daemon's keytab spool: $(ls -A "$odir/data/keytabs")"

note "an app whose tickets cannot be had is aborted with reason tickets"
sed -e "s/tickets: \[alice@$REALM\]/tickets: [bob@$REALM]/" -e "/^keytabs/d" "$R/app.yml" >"$R/bob.yml"
bob=$("$T" run nobody.itbob -m "$R/bob.yml") || fail "treadle run bob"
wait_for 40 "$T" store exists "/finished/$bob" || krb_fail "$bob was not aborted"
"$T" store get "/finished/$bob" | grep -q '"state": *"aborted"' || fail "$bob: $("$T" store get "/finished/$bob")"
"$T" store get "/finished/$bob" | grep -q '"data": *"tickets"' || fail "$bob not aborted for tickets: $("$T" store get "/finished/$bob")"
grep -q "tickets not had" "$R"/node/archives/nobody.itbob-*/aborted || fail "no reason archived: $(cat "$R"/node/archives/nobody.itbob-*/aborted)"

note "credentials go with the container"
"$T" stop "$inst" >/dev/null || fail "stop"
wait_for 30 "$T" store exists "/finished/$inst" || fail "$inst did not finish"
wait_for 30 sh -c "[ ! -e '$cdir' ]" || fail "container dir $cdir left"
find "$R/node/archives" -name 'krb5cc_host' -o -name 'nobody' -path '*keytab*' | grep -q . && fail "credentials archived"
note "a stopped locker leaves the store"
kill "$LPID" && wait "$LPID"; rc=$?; LPID=
[ $rc = 0 ] || fail "locker exit $rc after SIGTERM"
wait_for 10 sh -c "[ -z \"\$('$T' store ls /ticket-locker)\" ]" || fail "registration left: $("$T" store ls /ticket-locker)"
echo "ok: tickets (klist), keytabs (kinit -k), forged host refused, no leak, tickets abort"
