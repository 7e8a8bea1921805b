/* `treadle watchdog`: the node's watchdog (src/node/watchdog.h), the cell's
 * `watchdog` service beside `node`. */
#include <getopt.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "../basic/fileio.h"
#include "../basic/util.h"
#include "../node/watchdog.h"
#include "cli.h"

const struct cli_option watchdog_options[] = {
	{ "store", 's', "URL", "the cell's store" },
	{ "root", 'r', "DIR", "the node's root directory" },
	{ "hostname", 'H', "H", "this server's name (default the machine's)" },
	{ "cgroup-root", 'g', "NAME", "the containers' cgroup parent (default treadle), for postmortems" },
	{ "log-dir", 'l', "DIR", "the cell's service logs (R/log), for postmortems" },
	CLI_OPTIONS_END,
};

int cmd_watchdog(int argc, char **argv)
{
	struct node_watchdog_options o = { 0 };
	struct error err = ERROR_INIT;
	_cleanup_free_ char *root = NULL;
	char host[256];
	int c, r;

	optind = 1;
	while ((c = cli_getopt(argc, argv, watchdog_options, false)) != -1) {
		switch (c) {
		case 's': o.store_url = optarg; break;
		case 'r': o.root = optarg; break;
		case 'H': o.hostname = optarg; break;
		case 'g': o.cgroup_root = optarg; break;
		case 'l': o.log_dir = optarg; break;
		default: return cli_usage_error("watchdog", "invalid option");
		}
	}
	if (optind != argc)
		return cli_usage_error("watchdog", "unexpected argument '%s'", argv[optind]);
	if (!o.store_url && getenv("TREADLE_STORE") && *getenv("TREADLE_STORE"))
		o.store_url = getenv("TREADLE_STORE");
	if (!o.store_url)
		return cli_usage_error("watchdog", "--store URL (or $TREADLE_STORE) is required");
	o.root = cli_root(o.root);
	if (!o.hostname) {
		if (gethostname(host, sizeof(host)) < 0)
			return cli_usage_error("watchdog", "--hostname is required (gethostname failed)");
		host[sizeof(host) - 1] = 0;
		o.hostname = host;
	}
	if (!*o.hostname || strchr(o.hostname, '/'))
		return cli_usage_error("watchdog", "invalid --hostname '%s'", o.hostname);
	r = mkdir_p(o.root, 0755);
	root = r < 0 ? NULL : realpath(o.root, NULL);
	if (!root) {
		fprintf(stderr, "treadle: watchdog: %s: %s\n", o.root, strerror(r < 0 ? -r : errno));
		return EXIT_TEMP;
	}
	o.root = root;
	r = node_watchdog_run(&o, &err);
	if (r < 0) {
		r = error_report(&err);
		error_clear(&err);
		return r;
	}
	return EXIT_OK;
}
