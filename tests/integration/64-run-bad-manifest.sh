#!/bin/bash
# A bad manifest is refused with one line per problem naming the field path,
# exit 100, and nothing is written to the store.  Needs no running cell.
set -u
T=${TREADLE_BIN:?}
R=$(mktemp -d /tmp/treadle-it.XXXXXX)
trap 'rm -rf "$R"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
id nobody >/dev/null 2>&1 || { echo "no user nobody"; exit 77; }

cat >"$R/bad.yml" <<'YML'
memory: lots
cpu: 10%
disk: 100M
services:
  - name: ok
    command: "true"
    restart: {limit: 1, interval: 60}
  - name: broken
    command: "true"
    restart: {limit: 99, interval: 60}
YML
"$T" run --root "$R" nobody.bad -m "$R/bad.yml" 2>"$R/err"; rc=$?
cat "$R/err"
[ "$rc" = 100 ] || fail "exit code $rc, expected 100"
grep -q 'services\[1\]\.restart\.limit' "$R/err" || fail "no field path services[1].restart.limit"
grep -q 'memory' "$R/err" || fail "memory problem not reported"
[ "$(grep -c . "$R/err")" -ge 2 ] || fail "expected one line per problem"
[ -e "$R/store" ] && fail "a store was created for a refused manifest"

# With a store holding one good instance, a refused one adds nothing.
good=$("$T" run --root "$R" --store "file://$R/store" nobody.good -- true) || fail "good run failed"
"$T" run --root "$R" nobody.bad -m "$R/bad.yml" 2>/dev/null; [ $? = 100 ] || fail "second refusal"
"$T" run --root "$R" nobody.bad --memory lots -- true 2>"$R/err2"; [ $? = 100 ] || fail "--memory lots not refused"
grep -q memory "$R/err2" || fail "--memory problem not named"
"$T" run --root "$R" nosuchuser$$.app -- true 2>/dev/null; [ $? = 100 ] || fail "unknown proid not refused"
"$T" run --root "$R" nobody.x 2>/dev/null; [ $? = 2 ] || fail "missing command should be a usage error (2)"
n=$("$T" show --root "$R" scheduled --json | grep -c '"name"')
[ "$n" = 1 ] || fail "store holds $n instances, expected only $good"
"$T" show --root "$R" scheduled | grep -qF "$good" || fail "good instance missing"
echo "ok: bad manifest refused, nothing stored"
