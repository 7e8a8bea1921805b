/* cmd-logs.c: treadle logs INSTANCE[/SERVICE] [-f]
 *
 * Reads the s6-log directory of an app service of an instance on this
 * machine's node (R/node): the live container's, else the newest archived
 * one (node_service_log_dir, src/node/layout.h).  -f follows across s6-log rotation: `current` is
 * renamed to @<tai64n>.s and a new `current` created; an inotify watch on the
 * log directory wakes us, we drain the old file and reopen `current`.
 * With --api URL ($TREADLE_API) it reads the log from that server's API
 * instead: GET /local-app/<instance>/running/service/<service>[?follow=1]
 * (docs/API.md "Node-local logs"); URL is the API of the node that ran it. */
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include <jansson.h>

#include "../basic/fileio.h"
#include "../basic/json.h"
#include "../basic/util.h"
#include "../node/layout.h"
#include "cli.h"

/* Services directory of an instance's newest container: the parent of its
 * container log dir (apps/<unique>/data/log or archives/<unique>/log) holds
 * services/ (docs/FORMATS.md, node layout). */
static char *services_dir(const char *node_root, const char *inst)
{
	_cleanup_free_ char *clog = node_service_log_dir(node_root, inst, NULL, NULL);
	char *slash;

	if (!clog)
		return NULL;
	slash = strrchr(clog, '/');
	if (!slash)
		return NULL;
	*slash = 0;
	return strdup_printf("%s/services", clog);
}

static int copy_out(int fd)
{
	char buf[65536];
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
			return -EIO;
	fflush(stdout);
	return n < 0 ? negerrno() : 0;
}

static int follow_dir(const char *dir, int fd)
{
	_cleanup_close_ int ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	_cleanup_free_ char *cur = strdup_printf("%s/current", dir);
	struct stat st_fd, st_path;

	if (ino < 0 || !cur)
		return -errno;
	if (inotify_add_watch(ino, dir, IN_CREATE | IN_MODIFY | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF |
						 IN_MOVE_SELF) < 0)
		return negerrno();
	for (;;) {
		struct pollfd p = { .fd = ino, .events = POLLIN };
		char evbuf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
		bool gone = false;
		ssize_t n;

		if (poll(&p, 1, 1000) < 0 && errno != EINTR)
			return negerrno();
		while ((n = read(ino, evbuf, sizeof(evbuf))) > 0)
			for (char *q = evbuf; q < evbuf + n;) {
				struct inotify_event *e = (struct inotify_event *)q;

				if (e->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED))
					gone = true;
				q += sizeof(*e) + e->len;
			}
		if (fd >= 0)
			copy_out(fd);
		if (stat(cur, &st_path) == 0 && (fd < 0 || (fstat(fd, &st_fd) == 0 && st_fd.st_ino != st_path.st_ino))) {
			/* rotated: the old file is drained, continue with the new one */
			if (fd >= 0)
				close(fd);
			fd = open(cur, O_RDONLY | O_CLOEXEC);
			if (fd >= 0)
				copy_out(fd);
		}
		if (gone) {
			if (fd >= 0)
				close(fd);
			return 0;
		}
	}
}

/* The log through the node's API. */
static int logs_api(const char *api, const char *inst, const char *svc, bool follow)
{
	_cleanup_free_ char *base = cli_api_path("local-app", inst), *path = NULL, *only = NULL;
	struct error err = ERROR_INIT;

	if (!base)
		return EXIT_TEMP;
	if (!svc || !*svc) {
		_cleanup_free_ char *p = strdup_printf("%s/running", base);
		_cleanup_json_ json_t *ans = NULL;
		json_t *svcs;
		int r;

		if (!p)
			return EXIT_TEMP;
		r = cli_api_get(api, p, &ans);
		if (r < 0)
			return -r;
		svcs = json_object_get(ans, "services");
		if (json_array_size(svcs) == 0) {
			fprintf(stderr, "treadle: logs: %s: its container has no service\n", inst);
			return EXIT_PERM;
		}
		if (json_array_size(svcs) > 1) {
			size_t i;
			json_t *v;

			fprintf(stderr, "treadle: logs: %s has several services, name one:", inst);
			json_array_foreach(svcs, i, v)
				fprintf(stderr, " %s/%s", inst, json_string_value(v));
			fprintf(stderr, "\n");
			return EXIT_USAGE;
		}
		only = strdup(json_string_value(json_array_get(svcs, 0)));
		if (!only)
			return EXIT_TEMP;
		svc = only;
	}
	{
		_cleanup_free_ char *esvc = cli_api_path("service", svc);

		path = esvc ? strdup_printf("%s/running%s%s", base, esvc, follow ? "?follow=1" : "") : NULL;
	}
	if (!path)
		return EXIT_TEMP;
	if (cli_api_text(api, path, &err) < 0)
		return error_report(&err);
	return EXIT_OK;
}

