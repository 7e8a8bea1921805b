#!/bin/bash
# Treadmill-compatible mode reproduces Treadmill's placements for the seeded
# conformance cells (digests from shared/conformance/scheduler/README.md), and
# the §6.2 generator reproduces the cells' input files byte for byte.
set -euo pipefail
BIN=${TREADLE_BIN:-$PWD/build/treadle}
# shared/ sits beside the checkout (CI copies it there); /work/shared on the developers' machines
SRC=${TREADLE_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
CONF=${TREADLE_CONFORMANCE:-$SRC/../shared/conformance/scheduler}
[ -d "$CONF/s100" ] || CONF=/work/shared/conformance/scheduler
if [ ! -d "$CONF/s100" ]; then echo "conformance data not found at $CONF"; exit 77; fi
tmp=$(mktemp -d /tmp/treadle-sched-conf.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

digest() { cut -f1,2 "$1" | sha256sum | cut -d' ' -f1; }
check() { # cell pass expected
	local got
	got=$(digest "$tmp/$1/placement_$2.tsv")
	if [ "$got" != "$3" ]; then echo "FAIL $1 $2: $got != $3"; exit 1; fi
	echo "ok $1 $2"
}

for cell in s100 s1000; do
	mkdir -p "$tmp/$cell"
	"$BIN" scheduler simulate --out "$tmp/$cell" "$CONF/$cell"
done
I100=e7a3722b1dd9aa6a82b0133ab7b1336a0c9ffca422216683d129f71bd49d02a9
D100=c7e62c5fbe7b853277dd60b904f4e5145036e7be72a0c509507e1aed1f17a172
I1000=72e45cfea0d711644fd31f5f56fa2cbb1cf934b23e12107b2dc53ecb63717e27
D1000=7309105d045421e1237f5972df3b7837c10b676be412b3a430f22f67cf117a4f
check s100 init $I100; check s100 steady $I100; check s100 down $D100; check s100 up $D100
check s1000 init $I1000; check s1000 steady $I1000; check s1000 down $D1000; check s1000 up $D1000
# identities too (whole files, byte for byte)
for cell in s100 s1000; do
	for p in init steady down up; do
		cmp "$tmp/$cell/placement_$p.tsv" "$CONF/$cell/placement_$p.tsv"
	done
done
echo "ok identities"

# the generator reproduces the conformance inputs
"$BIN" scheduler simulate --quiet --generate 100 10 42 "$tmp/gen100"
for f in servers allocations apps placement_init placement_down; do
	cmp "$tmp/gen100/$f.tsv" "$CONF/s100/$f.tsv"
done
echo "ok generator"
