/* store-fs.c: the embedded store backend, a node tree kept in a directory.
 *
 * Layout of the store directory DIR (details in docs/STORE.md):
 *   DIR/format              "treadle-store 1"
 *   DIR/lock                flock()ed by every mutation (reads take no lock)
 *   DIR/journal             intent journal of a store_multi being applied
 *   DIR/next-session        session id counter
 *   DIR/sessions/<id>-<pid> one per open handle, POSIX-locked (F_SETLK) by its owner
 *   DIR/sessions/<id>.eph   NUL-separated paths of the ephemerals that session created
 *   DIR/tree/               the root node; every node is a directory holding
 *        .node              "N1 <version> <ctime_ms> <mtime_ms> <owner>\n" + data
 *        .cversion          child change counter (absent = 0)
 *        <child>/           child nodes (names never start with '.')
 *
 * Atomicity: a node appears by renaming a complete temporary directory into
 * place, its data changes by renaming a new .node over the old one and it goes
 * by renaming it to a '.del.*' name before removing it; every step is fsync'd.
 * A single-op mutation bumps the parent's cversion before the commit rename,
 * so a crash only leaves a gap in the counter.  store_multi writes an intent
 * journal (the final state of every touched node) atomically first, applies
 * it, then removes it; whoever takes the lock next replays a leftover journal,
 * which is idempotent because each step assigns a final state.
 *
 * Sessions: the session file is locked with a POSIX record lock, which dies
 * with the process (even on SIGKILL) and, unlike flock(), is not inherited by
 * fork()ed children.  Other handles watch the owner pid with a pidfd and
 * confirm death with F_GETLK before reaping its ephemerals.
 *
 * Watches: one inotify instance per handle; a data watch watches the node's
 * directory (".node" renamed in = changed, directory moved away = deleted) or,
 * for a missing node, its deepest existing ancestor until the node appears.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <time.h>

#include "../basic/fileio.h"
#include "../basic/util.h"
#include "store-internal.h"

#define NODE_FILE ".node"
#define CVER_FILE ".cversion"
#define CSEQ_FILE ".cseq"
#define SEQ_MAX INT64_C(9999999999) /* sequential names carry 10 digits */
#define WATCH_MASK (IN_MOVED_TO | IN_MOVED_FROM | IN_MOVE_SELF | IN_DELETE_SELF | IN_ONLYDIR)

struct fs_hdr {
	int64_t version, ctime_ms, mtime_ms, owner;
};

enum { W_DATA, W_CHILD };

struct fs_watch {
	int kind;
	char *path;
	store_watch_fn fn;
	void *userdata;
	int wd;	      /* inotify watch, -1 if none */
	bool at_node; /* watching the node's own directory, else an ancestor */
	size_t at_len; /* ancestor: length of its path prefix in `path` (0 = root) */
};

struct fs_wd {
	int wd;
	unsigned refs;
};

struct fs_peer {
	int64_t id;
	int pidfd;
	char *name;
};

struct fs_fired {
	store_watch_fn fn;
	void *userdata;
	enum store_event ev;
	char *path;
};

struct fs_store {
	struct store base;
	char *dir;
	int dfd, lock_fd, session_fd;
	int64_t session_id;
	char *session_name;
	int epoll_fd, inotify_fd, sessions_wd;
	struct fs_watch **watches;
	size_t n_watches;
	struct fs_wd *wds;
	size_t n_wds;
	struct fs_peer *peers;
	size_t n_peers;
	struct fs_fired *fired;
	size_t n_fired;
	bool expired; /* our session file was removed (store deleted, or reaped): like ZooKeeper's expiry */
	bool ordered_meta; /* ext4/xfs/tmpfs: a directory fsync also commits every earlier metadata change */
	bool journalled;   /* applying a durable journal: steps skip their fsyncs (apply_journalled) */
	bool read_only;	   /* opened with store_options.read_only: no session, writes refused */
};

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

static void reg_remove(struct fs_store *fs, int64_t id)
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

/* ---- small helpers ------------------------------------------------------- */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct fs_store *FS(struct store *s)
{
	return (struct fs_store *)s;
}

/* "tree/a/b" for "/a/b", "tree" for "/", with an optional "/<suffix>". */
static char *rel_of(const char *path, const char *suffix)
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

static int fsync_at(int dfd, const char *rel)
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

