/* cmd-cell.c: treadle cell up|down|status */
#include <getopt.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../basic/util.h"
#include "../basic/json.h"
#include "../cell/cell.h"
#include "../node/sproc.h"
#include "cli.h"

const struct cli_option cell_options[] = {
	CLI_OPTION_ROOT,
	CLI_OPTION_STORE,
	{ "roles", 'R', "LIST", "up: what this server runs, master,node (default both; env TREADLE_ROLES)" },
	{ "daemon", 'd', NULL, "up: return once the cell is ready, leave it running in the background" },
	{ "hostname", 'H', "H", "up: the server name (default the machine's)" },
	{ "cgroup-root", 'g', "NAME", "up: the node's cgroup parent (default treadle)" },
	{ "timeout", 't', "SECS", "up --daemon: wait for readiness (default 30); down: wait for the containers" },
	{ "network", 'N', "CIDR", "up: the containers' address range, or none (default: a free 192.168.K.0/24)" },
	{ "api-listen", 'A', "HOST:PORT", "up: the REST API and web UI also on TCP (default: only R/api.sock)" },
	{ "hooks", 'k', "LIST", "up: the node's hooks at container configure/cleanup: krb5keytab,tickets (HOOKS.md)" },
	{ "host-keytab", 'K', "FILE", "up: the host's keytab for the Kerberos hooks (default /etc/krb5.keytab)" },
	{ "tickets-wait", 'w', "SECS", "up: how long an app waits for its tickets before it is aborted (default 60)" },
	{ "api-tokens", 0x300, "FILE", "up: the API's bearer tokens for TCP (treadle api --tokens)" },
	{ "api-tls-cert", 0x301, "FILE", "up: TCP is HTTPS with this PEM certificate (with --api-tls-key)" },
	{ "api-tls-key", 0x302, "FILE", "up: the certificate's PEM private key (mode 600)" },
	{ "json", 'j', NULL, "status: print JSON" },
	CLI_OPTIONS_END,
};

