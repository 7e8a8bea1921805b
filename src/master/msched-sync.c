/* msched-sync.c: following the store between passes: presence, blackouts,
 * /scheduled, /events, and Treadmill's pending-start check.
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

/* --------------------------------------------------------------- syncing */

/* The presence of each server (host or host#seq), with the down grace. */
int msched_sync_presence(struct msched *m, double now)
{
	_cleanup_strv_free_ char **pres = NULL;
	size_t n;
	int r;

	m->presence_check = false;
	m->next_grace = INFINITY;
	r = msched_list_watched(m, W_PRES, &pres);
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

		if (!msched_grow(&m->vanished, &m->n_vanished, (size_t)s + 1) || !msched_grow(&m->present, &m->n_present, (size_t)s + 1))
			return -ENOMEM;
		sched_server_get_state(m->cell, s, &st, &since);
		prev = m->present[s];
		if (msched_sorted_contains(pres, n, name)) {
			m->vanished[s] = 0;
			m->present[s] = 1;
			/* presence (re)appeared: up (Treadmill's adjust_presence; frozen stays) */
			if (prev <= 0 && st == SCHED_DOWN && !msched_is_blackedout(m, name))
				msched_set_state(m, s, SCHED_UP, now);
			continue;
		}
		m->present[s] = -1;
		if (st == SCHED_DOWN)
			continue;
		if (m->vanished[s] <= 0)
			m->vanished[s] = now;
		if (now - m->vanished[s] >= m->o.down_grace) {
			msched_set_state(m, s, SCHED_DOWN, m->vanished[s]);
			m->vanished[s] = 0;
		} else {
			m->next_grace = MIN(m->next_grace, m->vanished[s] + m->o.down_grace);
		}
	}
	return 0;
}

int msched_sync_blackouts(struct msched *m, double now)
{
	_cleanup_strv_free_ char **now_list = NULL;
	char **old = m->blackedout;
	size_t n, on = strv_length(old);
	int r;

	r = msched_list_watched(m, W_BLACK, &now_list);
	if (r < 0)
		return r;
	n = strv_length(now_list);
	for (size_t i = 0; i < n; i++) {
		int s = sched_node_find(m->cell, now_list[i]);

		if (m->black_loaded && !msched_sorted_contains(old, on, now_list[i]))
			msched_post_server(m, now_list[i], "server_blackout", "");
		if (s >= 0 && sched_node_is_server(m->cell, s))
			msched_set_state(m, s, SCHED_DOWN, now);
	}
	for (size_t i = 0; i < on; i++) {
		int s;

		if (msched_sorted_contains(now_list, n, old[i]))
			continue;
		msched_post_server(m, old[i], "server_blackout_cleared", "");
		s = sched_node_find(m->cell, old[i]);
		if (s >= 0 && sched_node_is_server(m->cell, s)) {
			_cleanup_free_ char *pp = cellns_path(CELLNS_SERVER_PRESENCE, old[i]);

			if (pp && store_exists(m->store, pp, NULL, NULL, NULL) == 0)
				msched_set_state(m, s, SCHED_UP, now);
		}
	}
	m->blackedout = TAKE_PTR(now_list);
	m->black_loaded = true;
	strv_free(old);
	return 0;
}

/* An instance vanished from /scheduled: Treadmill's remove_app. */
static void msched_remove_app(struct msched *m, int a)
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
		int r = msched_delete_placement(m, host, name);

		if (r < 0)
			msched_warn("deleting placement of %s: %s", name, store_strerror(r));
	}
	msched_post(m, name, TRACE_DELETED, "");
	msched_write_finished(m, name, host, NULL);
	msched_count_app(m, name, -1);
	sched_app_remove(m->cell, a);
}

/* /scheduled/<name> cannot be a manifest (Treadmill would never have
 * scheduled it): end it with an aborted event naming why, and unschedule it,
 * rather than leave it pending (or placed and ignored) forever. */
static void abort_invalid(struct msched *m, const char *name, const char *why)
{
	_cleanup_free_ char *payload = strdup_printf("invalid manifest: %s", why);
	_cleanup_free_ char *p = cellns_path(CELLNS_SCHEDULED, name);
	struct trace_event ev = msched_master_event(m, name, TRACE_ABORTED, "invalid_manifest");
	int r;

	if (!payload || !p)
		return;
	ev.payload = payload;
	msched_warn("%s: %s: aborted", p, payload);
	r = trace_publish(m->store, &ev, m->o.hostname);
	if (r < 0)
		msched_warn("posting aborted event of %s: %s", name, store_strerror(r));
	else if ((r = msched_delete_node(m, p)) < 0) /* after the event: a crash in between aborts it again */
		msched_warn("unscheduling %s: %s", name, store_strerror(r));
}

