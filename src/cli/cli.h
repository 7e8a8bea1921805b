/* cli.h: the subcommand table shared by src/cli/ files.
 * CLI layer: may include every lower layer; nothing includes it. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../basic/error.h"

/* One option of a command.  Each command has one table of them (cmd-*.c), which feeds both
 * getopt_long (through cli_getopt) and `treadle COMMAND --help`, so the two cannot drift.
 * A table may hold sections, for commands whose verbs take different options: a section starts
 * with a heading { .help = "explain, view" } (name NULL) and ends at the next entry whose name is
 * NULL; the table ends with CLI_OPTIONS_END. */
struct cli_option {
	const char *name; /* long name, without "--" */
	int val;	  /* what cli_getopt returns for it */
	const char *arg;  /* its argument ("DIR"); NULL: it takes none */
	const char *help; /* one line */
	bool letter;	  /* also accepted as -<val> */
};
#define CLI_SECTION(heading) { NULL, 0, NULL, heading, false }
#define CLI_OPTIONS_END { NULL, 0, NULL, NULL, false }

struct cli_command {
	const char *name;
	int (*run)(int argc, char **argv); /* argv[0] is the subcommand name; returns an exit code */
	const char *usage;		   /* one line: arguments */
	const char *summary;		   /* one line: what it does */
	const struct cli_option *options;  /* its option table (NULL: none) */
};

/* getopt_long over one section of an option table (its heading skipped).  Set optind before the
 * first call as with getopt_long.  Every section also accepts --cell NAME (unless it has its own
 * "cell" option): cli_getopt selects that cell itself (cli_cell_select) and, when it is unknown,
 * prints one line and exits 100.  With stop_at_arg, options end at the first argument ("+"). */
int cli_getopt(int argc, char **argv, const struct cli_option *section, bool stop_at_arg);

/* The section of tab headed `heading`. */
const struct cli_option *cli_section(const struct cli_option *tab, const char *heading);

/* Print the options of tab, one per line, as --help shows them. */
void cli_options_print(FILE *f, const struct cli_option *tab);

/* Print the options getopt_long is given for every section of tab (`treadle help --options CMD`):
 * one "--name[=ARG]" or "-x" per line. */
void cli_options_dump(FILE *f, const struct cli_option *tab);

/* Select the cell NAME: $TREADLE_CONF_DIR (default /etc/treadle)/cells/NAME.env holding
 * TREADLE_ROOT= and/or TREADLE_STORE= lines, else the root /var/lib/treadle/NAME when it exists.
 * Sets $TREADLE_ROOT and $TREADLE_STORE (unset when the cell names no store) for cli_root() and
 * cli_store_url().  ERR_PERM for an unknown cell or a bad file. */
int cli_cell_select(const char *name, struct error *err);
/* The name cli_cell_select last selected (borrowed from argv or the environment), else NULL. */
extern const char *cli_cell_name;

#define CLI_CELLS_ROOT "/var/lib/treadle"
#define CLI_CONF_DIR "/etc/treadle"

/* Exit codes (documented in docs/CLI.md): */
#define EXIT_OK 0
#define EXIT_NO 1
#define EXIT_USAGE 2
#define EXIT_PERM 100
#define EXIT_TEMP 111

/* Print "treadle: <msg>" for a usage problem and return EXIT_USAGE.  cli-options.c */
int cli_usage_error(const char *cmd, const char *fmt, ...) _printf_(2, 3);

/* Cell root: --root value if given, else $TREADLE_ROOT, else /var/lib/treadle.  cli-store.c */
const char *cli_root(const char *opt_root);

/* One entry per subcommand, defined in their cmd-*.c files. */

/* Store of the cell: --store URL, else $TREADLE_STORE, else file://<root>/store
 * (root from cli_root(opt_root)); a derived local store must exist.  cli-store.c */
struct store;
struct store_options;
char *cli_store_url(const char *opt_root, const char *opt_store);
int cli_store_open(const char *opt_root, const char *opt_store, struct store **ret, struct error *err);
/* The same for commands that only read: no session, nothing written (works on a full disk). */
int cli_store_open_ro(const char *opt_root, const char *opt_store, struct store **ret, struct error *err);

