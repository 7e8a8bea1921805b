/* msched.c: the leader's scheduler loop: one pass (process what changed,
 * schedule, write the results to /placement, deletes before creates, in
 * batches; /finished, trace events, /scheduled-stats) and its timers.
 * (The model: msched.h; shared internals: master-internal.h;
 * the store contract: docs/MASTER.md.) */
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../basic/json.h"
#include "../basic/util.h"
#include "../cellns/cellns.h"
#include "../sched/sched-loader.h"
#include "../sched/sched.h"
#include "../store/store.h"
#include "../trace/trace.h"
#include "master-internal.h"

/* The size of the identity group of an instance, -1 none. */
static int identity_count(struct msched *m, const char *inst)
{
	_cleanup_json_ json_t *j = NULL;
	const char *grp;
	int n = -1;

	if (cellns_scheduled_get(m->store, inst, &j, NULL) < 0)
		return -1;
	grp = json_string_value(json_object_get(j, "identity_group"));
	if (grp)
		(void)cellns_identity_group_count(m->store, grp, &n);
	return n;
}

/* The placement record of a change. */
static char *placement_data(struct msched *m, const struct mchange *c)
{
	struct cellns_placement p = { .expires = c->expiry, .identity = c->identity,
				      .identity_count = c->identity >= 0 ? identity_count(m, c->name) : -1 };

	return cellns_placement_format(&p);
}

static int write_placement(struct msched *m, const struct mchange *c)
{
	_cleanup_free_ char *path = cellns_path2(CELLNS_PLACEMENT, c->after, c->name);
	_cleanup_free_ char *d = placement_data(m, c);
	int r;

	if (!path || !d)
		return -ENOMEM;
	if (!c->before || strcmp(c->before, c->after) != 0) {
		/* a new node in the common case: create first */
		r = store_create(m->store, path, d, strlen(d), STORE_PERSISTENT, NULL);
		if (r == 0)
			return 0;
	}
	return store_set(m->store, path, d, strlen(d), -1, NULL);
}

/* ---- writes in batches --------------------------------------------------
 * A pass that moves many apps writes a placement node and a trace event per
 * app.  One round trip (ZooKeeper) or one fsync'ed journal (embedded store)
 * per node made a 100k-app first pass take minutes; they go in atomic multis
 * of MULTI_BATCH operations instead.  A multi that fails (a node already
 * there or gone, a missing parent) is redone op by op by the caller's
 * fallback, which has the single-node semantics. */
#define MULTI_BATCH 1024

struct batch {
	struct store_op *ops;
	size_t *idx;	/* the caller's item per op */
	char **own;	/* strings to free after the multi */
	size_t n, cap, nown, cown;
};

static void batch_clear(struct batch *b)
{
	for (size_t i = 0; i < b->nown; i++)
		free(b->own[i]);
	b->n = b->nown = 0;
}

static void batch_free(struct batch *b)
{
	batch_clear(b);
	free(b->ops);
	free(b->idx);
	free(b->own);
	*b = (struct batch){};
}

/* Takes ownership of path and data (freed after the batch). */
static int batch_add(struct batch *b, enum store_op_type type, char *path, char *data, size_t item)
{
	if (!path) {
		free(data);
		return -ENOMEM;
	}
	if (b->n == b->cap) {
		size_t nc = b->cap ? b->cap * 2 : MULTI_BATCH;
		struct store_op *o = reallocarray(b->ops, nc, sizeof(*o));
		size_t *x = o ? reallocarray(b->idx, nc, sizeof(*x)) : NULL;

		if (o)
			b->ops = o;
		if (x)
			b->idx = x;
		if (!o || !x) {
			free(path);
			free(data);
			return -ENOMEM;
		}
		b->cap = nc;
	}
	if (b->nown + 2 > b->cown) {
		size_t nc = b->cown ? b->cown * 2 : 2 * MULTI_BATCH;
		char **t = reallocarray(b->own, nc, sizeof(*t));

		if (!t) {
			free(path);
			free(data);
			return -ENOMEM;
		}
		b->own = t;
		b->cown = nc;
	}
	b->own[b->nown++] = path;
	if (data)
		b->own[b->nown++] = data;
	b->ops[b->n] = (struct store_op){ .type = type, .path = path, .data = data, .len = data ? strlen(data) : 0,
					  .flags = STORE_PERSISTENT, .version = -1 };
	b->idx[b->n++] = item;
	return 0;
}

