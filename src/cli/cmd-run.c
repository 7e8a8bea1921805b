/* cmd-run.c: treadle run, treadle stop (Treadmill's `run` and `stop`): the
 * manifest from manifest_build_run, the store writes of admin_schedule_many /
 * admin_unschedule_many (masterapi.create_apps / delete_apps, in batches). */
#include <getopt.h>
#include <string.h>

#include <jansson.h>

#include "../admin/admin.h"
#include "../basic/json.h"
#include "../basic/util.h"
#include "../manifest/merge.h"
#include "../store/store.h"
#include "cli.h"

/* This host's name, the source of the events run and stop post. */
static void host_name(char host[static 256])
{
	memset(host, 0, 256);
	gethostname(host, 255);
}

enum {
	OPT_COUNT = 'n',
	OPT_ENV = 'E',
	OPT_MEMORY = 'M',
	OPT_CPU = 'C',
	OPT_DISK = 'D',
	OPT_SERVICE = 'S',
	OPT_LIMIT = 'l',
	OPT_INTERVAL = 'i',
	OPT_ENDPOINT = 'e',
};

const struct cli_option run_options[] = {
	{ "manifest", 'm', "FILE", "the manifest (YAML or JSON); the flags below are merged over it", true },
	{ "count", OPT_COUNT, "N", "instances to schedule, 1..1000 (default 1)" },
	{ "env", OPT_ENV, "ENV", "environment: dev (default), qa, uat, prod" },
	{ "memory", OPT_MEMORY, "SIZE", "memory, replaces the manifest's (default 100M)" },
	{ "cpu", OPT_CPU, "PCT", "cpu, replaces the manifest's (default 10%)" },
	{ "disk", OPT_DISK, "SIZE", "disk, replaces the manifest's (default 100M)" },
	{ "service", OPT_SERVICE, "NAME", "the service the command runs as, or the flags apply to" },
	{ "restart-limit", OPT_LIMIT, "N", "restart limit of the service(s) (a new service: 0)" },
	{ "restart-interval", OPT_INTERVAL, "SECS", "restart interval of the service(s) (a new service: 60)" },
	{ "endpoint", OPT_ENDPOINT, "NAME PORT", "add an endpoint, or set the port of the manifest's (repeatable)" },
	CLI_OPTION_ROOT,
	CLI_OPTION_STORE,
	CLI_OPTION_API,
	CLI_OPTIONS_END,
};

