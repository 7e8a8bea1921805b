#!/bin/bash
# YAML typing: `treadle manifest convert` must read every document the way
# PyYAML's safe_load does (Treadmill's loader), modulo what JSON cannot hold
# (dates and .inf/.nan stay text, ints beyond 64 bits become floats).
set -u
BIN=${TREADLE_BIN:?} SRC=${TREADLE_SRC:?}
if ! python3 -c 'import yaml' 2>/dev/null; then
	echo "python3 with PyYAML not available"
	exit 77
fi
tmp=$(mktemp -d /tmp/treadle-it-yaml.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/docs"
# one document per scalar, plus structural cases and the golden YAML files
python3 - "$tmp/docs" <<'PY'
import sys
d = sys.argv[1]
scalars = """0 00 -0 +0 08 0o17 0x1F 0xG 0b101 0b2 1_000 _1 1_ 1:5 1:60 1:05:30 0:30 -1:30 1:30.5 1. 0. .0 -.5 +.5
1.5e3 1.5e+3 1.5E-3 1e3 1.e+3 +1.5 -1.5 1_0.0_1 y Y n N yes Yes YES yEs no No NO on On ON off Off OFF true True
TRUE tRue false False FALSE null Null NULL nULL ~ 12:30:00 190:20:30 9223372036854775807 -9223372036854775808
0x7fffffffffffffff 0b1111 0777 0_7 1,000 1.2.3 512M 50% native: x:y a#b""".split()
for i, s in enumerate(scalars):
    open(f"{d}/scalar-{i:03d}.yml", "w").write(f"k: {s}\nq: '{s}'\n")
cases = {
 "blocks": "a: |\n  line1\n  line2\nb: >\n  folded\n  text\n\n  para\nc: |-\n  strip\nd: |+\n  keep\n\ne: end\n",
 "quotes": "a: \"tab\\there \\u00e9 \\x41\"\nb: 'it''s'\nc: \"multi\n  line\"\nd: plain\n  continued\n",
 "anchors": "base: &b {x: 1, y: [1, 2]}\nuse: *b\nmerge:\n  <<: *b\n  x: 2\nmulti:\n  <<: [{p: 1}, {p: 2, q: 3}]\n",
 "nested": "a: [1, [2, [3, {b: c}]], {d: [e, f]}]\n? complex\n: value\nempty_seq: []\nempty_map: {}\nnull_val:\n",
 "tags": "a: !!str 123\nb: !!int '7'\nc: !!float 1\nd: !!bool yes\n",
 "keys": "1: one\nnull: n\n1.5: f\nx: y\n",
 "dup": "a: 1\na: 2\n",
 "unicode": "name: caf\u00e9\nemoji: \"\\U0001F600\"\n",
}
for k, v in cases.items():
    open(f"{d}/case-{k}.yml", "w").write(v)
PY
cp "$SRC"/tests/manifest/valid/*.yml "$SRC"/tests/manifest/valid/*.yaml "$tmp/docs/" 2>/dev/null
n=0 fail=0
for f in "$tmp"/docs/*; do
	n=$((n + 1))
	"$BIN" manifest convert "$f" >"$tmp/ours.json" 2>"$tmp/err"; rc=$?
	if python3 - "$f" "$tmp/ours.json" "$rc" >"$tmp/diff" 2>&1 <<'PY'
import sys, json, yaml, math, datetime
path, ours_path, rc = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    theirs = yaml.safe_load(open(path))
except Exception as e:
    sys.exit(0 if rc != 0 else 1)
ours = json.load(open(ours_path)) if rc == 0 else None
if rc != 0:
    print("treadle refused a document PyYAML reads"); sys.exit(1)
def same(a, b):
    # a: ours (JSON), b: PyYAML
    if isinstance(b, (datetime.date, datetime.datetime)):
        return isinstance(a, str)
    if isinstance(b, float) and (math.isinf(b) or math.isnan(b)):
        return isinstance(a, str)
    if isinstance(b, dict):
        if not isinstance(a, dict) or len(a) != len(b): return False
        # YAML keys are strings in JSON: compare by PyYAML's key rendered as the source text would be
        bk = {}
        for k, x in b.items():
            if isinstance(k, bool): ks = None
            elif k is None: ks = None
            else: ks = str(k)
            bk[ks] = x
        for k, x in a.items():
            match = [bv for bkk, bv in bk.items() if bkk == k]
            if not match:
                # keys like 'true'/'null' are kept as their source text by treadle
                continue
            if not same(x, match[0]): return False
        return True
    if isinstance(b, list):
        return isinstance(a, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(b, bool) or isinstance(a, bool):
        return type(a) == type(b) and a == b
    if isinstance(b, int):
        if -2**63 <= b < 2**63: return type(a) == int and a == b
        return isinstance(a, float)
    if isinstance(b, float):
        return isinstance(a, float) and (a == b or abs(a - b) < 1e-9 * max(1, abs(b)))
    return a == b
if not same(ours, theirs):
    print("ours:  ", json.dumps(ours, sort_keys=True)[:300])
    print("pyyaml:", repr(theirs)[:300])
    sys.exit(1)
PY
	then
		echo "ok $n - $(basename "$f")"
	else
		echo "not ok $n - $(basename "$f")"; sed 's/^/#   /' "$tmp/diff" "$tmp/err" | head -6
		fail=1
	fi
done
echo "1..$n"
exit $fail
