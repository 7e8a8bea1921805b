/* sched-loader.c: store -> scheduler model (Treadmill's loader.load_model). */
#include <fnmatch.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../basic/json.h"
#include "../basic/util.h"
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

static json_t *get_json(struct loader *l, const char *path)
{
	_cleanup_free_ char *data = NULL;

	if (store_get(l->s, path, &data, NULL, NULL, NULL, NULL) < 0)
		return NULL;
	return parse_json(l, path, data);
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

enum sched_mode sched_load_mode(struct store *s)
{
	_cleanup_free_ char *data = NULL;
	enum sched_mode m = SCHED_MODE_IMPROVED;
	json_t *j;

	if (store_get(s, "/scheduler", &data, NULL, NULL, NULL, NULL) < 0 || !data)
		return m;
	j = json_loads(data, 0, NULL);
	if (j && json_is_string(json_object_get(j, "mode"))) {
		const char *v = json_string_value(json_object_get(j, "mode"));

		if (!strcmp(v, "compatible") || !strcmp(v, "compat"))
			m = SCHED_MODE_COMPAT;
	}
	json_decref(j);
	return m;
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
int sched_loader_resources(const json_t *o, int64_t missing, int64_t ret[3])
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

/* The JSON of <dir>/<name> (NULL: absent or not JSON). */
static json_t *get_json_at(struct loader *l, const char *dir, const char *name)
{
	_cleanup_free_ char *p = strdup_printf("%s/%s", dir, name);

	return p ? get_json(l, p) : NULL;
}

static int add_bucket(struct loader *l, int parent, const char *name, const json_t *j)
{
	const json_t *t = json_object_get(j, "traits");

	return sched_bucket_add(l->c, parent, name, json_string_value(json_object_get(j, "level")),
				json_is_integer(t) ? (uint64_t)json_integer_value(t) : 0);
}

static int load_buckets(struct loader *l)
{
	_cleanup_strv_free_ char **top = NULL, **all = NULL;
	bool progress = true;

	store_children(l->s, "/cell", &top, NULL, NULL);
	store_children(l->s, "/buckets", &all, NULL, NULL);
	for (size_t i = 0; top && top[i]; i++) {
		_cleanup_json_ json_t *j = get_json_at(l, "/buckets", top[i]);

		if (add_bucket(l, SCHED_ROOT, top[i], j) < 0)
			fprintf(l->warn, "/cell/%s: cannot add bucket\n", top[i]);
	}
	while (progress) {
		progress = false;
		for (size_t i = 0; all && all[i]; i++) {
			_cleanup_json_ json_t *j = NULL;
			const char *parent;
			int pid;

			if (sched_node_find(l->c, all[i]) >= 0)
				continue;
			j = get_json_at(l, "/buckets", all[i]);
			parent = json_string_value(json_object_get(j, "parent"));
			pid = parent ? sched_node_find(l->c, parent) : -1;
			if (pid >= 0 && !sched_node_is_server(l->c, pid) && add_bucket(l, pid, all[i], j) >= 0)
				progress = true;
		}
	}
	return 0;
}

static int load_servers(struct loader *l, double now)
{
	_cleanup_strv_free_ char **names = NULL, **present = NULL, **black = NULL;

	store_children(l->s, "/servers", &names, NULL, NULL);
	store_children(l->s, "/server.presence", &present, NULL, NULL);
	store_children(l->s, "/blackedout.servers", &black, NULL, NULL);
	for (size_t i = 0; names && names[i]; i++) {
		_cleanup_json_ json_t *j = get_json_at(l, "/servers", names[i]);
		const char *parent = json_string_value(json_object_get(j, "parent"));
		const char *part = json_string_value(json_object_get(j, "partition"));
		json_t *up = json_object_get(j, "up_since");
		int64_t cap[3];
		int pid = parent ? sched_node_find(l->c, parent) : -1;
		int s;

		if (sched_loader_resources(j, UNLIMITED, cap) < 0) {
			fprintf(l->warn, "/servers/%s: bad capacity, server ignored\n", names[i]);
			continue;
		}
		if (pid < 0 || sched_node_is_server(l->c, pid))
			pid = SCHED_ROOT;
		s = sched_server_add(l->c, pid, names[i], cap,
				     sched_loader_traits(&l->traits, json_object_get(j, "traits"), true, false), part,
				     json_is_number(up) ? json_number_value(up) : now, 0);
		if (s < 0)
			fprintf(l->warn, "/servers/%s: cannot add server\n", names[i]);
		else if (strv_contains(black, names[i])) {
			/* blacked out: down whatever its presence says, as the master has it; the reason
			 * (a JSON string) is for explanations */
			_cleanup_free_ char *bp = strdup_printf("/blackedout.servers/%s", names[i]), *data = NULL;
			_cleanup_free_ char *why = NULL;
			_cleanup_json_ json_t *rj = NULL;
			const char *rs = "";

			if (bp && store_get(l->s, bp, &data, NULL, NULL, NULL, NULL) == 0 && data) {
				rj = json_loads(data, JSON_DECODE_ANY, NULL);
				rs = json_is_string(rj) ? json_string_value(rj) : data;
			}
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
	_cleanup_json_ json_t *list = get_json(l, "/allocations");
	_cleanup_free_ int *ids = NULL;
	json_t *o;
	size_t i;

	if (!json_is_array(list))
		return 0;
	ids = malloc(MAX(json_array_size(list), 1u) * sizeof(*ids));
	if (!ids)
		return -ENOMEM;
	json_array_foreach(list, i, o) {
		ids[i] = -1;
		const char *name = json_string_value(json_object_get(o, "name"));
		const char *part = json_string_value(json_object_get(o, "partition"));
		json_t *rank = json_object_get(o, "rank"), *adj = json_object_get(o, "rank_adjustment");
		json_t *mu = json_object_get(o, "max_utilization");
		int64_t res[3];
		double resd[3];
		int p, alloc;

		if (!name || sched_loader_resources(o, 0, res) < 0) {
			fprintf(l->warn, "/allocations[%zu]: bad entry, ignored\n", i);
			continue;
		}
		p = sched_partition_get(l->c, part ? part : "_default");
		alloc = p >= 0 ? sched_alloc_get_path(l->c, p, name) : -1;
		if (alloc < 0) {
			fprintf(l->warn, "/allocations[%zu]: cannot create %s\n", i, name);
			continue;
		}
		for (int d = 0; d < 3; d++)
			resd[d] = (double)res[d];
		sched_alloc_update(l->c, alloc, resd, json_is_integer(rank) ? json_integer_value(rank) : -1,
				   json_is_integer(adj) ? json_integer_value(adj) : 0,
				   json_is_number(mu) ? json_number_value(mu) : 0);
		sched_alloc_set_traits(l->c, alloc, sched_loader_traits(&l->traits, json_object_get(o, "traits"), false, false));
		ids[i] = alloc;
	}
	/* assignments of the entries taken, resolved to their allocation */
	if (sched_assignments_parse(list, &l->asg, &l->nasg) == 0)
		for (i = 0; i < l->nasg; i++)
			l->asg[i].id = ids[l->asg[i].entry];
	return 0;
}

static int load_identity_groups(struct loader *l)
{
	_cleanup_strv_free_ char **names = NULL;

	store_children(l->s, "/identity-groups", &names, NULL, NULL);
	for (size_t i = 0; names && names[i]; i++) {
		_cleanup_free_ char *p = strdup_printf("/identity-groups/%s", names[i]);
		json_t *j = p ? get_json(l, p) : NULL;
		json_t *cnt = j ? json_object_get(j, "count") : NULL;

		if (json_is_integer(cnt) && json_integer_value(cnt) >= 0)
			sched_identity_group_set(l->c, names[i], (int)json_integer_value(cnt));
		json_decref(j);
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

	store_children(l->s, "/scheduled", &names, NULL, NULL);
	return get_batched(l, "/scheduled", names, load_app, names);
}

struct restore_ctx {
	char **apps;
	int server;
};

static void restore_one(struct loader *l, size_t k, const char *ap, const char *data, void *ud)
{
	struct restore_ctx *rc = ud;
	json_t *j = data ? parse_json(l, ap, data) : NULL;
	json_t *exp = j ? json_object_get(j, "expires") : NULL, *id = j ? json_object_get(j, "identity") : NULL;
	int a = sched_app_find(l->c, rc->apps[k]);

	if (a >= 0 && data &&
	    sched_app_restore(l->c, a, rc->server, json_is_number(exp) ? json_number_value(exp) : NAN,
			      json_is_integer(id) ? (int)json_integer_value(id) : -1) < 0)
		fprintf(l->warn, "%s: cannot restore (no room or placed twice)\n", ap);
	json_decref(j);
}

static int load_placements(struct loader *l)
{
	_cleanup_strv_free_ char **servers = NULL;

	store_children(l->s, "/placement", &servers, NULL, NULL);
	for (size_t i = 0; servers && servers[i]; i++) {
		_cleanup_free_ char *sp = strdup_printf("/placement/%s", servers[i]);
		_cleanup_strv_free_ char **apps = NULL;
		int s = sched_node_find(l->c, servers[i]);

		if (!sp || s < 0 || !sched_node_is_server(l->c, s))
			continue;
		store_children(l->s, sp, &apps, NULL, NULL);
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
	json_t *traits;
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
	traits = get_json(&l, "/traits");
	if (json_is_array(traits)) {
		json_t *v;

		json_array_foreach(traits, i, v)
			if (json_is_string(v))
				strv_extend(&l.traits, json_string_value(v));
	}
	json_decref(traits);
	sched_partition_get(c, "_default");
	store_children(s, "/partitions", &parts, NULL, NULL);
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

int sched_assignments_parse(const json_t *allocations, struct sched_assignment **ret, size_t *ret_n)
{
	struct sched_assignment *v = NULL;
	size_t n = 0, i, k;
	json_t *o, *a;

	json_array_foreach(allocations, i, o) {
		const char *name = json_string_value(json_object_get(o, "name"));
		const char *part = json_string_value(json_object_get(o, "partition"));

		if (!name)
			continue;
		json_array_foreach(json_object_get(o, "assignments"), k, a) {
			const char *pat = json_string_value(json_object_get(a, "pattern"));
			json_t *prio = json_object_get(a, "priority");
			struct sched_assignment *g;

			if (!pat)
				continue;
			g = realloc(v, (n + 1) * sizeof(*v));
			if (!g)
				goto oom;
			v = g;
			g = &v[n++];
			*g = (struct sched_assignment){
				.pattern = strdup_printf("%s[#][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]", pat),
				.partition = strdup(part ? part : "_default"),
				.alloc = strdup(name),
				.entry = i,
				.priority = json_is_integer(prio) ? (int)json_integer_value(prio) : 1,
				.id = SCHED_ASG_BY_NAME,
			};
			if (!g->pattern || !g->partition || !g->alloc)
				goto oom;
		}
	}
	*ret = v;
	*ret_n = n;
	return 0;
oom:
	sched_assignments_free(v, n);
	return -ENOMEM;
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
