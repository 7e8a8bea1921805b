/* store-fs-journal.c: the embedded store's transactions: validation against a
 * view of the touched nodes, the intent journal of store_multi and its
 * replay, the store lock. */
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/file.h>

#include "../basic/fileio.h"
#include "../basic/util.h"
#include "store-fs-internal.h"

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
	r = store_fs_node_read(fs, path, &o->h, NULL, NULL);
	if (r < 0 && r != -ENOENT) {
		free(o->path);
		t->err = r; /* e.g. -EIO: a corrupt node is neither read nor written; fsck repairs it */
		return NULL;
	}
	o->exists = r == 0;
	if (o->exists)
		o->cversion = store_fs_cversion(fs, path);
	else
		o->nchild_base = 0;
	t->n_ov++;
	return o;
}

static int64_t ov_children(struct fs_store *fs, struct ov *o)
{
	if (o->nchild_base < 0)
		o->nchild_base = store_fs_count_children(fs, o->path);
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

/* The view of an existing node whose version matches `version` (-1 = any). */
static int ov_existing(struct fs_store *fs, struct txn *t, const char *path, int64_t version, struct ov **ret)
{
	struct ov *o = ov_get(fs, t, path);

	if (!o)
		return t->err;
	if (!o->exists)
		return -ENOENT;
	if (!version_ok(version, o->h.version))
		return -ESTALE;
	*ret = o;
	return 0;
}

/* Validate one op against the transaction's view and record its steps. */
static int txn_op(struct fs_store *fs, struct txn *t, const struct store_op *op, char **ret_path)
{
	_cleanup_free_ char *parent = NULL, *path = NULL;
	struct ov *o = NULL, *p;
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
		if ((r = ov_existing(fs, t, op->path, op->version, &o)) < 0)
			return r;
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
		if ((r = ov_existing(fs, t, op->path, op->version, &o)) < 0)
			return r;
		o->h.version++;
		o->h.mtime_ms = now;
		return txn_step(t, STEP_PUT, op->path, &o->h, op->data, op->len, 0);
	case STORE_OP_CHECK:
		return ov_existing(fs, t, op->path, op->version, &o);
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
			r = store_fs_put_node(fs, st->path, &st->h, st->data, st->len);
			break;
		case STEP_DEL:
			r = store_fs_del_node(fs, st->path);
			break;
		case STEP_CVER:
			r = store_fs_put_counter(fs, st->path, CVER_FILE, st->cv);
			break;
		case STEP_SEQ:
			r = store_fs_put_counter(fs, st->path, CSEQ_FILE, st->cv);
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

int store_fs_journal_replay(struct fs_store *fs)
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

int store_fs_lock(struct fs_store *fs)
{
	while (flock(fs->lock_fd, LOCK_EX) < 0)
		if (errno != EINTR)
			return negerrno();
	if (faccessat(fs->dfd, "journal", F_OK, 0) == 0) {
		int r = store_fs_journal_replay(fs);
		if (r < 0) {
			flock(fs->lock_fd, LOCK_UN);
			return r;
		}
	}
	return 0;
}

void store_fs_unlock(struct fs_store *fs)
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
int store_fs_txn(struct fs_store *fs, const struct store_op *ops, size_t n, size_t *ret_failed, char **ret_path)
{
	struct txn t = { 0 };
	int r;

	if (fs->expired)
		return -ESHUTDOWN;
	if (fs->read_only)
		return -EROFS;
	r = store_fs_lock(fs);
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
			r = store_fs_journal_replay(fs); /* retry once; else the next lock holder will */
		else {
			unlinkat(fs->dfd, "journal", 0);
		}
	} else
		r = apply_steps(fs, t.steps, t.n_steps);
out:
	store_fs_unlock(fs);
	txn_done(&t);
	return r;
}

int store_fs_delete_ephemeral(struct fs_store *fs, const char *path, int64_t owner)
{
	struct fs_hdr h;
	struct txn t = { 0 };
	struct store_op op = { .type = STORE_OP_DELETE, .path = path, .version = -1 };
	int r;

	if (store_fs_node_read(fs, path, &h, NULL, NULL) < 0 || h.owner != owner)
		return 0;
	r = txn_op(fs, &t, &op, NULL);
	if (r >= 0)
		r = apply_steps(fs, t.steps, t.n_steps);
	txn_done(&t);
	return r;
}
