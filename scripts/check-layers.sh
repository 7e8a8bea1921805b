#!/bin/bash
# check-layers.sh [SRC_ROOT]: the module include graph of src/ against docs/ARCHITECTURE.md's layer table.
#
# Derives module -> module edges from the `#include "../<module>/..."` lines under src/ and compares them
# with the table's "includes" column (`libc` is no module; `everything` means every other module; a
# qualifier such as `store (loader only)` also requires that only the files whose name contains `loader`
# include that module).  Also fails on include cycles between modules and between files of one module
# (`#include "x.h"` lines; scripts/check-symbols.sh finds call cycles between files).
#
# Prints one offender per line, nothing when the tree matches:
#   undocumented edge: A -> B           included in the code, not in A's "includes" cell
#   documented edge not in code: A -> B listed in the table, no file of A includes B
#   undocumented module: A              a src/A/ directory with no table row
#   table module without code: A        a table row with no src/A/ directory
#   edge outside its qualifier: A/f.c -> B (only files matching 'W')
#   module cycle: A -> B -> A
#   file cycle: A/x.h -> A/y.h -> A/x.h
# Exit 0 when nothing is printed, 1 otherwise.
set -u
ROOT=${1:-$(cd "$(dirname "$0")/.." && pwd)}
exec python3 - "$ROOT" "$(dirname "$0")" <<'PY'
import os, re, sys
sys.dont_write_bytecode = True
sys.path.insert(0, sys.argv[2])
from graph import cycles

root = sys.argv[1]
src = os.path.join(root, "src")
arch = os.path.join(root, "docs", "ARCHITECTURE.md")
out = []

# --- the code: module and file include edges
modules = sorted(d for d in os.listdir(src) if os.path.isdir(os.path.join(src, d)))
edges = {}        # (A, B) -> [files of A including B]
fedges = {}       # "A/x" -> set of "A/y" (same module)
inc = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
for m in modules:
    for dirpath, _, files in os.walk(os.path.join(src, m)):
        for f in sorted(files):
            if not f.endswith((".c", ".h")):
                continue
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, src)
            with open(path, errors="replace") as fh:
                for line in fh:
                    g = inc.match(line)
                    if not g:
                        continue
                    target = os.path.normpath(os.path.join(os.path.dirname(rel), g.group(1)))
                    tm = target.split(os.sep)[0]
                    if tm == m:
                        fedges.setdefault(rel, set()).add(target)
                    elif tm in modules:
                        edges.setdefault((m, tm), []).append(rel)

# --- the documentation: the layer table
table = {}   # module -> {dep: qualifier or None}
in_table = False
with open(arch) as fh:
    for line in fh:
        if line.startswith("| layer | module"):
            in_table = True
            continue
        if in_table:
            if not line.startswith("|"):
                break
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) < 4 or set(cells[1]) <= set("-"):
                continue
            g = re.search(r"`src/([a-z0-9_-]+)/`", cells[1])
            if not g:
                continue
            mod = g.group(1)
            deps = {}
            for item in cells[3].split(","):
                item = item.strip()
                q = re.match(r"^([a-z0-9_-]+)\s*(?:\((\S+) only\))?$", item)
                if not q:
                    out.append("unreadable includes cell of %s: %r" % (mod, item))
                    continue
                name, qual = q.group(1), q.group(2)
                if name == "libc":
                    continue
                if name == "everything":
                    for o in modules:
                        if o != mod:
                            deps.setdefault(o, None)
                    continue
                deps[name] = qual
            table[mod] = deps
if not table:
    out.append("no layer table found in docs/ARCHITECTURE.md")

for m in modules:
    if m not in table:
        out.append("undocumented module: %s" % m)
for m in sorted(table):
    if m not in modules:
        out.append("table module without code: %s" % m)

for (a, b) in sorted(edges):
    if a in table and b not in table[a]:
        out.append("undocumented edge: %s -> %s" % (a, b))
for a in sorted(table):
    for b, qual in sorted(table[a].items()):
        if a not in modules:
            continue
        if b not in modules:
            out.append("documented edge not in code: %s -> %s (no module %s)" % (a, b, b))
        elif (a, b) not in edges:
            out.append("documented edge not in code: %s -> %s" % (a, b))
        elif qual:
            for f in sorted(set(edges[(a, b)])):
                if qual not in os.path.basename(f):
                    out.append("edge outside its qualifier: %s -> %s (only files matching '%s')" % (f, b, qual))

# --- cycles
msucc = {}
for (a, b) in edges:
    msucc.setdefault(a, set()).add(b)
for c in cycles(modules, msucc):
    out.append("module cycle: %s" % c)
fnodes = set(fedges) | {t for s in fedges.values() for t in s}
for c in cycles(fnodes, fedges):
    out.append("file cycle: %s" % c)

for line in out:
    print(line)
sys.exit(1 if out else 0)
PY
