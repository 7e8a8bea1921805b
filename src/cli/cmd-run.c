/* cmd-run.c: treadle run, treadle stop (Treadmill's `run` and `stop`, writing
 * the store directly as masterapi.create_apps / delete_apps do). */
#include <getopt.h>
#include <string.h>

#include <jansson.h>

#include "../basic/util.h"
#include "../manifest/manifest.h"
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

/* Quote one word for /bin/sh when it needs it. */
static int append_word(char **cmd, const char *w)
{
	bool plain = *w != 0;
	_cleanup_free_ char *q = NULL;
	char *n;
	size_t len = 0;

	for (const char *p = w; *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=:,@%+", *p))
			plain = false;
	if (plain)
		q = strdup(w);
	else {
		q = malloc(strlen(w) * 4 + 3);
		if (!q)
			return -ENOMEM;
		q[len++] = '\'';
		for (const char *p = w; *p; p++) {
			if (*p == '\'') {
				memcpy(q + len, "'\\''", 4);
				len += 4;
			} else
				q[len++] = *p;
		}
		q[len++] = '\'';
		q[len] = 0;
	}
	if (!q)
		return -ENOMEM;
	n = *cmd ? strdup_printf("%s %s", *cmd, q) : strdup(q);
	if (!n)
		return -ENOMEM;
	free(*cmd);
	*cmd = n;
	return 0;
}

struct run_opts {
	const char *memory, *cpu, *disk, *service;
	int64_t restart_limit, restart_interval;
	json_t *endpoints;
};

/* The user manifest of `treadle run APP [opts] -- CMD...` (Treadmill cli/run.py). */
static int build_manifest(const struct run_opts *o, char **cmdv, char **ret_text, struct error *err)
{
	_cleanup_free_ char *cmd = NULL;
	const char *base;
	json_t *m;

	for (char **w = cmdv; *w; w++)
		if (append_word(&cmd, *w) < 0)
			return error_sys(err, ENOMEM, "run");
	base = strrchr(cmdv[0], '/');
	base = base ? base + 1 : cmdv[0];
	m = json_pack("{s:s, s:s, s:s, s:[{s:s, s:s, s:{s:I, s:I}}]}", "memory", o->memory, "cpu", o->cpu, "disk",
		      o->disk, "services", "name", o->service ? o->service : base, "command", cmd, "restart", "limit",
		      (json_int_t)o->restart_limit, "interval", (json_int_t)o->restart_interval);
	if (!m)
		return error_sys(err, ENOMEM, "run");
	if (json_array_size(o->endpoints))
		json_object_set(m, "endpoints", o->endpoints);
	*ret_text = json_dumps(m, JSON_SORT_KEYS | JSON_COMPACT);
	json_decref(m);
	return *ret_text ? 0 : error_sys(err, ENOMEM, "run");
}

int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "manifest", required_argument, NULL, 'm' },
		{ "count", required_argument, NULL, 'n' },
		{ "env", required_argument, NULL, 'E' },
		{ "memory", required_argument, NULL, 'M' },
		{ "cpu", required_argument, NULL, 'C' },
		{ "disk", required_argument, NULL, 'D' },
		{ "service", required_argument, NULL, 'S' },
		{ "restart-limit", required_argument, NULL, 'l' },
		{ "restart-interval", required_argument, NULL, 'i' },
		{ "endpoint", required_argument, NULL, 'e' },
		{ "root", required_argument, NULL, CLI_OPT_ROOT },
		{ "store", required_argument, NULL, CLI_OPT_STORE },
		{}
	};
	struct run_opts o = { "100M", "10%", "100M", NULL, 0, 60, NULL };
	const char *manifest = NULL, *env = NULL, *root = NULL, *store_url = NULL, *app;
	_cleanup_free_ char *text = NULL, *data = NULL, *prefix = NULL;
	_cleanup_store_ struct store *s = NULL;
	struct error err = ERROR_INIT;
	int64_t count = 1;
	json_t *m = NULL;
	uint64_t u;
	int c, r, rc = EXIT_OK;

	o.endpoints = json_array();
	if (!o.endpoints)
		return EXIT_TEMP;
	optind = 0;
	while ((c = getopt_long(argc, argv, "m:", opts, NULL)) >= 0) {
		switch (c) {
		case 'm': manifest = optarg; break;
		case 'E': env = optarg; break;
		case 'M': o.memory = optarg; break;
		case 'C': o.cpu = optarg; break;
		case 'D': o.disk = optarg; break;
		case 'S': o.service = optarg; break;
		case CLI_OPT_ROOT: root = optarg; break;
		case CLI_OPT_STORE: store_url = optarg; break;
		case 'n':
			if (safe_atoi64(optarg, &count) < 0 || count < 1 || count > 1000)
				rc = cli_usage_error("run", "--count: expected 1..1000, got '%s'", optarg);
			break;
		case 'l':
			if (safe_atoi64(optarg, &o.restart_limit) < 0 || o.restart_limit < 0)
				rc = cli_usage_error("run", "--restart-limit: expected an integer, got '%s'", optarg);
			break;
		case 'i':
			if (parse_duration(optarg, &u) < 0 || u > INT32_MAX)
				rc = cli_usage_error("run", "--restart-interval: expected seconds, got '%s'", optarg);
			o.restart_interval = (int64_t)u;
			break;
		case 'e':
			if (optind >= argc || safe_atou64(argv[optind], &u) < 0 || u > 65535) {
				rc = cli_usage_error("run", "--endpoint NAME PORT: bad or missing port");
				break;
			}
			json_array_append_new(o.endpoints, json_pack("{s:s, s:I}", "name", optarg, "port", (json_int_t)u));
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
	if (manifest && optind < argc) {
		rc = cli_usage_error("run", "give either -m MANIFEST or a command, not both");
		goto out;
	}
	if (!manifest && optind >= argc) {
		rc = cli_usage_error("run", "give -m MANIFEST or a command after '--'");
		goto out;
	}

	/* Validate everything before touching the store. */
	if (manifest)
		r = manifest_load_file(manifest, &m, &err);
	else {
		r = build_manifest(&o, argv + optind, &text, &err);
		if (r >= 0)
			r = manifest_load(text, strlen(text), MANIFEST_JSON, "command line", &m, &err);
	}
	if (r >= 0)
		r = manifest_check_appname(app, true, &err);
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
	json_decref(o.endpoints);
	return rc;
}

int cmd_stop(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "root", required_argument, NULL, CLI_OPT_ROOT },
		{ "store", required_argument, NULL, CLI_OPT_STORE },
		{}
	};
	const char *root = NULL, *store_url = NULL;
	_cleanup_store_ struct store *s = NULL;
	struct error err = ERROR_INIT;
	int c, r, rc = EXIT_OK;

	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
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
