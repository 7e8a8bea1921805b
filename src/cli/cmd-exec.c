/* cmd-exec.c: `treadle exec` and the internal `treadle container ...`
 * helpers of the container runtime (exec-as, run, cleanup). */
#include <getopt.h>
#include <jansson.h>
#include <string.h>

#include "../basic/fileio.h"
#include "../basic/json.h"
#include "../basic/util.h"
#include "../container/container.h"
#include "cli.h"

const struct cli_option exec_options[] = {
	{ "root", 'r', "R", "the node's root (default <cell root>/node)", true },
	{ "service", 's', "S", "the service whose environment and user to use", true },
	{ "user", 'u', "U", "run as this user (default the proid)", true },
	{ "as-root", 'R', NULL, "run as root" },
	CLI_OPTIONS_END,
};

/* treadle exec INSTANCE|CONTAINER_DIR [--root R] [--service S] [--user U] [-- CMD...] */
int cmd_exec(int argc, char **argv)
{
	const char *root = NULL, *service = NULL, *user = NULL;
	_cleanup_free_ char *dir = NULL;
	struct error err = ERROR_INIT;
	bool as_root = false;
	int c, r;

	optind = 1;
	while ((c = cli_getopt(argc, argv, exec_options, false)) != -1) {
		switch (c) {
		case 'r': root = optarg; break;
		case 's': service = optarg; break;
		case 'u': user = optarg; break;
		case 'R': as_root = true; break;
		default: return cli_usage_error("exec", "bad option");
		}
	}
	if (optind >= argc)
		return cli_usage_error("exec", "INSTANCE missing");
	if (strchr(argv[optind], '/'))
		dir = strdup(argv[optind]);
	else /* the node keeps running/<instance> -> apps/<unique> */
		dir = strdup_printf("%s/node/running/%s", cli_root(root), argv[optind]);
	if (!dir)
		return EXIT_TEMP;
	optind++;
	if (optind < argc && strcmp(argv[optind], "--") == 0)
		optind++;
	if (service && !user) {
		/* the service's user from the runtime manifest */
		_cleanup_free_ char *app = strdup_printf("%s/data/app.json", dir), *text = NULL;
		_cleanup_json_ json_t *m = NULL;
		json_t *svcs, *s;
		size_t i;
		if (app && read_file(app, &text, NULL) >= 0)
			m = json_loads(text, 0, NULL);
		svcs = m ? json_object_get(m, "services") : NULL;
		json_array_foreach(svcs, i, s) {
			const char *name = json_string_value(json_object_get(s, "name"));
			if (name && strcmp(name, service) == 0) {
				if (json_is_true(json_object_get(s, "root")))
					as_root = true;
				break;
			}
		}
		if (!svcs || i == json_array_size(svcs)) {
			fprintf(stderr, "treadle: exec: no service '%s' in %s\n", service, app ? app : dir);
			return EXIT_PERM;
		}
	}
	r = container_exec(dir, user, as_root, argc > optind ? argv + optind : NULL, &err);
	if (r < 0)
		return error_report(&err);
	return r;
}

const struct cli_option container_options[] = {
	CLI_SECTION("run"),
	{ "dir", 'd', "DIR", "the container directory" },
	{ "unique", 'U', "NAME", "the container's unique name" },
	{ "instance", 'i', "INSTANCE", "the instance" },
	{ "uniqueid", 'I', "ID", "the unique id" },
	{ "hostname", 'H', "H", "the container's hostname" },
	{ "proid", 'p', "USER", "the proid" },
	{ "root", 'R', NULL, "run the services as root" },
	{ "memory", 'm', "SIZE", "memory limit" },
	{ "cpu", 'c', "PCT", "cpu limit" },
	{ "pids", 'P', "N", "pids limit" },
	{ "disk", 'D', "SIZE", "disk size" },
	{ "image", 'g', "IMAGE", "the root image" },
	{ "shared-network", 'n', NULL, "share the host's network" },
	{ "env", 'e', "K=V", "an environment variable (repeatable)" },
	{ "node-root", 'N', "DIR", "the node's root" },
	{ "cgroup-root", 'C', "NAME", "the cgroup parent" },
	{ "bind", 'b', "SRC:DST[:ro]", "a bind mount (repeatable)" },
	{ "timeout", 't', "SECS", "setup timeout" },
	{ "services", 'S', "DIR", "the services directory" },
	{ "write-bps", 'W', "SIZE", "disk write limit (bytes/s)" },
	{ "read-bps", 'B', "SIZE", "disk read limit (bytes/s)" },
	CLI_SECTION("exec-as"),
	{ "user", 'u', "U", "the user to run as", true },
	{ "root", 'R', NULL, "run as root" },
	{ "envdir", 'e', "DIR", "environment directory (one file per variable)" },
	CLI_OPTIONS_END,
};

/* treadle container run --dir D --unique U [options]: container_run() from
 * the command line (tests, benchmarks; the node calls it from sproc run). */
