#!/bin/bash
# treadle COMMAND --help lists exactly the options the command accepts: for every command, the options
# given to getopt (treadle help --options CMD) are compared with the --help text, and no command parses
# options outside its table (no getopt_long / struct option in src/cli/ but cli-options.c).
set -uo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${TREADLE_BIN:-$SRC/build/treadle}
. "$(dirname "$0")/../lib/tap.sh"
fail() { echo "not ok - $*"; exit 1; }

cmds=$("$BIN" help --options) || fail "help --options"
[ "$(wc -l <<<"$cmds")" -ge 15 ] || fail "too few commands: $cmds"
for c in $cmds; do
	help=$("$BIN" "$c" --help) || fail "$c --help exited $?"
	[[ $help == "usage: treadle $c"* ]] || fail "$c --help: $help"
	accepted=$("$BIN" help --options "$c" | grep -v '^\[' | sed 's/=ARG$//' | sort -u)
	# what --help shows: "  -x, --name ARG  text" or "      --name ARG  text"
	shown=$(grep -E '^  (-., )? *--[a-z]' <<<"$help" | sed -E 's/^  (-(.), )? *--([a-z-]+).*/\3 \2/')
	shown_long=$(awk '{print "--" $1}' <<<"$shown" | sort -u)
	shown_short=$(awk 'NF > 1 {print "-" $2}' <<<"$shown" | sort -u)
	want=$(sort -u <<<"$shown_long
$shown_short" | sed '/^$/d' | sed '/^--$/d')
	have=$(sed '/^$/d' <<<"$accepted")
	[ "$want" = "$have" ] || fail "$c: --help shows [$(echo $want)] but getopt takes [$(echo $have)]"
done
ok "every command's --help lists exactly what getopt accepts ($(echo $cmds | wc -w) commands)"

# The options the issue found missing are there and work.
"$BIN" cell --help | grep -q -- '--timeout SECS' || fail "cell --timeout"
"$BIN" run --help | grep -q -- '--service NAME' || fail "run --service"
for o in --generate --mode --out --quiet --repeat --events --root --store --json; do
	"$BIN" scheduler --help | grep -q -- "$o" || fail "scheduler $o"
done
"$BIN" cell status --timeout 5 --root /nonexistent/77 >/dev/null; [ $? -eq 1 ] || fail "cell status --timeout"
ok "cell --timeout, run --service and the scheduler's options are listed"

# Nothing parses options outside the tables.
if [ -d "$SRC/src/cli" ]; then
	stray=$(grep -ln 'getopt_long *(\|struct option ' "$SRC"/src/cli/*.c | grep -v '/cli-options.c$')
	[ -z "$stray" ] || fail "options parsed outside the tables: $stray"
	ok "every src/cli command parses through cli_getopt"
fi
