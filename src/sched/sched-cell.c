/* sched-cell.c: the cell model: cells, the bucket/server tree with its per-bucket
 * max trees and capacity sums, partitions and allocations, identity groups,
 * adding and finding apps.
 *
 * Function names follow Treadmill's scheduler/__init__.py where the code
 * mirrors it, so the two can be read side by side (docs/SCHEDULER.md). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched-internal.h"

/* ---- cell ------------------------------------------------------------------------------ */

static struct sched_node *node_new(struct sched_cell *c, const char *name, int *ret_id)
{
	struct sched_node *n;

	if (GROW(c->nodes, c->cnodes, c->nnodes + 1) < 0)
		return NULL;
	n = &c->nodes[c->nnodes];
	memset(n, 0, sizeof(*n));
	n->name = strdup(name);
	if (!n->name)
		return NULL;
	if (strmap_put(&c->node_by_name, n->name, (int)c->nnodes) < 0) {
		free(n->name);
		return NULL;
	}
	n->parent = -1;
	n->one_slot = -1;
	n->partition = -1;
	n->app_head = n->app_tail = -1;
	n->state = SCHED_UP;
	*ret_id = (int)c->nnodes++;
	return n;
}

struct sched_cell *sched_cell_new(const char *name, int ndims, enum sched_mode mode)
{
	struct sched_cell *c;
	struct sched_node *root;
	int id;

	if (ndims < 1 || ndims > SCHED_DIMS_MAX)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->mode = mode;
	c->ndims = ndims;
	c->levels = calloc(SCHED_LEVELS_MAX, sizeof(char *));
	c->parts = calloc(SCHED_PARTITIONS_MAX, sizeof(*c->parts));
	c->next_event_at = INFINITY;
	c->need_full = true;
	c->topo_dirty = true;
	if (!c->levels || !c->parts || sched_level_id(c, "cell") != 0 || sched_level_id(c, "server") != 1)
		goto fail;
	root = node_new(c, name ? name : "cell", &id);
	if (!root)
		goto fail;
	root->level = 0;
	return c;
fail:
	sched_cell_free(c);
	return NULL;
}

void sched_cell_free(struct sched_cell *c)
{
	size_t i;

	if (!c)
		return;
	for (i = 0; i < c->nnodes; i++) {
		free(c->nodes[i].name);
		free(c->nodes[i].down_why);
		free(c->nodes[i].children);
		free(c->nodes[i].seg);
	}
	free(c->nodes);
	strmap_free(&c->node_by_name);
	if (c->levels)
		for (int l = 0; l < c->nlevels; l++)
			free(c->levels[l]);
	free(c->levels);
	if (c->parts)
		for (int p = 0; p < c->nparts; p++) {
			free(c->parts[p].label);
			sched_reboot_free(c->parts[p].reboot);
		}
	free(c->parts);
	for (i = 0; i < c->nallocs; i++) {
		free(c->allocs[i].name);
		free(c->allocs[i].leaf);
		free(c->allocs[i].subs);
		free(c->allocs[i].ids);
		sched_huge_free(c->allocs[i].q, c->allocs[i].qcap * sizeof(*c->allocs[i].q));
		free(c->allocs[i].h);
		sched_huge_free(c->allocs[i].pq, c->allocs[i].pqcap * sizeof(*c->allocs[i].pq));
	}
	free(c->allocs);
	for (i = 0; i < c->napps; i++)
		free(c->apps[i].name);
	sched_huge_free(c->apps, c->capps * sizeof(*c->apps));
	sched_huge_free(c->hot, c->chot * sizeof(*c->hot));
	sched_huge_free(c->touched, c->ctouched * sizeof(*c->touched));
	free(c->dirty);
	free(c->pend);
	free(c->srv_changed);
	free(c->scr);
	free(c->room);
	free(c->room_gen);
	strmap_free(&c->app_by_name);
	for (i = 0; i < c->naffs; i++)
		free(c->affs[i]);
	free(c->affs);
	strmap_free(&c->aff_by_name);
	for (i = 0; i < c->nshapes; i++)
		free(c->shapes[i]);
	free(c->shapes);
	free(c->tracker);
	strmap_free(&c->shape_by_key);
	for (i = 0; i < c->nlimitsets; i++)
		free(c->limitkeys[i]);
	free(c->limitkeys);
	free(c->limitsets);
	strmap_free(&c->limit_by_key);
	for (i = 0; i < c->nigroups; i++) {
		free(c->igroups[i].name);
		pyset_free(&c->igroups[i].avail);
	}
	free(c->igroups);
	strmap_free(&c->igroup_by_name);
	for (i = 0; i < c->naffs && c->afft; i++)
		sched_affpool_free(&c->affpool, c->afft[i].e, c->afft[i].cap);

	free(c->afft);
	sched_affpool_destroy(&c->affpool);
	free(c->one);
	free(c->packs);
	free(c->aff_limited);
	free(c->aff_placed);
	free(c->srv_order);
	sched_huge_free(c->queue, c->cqueue * sizeof(*c->queue));
	sched_huge_free(c->placed_pos, c->cplaced_pos * sizeof(*c->placed_pos));
	free(c);
}

