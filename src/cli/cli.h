/* cli.h: the subcommand table shared by src/cli/ files.
 * CLI layer: may include every lower layer; nothing includes it. */
#pragma once

#include "../basic/error.h"

struct cli_command {
	const char *name;
	int (*run)(int argc, char **argv); /* argv[0] is the subcommand name; returns an exit code */
	const char *usage;		   /* one line: arguments */
	const char *summary;		   /* one line: what it does */
};

/* Exit codes (documented in docs/CLI.md): */
#define EXIT_OK 0
#define EXIT_NO 1
#define EXIT_USAGE 2
#define EXIT_PERM 100
#define EXIT_TEMP 111

/* Print "treadle: <msg>" for a usage problem and return EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) _printf_(2, 3);

/* Cell root: --root value if given, else $TREADLE_ROOT, else /var/lib/treadle. */
const char *cli_root(const char *opt_root);

/* One entry per subcommand, defined in their cmd-*.c files. */
int cmd_version(int argc, char **argv);

/* Store of the cell: --store URL, else $TREADLE_STORE, else file://<root>/store
 * (root from cli_root(opt_root)); a derived local store must exist.  cli-store.c */
struct store;
struct store_options;
char *cli_store_url(const char *opt_root, const char *opt_store);
int cli_store_open(const char *opt_root, const char *opt_store, struct store **ret, struct error *err);
/* The same for commands that only read: no session, nothing written (works on a full disk). */
int cli_store_open_ro(const char *opt_root, const char *opt_store, struct store **ret, struct error *err);
int cli_store_open_opts(const char *opt_root, const char *opt_store, const struct store_options *opts,
			struct store **ret, struct error *err);

/* Long options shared by the store-using commands. */
#define CLI_OPT_ROOT 0x100
#define CLI_OPT_STORE 0x101

int cmd_cell(int argc, char **argv);
int cmd_master(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_stop(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_trace(int argc, char **argv);
int cmd_logs(int argc, char **argv);
int cmd_store(int argc, char **argv);
int cmd_mirror(int argc, char **argv);
int cmd_scheduler(int argc, char **argv);
/* cmd-exec.c (container runtime) */
int cmd_exec(int argc, char **argv);
int cmd_container(int argc, char **argv);
/* cmd-manifest.c (manifest) */
int cmd_manifest(int argc, char **argv);
int cmd_sproc(int argc, char **argv);
int cmd_node(int argc, char **argv);
/* cmd-admin.c (zkcell) */
int cmd_admin(int argc, char **argv);
