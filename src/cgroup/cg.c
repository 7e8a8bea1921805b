/* cg.c: backend choice, group tree walking and what both backends share. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <time.h>
#include <unistd.h>

#include "../basic/fileio.h"
#include "../basic/util.h"
#include "cgroup-internal.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

int cg_write_knob(const struct cg *cg, const char *dir, const char *knob, const char *s)
{
	_cleanup_free_ char *p = strdup_printf("%s/%s", dir, knob);
	_cleanup_close_ int fd = -1;
	size_t n = strlen(s);

	if (!p)
		return -ENOMEM;
	fd = open(p, O_WRONLY | O_CLOEXEC | ((cg->flags & CG_OPEN_FAKE) ? O_CREAT | O_TRUNC : 0), 0644);
	if (fd < 0)
		return negerrno();
	if (write(fd, s, n) != (ssize_t)n)
		return negerrno();
	return 0;
}

int cg_read_knob(const char *dir, const char *knob, char **ret)
{
	_cleanup_free_ char *p = strdup_printf("%s/%s", dir, knob);

	if (!p)
		return -ENOMEM;
	return read_file(p, ret, NULL);
}

static int keyed_get(const char *text, const char *key, uint64_t *ret)
{
	size_t kl = strlen(key);
	const char *l = text;

	while (l && *l) {
		if (strncmp(l, key, kl) == 0 && l[kl] == ' ') {
			char buf[32];
			size_t i = 0;
			const char *v = l + kl + 1;

			while (v[i] && v[i] != '\n' && i < sizeof(buf) - 1) {
				buf[i] = v[i];
				i++;
			}
			buf[i] = 0;
			if (strcmp(buf, "max") == 0) {
				*ret = UINT64_MAX;
				return 0;
			}
			return safe_atou64(buf, ret);
		}
		l = strchr(l, '\n');
		if (l)
			l++;
	}
	return -ENOENT;
}

int cg_read_keyed(const char *dir, const char *knob, const char *key, uint64_t *ret)
{
	_cleanup_free_ char *t = NULL;
	int r = cg_read_knob(dir, knob, &t);

	return r < 0 ? r : keyed_get(t, key, ret);
}

static void hier_free(struct cg_hier *h)
{
	if (h->root_fd >= 0)
		close(h->root_fd);
	free(h->name);
	free(h->mount);
}

void cg_close(struct cg *cg)
{
	if (!cg)
		return;
	for (size_t i = 0; i < cg->n_hiers; i++)
		hier_free(&cg->hiers[i]);
	free(cg->hiers);
	free(cg->fsroot);
	free(cg->root_name);
	free(cg);
}

static int add_hier(struct cg *cg, const char *name, const char *mount)
{
	struct cg_hier *n = realloc(cg->hiers, (cg->n_hiers + 1) * sizeof(*n));
	struct cg_hier *h;
	_cleanup_free_ char *list = NULL;

	if (!n)
		return -ENOMEM;
	cg->hiers = n;
	h = &n[cg->n_hiers];
	memset(h, 0, sizeof(*h));
	h->root_fd = -1;
	h->name = strdup(name);
	h->mount = strdup(mount);
	if (!h->name || !h->mount) {
		hier_free(h);
		return -ENOMEM;
	}
	cg->n_hiers++;
	if (cg->ops->version == CG_V2) {
		/* v2: every controller the root offers (or none, as on this machine) */
		if (cg_read_knob(mount, "cgroup.controllers", &list) < 0)
			return 0;
	} else {
		list = strdup(name);
		if (!list)
			return -ENOMEM;
	}
	for (char *s = list, *tok; (tok = strsep(&s, ", \n"));) {
		if (!strcmp(tok, "memory"))
			h->has_memory = true;
		else if (!strcmp(tok, "cpu"))
			h->has_cpu = true;
		else if (!strcmp(tok, "cpuacct"))
			h->has_cpuacct = true;
		else if (!strcmp(tok, "pids"))
			h->has_pids = true;
		else if (!strcmp(tok, "cpuset"))
			h->has_cpuset = true;
		else if (!strcmp(tok, "blkio") || !strcmp(tok, "io"))
			h->has_blkio = true;
		else if (!strcmp(tok, "devices"))
			h->has_devices = true;
	}
	return 0;
}

/* v1 controllers treadle uses; a hierarchy mounted with several (cpu,cpuacct)
 * appears once (entries that are symlinks to another are skipped). */
