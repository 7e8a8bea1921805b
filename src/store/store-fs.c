/* store-fs.c: the embedded store backend, a node tree kept in a directory.
 *
 * Layout of the store directory DIR (details in docs/STORE.md):
 *   DIR/format              "treadle-store 1"
 *   DIR/lock                flock()ed by every mutation (reads take no lock); its
 *                           first page holds the wal positions, mapped shared
 *   DIR/wal                 write-ahead log: one record per transaction
 *   DIR/journal             legacy intent journal of older versions (replayed if found)
 *   DIR/next-session        session id counter
 *   DIR/sessions/<id>-<pid> one per open handle, POSIX-locked (F_SETLK) by its owner
 *   DIR/sessions/<id>.eph   NUL-separated paths of the ephemerals that session created
 *   DIR/tree/               the root node; every node is a directory holding
 *        .node              "N1 <version> <ctime_ms> <mtime_ms> <owner>\n" + data
 *        .cversion          child change counter (absent = 0)
 *        <child>/           child nodes (names never start with '.')
 *
 * Atomicity: every mutation is validated under the lock and appended to the
 * wal as one record of final states; group commit (store-fs-journal.c) makes
 * it durable with one fdatasync shared by every concurrent writer, then it is
 * applied to the tree without fsyncs: a node appears by renaming a complete
 * temporary directory into place, its data changes by renaming a new .node
 * over the old one and it goes by renaming it to a '.del.*' name before
 * removing it.  The tree is never ahead of the durable wal; a record left
 * unapplied by a kill is applied by the next writer or open, and after a
 * reboot the first open replays the whole wal (idempotent: each step assigns
 * a final state).

 * Sessions: the session file is locked with a POSIX record lock, which dies
 * with the process (even on SIGKILL) and, unlike flock(), is not inherited by
 * fork()ed children.  Other handles watch the owner pid with a pidfd and
 * confirm death with F_GETLK before reaping its ephemerals.
 *
 * Watches: one inotify instance per handle; a data watch watches the node's
 * directory (".node" renamed in = changed, directory moved away = deleted) or,
 * for a missing node, its deepest existing ancestor until the node appears.
 *
 * Files: this one (open, close, the operations), store-fs-node.c (node files,
 * counters, format), store-fs-journal.c (transactions, intent journal, lock),
 * store-fs-session.c (sessions, ephemerals, reaping), store-fs-watch.c
 * (watches, dispatch), store-fs-fsck.c (fsck); shared: store-fs-internal.h.
 */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/vfs.h>
#include <linux/magic.h>

#include "../basic/fileio.h"
#include "../basic/util.h"
#include "store-fs-internal.h"

/* ---- open / close -------------------------------------------------------- */

/* 0 if DIR/journal is absent or valid, -EIO if it is not an intent journal. */
static int journal_check(struct fs_store *fs)
{
	_cleanup_free_ char *buf = NULL;
	size_t len;
	int r = read_file_at(fs->dfd, "journal", &buf, &len);

	if (r < 0)
		return r == -ENOENT ? 0 : r;
	r = store_fs_journal_check(buf, len);
	return r < 0 ? r : 0;
}

static void fs_close(struct store *s)
{
	struct fs_store *fs = FS(s);

	if (fs->session_name && fs->lock_fd >= 0 && store_fs_lock(fs) >= 0) {
		store_fs_session_remove(fs, fs->session_id, fs->session_name);
		store_fs_unlock(fs);
	}
	if (fs->session_name)
		store_fs_reg_remove(fs, fs->session_id);
	while (fs->n_peers)
		store_fs_peer_drop(fs, fs->n_peers - 1);
	while (fs->n_watches)
		store_fs_watch_remove(fs, fs->n_watches - 1);
	for (size_t i = 0; i < fs->n_fired; i++)
		free(fs->fired[i].path);
	free(fs->fired);
	free(fs->watches);
	free(fs->wds);
	free(fs->peers);
	store_fs_wal_close(fs);
	closep(&fs->session_fd);
	closep(&fs->inotify_fd);
	closep(&fs->epoll_fd);
	closep(&fs->lock_fd);
	closep(&fs->dfd);
	free(fs->session_name);
	free(fs->dir);
	free(fs);
}

