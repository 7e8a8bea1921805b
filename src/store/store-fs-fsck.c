/* store-fs-fsck.c: store_fsck of the embedded store. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "../basic/fileio.h"
#include "../basic/util.h"
#include "store-fs-internal.h"

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
	_cleanup_free_ char *rel = store_fs_rel(path, NULL), *parent = store_path_parent(path), *to = NULL;
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
	r = store_fs_put_counter(fs, parent, CVER_FILE, store_fs_cversion(fs, parent) + 1);
	if (r >= 0)
		r = store_fs_fsync_at(fs->dfd, "lost+found");
	if (r >= 0) {
		_cleanup_free_ char *prel = store_fs_rel(parent, NULL);
		r = prel ? store_fs_fsync_at(fs->dfd, prel) : -ENOMEM;
	}
	if (r >= 0)
		*ret_to = TAKE_PTR(to);
	return r;
}

static int fsck_node(struct fs_store *fs, const char *path, void *ud)
{
	struct fsck *f = ud;
	_cleanup_free_ char *rel = store_fs_rel(path, NULL);
	struct fs_hdr h;
	bool bad = false;
	int64_t cv;
	int r;

	if (!rel)
		return -ENOMEM;
	r = store_fs_node_read(fs, path, &h, NULL, NULL);
	if (r == -ENOENT && !f->repair && faccessat(fs->dfd, rel, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
		return 1; /* deleted while we looked (no lock without --repair) */
	if (r == -EIO || r == -ENOENT) {
		const char *why = r == -EIO ? "bad header in .node" : store_fs_is_dir_at(fs->dfd, rel) ? "no .node file" : "not a directory";
		_cleanup_free_ char *to = NULL;

		if (!f->repair)
			return fsck_note(f, false, "%s: unreadable node (%s/%s: %s)", path, fs->dir, rel, why) < 0 ? -ENOMEM : 1;
		if (!strcmp(path, "/")) { /* the root cannot go: it becomes empty */
			struct fs_hdr root = { 0, now_ms(), now_ms(), 0 };
			r = store_fs_put_node(fs, "/", &root, NULL, 0);
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
	cv = store_fs_cversion_x(fs, path, &bad);
	if (!bad)
		return 0;
	if (f->repair) {
		r = store_fs_put_counter(fs, path, CVER_FILE, cv);
		if (r >= 0)
			r = store_fs_put_counter(fs, path, CSEQ_FILE, cv);
		if (r >= 0)
			r = store_fs_fsync_at(fs->dfd, rel);
		if (r < 0)
			return r;
	}
	return fsck_note(f, f->repair, "%s: corrupt child counter (%s/%s/%s or %s)%s%" PRId64, path, fs->dir, rel,
			 CVER_FILE, CSEQ_FILE, f->repair ? ": repaired, now " : ", recovered as ", cv) < 0 ? -ENOMEM : 0;
}

/* fsck's handle holds only the directory and the lock (no session, no watch). */
static void fsck_close(struct fs_store *fs)
{
	store_fs_wal_close(fs);
	closep(&fs->lock_fd);
	closep(&fs->dfd);
	free(fs->dir);
	free(fs);
}

int store_fs_fsck(const char *dir, bool repair, struct store_fsck_result *res, struct error *err)
{
	struct fs_store *fs;
	struct fsck f = { .res = res, .repair = repair };
	_cleanup_free_ char *jbuf = NULL, *wbuf = NULL;
	int64_t id;
	size_t jlen, wlen = 0;
	int r;

	*res = (struct store_fsck_result){ 0 };
	fs = store_fs_new(dir, NULL);
	if (!fs)
		return error_sys(err, ENOMEM, "store fsck");
	fs->dfd = open(fs->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fs->dfd < 0 || !store_fs_is_dir_at(fs->dfd, "tree")) {
		r = error_set(err, ERR_PERM, ENOENT, "store fsck: no embedded store at %s", fs->dir);
		fsck_close(fs);
		return r;
	}
	fs->ordered_meta = false; /* fsck fsyncs every step */
	r = store_fs_format_check(fs, false, err);
	if (r < 0)
		goto out;
	if (faccessat(fs->dfd, "format", F_OK, 0) < 0) {
		if (repair && (r = write_file_atomic_at(fs->dfd, "format", FS_FORMAT "\n", strlen(FS_FORMAT) + 1, 0644)) < 0)
			goto sys;
		if ((r = fsck_note(&f, repair, "%s/format: missing%s", fs->dir, repair ? ": repaired" : "")) < 0)
			goto sys;
	}
	if (repair) { /* under the lock, without replaying the journal first (store_fs_lock would) */
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
		r = store_fs_journal_replay(fs); /* an interrupted multi: finish it */
	} else if (r == -ENOENT)
		r = 0;
	if (r < 0)
		goto sys;
	r = read_file_at(fs->dfd, "wal", &wbuf, &wlen);
	if (r >= 0 && store_fs_wal_check(wbuf, MIN(wlen, (size_t)4)) == -EIO) {
		_cleanup_free_ char *to = strdup_printf("wal.corrupt-%" PRId64, now_ms());
		if (!to) {
			r = -ENOMEM;
			goto sys;
		}
		if (repair && (renameat(fs->dfd, "wal", fs->dfd, to) < 0 || fsync(fs->dfd) < 0)) {
			r = negerrno();
			goto sys;
		}
		r = fsck_note(&f, repair, "%s/wal: not a write-ahead log (%zu bytes)%s%s", fs->dir, wlen,
			      repair ? ": repaired, set aside as " : "", repair ? to : "");
	} else if (r == -ENOENT)
		r = 0;
	if (r >= 0 && repair)
		r = store_fs_wal_open(fs); /* records a killed writer left: finish them */
	if (r < 0)
		goto sys;
	r = store_fs_session_counter_read(fs, &id);
	if (r == -EIO) {
		int64_t next = store_fs_session_counter_recover(fs);
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
	r = store_fs_tree_walk(fs, "/", fsck_node, &f);
	if (r >= 0 && repair)
		r = store_fs_wal_checkpoint(fs); /* no later replay of older records over the repairs */
	if (r < 0)
		goto sys;
	r = 0;
	goto out;
sys:
	error_sys(err, -r, "store fsck %s", fs->dir);
out:
	if (fs->lock_fd >= 0)
		flock(fs->lock_fd, LOCK_UN);
	fsck_close(fs);
	if (r < 0) {
		strv_free(res->lines);
		*res = (struct store_fsck_result){ 0 };
	}
	return r;
}
