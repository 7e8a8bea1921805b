/* store-fs-journal.c: the embedded store's transactions: validation against a
 * view of the touched nodes, the write-ahead log (DIR/wal) with its group
 * commit, its replay and checkpoints, the store lock, and the replay of a
 * legacy intent journal (DIR/journal, written by older versions).
 *
 * Group commit (docs/STORE.md "Group commit"): under DIR/lock a writer
 * validates its ops against the tree plus the records appended but not yet
 * applied, and appends one record (its steps: the final state of every node
 * it touches) to DIR/wal without syncing.  Then, outside the lock, it waits
 * until its record is applied: the first waiter takes the sync lock (an OFD
 * lock on byte 0 of DIR/lock) and, as the leader, fdatasyncs the wal once
 * for every record appended so far, applies them to the tree (under
 * DIR/lock, without fsyncs), and publishes the new applied position; the
 * others find their record applied and return.  The tree is never ahead of
 * the durable wal, so after a power loss replaying the wal (every step
 * assigns a final state) restores every acknowledged write.  The positions
 * (LSNs) live in DIR/lock itself, mapped shared by every writer. */
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>

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
	size_t n_ov, cap_ov;
	size_t *hash; /* open addressing over ov: index + 1, 0 = empty */
	size_t n_hash;
	struct step *steps;
	size_t n_steps, cap_steps;
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
	free(t->hash);
	free(t->steps);
	strv_free(t->eph);
	*t = (struct txn){ 0 };
}

static uint64_t fnv1a(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = UINT64_C(14695981039346656037);

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * UINT64_C(1099511628211);
	return h;
}

/* The slot of path in t->hash (its entry, or the empty slot where it goes). */
static size_t *ov_slot(struct txn *t, const char *path)
{
	size_t mask = t->n_hash - 1, i = fnv1a(path, strlen(path)) & mask;

	while (t->hash[i] && strcmp(t->ov[t->hash[i] - 1].path, path))
		i = (i + 1) & mask;
	return &t->hash[i];
}

/* Grow the hash to keep it at most half full (n_ov + 1 entries). */
static int ov_hash_grow(struct txn *t)
{
	size_t *old = t->hash, n_old = t->n_hash;

	if ((t->n_ov + 1) * 2 <= t->n_hash)
		return 0;
	t->n_hash = n_old ? n_old * 2 : 64;
	t->hash = calloc(t->n_hash, sizeof(*t->hash));
	if (!t->hash) {
		t->hash = old;
		t->n_hash = n_old;
		return -ENOMEM;
	}
	for (size_t i = 0; i < n_old; i++)
		if (old[i])
			*ov_slot(t, t->ov[old[i] - 1].path) = old[i];
	free(old);
	return 0;
}

static struct ov *ov_get(struct fs_store *fs, struct txn *t, const char *path)
{
	struct ov *o;
	size_t *slot;
	int r;

	if (t->n_hash && *(slot = ov_slot(t, path)))
		return &t->ov[*slot - 1];
	t->err = -ENOMEM;
	if (ov_hash_grow(t) < 0)
		return NULL;
	if (t->n_ov == t->cap_ov) {
		size_t cap = t->cap_ov ? t->cap_ov * 2 : 16;
		struct ov *n = realloc(t->ov, cap * sizeof(*t->ov));
		if (!n)
			return NULL;
		t->ov = n;
		t->cap_ov = cap;
	}
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
	*ov_slot(t, path) = t->n_ov;
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
	struct step *n = t->steps;