/* ---- topology ---------------------------------------------------------------------------- */

/* ---- per-bucket max trees: skip children that cannot take a demand ---------
 * A child that fails check_app_constraints is skipped by Bucket.put with no
 * side effect (no cursor of its own is touched), so jumping over runs of
 * children whose free capacity is too small gives the same placements,
 * in O(log children) instead of O(children). */

#define SD SCHED_DIMS_MAX
#define SEG(n, p, k) ((n)->seg + (((size_t)(p) * 2 * (n)->segleaves + (k)) * SD))

static void seg_pull(struct sched_cell *c, struct sched_node *n, size_t leaf)
{
	for (int p = 0; p < n->segparts; p++)
		for (size_t k = leaf >> 1; k >= 1; k >>= 1) {
			int64_t *t = SEG(n, p, k), *l = SEG(n, p, 2 * k), *r = SEG(n, p, 2 * k + 1);

			for (int d = 0; d < ND(c); d++)
				t[d] = MAX(l[d], r[d]);
		}
}

static void seg_leaf(struct sched_cell *c, struct sched_node *n, int i)
{
	int ch;

	if (!n->seg)
		return;
	ch = n->children[i];
	for (int p = 0; p < n->segparts; p++) {
		int64_t *t = SEG(n, p, n->segleaves + (size_t)i);
		bool ok = ch >= 0 && c->nodes[ch].state == SCHED_UP && (c->nodes[ch].labels & (1ull << p));

		for (int d = 0; d < ND(c); d++)
			t[d] = ok ? c->nodes[ch].free[d] : INT64_MIN;
	}
}

/* A child's free, state or labels changed: update its parent's trees. */
void sched_seg_update(struct sched_cell *c, int child)
{
	int p = c->nodes[child].parent;
	struct sched_node *n;

	if (p < 0 || c->mode != SCHED_MODE_COMPAT)
		return;
	n = &c->nodes[p];
	if (!n->seg)
		return;
	seg_leaf(c, n, c->nodes[child].pos);
	seg_pull(c, n, n->segleaves + (size_t)c->nodes[child].pos);
}

int sched_seg_rebuild(struct sched_cell *c, int b)
{
	struct sched_node *n = &c->nodes[b];
	size_t leaves = 1, total;
	int parts = MAX(c->nparts, 1);
	int64_t *seg;

	if (c->mode != SCHED_MODE_COMPAT)
		return 0;

	while (leaves < (size_t)n->nchildren)
		leaves *= 2;
	total = (size_t)parts * 2 * leaves * SD;
	if (leaves != n->segleaves || parts != n->segparts || !n->seg) {
		seg = malloc(total * sizeof(int64_t));
		if (!seg)
			return -ENOMEM;
		free(n->seg);
		n->seg = seg;
		n->segleaves = leaves;
		n->segparts = parts;
	}
	for (size_t k = 0; k < total; k++)
		n->seg[k] = INT64_MIN;
	for (int i = 0; i < n->nchildren; i++)
		seg_leaf(c, n, i);
	for (int p = 0; p < parts; p++)
		for (size_t k = leaves - 1; k >= 1; k--) {
			int64_t *t = SEG(n, p, k), *l = SEG(n, p, 2 * k), *r = SEG(n, p, 2 * k + 1);

			for (int d = 0; d < ND(c); d++)
				t[d] = MAX(l[d], r[d]);
		}
	return 0;
}

static inline bool seg_fits(const struct sched_cell *c, const int64_t *t, const int64_t *dem)
{
	for (int d = 0; d < ND(c); d++)
		if (t[d] < dem[d])
			return false;
	return true;
}

/* First child index in [lo, hi) that is up, of partition p, with free >= dem,
 * or -1.  Bottom-up from leaf lo: an in-order walk of the subtrees right of
 * it, entering those whose maxima fit (per dimension, so a subtree may fit
 * and hold no leaf that does: the walk then moves on to its right). */
int sched_seg_find(const struct sched_cell *c, const struct sched_node *n, int p, size_t lo, size_t hi,
		    const int64_t *dem)
{
	const size_t leaves = n->segleaves;
	const int logl = __builtin_ctzll(leaves);
	size_t k;

	if (lo >= hi)
		return -1;
	k = leaves + lo;
	for (;;) {
		if (seg_fits(c, SEG(n, p, k), dem)) {
			if (k >= leaves)
				return k - leaves < hi ? (int)(k - leaves) : -1;
			k *= 2;
			continue;
		}
		while (k & 1)
			k >>= 1;
		if (k == 0)
			return -1;
		k++;
		/* the leftmost leaf under k */
		if ((k << (logl - (63 - __builtin_clzll(k)))) - leaves >= hi)
			return -1;
	}
}

