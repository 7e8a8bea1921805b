/* cellns.c: the cell namespace, every store path and record shape of a cell
 * (see cellns.h, docs/FORMATS.md). */
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../basic/json.h"
#include "../basic/util.h"
#include "cellns.h"

static const char *const dirs[_CELLNS_DIR_MAX] = {
	[CELLNS_ALLOCATIONS] = "/allocations",
	[CELLNS_APP_GROUPS] = "/app-groups",
	[CELLNS_APP_MONITORS] = "/app-monitors",
	[CELLNS_BLACKEDOUT_APPS] = "/blackedout.apps",
	[CELLNS_BLACKEDOUT_SERVERS] = "/blackedout.servers",
	[CELLNS_BUCKETS] = "/buckets",
	[CELLNS_CELL] = "/cell",
	[CELLNS_CRON_JOBS] = "/cron-jobs",
	[CELLNS_DISCOVERY] = "/discovery",
	[CELLNS_DISCOVERY_STATE] = "/discovery.state",
	[CELLNS_ELECTION] = "/election",
	[CELLNS_ELECTION_MASTER] = "/election/master",
	[CELLNS_ENDPOINTS] = "/endpoints",
	[CELLNS_ENDPOINTS_ROOT] = "/endpoints/root",
	[CELLNS_EVENTS] = "/events",
	[CELLNS_FINISHED] = "/finished",
	[CELLNS_FINISHED_HISTORY] = "/finished.history",
	[CELLNS_IDENTITY_GROUPS] = "/identity-groups",
	[CELLNS_PARTITIONS] = "/partitions",
	[CELLNS_PLACEMENT] = "/placement",
	[CELLNS_REBOOTS] = "/reboots",
	[CELLNS_RUNNING] = "/running",
	[CELLNS_SCHEDULED] = "/scheduled",
	[CELLNS_SCHEDULED_STATS] = "/scheduled-stats",
	[CELLNS_SCHEDULER] = "/scheduler",
	[CELLNS_SERVER_PRESENCE] = "/server.presence",
	[CELLNS_SERVER_TRACE] = "/server-trace",
	[CELLNS_SERVER_TRACE_HISTORY] = "/server-trace.history",
	[CELLNS_SERVERS] = "/servers",
	[CELLNS_STRATEGIES] = "/strategies",
	[CELLNS_TICKET_LOCKER] = "/ticket-locker",
	[CELLNS_KEYTAB_LOCKER] = "/keytab-locker",
	[CELLNS_TRACE] = "/trace",
	[CELLNS_TRACE_HISTORY] = "/trace.history",
	[CELLNS_TRAITS] = "/traits",
	[CELLNS_VERSION] = "/version",
	[CELLNS_VERSION_HISTORY] = "/version.history",
	[CELLNS_VERSION_ID] = "/version-id",
};

/* ------------------------------------------------------------ the tree */

const char *cellns_dir(enum cellns_dir d)
{
	return (unsigned)d < _CELLNS_DIR_MAX ? dirs[d] : NULL;
}

char *cellns_path(enum cellns_dir d, const char *name)
{
	const char *dir = cellns_dir(d);

	if (!dir)
		return NULL;
	return name ? strdup_printf("%s/%s", dir, name) : strdup(dir);
}

char *cellns_path2(enum cellns_dir d, const char *a, const char *b)
{
	const char *dir = cellns_dir(d);

	if (!dir || !a)
		return NULL;
	return b ? strdup_printf("%s/%s/%s", dir, a, b) : strdup_printf("%s/%s", dir, a);
}

/* A name that is one path component. */
static bool name_ok(const char *n)
{
	return n && *n && *n != '.' && !strchr(n, '/');
}

int cellns_create_top(struct store *s, struct error *err)
{
	for (size_t i = 0; i < _CELLNS_DIR_MAX; i++) {
		int r = store_create_p(s, dirs[i]);

		if (r < 0 && r != -EEXIST)
			return error_set(err, ERR_TEMP, -r, "creating %s: %s", dirs[i], store_strerror(r));
	}
	return 0;
}

static void shard_path(unsigned i, char ret[32])
{
	snprintf(ret, 32, "%s/%04X", i < 256 ? dirs[CELLNS_TRACE] : dirs[CELLNS_SERVER_TRACE], i % 256);
}

int cellns_create_shards(struct store *s, unsigned *next, unsigned budget, struct error *err)
{
	char path[32];
	int r;

	for (; *next < CELLNS_SHARDS && budget > 0; (*next)++, budget--) {
		shard_path(*next, path);
		r = store_create(s, path, "", 0, STORE_PERSISTENT, NULL);
		if (r < 0 && r != -EEXIST)
			return error_set(err, ERR_TEMP, -r, "creating %s: %s", path, store_strerror(r));
	}
	return 0;
}

int cellns_shards_complete(struct store *s)
{
	char path[32];

	shard_path(CELLNS_SHARDS - 1, path);
	return store_exists(s, path, NULL, NULL, NULL);
}

int cellns_list(struct store *s, enum cellns_dir d, char ***ret, store_watch_fn watch, void *userdata)
{
	const char *dir = cellns_dir(d);

	if (!dir)
		return -EINVAL;
	return store_children(s, dir, ret, watch, userdata);
}

/* The children of d; a missing d is empty: 0 with *ret NULL. */
static int list_or_empty(struct store *s, enum cellns_dir d, char ***ret)
{
	int r = cellns_list(s, d, ret, NULL, NULL);

	if (r == -ENOENT) {
		*ret = NULL;
		return 0;
	}
	return r;
}

int cellns_list_ensure(struct store *s, enum cellns_dir d, char ***ret, store_watch_fn watch, void *userdata)
{
	int r = cellns_list(s, d, ret, watch, userdata);

	if (r == -ENOENT) {
		(void)store_create_p(s, dirs[d]);
		r = cellns_list(s, d, ret, watch, userdata);
	}
	return r;
}

/* ------------------------------------------------- generic JSON records */

static int cellns_get_json(struct store *s, const char *path, json_t **ret, struct store_stat *ret_stat)
{
	_cleanup_free_ char *data = NULL;
	int r;

	*ret = NULL;
	if (!path)
		return -ENOMEM;
	r = store_get(s, path, &data, NULL, ret_stat, NULL, NULL);
	if (r < 0)
		return r;
	*ret = data && *data ? json_loads(data, JSON_DECODE_ANY, NULL) : NULL;
	return 0;
}

