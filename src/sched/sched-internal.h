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
int64_t pyset_pop(struct pyset *s); int pyset_symdiff_range(struct pyset *s, int64_t from, int64_t to);
int pyset_difference_range(struct pyset *s, int64_t from, int64_t to);
size_t pyset_len(const struct pyset *s);

/* ---- shared between the model's files (sched-*.c) ------------------------- */

#define ND(c) ((c)->ndims)
#define AFF_EMPTY UINT32_MAX
#define GROW(p, cap, need) sched_grow_array((void **)&(p), &(cap), (need), sizeof(*(p)))
#define HGROW(p, cap, need) sched_huge_grow((void **)&(p), &(cap), (need), sizeof(*(p)))

/* sched-mem.c */
int sched_grow_array(void **p, size_t *cap, size_t need, size_t elem);
void sched_huge_free(void *p, size_t len);
int sched_huge_grow(void **p, size_t *cap, size_t need, size_t elem);
char *sched_xstrdup_printf(const char *fmt, ...) _printf_(1, 2);
int sched_intern(char ***arr, size_t *n, size_t *cap, struct strmap *m, const char *s);
int sched_ensure_aff_arrays(struct sched_cell *c);
int sched_level_id(struct sched_cell *c, const char *name);
void sched_affpool_free(struct affpool *p, struct nodeaff *e, size_t cap);
void sched_affpool_destroy(struct affpool *p);
int sched_one_grow(struct sched_cell *c, size_t rows, bool col);
struct nodeaff *sched_aff_get(struct sched_cell *c, int aff, uint32_t key);
int sched_aff_add_up(struct sched_cell *c, int node, int aff, int delta);

/* sched-cell.c */
void sched_seg_update(struct sched_cell *c, int child);
int sched_seg_rebuild(struct sched_cell *c, int b);
int sched_seg_find(const struct sched_cell *c, const struct sched_node *n, int p, size_t lo, size_t hi, const int64_t *dem);
void sched_adjust_capacity_up(struct sched_cell *c, int b, const int64_t *cap);
void sched_sums_add(struct sched_cell *c, int from, const int64_t *free, const int64_t *cap, int sign);
void sched_adjust_capacity_down(struct sched_cell *c, int b, const int64_t *prev_in);
int sched_refresh_topology(struct sched_cell *c);
bool sched_server_in_tree(const struct sched_cell *c, int s);
bool sched_acquire_identity(struct sched_cell *c, struct sched_app *a);
void sched_release_identity(struct sched_cell *c, struct sched_app *a);
int sched_fifo_cmp(const struct sched_app *x, const struct sched_app *y);
int sched_alloc_link(struct sched_cell *c, int alloc, int id);
void sched_alloc_unlink(struct sched_cell *c, int id);

/* sched-place.c */
void sched_mark_dirty(struct sched_cell *c, int id);
void sched_touch(struct sched_cell *c, int id);
void sched_pend_add(struct sched_cell *c, int id);
void sched_pend_del(struct sched_cell *c, int id);
void sched_set_server(struct sched_cell *c, int id, int s);
void sched_set_expiry(struct sched_cell *c, int id, double expiry);
void sched_server_unlink(struct sched_cell *c, int s, int id);
bool sched_server_put(struct sched_cell *c, int s, int id, double now);
bool sched_server_restore(struct sched_cell *c, int s, int id, double expiry, double now);
void sched_server_remove(struct sched_cell *c, int s, int id);
bool sched_node_put(struct sched_cell *c, int node, int id, double now);

/* sched-queue.c */
void sched_total_reserved(struct sched_cell *c, int alloc);
int sched_queue_build(struct sched_cell *c, int alloc, const double *free);
void sched_node_size(const struct sched_cell *c, int node, int part, double *out);
bool sched_tracker_feasible(const struct sched_cell *c, const struct sched_app *a);
void sched_tracker_adjust(struct sched_cell *c, const struct sched_app *a);

/* small and hot: inline in every file */
static inline size_t aff_slot(uint32_t k, size_t cap)
{
	uint64_t h = (uint64_t)k * 0x9E3779B97F4A7C15ull;

	return (size_t)(h >> 32) & (cap - 1);
}

static inline struct nodeaff *aff_find(const struct affmap *m, uint32_t key)
{
	size_t i;

	if (!m->cap)
		return NULL;
	for (i = aff_slot(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
		if (m->e[i].key == key)
			return &m->e[i];
		if (m->e[i].key == AFF_EMPTY)
			return NULL;
	}
}

static inline uint64_t aff_key(int node, int aff)
{
	return ((uint64_t)(uint32_t)node << 32) | (uint32_t)aff;
}

static inline bool valid_node(const struct sched_cell *c, int n)
{
	return n >= 0 && (size_t)n < c->nnodes && !c->nodes[n].removed;
}

static inline bool valid_app(const struct sched_cell *c, int a)
{
	return a >= 0 && (size_t)a < c->napps && c->apps[a].alive;
}

static inline bool same_expiry(double a, double b)
{
	if (isnan(a) || isnan(b))
		return isnan(a) && isnan(b);
	return a == b;
}

static inline uint64_t *one_word(const struct sched_cell *c, int node, int aff, uint64_t *bit)
{
	int slot = c->nodes[node].one_slot;

	if (slot < 0 || (size_t)aff >= c->one_rows)
		return NULL;
	*bit = 1ull << (slot % 64);
	return &c->one[(size_t)aff * c->one_w + (size_t)slot / 64];
}

static inline int32_t aff_count(const struct sched_cell *c, int node, int aff)
{
	const struct nodeaff *e = aff_find(&c->afft[aff], (uint32_t)node);

	return e ? e->count : 0;
}

static inline int32_t app_limit(const struct sched_cell *c, const struct sched_app *a, int level)
{
	if (a->limits < 0)
		return SCHED_NO_LIMIT;
	return c->limitsets[(size_t)a->limits * SCHED_LEVELS_MAX + (size_t)level];
}

static inline uint64_t app_traits(const struct sched_cell *c, const struct sched_app *a)
{
	return a->traits | c->allocs[a->alloc].traits;
}

static inline bool check_app_lifetime(const struct sched_node *s, const struct sched_app *a, double now)
{
	if (a->lease == 0)
		return true;
	return now + a->lease < s->valid_until;
}

static inline bool check_app_constraints(const struct sched_cell *c, int node, const struct sched_app *a)
{
	const struct sched_node *n = &c->nodes[node];
	uint64_t t;
	int32_t lim;

	if (!(n->labels & (1ull << c->allocs[a->alloc].label)))
		return false;
	t = app_traits(c, a);
	if (t && (n->traits & t) != t)
		return false;
	lim = app_limit(c, a, n->level);
	if (lim != SCHED_NO_LIMIT && aff_count(c, node, a->affinity) >= lim)
		return false;
	for (int d = 0; d < ND(c); d++)
		if (a->demand[d] > n->free[d])
			return false;
	return true;
}
