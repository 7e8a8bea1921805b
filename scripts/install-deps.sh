#!/bin/sh
# Installs the Debian packages treadle needs to build, run and test; only the missing ones
# (systemd: systemd-analyze checks the installed unit; python3-yaml: YAML conformance test 21;
# chromium: the web UI's test 81; prometheus: promtool checks /metrics in tests 80 and 82;
# krb5-*: the Kerberos hooks (libkrb5-dev, libkadm5clnt via krb5-multidev) and test 95's MIT KDC;
# openssl: test 83 makes its TLS certificate).
# With argument `fuzz`: clang and libFuzzer for `make fuzz` instead.
# Exit: 0 ok, 111 apt failed.
set -eu
PKGS="build-essential pkg-config libyaml-dev libjansson-dev libsqlite3-dev sqlite3 libcap-dev
libseccomp-dev libarchive-dev libcurl4-openssl-dev libcmocka-dev libzookeeper-mt-dev zookeeper zlib1g-dev libmicrohttpd-dev
s6 execline e2fsprogs iproute2 netbase util-linux bubblewrap python3 python3-yaml procps psmisc curl systemd
libnl-3-dev libnl-route-3-dev libnftables-dev libnetfilter-conntrack-dev nftables conntrack
chromium prometheus openssl
libkrb5-dev krb5-multidev krb5-kdc krb5-admin-server krb5-user
slapd ldap-utils libldap-dev"
# `install-deps.sh fuzz` (make fuzz): only clang and libFuzzer, never for `make test`.
[ "${1:-}" = fuzz ] && PKGS="clang libclang-rt-14-dev"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "treadle: install-deps: missing packages:$missing (run as root)" >&2
	exit 111
fi
export DEBIAN_FRONTEND=noninteractive
echo "treadle: install-deps: installing$missing" >&2
apt-get update -qq >/dev/null || { echo "treadle: install-deps: apt-get update failed" >&2; exit 111; }
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null ||
	{ echo "treadle: install-deps: apt-get install failed" >&2; exit 111; }
