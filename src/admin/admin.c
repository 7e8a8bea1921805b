/* admin.c: validated cell administration writes, each one store_multi with
 * its master event.  See admin.h for the contract. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "../basic/json.h"
#include "../basic/util.h"
#include "../cellns/cellns.h"
#include "../store/store.h"
#include "../trace/trace.h"
#include "admin.h"

#define RETRIES 16

/* ---- validation ---- */

/* Names that become one store path component: [A-Za-z0-9._:@-], not starting
 * with '.' or '-', at most 255 characters.  extra: more allowed characters. */
static int check_name(const char *field, const char *v, const char *extra, struct error *err)
{
	if (!v || !*v)
		return error_set(err, ERR_PERM, 0, "%s: missing", field);
	if (strlen(v) > 255)
		return error_set(err, ERR_PERM, 0, "%s '%.40s...': longer than 255 characters", field, v);
	if (v[0] == '.' || v[0] == '-')
		return error_set(err, ERR_PERM, 0, "%s '%s': must not start with '%c'", field, v, v[0]);
	for (const char *p = v; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("._:@-", *p) && !(extra && strchr(extra, *p)))
			return error_set(err, ERR_PERM, 0, "%s '%s': character '%c' not allowed", field, v, *p);
	return 0;
}

/* "8G", "512M", "1024" (bare = MiB) -> "<MiB>M". */
static int norm_size(const char *field, const char *v, char **ret, struct error *err)
{
	uint64_t mib;

	if (parse_size_mib(v, SIZE_MIB_BARE, &mib) < 0)
		return error_set(err, ERR_PERM, 0, "%s '%s': not a size (e.g. 512M, 8G)", field, v);
	*ret = strdup_printf("%" PRIu64 "M", mib);
	return *ret ? 0 : error_sys(err, ENOMEM, "%s", field);
}

/* "400%" or "400" -> "400%". */
static int norm_cpu(const char *field, const char *v, char **ret, struct error *err)
{
	double d;
	int r = parse_cpu(v, CPU_FRACTION, &d);

	if (r == -ENOMEM)
		return error_sys(err, ENOMEM, "%s", field);
	if (r < 0 || d > 1e9)
		return error_set(err, ERR_PERM, 0, "%s '%s': not a cpu share (e.g. 400%%)", field, v);
	*ret = strdup_printf("%g%%", d);
	return *ret ? 0 : error_sys(err, ENOMEM, "%s", field);
}

static int check_pattern(const char *field, const char *v, struct error *err)
{
	if (check_name(field, v, "*?[]!", err) < 0)
		return -EINVAL;
	if (!strchr(v, '.'))
		return error_set(err, ERR_PERM, 0, "%s '%s': must be <proid>.<app pattern>", field, v);
	return 0;
}

/* memory, cpu, disk as stored ("<MiB>M", "<N>%"); NULL: not given. */
struct resources {
	char *memory, *cpu, *disk;
};

static void resources_clear(struct resources *res)
{
	free(res->memory);
	free(res->cpu);
	free(res->disk);
	*res = (struct resources){ 0 };
}

/* Normalise the values given (NULL: not given, left NULL). */
static int norm_resources(const char *memory, const char *cpu, const char *disk, struct resources *ret,
			  struct error *err)
{
	int r = 0;

	if (memory)
		r = norm_size("memory", memory, &ret->memory, err);
	if (r >= 0 && cpu)
		r = norm_cpu("cpu", cpu, &ret->cpu, err);
	if (r >= 0 && disk)
		r = norm_size("disk", disk, &ret->disk, err);
	return r;
}

/* Set the given values in the record o. */
static void resources_set(json_t *o, const struct resources *res)
{
	if (res->memory)
		json_object_set_new(o, "memory", json_string(res->memory));
	if (res->cpu)
		json_object_set_new(o, "cpu", json_string(res->cpu));
	if (res->disk)
		json_object_set_new(o, "disk", json_string(res->disk));
}

static int store_error(struct error *err, int r, const char *what)
{
	return error_set(err, store_error_code(r),
			 0, "%s: %s", what, store_strerror(r));
}

static json_t *strv_json(char **l)
{
	json_t *a = json_array();

	for (char **p = l; a && p && *p; p++)
		json_array_append_new(a, json_string(*p));
	return a;
}

/* ---- reading ---- */

/* Read a JSON node; missing -> *ret = NULL, *ver = -1.  Malformed data is
 * treated as missing content (an empty object/array replaces it). */
static int read_json(struct store *s, const char *path, json_t **ret, int64_t *ver)
{
	_cleanup_free_ char *data = NULL;
	struct store_stat st;
	int r;

	*ret = NULL;
	*ver = -1;
	r = store_get(s, path, &data, NULL, &st, NULL, NULL);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	*ver = st.version;
	*ret = data && *data ? json_loads(data, JSON_DECODE_ANY, NULL) : NULL;
	return 1;
}

/* ---- writing: the change plus its event, atomically ---- */

struct change {
	struct store_op ops[6];
	char *bufs[6];
	size_t n;
};

static void change_release(struct change *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->bufs[i]);
	c->n = 0;
}

static int change_add(struct change *c, enum store_op_type type, const char *path, json_t *data, int64_t version)
{
	char *buf = NULL;

	if (c->n >= ELEMENTSOF(c->ops))
		return -E2BIG;
	if (data) {
		/* cellns's bytes: plain strings (blackout reasons) raw, as Treadmill does */
		buf = cellns_dumps(data);
		if (!buf)
			return -ENOMEM;
	}
	c->ops[c->n] = (struct store_op){ .type = type, .path = path, .data = buf, .len = buf ? strlen(buf) : 0,
					  .version = version };
	c->bufs[c->n++] = buf;
	return 0;
}