char *cellns_dumps(const json_t *j)
{
	if (json_is_string(j))
		return strdup(json_string_value(j));
	return j ? json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
}

/* Set, else create (with the parent), else set again (raced with a creator). */
static int put_data(struct store *s, const char *path, const char *data, size_t len)
{
	int r = store_set(s, path, data, len, -1, NULL);

	if (r != -ENOENT)
		return r < 0 ? r : 0;
	r = store_create(s, path, data, len, STORE_PERSISTENT, NULL);
	if (r == -ENOENT) {
		_cleanup_free_ char *parent = strndup(path, (size_t)(strrchr(path, '/') - path));

		if (!parent)
			return -ENOMEM;
		r = store_create_p(s, parent);
		if (r < 0 && r != -EEXIST)
			return r;
		r = store_create(s, path, data, len, STORE_PERSISTENT, NULL);
	}
	if (r == -EEXIST)
		r = store_set(s, path, data, len, -1, NULL);
	return r < 0 ? r : 0;
}

/* Write j (cellns_dumps) by set, else create (creating the parent if
 * missing).  Does not take j. */
static int cellns_put_json(struct store *s, const char *path, const json_t *j)
{
	_cleanup_free_ char *d = cellns_dumps(j);

	if (!path || !d)
		return -ENOMEM;
	return put_data(s, path, d, strlen(d));
}

/* Create path with data; a missing parent is created and the create retried. */
static int create_in(struct store *s, const char *dir, const char *path, const char *data, int flags,
		     char **ret_path)
{
	size_t len = data ? strlen(data) : 0;
	int r = store_create(s, path, data, len, flags, ret_path);

	if (r == -ENOENT) {
		r = store_create_p(s, dir);
		if (r < 0 && r != -EEXIST)
			return r;
		r = store_create(s, path, data, len, flags, ret_path);
	}
	return r;
}

static int delete_missing_ok(struct store *s, const char *path)
{
	int r;

	if (!path)
		return -ENOMEM;
	r = store_delete(s, path, -1);
	return r == -ENOENT ? 0 : r;
}

static char *dup_string(const json_t *v)
{
	return json_is_string(v) ? strdup(json_string_value(v)) : NULL;
}

/* d/name for a name that is one path component: -EINVAL, -ENOMEM or 0. */
static int named_path(enum cellns_dir d, const char *name, char **ret)
{
	if (!name_ok(name))
		return -EINVAL;
	*ret = cellns_path(d, name);
	return *ret ? 0 : -ENOMEM;
}

/* The record d/name as JSON (cellns_get_json). */
static int get_named(struct store *s, enum cellns_dir d, const char *name, json_t **ret, struct store_stat *ret_stat)
{
	_cleanup_free_ char *p = NULL;
	int r;

	*ret = NULL;
	r = named_path(d, name, &p);
	return r < 0 ? r : cellns_get_json(s, p, ret, ret_stat);
}

/* The raw data of d/name. */
static int get_named_data(struct store *s, enum cellns_dir d, const char *name, char **ret, struct store_stat *ret_stat)
{
	_cleanup_free_ char *p = NULL;
	int r;

	*ret = NULL;
	r = named_path(d, name, &p);
	return r < 0 ? r : store_get(s, p, ret, NULL, ret_stat, NULL, NULL);
}

static int exists_named(struct store *s, enum cellns_dir d, const char *name, struct store_stat *ret_stat,
			store_watch_fn watch, void *userdata)
{
	_cleanup_free_ char *p = NULL;
	int r = named_path(d, name, &p);

	return r < 0 ? r : store_exists(s, p, ret_stat, watch, userdata);
}

/* Delete d/name; missing is success. */
static int delete_named(struct store *s, enum cellns_dir d, const char *name)
{
	_cleanup_free_ char *p = NULL;
	int r = named_path(d, name, &p);

	return r < 0 ? r : delete_missing_ok(s, p);
}

/* ------------------------------------------------------ scheduled apps */

int cellns_scheduled_create(struct store *s, const char *app, const char *manifest_json, char **ret_instance)
{
	_cleanup_free_ char *prefix = NULL, *path = NULL;
	size_t dl = strlen(dirs[CELLNS_SCHEDULED]) + 1;
	int r;

	if (!name_ok(app) || !manifest_json)
		return -EINVAL;
	prefix = strdup_printf("%s/%s#", dirs[CELLNS_SCHEDULED], app);
	if (!prefix)
		return -ENOMEM;
	r = create_in(s, dirs[CELLNS_SCHEDULED], prefix, manifest_json, STORE_SEQUENTIAL, &path);
	if (r < 0)
		return r;
	if (ret_instance) {
		*ret_instance = strdup(path + dl);
		if (!*ret_instance)
			return -ENOMEM;
	}
	return 0;
}

int cellns_scheduled_get(struct store *s, const char *instance, json_t **ret, struct store_stat *ret_stat)
{
	_cleanup_free_ char *data = NULL;
	int r = get_named_data(s, CELLNS_SCHEDULED, instance, &data, ret_stat);
	json_t *j;

	*ret = NULL;
	if (r < 0)
		return r;
	j = json_loads(data ? data : "", 0, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		return -EBADMSG;
	}
	*ret = j;
	return 0;
}

int cellns_scheduled_exists(struct store *s, const char *instance, store_watch_fn watch, void *userdata)
{
	return exists_named(s, CELLNS_SCHEDULED, instance, NULL, watch, userdata);
}

int cellns_scheduled_delete(struct store *s, const char *instance)
{
	_cleanup_free_ char *p = NULL;
	int r = named_path(CELLNS_SCHEDULED, instance, &p);

	return r < 0 ? r : store_delete(s, p, -1);
}

int cellns_scheduled_get_many(struct store *s, char *const *instances, size_t n, char **ret_data)
{
	return store_get_many_in(s, dirs[CELLNS_SCHEDULED], instances, n, ret_data, NULL, NULL);
}

int cellns_scheduled_stats_put(struct store *s, const char *json_text)
{
	if (!json_text)
		return -EINVAL;
	return put_data(s, dirs[CELLNS_SCHEDULED_STATS], json_text, strlen(json_text));
}