/* Create a new file holding header + data, fsync'd unless !sync. */
static int write_node_file(int dfd, const char *rel, const struct fs_hdr *h, const void *data, size_t len,
			   bool sync)
{
	_cleanup_close_ int fd = -1;
	char hdr[128];
	int n = fmt_hdr(hdr, sizeof(hdr), h), r;

	fd = openat(dfd, rel, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return negerrno();
	r = write_all(fd, hdr, (size_t)n);
	if (r >= 0 && len)
		r = write_all(fd, data, len);
	if (r >= 0 && sync && fsync(fd) < 0)
		r = negerrno();
	if (r < 0)
		unlinkat(dfd, rel, 0);
	return r;
}

/* A step's fsync: skipped while a durable journal covers the step. */
static int step_sync_at(struct fs_store *fs, const char *rel)
{
	return fs->journalled ? 0 : fsync_at(fs->dfd, rel);
}

static bool is_dir_at(int dfd, const char *rel)
{
	struct stat st;

	return fstatat(dfd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

/* ---- reading nodes (lock-free) ------------------------------------------- */

static int node_read(struct fs_store *fs, const char *path, struct fs_hdr *h, char **ret_data, size_t *ret_len)
{
	_cleanup_free_ char *rel = rel_of(path, NODE_FILE), *buf = NULL;
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
	_cleanup_free_ char *rel = rel_of(path, file), *buf = NULL;
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
	_cleanup_free_ char *rel = rel_of(path, NULL);
	_cleanup_free_ char *full = rel ? strdup_printf("%s/%s", fs->dir, rel) : NULL;
	_cleanup_strv_free_ char **names = NULL;
	int64_t next = 0;

	if (!full || dir_list(full, 1, &names) < 0)
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
static int64_t node_cversion_x(struct fs_store *fs, const char *path, bool *ret_bad)
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

static int64_t node_cversion(struct fs_store *fs, const char *path)
{
	return node_cversion_x(fs, path, NULL);
}

static int64_t node_count_children(struct fs_store *fs, const char *path)
{
	_cleanup_free_ char *rel = rel_of(path, NULL);
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	int fd;
	int64_t n = 0;

	if (!rel)
		return 0;
	fd = openat(fs->dfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return 0;
	}
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	return n;
}

static void fill_stat(struct fs_store *fs, const char *path, const struct fs_hdr *h, size_t len,
		      struct store_stat *st)
{
	st->version = h->version;
	st->cversion = node_cversion(fs, path);
	st->ctime_ms = h->ctime_ms;
	st->mtime_ms = h->mtime_ms;
	st->ephemeral_owner = h->owner;
	st->num_children = (int32_t)node_count_children(fs, path);
	st->data_length = (int32_t)len;
}

/* ---- writing nodes (under the lock) -------------------------------------- */

/* Make `path` exist with this header and data (replacing .node if it exists). */
static int put_node(struct fs_store *fs, const char *path, const struct fs_hdr *h, const void *data, size_t len)
{
	_cleanup_free_ char *rel = rel_of(path, NULL), *parent = NULL, *prel = NULL, *tmp = NULL, *file = NULL;
	int r;

	if (!rel)
		return -ENOMEM;
	if (is_dir_at(fs->dfd, rel)) {
		_cleanup_free_ char *final = rel_of(path, NODE_FILE);
		tmp = tmp_name(rel, "node");
		if (!tmp || !final)
			return -ENOMEM;
		r = write_node_file(fs->dfd, tmp, h, data, len, !fs->journalled);
		if (r < 0)
			return r;
		if (renameat(fs->dfd, tmp, fs->dfd, final) < 0) {
			r = negerrno();
			unlinkat(fs->dfd, tmp, 0);
			return r;
		}
		return step_sync_at(fs, rel);
	}
	parent = store_path_parent(path);
	prel = parent ? rel_of(parent, NULL) : NULL;
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
static int del_node(struct fs_store *fs, const char *path)
{
	_cleanup_free_ char *rel = rel_of(path, NULL), *parent = NULL, *prel = NULL, *tmp = NULL, *abs = NULL;
	int r;

	parent = store_path_parent(path);
	prel = parent ? rel_of(parent, NULL) : NULL;
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

/* The new counter (a symlink, see node_cversion) is renamed in; the directory
 * is fsync'd by the commit step that always follows in the same directory (a
 * child's rename in or out), and journalling file systems keep the two
 * renames in order, so a crash never makes the child durable without it. */
static int put_counter(struct fs_store *fs, const char *path, const char *name, int64_t cv)
{
	_cleanup_free_ char *rel = rel_of(path, NULL), *file = rel_of(path, name), *txt = NULL, *tmp = NULL;
	int r = 0;

	txt = strdup_printf("%" PRId64, cv);
	tmp = rel ? tmp_name(rel, "cver") : NULL;
	if (!rel || !file || !txt || !tmp)
		return -ENOMEM;
	if (!is_dir_at(fs->dfd, rel))
		return 0; /* deleted by a later step */
	if (symlinkat(txt, fs->dfd, tmp) < 0)
		return negerrno();
	if (renameat(fs->dfd, tmp, fs->dfd, file) < 0) {
		r = negerrno();
		unlinkat(fs->dfd, tmp, 0);
	}
	return r;
}

/* ---- transactions -------------------------------------------------------- */

enum { STEP_PUT = 'P', STEP_DEL = 'D', STEP_CVER = 'C', STEP_SEQ = 'S' };

struct step {
	char type;
	char *path;
	struct fs_hdr h;
	const void *data;
	size_t len;
	int64_t cv;
};

struct ov { /* a node's state as seen by the transaction being built */
	char *path;
	bool exists;
	struct fs_hdr h;
	int64_t cversion;
	int64_t nchild_base; /* on disk before the transaction, -1 unknown */
	int64_t nchild_delta;
};

struct txn {
	struct ov *ov;
	size_t n_ov;
	struct step *steps;
	size_t n_steps;
	char **eph; /* ephemeral paths to add to the session index */
	int err;    /* why ov_get last returned NULL */
};

static void txn_done(struct txn *t)
{
	for (size_t i = 0; i < t->n_ov; i++)
		free(t->ov[i].path);
	for (size_t i = 0; i < t->n_steps; i++)
		free(t->steps[i].path);
	free(t->ov);
	free(t->steps);
	strv_free(t->eph);
	*t = (struct txn){ 0 };
}

static struct ov *ov_get(struct fs_store *fs, struct txn *t, const char *path)
{
	struct ov *o, *n;
	int r;

	for (size_t i = 0; i < t->n_ov; i++)
		if (!strcmp(t->ov[i].path, path))
			return &t->ov[i];
	t->err = -ENOMEM;
	n = realloc(t->ov, (t->n_ov + 1) * sizeof(*t->ov));
	if (!n)
		return NULL;
	t->ov = n;
	o = &t->ov[t->n_ov];
	*o = (struct ov){ .path = strdup(path), .nchild_base = -1 };
	if (!o->path)
		return NULL;
	r = node_read(fs, path, &o->h, NULL, NULL);
	if (r < 0 && r != -ENOENT) {
		free(o->path);
		t->err = r; /* e.g. -EIO: a corrupt node is neither read nor written; fsck repairs it */
		return NULL;
	}
	o->exists = r == 0;
	if (o->exists)
		o->cversion = node_cversion(fs, path);
	else
		o->nchild_base = 0;
	t->n_ov++;
	return o;
}

static int64_t ov_children(struct fs_store *fs, struct ov *o)
{
	if (o->nchild_base < 0)
		o->nchild_base = node_count_children(fs, o->path);
	return o->nchild_base + o->nchild_delta;
}

static int txn_step(struct txn *t, char type, const char *path, const struct fs_hdr *h, const void *data, size_t len,
		    int64_t cv)
{
	struct step *n = realloc(t->steps, (t->n_steps + 1) * sizeof(*t->steps));

	if (!n)
		return -ENOMEM;
	t->steps = n;
	n[t->n_steps] = (struct step){ .type = type, .path = strdup(path), .data = data, .len = len, .cv = cv };
	if (h)
		n[t->n_steps].h = *h;
	if (!n[t->n_steps].path)
		return -ENOMEM;
	t->n_steps++;
	return 0;
}

static bool version_ok(int64_t want, int64_t have)
{
	return want == -1 || want == have;
}

/* Validate one op against the transaction's view and record its steps. */
static int txn_op(struct fs_store *fs, struct txn *t, const struct store_op *op, char **ret_path)
{
	_cleanup_free_ char *parent = NULL, *path = NULL;
	struct ov *o, *p;
	int64_t now = now_ms();
	int r;

	switch (op->type) {
	case STORE_OP_CREATE: {
		struct fs_hdr h;
		parent = store_path_parent(op->path);
		if (!parent)
			return -ENOMEM;
		p = ov_get(fs, t, parent);
		if (!p)
			return t->err;
		if (!p->exists)
			return -ENOENT;
		if ((op->flags & STORE_SEQUENTIAL) && p->cversion > SEQ_MAX)
			return -EOVERFLOW; /* the 10 digits are used up */
		if (op->flags & STORE_SEQUENTIAL)
			path = strdup_printf("%s%010" PRId64, op->path, p->cversion);
		else
			path = strdup(op->path);
		if (!path)
			return -ENOMEM;
		if (strlen(strrchr(path, '/') + 1) > 255)
			return -EINVAL;
		o = ov_get(fs, t, path);
		if (!o)
			return t->err;
		p = ov_get(fs, t, parent); /* ov_get may have moved the array */
		if (o->exists)
			return -EEXIST;
		if (p->h.owner != 0)
			return -EPERM;
		p->cversion++;
		p->nchild_delta++;
		h = (struct fs_hdr){ 0, now, now, (op->flags & STORE_EPHEMERAL) ? fs->session_id : 0 };
		o->exists = true;
		o->h = h;
		o->cversion = 0;
		o->nchild_base = 0;
		o->nchild_delta = 0;
		if ((r = txn_step(t, STEP_CVER, parent, NULL, NULL, 0, p->cversion)) < 0 ||
		    ((op->flags & STORE_SEQUENTIAL) && (r = txn_step(t, STEP_SEQ, parent, NULL, NULL, 0, p->cversion)) < 0) ||
		    (r = txn_step(t, STEP_PUT, path, &h, op->data, op->len, 0)) < 0)
			return r;
		if ((op->flags & STORE_EPHEMERAL) && (r = strv_extend(&t->eph, path)) < 0)
			return r;
		if (ret_path)
			*ret_path = TAKE_PTR(path);
		return 0;
	}
	case STORE_OP_DELETE:
		o = ov_get(fs, t, op->path);
		if (!o)
			return t->err;
		if (!o->exists)
			return -ENOENT;
		if (!version_ok(op->version, o->h.version))
			return -ESTALE;
		if (ov_children(fs, o) > 0)
			return -ENOTEMPTY;
		parent = store_path_parent(op->path);
		p = parent ? ov_get(fs, t, parent) : NULL;
		if (!p)
			return parent ? t->err : -ENOMEM;
		o = ov_get(fs, t, op->path);
		o->exists = false;
		o->nchild_base = 0;
		o->nchild_delta = 0;
		p->cversion++;
		p->nchild_delta--;
		if ((r = txn_step(t, STEP_CVER, parent, NULL, NULL, 0, p->cversion)) < 0 ||
		    (r = txn_step(t, STEP_DEL, op->path, NULL, NULL, 0, 0)) < 0)
			return r;
		return 0;
	case STORE_OP_SET:
		o = ov_get(fs, t, op->path);
		if (!o)
			return t->err;
		if (!o->exists)
			return -ENOENT;
		if (!version_ok(op->version, o->h.version))
			return -ESTALE;
		o->h.version++;
		o->h.mtime_ms = now;
		return txn_step(t, STEP_PUT, op->path, &o->h, op->data, op->len, 0);
	case STORE_OP_CHECK:
		o = ov_get(fs, t, op->path);
		if (!o)
			return t->err;
		if (!o->exists)
			return -ENOENT;
		return version_ok(op->version, o->h.version) ? 0 : -ESTALE;
	}
	return -EINVAL;
}

static int apply_steps(struct fs_store *fs, const struct step *steps, size_t n)
{
	int r;

	for (size_t i = 0; i < n; i++) {
		const struct step *st = &steps[i];
		switch (st->type) {
		case STEP_PUT:
			r = put_node(fs, st->path, &st->h, st->data, st->len);
			break;
		case STEP_DEL:
			r = del_node(fs, st->path);
			break;
		case STEP_CVER:
			r = put_counter(fs, st->path, CVER_FILE, st->cv);
			break;
		case STEP_SEQ:
			r = put_counter(fs, st->path, CSEQ_FILE, st->cv);
			break;
		default:
			r = -EIO;
		}
		if (r < 0)
			return r;
	}
	return 0;
}

/* Apply the steps of a journal already durable on disk: one flush at the
 * end instead of two or three fsyncs per node (a crash before it is repaired
 * by the replay: every step assigns a final state).  A directory fsync on a
 * file system with ordered metadata commits every earlier change, data
 * included; elsewhere syncfs. */
static int apply_journalled(struct fs_store *fs, const struct step *steps, size_t n)
{
	int r;

	fs->journalled = true;
	r = apply_steps(fs, steps, n);
	fs->journalled = false;
	if (r < 0)
		return r;
	if ((fs->ordered_meta ? fsync(fs->dfd) : syncfs(fs->dfd)) < 0)
		return negerrno();
	return 0;
}

/* Journal: "TJ1 <n>\n", then per step
 * "<type> <pathlen> <version> <ctime> <mtime> <owner> <cv> <datalen>\n<path><data>", then "END\n". */
static int journal_write(struct fs_store *fs, const struct txn *t)
{
	_cleanup_free_ char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);
	int r;

	if (!f)
		return -ENOMEM;
	fprintf(f, "TJ1 %zu\n", t->n_steps);
	for (size_t i = 0; i < t->n_steps; i++) {
		const struct step *st = &t->steps[i];
		fprintf(f, "%c %zu %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 " %zu\n", st->type,
			strlen(st->path), st->h.version, st->h.ctime_ms, st->h.mtime_ms, st->h.owner, st->cv, st->len);
		fwrite(st->path, 1, strlen(st->path), f);
		if (st->len)
			fwrite(st->data, 1, st->len, f);
	}
	fputs("END\n", f);
	if (fclose(f) != 0)
		return -ENOMEM;
	r = write_file_atomic_at(fs->dfd, "journal", buf, size, 0600);
	return r;
}

static void steps_free(struct step *steps, size_t n)
{
	for (size_t i = 0; steps && i < n; i++)
		free(steps[i].path);
	free(steps);
}

/* Parse a journal; buf must be NUL-terminated at len.  Steps' data point
 * into buf.  Every step is checked (type, path syntax, sizes): -EIO if bad. */
static int journal_parse(const char *buf, size_t len, struct step **ret, size_t *ret_n)
{
	struct step *steps = NULL;
	size_t n = 0, off, i = 0;
	int used = 0;

	if (sscanf(buf, "TJ1 %zu\n%n", &n, &used) != 1 || used <= 0 || n > len)
		return -EIO;
	steps = calloc(n ? n : 1, sizeof(*steps));
	if (!steps)
		return -ENOMEM;
	off = (size_t)used;
	for (i = 0; i < n; i++) {
		struct step *st = &steps[i];
		size_t plen, dlen;
		char type;
		used = 0;
		if (off >= len ||
		    sscanf(buf + off, "%c %zu %" SCNd64 " %" SCNd64 " %" SCNd64 " %" SCNd64 " %" SCNd64 " %zu\n%n",
			   &type, &plen, &st->h.version, &st->h.ctime_ms, &st->h.mtime_ms, &st->h.owner, &st->cv, &dlen,
			   &used) != 8 ||
		    used <= 0)
			goto bad;
		off += (size_t)used;
		if (plen > len - off || dlen > len - off - plen || dlen > STORE_MAX_DATA)
			goto bad;
		st->type = type;
		st->path = strndup(buf + off, plen);
		if (!st->path) {
			steps_free(steps, i);
			return -ENOMEM;
		}
		st->data = buf + off + plen;
		st->len = dlen;
		off += plen + dlen;
		if (strlen(st->path) != plen || !store_path_valid(st->path) ||
		    (type != STEP_PUT && type != STEP_DEL && type != STEP_CVER && type != STEP_SEQ) ||
		    (type != STEP_PUT && dlen) || ((type == STEP_CVER || type == STEP_SEQ) && st->cv < 0) ||
		    (type == STEP_DEL && !strcmp(st->path, "/"))) {
			i++;
			goto bad;
		}
	}
	if (len - off < 4 || memcmp(buf + off, "END\n", 4))
		goto bad;
	*ret = steps;
	*ret_n = n;
	return 0;
bad:
	steps_free(steps, i);
	return -EIO;
}

int store_fs_journal_check(const void *data, size_t len)
{
	_cleanup_free_ char *buf = malloc(len + 1);
	struct step *steps = NULL;
	size_t n = 0;
	int r;

	if (!buf)
		return -ENOMEM;
	memcpy(buf, data, len);
	buf[len] = 0;
	r = journal_parse(buf, len, &steps, &n);
	if (r < 0)
		return r;
	steps_free(steps, n);
	return (int)MIN(n, (size_t)INT32_MAX);
}

static int journal_replay(struct fs_store *fs)
{
	_cleanup_free_ char *buf = NULL;
	struct step *steps = NULL;
	size_t len, n = 0;
	int r;

	r = read_file_at(fs->dfd, "journal", &buf, &len);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	r = journal_parse(buf, len, &steps, &n);
	if (r < 0)
		return r; /* cannot happen: the journal is written atomically; leave it for a human */
	r = apply_journalled(fs, steps, n);
	if (r >= 0) {
		unlinkat(fs->dfd, "journal", 0);
		fsync(fs->dfd);
	}
	steps_free(steps, n);
	return r;
}

static int fs_lock(struct fs_store *fs)
{
	while (flock(fs->lock_fd, LOCK_EX) < 0)
		if (errno != EINTR)
			return negerrno();
	if (faccessat(fs->dfd, "journal", F_OK, 0) == 0) {
		int r = journal_replay(fs);
		if (r < 0) {
			flock(fs->lock_fd, LOCK_UN);
			return r;
		}
	}
	return 0;
}

static void fs_unlock(struct fs_store *fs)
{
	flock(fs->lock_fd, LOCK_UN);
}

static int eph_index_add(struct fs_store *fs, char **paths)
{
	_cleanup_free_ char *name = strdup_printf("sessions/%" PRId64 ".eph", fs->session_id);
	_cleanup_close_ int fd = -1;
	int r;

	if (!name)
		return -ENOMEM;
	fd = openat(fs->dfd, name, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return negerrno();
	for (char **p = paths; *p; p++)
		if ((r = write_all(fd, *p, strlen(*p) + 1)) < 0)
			return r;
	if (fdatasync(fd) < 0)
		return negerrno();
	return 0;
}

/* Run ops as one transaction under the lock.  ret_path: created path of op 0. */
static int fs_txn(struct fs_store *fs, const struct store_op *ops, size_t n, size_t *ret_failed, char **ret_path)
{
	struct txn t = { 0 };
	int r;

	if (fs->expired)
		return -ESHUTDOWN;
	if (fs->read_only)
		return -EROFS;
	r = fs_lock(fs);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		r = txn_op(fs, &t, &ops[i], i == 0 ? ret_path : NULL);
		if (r < 0) {
			if (ret_failed)
				*ret_failed = i;
			if (i > 0 && ret_path) {
				free(*ret_path);
				*ret_path = NULL;
			}
			goto out;
		}
	}
	if (t.eph && (r = eph_index_add(fs, t.eph)) < 0)
		goto out;
	if (n > 1) {
		const char *crash = getenv("TREADLE_STORE_CRASH_AFTER_STEPS"); /* test hook, see docs/STORE.md */
		int k;

		r = journal_write(fs, &t);
		if (r < 0)
			goto out;
		if (crash && safe_atoi(crash, &k) == 0 && k >= 0) {
			apply_steps(fs, t.steps, MIN((size_t)k, t.n_steps));
			_exit(99);
		}
		r = apply_journalled(fs, t.steps, t.n_steps);
		if (r < 0)
			r = journal_replay(fs); /* retry once; else the next lock holder will */
		else {
			unlinkat(fs->dfd, "journal", 0);
		}
	} else
		r = apply_steps(fs, t.steps, t.n_steps);
out:
	fs_unlock(fs);
	txn_done(&t);
	return r;
}

/* ---- watches ------------------------------------------------------------- */

static int fs_events(struct fs_store *fs);

static int wd_ref(struct fs_store *fs, int wd)
{
	struct fs_wd *n;

	for (size_t i = 0; i < fs->n_wds; i++)
		if (fs->wds[i].wd == wd) {
			fs->wds[i].refs++;
			return 0;
		}
	n = realloc(fs->wds, (fs->n_wds + 1) * sizeof(*fs->wds));
	if (!n)
		return -ENOMEM;
	fs->wds = n;
	fs->wds[fs->n_wds++] = (struct fs_wd){ wd, 1 };
	return 0;
}

static void wd_unref(struct fs_store *fs, int wd)
{
	for (size_t i = 0; i < fs->n_wds; i++)
		if (fs->wds[i].wd == wd) {
			if (--fs->wds[i].refs == 0) {
				inotify_rm_watch(fs->inotify_fd, wd);
				fs->wds[i] = fs->wds[--fs->n_wds];
			}
			return;
		}
}

static void wd_forget(struct fs_store *fs, int wd)
{
	for (size_t i = 0; i < fs->n_wds; i++)
		if (fs->wds[i].wd == wd) {
			fs->wds[i] = fs->wds[--fs->n_wds];
			return;
		}
}

static void watch_disarm(struct fs_store *fs, struct fs_watch *w)
{
	if (w->wd >= 0)
		wd_unref(fs, w->wd);
	w->wd = -1;
}

/* Watch the node's directory, or its deepest existing ancestor.  Returns 1 if
 * the node's directory is watched (it exists), 0 if an ancestor is, or -errno. */
static int watch_arm(struct fs_store *fs, struct fs_watch *w)
{
	size_t full = strcmp(w->path, "/") ? strlen(w->path) : 0;
	int r = fs_events(fs);

	if (r < 0)
		return r;
	watch_disarm(fs, w);
	for (int tries = 0; tries < 20; tries++) {
		size_t l = full;
		int wd;

		for (;;) {
			_cleanup_free_ char *abs = strdup_printf("%s/tree%.*s", fs->dir, (int)l, w->path);
			if (!abs)
				return -ENOMEM;
			wd = inotify_add_watch(fs->inotify_fd, abs, WATCH_MASK);
			if (wd >= 0)
				break;
			if ((errno != ENOENT && errno != ENOTDIR) || l == 0)
				return negerrno();
			while (l > 0 && w->path[--l] != '/')
				;
		}
		if (wd_ref(fs, wd) < 0) {
			return -ENOMEM;
		}
		w->wd = wd;
		if (l == full) {
			w->at_node = true;
			return 1;
		}
		if (w->kind == W_CHILD) { /* child watches exist only on existing nodes */
			watch_disarm(fs, w);
			return -ENOENT;
		}
		w->at_node = false;
		w->at_len = l;
		{
			/* The next component may have appeared before the watch was set. */
			const char *e = strchrnul(w->path + l + 1, '/');
			_cleanup_free_ char *next = strdup_printf("tree%.*s", (int)(e - w->path), w->path);
			if (!next)
				return -ENOMEM;
			if (!is_dir_at(fs->dfd, next))
				return 0;
		}
		watch_disarm(fs, w);
	}
	return -EIO;
}

static void watch_free(struct fs_watch *w)
{
	if (w) {
		free(w->path);
		free(w);
	}
}

static void watch_remove(struct fs_store *fs, size_t i)
{
	struct fs_watch *w = fs->watches[i];

	watch_disarm(fs, w);
	memmove(&fs->watches[i], &fs->watches[i + 1], (fs->n_watches - i - 1) * sizeof(*fs->watches));
	fs->n_watches--;
	watch_free(w);
}

static struct fs_watch *watch_find(struct fs_store *fs, int kind, const char *path, store_watch_fn fn, void *ud)
{
	for (size_t i = 0; i < fs->n_watches; i++) {
		struct fs_watch *w = fs->watches[i];
		if (w->kind == kind && w->fn == fn && w->userdata == ud && !strcmp(w->path, path))
			return w;
	}
	return NULL;
}

static struct fs_watch *watch_new(struct fs_store *fs, int kind, const char *path, store_watch_fn fn, void *ud)
{
	struct fs_watch *w, **n;

	n = realloc(fs->watches, (fs->n_watches + 1) * sizeof(*fs->watches));
	if (!n)
		return NULL;
	fs->watches = n;
	w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	*w = (struct fs_watch){ .kind = kind, .path = strdup(path), .fn = fn, .userdata = ud, .wd = -1 };
	if (!w->path) {
		free(w);
		return NULL;
	}
	fs->watches[fs->n_watches++] = w;
	return w;
}

static void watch_drop(struct fs_store *fs, struct fs_watch *w)
{
	for (size_t i = 0; i < fs->n_watches; i++)
		if (fs->watches[i] == w) {
			watch_remove(fs, i);
			return;
		}
}

static int fire(struct fs_store *fs, size_t i, enum store_event ev)
{
	struct fs_watch *w = fs->watches[i];
	struct fs_fired *n = realloc(fs->fired, (fs->n_fired + 1) * sizeof(*fs->fired));

	if (!n)
		return -ENOMEM;
	fs->fired = n;
	n[fs->n_fired++] = (struct fs_fired){ w->fn, w->userdata, ev, TAKE_PTR(w->path) };
	watch_remove(fs, i);
	return 0;
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

static int delete_ephemeral(struct fs_store *fs, const char *path, int64_t owner)
{
	struct fs_hdr h;
	struct txn t = { 0 };
	struct store_op op = { .type = STORE_OP_DELETE, .path = path, .version = -1 };
	int r;

	if (node_read(fs, path, &h, NULL, NULL) < 0 || h.owner != owner)
		return 0;
	r = txn_op(fs, &t, &op, NULL);
	if (r >= 0)
		r = apply_steps(fs, t.steps, t.n_steps);
	txn_done(&t);
	return r;
}

/* Delete a session's ephemerals and its files.  Under the lock. */
static int session_remove(struct fs_store *fs, int64_t id, const char *name)
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
	for (size_t off = 0; r >= 0 && off < len;) {
		const char *p = buf + off;
		size_t l = strnlen(p, len - off);
		if (l < len - off && store_path_valid(p))
			delete_ephemeral(fs, p, id);
		off += l + 1;
	}
	unlinkat(fs->dfd, eph, 0);
	unlinkat(fs->dfd, rel, 0);
	fsync_at(fs->dfd, "sessions");
	return 0;
}

/* Call fn on path and each node below it, parents first, children in name
 * order; fn returns < 0 to stop, 1 to skip the node's children. */
static int tree_walk(struct fs_store *fs, const char *path, int (*fn)(struct fs_store *fs, const char *path, void *ud),
		     void *ud)
{
	_cleanup_free_ char *rel = rel_of(path, NULL), *abs = NULL;
	_cleanup_strv_free_ char **names = NULL;
	int r = fn(fs, path, ud);

	if (r != 0)
		return r < 0 ? r : 0;
	abs = rel ? strdup_printf("%s/%s", fs->dir, rel) : NULL;
	if (!abs)
		return -ENOMEM;
	r = dir_list(abs, 1, &names);
	if (r < 0)
		return r == -ENOENT || r == -ENOTDIR ? 0 : r;
	for (char **n = names; *n; n++) {
		_cleanup_free_ char *child = strdup_printf("%s/%s", strcmp(path, "/") ? path : "", *n);
		if (!child)
			return -ENOMEM;
		if ((r = tree_walk(fs, child, fn, ud)) < 0)
			return r;
	}
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

	d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return;
	}
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
	if (dir_list(fs->dir, 0, &root) < 0)
		return;
	for (char **n = root; *n; n++)
		if (startswith(*n, ".journal.tmp") || startswith(*n, ".next-session.tmp") || startswith(*n, ".format.tmp") ||
		    startswith(*n, ".tree.tmp"))
			unlinkat(fs->dfd, *n, 0);
}

/* Reap a session if its owner is dead.  Takes the lock unless locked. */
static int session_reap(struct fs_store *fs, const char *name, bool locked)
{
	int64_t id;
	pid_t pid;
	int r;

	if (parse_session_name(name, &id, &pid) < 0 || reg_has(fs, id, pid))
		return 0;
	if (!locked && (r = fs_lock(fs)) < 0)
		return r;
	r = session_alive(fs, name, NULL);
	if (r == 0) {
		r = session_remove(fs, id, name);
		tree_cleanup(fs); /* it may have died in the middle of a write */
	} else if (r == -ENOENT)
		r = 0;
	if (!locked)
		fs_unlock(fs);
	return r;
}

static void peer_drop(struct fs_store *fs, size_t i)
{
	epoll_ctl(fs->epoll_fd, EPOLL_CTL_DEL, fs->peers[i].pidfd, NULL);
	close(fs->peers[i].pidfd);
	free(fs->peers[i].name);
	fs->peers[i] = fs->peers[--fs->n_peers];
}

/* A session file appeared or was found: watch its owner, or reap it now. */
static int peer_add(struct fs_store *fs, const char *name, bool locked)
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
		return r == 0 ? session_reap(fs, name, locked) : 0;
	}
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	r = session_alive(fs, name, &holder);
	if (r <= 0 || pidfd < 0 || holder != pid) {
		if (pidfd >= 0)
			close(pidfd);
		if (r == -ENOENT)
			return 0;
		if (r == 0)
			return session_reap(fs, name, locked);
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
static int sessions_sweep(struct fs_store *fs, bool locked)
{
	_cleanup_free_ char *abs = strdup_printf("%s/sessions", fs->dir);
	_cleanup_strv_free_ char **names = NULL;
	int r;

	if (!abs)
		return -ENOMEM;
	r = dir_list(abs, 0, &names);
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
					session_remove(fs, v, "");
			}
			continue;
		}
		peer_add(fs, *n, locked);
	}
	return 0;
}

/* next-session: 0 and the id, -ENOENT if absent, -EIO if corrupt. */
static int session_counter_read(struct fs_store *fs, int64_t *ret)
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

	if (node_read(fs, path, &h, NULL, NULL) == 0 && h.owner > *(int64_t *)ud)
		*(int64_t *)ud = h.owner;
	return 0;
}

