/* sched-internal.h: data structures shared by the scheduler's source files.
 * Not for use outside src/sched/. */
#pragma once

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "sched.h"

#define SCHED_EPS 2.220446049250313e-16 /* np.finfo(float).eps */

/* ---- string -> int map (open addressing, tombstones) ---------------------- */
struct strmap {
	const char **keys; /* borrowed (owned by the objects) or NULL / STRMAP_TOMB */
	int *vals;
	size_t cap, used, tombs;
};

/* ---- (node, affinity) -> counters and cursors ------------------------------ */
struct nodeaff {
	uint32_t key; /* node id, UINT32_MAX = empty (one map per affinity) */
	int32_t count;	/* affinity counter (only for affinities with limits) */
	int32_t cursor; /* spread/pack strategy index */
};
struct affmap {
	struct nodeaff *e;
	size_t cap, used;
	uint64_t gen; /* bumped on rehash: entry pointers stay valid while it holds */
};
/* Where the (node, affinity) maps' tables come from: a bump arena with a free
 * list per power-of-two size.  A big cell has a few hundred thousand small
 * maps that each grow 4 -> 8 -> 16; through malloc that churn cost more than
 * the placement itself. */
#define AFFPOOL_CLASSES 12 /* caps 4 .. 8192; bigger tables are malloc'ed */
#define AFFPOOL_BLOCK ((size_t)2 << 20)
struct affpool {
	void *free[AFFPOOL_CLASSES];
	uint8_t *cur;
	size_t left;
	void **blocks;
	size_t nblocks, cblocks;
};

/* ---- CPython set of small ints (identity pools) ----------------------------- */
struct pyset {
	int64_t *keys;
	uint8_t *st; /* 0 unused, 1 dummy, 2 active */
	size_t mask, fill, used, finger;
};

struct sched_node {
	/* first cache line: what check_app_constraints and the walks read */
	int64_t free[SCHED_DIMS_MAX];
	uint64_t labels;
	uint64_t traits;
	int level;
	enum sched_state state;
	/* second: the improved mode's load score and the server's capacity */
	int64_t sum_free[SCHED_DIMS_MAX]; /* improved mode: totals over up servers below */
	int64_t sum_cap[SCHED_DIMS_MAX];
	int64_t cap[SCHED_DIMS_MAX];
	bool server, removed;
	int parent;
	int *children; /* -1 = hole left by a removal (keeps cursors stable) */
	int nchildren, nlive;
	size_t cchildren;
	char *name;
	uint64_t traits_self;
	double since;
	/* servers */
	int partition;
	int app_head, app_tail, napps;
	double up_since, valid_until;
	char *down_why; /* sched_explain: why a down server is down ("blacked out: <reason>"), or NULL */
	int order_pos; /* index in srv_order */
	int pos;	/* index in the parent's children */
	int rr;		/* improved mode: start of the window of children compared next */
	int one_slot;	/* buckets with many strategies: column in the cell's "cursor 1"
			 * bit matrix (see cursor_store); -1 until then */
	uint32_t ncur;	/* strategies of this bucket that went to the (node, affinity) maps */
	int64_t *seg;	/* buckets: per partition, max tree over the free capacity of up children
			 * of that partition, SCHED_DIMS_MAX per tree node */
	size_t segleaves;
	int segparts;
};

/* heapq.merge over the iterables, comparing [value tuple, iterable index].
 * A lazy iterable (an allocation with sub-allocations, merged on demand) has
 * lazy >= 0 and cur pointing at that allocation's head entry. */
struct heap_item {
	const struct sched_queue_entry *cur, *end;
	const struct sched_hot *hot;
	int idx;
	int lazy;
};

struct sched_alloc {
	char *name; /* full path */
	char *leaf; /* last component */
	int parent, partition;
	int *subs;
	int nsubs;
	size_t csubs;
	double reserved[SCHED_DIMS_MAX];
	int64_t rank, rank_adj;
	double max_util;
	uint64_t traits;
	int label;		/* partition id */
	int cons_label;		/* frozen at construction: partition id or -1 (None) */
	uint64_t cons_traits;
	int *ids;		/* own apps in FIFO order: (global_order, name) */
	size_t napps, cids;
	/* per-pass scratch, kept to avoid allocations */
	struct sched_queue_entry *q, *pq;
	size_t qcap, pqcap, qn, pqn;
	/* the merge of an allocation with sub-allocations, run on demand: only
	 * the partition's root queue and the private queues are materialized */
	struct heap_item *h;
	size_t hcap;
	int nh;
	struct sched_queue_entry head;
	double m_acc[SCHED_DIMS_MAX], m_avail[SCHED_DIMS_MAX], m_ub;
	double total[SCHED_DIMS_MAX];
};

struct sched_app {
	char *name;
	int64_t demand[SCHED_DIMS_MAX];
	int priority;
	int alloc;
	int affinity;
	int limits;	/* limit set id, -1 none */
	int shape;	/* feasibility tracker key id */
	double retention; /* < 0 none */
	double lease;
	int igroup, identity;
	uint64_t traits;
	int64_t order;
	int server;
	double expiry; /* NAN none */
	int srv_prev, srv_next;
	/* pass scratch */
	int before_server;
	double before_expiry;
	int ev_server;
	double ev_expiry;
	uint32_t ev_gen;
	uint32_t touch_gen;
	int pend_idx; /* index in the cell's pending list, -1 when placed */
	bool alive, schedule_once, evicted, unschedule;
	bool dirty; /* improved mode: in the dirty list, needs a placement attempt */
	bool fresh; /* improved mode: new or displaced since the last full pass */
};