static int container_cmd_run(int argc, char **argv)
{
	struct container_config cfg = { 0 };
	_cleanup_strv_free_ char **env = strv_new();
	struct container_bind binds[16];
	_cleanup_strv_free_ char **bindstr = strv_new();
	struct error err = ERROR_INIT;
	uint64_t v;
	int c, r;

	optind = 1;
	while ((c = cli_getopt(argc, argv, cli_section(container_options, "run"), false)) != -1) {
		switch (c) {
		case 'd': cfg.container_dir = optarg; break;
		case 'U': cfg.unique_name = optarg; break;
		case 'i': cfg.instance = optarg; break;
		case 'I': cfg.uniqueid = optarg; break;
		case 'H': cfg.hostname = optarg; break;
		case 'p': cfg.proid = optarg; break;
		case 'R': cfg.root = true; break;
		case 'g': cfg.image = optarg; break;
		case 'n': cfg.shared_network = true; break;
		case 'N': cfg.node_root = optarg; break;
		case 'C': cfg.cgroup_root = optarg; break;
		case 'S': cfg.services_dir = optarg; break;
		case 'e':
			if (!strchr(optarg, '=') || strv_extend(&env, optarg) < 0)
				return cli_usage_error("container run", "--env NAME=VALUE");
			break;
		case 'b': {
			char *s = strdup(optarg), *dst, *mode;
			if (!s || cfg.n_binds >= ELEMENTSOF(binds) || strv_push(&bindstr, s) < 0 || !(dst = strchr(s, ':')))
				return cli_usage_error("container run", "--bind SRC:DST[:ro]");
			*dst++ = 0;
			mode = strchr(dst, ':');
			if (mode)
				*mode++ = 0;
			binds[cfg.n_binds++] = (struct container_bind){ s, dst, mode && !strcmp(mode, "ro") };
			break;
		}
		case 'm': case 'D': case 'W': case 'B':
			if (parse_size(optarg, &v) < 0)
				return cli_usage_error("container run", "bad size '%s'", optarg);
			if (c == 'm') cfg.memory_bytes = v;
			else if (c == 'D') cfg.disk_bytes = v;
			else if (c == 'W') cfg.disk_write_bps = v;
			else cfg.disk_read_bps = v;
			break;
		case 'c': case 'P': case 't':
			if (safe_atou64(optarg, &v) < 0)
				return cli_usage_error("container run", "bad number '%s'", optarg);
			if (c == 'c') cfg.cpu_percent = (unsigned)v;
			else if (c == 'P') cfg.pids_max = v;
			else cfg.setup_timeout_ms = v;
			break;
		default:
			return cli_usage_error("container run", "bad option");
		}
	}
	if (!cfg.container_dir || !cfg.unique_name)
		return cli_usage_error("container run", "--dir and --unique are required");
	if (!cfg.node_root)
		cfg.node_root = cfg.container_dir;
	cfg.env = env;
	cfg.binds = binds;
	r = container_run(&cfg, &err);
	return r < 0 ? error_report(&err) : EXIT_TEMP;
}

static int container_cmd_exec_as(int argc, char **argv)
{
	const char *user = NULL, *envdir = NULL;
	struct error err = ERROR_INIT;
	bool as_root = false;
	int c;

	optind = 1;
	while ((c = cli_getopt(argc, argv, cli_section(container_options, "exec-as"), true)) != -1) {
		switch (c) {
		case 'u': user = optarg; break;
		case 'R': as_root = true; break;
		case 'e': envdir = optarg; break;
		default: return cli_usage_error("container exec-as", "bad option");
		}
	}
	if (optind < argc && strcmp(argv[optind], "--") == 0)
		optind++;
	if (!user && !as_root)
		return cli_usage_error("container exec-as", "--user USER or --root needed");
	if (envdir && container_load_envdir(envdir, &err) < 0)
		return error_report(&err);
	container_exec_as(user, as_root, argv + optind, &err);
	return error_report(&err);
}

static int container_cmd_cleanup(int argc, char **argv)
{
	struct error err = ERROR_INIT;

	if (argc < 3)
		return cli_usage_error("container cleanup", "NODE_ROOT UNIQUE_NAME [CGROUP_ROOT]");
	if (container_cleanup(argv[1], argc > 3 ? argv[3] : NULL, argv[2], &err) < 0)
		return error_report(&err);
	return EXIT_OK;
}

/* treadle container exec-as|run|cleanup ... (internal) */
int cmd_container(int argc, char **argv)
{
	if (argc < 2)
		return cli_usage_error("container", "exec-as|run|cleanup expected");
	if (!strcmp(argv[1], "exec-as"))
		return container_cmd_exec_as(argc - 1, argv + 1);
	if (!strcmp(argv[1], "run"))
		return container_cmd_run(argc - 1, argv + 1);
	if (!strcmp(argv[1], "cleanup"))
		return container_cmd_cleanup(argc - 1, argv + 1);
	return cli_usage_error("container", "unknown subcommand '%s'", argv[1]);
}
