/* sched-place.c: placing one app: Treadmill's Node.check_app_constraints,
 * Server.put/remove and Bucket.put with the Spread/Pack strategies, and the
 * pass's touched bookkeeping (the dirty and pending lists are sched-cell.c's).
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

/* ---- Node.check_app_constraints, Server.put / remove --------------------------------- */

/* Remember an app's placement before the pass first changes it. */
void sched_touch(struct sched_cell *c, int id)
{
	struct sched_app *a = &c->apps[id];

	if (!c->in_pass || a->touch_gen == c->pass_gen)
		return;
	if (HGROW(c->touched, c->ctouched, c->ntouched + 1) < 0) {
		c->need_full = true; /* reported changes may be incomplete; rare */
		return;
	}
	a->touch_gen = c->pass_gen;
	a->before_server = a->server;
	a->before_expiry = a->expiry;
	c->touched[c->ntouched++] = id;
}

void sched_set_server(struct sched_cell *c, int id, int s)
{
	struct sched_app *a = &c->apps[id];

	if ((a->server >= 0) != (s >= 0)) {
		c->nplaced += s >= 0 ? 1 : (size_t)-1;
		if (s >= 0)
			sched_pend_del(c, id);
		else
			sched_pend_add(c, id);
	}
	a->server = s;
	c->hot[id].server = s;
}

void sched_set_expiry(struct sched_cell *c, int id, double expiry)
{
	sched_touch(c, id);
	c->apps[id].expiry = expiry;
}

static void server_link(struct sched_cell *c, int s, int id)
{
	struct sched_node *n = &c->nodes[s];
	struct sched_app *a = &c->apps[id];

	a->srv_prev = n->app_tail;
	a->srv_next = -1;
	if (n->app_tail >= 0)
		c->apps[n->app_tail].srv_next = id;
	else
		n->app_head = id;
	n->app_tail = id;
	n->napps++;
}

void sched_server_unlink(struct sched_cell *c, int s, int id)
{
	struct sched_node *n = &c->nodes[s];
	struct sched_app *a = &c->apps[id];

	if (a->srv_prev >= 0)
		c->apps[a->srv_prev].srv_next = a->srv_next;
	else
		n->app_head = a->srv_next;
	if (a->srv_next >= 0)
		c->apps[a->srv_next].srv_prev = a->srv_prev;
	else
		n->app_tail = a->srv_prev;
	n->napps--;
	a->srv_prev = a->srv_next = -1;
}

/* The placement half of Server.put, after the checks. */
static void server_place(struct sched_cell *c, int s, int id, double now)
{
	struct sched_node *n = &c->nodes[s];
	struct sched_app *a = &c->apps[id];
	int64_t prev[SCHED_DIMS_MAX];

	sched_touch(c, id);
	memcpy(prev, n->free, sizeof(prev));
	for (int d = 0; d < ND(c); d++)
		n->free[d] -= a->demand[d];
	if (n->state == SCHED_UP) {
		int64_t neg[SCHED_DIMS_MAX];

		for (int d = 0; d < ND(c); d++)
			neg[d] = -a->demand[d];
		sched_sums_add(c, s, neg, NULL, +1);
	}
	sched_seg_update(c, s);
	server_link(c, s, id);
	c->aff_placed[a->affinity]++;
	sched_aff_add_up(c, s, a->affinity, +1);
	sched_set_server(c, id, s);
	if (n->parent >= 0)
		sched_adjust_capacity_down(c, n->parent, prev);
	if (isnan(a->expiry))
		a->expiry = now + a->lease;
}

bool sched_server_put(struct sched_cell *c, int s, int id, double now)
{
	const struct sched_app *a = &c->apps[id];

	if (!check_app_lifetime(&c->nodes[s], a, now))
		return false;
	if (!check_app_constraints(c, s, a))
		return false;
	server_place(c, s, id, now);
	return true;
}

/* Server.restore: put with the lease ignored, then set the expiry anyway. */
bool sched_server_restore(struct sched_cell *c, int s, int id, double expiry, double now)
{
	struct sched_app *a = &c->apps[id];
	double lease = a->lease;
	bool ok;

	if (isnan(expiry))
		expiry = a->expiry;
	a->lease = 0;
	ok = sched_server_put(c, s, id, now);
	a->lease = lease;
	sched_set_expiry(c, id, expiry);
	return ok;
}

/* Server.remove */
void sched_server_remove(struct sched_cell *c, int s, int id)
{
	struct sched_node *n = &c->nodes[s];
	struct sched_app *a = &c->apps[id];

	sched_touch(c, id);
	c->nfloors = 0; /* room freed: what failed before may fit now */
	sched_server_unlink(c, s, id);
	c->aff_placed[a->affinity]--;
	sched_set_server(c, id, -1);
	a->evicted = true;
	a->unschedule = false;
	a->expiry = NAN;
	for (int d = 0; d < ND(c); d++)
		n->free[d] += a->demand[d];
	if (n->state == SCHED_UP)
		sched_sums_add(c, s, a->demand, NULL, +1);
	sched_seg_update(c, s);
	sched_aff_add_up(c, s, a->affinity, -1);
	if (n->parent >= 0)
		sched_adjust_capacity_up(c, n->parent, n->free);
}

