/* treadle: one binary, subcommands from one table (which also produces --help). */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int cmd_help(int argc, char **argv);
static int cmd_version(int argc, char **argv);

/* help's own options: --options CMD prints what getopt accepts (for tests/integration/77). */
#define OPT_DUMP 'o'
static const struct cli_option help_options[] = {
	{ "options", OPT_DUMP, NULL, "(internal) print the options getopt accepts (no COMMAND: the commands)" },
	CLI_OPTIONS_END,
};

/* Usage lines name the arguments; the options come from each command's table. */
static const struct cli_command commands[] = {
	{ "help", cmd_help, "[COMMAND]", "show commands, or one command's usage", help_options },
	{ "version", cmd_version, "", "print the version", NULL },
	{ "cell", cmd_cell, "up|down|status", "start, stop or inspect a cell server (the whole single-machine cell, or one server of a ZooKeeper cell)",
	  cell_options },
	{ "run", cmd_run, "APP -m MANIFEST [OPTIONS] [-- CMD...] | APP [OPTIONS] -- CMD...",
	  "schedule instances of an app (flags merged over the manifest); prints their ids", run_options },
	{ "stop", cmd_stop, "INSTANCE...", "delete instances (their containers are stopped)", stop_options },
	{ "show", cmd_show, "[running|pending|scheduled|finished|all] | endpoints [PROID.APP[#N]]",
	  "list instances, their state and why a pending one waits, or their endpoints (host:port)", show_options },
	{ "discovery", cmd_discovery, "PROID.APP[#N] [PROTO:ENDPOINT]",
	  "list the endpoints of matching instances (host:port, with --check-state up|down); --watch: then every change",
	  discovery_options },
	{ "trace", cmd_trace, "INSTANCE", "print an instance's events; exit code from its outcome", trace_options },
	{ "logs", cmd_logs, "INSTANCE[/SERVICE]", "print (and follow) a service's log", logs_options },
	{ "master", cmd_master, "", "(internal) run the cell master", master_options },
	{ "store", cmd_store, "get|set|create|delete|ls|tree|exists|wait|watch PATH [DATA|-] | fsck",
	  "read and write the cell store (debugging); fsck: check and repair the embedded store", store_options },
	{ "mirror", cmd_mirror, "PATH...", "keep a read-only copy of store subtrees in a directory (zk2fs)",
	  mirror_options },
	{ "scheduler", cmd_scheduler, "simulate DIR | explain INSTANCE | view servers|allocs|apps",
	  "run, explain and inspect the scheduler", scheduler_options },
	{ "exec", cmd_exec, "INSTANCE [-- CMD...]", "run a command (default a login shell) inside a running container",
	  exec_options },
	{ "manifest", cmd_manifest, "check|convert FILE|-",
	  "validate a manifest (all problems, exit 100) and print it as JSON; convert: YAML as typed JSON",
	  manifest_options },
	{ "container", cmd_container, "exec-as|run|cleanup ...", "(internal) container runtime helpers",
	  container_options },
	{ "node", cmd_node, "", "run the node agent: placements -> containers under s6, events -> store",
	  node_options },
	{ "admin", cmd_admin,
	  "server add|delete|up|down|freeze HOST | bucket add|delete B | cell insert|remove B | partition add|delete P | "
	  "alloc set|delete|assign|unassign ... | identity-group set|delete G | blackout set|clear server|app NAME | "
	  "OBJECT list | postmortem",
	  "administer the cell: servers, buckets, topology, partitions, allocations, identity groups, blackouts; "
	  "postmortem: a diagnosis bundle of this server's node",
	  admin_options },
	{ "api", cmd_api, "[--socket PATH] [--listen HOST:PORT --tokens FILE]",
	  "serve the cell's REST API and event streams (docs/API.md)", api_options },
	{ "watchdog", cmd_watchdog, "", "(internal) the node's watchdog: a failed lease blacks the server out, writes a postmortem",
	  watchdog_options },
	{ "hostgroups", cmd_hostgroups, "--ldap-url URL --ldap-group-dn PATTERN --ldap-server-dn PATTERN",
	  "(internal) keep each server a member of the LDAP group of every proid placed on it", hostgroups_options },
	{ "sproc", cmd_sproc, "run|finish|service-exec|cleanup|event|check|host-aliases ...",
	  "(internal) commands run by the node's s6 scripts", sproc_options },
	{ "krb", cmd_krb, "forward | keytab|tickets --instance I --out PATH",
	  "Kerberos: forward your ticket to the cell's lockers; fetch an instance's keytab or tickets", krb_options },
	{ "locker", cmd_locker, "--listen HOST:PORT --keytab FILE --dir DIR",
	  "serve forwarded tickets (and keytabs with --kadmin-*) to the cell's nodes (docs/KERBEROS.md)",
	  locker_options },
};

static int cmd_version(int argc _unused_, char **argv _unused_)
{
	printf("treadle %s\n", TREADLE_VERSION);
	return EXIT_OK;
}

