/* sched-loader.c: store -> scheduler model (Treadmill's loader.load_model). */
#include <fnmatch.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../basic/json.h"
#include "../basic/util.h"
#include "../cellns/cellns.h"
#include "sched-loader.h"

#define UNLIMITED ((int64_t)1 << 50)

struct loader {
	struct store *s;
	struct sched_cell *c;
	FILE *warn;
	char **traits; /* trait names, code of traits[i] = 2^(i+1) */
	struct sched_assignment *asg;
	size_t nasg;
};

static json_t *parse_json(struct loader *l, const char *path, const char *data)
{
	json_t *j;

	if (!data || !*data)
		return NULL;
	j = json_loads(data, JSON_DECODE_ANY, NULL);
	if (!j)
		fprintf(l->warn, "%s: not JSON, ignored\n", path);
	return j;
}

/* Read many nodes in batches (one round trip per batch on ZooKeeper):
 * paths[i] = prefix/names[i]; fn(l, i, path, data) for each, data NULL when
 * the node is gone. */
#define LOAD_BATCH 4096

static int get_batched(struct loader *l, const char *prefix, char *const *names,
		       void (*fn)(struct loader *l, size_t i, const char *path, const char *data, void *ud), void *ud)
{
	size_t n = 0;

	while (names && names[n])
		n++;
	for (size_t at = 0; at < n; at += LOAD_BATCH) {
		size_t k = MIN((size_t)LOAD_BATCH, n - at);
		_cleanup_free_ char **data = calloc(k, sizeof(char *));
		int r = data ? store_get_many_in(l->s, prefix, names + at, k, data, NULL, NULL) : -ENOMEM;

		if (r < 0)
			return r;
		for (size_t i = 0; i < k; i++) {
			_cleanup_free_ char *path = strdup_printf("%s/%s", prefix, names[at + i]);

			fn(l, at + i, path ? path : prefix, data[i], ud);
			free(data[i]);
		}
	}
	return 0;
}

/* The cell's scheduler mode from /scheduler {"mode": "compatible"|"improved"}
 * (absent: improved, the default for new cells). */
static enum sched_mode sched_load_mode(struct store *s)
{
	_cleanup_free_ char *v = NULL;

	if (cellns_scheduler_mode(s, &v) == 0 && v && (!strcmp(v, "compatible") || !strcmp(v, "compat")))
		return SCHED_MODE_COMPAT;
	return SCHED_MODE_IMPROVED;
}

/* Treadmill's traits.encode: add_new gives unknown names the next bit;
 * use_invalid maps them to bit 1 (no server has it); otherwise dropped. */
uint64_t sched_loader_traits(char ***names, const json_t *list, bool add_new, bool use_invalid)
{
	uint64_t bits = 0;
	size_t i;
	json_t *v;

	if (!json_is_array(list))
		return 0;
	json_array_foreach(list, i, v) {
		const char *name = json_string_value(v);
		size_t k;

		if (!name)
			continue;
		for (k = 0; *names && (*names)[k]; k++)
			if (!strcmp((*names)[k], name))
				break;
		if (!*names || !(*names)[k]) {
			if (add_new && k < 62 && strv_extend(names, name) == 0) {
				bits |= 1ull << (k + 1);
			} else if (use_invalid) {
				bits |= 1;
			}
			continue;
		}
		bits |= 1ull << (k + 1);
	}
	return bits;
}

/* memory/disk "1G" or MB numbers, cpu "150%" or numbers: treadle's units. */
static int sched_loader_resources(const json_t *o, int64_t missing, int64_t ret[3])
{
	static const char *const keys[3] = { "memory", "cpu", "disk" };

	for (int d = 0; d < 3; d++) {
		const json_t *v = o ? json_object_get(o, keys[d]) : NULL;
		uint64_t u;

		ret[d] = missing;
		if (!v || json_is_null(v))
			continue;
		if (json_is_number(v)) {
			if (json_number_value(v) < 0)
				return -EINVAL;
			ret[d] = (int64_t)ceil(json_number_value(v));
			continue;
		}
		if (!json_is_string(v))
			return -EINVAL;
		if (d == 1) {
			double pct;
			int r = parse_cpu(json_string_value(v), 0, &pct);

			if (r < 0)
				return r == -ENOMEM ? r : -EINVAL;
			ret[d] = (int64_t)pct;
		} else {
			if (parse_size_mib(json_string_value(v), SIZE_MIB_ROUND_UP, &u) < 0)
				return -EINVAL;
			ret[d] = (int64_t)u;
		}
	}
	return 0;
}

static int add_bucket(struct loader *l, int parent, const char *name, const struct cellns_bucket *b)
{
	return sched_bucket_add(l->c, parent, name, b->level, b->traits);
}

