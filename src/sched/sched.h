/* sched.h: the cell scheduler, a pure in-memory model (no I/O, no store).
 *
 * Holds Treadmill's cell model (reference/treadmill-scheduler.md §1): a topology
 * tree of buckets and servers, partitions, hierarchical allocations, apps and
 * identity groups; sched_schedule() runs Treadmill's placement (§2).
 *
 * Two modes, a cell setting:
 *  - SCHED_MODE_COMPAT reproduces Treadmill's placements bit for bit, quirks
 *    included (per-affinity spread cursors starting at 0, eviction that only
 *    checks server-level constraints, a full pass per schedule call).
 *  - SCHED_MODE_IMPROVED (default for new cells) fixes the quirks documented
 *    in docs/SCHEDULER.md; it is deterministic too.
 *
 * Objects are named by small integer ids (>= 0) returned by the add/get
 * functions; ids stay valid until the object is removed and are never reused.
 * Resources are integer vectors of `ndims` dimensions (treadle uses 3:
 * memory MB, cpu %, disk MB).  Time is passed in by the caller (`now`,
 * seconds since the epoch, as a double) so the model never reads the clock.
 *
 * Functions return >= 0 (an id or 0) on success, or a negative errno:
 * -EINVAL bad argument, -ENOENT unknown id or name, -EEXIST duplicate name,
 * -ENOMEM, -E2BIG a fixed limit (levels, partitions, dimensions) exceeded.
 * Domain layer: includes basic/ only.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../basic/macro.h"

#define SCHED_DIMS_MAX 4
#define SCHED_LEVELS_MAX 16	/* distinct level names ("cell", "pod", "rack", "server", ...) */
#define SCHED_PARTITIONS_MAX 64
#define SCHED_DEFAULT_RANK 100
#define SCHED_UNPLACED_RANK INT64_MAX	/* Python's sys.maxsize */
#define SCHED_NO_LIMIT INT32_MAX	/* affinity limit "inf" */
#define SCHED_PACK_AT 0.9		/* improved mode: demand/capacity above which a partition is packed */
#define SCHED_WINDOW 32			/* improved mode: children compared per placement in wide buckets */

enum sched_mode { SCHED_MODE_COMPAT = 0, SCHED_MODE_IMPROVED = 1 };
enum sched_state { SCHED_UP = 0, SCHED_DOWN = 1, SCHED_FROZEN = 2 };
enum sched_strategy { SCHED_SPREAD = 0, SCHED_PACK = 1 };

struct sched_cell;

/* ---- cell ---------------------------------------------------------------- */

/* A new empty cell whose root bucket is named `name` with level "cell". */
struct sched_cell *sched_cell_new(const char *name, int ndims, enum sched_mode mode);
void sched_cell_free(struct sched_cell *c);
static inline void sched_cell_freep(struct sched_cell **c) { sched_cell_free(*c); }
#define _cleanup_sched_cell_ _cleanup_(sched_cell_freep)

/* ---- topology -------------------------------------------------------------- */

/* Node id of the cell root (always 0). */
#define SCHED_ROOT 0
/* Add a bucket under `parent` (a bucket id).  level NULL: the name prefix before ':' ("rack:r1" -> "rack"). */
int sched_bucket_add(struct sched_cell *c, int parent, const char *name, const char *level, uint64_t traits);
/* Add a server (level "server") under `parent`.  partition NULL means "_default". */
int sched_server_add(struct sched_cell *c, int parent, const char *name, const int64_t *capacity, uint64_t traits,
		     const char *partition, double up_since, double valid_until);
int sched_node_find(const struct sched_cell *c, const char *name);
const char *sched_node_name(const struct sched_cell *c, int node);
int sched_node_parent(const struct sched_cell *c, int node);
bool sched_node_is_server(const struct sched_cell *c, int node);
/* Same state again keeps the old `since` (Treadmill's set_state). */
int sched_server_set_state(struct sched_cell *c, int server, enum sched_state st, double since);
int sched_server_get_state(const struct sched_cell *c, int server, enum sched_state *ret_state, double *ret_since);

/* ---- partitions and allocations ----------------------------------------- */

/* Partition id by label, created on first use (like Treadmill's PartitionDict). */
int sched_partition_get(struct sched_cell *c, const char *label);
/* Walk "a/b:c" ('/' or ':' separated) from the partition root, creating as needed. */
int sched_alloc_get_path(struct sched_cell *c, int partition, const char *path);
/* Treadmill's Allocation.update: reserved (ndims doubles, NULL = zero), rank
 * (<0: default 100), rank_adjustment, max_utilization (<= 0 or inf: none). */
