/* store-mirror.c: read-only mirror of store subtrees into a directory (zk2fs). */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../basic/fileio.h"
#include "../basic/util.h"
#include "store-internal.h"
#include "store-mirror.h"

struct store_mirror {
	struct store *s;
	char *dir;
	char **paths;
	bool watch;
	bool synced;
	int error;
};

static void on_data(struct store *s, enum store_event ev, const char *path, void *userdata);
static void on_children(struct store *s, enum store_event ev, const char *path, void *userdata);

static char *fs_path(struct store_mirror *m, const char *path)
{
	return strdup_printf("%s%s", m->dir, strcmp(path, "/") ? path : "");
}

static bool is_root(struct store_mirror *m, const char *path)
{
	return strv_contains(m->paths, path);
}

static bool is_dir(const char *p)
{
	struct stat st;

	return lstat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static void mark_modified(struct store_mirror *m)
{
	_cleanup_free_ char *p = strdup_printf("%s/.modified", m->dir);

	if (p && m->synced)
		touch(p);
}

/* Write data to `target` through DIR/.tmp with the given mtime. */
static int write_file(struct store_mirror *m, const char *target, const char *data, size_t len, int64_t mtime_ms)
{
	static unsigned counter;
	_cleanup_free_ char *tmp = strdup_printf("%s/.tmp/%d.%u", m->dir, (int)getpid(), counter++);
	_cleanup_close_ int fd = -1;
	struct timespec ts[2];
	int r = 0;

	if (!tmp)
		return -ENOMEM;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return negerrno();
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, data + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = negerrno();
			break;
		}
		off += (size_t)n;
	}
	ts[0].tv_sec = ts[1].tv_sec = (time_t)(mtime_ms / 1000);
	ts[0].tv_nsec = ts[1].tv_nsec = (long)(mtime_ms % 1000) * 1000000;
	if (r >= 0 && futimens(fd, ts) < 0)
		r = negerrno();
	if (r >= 0 && rename(tmp, target) < 0)
		r = negerrno();
	if (r < 0)
		unlink(tmp);
	return r;
}

static int remove_entry(struct store_mirror *m, const char *path)
{
	_cleanup_free_ char *p = fs_path(m, path);

	if (!p)
		return -ENOMEM;
	if (access(p, F_OK) < 0)
		return 0;
	mark_modified(m);
	return rm_rf(p);
}

static int sync_node(struct store_mirror *m, const char *path);

/* fn(child of path) for each name in `names` that is not in `other`. */
static int each_not_in(struct store_mirror *m, const char *path, char **names, char **other,
		       int (*fn)(struct store_mirror *m, const char *path))
{
	int r;

	for (char **n = names; *n; n++)
		if (!strv_contains(other, *n)) {
			_cleanup_free_ char *c = store_path_child(path, *n);
			if (!c)
				return -ENOMEM;
			if ((r = fn(m, c)) < 0)
				return r;
		}
	return 0;
}

/* Make the directory for `path` hold exactly the node's children. */
static int sync_children(struct store_mirror *m, const char *path, char **names)
{
	_cleanup_free_ char *p = fs_path(m, path);
	_cleanup_strv_free_ char **have = NULL;
	int r;

	if (!p)
		return -ENOMEM;
	r = dir_list(p, 1, &have);
	if (r < 0)
		return r;
	r = each_not_in(m, path, have, names, remove_entry);
	return r < 0 ? r : each_not_in(m, path, names, have, sync_node);
}

static int sync_node(struct store_mirror *m, const char *path)
{
	_cleanup_free_ char *data = NULL, *p = fs_path(m, path), *dotdata = NULL;
	_cleanup_strv_free_ char **names = NULL;
	struct store_stat st;
	size_t len;
	int r;

	if (!p)
		return -ENOMEM;
	r = store_get(m->s, path, &data, &len, &st, m->watch ? on_data : NULL, m);
	if (r == -ENOENT)
		return remove_entry(m, path);
	if (r < 0)
		return r;
	r = store_children(m->s, path, &names, m->watch ? on_children : NULL, m);
	if (r == -ENOENT)
		return remove_entry(m, path);
	if (r < 0)
		return r;
	if (!is_root(m, path) && !names[0]) {
		/* a leaf: a file */
		if (is_dir(p) && (r = rm_rf(p)) < 0)
			return r;
		mark_modified(m);
		return write_file(m, p, data, len, st.mtime_ms);
	}
	if (!is_dir(p)) {
		unlink(p); /* was a leaf */
		r = mkdir_p(p, 0755);
		if (r < 0)
			return r;
		mark_modified(m);
	}
	dotdata = strdup_printf("%s/.data", p);
	if (!dotdata)
		return -ENOMEM;
	if (len) {
		r = write_file(m, dotdata, data, len, st.mtime_ms);
		if (r < 0)
			return r;
	} else
		unlink(dotdata);
	r = sync_children(m, path, names);
	if (r < 0)
		return r;
	if (!m->watch) {
		_cleanup_free_ char *done = strdup_printf("%s/.done", p);
		if (!done)
			return -ENOMEM;
		r = touch(done);
	}
	return r;
}