/* Run the batch in multis; items of a failed multi go to fallback(item)
 * one by one.  The first fallback error is returned. */
static int batch_run(struct msched *m, struct batch *b, int (*fallback)(struct msched *m, size_t item, void *ud),
		     void *ud)
{
	int ret = 0;

	for (size_t at = 0; at < b->n; at += MULTI_BATCH) {
		size_t k = MIN((size_t)MULTI_BATCH, b->n - at);

		if (store_multi(m->store, b->ops + at, k, NULL) == 0)
			continue;
		for (size_t i = 0; i < k; i++) {
			int r = fallback(m, b->idx[at + i], ud);

			if (r < 0 && ret == 0)
				ret = r;
		}
	}
	batch_clear(b);
	return ret;
}

static int fallback_delete(struct msched *m, size_t i, void *ud)
{
	struct mchange *c = &m->chg[i];

	return msched_delete_placement(m, c->before, c->name);
}

static int fallback_write(struct msched *m, size_t i, void *ud)
{
	return write_placement(m, &m->chg[i]);
}

struct post_item {
	const char *inst;
	enum trace_type type;
	char *data;
};

struct post_items {
	struct post_item *v;
	size_t n;
};

static void post_items_free(struct post_items *p)
{
	for (size_t i = 0; p->v && i < p->n; i++)
		free(p->v[i].data);
	free(p->v);
}

static int fallback_post(struct msched *m, size_t i, void *ud)
{
	struct post_item *p = (struct post_item *)ud + i;

	msched_post(m, p->inst, p->type, p->data);
	return 0;
}

/* A non-terminal trace event as a create op (trace_publish's node). */
static int batch_post(struct msched *m, struct batch *b, const char *inst, enum trace_type type, const char *data,
		      size_t item)
{
	struct trace_event ev = msched_master_event(m, inst, type, data);
	_cleanup_free_ char *name = trace_node_name(&ev, m->o.hostname);
	char shard[5];

	if (!name || trace_shard(inst, shard) < 0)
		return -ENOMEM;
	return batch_add(b, STORE_OP_CREATE, cellns_path2(CELLNS_TRACE, shard, name), NULL, item);
}

/* Treadmill's why: <srv>:down, <srv>:frozen, msched_blacklisted, evicted. */
static char *why_of(struct msched *m, const struct sched_change *ch)
{
	enum sched_state st;
	double since;
	struct sched_app_info info;
	const char *bname;

	if (ch->before_server < 0)
		return strdup("");
	bname = sched_node_name(m->cell, ch->before_server);
	if (!bname || sched_server_get_state(m->cell, ch->before_server, &st, &since) < 0)
		return strdup("evicted");
	if (st == SCHED_DOWN || msched_is_blackedout(m, bname))
		return strdup_printf("%s:down", bname);
	if (st == SCHED_FROZEN)
		return strdup_printf("%s:frozen", bname);
	if (sched_app_info(m->cell, ch->app, &info) == 0 && info.blacklisted)
		return strdup("blacklisted");
	return strdup("evicted");
}

