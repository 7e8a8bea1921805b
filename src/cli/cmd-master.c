/* cmd-master.c: treadle master --store URL [--cell NAME] [--hostname H] [--server-down-grace SECS] */
#include <getopt.h>

#include "../basic/util.h"
#include "../master/master.h"
#include "cli.h"

int cmd_master(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "store", required_argument, NULL, 's' },
		{ "cell", required_argument, NULL, 'c' },
		{ "hostname", required_argument, NULL, 'H' },
		{ "root", required_argument, NULL, 'r' },
		{ "server-down-grace", required_argument, NULL, 'g' },
		{}
	};
	struct master_options mo = { .server_down_grace = -1 };
	struct error err = ERROR_INIT;
	const char *root = NULL;
	_cleanup_free_ char *url = NULL;
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
		switch (c) {
		case 's': mo.store_url = optarg; break;
		case 'c': mo.cell = optarg; break;
		case 'H': mo.hostname = optarg; break;
		case 'r': root = optarg; break;
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
