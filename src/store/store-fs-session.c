/* store-fs-session.c: the embedded store's sessions: our own (created, removed),
 * other handles' (watched by pidfd, reaped with their ephemerals when their
 * owner dies), the registry of this process's sessions, and the cleanup of
 * what a killed writer left. */
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "../basic/fileio.h"
#include "../basic/util.h"
#include "store-fs-internal.h"

/* ---- process-wide registry of our own sessions ---------------------------
 * A POSIX lock is invisible to F_GETLK from the owning process and is dropped
 * when the process closes any fd of the file, so we never probe our own
 * session files: we recognise them here. */
struct reg_entry {
	dev_t dev;
	ino_t ino;
	pid_t pid;
	int64_t id;
};
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct reg_entry *reg;
static size_t n_reg;

static int reg_key(struct fs_store *fs, dev_t *dev, ino_t *ino)
{
	struct stat st;

	if (fstat(fs->dfd, &st) < 0)
		return negerrno();
	*dev = st.st_dev;
	*ino = st.st_ino;
	return 0;
}

static int reg_add(struct fs_store *fs, int64_t id)
{
	struct reg_entry e = { .pid = getpid(), .id = id }, *t;
	int r = reg_key(fs, &e.dev, &e.ino);

	if (r < 0)
		return r;
	pthread_mutex_lock(&reg_lock);
	t = realloc(reg, (n_reg + 1) * sizeof(*reg));
	if (t) {
		reg = t;
		reg[n_reg++] = e;
	}
	pthread_mutex_unlock(&reg_lock);
	return t ? 0 : -ENOMEM;
}

void store_fs_reg_remove(struct fs_store *fs, int64_t id)
{
	dev_t dev;
	ino_t ino;

	if (reg_key(fs, &dev, &ino) < 0)
		return;
	pthread_mutex_lock(&reg_lock);
	for (size_t i = 0; i < n_reg; i++)
		if (reg[i].dev == dev && reg[i].ino == ino && reg[i].id == id) {
			reg[i] = reg[--n_reg];
			break;
		}
	if (n_reg == 0) {
		free(reg);
		reg = NULL;
	}
	pthread_mutex_unlock(&reg_lock);
}

static bool reg_has(struct fs_store *fs, int64_t id, pid_t pid)
{
	dev_t dev;
	ino_t ino;
	bool found = false;

	if (pid != getpid() || reg_key(fs, &dev, &ino) < 0)
		return false;
	pthread_mutex_lock(&reg_lock);
	for (size_t i = 0; i < n_reg; i++)
		if (reg[i].dev == dev && reg[i].ino == ino && reg[i].id == id && reg[i].pid == pid)
			found = true;
	pthread_mutex_unlock(&reg_lock);
	return found;
}

/* ---- sessions ------------------------------------------------------------ */

static int parse_session_name(const char *name, int64_t *id, pid_t *pid)
{
	const char *dash = strchr(name, '-');
	_cleanup_free_ char *a = NULL;
	int p;

	if (!dash || name[0] == '.')
		return -EINVAL;
	a = strndup(name, (size_t)(dash - name));
	if (!a)
		return -ENOMEM;
	if (safe_atoi64(a, id) < 0 || safe_atoi(dash + 1, &p) < 0 || *id <= 0 || p <= 0)
		return -EINVAL;
	*pid = p;
	return 0;
}

/* 1 if the session file is locked by a live process (returning its pid), 0 if
 * not, -ENOENT if gone. */
