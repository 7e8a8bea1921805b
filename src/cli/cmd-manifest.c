/* cmd-manifest.c: treadle manifest check: validate a manifest as `run` would
 * and print it (scheduled form with --app) without touching the store;
 * treadle manifest convert: print a YAML document as typed JSON. */
#include <getopt.h>
#include <string.h>

#include <jansson.h>

#include "../basic/fileio.h"
#include "../basic/util.h"
#include "../manifest/manifest-internal.h"
#include "../manifest/manifest.h"
#include "cli.h"

/* One "treadle: <line>" per problem, as the messages are one per line. */
static int report_lines(const struct error *err)
{
	const char *p = err->msg ? err->msg : "unknown error";

	while (*p) {
		const char *nl = strchr(p, '\n');
		int n = nl ? (int)(nl - p) : (int)strlen(p);

		fprintf(stderr, "treadle: %.*s\n", n, p);
		p += n + (nl ? 1 : 0);
	}
	return err->code ? err->code : EXIT_TEMP;
}

const struct cli_option manifest_options[] = {
	{ "app", 'a', "PROID.NAME", "also print the scheduled manifest of this app" },
	{ "env", 'e', "ENV", "its environment: dev (default), qa, uat, prod" },
	{ "no-user-check", 'U', NULL, "do not require the proid to be a user on this host" },
	CLI_OPTIONS_END,
};

int cmd_manifest(int argc, char **argv)
{
	const char *app = NULL, *env = NULL, *file;
	bool user_check = true;
	struct error err = ERROR_INIT;
	_cleanup_free_ char *text = NULL, *out = NULL;
	json_t *m = NULL;
	size_t len = 0;
	int c, r, rc;

	bool convert;

	if (argc < 2 || (strcmp(argv[1], "check") != 0 && strcmp(argv[1], "convert") != 0))
		return cli_usage_error("manifest", "expected 'check' or 'convert'");
	convert = strcmp(argv[1], "convert") == 0;
	argc--;
	argv++;
	optind = 1;
	while ((c = cli_getopt(argc, argv, manifest_options, false)) != -1) {
		switch (c) {
		case 'a':
			app = optarg;
			break;
		case 'e':
			env = optarg;
			break;
		case 'U':
			user_check = false;
			break;
		default:
			return cli_usage_error("manifest", "bad option");
		}
	}
	if (optind != argc - 1)
		return cli_usage_error("manifest", "expected one FILE (or - for stdin)");
	file = argv[optind];
	if (convert || strcmp(file, "-") == 0) {
		r = read_file(strcmp(file, "-") == 0 ? "/dev/stdin" : file, &text, &len);
		if (r < 0) {
			error_set(&err, r == -ENOENT ? ERR_PERM : ERR_TEMP, -r, "%s: %s", file, strerror(-r));
			return error_report(&err);
		}
	}
	if (convert) {
		/* the document as typed JSON, no validation (how a YAML value was read) */
		if (endswith(file, ".json")) {
			json_error_t je;
			m = json_loadb(text, len, JSON_DECODE_ANY, &je);
			r = m ? 0 : error_set(&err, ERR_PERM, 0, "%s:%d:%d: %s", file, je.line, je.column, je.text);
		} else
			r = manifest_yaml_to_json(text, len, file, &m, &err);
	} else if (strcmp(file, "-") == 0)
		r = manifest_load(text, len, MANIFEST_AUTO, "<stdin>", &m, &err);
	else
		r = manifest_load_file(file, &m, &err);
	if (r >= 0 && app && !convert) {
		r = manifest_check_appname(app, user_check, &err);
		if (r >= 0)
			r = manifest_schedule(m, app, env, &err);
	}
	if (r < 0) {
		rc = report_lines(&err);
		error_clear(&err);
		json_decref(m);
		return rc;
	}
	out = manifest_dumps(m);
	json_decref(m);
	if (!out)
		return EXIT_TEMP;
	printf("%s\n", out);
	return EXIT_OK;
}
