/* `treadle sproc ...`: internal commands run by the node's s6 scripts.
 * Thin: parse options, call src/node/sproc.h, report the error once. */
#include <getopt.h>
#include <limits.h>
#include <string.h>

#include "../basic/util.h"
#include "../node/sproc.h"
#include "cli.h"

enum {
	OPT_ROOT = 0x200, /* past the shared CLI_OPT_* (cli.h) */
	OPT_CGROUP_ROOT,
	OPT_LIMIT,
	OPT_INTERVAL,
	OPT_TOMBSTONES,
	OPT_ID,
	OPT_APPEVENTS,
	OPT_INSTANCE,
	OPT_UNIQUEID,
	OPT_SERVICE,
	OPT_USER,
	OPT_TYPE,
	OPT_DATA,
	OPT_PAYLOAD,
};


const struct cli_option sproc_options[] = {
	{ "root", OPT_ROOT, "DIR", "the node's root" },
	{ "cgroup-root", OPT_CGROUP_ROOT, "NAME", "cleanup: the containers' cgroup parent (default: N/node.json's)" },
	{ "limit", OPT_LIMIT, "N", "restart limit" },
	{ "interval", OPT_INTERVAL, "SECS", "restart interval" },
	{ "tombstones", OPT_TOMBSTONES, "DIR", "tombstone directory" },
	{ "id", OPT_ID, "ID", "the service's id" },
	{ "appevents", OPT_APPEVENTS, "DIR", "app events directory" },
	{ "instance", OPT_INSTANCE, "INSTANCE", "the instance" },
	{ "uniqueid", OPT_UNIQUEID, "ID", "the container's unique id" },
	{ "service", OPT_SERVICE, "NAME", "the service" },
	{ "user", OPT_USER, "USER", "the user to run as" },
	{ "type", OPT_TYPE, "TYPE", "event type" },
	{ "data", OPT_DATA, "DATA", "event data" },
	{ "payload", OPT_PAYLOAD, "PAYLOAD", "event payload" },
	CLI_OPTIONS_END,
};

struct sproc_opts {
	const char *root, *cgroup_root, *tombstones, *id, *appevents, *instance, *uniqueid, *service, *user,
		*type, *data, *payload;
	int limit, interval;
};

static int parse_opts(const char *cmd, int argc, char **argv, struct sproc_opts *o)
{
	int c;

	o->limit = o->interval = -1;
	optind = 1;
	while ((c = cli_getopt(argc, argv, sproc_options, false)) != -1) {
		switch (c) {
		case OPT_ROOT: o->root = optarg; break;
		case OPT_CGROUP_ROOT: o->cgroup_root = optarg; break;
		case OPT_TOMBSTONES: o->tombstones = optarg; break;
		case OPT_ID: o->id = optarg; break;
		case OPT_APPEVENTS: o->appevents = optarg; break;
		case OPT_INSTANCE: o->instance = optarg; break;
		case OPT_UNIQUEID: o->uniqueid = optarg; break;
		case OPT_SERVICE: o->service = optarg; break;
		case OPT_USER: o->user = optarg; break;
		case OPT_TYPE: o->type = optarg; break;
		case OPT_DATA: o->data = optarg; break;
		case OPT_PAYLOAD: o->payload = optarg; break;
		case OPT_LIMIT:
			if (safe_atoi(optarg, &o->limit) < 0 || o->limit < 0)
				return cli_usage_error(cmd, "invalid --limit '%s'", optarg);
			break;
		case OPT_INTERVAL:
			if (safe_atoi(optarg, &o->interval) < 0 || o->interval < 0)
				return cli_usage_error(cmd, "invalid --interval '%s'", optarg);
			break;
		default:
			return cli_usage_error(cmd, "invalid option");
		}
	}
	return 0;
}

/* Exit code of a subcommand whose library call returned r and filled err. */
static int sproc_exit(int r, struct error *err)
{
	return r >= 0 && !error_isset(err) ? EXIT_OK : error_report(err);
}

/* s6 passes "" or a number; empty means 0. */
static int parse_status(const char *s, int *ret)
{
	if (!s || !*s) {
		*ret = 0;
		return 0;
	}
	return safe_atoi(s, ret);
}