static int load_buckets(struct loader *l)
{
	_cleanup_strv_free_ char **top = NULL, **all = NULL;
	bool progress = true;

	cellns_list(l->s, CELLNS_CELL, &top, NULL, NULL);
	cellns_list(l->s, CELLNS_BUCKETS, &all, NULL, NULL);
	for (size_t i = 0; top && top[i]; i++) {
		_cleanup_(cellns_bucket_clear) struct cellns_bucket b;

		(void)cellns_bucket_get(l->s, top[i], &b); /* missing or not JSON: no level, no traits */
		if (add_bucket(l, SCHED_ROOT, top[i], &b) < 0)
			fprintf(l->warn, "%s/%s: cannot add bucket\n", cellns_dir(CELLNS_CELL), top[i]);
	}
	while (progress) {
		progress = false;
		for (size_t i = 0; all && all[i]; i++) {
			_cleanup_(cellns_bucket_clear) struct cellns_bucket b = { 0 };
			int pid;

			if (sched_node_find(l->c, all[i]) >= 0)
				continue;
			(void)cellns_bucket_get(l->s, all[i], &b);
			pid = b.parent ? sched_node_find(l->c, b.parent) : -1;
			if (pid >= 0 && !sched_node_is_server(l->c, pid) && add_bucket(l, pid, all[i], &b) >= 0)
				progress = true;
		}
	}
	return 0;
}

static int load_servers(struct loader *l, double now)
{
	_cleanup_strv_free_ char **names = NULL, **present = NULL, **black = NULL;

	cellns_list(l->s, CELLNS_SERVERS, &names, NULL, NULL);
	cellns_list(l->s, CELLNS_SERVER_PRESENCE, &present, NULL, NULL);
	cellns_list(l->s, CELLNS_BLACKEDOUT_SERVERS, &black, NULL, NULL);
	for (size_t i = 0; names && names[i]; i++) {
		_cleanup_(cellns_server_clear) struct cellns_server srv;
		json_t *j = cellns_server_get(l->s, names[i], &srv) == 0 ? srv.json : NULL;
		const char *parent = srv.parent, *part = srv.partition;
		int64_t cap[3];
		int pid = parent ? sched_node_find(l->c, parent) : -1;
		int s;

		if (sched_loader_resources(j, UNLIMITED, cap) < 0) {
			fprintf(l->warn, "%s/%s: bad capacity, server ignored\n", cellns_dir(CELLNS_SERVERS), names[i]);
			continue;
		}
		if (pid < 0 || sched_node_is_server(l->c, pid))
			pid = SCHED_ROOT;
		s = sched_server_add(l->c, pid, names[i], cap,
				     sched_loader_traits(&l->traits, json_object_get(j, "traits"), true, false), part,
				     !isnan(srv.up_since) ? srv.up_since : now, 0);
		if (s < 0)
			fprintf(l->warn, "%s/%s: cannot add server\n", cellns_dir(CELLNS_SERVERS), names[i]);
		else if (strv_contains(black, names[i])) {
			/* blacked out: down whatever its presence says, as the master has it; the reason
			 * (a JSON string) is for explanations */
			_cleanup_free_ char *reason = NULL, *why = NULL;
			const char *rs = cellns_blackout_server_reason(l->s, names[i], &reason) == 0 ? reason : "";

			why = strdup_printf("blacked out%s%s", *rs ? ": " : "", rs);
			sched_server_set_state(l->c, s, SCHED_DOWN, now);
			if (why)
				sched_server_set_down_reason(l->c, s, why);
		} else if (!strv_contains(present, names[i]))
			sched_server_set_state(l->c, s, SCHED_DOWN, now);
	}
	return 0;
}

static int load_allocations(struct loader *l)
{
	struct cellns_allocation *v = NULL;
	_cleanup_free_ int *ids = NULL;
	size_t n = 0;

	if (cellns_allocations_get(l->s, &v, &n) < 0 || !n)
		return 0;
	ids = malloc(n * sizeof(*ids));
	if (!ids) {
		cellns_allocations_free(v, n);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const struct cellns_allocation *e = &v[i];
		int64_t res[3];
		double resd[3];
		int p, alloc;

		ids[i] = -1;
		if (!e->name || sched_loader_resources(e->json, 0, res) < 0) {
			fprintf(l->warn, "%s[%zu]: bad entry, ignored\n", cellns_dir(CELLNS_ALLOCATIONS), i);
			continue;
		}
		p = sched_partition_get(l->c, e->partition ? e->partition : "_default");
		alloc = p >= 0 ? sched_alloc_get_path(l->c, p, e->name) : -1;
		if (alloc < 0) {
			fprintf(l->warn, "%s[%zu]: cannot create %s\n", cellns_dir(CELLNS_ALLOCATIONS), i, e->name);
			continue;
		}
		for (int d = 0; d < 3; d++)
			resd[d] = (double)res[d];
		sched_alloc_update(l->c, alloc, resd, e->rank, e->rank_adjustment, e->max_utilization);
		sched_alloc_set_traits(l->c, alloc,
				       sched_loader_traits(&l->traits, json_object_get(e->json, "traits"), false, false));
		ids[i] = alloc;
	}
	/* assignments of the entries taken, resolved to their allocation */
	if (sched_assignments_parse(v, n, &l->asg, &l->nasg) == 0)
		for (size_t i = 0; i < l->nasg; i++)
			l->asg[i].id = ids[l->asg[i].entry];
	cellns_allocations_free(v, n);
	return 0;
}

