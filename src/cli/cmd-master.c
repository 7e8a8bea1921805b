/* cmd-master.c: treadle master --store URL [--cell NAME] [--hostname H] [--server-down-grace SECS] [--metrics FILE] */
#include <getopt.h>

#include "../basic/util.h"
#include "../master/master.h"
#include "cli.h"

const struct cli_option master_options[] = {
	{ "store", 's', "URL", "the cell's store (default $TREADLE_STORE, else file://<root>/store)" },
	{ "cell", 'c', "NAME", "the cell's name" },
	{ "hostname", 'H', "H", "this master's name (default the machine's)" },
	{ "root", 'r', "DIR", "the cell's root (default $TREADLE_ROOT, else /var/lib/treadle)" },
	{ "server-down-grace", 'g', "SECS", "how long a server may be absent before its apps are moved" },
	{ "metrics", 'm', "FILE", "rewrite FILE with Prometheus metrics after each pass (cell up: <root>/master-metrics.prom)" },
	CLI_OPTIONS_END,
};

int cmd_master(int argc, char **argv)
{
	struct master_options mo = { .server_down_grace = -1 };
	struct error err = ERROR_INIT;
	const char *root = NULL;
	_cleanup_free_ char *url = NULL;
	int c;

	optind = 0;
	while ((c = cli_getopt(argc, argv, master_options, false)) >= 0) {
		switch (c) {
		case 's': mo.store_url = optarg; break;
		case 'c': mo.cell = optarg; break;
		case 'H': mo.hostname = optarg; break;
		case 'r': root = optarg; break;
		case 'm': mo.metrics_file = optarg; break;
		case 'g':
			if (safe_atod(optarg, &mo.server_down_grace) < 0 || mo.server_down_grace < 0)
				return cli_usage_error("master", "--server-down-grace: expected seconds, got '%s'", optarg);
			break;
		default: return cli_usage_error("master", "bad option");
		}
	}
	if (optind < argc)
		return cli_usage_error("master", "unexpected argument '%s'", argv[optind]);
	if (!mo.store_url) {
		url = cli_store_url(root, NULL);
		mo.store_url = url;
	}
	if (master_run(&mo, &err) < 0)
		return error_report(&err);
	return EXIT_OK;
}