void sched_adjust_capacity_up(struct sched_cell *c, int b, const int64_t *cap)
{
	int d;

	for (; b >= 0; b = c->nodes[b].parent) {
		struct sched_node *n = &c->nodes[b];

		bool changed = false;

		for (d = 0; d < ND(c); d++)
			if (cap[d] > n->free[d]) {
				n->free[d] = cap[d];
				changed = true;
			}
		if (changed)
			sched_seg_update(c, b);
		cap = n->free;
	}
}

/* Improved mode's load totals: add (sign +1) or remove a server's free and
 * capacity from its ancestors' sums. */
void sched_sums_add(struct sched_cell *c, int from, const int64_t *free, const int64_t *cap, int sign)
{
	if (c->mode != SCHED_MODE_IMPROVED)
		return;
	for (int b = from; b >= 0; b = c->nodes[b].parent)
		for (int d = 0; d < ND(c); d++) {
			c->nodes[b].sum_free[d] += sign * free[d];
			if (cap)
				c->nodes[b].sum_cap[d] += sign * cap[d];
		}
}

/* Sums of every up server under `node` into `from` and its ancestors. */
static void subtree_sums(struct sched_cell *c, int node, int from, int sign)
{
	struct sched_node *n = &c->nodes[node];

	if (n->server) {
		if (n->state == SCHED_UP)
			sched_sums_add(c, from, n->free, n->cap, sign);
		return;
	}
	for (int i = 0; i < n->nchildren; i++)
		if (n->children[i] >= 0)
			subtree_sums(c, n->children[i], from, sign);
}

void sched_adjust_capacity_down(struct sched_cell *c, int b, const int64_t *prev_in)
{
	int64_t bufs[2][SCHED_DIMS_MAX];
	int64_t prev[SCHED_DIMS_MAX];
	bool have_prev = prev_in != NULL;
	int which = 0, d;

	if (have_prev)
		memcpy(prev, prev_in, sizeof(prev));
	while (b >= 0) {
		struct sched_node *n = &c->nodes[b];
		int64_t *f = bufs[which];
		bool lt;

		if (n->nlive == 0) {
			memset(n->free, 0, sizeof(n->free));
			sched_seg_update(c, b);
			b = n->parent;
			have_prev = false;
			continue;
		}
		if (have_prev) {
			bool all_lt = true;

			for (d = 0; d < ND(c); d++)
				if (!(prev[d] < n->free[d])) {
					all_lt = false;
					break;
				}
			if (all_lt)
				return;
		}
		memset(f, 0, sizeof(bufs[0]));
		for (int i = 0; i < n->nchildren; i++) {
			int ch = n->children[i];
			const struct sched_node *cn;

			if (ch < 0)
				continue;
			cn = &c->nodes[ch];
			if (cn->state != SCHED_UP)
				continue;
			for (d = 0; d < ND(c); d++)
				if (cn->free[d] > f[d])
					f[d] = cn->free[d];
		}
		lt = false;
		for (d = 0; d < ND(c); d++)
			if (f[d] < n->free[d]) {
				lt = true;
				break;
			}
		if (!lt)
			return;
		memcpy(prev, n->free, sizeof(prev));
		have_prev = true;
		memcpy(n->free, f, sizeof(n->free));
		sched_seg_update(c, b);
		b = n->parent;
		which ^= 1;
	}
}

static void recompute_traits_up(struct sched_cell *c, int b)
{
	for (; b >= 0; b = c->nodes[b].parent) {
		struct sched_node *n = &c->nodes[b];
		uint64_t t = n->traits_self;

		for (int i = 0; i < n->nchildren; i++)
			if (n->children[i] >= 0)
				t |= c->nodes[n->children[i]].traits;
		n->traits = t;
	}
}

/* Add or subtract the affinity counters of every app under `node` to `from` and its ancestors. */
static int subtree_affinity(struct sched_cell *c, int node, int from, int delta)
{
	struct sched_node *n = &c->nodes[node];
	int r;

	if (n->server) {
		for (int a = n->app_head; a >= 0; a = c->apps[a].srv_next) {
			r = sched_aff_add_up(c, from, c->apps[a].affinity, delta);
			if (r < 0)
				return r;
		}
		return 0;
	}
	for (int i = 0; i < n->nchildren; i++)
		if (n->children[i] >= 0) {
			r = subtree_affinity(c, n->children[i], from, delta);
			if (r < 0)
				return r;
		}
	return 0;
}

/* Bucket.add_node */
static int attach(struct sched_cell *c, int parent, int id)
{
	struct sched_node *p = &c->nodes[parent];
	struct sched_node *n = &c->nodes[id];
	uint64_t labels;

	if (GROW(p->children, p->cchildren, (size_t)p->nchildren + 1) < 0)
		return -ENOMEM;
	n->pos = p->nchildren;
	p->children[p->nchildren++] = id;
	p->nlive++;
	n->parent = parent;
	if (sched_seg_rebuild(c, parent) < 0)
		return -ENOMEM;
	recompute_traits_up(c, parent);
	if (subtree_affinity(c, id, parent, +1) < 0)
		return -ENOMEM;
	labels = n->labels;
	sched_seg_update(c, id);
	for (int b = parent; b >= 0; b = c->nodes[b].parent) {
		uint64_t old = c->nodes[b].labels;

		c->nodes[b].labels |= labels;
		labels = c->nodes[b].labels;
		if (labels != old)
			sched_seg_update(c, b);
	}
	sched_adjust_capacity_up(c, parent, c->nodes[id].free);
	subtree_sums(c, id, parent, +1);
	c->topo_dirty = true;
	c->need_full = true;
	return 0;
}

