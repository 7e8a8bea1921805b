/* sched.c: Treadmill's scheduling pass (full and incremental), app updates
 * and inspection.
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

/* ---- the pass ----------------------------------------------------------------------- */

/* Improved-mode eviction: pick one server (scanning victims from the tail)
 * where removing lower-ranked apps makes room while every constraint up the
 * tree still holds, and evict only there. */
static bool evict_for(struct sched_cell *c, const int *queue, size_t pos, size_t qn, int id, double now);

/* Improved mode: a put has no side effect when it fails, so an app with no
 * affinity limits and no lease that asks at least as much as one that found
 * no server (same traits and partition, this pass) cannot fit either. */
static bool floor_applies(const struct sched_app *a)
{
	return a->limits < 0 && a->lease == 0;
}

static bool doomed(const struct sched_cell *c, const struct sched_app *a)
{
	uint64_t t = app_traits(c, a);

	if (!floor_applies(a))
		return false;
	for (int i = 0; i < c->nfloors; i++) {
		bool ge = true;

		if (c->floors[i].traits != t)
			continue;
		for (int d = 0; d < ND(c); d++)
			if (a->demand[d] < c->floors[i].demand[d])
				ge = false;
		if (ge)
			return true;
	}
	return false;
}

static void floor_adjust(struct sched_cell *c, const struct sched_app *a)
{
	uint64_t t = app_traits(c, a);
	int i;

	if (!floor_applies(a))
		return;
	for (i = 0; i < c->nfloors; i++)
		if (c->floors[i].traits == t)
			break;
	if (i == c->nfloors) {
		if (c->nfloors == (int)ELEMENTSOF(c->floors))
			return;
		c->nfloors++;
	} else {
		for (int d = 0; d < ND(c); d++)
			if (a->demand[d] > c->floors[i].demand[d])
				return; /* keep the smaller one (elementwise) */
	}
	c->floors[i].traits = t;
	memcpy(c->floors[i].demand, a->demand, sizeof(c->floors[i].demand));
}

static void find_placements(struct sched_cell *c, const struct sched_queue_entry *q, const int *queue, size_t qn,
			    double now)
{
	c->nfloors = 0; /* one partition per call */
	c->tracker_gen++;
	c->ev_gen++;
	c->nplaced_pos = 0;
	if (HGROW(c->placed_pos, c->cplaced_pos, qn + 1) < 0)
		return;
	for (size_t i = 0; i < qn; i++)
		if (c->hot[queue[i]].server >= 0)
			c->placed_pos[c->nplaced_pos++] = (int)i;
	for (size_t qi = 0; qi < qn; qi++) {
		int id = queue[qi];
		struct sched_hot *h = &c->hot[id];
		struct sched_app *a;
		int restore_server = -1;
		double restore_expiry = NAN;

		if (h->blacklisted)
			continue;
		if (q[qi].rank == SCHED_UNPLACED_RANK) {
			if (h->server >= 0) {
				sched_server_remove(c, h->server, id);
				sched_release_identity(c, &c->apps[id]);
			}
			continue;
		}
		if (!h->renew && h->server >= 0)
			continue; /* the common case: placed, stays */
		a = &c->apps[id];
		if (h->renew && a->server >= 0) {
			struct sched_node *s = &c->nodes[a->server];

			if (check_app_lifetime(s, a, now)) {
				sched_set_expiry(c, id, now + a->lease);
			} else {
				restore_server = a->server;
				restore_expiry = a->expiry;
				sched_server_remove(c, a->server, id);
			}
		}
		h->renew = false;
		if (a->server >= 0)
			continue;
		if (!sched_acquire_identity(c, a))
			continue;
		if (a->ev_gen == c->ev_gen) {
			a->ev_gen = 0;
			if (sched_server_restore(c, a->ev_server, id, a->ev_expiry, now)) {
				a->evicted = false;
				continue;
			}
		}
		if (a->schedule_once && a->evicted)
			continue;
		if (!sched_tracker_feasible(c, a))
			continue;
		if (!(c->mode == SCHED_MODE_IMPROVED && doomed(c, a)) && !sched_node_put(c, SCHED_ROOT, id, now)) {
			if (c->mode == SCHED_MODE_IMPROVED) {
				evict_for(c, queue, qi, qn, id, now);
			} else {
				/* from the tail toward the app; only apps placed when the
				 * pass started can be placed behind it */
				for (size_t j = c->nplaced_pos; j-- > 0 && (size_t)c->placed_pos[j] > qi;) {
					int vid = queue[c->placed_pos[j]];
					struct sched_app *v = &c->apps[vid];
					int vs;

					if (v->server < 0)
						continue;
					vs = v->server;
					if (c->nodes[vs].state != SCHED_UP)
						continue;
					v->ev_gen = c->ev_gen;
					v->ev_server = vs;
					v->ev_expiry = v->expiry;
					sched_server_remove(c, vs, vid);
					c->stat_evictions++;
					if (sched_server_put(c, vs, id, now))
						break;
				}
			}
		}
		if (a->server < 0) {
			if (restore_server >= 0) {
				sched_server_restore(c, restore_server, id, restore_expiry, now);
				h->renew = true;
			} else {
				sched_release_identity(c, a);
				sched_tracker_adjust(c, a);
				if (c->mode == SCHED_MODE_IMPROVED)
					floor_adjust(c, a);
			}
		}
	}
}

