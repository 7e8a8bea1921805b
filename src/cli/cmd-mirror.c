/* cmd-mirror.c: `treadle mirror --store URL --dir DIR [--once] PATH...`, a
 * read-only copy of store subtrees in a directory (Treadmill's zk2fs). */
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>

#include "../basic/util.h"
#include "../store/store-mirror.h"
#include "../store/store.h"
#include "cli.h"

const struct cli_option mirror_options[] = {
	{ "store", 'S', "URL", "the cell's store (default $TREADLE_STORE, else file://<root>/store)" },
	{ "root", 'R', "DIR", "the cell's root (default $TREADLE_ROOT, else /var/lib/treadle)" },
	{ "dir", 'd', "DIR", "the directory to keep the copy in" },
	{ "once", 'o', NULL, "copy once and exit" },
	CLI_OPTIONS_END,
};

int cmd_mirror(int argc, char **argv)
{
	const char *url = NULL, *root = NULL, *dir = NULL;
	_cleanup_free_ char *url_buf = NULL;
	_cleanup_close_ int sfd = -1;
	struct error err = ERROR_INIT;
	struct store *s = NULL;
	struct store_mirror *m = NULL;
	bool once = false;
	sigset_t mask;
	int c, r, code = EXIT_OK;

	optind = 1;
	while ((c = cli_getopt(argc, argv, mirror_options, false)) >= 0) {
		switch (c) {
		case 'S':
			url = optarg;
			break;
		case 'R':
			root = optarg;
			break;
		case 'd':
			dir = optarg;
			break;
		case 'o':
			once = true;
			break;
		default:
			return cli_usage_error("mirror", "bad option");
		}
	}
	if (!dir)
		return cli_usage_error("mirror", "missing --dir");
	if (optind >= argc)
		return cli_usage_error("mirror", "missing store PATH");
	if (!url)
		url = getenv("TREADLE_STORE");
	if (!url || !*url) {
		url_buf = strdup_printf("file://%s/store", cli_root(root));
		if (!url_buf)
			return EXIT_TEMP;
		url = url_buf;
	}
	if (!once) {
		sigemptyset(&mask);
		sigaddset(&mask, SIGTERM);
		sigaddset(&mask, SIGINT);
		sigprocmask(SIG_BLOCK, &mask, NULL);
		sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
		if (sfd < 0)
			return error_sys(&err, errno, "mirror: signalfd"), error_report(&err);
	}
	if (store_open(url, NULL, &s, &err) < 0)
		return error_report(&err);
	if (store_mirror_new(s, dir, argv + optind, !once, &m, &err) < 0 || store_mirror_sync(m, &err) < 0) {
		code = error_report(&err);
		goto out;
	}
	while (!once) {
		struct pollfd p[2] = { { .fd = store_fd(s), .events = POLLIN }, { .fd = sfd, .events = POLLIN } };
		if (p[0].fd < 0) {
			error_sys(&err, -p[0].fd, "mirror: store");
			code = error_report(&err);
			break;
		}
		if (poll(p, 2, -1) < 0 && errno != EINTR) {
			error_sys(&err, errno, "mirror: poll");
			code = error_report(&err);
			break;
		}
		if (p[1].revents)
			break; /* SIGTERM / SIGINT: the files stay as they are */
		r = store_dispatch(s);
		if (r >= 0 && (r = store_mirror_error(m)) == 0 && store_state(s) == STORE_EXPIRED)
			r = -ESHUTDOWN;
		if (r < 0) {
			error_set(&err, ERR_TEMP, -r, "mirror: %s", store_strerror(r));
			code = error_report(&err);
			break;
		}
	}
out:
	store_close(s);
	store_mirror_free(m);
	error_clear(&err);
	return code;
}
