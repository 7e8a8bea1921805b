/* sched-queue.c: the utilization queue (Treadmill's utilization_queue: per
 * allocation priv queues merged by a heap), node sizes and the
 * PlacementFeasibilityTracker.
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

/* ---- utilization queue ---------------------------------------------------------------- */

static double sched_utilization(int ndims, const double *demand, const double *allocated, const double *available)
{
	double m = -INFINITY;

	for (int d = 0; d < ndims; d++) {
		double v = (demand[d] - allocated[d]) / available[d];

		if (v > m || d == 0)
			m = v;
	}
	return m;
}

void sched_total_reserved(struct sched_cell *c, int alloc)
{
	struct sched_alloc *a = &c->allocs[alloc];

	memcpy(a->total, a->reserved, sizeof(a->total));
	for (int i = 0; i < a->nsubs; i++) {
		struct sched_alloc *s = &c->allocs[a->subs[i]];

		sched_total_reserved(c, a->subs[i]);
		for (int d = 0; d < ND(c); d++)
			a->total[d] = a->total[d] + s->total[d];
	}
}

/* Leaf order: (-priority, pending, global_order, name).  The allocation's
 * list is already in (global_order, name) order, so a stable grouping by
 * (priority, pending) is enough. */
static int priv_order(struct sched_cell *c, int alloc, int *out)
{
	const struct sched_alloc *al = &c->allocs[alloc];
	const struct sched_hot *hot = c->hot;
	int minp = INT32_MAX, maxp = INT32_MIN;
	int cnt[256 + 1];
	size_t nb, n = al->napps;

	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		int p = hot[al->ids[i]].priority;

		minp = MIN(minp, p);
		maxp = MAX(maxp, p);
	}
	nb = ((size_t)((int64_t)maxp - minp) + 1) * 2;
	if (nb > 256) {
		/* sparse priorities: stable insertion by key (rare) */
		for (size_t i = 0; i < n; i++) {
			int x = al->ids[i];
			size_t j = i;

			while (j > 0) {
				const struct sched_hot *b = &hot[out[j - 1]], *a = &hot[x];

				if (b->priority > a->priority ||
				    (b->priority == a->priority && (b->server >= 0) >= (a->server >= 0)))
					break;
				out[j] = out[j - 1];
				j--;
			}
			out[j] = x;
		}
		return (int)n;
	}
	memset(cnt, 0, (nb + 1) * sizeof(int));
	for (size_t i = 0; i < n; i++) {
		const struct sched_hot *a = &hot[al->ids[i]];

		cnt[(size_t)(maxp - a->priority) * 2 + (a->server >= 0 ? 0 : 1) + 1]++;
	}
	for (size_t k = 1; k <= nb; k++)
		cnt[k] += cnt[k - 1];
	for (size_t i = 0; i < n; i++) {
		int x = al->ids[i];
		const struct sched_hot *a = &hot[x];

		out[cnt[(size_t)(maxp - a->priority) * 2 + (a->server >= 0 ? 0 : 1)]++] = x;
	}
	return (int)n;
}

/* Allocation.priv_utilization_queue */
/* Allocation.priv_utilization_queue into al->pq.  For an allocation without
 * sub-allocations (free != NULL) its utilization_queue is the same order
 * with utilization recomputed against reserved + free: both are computed in
 * one sweep straight into al->q. */
static int priv_queue(struct sched_cell *c, int alloc, const double *free)
{
	struct sched_alloc *al = &c->allocs[alloc];
	double acc[SCHED_DIMS_MAX] = { 0 }, avail[SCHED_DIMS_MAX], avail2[SCHED_DIMS_MAX], zero[SCHED_DIMS_MAX] = { 0 };
	double ub, ua, ub2 = 0, ua2;
	struct sched_queue_entry *out;
	int n;

	if (HGROW(c->queue, c->cqueue, al->napps + 1) < 0)
		return -ENOMEM;
	if (free ? HGROW(al->q, al->qcap, al->napps + 1) < 0 : HGROW(al->pq, al->pqcap, al->napps + 1) < 0)
		return -ENOMEM;
	out = free ? al->q : al->pq;
	n = priv_order(c, alloc, c->queue);
	if (n < 0)
		return n;
	for (int d = 0; d < ND(c); d++) {
		avail[d] = al->reserved[d] + SCHED_EPS;
		if (free)
			avail2[d] = al->total[d] + free[d] + SCHED_EPS;
	}
	ub = sched_utilization(ND(c), zero, al->reserved, avail);
	if (free)
		ub2 = sched_utilization(ND(c), zero, al->total, avail2);
	for (int i = 0; i < n; i++) {
		int x = c->queue[i];
		const struct sched_hot *a = &c->hot[x];
		struct sched_queue_entry *e = &out[i];
		int64_t rank;

		for (int d = 0; d < ND(c); d++)
			acc[d] = acc[d] + a->demand[d];
		ua = sched_utilization(ND(c), acc, al->reserved, avail);
		if (a->priority == 0)
			ub = ua = INFINITY;
		if (ua <= al->max_util - 1) {
			rank = al->rank;
			if (ub < 0)
				rank -= al->rank_adj;
		} else {
			rank = SCHED_UNPLACED_RANK;
		}
		*e = (struct sched_queue_entry){ rank, ub, ua, x, a->server >= 0 ? 0 : 1, a->priority == 0, { 0 } };
		for (int d = 0; d < ND(c); d++)
			e->demand[d] = (int32_t)a->demand[d];
		ub = ua;
		if (free) {
			ua2 = sched_utilization(ND(c), acc, al->total, avail2);
			if (a->priority == 0)
				ub2 = ua2 = INFINITY;
			e->util_before = ub2;
			e->util_after = ua2;
			ub2 = ua2;
		}
	}
	if (free) {
		al->qn = (size_t)n;
		al->pqn = 0;
	} else {
		al->pqn = (size_t)n;
	}
	return 0;
}