/* Would `id` fit on server s with every constraint on the path to the root? */
static bool fits_path(const struct sched_cell *c, int s, const struct sched_app *a, double now)
{
	if (!check_app_lifetime(&c->nodes[s], a, now))
		return false;
	for (int n = s; n >= 0; n = c->nodes[n].parent) {
		const struct sched_node *nd = &c->nodes[n];
		uint64_t t = app_traits(c, a);
		int32_t lim = app_limit(c, a, nd->level);

		if (!(nd->labels & (1ull << c->allocs[a->alloc].label)))
			return false;
		if (t && (nd->traits & t) != t)
			return false;
		if (lim != SCHED_NO_LIMIT && aff_count(c, n, a->affinity) >= lim)
			return false;
	}
	return true;
}

static bool evict_for(struct sched_cell *c, const int *queue, size_t pos, size_t qn, int id, double now)
{
	const struct sched_app *a = &c->apps[id];
	int chosen = -1;

	if (GROW(c->room, c->croom, c->nnodes) < 0 || GROW(c->room_gen, c->croom_gen, c->nnodes) < 0)
		return false;
	if (c->croom_gen > c->nnodes) /* fresh tail of the stamp array */
		for (size_t i = c->nnodes; i < c->croom_gen; i++)
			c->room_gen[i] = 0;
	c->ev_room_gen++;
	/* One pass over the apps queued after `id`, from the tail: accumulate
	 * on each up server what its lower-ranked apps hold; the first server
	 * where that plus its free room covers the demand, and where every
	 * other constraint up the tree holds, is the one to evict from. */
	for (size_t j = c->nplaced_pos; j-- > 0 && (size_t)c->placed_pos[j] > pos;) {
		const struct sched_app *v = &c->apps[queue[c->placed_pos[j]]];
		int s = v->server;
		bool ok = true;

		if (s < 0 || c->nodes[s].state != SCHED_UP)
			continue;
		if (c->room_gen[s] != c->ev_room_gen) {
			c->room_gen[s] = c->ev_room_gen;
			memcpy(c->room[s], c->nodes[s].free, sizeof(c->room[s]));
		}
		for (int d = 0; d < ND(c); d++) {
			c->room[s][d] += v->demand[d];
			if (a->demand[d] > c->room[s][d])
				ok = false;
		}
		if (ok && fits_path(c, s, a, now)) {
			chosen = s;
			break;
		}
	}
	if (chosen < 0)
		return false;
	/* evict on that server only, from the tail, until the app fits */
	for (size_t j = c->nplaced_pos; j-- > 0 && (size_t)c->placed_pos[j] > pos;) {
		int wid = queue[c->placed_pos[j]];
		struct sched_app *w = &c->apps[wid];
		bool fits = true;

		for (int d = 0; d < ND(c); d++)
			if (a->demand[d] > c->nodes[chosen].free[d])
				fits = false;
		if (fits)
			break;
		if (w->server != chosen)
			continue;
		w->ev_gen = c->ev_gen;
		w->ev_server = chosen;
		w->ev_expiry = w->expiry;
		sched_server_remove(c, chosen, wid);
		c->stat_evictions++;
	}
	return sched_server_put(c, chosen, id, now);
}