/* ---- Bucket.put with Spread/Pack strategies ------------------------------------------ */

/* Treadmill keeps one strategy object per (bucket, affinity) that ever tried
 * to place there; its only state is a cursor.  A 1M-app cell has 24M of them,
 * 96 % at cursor 1 (one failed visit from a fresh strategy, or a success at
 * child 0) on buckets that many affinities visit.  So a strategy lives in the
 * (node, affinity) map, except that "cursor 1, no counter" is one bit of a
 * per-bucket bitset once that bucket has enough strategies for the bitset to
 * be the smaller; no strategy at all means cursor 0. */
static int cursor_load(struct sched_cell *c, int b, int aff)
{
	const struct nodeaff *e;
	uint64_t bit, *w = one_word(c, b, aff, &bit);

	if (w && (*w & bit))
		return 1; /* a set bit means no map entry */
	e = aff_find(&c->afft[aff], (uint32_t)b);
	return e ? e->cursor : 0;
}

static int cursor_store(struct sched_cell *c, int b, int aff, int cursor)
{
	struct nodeaff *e;
	struct sched_node *n = &c->nodes[b];
	uint64_t bit, *w = one_word(c, b, aff, &bit);

	if (w && (*w & bit)) {
		if (cursor == 1)
			return 0;
		*w &= ~bit; /* to the map */
		e = NULL;
	} else {
		e = aff_find(&c->afft[aff], (uint32_t)b);
	}
	if (e) {
		e->cursor = cursor;
		return 0;
	}
	if (cursor == 1 && n->one_slot >= 0) {
		if ((size_t)aff >= c->one_rows && sched_one_grow(c, (size_t)aff + 1, false) < 0)
			return -ENOMEM;
		w = one_word(c, b, aff, &bit);
		*w |= bit;
		return 0;
	}
	/* here no bit is set for (b, aff): it was tested (or cleared) above */
	if (cursor == 0)
		return 0;
	e = sched_aff_get(c, aff, (uint32_t)b);
	if (!e)
		return -ENOMEM;
	e->cursor = cursor;
	/* a map entry costs about 24 bytes (12, at a load of one half) against
	 * one bit per affinity for the bitset */
	if (n->one_slot < 0 && ++n->ncur >= 64 && (size_t)n->ncur * 24 * 8 >= c->naffs &&
	    sched_one_grow(c, c->naffs, true) == 0) /* out of memory: stays in the maps */
		n->one_slot = (int)c->one_slots++;
	return 0;
}

/* SpreadStrategy.suggested_node (== next_node) and PackStrategy.suggested_node. */
static bool is_pack(const struct sched_cell *c, int b, int aff)
{
	for (size_t i = 0; i < c->npacks; i++)
		if (c->packs[i] == aff_key(b, aff))
			return true;
	return false;
}

static int strategy_suggest(struct sched_cell *c, int b, int *cursor, bool pack)
{
	const struct sched_node *n = &c->nodes[b];
	int len = n->nchildren;

	if (!pack) {
		for (int k = 0; k < len; k++) {
			int ch;

			if (*cursor == len)
				*cursor = 0;
			ch = n->children[*cursor];
			(*cursor)++;
			if (ch >= 0)
				return ch;
		}
		return -1;
	}
	for (int k = 0; k < len; k++) {
		if (*cursor == len)
			*cursor = 0;
		if (n->children[*cursor] >= 0)
			return n->children[*cursor];
	}
	return -1;
}

static int strategy_next(struct sched_cell *c, int b, int *cursor, bool pack)
{
	if (pack)
		(*cursor)++;
	return strategy_suggest(c, b, cursor, pack);
}

/* Improved mode: one round-robin cursor per bucket shared by every app, so
 * consecutive placements go to different children whatever their affinity. */
/* Load score of a node: its most constrained dimension's free fraction. */
static double load_score(const struct sched_cell *c, int node)
{
	const struct sched_node *n = &c->nodes[node];
	const int64_t *free = n->server ? n->free : n->sum_free, *cap = n->server ? n->cap : n->sum_cap;
	double m = INFINITY;

	for (int d = 0; d < ND(c); d++)
		if (cap[d] > 0)
			m = MIN(m, (double)free[d] / (double)cap[d]);
	return m;
}

