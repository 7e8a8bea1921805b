#!/bin/bash
# House check: no store path literal outside src/cellns/.
# scripts/check-store-paths.sh prints one offender per line (nothing when clean) and exits non-zero if any.
set -u
SRC=${TREADLE_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
exec "$SRC/scripts/check-store-paths.sh" "$SRC"
