/* cmd-run.c: treadle run, treadle stop (Treadmill's `run` and `stop`, writing
 * the store directly as masterapi.create_apps / delete_apps do). */
#include <getopt.h>
#include <string.h>

#include <jansson.h>

#include "../basic/fileio.h"
#include "../basic/util.h"
#include "../manifest/manifest.h"
#include "../manifest/merge.h"
#include "../store/store.h"
#include "../trace/trace.h"
#include "cli.h"

static void post(struct store *s, const char *inst, enum trace_type type, const char *data)
{
	char host[256] = "";
	struct trace_event ev = {
		.timestamp = now_realtime(),
		.source = host,
		.instanceid = (char *)inst,
		.type = type,
		.data = (char *)data,
	};

	gethostname(host, sizeof(host) - 1);
	if (trace_publish(s, &ev, host) < 0)
		fprintf(stderr, "treadle: warning: could not post the %s event of %s\n", trace_type_name(type), inst);
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
	CLI_OPTIONS_END,
};

/* The user manifest: the file's (or an empty one) with the flags merged over it, validated. */
static int run_manifest(const char *file, const struct manifest_run_flags *f, json_t **ret, struct error *err)
{
	_cleanup_free_ char *text = NULL;
	json_t *m = NULL;
	size_t len;
	int r;

	if (file) {
		r = read_file(file, &text, &len);
		if (r < 0)
			return error_set(err, r == -ENOENT || r == -EACCES || r == -EISDIR ? ERR_PERM : ERR_TEMP, -r,
					 "%s: %s", file, strerror(-r));
		r = manifest_parse(text, len, MANIFEST_AUTO, file, &m, err);
	} else {
		m = json_object();
		r = m ? 0 : error_sys(err, ENOMEM, "run");
	}
	if (r >= 0)
		r = manifest_merge_run(m, f, err);
	if (r >= 0)
		r = manifest_validate(m, false, err);
	if (r >= 0)
		r = manifest_check_json_size(m, file ? file : "the manifest", err);
	if (r < 0) {
		json_decref(m);
		return r;
	}
	*ret = m;
	return 0;
}

int cmd_run(int argc, char **argv)
{
	struct manifest_run_flags f = { .restart_limit = -1, .restart_interval = -1 };
	const char *manifest = NULL, *env = NULL, *root = NULL, *store_url = NULL, *app;
	_cleanup_free_ char *data = NULL, *prefix = NULL, *url = NULL;
	_cleanup_store_ struct store *s = NULL;
	struct error err = ERROR_INIT;
	json_t *endpoints = json_array();
	int64_t count = 1;
	json_t *m = NULL;
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
			goto out;
	}
	if (optind >= argc) {
		rc = cli_usage_error("run", "missing APP name");
		goto out;
	}
	app = argv[optind++];
	if (!manifest && optind >= argc) {
		rc = cli_usage_error("run", "give -m MANIFEST or a command after '--'");
		goto out;
	}
	f.command = argv + optind;

	/* Validate everything before touching the store.  On a ZooKeeper cell the submitting host
	 * need not know the proid: the node checks it (and aborts the instance with reason proid). */
	url = cli_store_url(root, store_url);
	if (!url) {
		rc = EXIT_TEMP;
		goto out;
	}
	r = run_manifest(manifest, &f, &m, &err);
	if (r >= 0)
		r = manifest_check_appname(app, !startswith(url, "zk://"), &err);
	if (r >= 0)
		r = manifest_schedule(m, app, env, &err);
	if (r >= 0) {
		data = manifest_dumps(m);
		if (!data)
			r = error_sys(&err, ENOMEM, "run");
	}
	if (r >= 0)
		r = cli_store_open(root, store_url, &s, &err);
	if (r < 0) {
		rc = error_report(&err);
		goto out;
	}
	r = store_create_p(s, "/scheduled");
	prefix = strdup_printf("/scheduled/%s#", app);
	if (!prefix) {
		rc = EXIT_TEMP;
		goto out;
	}
	for (int64_t i = 0; i < count; i++) {
		_cleanup_free_ char *path = NULL;

		r = store_create(s, prefix, data, strlen(data), STORE_SEQUENTIAL, &path);
		if (r < 0) {
			error_set(&err, ERR_TEMP, -r, "run: creating %s: %s", prefix, store_strerror(r));
			rc = error_report(&err);
			goto out;
		}
		post(s, path + strlen("/scheduled/"), TRACE_PENDING, "created");
		printf("%s\n", path + strlen("/scheduled/"));
		fflush(stdout);
	}
out:
	error_clear(&err);
	json_decref(m);
	json_decref(endpoints);
	return rc;
}

const struct cli_option stop_options[] = {
	CLI_OPTION_ROOT,
	CLI_OPTION_STORE,
	CLI_OPTIONS_END,
};

int cmd_stop(int argc, char **argv)
{
	const char *root = NULL, *store_url = NULL;
	_cleanup_store_ struct store *s = NULL;
	struct error err = ERROR_INIT;
	int c, r, rc = EXIT_OK;

	optind = 0;
	while ((c = cli_getopt(argc, argv, stop_options, false)) >= 0) {
		switch (c) {
		case CLI_OPT_ROOT: root = optarg; break;
		case CLI_OPT_STORE: store_url = optarg; break;
		default: return cli_usage_error("stop", "bad option");
		}
	}
	if (optind >= argc)
		return cli_usage_error("stop", "missing INSTANCE");
	if (cli_store_open(root, store_url, &s, &err) < 0)
		return error_report(&err);
	for (int i = optind; i < argc; i++) {
		_cleanup_free_ char *path = NULL;

		if (!strchr(argv[i], '#') || strchr(argv[i], '/')) {
			fprintf(stderr, "treadle: stop: %s: not an instance id (<proid>.<app>#<seq>)\n", argv[i]);
			rc = EXIT_PERM;
			continue;
		}
		path = strdup_printf("/scheduled/%s", argv[i]);
		if (!path)
			return EXIT_TEMP;
		r = store_exists(s, path, NULL, NULL, NULL);
		if (r == 0) {
			post(s, argv[i], TRACE_PENDING_DELETE, "deleted");
			r = store_delete(s, path, -1);
		}
		if (r == -ENOENT) {
			fprintf(stderr, "treadle: stop: %s: no such instance\n", argv[i]);
			rc = EXIT_PERM;
		} else if (r < 0) {
			fprintf(stderr, "treadle: stop: %s: %s\n", argv[i], store_strerror(r));
			rc = EXIT_TEMP;
		}
	}
	return rc;
}