static const char *const v1_controllers[] = { "memory", "cpu", "cpuacct", "pids", "cpuset", "blkio", "devices" };

int cg_open(const char *fsroot, const char *root_name, unsigned flags, struct cg **ret, struct error *err)
{
	_cleanup_cg_ struct cg *cg = calloc(1, sizeof(*cg));
	_cleanup_free_ char *probe = NULL;
	struct statfs sfs;
	int r;

	if (!cg)
		return error_sys(err, ENOMEM, "cgroups");
	cg->fsroot = strdup(fsroot ? fsroot : CG_DEFAULT_FSROOT);
	cg->root_name = strdup(root_name && *root_name ? root_name : CG_DEFAULT_ROOT);
	cg->flags = flags;
	if (!cg->fsroot || !cg->root_name)
		return error_sys(err, ENOMEM, "cgroups");
	if (strchr(cg->root_name, '/') && (cg->root_name[0] == '/' || strstr(cg->root_name, "..")))
		return error_set(err, ERR_USAGE, 0, "cgroup root name '%s' is not a relative name", cg->root_name);
	if (statfs(cg->fsroot, &sfs) < 0)
		return error_sys(err, errno, "cgroups: %s", cg->fsroot);
	probe = strdup_printf("%s/cgroup.controllers", cg->fsroot);
	if (!probe)
		return error_sys(err, ENOMEM, "cgroups");
	if ((unsigned long)sfs.f_type == CGROUP2_SUPER_MAGIC ||
	    ((flags & CG_OPEN_FAKE) && access(probe, F_OK) == 0)) {
		cg->ops = &cg_backend_v2;
		r = add_hier(cg, "", cg->fsroot);
		if (r < 0)
			return error_sys(err, r, "cgroups");
	} else {
		cg->ops = &cg_backend_v1;
		for (size_t i = 0; i < ELEMENTSOF(v1_controllers); i++) {
			_cleanup_free_ char *p = strdup_printf("%s/%s", cg->fsroot, v1_controllers[i]);
			_cleanup_free_ char *real = NULL;
			struct stat st;
			bool dup = false;

			if (!p)
				return error_sys(err, ENOMEM, "cgroups");
			if (lstat(p, &st) < 0 || !S_ISDIR(st.st_mode))
				continue; /* missing, or a symlink to a combined hierarchy listed by its own name */
			real = realpath(p, NULL);
			for (size_t j = 0; real && j < cg->n_hiers; j++)
				dup |= strcmp(cg->hiers[j].mount, real) == 0;
			if (dup)
				continue;
			r = add_hier(cg, v1_controllers[i], p);
			if (r < 0)
				return error_sys(err, r, "cgroups");
		}
		if (cg->n_hiers == 0)
			return error_set(err, ERR_TEMP, 0, "cgroups: no cgroup v1 controller found under %s", cg->fsroot);
	}
	*ret = TAKE_PTR(cg);
	return 0;
}

static char *group_dir(const struct cg *cg, const struct cg_hier *h, const char *path)
{
	if (!path || !*path)
		return strdup_printf("%s/%s", h->mount, cg->root_name);
	return strdup_printf("%s/%s/%s", h->mount, cg->root_name, path);
}

static const struct cg_hier *mem_hier(const struct cg *cg)
{
	for (size_t i = 0; i < cg->n_hiers; i++)
		if (cg->hiers[i].has_memory)
			return &cg->hiers[i];
	return cg->n_hiers ? &cg->hiers[0] : NULL;
}

static int valid_path(const char *path, struct error *err)
{
	if (!path || path[0] == '/' || strstr(path, ".."))
		return error_set(err, ERR_USAGE, 0, "cgroup path '%s' must be relative without '..'",
				 path ? path : "(null)");
	return 0;
}

