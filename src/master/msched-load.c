/* msched-load.c: loading the model: apps from /scheduled, the full (re)load
 * and Treadmill's restore_placements, reboot schedules.
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

/* ------------------------------------------------------------- app loading */

void msched_asg_clear(struct msched *m)
{
	sched_assignments_free(m->asg, m->nasg);
	m->asg = NULL;
	m->nasg = 0;
}

/* The assignments of /allocations and /traits, for apps created later
 * (the parser of sched-loader.c; allocations resolved by name when used). */
static void load_assignments(struct msched *m)
{
	struct cellns_allocation *v = NULL;
	size_t n = 0;

	msched_asg_clear(m);
	strv_free(m->traits);
	m->traits = NULL;
	(void)cellns_traits_get(m->store, &m->traits);
	if (cellns_allocations_get(m->store, &v, &n) == 0)
		(void)sched_assignments_parse(v, n, &m->asg, &m->nasg);
	cellns_allocations_free(v, n);
}

static bool msched_blacklisted(struct msched *m, const char *name)
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
int msched_load_app_data(struct msched *m, const char *name, const char *data, const char **ret_why)
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
	} else {
		msched_count_app(m, name, +1);
	}
	if (a >= 0 && msched_blacklisted(m, name))
		sched_app_set_blacklisted(m->cell, a, true);
	return r;
}

int msched_load_app(struct msched *m, const char *name)
{
	_cleanup_free_ char *p = cellns_path(CELLNS_SCHEDULED, name), *data = NULL;
	int r;

	if (!p)
		return -ENOMEM;
	r = store_get(m->store, p, &data, NULL, NULL, NULL, NULL);
	if (r < 0)
		return r;
	return msched_load_app_data(m, name, data, NULL); /* an invalid one is aborted by sync_scheduled */
}

void msched_load_app_blacklist(struct msched *m)
{
	json_t *j = NULL;

	json_decref(m->app_blacklist);
	m->app_blacklist = cellns_blackout_apps_get(m->store, &j) == 0 ? j : json_object();
	for (int a = sched_app_next(m->cell, -1); a >= 0; a = sched_app_next(m->cell, a)) {
		struct sched_app_info info;
		bool b;

		sched_app_info(m->cell, a, &info);
		b = msched_blacklisted(m, info.name);
		if (b != info.blacklisted)
			sched_app_set_blacklisted(m->cell, a, b);
	}
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
		_cleanup_json_ json_t *j = NULL;
		json_t *v;
		char buf[256] = "";
		size_t len = 0;
		const char *k;

		if (label)
			(void)cellns_partition_get(m->store, label, &j);
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
		if (len >= sizeof(buf) || sched_partition_set_reboot_schedule(m->cell, p, buf, now) < 0)
			sched_partition_set_reboot_schedule(m->cell, p, "", now);
	}
	for (int s = sched_server_next(m->cell, -1); s >= 0; s = sched_server_next(m->cell, s)) {
		struct sched_node_info ni;
		double ts = 0;

		if (sched_node_info(m->cell, s, &ni) < 0)
			continue;
		if (cellns_presence_valid_until(m->store, ni.name, &ts) < 0)
			ts = 0;
		sched_partition_add_server(m->cell, sched_partition_get(m->cell, ni.partition ? ni.partition : "_default"),
					   s, ts);
	}
}

/* Treadmill's check_reboot: /reboots/<server> for servers past their
 * valid_until (only those without apps: a placed lease never outlives it). */