int sched_bucket_add(struct sched_cell *c, int parent, const char *name, const char *level, uint64_t traits)
{
	struct sched_node *n;
	_cleanup_free_ char *lv = NULL;
	int id, lid, r;

	if (!name || !*name || !valid_node(c, parent) || c->nodes[parent].server)
		return -EINVAL;
	if (strmap_get(&c->node_by_name, name) >= 0)
		return -EEXIST;
	if (!level) {
		const char *colon = strchr(name, ':');

		lv = colon ? strndup(name, (size_t)(colon - name)) : strdup(name);
		if (!lv)
			return -ENOMEM;
		level = lv;
	}
	lid = sched_level_id(c, level);
	if (lid < 0)
		return lid;
	n = node_new(c, name, &id);
	if (!n)
		return -ENOMEM;
	n->level = lid;
	n->traits_self = n->traits = traits;
	r = attach(c, parent, id);
	return r < 0 ? r : id;
}

int sched_server_add(struct sched_cell *c, int parent, const char *name, const int64_t *capacity, uint64_t traits,
		     const char *partition, double up_since, double valid_until)
{
	struct sched_node *n;
	int id, part, r;

	if (!name || !*name || !capacity || !valid_node(c, parent) || c->nodes[parent].server)
		return -EINVAL;
	for (int d = 0; d < ND(c); d++)
		if (capacity[d] < 0)
			return -EINVAL;
	if (strmap_get(&c->node_by_name, name) >= 0)
		return -EEXIST;
	part = sched_partition_get(c, partition ? partition : "_default");
	if (part < 0)
		return part;
	n = node_new(c, name, &id);
	if (!n)
		return -ENOMEM;
	n->level = 1;
	n->server = true;
	n->traits_self = n->traits = traits;
	n->labels = 1ull << part;
	n->partition = part;
	memcpy(n->cap, capacity, sizeof(int64_t) * (size_t)ND(c));
	memcpy(n->free, capacity, sizeof(int64_t) * (size_t)ND(c));
	memcpy(n->sum_free, capacity, sizeof(int64_t) * (size_t)ND(c));
	memcpy(n->sum_cap, capacity, sizeof(int64_t) * (size_t)ND(c));
	n->up_since = up_since;
	n->valid_until = valid_until;
	n->since = up_since;
	r = attach(c, parent, id);
	return r < 0 ? r : id;
}

int sched_node_find(const struct sched_cell *c, const char *name)
{
	return strmap_get(&c->node_by_name, name);
}

const char *sched_node_name(const struct sched_cell *c, int node)
{
	return node >= 0 && (size_t)node < c->nnodes ? c->nodes[node].name : NULL;
}

int sched_node_parent(const struct sched_cell *c, int node)
{
	return valid_node(c, node) ? c->nodes[node].parent : -ENOENT;
}

bool sched_node_is_server(const struct sched_cell *c, int node)
{
	return valid_node(c, node) && c->nodes[node].server;
}

int sched_server_set_state(struct sched_cell *c, int server, enum sched_state st, double since)
{
	struct sched_node *n;
	bool was_up;

	if (!valid_node(c, server) || !c->nodes[server].server || st > SCHED_FROZEN)
		return -EINVAL;
	n = &c->nodes[server];
	if (n->state == st)
		return 0;
	was_up = n->state == SCHED_UP;
	n->state = st;
	n->since = since;
	sched_seg_update(c, server);
	if (n->parent >= 0) {
		if (st == SCHED_UP)
			sched_adjust_capacity_up(c, n->parent, n->free);
		else
			sched_adjust_capacity_down(c, n->parent, n->free);
		if (was_up != (st == SCHED_UP))
			sched_sums_add(c, n->parent, n->free, n->cap, st == SCHED_UP ? +1 : -1);
	}
	if (c->mode == SCHED_MODE_IMPROVED) {
		if (GROW(c->srv_changed, c->csrv_changed, c->nsrv_changed + 1) < 0)
			c->need_full = true;
		else
			c->srv_changed[c->nsrv_changed++] = server;
	} else {
		c->need_full = true;
	}
	return 0;
}

int sched_server_get_state(const struct sched_cell *c, int server, enum sched_state *ret_state, double *ret_since)
{
	if (!valid_node(c, server) || !c->nodes[server].server)
		return -EINVAL;
	if (ret_state)
		*ret_state = c->nodes[server].state;
	if (ret_since)
		*ret_since = c->nodes[server].since;
	return 0;
}