static void handle_inactive_servers(struct sched_cell *c, double now)
{
	c->next_event_at = INFINITY;
	for (size_t i = 0; i < c->nsrv_order; i++) {
		int s = c->srv_order[i];
		struct sched_node *n = &c->nodes[s];
		int next;

		if (n->state == SCHED_DOWN) {
			for (int x = n->app_head; x >= 0; x = next) {
				struct sched_app *a = &c->apps[x];
				double expires_at = a->retention < 0 ? 0 : n->since + a->retention;

				next = a->srv_next;
				if (!(expires_at <= now) && expires_at < c->next_event_at)
					c->next_event_at = expires_at;
			}
			for (int x = n->app_head; x >= 0; x = next) {
				struct sched_app *a = &c->apps[x];
				double expires_at = a->retention < 0 ? 0 : n->since + a->retention;

				next = a->srv_next;
				if (expires_at <= now) {
					sched_server_remove(c, s, x);
					sched_release_identity(c, a);
				}
			}
		} else if (n->state == SCHED_FROZEN) {
			for (int x = n->app_head; x >= 0; x = next) {
				struct sched_app *a = &c->apps[x];

				next = a->srv_next;
				if (a->unschedule) {
					sched_server_remove(c, s, x);
					sched_release_identity(c, a);
				}
			}
		}
	}
}

static int schedule_partition(struct sched_cell *c, int p, double now)
{
	int alloc = c->parts[p].alloc;
	double size[SCHED_DIMS_MAX];
	struct sched_alloc *al;
	int r;

	c->allocs[alloc].label = p;
	sched_node_size(c, SCHED_ROOT, p, size);
	sched_total_reserved(c, alloc);
	r = sched_queue_build(c, alloc, size);
	if (r < 0)
		return r;
	al = &c->allocs[alloc];
	if (HGROW(c->queue, c->cqueue, al->qn + 1) < 0)
		return -ENOMEM;
	{
		double dem[SCHED_DIMS_MAX] = { 0 };
		bool pack = false;

		for (size_t i = 0; i < al->qn; i++) {
			c->queue[i] = al->q[i].app;
			for (int d = 0; d < ND(c); d++)
				dem[d] += c->hot[al->q[i].app].demand[d];
		}
		/* improved mode: spread while the partition has room to spare; when
		 * its apps ask for more than SCHED_PACK_AT of its capacity, spreading
		 * would fragment it, so servers are filled best-fit instead */
		for (int d = 0; d < ND(c); d++)
			if (size[d] > 1 && dem[d] > SCHED_PACK_AT * size[d])
				pack = true;
		c->parts[p].pack = pack;
	}
	/* _record_rank_and_util: the root queue stays in al->q until the next
	 * pass; sched_app_info() reads rank and utilization from it */
	find_placements(c, al->q, c->queue, al->qn, now);
	return 0;
}

