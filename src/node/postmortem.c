/* postmortem.c: the node's postmortem bundle (see postmortem.h).
 *
 * A plain ustar writer (pax "path" records for long names) over zlib's gzip
 * stream: every member is read whole into memory first (cgroup and proc files
 * have no size before they are read), capped per file, so the header always
 * states the bytes that follow.  Written under a dot name, fsync'd, renamed:
 * a reader never sees half a bundle. */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "../basic/fileio.h"
#include "../basic/util.h"
#include "postmortem.h"

#define MEMBER_MAX (4u << 20)	 /* bytes of one member kept (the tail is cut) */
#define BUNDLE_MAX (256u << 20) /* members stop being added past this total */
#define WALK_DEPTH 8
#define DIAG_TIMEOUT_MS 5000

struct tarw {
	gzFile gz;
	uint64_t total;
	time_t now;
	int error; /* first -errno */
};

static void oct(char *dst, size_t n, uint64_t v)
{
	/* n-1 octal digits and a NUL */
	dst[n - 1] = 0;
	for (size_t i = n - 1; i > 0; i--) {
		dst[i - 1] = (char)('0' + (v & 7));
		v >>= 3;
	}
}

static void tar_write(struct tarw *t, const void *p, size_t n)
{
	if (t->error || n == 0)
		return;
	if (gzwrite(t->gz, p, (unsigned)n) != (int)n)
		t->error = -EIO;
}

static void tar_header(struct tarw *t, const char *name, char type, uint64_t size, mode_t mode)
{
	char h[512];
	unsigned sum = 0;

	memset(h, 0, sizeof(h));
	strncpy(h, name, 100); /* may be unterminated at 100: ustar allows it */
	oct(h + 100, 8, mode & 07777);
	oct(h + 108, 8, 0);
	oct(h + 116, 8, 0);
	oct(h + 124, 12, size);
	oct(h + 136, 12, (uint64_t)t->now);
	memset(h + 148, ' ', 8);
	h[156] = type;
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	memcpy(h + 265, "root", 5);
	memcpy(h + 297, "root", 5);
	for (size_t i = 0; i < sizeof(h); i++)
		sum += (unsigned char)h[i];
	oct(h + 148, 7, sum);
	h[155] = ' ';
	tar_write(t, h, sizeof(h));
}

static void tar_pad(struct tarw *t, uint64_t size)
{
	static const char zero[512];

	if (size % 512)
		tar_write(t, zero, 512 - size % 512);
}

/* One regular-file member: a pax header first when the name does not fit. */
static void tar_add(struct tarw *t, const char *name, const void *data, size_t len)
{
	if (t->error || t->total > BUNDLE_MAX)
		return;
	if (strlen(name) > 100) {
		/* "<len> path=<name>\n", len counting itself */
		size_t body = strlen(" path=\n") + strlen(name), digits = 1, n;
		_cleanup_free_ char *rec = NULL;

		while ((n = body + digits, snprintf(NULL, 0, "%zu", n)) > (int)digits)
			digits++;
		rec = strdup_printf("%zu path=%s\n", body + digits, name);
		if (!rec) {
			t->error = -ENOMEM;
			return;
		}
		tar_header(t, "././@PaxHeader", 'x', strlen(rec), 0644);
		tar_write(t, rec, strlen(rec));
		tar_pad(t, strlen(rec));
	}
	tar_header(t, name, '0', len, 0644);
	tar_write(t, data, len);
	tar_pad(t, len);
	t->total += len + 1024;
}

static void tar_add_str(struct tarw *t, const char *name, const char *s)
{
	tar_add(t, name, s, strlen(s));
}