/* mkdir each component of R/<path> under h->mount, initialising new groups. */
static int make_group(struct cg *cg, const struct cg_hier *h, const char *path, struct error *err)
{
	_cleanup_free_ char *rel = path && *path ? strdup_printf("%s/%s", cg->root_name, path) : strdup(cg->root_name);
	_cleanup_free_ char *dir = NULL;
	int r;

	if (!rel)
		return error_sys(err, ENOMEM, "cgroups");
	dir = strdup(h->mount);
	if (!dir)
		return error_sys(err, ENOMEM, "cgroups");
	for (char *s = rel, *tok; (tok = strsep(&s, "/"));) {
		_cleanup_free_ char *parent = dir;
		bool existed;

		if (!*tok)
			continue;
		dir = strdup_printf("%s/%s", parent, tok);
		if (!dir)
			return error_sys(err, ENOMEM, "cgroups");
		/* a group made by a concurrent creator may not be initialised yet
		 * (v1 cpuset: empty cpus, so a task below could not join): init
		 * is idempotent, so every creator runs it */
		existed = mkdir(dir, 0755) < 0;
		if (existed && errno != EEXIST)
			return error_sys(err, errno, "cgroups: mkdir %s", dir);
		r = cg->ops->init_group(cg, h, parent, dir, existed);
		if (r < 0)
			return error_sys(err, r, "cgroups: init %s", dir);
	}
	return 0;
}

/* fn(cg, hierarchy, R/<path> in it) for each hierarchy, stopping at the first
 * error, or with `all` going on and returning the first error. */
typedef int (*group_fn)(struct cg *cg, const struct cg_hier *h, const char *path, const char *dir, const void *ud,
			struct error *err);
static int each_group(struct cg *cg, const char *path, group_fn fn, const void *ud, bool all, struct error *err)
{
	int r, ret = 0;

	if (valid_path(path, err) < 0)
		return -EINVAL;
	for (size_t i = 0; i < cg->n_hiers; i++) {
		_cleanup_free_ char *dir = group_dir(cg, &cg->hiers[i], path);

		if (!dir)
			return error_sys(err, ENOMEM, "cgroups");
		r = fn(cg, &cg->hiers[i], path, dir, ud, err);
		if (r < 0 && !all)
			return r;
		if (r < 0 && ret == 0)
			ret = r;
	}
	return ret;
}

static int create_one(struct cg *cg, const struct cg_hier *h, const char *path, const char *dir, const void *ud,
		      struct error *err)
{
	const struct cg_limits *limits = ud;
	int r = make_group(cg, h, path, err);

	return r < 0 || !limits ? r : cg->ops->set_limits(cg, h, dir, limits, err);
}

int cg_create(struct cg *cg, const char *path, const struct cg_limits *limits, struct error *err)
{
	return each_group(cg, path, create_one, limits, false, err);
}

static int attach_one(struct cg *cg, const struct cg_hier *h, const char *path, const char *dir, const void *ud,
		      struct error *err)
{
	const char *pid = ud;
	int r = cg_write_knob(cg, dir, "cgroup.procs", pid);

	return r < 0 ? error_sys(err, r, "cgroups: attach %s to %s", pid, dir) : 0;
}

int cg_attach(struct cg *cg, const char *path, pid_t pid, struct error *err)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%d", (int)pid);
	return each_group(cg, path, attach_one, buf, false, err);
}

bool cg_exists(struct cg *cg, const char *path)
{
	const struct cg_hier *h = mem_hier(cg);
	_cleanup_free_ char *dir = h ? group_dir(cg, h, path) : NULL;

	return dir && access(dir, F_OK) == 0;
}

