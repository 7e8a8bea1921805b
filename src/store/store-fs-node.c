/* store-fs-node.c: the embedded store's node files: reading and writing a node
 * (.node header + data), its counters, the tree walk, the tree and format
 * files.  Layout and atomicity: store-fs.c. */
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "../basic/fileio.h"
#include "../basic/util.h"
#include "store-fs-internal.h"

/* ---- small helpers ------------------------------------------------------- */

/* "tree/a/b" for "/a/b", "tree" for "/", with an optional "/<suffix>". */
char *store_fs_rel(const char *path, const char *suffix)
{
	const char *p = strcmp(path, "/") ? path : "";

	return suffix ? strdup_printf("tree%s/%s", p, suffix) : strdup_printf("tree%s", p);
}

static char *tmp_name(const char *parent_rel, const char *kind)
{
	static unsigned counter;

	return strdup_printf("%s/.%s.%d.%u.%" PRIx64, parent_rel, kind, (int)getpid(),
			     __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED), (uint64_t)now_ms());
}

int store_fs_fsync_at(int dfd, const char *rel)
{
	_cleanup_close_ int fd = openat(dfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || fsync(fd) < 0)
		return negerrno();
	return 0;
}

static int fmt_hdr(char *buf, size_t size, const struct fs_hdr *h)
{
	return snprintf(buf, size, "N1 %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 "\n", h->version, h->ctime_ms,
			h->mtime_ms, h->owner);
}

/* Create a new node file holding header + data, fsync'd unless !sync. */
static int write_node_file(int dfd, const char *rel, const struct fs_hdr *h, const void *data, size_t len,
			   bool sync)
{
	char hdr[128];
	struct iovec iov[2] = { { hdr, (size_t)fmt_hdr(hdr, sizeof(hdr), h) }, { (void *)data, len } };

	return write_file_new_at(dfd, rel, iov, 2, 0644, sync);
}

/* A step's fsync: skipped while a durable journal covers the step. */
static int step_sync_at(struct fs_store *fs, const char *rel)
{
	return fs->journalled ? 0 : store_fs_fsync_at(fs->dfd, rel);
}