/* ----------------------------------------------------------- placement */

static const char *const state_names[] = { "up", "down", "frozen" };

const char *cellns_server_state_name(enum cellns_server_state st)
{
	return st >= CELLNS_STATE_UP && st <= CELLNS_STATE_FROZEN ? state_names[st] : NULL;
}

static enum cellns_server_state cellns_server_state_from_name(const char *name)
{
	for (int i = 0; name && i < (int)ELEMENTSOF(state_names); i++)
		if (strcmp(name, state_names[i]) == 0)
			return (enum cellns_server_state)i;
	return CELLNS_STATE_UNKNOWN;
}

char *cellns_placement_format(const struct cellns_placement *p)
{
	_cleanup_json_ json_t *j = json_pack(
		"{s:o, s:o, s:o}", "expires", isnan(p->expires) ? json_null() : json_real(p->expires), "identity",
		p->identity >= 0 ? json_integer(p->identity) : json_null(), "identity_count",
		p->identity_count >= 0 ? json_integer(p->identity_count) : json_null());

	return j ? json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
}

static void placement_from_json(const json_t *j, struct cellns_placement *ret)
{
	json_t *exp = json_object_get(j, "expires"), *id = json_object_get(j, "identity");
	json_t *cnt = json_object_get(j, "identity_count");

	*ret = (struct cellns_placement)CELLNS_PLACEMENT_INIT;
	if (json_is_number(exp))
		ret->expires = json_number_value(exp);
	if (json_is_integer(id))
		ret->identity = (int)json_integer_value(id);
	if (json_is_integer(cnt))
		ret->identity_count = (int)json_integer_value(cnt);
}

int cellns_placement_parse(const char *data, struct cellns_placement *ret)
{
	_cleanup_json_ json_t *j = data && *data ? json_loads(data, 0, NULL) : NULL;

	placement_from_json(j, ret);
	return json_is_object(j) ? 0 : -EBADMSG;
}

int cellns_placement_put(struct store *s, const char *server, const char *instance, const struct cellns_placement *p)
{
	_cleanup_free_ char *path = NULL, *d = NULL;
	int r;

	if (!name_ok(server) || !name_ok(instance))
		return -EINVAL;
	path = cellns_path2(CELLNS_PLACEMENT, server, instance);
	d = cellns_placement_format(p);
	if (!path || !d)
		return -ENOMEM;
	r = store_create(s, path, d, strlen(d), STORE_PERSISTENT, NULL);
	if (r == -EEXIST)
		r = store_set(s, path, d, strlen(d), -1, NULL);
	return r < 0 ? r : 0;
}

int cellns_placement_get(struct store *s, const char *server, const char *instance, struct cellns_placement *ret,
			 json_t **ret_json, struct store_stat *ret_stat)
{
	_cleanup_free_ char *path = NULL, *data = NULL;
	_cleanup_json_ json_t *j = NULL;
	int r;

	if (!name_ok(server) || !name_ok(instance))
		return -EINVAL;
	path = cellns_path2(CELLNS_PLACEMENT, server, instance);
	if (!path)
		return -ENOMEM;
	r = store_get(s, path, &data, NULL, ret_stat, NULL, NULL);
	if (r < 0)
		return r;
	j = data && *data ? json_loads(data, 0, NULL) : NULL;
	if (ret)
		placement_from_json(j, ret);
	if (ret_json)
		*ret_json = json_is_object(j) ? TAKE_PTR(j) : NULL;
	return 0;
}

int cellns_placement_list(struct store *s, const char *server, char ***ret, store_watch_fn watch, void *userdata)
{
	_cleanup_free_ char *path = NULL;
	int r = named_path(CELLNS_PLACEMENT, server, &path);

	return r < 0 ? r : store_children(s, path, ret, watch, userdata);
}

static void cellns_placed_free(struct cellns_placed *p, size_t n)
{
	for (size_t i = 0; p && i < n; i++) {
		free(p[i].instance);
		free(p[i].server);
	}
	free(p);
}

static int cellns_placement_all(struct store *s, struct cellns_placed **ret, size_t *ret_n)
{
	_cleanup_strv_free_ char **servers = NULL;
	struct cellns_placed *v = NULL;
	size_t n = 0;
	int r;

	*ret = NULL;
	*ret_n = 0;
	r = list_or_empty(s, CELLNS_PLACEMENT, &servers);
	if (r < 0 || !servers)
		return r;
	for (char **srv = servers; *srv; srv++) {
		_cleanup_strv_free_ char **insts = NULL;
		struct cellns_placed *nv;
		size_t k;

		r = cellns_placement_list(s, *srv, &insts, NULL, NULL);
		if (r == -ENOENT)
			continue;
		if (r < 0)
			goto fail;
		k = strv_length(insts);
		nv = realloc(v, (n + k + 1) * sizeof(*v));
		if (!nv) {
			r = -ENOMEM;
			goto fail;
		}
		v = nv;
		for (size_t i = 0; i < k; i++) {
			v[n] = (struct cellns_placed){ .instance = strdup(insts[i]), .server = strdup(*srv) };
			if (!v[n++].instance || !v[n - 1].server) {
				r = -ENOMEM;
				goto fail;
			}
		}
	}
	*ret = v;
	*ret_n = n;
	return 0;
fail:
	cellns_placed_free(v, n);
	return r;
}

int cellns_placement_count(struct store *s, size_t *ret)
{
	_cleanup_strv_free_ char **servers = NULL;
	int r;

	*ret = 0;
	r = list_or_empty(s, CELLNS_PLACEMENT, &servers);
	if (r < 0 || !servers)
		return r;
	for (char **p = servers; *p; p++) {
		_cleanup_free_ char *pp = cellns_path(CELLNS_PLACEMENT, *p);
		struct store_stat st;

		if (!pp)
			return -ENOMEM;
		if (store_exists(s, pp, &st, NULL, NULL) >= 0)
			*ret += (size_t)st.num_children;
	}
	return 0;
}