/* A /scheduled node that is listed but reads as nothing: gone meanwhile, or
 * unreadable (a corrupt node of the embedded store): reported once, skipped;
 * the rest of the cell goes on.  `treadle store fsck` lists and repairs it. */
static void check_unreadable(struct msched *m, const char *name)
{
	_cleanup_free_ char *p = cellns_path(CELLNS_SCHEDULED, name);
	int r;

	if (!p || strv_contains(m->unreadable, name))
		return;
	r = store_get(m->store, p, NULL, NULL, NULL, NULL, NULL);
	if (r == 0 || r == -ENOENT)
		return;
	msched_warn("%s: unreadable (%s), skipped until repaired", p, store_strerror(r));
	(void)strv_extend(&m->unreadable, name);
}

#define SYNC_BATCH 4096

/* /scheduled changed: its listing diffed with the model (one hash lookup
 * per listed name, no sort: the store lists sorted); apps gone are removed
 * (a walk of the model only when some are), new ones read in batches. */
int msched_sync_scheduled(struct msched *m)
{
	_cleanup_strv_free_ char **names = NULL;
	_cleanup_free_ size_t *fresh_at = NULL;
	size_t n, nfresh = 0, known = 0;
	int r = msched_list_watched(m, W_SCHED, &names);

	if (r < 0)
		return r;
	n = strv_length(names);
	fresh_at = calloc(n + 1, sizeof(*fresh_at));
	if (!fresh_at)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (sched_app_find(m->cell, names[i]) >= 0)
			known++;
		else
			fresh_at[nfresh++] = i;
	}
	/* every model app listed once: none is gone */
	for (int a = known < sched_app_count(m->cell) ? sched_app_next(m->cell, -1) : -1, next; a >= 0; a = next) {
		struct sched_app_info info;

		next = sched_app_next(m->cell, a);
		sched_app_info(m->cell, a, &info);
		if (!msched_sorted_contains(names, n, info.name))
			msched_remove_app(m, a);
	}
	/* forget unreadable nodes that went away (deleted, or moved by fsck) */
	for (size_t u = 0; m->unreadable && m->unreadable[u];) {
		if (msched_sorted_contains(names, n, m->unreadable[u])) {
			u++;
			continue;
		}
		free(m->unreadable[u]);
		memmove(&m->unreadable[u], &m->unreadable[u + 1], (strv_length(m->unreadable + u + 1) + 1) * sizeof(char *));
	}
	/* new apps, read in batches (one round trip each on ZooKeeper) */
	for (size_t i = 0; i < nfresh;) {
		_cleanup_free_ char **fresh = calloc(SYNC_BATCH, sizeof(char *)), **data = calloc(SYNC_BATCH, sizeof(char *));
		size_t k = 0;

		if (!fresh || !data)
			return -ENOMEM;
		for (; i < nfresh && k < SYNC_BATCH; i++)
			fresh[k++] = names[fresh_at[i]]; /* borrowed */
		r = cellns_scheduled_get_many(m->store, fresh, k, data);
		if (r < 0)
			return r;
		for (size_t x = 0; x < k; x++) {
			const char *why = "?";
			int q = msched_load_app_data(m, fresh[x], data[x], &why);

			if (q == -ENOENT)
				check_unreadable(m, fresh[x]);
			else if (q == -EINVAL)
				abort_invalid(m, fresh[x], why);
			else if (q < 0)
				msched_warn("%s/%s: not scheduled (%s)", cellns_dir(CELLNS_SCHEDULED), fresh[x],
					    strerror(-q));
			free(data[x]);
		}
	}
	return 0;
}

/* --------------------------------------------------------------- events */

static int cmp_ev(const void *a, const void *b)
{
	const struct cellns_event *x = a, *y = b;

	if (x->prio != y->prio)
		return x->prio < y->prio ? -1 : 1;
	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return strcmp(x->resource, y->resource);
}

