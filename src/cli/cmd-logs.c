/* cmd-logs.c: treadle logs INSTANCE[/SERVICE] [-f]
 *
 * Reads the s6-log directory of an app service of an instance on this
 * machine's node (R/node).  -f follows across s6-log rotation: `current` is
 * renamed to @<tai64n>.s and a new `current` created; an inotify watch on the
 * log directory wakes us, we drain the old file and reopen `current`. */
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include "../basic/fileio.h"
#include "../basic/util.h"
#include "cli.h"

/* Container directory of an instance: the running/<instance> link, else the
 * newest apps/<unique name> of that instance (still there until cleanup). */
static char *container_dir(const char *node_root, const char *inst)
{
	_cleanup_free_ char *link = strdup_printf("%s/running/%s", node_root, inst), *apps = NULL, *prefix = NULL;
	_cleanup_strv_free_ char **names = NULL;
	char *best = NULL, *p;
	time_t best_t = 0;
	struct stat st;

	if (!link)
		return NULL;
	p = realpath(link, NULL);
	if (p)
		return p;
	apps = strdup_printf("%s/apps", node_root);
	prefix = strdup(inst);
	if (!apps || !prefix || dir_list(apps, 1, &names) < 0)
		return NULL;
	for (char *h = prefix; *h; h++)
		if (*h == '#')
			*h = '-';
	for (char **n = names; *n; n++) {
		_cleanup_free_ char *full = NULL;

		if (!startswith(*n, prefix) || (*n)[strlen(prefix)] != '-')
			continue;
		full = strdup_printf("%s/%s", apps, *n);
		if (full && stat(full, &st) == 0 && (!best || st.st_mtime >= best_t)) {
			free(best);
			best = TAKE_PTR(full);
			best_t = st.st_mtime;
		}
	}
	return best;
}

/* Log directory of an app service inside a container directory (the node's
 * layout: <container>/data/services/<svc>/data/log, as Treadmill). */
static char *service_log_dir(const char *cdir, const char *svc)
{
	return strdup_printf("%s/data/services/%s/data/log", cdir, svc);
}

static int list_services(const char *cdir, char ***ret)
{
	_cleanup_free_ char *dir = strdup_printf("%s/data/services", cdir);

	return dir ? dir_list(dir, 1, ret) : -ENOMEM;
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

int cmd_logs(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "follow", no_argument, NULL, 'f' },
		{ "root", required_argument, NULL, CLI_OPT_ROOT },
		{ "store", required_argument, NULL, CLI_OPT_STORE },
		{}
	};
	const char *root = NULL;
	_cleanup_free_ char *inst = NULL, *node_root = NULL, *cdir = NULL, *dir = NULL, *cur = NULL;
	_cleanup_strv_free_ char **svcs = NULL;
	const char *svc = NULL;
	bool follow = false;
	char *slash;
	int c, fd;

	optind = 0;
	while ((c = getopt_long(argc, argv, "f", opts, NULL)) >= 0) {
		switch (c) {
		case 'f': follow = true; break;
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
	cdir = container_dir(node_root, inst);
	if (!cdir) {
		fprintf(stderr, "treadle: logs: %s: no container of this instance on this node (%s)\n", inst, node_root);
		return EXIT_PERM;
	}
	if (!svc || !*svc) {
		if (list_services(cdir, &svcs) < 0 || !svcs[0]) {
			fprintf(stderr, "treadle: logs: %s: no services in %s\n", inst, cdir);
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
	dir = service_log_dir(cdir, svc);
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