static void fail(struct store_mirror *m, int r)
{
	if (r < 0 && !m->error)
		m->error = r;
}

static void on_data(struct store *s, enum store_event ev, const char *path, void *userdata)
{
	struct store_mirror *m = userdata;

	fail(m, ev == STORE_EVENT_DELETED ? remove_entry(m, path) : sync_node(m, path));
}

static void on_children(struct store *s, enum store_event ev, const char *path, void *userdata)
{
	struct store_mirror *m = userdata;
	_cleanup_strv_free_ char **names = NULL;
	_cleanup_free_ char *p = NULL;
	int r;

	if (ev == STORE_EVENT_DELETED) {
		fail(m, remove_entry(m, path));
		return;
	}
	p = fs_path(m, path);
	if (!p) {
		fail(m, -ENOMEM);
		return;
	}
	if (!is_dir(p)) { /* a leaf got children: it becomes a directory */
		fail(m, sync_node(m, path));
		return;
	}
	r = store_children(s, path, &names, on_children, m);
	if (r == -ENOENT) {
		fail(m, remove_entry(m, path));
		return;
	}
	if (r < 0) {
		fail(m, r);
		return;
	}
	if (!names[0] && !is_root(m, path)) { /* lost its last child: back to a file */
		fail(m, sync_node(m, path));
		return;
	}
	fail(m, sync_children(m, path, names));
}

int store_mirror_new(struct store *s, const char *dir, char *const *paths, bool watch, struct store_mirror **ret,
		     struct error *err)
{
	struct store_mirror *m;
	_cleanup_free_ char *tmp = NULL;
	int r;

	for (char *const *p = paths; p && *p; p++)
		if (!store_path_valid(*p))
			return error_set(err, ERR_PERM, EINVAL, "mirror: bad store path '%s'", *p);
	m = calloc(1, sizeof(*m));
	if (!m)
		return error_sys(err, ENOMEM, "mirror");
	m->s = s;
	m->watch = watch;
	m->dir = strdup(dir);
	m->paths = strv_new();
	for (char *const *p = paths; p && *p && m->paths; p++)
		if (strv_extend(&m->paths, *p) < 0)
			break;
	tmp = m->dir ? strdup_printf("%s/.tmp", m->dir) : NULL;
	if (!m->dir || !m->paths || !tmp || strv_length(m->paths) != strv_length((char **)paths)) {
		store_mirror_free(m);
		return error_sys(err, ENOMEM, "mirror");
	}
	r = mkdir_p(tmp, 0755);
	if (r < 0) {
		store_mirror_free(m);
		return error_sys(err, -r, "mirror: cannot create %s", tmp);
	}
	*ret = m;
	return 0;
}

int store_mirror_sync(struct store_mirror *m, struct error *err)
{
	_cleanup_free_ char *mod = strdup_printf("%s/.modified", m->dir);
	int r;

	if (!mod)
		return error_sys(err, ENOMEM, "mirror");
	for (char **p = m->paths; *p; p++) {
		r = sync_node(m, *p);
		if (r < 0)
			return error_set(err, store_error_code(r), -r,
					 "mirror: syncing %s: %s", *p, store_strerror(r));
	}
	m->synced = true;
	r = touch(mod);
	if (r < 0)
		return error_sys(err, -r, "mirror: %s", mod);
	return 0;
}

int store_mirror_error(const struct store_mirror *m)
{
	return m->error;
}

void store_mirror_free(struct store_mirror *m)
{
	if (!m)
		return;
	free(m->dir);
	strv_free(m->paths);
	free(m);
}