/* members(): servers in depth-first order. */
static void collect_servers(struct sched_cell *c, int node)
{
	struct sched_node *n = &c->nodes[node];

	if (n->server) {
		n->order_pos = (int)c->nsrv_order;
		c->srv_order[c->nsrv_order++] = node;
		return;
	}
	for (int i = 0; i < n->nchildren; i++)
		if (n->children[i] >= 0)
			collect_servers(c, n->children[i]);
}

int sched_refresh_topology(struct sched_cell *c)
{
	if (!c->topo_dirty)
		return 0;
	if (GROW(c->srv_order, c->csrv_order, c->nnodes) < 0)
		return -ENOMEM;
	c->nsrv_order = 0;
	collect_servers(c, SCHED_ROOT);
	c->topo_dirty = false;
	return 0;
}

bool sched_server_in_tree(const struct sched_cell *c, int s)
{
	if (s < 0 || (size_t)s >= c->nnodes || c->nodes[s].removed)
		return false;
	for (; s != SCHED_ROOT; s = c->nodes[s].parent)
		if (s < 0)
			return false;
	return true;
}

/* ---- partitions and allocations ------------------------------------------------------ */

static int alloc_new(struct sched_cell *c, int parent, int partition, const char *leaf)
{
	struct sched_alloc *a;
	int id;

	if (GROW(c->allocs, c->callocs, c->nallocs + 1) < 0)
		return -ENOMEM;
	id = (int)c->nallocs;
	a = &c->allocs[id];
	memset(a, 0, sizeof(*a));
	a->parent = parent;
	a->partition = partition;
	a->label = partition;
	a->rank = SCHED_DEFAULT_RANK;
	a->max_util = INFINITY;
	a->leaf = strdup(leaf);
	if (parent < 0) {
		a->name = strdup("");
		a->cons_label = partition; /* Allocation(partition=label) */
	} else {
		const char *pn = c->allocs[parent].name;

		a->name = *pn ? sched_xstrdup_printf("%s/%s", pn, leaf) : strdup(leaf);
		a->cons_label = -1; /* Allocation() in get_sub_alloc: (None, 0) */
	}
	if (!a->leaf || !a->name) {
		free(a->leaf);
		free(a->name);
		return -ENOMEM;
	}
	if (parent >= 0) {
		struct sched_alloc *p = &c->allocs[parent];

		if (GROW(p->subs, p->csubs, (size_t)p->nsubs + 1) < 0) {
			free(a->leaf);
			free(a->name);
			return -ENOMEM;
		}
		p->subs[p->nsubs++] = id;
	}
	c->nallocs++;
	return id;
}

int sched_partition_get(struct sched_cell *c, const char *label)
{
	int a;

	if (!label)
		label = "_default";
	for (int p = 0; p < c->nparts; p++)
		if (strcmp(c->parts[p].label, label) == 0)
			return p;
	if (c->nparts >= SCHED_PARTITIONS_MAX)
		return -E2BIG;
	c->parts[c->nparts].label = strdup(label);
	if (!c->parts[c->nparts].label)
		return -ENOMEM;
	a = alloc_new(c, -1, c->nparts, "");
	if (a < 0) {
		free(c->parts[c->nparts].label);
		return a;
	}
	c->parts[c->nparts].alloc = a;
	c->need_full = true;
	return c->nparts++;
}

/* Root allocation of a partition. */
static int sched_partition_alloc(const struct sched_cell *c, int partition)
{
	if (partition < 0 || partition >= c->nparts)
		return -ENOENT;
	return c->parts[partition].alloc;
}

const char *sched_partition_label(const struct sched_cell *c, int partition)
{
	return partition >= 0 && partition < c->nparts ? c->parts[partition].label : NULL;
}

int sched_partition_count(const struct sched_cell *c)
{
	return c->nparts;
}

/* Sub-allocation `name` of `parent`, created empty (rank 100) if missing. */
static int sched_alloc_get(struct sched_cell *c, int parent, const char *name)
{
	struct sched_alloc *p;

	if (parent < 0 || (size_t)parent >= c->nallocs || !name || !*name)
		return -EINVAL;
	p = &c->allocs[parent];
	for (int i = 0; i < p->nsubs; i++)
		if (strcmp(c->allocs[p->subs[i]].leaf, name) == 0)
			return p->subs[i];
	c->need_full = true;
	return alloc_new(c, parent, c->allocs[parent].partition, name);
}

int sched_alloc_get_path(struct sched_cell *c, int partition, const char *path)
{
	int a = sched_partition_alloc(c, partition);
	const char *s = path;

	if (a < 0 || !path)
		return -EINVAL;
	while (a >= 0 && *s) {
		size_t len = strcspn(s, "/:");
		_cleanup_free_ char *comp = strndup(s, len);

		if (!comp)
			return -ENOMEM;
		if (len == 0)
			return -EINVAL;
		a = sched_alloc_get(c, a, comp);
		s += len;
		if (*s)
			s++;
	}
	return a;
}

