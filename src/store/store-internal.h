/* store-internal.h: the backend interface behind store.h.
 *
 * store.c parses the URL scheme and forwards every call through the backend's
 * table (the way crun keeps its cgroup managers).  A backend embeds
 * `struct store` as the first member of its own handle.  Arguments reaching a
 * backend are already checked: paths are valid (store_path_valid), data
 * lengths are <= STORE_MAX_DATA, out-parameters may be NULL. */
#pragma once

#include "store.h"

struct store_backend {
	const char *name;
	/* `where` is the URL with its scheme removed (directory or zk host list). */
	int (*open)(const char *where, const struct store_options *opts, struct store **ret, struct error *err);
	void (*close)(struct store *s);
	int (*fd)(struct store *s);
	int (*dispatch)(struct store *s);
	enum store_state (*state)(struct store *s);
	int64_t (*session_id)(struct store *s);
	int (*create)(struct store *s, const char *path, const void *data, size_t len, int flags, char **ret_path);
	int (*get)(struct store *s, const char *path, char **ret_data, size_t *ret_len, struct store_stat *ret_stat,
		   store_watch_fn watch, void *userdata);
	int (*exists)(struct store *s, const char *path, struct store_stat *ret_stat, store_watch_fn watch,
		      void *userdata);
	int (*set)(struct store *s, const char *path, const void *data, size_t len, int64_t version,
		   struct store_stat *ret_stat);
	int (*delete)(struct store *s, const char *path, int64_t version);
	int (*children)(struct store *s, const char *path, char ***ret_names, store_watch_fn watch, void *userdata);
	/* ret_paths: NULL, or n NULL entries to fill with the created path of each
	 * CREATE op (malloc'ed; left NULL for the other ops) on success */
	int (*multi)(struct store *s, const struct store_op *ops, size_t n, size_t *ret_failed_index, char **ret_paths);
	/* optional: store_get_many_in falls back to get() one by one */
	int (*get_many)(struct store *s, const char *const *paths, size_t n, char **ret_data, size_t *ret_len,
			struct store_stat *ret_stat);
	/* optional: store_fsck of the store at `where` (no handle is open) */
	int (*fsck)(const char *where, bool repair, struct store_fsck_result *res, struct error *err);
};

struct store {
	const struct store_backend *backend;
	struct store_options opts;
};

extern const struct store_backend store_backend_fs;
extern const struct store_backend store_backend_zk;

/* A zeroed backend handle of `size` bytes (embedding struct store first) for
 * backend b with opts (NULL = defaults); NULL if out of memory. */
void *store_alloc(size_t size, const struct store_backend *b, const struct store_options *opts);

/* Path rules of store.h: absolute, no trailing '/', no empty component, no
 * component starting with '.'; "/" itself is valid. */
bool store_path_valid(const char *path);
/* Parent path of a valid non-root path ("/a" -> "/"), newly allocated. */
char *store_path_parent(const char *path);

/* Parse and check an embedded-store intent journal without applying it:
 * number of steps, or -EIO if malformed.  For the fuzzer and tests. */
int store_fs_journal_check(const void *data, size_t len);