static void on_change(const struct sched_change *ch, void *ud)
{
	struct msched *m = ud;
	struct mchange *c;
	const char *b = ch->before_server >= 0 ? sched_node_name(m->cell, ch->before_server) : NULL;
	const char *a = ch->after_server >= 0 ? sched_node_name(m->cell, ch->after_server) : NULL;

	if (m->nchg == m->achg) {
		size_t n = m->achg ? m->achg * 2 : 256;
		struct mchange *t = realloc(m->chg, n * sizeof(*t));

		if (!t) {
			m->oom = -ENOMEM;
			return;
		}
		m->chg = t;
		m->achg = n;
	}
	c = &m->chg[m->nchg];
	*c = (struct mchange){ .app = ch->app, .expiry = ch->after_expiry, .identity = ch->identity };
	c->name = strdup(ch->name);
	c->before = b ? strdup(b) : NULL;
	c->after = a ? strdup(a) : NULL;
	c->why = why_of(m, ch);
	if (!c->name || (b && !c->before) || (a && !c->after) || !c->why) {
		free(c->name);
		free(c->before);
		free(c->after);
		free(c->why);
		m->oom = -ENOMEM;
		return;
	}
	m->nchg++;
}

static void changes_clear(struct msched *m)
{
	for (size_t i = 0; i < m->nchg; i++) {
		free(m->chg[i].name);
		free(m->chg[i].before);
		free(m->chg[i].after);
		free(m->chg[i].why);
	}
	m->nchg = 0;
}

/* /scheduled-stats {"<proid>": count}: the counts msched_count_app keeps,
 * recounted from the model after a full load. */
static int write_stats(struct msched *m)
{
	_cleanup_free_ char *s = NULL;
	int r;

	if (!m->proid_counts) {
		m->proid_counts = json_object();
		if (!m->proid_counts)
			return -ENOMEM;
		for (int a = sched_app_next(m->cell, -1); a >= 0; a = sched_app_next(m->cell, a)) {
			struct sched_app_info info;

			sched_app_info(m->cell, a, &info);
			msched_count_app(m, info.name, +1);
		}
		if (!m->proid_counts)
			return -ENOMEM;
	}
	s = json_dumps(m->proid_counts, JSON_SORT_KEYS | JSON_COMPACT);
	if (!s)
		return -ENOMEM;
	if (m->last_stats && strcmp(m->last_stats, s) == 0)
		return 0;
	r = cellns_scheduled_stats_put(m->store, s);
	if (r >= 0) {
		free(m->last_stats);
		m->last_stats = TAKE_PTR(s);
	}
	return r < 0 ? r : 0;
}

/* ------------------------------------------------------------------ pass */

/* The model read afresh (msched_load_full), then the store's blackouts,
 * presence and scheduled apps applied to it (apps the loader refused are
 * retried and reported), and every server's state recorded. */
static int load_and_sync(struct msched *m, double now, struct error *err)
{
	int r = msched_load_full(m, now, err);

	if (r < 0)
		return r;
	/* Servers never seen by their presence stay down; record the state of the others. */
	r = msched_sync_blackouts(m, now);
	if (r >= 0)
		r = msched_sync_presence(m, now);
	if (r >= 0)
		r = msched_sync_scheduled(m);
	if (r < 0)
		return error_set(err, ERR_TEMP, -r, "loading the cell: %s", store_strerror(r));
	for (int s = sched_server_next(m->cell, -1); s >= 0; s = sched_server_next(m->cell, s)) {
		enum sched_state st;
		double since;

		sched_server_get_state(m->cell, s, &st, &since);
		msched_record_state(m, sched_node_name(m->cell, s), st, since);
	}
	return 0;
}

