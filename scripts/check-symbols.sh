#!/bin/bash
# check-symbols.sh [BUILD_DIR]: no exported symbol without a production caller, no call cycle between the
# files of one module.
#
# Reads `nm` of the production objects, BUILD_DIR/src/<module>/*.o (the library and, under src/cli/, the
# CLI; default BUILD_DIR build, built by `make all`).  Tests, fuzzers and helpers are not production: a
# symbol that only they use is an offender too.  Prints one offender per line, nothing when clean:
#   unused export: module/file.o symbol             global, referenced by no other production object
#   file call cycle: m/a.o -> m/b.o -> m/a.o        files of one module that call each other (a function
#                                                   each defines and the other calls; data tables such as
#                                                   a backend's operations do not count)
# Exit 0 when nothing is printed, 1 otherwise, 2 when there are no objects to read.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-${BUILD:-build}}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
[ -d "$BUILD/src" ] || { echo "check-symbols: no $BUILD/src: build first (make all)" >&2; exit 2; }
exec python3 - "$BUILD/src" "$(dirname "$0")" <<'PY'
import os, subprocess, sys
sys.dont_write_bytecode = True
sys.path.insert(0, sys.argv[2])
from graph import cycles

base = sys.argv[1]
objs = []
for dirpath, _, files in os.walk(base):
    objs += [os.path.join(dirpath, f) for f in files if f.endswith(".o")]
objs.sort()
if not objs:
    print("check-symbols: no objects under %s: build first (make all)" % base, file=sys.stderr)
    sys.exit(2)

defs, refs, funcs = {}, {}, set()   # object -> set of symbols; the function symbols
# toolchain and sanitizer symbols are nobody's exports
ignore_prefix = ("__asan", "___asan", "__ubsan", "__odr_asan", "__sanitizer", "__tsan", "__msan", "_GLOBAL_", "__gcov",
                 "__llvm", "__start_", "__stop_")
for o in objs:
    rel = os.path.relpath(o, base)
    r = subprocess.run(["nm", "-P", "--no-sort", o], capture_output=True, text=True)
    if r.returncode != 0:
        print("check-symbols: nm %s: %s" % (o, r.stderr.strip()), file=sys.stderr)
        sys.exit(2)
    d, u = set(), set()
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        name, kind = parts[0], parts[1]
        if name.startswith(ignore_prefix):
            continue
        if kind == "U":
            u.add(name)
        elif kind in "TDBRCGSVW" or kind in "i":   # global function / data (upper case = global)
            d.add(name)
            if kind in "TWi":
                funcs.add(name)
    defs[rel], refs[rel] = d, u

out = []
definer = {}
for o, syms in defs.items():
    for s in syms:
        definer.setdefault(s, o)
for o in sorted(defs):
    for s in sorted(defs[o]):
        if s == "main" and o.startswith("cli" + os.sep):
            continue
        if not any(s in refs[p] for p in refs if p != o):
            out.append("unused export: %s %s" % (o, s))

# call graph between the files of one module (functions only: a front end that points at its backends'
# operation tables, data, is no call)
succ = {}
for o, syms in refs.items():
    mod = o.split(os.sep)[0]
    for s in syms:
        p = definer.get(s)
        if p and p != o and p.split(os.sep)[0] == mod and s in funcs:
            succ.setdefault(o, set()).add(p)

for c in cycles(defs, succ):
    out.append("file call cycle: %s" % c)

for line in out:
    print(line)
sys.exit(1 if out else 0)
PY