const struct cli_option logs_options[] = {
	{ "follow", 'f', NULL, "keep following the log (across rotations)", true },
	CLI_OPTION_API,
	CLI_OPTION_ROOT,
	CLI_OPTION_STORE,
	CLI_OPTIONS_END,
};

int cmd_logs(int argc, char **argv)
{
	const char *root = NULL;
	_cleanup_free_ char *inst = NULL, *node_root = NULL, *sdir = NULL, *dir = NULL, *cur = NULL;
	_cleanup_strv_free_ char **svcs = NULL;
	const char *svc = NULL, *api = NULL;
	bool follow = false;
	char *slash;
	int c, fd;

	optind = 0;
	while ((c = cli_getopt(argc, argv, logs_options, false)) >= 0) {
		switch (c) {
		case 'f': follow = true; break;
		case CLI_OPT_API: api = optarg; break;
		case CLI_OPT_ROOT: root = optarg; break;
		case CLI_OPT_STORE: break; /* logs are local to this machine's node */
		default: return cli_usage_error("logs", "bad option");
		}
	}
	if (optind + 1 != argc)
		return cli_usage_error("logs", "expected one INSTANCE[/SERVICE]");
	inst = strdup(argv[optind]);
	node_root = strdup_printf("%s/node", cli_root(root));
	if (!inst || !node_root)
		return EXIT_TEMP;
	slash = strchr(inst, '/');
	if (slash) {
		*slash = 0;
		svc = slash + 1;
	}
	if (!strchr(inst, '#'))
		return cli_usage_error("logs", "'%s' is not an instance id (<proid>.<app>#<seq>)", inst);
	if (cli_api_url(api))
		return logs_api(cli_api_url(api), inst, svc, follow);
	if (!svc || !*svc) {
		sdir = services_dir(node_root, inst);
		if (!sdir || dir_list(sdir, 1, &svcs) < 0 || !svcs[0]) {
			fprintf(stderr, "treadle: logs: %s: no container of this instance on this node (%s)\n", inst,
				node_root);
			return EXIT_PERM;
		}
		if (svcs[1]) {
			fprintf(stderr, "treadle: logs: %s has several services, name one:", inst);
			for (char **k = svcs; *k; k++)
				fprintf(stderr, " %s/%s", inst, *k);
			fprintf(stderr, "\n");
			return EXIT_USAGE;
		}
		svc = svcs[0];
	}
	dir = node_service_log_dir(node_root, inst, svc, NULL);
	if (!dir) {
		fprintf(stderr, "treadle: logs: %s/%s: no such service log on this node (%s)\n", inst, svc, node_root);
		return EXIT_PERM;
	}
	cur = dir ? strdup_printf("%s/current", dir) : NULL;
	if (!cur)
		return EXIT_TEMP;
	fd = open(cur, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && !(follow && errno == ENOENT)) {
		fprintf(stderr, "treadle: logs: %s/%s: %s: %s\n", inst, svc, cur, strerror(errno));
		return errno == ENOENT ? EXIT_PERM : EXIT_TEMP;
	}
	if (fd >= 0)
		copy_out(fd);
	if (!follow) {
		close(fd);
		return EXIT_OK;
	}
	if (follow_dir(dir, fd) < 0) {
		fprintf(stderr, "treadle: logs: following %s: %s\n", dir, strerror(errno));
		return EXIT_TEMP;
	}
	return EXIT_OK;
}
