/* postmortem.h: the node's postmortem bundle (Treadmill's postmortem.py).
 *
 * <N>/postmortem/<host>-<YYYYmmdd_HHMMSS>UTC.tar.gz (0644; a "-<k>" before
 * ".tar.gz" when one exists with that second), a ustar/pax tar compressed
 * with zlib, the newest NODE_POSTMORTEM_KEEP kept (by mtime).  It holds the
 * cell's service logs (log/<svc>/current), the node's files (node/node.json,
 * node/watchdogs/..., listings of running/ cache/ cleanup/), every container's
 * data files and logs (apps/<u>/data/..., the root file system excluded), the
 * containers' cgroup files (cgroup/...), and diagnostic command outputs as
 * diag/<argv joined by '#'>.  Layout in docs/FORMATS.md "Postmortem bundle".
 */
#pragma once

#include "../basic/error.h"

#define NODE_DIR_POSTMORTEM "postmortem"
#define NODE_POSTMORTEM_KEEP 3

struct node_postmortem_options {
	const char *root;	 /* N, absolute */
	const char *hostname;
	const char *cgroup_root; /* NULL = "treadle" */
	const char *log_dir;	 /* the cell's R/log; NULL: none */
	const char *reason;	 /* written as reason.txt; may be NULL */
};

/* Write one bundle, prune to the last NODE_POSTMORTEM_KEEP; *ret_path (owned
 * by the caller) is its path.  Fills err on failure (nothing left behind). */
int node_postmortem_write(const struct node_postmortem_options *o, char **ret_path, struct error *err);