/* Put a JSON node at version ver (-1: create). */
static int change_put(struct change *c, const char *path, json_t *data, int64_t ver)
{
	return change_add(c, ver < 0 ? STORE_OP_CREATE : STORE_OP_SET, path, data, ver);
}

/* Append the event and run the multi.  -ESTALE/-EEXIST/-ENOENT on the change
 * ops are races: the caller re-reads and retries. */
static int change_commit(struct store *s, struct change *c, const char *resource, json_t *payload, size_t *failed)
{
	_cleanup_free_ char *ev = cellns_event_prefix(0, resource);
	int r;

	if (!ev)
		return -ENOMEM;
	r = change_add(c, STORE_OP_CREATE, ev, payload ? payload : json_null(), -1);
	if (r < 0)
		return r;
	c->ops[c->n - 1].flags = STORE_SEQUENTIAL;
	r = store_multi(s, c->ops, c->n, failed);
	return r < 0 ? r : 0;
}

static int ensure_parents(struct store *s, const char *dir, struct error *err)
{
	int r = store_create_p(s, cellns_dir(CELLNS_EVENTS));

	if (r >= 0 && dir)
		r = store_create_p(s, dir);
	return r < 0 ? store_error(err, r, "creating the namespace") : 0;
}

/* The event payload of a change to a named node: [name]. */
static json_t *name_payload(const char *name)
{
	return name ? json_pack("[s]", name) : NULL;
}

/* Write one JSON node, d/name (name NULL: the node d itself), created or
 * replaced, with its event (payload [name], or null without a name); the
 * bucket check_bucket (may be NULL) must exist at that moment, else ERR_PERM
 * "<check_field> '<bucket>': no such bucket".  build() makes the new data
 * from the old (NULL if missing); returns <0 with err set to refuse. */
typedef int (*build_fn)(json_t *old, json_t **ret_new, void *userdata, struct error *err);

static int update_node(struct store *s, enum cellns_dir d, const char *name, const char *check_field,
		       const char *check_bucket, build_fn build, void *userdata, const char *resource,
		       struct error *err)
{
	_cleanup_free_ char *path = cellns_path(d, name), *check = NULL;
	_cleanup_json_ json_t *payload = name_payload(name);
	int r;

	check = check_bucket ? cellns_path(CELLNS_BUCKETS, check_bucket) : NULL;
	if (!path || (name && !payload) || (check_bucket && !check))
		return error_sys(err, ENOMEM, "%s", resource);
	r = ensure_parents(s, name ? cellns_dir(d) : NULL, err);
	if (r < 0)
		return r;
	for (int attempt = 0; attempt < RETRIES; attempt++) {
		_cleanup_json_ json_t *old = NULL, *new = NULL;
		struct change c = { .n = 0 };
		int64_t ver;
		size_t failed = 0;

		r = read_json(s, path, &old, &ver);
		if (r < 0)
			return store_error(err, r, path);
		r = build(old, &new, userdata, err);
		if (r < 0)
			return r;
		if (check)
			r = change_add(&c, STORE_OP_CHECK, check, NULL, -1);
		if (r >= 0)
			r = change_put(&c, path, new, ver);
		if (r >= 0)
			r = change_commit(s, &c, resource, payload, &failed);
		change_release(&c);
		if (r >= 0)
			return 0;
		if (check && failed == 0 && r == -ENOENT)
			return error_set(err, ERR_PERM, 0, "%s '%s': no such bucket", check_field, check_bucket);
		if (r == -ESTALE || r == -EEXIST || r == -ENOENT)
			continue;
		return store_error(err, r, path);
	}
	return error_set(err, ERR_TEMP, 0, "%s: too many concurrent changes, try again", path);
}

/* Delete d/name (a checked name) with its event (payload [name]).  Missing:
 * ERR_PERM "<what> '<name>': no such <what>". */
static int delete_node(struct store *s, enum cellns_dir d, const char *name, const char *what, const char *resource,
		       struct error *err)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_json_ json_t *payload = NULL;
	struct change c = { .n = 0 };
	int r;

	path = cellns_path(d, name);
	payload = name_payload(name);
	if (!path || !payload)
		return error_sys(err, ENOMEM, "%s", what);
	r = ensure_parents(s, NULL, err);
	if (r < 0)
		return r;
	r = change_add(&c, STORE_OP_DELETE, path, NULL, -1);
	if (r >= 0)
		r = change_commit(s, &c, resource, payload, NULL);
	change_release(&c);
	if (r == -ENOENT)
		return error_set(err, ERR_PERM, 0, "%s '%s': no such %s", what, name, what);
	if (r == -ENOTEMPTY)
		return error_set(err, ERR_PERM, 0, "%s: has children", path);
	return r < 0 ? store_error(err, r, path) : 0;
}

/* A partition named by a server or an allocation must exist ("_default" always does). */
static int check_partition(struct store *s, const char *part, struct error *err)
{
	_cleanup_free_ char *pp = NULL;

	if (strcmp(part, "_default") == 0)
		return 0;
	pp = cellns_path(CELLNS_PARTITIONS, part);
	if (!pp || store_exists(s, pp, NULL, NULL, NULL) < 0)
		return error_set(err, ERR_PERM, 0, "partition '%s': no such partition", part);
	return 0;
}

/* ---- servers ---- */

struct server_build {
	const struct admin_server *srv;
	struct resources res;
};

