#!/bin/bash
# Malformed workload files: one line naming file, line and field; exit 100;
# nothing written.
set -euo pipefail
BIN=${TREADLE_BIN:-$PWD/build/treadle}
tmp=$(mktemp -d /tmp/treadle-sched-bad.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
"$BIN" scheduler simulate --quiet --generate 100 2 42 "$tmp/good"

bad() { # name file sed-expression expected-message
	mkdir -p "$tmp/$1"; cp "$tmp/good/"{servers,allocations,apps}.tsv "$tmp/$1/"
	awk -F'\t' -v OFS='\t' "$3" "$tmp/$1/$2" >"$tmp/$1/x" && mv "$tmp/$1/x" "$tmp/$1/$2"
	set +e; "$BIN" scheduler simulate --quiet "$tmp/$1" 2>"$tmp/$1.err"; rc=$?; set -e
	cat "$tmp/$1.err"
	[ "$rc" -eq 100 ] || { echo "FAIL $1: exit $rc"; exit 1; }
	[ "$(wc -l <"$tmp/$1.err")" -eq 1 ] || { echo "FAIL $1: not one line"; exit 1; }
	grep -qF "$4" "$tmp/$1.err" || { echo "FAIL $1: message"; exit 1; }
	! ls "$tmp/$1"/placement_*.tsv 2>/dev/null || { echo "FAIL $1: output written"; exit 1; }
	echo "ok $1"
}
bad memory servers.tsv 'NR==3{$6="lots"}1' 'servers.tsv: line 3: field memory: not a valid integer'
bad fields servers.tsv 'NR==5{NF=7}1' 'servers.tsv: line 5: expected 8 fields, got 7'
bad reserved allocations.tsv 'NR==2{$5="-1"}1' 'allocations.tsv: line 2: field reserved_memory'
bad limits apps.tsv 'NR==4{$10="{\"server\": \"x\"}"}1' 'apps.tsv: line 4: field affinity_limits'
bad prio apps.tsv 'NR==6{$5=999}1' 'apps.tsv: line 6: field priority'
bad once apps.tsv 'NR==2{$12="maybe"}1' 'apps.tsv: line 2: field schedule_once'
bad count apps.tsv 'NR==3{$14="grp"; $15="x"}1' 'apps.tsv: line 3: field identity_count'