static inline bool entry_lt(const struct heap_item *x, const struct heap_item *y)
{
	const struct sched_queue_entry *a = x->cur, *b = y->cur;

	if (a->rank != b->rank)
		return a->rank < b->rank;
	if (a->util_before != b->util_before)
		return a->util_before < b->util_before;
	if (a->util_after != b->util_after)
		return a->util_after < b->util_after;
	if (a->pending != b->pending)
		return a->pending < b->pending;
	if (x->hot[a->app].order != x->hot[b->app].order)
		return x->hot[a->app].order < x->hot[b->app].order;
	/* Python would compare Application objects here (TypeError); the
	 * iterable index keeps the merge total. */
	return x->idx < y->idx;
}

static void heap_siftdown(struct heap_item *h, int startpos, int pos)
{
	struct heap_item newitem = h[pos];

	while (pos > startpos) {
		int parentpos = (pos - 1) >> 1;

		if (entry_lt(&newitem, &h[parentpos])) {
			h[pos] = h[parentpos];
			pos = parentpos;
			continue;
		}
		break;
	}
	h[pos] = newitem;
}

static void heap_siftup(struct heap_item *h, int n, int pos)
{
	int startpos = pos, childpos = 2 * pos + 1;
	struct heap_item newitem = h[pos];

	while (childpos < n) {
		int rightpos = childpos + 1;

		if (rightpos < n && !entry_lt(&h[childpos], &h[rightpos]))
			childpos = rightpos;
		h[pos] = h[childpos];
		pos = childpos;
		childpos = 2 * pos + 1;
	}
	h[pos] = newitem;
	heap_siftdown(h, startpos, pos);
}

static int merge_open(struct sched_cell *c, int alloc, const double *free);

/* The next entry of a merged allocation's utilization_queue into al->head;
 * false when it is exhausted. */
static bool merge_next(struct sched_cell *c, int alloc)
{
	struct sched_alloc *al = &c->allocs[alloc];
	struct heap_item *h = al->h;
	const struct sched_queue_entry *e;
	double ua;
	bool more;

	if (al->nh == 0)
		return false;
	e = h[0].cur;
	for (int d = 0; d < ND(c); d++)
		al->m_acc[d] = al->m_acc[d] + (double)e->demand[d];
	ua = sched_utilization(ND(c), al->m_acc, al->total, al->m_avail);
	if (e->prio0)
		al->m_ub = ua = INFINITY;
	al->head = *e;
	al->head.util_before = al->m_ub;
	al->head.util_after = ua;
	al->m_ub = ua;
	/* advance the iterable the entry came from (a lazy one refills its head) */
	if (h[0].lazy >= 0)
		more = merge_next(c, h[0].lazy);
	else
		more = ++h[0].cur != h[0].end;
	if (!more) {
		h[0] = h[--al->nh];
		if (al->nh > 0)
			heap_siftup(h, al->nh, 0);
	} else if (al->nh > 1) {
		heap_siftup(h, al->nh, 0);
	}
	return true;
}

/* Start the merge of an allocation with sub-allocations: the sub-allocations
 * with sub-allocations of their own are merged on demand too, the others'
 * queues (and every private queue) are computed now. */