static int session_alive(struct fs_store *fs, const char *name, pid_t *ret_pid)
{
	_cleanup_free_ char *rel = strdup_printf("sessions/%s", name);
	_cleanup_close_ int fd = -1;
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

	if (!rel)
		return -ENOMEM;
	fd = openat(fs->dfd, rel, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return negerrno();
	if (fcntl(fd, F_GETLK, &fl) < 0)
		return negerrno();
	if (fl.l_type == F_UNLCK)
		return 0;
	if (ret_pid)
		*ret_pid = fl.l_pid;
	return 1;
}

/* Delete a session's ephemerals and its files.  Under the lock. */
int store_fs_session_remove(struct fs_store *fs, int64_t id, const char *name)
{
	_cleanup_free_ char *eph = strdup_printf("sessions/%" PRId64 ".eph", id), *buf = NULL;
	_cleanup_free_ char *rel = strdup_printf("sessions/%s", name);
	size_t len = 0;
	int r;

	if (!eph || !rel)
		return -ENOMEM;
	r = read_file_at(fs->dfd, eph, &buf, &len);
	if (r < 0 && r != -ENOENT)
		return r;
	{
		_cleanup_strv_free_ char **paths = NULL;
		size_t n = 0;

		for (size_t off = 0; r >= 0 && off < len;) {
			const char *p = buf + off;
			size_t l = strnlen(p, len - off);
			if (l < len - off && store_path_valid(p) && strv_extend(&paths, p) >= 0)
				n++;
			off += l + 1;
		}
		if (n && (r = store_fs_delete_ephemerals(fs, paths, n, id)) < 0)
			return r; /* keep the index: the next reaper retries */
	}
	unlinkat(fs->dfd, eph, 0);
	unlinkat(fs->dfd, rel, 0);
	store_fs_fsync_at(fs->dfd, "sessions");
	return 0;
}

static bool is_garbage(const char *name)
{
	return startswith(name, ".tmp.") || startswith(name, ".del.") || startswith(name, ".node.") ||
	       startswith(name, ".cver.");
}

/* Remove what a writer killed mid-operation left: temporary files and
 * directories (all writes happen under the lock, so under the lock every
 * such entry is garbage).  Walks the whole tree: only done after a dead
 * session is reaped. */
static void tree_cleanup_at(struct fs_store *fs, int dfd, const char *abs)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;

	if (dir_fdopen(dfd, &d) < 0)
		return;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (de->d_name[0] == '.') {
			if (is_garbage(de->d_name)) {
				_cleanup_free_ char *p = strdup_printf("%s/%s", abs, de->d_name);
				if (p)
					rm_rf(p);
			}
			continue;
		}
		{
			_cleanup_free_ char *p = strdup_printf("%s/%s", abs, de->d_name);
			int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (fd >= 0 && p)
				tree_cleanup_at(fs, fd, p);
			else if (fd >= 0)
				close(fd);
		}
	}
}

static void tree_cleanup(struct fs_store *fs)
{
	_cleanup_free_ char *abs = strdup_printf("%s/tree", fs->dir);
	_cleanup_strv_free_ char **root = NULL;
	int fd;

	if (!abs)
		return;
	fd = openat(fs->dfd, "tree", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0)
		tree_cleanup_at(fs, fd, abs);
	if (dir_list_at(fs->dfd, ".", 0, &root) < 0)
		return;
	for (char **n = root; *n; n++)
		if (startswith(*n, ".journal.tmp") || startswith(*n, ".next-session.tmp") || startswith(*n, ".format.tmp") ||
		    startswith(*n, ".tree.tmp"))
			unlinkat(fs->dfd, *n, 0);
}

/* Reap a session if its owner is dead.  Takes the lock unless locked. */
int store_fs_session_reap(struct fs_store *fs, const char *name, bool locked)
{
	int64_t id;
	pid_t pid;
	int r;

	if (parse_session_name(name, &id, &pid) < 0 || reg_has(fs, id, pid))
		return 0;
	if (!locked && (r = store_fs_lock(fs)) < 0)
		return r;
	r = session_alive(fs, name, NULL);
	if (r == 0) {
		r = store_fs_session_remove(fs, id, name);
		tree_cleanup(fs); /* it may have died in the middle of a write */
	} else if (r == -ENOENT)
		r = 0;
	if (!locked)
		store_fs_unlock(fs);
	return r;
}

void store_fs_peer_drop(struct fs_store *fs, size_t i)
{
	epoll_ctl(fs->epoll_fd, EPOLL_CTL_DEL, fs->peers[i].pidfd, NULL);
	close(fs->peers[i].pidfd);
	free(fs->peers[i].name);
	fs->peers[i] = fs->peers[--fs->n_peers];
}

