/* cli-store.c: how every command finds the cell's store. */
#include <string.h>
#include <sys/stat.h>

#include "../basic/util.h"
#include "../store/store.h"
#include "cli.h"

const char *cli_root(const char *opt_root)
{
	const char *e;

	if (opt_root && *opt_root)
		return opt_root;
	e = getenv("TREADLE_ROOT");
	return e && *e ? e : "/var/lib/treadle";
}

char *cli_store_url(const char *opt_root, const char *opt_store)
{
	const char *e = getenv("TREADLE_STORE");

	if (opt_store && *opt_store)
		return strdup(opt_store);
	if (e && *e)
		return strdup(e);
	return strdup_printf("file://%s/store", cli_root(opt_root));
}

static int cli_store_open_opts(const char *opt_root, const char *opt_store, const struct store_options *opts,
			       struct store **ret, struct error *err)
{
	_cleanup_free_ char *url = cli_store_url(opt_root, opt_store);
	const char *e = getenv("TREADLE_STORE");
	struct stat st;

	if (!url)
		return error_sys(err, ENOMEM, "store");
	if (!(opt_store && *opt_store) && !(e && *e) && stat(url + strlen("file://"), &st) < 0)
		return error_set(err, ERR_PERM, errno, "no cell at %s (start one with 'treadle cell up --root %s')",
				 cli_root(opt_root), cli_root(opt_root));
	return store_open(url, opts, ret, err);
}

int cli_store_open(const char *opt_root, const char *opt_store, struct store **ret, struct error *err)
{
	return cli_store_open_opts(opt_root, opt_store, NULL, ret, err);
}

int cli_store_open_ro(const char *opt_root, const char *opt_store, struct store **ret, struct error *err)
{
	struct store_options so = { .read_only = true };

	return cli_store_open_opts(opt_root, opt_store, &so, ret, err);
}