static void event_server_state(struct msched *m, json_t *payload, double now)
{
	const char *srv = json_string_value(json_array_get(payload, 0));
	const char *st = json_string_value(json_array_get(payload, 1));
	json_t *apps = json_array_get(payload, 2), *v;
	int s = srv ? sched_node_find(m->cell, srv) : -1;
	size_t i;

	if (s < 0 || !st || !sched_node_is_server(m->cell, s)) {
		msched_warn("server_state event: bad payload");
		return;
	}
	if (!strcmp(st, "frozen")) {
		json_array_foreach(apps, i, v) {
			int a = json_is_string(v) ? sched_app_find(m->cell, json_string_value(v)) : -1;

			if (a >= 0)
				sched_app_set_unschedule(m->cell, a, true);
		}
		msched_set_state(m, s, SCHED_FROZEN, now);
	} else if (!strcmp(st, "up")) {
		msched_set_state(m, s, SCHED_UP, now);
		m->w[W_PRES].dirty = true; /* gone meanwhile: down again (after the grace) */
	} else if (!strcmp(st, "down")) {
		msched_set_state(m, s, SCHED_DOWN, now);
	}
}

int msched_process_events(struct msched *m, double now)
{
	_cleanup_strv_free_ char **names = NULL;
	_cleanup_free_ struct cellns_event *evs = NULL;
	size_t n, ne = 0;
	int r;

	r = msched_list_watched(m, W_EVENTS, &names);
	if (r < 0)
		return r;
	n = strv_length(names);
	if (!n)
		return 0;
	evs = calloc(n, sizeof(*evs));
	if (!evs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (cellns_event_parse(names[i], &evs[ne]) == 0)
			ne++;
	qsort(evs, ne, sizeof(*evs), cmp_ev);
	for (size_t i = 0; i < ne; i++) {
		_cleanup_json_ json_t *payload = NULL;
		json_t *v;
		const char *res = evs[i].resource;
		size_t k;

		(void)cellns_event_get(m->store, evs[i].name, &payload);
		if (!strcmp(res, "servers") || !strcmp(res, "buckets") || !strcmp(res, "cell") ||
		    !strcmp(res, "allocations") || !strcmp(res, "identity_groups")) {
			m->need_reload = true;
		} else if (!m->need_reload && !strcmp(res, "apps")) {
			json_array_foreach(payload, k, v)
				if (json_is_string(v) && msched_load_app(m, json_string_value(v)) < 0)
					msched_warn("apps event: cannot load %s", json_string_value(v));
		} else if (!m->need_reload && !strcmp(res, "apps_blacklist")) {
			msched_load_app_blacklist(m);
		} else if (!strcmp(res, "server_state")) {
			event_server_state(m, payload, now); /* after a reload too: applied now */
		} else if (!m->need_reload) {
			msched_warn("event %s: unknown resource, ignored", evs[i].name);
		}
	}
	/* Treadmill deletes all children, handled or not. */
	for (size_t i = 0; i < n; i++)
		(void)cellns_event_delete(m->store, names[i]);
	return 0;
}

/* ------------------------------------------------------ pending start */

/* Treadmill's _check_pending_start: an app placed on an up server and not
 * in /running for more than 300 s freezes its server; the app is marked to
 * leave it. */
int msched_check_pending_start(struct msched *m, double now)
{
	_cleanup_strv_free_ char **running = NULL;
	size_t n;
	int r;

	r = cellns_list(m->store, CELLNS_RUNNING, &running, NULL, NULL);
	if (r < 0 && r != -ENOENT)
		return r;
	if (running)
		strv_sort(running);
	n = strv_length(running);
	for (int a = sched_app_next(m->cell, -1); a >= 0; a = sched_app_next(m->cell, a)) {
		struct sched_app_info info;
		enum sched_state st;
		double since;

		if (!msched_grow(&m->notrun, &m->n_notrun, (size_t)a + 1))
			return -ENOMEM;
		sched_app_info(m->cell, a, &info);
		if (info.server < 0 || msched_sorted_contains(running, n, info.name)) {
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
			msched_warn("%s did not start on %s within %.0f s: freezing the server", info.name,
			     sched_node_name(m->cell, info.server), MSCHED_PENDING_START_S);
			sched_app_set_unschedule(m->cell, a, true);
			msched_set_state(m, info.server, SCHED_FROZEN, now);
			m->notrun[a] = 0;
		}
	}
	return 0;
}