static int read_pids(const char *dir, pid_t **ret, size_t *ret_n)
{
	_cleanup_free_ char *text = NULL;
	_cleanup_free_ pid_t *v = NULL;
	size_t n = 0, cap = 0;
	int r;

	r = cg_read_knob(dir, "cgroup.procs", &text);
	if (r < 0)
		return r;
	for (char *s = text, *tok; (tok = strsep(&s, "\n"));) {
		int p;

		if (!*tok || safe_atoi(tok, &p) < 0 || p <= 0)
			continue;
		if (n == cap) {
			pid_t *nv = realloc(v, (cap = cap ? cap * 2 : 16) * sizeof(*v));
			if (!nv)
				return -ENOMEM;
			v = nv;
		}
		v[n++] = p;
	}
	*ret = TAKE_PTR(v);
	*ret_n = n;
	return 0;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait (at most timeout_ms) for a busy group to change: one of its killed
 * pids exiting (a pidfd is readable once its process is gone), or, on v2, the
 * group's cgroup.events changing ("populated 0"; kernfs signals it as POLLPRI).
 * Only when neither exists, a v1 group whose tasks are already gone but that
 * the kernel has not released yet (v1 has no event for that in-process: its
 * notify_on_release runs a release agent), is it a plain 10 ms pause. */
static void wait_change(const char *dir, const pid_t *pids, size_t n, int timeout_ms)
{
	_cleanup_free_ char *events = strdup_printf("%s/cgroup.events", dir);
	_cleanup_free_ struct pollfd *fds = calloc(n + 1, sizeof(*fds));
	size_t k = 0;

	if (fds && events) {
		int fd = open(events, O_RDONLY | O_CLOEXEC);

		if (fd >= 0)
			fds[k++] = (struct pollfd){ .fd = fd, .events = POLLPRI };
		for (size_t i = 0; i < n; i++) {
			fd = (int)syscall(SYS_pidfd_open, pids[i], 0);
			if (fd >= 0)
				fds[k++] = (struct pollfd){ .fd = fd, .events = POLLIN };
		}
	}
	if (k == 0) {
		struct timespec ts = { 0, 10 * 1000000L };

		nanosleep(&ts, NULL);
		return;
	}
	(void)poll(fds, k, timeout_ms);
	for (size_t i = 0; i < k; i++)
		close(fds[i].fd);
}

/* Kill all tasks of dir and its subgroups, then rmdir bottom-up. */
static int destroy_dir(struct cg *cg, const char *dir, struct error *err)
{
	_cleanup_strv_free_ char **subs = NULL;
	int r;

	r = dir_list(dir, 1, &subs);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return error_sys(err, r, "cgroups: list %s", dir);
	for (size_t i = 0; subs && subs[i]; i++) {
		_cleanup_free_ char *sub = strdup_printf("%s/%s", dir, subs[i]);
		struct stat st;

		if (!sub)
			return error_sys(err, ENOMEM, "cgroups");
		if (stat(sub, &st) < 0 || !S_ISDIR(st.st_mode))
			continue;
		r = destroy_dir(cg, sub, err);
		if (r < 0)
			return r;
	}
	if (cg->ops->kill)
		(void)cg->ops->kill(cg, dir);
	/* Up to ~5 s: kill what is there, wait for it to leave, retry rmdir. */
	for (long long deadline = now_ms() + 5000, left; (left = deadline - now_ms()) > 0;) {
		_cleanup_free_ pid_t *pids = NULL;
		size_t n = 0;

		if (cg->flags & CG_OPEN_FAKE) {
			(void)rm_rf(dir);
			return 0;
		}
		if (rmdir(dir) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			return error_sys(err, errno, "cgroups: rmdir %s", dir);
		if (read_pids(dir, &pids, &n) == 0)
			for (size_t i = 0; i < n; i++)
				(void)kill(pids[i], SIGKILL);
		wait_change(dir, pids, n, (int)left);
	}
	return error_set(err, ERR_TEMP, EBUSY, "cgroups: %s still busy after killing its tasks", dir);
}

static int destroy_one(struct cg *cg, const struct cg_hier *h, const char *path, const char *dir, const void *ud,
		       struct error *err)
{
	return destroy_dir(cg, dir, err);
}

int cg_destroy(struct cg *cg, const char *path, struct error *err)
{
	return each_group(cg, path, destroy_one, NULL, true, err);
}

/* Groups under dir (dir included) that hold processes. */
static int count_busy(const char *dir)
{
	_cleanup_strv_free_ char **subs = NULL;
	_cleanup_free_ pid_t *pids = NULL;
	size_t n = 0;
	int busy;

	busy = read_pids(dir, &pids, &n) == 0 && n > 0;
	if (dir_list(dir, 1, &subs) >= 0)
		for (size_t i = 0; subs[i]; i++) {
			_cleanup_free_ char *sub = strdup_printf("%s/%s", dir, subs[i]);
			struct stat st;

			if (sub && stat(sub, &st) == 0 && S_ISDIR(st.st_mode))
				busy += count_busy(sub);
		}
	return busy;
}

int cg_sweep(struct cg *cg, int *ret_busy, struct error *err)
{
	int r, ret = 0, busy = 0;

	for (size_t i = 0; i < cg->n_hiers; i++) {
		_cleanup_free_ char *dir = group_dir(cg, &cg->hiers[i], NULL);

		if (!dir)
			return error_sys(err, ENOMEM, "cgroups");
		busy += count_busy(dir);
		r = destroy_dir(cg, dir, err);
		if (r < 0 && ret == 0)
			ret = r;
	}
	if (ret_busy)
		*ret_busy = busy;
	return ret;
}

int cg_oom_fd(struct cg *cg, const char *path, int *ret_fd, struct error *err)
{
	const struct cg_hier *h = mem_hier(cg);
	_cleanup_free_ char *dir = NULL;

	if (valid_path(path, err) < 0)
		return -EINVAL;
	if (!h || !h->has_memory)
		return error_set(err, ERR_TEMP, EOPNOTSUPP, "cgroups: no memory controller");
	dir = group_dir(cg, h, path);
	if (!dir)
		return error_sys(err, ENOMEM, "cgroups");
	return cg->ops->oom_fd(cg, dir, ret_fd, err);
}

int cg_oom_check(struct cg *cg, const char *path, uint64_t *ret_kills)
{
	const struct cg_hier *h = mem_hier(cg);
	_cleanup_free_ char *dir = h ? group_dir(cg, h, path) : NULL;

	if (!dir)
		return -ENOMEM;
	return cg->ops->oom_check(cg, dir, ret_kills);
}

const struct cg_device cg_devices_container[] = {
	{ 'c', 1, 3, CG_DEV_READ | CG_DEV_WRITE },	/* null */
	{ 'c', 1, 5, CG_DEV_READ | CG_DEV_WRITE },	/* zero */
	{ 'c', 1, 7, CG_DEV_READ | CG_DEV_WRITE },	/* full */
	{ 'c', 1, 8, CG_DEV_READ | CG_DEV_WRITE },	/* random */
	{ 'c', 1, 9, CG_DEV_READ | CG_DEV_WRITE },	/* urandom */
	{ 'c', 5, 0, CG_DEV_READ | CG_DEV_WRITE },	/* tty */
	{ 'c', 5, 2, CG_DEV_READ | CG_DEV_WRITE },	/* ptmx (/dev/pts/ptmx) */
	{ 'c', 136, -1, CG_DEV_READ | CG_DEV_WRITE },	/* /dev/pts/N */
};
const size_t cg_devices_container_n = ELEMENTSOF(cg_devices_container);

int cg_devices_format(const struct cg_device *allow, size_t n, char **ret)
{
	_cleanup_free_ char *out = strdup("");

	for (size_t i = 0; out && i < n; i++) {
		const struct cg_device *d = &allow[i];
		char maj[16] = "*", min[16] = "*";
		char *next;

		if (d->type != 'a' && d->type != 'b' && d->type != 'c')
			return -EINVAL;
		if (d->major >= 0)
			snprintf(maj, sizeof(maj), "%d", d->major);
		if (d->minor >= 0)
			snprintf(min, sizeof(min), "%d", d->minor);
		next = strdup_printf("%s%c %s:%s %s%s%s\n", out, d->type, maj, min, d->access & CG_DEV_READ ? "r" : "",
				     d->access & CG_DEV_WRITE ? "w" : "", d->access & CG_DEV_MKNOD ? "m" : "");
		free(out);
		out = next;
	}
	if (!out)
		return -ENOMEM;
	*ret = TAKE_PTR(out);
	return 0;
}

int cg_set_devices(struct cg *cg, const char *path, const struct cg_device *allow, size_t n, struct error *err)
{
	bool done = false;
	int r;

	if (valid_path(path, err) < 0)
		return -EINVAL;
	for (size_t i = 0; i < cg->n_hiers; i++) {
		_cleanup_free_ char *dir = NULL;

		if (cg->ops->version == CG_V1 && !cg->hiers[i].has_devices)
			continue;
		dir = group_dir(cg, &cg->hiers[i], path);
		if (!dir)
			return error_sys(err, ENOMEM, "cgroups");
		r = cg->ops->set_devices(cg, &cg->hiers[i], dir, allow, n, err);
		if (r < 0)
			return r;
		done = true;
	}
	if (!done)
		return error_set(err, ERR_TEMP, EOPNOTSUPP, "cgroups: no devices controller under %s", cg->fsroot);
	return 0;
}

int cg_procs_files(struct cg *cg, const char *path, char ***ret)
{
	_cleanup_strv_free_ char **l = strv_new();

	if (!l)
		return -ENOMEM;
	for (size_t i = 0; i < cg->n_hiers; i++) {
		_cleanup_free_ char *dir = group_dir(cg, &cg->hiers[i], path);
		char *p;

		if (!dir || !(p = strdup_printf("%s/cgroup.procs", dir)) || strv_push(&l, p) < 0)
			return -ENOMEM;
	}
	*ret = TAKE_PTR(l);
	return 0;
}

/* ---- statistics: readers for the node's metrics ----
 * A scrape reads every container's groups, so each group directory is opened
 * once (O_PATH) and its files read relative to it, each file once, into one
 * buffer reused for the whole call; no access() probes (cg_open() chose the
 * backend and knows each hierarchy's controllers). */

struct stat_buf {
	char *p;
	size_t cap;
};

/* Read dirfd/name into b (NUL-terminated, grown as needed); 0 or -errno.
 * One read() is enough when the file fits: a cgroup stat file is a single
 * seq_file record, which the kernel hands over whole (a short read is the
 * end), as a regular file of the fake tree does; a full buffer reads on. */
static int stat_read(int dirfd, const char *name, struct stat_buf *b)
{
	_cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	size_t len = 0;

	if (fd < 0)
		return negerrno();
	for (;;) {
		ssize_t n;

		if (len + 1 >= b->cap) {
			size_t cap = b->cap ? b->cap * 2 : 4096;
			char *t = realloc(b->p, cap);

			if (!t)
				return -ENOMEM;
			b->p = t;
			b->cap = cap;
		}
		n = read(fd, b->p + len, b->cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return negerrno();
		len += (size_t)n;
		if (n == 0 || len + 1 < b->cap)
			break;
	}
	b->p[len] = 0;
	return 0;
}

/* For each "key value" line of text whose key is keys[i] (the first such
 * line), vals[i] = value ("max" = UINT64_MAX) and bit i of the result set;
 * one pass over text, as keyed_get() reads each key. */
static unsigned keyed_many(const char *text, const char *const *keys, size_t n, uint64_t *vals)
{
	unsigned got = 0;

	for (const char *l = text; l && *l;) {
		const char *e = strchr(l, '\n'), *sp = strchr(l, ' ');
		size_t end = e ? (size_t)(e - l) : strlen(l);

		if (sp && (size_t)(sp - l) < end) {
			size_t kl = (size_t)(sp - l);

			for (size_t i = 0; i < n; i++) {
				char buf[32];
				size_t vl = end - kl - 1;

				if ((got & (1u << i)) || strlen(keys[i]) != kl || strncmp(l, keys[i], kl) != 0)
					continue;
				if (vl > sizeof(buf) - 1)
					vl = sizeof(buf) - 1;
				memcpy(buf, sp + 1, vl);
				buf[vl] = 0;
				if (strcmp(buf, "max") == 0) {
					vals[i] = UINT64_MAX;
					got |= 1u << i;
				} else if (safe_atou64(buf, &vals[i]) >= 0) {
					got |= 1u << i;
				}
				break;
			}
		}
		l = e ? e + 1 : NULL;
	}
	return got;
}

/* The sum of "<key> N" (v1 blkio: "maj:min Read N") or "key=N" (v2 io.stat) over the lines of text. */
static uint64_t sum_field(const char *text, const char *key, bool v2)
{
	size_t kl = strlen(key);
	uint64_t sum = 0;

	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		const char *e = strchr(l, '\n') ? strchr(l, '\n') : l + strlen(l);

		for (const char *p = l; p + kl < e; p++) {
			if (strncmp(p, key, kl) != 0 || (p > l && p[-1] != ' ') || p[kl] != (v2 ? '=' : ' '))
				continue;
			sum += strtoull(p + kl + 1, NULL, 10);
			break;
		}
	}
	return sum;
}

static void stats_v2(int dfd, struct stat_buf *b, struct cg_stats *ret)
{
	static const char *const cpu_keys[] = { "usage_usec", "nr_periods", "nr_throttled", "throttled_usec" };
	uint64_t v[ELEMENTSOF(cpu_keys)];
	unsigned got;

	if (stat_read(dfd, "memory.current", b) >= 0)
		ret->memory_bytes = strtoull(b->p, NULL, 10);
	if (stat_read(dfd, "memory.max", b) >= 0 && !startswith(b->p, "max"))
		ret->memory_limit = strtoull(b->p, NULL, 10);
	if (stat_read(dfd, "cpu.stat", b) >= 0) {
		got = keyed_many(b->p, cpu_keys, ELEMENTSOF(cpu_keys), v);
		if (got & 1)
			ret->cpu_usec = v[0];
		if (got & 2)
			ret->cpu_periods = v[1];
		if (got & 4)
			ret->cpu_throttled = v[2];
		if (got & 8)
			ret->cpu_throttled_usec = v[3];
	}
	if (stat_read(dfd, "io.stat", b) >= 0) {
		ret->io_read_bytes = sum_field(b->p, "rbytes", true);
		ret->io_write_bytes = sum_field(b->p, "wbytes", true);
	}
	if (stat_read(dfd, "memory.events", b) >= 0 && keyed_get(b->p, "oom_kill", &v[0]) >= 0)
		ret->oom_kills = v[0];
}

static void stats_v1(const struct cg_hier *h, int dfd, struct stat_buf *b, struct cg_stats *ret)
{
	static const char *const cpu_keys[] = { "nr_periods", "nr_throttled", "throttled_time" };
	uint64_t v[ELEMENTSOF(cpu_keys)];
	unsigned got;

	if (h->has_memory) {
		if (stat_read(dfd, "memory.usage_in_bytes", b) >= 0)
			ret->memory_bytes = strtoull(b->p, NULL, 10);
		/* v1 says "no limit" with a huge page-rounded number */
		if (stat_read(dfd, "memory.limit_in_bytes", b) >= 0 && (v[0] = strtoull(b->p, NULL, 10)) < (UINT64_C(1) << 62))
			ret->memory_limit = v[0];
		if (stat_read(dfd, "memory.oom_control", b) >= 0 && keyed_get(b->p, "oom_kill", &v[0]) >= 0)
			ret->oom_kills = v[0];
	}
	if (h->has_cpuacct && stat_read(dfd, "cpuacct.usage", b) >= 0)
		ret->cpu_usec = strtoull(b->p, NULL, 10) / 1000;
	if (h->has_cpu && stat_read(dfd, "cpu.stat", b) >= 0) {
		got = keyed_many(b->p, cpu_keys, ELEMENTSOF(cpu_keys), v);
		if (got & 1)
			ret->cpu_periods = v[0];
		if (got & 2)
			ret->cpu_throttled = v[1];
		if (got & 4)
			ret->cpu_throttled_usec = v[2] / 1000;
	}
	if (h->has_blkio && stat_read(dfd, "blkio.throttle.io_service_bytes", b) >= 0) {
		ret->io_read_bytes = sum_field(b->p, "Read", false);
		ret->io_write_bytes = sum_field(b->p, "Write", false);
	}
}

/* The group R/<path> of h opened O_PATH, relative to h's kept fd of R: a
 * short walk instead of the whole absolute path.  R removed and made again
 * (cell down, then up) leaves the kept fd on the old, empty directory: a
 * group not found through it is looked up again through a fresh one. */
static int open_group(struct cg *cg, struct cg_hier *h, const char *path)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		bool fresh = h->root_fd < 0;
		int fd;

		if (fresh) {
			_cleanup_free_ char *root = group_dir(cg, h, NULL);

			if (!root)
				return -ENOMEM;
			h->root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
			if (h->root_fd < 0)
				return negerrno();
		}
		fd = openat(h->root_fd, path && *path ? path : ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0 || errno != ENOENT || fresh)
			return fd >= 0 ? fd : negerrno();
		close(h->root_fd);
		h->root_fd = -1;
	}
	return -ENOENT;
}

