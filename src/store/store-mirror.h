/* store-mirror.h: a read-only mirror of store subtrees in a directory, like
 * Treadmill's zk2fs, for readers that prefer files (websocket-style APIs,
 * shell tools).  Domain layer: uses store.h and basic/.
 *
 * For each mirrored PATH, DIR/PATH is a directory; below it a node with
 * children is a directory (its own data, if any, in `.data`), a leaf is a
 * file holding the node's data with mtime = the node's mtime.  Files are
 * written through DIR/.tmp and renamed into place, so readers never see a
 * partial file.  DIR/.modified is touched after the first full sync and after
 * every later change.  Without watching (--once), every synced directory gets
 * a `.done` file: nothing will update it any more.  Names starting with '.'
 * never come from the store, so these files cannot clash with nodes. */
#pragma once

#include <stdbool.h>

#include "../basic/error.h"
#include "store.h"

struct store_mirror;

/* Prepare a mirror of `paths` (NULL-terminated, absolute store paths) into
 * `dir` (created if missing).  The store handle is borrowed and must outlive
 * the mirror.  With `watch`, store watches keep the files up to date as
 * store_dispatch() runs; those watches point at the mirror, so free it only
 * after store_close() (or never dispatch again). */
int store_mirror_new(struct store *s, const char *dir, char *const *paths, bool watch, struct store_mirror **ret,
		     struct error *err);
/* Full sync of every path (and, with watch, arm the watches). */
int store_mirror_sync(struct store_mirror *m, struct error *err);
/* First error met inside a watch callback (0 if none), which the caller
 * should treat as fatal and resync or exit. */
int store_mirror_error(const struct store_mirror *m);
void store_mirror_free(struct store_mirror *m);
static inline void store_mirror_freep(struct store_mirror **m) { store_mirror_free(*m); }
#define _cleanup_store_mirror_ _cleanup_(store_mirror_freep)