int cmd_run(int argc, char **argv)
{
	struct manifest_run_flags f = { .restart_limit = -1, .restart_interval = -1 };
	const char *manifest = NULL, *env = NULL, *root = NULL, *store_url = NULL, *api = NULL, *app;
	_cleanup_free_ char *data = NULL, *url = NULL;
	_cleanup_store_ struct store *s = NULL;
	_cleanup_json_ json_t *endpoints = json_array();
	struct error err = ERROR_INIT;
	int64_t count = 1;
	char host[256];
	uint64_t u;
	int c, r, rc = EXIT_OK;

	if (!endpoints)
		return EXIT_TEMP;
	f.endpoints = endpoints;
	optind = 0;
	while ((c = cli_getopt(argc, argv, run_options, false)) >= 0) {
		switch (c) {
		case 'm': manifest = optarg; break;
		case OPT_ENV: env = optarg; break;
		case OPT_MEMORY: f.memory = optarg; break;
		case OPT_CPU: f.cpu = optarg; break;
		case OPT_DISK: f.disk = optarg; break;
		case OPT_SERVICE: f.service = optarg; break;
		case CLI_OPT_ROOT: root = optarg; break;
		case CLI_OPT_STORE: store_url = optarg; break;
		case CLI_OPT_API: api = optarg; break;
		case OPT_COUNT:
			if (safe_atoi64(optarg, &count) < 0 || count < 1 || count > 1000)
				rc = cli_usage_error("run", "--count: expected 1..1000, got '%s'", optarg);
			break;
		case OPT_LIMIT:
			if (safe_atoi64(optarg, &f.restart_limit) < 0 || f.restart_limit < 0)
				rc = cli_usage_error("run", "--restart-limit: expected an integer, got '%s'", optarg);
			break;
		case OPT_INTERVAL:
			if (parse_duration(optarg, &u) < 0 || u > INT32_MAX)
				rc = cli_usage_error("run", "--restart-interval: expected seconds, got '%s'", optarg);
			f.restart_interval = (int64_t)u;
			break;
		case OPT_ENDPOINT:
			if (optind >= argc || safe_atou64(argv[optind], &u) < 0 || u > 65535) {
				rc = cli_usage_error("run", "--endpoint NAME PORT: bad or missing port");
				break;
			}
			json_array_append_new(endpoints, json_pack("{s:s, s:I}", "name", optarg, "port", (json_int_t)u));
			optind++;
			break;
		default:
			rc = cli_usage_error("run", "bad option");
		}
		if (rc != EXIT_OK)
			return rc;
	}
	if (optind >= argc)
		return cli_usage_error("run", "missing APP name");
	app = argv[optind++];
	if (!manifest && optind >= argc)
		return cli_usage_error("run", "give -m MANIFEST or a command after '--'");
	f.command = argv + optind;
	if (cli_api_url(api))
		return cli_api_run(cli_api_url(api), manifest, &f, app, env, count);

	/* Validate everything before touching the store.  On a ZooKeeper cell the submitting host
	 * need not know the proid: the node checks it (and aborts the instance with reason proid). */
	url = cli_store_url(root, store_url);
	if (!url)
		return EXIT_TEMP;
	/* the cell's name, when known, for the vring's cells */
	f.cell = cli_cell_name ? cli_cell_name : getenv("TREADLE_CELL") ? getenv("TREADLE_CELL") : getenv("TREADMILL_CELL");
	r = manifest_build_run(manifest, &f, app, env, !startswith(url, "zk://"), &data, &err);
	if (r >= 0)
		r = cli_store_open(root, store_url, &s, &err);
	if (r < 0)
		return error_report(&err);
	host_name(host);
	{
		/* in batches: one store commit per batch instead of one per instance */
		_cleanup_strv_free_ char **insts = NULL;
		size_t unposted = 0;

		r = admin_schedule_many(s, app, data, host, (size_t)count, &insts, &unposted, &err);
		for (char **i = insts; i && *i; i++)
			printf("%s\n", *i);
		fflush(stdout);
		if (unposted)
			fprintf(stderr, "treadle: warning: could not post the pending event of %zu instance(s)\n", unposted);
		if (r < 0) {
			error_prefix(&err, "run");
			return error_report(&err);
		}
	}
	return EXIT_OK;
}

const struct cli_option stop_options[] = {
	CLI_OPTION_ROOT,
	CLI_OPTION_STORE,
	CLI_OPTION_API,
	CLI_OPTIONS_END,
};

int cmd_stop(int argc, char **argv)
{
	const char *root = NULL, *store_url = NULL, *api = NULL;
	_cleanup_store_ struct store *s = NULL;
	struct error err = ERROR_INIT;
	char host[256];
	int c, rc = EXIT_OK;

	optind = 0;
	while ((c = cli_getopt(argc, argv, stop_options, false)) >= 0) {
		switch (c) {
		case CLI_OPT_ROOT: root = optarg; break;
		case CLI_OPT_STORE: store_url = optarg; break;
		case CLI_OPT_API: api = optarg; break;
		default: return cli_usage_error("stop", "bad option");
		}
	}
	if (optind >= argc)
		return cli_usage_error("stop", "missing INSTANCE");
	if (cli_api_url(api))
		return cli_api_stop(cli_api_url(api), argv + optind, argc - optind);
	if (cli_store_open(root, store_url, &s, &err) < 0)
		return error_report(&err);
	host_name(host);
	{
		size_t n = (size_t)(argc - optind);
		_cleanup_free_ bool *posted = calloc(n, sizeof(*posted));
		_cleanup_free_ struct error *errs = calloc(n, sizeof(*errs));

		if (!posted || !errs)
			return EXIT_TEMP;
		admin_unschedule_many(s, argv + optind, n, host, posted, errs);
		for (size_t i = 0; i < n; i++) {
			if (errs[i].code) {
				error_prefix(&errs[i], "stop");
				rc = error_report(&errs[i]);
			} else if (!posted[i])
				fprintf(stderr, "treadle: warning: could not post the pending_delete event of %s\n",
					argv[optind + i]);
		}
	}
	return rc;
}
