/* layout.h: the node root directory (N) and its path helpers.
 *
 * Daemon layer (src/node/), but this header and layout.c use only basic/ so
 * the CLI (`treadle logs`, `treadle show`) and tests can use them.  The
 * layout is documented in docs/FORMATS.md ("Node layout"); summary:
 *
 *   N/cache/<instance>              placement: /scheduled manifest + task + placement data (JSON)
 *   N/cache/.ready                  exists iff /server.presence/<host> and /placement/<host> exist
 *   N/apps/<unique>/                container s6 service dir (data/ inside, see FORMATS.md)
 *   N/running/<instance>            symlink -> N/apps/<unique>; s6-svscan scan dir
 *   N/cleanup/<unique>              symlink -> N/apps/<unique>; awaiting cleanup
 *   N/tombstones/running/<instance>,<ts>,<rc>,<sig>
 *   N/tombstones/services/<unique>,<service>,<ts>,<rc>,<sig>
 *   N/appevents/<ts>,<instance>,<type>,<data>   trace events waiting to be published
 *   N/archives/<unique>/            logs and records of a cleaned-up container (plain files)
 *
 * <instance> = "<proid>.<app>#<10 digits>";  <unique> = "<proid>.<app>-<10 digits>-<13 char id>".
 * Every function returning char* returns a malloc'ed string owned by the
 * caller, or NULL on allocation failure (or, for the node_find_* helpers,
 * when nothing was found: they set errno to ENOENT then).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#define NODE_UNIQUEID_LEN 13

/* Subdirectory names under N. */
#define NODE_DIR_CACHE "cache"
#define NODE_DIR_APPS "apps"
#define NODE_DIR_RUNNING "running"
#define NODE_DIR_CLEANUP "cleanup"
#define NODE_DIR_TOMB_RUNNING "tombstones/running"
#define NODE_DIR_TOMB_SERVICES "tombstones/services"
#define NODE_DIR_APPEVENTS "appevents"
#define NODE_DIR_ARCHIVES "archives"
#define NODE_DIR_EXITS "exits" /* exits/<instance>/<service>: exit history across containers */
#define NODE_READY_FILE "cache/.ready"
/* Written by `treadle cell down` ("finish" or "release"): the agent stops every
 * container on purpose and starts none (docs/NODE.md "Stopping"). */
#define NODE_STOP_FILE "stop"
#define NODE_SETTINGS_FILE "node.json" /* the agent's settings, read by `treadle sproc` (sproc.h) */

/* Create every directory of the layout (idempotent).  0 or -errno. */
int node_layout_create(const char *root);

/* "<root>/<sub>" */
char *node_path(const char *root, const char *sub);
/* N/cache/<instance> */
char *node_cache_file(const char *root, const char *instance);
/* N/apps/<unique> */
char *node_app_dir(const char *root, const char *unique);
/* N/running/<instance> */
char *node_running_link(const char *root, const char *instance);
/* N/cleanup/<unique> */
char *node_cleanup_link(const char *root, const char *unique);
/* N/archives/<unique> */
char *node_archive_dir(const char *root, const char *unique);

/* "<instance with '#' -> '-'>-<uniqueid>" */
char *node_unique_name(const char *instance, const char *uniqueid);
/* Inverse: "proid.app-0000000042-0f7rp3bsjtzxx" -> "proid.app#0000000042";
 * NULL (errno EINVAL) if malformed. */
char *node_unique_instance(const char *unique);
/* Pointer to the uniqueid part inside unique (borrowed), NULL if malformed. */
const char *node_unique_id(const char *unique);
/* Unique name of the instance's cache file as it is now (stat of cache/<instance>). */
int node_cache_unique_name(const char *root, const char *instance, char **ret);

/* Unique name (basename) of a symlink's target (running/<instance>,
 * cleanup/<unique>), or NULL if it is not a link. */
char *node_link_base(const char *link);


/* Directory holding the s6-log files (current, @*.s) of one service of an
 * instance.  service NULL or "" = the container itself (treadle sproc run and
 * the container's s6-svscan output).  uniqueid NULL = the live container if
 * any, else the most recently archived one.  Returns e.g.
 *   N/apps/<unique>/data/services/<service>/data/log     (live)
 *   N/archives/<unique>/services/<service>/log           (finished)
 *   N/apps/<unique>/data/log  |  N/archives/<unique>/log (container log)
 * NULL + errno ENOENT if no such directory exists. */
char *node_service_log_dir(const char *root, const char *instance, const char *service, const char *uniqueid);
