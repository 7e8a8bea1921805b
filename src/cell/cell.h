/* cell.h: a single-machine cell: one s6-svscan tree at R/svc running the
 * master, the node agent and the containers' scan directory.
 *
 * Daemon layer: includes basic/, store/ and container/ (container_cleanup).
 *
 * Layout of a cell root R:
 *   R/cell.json        {"hostname","cgroup_root","treadle","store"} written by cell_up
 *   R/cell.pid         pid of the cell's s6-svscan
 *   R/store/           embedded store (URL file://R/store)
 *   R/svc/{master,node,running}/   s6 service dirs (+ log/ with s6-log)
 *   R/log/<svc>/       s6-log directories (current, @*.s)
 *   R/node/            node agent root; R/node/running is its containers' scan dir
 */
#pragma once

#include <stdbool.h>

#include "../basic/error.h"

struct cell_options {
	const char *root;	 /* R, absolute or relative (made absolute) */
	const char *hostname;	 /* NULL: gethostname() */
	const char *cgroup_root; /* NULL: "treadle" */
	const char *treadle_bin; /* NULL: /proc/self/exe */
	bool daemon;		 /* fork, return once ready */
	int ready_timeout_ms;	 /* daemon: 0 = 30000 */
};

/* Prepare R and start the tree.  Foreground: execs s6-svscan (returns only
 * on failure).  Daemon: forks s6-svscan (stdout/stderr to R/log/svscan.log)
 * and returns 0 once the master leads and the node is in /server.presence.
 * ERR_PERM if a cell already runs at R. */
int cell_up(const struct cell_options *o, struct error *err);

struct cell_down_report {
	int stray_containers;	/* left in R/node/apps after the drain, released here */
	int stray_processes;	/* killed by the final sweep */
	int stray_mounts;	/* unmounted by the final sweep */
	int stray_cgroups;	/* cgroups that still held processes (killed) */
	int stray_loops;	/* loop devices backed by files under R, detached */
	bool was_running;
};

/* Stop the cell at R: every container down while the master and the node
 * still run (the node cleans each up and posts its terminal event; up to 2/3
 * of timeout_ms), then the tree (s6-svscanctl -t), then wait for every
 * process of the cell; containers still in R/node/apps get their host
 * resources released with container_cleanup(); finally sweep what is left
 * (processes, mounts under R, loop devices backed under R, the cell's cgroup
 * tree).  Everything found after the orderly path is counted in *rep.
 * timeout_ms 0 = 30000. */
int cell_down(const char *root, int timeout_ms, struct cell_down_report *rep, struct error *err);

/* 1 if the cell's s6-svscan runs at R, 0 if not. */
int cell_is_running(const char *root);

/* Status as JSON text (owned by caller): {"root","running","hostname",
 * "services":{name:{"up","pid","seconds"}},"leader","presence",
 * "instances":{"scheduled","placed","running"}}. */
int cell_status(const char *root, char **ret_json, struct error *err);