int msched_pass(struct msched *m, double now, struct msched_stats *stats, struct error *err)
{
	_cleanup_(batch_free) struct batch b = {}, tb = {};
	_cleanup_(post_items_free) struct post_items pi = {};
	struct post_item *posts;
	const char *what;
	struct sched_stats ss = { 0 };
	bool reloaded = false;
	int r;

	if (stats)
		*stats = (struct msched_stats){ 0 };
	if (!m->cell) {
		r = load_and_sync(m, now, err);
		if (r < 0)
			return r;
		reloaded = true;
		m->w[W_EVENTS].dirty = true;
	}
	for (int round = 0; round < 3; round++) {
		if (m->w[W_EVENTS].dirty || !m->w[W_EVENTS].armed) {
			r = msched_process_events(m, now);
			if (r < 0)
				return error_set(err, ERR_TEMP, -r, "processing /events: %s", store_strerror(r));
		}
		if (m->w[W_SERVERS].dirty)
			m->need_reload = true;
		if (m->need_reload) {
			r = load_and_sync(m, now, err);
			if (r < 0)
				return r;
			reloaded = true;
		}
		if (m->w[W_BLACK].dirty && (r = msched_sync_blackouts(m, now)) < 0)
			return error_set(err, ERR_TEMP, -r, "blackouts: %s", store_strerror(r));
		if (m->w[W_SCHED].dirty && (r = msched_sync_scheduled(m)) < 0)
			return error_set(err, ERR_TEMP, -r, "listing /scheduled: %s", store_strerror(r));
		/* presence: when it changed, a state changed under an absent one, or a grace ends */
		if (m->w[W_PRES].dirty || !m->w[W_PRES].armed || m->presence_check || now >= m->next_grace) {
			r = msched_sync_presence(m, now);
			if (r < 0)
				return error_set(err, ERR_TEMP, -r, "presence: %s", store_strerror(r));
		}
		if (!m->need_reload)
			break;
	}
	if (m->need_check || now >= m->next_check) {
		m->need_check = false;
		m->next_check = now + MSCHED_CHECK_INTERVAL_S;
		r = msched_check_pending_start(m, now);
		if (r < 0)
			msched_warn("pending-start check: %s", store_strerror(r));
	}
	if (now >= m->next_tick) {
		m->next_tick = now + MSCHED_TICK_INTERVAL_S;
		for (int p = 0; p < sched_partition_count(m->cell); p++)
			sched_partition_tick(m->cell, p, now);
	}
	if (now >= m->next_reboot_check) {
		if (m->next_reboot_check > 0)
			msched_check_reboots(m, now);
		m->next_reboot_check = now + MSCHED_REBOOT_CHECK_INTERVAL_S;
	}
	if (!m->o.no_compact && now >= m->next_compact) {
		struct error cerr = ERROR_INIT;

		m->next_compact = now + MSCHED_COMPACT_INTERVAL_S;
		if (trace_compact(m->store, now, MSCHED_COMPACT_EXPIRE_S, &cerr) < 0) {
			msched_warn("trace retention: %s", cerr.msg);
			error_clear(&cerr);
		}
	}

	changes_clear(m);
	m->oom = 0;
	r = sched_schedule(m->cell, now, on_change, m, &ss);
	if (r < 0 || m->oom < 0) {
		changes_clear(m);
		sched_invalidate(m->cell);
		m->need_reload = true; /* the store still holds the last good placements */
		return error_set(err, ERR_TEMP, r < 0 ? -r : ENOMEM, "scheduling failed");
	}
	/* The trace events, built (and timestamped) now, written after the placements: a
	 * node that configures an instance the moment its placement appears posts later. */
	posts = pi.v = calloc(m->nchg + 1, sizeof(*posts));
	if (!posts)
		goto oom;
	pi.n = m->nchg;
	for (size_t i = 0; i < m->nchg; i++) {
		struct mchange *c = &m->chg[i];
		bool moved = !c->before || !c->after || strcmp(c->before, c->after) != 0;

		if (c->after && moved)
			posts[i] = (struct post_item){ c->name, TRACE_SCHEDULED, strdup_printf("%s:%s", c->after, c->why) };
		else if (!c->after && c->before)
			posts[i] = (struct post_item){ c->name, TRACE_PENDING, strdup(c->why ? c->why : "") };
		else
			continue;
		if (!posts[i].data || batch_post(m, &tb, c->name, posts[i].type, posts[i].data, i) < 0)
			goto oom;
	}
	/* Deletes first: an interrupted pass never leaves an app on two servers. */
	for (size_t i = 0; i < m->nchg; i++) {
		struct mchange *c = &m->chg[i];

		if (c->before && (!c->after || strcmp(c->before, c->after) != 0) &&
		    batch_add(&b, STORE_OP_DELETE, cellns_path2(CELLNS_PLACEMENT, c->before, c->name), NULL, i) < 0)
			goto oom;
	}
	r = batch_run(m, &b, fallback_delete, NULL);
	if (r < 0) {
		what = "deleting placements";
		goto fail;
	}
	/* then the new placements: created, or (same server) their expiry set */
	for (size_t i = 0; i < m->nchg; i++) {
		struct mchange *c = &m->chg[i];
		char *d;

		if (!c->after)
			continue;
		d = placement_data(m, c);
		if (!d || batch_add(&b, c->before && !strcmp(c->before, c->after) ? STORE_OP_SET : STORE_OP_CREATE,
				    cellns_path2(CELLNS_PLACEMENT, c->after, c->name), d, i) < 0)
			goto oom;
	}
	r = batch_run(m, &b, fallback_write, NULL);
	if (r < 0) {
		what = "writing placements";
		goto fail;
	}
	/* then the trace events, timestamped before any placement was written */
	(void)batch_run(m, &tb, fallback_post, posts);
	for (size_t i = 0; i < m->nchg; i++) {
		struct mchange *c = &m->chg[i];
		struct sched_app_info info;

		if (!c->after && c->before && sched_app_info(m->cell, c->app, &info) == 0 && info.schedule_once &&
		    info.evicted)
			msched_unschedule_once(m, c->app, c->name, NULL);
	}
	r = write_stats(m);
	if (r < 0)
		msched_warn("writing /scheduled-stats: %s", store_strerror(r));
	if (stats) {
		*stats = (struct msched_stats){ .apps = ss.apps,
						.placed = ss.placed,
						.pending = ss.pending,
						.changed = m->nchg,
						.evictions = ss.evictions,
						.full_pass = ss.full_pass,
						.reloaded = reloaded,
						.unreadable = strv_length(m->unreadable) };
	}
	changes_clear(m);
	return 0;
oom:
	r = -ENOMEM;
	what = "writing the pass";
fail:
	m->need_reload = true; /* the store holds a consistent state: deletes went first */
	changes_clear(m);
	return error_set(err, ERR_TEMP, -r, "%s: %s", what, store_strerror(r));
}