void msched_check_reboots(struct msched *m, double now)
{
	for (int s = sched_server_next(m->cell, -1); s >= 0; s = sched_server_next(m->cell, s)) {
		struct sched_node_info ni;

		if (sched_node_info(m->cell, s, &ni) < 0 || ni.valid_until == 0 || now <= ni.valid_until || ni.napps)
			continue;
		if (cellns_reboot_requested(m->store, ni.name) == -ENOENT) {
			msched_warn("server %s is past its valid_until: requesting a reboot", ni.name);
			(void)cellns_reboot_request(m->store, ni.name);
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

	if (cellns_list(m->store, CELLNS_PLACEMENT, &servers, NULL, NULL) < 0)
		return 0;
	for (char **sv = servers; sv && *sv; sv++) {
		_cleanup_free_ char *sp = cellns_path(CELLNS_PLACEMENT, *sv);
		_cleanup_strv_free_ char **apps = NULL;
		enum cellns_server_state pstate = CELLNS_STATE_UNKNOWN;
		struct store_stat pst;
		double ptime = -1, since = NAN;
		int s = sched_node_find(m->cell, *sv);

		if (!sp)
			return -ENOMEM;
		if (cellns_presence_exists(m->store, *sv, &pst, NULL, NULL) == 0)
			ptime = (double)pst.ctime_ms / 1000.0;
		(void)cellns_server_state_get(m->store, *sv, &pstate, &since);
		if (s >= 0 && sched_node_is_server(m->cell, s)) {
			if (pstate == CELLNS_STATE_FROZEN)
				sched_server_set_state(m->cell, s, SCHED_FROZEN, !isnan(since) ? since : now);
			else if (pstate == CELLNS_STATE_DOWN && ptime < 0 && !isnan(since)) {
				sched_server_set_state(m->cell, s, SCHED_UP, now);
				sched_server_set_state(m->cell, s, SCHED_DOWN, since);
			} else if (pstate == CELLNS_STATE_UP && ptime < 0) {
				/* it vanished while no master ran: the grace starts now */
				sched_server_set_state(m->cell, s, SCHED_UP, now);
			}
		}
		if (cellns_placement_list(m->store, *sv, &apps, NULL, NULL) < 0)
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
			_cleanup_free_ char *path = cellns_path2(CELLNS_PLACEMENT, *sv, *ap);
			struct store_stat st = stats[k];

			if (!path)
				return -ENOMEM;
			if (a < 0 || s < 0) {
				msched_warn("removing stale placement %s", path);
				(void)msched_delete_node(m, path);
				if (a < 0) {
					/* deleted while no master ran: Treadmill's remove_app */
					msched_post(m, *ap, TRACE_DELETED, "");
					msched_write_finished(m, *ap, *sv, NULL);
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
				(void)msched_delete_node(m, path);
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
				(void)msched_delete_node(m, path);
				msched_unschedule_once(m, a, *ap, *sv);
				continue;
			}
			if (sched_app_put(m->cell, a, s, now) < 0) {
				/* does not fit any more: pending, its node goes */
				(void)msched_delete_node(m, path);
			} else {
				/* new expiry: rewrite in the first pass */
				struct sched_app_info ni;

				struct cellns_placement old = CELLNS_PLACEMENT_INIT;

				sched_app_info(m->cell, a, &ni);
				(void)cellns_placement_parse(d.v[k], &old); /* its group's count, kept with its identity */
				struct cellns_placement p = { .expires = ni.expiry, .identity = ni.identity,
							      .identity_count = ni.identity >= 0 && ni.identity == old.identity
										? old.identity_count
										: -1 };

				(void)cellns_placement_put(m->store, *sv, *ap, &p);
			}
		}
	}
	for (size_t i = 0; i < ndups; i++) {
		struct sched_app_info info;

		if (sched_app_info(m->cell, dups[i], &info) < 0)
			continue;
		msched_warn("%s placed on several servers: unplacing it", info.name);
		for (size_t k = 0; k < nseen; k++)
			if (seen[k].app == dups[i])
				(void)msched_delete_placement(m, sched_node_name(m->cell, seen[k].server), info.name);
		sched_app_unplace(m->cell, dups[i]);
	}
	return 0;
}

int msched_load_full(struct msched *m, double now, struct error *err)
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
		r = msched_list_watched(m, i, &tmp);
		if (r < 0)
			return error_set(err, ERR_TEMP, -r, "listing %s: %s", cellns_dir(msched_wdir[i]), store_strerror(r));
	}
	r = sched_load_store(m->store, now, &c, &warnings, err);
	if (r < 0)
		return r;
	if (warnings && *warnings)
		fprintf(stderr, "treadle: master: loading the cell: %s", warnings);
	sched_cell_free(m->cell);
	m->cell = c;
	m->need_reload = false;
	json_decref(m->proid_counts);
	m->proid_counts = NULL; /* recounted by the pass's write_stats */
	m->next_grace = INFINITY;
	m->presence_check = false;
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
	msched_load_app_blacklist(m);
	r = restore(m, now);
	if (r < 0)
		return error_set(err, ERR_TEMP, -r, "restoring placements: %s", store_strerror(r));
	return 0;
}
