/* cmd-krb.c: `treadle krb forward|keytab|tickets` and `treadle locker`
 * (docs/KERBEROS.md).  keytab and tickets are what the Kerberos hooks' system
 * services run inside a container (src/node/sproc-hooks.c). */
#include <getopt.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "../basic/util.h"
#include "../krb/krb.h"
#include "cli.h"

const struct cli_option krb_options[] = {
	CLI_OPTION_STORE,
	{ "root", 'R', "DIR", "the cell's root, for its store (default $TREADLE_ROOT, else /var/lib/treadle)" },
	{ "ccache", 'c', "CCACHE", "the credentials to use (default: $KRB5CCNAME; keytab/tickets: the host's)" },
	{ "instance", 'i', "INSTANCE", "keytab, tickets: the instance they are for" },
	{ "lockers", 'l', "HOST:PORT,...", "keytab, tickets: the lockers to ask (default: the store's)" },
	{ "out", 'o', "PATH", "keytab: the keytab file to write; tickets: the directory" },
	{ "owner", 'u', "USER", "keytab, tickets: owner of the files written (default root)" },
	{ "refresh", 'r', "SECS", "tickets: fetch again every SECS, and half-way to the earliest expiry, instead of once" },
	{ "sleep", 's', NULL, "keytab: then sleep until stopped (a system service)" },
	CLI_OPTIONS_END,
};

const struct cli_option locker_options[] = {
	CLI_OPTION_STORE,
	{ "root", 'R', "DIR", "the cell's root (default $TREADLE_ROOT, else /var/lib/treadle)" },
	{ "listen", 'L', "HOST:PORT", "address to serve on (port 0: any)" },
	{ "hostname", 'H', "NAME", "name registered and of the principal host/NAME (default: the --listen host)" },
	{ "keytab", 'k', "FILE", "keytab holding host/NAME" },
	{ "dir", 'd', "DIR", "where forwarded tickets are kept (mode 0700)" },
	{ "kadmin-principal", 'P', "PRINC", "also serve keytabs, through kadm5 as PRINC" },
	{ "kadmin-keytab", 'K', "FILE", "PRINC's keytab" },
	CLI_OPTIONS_END,
};

static void sleep_forever(void)
{
	for (;;)
		pause();
}

