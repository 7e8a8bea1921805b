/* msched.c: the leader's scheduler model fed from the store (see msched.h,
 * docs/MASTER.md). */
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../basic/json.h"
#include "../basic/util.h"
#include "../sched/sched-loader.h"
#include "../sched/sched.h"
#include "../store/store.h"
#include "../trace/trace.h"
#include "msched.h"

enum { W_SCHED, W_PRES, W_SERVERS, W_EVENTS, W_BLACK, _W_MAX };
static const char *const wpath[_W_MAX] = { "/scheduled", "/server.presence", "/servers", "/events",
					   "/blackedout.servers" };

struct mwatch {
	struct msched *m;
	bool armed, dirty;
};

struct mchange {
	int app;
	char *name;
	char *before, *after;	/* server names, NULL none */
	double expiry;
	int identity;
	char *why;
};

struct msched {
	struct store *store;
	struct msched_options o;
	struct sched_cell *cell;
	bool need_reload, need_check;
	struct mwatch w[_W_MAX];
	char **blackedout;	/* sorted */
	bool black_loaded;
	json_t *app_blacklist;	/* {"pattern": {...}} */
	struct sched_assignment *asg;
	size_t nasg;
	char **traits;
	double *vanished;	/* per node id: realtime the presence vanished, 0 none */
	double *present;	/* per node id: 1 present at the last look, -1 absent, 0 unknown */
	size_t n_present;
	double next_tick, next_reboot_check;
	size_t n_vanished;
	double *notrun;		/* per app id: first seen placed but not in /running, 0 none */
	size_t n_notrun;
	double next_check, next_compact;
	char *last_stats;
	struct mchange *chg;
	size_t nchg, achg;
	int oom;
	char **unreadable;	/* /scheduled nodes the store cannot read, each reported once */
};

/* ------------------------------------------------------------- helpers */

static void on_watch(struct store *s _unused_, enum store_event ev _unused_, const char *path _unused_, void *ud)
{
	struct mwatch *w = ud;

	w->armed = false;
	w->dirty = true;
	if (w->m->o.wake)
		*w->m->o.wake = true;
}

/* List children of a watched path, re-arming its watch; sorted. */
static int list_watched(struct msched *m, int which, char ***ret)
{
	struct mwatch *w = &m->w[which];
	int r;

	w->dirty = false;
	r = store_children(m->store, wpath[which], ret, w->armed ? NULL : on_watch, w);
	if (r == -ENOENT) {
		(void)store_create_p(m->store, wpath[which]);
		r = store_children(m->store, wpath[which], ret, w->armed ? NULL : on_watch, w);
	}
	if (r < 0)
		return r;
	w->armed = true;
	if (*ret)
		strv_sort(*ret);
	return 0;
}

static bool sorted_contains(char *const *l, size_t n, const char *s)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(l[mid], s);

		if (c == 0)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static json_t *get_json(struct msched *m, const char *path, struct store_stat *st)
{
	_cleanup_free_ char *data = NULL;

	if (store_get(m->store, path, &data, NULL, st, NULL, NULL) < 0 || !data || !*data)
		return NULL;
	return json_loads(data, JSON_DECODE_ANY, NULL);
}

static int put_json(struct msched *m, const char *path, json_t *j)
{
	_cleanup_free_ char *s = j ? json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	int r;

	json_decref(j);
	if (!s)
		return -ENOMEM;
	r = store_set(m->store, path, s, strlen(s), -1, NULL);
	if (r == -ENOENT) {
		r = store_create(m->store, path, s, strlen(s), STORE_PERSISTENT, NULL);
		if (r == -ENOENT) {
			_cleanup_free_ char *parent = strndup(path, (size_t)(strrchr(path, '/') - path));

			if (!parent)
				return -ENOMEM;
			r = store_create_p(m->store, parent);
			if (r < 0 && r != -EEXIST)
				return r;
			r = store_create(m->store, path, s, strlen(s), STORE_PERSISTENT, NULL);
		}
		if (r == -EEXIST)
			r = store_set(m->store, path, s, strlen(s), -1, NULL);
	}
	return r < 0 ? r : 0;
}