int sched_alloc_update(struct sched_cell *c, int alloc, const double *reserved, int64_t rank, int64_t rank_adjustment,
		       double max_utilization);
int sched_alloc_set_traits(struct sched_cell *c, int alloc, uint64_t traits);

/* ---- reboot schedule (Treadmill's Partition reboot buckets) -------------- */

#define SCHED_SERVER_UPTIME (21 * 86400)	/* DEFAULT_SERVER_UPTIME */
#define SCHED_MIN_SERVER_UPTIME 86400		/* MIN_SERVER_UPTIME */

/* Set a partition's reboot schedule ("sat,sun/10:30:00": days, each with an
 * optional local time, default 23:59:59; NULL or "" = every day) and start
 * its reboot buckets at `now` (Partition.__init__ + tick).  -EINVAL if bad. */
int sched_partition_set_reboot_schedule(struct sched_cell *c, int partition, const char *schedule, double now);
/* Partition.tick: add buckets up to now + 21 days, drop past ones. */
int sched_partition_tick(struct sched_cell *c, int partition, double now);
/* Partition.add: put a server in a reboot bucket (the one at `timestamp` if it
 * exists and timestamp > 0) and set its valid_until; returns 0. */
int sched_partition_add_server(struct sched_cell *c, int partition, int server, double timestamp);

/* ---- identity groups ----------------------------------------------------- */

/* Create the group with `count` identities, or adjust its count. */
int sched_identity_group_set(struct sched_cell *c, const char *name, int count);

/* ---- apps ----------------------------------------------------------------- */

struct sched_limit {
	const char *level; /* "server", "rack", ... */
	int32_t limit;
};

struct sched_app_spec {
	const char *name;		/* instance name, unique in the cell */
	int priority;			/* 0..100; 0 = only when nothing else wants the room */
	const int64_t *demand;		/* ndims values */
	const char *affinity;		/* NULL: the name up to '#' */
	const struct sched_limit *limits;	/* affinity limits per level */
	size_t n_limits;
	double data_retention_timeout;	/* seconds; < 0 = none (Treadmill's None) */
	double lease;			/* seconds, 0 = none */
	const char *identity_group;	/* NULL = none */
	uint64_t traits;		/* required trait bits */
	bool schedule_once;
	int64_t global_order;		/* FIFO tie-break (creation order) */
};

/* Add an app to `alloc`.  -EEXIST if the name exists. */
int sched_app_add(struct sched_cell *c, int alloc, const struct sched_app_spec *spec);
/* Remove an app (frees its server capacity and identity). */
int sched_app_remove(struct sched_cell *c, int app);
int sched_app_find(const struct sched_cell *c, const char *name);
/* The number of live apps (O(1)). */
size_t sched_app_count(const struct sched_cell *c);
/* Reload semantics (Treadmill's loader): priority, retention and allocation may change. */
int sched_app_set_priority(struct sched_cell *c, int app, int priority);
int sched_app_set_retention(struct sched_cell *c, int app, double data_retention_timeout);
int sched_app_move(struct sched_cell *c, int app, int alloc);
int sched_app_set_blacklisted(struct sched_cell *c, int app, bool blacklisted);
/* Mark an app on a frozen server to be taken off it (Treadmill's unschedule). */
int sched_app_set_unschedule(struct sched_cell *c, int app, bool unschedule);

/* Restore a placement after a master restart (Treadmill's Server.restore):
 * the lease is not checked and the expiry is kept.  identity < 0: none. */
int sched_app_restore(struct sched_cell *c, int app, int server, double expiry, int identity);
/* Place an app on a server now, re-checking every constraint (Server.put). */
int sched_app_put(struct sched_cell *c, int app, int server, double now);

/* Server.remove: take an app off its server. */
int sched_app_unplace(struct sched_cell *c, int app);

