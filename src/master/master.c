/* master.c: leader election, root namespace, store sync and placement writes.
 *
 * One epoll loop: the store fd, a signalfd and one timerfd.  Watch callbacks
 * only mark the model dirty; the loop then runs one "pass" (debounced by
 * MASTER_DEBOUNCE_MS so bursts of submissions batch into one pass, as
 * Treadmill's 2 s scheduler interval does): read the store, let
 * master_place() decide, write the differences.  A pass is level-triggered:
 * everything it needs is re-read from the store, so a restarted master (or a
 * standby taking over) simply runs a pass. */
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>

#include <jansson.h>

#include "../basic/util.h"
#include "../store/store.h"
#include "../trace/trace.h"
#include "master-internal.h"

#define MASTER_DEBOUNCE_MS 20
#define MASTER_RESYNC_MS 30000
#define MASTER_RETRY_MS 1000
#define ELECTION_DIR "/election/master"

static const char *const rootns[] = {
	"/allocations", "/app-groups", "/app-monitors", "/blackedout.apps", "/blackedout.servers", "/buckets",
	"/cell", "/cron-jobs", "/discovery", "/discovery.state", "/election", ELECTION_DIR, "/endpoints",
	"/endpoints/root", "/events", "/finished", "/finished.history", "/identity-groups", "/partitions",
	"/placement", "/reboots", "/running", "/scheduled", "/scheduled-stats", "/scheduler", "/server.presence",
	"/server-trace", "/server-trace.history", "/servers", "/strategies", "/trace", "/trace.history", "/traits",
	"/version", "/version.history", "/version-id",
};

static int create_top(struct store *s, struct error *err)
{
	int r;

	for (size_t i = 0; i < ELEMENTSOF(rootns); i++) {
		r = store_create_p(s, rootns[i]);
		if (r < 0 && r != -EEXIST)
			return error_set(err, ERR_TEMP, -r, "creating %s: %s", rootns[i], store_strerror(r));
	}
	return 0;
}

/* Create up to `budget` of the 512 shards /trace/XXXX and /server-trace/XXXX,
 * continuing at *next (0..512); *next = 512 when all exist. */
static int create_shards(struct store *s, unsigned *next, unsigned budget, struct error *err)
{
	char path[32];
	int r;

	for (; *next < 512 && budget > 0; (*next)++, budget--) {
		snprintf(path, sizeof(path), "%s/%04X", *next < 256 ? "/trace" : "/server-trace", *next % 256);
		r = store_create(s, path, "", 0, STORE_PERSISTENT, NULL);
		if (r < 0 && r != -EEXIST)
			return error_set(err, ERR_TEMP, -r, "creating %s: %s", path, store_strerror(r));
	}
	return 0;
}

int master_create_rootns(struct store *s, struct error *err)
{
	unsigned next = 0;
	int r = create_top(s, err);

	return r < 0 ? r : create_shards(s, &next, 512, err);
}

/* ------------------------------------------------------------------ model */

static void app_free(struct master_app *a)
{
	if (!a)
		return;
	free(a->name);
	free(a->server);
	free(a->why);
	free(a);
}

static void server_free(struct master_server *s)
{
	if (!s)
		return;
	free(s->name);
	free(s);
}

struct master_server *master_find_server(const struct master *m, const char *name)
{
	for (size_t i = 0; i < m->n_servers; i++)
		if (strcmp(m->servers[i]->name, name) == 0)
			return m->servers[i];
	return NULL;
}