int sched_alloc_update(struct sched_cell *c, int alloc, const double *reserved, int64_t rank, int64_t rank_adjustment,
		       double max_utilization)
{
	struct sched_alloc *a;

	if (alloc < 0 || (size_t)alloc >= c->nallocs)
		return -EINVAL;
	a = &c->allocs[alloc];
	a->rank = rank < 0 ? SCHED_DEFAULT_RANK : rank;
	a->rank_adj = rank_adjustment;
	for (int d = 0; d < SCHED_DIMS_MAX; d++)
		a->reserved[d] = reserved && d < ND(c) ? reserved[d] : 0.0;
	a->max_util = max_utilization > 0 ? max_utilization : INFINITY;
	c->need_full = true;
	return 0;
}

int sched_alloc_set_traits(struct sched_cell *c, int alloc, uint64_t traits)
{
	if (alloc < 0 || (size_t)alloc >= c->nallocs)
		return -EINVAL;
	c->allocs[alloc].traits = traits;
	c->need_full = true;
	return 0;
}

int sched_alloc_count(const struct sched_cell *c)
{
	return (int)c->nallocs;
}

/* ---- identity groups --------------------------------------------------------------- */

static int igroup_lookup(struct sched_cell *c, const char *name, bool create)
{
	struct sched_igroup *g;
	int id = strmap_get(&c->igroup_by_name, name);

	if (id >= 0 || !create)
		return id;
	if (GROW(c->igroups, c->cigroups, c->nigroups + 1) < 0)
		return -ENOMEM;
	g = &c->igroups[c->nigroups];
	memset(g, 0, sizeof(*g));
	g->name = strdup(name);
	if (!g->name || pyset_init_range(&g->avail, 0) < 0) {
		free(g->name);
		pyset_free(&g->avail);
		return -ENOMEM;
	}
	if (strmap_put(&c->igroup_by_name, g->name, (int)c->nigroups) < 0) {
		free(g->name);
		pyset_free(&g->avail);
		return -ENOMEM;
	}
	return (int)c->nigroups++;
}

static int igroup_adjust(struct sched_igroup *g, int count)
{
	int r;

	if (count >= g->count)
		r = pyset_symdiff_range(&g->avail, g->count, count);
	else
		r = pyset_difference_range(&g->avail, count, g->count);
	if (r < 0)
		return r;
	g->count = count;
	return 0;
}

int sched_identity_group_set(struct sched_cell *c, const char *name, int count)
{
	int id, r;

	if (!name || count < 0)
		return -EINVAL;
	id = strmap_get(&c->igroup_by_name, name);
	if (id < 0) {
		id = igroup_lookup(c, name, true);
		if (id < 0)
			return id;
		pyset_free(&c->igroups[id].avail);
		r = pyset_init_range(&c->igroups[id].avail, count);
		if (r < 0)
			return r;
		c->igroups[id].count = count;
	} else {
		r = igroup_adjust(&c->igroups[id], count);
		if (r < 0)
			return r;
	}
	c->identities_dirty = true;
	c->need_full = true;
	return 0;
}

bool sched_acquire_identity(struct sched_cell *c, struct sched_app *a)
{
	if (a->igroup < 0)
		return true;
	if (a->identity < 0)
		a->identity = (int)pyset_pop(&c->igroups[a->igroup].avail);
	return a->identity >= 0;
}

void sched_release_identity(struct sched_cell *c, struct sched_app *a)
{
	struct sched_igroup *g;

	if (a->igroup < 0 || a->identity < 0)
		return;
	g = &c->igroups[a->igroup];
	if (a->identity < g->count)
		pyset_add(&g->avail, a->identity);
	a->identity = -1;
}

/* ---- apps ------------------------------------------------------------------------ */