int cellns_server_state_get(struct store *s, const char *server, enum cellns_server_state *ret_state,
			    double *ret_since)
{
	_cleanup_json_ json_t *j = NULL;
	json_t *since;
	int r;

	*ret_state = CELLNS_STATE_UNKNOWN;
	if (ret_since)
		*ret_since = NAN;
	r = get_named(s, CELLNS_PLACEMENT, server, &j, NULL);
	if (r < 0)
		return r;
	*ret_state = cellns_server_state_from_name(json_string_value(json_object_get(j, "state")));
	since = json_object_get(j, "since");
	if (ret_since && json_is_number(since))
		*ret_since = json_number_value(since);
	return 0;
}

int cellns_server_state_put(struct store *s, const char *server, enum cellns_server_state state, double since)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_json_ json_t *j = NULL;

	if (!name_ok(server) || !cellns_server_state_name(state))
		return -EINVAL;
	path = cellns_path(CELLNS_PLACEMENT, server);
	j = json_pack("{s:s, s:f}", "state", cellns_server_state_name(state), "since", since);
	if (!path || !j)
		return -ENOMEM;
	return cellns_put_json(s, path, j);
}

int cellns_server_state_watch(struct store *s, const char *server, store_watch_fn watch, void *userdata)
{
	return exists_named(s, CELLNS_PLACEMENT, server, NULL, watch, userdata);
}

/* ------------------------------------------------ running and endpoints */

/* An ephemeral node of this session: created, or already there from it. */
static int ephemeral_put(struct store *s, const char *dir, const char *path, const char *data)
{
	struct store_stat st;
	int r = create_in(s, dir, path, data, STORE_EPHEMERAL, NULL);

	if (r == -EEXIST && store_exists(s, path, &st, NULL, NULL) == 0 && st.ephemeral_owner == store_session_id(s))
		r = 0;
	return r;
}

int cellns_running_publish(struct store *s, const char *instance, const char *host)
{
	_cleanup_free_ char *p = NULL;
	int r = host ? named_path(CELLNS_RUNNING, instance, &p) : -EINVAL;

	return r < 0 ? r : ephemeral_put(s, dirs[CELLNS_RUNNING], p, host);
}

int cellns_running_delete(struct store *s, const char *instance)
{
	return delete_named(s, CELLNS_RUNNING, instance);
}

void cellns_endpoints_free(struct cellns_endpoint *e, size_t n)
{
	for (size_t i = 0; e && i < n; i++) {
		free(e[i].instance);
		free(e[i].proto);
		free(e[i].name);
		free(e[i].address);
	}
	free(e);
}

int cellns_endpoint_publish(struct store *s, const char *instance, const char *proto, const char *name,
			    const char *address, char **ret_path)
{
	const char *dot = instance ? strchr(instance, '.') : NULL;
	_cleanup_free_ char *proid = NULL, *dir = NULL, *p = NULL;
	int r;

	if (!dot || dot == instance || !name_ok(dot + 1) || strchr(instance, '/') || !proto || !name || !address)
		return -EINVAL;
	proid = strndup(instance, (size_t)(dot - instance));
	dir = proid ? cellns_path(CELLNS_ENDPOINTS, proid) : NULL;
	p = dir ? strdup_printf("%s/%s:%s:%s", dir, dot + 1, proto, name) : NULL;
	if (!p)
		return -ENOMEM;
	r = ephemeral_put(s, dir, p, address);
	if (r >= 0 && ret_path)
		*ret_path = TAKE_PTR(p);
	return r;
}

int cellns_endpoint_delete(struct store *s, const char *path)
{
	if (!path || !startswith(path, dirs[CELLNS_ENDPOINTS]) || path[strlen(dirs[CELLNS_ENDPOINTS])] != '/')
		return -EINVAL;
	return delete_missing_ok(s, path);
}

int cellns_endpoints_list(struct store *s, const char *pattern, struct cellns_endpoint **ret, size_t *ret_n)
{
	_cleanup_strv_free_ char **proids = NULL;
	struct cellns_endpoint *v = NULL;
	size_t n = 0, cap = 0;
	int r;

	*ret = NULL;
	*ret_n = 0;
	r = list_or_empty(s, CELLNS_ENDPOINTS, &proids);
	if (r < 0 || !proids)
		return r;
	for (char **p = proids; *p; p++) {
		_cleanup_free_ char *dir = cellns_path(CELLNS_ENDPOINTS, *p);
		_cleanup_strv_free_ char **names = NULL;
		_cleanup_free_ char **data = NULL;
		size_t k;

		if (!dir) {
			r = -ENOMEM;
			goto fail;
		}
		if (store_children(s, dir, &names, NULL, NULL) < 0)
			continue;
		k = strv_length(names);
		data = calloc(k + 1, sizeof(char *));
		if (!data) {
			r = -ENOMEM;
			goto fail;
		}
		if (store_get_many_in(s, dir, names, k, data, NULL, NULL) < 0)
			continue;
		for (size_t i = 0; i < k; i++) {
			/* <app>#<n>:<proto>:<endpoint> */
			_cleanup_free_ char *d = TAKE_PTR(data[i]), *inst = NULL;
			char *ep = strrchr(names[i], ':'), *proto;

			if (!ep || !d)
				continue;
			*ep++ = 0;
			proto = strrchr(names[i], ':');
			if (!proto)
				continue;
			*proto++ = 0;
			inst = strdup_printf("%s.%s", *p, names[i]);
			if (!inst) {
				r = -ENOMEM;
				for (size_t x = i + 1; x < k; x++)
					free(data[x]);
				goto fail;
			}
			if (pattern && fnmatch(pattern, inst, 0) != 0)
				continue;
			if (n == cap) {
				struct cellns_endpoint *nv = realloc(v, (cap = cap ? 2 * cap : 16) * sizeof(*v));

				if (!nv) {
					r = -ENOMEM;
					for (size_t x = i + 1; x < k; x++)
						free(data[x]);
					goto fail;
				}
				v = nv;
			}
			v[n++] = (struct cellns_endpoint){ .instance = TAKE_PTR(inst), .proto = strdup(proto),
							   .name = strdup(ep), .address = TAKE_PTR(d) };
			if (!v[n - 1].proto || !v[n - 1].name) {
				r = -ENOMEM;
				for (size_t x = i + 1; x < k; x++)
					free(data[x]);
				goto fail;
			}
		}
	}
	*ret = v;
	*ret_n = n;
	return 0;
fail:
	cellns_endpoints_free(v, n);
	return r;
}

/* ------------------------------------------------------------ finished */