	if (t->n_steps == t->cap_steps) {
		size_t cap = t->cap_steps ? t->cap_steps * 2 : 16;
		n = realloc(t->steps, cap * sizeof(*t->steps));
		if (!n)
			return -ENOMEM;
		t->steps = n;
		t->cap_steps = cap;
	}
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

/* Fold a step of a record appended but not yet applied into the view: the
 * tree plus those steps is what a transaction validates against. */
static int ov_fold(struct fs_store *fs, struct txn *t, const struct step *st)
{
	_cleanup_free_ char *parent = NULL;
	struct ov *o = ov_get(fs, t, st->path), *p = NULL;

	if (!o)
		return t->err;
	if ((st->type == STEP_PUT && !o->exists) || (st->type == STEP_DEL && o->exists)) {
		if (strcmp(st->path, "/")) {
			parent = store_path_parent(st->path);
			if (!parent || !(p = ov_get(fs, t, parent)))
				return parent ? t->err : -ENOMEM;
			p->nchild_delta += st->type == STEP_PUT ? 1 : -1;
			o = ov_get(fs, t, st->path); /* ov_get may have moved the array */
		}
		o->exists = st->type == STEP_PUT;
		o->cversion = 0;
		o->nchild_base = 0;
		o->nchild_delta = 0;
	}
	switch (st->type) {
	case STEP_PUT:
		o->h = st->h;
		break;
	case STEP_DEL:
		break;
	case STEP_CVER:
		if (o->exists)
			o->cversion = st->cv;
		break;
	case STEP_SEQ:
		if (o->exists)
			o->cversion = MAX(o->cversion, st->cv);
		break;
	default:
		return -EIO;
	}
	return 0;
}

/* Counter steps later overwritten in the same batch by a step of the same
 * type and path are skipped: a batch of 1000 creates under one parent writes
 * its .cversion once.  skip[i] is set for those. */
static int steps_superseded(const struct step *steps, size_t n, bool *skip)
{
	size_t n_hash = 64, *hash;

	while (n_hash < n * 2)
		n_hash *= 2;
	hash = calloc(n_hash, sizeof(*hash));
	if (!hash)
		return -ENOMEM;
	for (size_t i = n; i-- > 0;) {
		const struct step *st = &steps[i];
		size_t h;

		skip[i] = false;
		if (st->type != STEP_CVER && st->type != STEP_SEQ)
			continue;
		h = (fnv1a(st->path, strlen(st->path)) ^ (uint64_t)st->type) & (n_hash - 1);
		while (hash[h] && (steps[hash[h] - 1].type != st->type || strcmp(steps[hash[h] - 1].path, st->path)))
			h = (h + 1) & (n_hash - 1);
		if (hash[h])
			skip[i] = true; /* a later one writes this counter */
		else
			hash[h] = i + 1;
	}
	free(hash);
	return 0;
}

/* Apply steps to the tree.  While a durable record covers them (journalled)
 * they skip their fsyncs; a PUT whose parent is gone is skipped (replaying a
 * record after a later one deleted the parent: that later one is replayed
 * too).  The test hook TREADLE_STORE_CRASH_AFTER_STEPS=K _exit(99)s after K
 * steps (*count counts them across records). */
static int apply_steps(struct fs_store *fs, const struct step *steps, size_t n, int *count)
{
	const char *crash = getenv("TREADLE_STORE_CRASH_AFTER_STEPS"); /* test hook, see docs/STORE.md */
	_cleanup_free_ bool *skip = calloc(n ? n : 1, sizeof(*skip));
	int k = -1, r;

	if (!skip)
		return -ENOMEM;
	if (crash && (safe_atoi(crash, &k) < 0 || k < 0))
		k = -1;
	if (n > 1 && (r = steps_superseded(steps, n, skip)) < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		const struct step *st = &steps[i];
		if (count && k >= 0 && (*count)++ >= k)
			_exit(99);
		if (skip[i])
			continue;
		switch (st->type) {
		case STEP_PUT:
			r = store_fs_put_node(fs, st->path, &st->h, st->data, st->len);
			if (r == -ENOENT && fs->journalled)
				r = 0;
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

/* Journal body: "TJ1 <n>\n", then per step
 * "<type> <pathlen> <version> <ctime> <mtime> <owner> <cv> <datalen>\n<path><data>", then "END\n".
 * A wal record is "R <bodylen> <fnv1a-64 of the body, %016x>\n<body>". */
static int record_encode(const struct txn *t, char **ret, size_t *ret_len)
{
	_cleanup_free_ char *buf = NULL;
	size_t size = 0, hl;
	FILE *f = open_memstream(&buf, &size);
	char hdr[64];
	char *out;

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
	hl = (size_t)snprintf(hdr, sizeof(hdr), "R %zu %016" PRIx64 "\n", size, fnv1a(buf, size));
	out = malloc(hl + size);
	if (!out)
		return -ENOMEM;
	memcpy(out, hdr, hl);
	memcpy(out + hl, buf, size);
	*ret = out;
	*ret_len = hl + size;
	return 0;
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

/* A legacy intent journal (DIR/journal, written by versions before the wal):
 * apply it, flush, remove it. */
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
	fs->journalled = true;
	r = apply_steps(fs, steps, n, NULL);
	fs->journalled = false;
	if (r >= 0 && syncfs(fs->dfd) < 0)
		r = negerrno();
	if (r >= 0) {
		unlinkat(fs->dfd, "journal", 0);
		fsync(fs->dfd);
	}
	steps_free(steps, n);
	return r;
}

/* ---- the write-ahead log ------------------------------------------------- */

#define WAL_MAGIC "TW1\n"
#define WAL_HDR 4
#define WAL_CHECKPOINT (16u << 20) /* bytes of wal after which it is checkpointed */
#define SHARED_MAGIC "TSH1"
#define SHARED_SIZE 4096

/* In DIR/lock, mapped shared by every writable handle: the wal positions as
 * LSNs (bytes ever appended; the wal file holds [base, written) after its
 * 4-byte header).  Valid for the boot that wrote boot_id: the page cache
 * behind them (and the tree's unsynced applies) does not survive a reboot,
 * the wal does, so the first writable open after a reboot replays it. */
struct fs_shared {
	char magic[8];
	char boot_id[48];
	uint64_t base;	  /* LSN of the byte after the wal's header */
	uint64_t written; /* end of the last whole record appended (under the lock) */
	uint64_t applied; /* end of the last record applied to the tree (durable) */
};

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELEASE)

static void read_boot_id(char id[48])
{
	_cleanup_free_ char *buf = NULL;

	memset(id, 0, 48);
	if (read_file_at(AT_FDCWD, "/proc/sys/kernel/random/boot_id", &buf, NULL) >= 0)
		snprintf(id, 48, "%s", buf);
	id[strcspn(id, "\n")] = 0;
}

static int flock_ex(int fd)
{
	while (flock(fd, LOCK_EX) < 0)
		if (errno != EINTR)
			return negerrno();
	return 0;
}

/* The sync lock: an OFD lock on byte 0 of DIR/lock (independent of its flock). */
static int sync_lock(struct fs_store *fs, bool lock)
{
	struct flock fl = { .l_type = lock ? F_WRLCK : F_UNLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };

	while (fcntl(fs->lock_fd, F_OFD_SETLKW, &fl) < 0)
		if (errno != EINTR)
			return negerrno();
	return 0;
}

static int pwrite_all(int fd, const void *data, size_t len, off_t off)
{
	const char *p = data;

	while (len) {
		ssize_t n = pwrite(fd, p, len, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return negerrno();
		}
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

/* Call fn on each whole record of the wal between offsets from and to (to =
 * SIZE_MAX: to the end of the file).  *ret_end: the offset after the last
 * good record; a record that is torn or does not check ends the walk
 * (-EIO only when to was given: records below `written` are whole). */
static int wal_walk(struct fs_store *fs, size_t from, size_t to,
		    int (*fn)(struct fs_store *fs, struct step *steps, size_t n, void *ud), void *ud, size_t *ret_end)
{
	_cleanup_free_ char *buf = NULL;
	size_t len, off = 0;
	struct stat st;
	int r = 0;

	if (to == SIZE_MAX) {
		if (fstat(fs->wal_fd, &st) < 0)
			return negerrno();
		to = (size_t)st.st_size;
	}
	if (to <= from) {
		if (ret_end)
			*ret_end = from;
		return 0;
	}
	len = to - from;
	buf = malloc(len + 1);
	if (!buf)
		return -ENOMEM;
	while (off < len) {
		ssize_t n = pread(fs->wal_fd, buf + off, len - off, (off_t)(from + off));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return negerrno();
		if (n == 0)
			break;
		off += (size_t)n;
	}
	len = off;
	buf[len] = 0;
	for (off = 0; off < len;) {
		char hdr[64];
		size_t bl, hl = MIN(len - off, sizeof(hdr) - 1);
		unsigned long long h;
		int used = 0;
		_cleanup_free_ char *body = NULL;
		struct step *steps = NULL;
		size_t n = 0;

		memcpy(hdr, buf + off, hl);
		hdr[hl] = 0;
		if (sscanf(hdr, "R %zu %llx\n%n", &bl, &h, &used) != 2 || used <= 0 || bl > len - off - (size_t)used ||
		    fnv1a(buf + off + used, bl) != (uint64_t)h)
			break;
		body = malloc(bl + 1);
		if (!body)
			return -ENOMEM;
		memcpy(body, buf + off + used, bl);
		body[bl] = 0;
		if (journal_parse(body, bl, &steps, &n) < 0)
			break;
		r = fn ? fn(fs, steps, n, ud) : 0;
		steps_free(steps, n);
		if (r < 0)
			return r;
		off += (size_t)used + bl;
	}
	if (ret_end)
		*ret_end = from + off;
	return off < len && ret_end == NULL ? -EIO : 0;
}

static int fold_record(struct fs_store *fs, struct step *steps, size_t n, void *ud)
{
	struct txn *t = ud;

	for (size_t i = 0; i < n; i++) {
		int r = ov_fold(fs, t, &steps[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

static int apply_record(struct fs_store *fs, struct step *steps, size_t n, void *ud)
{
	return apply_steps(fs, steps, n, ud);
}

/* Under the lock: apply the records up to LSN `to` (durable: the caller
 * fdatasync'ed the wal after they were written), publish `applied`, and
 * checkpoint a wal grown past WAL_CHECKPOINT when nothing else is pending. */
static int wal_apply_to(struct fs_store *fs, uint64_t to)
{
	struct fs_shared *sh = fs->shared;
	uint64_t from = LOAD(sh->applied), base = sh->base;
	int count = 0, r;

	if (to <= from)
		return 0;
	fs->journalled = true;
	r = wal_walk(fs, WAL_HDR + (size_t)(from - base), WAL_HDR + (size_t)(to - base), apply_record, &count, NULL);
	fs->journalled = false;
	if (r < 0)
		return r;
	STORE(sh->applied, to);
	if (LOAD(sh->written) == to && to - base > WAL_CHECKPOINT)
		return store_fs_wal_checkpoint(fs);
	return 0;
}

/* Under the lock: make every record appended so far durable and applied. */
static int wal_drain(struct fs_store *fs)
{
	uint64_t w = LOAD(fs->shared->written);

	if (LOAD(fs->shared->applied) >= w)
		return 0;
	if (fdatasync(fs->wal_fd) < 0)
		return negerrno();
	return wal_apply_to(fs, w);
}

int store_fs_wal_checkpoint(struct fs_store *fs)
{
	struct fs_shared *sh = fs->shared;
	int r = wal_drain(fs);

	if (r < 0)
		return r;
	if (LOAD(sh->written) == sh->base)
		return 0;
	/* the tree (data and metadata) durable, then the wal emptied durably:
	 * a replay never re-applies records older than a direct repair */
	if (syncfs(fs->dfd) < 0 || ftruncate(fs->wal_fd, WAL_HDR) < 0 || fdatasync(fs->wal_fd) < 0)
		return negerrno();
	sh->base = LOAD(sh->written);
	return 0;
}

/* Append t's steps as one record (under the lock); *ret_end: its end LSN. */
static int wal_append(struct fs_store *fs, const struct txn *t, uint64_t *ret_end)
{
	struct fs_shared *sh = fs->shared;
	_cleanup_free_ char *rec = NULL;
	uint64_t w = LOAD(sh->written);
	size_t len;
	int r = record_encode(t, &rec, &len);

	if (r < 0)
		return r;
	r = pwrite_all(fs->wal_fd, rec, len, (off_t)(WAL_HDR + (w - sh->base)));
	if (r < 0)
		return r;
	*ret_end = w + len;
	STORE(sh->written, w + len);
	return 0;
}

/* Outside the lock: return once the record ending at LSN end is durable and
 * applied.  The first waiter leads: one fdatasync for every record appended
 * so far, then it applies them; waiters that queued behind it find theirs
 * applied. */
static int wal_wait(struct fs_store *fs, uint64_t end)
{
	struct fs_shared *sh = fs->shared;
	int r;

	for (;;) {
		uint64_t w;

		if (LOAD(sh->applied) >= end)
			return 0;
		if ((r = sync_lock(fs, true)) < 0)
			return r;
		if (LOAD(sh->applied) >= end) {
			sync_lock(fs, false);
			return 0;
		}
		w = LOAD(sh->written);
		if (fdatasync(fs->wal_fd) < 0)
			r = negerrno();
		else if ((r = flock_ex(fs->lock_fd)) >= 0) {
			r = wal_apply_to(fs, w);
			flock(fs->lock_fd, LOCK_UN);
		}
		sync_lock(fs, false);
		if (r < 0)
			return r;
	}
}

static int wal_create(struct fs_store *fs)
{
	if (pwrite_all(fs->wal_fd, WAL_MAGIC, WAL_HDR, 0) < 0 || fsync(fs->wal_fd) < 0 || fsync(fs->dfd) < 0)
		return negerrno();
	return 0;
}

int store_fs_wal_check(const void *data, size_t len)
{
	return len == 0 || (len >= WAL_HDR && !memcmp(data, WAL_MAGIC, WAL_HDR)) ? 0 : -EIO;
}

/* Under the lock, at open: map the shared positions and open the wal.  The
 * first writable open after a reboot (another boot id) replays every record
 * of the wal (the tree's unsynced applies may be lost; the records are
 * durable), drops a torn tail and resets the positions; later opens only
 * finish records a killed leader left pending.  -EIO: DIR/wal is not a wal. */
int store_fs_wal_open(struct fs_store *fs)
{
	struct fs_shared *sh;
	char boot[48], head[WAL_HDR];
	struct stat st;
	size_t end;
	void *m;
	int r;

	if (fstat(fs->lock_fd, &st) < 0)
		return negerrno();
	if (st.st_size < SHARED_SIZE && ftruncate(fs->lock_fd, SHARED_SIZE) < 0)
		return negerrno();
	m = mmap(NULL, SHARED_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fs->lock_fd, 0);
	if (m == MAP_FAILED)
		return negerrno();
	fs->shared = sh = m;
	fs->wal_fd = openat(fs->dfd, "wal", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fs->wal_fd < 0)
		return negerrno();
	if (fstat(fs->wal_fd, &st) < 0)
		return negerrno();
	if (st.st_size == 0 && (r = wal_create(fs)) < 0)
		return r;
	if (pread(fs->wal_fd, head, WAL_HDR, 0) != WAL_HDR || store_fs_wal_check(head, WAL_HDR) < 0)
		return -EIO;
	read_boot_id(boot);
	if (!memcmp(sh->magic, SHARED_MAGIC, 4) && boot[0] && !strcmp(sh->boot_id, boot)) {
		if (st.st_size == 0) { /* a new wal (the old one set aside by fsck): it starts here */
			sh->base = LOAD(sh->written);
			STORE(sh->applied, sh->base);
			return 0;
		}
		return wal_drain(fs);
	}
	/* after a reboot (or the first open of this store): replay it all */
	fs->journalled = true;
	r = wal_walk(fs, WAL_HDR, SIZE_MAX, apply_record, NULL, &end);
	fs->journalled = false;
	if (r < 0)
		return r;
	if ((size_t)st.st_size > end && (ftruncate(fs->wal_fd, (off_t)end) < 0 || fdatasync(fs->wal_fd) < 0))
		return negerrno();
	sh->base = 0;
	STORE(sh->written, (uint64_t)(end - WAL_HDR));
	STORE(sh->applied, (uint64_t)(end - WAL_HDR));
	memcpy(sh->boot_id, boot, sizeof(boot));
	memcpy(sh->magic, SHARED_MAGIC, 4);
	return 0;
}

void store_fs_wal_close(struct fs_store *fs)
{
	if (fs->shared)
		munmap(fs->shared, SHARED_SIZE);
	fs->shared = NULL;
	closep(&fs->wal_fd);
}

/* ---- the lock and transactions ------------------------------------------- */

int store_fs_lock(struct fs_store *fs)
{
	int r = flock_ex(fs->lock_fd);

	if (r < 0)
		return r;
	if (faccessat(fs->dfd, "journal", F_OK, 0) == 0) {
		r = store_fs_journal_replay(fs);
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

/* Under the lock: the view starts from the tree plus the records appended
 * but not applied yet. */
static int txn_begin(struct fs_store *fs, struct txn *t)
{
	struct fs_shared *sh = fs->shared;
	uint64_t a = LOAD(sh->applied), w = LOAD(sh->written);

	if (a >= w)
		return 0;
	return wal_walk(fs, WAL_HDR + (size_t)(a - sh->base), WAL_HDR + (size_t)(w - sh->base), fold_record, t, NULL);
}

/* Run ops as one transaction: validated and appended under the lock, then
 * durable and applied by the group commit (wal_wait) before returning.
 * ret_paths: NULL or n entries for the created paths. */
int store_fs_txn(struct fs_store *fs, const struct store_op *ops, size_t n, size_t *ret_failed, char **ret_paths)
{
	struct txn t = { 0 };
	uint64_t end = 0;
	int r;

	if (fs->expired)
		return -ESHUTDOWN;
	if (fs->read_only)
		return -EROFS;
	r = store_fs_lock(fs);
	if (r < 0)
		return r;
	r = txn_begin(fs, &t);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		r = txn_op(fs, &t, &ops[i], ret_paths ? &ret_paths[i] : NULL);
		if (r < 0) {
			if (ret_failed)
				*ret_failed = i;
			for (size_t j = 0; ret_paths && j <= i; j++) {
				free(ret_paths[j]);
				ret_paths[j] = NULL;
			}
			goto out;
		}
	}
	if (t.eph && (r = eph_index_add(fs, t.eph)) < 0)
		goto out;
	if (t.n_steps)
		r = wal_append(fs, &t, &end);
out:
	store_fs_unlock(fs);
	txn_done(&t);
	if (r >= 0 && end)
		r = wal_wait(fs, end);
	return r;
}

/* Under the lock: delete those of paths that are ephemerals of owner, as one
 * record made durable and applied before returning. */
int store_fs_delete_ephemerals(struct fs_store *fs, char *const *paths, size_t n, int64_t owner)
{
	struct txn t = { 0 };
	uint64_t end;
	int r = fs->shared ? txn_begin(fs, &t) : -EROFS;

	for (size_t i = 0; r >= 0 && i < n; i++) {
		struct store_op op = { .type = STORE_OP_DELETE, .path = paths[i], .version = -1 };
		struct ov *o = ov_get(fs, &t, paths[i]);

		if (!o || !o->exists || o->h.owner != owner)
			continue; /* gone, unreadable, or not its own */
		r = txn_op(fs, &t, &op, NULL);
		if (r == -ENOTEMPTY || r == -ENOENT)
			r = 0;
	}
	if (r >= 0 && t.n_steps && (r = wal_append(fs, &t, &end)) >= 0)
		r = wal_drain(fs);
	txn_done(&t);
	return r;
}
