/* watchdog.h: the node's watchdog leases and their watcher (`treadle watchdog`).
 *
 * A lease is the file N/watchdogs/<name> whose mtime is its deadline
 * (Treadmill's watchdog dir, docs/FORMATS.md "Watchdog leases"): the process
 * holding it renews it (moves the mtime to now + timeout) well before the
 * deadline; a lease whose deadline has passed is failed.  The watcher is a
 * separate process (the cell's `watchdog` service beside `node`): a stalled
 * agent cannot notice its own stall.  On a failed lease it blacks the server
 * out (/blackedout.servers/<host>, presence deleted: the masters move its
 * apps), writes a postmortem bundle (postmortem.h) and takes the node's
 * containers down ("released": their instances do not end).  docs/NODE.md
 * "Watchdogs and postmortem".
 * Daemon layer: basic/, store/, cellns/, admin/, supervisor/, node/.
 */
#pragma once

#include <stdbool.h>

#include "../basic/error.h"

#define NODE_DIR_WATCHDOGS "watchdogs"
/* The agent's lease: its name and default timeout (Treadmill's eventmgr and
 * appcfgmgr hold 120 s); `treadle node --watchdog-lease` changes it. */
#define NODE_LEASE_AGENT "agent"
#define NODE_LEASE_DEFAULT_S 120

/* Create or renew lease `name` under root/watchdogs: deadline now +
 * timeout_s, content "pid <pid>\ntimeout <timeout_s>\n" (written only when
 * the file is new).  -errno on failure. */
int node_lease_renew(const char *root, const char *name, unsigned timeout_s);
/* Give the lease up (clean exit); missing is success. */
int node_lease_remove(const char *root, const char *name);

struct node_watchdog_options {
	const char *store_url;
	const char *root;	 /* N, absolute */
	const char *hostname;
	const char *cgroup_root; /* for the postmortem; NULL = "treadle" */
	const char *log_dir;	 /* the cell's R/log (postmortem); may be NULL */
};

/* Watch root/watchdogs until SIGTERM/SIGINT (0) or a fatal error.  On the
 * first failed lease: blackout (retried each second until the store takes
 * it), one postmortem, and, once the blackout is in, every container down;
 * re-armed once every lease is fresh again.  The blackout stays until an
 * operator clears it. */
int node_watchdog_run(const struct node_watchdog_options *o, struct error *err);