static int server_build(json_t *old, json_t **ret, void *userdata, struct error *err)
{
	struct server_build *b = userdata;
	json_t *o = json_is_object(old) ? json_deep_copy(old) : json_object();

	if (!o)
		return error_sys(err, ENOMEM, "server");
	if (b->srv->parent)
		json_object_set_new(o, "parent", json_string(b->srv->parent));
	if (b->srv->partition || !json_object_get(o, "partition"))
		json_object_set_new(o, "partition", json_string(b->srv->partition ? b->srv->partition : "_default"));
	if (!json_object_get(o, "parent"))
		json_object_set_new(o, "parent", json_null());
	if (b->srv->traits)
		json_object_set_new(o, "traits", strv_json(b->srv->traits));
	resources_set(o, &b->res);
	*ret = o;
	return 0;
}

int admin_server_add(struct store *s, const struct admin_server *srv, struct error *err)
{
	struct server_build b = { .srv = srv };
	int r = check_name("server", srv->name, NULL, err);

	if (r >= 0 && srv->parent)
		r = check_name("parent", srv->parent, NULL, err);
	if (r >= 0 && srv->partition)
		r = check_name("partition", srv->partition, NULL, err);
	for (char **t = srv->traits; r >= 0 && t && *t; t++)
		r = check_name("traits", *t, NULL, err);
	if (r >= 0)
		r = norm_resources(srv->memory, srv->cpu, srv->disk, &b.res, err);
	if (r >= 0 && srv->partition)
		r = check_partition(s, srv->partition, err);
	if (r >= 0)
		r = update_node(s, CELLNS_SERVERS, srv->name, "parent", srv->parent, server_build, &b, "servers", err);
	resources_clear(&b.res);
	return r;
}

int admin_server_delete(struct store *s, const char *name, struct error *err)
{
	if (check_name("server", name, NULL, err) < 0)
		return -EINVAL;
	return delete_node(s, CELLNS_SERVERS, name, "server", "servers", err);
}

int admin_server_state(struct store *s, const char *name, enum admin_server_state state, char **apps,
		       struct error *err)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_json_ json_t *payload = NULL;
	const char *state_name = cellns_server_state_name((enum cellns_server_state)state);
	struct change c = { .n = 0 };
	int r;

	if (check_name("server", name, NULL, err) < 0)
		return -EINVAL;
	if (!state_name)
		return error_set(err, ERR_PERM, 0, "state: unknown");
	for (char **a = apps; a && *a; a++)
		if (check_name("apps", *a, "#", err) < 0)
			return -EINVAL;
	path = cellns_path(CELLNS_SERVERS, name);
	payload = json_pack("[s, s, o]", name, state_name, strv_json(apps));
	if (!path || !payload)
		return error_sys(err, ENOMEM, "server");
	r = ensure_parents(s, NULL, err);
	if (r < 0)
		return r;
	r = change_add(&c, STORE_OP_CHECK, path, NULL, -1);
	if (r >= 0)
		r = change_commit(s, &c, "server_state", payload, NULL);
	change_release(&c);
	if (r == -ENOENT)
		return error_set(err, ERR_PERM, 0, "server '%s': no such server", name);
	return r < 0 ? store_error(err, r, path) : 0;
}

/* ---- buckets and cell ---- */

struct bucket_build {
	const char *parent, *level;
	int64_t traits;
};

static int bucket_build(json_t *old _unused_, json_t **ret, void *userdata, struct error *err)
{
	struct bucket_build *b = userdata;

	*ret = json_pack("{s:s?, s:o}", "parent", b->parent, "traits",
			 b->traits < 0 ? json_null() : json_integer(b->traits));
	if (*ret && b->level)
		json_object_set_new(*ret, "level", json_string(b->level));
	return *ret ? 0 : error_sys(err, ENOMEM, "bucket");
}

int admin_bucket_add(struct store *s, const char *name, const char *parent, const char *level, int64_t traits,
		     struct error *err)
{
	struct bucket_build b = { parent, level, traits };

	if (check_name("bucket", name, NULL, err) < 0 || (parent && check_name("parent", parent, NULL, err) < 0) ||
	    (level && check_name("level", level, NULL, err) < 0))
		return -EINVAL;
	if (parent && strcmp(parent, name) == 0)
		return error_set(err, ERR_PERM, 0, "parent '%s': a bucket cannot be its own parent", parent);
	if (!level && !strchr(name, ':'))
		return error_set(err, ERR_PERM, 0, "level: missing (give --level or name the bucket <level>:<name>)");
	return update_node(s, CELLNS_BUCKETS, name, "parent", parent, bucket_build, &b, "buckets", err);
}

int admin_bucket_delete(struct store *s, const char *name, struct error *err)
{
	static const enum cellns_dir parents[] = { CELLNS_SERVERS, CELLNS_BUCKETS };

	if (check_name("bucket", name, NULL, err) < 0)
		return -EINVAL;
	/* refuse while servers or buckets name it as parent */
	for (size_t i = 0; i < ELEMENTSOF(parents); i++) {
		_cleanup_strv_free_ char **kids = NULL;
		int r = cellns_list(s, parents[i], &kids, NULL, NULL);

		if (r < 0 && r != -ENOENT)
			return store_error(err, r, cellns_dir(parents[i]));
		for (char **k = kids; k && *k; k++) {
			_cleanup_free_ char *p = cellns_path(parents[i], *k);
			_cleanup_json_ json_t *o = NULL;
			int64_t ver;

			if (p && read_json(s, p, &o, &ver) > 0 &&
			    json_is_string(json_object_get(o, "parent")) &&
			    strcmp(json_string_value(json_object_get(o, "parent")), name) == 0)
				return error_set(err, ERR_PERM, 0, "bucket '%s': still parent of %s '%s'", name,
						 i ? "bucket" : "server", *k);
		}
	}
	return delete_node(s, CELLNS_BUCKETS, name, "bucket", "buckets", err);
}

static int empty_build(json_t *old _unused_, json_t **ret, void *userdata _unused_, struct error *err _unused_)
{
	*ret = NULL;
	return 0;
}