static void cellns_finished_clear(struct cellns_finished *f)
{
	if (!f)
		return;
	free(f->state);
	free(f->host);
	free(f->data);
	*f = (struct cellns_finished){ 0 };
}

/* Parse a record's text (also a /finished.history row's data). */
static int cellns_finished_parse(const char *json_text, struct cellns_finished *ret)
{
	_cleanup_json_ json_t *j = json_text ? json_loads(json_text, 0, NULL) : NULL;
	json_t *w;

	*ret = (struct cellns_finished){ 0 };
	if (!json_is_object(j))
		return -EBADMSG;
	ret->state = json_is_string(json_object_get(j, "state")) ? dup_string(json_object_get(j, "state"))
								 : strdup("finished");
	w = json_object_get(j, "when");
	if (json_is_number(w))
		ret->when = json_number_value(w);
	else if (json_is_string(w) && safe_atod(json_string_value(w), &ret->when) < 0)
		ret->when = 0;
	ret->host = dup_string(json_object_get(j, "host"));
	ret->data = dup_string(json_object_get(j, "data"));
	if (!ret->state || (json_is_string(json_object_get(j, "host")) && !ret->host) ||
	    (json_is_string(json_object_get(j, "data")) && !ret->data)) {
		cellns_finished_clear(ret);
		return -ENOMEM;
	}
	return 0;
}

static int cellns_finished_get(struct store *s, const char *instance, struct cellns_finished *ret)
{
	_cleanup_free_ char *data = NULL;
	int r;

	*ret = (struct cellns_finished){ 0 };
	r = get_named_data(s, CELLNS_FINISHED, instance, &data, NULL);
	return r < 0 ? r : cellns_finished_parse(data, ret);
}

int cellns_finished_publish(struct store *s, const char *instance, const char *state, double when,
			    const char *host, const char *data)
{
	_cleanup_free_ char *p = NULL, *w = NULL, *text = NULL;
	_cleanup_json_ json_t *j = NULL;

	if (!name_ok(instance) || !state || !host)
		return -EINVAL;
	p = cellns_path(CELLNS_FINISHED, instance);
	w = strdup_printf("%.3f", when);
	j = p && w ? json_pack("{s:s, s:s, s:s, s:s}", "data", data ? data : "", "host", host, "state", state, "when",
			       w)
		   : NULL;
	text = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	if (!text)
		return -ENOMEM;
	return put_data(s, p, text, strlen(text));
}

int cellns_finished_terminated(struct store *s, const char *instance, double when, const char *host,
			       const char *data)
{
	_cleanup_free_ char *p = NULL, *text = NULL;
	_cleanup_json_ json_t *j = NULL;
	int r;

	if (!name_ok(instance))
		return -EINVAL;
	p = cellns_path(CELLNS_FINISHED, instance);
	if (!p)
		return -ENOMEM;
	if (store_exists(s, p, NULL, NULL, NULL) == 0)
		return 0;
	j = json_pack("{s:s, s:f, s:s?, s:s?}", "state", "terminated", "when", when, "host", host, "data", data);
	text = j ? json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
	if (!text)
		return -ENOMEM;
	r = store_create(s, p, text, strlen(text), STORE_PERSISTENT, NULL);
	return r == -EEXIST ? 0 : r;
}

void cellns_instances_free(struct cellns_instance *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		free(v[i].name);
		free(v[i].host);
		cellns_finished_clear(&v[i].finished);
	}
	free(v);
}

static const char *placed_on(const struct cellns_placed *p, size_t n, const char *inst)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(p[i].instance, inst) == 0)
			return p[i].server;
	return NULL;
}