struct sched_app_info {
	const char *name;
	int alloc;
	int server;		/* -1: pending */
	int identity;		/* -1: none */
	double expiry;		/* placement expiry, NAN if none */
	int priority;
	bool evicted, schedule_once, renew, blacklisted;
	int64_t final_rank;	/* rank and utilization of the last pass */
	double final_util;
	int queue_pos;		/* position in its partition's queue of the last pass, -1 if none */
};
/* Cheap: everything but final_rank / final_util / queue_pos. */
int sched_app_info(const struct sched_cell *c, int app, struct sched_app_info *ret);
/* Same plus the app's place in its partition's queue of the last pass (O(apps)). */
int sched_app_queue_info(const struct sched_cell *c, int app, struct sched_app_info *ret);
/* Ids of live apps in insertion order: iterate with sched_app_next(c, -1), ... until < 0. */
int sched_app_next(const struct sched_cell *c, int app);
/* Ids of servers in topology (depth-first) order, same iteration scheme. */
int sched_server_next(const struct sched_cell *c, int server);

/* ---- scheduling ---------------------------------------------------------------- */

struct sched_change {
	int app;
	const char *name;
	int before_server, after_server;	/* -1: none */
	double before_expiry, after_expiry;	/* NAN: none */
	int identity;				/* after, -1 none */
};
/* Called for every app whose server or expiry changed. */
typedef void (*sched_change_fn)(const struct sched_change *ch, void *userdata);

struct sched_stats {
	size_t apps, placed, pending, changed, evictions;
	bool full_pass;		/* false when the improved mode handled only what changed */
};

/* Run the scheduler at time `now`.  In compat mode this is Treadmill's
 * Cell.schedule(): a full pass.  In improved mode only what changed since the
 * last call is handled when that is enough (see docs/SCHEDULER.md).  cb may be
 * NULL; stats may be NULL. */
int sched_schedule(struct sched_cell *c, double now, sched_change_fn cb, void *userdata, struct sched_stats *stats);
/* Force the next sched_schedule() to run a full pass. */
void sched_invalidate(struct sched_cell *c);
/* Time of the next retention expiry that needs a pass (INFINITY if none). */
double sched_next_event_at(const struct sched_cell *c);

/* ---- inspection ------------------------------------------------------------ */

struct sched_node_info {
	const char *name, *level, *partition;
	int parent;
	bool server;
	enum sched_state state;
	uint64_t traits;
	int64_t capacity[SCHED_DIMS_MAX];	/* servers: init capacity; buckets: sum of servers */
	int64_t free[SCHED_DIMS_MAX];		/* servers: free; buckets: Treadmill's optimistic max */
	size_t napps;
	double valid_until;
};
int sched_node_info(const struct sched_cell *c, int node, struct sched_node_info *ret);

struct sched_alloc_info {
	const char *name;
	int partition, parent;
	double reserved[SCHED_DIMS_MAX];
	int64_t rank, rank_adjustment;
	double max_utilization;
	uint64_t traits;
	size_t napps, placed;
	int64_t used[SCHED_DIMS_MAX];	/* demand of its placed apps (own, not sub-allocations) */
};
int sched_alloc_info(const struct sched_cell *c, int alloc, struct sched_alloc_info *ret);
int sched_alloc_count(const struct sched_cell *c);
const char *sched_partition_label(const struct sched_cell *c, int partition);
int sched_partition_count(const struct sched_cell *c);

/* Why is the app pending, or where is it: one line into a malloc'ed string
 * (*ret owned by the caller).  Names the failed constraint and its level. */
int sched_explain(struct sched_cell *c, int app, double now, char **ret);

/* Why a server is down, named by sched_explain ("blacked out: disk swap"); NULL clears it.  The model
 * keeps a copy; only explanations read it. */
int sched_server_set_down_reason(struct sched_cell *c, int server, const char *why);

/* ---- Treadmill helpers exposed for tests ---------------------------------- */


/* One entry of a partition's (or allocation's) utilization queue. */
struct sched_queue_entry {
	int64_t rank;
	double util_before, util_after;
	int32_t app;
	int16_t pending;	/* the global_order tie-break is read from the app */
	int16_t prio0;		/* priority 0: utilization is inf at every level */
	int32_t demand[SCHED_DIMS_MAX]; /* carried along so upper levels read sequentially */
};
/* Compute the utilization queue of `alloc` against `free` (ndims doubles) as
 * Treadmill's Allocation.utilization_queue would; *ret is malloc'ed. */
int sched_alloc_queue(struct sched_cell *c, int alloc, const double *free, struct sched_queue_entry **ret,
		      size_t *ret_n);
/* A partition's queue as the next pass would order it (nothing placed). */
int sched_partition_queue(struct sched_cell *c, int partition, struct sched_queue_entry **ret, size_t *ret_n);