static int fs_open(const char *where, const struct store_options *opts, struct store **ret, struct error *err)
{
	struct fs_store *fs;
	int r;

	if (where[0] != '/')
		return error_set(err, ERR_PERM, EINVAL, "store: embedded store path must be absolute: '%s'", where);
	fs = store_fs_new(where, opts);
	if (!fs)
		return error_sys(err, ENOMEM, "store");
	if (fs->base.opts.read_only) {
		/* Only reads: no session, no lock, nothing written, so a full disk or
		 * a read-only mount does not matter.  A store not made yet is made
		 * by the ordinary open below. */
		fs->dfd = open(fs->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fs->dfd >= 0 && store_fs_is_dir_at(fs->dfd, "tree")) {
			fs->read_only = true;
			r = store_fs_format_check(fs, false, err);
			if (r < 0) {
				fs_close(&fs->base);
				return r;
			}
			*ret = &fs->base;
			return 0;
		}
		if (fs->dfd >= 0)
			close(fs->dfd);
		fs->dfd = -1;
	}
	r = mkdir_p(fs->dir, 0755);
	if (r < 0)
		goto fail;
	fs->dfd = open(fs->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fs->dfd < 0) {
		r = negerrno();
		goto fail;
	}
	{
		struct statfs sfs;
		/* Journalled metadata, committed in order: the commit's fsync of the parent
		 * directory also makes the new node directory's entries durable. */
		fs->ordered_meta = fstatfs(fs->dfd, &sfs) == 0 &&
				   (sfs.f_type == EXT4_SUPER_MAGIC || sfs.f_type == XFS_SUPER_MAGIC ||
				    sfs.f_type == TMPFS_MAGIC);
	}
	if (store_fs_is_dir_at(fs->dfd, "tree") && (r = store_fs_format_check(fs, false, err)) < 0) {
		fs_close(&fs->base);
		return r;
	}
	if (journal_check(fs) == -EIO) {
		error_set(err, ERR_PERM, EIO,
			  "store: %s/journal: not a valid intent journal (see it with 'treadle store fsck', set it aside "
			  "with 'treadle store fsck --repair')", fs->dir);
		fs_close(&fs->base);
		return -EIO;
	}
	if (mkdirat(fs->dfd, "sessions", 0755) < 0 && errno != EEXIST) {
		r = negerrno();
		goto fail;
	}
	fs->lock_fd = openat(fs->dfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fs->lock_fd < 0) {
		r = negerrno();
		goto fail;
	}
	r = store_fs_lock(fs);
	if (r < 0)
		goto fail;
	r = store_fs_init_tree(fs);
	if (r >= 0)
		r = store_fs_format_check(fs, true, NULL);
	if (r >= 0 && (r = store_fs_wal_open(fs)) == -EIO) {
		store_fs_unlock(fs);
		error_set(err, ERR_PERM, EIO,
			  "store: %s/wal: not a write-ahead log (see it with 'treadle store fsck', set it aside "
			  "with 'treadle store fsck --repair')", fs->dir);
		fs_close(&fs->base);
		return -EIO;
	}
	if (r >= 0)
		r = store_fs_session_create(fs);
	if (r >= 0)
		r = store_fs_sessions_sweep(fs, true);
	store_fs_unlock(fs);
	if (r < 0)
		goto fail;
	*ret = &fs->base;
	return 0;
fail:
	error_sys(err, -r, "store: cannot open embedded store %s", fs->dir ? fs->dir : where);
	fs_close(&fs->base);
	return r;
}

/* ---- state --------------------------------------------------------------- */

static enum store_state fs_state(struct store *s)
{
	return FS(s)->expired ? STORE_EXPIRED : STORE_CONNECTED;
}

static int64_t fs_session_id(struct store *s)
{
	return FS(s)->session_id;
}

/* ---- operations ---------------------------------------------------------- */

static int fs_create(struct store *s, const char *path, const void *data, size_t len, int flags, char **ret_path)
{
	struct store_op op = { STORE_OP_CREATE, path, data, len, flags, -1 };
	char *created[1] = { NULL };
	int r;

	r = store_fs_txn(FS(s), &op, 1, NULL, created);
	if (r >= 0 && ret_path)
		*ret_path = TAKE_PTR(created[0]);
	free(created[0]);
	return r;
}

static int read_node(struct fs_store *fs, const char *path, char **ret_data, size_t *ret_len,
		     struct store_stat *ret_stat)
{
	_cleanup_free_ char *data = NULL;
	struct fs_hdr h;
	size_t len;
	int r;