/* A corrupt next-session counter: 1 + the largest session id still in use,
 * by a session file or as the owner of an ephemeral node, so no live or
 * unreaped session's id is given out again. */
static int64_t session_counter_recover(struct fs_store *fs)
{
	_cleanup_free_ char *abs = strdup_printf("%s/sessions", fs->dir);
	_cleanup_strv_free_ char **names = NULL;
	int64_t top = 0, v;

	if (abs && dir_list(abs, 0, &names) >= 0)
		for (char **n = names; *n; n++) {
			const char *p = startswith(*n, ".tmp-") ? *n + 5 : *n;
			_cleanup_free_ char *id = strndup(p, strspn(p, "0123456789"));
			if (id && safe_atoi64(id, &v) == 0 && v > top)
				top = v;
		}
	(void)tree_walk(fs, "/", max_owner, &top);
	return top + 1;
}

static int session_create(struct fs_store *fs)
{
	_cleanup_free_ char *buf = NULL, *txt = NULL, *tmp = NULL, *name = NULL, *final = NULL;
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	int64_t id = 1;
	int r, fd;

	r = session_counter_read(fs, &id);
	if (r == -EIO)
		id = session_counter_recover(fs); /* rewritten below */
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
	fsync_at(fs->dfd, "sessions");
	fs->session_fd = fd;
	fs->session_id = id;
	fs->session_name = TAKE_PTR(name);
	return reg_add(fs, id);
}

