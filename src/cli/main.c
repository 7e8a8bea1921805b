/* treadle: one binary, subcommands from one table (which also produces --help). */
#include <stdarg.h>
#include <string.h>

#include "cli.h"

static int cmd_help(int argc, char **argv);

static const struct cli_command commands[] = {
	{ "help", cmd_help, "[COMMAND]", "show commands, or one command's usage" },
	{ "version", cmd_version, "", "print the version" },
	{ "cell", cmd_cell, "up|down|status [--root DIR] [--daemon] [--hostname H] [--cgroup-root NAME] [--json]",
	  "start, stop or inspect a single-machine cell" },
	{ "run", cmd_run,
	  "APP -m MANIFEST [--count N] [--env ENV] | APP [--memory M] [--cpu C] [--disk D] [--restart-limit N] "
	  "[--restart-interval S] [--endpoint NAME PORT]... [--count N] -- CMD...",
	  "schedule instances of an app; prints their ids" },
	{ "stop", cmd_stop, "INSTANCE...", "delete instances (their containers are stopped)" },
	{ "show", cmd_show, "[running|pending|scheduled|finished|all] [--json] | endpoints [PROID.APP[#N]] [--json]",
	  "list instances and their state, or their endpoints (host:port)" },
	{ "trace", cmd_trace, "INSTANCE [--follow] [--json]", "print an instance's events; exit code from its outcome" },
	{ "logs", cmd_logs, "INSTANCE[/SERVICE] [-f]", "print (and follow) a service's log" },
	{ "master", cmd_master, "--store URL [--cell NAME] [--hostname H] [--server-down-grace SECS]", "(internal) run the cell master" },
	{ "store", cmd_store, "get|set|create|delete|ls|tree|exists|wait|watch PATH [DATA|-] [--store URL|--root DIR] [-e] [-s] [-p] [-r] [--version N] [--stat] [--data] [--hold] [--timeout SEC] [--gone] [--json] | fsck [--repair]",
	  "read and write the cell store (debugging)" },
	{ "mirror", cmd_mirror, "--dir DIR [--store URL|--root DIR] [--once] PATH...",
	  "keep a read-only copy of store subtrees in a directory (zk2fs)" },
	{ "scheduler", cmd_scheduler, "simulate DIR | explain INSTANCE | view servers|allocs|apps [--json]", "run, explain and inspect the scheduler" },
	{ "exec", cmd_exec, "INSTANCE [--root R] [--service S] [--user U] [-- CMD...]",
	  "run a command (default a login shell) inside a running container" },
	{ "manifest", cmd_manifest, "check|convert FILE|- [--app PROID.NAME] [--env dev|qa|uat|prod] [--no-user-check]",
	  "validate a manifest (all problems, exit 100) and print it as JSON; convert: YAML as typed JSON" },
	{ "container", cmd_container, "exec-as|run|cleanup ...", "(internal) container runtime helpers" },
	{ "node", cmd_node, "--store URL [--root N] [--hostname H] [--cell NAME] [--cgroup-root NAME] [--setup-timeout SECS] [--pids-max N] [--disk-read-bps SIZE] [--disk-write-bps SIZE]",
	  "run the node agent: placements -> containers under s6, events -> store" },
	{ "admin", cmd_admin,
	  "server add|delete|up|down|freeze HOST | bucket add|delete B | cell insert|remove B | partition add|delete P | "
	  "alloc set|delete|assign|unassign ... | identity-group set|delete G | blackout set|clear server|app NAME | "
	  "OBJECT list [--json] [--store URL|--root DIR] [--parent B] [--partition P] [--memory M] [--cpu C] [--disk D] "
	  "[--traits a,b] [--level L] [--rank N] [--rank-adjustment N] [--max-utilization F] [--count N] [--reason R] "
	  "[--apps a,b] [--reboot-schedule JSON]",
	  "administer the cell: servers, buckets, topology, partitions, allocations, identity groups, blackouts" },
	{ "sproc", cmd_sproc, "run|finish|service-exec|cleanup|event ...", "(internal) commands run by the node's s6 scripts" },
};

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "treadle: %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see 'treadle help %s')\n", cmd);
	return EXIT_USAGE;
}

const char *cli_root(const char *opt_root)
{
	const char *e;

	if (opt_root && *opt_root)
		return opt_root;
	e = getenv("TREADLE_ROOT");
	return e && *e ? e : "/var/lib/treadle";
}

int cmd_version(int argc _unused_, char **argv _unused_)
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

static int cmd_help(int argc, char **argv)
{
	const struct cli_command *c;

	if (argc > 1) {
		c = find(argv[1]);
		if (!c)
			return cli_usage_error("help", "unknown command '%s'", argv[1]);
		printf("usage: treadle %s %s\n  %s\n", c->name, c->usage, c->summary);
		return EXIT_OK;
	}
	printf("usage: treadle COMMAND [ARGS...]\n\ncommands:\n");
	for (size_t i = 0; i < ELEMENTSOF(commands); i++)
		if (commands[i].summary[0] != '(') /* "(internal)" commands are not listed */
			printf("  %-10s %s\n", commands[i].name, commands[i].summary);
	printf("\nevery command takes --root DIR (else $TREADLE_ROOT, else /var/lib/treadle) and, where it reads the\n"
	       "store, --store URL (else $TREADLE_STORE, else file://<root>/store)\n");
	printf("\nexit codes: 0 ok, 1 no/false, 2 usage, 100 permanent error, 111 temporary or system error\n");
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	const struct cli_command *c;

	if (argc < 2)
		return cmd_help(1, argv), EXIT_USAGE;
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
		return cmd_help(1, argv);
	if (!strcmp(argv[1], "--version"))
		return cmd_version(1, argv);
	c = find(argv[1]);
	if (!c)
		return cli_usage_error("help", "unknown command '%s'", argv[1]);
	if (argc > 2 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
		printf("usage: treadle %s %s\n  %s\n", c->name, c->usage, c->summary);
		return EXIT_OK;
	}
	return c->run(argc - 1, argv + 1);
}
