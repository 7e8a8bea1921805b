/* store.h: the cell store, with ZooKeeper's semantics.
 *
 * Every component that shares state in a cell (master, node agents, CLI) talks
 * to the store through this interface only, so the embedded backend (a tree in
 * a directory, the single-machine default) and the ZooKeeper backend are
 * interchangeable.  Domain layer: includes basic/ only.
 *
 * Semantics follow ZooKeeper:
 *  - Paths are absolute, '/'-separated, no trailing '/', components never "."
 *    or ".." nor starting with '.' (the embedded backend keeps metadata there).
 *  - Each node has data (bytes, may be empty) and children; `version` counts
 *    data changes (starts at 0); `cversion` counts child changes.
 *  - STORE_SEQUENTIAL appends a 10-digit counter (from the parent's cversion)
 *    to the name; STORE_EPHEMERAL nodes belong to this handle's session and are
 *    deleted when the session ends (close, process death including SIGKILL, or
 *    expiry); they cannot have children.
 *  - Watches are one-shot.  A data watch (set by store_get/store_exists) fires
 *    once on the next create / change / delete of that node; a child watch (set
 *    by store_children) fires once on the next child create / delete or the
 *    node's deletion.  Callbacks run only inside store_dispatch().
 *  - store_multi applies all operations or none.
 *
 * Return values: >= 0 success, or a negative errno:
 *   -ENOENT     no such node (ZNONODE), or parent missing on create
 *   -EEXIST     node exists (ZNODEEXISTS)
 *   -ESTALE     version mismatch (ZBADVERSION)
 *   -ENOTEMPTY  delete of a node with children (ZNOTEMPTY)
 *   -EPERM      children under an ephemeral node (ZNOCHILDRENFOREPHEMERALS)
 *   -EINVAL     malformed path or arguments (ZBADARGUMENTS)
 *   -ENOTCONN   connection lost, outcome unknown; retry (ZCONNECTIONLOSS)
 *   -ESHUTDOWN  session expired; ephemerals are gone, reopen (ZSESSIONEXPIRED)
 *   -E2BIG      data larger than STORE_MAX_DATA
 *   -EROFS      a mutation on a handle opened read_only
 *   -EOVERFLOW  sequential create under a node whose 10-digit counter is used up
 *   -EIO        (embedded) the node's file is corrupt; `treadle store fsck` repairs
 *   other       system failures (-EIO, -ENOMEM ...)
 * Ownership: returned buffers and vectors belong to the caller (free/strv_free).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../basic/error.h"

#define STORE_MAX_DATA (1024 * 1024 - 1024) /* just under ZooKeeper's jute.maxbuffer */

struct store;

struct store_stat {
	int64_t version;	 /* data version, 0 after create */
	int64_t cversion;	 /* child changes */
	int64_t ctime_ms;	 /* creation, ms since the epoch */
	int64_t mtime_ms;	 /* last data change */
	int64_t ephemeral_owner; /* session id, 0 if persistent */
	int32_t num_children;
	int32_t data_length;
};

enum store_create_flags {
	STORE_PERSISTENT = 0,
	STORE_EPHEMERAL = 1 << 0,
	STORE_SEQUENTIAL = 1 << 1,
};

enum store_event {
	STORE_EVENT_CREATED,  /* data watch: node created */
	STORE_EVENT_DELETED,  /* data or child watch: node deleted */
	STORE_EVENT_CHANGED,  /* data watch: data changed */
	STORE_EVENT_CHILD,    /* child watch: a child was created or deleted */
	STORE_EVENT_SESSION,  /* session state changed; see store_state() */
};

enum store_state {
	STORE_CONNECTED,
	STORE_CONNECTING,	/* connection lost; session may still be alive */
	STORE_EXPIRED,		/* session gone: reopen and re-register */
};

/* Called from store_dispatch(); path is borrowed for the call. */
typedef void (*store_watch_fn)(struct store *s, enum store_event ev, const char *path, void *userdata);

struct store_options {
	int session_timeout_ms;		/* ZooKeeper session timeout; 0 = default 10000 */
	store_watch_fn session_cb;	/* STORE_EVENT_SESSION notifications, may be NULL */
	void *session_userdata;
	/* Only reads will be made: the embedded store opens without a session and
	 * writes nothing (works on a full disk or a read-only mount); every
	 * mutation then fails with -EROFS.  Ignored by ZooKeeper. */
	bool read_only;
};

/* Open a session on the store at `url`:
 *   file:///abs/dir or /abs/dir   embedded store kept in that directory
 *                                 (created if missing)
 *   zk://host:port[,host:port...][/chroot]   ZooKeeper ensemble
 * opts may be NULL.  On failure fills err (exit class ERR_PERM for a bad URL,
 * ERR_TEMP when unreachable). */
int store_open(const char *url, const struct store_options *opts, struct store **ret, struct error *err);
/* End the session (its ephemeral nodes go) and free the handle.  NULL ok. */
void store_close(struct store *s);
static inline void store_closep(struct store **s) { store_close(*s); }
#define _cleanup_store_ _cleanup_(store_closep)

/* A file descriptor that becomes readable when store_dispatch() has work
 * (watch events, session changes, backend housekeeping).  Put it in epoll. */
int store_fd(struct store *s);
/* Run pending watch callbacks and housekeeping; never blocks.  Returns the
 * number of callbacks run or a negative errno. */