static void warn(const char *fmt, ...) _printf_(1, 2);
static void warn(const char *fmt, ...)
{
	va_list ap;

	fputs("treadle: master: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* A trace event of this master, now. */
static struct trace_event master_event(struct msched *m, const char *inst, enum trace_type type, const char *data)
{
	return (struct trace_event){
		.timestamp = now_realtime(),
		.source = (char *)m->o.hostname,
		.instanceid = (char *)inst,
		.type = type,
		.data = (char *)(data ? data : ""),
	};
}

static void post(struct msched *m, const char *inst, enum trace_type type, const char *data)
{
	struct trace_event ev = master_event(m, inst, type, data);
	int r = trace_publish(m->store, &ev, m->o.hostname);

	if (r < 0)
		warn("posting %s event of %s: %s", trace_type_name(type), inst, store_strerror(r));
}

/* Server events: /server-trace/<shard>/<server>,<ts>,<host>,<type>,<data>.
 * Shard: FNV-1a of the name % 256 (Treadmill uses md5; only the spread matters). */
static void post_server(struct msched *m, const char *server, const char *type, const char *data)
{
	uint32_t h = 2166136261u;
	_cleanup_free_ char *path = NULL;
	int r;

	for (const char *p = server; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	path = strdup_printf("/server-trace/%04X/%s,%.3f,%s,%s,%s", h % 256, server, now_realtime(), m->o.hostname,
			     type, data ? data : "");
	if (!path)
		return;
	r = store_create(m->store, path, "", 0, STORE_PERSISTENT, NULL);
	if (r == -ENOENT) {
		_cleanup_free_ char *dir = strdup_printf("/server-trace/%04X", h % 256);

		if (dir)
			(void)store_create_p(m->store, dir);
		r = store_create(m->store, path, "", 0, STORE_PERSISTENT, NULL);
	}
	if (r < 0 && r != -EEXIST)
		warn("posting %s event of %s: %s", type, server, store_strerror(r));
}

static double *grow(double **arr, size_t *n, size_t want)
{
	if (want > *n) {
		size_t nn = MAX(want, *n * 2 + 64);
		double *t = realloc(*arr, nn * sizeof(*t));

		if (!t)
			return NULL;
		for (size_t i = *n; i < nn; i++)
			t[i] = 0;
		*arr = t;
		*n = nn;
	}
	return *arr;
}

static const char *state_name(enum sched_state s)
{
	return s == SCHED_UP ? "up" : s == SCHED_DOWN ? "down" : "frozen";
}

/* /placement/<server> = {"state", "since"} if it differs; server_state event. */
static void record_state(struct msched *m, const char *server, enum sched_state st, double since)
{
	_cleanup_free_ char *path = strdup_printf("/placement/%s", server);
	json_t *j;
	const char *old;
	bool same;
	int r;

	if (!path)
		return;
	j = get_json(m, path, NULL);
	old = json_string_value(json_object_get(j, "state"));
	same = old && strcmp(old, state_name(st)) == 0;
	json_decref(j);
	if (same)
		return;
	r = put_json(m, path, json_pack("{s:s, s:f}", "state", state_name(st), "since", since));
	if (r < 0)
		warn("writing %s: %s", path, store_strerror(r));
	post_server(m, server, "server_state", state_name(st));
	warn("server %s is %s", server, state_name(st));
}

static void set_state(struct msched *m, int srv, enum sched_state st, double since)
{
	enum sched_state old;
	double osince;

	if (sched_server_get_state(m->cell, srv, &old, &osince) < 0)
		return;
	if (old == st)
		return;
	sched_server_set_state(m->cell, srv, st, since);
	record_state(m, sched_node_name(m->cell, srv), st, since);
}

/* ------------------------------------------------------------- app loading */

static void asg_clear(struct msched *m)
{
	sched_assignments_free(m->asg, m->nasg);
	m->asg = NULL;
	m->nasg = 0;
}

/* The assignments of /allocations and /traits, for apps created later
 * (the parser of sched-loader.c; allocations resolved by name when used). */
static void load_assignments(struct msched *m)
{
	_cleanup_json_ json_t *list = get_json(m, "/allocations", NULL);
	_cleanup_json_ json_t *t = get_json(m, "/traits", NULL);
	json_t *o;
	size_t i;

	asg_clear(m);
	strv_free(m->traits);
	m->traits = NULL;
	json_array_foreach(t, i, o)
		if (json_is_string(o))
			strv_extend(&m->traits, json_string_value(o));
	(void)sched_assignments_parse(list, &m->asg, &m->nasg);
}

static bool blacklisted(struct msched *m, const char *name)
{
	const char *pat;
	json_t *v;

	/* Treadmill matches the app name without its instance: "proid.app" */
	char base[256];

	snprintf(base, sizeof(base), "%.*s", (int)strcspn(name, "#"), name);
	json_object_foreach(m->app_blacklist, pat, v)
		if (fnmatch(pat, base, 0) == 0 || fnmatch(pat, name, 0) == 0)
			return true;
	return false;
}

/* Add /scheduled/<name> to the model, or (reload) update its priority,
 * retention and allocation.  -ENOENT when data is NULL (gone); -EINVAL with
 * *ret_why (static) when the data cannot be a manifest. */
static int load_app_data(struct msched *m, const char *name, const char *data, const char **ret_why)
{
	_cleanup_json_ json_t *j = data && *data ? json_loads(data, JSON_DECODE_ANY, NULL) : NULL;
	struct sched_limit lim[SCHED_LEVELS_MAX];
	struct sched_app_spec spec;
	int64_t demand[3];
	int alloc, prio, a, r = 0;

	if (!data)
		return -ENOENT;
	if (sched_loader_app_spec(name, j, demand, lim, &spec) < 0) {
		if (ret_why)
			*ret_why = !*data ? "empty" : !j ? "not JSON" : !json_is_object(j) ? "not a JSON object"
											 : "bad memory, cpu or disk";
		return -EINVAL;
	}
	alloc = sched_assignment_match(m->cell, m->asg, m->nasg, name, j, &prio);
	spec.priority = prio;
	spec.traits = sched_loader_traits(&m->traits, json_object_get(j, "traits"), false, true);
	a = sched_app_find(m->cell, name);
	if (a >= 0) {
		struct sched_app_info info;

		sched_app_info(m->cell, a, &info);
		if (info.priority != prio)
			sched_app_set_priority(m->cell, a, prio);
		sched_app_set_retention(m->cell, a, spec.data_retention_timeout);
		if (alloc >= 0 && info.alloc != alloc)
			sched_app_move(m->cell, a, alloc);
	} else if (alloc < 0 || (a = sched_app_add(m->cell, alloc, &spec)) < 0) {
		r = alloc < 0 ? alloc : a;
	}
	if (a >= 0 && blacklisted(m, name))
		sched_app_set_blacklisted(m->cell, a, true);
	return r;
}

static int load_app(struct msched *m, const char *name)
{
	_cleanup_free_ char *p = strdup_printf("/scheduled/%s", name), *data = NULL;
	int r;

	if (!p)
		return -ENOMEM;
	r = store_get(m->store, p, &data, NULL, NULL, NULL, NULL);
	if (r < 0)
		return r;
	return load_app_data(m, name, data, NULL); /* an invalid one is aborted by sync_scheduled */
}

static void load_app_blacklist(struct msched *m)
{
	json_t *j = get_json(m, "/blackedout.apps", NULL);

	json_decref(m->app_blacklist);
	m->app_blacklist = json_is_object(j) ? j : json_object();
	if (!json_is_object(j))
		json_decref(j);
	for (int a = sched_app_next(m->cell, -1); a >= 0; a = sched_app_next(m->cell, a)) {
		struct sched_app_info info;
		bool b;

		sched_app_info(m->cell, a, &info);
		b = blacklisted(m, info.name);
		if (b != info.blacklisted)
			sched_app_set_blacklisted(m->cell, a, b);
	}
}

/* ------------------------------------------------------- writing results */

static int delete_node(struct msched *m, const char *path)
{
	int r = store_delete(m->store, path, -1);

	return r == -ENOENT ? 0 : r;
}

static int delete_placement(struct msched *m, const char *server, const char *inst)
{
	_cleanup_free_ char *path = strdup_printf("/placement/%s/%s", server, inst);

	return path ? delete_node(m, path) : -ENOMEM;
}

static void write_finished(struct msched *m, const char *inst, const char *host, const char *data)
{
	_cleanup_free_ char *path = strdup_printf("/finished/%s", inst), *s = NULL;
	json_t *j;
	int r;

	if (!path || store_exists(m->store, path, NULL, NULL, NULL) == 0)
		return;
	j = json_pack("{s:s, s:f, s:s?, s:s?}", "state", "terminated", "when", now_realtime(), "host", host, "data",
		      data);
	s = j ? json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
	json_decref(j);
	if (!s)
		return;
	r = store_create(m->store, path, s, strlen(s), STORE_PERSISTENT, NULL);
	if (r < 0 && r != -EEXIST)
		warn("writing %s: %s", path, store_strerror(r));
}

/* A schedule_once app that lost its server: terminated, and unscheduled. */
static void unschedule_once(struct msched *m, int a, const char *name, const char *host)
{
	_cleanup_free_ char *n = strdup(name), *p = strdup_printf("/scheduled/%s", name);

	if (!n || !p)
		return;
	write_finished(m, n, host, "schedule_once");
	(void)delete_node(m, p);
	sched_app_remove(m->cell, a);
}

static int identity_count(struct msched *m, const char *inst)
{
	_cleanup_free_ char *p = strdup_printf("/scheduled/%s", inst), *g = NULL;
	json_t *j = p ? get_json(m, p, NULL) : NULL;
	const char *grp = json_string_value(json_object_get(j, "identity_group"));
	int n = -1;

	g = grp ? strdup_printf("/identity-groups/%s", grp) : NULL;
	json_decref(j);
	j = g ? get_json(m, g, NULL) : NULL;
	if (json_is_integer(json_object_get(j, "count")))
		n = (int)json_integer_value(json_object_get(j, "count"));
	json_decref(j);
	return n;
}

/* /placement/<server>/<app> data: {"expires", "identity", "identity_count"}. */
static char *placement_data(struct msched *m, const struct mchange *c)
{
	int cnt = c->identity >= 0 ? identity_count(m, c->name) : -1;
	json_t *j = json_pack("{s:o, s:o, s:o}", "expires", isnan(c->expiry) ? json_null() : json_real(c->expiry),
			      "identity", c->identity >= 0 ? json_integer(c->identity) : json_null(), "identity_count",
			      cnt >= 0 ? json_integer(cnt) : json_null());
	char *d = j ? json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT) : NULL;

	json_decref(j);
	return d;
}

static int write_placement(struct msched *m, const struct mchange *c)
{
	_cleanup_free_ char *path = strdup_printf("/placement/%s/%s", c->after, c->name);
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
#define MULTI_BATCH 256

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

	return delete_placement(m, c->before, c->name);
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

	post(m, p->inst, p->type, p->data);
	return 0;
}

/* A non-terminal trace event as a create op (trace_publish's node). */
static int batch_post(struct msched *m, struct batch *b, const char *inst, enum trace_type type, const char *data,
		      size_t item)
{
	struct trace_event ev = master_event(m, inst, type, data);
	_cleanup_free_ char *name = trace_node_name(&ev, m->o.hostname);
	char shard[5];

	if (!name || trace_shard(inst, shard) < 0)
		return -ENOMEM;
	return batch_add(b, STORE_OP_CREATE, strdup_printf("/trace/%s/%s", shard, name), NULL, item);
}

static bool is_blackedout(struct msched *m, const char *server)
{
	return sorted_contains(m->blackedout, strv_length(m->blackedout), server);
}

/* Treadmill's why: <srv>:down, <srv>:frozen, blacklisted, evicted. */
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
	if (st == SCHED_DOWN || is_blackedout(m, bname))
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

static int write_stats(struct msched *m)
{
	json_t *j = json_object();
	_cleanup_free_ char *s = NULL;
	int r;

	if (!j)
		return -ENOMEM;
	for (int a = sched_app_next(m->cell, -1); a >= 0; a = sched_app_next(m->cell, a)) {
		struct sched_app_info info;
		char proid[256];
		json_t *v;

		sched_app_info(m->cell, a, &info);
		snprintf(proid, sizeof(proid), "%.*s", (int)strcspn(info.name, "."), info.name);
		v = json_object_get(j, proid);
		if (v)
			json_integer_set(v, json_integer_value(v) + 1);
		else
			json_object_set_new(j, proid, json_integer(1));
	}
	s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
	json_decref(j);
	if (!s)
		return -ENOMEM;
	if (m->last_stats && strcmp(m->last_stats, s) == 0)
		return 0;
	r = store_set(m->store, "/scheduled-stats", s, strlen(s), -1, NULL);
	if (r == -ENOENT)
		r = store_create(m->store, "/scheduled-stats", s, strlen(s), STORE_PERSISTENT, NULL);
	if (r >= 0) {
		free(m->last_stats);
		m->last_stats = TAKE_PTR(s);
	}
	return r < 0 ? r : 0;
}

/* --------------------------------------------------------------- syncing */

/* The presence of each server (host or host#seq), with the down grace. */
static int sync_presence(struct msched *m, double now)
{
	_cleanup_strv_free_ char **pres = NULL;
	size_t n;
	int r;

	r = list_watched(m, W_PRES, &pres);
	if (r < 0)
		return r;
	for (char **k = pres; k && *k; k++) {
		char *h = strchr(*k, '#');

		if (h)
			*h = 0;
	}
	if (pres)
		strv_sort(pres);
	n = strv_length(pres);
	for (size_t i = 0; i < n; i++)
		if (sched_node_find(m->cell, pres[i]) < 0)
			m->need_reload = true; /* a new server: load its topology and capacity */
	for (int s = sched_server_next(m->cell, -1); s >= 0; s = sched_server_next(m->cell, s)) {
		const char *name = sched_node_name(m->cell, s);
		enum sched_state st;
		double since;

		double prev;

		if (!grow(&m->vanished, &m->n_vanished, (size_t)s + 1) || !grow(&m->present, &m->n_present, (size_t)s + 1))
			return -ENOMEM;
		sched_server_get_state(m->cell, s, &st, &since);
		prev = m->present[s];
		if (sorted_contains(pres, n, name)) {
			m->vanished[s] = 0;
			m->present[s] = 1;
			/* presence (re)appeared: up (Treadmill's adjust_presence; frozen stays) */
			if (prev <= 0 && st == SCHED_DOWN && !is_blackedout(m, name))
				set_state(m, s, SCHED_UP, now);
			continue;
		}
		m->present[s] = -1;
		if (st == SCHED_DOWN)
			continue;
		if (m->vanished[s] <= 0)
			m->vanished[s] = now;
		if (now - m->vanished[s] >= m->o.down_grace) {
			set_state(m, s, SCHED_DOWN, m->vanished[s]);
			m->vanished[s] = 0;
		}
	}
	return 0;
}

static int sync_blackouts(struct msched *m, double now)
{
	_cleanup_strv_free_ char **now_list = NULL;
	char **old = m->blackedout;
	size_t n, on = strv_length(old);
	int r;

	r = list_watched(m, W_BLACK, &now_list);
	if (r < 0)
		return r;
	n = strv_length(now_list);
	for (size_t i = 0; i < n; i++) {
		int s = sched_node_find(m->cell, now_list[i]);

		if (m->black_loaded && !sorted_contains(old, on, now_list[i]))
			post_server(m, now_list[i], "server_blackout", "");
		if (s >= 0 && sched_node_is_server(m->cell, s))
			set_state(m, s, SCHED_DOWN, now);
	}
	for (size_t i = 0; i < on; i++) {
		int s;

		if (sorted_contains(now_list, n, old[i]))
			continue;
		post_server(m, old[i], "server_blackout_cleared", "");
		s = sched_node_find(m->cell, old[i]);
		if (s >= 0 && sched_node_is_server(m->cell, s)) {
			_cleanup_free_ char *pp = strdup_printf("/server.presence/%s", old[i]);

			if (pp && store_exists(m->store, pp, NULL, NULL, NULL) == 0)
				set_state(m, s, SCHED_UP, now);
		}
	}
	m->blackedout = TAKE_PTR(now_list);
	m->black_loaded = true;
	strv_free(old);
	return 0;
}

/* An instance vanished from /scheduled: Treadmill's remove_app. */
static void remove_app(struct msched *m, int a)
{
	struct sched_app_info info;
	const char *host;
	_cleanup_free_ char *name = NULL;

	if (sched_app_info(m->cell, a, &info) < 0)
		return;
	name = strdup(info.name);
	host = info.server >= 0 ? sched_node_name(m->cell, info.server) : NULL;
	if (!name)
		return;
	if (host) {
		int r = delete_placement(m, host, name);

		if (r < 0)
			warn("deleting placement of %s: %s", name, store_strerror(r));
	}
	post(m, name, TRACE_DELETED, "");
	write_finished(m, name, host, NULL);
	sched_app_remove(m->cell, a);
}

/* /scheduled/<name> cannot be a manifest (Treadmill would never have
 * scheduled it): end it with an aborted event naming why, and unschedule it,
 * rather than leave it pending (or placed and ignored) forever. */
static void abort_invalid(struct msched *m, const char *name, const char *why)
{
	_cleanup_free_ char *payload = strdup_printf("invalid manifest: %s", why);
	_cleanup_free_ char *p = strdup_printf("/scheduled/%s", name);
	struct trace_event ev = master_event(m, name, TRACE_ABORTED, "invalid_manifest");
	int r;

	if (!payload || !p)
		return;
	ev.payload = payload;
	warn("/scheduled/%s: %s: aborted", name, payload);
	r = trace_publish(m->store, &ev, m->o.hostname);
	if (r < 0)
		warn("posting aborted event of %s: %s", name, store_strerror(r));
	else if ((r = delete_node(m, p)) < 0) /* after the event: a crash in between aborts it again */
		warn("unscheduling %s: %s", name, store_strerror(r));
}

/* A /scheduled node that is listed but reads as nothing: gone meanwhile, or
 * unreadable (a corrupt node of the embedded store): reported once, skipped;
 * the rest of the cell goes on.  `treadle store fsck` lists and repairs it. */
static void check_unreadable(struct msched *m, const char *name)
{
	_cleanup_free_ char *p = strdup_printf("/scheduled/%s", name);
	int r;

	if (!p || strv_contains(m->unreadable, name))
		return;
	r = store_get(m->store, p, NULL, NULL, NULL, NULL, NULL);
	if (r == 0 || r == -ENOENT)
		return;
	warn("%s: unreadable (%s), skipped until repaired", p, store_strerror(r));
	(void)strv_extend(&m->unreadable, name);
}

#define SYNC_BATCH 4096

static int sync_scheduled(struct msched *m)
{
	_cleanup_strv_free_ char **names = NULL;
	size_t n;
	int r;

	r = list_watched(m, W_SCHED, &names);
	if (r < 0)
		return r;
	n = strv_length(names);
	for (int a = sched_app_next(m->cell, -1), next; a >= 0; a = next) {
		struct sched_app_info info;

		next = sched_app_next(m->cell, a);
		sched_app_info(m->cell, a, &info);
		if (!sorted_contains(names, n, info.name))
			remove_app(m, a);
	}
	/* forget unreadable nodes that went away (deleted, or moved by fsck) */
	for (size_t u = 0; m->unreadable && m->unreadable[u];) {
		if (sorted_contains(names, n, m->unreadable[u])) {
			u++;
			continue;
		}
		free(m->unreadable[u]);
		memmove(&m->unreadable[u], &m->unreadable[u + 1], (strv_length(m->unreadable + u + 1) + 1) * sizeof(char *));
	}
	/* new apps, read in batches (one round trip each on ZooKeeper) */
	for (size_t i = 0; i < n;) {
		_cleanup_free_ char **fresh = calloc(SYNC_BATCH, sizeof(char *)), **data = calloc(SYNC_BATCH, sizeof(char *));
		size_t k = 0;

		if (!fresh || !data)
			return -ENOMEM;
		for (; i < n && k < SYNC_BATCH; i++)
			if (sched_app_find(m->cell, names[i]) < 0)
				fresh[k++] = names[i]; /* borrowed */
		r = k ? store_get_many_in(m->store, "/scheduled", fresh, k, data, NULL, NULL) : 0;
		if (r < 0)
			return r;
		for (size_t x = 0; x < k; x++) {
			const char *why = "?";
			int q = load_app_data(m, fresh[x], data[x], &why);

			if (q == -ENOENT)
				check_unreadable(m, fresh[x]);
			else if (q == -EINVAL)
				abort_invalid(m, fresh[x], why);
			else if (q < 0)
				warn("/scheduled/%s: not scheduled (%s)", fresh[x], strerror(-q));
			free(data[x]);
		}
	}
	return 0;
}

/* -------------------------------------------------------------- loading */

/* Partition reboot schedules (/partitions/<label> "reboot-schedule":
 * {"<weekday 0=Mon>": [h, m, s]}, default every day 23:59:59) give every
 * server its valid_until (Treadmill's Partition buckets); the presence's
 * "valid_until" is kept across master restarts. */
static void load_reboots(struct msched *m, double now)
{
	static const char *const wdays[7] = { "mon", "tue", "wed", "thu", "fri", "sat", "sun" };

	for (int p = 0; p < sched_partition_count(m->cell); p++) {
		const char *label = sched_partition_label(m->cell, p);
		_cleanup_free_ char *path = label ? strdup_printf("/partitions/%s", label) : NULL;
		json_t *j = path ? get_json(m, path, NULL) : NULL, *v;
		char buf[256] = "";
		size_t len = 0;
		const char *k;

		json_object_foreach(json_object_get(j, "reboot-schedule"), k, v) {
			int d;

			if (safe_atoi(k, &d) < 0 || d < 0 || d > 6)
				continue;
			len += (size_t)snprintf(buf + len, sizeof(buf) - MIN(len, sizeof(buf)), "%s%s/%02d:%02d:%02d",
						len ? "," : "", wdays[d], (int)json_integer_value(json_array_get(v, 0)),
						(int)json_integer_value(json_array_get(v, 1)),
						(int)json_integer_value(json_array_get(v, 2)));
			if (len >= sizeof(buf))
				break;
		}
		json_decref(j);
		if (len >= sizeof(buf) || sched_partition_set_reboot_schedule(m->cell, p, buf, now) < 0)
			sched_partition_set_reboot_schedule(m->cell, p, "", now);
	}
	for (int s = sched_server_next(m->cell, -1); s >= 0; s = sched_server_next(m->cell, s)) {
		struct sched_node_info ni;
		_cleanup_free_ char *pp = NULL;
		double ts = 0;
		json_t *j;

		if (sched_node_info(m->cell, s, &ni) < 0)
			continue;
		pp = strdup_printf("/server.presence/%s", ni.name);
		j = pp ? get_json(m, pp, NULL) : NULL;
		if (json_is_number(json_object_get(j, "valid_until")))
			ts = json_number_value(json_object_get(j, "valid_until"));
		json_decref(j);
		sched_partition_add_server(m->cell, sched_partition_get(m->cell, ni.partition ? ni.partition : "_default"),
					   s, ts);
	}
}

/* Treadmill's check_reboot: /reboots/<server> for servers past their
 * valid_until (only those without apps: a placed lease never outlives it). */
static void check_reboots(struct msched *m, double now)
{
	for (int s = sched_server_next(m->cell, -1); s >= 0; s = sched_server_next(m->cell, s)) {
		struct sched_node_info ni;
		_cleanup_free_ char *p = NULL;

		if (sched_node_info(m->cell, s, &ni) < 0 || ni.valid_until == 0 || now <= ni.valid_until || ni.napps)
			continue;
		p = strdup_printf("/reboots/%s", ni.name);
		if (p && store_exists(m->store, p, NULL, NULL, NULL) == -ENOENT) {
			warn("server %s is past its valid_until: requesting a reboot", ni.name);
			(void)store_create_p(m->store, p);
		}
	}
}

struct seen {
	int app;
	int server;
};

struct datas {
	char **v;
	size_t n;
};

static void datas_free(struct datas *d)
{
	for (size_t k = 0; k < d->n; k++)
		free(d->v[k]);
	free(d->v);
	*d = (struct datas){};
}

/* Treadmill's restore_placements (§2.7) after sched_load_store restored
 * every placement it could: same presence session -> kept; else re-put
 * (schedule_once: terminated); stale -> deleted; on two servers -> neither. */
static int restore(struct msched *m, double now)
{
	_cleanup_strv_free_ char **servers = NULL;
	_cleanup_free_ struct seen *seen = NULL;
	_cleanup_free_ struct store_stat *stats = NULL;
	_cleanup_free_ int *dups = NULL;
	_cleanup_(datas_free) struct datas d = {};
	size_t nseen = 0, aseen = 0, ndups = 0, napps;

	if (store_children(m->store, "/placement", &servers, NULL, NULL) < 0)
		return 0;
	for (char **sv = servers; sv && *sv; sv++) {
		_cleanup_free_ char *sp = strdup_printf("/placement/%s", *sv), *pp = NULL;
		_cleanup_strv_free_ char **apps = NULL;
		struct store_stat pst;
		double ptime = -1;
		int s = sched_node_find(m->cell, *sv);
		json_t *j;

		if (!sp)
			return -ENOMEM;
		pp = strdup_printf("/server.presence/%s", *sv);
		if (pp && store_exists(m->store, pp, &pst, NULL, NULL) == 0)
			ptime = (double)pst.ctime_ms / 1000.0;
		j = get_json(m, sp, NULL);
		if (s >= 0 && sched_node_is_server(m->cell, s)) {
			const char *st = json_string_value(json_object_get(j, "state"));
			json_t *since = json_object_get(j, "since");

			if (st && !strcmp(st, "frozen"))
				sched_server_set_state(m->cell, s, SCHED_FROZEN,
						       json_is_number(since) ? json_number_value(since) : now);
			else if (st && !strcmp(st, "down") && ptime < 0 && json_is_number(since)) {
				sched_server_set_state(m->cell, s, SCHED_UP, now);
				sched_server_set_state(m->cell, s, SCHED_DOWN, json_number_value(since));
			} else if (st && !strcmp(st, "up") && ptime < 0) {
				/* it vanished while no master ran: the grace starts now */
				sched_server_set_state(m->cell, s, SCHED_UP, now);
			}
		}
		json_decref(j);
		if (store_children(m->store, sp, &apps, NULL, NULL) < 0)
			continue;
		/* every placement's creation time, in one round trip */
		napps = strv_length(apps);
		free(stats);
		stats = calloc(napps + 1, sizeof(*stats));
		datas_free(&d);
		d.v = calloc(napps + 1, sizeof(char *));
		if (!stats || !d.v)
			return -ENOMEM;
		if (store_get_many_in(m->store, sp, apps, napps, d.v, NULL, stats) < 0)
			continue;
		d.n = napps;
		for (char **ap = apps; ap && *ap; ap++) {
			int a = sched_app_find(m->cell, *ap);
			struct sched_app_info info;
			size_t k = (size_t)(ap - apps);
			_cleanup_free_ char *path = strdup_printf("%s/%s", sp, *ap);
			struct store_stat st = stats[k];

			if (!path)
				return -ENOMEM;
			if (a < 0 || s < 0) {
				warn("removing stale placement %s", path);
				(void)delete_node(m, path);
				if (a < 0) {
					/* deleted while no master ran: Treadmill's remove_app */
					post(m, *ap, TRACE_DELETED, "");
					write_finished(m, *ap, *sv, NULL);
				}
				continue;
			}
			sched_app_info(m->cell, a, &info);
			if (info.server >= 0 && info.server != s) {
				/* restored elsewhere too: placed twice */
				if (ndups % 16 == 0) {
					int *t = realloc(dups, (ndups + 16) * sizeof(*t));

					if (!t)
						return -ENOMEM;
					dups = t;
				}
				dups[ndups++] = a;
				(void)delete_node(m, path);
				continue;
			}
			if (!d.v[k]) /* gone meanwhile */
				continue;
			if (nseen == aseen) {
				struct seen *t = realloc(seen, (aseen = aseen * 2 + 256) * sizeof(*t));

				if (!t)
					return -ENOMEM;
				seen = t;
			}
			seen[nseen++] = (struct seen){ a, s };
			if (info.server == s && ptime >= 0 && ptime <= (double)st.ctime_ms / 1000.0)
				continue; /* same node session: keep (restored by the loader) */
			if (info.server == s)
				sched_app_unplace(m->cell, a);
			if (info.schedule_once) {
				(void)delete_node(m, path);
				unschedule_once(m, a, *ap, *sv);
				continue;
			}
			if (sched_app_put(m->cell, a, s, now) < 0) {
				/* does not fit any more: pending, its node goes */
				(void)delete_node(m, path);
			} else {
				/* new expiry: rewrite in the first pass */
				struct sched_app_info ni;

				sched_app_info(m->cell, a, &ni);
				(void)put_json(m, path,
					       json_pack("{s:o, s:o, s:n}", "expires",
							 isnan(ni.expiry) ? json_null() : json_real(ni.expiry), "identity",
							 ni.identity >= 0 ? json_integer(ni.identity) : json_null(),
							 "identity_count"));
			}
		}
	}
	for (size_t i = 0; i < ndups; i++) {
		struct sched_app_info info;

		if (sched_app_info(m->cell, dups[i], &info) < 0)
			continue;
		warn("%s placed on several servers: unplacing it", info.name);
		for (size_t k = 0; k < nseen; k++)
			if (seen[k].app == dups[i])
				(void)delete_placement(m, sched_node_name(m->cell, seen[k].server), info.name);
		sched_app_unplace(m->cell, dups[i]);
	}
	return 0;
}

static int load_full(struct msched *m, double now, struct error *err)
{
	_cleanup_strv_free_ char **tmp = NULL;
	_cleanup_free_ char *warnings = NULL;
	struct sched_cell *c = NULL;
	int r;

	/* Arm the watches before reading, so no change is missed. */
	for (int i = 0; i < _W_MAX; i++) {
		if (i == W_EVENTS)
			continue;
		strv_free(tmp);
		tmp = NULL;
		r = list_watched(m, i, &tmp);
		if (r < 0)
			return error_set(err, ERR_TEMP, -r, "listing %s: %s", wpath[i], store_strerror(r));
	}
	r = sched_load_store(m->store, now, &c, &warnings, err);
	if (r < 0)
		return r;
	if (warnings && *warnings)
		fprintf(stderr, "treadle: master: loading the cell: %s", warnings);
	sched_cell_free(m->cell);
	m->cell = c;
	m->need_reload = false;
	free(m->vanished);
	m->vanished = NULL;
	m->n_vanished = 0;
	free(m->notrun);
	m->notrun = NULL;
	m->n_notrun = 0;
	free(m->present);
	m->present = NULL;
	m->n_present = 0;
	load_assignments(m);
	load_reboots(m, now);
	load_app_blacklist(m);
	r = restore(m, now);
	if (r < 0)
		return error_set(err, ERR_TEMP, -r, "restoring placements: %s", store_strerror(r));
	/* Servers never seen by their presence stay down; record the state of the others. */
	r = sync_blackouts(m, now);
	if (r >= 0)
		r = sync_presence(m, now);
	if (r >= 0)
		r = sync_scheduled(m); /* apps the loader refused are retried (and reported) */
	if (r < 0)
		return error_set(err, ERR_TEMP, -r, "loading the cell: %s", store_strerror(r));
	for (int s = sched_server_next(m->cell, -1); s >= 0; s = sched_server_next(m->cell, s)) {
		enum sched_state st;
		double since;

		sched_server_get_state(m->cell, s, &st, &since);
		record_state(m, sched_node_name(m->cell, s), st, since);
	}
	return 0;
}

/* --------------------------------------------------------------- events */

struct ev {
	char *name;
	int prio;
	int64_t seq;
	char resource[64];
};

static int cmp_ev(const void *a, const void *b)
{
	const struct ev *x = a, *y = b;

	if (x->prio != y->prio)
		return x->prio < y->prio ? -1 : 1;
	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return strcmp(x->resource, y->resource);
}

/* "<digits>-<word>-<digits>" */
static bool parse_ev(char *name, struct ev *e)
{
	const char *p = name, *d1, *d2;
	size_t rl;

	for (d1 = p; *d1 >= '0' && *d1 <= '9'; d1++)
		;
	if (d1 == p || *d1 != '-')
		return false;
	d2 = strrchr(name, '-');
	if (d2 == d1 || !d2[1])
		return false;
	for (const char *q = d2 + 1; *q; q++)
		if (*q < '0' || *q > '9')
			return false;
	rl = (size_t)(d2 - d1 - 1);
	if (rl == 0 || rl >= sizeof(e->resource))
		return false;
	for (const char *q = d1 + 1; q < d2; q++)
		if (!(*q == '_' || (*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9')))
			return false;
	e->name = name;
	e->prio = (int)strtol(p, NULL, 10);
	e->seq = strtoll(d2 + 1, NULL, 10);
	memcpy(e->resource, d1 + 1, rl);
	e->resource[rl] = 0;
	return true;
}

static void event_server_state(struct msched *m, json_t *payload, double now)
{
	const char *srv = json_string_value(json_array_get(payload, 0));
	const char *st = json_string_value(json_array_get(payload, 1));
	json_t *apps = json_array_get(payload, 2), *v;
	int s = srv ? sched_node_find(m->cell, srv) : -1;
	size_t i;

	if (s < 0 || !st || !sched_node_is_server(m->cell, s)) {
		warn("server_state event: bad payload");
		return;
	}
	if (!strcmp(st, "frozen")) {
		json_array_foreach(apps, i, v) {
			int a = json_is_string(v) ? sched_app_find(m->cell, json_string_value(v)) : -1;

			if (a >= 0)
				sched_app_set_unschedule(m->cell, a, true);
		}
		set_state(m, s, SCHED_FROZEN, now);
	} else if (!strcmp(st, "up")) {
		set_state(m, s, SCHED_UP, now);
		m->w[W_PRES].dirty = true; /* gone meanwhile: down again (after the grace) */
	} else if (!strcmp(st, "down")) {
		set_state(m, s, SCHED_DOWN, now);
	}
}

static int process_events(struct msched *m, double now)
{
	_cleanup_strv_free_ char **names = NULL;
	_cleanup_free_ struct ev *evs = NULL;
	size_t n, ne = 0;
	int r;

	r = list_watched(m, W_EVENTS, &names);
	if (r < 0)
		return r;
	n = strv_length(names);
	if (!n)
		return 0;
	evs = calloc(n, sizeof(*evs));
	if (!evs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (parse_ev(names[i], &evs[ne]))
			ne++;
	qsort(evs, ne, sizeof(*evs), cmp_ev);
	for (size_t i = 0; i < ne; i++) {
		_cleanup_free_ char *path = strdup_printf("/events/%s", evs[i].name);
		json_t *payload = path ? get_json(m, path, NULL) : NULL, *v;
		const char *res = evs[i].resource;
		size_t k;

		if (!strcmp(res, "servers") || !strcmp(res, "buckets") || !strcmp(res, "cell") ||
		    !strcmp(res, "allocations") || !strcmp(res, "identity_groups")) {
			m->need_reload = true;
		} else if (!m->need_reload && !strcmp(res, "apps")) {
			json_array_foreach(payload, k, v)
				if (json_is_string(v) && load_app(m, json_string_value(v)) < 0)
					warn("apps event: cannot load %s", json_string_value(v));
		} else if (!m->need_reload && !strcmp(res, "apps_blacklist")) {
			load_app_blacklist(m);
		} else if (!strcmp(res, "server_state")) {
			event_server_state(m, payload, now); /* after a reload too: applied now */
		} else if (!m->need_reload) {
			warn("event %s: unknown resource, ignored", evs[i].name);
		}
		json_decref(payload);
	}
	/* Treadmill deletes all children, handled or not. */
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *path = strdup_printf("/events/%s", names[i]);

		if (path)
			(void)delete_node(m, path);
	}
	return 0;
}

/* ------------------------------------------------------ pending start */

/* Treadmill's _check_pending_start: an app placed on an up server and not
 * in /running for more than 300 s freezes its server; the app is marked to
 * leave it. */
static int check_pending_start(struct msched *m, double now)
{
	_cleanup_strv_free_ char **running = NULL;
	size_t n;
	int r;

	r = store_children(m->store, "/running", &running, NULL, NULL);
	if (r < 0 && r != -ENOENT)
		return r;
	if (running)
		strv_sort(running);
	n = strv_length(running);
	for (int a = sched_app_next(m->cell, -1); a >= 0; a = sched_app_next(m->cell, a)) {
		struct sched_app_info info;
		enum sched_state st;
		double since;

		if (!grow(&m->notrun, &m->n_notrun, (size_t)a + 1))
			return -ENOMEM;
		sched_app_info(m->cell, a, &info);
		if (info.server < 0 || sorted_contains(running, n, info.name)) {
			m->notrun[a] = 0;
			continue;
		}
		sched_server_get_state(m->cell, info.server, &st, &since);
		if (st != SCHED_UP) {
			m->notrun[a] = 0;
			continue;
		}
		if (m->notrun[a] <= 0) {
			m->notrun[a] = now;
			continue;
		}
		if (now - m->notrun[a] > MSCHED_PENDING_START_S) {
			warn("%s did not start on %s within %.0f s: freezing the server", info.name,
			     sched_node_name(m->cell, info.server), MSCHED_PENDING_START_S);
			sched_app_set_unschedule(m->cell, a, true);
			set_state(m, info.server, SCHED_FROZEN, now);
			m->notrun[a] = 0;
		}
	}
	return 0;
}

/* ------------------------------------------------------------------ pass */

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
		r = load_full(m, now, err);
		if (r < 0)
			return r;
		reloaded = true;
		m->w[W_EVENTS].dirty = true;
	}
	for (int round = 0; round < 3; round++) {
		if (m->w[W_EVENTS].dirty || !m->w[W_EVENTS].armed) {
			r = process_events(m, now);
			if (r < 0)
				return error_set(err, ERR_TEMP, -r, "processing /events: %s", store_strerror(r));
		}
		if (m->w[W_SERVERS].dirty)
			m->need_reload = true;
		if (m->need_reload) {
			r = load_full(m, now, err);
			if (r < 0)
				return r;
			reloaded = true;
		}
		if (m->w[W_BLACK].dirty && (r = sync_blackouts(m, now)) < 0)
			return error_set(err, ERR_TEMP, -r, "blackouts: %s", store_strerror(r));
		if (m->w[W_SCHED].dirty && (r = sync_scheduled(m)) < 0)
			return error_set(err, ERR_TEMP, -r, "listing /scheduled: %s", store_strerror(r));
		r = sync_presence(m, now);
		if (r < 0)
			return error_set(err, ERR_TEMP, -r, "presence: %s", store_strerror(r));
		if (!m->need_reload)
			break;
	}
	if (m->need_check || now >= m->next_check) {
		m->need_check = false;
		m->next_check = now + MSCHED_CHECK_INTERVAL_S;
		r = check_pending_start(m, now);
		if (r < 0)
			warn("pending-start check: %s", store_strerror(r));
	}
	if (now >= m->next_tick) {
		m->next_tick = now + MSCHED_TICK_INTERVAL_S;
		for (int p = 0; p < sched_partition_count(m->cell); p++)
			sched_partition_tick(m->cell, p, now);
	}
	if (now >= m->next_reboot_check) {
		if (m->next_reboot_check > 0)
			check_reboots(m, now);
		m->next_reboot_check = now + MSCHED_REBOOT_CHECK_INTERVAL_S;
	}
	if (!m->o.no_compact && now >= m->next_compact) {
		struct error cerr = ERROR_INIT;

		m->next_compact = now + MSCHED_COMPACT_INTERVAL_S;
		if (trace_compact(m->store, now, MSCHED_COMPACT_EXPIRE_S, &cerr) < 0) {
			warn("trace retention: %s", cerr.msg);
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
		    batch_add(&b, STORE_OP_DELETE, strdup_printf("/placement/%s/%s", c->before, c->name), NULL, i) < 0)
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
				    strdup_printf("/placement/%s/%s", c->after, c->name), d, i) < 0)
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
			unschedule_once(m, c->app, c->name, NULL);
	}
	r = write_stats(m);
	if (r < 0)
		warn("writing /scheduled-stats: %s", store_strerror(r));
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

void msched_request_reload(struct msched *m)
{
	m->need_reload = true;
}

void msched_request_check(struct msched *m)
{
	m->need_check = true;
}

void msched_check_reboots(struct msched *m, double now)
{
	if (m->cell)
		check_reboots(m, now);
}

struct sched_cell *msched_cell(struct msched *m)
{
	return m->cell;
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
	asg_clear(m);
	strv_free(m->traits);
	free(m->vanished);
	free(m->present);
	free(m->notrun);
	free(m->last_stats);
	strv_free(m->unreadable);
	free(m);
}