static int merge_open(struct sched_cell *c, int alloc, const double *free)
{
	struct sched_alloc *al = &c->allocs[alloc];
	double zero[SCHED_DIMS_MAX] = { 0 };
	int r, nh = 0;

	for (int i = 0; i < al->nsubs; i++) {
		int sub = al->subs[i];

		r = c->allocs[sub].nsubs ? merge_open(c, sub, free) : priv_queue(c, sub, free);
		if (r < 0)
			return r;
	}
	r = priv_queue(c, alloc, NULL);
	if (r < 0)
		return r;
	al = &c->allocs[alloc];
	if (GROW(al->h, al->hcap, (size_t)al->nsubs + 1) < 0)
		return -ENOMEM;
	for (int i = 0; i <= al->nsubs; i++) {
		int sub = i < al->nsubs ? al->subs[i] : -1;
		struct sched_alloc *s = sub >= 0 ? &c->allocs[sub] : al;

		if (sub >= 0 && s->nsubs) {
			if (merge_next(c, sub))
				al->h[nh++] = (struct heap_item){ &s->head, NULL, c->hot, i, sub };
			continue;
		}
		{
			const struct sched_queue_entry *q = sub >= 0 ? s->q : s->pq;
			size_t qn = sub >= 0 ? s->qn : s->pqn;

			if (qn)
				al->h[nh++] = (struct heap_item){ q, q + qn, c->hot, i, -1 };
		}
	}
	al->nh = nh;
	for (int i = nh / 2 - 1; i >= 0; i--)
		heap_siftup(al->h, nh, i);
	for (int d = 0; d < ND(c); d++) {
		al->m_acc[d] = 0;
		al->m_avail[d] = al->total[d] + free[d] + SCHED_EPS;
	}
	al->m_ub = sched_utilization(ND(c), zero, al->total, al->m_avail);
	return 0;
}

static size_t apps_below(const struct sched_cell *c, int alloc)
{
	const struct sched_alloc *al = &c->allocs[alloc];
	size_t n = al->napps;

	for (int i = 0; i < al->nsubs; i++)
		n += apps_below(c, al->subs[i]);
	return n;
}

/* Allocation.utilization_queue(free) into al->q: merged queue of the
 * sub-allocations and own apps. */
int sched_queue_build(struct sched_cell *c, int alloc, const double *free)
{
	struct sched_alloc *al = &c->allocs[alloc];
	size_t out = 0;
	int r;

	if (al->nsubs == 0)
		return priv_queue(c, alloc, free);
	r = merge_open(c, alloc, free);
	if (r < 0)
		return r;
	al = &c->allocs[alloc];
	if (HGROW(al->q, al->qcap, apps_below(c, alloc) + 1) < 0)
		return -ENOMEM;
	while (merge_next(c, alloc))
		al->q[out++] = al->head;
	al->qn = out;
	return 0;
}

int sched_alloc_queue(struct sched_cell *c, int alloc, const double *free, struct sched_queue_entry **ret,
		      size_t *ret_n)
{
	struct sched_alloc *al;
	int r;

	if (alloc < 0 || (size_t)alloc >= c->nallocs || !free)
		return -EINVAL;
	sched_total_reserved(c, alloc);
	r = sched_queue_build(c, alloc, free);
	if (r < 0)
		return r;
	al = &c->allocs[alloc];
	*ret = malloc((al->qn + 1) * sizeof(**ret));
	if (!*ret)
		return -ENOMEM;
	memcpy(*ret, al->q, al->qn * sizeof(**ret));
	*ret_n = al->qn;
	return 0;
}

/* Node.size(label) */
void sched_node_size(const struct sched_cell *c, int node, int part, double *out)
{
	const struct sched_node *n = &c->nodes[node];
	bool first = true;

	if (n->server) {
		for (int d = 0; d < ND(c); d++)
			out[d] = n->partition == part ? (double)n->cap[d] : SCHED_EPS;
		return;
	}
	if (n->nlive == 0 || !(n->labels & (1ull << part))) {
		for (int d = 0; d < ND(c); d++)
			out[d] = SCHED_EPS;
		return;
	}
	for (int i = 0; i < n->nchildren; i++) {
		double s[SCHED_DIMS_MAX];

		if (n->children[i] < 0)
			continue;
		sched_node_size(c, n->children[i], part, s);
		for (int d = 0; d < ND(c); d++)
			out[d] = first ? s[d] : out[d] + s[d];
		first = false;
	}
}

/* ---- PlacementFeasibilityTracker ------------------------------------------------------ */

bool sched_tracker_feasible(const struct sched_cell *c, const struct sched_app *a)
{
	const struct sched_tracker *t = &c->tracker[a->shape];

	if (t->gen != c->tracker_gen)
		return true;
	for (int d = 0; d < ND(c); d++)
		if (!(a->demand[d] >= t->demand[d]))
			return true;
	return false;
}

void sched_tracker_adjust(struct sched_cell *c, const struct sched_app *a)
{
	struct sched_tracker *t = &c->tracker[a->shape];

	if (t->gen == c->tracker_gen) {
		for (int d = 0; d < ND(c); d++)
			if (!(a->demand[d] <= t->demand[d]))
				return;
	}
	t->gen = c->tracker_gen;
	memcpy(t->demand, a->demand, sizeof(t->demand));
}