int admin_cell_insert(struct store *s, const char *bucket, struct error *err)
{
	if (check_name("bucket", bucket, NULL, err) < 0)
		return -EINVAL;
	return update_node(s, CELLNS_CELL, bucket, "bucket", bucket, empty_build, NULL, "cell", err);
}

int admin_cell_remove(struct store *s, const char *bucket, struct error *err)
{
	if (check_name("bucket", bucket, NULL, err) < 0)
		return -EINVAL;
	return delete_node(s, CELLNS_CELL, bucket, "cell bucket", "cell", err);
}

/* ---- partitions ---- */

struct partition_build {
	const char *name;
	struct resources res;
	json_t *reboot;
};

static int partition_build(json_t *old, json_t **ret, void *userdata, struct error *err)
{
	struct partition_build *b = userdata;
	json_t *o = json_is_object(old) ? json_deep_copy(old) : json_object();

	if (!o)
		return error_sys(err, ENOMEM, "partition");
	json_object_set_new(o, "partition", json_string(b->name));
	resources_set(o, &b->res);
	if (b->reboot)
		json_object_set(o, "reboot-schedule", b->reboot);
	*ret = o;
	return 0;
}

static int check_reboot_schedule(const char *v, json_t **ret, struct error *err)
{
	json_t *o = json_loads(v, 0, NULL), *val;
	const char *k;

	if (!json_is_object(o))
		goto bad;
	json_object_foreach(o, k, val) {
		int64_t day;

		if (safe_atoi64(k, &day) < 0 || day < 0 || day > 6 || !json_is_array(val) || json_array_size(val) != 3)
			goto bad;
		for (size_t i = 0; i < 3; i++) {
			json_t *x = json_array_get(val, i);
			int64_t lim = i == 0 ? 23 : 59;

			if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > lim)
				goto bad;
		}
	}
	*ret = o;
	return 0;
bad:
	json_decref(o);
	return error_set(err, ERR_PERM, 0, "reboot-schedule '%s': want {\"<weekday 0-6>\": [h, m, s], ...}", v);
}

int admin_partition_add(struct store *s, const char *name, const char *memory, const char *cpu, const char *disk,
			const char *reboot_schedule, struct error *err)
{
	struct partition_build b = { .name = name };
	int r = check_name("partition", name, NULL, err);

	if (r >= 0)
		r = norm_resources(memory, cpu, disk, &b.res, err);
	if (r >= 0 && reboot_schedule)
		r = check_reboot_schedule(reboot_schedule, &b.reboot, err);
	if (r >= 0)
		r = update_node(s, CELLNS_PARTITIONS, name, NULL, NULL, partition_build, &b, "cell", err);
	resources_clear(&b.res);
	json_decref(b.reboot);
	return r;
}

int admin_partition_delete(struct store *s, const char *name, struct error *err)
{
	if (check_name("partition", name, NULL, err) < 0)
		return -EINVAL;
	if (strcmp(name, "_default") == 0)
		return error_set(err, ERR_PERM, 0, "partition '_default': always exists");
	return delete_node(s, CELLNS_PARTITIONS, name, "partition", "cell", err);
}

/* ---- allocations (one JSON list in /allocations) ---- */

enum alloc_op { ALLOC_SET, ALLOC_DELETE, ALLOC_ASSIGN, ALLOC_UNASSIGN };

struct alloc_build {
	enum alloc_op op;
	const char *name;
	json_t *entry;	/* ALLOC_SET */
	const char *pattern;
	int64_t priority;
};

static int alloc_build(json_t *old, json_t **ret, void *userdata, struct error *err)
{
	struct alloc_build *b = userdata;
	json_t *list = json_is_array(old) ? json_deep_copy(old) : json_array(), *found = NULL, *as;
	size_t i, idx = 0;

	if (!list)
		return error_sys(err, ENOMEM, "allocations");
	for (i = 0; i < json_array_size(list); i++) {
		const char *n = json_string_value(json_object_get(json_array_get(list, i), "name"));

		if (n && strcmp(n, b->name) == 0) {
			found = json_array_get(list, i);
			idx = i;
			break;
		}
	}
	switch (b->op) {
	case ALLOC_SET:
		if (found) {
			/* keep the assignments */
			as = json_object_get(found, "assignments");
			if (as)
				json_object_set(b->entry, "assignments", as);
			json_array_set(list, idx, b->entry);
		} else
			json_array_append(list, b->entry);
		break;
	case ALLOC_DELETE:
		if (!found)
			goto missing;
		json_array_remove(list, idx);
		break;
	case ALLOC_ASSIGN:
	case ALLOC_UNASSIGN:
		if (!found)
			goto missing;
		as = json_object_get(found, "assignments");
		if (!json_is_array(as)) {
			as = json_array();
			json_object_set_new(found, "assignments", as);
		}
		for (i = 0; i < json_array_size(as); i++) {
			const char *p = json_string_value(json_object_get(json_array_get(as, i), "pattern"));

			if (p && strcmp(p, b->pattern) == 0)
				break;
		}
		if (b->op == ALLOC_UNASSIGN) {
			if (i == json_array_size(as)) {
				json_decref(list);
				return error_set(err, ERR_PERM, 0, "pattern '%s': not assigned to '%s'", b->pattern,
						 b->name);
			}
			json_array_remove(as, i);
		} else {
			json_t *e = json_pack("{s:s, s:I}", "pattern", b->pattern, "priority",
					      (json_int_t)b->priority);

			if (i < json_array_size(as))
				json_array_set_new(as, i, e);
			else
				json_array_append_new(as, e);
		}
		break;
	}
	*ret = list;
	return 0;
missing:
	json_decref(list);
	return error_set(err, ERR_PERM, 0, "allocation '%s': no such allocation", b->name);
}

