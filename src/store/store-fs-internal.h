/* store-fs-internal.h: what the parts of the embedded store backend share
 * (store-fs.c and store-fs-*.c; the layout is described in store-fs.c and
 * docs/STORE.md).  Functions named store_fs_* here are internal to the
 * backend; every one returns >= 0 or -errno unless said otherwise. */
#pragma once

#include <stdint.h>
#include <sys/types.h>
#include <time.h>

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

struct fs_shared; /* the wal positions in DIR/lock (store-fs-journal.c) */

struct fs_store {
	struct store base;
	char *dir;
	int dfd, lock_fd, session_fd;
	int wal_fd;		   /* DIR/wal, opened by store_fs_wal_open */
	struct fs_shared *shared;  /* DIR/lock mapped shared, or NULL */
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
	bool journalled;   /* applying durable wal records: steps skip their fsyncs */
	bool read_only;	   /* opened with store_options.read_only: no session, writes refused */
};

static inline struct fs_store *FS(struct store *s)
{
	return (struct fs_store *)s;
}

static inline int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- store-fs-node.c: node files ---- */
/* A handle on directory dir (trailing '/' dropped), nothing opened yet; NULL if out of memory. */
struct fs_store *store_fs_new(const char *dir, const struct store_options *opts);
/* "tree/a/b" for "/a/b", "tree" for "/", with an optional "/<suffix>". */
char *store_fs_rel(const char *path, const char *suffix);
int store_fs_fsync_at(int dfd, const char *rel);
bool store_fs_is_dir_at(int dfd, const char *rel);
/* Header and (optionally) data of a node: -ENOENT if absent, -EIO if corrupt. */
int store_fs_node_read(struct fs_store *fs, const char *path, struct fs_hdr *h, char **ret_data, size_t *ret_len);
/* The child change counter (see store-fs-node.c); *ret_bad (may be NULL): a counter was corrupt. */
int64_t store_fs_cversion_x(struct fs_store *fs, const char *path, bool *ret_bad);
int64_t store_fs_cversion(struct fs_store *fs, const char *path);
int64_t store_fs_count_children(struct fs_store *fs, const char *path);
void store_fs_fill_stat(struct fs_store *fs, const char *path, const struct fs_hdr *h, size_t len,
			struct store_stat *st);
/* Under the lock: make path exist with this header and data / not exist / set a counter file. */
int store_fs_put_node(struct fs_store *fs, const char *path, const struct fs_hdr *h, const void *data, size_t len);
int store_fs_del_node(struct fs_store *fs, const char *path);
int store_fs_put_counter(struct fs_store *fs, const char *path, const char *name, int64_t cv);
/* Call fn on path and each node below it, parents first, children in name
 * order; fn returns < 0 to stop, 1 to skip the node's children. */
int store_fs_tree_walk(struct fs_store *fs, const char *path, int (*fn)(struct fs_store *fs, const char *path, void *ud),
		       void *ud);
int store_fs_init_tree(struct fs_store *fs);
#define FS_FORMAT "treadle-store 1"
int store_fs_format_check(struct fs_store *fs, bool write, struct error *err);

/* ---- store-fs-journal.c: transactions ---- */
int store_fs_lock(struct fs_store *fs); /* also replays a legacy intent journal */
void store_fs_unlock(struct fs_store *fs);
/* Apply and remove a legacy intent journal (DIR/journal of older versions). */
int store_fs_journal_replay(struct fs_store *fs);
/* Under the lock: map DIR/lock's shared positions, open (or create) DIR/wal,
 * replay it after a reboot or finish what a killed writer left pending.
 * -EIO: DIR/wal is not a wal. */
int store_fs_wal_open(struct fs_store *fs);
void store_fs_wal_close(struct fs_store *fs);
/* 0 if data (the start of a wal file, or all of it) has the wal's header, else -EIO. */
int store_fs_wal_check(const void *data, size_t len);
/* Under the lock: drain, syncfs, empty the wal (after direct repairs). */
int store_fs_wal_checkpoint(struct fs_store *fs);
/* Run ops as one transaction (group-committed through the wal).  ret_paths:
 * NULL or n entries that receive each create's path. */
int store_fs_txn(struct fs_store *fs, const struct store_op *ops, size_t n, size_t *ret_failed, char **ret_paths);
/* Under the lock: delete those of paths that are ephemerals of owner (one
 * durable record). */
int store_fs_delete_ephemerals(struct fs_store *fs, char *const *paths, size_t n, int64_t owner);

/* ---- store-fs-session.c: sessions ---- */
int store_fs_session_create(struct fs_store *fs);
/* Delete a session's ephemerals and its files.  Under the lock. */
int store_fs_session_remove(struct fs_store *fs, int64_t id, const char *name);
void store_fs_reg_remove(struct fs_store *fs, int64_t id);
/* Reap a session if its owner is dead.  Takes the lock unless locked. */
int store_fs_session_reap(struct fs_store *fs, const char *name, bool locked);
int store_fs_peer_add(struct fs_store *fs, const char *name, bool locked);
void store_fs_peer_drop(struct fs_store *fs, size_t i);
/* Look at every session file: reap the dead, watch the live. */
int store_fs_sessions_sweep(struct fs_store *fs, bool locked);
/* next-session: 0 and the id, -ENOENT if absent, -EIO if corrupt. */
int store_fs_session_counter_read(struct fs_store *fs, int64_t *ret);
int64_t store_fs_session_counter_recover(struct fs_store *fs);
/* inotify, epoll and the pidfds of other sessions' owners, set up on first need. */
int store_fs_events(struct fs_store *fs);

/* ---- store-fs-watch.c: watches and dispatch ---- */
struct fs_watch *store_fs_watch_find(struct fs_store *fs, int kind, const char *path, store_watch_fn fn, void *ud);
struct fs_watch *store_fs_watch_new(struct fs_store *fs, int kind, const char *path, store_watch_fn fn, void *ud);
/* 1 if the node's directory is watched (it exists), 0 if an ancestor is, or -errno. */
int store_fs_watch_arm(struct fs_store *fs, struct fs_watch *w);
void store_fs_watch_drop(struct fs_store *fs, struct fs_watch *w);
void store_fs_watch_remove(struct fs_store *fs, size_t i);
int store_fs_fd(struct store *s);
int store_fs_dispatch(struct store *s);

/* ---- store-fs-fsck.c ---- */
/* store_fsck of the embedded store in directory dir. */
int store_fs_fsck(const char *dir, bool repair, struct store_fsck_result *res, struct error *err);
