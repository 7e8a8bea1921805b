#!/bin/bash
# check-store-paths.sh [SRC_ROOT]: no store path literal outside src/cellns/ (the cell namespace module owns
# every store path of the cell).
#
# A store path literal is a C string literal (comments skipped) under src/ that starts with one of the
# cell's top-level store nodes: /scheduled /placement /running /endpoints /finished /servers
# /server.presence /events /trace /allocations /buckets /cell /partitions /blackedout /election
# /identity-groups /version, followed by the end of the literal or a character that is not a letter, digit
# or '_' (so "/scheduled/%s", "/blackedout.servers", "/version-id", "/trace.history" count, "/cells" and
# "%s/running", a directory under a root, do not).
# Prints one offender per line, nothing when clean:
#   store path literal: src/m/f.c:LINE: "/scheduled/%s"
# Exit 0 when nothing is printed, 1 otherwise.
set -u
ROOT=${1:-$(cd "$(dirname "$0")/.." && pwd)}
exec python3 - "$ROOT" <<'PY'
import os, re, sys
root = sys.argv[1]
nodes = ["scheduled", "placement", "running", "endpoints", "finished", "servers", "server.presence", "events",
         "trace", "allocations", "buckets", "cell", "partitions", "blackedout", "election", "identity-groups",
         "version"]
pat = re.compile(r"^/(%s)(?![A-Za-z0-9_])" % "|".join(re.escape(n) for n in nodes))
tok = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.S)
out = []
src = os.path.join(root, "src")
for dirpath, dirs, files in os.walk(src):
    dirs.sort()
    if os.path.relpath(dirpath, src).split(os.sep)[0] == "cellns":
        continue
    for f in sorted(files):
        if not f.endswith((".c", ".h")):
            continue
        path = os.path.join(dirpath, f)
        with open(path, errors="replace") as fh:
            text = fh.read()
        for m in tok.finditer(text):
            t = m.group(0)
            if t.startswith('"') and pat.match(t[1:-1]):
                out.append("store path literal: %s:%d: %s" % (os.path.relpath(path, root), text.count("\n", 0, m.start()) + 1, t))
for line in out:
    print(line)
sys.exit(1 if out else 0)
PY
