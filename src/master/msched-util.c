/* msched-util.c: what the scheduler loop's files share: the watched lists,
 * warnings, trace and server events, server states, the store deletes and the
 * /finished record of the leader (the bottom of master/'s files: msched.c,
 * msched-load.c and msched-sync.c call it, it calls none of them). */
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../basic/json.h"
#include "../basic/util.h"
#include "../cellns/cellns.h"
#include "../sched/sched.h"
#include "../store/store.h"
#include "../trace/trace.h"
#include "master-internal.h"

const enum cellns_dir msched_wdir[_W_MAX] = { CELLNS_SCHEDULED, CELLNS_SERVER_PRESENCE, CELLNS_SERVERS,
					      CELLNS_EVENTS, CELLNS_BLACKEDOUT_SERVERS };

/* ------------------------------------------------------------- helpers */

static void on_watch(struct store *s _unused_, enum store_event ev _unused_, const char *path _unused_, void *ud)
{
	struct mwatch *w = ud;

	w->armed = false;
	w->dirty = true;
	if (w->m->o.wake)
		*w->m->o.wake = true;
}

/* List children of a watched path, re-arming its watch; sorted (the store
 * lists children sorted by strcmp: store.h). */
int msched_list_watched(struct msched *m, int which, char ***ret)
{
	struct mwatch *w = &m->w[which];
	int r;

	w->dirty = false;
	r = cellns_list_ensure(m->store, msched_wdir[which], ret, w->armed ? NULL : on_watch, w);
	if (r < 0)
		return r;
	w->armed = true;
	return 0;
}

bool msched_sorted_contains(char *const *l, size_t n, const char *s)
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

void msched_warn(const char *fmt, ...)
{
	va_list ap;

	fputs("treadle: master: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* A trace event of this master, now. */
struct trace_event msched_master_event(struct msched *m, const char *inst, enum trace_type type, const char *data)
{
	return (struct trace_event){
		.timestamp = now_realtime(),
		.source = (char *)m->o.hostname,
		.instanceid = (char *)inst,
		.type = type,
		.data = (char *)(data ? data : ""),
	};
}

void msched_post(struct msched *m, const char *inst, enum trace_type type, const char *data)
{
	struct trace_event ev = msched_master_event(m, inst, type, data);
	int r = trace_publish(m->store, &ev, m->o.hostname);

	if (r < 0)
		msched_warn("posting %s event of %s: %s", trace_type_name(type), inst, store_strerror(r));
}

/* A server event (cellns_server_trace_post). */
void msched_post_server(struct msched *m, const char *server, const char *type, const char *data)
{
	int r = cellns_server_trace_post(m->store, server, now_realtime(), m->o.hostname, type, data);

	if (r < 0)
		msched_warn("posting %s event of %s: %s", type, server, store_strerror(r));
}

double *msched_grow(double **arr, size_t *n, size_t want)
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

/* The server's state record {"state", "since"} if it differs; server_state event. */
void msched_record_state(struct msched *m, const char *server, enum sched_state st, double since)
{
	enum cellns_server_state cs = st == SCHED_UP ? CELLNS_STATE_UP : st == SCHED_DOWN ? CELLNS_STATE_DOWN
											    : CELLNS_STATE_FROZEN;
	enum cellns_server_state old = CELLNS_STATE_UNKNOWN;
	const char *name = cellns_server_state_name(cs);
	int r;

	if (cellns_server_state_get(m->store, server, &old, NULL) == 0 && old == cs)
		return;
	r = cellns_server_state_put(m->store, server, cs, since);
	if (r < 0)
		msched_warn("writing the state of %s: %s", server, store_strerror(r));
	msched_post_server(m, server, "server_state", name);
	msched_warn("server %s is %s", server, name);
}

void msched_set_state(struct msched *m, int srv, enum sched_state st, double since)
{
	enum sched_state old;
	double osince;

	if (sched_server_get_state(m->cell, srv, &old, &osince) < 0)
		return;
	if (old == st)
		return;
	sched_server_set_state(m->cell, srv, st, since);
	if (st != SCHED_DOWN && ((size_t)srv >= m->n_present || m->present[srv] <= 0))
		m->presence_check = true; /* no presence: its grace starts at the next sync */
	msched_record_state(m, sched_node_name(m->cell, srv), st, since);
}

/* ------------------------------------------------------- writing results */

int msched_delete_node(struct msched *m, const char *path)
{
	int r = store_delete(m->store, path, -1);

	return r == -ENOENT ? 0 : r;
}

int msched_delete_placement(struct msched *m, const char *server, const char *inst)
{
	_cleanup_free_ char *path = cellns_path2(CELLNS_PLACEMENT, server, inst);

	return path ? msched_delete_node(m, path) : -ENOMEM;
}

void msched_write_finished(struct msched *m, const char *inst, const char *host, const char *data)
{
	int r = cellns_finished_terminated(m->store, inst, now_realtime(), host, data);

	if (r < 0)
		msched_warn("writing the finished record of %s: %s", inst, store_strerror(r));
}

/* A schedule_once app that lost its server: terminated, and unscheduled. */
void msched_unschedule_once(struct msched *m, int a, const char *name, const char *host)
{
	_cleanup_free_ char *n = strdup(name), *p = cellns_path(CELLNS_SCHEDULED, name);

	if (!n || !p)
		return;
	msched_write_finished(m, n, host, "schedule_once");
	(void)msched_delete_node(m, p);
	msched_count_app(m, n, -1);
	sched_app_remove(m->cell, a);
}

/* /scheduled-stats counts by proid (the name up to its first '.'), kept as
 * apps come and go so a pass does not walk the whole model; a full load
 * drops them (NULL) and the pass recounts. */
void msched_count_app(struct msched *m, const char *name, int delta)
{
	char proid[256];
	json_t *v;
	json_int_t n;

	if (!m->proid_counts)
		return;
	snprintf(proid, sizeof(proid), "%.*s", (int)strcspn(name, "."), name);
	v = json_object_get(m->proid_counts, proid);
	n = (v ? json_integer_value(v) : 0) + delta;
	if (n <= 0)
		json_object_del(m->proid_counts, proid);
	else if (v)
		json_integer_set(v, n);
	else if (json_object_set_new(m->proid_counts, proid, json_integer(n)) < 0) {
		json_decref(m->proid_counts); /* out of memory: recount */
		m->proid_counts = NULL;
	}
}

bool msched_is_blackedout(struct msched *m, const char *server)
{
	return msched_sorted_contains(m->blackedout, strv_length(m->blackedout), server);
}