/* inotify, epoll and the pidfds of other sessions' owners are set up on first
 * need (a watch, store_fd, store_dispatch): short-lived processes such as the
 * CLI hold no inotify instance (there are only 128 per user). */
static int fs_events(struct fs_store *fs)
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
	sessions_sweep(fs, false);
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

/* ---- open / close -------------------------------------------------------- */

static int init_tree(struct fs_store *fs)
{
	struct fs_hdr h = { 0, now_ms(), now_ms(), 0 };
	_cleanup_free_ char *abs = NULL;
	int r;

	if (is_dir_at(fs->dfd, "tree"))
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
	if ((r = fsync_at(fs->dfd, ".tree.tmp")) < 0)
		return r;
	if (renameat(fs->dfd, ".tree.tmp", fs->dfd, "tree") < 0)
		return negerrno();
	return fsync(fs->dfd) < 0 ? negerrno() : 0;
}

#define FORMAT "treadle-store 1"

/* DIR/format must say FORMAT; absent (a store older than the file) it is
 * written when writable.  Unknown: a permanent error naming both. */
static int format_check(struct fs_store *fs, bool write, struct error *err)
{
	_cleanup_free_ char *buf = NULL;
	size_t len;
	int r = read_file_at(fs->dfd, "format", &buf, &len);

	if (r == -ENOENT)
		return write ? write_file_atomic_at(fs->dfd, "format", FORMAT "\n", strlen(FORMAT) + 1, 0644) : 0;
	if (r < 0)
		return error_sys(err, -r, "store: %s/format", fs->dir);
	if (len && buf[len - 1] == '\n')
		buf[--len] = 0;
	if (strlen(buf) == len && !strcmp(buf, FORMAT))
		return 0;
	for (size_t i = 0; i < len; i++) /* one printable line in the message */
		if (buf[i] < 0x20 || buf[i] > 0x7e)
			buf[i] = '?';
	return error_set(err, ERR_PERM, EPROTO, "store: %s/format: unknown store format '%.64s' (expected '%s')",
			 fs->dir, buf, FORMAT);
}

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

	if (fs->session_name && fs->lock_fd >= 0 && fs_lock(fs) >= 0) {
		session_remove(fs, fs->session_id, fs->session_name);
		fs_unlock(fs);
	}
	if (fs->session_name)
		reg_remove(fs, fs->session_id);
	while (fs->n_peers)
		peer_drop(fs, fs->n_peers - 1);
	while (fs->n_watches)
		watch_remove(fs, fs->n_watches - 1);
	for (size_t i = 0; i < fs->n_fired; i++)
		free(fs->fired[i].path);
	free(fs->fired);
	free(fs->watches);
	free(fs->wds);
	free(fs->peers);
	if (fs->session_fd >= 0)
		close(fs->session_fd);
	if (fs->inotify_fd >= 0)
		close(fs->inotify_fd);
	if (fs->epoll_fd >= 0)
		close(fs->epoll_fd);
	if (fs->lock_fd >= 0)
		close(fs->lock_fd);
	if (fs->dfd >= 0)
		close(fs->dfd);
	free(fs->session_name);
	free(fs->dir);
	free(fs);
}

