#!/bin/bash
# House check: no exported symbol without a production caller; no call cycle between the files of a module (needs the build's objects).
# scripts/check-symbols.sh prints one offender per line (nothing when clean) and exits non-zero if any.
set -u
SRC=${TREADLE_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
exec "$SRC/scripts/check-symbols.sh" "${TREADLE_BUILD:-$SRC/build}"