static int alloc_update(struct store *s, struct alloc_build *b, struct error *err)
{
	return update_node(s, CELLNS_ALLOCATIONS, NULL, NULL, NULL, alloc_build, b, "allocations", err);
}

static int check_alloc_name(const char *name, struct error *err)
{
	if (check_name("allocation", name, "/", err) < 0)
		return -EINVAL;
	if (strstr(name, "//") || name[strlen(name) - 1] == '/')
		return error_set(err, ERR_PERM, 0, "allocation '%s': empty path component", name);
	return 0;
}

int admin_alloc_set(struct store *s, const struct admin_alloc *a, struct error *err)
{
	_cleanup_json_ json_t *entry = NULL;
	struct alloc_build b = { .op = ALLOC_SET, .name = a->name };
	_cleanup_(resources_clear) struct resources res = { 0 };
	const char *part = a->partition ? a->partition : "_default";

	if (check_alloc_name(a->name, err) < 0 || check_name("partition", part, NULL, err) < 0)
		return -EINVAL;
	if (norm_resources(a->memory ? a->memory : "0", a->cpu ? a->cpu : "0", a->disk ? a->disk : "0", &res, err) < 0)
		return -EINVAL;
	if (a->rank > 1000000 || a->rank_adjustment < -1000000 || a->rank_adjustment > 1000000)
		return error_set(err, ERR_PERM, 0, "rank: out of range");
	if (a->max_utilization >= 0 && !(a->max_utilization > 0 && isfinite(a->max_utilization)))
		return error_set(err, ERR_PERM, 0, "max-utilization: must be > 0");
	for (char **t = a->traits; t && *t; t++)
		if (check_name("traits", *t, NULL, err) < 0)
			return -EINVAL;
	if (check_partition(s, part, err) < 0)
		return -EINVAL;
	b.entry = entry = json_pack("{s:s, s:s, s:I, s:I, s:o, s:s, s:s, s:s, s:o, s:[]}", "name", a->name, "partition", part,
			    "rank", (json_int_t)(a->rank < 0 ? 100 : a->rank), "rank_adjustment",
			    (json_int_t)a->rank_adjustment, "max_utilization",
			    a->max_utilization < 0 ? json_null() : json_real(a->max_utilization), "memory", res.memory,
			    "cpu", res.cpu, "disk", res.disk, "traits", strv_json(a->traits), "assignments");
	if (!b.entry)
		return error_sys(err, ENOMEM, "allocation");
	return alloc_update(s, &b, err);
}

int admin_alloc_delete(struct store *s, const char *name, struct error *err)
{
	struct alloc_build b = { .op = ALLOC_DELETE, .name = name };

	if (check_alloc_name(name, err) < 0)
		return -EINVAL;
	return alloc_update(s, &b, err);
}

int admin_alloc_assign(struct store *s, const char *name, const char *pattern, int64_t priority, struct error *err)
{
	struct alloc_build b = { .op = ALLOC_ASSIGN, .name = name, .pattern = pattern, .priority = priority };

	if (check_alloc_name(name, err) < 0 || check_pattern("pattern", pattern, err) < 0)
		return -EINVAL;
	if (priority < 0 || priority > 100)
		return error_set(err, ERR_PERM, 0, "priority '%" PRId64 "': must be 0..100", priority);
	return alloc_update(s, &b, err);
}

int admin_alloc_unassign(struct store *s, const char *name, const char *pattern, struct error *err)
{
	struct alloc_build b = { .op = ALLOC_UNASSIGN, .name = name, .pattern = pattern };

	if (check_alloc_name(name, err) < 0 || check_pattern("pattern", pattern, err) < 0)
		return -EINVAL;
	return alloc_update(s, &b, err);
}

/* ---- identity groups ---- */

static int count_build(json_t *old _unused_, json_t **ret, void *userdata, struct error *err)
{
	*ret = json_pack("{s:I}", "count", (json_int_t)*(int64_t *)userdata);
	return *ret ? 0 : error_sys(err, ENOMEM, "identity group");
}

int admin_identity_group_set(struct store *s, const char *name, int64_t count, struct error *err)
{
	if (check_name("identity-group", name, NULL, err) < 0)
		return -EINVAL;
	if (count < 0 || count > 1000000)
		return error_set(err, ERR_PERM, 0, "count '%" PRId64 "': must be 0..1000000", count);
	return update_node(s, CELLNS_IDENTITY_GROUPS, name, NULL, NULL, count_build, &count, "identity_groups", err);
}

int admin_identity_group_delete(struct store *s, const char *name, struct error *err)
{
	if (check_name("identity-group", name, NULL, err) < 0)
		return -EINVAL;
	return delete_node(s, CELLNS_IDENTITY_GROUPS, name, "identity group", "identity_groups", err);
}

/* ---- blackout ---- */

static int reason_build(json_t *old _unused_, json_t **ret, void *userdata, struct error *err)
{
	const char *reason = userdata;

	*ret = json_string(reason ? reason : "");
	return *ret ? 0 : error_sys(err, ENOMEM, "blackout");
}

int admin_blackout_server(struct store *s, const char *host, bool on, const char *reason, struct error *err)
{
	int r;

	if (check_name("server", host, NULL, err) < 0)
		return -EINVAL;
	if (!on)
		return delete_node(s, CELLNS_BLACKEDOUT_SERVERS, host, "blacked-out server", "servers", err);
	r = update_node(s, CELLNS_BLACKEDOUT_SERVERS, host, NULL, NULL, reason_build, (void *)reason, "servers", err);
	if (r < 0)
		return r;
	/* Treadmill's presence.kill_node: the master sees the server down at
	 * once; the node agent does not re-create presence while blacked out. */
	r = cellns_presence_delete(s, host);
	return r < 0 ? store_error(err, r, "deleting the presence") : 0;
}

