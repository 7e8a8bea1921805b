# tests/lib/store.sh: a private embedded store for tests that need no cell (source it; needs $BIN).
#   store_tmp PREFIX          $tmp (a fresh /tmp/PREFIX.XXXXXX, removed on exit), TREADLE_STORE=file://$tmp/store
#   st PATH DATA              create PATH, and its parents, holding DATA
#   st_two_servers PARENT     a cell of pod:p1 and two present servers s1 and s2 (8G, 400%, 100G) under the
#                             bucket PARENT (pod:p1, or a rack made under pod:p1); s1 names the partition
#                             _default, s2 leaves it out (the default)
store_tmp() {
	tmp=$(mktemp -d "/tmp/$1.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	export TREADLE_STORE=file://$tmp/store
}

st() { "$BIN" store create -p "$1" "$2" >/dev/null; }

st_two_servers() {
	local parent=$1
	st /cell/pod:p1 ''
	st /buckets/pod:p1 '{"parent":null}'
	[ "$parent" = pod:p1 ] || st "/buckets/$parent" '{"parent":"pod:p1"}'
	st /servers/s1 '{"memory":"8G","cpu":"400%","disk":"100G","parent":"'"$parent"'","partition":"_default"}'
	st /servers/s2 '{"memory":"8G","cpu":"400%","disk":"100G","parent":"'"$parent"'"}'
	st /server.presence/s1 '{}'
	st /server.presence/s2 '{}'
}
