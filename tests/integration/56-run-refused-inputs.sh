#!/bin/bash
# Inputs the node would only fail on later are refused by `treadle run` at the
# door: exit 100, one line naming the field path (or the size), nothing stored.
# Service names '.'/'..', environment names with '/', docker images, a 10 MB
# manifest, a small YAML whose aliases expand beyond the JSON limit.  No cell.
set -u
T=${TREADLE_BIN:?}
R=$(mktemp -d /tmp/treadle-it56.XXXXXX)
trap 'rm -rf "$R"' EXIT
. "$(dirname "$0")/../lib/tap.sh"
id nobody >/dev/null 2>&1 || { echo "skip: no user nobody"; exit 77; }
S="file://$R/store"

# refused NAME PATTERN treadle-run-args...: exit 100, PATTERN on stderr, no line without it
refused() {
	local what=$1 pat=$2; shift 2
	"$T" run --root "$R" --store "$S" "$@" >"$R/out" 2>"$R/err"; rc=$?
	if [ "$rc" = 100 ] && grep -qE -- "$pat" "$R/err" && [ ! -s "$R/out" ]; then
		ok "$what: exit 100, '$(head -1 "$R/err")'"
	else
		notok "$what: rc=$rc out=$(head -c 200 "$R/out") err=$(head -3 "$R/err")"
	fi
}

# a store with one good instance: refusals must add nothing to it
good=$("$T" run --root "$R" --store "$S" nobody.good -- true) || { echo "FAIL: good run"; exit 1; }

refused "service '..' (--service)" "^treadle: services\[0\]\.name: must not start with '\.'" nobody.dots --service .. -- true
refused "service '.' (--service)" "^treadle: services\[0\]\.name: must not start with '\.'" nobody.dot --service . -- true

cat >"$R/env.yml" <<'YML'
memory: 100M
cpu: 10%
disk: 100M
environ:
  - {name: A/B, value: x}
services:
  - name: web
    command: sleep 1
    restart: {limit: 1, interval: 60}
    environ:
      - {name: 'X=Y', value: z}
YML
refused "environment name with '/'" '^treadle: environ\[0\]\.name: must match' nobody.env -m "$R/env.yml"
grep -q '^\(treadle: \)\?services\[0\]\.environ\[0\]\.name: must match' "$R/err" && ok "service environ name path named" ||
	notok "service environ path: $(cat "$R/err")"

cat >"$R/docker.yml" <<'YML'
memory: 100M
cpu: 10%
disk: 100M
services:
  - name: d
    image: docker://busybox
    restart: {limit: 1, interval: 60}
YML
refused "service docker image" '^treadle: services\[0\]\.image: service images \(docker\) are not supported' nobody.docker -m "$R/docker.yml"

# 10 MB: a permanent error naming the size, not a store failure (111)
{ printf 'memory: 100M\ncpu: 10%%\ndisk: 100M\nservices: [{name: a, command: "true", restart: {limit: 0}}]\n'
  head -c 10000000 /dev/zero | tr '\0' '#' | fold -w 100; echo; } >"$R/big.yml"
refused "10 MB manifest" "^treadle: $R/big.yml: the manifest is [0-9]+ bytes, more than the maximum of 1048576 \(1 MiB\)" nobody.big -m "$R/big.yml"

# small text, large JSON (aliases): the scheduled form would not fit a store node
{ printf 'memory: 100M\ncpu: 10%%\ndisk: 100M\nservices: [{name: a, command: "true", restart: {limit: 0}}]\n'
  printf 'traits: [&x %s' "$(head -c 2000 /dev/zero | tr '\0' y)"
  for _ in $(seq 600); do printf ', *x'; done; echo ']'; } >"$R/alias.yml"
refused "aliases beyond 1000 KiB of JSON" "bytes as JSON, more than the maximum of 1024000 \(1000 KiB\)" nobody.alias -m "$R/alias.yml"

refused "memory out of range" '^treadle: memory: must be at most' nobody.mem --memory 99999999999999999999G -- true

cnt=$("$T" show --root "$R" --store "$S" scheduled --json | grep -c '"name"')
[ "$cnt" = 1 ] && ok "nothing stored by the refusals" || notok "store holds $cnt instances, expected only $good"
"$T" manifest check "$R/big.yml" >/dev/null 2>&1; rc=$?
[ "$rc" = 100 ] && ok "manifest check: 10 MB is 100 too" || notok "manifest check 10 MB: rc=$rc"
done_testing