static int load_identity_groups(struct loader *l)
{
	_cleanup_strv_free_ char **names = NULL;

	cellns_list(l->s, CELLNS_IDENTITY_GROUPS, &names, NULL, NULL);
	for (size_t i = 0; names && names[i]; i++) {
		int count;

		if (cellns_identity_group_count(l->s, names[i], &count) == 0 && count >= 0)
			sched_identity_group_set(l->c, names[i], count);
	}
	return 0;
}

static void load_app(struct loader *l, size_t i, const char *p, const char *data, void *ud)
{
	char **names = ud;
	_cleanup_json_ json_t *j = parse_json(l, p, data);
	struct sched_limit lim[SCHED_LEVELS_MAX];
	struct sched_app_spec spec;
	int64_t demand[3];
	int alloc;

	if (!data) /* gone meanwhile, or unreadable (a corrupt node: the master reports it once) */
		return;
	if (sched_loader_app_spec(names[i], j, demand, lim, &spec) < 0) { /* [1,2,3] is JSON, not a manifest */
		fprintf(l->warn, "%s: bad manifest, app ignored\n", p);
		return;
	}
	alloc = sched_assignment_match(l->c, l->asg, l->nasg, names[i], j, &spec.priority);
	spec.traits = sched_loader_traits(&l->traits, json_object_get(j, "traits"), false, true);
	if (alloc < 0 || sched_app_add(l->c, alloc, &spec) < 0)
		fprintf(l->warn, "%s: cannot add app\n", p);
}

static int load_apps(struct loader *l)
{
	_cleanup_strv_free_ char **names = NULL;

	cellns_list(l->s, CELLNS_SCHEDULED, &names, NULL, NULL);
	return get_batched(l, cellns_dir(CELLNS_SCHEDULED), names, load_app, names);
}

struct restore_ctx {
	char **apps;
	int server;
};

static void restore_one(struct loader *l, size_t k, const char *ap, const char *data, void *ud)
{
	struct restore_ctx *rc = ud;
	struct cellns_placement p = CELLNS_PLACEMENT_INIT;
	int a = sched_app_find(l->c, rc->apps[k]);

	if (!data)
		return;
	(void)cellns_placement_parse(data, &p); /* not a record: restored without expiry and identity */
	if (a >= 0 && sched_app_restore(l->c, a, rc->server, p.expires, p.identity) < 0)
		fprintf(l->warn, "%s: cannot restore (no room or placed twice)\n", ap);
}

static int load_placements(struct loader *l)
{
	_cleanup_strv_free_ char **servers = NULL;

	cellns_list(l->s, CELLNS_PLACEMENT, &servers, NULL, NULL);
	for (size_t i = 0; servers && servers[i]; i++) {
		_cleanup_free_ char *sp = cellns_path(CELLNS_PLACEMENT, servers[i]);
		_cleanup_strv_free_ char **apps = NULL;
		int s = sched_node_find(l->c, servers[i]);

		if (!sp || s < 0 || !sched_node_is_server(l->c, s))
			continue;
		cellns_placement_list(l->s, servers[i], &apps, NULL, NULL);
		{
			struct restore_ctx rc = { apps, s };

			(void)get_batched(l, sp, apps, restore_one, &rc);
		}
	}
	return 0;
}

int sched_load_store(struct store *s, double now, struct sched_cell **ret, char **ret_warnings, struct error *err)
{
	struct loader l = { .s = s };
	_cleanup_sched_cell_ struct sched_cell *c = NULL;
	_cleanup_strv_free_ char **parts = NULL;
	char *wbuf = NULL;
	size_t wlen = 0;
	size_t i;
	int r = 0;

	c = sched_cell_new("cell", 3, sched_load_mode(s));
	l.warn = open_memstream(&wbuf, &wlen);
	if (!c || !l.warn) {
		if (l.warn)
			fclose(l.warn);
		free(wbuf);
		return error_set(err, ERR_TEMP, ENOMEM, "out of memory");
	}
	l.c = c;
	(void)cellns_traits_get(s, &l.traits);
	sched_partition_get(c, "_default");
	cellns_list(s, CELLNS_PARTITIONS, &parts, NULL, NULL);
	for (i = 0; parts && parts[i]; i++)
		sched_partition_get(c, parts[i]);
	load_buckets(&l);
	load_servers(&l, now);
	load_allocations(&l);
	load_identity_groups(&l);
	load_apps(&l);
	load_placements(&l);
	fclose(l.warn);
	strv_free(l.traits);
	sched_assignments_free(l.asg, l.nasg);
	if (ret_warnings)
		*ret_warnings = wbuf;
	else
		free(wbuf);
	*ret = TAKE_PTR(c);
	return r;
}