static int fs_open(const char *where, const struct store_options *opts, struct store **ret, struct error *err)
{
	struct fs_store *fs;
	size_t l;
	int r;

	if (where[0] != '/')
		return error_set(err, ERR_PERM, EINVAL, "store: embedded store path must be absolute: '%s'", where);
	fs = calloc(1, sizeof(*fs));
	if (!fs)
		return error_sys(err, ENOMEM, "store");
	fs->base.backend = &store_backend_fs;
	if (opts)
		fs->base.opts = *opts;
	fs->dfd = fs->lock_fd = fs->session_fd = fs->epoll_fd = fs->inotify_fd = fs->sessions_wd = -1;
	fs->dir = strdup(where);
	if (!fs->dir) {
		fs_close(&fs->base);
		return error_sys(err, ENOMEM, "store");
	}
	for (l = strlen(fs->dir); l > 1 && fs->dir[l - 1] == '/'; l--)
		fs->dir[l - 1] = 0;
	if (fs->base.opts.read_only) {
		/* Only reads: no session, no lock, nothing written, so a full disk or
		 * a read-only mount does not matter.  A store not made yet is made
		 * by the ordinary open below. */
		fs->dfd = open(fs->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fs->dfd >= 0 && is_dir_at(fs->dfd, "tree")) {
			fs->read_only = true;
			r = format_check(fs, false, err);
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
	if (is_dir_at(fs->dfd, "tree") && (r = format_check(fs, false, err)) < 0) {
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
	r = fs_lock(fs);
	if (r < 0)
		goto fail;
	r = init_tree(fs);
	if (r >= 0)
		r = format_check(fs, true, NULL);
	if (r >= 0)
		r = session_create(fs);
	if (r >= 0)
		r = sessions_sweep(fs, true);
	fs_unlock(fs);
	if (r < 0)
		goto fail;
	*ret = &fs->base;
	return 0;
fail:
	error_sys(err, -r, "store: cannot open embedded store %s", fs->dir ? fs->dir : where);
	fs_close(&fs->base);
	return r;
}

/* ---- fsck ---------------------------------------------------------------- */

struct fsck {
	struct store_fsck_result *res;
	bool repair;
	unsigned moved;
};

static int fsck_note(struct fsck *f, bool repaired, const char *fmt, ...) _printf_(3, 4);
static int fsck_note(struct fsck *f, bool repaired, const char *fmt, ...)
{
	va_list ap;
	char *line = NULL;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&line, fmt, ap);
	va_end(ap);
	if (r < 0)
		return -ENOMEM;
	r = strv_push(&f->res->lines, line);
	if (r < 0) {
		free(line);
		return r;
	}
	f->res->found++;
	if (repaired)
		f->res->repaired++;
	return 0;
}

/* Move an unreadable node (and what is below it) to DIR/lost+found/. */
static int fsck_move_away(struct fs_store *fs, struct fsck *f, const char *path, char **ret_to)
{
	_cleanup_free_ char *rel = rel_of(path, NULL), *parent = store_path_parent(path), *to = NULL;
	int r;

	if (!rel || !parent)
		return -ENOMEM;
	if (mkdirat(fs->dfd, "lost+found", 0700) < 0 && errno != EEXIST)
		return negerrno();
	to = strdup_printf("lost+found/%" PRId64 ".%u", now_ms(), f->moved++);
	if (!to)
		return -ENOMEM;
	if (renameat(fs->dfd, rel, fs->dfd, to) < 0)
		return negerrno();
	/* the parent lost a child: its counter moves on, as for a delete */
	r = put_counter(fs, parent, CVER_FILE, node_cversion(fs, parent) + 1);
	if (r >= 0)
		r = fsync_at(fs->dfd, "lost+found");
	if (r >= 0) {
		_cleanup_free_ char *prel = rel_of(parent, NULL);
		r = prel ? fsync_at(fs->dfd, prel) : -ENOMEM;
	}
	if (r >= 0)
		*ret_to = TAKE_PTR(to);
	return r;
}

static int fsck_node(struct fs_store *fs, const char *path, void *ud)
{
	struct fsck *f = ud;
	_cleanup_free_ char *rel = rel_of(path, NULL);
	struct fs_hdr h;
	bool bad = false;
	int64_t cv;
	int r;

	if (!rel)
		return -ENOMEM;
	r = node_read(fs, path, &h, NULL, NULL);
	if (r == -ENOENT && !f->repair && faccessat(fs->dfd, rel, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
		return 1; /* deleted while we looked (no lock without --repair) */
	if (r == -EIO || r == -ENOENT) {
		const char *why = r == -EIO ? "bad header in .node" : is_dir_at(fs->dfd, rel) ? "no .node file" : "not a directory";
		_cleanup_free_ char *to = NULL;

		if (!f->repair)
			return fsck_note(f, false, "%s: unreadable node (%s/%s: %s)", path, fs->dir, rel, why) < 0 ? -ENOMEM : 1;
		if (!strcmp(path, "/")) { /* the root cannot go: it becomes empty */
			struct fs_hdr root = { 0, now_ms(), now_ms(), 0 };
			r = put_node(fs, "/", &root, NULL, 0);
			if (r < 0)
				return r;
			return fsck_note(f, true, "/: unreadable node (%s/%s: %s): repaired, rewritten empty", fs->dir, rel,
					 why) < 0 ? -ENOMEM : 0;
		}
		r = fsck_move_away(fs, f, path, &to);
		if (r < 0)
			return r;
		return fsck_note(f, true, "%s: unreadable node (%s/%s: %s): repaired, moved to %s/%s", path, fs->dir, rel,
				 why, fs->dir, to) < 0 ? -ENOMEM : 1;
	}
	if (r < 0)
		return r;
	cv = node_cversion_x(fs, path, &bad);
	if (!bad)
		return 0;
	if (f->repair) {
		r = put_counter(fs, path, CVER_FILE, cv);
		if (r >= 0)
			r = put_counter(fs, path, CSEQ_FILE, cv);
		if (r >= 0)
			r = fsync_at(fs->dfd, rel);
		if (r < 0)
			return r;
	}
	return fsck_note(f, f->repair, "%s: corrupt child counter (%s/%s/%s or %s)%s%" PRId64, path, fs->dir, rel,
			 CVER_FILE, CSEQ_FILE, f->repair ? ": repaired, now " : ", recovered as ", cv) < 0 ? -ENOMEM : 0;
}

int store_fs_fsck(const char *dir, bool repair, struct store_fsck_result *res, struct error *err)
{
	struct fs_store *fs;
	struct fsck f = { .res = res, .repair = repair };
	_cleanup_free_ char *jbuf = NULL;
	int64_t id;
	size_t jlen;
	int r;

	*res = (struct store_fsck_result){ 0 };
	fs = calloc(1, sizeof(*fs));
	if (!fs)
		return error_sys(err, ENOMEM, "store fsck");
	fs->base.backend = &store_backend_fs;
	fs->dfd = fs->lock_fd = fs->session_fd = fs->epoll_fd = fs->inotify_fd = fs->sessions_wd = -1;
	fs->dir = strdup(dir);
	if (!fs->dir) {
		fs_close(&fs->base);
		return error_sys(err, ENOMEM, "store fsck");
	}
	for (size_t l = strlen(fs->dir); l > 1 && fs->dir[l - 1] == '/'; l--)
		fs->dir[l - 1] = 0;
	fs->dfd = open(fs->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fs->dfd < 0 || !is_dir_at(fs->dfd, "tree")) {
		r = error_set(err, ERR_PERM, ENOENT, "store fsck: no embedded store at %s", fs->dir);
		fs_close(&fs->base);
		return r;
	}
	fs->ordered_meta = false; /* fsck fsyncs every step */
	r = format_check(fs, false, err);
	if (r < 0)
		goto out;
	if (faccessat(fs->dfd, "format", F_OK, 0) < 0) {
		if (repair && (r = write_file_atomic_at(fs->dfd, "format", FORMAT "\n", strlen(FORMAT) + 1, 0644)) < 0)
			goto sys;
		if ((r = fsck_note(&f, repair, "%s/format: missing%s", fs->dir, repair ? ": repaired" : "")) < 0)
			goto sys;
	}
	if (repair) { /* under the lock, without replaying the journal first (fs_lock would) */
		fs->lock_fd = openat(fs->dfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (fs->lock_fd < 0) {
			r = negerrno();
			goto sys;
		}
		while ((r = flock(fs->lock_fd, LOCK_EX)) < 0 && errno == EINTR)
			;
		if (r < 0) {
			r = negerrno();
			goto sys;
		}
	}
	r = read_file_at(fs->dfd, "journal", &jbuf, &jlen);
	if (r >= 0 && store_fs_journal_check(jbuf, jlen) == -EIO) {
		_cleanup_free_ char *to = strdup_printf("journal.corrupt-%" PRId64, now_ms());
		if (!to) {
			r = -ENOMEM;
			goto sys;
		}
		if (repair && (renameat(fs->dfd, "journal", fs->dfd, to) < 0 || fsync(fs->dfd) < 0)) {
			r = negerrno();
			goto sys;
		}
		r = fsck_note(&f, repair, "%s/journal: not a valid intent journal (%zu bytes)%s%s", fs->dir, jlen,
			      repair ? ": repaired, set aside as " : "", repair ? to : "");
	} else if (r >= 0 && repair) {
		r = journal_replay(fs); /* an interrupted multi: finish it */
	} else if (r == -ENOENT)
		r = 0;
	if (r < 0)
		goto sys;
	r = session_counter_read(fs, &id);
	if (r == -EIO) {
		int64_t next = session_counter_recover(fs);
		_cleanup_free_ char *txt = strdup_printf("%" PRId64 "\n", next);
		if (!txt) {
			r = -ENOMEM;
			goto sys;
		}
		if (repair && (r = write_file_atomic_at(fs->dfd, "next-session", txt, strlen(txt), 0644)) < 0)
			goto sys;
		r = fsck_note(&f, repair, "%s/next-session: corrupt session counter%s%" PRId64, fs->dir,
			      repair ? ": repaired, now " : ", recovered as ", next);
	} else if (r == -ENOENT)
		r = 0;
	if (r < 0)
		goto sys;
	r = tree_walk(fs, "/", fsck_node, &f);
	if (r < 0)
		goto sys;
	r = 0;
	goto out;
sys:
	error_sys(err, -r, "store fsck %s", fs->dir);
out:
	if (fs->lock_fd >= 0)
		flock(fs->lock_fd, LOCK_UN);
	fs_close(&fs->base);
	if (r < 0) {
		strv_free(res->lines);
		*res = (struct store_fsck_result){ 0 };
	}
	return r;
}

/* ---- dispatch ------------------------------------------------------------ */

static int fs_fd(struct store *s)
{
	int r = fs_events(FS(s));

	return r < 0 ? r : FS(s)->epoll_fd;
}

static enum store_state fs_state(struct store *s)
{
	return FS(s)->expired ? STORE_EXPIRED : STORE_CONNECTED;
}

/* Our session is gone from under us: report it once, refuse further calls. */
static void expire(struct fs_store *fs)
{
	struct fs_fired *n;

	if (fs->expired)
		return;
	fs->expired = true;
	if (!fs->base.opts.session_cb)
		return;
	n = realloc(fs->fired, (fs->n_fired + 1) * sizeof(*fs->fired));
	if (!n)
		return;
	fs->fired = n;
	n[fs->n_fired] = (struct fs_fired){ fs->base.opts.session_cb, fs->base.opts.session_userdata,
					     STORE_EVENT_SESSION, strdup("/") };
	if (n[fs->n_fired].path)
		fs->n_fired++;
}

static int64_t fs_session_id(struct store *s)
{
	return FS(s)->session_id;
}

static void handle_event(struct fs_store *fs, const struct inotify_event *e)
{
	const char *name = e->len ? e->name : "";

	if (e->mask & IN_Q_OVERFLOW) {
		/* Events were lost: fire every watch whose node state may have changed. */
		for (size_t i = fs->n_watches; i-- > 0;) {
			struct fs_watch *w = fs->watches[i];
			bool exists = node_read(fs, w->path, NULL, NULL, NULL) == 0;
			if (w->kind == W_CHILD)
				fire(fs, i, exists ? STORE_EVENT_CHILD : STORE_EVENT_DELETED);
			else if (!w->at_node)
				exists ? (void)fire(fs, i, STORE_EVENT_CREATED) : (void)0;
			else
				fire(fs, i, exists ? STORE_EVENT_CHANGED : STORE_EVENT_DELETED);
		}
		sessions_sweep(fs, false);
		return;
	}
	if (e->wd == fs->sessions_wd) {
		if ((e->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) ||
		    ((e->mask & IN_DELETE) && fs->session_name && !strcmp(name, fs->session_name)))
			expire(fs);
		else if (e->mask & IN_MOVED_TO)
			peer_add(fs, name, false);
		else if (e->mask & IN_DELETE) /* closed or reaped: stop watching its owner */
			for (size_t i = 0; i < fs->n_peers; i++)
				if (!strcmp(fs->peers[i].name, name)) {
					peer_drop(fs, i);
					break;
				}
		return;
	}
	for (size_t i = fs->n_watches; i-- > 0;) {
		struct fs_watch *w = fs->watches[i];
		bool gone = e->mask & (IN_MOVE_SELF | IN_DELETE_SELF | IN_IGNORED);

		if (i >= fs->n_watches || w->wd != e->wd)
			continue;
		if (w->at_node) {
			if (gone)
				fire(fs, i, STORE_EVENT_DELETED);
			else if (w->kind == W_DATA && (e->mask & IN_MOVED_TO) && !strcmp(name, NODE_FILE))
				fire(fs, i, STORE_EVENT_CHANGED);
			else if (w->kind == W_CHILD && (e->mask & (IN_MOVED_TO | IN_MOVED_FROM)) && name[0] &&
				 name[0] != '.')
				fire(fs, i, STORE_EVENT_CHILD);
		} else {
			const char *next = w->path + w->at_len + 1;
			size_t nl = strcspn(next, "/");
			if (gone || ((e->mask & IN_MOVED_TO) && strlen(name) == nl && !strncmp(name, next, nl))) {
				int r = watch_arm(fs, w);
				if (r == 1)
					fire(fs, i, STORE_EVENT_CREATED);
				else if (r < 0)
					watch_remove(fs, i); /* cannot watch any more: drop it */
			}
		}
	}
	if (e->mask & IN_IGNORED)
		wd_forget(fs, e->wd);
}

static int fs_dispatch(struct store *s)
{
	struct fs_store *fs = FS(s);
	struct epoll_event evs[16];
	int n, ran = 0;

	n = fs_events(fs);
	if (n < 0)
		return n;
	for (;;) {
		n = epoll_wait(fs->epoll_fd, evs, (int)ELEMENTSOF(evs), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return negerrno();
		if (n == 0)
			break;
		for (int i = 0; i < n; i++) {
			if (evs[i].data.u64 == 0) {
				char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
				ssize_t l;
				while ((l = read(fs->inotify_fd, buf, sizeof(buf))) > 0)
					for (char *p = buf; p < buf + l;) {
						const struct inotify_event *e = (const struct inotify_event *)p;
						handle_event(fs, e);
						p += sizeof(*e) + e->len;
					}
				continue;
			}
			for (size_t j = 0; j < fs->n_peers; j++)
				if ((uint64_t)fs->peers[j].id == evs[i].data.u64) {
					_cleanup_free_ char *name = strdup(fs->peers[j].name);
					peer_drop(fs, j);
					if (name)
						session_reap(fs, name, false);
					break;
				}
		}
	}
	/* Callbacks last: they may set new watches. */
	while (fs->n_fired) {
		struct fs_fired f = fs->fired[0];
		memmove(&fs->fired[0], &fs->fired[1], (fs->n_fired - 1) * sizeof(*fs->fired));
		fs->n_fired--;
		f.fn(s, f.ev, f.path, f.userdata);
		free(f.path);
		ran++;
	}
	return ran;
}

/* ---- operations ---------------------------------------------------------- */

static int fs_create(struct store *s, const char *path, const void *data, size_t len, int flags, char **ret_path)
{
	struct store_op op = { STORE_OP_CREATE, path, data, len, flags, -1 };
	_cleanup_free_ char *created = NULL;
	int r;

	r = fs_txn(FS(s), &op, 1, NULL, &created);
	if (r >= 0 && ret_path)
		*ret_path = TAKE_PTR(created);
	return r;
}

static int read_node(struct fs_store *fs, const char *path, char **ret_data, size_t *ret_len,
		     struct store_stat *ret_stat)
{
	_cleanup_free_ char *data = NULL;
	struct fs_hdr h;
	size_t len;
	int r;

	r = node_read(fs, path, &h, &data, &len);
	if (r < 0)
		return r;
	if (ret_stat)
		fill_stat(fs, path, &h, len, ret_stat);
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
	if (!watch || watch_find(fs, W_DATA, path, watch, userdata))
		return read_node(fs, path, ret_data, ret_len, ret_stat);
	w = watch_new(fs, W_DATA, path, watch, userdata);
	if (!w)
		return -ENOMEM;
	for (int tries = 0; tries < 5; tries++) {
		armed = watch_arm(fs, w);
		if (armed < 0) {
			watch_drop(fs, w);
			return armed;
		}
		r = read_node(fs, path, ret_data, ret_len, ret_stat);
		if (r < 0 && r != -ENOENT) {
			watch_drop(fs, w);
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

	r = fs_txn(FS(s), &op, 1, NULL, NULL);
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

	return fs_txn(FS(s), &op, 1, NULL, NULL);
}

static int fs_children(struct store *s, const char *path, char ***ret_names, store_watch_fn watch, void *userdata)
{
	struct fs_store *fs = FS(s);
	_cleanup_free_ char *abs = NULL;
	_cleanup_strv_free_ char **names = NULL;
	struct fs_watch *w = NULL;
	int r;

	if (fs->expired)
		return -ESHUTDOWN;
	abs = strdup_printf("%s/tree%s", fs->dir, strcmp(path, "/") ? path : "");
	if (!abs)
		return -ENOMEM;
	if (watch && !watch_find(fs, W_CHILD, path, watch, userdata)) {
		w = watch_new(fs, W_CHILD, path, watch, userdata);
		if (!w)
			return -ENOMEM;
		r = watch_arm(fs, w);
		if (r < 0) {
			watch_drop(fs, w);
			return r;
		}
	}
	r = dir_list(abs, 1, &names);
	if (r == -ENOTDIR)
		r = -ENOENT;
	if (r < 0) {
		if (w)
			watch_drop(fs, w);
		return r;
	}
	if (ret_names)
		*ret_names = TAKE_PTR(names);
	return 0;
}

static int fs_multi(struct store *s, const struct store_op *ops, size_t n, size_t *ret_failed_index)
{
	return fs_txn(FS(s), ops, n, ret_failed_index, NULL);
}

const struct store_backend store_backend_fs = {
	.name = "file",
	.open = fs_open,
	.close = fs_close,
	.fd = fs_fd,
	.dispatch = fs_dispatch,
	.state = fs_state,
	.session_id = fs_session_id,
	.create = fs_create,
	.get = fs_get,
	.exists = fs_exists,
	.set = fs_set,
	.delete = fs_delete,
	.children = fs_children,
	.multi = fs_multi,
};
