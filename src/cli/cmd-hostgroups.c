/* `treadle hostgroups`: LDAP host groups (src/hostgroups/hostgroups.h), the
 * cell's `hostgroups` service on its master servers. */
#include <getopt.h>
#include <string.h>
#include <unistd.h>

#include "../basic/util.h"
#include "../hostgroups/hostgroups.h"
#include "cli.h"

const struct cli_option hostgroups_options[] = {
	{ "store", 's', "URL", "the cell's store" },
	{ "hostname", 'H', "H", "this server's name, the election id (default the machine's)" },
	{ "ldap-url", 'u', "URL", "the directory: ldap://HOST:PORT, ldaps://, ldapi://" },
	{ "ldap-group-dn", 'G', "PATTERN", "a proid's group, {proid} in the first RDN: cn={proid},ou=groups,..." },
	{ "ldap-server-dn", 'S', "PATTERN", "a server's object, {host} in the first RDN: cn={host},ou=servers,..." },
	{ "ldap-bind-dn", 'D', "DN", "simple bind as DN (default anonymous)" },
	{ "ldap-password-file", 'y', "FILE", "the bind password, one line" },
	CLI_OPTIONS_END,
};

int cmd_hostgroups(int argc, char **argv)
{
	struct hostgroups_options o = { 0 };
	struct error err = ERROR_INIT;
	char host[256];
	int c, r;

	optind = 1;
	while ((c = cli_getopt(argc, argv, hostgroups_options, false)) != -1) {
		switch (c) {
		case 's': o.store_url = optarg; break;
		case 'H': o.hostname = optarg; break;
		case 'u': o.ldap_url = optarg; break;
		case 'G': o.group_dn = optarg; break;
		case 'S': o.server_dn = optarg; break;
		case 'D': o.bind_dn = optarg; break;
		case 'y': o.password_file = optarg; break;
		default: return cli_usage_error("hostgroups", "invalid option");
		}
	}
	if (optind != argc)
		return cli_usage_error("hostgroups", "unexpected argument '%s'", argv[optind]);
	if (!o.store_url && getenv("TREADLE_STORE") && *getenv("TREADLE_STORE"))
		o.store_url = getenv("TREADLE_STORE");
	if (!o.store_url)
		return cli_usage_error("hostgroups", "--store URL (or $TREADLE_STORE) is required");
	if (!o.hostname) {
		if (gethostname(host, sizeof(host)) < 0)
			return cli_usage_error("hostgroups", "--hostname is required (gethostname failed)");
		host[sizeof(host) - 1] = 0;
		o.hostname = host;
	}
	if (hostgroups_check(&o, &err) < 0) {
		r = cli_usage_error("hostgroups", "%s", err.msg ? err.msg : "bad options");
		error_clear(&err);
		return r;
	}
	r = hostgroups_run(&o, &err);
	if (r < 0) {
		r = error_report(&err);
		error_clear(&err);
		return r;
	}
	return EXIT_OK;
}