int cg_stats(struct cg *cg, const char *path, struct cg_stats *ret)
{
	struct stat_buf b = { 0 };
	int r = 0;

	*ret = (struct cg_stats){ .memory_limit = UINT64_MAX };
	if (path && (path[0] == '/' || strstr(path, ".."))) /* openat() must stay below R */
		return -EINVAL;
	/* first the hierarchies with something to read; the others (v1 pids,
	 * cpuset, devices) only say whether the group exists when none did */
	for (int pass = 0; pass < 2 && !ret->found && r == 0; pass++)
		for (size_t i = 0; i < cg->n_hiers; i++) {
			struct cg_hier *h = &cg->hiers[i];
			bool reads = cg->ops->version == CG_V2 || h->has_memory || h->has_cpu || h->has_cpuacct ||
				     h->has_blkio;
			_cleanup_close_ int dfd = -1;

			if (reads != (pass == 0))
				continue;
			dfd = open_group(cg, h, path);
			if (dfd == -ENOMEM) {
				r = dfd;
				break;
			}
			if (dfd < 0)
				continue;
			ret->found = true;
			if (cg->ops->version == CG_V2)
				stats_v2(dfd, &b, ret);
			else if (reads)
				stats_v1(h, dfd, &b, ret);
		}
	free(b.p);
	if (r < 0)
		return r;
	return ret->found ? 0 : -ENOENT;
}
