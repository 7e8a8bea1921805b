#!/bin/bash
# treadle manifest check: every golden invalid manifest exits 100 with exactly
# its expected problem lines; every valid one exits 0 with JSON; app names and
# environments are checked as `run` checks them.
set -u
BIN=${TREADLE_BIN:?} SRC=${TREADLE_SRC:?}
. "$SRC/tests/lib/tap.sh"
test_tmp treadle-it-manifest

for f in "$SRC"/tests/manifest/invalid/*.yml "$SRC"/tests/manifest/invalid/*.json; do
	b=$(basename "$f"); stem=${b%.*}
	(cd "$SRC/tests/manifest/invalid" && "$BIN" manifest check "$b") >"$tmp/out" 2>"$tmp/err"; rc=$?
	sed 's/^/treadle: /' "$SRC/tests/manifest/invalid/$stem.err" >"$tmp/want"
	if [ "$rc" -eq 100 ] && [ ! -s "$tmp/out" ] && cmp -s "$tmp/want" "$tmp/err"; then
		ok "invalid $b: exit 100, one line per problem"
	else
		notok "invalid $b: rc=$rc"; diff "$tmp/want" "$tmp/err" | head -5
	fi
done

for f in "$SRC"/tests/manifest/valid/*.yml "$SRC"/tests/manifest/valid/*.yaml "$SRC"/tests/manifest/valid/full-json.json; do
	b=$(basename "$f")
	case $b in *.scheduled.*) continue ;; esac
	"$BIN" manifest check --app root.itest "$f" >"$tmp/out" 2>"$tmp/err"; rc=$?
	if [ "$rc" -eq 0 ] && python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); assert m["proid"]=="root" and m["environment"]=="dev" and m["affinity"]' "$tmp/out" 2>/dev/null; then
		ok "valid $b: exit 0, scheduled JSON"
	else
		notok "valid $b: rc=$rc $(head -3 "$tmp/err")"
	fi
done

m="$SRC/tests/manifest/valid/minimal-no-sshd.yaml"
"$BIN" manifest check --app no-such-user-itest.app "$m" >/dev/null 2>"$tmp/err"; rc=$?
[ "$rc" -eq 100 ] && grep -q "proid 'no-such-user-itest' is not a user" "$tmp/err" && ok "unknown proid refused" || notok "unknown proid: rc=$rc"
"$BIN" manifest check --app root.x --env staging "$m" >/dev/null 2>"$tmp/err"; rc=$?
[ "$rc" -eq 100 ] && grep -q "environment 'staging'" "$tmp/err" && ok "bad environment refused" || notok "bad env: rc=$rc"
"$BIN" manifest check --app root.x --env prod "$m" >"$tmp/out" 2>/dev/null; rc=$?
[ "$rc" -eq 0 ] && grep -q '"environment":"prod"' "$tmp/out" && ok "--env prod" || notok "--env prod: rc=$rc"
"$BIN" manifest check --app 'root' "$m" >/dev/null 2>&1; rc=$?
[ "$rc" -eq 100 ] && ok "app name without a dot refused" || notok "app name without dot: rc=$rc"
printf 'memory: 100M\ncpu: [10%%\n' | "$BIN" manifest check - >/dev/null 2>"$tmp/err"; rc=$?
[ "$rc" -eq 100 ] && grep -q '^treadle: <stdin>:3:1: ' "$tmp/err" && ok "syntax error names <source>:<line>:<col>" || notok "syntax error: rc=$rc $(cat "$tmp/err")"
"$BIN" manifest check /nonexistent/m.yml >/dev/null 2>&1; rc=$?
[ "$rc" -eq 100 ] && ok "missing file: 100" || notok "missing file: rc=$rc"
"$BIN" manifest >/dev/null 2>&1; rc=$?
[ "$rc" -eq 2 ] && ok "usage: 2" || notok "usage: rc=$rc"
done_testing