int sched_assignments_parse(const struct cellns_allocation *allocs, size_t n_allocs, struct sched_assignment **ret,
			    size_t *ret_n)
{
	struct sched_assignment *v = NULL;
	size_t n = 0;
	int r = 0;

	for (size_t i = 0; i < n_allocs && r == 0; i++) {
		const struct cellns_allocation *e = &allocs[i];

		if (!e->name)
			continue;
		for (size_t k = 0; k < e->n_assignments; k++) {
			struct sched_assignment *g = realloc(v, (n + 1) * sizeof(*v));

			if (!g) {
				r = -ENOMEM;
				break;
			}
			v = g;
			g = &v[n++];
			*g = (struct sched_assignment){
				.pattern = strdup_printf("%s[#][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]",
							 e->assignments[k].pattern),
				.partition = strdup(e->partition ? e->partition : "_default"),
				.alloc = strdup(e->name),
				.entry = i,
				.priority = e->assignments[k].priority,
				.id = SCHED_ASG_BY_NAME,
			};
			if (!g->pattern || !g->partition || !g->alloc) {
				r = -ENOMEM;
				break;
			}
		}
	}
	if (r < 0) {
		sched_assignments_free(v, n); /* the entry that failed included: it is whole or NULLs */
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

void sched_assignments_free(struct sched_assignment *a, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(a[i].pattern);
		free(a[i].partition);
		free(a[i].alloc);
	}
	free(a);
}

int sched_assignment_match(struct sched_cell *c, const struct sched_assignment *a, size_t n, const char *name,
			   const json_t *j, int *ret_prio)
{
	const json_t *v = json_object_get(j, "priority");
	int alloc = -1, prio = 1;

	for (size_t i = 0; i < n; i++) {
		if (a[i].id == -1 || fnmatch(a[i].pattern, name, 0) != 0)
			continue;
		if (a[i].id >= 0) {
			alloc = a[i].id;
		} else {
			int p = sched_partition_get(c, a[i].partition);

			alloc = p >= 0 ? sched_alloc_get_path(c, p, a[i].alloc) : -1;
		}
		prio = a[i].priority;
		break;
	}
	if (alloc < 0) {
		_cleanup_free_ char *proid = strndup(name, strcspn(name, "."));
		_cleanup_free_ char *path = strdup_printf("_default/%s", proid ? proid : "_default");

		alloc = path ? sched_alloc_get_path(c, sched_partition_get(c, "_default"), path) : -ENOMEM;
	}
	if (json_is_integer(v) && json_integer_value(v) != -1)
		prio = (int)json_integer_value(v);
	*ret_prio = prio;
	return alloc;
}

/* A duration as manifests carry it: seconds, or "<N>[SMHD]". */
static double duration_of(const json_t *v, double dflt)
{
	uint64_t secs;

	if (json_is_number(v))
		return json_number_value(v);
	if (json_is_string(v) && parse_duration(json_string_value(v), &secs) == 0)
		return (double)secs;
	return dflt;
}

int sched_loader_app_spec(const char *name, const json_t *j, int64_t demand[3], struct sched_limit *lim,
			  struct sched_app_spec *ret)
{
	const char *h = strrchr(name, '#'), *k;
	int64_t seq;
	json_t *lv;

	if (!json_is_object(j) || sched_loader_resources(j, 0, demand) < 0)
		return -EINVAL;
	*ret = (struct sched_app_spec){ .name = name, .demand = demand, .limits = lim, .priority = 1 };
	ret->affinity = json_string_value(json_object_get(j, "affinity"));
	json_object_foreach((json_t *)json_object_get(j, "affinity_limits"), k, lv)
		if (ret->n_limits < SCHED_LEVELS_MAX && json_is_integer(lv) && json_integer_value(lv) >= 0)
			lim[ret->n_limits++] = (struct sched_limit){ k, (int32_t)json_integer_value(lv) };
	ret->identity_group = json_string_value(json_object_get(j, "identity_group"));
	ret->schedule_once = json_is_true(json_object_get(j, "schedule_once"));
	ret->data_retention_timeout = duration_of(json_object_get(j, "data_retention_timeout"), -1);
	ret->lease = duration_of(json_object_get(j, "lease"), 0);
	ret->global_order = h && safe_atoi64(h + 1, &seq) == 0 ? seq : 0;
	return 0;
}