struct blackout_app_build {
	const char *pattern, *reason;
	bool on;
};

static int blackout_app_build(json_t *old, json_t **ret, void *userdata, struct error *err)
{
	struct blackout_app_build *b = userdata;
	json_t *o = json_is_object(old) ? json_deep_copy(old) : json_object();

	if (!o)
		return error_sys(err, ENOMEM, "blackout");
	if (b->on)
		json_object_set_new(o, b->pattern, json_pack("{s:s, s:f}", "reason", b->reason ? b->reason : "",
							      "when", now_realtime()));
	else if (json_object_del(o, b->pattern) < 0) {
		json_decref(o);
		return error_set(err, ERR_PERM, 0, "pattern '%s': not blacked out", b->pattern);
	}
	*ret = o;
	return 0;
}

int admin_blackout_app(struct store *s, const char *pattern, bool on, const char *reason, struct error *err)
{
	struct blackout_app_build b = { pattern, reason, on };

	if (check_pattern("pattern", pattern, err) < 0)
		return -EINVAL;
	return update_node(s, CELLNS_BLACKEDOUT_APPS, NULL, NULL, NULL, blackout_app_build, &b, "apps_blacklist", err);
}

/* ---- listing ---- */

static json_t *children_data(struct store *s, enum cellns_dir d, bool as_json)
{
	_cleanup_strv_free_ char **kids = NULL;
	json_t *o = json_object();

	if (!o || cellns_list(s, d, &kids, NULL, NULL) < 0)
		return o;
	for (char **k = kids; *k; k++) {
		_cleanup_free_ char *p = cellns_path(d, *k), *data = NULL;
		json_t *v = NULL;

		if (p && store_get(s, p, &data, NULL, NULL, NULL, NULL) >= 0 && as_json && data && *data)
			v = json_loads(data, JSON_DECODE_ANY, NULL);
		if (!v)
			v = !as_json && data ? json_string(data) : json_null();
		json_object_set_new(o, *k, v);
	}
	return o;
}

/* The one JSON node d: a list or object (kind), empty when missing or of another shape. */
static int read_whole(struct store *s, enum cellns_dir d, bool list, json_t **ret, struct error *err)
{
	json_t *j = NULL;
	int64_t ver;
	int r = read_json(s, cellns_dir(d), &j, &ver);

	if (r < 0)
		return store_error(err, r, cellns_dir(d));
	if (list ? !json_is_array(j) : !json_is_object(j)) {
		json_decref(j);
		j = list ? json_array() : json_object();
	}
	*ret = j;
	return 0;
}

int admin_list(struct store *s, const char *what, json_t **ret, struct error *err)
{
	json_t *o = NULL;

	if (strcmp(what, "servers") == 0) {
		_cleanup_json_ json_t *pres = children_data(s, CELLNS_SERVER_PRESENCE, true);
		_cleanup_json_ json_t *black = children_data(s, CELLNS_BLACKEDOUT_SERVERS, false);
		const char *k;
		json_t *v;

		o = children_data(s, CELLNS_SERVERS, true);
		json_object_foreach(o, k, v) {
			if (!json_is_object(v)) {
				v = json_object();
				json_object_set_new(o, k, v);
			}
			json_object_set_new(v, "presence", json_boolean(json_object_get(pres, k) != NULL));
			if (json_object_get(black, k))
				json_object_set(v, "blackout", json_object_get(black, k));
		}
	} else if (strcmp(what, "buckets") == 0)
		o = children_data(s, CELLNS_BUCKETS, true);
	else if (strcmp(what, "cell") == 0) {
		_cleanup_strv_free_ char **kids = NULL;

		cellns_list(s, CELLNS_CELL, &kids, NULL, NULL);
		o = strv_json(kids);
	} else if (strcmp(what, "partitions") == 0)
		o = children_data(s, CELLNS_PARTITIONS, true);
	else if (strcmp(what, "identity-groups") == 0)
		o = children_data(s, CELLNS_IDENTITY_GROUPS, true);
	else if (strcmp(what, "allocations") == 0) {
		int r = read_whole(s, CELLNS_ALLOCATIONS, true, &o, err);

		if (r < 0)
			return r;
	} else if (strcmp(what, "blackout") == 0) {
		json_t *apps = NULL;
		int r = read_whole(s, CELLNS_BLACKEDOUT_APPS, false, &apps, err);

		if (r < 0)
			return r;
		o = json_pack("{s:o, s:o}", "servers", children_data(s, CELLNS_BLACKEDOUT_SERVERS, false), "apps", apps);
	} else
		return error_set(err, ERR_PERM, 0, "list: unknown object '%s'", what);
	if (!o)
		return error_sys(err, ENOMEM, "list");
	*ret = o;
	return 0;
}

/* ---- scheduling (treadle run / stop) ---- */

static int post(struct store *s, const char *inst, enum trace_type type, const char *data, const char *host,
		double when)
{
	struct trace_event ev = {
		.timestamp = when,
		.source = (char *)host,
		.instanceid = (char *)inst,
		.type = type,
		.data = (char *)data,
	};

	return trace_publish(s, &ev, host);
}

int admin_schedule(struct store *s, const char *app, const char *manifest_json, const char *host,
		   char **ret_instance, bool *ret_posted, struct error *err)
{
	_cleanup_free_ char *inst = NULL;
	/* pending is stamped before the create: the master may place the instance
	 * (and publish scheduled) before this call returns */
	double when = now_realtime();
	int r = cellns_scheduled_create(s, app, manifest_json, &inst);

	if (r < 0)
		return error_set(err, ERR_TEMP, -r, "creating %s/%s#: %s", cellns_dir(CELLNS_SCHEDULED), app,
				 store_strerror(r));
	*ret_posted = post(s, inst, TRACE_PENDING, "created", host, when) >= 0;
	*ret_instance = TAKE_PTR(inst);
	return 0;
}