	r = store_fs_node_read(fs, path, &h, &data, &len);
	if (r < 0)
		return r;
	if (ret_stat)
		store_fs_fill_stat(fs, path, &h, len, ret_stat);
	if (ret_len)
		*ret_len = len;
	if (ret_data)
		*ret_data = TAKE_PTR(data);
	return 0;
}

static int fs_get(struct store *s, const char *path, char **ret_data, size_t *ret_len, struct store_stat *ret_stat,
		  store_watch_fn watch, void *userdata)
{
	struct fs_store *fs = FS(s);
	struct fs_watch *w;
	int r = 0, armed;

	if (fs->expired)
		return -ESHUTDOWN;
	if (!watch || store_fs_watch_find(fs, W_DATA, path, watch, userdata))
		return read_node(fs, path, ret_data, ret_len, ret_stat);
	w = store_fs_watch_new(fs, W_DATA, path, watch, userdata);
	if (!w)
		return -ENOMEM;
	for (int tries = 0; tries < 5; tries++) {
		armed = store_fs_watch_arm(fs, w);
		if (armed < 0) {
			store_fs_watch_drop(fs, w);
			return armed;
		}
		r = read_node(fs, path, ret_data, ret_len, ret_stat);
		if (r < 0 && r != -ENOENT) {
			store_fs_watch_drop(fs, w);
			return r;
		}
		if ((r == 0) == (armed == 1))
			return r;
		/* Changed between arming and reading: arm again to match what we return. */
		if (r == 0 && ret_data) {
			free(*ret_data);
			*ret_data = NULL;
		}
	}
	return r;
}

static int fs_exists(struct store *s, const char *path, struct store_stat *ret_stat, store_watch_fn watch,
		     void *userdata)
{
	return fs_get(s, path, NULL, NULL, ret_stat, watch, userdata);
}

static int fs_set(struct store *s, const char *path, const void *data, size_t len, int64_t version,
		  struct store_stat *ret_stat)
{
	struct store_op op = { STORE_OP_SET, path, data, len, 0, version };
	int r;

	r = store_fs_txn(FS(s), &op, 1, NULL, NULL);
	if (r >= 0 && ret_stat) {
		r = read_node(FS(s), path, NULL, NULL, ret_stat);
		if (r == -ENOENT) /* deleted right after: report what we wrote */
			r = 0;
	}
	return r;
}

static int fs_delete(struct store *s, const char *path, int64_t version)
{
	struct store_op op = { STORE_OP_DELETE, path, NULL, 0, 0, version };

	return store_fs_txn(FS(s), &op, 1, NULL, NULL);
}

static int fs_children(struct store *s, const char *path, char ***ret_names, store_watch_fn watch, void *userdata)
{
	struct fs_store *fs = FS(s);
	_cleanup_free_ char *rel = NULL;
	_cleanup_strv_free_ char **names = NULL;
	struct fs_watch *w = NULL;
	int r;

	if (fs->expired)
		return -ESHUTDOWN;
	rel = store_fs_rel(path, NULL);
	if (!rel)
		return -ENOMEM;
	if (watch && !store_fs_watch_find(fs, W_CHILD, path, watch, userdata)) {
		w = store_fs_watch_new(fs, W_CHILD, path, watch, userdata);
		if (!w)
			return -ENOMEM;
		r = store_fs_watch_arm(fs, w);
		if (r < 0) {
			store_fs_watch_drop(fs, w);
			return r;
		}
	}
	r = dir_list_at(fs->dfd, rel, 1, &names);
	if (r == -ENOTDIR)
		r = -ENOENT;
	if (r < 0) {
		if (w)
			store_fs_watch_drop(fs, w);
		return r;
	}
	if (ret_names)
		*ret_names = TAKE_PTR(names);
	return 0;
}

static int fs_multi(struct store *s, const struct store_op *ops, size_t n, size_t *ret_failed_index, char **ret_paths)
{
	return store_fs_txn(FS(s), ops, n, ret_failed_index, ret_paths);
}

const struct store_backend store_backend_fs = {
	.name = "file",
	.open = fs_open,
	.close = fs_close,
	.fd = store_fs_fd,
	.dispatch = store_fs_dispatch,
	.state = fs_state,
	.session_id = fs_session_id,
	.create = fs_create,
	.get = fs_get,
	.exists = fs_exists,
	.set = fs_set,
	.delete = fs_delete,
	.children = fs_children,
	.multi = fs_multi,
	.fsck = store_fs_fsck,
};
