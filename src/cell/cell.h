/* cell.h: a server of a cell under one s6-svscan tree at R/svc: the master
 * and/or the node agent with the containers' scan directory, on the embedded
 * store (the single-machine cell) or on ZooKeeper (one server of many).
 *
 * Daemon layer: includes basic/, store/, cellns/, supervisor/ (s6 control and
 * status, no s6 tools forked), cgroup/ (cg_sweep) and container/
 * (container_cleanup, container_loops_release).
 *
 * Layout of a cell root R:
 *   R/cell.json        {"hostname","cgroup_root","treadle","store","root","roles"} written by cell_up
 *   R/cell.pid         pid of the cell's s6-svscan
 *   R/store/           embedded store (URL file://R/store), only without a store URL
 *   R/svc/{master,node,running}/   s6 service dirs (+ log/ with s6-log), per role
 *   R/log/<svc>/       s6-log directories (current, @*.s)
 *   R/node/            node agent root; R/node/running is its containers' scan dir
 */
#pragma once

#include <stdbool.h>

#include "../basic/error.h"

enum {
	CELL_ROLE_MASTER = 1 << 0,
	CELL_ROLE_NODE = 1 << 1,
	CELL_ROLES_ALL = CELL_ROLE_MASTER | CELL_ROLE_NODE,
};

/* "master,node", "node", "master" (any order, no repeats) -> CELL_ROLE_* bits;
 * -EINVAL for anything else. */
int cell_roles_parse(const char *s, unsigned *ret);

struct cell_options {
	const char *root;	 /* R, absolute or relative (made absolute) */
	const char *store_url;	 /* NULL: the embedded store file://R/store */
	unsigned roles;		 /* CELL_ROLE_* bits; 0 = CELL_ROLES_ALL */
	const char *hostname;	 /* NULL: gethostname() */
	const char *cgroup_root; /* NULL: "treadle" */
	const char *treadle_bin; /* NULL: /proc/self/exe */
	const char *net_range;	 /* the node's --network (NULL: its default); refused at up if it overlaps an
				  * address of this network namespace (another cell's bridge) */
	const char *api_listen;	 /* treadle api --listen (NULL: the Unix socket only) */
	/* the node's --hooks, --host-keytab, --tickets-wait (docs/HOOKS.md); NULL: none / its default */
	const char *hooks, *krb5_keytab, *tickets_wait;
	const char *api_tokens;	 /* treadle api --tokens FILE (absolute), NULL: none */
	const char *api_tls_cert, *api_tls_key; /* treadle api --tls-cert/--tls-key (absolute), NULL: plain HTTP */
	bool daemon;		 /* fork, return once ready */
	int ready_timeout_ms;	 /* daemon: 0 = 30000 */
};

/* Prepare R and start the tree.  Foreground: execs s6-svscan (returns only
 * on failure).  Daemon: forks s6-svscan (stdout/stderr to R/log/svscan.log)
 * and returns 0 once the roles are up: this server's master has joined the
 * election (on the embedded store: a master leads) and its node is in
 * /server.presence.  ERR_PERM if a cell already runs at R. */
int cell_up(const struct cell_options *o, struct error *err);

struct cell_down_report {
	int stray_containers;	/* left in R/node/apps after the drain, released here */
	int stray_processes;	/* killed by the final sweep */
	int stray_mounts;	/* unmounted by the final sweep */
	int stray_cgroups;	/* cgroups that still held processes (killed) */
	int stray_loops;	/* loop devices backed by files under R, detached */
	bool was_running;
};

/* Stop the cell at R: the node agent is asked (R/node/stop) to stop every
 * container on purpose while the master and the node still run (embedded
 * store: "finish", each instance posts its terminal event and leaves
 * /scheduled; ZooKeeper: "release", the instances stay scheduled and the
 * masters place them elsewhere); up to 2/3 of timeout_ms; then the tree (s6-svscanctl -t), then wait for every
 * process of the cell; containers still in R/node/apps get their host
 * resources released with container_cleanup(); finally sweep what is left
 * (processes, mounts under R, loop devices backed under R, the cell's cgroup
 * tree).  Everything found after the orderly path is counted in *rep.
 * timeout_ms 0 = 30000. */
int cell_down(const char *root, int timeout_ms, struct cell_down_report *rep, struct error *err);

/* Status as JSON text (owned by caller): {"root","running","hostname",
 * "services":{name:{"up","pid","seconds"}},"leader","presence",
 * "instances":{"scheduled","placed","running"}}. */
int cell_status(const char *root, char **ret_json, struct error *err);
