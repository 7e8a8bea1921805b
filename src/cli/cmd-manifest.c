/* cmd-manifest.c: treadle manifest check: validate a manifest as `run` would
 * and print it (scheduled form with --app) without touching the store;
 * treadle manifest convert: print a YAML document as typed JSON. */
#include <getopt.h>
#include <string.h>

#include <jansson.h>

#include "../basic/json.h"
#include "../basic/util.h"
#include "../manifest/manifest.h"
#include "cli.h"

/* One "treadle: <line>" per problem, as the messages are one per line; err is cleared. */
static int report_lines(struct error *err)
{
	const char *p = err->msg ? err->msg : "unknown error";
	int c;

	while (*p) {
		const char *nl = strchr(p, '\n');
		int n = nl ? (int)(nl - p) : (int)strlen(p);

		fprintf(stderr, "treadle: %.*s\n", n, p);
		p += n + (nl ? 1 : 0);
	}
	c = err->code ? err->code : EXIT_TEMP;
	error_clear(err);
	return c;
}

const struct cli_option manifest_options[] = {
	{ "app", 'a', "PROID.NAME", "also print the scheduled manifest of this app" },
	{ "env", 'e', "ENV", "its environment: dev (default), qa, uat, prod" },
	{ "no-user-check", 'U', NULL, "do not require the proid to be a user on this host" },
	CLI_OPTIONS_END,
};

int cmd_manifest(int argc, char **argv)
{
	const char *app = NULL, *env = NULL;
	bool user_check = true, convert;
	struct error err = ERROR_INIT;
	_cleanup_free_ char *out = NULL;
	_cleanup_json_ json_t *m = NULL;
	int c;

	if (argc < 2 || (strcmp(argv[1], "check") != 0 && strcmp(argv[1], "convert") != 0))
		return cli_usage_error("manifest", "expected 'check' or 'convert'");
	convert = strcmp(argv[1], "convert") == 0;
	argc--;
	argv++;
	optind = 1;
	while ((c = cli_getopt(argc, argv, manifest_options, false)) != -1) {
		switch (c) {
		case 'a': app = optarg; break;
		case 'e': env = optarg; break;
		case 'U': user_check = false; break;
		default: return cli_usage_error("manifest", "bad option");
		}
	}
	if (optind != argc - 1)
		return cli_usage_error("manifest", "expected one FILE (or - for stdin)");
	if (manifest_check_file(argv[optind], convert, app, env, user_check, &m, &err) < 0)
		return report_lines(&err);
	out = manifest_dumps(m);
	if (!out)
		return EXIT_TEMP;
	printf("%s\n", out);
	return EXIT_OK;
}