int cmd_krb(int argc, char **argv)
{
	const char *root = NULL, *store = NULL, *ccache = NULL, *instance = NULL, *lockers = NULL, *out = NULL,
		   *owner = NULL, *verb;
	_cleanup_strv_free_ char **l = NULL;
	_cleanup_free_ char *url = NULL;
	struct error err = ERROR_INIT;
	uint64_t refresh = 0;
	bool sleep_after = false;
	uid_t uid = 0;
	gid_t gid = 0;
	int c;

	optind = 1;
	while ((c = cli_getopt(argc, argv, krb_options, false)) >= 0) {
		switch (c) {
		case CLI_OPT_STORE: store = optarg; break;
		case 'R': root = optarg; break;
		case 'c': ccache = optarg; break;
		case 'i': instance = optarg; break;
		case 'l': lockers = optarg; break;
		case 'o': out = optarg; break;
		case 'u': owner = optarg; break;
		case 'r':
			if (parse_duration(optarg, &refresh) < 0 || refresh == 0)
				return cli_usage_error("krb", "--refresh: expected a duration, got '%s'", optarg);
			break;
		case 's': sleep_after = true; break;
		default: return cli_usage_error("krb", "bad option");
		}
	}
	if (optind + 1 != argc)
		return cli_usage_error("krb", "expected one of forward, keytab, tickets");
	verb = argv[optind];
	if (!strcmp(verb, "forward")) {
		unsigned n = 0;

		url = cli_store_url(root, store);
		if (!url)
			return EXIT_TEMP;
		if (krb_forward(url, ccache, &n, &err) < 0)
			return error_report(&err);
		printf("forwarded to %u locker%s\n", n, n == 1 ? "" : "s");
		return EXIT_OK;
	}
	if (strcmp(verb, "keytab") && strcmp(verb, "tickets"))
		return cli_usage_error("krb", "unknown verb '%s' (forward, keytab, tickets)", verb);
	if (!instance || !out)
		return cli_usage_error("krb", "%s: --instance and --out are required", verb);
	if (owner) {
		struct passwd *pw = getpwnam(owner);
		if (!pw)
			return error_set(&err, ERR_PERM, 0, "no such user '%s'", owner), error_report(&err);
		uid = pw->pw_uid;
		gid = pw->pw_gid;
	}
	if (lockers) {
		l = strv_new();
		for (char *s = strdupa(lockers), *t; l && (t = strsep(&s, ","));)
			if (*t && strv_extend(&l, t) < 0)
				return EXIT_TEMP;
	} else {
		url = cli_store_url(root, store);
		if (!url || krb_lockers(url, !strcmp(verb, "keytab"), &l, &err) < 0)
			return url ? error_report(&err) : EXIT_TEMP;
	}
	if (!l)
		return EXIT_TEMP;
	if (!strcmp(verb, "keytab")) {
		if (krb_keytab_fetch(l, ccache, instance, out, uid, gid, &err) < 0)
			return error_report(&err);
		printf("treadle krb: keytab written to %s\n", out);
		fflush(stdout);
		if (sleep_after)
			sleep_forever();
		return EXIT_OK;
	}
	/* tickets: once, or a refresh loop (a system service) */
	for (;;) {
		unsigned missing = 0;
		uint64_t wait = refresh;
		double end = 0, left;
		int r = krb_tickets_fetch(l, ccache, instance, out, uid, gid, &missing, &end, &err);

		if (r < 0) {
			if (!refresh)
				return error_report(&err);
			fprintf(stderr, "treadle: %s\n", err.msg);
			error_clear(&err);
			wait = refresh < 30 ? refresh : 30;
		} else if (!refresh)
			return missing ? EXIT_NO : EXIT_OK;
		else {
			/* before expiry: at the latest half-way to the earliest end */
			left = end - now_realtime();
			if (end > 0 && left / 2 < (double)wait)
				wait = left / 2 > 30 ? (uint64_t)(left / 2) : 30;
			printf("treadle krb: tickets of %s refreshed (%u missing), next in %llu s\n", instance, missing,
			       (unsigned long long)wait);
		}
		fflush(stdout);
		sleep((unsigned)wait);
	}
}

int cmd_locker(int argc, char **argv)
{
	struct krb_locker_options o = { 0 };
	const char *root = NULL, *store = NULL;
	_cleanup_free_ char *url = NULL, *host = NULL;
	struct error err = ERROR_INIT;
	int c;

	optind = 1;
	while ((c = cli_getopt(argc, argv, locker_options, false)) >= 0) {
		switch (c) {
		case CLI_OPT_STORE: store = optarg; break;
		case 'R': root = optarg; break;
		case 'L': o.listen = optarg; break;
		case 'H': o.hostname = optarg; break;
		case 'k': o.keytab = optarg; break;
		case 'd': o.dir = optarg; break;
		case 'P': o.kadmin_principal = optarg; break;
		case 'K': o.kadmin_keytab = optarg; break;
		default: return cli_usage_error("locker", "bad option");
		}
	}
	if (optind != argc)
		return cli_usage_error("locker", "unexpected argument '%s'", argv[optind]);
	if (!o.listen || !o.keytab || !o.dir)
		return cli_usage_error("locker", "--listen, --keytab and --dir are required");
	if (!o.kadmin_principal != !o.kadmin_keytab)
		return cli_usage_error("locker", "--kadmin-principal and --kadmin-keytab go together");
	if (!o.hostname) {
		host = strdup(o.listen);
		if (!host)
			return EXIT_TEMP;
		if (strrchr(host, ':'))
			*strrchr(host, ':') = 0;
		if (!*host)
			return cli_usage_error("locker", "--hostname is required with --listen :PORT");
		o.hostname = host;
	}
	url = cli_store_url(root, store);
	if (!url)
		return EXIT_TEMP;
	o.store_url = url;
	if (krb_locker_run(&o, &err) < 0)
		return error_report(&err);
	return EXIT_OK;
}