double msched_next_deadline(const struct msched *m)
{
	double t = m->cell ? sched_next_event_at(m->cell) : INFINITY;

	for (size_t s = 0; s < m->n_vanished; s++)
		if (m->vanished[s] > 0)
			t = MIN(t, m->vanished[s] + m->o.down_grace);
	t = MIN(t, m->next_check);
	t = MIN(t, m->next_tick);
	t = MIN(t, m->next_reboot_check);
	if (!m->o.no_compact)
		t = MIN(t, m->next_compact);
	return t;
}

int msched_new(struct store *s, const struct msched_options *o, struct msched **ret)
{
	struct msched *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	m->store = s;
	m->o = *o;
	if (!m->o.hostname)
		m->o.hostname = "master";
	for (int i = 0; i < _W_MAX; i++)
		m->w[i].m = m;
	m->app_blacklist = json_object();
	m->next_grace = INFINITY;
	*ret = m;
	return 0;
}

void msched_free(struct msched *m)
{
	if (!m)
		return;
	changes_clear(m);
	free(m->chg);
	sched_cell_free(m->cell);
	strv_free(m->blackedout);
	json_decref(m->app_blacklist);
	msched_asg_clear(m);
	strv_free(m->traits);
	free(m->vanished);
	free(m->present);
	free(m->notrun);
	free(m->last_stats);
	json_decref(m->proid_counts);
	strv_free(m->unreadable);
	free(m);
}