int cellns_instances(struct store *s, bool live, bool finished, struct cellns_instance **ret, size_t *ret_n)
{
	_cleanup_strv_free_ char **sched = NULL, **running = NULL, **fin = NULL;
	struct cellns_placed *placed = NULL;
	struct cellns_instance *v = NULL;
	size_t np = 0, n = 0;
	int r;

	*ret = NULL;
	*ret_n = 0;
	r = cellns_list(s, CELLNS_SCHEDULED, &sched, NULL, NULL);
	if (r >= 0 || r == -ENOENT)
		r = cellns_list(s, CELLNS_RUNNING, &running, NULL, NULL);
	if (r >= 0 || r == -ENOENT)
		r = live ? cellns_placement_all(s, &placed, &np) : 0;
	if ((r >= 0 || r == -ENOENT) && finished)
		r = cellns_list(s, CELLNS_FINISHED, &fin, NULL, NULL);
	if (r < 0 && r != -ENOENT)
		goto out;
	v = calloc(strv_length(sched) + strv_length(fin) + 1, sizeof(*v));
	r = v ? 0 : -ENOMEM;
	for (char **k = sched; live && r >= 0 && k && *k; k++) {
		const char *host = placed_on(placed, np, *k);
		struct cellns_instance *e = &v[n++];

		e->name = strdup(*k);
		e->host = host ? strdup(host) : NULL;
		e->state = strv_contains(running, *k) ? CELLNS_INSTANCE_RUNNING
			   : host		      ? CELLNS_INSTANCE_SCHEDULED
						      : CELLNS_INSTANCE_PENDING;
		if (!e->name || (host && !e->host))
			r = -ENOMEM;
	}
	for (char **k = fin; r >= 0 && k && *k; k++) {
		struct cellns_instance *e = &v[n];

		if (strv_contains(sched, *k) || cellns_finished_get(s, *k, &e->finished) < 0)
			continue;
		n++;
		e->name = strdup(*k);
		e->state = CELLNS_INSTANCE_FINISHED;
		if (!e->name)
			r = -ENOMEM;
	}
out:
	cellns_placed_free(placed, np);
	if (r < 0 && r != -ENOENT) {
		cellns_instances_free(v, n);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

int cellns_unschedule_if_placed(struct store *s, const char *host, const char *instance)
{
	_cleanup_free_ char *ppath = NULL, *spath = NULL;
	size_t failed = 0;
	int r;

	if (!name_ok(host) || !name_ok(instance))
		return -EINVAL;
	ppath = cellns_path2(CELLNS_PLACEMENT, host, instance);
	spath = cellns_path(CELLNS_SCHEDULED, instance);
	if (!ppath || !spath)
		return -ENOMEM;
	struct store_op ops[] = {
		{ .type = STORE_OP_CHECK, .path = ppath, .version = -1 },
		{ .type = STORE_OP_DELETE, .path = spath, .version = -1 },
	};
	r = store_multi(s, ops, ELEMENTSOF(ops), &failed);
	return r == -ENOENT ? 0 : r;
}

/* --------------------------------------------------------------- trace */

char *cellns_trace_shard_path(const char *shard)
{
	return name_ok(shard) ? cellns_path(CELLNS_TRACE, shard) : NULL;
}

static char *cellns_trace_path(const char *shard, const char *name)
{
	return name_ok(shard) && name_ok(name) ? cellns_path2(CELLNS_TRACE, shard, name) : NULL;
}

int cellns_trace_create(struct store *s, const char *shard, const char *name, const char *payload)
{
	_cleanup_free_ char *dir = NULL, *path = NULL;

	if (!name_ok(shard) || !name_ok(name))
		return -EINVAL;
	dir = cellns_trace_shard_path(shard);
	path = cellns_trace_path(shard, name);
	if (!dir || !path)
		return -ENOMEM;
	return create_in(s, dir, path, payload, STORE_PERSISTENT, NULL);
}

static uint32_t server_shard(const char *server)
{
	uint32_t h = 2166136261u;

	for (const char *p = server; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	return h % 256;
}

/* Server events: /server-trace/<FNV-1a(server) % 256 as %04X>/
 * <server>,<ts %.3f>,<source>,<type>,<data> (empty node). */
static char *cellns_server_trace_path(const char *server, double ts, const char *source, const char *type,
			       const char *data)
{
	if (!name_ok(server) || !source || !type)
		return NULL;
	return strdup_printf("%s/%04X/%s,%.3f,%s,%s,%s", dirs[CELLNS_SERVER_TRACE], server_shard(server), server, ts,
			     source, type, data ? data : "");
}

int cellns_server_trace_post(struct store *s, const char *server, double ts, const char *source, const char *type,
			     const char *data)
{
	_cleanup_free_ char *path = NULL, *dir = NULL;
	int r;

	if (!name_ok(server) || !source || !type)
		return -EINVAL;
	path = cellns_server_trace_path(server, ts, source, type, data);
	dir = strdup_printf("%s/%04X", dirs[CELLNS_SERVER_TRACE], server_shard(server));
	if (!path || !dir)
		return -ENOMEM;
	r = create_in(s, dir, path, "", STORE_PERSISTENT, NULL);
	return r == -EEXIST ? 0 : r;
}

/* ------------------------------------------------------------- servers */

void cellns_server_clear(struct cellns_server *srv)
{
	if (!srv)
		return;
	free(srv->parent);
	free(srv->partition);
	json_decref(srv->json);
	*srv = (struct cellns_server){ .up_since = NAN };
}

int cellns_server_get(struct store *s, const char *host, struct cellns_server *ret)
{
	_cleanup_free_ char *p = NULL;
	_cleanup_json_ json_t *j = NULL;
	json_t *up;
	int r = get_named(s, CELLNS_SERVERS, host, &j, NULL);

	*ret = (struct cellns_server){ .up_since = NAN };
	if (r < 0)
		return r;
	if (!j)
		j = json_object();
	if (!json_is_object(j))
		return j ? -EBADMSG : -ENOMEM;
	ret->parent = dup_string(json_object_get(j, "parent"));
	ret->partition = dup_string(json_object_get(j, "partition"));
	up = json_object_get(j, "up_since");
	if (json_is_number(up))
		ret->up_since = json_number_value(up);
	ret->json = TAKE_PTR(j);
	return 0;
}

int cellns_server_register(struct store *s, const char *host, const char *memory, const char *cpu,
			   const char *disk, double up_since)
{
	_cleanup_free_ char *p = NULL, *out = NULL, *data = NULL;
	_cleanup_json_ json_t *o = NULL;
	int r;

	if (!name_ok(host) || !memory || !cpu || !disk)
		return -EINVAL;
	p = cellns_path(CELLNS_SERVERS, host);
	if (!p)
		return -ENOMEM;
	(void)store_create_p(s, dirs[CELLNS_SERVERS]);
	r = store_get(s, p, &data, NULL, NULL, NULL, NULL);
	if (r < 0 && r != -ENOENT)
		return r;
	if (r == 0 && data && *data)
		o = json_loads(data, 0, NULL);
	if (!json_is_object(o)) {
		json_decref(o);
		o = json_object();
	}
	if (!o || json_object_set_new(o, "memory", json_string(memory)) < 0 ||
	    json_object_set_new(o, "cpu", json_string(cpu)) < 0 || json_object_set_new(o, "disk", json_string(disk)) < 0 ||
	    json_object_set_new(o, "up_since", json_real(up_since)) < 0)
		return -ENOMEM;
	out = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT);
	if (!out)
		return -ENOMEM;
	if (r == -ENOENT)
		r = store_create(s, p, out, strlen(out), STORE_PERSISTENT, NULL);
	else
		r = store_set(s, p, out, strlen(out), -1, NULL);
	return r < 0 ? r : 0;
}

int cellns_presence_create(struct store *s, const char *host)
{
	static const char data[] = "{\"seen\":false}";
	_cleanup_free_ char *p = NULL;
	int r = named_path(CELLNS_SERVER_PRESENCE, host, &p);

	return r < 0 ? r : create_in(s, dirs[CELLNS_SERVER_PRESENCE], p, data, STORE_EPHEMERAL, NULL);
}

int cellns_locker_register(struct store *s, enum cellns_dir d, const char *hostport)
{
	_cleanup_free_ char *p = NULL;
	int r;

	if (d != CELLNS_TICKET_LOCKER && d != CELLNS_KEYTAB_LOCKER)
		return -EINVAL;
	r = named_path(d, hostport, &p);
	return r < 0 ? r : create_in(s, dirs[d], p, "", STORE_EPHEMERAL, NULL);
}

int cellns_presence_exists(struct store *s, const char *host, struct store_stat *ret_stat, store_watch_fn watch,
			   void *userdata)
{
	return exists_named(s, CELLNS_SERVER_PRESENCE, host, ret_stat, watch, userdata);
}

int cellns_presence_delete(struct store *s, const char *host)
{
	return delete_named(s, CELLNS_SERVER_PRESENCE, host);
}

/* The member `key` of the record d/name: *ret_j owns the record, *ret is the
 * member (NULL when absent or on error). */
static int get_member(struct store *s, enum cellns_dir d, const char *name, const char *key, json_t **ret_j,
		      json_t **ret)
{
	int r = get_named(s, d, name, ret_j, NULL);

	*ret = r < 0 ? NULL : json_object_get(*ret_j, key);
	return r;
}

int cellns_presence_valid_until(struct store *s, const char *host, double *ret)
{
	_cleanup_json_ json_t *j = NULL;
	json_t *v;
	int r = get_member(s, CELLNS_SERVER_PRESENCE, host, "valid_until", &j, &v);

	*ret = json_is_number(v) ? json_number_value(v) : 0;
	return r == -ENOENT ? 0 : r;
}

int cellns_presence_find(struct store *s, const char *host, bool *ret_found)
{
	_cleanup_strv_free_ char **pres = NULL;
	size_t l = host ? strlen(host) : 0;
	int r;

	*ret_found = false;
	if (!name_ok(host))
		return -EINVAL;
	r = cellns_list(s, CELLNS_SERVER_PRESENCE, &pres, NULL, NULL);
	if (r < 0)
		return r;
	for (char **p = pres; *p; p++)
		if (strcmp(*p, host) == 0 || (startswith(*p, host) && (*p)[l] == '#')) {
			*ret_found = true;
			break;
		}
	return 0;
}

int cellns_blackout_server_exists(struct store *s, const char *host, store_watch_fn watch, void *userdata)
{
	return exists_named(s, CELLNS_BLACKEDOUT_SERVERS, host, NULL, watch, userdata);
}

int cellns_blackout_server_reason(struct store *s, const char *host, char **ret_reason)
{
	_cleanup_free_ char *p = NULL, *data = NULL;
	_cleanup_json_ json_t *j = NULL;
	int r;

	*ret_reason = NULL;
	r = get_named_data(s, CELLNS_BLACKEDOUT_SERVERS, host, &data, NULL);
	if (r < 0)
		return r;
	j = data ? json_loads(data, JSON_DECODE_ANY, NULL) : NULL;
	*ret_reason = strdup(json_is_string(j) ? json_string_value(j) : data ? data : "");
	return *ret_reason ? 0 : -ENOMEM;
}

int cellns_blackout_apps_get(struct store *s, json_t **ret)
{
	_cleanup_json_ json_t *j = NULL;
	int r = cellns_get_json(s, dirs[CELLNS_BLACKEDOUT_APPS], &j, NULL);

	if (r < 0 && r != -ENOENT)
		return r;
	*ret = json_is_object(j) ? TAKE_PTR(j) : json_object();
	return *ret ? 0 : -ENOMEM;
}

/* ------------------------------------------------ buckets, cell, groups */

void cellns_bucket_clear(struct cellns_bucket *b)
{
	if (!b)
		return;
	free(b->parent);
	free(b->level);
	*b = (struct cellns_bucket){ 0 };
}

int cellns_bucket_get(struct store *s, const char *name, struct cellns_bucket *ret)
{
	_cleanup_json_ json_t *j = NULL;
	json_t *t;
	int r;

	*ret = (struct cellns_bucket){ 0 };
	r = get_named(s, CELLNS_BUCKETS, name, &j, NULL);
	if (r < 0)
		return r;
	if (!json_is_object(j))
		return -EBADMSG;
	ret->parent = dup_string(json_object_get(j, "parent"));
	ret->level = dup_string(json_object_get(j, "level"));
	t = json_object_get(j, "traits");
	ret->traits = json_is_integer(t) ? (uint64_t)json_integer_value(t) : 0;
	return 0;
}

int cellns_identity_group_count(struct store *s, const char *group, int *ret)
{
	_cleanup_json_ json_t *j = NULL;
	json_t *c;
	int r = get_member(s, CELLNS_IDENTITY_GROUPS, group, "count", &j, &c);
	json_int_t n = json_is_integer(c) ? json_integer_value(c) : -1;

	*ret = n >= 0 && n <= INT32_MAX ? (int)n : -1;
	return r;
}

int cellns_partition_get(struct store *s, const char *label, json_t **ret)
{
	return get_named(s, CELLNS_PARTITIONS, label, ret, NULL);
}

void cellns_allocations_free(struct cellns_allocation *a, size_t n)
{
	for (size_t i = 0; a && i < n; i++) {
		free(a[i].name);
		free(a[i].partition);
		for (size_t k = 0; k < a[i].n_assignments; k++)
			free(a[i].assignments[k].pattern);
		free(a[i].assignments);
		json_decref(a[i].json);
	}
	free(a);
}

static int allocation_parse(json_t *o, struct cellns_allocation *a)
{
	json_t *rank = json_object_get(o, "rank"), *adj = json_object_get(o, "rank_adjustment");
	json_t *mu = json_object_get(o, "max_utilization"), *asg = json_object_get(o, "assignments"), *v;
	size_t k;

	*a = (struct cellns_allocation){ .rank = -1, .json = json_incref(o) };
	a->name = dup_string(json_object_get(o, "name"));
	a->partition = dup_string(json_object_get(o, "partition"));
	if ((json_is_string(json_object_get(o, "name")) && !a->name) ||
	    (json_is_string(json_object_get(o, "partition")) && !a->partition))
		return -ENOMEM;
	a->rank = json_is_integer(rank) ? json_integer_value(rank) : -1;
	a->rank_adjustment = json_is_integer(adj) ? json_integer_value(adj) : 0;
	a->max_utilization = json_is_number(mu) ? json_number_value(mu) : 0;
	if (json_array_size(asg)) {
		a->assignments = calloc(json_array_size(asg), sizeof(*a->assignments));
		if (!a->assignments)
			return -ENOMEM;
	}
	json_array_foreach(asg, k, v) {
		const char *pat = json_string_value(json_object_get(v, "pattern"));
		json_t *prio = json_object_get(v, "priority");
		struct cellns_assignment *n = &a->assignments[a->n_assignments];

		if (!pat)
			continue;
		n->pattern = strdup(pat);
		if (!n->pattern)
			return -ENOMEM;
		n->priority = json_is_integer(prio) ? (int)json_integer_value(prio) : 1;
		a->n_assignments++;
	}
	return 0;
}

int cellns_allocations_get(struct store *s, struct cellns_allocation **ret, size_t *ret_n)
{
	_cleanup_json_ json_t *list = NULL;
	struct cellns_allocation *v;
	size_t i, n;
	json_t *o;
	int r;

	*ret = NULL;
	*ret_n = 0;
	r = cellns_get_json(s, dirs[CELLNS_ALLOCATIONS], &list, NULL);
	if (r == -ENOENT || (r >= 0 && !json_is_array(list)))
		return 0;
	if (r < 0)
		return r;
	n = json_array_size(list);
	if (!n)
		return 0;
	v = calloc(n, sizeof(*v));
	if (!v)
		return -ENOMEM;
	json_array_foreach(list, i, o) {
		r = allocation_parse(o, &v[i]);
		if (r < 0) {
			cellns_allocations_free(v, i + 1);
			return r;
		}
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

int cellns_traits_get(struct store *s, char ***ret)
{
	_cleanup_json_ json_t *j = NULL;
	size_t i;
	json_t *v;
	int r;

	*ret = NULL;
	r = cellns_get_json(s, dirs[CELLNS_TRAITS], &j, NULL);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	json_array_foreach(j, i, v)
		if (json_is_string(v) && strv_extend(ret, json_string_value(v)) < 0) {
			strv_free(*ret);
			*ret = NULL;
			return -ENOMEM;
		}
	return 0;
}

int cellns_scheduler_mode(struct store *s, char **ret_mode)
{
	_cleanup_free_ char *data = NULL;
	_cleanup_json_ json_t *j = NULL;
	int r;

	*ret_mode = NULL;
	r = store_get(s, dirs[CELLNS_SCHEDULER], &data, NULL, NULL, NULL, NULL);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	j = data ? json_loads(data, 0, NULL) : NULL;
	if (json_is_string(json_object_get(j, "mode"))) {
		*ret_mode = strdup(json_string_value(json_object_get(j, "mode")));
		if (!*ret_mode)
			return -ENOMEM;
	}
	return 0;
}

int cellns_reboot_request(struct store *s, const char *host)
{
	_cleanup_free_ char *p = NULL;
	int r = named_path(CELLNS_REBOOTS, host, &p);

	if (r < 0)
		return r;
	r = store_create_p(s, p);
	return r == -EEXIST ? 0 : r;
}

int cellns_reboot_requested(struct store *s, const char *host)
{
	return exists_named(s, CELLNS_REBOOTS, host, NULL, NULL, NULL);
}

/* -------------------------------------------------------------- events */

int cellns_event_parse(const char *name, struct cellns_event *ret)
{
	const char *d1, *d2;
	size_t rl;

	if (!name)
		return -EINVAL;
	for (d1 = name; *d1 >= '0' && *d1 <= '9'; d1++)
		;
	if (d1 == name || *d1 != '-')
		return -EINVAL;
	d2 = strrchr(name, '-');
	if (d2 == d1 || !d2[1])
		return -EINVAL;
	for (const char *q = d2 + 1; *q; q++)
		if (*q < '0' || *q > '9')
			return -EINVAL;
	rl = (size_t)(d2 - d1 - 1);
	if (rl == 0 || rl >= sizeof(ret->resource))
		return -EINVAL;
	for (const char *q = d1 + 1; q < d2; q++)
		if (!(*q == '_' || (*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9')))
			return -EINVAL;
	ret->name = name;
	ret->prio = (int)strtol(name, NULL, 10);
	ret->seq = strtoll(d2 + 1, NULL, 10);
	memcpy(ret->resource, d1 + 1, rl);
	ret->resource[rl] = 0;
	return 0;
}

char *cellns_event_prefix(int prio, const char *resource)
{
	if (prio < 0 || prio > 999 || !name_ok(resource))
		return NULL;
	return strdup_printf("%s/%03d-%s-", dirs[CELLNS_EVENTS], prio, resource);
}

int cellns_event_get(struct store *s, const char *name, json_t **ret)
{
	return get_named(s, CELLNS_EVENTS, name, ret, NULL);
}

int cellns_event_delete(struct store *s, const char *name)
{
	return delete_named(s, CELLNS_EVENTS, name);
}

/* ------------------------------------------------------------ election */

int cellns_election_join(struct store *s, const char *id, char **ret_node)
{
	_cleanup_free_ char *prefix = cellns_path(CELLNS_ELECTION_MASTER, "lock-");
	int r;

	if (!id)
		return -EINVAL;
	if (!prefix)
		return -ENOMEM;
	r = store_create_p(s, dirs[CELLNS_ELECTION_MASTER]);
	if (r < 0 && r != -EEXIST)
		return r;
	return store_create(s, prefix, id, strlen(id), STORE_EPHEMERAL | STORE_SEQUENTIAL, ret_node);
}

int cellns_election_members(struct store *s, char ***ret)
{
	_cleanup_strv_free_ char **kids = NULL, **out = NULL;
	int r;

	*ret = NULL;
	r = cellns_list(s, CELLNS_ELECTION_MASTER, &kids, NULL, NULL);
	if (r < 0)
		return r;
	out = strv_new();
	if (!out)
		return -ENOMEM;
	for (char **k = kids; *k; k++) {
		_cleanup_free_ char *p = cellns_path(CELLNS_ELECTION_MASTER, *k), *d = NULL;

		if (!p)
			return -ENOMEM;
		r = store_get(s, p, &d, NULL, NULL, NULL, NULL);
		if (r == -ENOENT)
			continue; /* left meanwhile */
		if (r < 0)
			return r;
		r = strv_extend(&out, d ? d : "");
		if (r < 0)
			return r;
	}
	*ret = TAKE_PTR(out);
	return 0;
}

const char *cellns_instance_state_name(enum cellns_instance_state s)
{
	static const char *const names[] = {
		[CELLNS_INSTANCE_PENDING] = "pending",
		[CELLNS_INSTANCE_SCHEDULED] = "scheduled",
		[CELLNS_INSTANCE_RUNNING] = "running",
		[CELLNS_INSTANCE_FINISHED] = "finished",
	};

	return (unsigned)s < ELEMENTSOF(names) ? names[s] : "unknown";
}