/* What a pass reads for every app, packed in one cache line (mirrors of the
 * sched_app fields of the same name where both exist). */
struct sched_hot {
	double demand[SCHED_DIMS_MAX];
	int64_t order;
	int32_t priority;
	int32_t server;
	bool blacklisted, renew;
};

struct sched_igroup {
	char *name;
	int count;
	struct pyset avail;
	bool removed;
};

struct sched_reboot_bucket {
	double ts;
	int *servers;
	size_t n, cap;
};

struct sched_reboot {
	int hms[7][3];	/* per weekday (Monday = 0): h, m, s; h < 0 = no reboot */
	int y, m, d;	/* next date reboot_dates will look at */
	double last;	/* _reboot_last */
	struct sched_reboot_bucket *b;
	size_t n, cap;
};

struct sched_partition {
	char *label;
	int alloc;
	struct sched_reboot *reboot; /* NULL until a schedule is set or a server added */
	bool pack; /* improved mode: demand near capacity, fill servers best-fit */
};

void sched_reboot_free(struct sched_reboot *r);

struct sched_tracker {
	uint32_t gen;
	int64_t demand[SCHED_DIMS_MAX];
};

struct sched_cell {
	enum sched_mode mode;
	int ndims;

	struct sched_node *nodes;
	size_t nnodes, cnodes;
	struct strmap node_by_name;

	char **levels;
	int nlevels;

	struct sched_partition *parts;
	int nparts;

	struct sched_alloc *allocs;
	size_t nallocs, callocs;

	struct sched_app *apps;
	struct sched_hot *hot;
	size_t napps, capps, chot, live_apps, nplaced;
	int *touched;		/* apps whose server or expiry changed in this pass */
	size_t ntouched, ctouched;
	uint32_t pass_gen;
	bool in_pass, removed_servers, blacklist_dirty, identities_dirty;
	int *dirty;		/* improved mode: apps to try to place */
	size_t ndirty, cdirty;
	int *srv_changed;	/* improved mode: servers whose state changed */
	size_t nsrv_changed, csrv_changed;
	bool room_freed;	/* improved mode: pending apps may fit now */
	int *pend;		/* live apps without a server, in no particular order */
	size_t npend, cpend;
	struct { int node; double score; } *scr; /* improved mode: put scratch stack */
	size_t nscr, cscr;
	int64_t (*room)[SCHED_DIMS_MAX];	/* improved eviction: per-node evictable room */
	uint32_t *room_gen, ev_room_gen;
	size_t croom, croom_gen;
	struct strmap app_by_name;

	char **affs;
	size_t naffs, caffs;
	struct strmap aff_by_name;

	char **shapes;
	size_t nshapes, cshapes;
	struct strmap shape_by_key;
	struct sched_tracker *tracker;
	size_t ctracker;
	uint32_t tracker_gen;

	int32_t *limitsets; /* SCHED_LEVELS_MAX per set */
	char **limitkeys;
	size_t nlimitsets, climitsets;
	struct strmap limit_by_key;

	struct sched_igroup *igroups;
	size_t nigroups, cigroups;
	struct strmap igroup_by_name;

	struct affmap *afft;	/* per affinity: node -> counter and cursor */
	struct affpool affpool; /* their tables */
	uint64_t *one;		/* "cursor 1, no counter" bits: a row of one_w words per affinity,
				 * a column per bucket with a one_slot */
	size_t one_w, one_rows, one_slots;
	size_t cafft;
	uint64_t *packs;	/* (bucket << 32 | affinity) pairs using PackStrategy (tests only) */
	size_t npacks, cpacks;
	bool *aff_limited;	/* per affinity: some app has limits, so counters are kept */
	int32_t *aff_placed;	/* per affinity: placed apps */
	size_t caff_limited, caff_placed;

	int *srv_order; /* servers in depth-first order */
	size_t nsrv_order, csrv_order;
	bool topo_dirty;

	int *queue;	/* scratch: one partition's queue */
	int *placed_pos; /* scratch: queue positions of apps placed when the pass started */
	struct sched_floor {
		uint64_t traits;
		int64_t demand[SCHED_DIMS_MAX];
	} floors[32];	/* improved mode, per pass: smallest demand no server took, per traits */
	int nfloors;
	size_t nplaced_pos, cplaced_pos;
	size_t cqueue;
	uint32_t ev_gen;

	double next_event_at;
	bool need_full; /* improved mode */
	bool ever_scheduled;
	size_t stat_evictions;
};

int strmap_get(const struct strmap *m, const char *key);
int strmap_put(struct strmap *m, const char *key, int val);
void strmap_del(struct strmap *m, const char *key);
void strmap_free(struct strmap *m);

int pyset_init_range(struct pyset *s, int64_t n);
void pyset_free(struct pyset *s);
int pyset_add(struct pyset *s, int64_t key);
bool pyset_discard(struct pyset *s, int64_t key);
int64_t pyset_pop(struct pyset *s); /* -1 if empty */
bool pyset_contains(const struct pyset *s, int64_t key);
int pyset_symdiff_range(struct pyset *s, int64_t from, int64_t to);
int pyset_difference_range(struct pyset *s, int64_t from, int64_t to);
size_t pyset_len(const struct pyset *s);

/* Test hooks (tests/unit/test-sched.c). */
bool sched__tracker_feasible(struct sched_cell *c, int app);
void sched__tracker_adjust(struct sched_cell *c, int app);
void sched__tracker_reset(struct sched_cell *c);
const char *sched__app_shape(const struct sched_cell *c, int app);