/* A session file appeared or was found: watch its owner, or reap it now. */
int store_fs_peer_add(struct fs_store *fs, const char *name, bool locked)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct fs_peer *n;
	int64_t id;
	pid_t pid, holder = 0;
	int pidfd, r;

	if (parse_session_name(name, &id, &pid) < 0 || id == fs->session_id || reg_has(fs, id, pid))
		return 0;
	for (size_t i = 0; i < fs->n_peers; i++)
		if (fs->peers[i].id == id)
			return 0;
	if (fs->epoll_fd < 0) { /* not dispatching: only reap if dead */
		r = session_alive(fs, name, NULL);
		return r == 0 ? store_fs_session_reap(fs, name, locked) : 0;
	}
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	r = session_alive(fs, name, &holder);
	if (r <= 0 || pidfd < 0 || holder != pid) {
		if (pidfd >= 0)
			close(pidfd);
		if (r == -ENOENT)
			return 0;
		if (r == 0)
			return store_fs_session_reap(fs, name, locked);
		if (r < 0)
			return r;
		/* Alive but not watchable by pid (other pid namespace): checked again by the sweep of
		 * the next store_open; nothing better to do without a pid. */
		return 0;
	}
	n = realloc(fs->peers, (fs->n_peers + 1) * sizeof(*fs->peers));
	if (!n) {
		close(pidfd);
		return -ENOMEM;
	}
	fs->peers = n;
	n[fs->n_peers] = (struct fs_peer){ id, pidfd, strdup(name) };
	if (!n[fs->n_peers].name) {
		close(pidfd);
		return -ENOMEM;
	}
	ev.data.u64 = (uint64_t)id;
	if (epoll_ctl(fs->epoll_fd, EPOLL_CTL_ADD, pidfd, &ev) < 0) {
		r = negerrno();
		close(pidfd);
		free(n[fs->n_peers].name);
		return r;
	}
	fs->n_peers++;
	return 0;
}

/* Look at every session file: reap the dead, watch the live. */
int store_fs_sessions_sweep(struct fs_store *fs, bool locked)
{
	_cleanup_strv_free_ char **names = NULL;
	int r;

	r = dir_list_at(fs->dfd, "sessions", 0, &names);
	if (r < 0)
		return r;
	for (char **n = names; *n; n++) {
		if (startswith(*n, ".tmp-") && locked) { /* creation is under the lock: leftovers are dead */
			_cleanup_free_ char *rel = strdup_printf("sessions/%s", *n);
			if (rel)
				unlinkat(fs->dfd, rel, 0);
			continue;
		}
		if (endswith(*n, ".eph")) {
			/* an index without its session file: the session was removed half-way */
			_cleanup_free_ char *id = strndup(*n, strlen(*n) - 4);
			bool found = false;
			for (char **m = names; id && *m; m++)
				if (startswith(*m, id) && (*m)[strlen(id)] == '-')
					found = true;
			if (!found && id && locked) {
				int64_t v;
				if (safe_atoi64(id, &v) == 0)
					store_fs_session_remove(fs, v, "");
			}
			continue;
		}
		store_fs_peer_add(fs, *n, locked);
	}
	return 0;
}

/* next-session: 0 and the id, -ENOENT if absent, -EIO if corrupt. */
int store_fs_session_counter_read(struct fs_store *fs, int64_t *ret)
{
	_cleanup_free_ char *buf = NULL;
	size_t len;
	int r = read_file_at(fs->dfd, "next-session", &buf, &len);

	if (r < 0)
		return r;
	if (len && buf[len - 1] == '\n')
		buf[--len] = 0;
	if (strlen(buf) != len || !len || strspn(buf, "0123456789") != len || safe_atoi64(buf, ret) < 0 || *ret <= 0)
		return -EIO;
	return 0;
}

