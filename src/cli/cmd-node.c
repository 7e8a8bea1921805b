/* `treadle node`: the node agent (src/node/agent.h). */
#include <getopt.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "../basic/fileio.h"
#include "../basic/util.h"
#include "../node/agent.h"
#include "../node/sproc.h"
#include "cli.h"

const struct cli_option node_options[] = {
	{ "store", 's', "URL", "the cell's store" },
	{ "root", 'r', "DIR", "the node's root directory" },
	{ "hostname", 'H', "H", "this server's name (default the machine's)" },
	{ "cell", 'c', "NAME", "the cell's name" },
	{ "cgroup-root", 'g', "NAME", "the containers' cgroup parent (default treadle)" },
	{ "setup-timeout", 't', "SECS", "longest a container may take to be set up" },
	{ "pids-max", 'p', "N", "pids limit of each container" },
	{ "disk-read-bps", 'R', "SIZE", "disk read limit of each container (bytes/s)" },
	{ "disk-write-bps", 'W', "SIZE", "disk write limit of each container (bytes/s)" },
	{ "network", 'N', "CIDR", "containers' address range, or none (default: a free 192.168.K.0/24)" },
	{ "gateway", 'G', "IP", "the bridge's address in the range (default: its last host address)" },
	{ "ext-device", 'E', "IF", "the host's external interface (default: the default route's)" },
	{ "hooks", 'k', "LIST", "hooks run at container configure and cleanup: krb5keytab,tickets (docs/HOOKS.md)" },
	{ "host-keytab", 'K', "FILE", "the host's keytab, for host/H (default /etc/krb5.keytab)" },
	{ "tickets-wait", 'w', "SECS", "how long an app waits for its tickets before it is aborted (default 60)" },
	CLI_OPTIONS_END,
};

int cmd_node(int argc, char **argv)
{
	struct node_agent_options o = { 0 };
	struct error err = ERROR_INIT;
	_cleanup_free_ char *root = NULL, *bin = NULL, *krbconf = NULL, *kt = NULL;
	char host[256];
	uint64_t secs;
	int c, r;

	optind = 1;
	while ((c = cli_getopt(argc, argv, node_options, false)) != -1) {
		switch (c) {
		case 's': o.store_url = optarg; break;
		case 'r': o.root = optarg; break;
		case 'H': o.hostname = optarg; break;
		case 'c': o.cell = optarg; break;
		case 'g': o.cgroup_root = optarg; break;
		case 't':
			if (parse_duration(optarg, &secs) < 0 || secs == 0 || secs > 86400)
				return cli_usage_error("node", "invalid --setup-timeout '%s'", optarg);
			o.setup_timeout_s = (unsigned)secs;
			break;
		case 'p':
			if (safe_atou64(optarg, &o.pids_max) < 0 || o.pids_max == 0)
				return cli_usage_error("node", "invalid --pids-max '%s'", optarg);
			break;
		case 'R':
		case 'W':
			if (parse_size(optarg, c == 'R' ? &o.disk_read_bps : &o.disk_write_bps) < 0)
				return cli_usage_error("node", "invalid --%s '%s'", c == 'R' ? "disk-read-bps" : "disk-write-bps",
						       optarg);
			break;
		case 'N': o.net_range = optarg; break;
		case 'G': o.net_gateway = optarg; break;
		case 'E': o.net_ext_dev = optarg; break;
		case 'k': o.hooks = optarg; break;
		case 'K': o.krb5_keytab = optarg; break;
		case 'w':
			if (parse_duration(optarg, &secs) < 0 || secs == 0 || secs > 86400)
				return cli_usage_error("node", "--tickets-wait: expected 1 s .. 1 day, got '%s'", optarg);
			o.tickets_wait_s = (unsigned)secs;
			break;
		default:
			return cli_usage_error("node", "invalid option");
		}
	}
	if (optind != argc)
		return cli_usage_error("node", "unexpected argument '%s'", argv[optind]);
	if (!o.store_url && getenv("TREADLE_STORE") && *getenv("TREADLE_STORE"))
		o.store_url = getenv("TREADLE_STORE");
	if (!o.store_url)
		return cli_usage_error("node", "--store URL (or $TREADLE_STORE) is required");
	o.root = cli_root(o.root);
	if (!o.hostname) {
		if (gethostname(host, sizeof(host)) < 0)
			return cli_usage_error("node", "--hostname is required (gethostname failed)");
		host[sizeof(host) - 1] = 0;
		o.hostname = host;
	}
	if (!*o.hostname || strchr(o.hostname, '/'))
		return cli_usage_error("node", "invalid --hostname '%s'", o.hostname);
	r = mkdir_p(o.root, 0755);
	root = r < 0 ? NULL : realpath(o.root, NULL);
	if (!root) {
		fprintf(stderr, "treadle: node: %s: %s\n", o.root, strerror(r < 0 ? -r : errno));
		return EXIT_TEMP;
	}
	o.root = root;
	if (o.hooks) {
		_cleanup_free_ char *l = strdup(o.hooks);
		const char *e = getenv("KRB5_CONFIG");

		for (char *s = l, *t; s && (t = strsep(&s, ","));)
			if (!sproc_hook_known(t))
				return cli_usage_error("node", "--hooks: unknown hook '%s' (known: %s)", t, SPROC_HOOKS_KNOWN);
		if (e && *e) {
			_cleanup_free_ char *first = strndup(e, strcspn(e, ":"));
			krbconf = first ? realpath(first, NULL) : NULL;
		}
		o.krb5_config = krbconf ? krbconf : "/etc/krb5.conf";
		if (o.krb5_keytab) {
			kt = realpath(o.krb5_keytab, NULL);
			if (!kt)
				return cli_usage_error("node", "--host-keytab %s: %s", o.krb5_keytab, strerror(errno));
			o.krb5_keytab = kt;
		}
	}
	bin = realpath("/proc/self/exe", NULL);
	o.treadle_bin = bin ? bin : "treadle";
	r = node_agent_run(&o, &err);
	if (r < 0) {
		r = error_report(&err);
		error_clear(&err);
		return r;
	}
	return EXIT_OK;
}