int sched_fifo_cmp(const struct sched_app *x, const struct sched_app *y)
{
	if (x->order != y->order)
		return x->order < y->order ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* Allocation apps are kept in FIFO order (global_order, name), so each pass
 * only has to group them by (priority, pending). */
int sched_alloc_link(struct sched_cell *c, int alloc, int id)
{
	struct sched_alloc *al = &c->allocs[alloc];
	const struct sched_app *a = &c->apps[id];
	size_t lo = 0, hi = al->napps;

	if (GROW(al->ids, al->cids, al->napps + 1) < 0)
		return -ENOMEM;
	if (hi > 0 && sched_fifo_cmp(&c->apps[al->ids[hi - 1]], a) < 0)
		lo = hi; /* the usual case: newest app */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (sched_fifo_cmp(&c->apps[al->ids[mid]], a) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	memmove(al->ids + lo + 1, al->ids + lo, (al->napps - lo) * sizeof(int));
	al->ids[lo] = id;
	al->napps++;
	c->apps[id].alloc = alloc;
	return 0;
}

void sched_alloc_unlink(struct sched_cell *c, int id)
{
	struct sched_alloc *al = &c->allocs[c->apps[id].alloc];
	size_t lo = 0, hi = al->napps;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (sched_fifo_cmp(&c->apps[al->ids[mid]], &c->apps[id]) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < al->napps && al->ids[lo] == id) {
		memmove(al->ids + lo, al->ids + lo + 1, (al->napps - lo - 1) * sizeof(int));
		al->napps--;
	}
}

static void fmt_num(char *buf, size_t n, double v)
{
	if (isinf(v))
		snprintf(buf, n, "inf");
	else
		snprintf(buf, n, "%.17g", v);
}

static int cmp_i32(const void *x, const void *y)
{
	int32_t a = *(const int32_t *)x, b = *(const int32_t *)y;

	return a < b ? -1 : a > b;
}

/* Tracker key: Treadmill's shape()[0], (affinity, *sorted(limits), lease, *alloc.constraints). */
static int app_shape(struct sched_cell *c, struct sched_app *a, const struct sched_limit *limits, size_t n)
{
	const struct sched_alloc *al = &c->allocs[a->alloc];
	int32_t vals[SCHED_LEVELS_MAX * 2];
	char buf[64];
	char *key = NULL;
	size_t len = 0;
	FILE *f;
	int id;

	f = open_memstream(&key, &len);
	if (!f)
		return -ENOMEM;
	fputs(c->affs[a->affinity], f);
	for (size_t i = 0; i < n && i < ELEMENTSOF(vals); i++)
		vals[i] = limits[i].limit;
	qsort(vals, MIN(n, ELEMENTSOF(vals)), sizeof(int32_t), cmp_i32);
	for (size_t i = 0; i < n && i < ELEMENTSOF(vals); i++)
		fprintf(f, "\x1f%d", vals[i]);
	fmt_num(buf, sizeof(buf), a->lease);
	fprintf(f, "\x1f%s\x1f%d\x1f%llu", buf, al->cons_label, (unsigned long long)al->cons_traits);
	if (fclose(f) != 0 || !key) {
		free(key);
		return -ENOMEM;
	}
	id = sched_intern(&c->shapes, &c->nshapes, &c->cshapes, &c->shape_by_key, key);
	free(key);
	if (id < 0)
		return id;
	if (GROW(c->tracker, c->ctracker, c->nshapes) < 0)
		return -ENOMEM;
	if ((size_t)id == c->nshapes - 1)
		memset(&c->tracker[id], 0, sizeof(c->tracker[id]));
	return id;
}

static int app_limits(struct sched_cell *c, const struct sched_limit *limits, size_t n)
{
	int32_t set[SCHED_LEVELS_MAX];
	char key[SCHED_LEVELS_MAX * 16];
	size_t kl = 0;
	int id;

	if (!n)
		return -1;
	for (int l = 0; l < SCHED_LEVELS_MAX; l++)
		set[l] = SCHED_NO_LIMIT;
	for (size_t i = 0; i < n; i++) {
		int l;

		if (!limits[i].level || limits[i].limit < 0)
			return -EINVAL;
		l = sched_level_id(c, limits[i].level);
		if (l < 0)
			return l;
		set[l] = limits[i].limit;
	}
	for (int l = 0; l < SCHED_LEVELS_MAX; l++)
		kl += (size_t)snprintf(key + kl, sizeof(key) - kl, "%d,", set[l]);
	id = strmap_get(&c->limit_by_key, key);
	if (id >= 0)
		return id;
	if (GROW(c->limitkeys, c->climitsets, c->nlimitsets + 1) < 0)
		return -ENOMEM;
	{
		size_t cap = c->climitsets;
		int32_t *ls = realloc(c->limitsets, cap * SCHED_LEVELS_MAX * sizeof(int32_t));

		if (!ls)
			return -ENOMEM;
		c->limitsets = ls;
	}
	c->limitkeys[c->nlimitsets] = strdup(key);
	if (!c->limitkeys[c->nlimitsets])
		return -ENOMEM;
	memcpy(c->limitsets + c->nlimitsets * SCHED_LEVELS_MAX, set, sizeof(set));
	if (strmap_put(&c->limit_by_key, c->limitkeys[c->nlimitsets], (int)c->nlimitsets) < 0)
		return -ENOMEM;
	return (int)c->nlimitsets++;
}

int sched_app_add(struct sched_cell *c, int alloc, const struct sched_app_spec *spec)
{
	struct sched_app *a;
	_cleanup_free_ char *affname = NULL;
	int id, r;

	if (!spec || !spec->name || !*spec->name || !spec->demand || alloc < 0 || (size_t)alloc >= c->nallocs)
		return -EINVAL;
	for (int d = 0; d < ND(c); d++)
		if (spec->demand[d] < 0 || spec->demand[d] > INT32_MAX)
			return -EINVAL;
	if (strmap_get(&c->app_by_name, spec->name) >= 0)
		return -EEXIST;
	if (HGROW(c->apps, c->capps, c->napps + 1) < 0 || HGROW(c->hot, c->chot, c->napps + 1) < 0)
		return -ENOMEM;
	id = (int)c->napps;
	a = &c->apps[id];
	memset(a, 0, sizeof(*a));
	a->server = a->ev_server = a->before_server = -1;
	a->identity = -1;
	a->igroup = -1;
	a->srv_prev = a->srv_next = -1;
	a->expiry = NAN;
	if (spec->affinity)
		affname = strdup(spec->affinity);
	else
		affname = strndup(spec->name, strcspn(spec->name, "#"));
	if (!affname)
		return -ENOMEM;
	r = sched_intern(&c->affs, &c->naffs, &c->caffs, &c->aff_by_name, affname);
	if (r < 0)
		return r;
	a->affinity = r;
	if (sched_ensure_aff_arrays(c) < 0)
		return -ENOMEM;
	r = app_limits(c, spec->limits, spec->n_limits);
	if (r < -1)
		return r;
	a->limits = r;
	if (r >= 0 && !c->aff_limited[a->affinity]) {
		c->aff_limited[a->affinity] = true;
		if (c->aff_placed[a->affinity] > 0)
			for (size_t x = 0; x < c->napps; x++) {
				const struct sched_app *o = &c->apps[x];

				if (o->alive && o->affinity == a->affinity && o->server >= 0 &&
				    sched_server_in_tree(c, o->server) && sched_aff_add_up(c, o->server, o->affinity, +1) < 0)
					return -ENOMEM;
			}
	}
	if (spec->identity_group) {
		r = igroup_lookup(c, spec->identity_group, true); /* defaultdict: count 0 */
		if (r < 0)
			return r;
		a->igroup = r;
	}
	a->name = strdup(spec->name);
	if (!a->name)
		return -ENOMEM;
	memcpy(a->demand, spec->demand, sizeof(int64_t) * (size_t)ND(c));
	a->priority = spec->priority;
	a->retention = spec->data_retention_timeout;
	a->lease = spec->lease;
	a->traits = spec->traits;
	a->schedule_once = spec->schedule_once;
	a->order = spec->global_order;
	a->alloc = alloc;
	r = app_shape(c, a, spec->limits, spec->n_limits);
	if (r < 0) {
		free(a->name);
		return r;
	}
	a->shape = r;
	if (strmap_put(&c->app_by_name, a->name, id) < 0) {
		free(a->name);
		return -ENOMEM;
	}
	if (sched_alloc_link(c, alloc, id) < 0) {
		strmap_del(&c->app_by_name, a->name);
		free(a->name);
		return -ENOMEM;
	}
	memset(&c->hot[id], 0, sizeof(c->hot[id]));
	for (int d = 0; d < ND(c); d++)
		c->hot[id].demand[d] = (double)a->demand[d];
	c->hot[id].priority = a->priority;
	c->hot[id].server = -1;
	c->hot[id].order = a->order;
	a->alive = true;
	a->pend_idx = -1;
	c->napps++;
	c->live_apps++;
	sched_pend_add(c, id);
	sched_mark_dirty(c, id);
	a->fresh = true;
	return id;
}

int sched_app_find(const struct sched_cell *c, const char *name)
{
	return strmap_get(&c->app_by_name, name);
}

size_t sched_app_count(const struct sched_cell *c)
{
	return c->live_apps;
}

int sched_app_next(const struct sched_cell *c, int app)
{
	for (size_t a = (size_t)(app + 1); a < c->napps; a++)
		if (c->apps[a].alive)
			return (int)a;
	return -ENOENT;
}

int sched_server_next(const struct sched_cell *c, int server)
{
	struct sched_cell *mc = (struct sched_cell *)c; /* the order is a cache */
	size_t i = 0;

	if (sched_refresh_topology(mc) < 0)
		return -ENOMEM;
	if (server >= 0) {
		if (!valid_node(c, server) || !c->nodes[server].server)
			return -EINVAL;
		i = (size_t)c->nodes[server].order_pos + 1;
	}
	return i < c->nsrv_order ? c->srv_order[i] : -ENOENT;
}

/* ---- the dirty and pending app lists (sched-place.c and sched.c use them) ---- */

/* Improved mode: queue an app for a placement attempt by the next pass. */
void sched_mark_dirty(struct sched_cell *c, int id)
{
	struct sched_app *a = &c->apps[id];

	if (a->dirty)
		return;
	if (GROW(c->dirty, c->cdirty, c->ndirty + 1) < 0) {
		c->need_full = true;
		return;
	}
	a->dirty = true;
	c->dirty[c->ndirty++] = id;
}

void sched_pend_add(struct sched_cell *c, int id)
{
	if (c->apps[id].pend_idx >= 0 || GROW(c->pend, c->cpend, c->npend + 1) < 0)
		return;
	c->apps[id].pend_idx = (int)c->npend;
	c->pend[c->npend++] = id;
}

void sched_pend_del(struct sched_cell *c, int id)
{
	int i = c->apps[id].pend_idx;

	if (i < 0)
		return;
	c->pend[i] = c->pend[--c->npend];
	c->apps[c->pend[i]].pend_idx = i;
	c->apps[id].pend_idx = -1;
}