int admin_unschedule(struct store *s, const char *instance, const char *host, bool *ret_posted,
		     struct error *err)
{
	int r;

	if (!strchr(instance, '#') || strchr(instance, '/'))
		return error_set(err, ERR_PERM, 0, "%s: not an instance id (<proid>.<app>#<seq>)", instance);
	r = cellns_scheduled_exists(s, instance, NULL, NULL);
	if (r == 0) {
		*ret_posted = post(s, instance, TRACE_PENDING_DELETE, "deleted", host, now_realtime()) >= 0;
		r = cellns_scheduled_delete(s, instance);
	}
	if (r == -ENOENT)
		return error_set(err, ERR_PERM, 0, "%s: no such instance", instance);
	return r < 0 ? error_set(err, ERR_TEMP, -r, "%s: %s", instance, store_strerror(r)) : 0;
}

/* ---- scheduling many (treadle run --count N, treadle stop I...) ---- */

/* A batch stays well under ZooKeeper's 1 MiB request (jute.maxbuffer). */
#define BATCH_OPS 500
#define BATCH_BYTES (512 * 1024)

/* The ops [0, n) of one batch starting at ops: how many fit. */
static size_t batch_fit(const struct store_op *ops, size_t n)
{
	size_t bytes = 0, i;

	for (i = 0; i < n && i < BATCH_OPS; i++) {
		bytes += ops[i].len + strlen(ops[i].path) + 64;
		if (i > 0 && bytes > BATCH_BYTES)
			break;
	}
	return i;
}

/* The trace node (path) of event ev as trace_publish writes it, NULL if it
 * cannot be one. */
static char *event_path(const struct trace_event *ev, const char *host)
{
	_cleanup_free_ char *name = trace_node_name(ev, host);
	char shard[5];

	if (!name || trace_shard(ev->instanceid, shard) < 0)
		return NULL;
	return cellns_path2(CELLNS_TRACE, shard, name);
}

/* Create the missing parents of paths[0..n) (trace shards): the top
 * directory first, then the missing shards in one batch.  Best effort: the
 * caller retries its batch and falls back to trace_publish. */
static void make_dirs(struct store *s, char *const *paths, size_t n)
{
	_cleanup_strv_free_ char **dirs = NULL;
	_cleanup_free_ struct store_op *ops = calloc(n ? n : 1, sizeof(*ops));
	size_t m = 0;

	if (!ops)
		return;
	for (size_t j = 0; j < n; j++) {
		_cleanup_free_ char *dir = paths[j] ? strdup(paths[j]) : NULL;
		char *slash = dir ? strrchr(dir, '/') : NULL;

		if (!slash || slash == dir)
			continue;
		*slash = 0;
		if (strv_contains(dirs, dir) || store_exists(s, dir, NULL, NULL, NULL) == 0)
			continue;
		if (!m) { /* the parent of the shards, once */
			_cleanup_free_ char *top = strdup(dir);
			if (top && strrchr(top, '/') && strrchr(top, '/') != top) {
				*strrchr(top, '/') = 0;
				store_create_p(s, top);
			}
		}
		if (strv_extend(&dirs, dir) < 0)
			return;
		m++;
	}
	for (size_t j = 0; j < m; j++)
		ops[j] = (struct store_op){ .type = STORE_OP_CREATE, .path = dirs[j] };
	if (m && store_multi(s, ops, m, NULL) < 0)
		for (size_t j = 0; j < m; j++)
			store_create_p(s, dirs[j]);
}

/* Post the (non-terminal) events evs[0..n) in batches; a batch that fails
 * (a shard not created yet, an event already there) is posted one by one
 * through trace_publish.  posted[i] says whether event i was. */
static void post_many(struct store *s, const struct trace_event *evs, size_t n, const char *host, bool *posted)
{
	struct store_op *ops = calloc(n ? n : 1, sizeof(*ops));
	char **paths = calloc(n ? n : 1, sizeof(*paths));
	size_t i, k;

	for (i = 0; ops && paths && i < n; i++) {
		paths[i] = event_path(&evs[i], host);
		ops[i] = (struct store_op){ .type = STORE_OP_CREATE, .path = paths[i] ? paths[i] : "" };
	}
	for (i = 0; i < n; i += k) {
		bool ok = false;
		k = ops && paths ? batch_fit(ops + i, n - i) : 1;
		if (ops && paths) {
			int r = store_multi(s, ops + i, k, NULL);
			if (r == -ENOENT) { /* shards not created yet (the master makes them): make them */
				make_dirs(s, paths + i, k);
				r = store_multi(s, ops + i, k, NULL);
			}
			ok = r >= 0;
		}
		for (size_t j = i; j < i + k; j++)
			posted[j] = ok || trace_publish(s, &evs[j], host) >= 0;
	}
	for (i = 0; paths && i < n; i++)
		free(paths[i]);
	free(paths);
	free(ops);
}