bool store_fs_is_dir_at(int dfd, const char *rel)
{
	struct stat st;

	return fstatat(dfd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

/* A handle on directory dir (see store-fs-internal.h). */
struct fs_store *store_fs_new(const char *dir, const struct store_options *opts)
{
	struct fs_store *fs = store_alloc(sizeof(*fs), &store_backend_fs, opts);

	if (!fs)
		return NULL;
	fs->dfd = fs->lock_fd = fs->session_fd = fs->wal_fd = fs->epoll_fd = fs->inotify_fd = fs->sessions_wd = -1;
	fs->dir = strdup(dir);
	if (!fs->dir) {
		free(fs);
		return NULL;
	}
	for (size_t l = strlen(fs->dir); l > 1 && fs->dir[l - 1] == '/'; l--)
		fs->dir[l - 1] = 0;
	return fs;
}

/* ---- reading nodes (lock-free) ------------------------------------------- */

int store_fs_node_read(struct fs_store *fs, const char *path, struct fs_hdr *h, char **ret_data, size_t *ret_len)
{
	_cleanup_free_ char *rel = store_fs_rel(path, NODE_FILE), *buf = NULL;
	struct fs_hdr x;
	size_t len;
	char *nl;
	int r;

	if (!rel)
		return -ENOMEM;
	r = read_file_at(fs->dfd, rel, &buf, &len);
	if (r == -ENOTDIR)
		r = -ENOENT;
	if (r < 0)
		return r;
	nl = memchr(buf, '\n', len);
	if (!nl || sscanf(buf, "N1 %" SCNd64 " %" SCNd64 " %" SCNd64 " %" SCNd64, &x.version, &x.ctime_ms,
			  &x.mtime_ms, &x.owner) != 4)
		return -EIO;
	if (h)
		*h = x;
	if (ret_data || ret_len) {
		size_t off = (size_t)(nl + 1 - buf);
		memmove(buf, nl + 1, len - off + 1); /* with the NUL */
		if (ret_len)
			*ret_len = len - off;
		if (ret_data)
			*ret_data = TAKE_PTR(buf);
	}
	return 0;
}

/* Counters (.cversion, .cseq) are symlinks whose target is the decimal value:
 * a short symlink lives in the inode, so the counter is metadata, made durable
 * by the directory fsync of the commit that follows, with no data block to
 * flush.  A value is decimal digits only, at most SEQ_MAX (sequential names
 * carry 10 digits); anything else is corrupt. */
static int parse_counter(const char *s, int64_t *ret)
{
	int64_t v;

	if (!*s || strlen(s) > 10 || strspn(s, "0123456789") != strlen(s) || safe_atoi64(s, &v) < 0)
		return -EIO;
	*ret = v;
	return 0;
}

/* 0 and the value, -ENOENT if absent, -EIO if corrupt. */
static int counter_read(struct fs_store *fs, const char *path, const char *file, int64_t *ret)
{
	_cleanup_free_ char *rel = store_fs_rel(path, file), *buf = NULL;
	char link[32];
	ssize_t n;
	int r;

	if (!rel)
		return -ENOMEM;
	n = readlinkat(fs->dfd, rel, link, sizeof(link) - 1);
	if (n >= 0) {
		link[n] = 0;
		return parse_counter(link, ret);
	}
	if (errno == ENOENT || errno == ENOTDIR)
		return -ENOENT;
	if (errno != EINVAL)
		return negerrno();
	r = read_file_at(fs->dfd, rel, &buf, NULL); /* a regular file (older stores) */
	if (r < 0)
		return r == -ENOTDIR ? -ENOENT : r;
	buf[strcspn(buf, "\n")] = 0;
	return parse_counter(buf, ret);
}

/* 1 + the largest 10-digit suffix among the children of path, 0 if none. */
static int64_t children_seq_next(struct fs_store *fs, const char *path)
{
	_cleanup_free_ char *rel = store_fs_rel(path, NULL);
	_cleanup_strv_free_ char **names = NULL;
	int64_t next = 0;

	if (!rel || dir_list_at(fs->dfd, rel, 1, &names) < 0)
		return 0;
	for (char **n = names; *n; n++) {
		size_t l = strlen(*n);
		int64_t v;

		if (l >= 10 && strspn(*n + l - 10, "0123456789") == 10 && parse_counter(*n + l - 10, &v) == 0)
			next = MAX(next, v + 1);
	}
	return next;
}

/* The child change counter of path, never lower than a sequence number
 * already handed out: the larger of .cversion and .cseq (the high-water mark
 * of sequential names, written with each sequential create).  When one of
 * them is corrupt it is recovered from the other and from the children's
 * sequence numbers; *ret_bad (may be NULL) then says so. */
int64_t store_fs_cversion_x(struct fs_store *fs, const char *path, bool *ret_bad)
{
	int64_t cv = 0, seq = 0;
	int r1 = counter_read(fs, path, CVER_FILE, &cv), r2 = counter_read(fs, path, CSEQ_FILE, &seq);
	bool bad = (r1 < 0 && r1 != -ENOENT) || (r2 < 0 && r2 != -ENOENT);
	int64_t v = MAX(r1 == 0 ? cv : 0, r2 == 0 ? seq : 0);

	if (bad)
		v = MAX(v, children_seq_next(fs, path));
	if (ret_bad)
		*ret_bad = bad;
	return v;
}

int64_t store_fs_cversion(struct fs_store *fs, const char *path)
{
	return store_fs_cversion_x(fs, path, NULL);
}

int64_t store_fs_count_children(struct fs_store *fs, const char *path)
{
	_cleanup_free_ char *rel = store_fs_rel(path, NULL);
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	int fd;
	int64_t n = 0;

	if (!rel)
		return 0;
	fd = openat(fs->dfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (dir_fdopen(fd, &d) < 0)
		return 0;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	return n;
}

void store_fs_fill_stat(struct fs_store *fs, const char *path, const struct fs_hdr *h, size_t len,
			struct store_stat *st)
{
	*st = (struct store_stat){
		.version = h->version,
		.cversion = store_fs_cversion(fs, path),
		.ctime_ms = h->ctime_ms,
		.mtime_ms = h->mtime_ms,
		.ephemeral_owner = h->owner,
		.num_children = (int32_t)store_fs_count_children(fs, path),
		.data_length = (int32_t)len,
	};
}

/* ---- writing nodes (under the lock) -------------------------------------- */

/* Make `path` exist with this header and data (replacing .node if it exists). */
int store_fs_put_node(struct fs_store *fs, const char *path, const struct fs_hdr *h, const void *data, size_t len)
{
	_cleanup_free_ char *rel = store_fs_rel(path, NULL), *parent = NULL, *prel = NULL, *tmp = NULL, *file = NULL;
	int r;

	if (!rel)
		return -ENOMEM;
	if (store_fs_is_dir_at(fs->dfd, rel)) {
		_cleanup_free_ char *final = store_fs_rel(path, NODE_FILE);
		char hdr[128];
		struct iovec iov[2] = { { hdr, (size_t)fmt_hdr(hdr, sizeof(hdr), h) }, { (void *)data, len } };

		tmp = tmp_name(rel, "node");
		if (!tmp || !final)
			return -ENOMEM;
		/* while a durable journal covers the step, neither fsync */
		return write_file_atomic_full_at(fs->dfd, final, tmp, iov, 2, 0644, NULL,
						 fs->journalled ? WRITE_ATOMIC_NO_SYNC | WRITE_ATOMIC_NO_DIR_SYNC : 0);
	}
	parent = store_path_parent(path);
	prel = parent ? store_fs_rel(parent, NULL) : NULL;
	tmp = prel ? tmp_name(prel, "tmp") : NULL;
	file = tmp ? strdup_printf("%s/%s", tmp, NODE_FILE) : NULL;
	if (!file)
		return -ENOMEM;
	if (mkdirat(fs->dfd, tmp, 0755) < 0)
		return negerrno();
	r = write_node_file(fs->dfd, file, h, data, len, !fs->journalled);
	if (r >= 0 && !fs->ordered_meta)
		r = step_sync_at(fs, tmp);
	if (r >= 0 && renameat(fs->dfd, tmp, fs->dfd, rel) < 0)
		r = negerrno();
	if (r < 0) {
		_cleanup_free_ char *abs = strdup_printf("%s/%s", fs->dir, tmp);
		if (abs)
			rm_rf(abs);
		return r;
	}
	return step_sync_at(fs, prel);
}

/* Make `path` not exist (with anything below it). */
int store_fs_del_node(struct fs_store *fs, const char *path)
{
	_cleanup_free_ char *rel = store_fs_rel(path, NULL), *parent = NULL, *prel = NULL, *tmp = NULL, *abs = NULL;
	int r;

	parent = store_path_parent(path);
	prel = parent ? store_fs_rel(parent, NULL) : NULL;
	tmp = prel ? tmp_name(prel, "del") : NULL;
	if (!rel || !tmp)
		return -ENOMEM;
	if (renameat(fs->dfd, rel, fs->dfd, tmp) < 0)
		return errno == ENOENT || errno == ENOTDIR ? 0 : negerrno();
	r = step_sync_at(fs, prel);
	abs = strdup_printf("%s/%s", fs->dir, tmp);
	if (abs)
		rm_rf(abs);
	return r;
}

/* The new counter (a symlink, see store_fs_cversion) is renamed in; the directory
 * is fsync'd by the commit step that always follows in the same directory (a
 * child's rename in or out), and journalling file systems keep the two
 * renames in order, so a crash never makes the child durable without it. */
int store_fs_put_counter(struct fs_store *fs, const char *path, const char *name, int64_t cv)
{
	_cleanup_free_ char *rel = store_fs_rel(path, NULL), *file = store_fs_rel(path, name), *txt = NULL, *tmp = NULL;

	txt = strdup_printf("%" PRId64, cv);
	tmp = rel ? tmp_name(rel, "cver") : NULL;
	if (!rel || !file || !txt || !tmp)
		return -ENOMEM;
	if (!store_fs_is_dir_at(fs->dfd, rel))
		return 0; /* deleted by a later step */
	return symlink_atomic_at(txt, fs->dfd, file, tmp);
}

/* Call fn on path and each node below it, parents first, children in name
 * order; fn returns < 0 to stop, 1 to skip the node's children. */
int store_fs_tree_walk(struct fs_store *fs, const char *path, int (*fn)(struct fs_store *fs, const char *path, void *ud),
		     void *ud)
{
	_cleanup_free_ char *rel = store_fs_rel(path, NULL);
	_cleanup_strv_free_ char **names = NULL;
	int r = fn(fs, path, ud);

	if (r != 0)
		return r < 0 ? r : 0;
	if (!rel)
		return -ENOMEM;
	r = dir_list_at(fs->dfd, rel, 1, &names);
	if (r < 0)
		return r == -ENOENT || r == -ENOTDIR ? 0 : r;
	for (char **n = names; *n; n++) {
		_cleanup_free_ char *child = store_path_child(path, *n);
		if (!child)
			return -ENOMEM;
		if ((r = store_fs_tree_walk(fs, child, fn, ud)) < 0)
			return r;
	}
	return 0;
}

/* ---- the tree and the format file ---------------------------------------- */

int store_fs_init_tree(struct fs_store *fs)
{
	struct fs_hdr h = { 0, now_ms(), now_ms(), 0 };
	_cleanup_free_ char *abs = NULL;
	int r;

	if (store_fs_is_dir_at(fs->dfd, "tree"))
		return 0;
	abs = strdup_printf("%s/.tree.tmp", fs->dir);
	if (!abs)
		return -ENOMEM;
	rm_rf(abs);
	if (mkdirat(fs->dfd, ".tree.tmp", 0755) < 0)
		return negerrno();
	r = write_node_file(fs->dfd, ".tree.tmp/" NODE_FILE, &h, NULL, 0, true);
	if (r < 0)
		return r;
	if ((r = store_fs_fsync_at(fs->dfd, ".tree.tmp")) < 0)
		return r;
	if (renameat(fs->dfd, ".tree.tmp", fs->dfd, "tree") < 0)
		return negerrno();
	return fsync(fs->dfd) < 0 ? negerrno() : 0;
}


/* DIR/format must say FS_FORMAT; absent (a store older than the file) it is
 * written when writable.  Unknown: a permanent error naming both. */
int store_fs_format_check(struct fs_store *fs, bool write, struct error *err)
{
	_cleanup_free_ char *buf = NULL;
	size_t len;
	int r = read_file_at(fs->dfd, "format", &buf, &len);

	if (r == -ENOENT)
		return write ? write_file_atomic_at(fs->dfd, "format", FS_FORMAT "\n", strlen(FS_FORMAT) + 1, 0644) : 0;
	if (r < 0)
		return error_sys(err, -r, "store: %s/format", fs->dir);
	if (len && buf[len - 1] == '\n')
		buf[--len] = 0;
	if (strlen(buf) == len && !strcmp(buf, FS_FORMAT))
		return 0;
	for (size_t i = 0; i < len; i++) /* one printable line in the message */
		if (buf[i] < 0x20 || buf[i] > 0x7e)
			buf[i] = '?';
	return error_set(err, ERR_PERM, EPROTO, "store: %s/format: unknown store format '%.64s' (expected '%s')",
			 fs->dir, buf, FS_FORMAT);
}
