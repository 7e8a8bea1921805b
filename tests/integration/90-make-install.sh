#!/bin/bash
# make install: `make install DESTDIR=D` (and PREFIX=/usr) installs the binary, lib/treadle-bind.so,
# the docs, the systemd unit treadle.service (ExecStart=PREFIX/bin/treadle cell
# up in the foreground, settings from /etc/treadle/treadle.env, ExecStop= cell
# down) and the example settings file, which a second install never overwrites;
# the unit passes `systemd-analyze verify` (skipped, 77, without systemd-analyze).
set -u
SRC=${TREADLE_SRC:?} BUILD=${TREADLE_BUILD:?}
. "$SRC/tests/lib/tap.sh"
test_tmp treadle-it-install

# the build under test is already made: install it as it is (a sanitizer build
# with its own flags, so make sees everything up to date), outside the make
# that runs the tests (its MAKEFLAGS would carry over)
mk() {
	local san=
	[ "$(basename "$BUILD")" = build-san ] && san=SANITIZE=address,undefined
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$SRC" --no-print-directory BUILD="$BUILD" $san install "$@"
}

check_tree() { # DESTDIR PREFIX
	local d=$1 p=$2 u=$1$2/lib/systemd/system/treadle.service
	if [ -x "$d$p/bin/treadle" ] && "$d$p/bin/treadle" version | grep -q '^treadle '; then
		ok "$p: bin/treadle installed and runs"
	else
		notok "$p: bin/treadle missing or does not run"
	fi
	if [ -f "$d$p/lib/treadle-bind.so" ] && ! nm -D "$d$p/bin/treadle" 2>/dev/null | grep -q ' T bind$'; then
		ok "$p: lib/treadle-bind.so installed (the bind preload, not in the binary)"
	else
		notok "$p: lib/treadle-bind.so missing, or bind() defined by the binary"
	fi
	if [ -f "$d$p/share/doc/treadle/README.md" ] && [ -f "$d$p/share/doc/treadle/docs/INSTALL.md" ] &&
		[ -f "$d$p/share/doc/treadle/docs/CLI.md" ] && [ -f "$d$p/share/doc/treadle/examples/hello.yml" ]; then
		ok "$p: docs and examples in share/doc/treadle"
	else
		notok "$p: docs missing under $p/share/doc/treadle"; find "$d" | head -30
	fi
	if [ -f "$u" ] && grep -qx "ExecStart=$p/bin/treadle cell up" "$u" &&
		grep -qx "ExecStop=$p/bin/treadle cell down" "$u" &&
		grep -qx "EnvironmentFile=-/etc/treadle/treadle.env" "$u" &&
		! grep -q @ "$u"; then
		ok "$p: treadle.service runs $p/bin/treadle cell up in the foreground with /etc/treadle/treadle.env"
	else
		notok "$p: treadle.service wrong or missing"; cat "$u"
	fi
}

if mk DESTDIR="$tmp/a" >"$tmp/out" 2>&1; then
	ok "make install DESTDIR=D"
else
	notok "make install DESTDIR=D failed"; tail -20 "$tmp/out"
fi
check_tree "$tmp/a" /usr/local
env=$tmp/a/etc/treadle/treadle.env
if [ -f "$env" ] && grep -q '^#TREADLE_STORE=' "$env" && grep -q '^#TREADLE_ROLES=' "$env" &&
	grep -q '^#TREADLE_ROOT=' "$env" && grep -q '^#TREADLE_HOSTNAME=' "$env" && grep -q '^#TREADLE_CGROUP_ROOT=' "$env"; then
	ok "example /etc/treadle/treadle.env names every setting"
else
	notok "/etc/treadle/treadle.env missing or incomplete"
fi
# a second install keeps the administrator's settings
echo "TREADLE_ROLES=node" >"$env"
if mk DESTDIR="$tmp/a" >"$tmp/out" 2>&1 && [ "$(cat "$env")" = TREADLE_ROLES=node ] &&
	[ -f "$tmp/a/usr/local/share/doc/treadle/treadle.env" ]; then
	ok "a second install keeps an existing treadle.env"
else
	notok "a second install overwrote treadle.env or failed"; tail -5 "$tmp/out"
fi

if mk DESTDIR="$tmp/b" PREFIX=/usr >"$tmp/out" 2>&1; then
	ok "make install DESTDIR=D PREFIX=/usr"
else
	notok "make install PREFIX=/usr failed"; tail -20 "$tmp/out"
fi
check_tree "$tmp/b" /usr

if ! command -v systemd-analyze >/dev/null 2>&1; then
	[ "$FAILS" = 0 ] || exit 1
	echo "systemd-analyze missing (package systemd): the unit was not verified"
	exit 77
fi
# verify the installed unit; its binary is looked up on this host, so point
# the unit's commands at the DESTDIR copy (nothing else changes)
for p in /usr/local /usr; do
	d=$tmp/a; [ $p = /usr ] && d=$tmp/b
	mkdir -p "$tmp/verify$p"
	sed "s,=$p/bin/treadle,=$d$p/bin/treadle," "$d$p/lib/systemd/system/treadle.service" \
		>"$tmp/verify$p/treadle.service"
	if (cd "$tmp/verify$p" && systemd-analyze verify --man=no ./treadle.service) >"$tmp/out" 2>&1 &&
		[ ! -s "$tmp/out" ]; then
		ok "$p: systemd-analyze verify treadle.service: no complaint"
	else
		notok "$p: systemd-analyze verify treadle.service"; cat "$tmp/out"
	fi
done
# and it does complain about a broken unit (the check can fail)
printf '[Service]\nExecStart=%s/usr/local/bin/treadle cell up\nBogusKey=1\n' "$tmp/a" >"$tmp/verify/bad.service"
if (cd "$tmp/verify" && systemd-analyze verify --man=no ./bad.service) >"$tmp/out" 2>&1 && [ ! -s "$tmp/out" ]; then
	notok "systemd-analyze verify accepts a unit with an unknown key"
else
	ok "systemd-analyze verify rejects a unit with an unknown key"
fi
done_testing