int admin_schedule_many(struct store *s, const char *app, const char *manifest_json, const char *host, size_t count,
			char ***ret_instances, size_t *ret_unposted, struct error *err)
{
	_cleanup_strv_free_ char **insts = NULL;
	_cleanup_free_ char *prefix = NULL;
	_cleanup_free_ struct store_op *ops = NULL;
	size_t done = 0, dl = strlen(cellns_dir(CELLNS_SCHEDULED)) + 1;
	int r = 0;

	*ret_unposted = 0;
	if (!*app || app[0] == '.' || strchr(app, '/') || !manifest_json)
		return error_set(err, ERR_PERM, EINVAL, "%s: not an app name", app);
	prefix = strdup_printf("%s/%s#", cellns_dir(CELLNS_SCHEDULED), app);
	ops = calloc(count ? count : 1, sizeof(*ops));
	insts = calloc(count + 1, sizeof(*insts));
	if (!prefix || !ops || !insts)
		return error_sys(err, ENOMEM, "run");
	for (size_t i = 0; i < count; i++)
		ops[i] = (struct store_op){ .type = STORE_OP_CREATE, .path = prefix, .data = manifest_json,
					    .len = strlen(manifest_json), .flags = STORE_SEQUENTIAL };
	while (done < count) {
		size_t k = batch_fit(ops + done, count - done);
		_cleanup_strv_free_ char **paths = NULL;
		_cleanup_free_ struct trace_event *evs = calloc(k, sizeof(*evs));
		_cleanup_free_ bool *posted = calloc(k, sizeof(*posted));
		/* pending is stamped before the create: the master may place the
		 * instances (and publish scheduled) before this call returns */
		double when = now_realtime();

		if (!evs || !posted) {
			r = error_sys(err, ENOMEM, "run");
			break;
		}
		r = store_multi_paths(s, ops + done, k, NULL, &paths);
		if (r == -ENOENT) { /* no /scheduled yet */
			r = store_create_p(s, cellns_dir(CELLNS_SCHEDULED));
			if (r >= 0 || r == -EEXIST)
				r = store_multi_paths(s, ops + done, k, NULL, &paths);
		}
		if (r < 0) {
			error_set(err, ERR_TEMP, -r, "creating %s: %s", prefix, store_strerror(r));
			break;
		}
		for (size_t j = 0; j < k; j++) {
			insts[done + j] = strdup(paths[j] + MIN(dl, strlen(paths[j])));
			if (!insts[done + j]) {
				r = error_sys(err, ENOMEM, "run");
				break;
			}
			evs[j] = (struct trace_event){ .timestamp = when, .source = (char *)host,
						       .instanceid = insts[done + j], .type = TRACE_PENDING,
						       .data = (char *)"created" };
		}
		if (r < 0)
			break;
		post_many(s, evs, k, host, posted);
		for (size_t j = 0; j < k; j++)
			*ret_unposted += !posted[j];
		done += k;
	}
	*ret_instances = TAKE_PTR(insts);
	return r < 0 ? r : 0;
}

int admin_unschedule_many(struct store *s, char *const *instances, size_t n, const char *host, bool *ret_posted,
			  struct error *errs)
{
	_cleanup_free_ struct store_op *ops = calloc(n ? n : 1, sizeof(*ops));
	_cleanup_free_ struct trace_event *evs = calloc(n ? n : 1, sizeof(*evs));
	_cleanup_free_ size_t *idx = calloc(n ? n : 1, sizeof(*idx));
	char **paths = calloc(n ? n : 1, sizeof(*paths));
	size_t m = 0, failed = 0, i, k;
	double when = now_realtime();

	if (!ops || !evs || !idx || !paths) {
		free(paths);
		for (i = 0; i < n; i++)
			error_sys(&errs[i], ENOMEM, "%s", instances[i]);
		return (int)n;
	}
	/* which exist: those are unscheduled, the others reported */
	for (i = 0; i < n; i++) {
		const char *inst = instances[i];
		int r;

		ret_posted[i] = true;
		if (!strchr(inst, '#') || strchr(inst, '/')) {
			error_set(&errs[i], ERR_PERM, 0, "%s: not an instance id (<proid>.<app>#<seq>)", inst);
			failed++;
			continue;
		}
		r = cellns_scheduled_exists(s, inst, NULL, NULL);
		if (r < 0) {
			if (r == -ENOENT)
				error_set(&errs[i], ERR_PERM, 0, "%s: no such instance", inst);
			else
				error_set(&errs[i], ERR_TEMP, -r, "%s: %s", inst, store_strerror(r));
			failed++;
			continue;
		}
		paths[m] = cellns_path(CELLNS_SCHEDULED, inst);
		ops[m] = (struct store_op){ .type = STORE_OP_DELETE, .path = paths[m] ? paths[m] : "", .version = -1 };
		evs[m] = (struct trace_event){ .timestamp = when, .source = (char *)host, .instanceid = (char *)inst,
					       .type = TRACE_PENDING_DELETE, .data = (char *)"deleted" };
		idx[m++] = i;
	}
	/* pending_delete first (as Treadmill), then the deletes in batches; a
	 * batch that fails (one instance went meanwhile) goes one by one */
	{
		_cleanup_free_ bool *posted = calloc(m ? m : 1, sizeof(*posted));
		if (posted) {
			post_many(s, evs, m, host, posted);
			for (i = 0; i < m; i++)
				ret_posted[idx[i]] = posted[i];
		}
	}
	for (i = 0; i < m; i += k) {
		k = batch_fit(ops + i, m - i);
		if (store_multi(s, ops + i, k, NULL) >= 0)
			continue;
		for (size_t j = i; j < i + k; j++) {
			int r = cellns_scheduled_delete(s, instances[idx[j]]);
			if (r == -ENOENT)
				error_set(&errs[idx[j]], ERR_PERM, 0, "%s: no such instance", instances[idx[j]]);
			else if (r < 0)
				error_set(&errs[idx[j]], ERR_TEMP, -r, "%s: %s", instances[idx[j]], store_strerror(r));
			failed += r < 0;
		}
	}
	for (i = 0; i < m; i++)
		free(paths[i]);
	free(paths);
	return (int)failed;
}