/* Read at most MEMBER_MAX of a file (its tail when longer: the newest log lines). */
static int read_capped(int dirfd, const char *path, char **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
	struct stat st;
	char *buf;
	size_t len = 0, cap = 65536;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if (st.st_size > (off_t)MEMBER_MAX)
		(void)lseek(fd, st.st_size - (off_t)MEMBER_MAX, SEEK_SET);
	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n;

		if (len == cap) {
			char *nb;
			if (cap >= MEMBER_MAX)
				break;
			nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			free(buf);
			return -errno;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}

static void add_file(struct tarw *t, const char *name, const char *path)
{
	_cleanup_free_ char *data = NULL;
	size_t len = 0;

	if (read_capped(AT_FDCWD, path, &data, &len) == 0)
		tar_add(t, name, data, len);
}

/* Every readable regular file under dir as prefix/<relative path>; a
 * directory on another device (a mounted root, a volume) or named in skip is
 * not entered.  only_named: add only files with that name (s6-log's current). */
static void add_tree(struct tarw *t, const char *prefix, const char *dir, dev_t dev, int depth,
		     const char *const *skip, const char *only_named)
{
	_cleanup_strv_free_ char **l = NULL;

	if (depth > WALK_DEPTH || dir_list(dir, 0, &l) < 0)
		return;
	for (char **e = l; *e && !t->error; e++) {
		_cleanup_free_ char *p = strdup_printf("%s/%s", dir, *e), *n = strdup_printf("%s/%s", prefix, *e);
		struct stat st;
		bool skipped = false;

		if (!p || !n || lstat(p, &st) < 0)
			continue;
		for (const char *const *s = skip; s && *s; s++)
			skipped |= strcmp(*s, *e) == 0;
		if (S_ISDIR(st.st_mode)) {
			if (!skipped && (dev == 0 || st.st_dev == dev))
				add_tree(t, n, p, dev, depth + 1, skip, only_named);
		} else if (S_ISREG(st.st_mode) && !skipped && (!only_named || strcmp(*e, only_named) == 0) &&
			   (st.st_mode & 0444)) {
			add_file(t, n, p);
		}
	}
}

static void add_listing(struct tarw *t, const char *name, const char *dir)
{
	_cleanup_strv_free_ char **l = NULL;
	_cleanup_free_ char *text = strdup("");

	if (!text || dir_list(dir, 0, &l) < 0)
		return;
	for (char **e = l; *e; e++) {
		_cleanup_free_ char *p = strdup_printf("%s/%s", dir, *e), *tgt = NULL, *line = NULL;
		char buf[4096];
		ssize_t k = p ? readlink(p, buf, sizeof(buf) - 1) : -1;

		if (k >= 0) {
			buf[k] = 0;
			line = strdup_printf("%s%s -> %s\n", text, *e, buf);
		} else
			line = strdup_printf("%s%s\n", text, *e);
		if (!line)
			return;
		free(text);
		text = TAKE_PTR(line);
	}
	tar_add_str(t, name, text);
}

/* A command's stdout and stderr (both into one pipe), at most MEMBER_MAX
 * bytes, within DIAG_TIMEOUT_MS (then killed; what it said is kept). */
static void add_diag(struct tarw *t, char *const *argv)
{
	_cleanup_free_ char *name = strdup("diag/"), *out = malloc(MEMBER_MAX);
	uint64_t deadline = now_monotonic_ms() + DIAG_TIMEOUT_MS;
	size_t len = 0;
	int p[2], status;
	pid_t pid;

	for (char *const *a = argv; name && *a; a++) {
		char *n = strdup_printf("%s%s%s", name, a == argv ? "" : "#", *a);
		free(name);
		name = n;
	}
	if (!name || !out || pipe2(p, O_CLOEXEC) < 0)
		return;
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return;
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (devnull >= 0)
			(void)dup2(devnull, 0);
		(void)dup2(p[1], 1);
		(void)dup2(p[1], 2);
		execvp(argv[0], argv);
		dprintf(2, "%s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(p[1]);
	for (;;) {
		struct pollfd pfd = { .fd = p[0], .events = POLLIN };
		uint64_t now = now_monotonic_ms();
		ssize_t n;

		if (now >= deadline || poll(&pfd, 1, (int)(deadline - now)) <= 0)
			break;
		n = read(p[0], out + len, len < MEMBER_MAX ? MEMBER_MAX - len : 0);
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len >= MEMBER_MAX)
			break;
	}
	close(p[0]);
	(void)kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	tar_add(t, name, out, len);
}

static void add_cgroups(struct tarw *t, const char *cgroot)
{
	const char *fs = "/sys/fs/cgroup";
	_cleanup_free_ char *v2 = strdup_printf("%s/cgroup.controllers", fs);
	_cleanup_strv_free_ char **ctrls = NULL;

	if (!v2)
		return;
	if (access(v2, F_OK) == 0) {
		_cleanup_free_ char *d = strdup_printf("%s/%s", fs, cgroot), *n = strdup_printf("cgroup/%s", cgroot);
		if (d && n)
			add_tree(t, n, d, 0, 0, NULL, NULL);
		return;
	}
	if (dir_list(fs, 1, &ctrls) < 0)
		return;
	for (char **c = ctrls; *c; c++) {
		_cleanup_free_ char *d = strdup_printf("%s/%s/%s", fs, *c, cgroot);
		_cleanup_free_ char *n = strdup_printf("cgroup/%s/%s", *c, cgroot);
		struct stat st;

		/* named hierarchies appear twice (cpu,cpuacct and its links) */
		if (d && n && lstat(d, &st) == 0 && S_ISDIR(st.st_mode) && !strchr(*c, ','))
			add_tree(t, n, d, 0, 0, NULL, NULL);
	}
}

static int mtime_cmp(const void *a, const void *b)
{
	const struct { char *name; struct timespec m; } *x = a, *y = b;

	if (x->m.tv_sec != y->m.tv_sec)
		return x->m.tv_sec < y->m.tv_sec ? 1 : -1;
	if (x->m.tv_nsec != y->m.tv_nsec)
		return x->m.tv_nsec < y->m.tv_nsec ? 1 : -1;
	return -strcmp(x->name, y->name);
}

/* Keep the newest NODE_POSTMORTEM_KEEP bundles of dir. */
static void prune(const char *dir)
{
	_cleanup_strv_free_ char **l = NULL;
	struct { char *name; struct timespec m; } *v;
	size_t n = 0;

	if (dir_list(dir, 1, &l) < 0)
		return;
	v = calloc(strv_length(l) + 1, sizeof(*v));
	if (!v)
		return;
	for (char **e = l; *e; e++) {
		_cleanup_free_ char *p = strdup_printf("%s/%s", dir, *e);
		struct stat st;

		if (p && endswith(*e, ".tar.gz") && lstat(p, &st) == 0 && S_ISREG(st.st_mode))
			v[n].name = *e, v[n++].m = st.st_mtim;
	}
	qsort(v, n, sizeof(*v), mtime_cmp);
	for (size_t i = NODE_POSTMORTEM_KEEP; i < n; i++) {
		_cleanup_free_ char *p = strdup_printf("%s/%s", dir, v[i].name);
		if (p)
			(void)unlink(p);
	}
	free(v);
}

static void add_node(struct tarw *t, const struct node_postmortem_options *o)
{
	static const char *const skip_root[] = { "root", NULL };
	_cleanup_strv_free_ char **apps = NULL, **logs = NULL;
	_cleanup_free_ char *settings = strdup_printf("%s/node.json", o->root);
	_cleanup_free_ char *wd = strdup_printf("%s/watchdogs", o->root), *appsd = strdup_printf("%s/apps", o->root);
	const char *lists[] = { "running", "cache", "cleanup", "apps", "archives" };

	if (o->reason)
		tar_add_str(t, "reason.txt", o->reason);
	if (o->log_dir && dir_list(o->log_dir, 1, &logs) == 0)
		for (char **e = logs; *e; e++) {
			_cleanup_free_ char *p = strdup_printf("%s/%s/current", o->log_dir, *e);
			_cleanup_free_ char *n = strdup_printf("log/%s/current", *e);
			if (p && n)
				add_file(t, n, p);
		}
	if (settings)
		add_file(t, "node/node.json", settings);
	if (wd)
		add_tree(t, "node/watchdogs", wd, 0, 0, NULL, NULL);
	for (size_t i = 0; i < ELEMENTSOF(lists); i++) {
		_cleanup_free_ char *d = strdup_printf("%s/%s", o->root, lists[i]);
		_cleanup_free_ char *n = strdup_printf("node/%s.list", lists[i]);
		if (d && n)
			add_listing(t, n, d);
	}
	/* every container's data dir (logs, app.json, exit files), not its root */
	if (appsd && dir_list(appsd, 1, &apps) == 0)
		for (char **e = apps; *e; e++) {
			_cleanup_free_ char *d = strdup_printf("%s/%s/data", appsd, *e);
			_cleanup_free_ char *n = strdup_printf("apps/%s/data", *e);
			struct stat st;

			if (d && n && lstat(d, &st) == 0 && S_ISDIR(st.st_mode))
				add_tree(t, n, d, st.st_dev, 0, skip_root, NULL);
		}
}

int node_postmortem_write(const struct node_postmortem_options *o, char **ret_path, struct error *err)
{
	char *const diags[][6] = {
		{ "ps", "-eo", "pid,ppid,stat,etime,rss,args", NULL },
		{ "s6-svstat", NULL }, /* replaced below per service */
		{ "ip", "addr", NULL },
		{ "ip", "route", NULL },
		{ "df", "-P", NULL },
		{ "cat", "/proc/self/mountinfo", NULL },
		{ "cat", "/proc/meminfo", NULL },
		{ "cat", "/proc/loadavg", NULL },
		{ "dmesg", NULL },
		{ "sysctl", "-a", NULL },
	};
	_cleanup_free_ char *dir = strdup_printf("%s/" NODE_DIR_POSTMORTEM, o->root), *path = NULL, *tmp = NULL;
	struct tarw t = { .now = time(NULL) };
	char stamp[64];
	struct tm tm;
	int fd, r;

	if (!dir)
		return error_sys(err, ENOMEM, "postmortem");
	if ((r = mkdir_p(dir, 0755)) < 0)
		return error_sys(err, -r, "creating %s", dir);
	gmtime_r(&t.now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%d_%H%M%S", &tm);
	for (int k = 1; k < 100 && !path; k++) {
		_cleanup_free_ char *p = k == 1 ? strdup_printf("%s/%s-%sUTC.tar.gz", dir, o->hostname, stamp)
						: strdup_printf("%s/%s-%sUTC-%d.tar.gz", dir, o->hostname, stamp, k);
		if (!p)
			return error_sys(err, ENOMEM, "postmortem");
		if (access(p, F_OK) < 0)
			path = TAKE_PTR(p);
	}
	tmp = strdup_printf("%s/.tmp-%d.tar.gz", dir, (int)getpid());
	if (!path || !tmp)
		return error_sys(err, path ? ENOMEM : EEXIST, "postmortem in %s", dir);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return error_sys(err, errno, "creating %s", tmp);
	t.gz = gzdopen(fd, "wb6");
	if (!t.gz) {
		close(fd);
		(void)unlink(tmp);
		return error_sys(err, ENOMEM, "postmortem: zlib");
	}
	add_node(&t, o);
	add_cgroups(&t, o->cgroup_root ? o->cgroup_root : "treadle");
	for (size_t i = 0; i < ELEMENTSOF(diags); i++) {
		if (strcmp(diags[i][0], "s6-svstat") == 0) {
			/* the s6 state of the node's containers */
			_cleanup_free_ char *running = strdup_printf("%s/running", o->root);
			_cleanup_strv_free_ char **l = NULL;

			if (running && dir_list(running, 1, &l) == 0)
				for (char **e = l; *e; e++) {
					_cleanup_free_ char *d = strdup_printf("%s/%s", running, *e);
					char *const argv[] = { "s6-svstat", d, NULL };
					if (d)
						add_diag(&t, argv);
				}
			continue;
		}
		add_diag(&t, diags[i]);
	}
	{
		static const char zero[1024];
		tar_write(&t, zero, sizeof(zero)); /* end of archive */
	}
	/* gzclose closes fd: sync through a second descriptor first */
	r = gzflush(t.gz, Z_FINISH) != Z_OK ? -EIO : t.error;
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (gzclose(t.gz) != Z_OK && r == 0)
		r = -EIO;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		(void)unlink(tmp);
		return error_sys(err, -r, "writing %s", path);
	}
	prune(dir);
	*ret_path = TAKE_PTR(path);
	return 0;
}