static int max_owner(struct fs_store *fs, const char *path, void *ud)
{
	struct fs_hdr h;

	if (store_fs_node_read(fs, path, &h, NULL, NULL) == 0 && h.owner > *(int64_t *)ud)
		*(int64_t *)ud = h.owner;
	return 0;
}

/* A corrupt next-session counter: 1 + the largest session id still in use,
 * by a session file or as the owner of an ephemeral node, so no live or
 * unreaped session's id is given out again. */
int64_t store_fs_session_counter_recover(struct fs_store *fs)
{
	_cleanup_strv_free_ char **names = NULL;
	int64_t top = 0, v;

	if (dir_list_at(fs->dfd, "sessions", 0, &names) >= 0)
		for (char **n = names; *n; n++) {
			const char *p = startswith(*n, ".tmp-") ? *n + 5 : *n;
			_cleanup_free_ char *id = strndup(p, strspn(p, "0123456789"));
			if (id && safe_atoi64(id, &v) == 0 && v > top)
				top = v;
		}
	(void)store_fs_tree_walk(fs, "/", max_owner, &top);
	return top + 1;
}

int store_fs_session_create(struct fs_store *fs)
{
	_cleanup_free_ char *buf = NULL, *txt = NULL, *tmp = NULL, *name = NULL, *final = NULL;
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	int64_t id = 1;
	int r, fd;

	r = store_fs_session_counter_read(fs, &id);
	if (r == -EIO)
		id = store_fs_session_counter_recover(fs); /* rewritten below */
	else if (r < 0 && r != -ENOENT)
		return r;
	txt = strdup_printf("%" PRId64 "\n", id + 1);
	tmp = strdup_printf("sessions/.tmp-%" PRId64, id);
	name = strdup_printf("%" PRId64 "-%d", id, (int)getpid());
	final = name ? strdup_printf("sessions/%s", name) : NULL;
	if (!txt || !tmp || !final)
		return -ENOMEM;
	r = write_file_atomic_at(fs->dfd, "next-session", txt, strlen(txt), 0644);
	if (r < 0)
		return r;
	fd = openat(fs->dfd, tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return negerrno();
	if (fcntl(fd, F_SETLK, &fl) < 0 || renameat(fs->dfd, tmp, fs->dfd, final) < 0) {
		r = negerrno();
		close(fd);
		unlinkat(fs->dfd, tmp, 0);
		return r;
	}
	store_fs_fsync_at(fs->dfd, "sessions");
	fs->session_fd = fd;
	fs->session_id = id;
	fs->session_name = TAKE_PTR(name);
	return reg_add(fs, id);
}

/* inotify, epoll and the pidfds of other sessions' owners are set up on first
 * need (a watch, store_fd, store_dispatch): short-lived processes such as the
 * CLI hold no inotify instance (there are only 128 per user). */
int store_fs_events(struct fs_store *fs)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0 };
	_cleanup_free_ char *sessions = NULL;
	int r;

	if (fs->epoll_fd >= 0)
		return 0;
	sessions = strdup_printf("%s/sessions", fs->dir);
	if (!sessions)
		return -ENOMEM;
	fs->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	fs->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (fs->inotify_fd < 0 || fs->epoll_fd < 0 || epoll_ctl(fs->epoll_fd, EPOLL_CTL_ADD, fs->inotify_fd, &ev) < 0)
		goto fail;
	if (fs->read_only)
		return 0; /* no session: other sessions' deaths are not ours to reap */
	/* Watch for new sessions before sweeping, so none is missed. */
	fs->sessions_wd = inotify_add_watch(fs->inotify_fd, sessions,
					    IN_MOVED_TO | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR);
	if (fs->sessions_wd < 0)
		goto fail;
	store_fs_sessions_sweep(fs, false);
	return 0;
fail:
	r = negerrno();
	if (fs->inotify_fd >= 0)
		close(fs->inotify_fd);
	if (fs->epoll_fd >= 0)
		close(fs->epoll_fd);
	fs->inotify_fd = fs->epoll_fd = fs->sessions_wd = -1;
	return r;
}
