/* master-internal.h: the master's in-memory model, shared by master.c (store
 * sync, writing placements) and place.c (the placement seam). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "master.h"

enum { MASTER_MEMORY, MASTER_CPU, MASTER_DISK, MASTER_DIMS };

struct master_app {
	char *name;		/* instance id "<proid>.<app>#<seq>" */
	uint64_t seq;
	int priority;		/* 0..100, default 1 */
	double demand[MASTER_DIMS]; /* memory MiB, cpu %, disk MiB */
	double lease;		/* seconds */
	char *server;		/* current placement (owned), NULL = pending */
	double expires;
	char *why;		/* pending/scheduled reason for the next write (owned), NULL = "" */
	bool seen;		/* sweep mark */
};

struct master_server {
	char *name;
	double capacity[MASTER_DIMS]; /* < 0: unknown (not limited) */
	bool up;		/* present in /server.presence */
	double down_since;	/* when its presence vanished (0: never seen up / up) */
	bool seen;
};

struct master {
	struct store *store;
	char *hostname;
	char *cell;
	struct master_app **apps;	/* owned; sorted by name */
	size_t n_apps;
	struct master_server **servers; /* owned; sorted by name */
	size_t n_servers;
	double down_grace;	/* seconds a vanished server keeps its instances */
};

struct master_server *master_find_server(const struct master *m, const char *name);
struct master_app *master_find_app(const struct master *m, const char *name);

/* THE PLACEMENT SEAM.  Decide where every instance runs: on return each
 * app->server names an up server (or is NULL = pending), and app->why may
 * carry the reason of a move (NULL = the master derives it).  The master
 * diffs the result against the store and writes it Treadmill's way.
 * Current policy: keep placed apps (on a server whose presence vanished less
 * than m->down_grace seconds ago too: a restarting node agent keeps its
 * instances, as a ZooKeeper session outliving a quick restart does in
 * Treadmill); apps of servers down longer go back to pending ("<srv>:down");
 * place pending apps in (priority desc, sequence asc) order on the up server
 * with the most free memory that fits memory, cpu and disk.  To be replaced
 * by the sched module. */
int master_place(struct master *m, double now, struct error *err);

/* Parse a resource vector from JSON fields "memory" ("100M"), "cpu" ("10%")
 * and "disk" ("100M"); missing fields become `missing`.  Numbers are taken as
 * MiB / percent.  -EINVAL on malformed values. */

int master_parse_resources(const json_t *obj, double missing, double ret[MASTER_DIMS]);