/* Binary search in the sorted prefix apps[0..n). */
static struct master_app *find_app_in(const struct master *m, size_t n, const char *name)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(m->apps[mid]->name, name);

		if (c == 0)
			return m->apps[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

struct master_app *master_find_app(const struct master *m, const char *name)
{
	return find_app_in(m, m->n_apps, name);
}

static int cmp_app(const void *a, const void *b)
{
	return strcmp((*(struct master_app *const *)a)->name, (*(struct master_app *const *)b)->name);
}

/* ----------------------------------------------------------------- daemon */

struct watch {
	const char *path;
	bool armed;
	struct mstate *ms;
};

enum { W_SCHEDULED, W_PRESENCE, W_SERVERS, W_PLACEMENT, _W_MAX };

struct mstate {
	struct master m;
	struct store *store;
	int epfd, sigfd, timerfd;
	char *election_node;	/* full path of our lock node */
	char *election_watched; /* predecessor we watch */
	bool election_dirty;
	bool leader;
	bool dirty;
	bool rootns_done;	/* top-level nodes created */
	unsigned shards_next;	/* trace shards created so far (512 = all) */
	struct watch w[_W_MAX];
	bool pass_due;		/* debounce timer armed for a pass */
	bool pass_requested;	/* the next timer expiry runs a pass */
	double grace_deadline;	/* realtime when a down server's grace ends, 0 = none */
	char *last_stats;	/* last /scheduled-stats written */
};

static void on_watch(struct store *s _unused_, enum store_event ev _unused_, const char *path _unused_, void *ud)
{
	struct watch *w = ud;

	w->armed = false;
	w->ms->dirty = true;
}

static void on_election(struct store *s _unused_, enum store_event ev _unused_, const char *path _unused_,
			void *ud)
{
	struct mstate *ms = ud;

	ms->election_dirty = true;
}

static int arm_timer(struct mstate *ms, uint64_t ms_from_now)
{
	struct itimerspec its = { 0 };

	if (ms_from_now == 0)
		ms_from_now = 1;
	its.it_value.tv_sec = (time_t)(ms_from_now / 1000);
	its.it_value.tv_nsec = (long)(ms_from_now % 1000) * 1000000L;
	return timerfd_settime(ms->timerfd, 0, &its, NULL) < 0 ? negerrno() : 0;
}

static void post(struct mstate *ms, const char *inst, enum trace_type type, const char *data)
{
	struct trace_event ev = {
		.timestamp = now_realtime(),
		.source = ms->m.hostname,
		.instanceid = (char *)inst,
		.type = type,
		.data = (char *)(data ? data : ""),
	};
	int r = trace_publish(ms->store, &ev, ms->m.hostname);

	if (r < 0)
		fprintf(stderr, "treadle: master: posting %s event of %s: %s\n", trace_type_name(type), inst,
			store_strerror(r));
}

/* Sequence number of "<anything><digits>": the trailing digits. */
static int64_t trailing_seq(const char *name)
{
	const char *p = name + strlen(name);
	uint64_t v;

	while (p > name && p[-1] >= '0' && p[-1] <= '9')
		p--;
	if (!*p || safe_atou64(p, &v) < 0 || v > INT64_MAX)
		return -1;
	return (int64_t)v;
}

/* --------------------------------------------------------------- election */

static int election_join(struct mstate *ms, struct error *err)
{
	_cleanup_free_ char *id = strdup_printf("%s.%d", ms->m.hostname, (int)getpid());
	int r;

	if (!id)
		return error_sys(err, ENOMEM, "election");
	r = store_create_p(ms->store, ELECTION_DIR);
	if (r < 0 && r != -EEXIST)
		return error_set(err, ERR_TEMP, -r, "creating %s: %s", ELECTION_DIR, store_strerror(r));
	r = store_create(ms->store, ELECTION_DIR "/lock-", id, strlen(id), STORE_EPHEMERAL | STORE_SEQUENTIAL,
			 &ms->election_node);
	if (r < 0)
		return error_set(err, ERR_TEMP, -r, "joining the election: %s", store_strerror(r));
	ms->election_dirty = true;
	return 0;
}

/* Re-evaluate the election: lowest sequence wins; else watch the predecessor. */
static int election_check(struct mstate *ms, struct error *err)
{
	_cleanup_strv_free_ char **kids = NULL;
	const char *mine = strrchr(ms->election_node, '/') + 1;
	int64_t my_seq = trailing_seq(mine), best = -1;
	const char *pred = NULL;
	bool found = false;
	int r;

	ms->election_dirty = false;
	for (;;) {
		r = store_children(ms->store, ELECTION_DIR, &kids, NULL, NULL);
		if (r < 0)
			return error_set(err, ERR_TEMP, -r, "listing %s: %s", ELECTION_DIR, store_strerror(r));
		found = false;
		pred = NULL;
		best = -1;
		for (char **k = kids; k && *k; k++) {
			int64_t seq = trailing_seq(*k);

			if (strcmp(*k, mine) == 0) {
				found = true;
				continue;
			}
			if (seq >= 0 && seq < my_seq && seq > best) {
				best = seq;
				pred = *k;
			}
		}
		if (!found)
			return error_set(err, ERR_TEMP, 0, "lost the election node %s (session ended)",
					 ms->election_node);
		if (!pred) {
			if (!ms->leader)
				fprintf(stderr, "treadle: master: %s leading (%s)\n", ms->m.hostname, mine);
			ms->leader = true;
			ms->dirty = true;
			return 0;
		}
		free(ms->election_watched);
		ms->election_watched = strdup_printf(ELECTION_DIR "/%s", pred);
		if (!ms->election_watched)
			return error_sys(err, ENOMEM, "election");
		r = store_exists(ms->store, ms->election_watched, NULL, on_election, ms);
		if (r == 0) {
			fprintf(stderr, "treadle: master: standing by behind %s\n", pred);
			return 0;
		}
		if (r != -ENOENT)
			return error_set(err, ERR_TEMP, -r, "watching %s: %s", ms->election_watched,
					 store_strerror(r));
		strv_free(kids);
		kids = NULL; /* predecessor vanished meanwhile: look again */
	}
}

/* ------------------------------------------------------------------- sync */

static int load_app(struct mstate *ms, const char *name, struct master_app **ret, struct error *err)
{
	_cleanup_free_ char *path = strdup_printf("/scheduled/%s", name), *data = NULL;
	struct master_app *a;
	json_t *j, *v;
	int r;

	*ret = NULL;
	if (!path)
		return error_sys(err, ENOMEM, "loading %s", name);
	r = store_get(ms->store, path, &data, NULL, NULL, NULL, NULL);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return error_set(err, ERR_TEMP, -r, "reading %s: %s", path, store_strerror(r));
	a = calloc(1, sizeof(*a));
	if (!a || !(a->name = strdup(name))) {
		app_free(a);
		return error_sys(err, ENOMEM, "loading %s", name);
	}
	a->priority = 1;
	a->seq = (uint64_t)MAX(trailing_seq(name), 0);
	j = json_loads(data, 0, NULL);
	if (!j || master_parse_resources(j, 0, a->demand) < 0)
		fprintf(stderr, "treadle: master: %s: bad resources in manifest, placing with none\n", name);
	if (j) {
		v = json_object_get(j, "priority");
		if (json_is_integer(v))
			a->priority = (int)json_integer_value(v);
		v = json_object_get(j, "lease");
		if (json_is_number(v))
			a->lease = json_number_value(v);
		else if (json_is_string(v)) {
			uint64_t secs;

			if (parse_duration(json_string_value(v), &secs) == 0)
				a->lease = (double)secs;
		}
		json_decref(j);
	}
	*ret = a;
	return 0;
}

static int write_finished_terminated(struct mstate *ms, const char *inst, const char *host)
{
	_cleanup_free_ char *path = strdup_printf("/finished/%s", inst), *s = NULL;
	json_t *j;
	int r;

	if (!path)
		return -ENOMEM;
	if (store_exists(ms->store, path, NULL, NULL, NULL) == 0)
		return 0;
	j = json_pack("{s:s, s:f, s:s?, s:n}", "state", "terminated", "when", now_realtime(), "host", host,
		      "data");
	if (!j)
		return -ENOMEM;
	s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
	json_decref(j);
	if (!s)
		return -ENOMEM;
	r = store_create(ms->store, path, s, strlen(s), STORE_PERSISTENT, NULL);
	return r == -EEXIST ? 0 : r;
}

static int delete_placement(struct mstate *ms, const char *server, const char *inst)
{
	_cleanup_free_ char *path = strdup_printf("/placement/%s/%s", server, inst);
	int r;

	if (!path)
		return -ENOMEM;
	r = store_delete(ms->store, path, -1);
	return r == -ENOENT ? 0 : r;
}

/* An instance vanished from /scheduled: Treadmill's remove_app. */
static void remove_app(struct mstate *ms, struct master_app *a)
{
	int r;

	if (a->server) {
		r = delete_placement(ms, a->server, a->name);
		if (r < 0)
			fprintf(stderr, "treadle: master: deleting placement of %s: %s\n", a->name,
				store_strerror(r));
	}
	post(ms, a->name, TRACE_DELETED, "");
	r = write_finished_terminated(ms, a->name, a->server);
	if (r < 0)
		fprintf(stderr, "treadle: master: writing /finished/%s: %s\n", a->name, store_strerror(r));
}

static int sync_apps(struct mstate *ms, struct error *err)
{
	struct watch *w = &ms->w[W_SCHEDULED];
	_cleanup_strv_free_ char **names = NULL;
	struct master *m = &ms->m;
	size_t n = 0, old_n;
	int r;

	r = store_children(ms->store, "/scheduled", &names, w->armed ? NULL : on_watch, w);
	if (r < 0)
		return error_set(err, ERR_TEMP, -r, "listing /scheduled: %s", store_strerror(r));
	w->armed = true;

	for (size_t i = 0; i < m->n_apps; i++)
		m->apps[i]->seen = false;
	old_n = m->n_apps; /* sorted; new apps are appended, then all sorted once */
	for (char **k = names; k && *k; k++) {
		struct master_app *a = find_app_in(m, old_n, *k);

		if (a) {
			a->seen = true;
			continue;
		}
		r = load_app(ms, *k, &a, err);
		if (r < 0) {
			qsort(m->apps, m->n_apps, sizeof(*m->apps), cmp_app);
			return r;
		}
		if (!a)
			continue;
		a->seen = true;
		if (m->n_apps % 64 == 0) {
			struct master_app **t = realloc(m->apps, (m->n_apps + 64) * sizeof(*t));
			if (!t) {
				app_free(a);
				qsort(m->apps, m->n_apps, sizeof(*m->apps), cmp_app);
				return error_sys(err, ENOMEM, "loading apps");
			}
			m->apps = t;
		}
		m->apps[m->n_apps++] = a;
	}
	qsort(m->apps, m->n_apps, sizeof(*m->apps), cmp_app);
	for (size_t i = 0; i < m->n_apps; i++) {
		if (m->apps[i]->seen) {
			m->apps[n++] = m->apps[i];
			continue;
		}
		remove_app(ms, m->apps[i]);
		app_free(m->apps[i]);
	}
	m->n_apps = n;
	return 0;
}

/* Presence node names are "<host>" or "<host>#<seq>". */
static char *presence_host(const char *name)
{
	const char *h = strchr(name, '#');

	return h ? strndup(name, (size_t)(h - name)) : strdup(name);
}

static int add_server(struct master *m, const char *name, struct master_server **ret)
{
	struct master_server *s = calloc(1, sizeof(*s)), **t;

	if (!s || !(s->name = strdup(name))) {
		server_free(s);
		return -ENOMEM;
	}
	for (int i = 0; i < MASTER_DIMS; i++)
		s->capacity[i] = -1;
	t = realloc(m->servers, (m->n_servers + 1) * sizeof(*t));
	if (!t) {
		server_free(s);
		return -ENOMEM;
	}
	m->servers = t;
	m->servers[m->n_servers++] = s;
	*ret = s;
	return 0;
}

static int record_server_state(struct mstate *ms, struct master_server *srv, struct error *err)
{
	_cleanup_free_ char *path = strdup_printf("/placement/%s", srv->name), *data = NULL, *s = NULL;
	const char *want = srv->up ? "up" : "down";
	json_t *j = NULL;
	int r;

	if (!path)
		return error_sys(err, ENOMEM, "server state");
	r = store_get(ms->store, path, &data, NULL, NULL, NULL, NULL);
	if (r < 0 && r != -ENOENT)
		return error_set(err, ERR_TEMP, -r, "reading %s: %s", path, store_strerror(r));
	if (r == 0 && data && *data) {
		j = json_loads(data, 0, NULL);
		const char *st = json_string_value(json_object_get(j, "state"));
		bool same = st && strcmp(st, want) == 0;
		json_t *since = json_object_get(j, "since");

		/* A restarted master learns when the server went down. */
		if (same && !srv->up && srv->down_since == 0 && json_is_number(since))
			srv->down_since = json_number_value(since);
		json_decref(j);
		if (same)
			return 0;
	}
	if (r == -ENOENT && !srv->up)
		return 0; /* never seen up: nothing to record */
	srv->down_since = srv->up ? 0 : now_realtime();
	j = json_pack("{s:s, s:f}", "state", want, "since", srv->up ? now_realtime() : srv->down_since);
	s = j ? json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
	json_decref(j);
	if (!s)
		return error_sys(err, ENOMEM, "server state");
	if (r == -ENOENT)
		r = store_create(ms->store, path, s, strlen(s), STORE_PERSISTENT, NULL);
	else
		r = store_set(ms->store, path, s, strlen(s), -1, NULL);
	if (r < 0)
		return error_set(err, ERR_TEMP, -r, "writing %s: %s", path, store_strerror(r));
	fprintf(stderr, "treadle: master: server %s is %s\n", srv->name, want);
	return 0;
}

static int sync_servers(struct mstate *ms, struct error *err)
{
	struct watch *wp = &ms->w[W_PRESENCE], *ws = &ms->w[W_SERVERS];
	_cleanup_strv_free_ char **pres = NULL, **srvs = NULL;
	struct master *m = &ms->m;
	size_t n = 0;
	int r;

	r = store_children(ms->store, "/server.presence", &pres, wp->armed ? NULL : on_watch, wp);
	if (r < 0)
		return error_set(err, ERR_TEMP, -r, "listing /server.presence: %s", store_strerror(r));
	wp->armed = true;
	r = store_children(ms->store, "/servers", &srvs, ws->armed ? NULL : on_watch, ws);
	if (r < 0)
		return error_set(err, ERR_TEMP, -r, "listing /servers: %s", store_strerror(r));
	ws->armed = true;

	for (size_t i = 0; i < m->n_servers; i++) {
		m->servers[i]->seen = false;
		m->servers[i]->up = false;
	}
	/* A server is known from /servers/<host> or from its presence. */
	for (int pass = 0; pass < 2; pass++) {
		for (char **k = pass ? pres : srvs; k && *k; k++) {
			_cleanup_free_ char *host = pass ? presence_host(*k) : strdup(*k);
			struct master_server *s;

			if (!host)
				return error_sys(err, ENOMEM, "servers");
			s = master_find_server(m, host);
			if (!s && add_server(m, host, &s) < 0)
				return error_sys(err, ENOMEM, "servers");
			s->seen = true;
			if (pass) {
				s->up = true;
				s->down_since = 0;
			}
		}
	}
	/* Capacity from /servers/<host>: re-read each pass (small). */
	for (size_t i = 0; i < m->n_servers; i++) {
		struct master_server *s = m->servers[i];
		_cleanup_free_ char *path = NULL, *data = NULL;
		json_t *j;

		if (!s->seen)
			continue;
		path = strdup_printf("/servers/%s", s->name);
		if (!path)
			return error_sys(err, ENOMEM, "servers");
		r = store_get(ms->store, path, &data, NULL, NULL, NULL, NULL);
		if (r == -ENOENT)
			continue;
		if (r < 0)
			return error_set(err, ERR_TEMP, -r, "reading %s: %s", path, store_strerror(r));
		j = json_loads(data, 0, NULL);
		if (!j || master_parse_resources(j, -1, s->capacity) < 0)
			fprintf(stderr, "treadle: master: %s: bad capacity, treating as unlimited\n", path);
		json_decref(j);
	}
	for (size_t i = 0; i < m->n_servers; i++) {
		struct master_server *s = m->servers[i];

		r = record_server_state(ms, s, err);
		if (r < 0)
			return r;
		if (s->seen)
			m->servers[n++] = s;
		else
			server_free(s);
	}
	m->n_servers = n;
	return 0;
}

/* Read /placement/<server>/<instance> into app->server: the store is the truth. */
static int sync_placements(struct mstate *ms, struct error *err)
{
	struct watch *w = &ms->w[W_PLACEMENT];
	_cleanup_strv_free_ char **servers = NULL;
	struct master *m = &ms->m;
	int r;

	r = store_children(ms->store, "/placement", &servers, w->armed ? NULL : on_watch, w);
	if (r < 0)
		return error_set(err, ERR_TEMP, -r, "listing /placement: %s", store_strerror(r));
	w->armed = true;
	for (size_t i = 0; i < m->n_apps; i++) {
		free(m->apps[i]->server);
		m->apps[i]->server = NULL;
	}
	for (char **srv = servers; srv && *srv; srv++) {
		_cleanup_strv_free_ char **insts = NULL;
		_cleanup_free_ char *path = strdup_printf("/placement/%s", *srv);

		if (!path)
			return error_sys(err, ENOMEM, "placements");
		r = store_children(ms->store, path, &insts, NULL, NULL);
		if (r == -ENOENT)
			continue;
		if (r < 0)
			return error_set(err, ERR_TEMP, -r, "listing %s: %s", path, store_strerror(r));
		for (char **k = insts; k && *k; k++) {
			struct master_app *a = master_find_app(m, *k);
			struct master_server *s;

			if (a && !a->server) {
				a->server = strdup(*srv);
				if (!a->server)
					return error_sys(err, ENOMEM, "placements");
				continue;
			}
			/* Not scheduled (deleted while no master ran) or a duplicate:
			 * keep the first copy on an up server, drop the rest. */
			if (a) {
				s = master_find_server(m, a->server);
				if (!(s && s->up)) {
					/* keep this copy instead */
					r = delete_placement(ms, a->server, a->name);
					free(a->server);
					a->server = strdup(*srv);
					if (!a->server)
						return error_sys(err, ENOMEM, "placements");
					continue;
				}
			}
			fprintf(stderr, "treadle: master: removing stale placement %s/%s\n", *srv, *k);
			r = delete_placement(ms, *srv, *k);
			if (r < 0)
				return error_set(err, ERR_TEMP, -r, "deleting placement %s/%s: %s", *srv, *k,
						 store_strerror(r));
			if (!a)
				post(ms, *k, TRACE_DELETED, "");
		}
	}
	return 0;
}

static int write_placement(struct mstate *ms, const struct master_app *a, struct error *err)
{
	_cleanup_free_ char *path = strdup_printf("/placement/%s/%s", a->server, a->name), *s = NULL;
	_cleanup_free_ char *parent = strdup_printf("/placement/%s", a->server);
	json_t *j;
	int r;

	if (!path || !parent)
		return error_sys(err, ENOMEM, "placing %s", a->name);
	j = json_pack("{s:f, s:n, s:n}", "expires", a->expires, "identity", "identity_count");
	s = j ? json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
	json_decref(j);
	if (!s)
		return error_sys(err, ENOMEM, "placing %s", a->name);
	r = store_create(ms->store, path, s, strlen(s), STORE_PERSISTENT, NULL);
	if (r == -ENOENT) {
		r = store_create_p(ms->store, parent);
		if (r < 0 && r != -EEXIST)
			return error_set(err, ERR_TEMP, -r, "creating %s: %s", parent, store_strerror(r));
		r = store_create(ms->store, path, s, strlen(s), STORE_PERSISTENT, NULL);
	}
	if (r == -EEXIST)
		r = store_set(ms->store, path, s, strlen(s), -1, NULL);
	if (r < 0)
		return error_set(err, ERR_TEMP, -r, "writing %s: %s", path, store_strerror(r));
	return 0;
}

static int write_stats(struct mstate *ms)
{
	json_t *j = json_object();
	_cleanup_free_ char *s = NULL;
	int r;

	if (!j)
		return -ENOMEM;
	for (size_t i = 0; i < ms->m.n_apps; i++) {
		const char *name = ms->m.apps[i]->name, *dot = strchr(name, '.');
		_cleanup_free_ char *proid = strndup(name, dot ? (size_t)(dot - name) : strlen(name));
		json_t *v;

		if (!proid)
			break;
		v = json_object_get(j, proid);
		json_object_set_new(j, proid, json_integer(v ? json_integer_value(v) + 1 : 1));
	}
	s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
	json_decref(j);
	if (!s)
		return -ENOMEM;
	if (ms->last_stats && strcmp(ms->last_stats, s) == 0)
		return 0;
	r = store_set(ms->store, "/scheduled-stats", s, strlen(s), -1, NULL);
	if (r == -ENOENT)
		r = store_create(ms->store, "/scheduled-stats", s, strlen(s), STORE_PERSISTENT, NULL);
	if (r >= 0) {
		free(ms->last_stats);
		ms->last_stats = TAKE_PTR(s);
	}
	return r;
}

/* One full pass: Treadmill's reschedule(). */
static int master_pass(struct mstate *ms, struct error *err)
{
	struct master *m = &ms->m;
	_cleanup_free_ char **before = NULL;
	double now = now_realtime();
	int r;

	ms->dirty = false;
	if (!ms->rootns_done) {
		/* Top-level nodes now; the 512 trace shards a few at a time
		 * between passes (trace_publish creates a missing shard itself),
		 * so a fresh cell places its first instances at once. */
		r = create_top(ms->store, err);
		if (r < 0)
			return r;
		if (store_exists(ms->store, "/server-trace/00FF", NULL, NULL, NULL) == 0)
			ms->shards_next = 512;
		ms->rootns_done = true;
	}
	r = sync_servers(ms, err);
	if (r >= 0)
		r = sync_apps(ms, err);
	if (r >= 0)
		r = sync_placements(ms, err);
	if (r < 0)
		return r;

	before = calloc(m->n_apps ? m->n_apps : 1, sizeof(*before));
	if (!before)
		return error_sys(err, ENOMEM, "scheduling");
	for (size_t i = 0; i < m->n_apps; i++) {
		free(m->apps[i]->why);
		m->apps[i]->why = NULL;
		before[i] = m->apps[i]->server ? strdup(m->apps[i]->server) : NULL;
		if (m->apps[i]->server && !before[i])
			goto oom;
	}
	r = master_place(m, now, err);
	if (r < 0)
		goto out;

	/* First delete every moved placement, so that an interrupted pass never
	 * leaves an instance on two servers; then create the new ones. */
	for (size_t i = 0; i < m->n_apps; i++) {
		struct master_app *a = m->apps[i];

		if (before[i] && (!a->server || strcmp(before[i], a->server) != 0)) {
			r = delete_placement(ms, before[i], a->name);
			if (r < 0) {
				error_set(err, ERR_TEMP, -r, "deleting placement %s/%s: %s", before[i], a->name,
					  store_strerror(r));
				goto out;
			}
		}
	}
	for (size_t i = 0; i < m->n_apps; i++) {
		struct master_app *a = m->apps[i];
		_cleanup_free_ char *data = NULL;
		const char *why;

		if (!before[i] && !a->server)
			continue;
		if (before[i] && a->server && strcmp(before[i], a->server) == 0)
			continue;
		why = a->why ? a->why : before[i] ? "evicted" : "";
		if (a->server) {
			r = write_placement(ms, a, err);
			if (r < 0)
				goto out;
			data = strdup_printf("%s:%s", a->server, why);
			if (!data)
				goto oom;
			post(ms, a->name, TRACE_SCHEDULED, data);
		} else {
			post(ms, a->name, TRACE_PENDING, why);
		}
	}
	r = write_stats(ms);
	if (r < 0)
		fprintf(stderr, "treadle: master: writing /scheduled-stats: %s\n", store_strerror(r));
	/* Wake up when a down server's grace ends, to move its instances. */
	ms->grace_deadline = 0;
	for (size_t i = 0; i < m->n_servers; i++) {
		const struct master_server *srv = m->servers[i];
		double end = srv->down_since + m->down_grace;

		if (srv->up || srv->down_since <= 0 || end <= now)
			continue;
		for (size_t k = 0; k < m->n_apps; k++)
			if (m->apps[k]->server && strcmp(m->apps[k]->server, srv->name) == 0) {
				if (!ms->grace_deadline || end < ms->grace_deadline)
					ms->grace_deadline = end;
				break;
			}
	}
	r = 0;
out:
	for (size_t i = 0; i < m->n_apps; i++)
		free(before[i]);
	return r;
oom:
	r = error_sys(err, ENOMEM, "scheduling");
	goto out;
}

/* ------------------------------------------------------------------- loop */

static void mstate_release(struct mstate *ms)
{
	for (size_t i = 0; i < ms->m.n_apps; i++)
		app_free(ms->m.apps[i]);
	free(ms->m.apps);
	for (size_t i = 0; i < ms->m.n_servers; i++)
		server_free(ms->m.servers[i]);
	free(ms->m.servers);
	free(ms->m.hostname);
	free(ms->m.cell);
	free(ms->election_node);
	free(ms->election_watched);
	free(ms->last_stats);
	store_close(ms->store);
	if (ms->epfd >= 0)
		close(ms->epfd);
	if (ms->sigfd >= 0)
		close(ms->sigfd);
	if (ms->timerfd >= 0)
		close(ms->timerfd);
}

int master_run(const struct master_options *opts, struct error *err)
{
	struct mstate ms = { .epfd = -1, .sigfd = -1, .timerfd = -1 };
	struct epoll_event ev = { .events = EPOLLIN };
	char host[HOST_NAME_MAX + 1] = "";
	sigset_t mask;
	int r;

	static const char *const wpaths[_W_MAX] = { "/scheduled", "/server.presence", "/servers", "/placement" };
	for (int i = 0; i < _W_MAX; i++)
		ms.w[i] = (struct watch){ .path = wpaths[i], .ms = &ms };

	if (!opts->hostname && gethostname(host, sizeof(host) - 1) < 0) {
		r = error_sys(err, errno, "gethostname");
		goto out;
	}
	ms.m.hostname = strdup(opts->hostname ? opts->hostname : host);
	ms.m.cell = opts->cell ? strdup(opts->cell) : NULL;
	ms.m.down_grace = opts->server_down_grace >= 0 ? opts->server_down_grace : MASTER_DOWN_GRACE_DEFAULT;
	if (!ms.m.hostname || (opts->cell && !ms.m.cell)) {
		r = error_sys(err, ENOMEM, "master");
		goto out;
	}

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	ms.sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	ms.timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	ms.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (ms.sigfd < 0 || ms.timerfd < 0 || ms.epfd < 0) {
		r = error_sys(err, errno, "master: event loop");
		goto out;
	}

	r = store_open(opts->store_url, NULL, &ms.store, err);
	if (r < 0) {
		error_prefix(err, "master");
		goto out;
	}
	ms.m.store = ms.store;
	r = election_join(&ms, err);
	if (r < 0)
		goto out;

	ev.data.fd = ms.sigfd;
	epoll_ctl(ms.epfd, EPOLL_CTL_ADD, ms.sigfd, &ev);
	ev.data.fd = ms.timerfd;
	epoll_ctl(ms.epfd, EPOLL_CTL_ADD, ms.timerfd, &ev);
	ev.data.fd = store_fd(ms.store);
	if (epoll_ctl(ms.epfd, EPOLL_CTL_ADD, ev.data.fd, &ev) < 0) {
		r = error_sys(err, errno, "master: epoll");
		goto out;
	}
	arm_timer(&ms, MASTER_RESYNC_MS);

	for (;;) {
		struct epoll_event evs[4];
		bool timer_fired = false;
		int n;

		if (ms.election_dirty) {
			r = election_check(&ms, err);
			if (r < 0)
				goto out;
		}
		if (ms.leader && ms.dirty && !ms.pass_due) {
			arm_timer(&ms, MASTER_DEBOUNCE_MS);
			ms.pass_due = true;
			ms.pass_requested = true;
		}

		n = epoll_wait(ms.epfd, evs, ELEMENTSOF(evs), -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = error_sys(err, errno, "master: epoll_wait");
			goto out;
		}
		for (int i = 0; i < n; i++) {
			if (evs[i].data.fd == ms.sigfd) {
				struct signalfd_siginfo si;

				if (read(ms.sigfd, &si, sizeof(si)) == sizeof(si)) {
					fprintf(stderr, "treadle: master: signal %u, exiting\n", si.ssi_signo);
					r = 0;
					goto out;
				}
			} else if (evs[i].data.fd == ms.timerfd) {
				uint64_t x;

				if (read(ms.timerfd, &x, sizeof(x)) == sizeof(x)) {
					timer_fired = true;
					ms.pass_due = false;
				}
			}
		}
		r = store_dispatch(ms.store);
		if (r < 0 && r != -EAGAIN) {
			r = error_set(err, ERR_TEMP, -r, "master: store: %s", store_strerror(r));
			goto out;
		}
		if (store_state(ms.store) == STORE_EXPIRED) {
			r = error_set(err, ERR_TEMP, 0, "master: store session expired");
			goto out;
		}
		if (timer_fired && ms.leader && (ms.dirty || ms.pass_requested || ms.shards_next >= 512)) {
			struct error perr = ERROR_INIT;

			/* dirty flags raised during the pass re-arm the debounce timer */
			ms.dirty = false;
			ms.pass_requested = false;
			r = master_pass(&ms, &perr);
			if (r < 0) {
				fprintf(stderr, "treadle: master: %s (retrying)\n", perr.msg);
				error_clear(&perr);
				arm_timer(&ms, MASTER_RETRY_MS);
				ms.pass_due = true;
				ms.pass_requested = true;
			} else if (ms.shards_next < 512) {
				arm_timer(&ms, 1);
			} else if (!ms.dirty && ms.grace_deadline > 0) {
				double left = ms.grace_deadline - now_realtime();

				arm_timer(&ms, left > 0 ? (uint64_t)(left * 1000) + 10 : 1);
				ms.pass_requested = true;
			} else if (!ms.dirty) {
				arm_timer(&ms, MASTER_RESYNC_MS);
			}
		} else if (timer_fired && ms.leader) {
			struct error serr = ERROR_INIT;

			if (create_shards(ms.store, &ms.shards_next, 16, &serr) < 0) {
				fprintf(stderr, "treadle: master: %s (retrying)\n", serr.msg);
				error_clear(&serr);
			}
			arm_timer(&ms, ms.shards_next < 512 ? 1 : MASTER_RESYNC_MS);
		} else if (timer_fired) {
			arm_timer(&ms, MASTER_RESYNC_MS);
		}
	}
out:
	mstate_release(&ms);
	return r < 0 ? r : 0;
}