static int sproc_finish_cmd(int argc, char **argv)
{
	struct sproc_opts o = { 0 };
	struct sproc_finish_args a = { 0 };
	int r;

	r = parse_opts("sproc finish", argc, argv, &o);
	if (r)
		return r;
	if (o.limit < 0 || o.interval < 0 || !o.tombstones || !o.id)
		return cli_usage_error("sproc finish", "--limit, --interval, --tombstones and --id are required");
	if (optind >= argc || parse_status(argv[optind], &a.rc) < 0 ||
	    parse_status(optind + 1 < argc ? argv[optind + 1] : NULL, &a.sig) < 0)
		return cli_usage_error("sproc finish", "expected RC [SIG]");
	a.limit = (unsigned)o.limit;
	a.interval = (unsigned)o.interval;
	a.tombstones = o.tombstones;
	a.id = o.id;
	a.appevents = o.appevents;
	a.instance = o.instance;
	a.uniqueid = o.uniqueid;
	a.service = o.service;
	r = sproc_finish(&a);
	if (r < 0) {
		fprintf(stderr, "treadle: sproc finish: %s\n", strerror(-r));
		return EXIT_TEMP;
	}
	printf("%.3f exit %d signal %d: %s\n", now_realtime(), a.rc, a.sig, r == 125 ? "fatal" : "restart");
	return r;
}

static int sproc_exec_cmd(int argc, char **argv)
{
	struct sproc_opts o = { 0 };
	struct sproc_exec_args a = { 0 };
	struct error err = ERROR_INIT;
	int r = parse_opts("sproc service-exec", argc, argv, &o);

	if (r)
		return r;
	a.appevents = o.appevents;
	a.instance = o.instance;
	a.uniqueid = o.uniqueid;
	a.service = o.service;
	a.user = o.user;
	(void)sproc_service_exec(&a, &err); /* returns only on failure */
	return sproc_exit(-1, &err);
}

static int sproc_run_cmd(int argc, char **argv)
{
	struct sproc_opts o = { 0 };
	struct error err = ERROR_INIT;
	int r = parse_opts("sproc run", argc, argv, &o);

	if (r)
		return r;
	if (!o.root)
		return cli_usage_error("sproc run", "--root is required");
	/* setup failures are also recorded in data/aborted; either way the
	 * container's finish (limit 0) turns the exit into cleanup */
	return sproc_exit(sproc_run(o.root, &err), &err);
}

static int sproc_cleanup_cmd(int argc, char **argv)
{
	struct sproc_opts o = { 0 };
	struct error err = ERROR_INIT;
	int r = parse_opts("sproc cleanup", argc, argv, &o);

	if (r)
		return r;
	if (!o.root || optind != argc - 1)
		return cli_usage_error("sproc cleanup", "expected --root N UNIQUE");
	return sproc_exit(sproc_cleanup(o.root, o.cgroup_root, argv[optind], &err), &err);
}

static int sproc_event_cmd(int argc, char **argv)
{
	struct sproc_opts o = { 0 };
	int r = parse_opts("sproc event", argc, argv, &o);

	if (r)
		return r;
	if (!o.appevents || !o.instance || !o.type)
		return cli_usage_error("sproc event", "--appevents, --instance and --type are required");
	r = sproc_event_post(o.appevents, o.instance, o.type, o.data, o.payload);
	if (r < 0) {
		fprintf(stderr, "treadle: sproc event: %s\n", strerror(-r));
		return r == -EINVAL ? EXIT_USAGE : EXIT_TEMP;
	}
	return EXIT_OK;
}

static int sproc_check_cmd(int argc, char **argv)
{
	struct sproc_opts o = { 0 };
	struct error err = ERROR_INIT;
	int r = parse_opts("sproc check", argc, argv, &o);

	if (r)
		return r;
	if (!o.service)
		return cli_usage_error("sproc check", "--service is required");
	(void)sproc_check(o.service, &err); /* returns only on failure */
	return sproc_exit(-1, &err);
}

static int sproc_aliases_cmd(int argc, char **argv)
{
	struct sproc_opts o = { 0 };
	struct error err = ERROR_INIT;
	int r = parse_opts("sproc host-aliases", argc, argv, &o);

	if (r)
		return r;
	(void)sproc_host_aliases(&err); /* returns only on failure */
	return sproc_exit(-1, &err);
}

int cmd_sproc(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} subs[] = {
		{ "run", sproc_run_cmd },	  { "finish", sproc_finish_cmd }, { "service-exec", sproc_exec_cmd },
		{ "cleanup", sproc_cleanup_cmd }, { "event", sproc_event_cmd },
		{ "check", sproc_check_cmd },	  { "host-aliases", sproc_aliases_cmd },
	};

	if (argc < 2)
		return cli_usage_error("sproc", "missing subcommand");
	for (size_t i = 0; i < ELEMENTSOF(subs); i++)
		if (!strcmp(argv[1], subs[i].name))
			return subs[i].fn(argc - 1, argv + 1);
	return cli_usage_error("sproc", "unknown subcommand '%s'", argv[1]);
}
