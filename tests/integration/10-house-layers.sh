#!/bin/bash
# House check: the module include graph equals docs/ARCHITECTURE.md's layer table; no include cycle.
# scripts/check-layers.sh prints one offender per line (nothing when clean) and exits non-zero if any.
set -u
SRC=${TREADLE_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
exec "$SRC/scripts/check-layers.sh" "$SRC"