static int full_pass(struct sched_cell *c, double now)
{
	int r;

	r = sched_refresh_topology(c);
	if (r < 0)
		return r;
	/* _fix_invalid_placements: only servers removed from the tree matter */
	if (c->removed_servers) {
		for (size_t x = 0; x < c->napps; x++) {
			struct sched_app *a = &c->apps[x];

			if (!a->alive || a->server < 0 || sched_server_in_tree(c, a->server))
				continue;
			sched_touch(c, (int)x);
			sched_server_unlink(c, a->server, (int)x);
			c->aff_placed[a->affinity]--;
			sched_set_server(c, (int)x, -1);
			a->evicted = true;
			sched_release_identity(c, a);
		}
		c->removed_servers = false;
	}
	handle_inactive_servers(c, now);
	/* _handle_blacklisted_apps: only placed blacklisted apps matter, and
	 * apps only get placed with the flag set through the restore/put API */
	if (c->blacklist_dirty) {
		for (size_t x = 0; x < c->napps; x++) {
			struct sched_app *a = &c->apps[x];

			if (a->alive && c->hot[x].blacklisted && a->server >= 0) {
				sched_server_remove(c, a->server, (int)x);
				sched_release_identity(c, a);
			}
		}
		c->blacklist_dirty = false;
	}
	/* _fix_invalid_identities: only after a group shrank or a restore */
	if (c->identities_dirty) {
		for (size_t x = 0; x < c->napps; x++) {
			struct sched_app *a = &c->apps[x];

			if (!a->alive || a->identity < 0 || a->igroup < 0)
				continue;
			if (a->identity >= c->igroups[a->igroup].count) {
				a->identity = -1;
				if (a->server >= 0)
					sched_server_remove(c, a->server, (int)x);
			}
		}
		c->identities_dirty = false;
	}
	for (int p = 0; p < c->nparts; p++) {
		r = schedule_partition(c, p, now);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Improved mode: place only the apps that need it, without eviction; fall
 * back to a full pass when one of them does not fit. */
/* Improved mode: take apps off a down server whose retention is over (or
 * that have none), and unscheduled apps off a frozen one. */
static void vacate(struct sched_cell *c, int s, double now)
{
	struct sched_node *n = &c->nodes[s];
	int next;

	for (int x = n->app_head; x >= 0; x = next) {
		struct sched_app *a = &c->apps[x];
		bool go;

		next = a->srv_next;
		if (n->state == SCHED_DOWN) {
			double expires_at = a->retention < 0 ? 0 : n->since + a->retention;

			go = expires_at <= now;
			if (!go && expires_at < c->next_event_at)
				c->next_event_at = expires_at;
		} else {
			go = n->state == SCHED_FROZEN && a->unschedule;
		}
		if (go) {
			sched_server_remove(c, s, x);
			sched_release_identity(c, a);
			sched_mark_dirty(c, x);
			a->fresh = true;
		}
	}
}

static int cmp_dirty(const void *x, const void *y, void *ud)
{
	const struct sched_cell *c = ud;
	const struct sched_app *a = &c->apps[*(const int *)x], *b = &c->apps[*(const int *)y];

	if (a->priority != b->priority)
		return a->priority > b->priority ? -1 : 1;
	return sched_fifo_cmp(a, b);
}

/* Improved mode: handle only what changed since the last pass (servers that
 * changed state, retention that expired, apps added, room freed), placing
 * the affected apps without eviction.  A new or displaced app that does not
 * fit asks for a full pass (which may evict for it). */
static int incremental_pass(struct sched_cell *c, double now, bool *ret_full)
{
	*ret_full = false;
	for (size_t i = 0; i < c->nsrv_changed; i++) {
		int s = c->srv_changed[i];

		if (!valid_node(c, s))
			continue;
		if (c->nodes[s].state == SCHED_UP)
			c->room_freed = true;
		else
			vacate(c, s, now);
	}
	c->nsrv_changed = 0;
	if (now >= c->next_event_at) {
		c->next_event_at = INFINITY;
		for (size_t i = 0; i < c->nsrv_order; i++)
			if (c->nodes[c->srv_order[i]].state == SCHED_DOWN)
				vacate(c, c->srv_order[i], now);
	}
	if (c->room_freed) {
		for (size_t i = 0; i < c->npend; i++)
			if (!c->hot[c->pend[i]].blacklisted)
				sched_mark_dirty(c, c->pend[i]);
		c->room_freed = false;
	}
	if (c->ndirty > 1) /* dirty is NULL when nothing was marked (UBSan: qsort_r(NULL, 0)) */
		qsort_r(c->dirty, c->ndirty, sizeof(int), cmp_dirty, c);
	c->tracker_gen++;
	for (size_t i = 0; i < c->ndirty; i++) {
		int x = c->dirty[i];
		struct sched_app *a = &c->apps[x];

		if (!a->alive || !a->dirty)
			continue;
		a->dirty = false;
		if (a->server >= 0 || c->hot[x].blacklisted || (a->schedule_once && a->evicted))
			continue;
		if (sched_acquire_identity(c, a) && sched_tracker_feasible(c, a) && sched_node_put(c, SCHED_ROOT, x, now)) {
			a->fresh = false;
			continue;
		}
		sched_release_identity(c, a);
		sched_tracker_adjust(c, a);
		if (a->fresh)
			*ret_full = true;
	}
	c->ndirty = 0;
	return 0;
}

int sched_schedule(struct sched_cell *c, double now, sched_change_fn cb, void *userdata, struct sched_stats *stats)
{
	bool full = true;
	size_t changed = 0;
	int r = 0;

	c->pass_gen++;
	c->ntouched = 0;
	c->in_pass = true;
	c->stat_evictions = 0;
	if (c->mode == SCHED_MODE_IMPROVED && c->ever_scheduled && !c->need_full) {
		r = incremental_pass(c, now, &full);
		if (r < 0)
			goto out;
	}
	if (full) {
		r = full_pass(c, now);
		if (r < 0)
			goto out;
		for (size_t i = 0; i < c->ndirty; i++) {
			c->apps[c->dirty[i]].dirty = false;
			c->apps[c->dirty[i]].fresh = false;
		}
		c->ndirty = 0;
		c->nsrv_changed = 0;
		c->room_freed = false;
		c->need_full = false;
		c->ever_scheduled = true;
	}
	for (size_t i = 0; i < c->ntouched; i++) {
		int x = c->touched[i];
		const struct sched_app *a = &c->apps[x];

		if (a->before_server == a->server && same_expiry(a->before_expiry, a->expiry))
			continue;
		changed++;
		if (cb) {
			struct sched_change ch = {
				.app = x,
				.name = a->name,
				.before_server = a->before_server,
				.after_server = a->server,
				.before_expiry = a->before_expiry,
				.after_expiry = a->expiry,
				.identity = a->identity,
			};

			cb(&ch, userdata);
		}
	}
	if (stats) {
		memset(stats, 0, sizeof(*stats));
		stats->apps = c->live_apps;
		stats->placed = c->nplaced;
		stats->pending = c->live_apps - c->nplaced;
		stats->changed = changed;
		stats->full_pass = full;
		stats->evictions = c->stat_evictions;
	}
out:
	c->in_pass = false;
	return r;
}

void sched_invalidate(struct sched_cell *c)
{
	c->need_full = true;
}

double sched_next_event_at(const struct sched_cell *c)
{
	return c->next_event_at;
}

/* ---- app updates ---------------------------------------------------------------------- */

int sched_app_remove(struct sched_cell *c, int app)
{
	struct sched_app *a;

	if (!valid_app(c, app))
		return -ENOENT;
	a = &c->apps[app];
	if (a->server >= 0) {
		if (sched_server_in_tree(c, a->server)) {
			sched_server_remove(c, a->server, app);
		} else {
			sched_server_unlink(c, a->server, app);
			c->aff_placed[a->affinity]--;
			sched_set_server(c, app, -1);
		}
		c->room_freed = true;
	}
	sched_alloc_unlink(c, app);
	sched_release_identity(c, a);
	sched_pend_del(c, app);
	strmap_del(&c->app_by_name, a->name);
	a->alive = false;
	c->live_apps--;
	return 0;
}

int sched_app_set_priority(struct sched_cell *c, int app, int priority)
{
	if (!valid_app(c, app))
		return -ENOENT;
	if (c->apps[app].priority != priority)
		c->need_full = true;
	c->apps[app].priority = priority;
	c->hot[app].priority = priority;
	return 0;
}

int sched_app_set_retention(struct sched_cell *c, int app, double data_retention_timeout)
{
	if (!valid_app(c, app))
		return -ENOENT;
	c->apps[app].retention = data_retention_timeout;
	c->need_full = true;
	return 0;
}

int sched_app_move(struct sched_cell *c, int app, int alloc)
{
	if (!valid_app(c, app) || alloc < 0 || (size_t)alloc >= c->nallocs)
		return -EINVAL;
	if (c->apps[app].alloc == alloc)
		return 0;
	sched_alloc_unlink(c, app);
	sched_alloc_link(c, alloc, app);
	c->need_full = true;
	return 0;
}

int sched_app_set_blacklisted(struct sched_cell *c, int app, bool blacklisted)
{
	if (!valid_app(c, app))
		return -ENOENT;
	if (c->hot[app].blacklisted != blacklisted) {
		c->need_full = true;
		c->blacklist_dirty = true;
	}
	c->hot[app].blacklisted = blacklisted;
	return 0;
}

int sched_app_set_unschedule(struct sched_cell *c, int app, bool unschedule)
{
	if (!valid_app(c, app))
		return -ENOENT;
	c->apps[app].unschedule = unschedule;
	c->need_full = true;
	return 0;
}

int sched_app_restore(struct sched_cell *c, int app, int server, double expiry, int identity)
{
	struct sched_app *a;

	if (!valid_app(c, app) || !valid_node(c, server) || !c->nodes[server].server)
		return -EINVAL;
	a = &c->apps[app];
	if (a->server >= 0)
		return -EEXIST;
	if (!sched_server_restore(c, server, app, expiry, 0))
		return -ENOSPC;
	c->blacklist_dirty = true;
	c->identities_dirty = true;
	if (identity >= 0 && a->igroup >= 0) {
		/* force_set_identity */
		a->identity = identity;
		pyset_discard(&c->igroups[a->igroup].avail, identity);
	}
	c->need_full = true;
	return 0;
}

int sched_app_put(struct sched_cell *c, int app, int server, double now)
{
	if (!valid_app(c, app) || !valid_node(c, server) || !c->nodes[server].server)
		return -EINVAL;
	if (c->apps[app].server >= 0)
		return -EEXIST;
	if (!sched_server_put(c, server, app, now))
		return -ENOSPC;
	c->blacklist_dirty = true;
	c->need_full = true;
	return 0;
}

/* Position of an app in its partition's queue of the last pass (-1). */
static int queue_position(const struct sched_cell *c, int app)
{
	const struct sched_app *a = &c->apps[app];
	const struct sched_alloc *root = &c->allocs[c->parts[c->allocs[a->alloc].partition].alloc];

	for (size_t i = 0; i < root->qn; i++)
		if (root->q[i].app == app)
			return (int)i;
	return -1;
}

int sched_app_info(const struct sched_cell *c, int app, struct sched_app_info *ret)
{
	const struct sched_app *a;

	if (!valid_app(c, app))
		return -ENOENT;
	a = &c->apps[app];
	*ret = (struct sched_app_info){
		.name = a->name,
		.alloc = a->alloc,
		.server = a->server,
		.identity = a->identity,
		.expiry = a->expiry,
		.priority = a->priority,
		.evicted = a->evicted,
		.schedule_once = a->schedule_once,
		.renew = c->hot[app].renew,
		.blacklisted = c->hot[app].blacklisted,
		.final_rank = SCHED_DEFAULT_RANK,
		.final_util = NAN,
		.queue_pos = -1,
	};
	return 0;
}

int sched_app_queue_info(const struct sched_cell *c, int app, struct sched_app_info *ret)
{
	const struct sched_alloc *root;
	int r = sched_app_info(c, app, ret);

	if (r < 0)
		return r;
	ret->queue_pos = queue_position(c, app);
	if (ret->queue_pos >= 0) {
		root = &c->allocs[c->parts[c->allocs[c->apps[app].alloc].partition].alloc];
		ret->final_rank = root->q[ret->queue_pos].rank;
		ret->final_util = root->q[ret->queue_pos].util_before;
	}
	return 0;
}

/* ---- inspection ------------------------------------------------------------------------ */

static void subtree_capacity(const struct sched_cell *c, int node, int64_t *cap)
{
	const struct sched_node *n = &c->nodes[node];

	if (n->server) {
		for (int d = 0; d < ND(c); d++)
			cap[d] += n->cap[d];
		return;
	}
	for (int i = 0; i < n->nchildren; i++)
		if (n->children[i] >= 0)
			subtree_capacity(c, n->children[i], cap);
}

/* Node.valid_until: a bucket's is the max over its children. */
static double node_valid_until(const struct sched_cell *c, int node)
{
	const struct sched_node *n = &c->nodes[node];
	double v = 0;

	if (n->server)
		return n->valid_until;
	for (int i = 0; i < n->nchildren; i++)
		if (n->children[i] >= 0)
			v = MAX(v, node_valid_until(c, n->children[i]));
	return v;
}

int sched_node_info(const struct sched_cell *c, int node, struct sched_node_info *ret)
{
	const struct sched_node *n;

	if (!valid_node(c, node))
		return -ENOENT;
	n = &c->nodes[node];
	memset(ret, 0, sizeof(*ret));
	ret->name = n->name;
	ret->level = c->levels[n->level];
	ret->partition = n->server ? c->parts[n->partition].label : NULL;
	ret->parent = n->parent;
	ret->server = n->server;
	ret->state = n->state;
	ret->traits = n->traits;
	subtree_capacity(c, node, ret->capacity);
	memcpy(ret->free, n->free, sizeof(ret->free));
	ret->napps = (size_t)n->napps;
	ret->valid_until = node_valid_until(c, node);
	return 0;
}

int sched_alloc_info(const struct sched_cell *c, int alloc, struct sched_alloc_info *ret)
{
	const struct sched_alloc *al;

	if (alloc < 0 || (size_t)alloc >= c->nallocs)
		return -ENOENT;
	al = &c->allocs[alloc];
	memset(ret, 0, sizeof(*ret));
	ret->name = al->name;
	ret->partition = al->partition;
	ret->parent = al->parent;
	memcpy(ret->reserved, al->reserved, sizeof(ret->reserved));
	ret->rank = al->rank;
	ret->rank_adjustment = al->rank_adj;
	ret->max_utilization = al->max_util;
	ret->traits = al->traits;
	ret->napps = (size_t)al->napps;
	for (size_t i = 0; i < al->napps; i++) {
		const struct sched_app *a = &c->apps[al->ids[i]];

		if (a->server < 0)
			continue;
		ret->placed++;
		for (int d = 0; d < ND(c); d++)
			ret->used[d] += a->demand[d];
	}
	return 0;
}

int sched_app_unplace(struct sched_cell *c, int app)
{
	if (!valid_app(c, app))
		return -EINVAL;
	if (c->apps[app].server < 0)
		return -ENOENT;
	sched_server_remove(c, c->apps[app].server, app);
	c->need_full = true;
	return 0;
}