static const struct cli_command *find(const char *name)
{
	for (size_t i = 0; i < ELEMENTSOF(commands); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static void command_usage(const struct cli_command *c)
{
	printf("usage: treadle %s%s%s\n  %s\n", c->name, c->usage[0] ? " " : "", c->usage, c->summary);
	if (c->options)
		cli_options_print(stdout, c->options);
}

static int cmd_help(int argc, char **argv)
{
	const struct cli_command *c;
	bool dump = false;
	int o;

	optind = 0;
	while ((o = cli_getopt(argc, argv, help_options, false)) >= 0) {
		if (o != OPT_DUMP)
			return cli_usage_error("help", "bad option");
		dump = true;
	}
	if (optind < argc) {
		c = find(argv[optind]);
		if (!c)
			return cli_usage_error("help", "unknown command '%s'", argv[optind]);
		if (dump) {
			if (c->options)
				cli_options_dump(stdout, c->options);
		} else
			command_usage(c);
		return EXIT_OK;
	}
	if (dump) { /* every command's name, for tests/integration/77 */
		for (size_t i = 0; i < ELEMENTSOF(commands); i++)
			printf("%s\n", commands[i].name);
		return EXIT_OK;
	}
	printf("usage: treadle [--root DIR] [--store URL] [--cell NAME] COMMAND [ARGS...]\n\ncommands:\n");
	for (size_t i = 0; i < ELEMENTSOF(commands); i++)
		if (commands[i].summary[0] != '(') /* "(internal)" commands are not listed */
			printf("  %-10s %s\n", commands[i].name, commands[i].summary);
	printf("\nthe cell: --root DIR (else $TREADLE_ROOT, else /var/lib/treadle); the store: --store URL (else\n"
	       "$TREADLE_STORE, else file://<root>/store); --cell NAME (else $TREADLE_CELL or $TREADMILL_CELL) sets both\n"
	       "from %s/cells/NAME.env ($TREADLE_CONF_DIR), else the root %s/NAME.  These options may come\n"
	       "before the command or among its options.\n",
	       CLI_CONF_DIR, CLI_CELLS_ROOT);
	printf("\nexit codes: 0 ok, 1 no/false, 2 usage, 100 permanent error, 111 temporary or system error\n");
	return EXIT_OK;
}

/* --help or -h among the command's arguments (before a "--").  The internal commands run other
 * programs' arguments without a "--": only their first two arguments count. */
static bool wants_help(const struct cli_command *c, int argc, char **argv)
{
	if (c->summary[0] == '(')
		argc = MIN(argc, 3);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return false;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	}
	return false;
}

/* Options before the command: --root DIR, --store URL, --cell NAME (also --opt=VALUE) become the
 * environment the commands read ($TREADLE_ROOT, $TREADLE_STORE): the cell first, so that --root and
 * --store win over it whatever their order.  Returns the index of the command, or -1 after printing
 * a usage error. */
static int global_options(int argc, char **argv)
{
	static const char *const names[] = { "--root", "--store", "--cell" };
	static const char *const vars[] = { "TREADLE_ROOT", "TREADLE_STORE" };
	const char *values[ELEMENTSOF(names)] = { NULL };
	struct error err = ERROR_INIT;
	int i = 1;

	while (i < argc && argv[i][0] == '-' && strcmp(argv[i], "--help") && strcmp(argv[i], "-h") &&
	       strcmp(argv[i], "--version")) {
		size_t k, n = 0;

		for (k = 0; k < ELEMENTSOF(names); k++) {
			n = strlen(names[k]);
			if (strncmp(argv[i], names[k], n) == 0 && (argv[i][n] == 0 || argv[i][n] == '='))
				break;
		}
		if (k == ELEMENTSOF(names))
			return cli_usage_error("help", "unknown option '%s' before the command", argv[i]), -1;
		if (argv[i][n] == '=')
			values[k] = argv[i] + n + 1;
		else if (i + 1 < argc)
			values[k] = argv[++i];
		else
			return cli_usage_error("help", "%s needs a value", argv[i]), -1;
		i++;
	}
	if (values[2] && cli_cell_select(values[2], &err) < 0)
		exit(error_report(&err));
	for (size_t k = 0; k < ELEMENTSOF(vars); k++)
		if (values[k] && setenv(vars[k], values[k], 1) < 0)
			exit(EXIT_TEMP);
	return i;
}

#if defined(__SANITIZE_ADDRESS__)
/* Private-network containers preload treadle-bind.so (/etc/ld.so.preload) ahead of the ASan runtime: a
 * sanitizer build of treadle run there must accept that (docs/CONTAINER.md "Bind preload"). */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "verify_asan_link_order=0";
}
#endif

int main(int argc, char **argv)
{
	const struct cli_command *c;
	const char *cell = getenv("TREADLE_CELL");
	struct error err = ERROR_INIT;
	int i;

	i = global_options(argc, argv);
	if (i < 0)
		return EXIT_USAGE;
	argc -= i - 1;
	argv += i - 1;
	if (argc < 2)
		return cmd_help(1, argv), EXIT_USAGE;
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
		return cmd_help(1, argv);
	if (!strcmp(argv[1], "--version"))
		return cmd_version(1, argv);
	c = find(argv[1]);
	if (!c)
		return cli_usage_error("help", "unknown command '%s'", argv[1]);
	/* The cell from the environment, unless the root or store is given (or selected) already.
	 * Not for the internal commands and the node agent: they run in the cell's own services,
	 * where TREADMILL_CELL is the cell's name (as in the containers' environment). */
	if (!cell || !*cell)
		cell = getenv("TREADMILL_CELL");
	if (cell && *cell && c->summary[0] != '(' && c->run != cmd_node && !getenv("TREADLE_ROOT") &&
	    !getenv("TREADLE_STORE") && cli_cell_select(cell, &err) < 0)
		return error_report(&err);
	if (wants_help(c, argc - 1, argv + 1)) {
		command_usage(c);
		return EXIT_OK;
	}
	return c->run(argc - 1, argv + 1);
}