int store_dispatch(struct store *s);
/* Block until store_fd is readable or timeout_ms passes (-1 forever), then
 * dispatch.  For simple clients and tests without their own loop. */
int store_wait(struct store *s, int timeout_ms);
enum store_state store_state(struct store *s);
int64_t store_session_id(struct store *s);

/* Create `path` with data; with STORE_SEQUENTIAL the real path is returned in
 * *ret_path (may be NULL). */
int store_create(struct store *s, const char *path, const void *data, size_t len, int flags, char **ret_path);
/* Create path and missing parents (persistent, empty); -EEXIST is not an error. */
int store_create_p(struct store *s, const char *path);
/* Read data (NUL-terminated for convenience; *ret_len excludes the NUL).
 * ret_data, ret_len, ret_stat may be NULL.  If watch is set, a data watch is
 * left even when the node does not exist (like zoo_wexists). */
int store_get(struct store *s, const char *path, char **ret_data, size_t *ret_len, struct store_stat *ret_stat,
	      store_watch_fn watch, void *userdata);
/* Read the n nodes dir/names[i] at once (pipelined on ZooKeeper: one round
 * trip for many nodes instead of one each; names need not be NUL-terminated
 * as a list).  For each i, ret_data[i] is the data (malloc'ed,
 * NUL-terminated) or NULL when the node does not exist or cannot be read
 * (the embedded store's corrupt node, -EIO from store_get: one bad node does
 * not hide the others; store_get tells the two apart); ret_len and ret_stat
 * may be NULL.  0, or a negative errno when the store failed (then nothing
 * is returned); -EINVAL if a name makes no valid path. */
int store_get_many_in(struct store *s, const char *dir, char *const *names, size_t n, char **ret_data,
		      size_t *ret_len, struct store_stat *ret_stat);
/* 0 if the node exists, -ENOENT if not. */
int store_exists(struct store *s, const char *path, struct store_stat *ret_stat, store_watch_fn watch,
		 void *userdata);
/* Replace data if version matches (-1: any). */
int store_set(struct store *s, const char *path, const void *data, size_t len, int64_t version,
	      struct store_stat *ret_stat);
/* Delete if version matches (-1: any).  Fails with -ENOTEMPTY if it has children. */
int store_delete(struct store *s, const char *path, int64_t version);
/* Delete a node and all its descendants; missing is success.  Not atomic. */
int store_delete_r(struct store *s, const char *path);
/* The path of child `name` of `parent` ("/" + "a" = "/a"), newly allocated. */
char *store_path_child(const char *parent, const char *name);
/* Sorted child names (not full paths).  A watch is set only if the node exists. */
int store_children(struct store *s, const char *path, char ***ret_names, store_watch_fn watch, void *userdata);

enum store_op_type { STORE_OP_CREATE, STORE_OP_DELETE, STORE_OP_SET, STORE_OP_CHECK };

struct store_op {
	enum store_op_type type;
	const char *path;
	const void *data; /* CREATE, SET */
	size_t len;
	int flags;	  /* CREATE */
	int64_t version;  /* DELETE, SET, CHECK (-1 any) */
};

/* Apply all ops atomically.  On failure nothing is applied and, if
 * ret_failed_index is non-NULL, it receives the index of the failing op. */
int store_multi(struct store *s, const struct store_op *ops, size_t n, size_t *ret_failed_index);
/* store_multi that also returns, on success, the created path of each op
 * (*ret_paths: a NULL-terminated vector of n strings, "" for ops that are not
 * creates; strv_free it).  What a batch of sequential creates needs: one
 * multi of `/scheduled/<app>#` creates returns their names, consecutive under
 * one parent.  Costs (both backends): one round trip / one commit for the
 * whole batch; the embedded store writes one journal record and waits for
 * one fsync (see "Group commit" in docs/STORE.md), ZooKeeper sends one
 * zoo_multi (keep a batch under ZooKeeper's 1 MiB request limit, jute.maxbuffer:
 * e.g. <= 500 ops and <= 512 KiB of data).  All or nothing, like store_multi. */
int store_multi_paths(struct store *s, const struct store_op *ops, size_t n, size_t *ret_failed_index,
		      char ***ret_paths);

/* Check (and with repair, mend) the embedded store's files: its format,
 * intent journal, session counter, every node's .node and child counters.
 * Unreadable nodes are moved (with what is below them) to DIR/lost+found/, a
 * corrupt journal is set aside as DIR/journal.corrupt-<ms>, counters are
 * rewritten with their recovered value (never lower than a number handed
 * out).  Without repair nothing is written.  res->lines holds one line per
 * problem (caller frees with strv_free).  Fails (ERR_PERM) for an unknown
 * format, a missing store or a ZooKeeper URL. */
struct store_fsck_result {
	char **lines;
	size_t found, repaired;
};
int store_fsck(const char *url, bool repair, struct store_fsck_result *res, struct error *err);

/* Human-readable name of a store error code, e.g. "no node" for -ENOENT. */
const char *store_strerror(int r);
/* The exit-code class of a store error (ERR_TEMP for what may pass: connection,
 * session, I/O, memory, space, read-only; ERR_PERM otherwise).  The one map the
 * CLI and the daemons use. */
int store_error_code(int r);