int cmd_cell(int argc, char **argv)
{
	struct cell_options o = { 0 };
	struct error err = ERROR_INIT;
	const char *root = NULL, *verb, *roles = NULL, *e;
	_cleanup_free_ char *kt = NULL;
	bool json = false;
	int c, timeout_ms = 0;
	_cleanup_free_ char *tokens_file = NULL, *cert_file = NULL, *key_file = NULL;
	char **api_files[3] = { &tokens_file, &cert_file, &key_file };

	if (argc < 2 || argv[1][0] == '-')
		return cli_usage_error("cell", "expected up, down or status");
	verb = argv[1];
	optind = 0;
	while ((c = cli_getopt(argc - 1, argv + 1, cell_options, false)) >= 0) {
		switch (c) {
		case CLI_OPT_ROOT: root = optarg; break;
		case CLI_OPT_STORE: o.store_url = optarg; break;
		case 'R': roles = optarg; break;
		case 'd': o.daemon = true; break;
		case 'H': o.hostname = optarg; break;
		case 'g': o.cgroup_root = optarg; break;
		case 'j': json = true; break;
		case 'N': o.net_range = optarg; break;
		case 'A': o.api_listen = optarg; break;
		case 'k': o.hooks = optarg; break;
		case 'K': o.krb5_keytab = optarg; break;
		case 'w': {
			uint64_t secs;

			if (parse_duration(optarg, &secs) < 0 || secs == 0 || secs > 86400)
				return cli_usage_error("cell", "--tickets-wait: expected 1 s .. 1 day, got '%s'", optarg);
			o.tickets_wait = optarg;
			break;
		}
		case 0x300:
		case 0x301:
		case 0x302: /* the api service runs elsewhere: an absolute path */
			free(*api_files[c - 0x300]);
			*api_files[c - 0x300] = realpath(optarg, NULL);
			if (!*api_files[c - 0x300])
				return cli_usage_error("cell", "%s: %s", optarg, strerror(errno));
			break;
		case 't':
			if (safe_atoi(optarg, &timeout_ms) < 0 || timeout_ms <= 0)
				return cli_usage_error("cell", "--timeout: expected seconds, got '%s'", optarg);
			timeout_ms *= 1000;
			break;
		default: return cli_usage_error("cell", "bad option");
		}
	}
	if (optind < argc - 1)
		return cli_usage_error("cell", "unexpected argument '%s'", argv[1 + optind]);
	o.root = cli_root(root);
	o.ready_timeout_ms = timeout_ms;
	o.api_tokens = tokens_file;
	o.api_tls_cert = cert_file;
	o.api_tls_key = key_file;
	if (!cert_file != !key_file)
		return cli_usage_error("cell", "--api-tls-cert and --api-tls-key go together");

	if (strcmp(verb, "up") == 0) {
		/* settings from the environment (a systemd unit's EnvironmentFile);
		 * options win */
		if (!o.store_url && (e = getenv("TREADLE_STORE")) && *e)
			o.store_url = e;
		if (!roles && (e = getenv("TREADLE_ROLES")) && *e)
			roles = e;
		if (!o.hostname && (e = getenv("TREADLE_HOSTNAME")) && *e)
			o.hostname = e;
		if (!o.cgroup_root && (e = getenv("TREADLE_CGROUP_ROOT")) && *e)
			o.cgroup_root = e;
		if (o.hooks) {
			_cleanup_free_ char *l = strdup(o.hooks);

			for (char *s = l, *t; s && (t = strsep(&s, ","));)
				if (!sproc_hook_known(t))
					return cli_usage_error("cell", "--hooks: unknown hook '%s' (known: %s)", t,
							       SPROC_HOOKS_KNOWN);
		}
		if (o.krb5_keytab) {
			kt = realpath(o.krb5_keytab, NULL);
			if (!kt)
				return cli_usage_error("cell", "--host-keytab %s: %s", o.krb5_keytab, strerror(errno));
			o.krb5_keytab = kt;
		}
		if (roles && cell_roles_parse(roles, &o.roles) < 0)
			return cli_usage_error("cell", "--roles: expected master, node or master,node, got '%s'", roles);
		if (cell_up(&o, &err) < 0)
			return error_report(&err);
		printf("cell running at %s (stop it with: treadle cell down --root %s)\n", o.root, o.root);
		return EXIT_OK;
	}
	if (strcmp(verb, "down") == 0) {
		struct cell_down_report rep;

		if (cell_down(o.root, timeout_ms, &rep, &err) < 0)
			return error_report(&err);
		if (rep.stray_containers || rep.stray_processes || rep.stray_mounts || rep.stray_cgroups ||
		    rep.stray_loops)
			fprintf(stderr,
				"treadle: cell down: warning: swept %d container(s) the node had not cleaned up, %d "
				"process(es), %d mount(s), %d loop device(s), %d busy cgroup(s)\n",
				rep.stray_containers, rep.stray_processes, rep.stray_mounts, rep.stray_loops,
				rep.stray_cgroups);
		if (!rep.was_running)
			fprintf(stderr, "treadle: cell down: no cell was running at %s\n", o.root);
		return EXIT_OK;
	}
	if (strcmp(verb, "status") == 0) {
		_cleanup_free_ char *text = NULL;
		_cleanup_json_ json_t *j = NULL;
		json_t *v;
		const char *k;

		if (access(o.root, F_OK) < 0) {
			if (json) {
				_cleanup_json_ json_t *nj = json_pack("{s:s, s:b}", "root", o.root, "running", 0);
				_cleanup_free_ char *t = nj ? json_dumps(nj, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;

				printf("%s\n", t ? t : "{}");
			} else
				printf("cell      %s: not running (no such directory)\n", o.root);
			return EXIT_NO;
		}
		if (cell_status(o.root, &text, &err) < 0)
			return error_report(&err);
		j = json_loads(text, 0, NULL);
		if (json)
			printf("%s\n", text);
		else if (j) {
			printf("cell      %s: %s\n", json_string_value(json_object_get(j, "root")),
			       json_is_true(json_object_get(j, "running")) ? "running" : "not running");
			if (json_object_get(j, "hostname"))
				printf("hostname  %s\n", json_string_value(json_object_get(j, "hostname")));
			if (json_object_get(j, "store"))
				printf("store     %s\n", json_string_value(json_object_get(j, "store")));
			if (json_object_get(j, "roles"))
				printf("roles     %s\n", json_string_value(json_object_get(j, "roles")));
			json_object_foreach(json_object_get(j, "services"), k, v)
				printf("service   %-8s %s pid %lld for %llds\n", k,
				       json_is_true(json_object_get(v, "up")) ? "up  " : "down",
				       (long long)json_integer_value(json_object_get(v, "pid")),
				       (long long)json_integer_value(json_object_get(v, "seconds")));
			if (json_object_get(j, "leader"))
				printf("leader    %s\n", json_string_value(json_object_get(j, "leader")));
			v = json_object_get(j, "instances");
			if (v)
				printf("instances %lld scheduled, %lld placed, %lld running\n",
				       (long long)json_integer_value(json_object_get(v, "scheduled")),
				       (long long)json_integer_value(json_object_get(v, "placed")),
				       (long long)json_integer_value(json_object_get(v, "running")));
		}
		return json_is_true(json_object_get(j, "running")) ? EXIT_OK : EXIT_NO;
	}
	return cli_usage_error("cell", "unknown verb '%s' (expected up, down or status)", verb);
}