static bool bucket_put_improved(struct sched_cell *c, int b, int id, double now)
{
	size_t base = c->nscr;
	int len = c->nodes[b].nchildren;
	bool ok = false;
	bool pack = c->parts[c->allocs[c->apps[id].alloc].label].pack;
	bool wide = len > SCHED_WINDOW;
	int start = wide ? c->nodes[b].rr % len : 0;

	if (GROW(c->scr, c->cscr, base + (size_t)len + 1) < 0)
		return false;
	if (wide)
		c->nodes[b].rr = (c->nodes[b].rr + 1) % len;
	/* Wide buckets: first a window of SCHED_WINDOW children that rotates one
	 * step per placement (every child gets its turn), best score first; then,
	 * only if none of them took the app, every other child, best first. */
	for (int pass = wide ? 0 : 1; pass < 2 && !ok; pass++) {
		size_t k = 0;

		/* the window's children are visited directly (a wide bucket has
		 * hundreds); the rest only when the window failed */
		int n = pass == 0 ? SCHED_WINDOW : len;

		for (int x = 0; x < n; x++) {
			int j = pass == 0 ? (start + x) % len : x;
			int ch = c->nodes[b].children[j];

			if (wide && pass == 1 && (j - start + len) % len < SCHED_WINDOW)
				continue;
			if (ch < 0 || c->nodes[ch].state != SCHED_UP || !check_app_constraints(c, ch, &c->apps[id]))
				continue;
			c->scr[base + k].node = ch;
			c->scr[base + k].score = pack ? 2.0 - load_score(c, ch) : load_score(c, ch);
			k++;
		}
		c->nscr = base + k;
		for (;;) {
			size_t best = SIZE_MAX;

			/* best score; ties to the first child */
			for (size_t i = base; i < base + k; i++)
				if (c->scr[i].score > -INFINITY &&
				    (best == SIZE_MAX || c->scr[i].score > c->scr[best].score ||
				     (c->scr[i].score == c->scr[best].score &&
				      c->nodes[c->scr[i].node].pos < c->nodes[c->scr[best].node].pos)))
					best = i;
			if (best == SIZE_MAX)
				break;
			c->scr[best].score = -INFINITY;
			if (sched_node_put(c, c->scr[best].node, id, now)) {
				ok = true;
				break;
			}
		}
		c->nscr = base;
	}
	return ok;
}

/* Spread strategy without holes: the children tried are s0, s0+1, ...
 * (cyclic) from the cursor; the cursor ends one past the child that took
 * the app, or one past s0 when none did.  Children whose free capacity is
 * too small are skipped through the max tree. */
static bool bucket_put_fast(struct sched_cell *c, int b, int id, int *cursor, double now)
{
	const int64_t *dem = c->apps[id].demand;
	int part = c->allocs[c->apps[id].alloc].label;
	int len = c->nodes[b].nchildren;
	int s0 = *cursor >= len ? 0 : *cursor;

	for (int pass = 0; pass < 2; pass++) {
		size_t lo = pass == 0 ? (size_t)s0 : 0, hi = pass == 0 ? (size_t)len : (size_t)s0;

		for (;;) {
			int k = sched_seg_find(c, &c->nodes[b], part, lo, hi, dem);

			if (k < 0)
				break;
			if (sched_node_put(c, c->nodes[b].children[k], id, now)) {
				*cursor = k + 1;
				return true;
			}
			lo = (size_t)k + 1;
		}
	}
	*cursor = s0 + 1;
	return false;
}

static bool bucket_put(struct sched_cell *c, int b, int id, double now)
{
	int aff = c->apps[id].affinity;
	int node, first, cursor;
	bool pack, ok = false;

	if (!check_app_constraints(c, b, &c->apps[id]))
		return false;
	if (c->mode == SCHED_MODE_IMPROVED)
		return bucket_put_improved(c, b, id, now);
	pack = is_pack(c, b, aff);
	/* the cursor is this bucket's own: the recursion below only moves the
	 * children's, so it is kept here and stored once */
	cursor = cursor_load(c, b, aff);
	if (!pack && c->nodes[b].seg && c->nodes[b].nlive == c->nodes[b].nchildren && c->nodes[b].nchildren > 0) {
		if (c->nodes[b].segparts < c->nparts && sched_seg_rebuild(c, b) < 0)
			return false;
		ok = bucket_put_fast(c, b, id, &cursor, now);
		(void)cursor_store(c, b, aff, cursor); /* out of memory: the cursor stays behind */
		return ok;
	}
	node = strategy_suggest(c, b, &cursor, pack);
	first = node;
	for (bool isfirst = true; node >= 0; isfirst = false) {
		if (!isfirst && node == first)
			break;
		if (c->nodes[node].state == SCHED_UP && sched_node_put(c, node, id, now)) {
			ok = true;
			break;
		}
		node = strategy_next(c, b, &cursor, pack);
	}
	(void)cursor_store(c, b, aff, cursor);
	return ok;
}

bool sched_node_put(struct sched_cell *c, int node, int id, double now)
{
	if (c->nodes[node].server)
		return sched_server_put(c, node, id, now);
	return bucket_put(c, node, id, now);
}
