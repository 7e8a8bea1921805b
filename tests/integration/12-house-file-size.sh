#!/bin/bash
# House check: no .c file under src/ over 1,500 lines unless docs/ARCHITECTURE.md names it with a reason.
# scripts/check-file-size.sh prints one offender per line (nothing when clean) and exits non-zero if any.
set -u
SRC=${TREADLE_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
exec "$SRC/scripts/check-file-size.sh" "$SRC"