/* Long options shared by the store-using commands. */
#define CLI_OPT_ROOT 0x100
#define CLI_OPT_STORE 0x101
#define CLI_OPT_CELL 0x102
/* Table entries for them. */
#define CLI_OPTION_ROOT \
	{ "root", CLI_OPT_ROOT, "DIR", "the cell's root (default $TREADLE_ROOT, else /var/lib/treadle)" }
#define CLI_OPTION_STORE \
	{ "store", CLI_OPT_STORE, "URL", "the cell's store (default $TREADLE_STORE, else file://<root>/store)" }

/* The option tables, in the cmd-*.c files. */
extern const struct cli_option cell_options[], run_options[], stop_options[], show_options[], trace_options[],
	logs_options[], master_options[], store_options[], mirror_options[], scheduler_options[], exec_options[],
	manifest_options[], container_options[], node_options[], admin_options[], sproc_options[], api_options[],
	krb_options[], locker_options[], discovery_options[];

int cmd_cell(int argc, char **argv);
int cmd_master(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_stop(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_discovery(int argc, char **argv); /* cmd-discovery.c */
int cmd_trace(int argc, char **argv);
int cmd_logs(int argc, char **argv);
int cmd_store(int argc, char **argv);
int cmd_mirror(int argc, char **argv);
/* cmd-krb.c (docs/KERBEROS.md) */
int cmd_krb(int argc, char **argv);
int cmd_locker(int argc, char **argv);
int cmd_scheduler(int argc, char **argv);
/* cmd-exec.c (container runtime) */
int cmd_exec(int argc, char **argv);
int cmd_container(int argc, char **argv);
/* cmd-manifest.c (manifest) */
int cmd_manifest(int argc, char **argv);
int cmd_sproc(int argc, char **argv);
int cmd_node(int argc, char **argv);
/* cmd-watchdog.c: the node's watchdog daemon (node/watchdog.h) */
extern const struct cli_option watchdog_options[];
int cmd_watchdog(int argc, char **argv);
/* cmd-hostgroups.c: LDAP host groups (hostgroups/hostgroups.h) */
extern const struct cli_option hostgroups_options[];
int cmd_hostgroups(int argc, char **argv);
/* cmd-api.c: the REST API daemon, and the client run/stop/show/trace use with --api URL / $TREADLE_API
 * (a Unix socket path or http://host:port; $TREADLE_API_TOKEN is sent as a bearer token). */
int cmd_api(int argc, char **argv);
const char *cli_api_url(const char *opt_api); /* NULL: use the store */
/* One request; body JSON text or NULL.  2xx: *ret = the answer (may be NULL); else err holds the
 * API's message (ERR_PERM for 4xx, ERR_TEMP for 5xx and transport failures). */
struct json_t;
int cli_api_call(const char *api, const char *method, const char *path, const char *body, struct json_t **ret,
		 struct error *err);
char *cli_api_path(const char *resource, const char *id); /* "/<resource>/<id percent-encoded>" */
/* `run` through the API: the manifest file (NULL: none) with f merged over it, POSTed; prints the ids. */
struct manifest_run_flags;
int cli_api_run(const char *api, const char *file, const struct manifest_run_flags *f, const char *app,
		const char *env, int64_t count);
int cli_api_stop(const char *api, char **ids, int n); /* DELETE each; exit code */
/* GET /stream/<topic>?filter=F: fn(message) for each event, and fn(NULL) about once a second, until
 * fn returns non-zero (0) or the stream ends (0) or fails (err set). */
int cli_api_stream(const char *api, const char *topic, const char *filter, int (*fn)(struct json_t *msg, void *ud),
		   void *ud, struct error *err);
/* GET path; on failure the message is printed and -<exit code> returned. */
int cli_api_get(const char *api, const char *path, struct json_t **ret);
/* GET path, a text answer (a log) copied to stdout as it comes, until it ends; 0, or err set. */
int cli_api_text(const char *api, const char *path, struct error *err);
#define CLI_OPT_API 0x103
#define CLI_OPTION_API \
	{ "api", CLI_OPT_API, "URL", "use the cell's API (a Unix socket path, http(s)://host:port; default $TREADLE_API)" }
/* cmd-admin.c (zkcell) */
int cmd_admin(int argc, char **argv);
