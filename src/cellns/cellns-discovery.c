/* cellns-discovery.c: the cell namespace's discovery part (cellns.h "discovery"):
 * Treadmill's discovery matching, the node's /discovery/<host> and
 * /discovery.state/<host> records, and the identity-group presence
 * /identity-groups/<group>/<identity> (docs/FORMATS.md "Presence written by
 * the node agent").  A part of cellns kept in its own file; it builds its
 * paths with cellns_path*() like every caller. */
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../basic/json.h"
#include "../basic/util.h"
#include "cellns.h"

/* One path component (cellns.c's rule). */
static bool name_ok(const char *n)
{
	return n && *n && *n != '.' && !strchr(n, '/');
}

static char *dup_string(const json_t *v)
{
	return json_is_string(v) ? strdup(json_string_value(v)) : NULL;
}

/* d/name for a name that is one path component. */
static int named_path(enum cellns_dir d, const char *name, char **ret)
{
	if (!name_ok(name))
		return -EINVAL;
	*ret = cellns_path(d, name);
	return *ret ? 0 : -ENOMEM;
}

/* Create path with data; a missing parent is created and the create retried. */
static int create_in(struct store *s, const char *dir, const char *path, const char *data, int flags)
{
	size_t len = data ? strlen(data) : 0;
	int r = store_create(s, path, data, len, flags, NULL);

	if (r == -ENOENT) {
		r = store_create_p(s, dir);
		if (r < 0 && r != -EEXIST)
			return r;
		r = store_create(s, path, data, len, flags, NULL);
	}
	return r;
}

char *cellns_discovery_instance_glob(const char *pattern)
{
	if (!pattern)
		return NULL;
	return strchr(pattern, '#') ? strdup(pattern) : strdup_printf("%s#*", pattern);
}

char *cellns_discovery_proid_glob(const char *pattern)
{
	size_t n;

	if (!pattern)
		return NULL;
	n = strcspn(pattern, ".#");
	return strndup(pattern, n);
}

bool cellns_discovery_match(const char *pattern, const char *proto_glob, const char *endpoint_glob,
			    const char *instance, const char *proto, const char *endpoint)
{
	_cleanup_free_ char *full = cellns_discovery_instance_glob(pattern);

	if (!full || !instance || !proto || !endpoint)
		return false;
	return fnmatch(full, instance, FNM_NOESCAPE) == 0 &&
	       fnmatch(proto_glob ? proto_glob : "*", proto, FNM_NOESCAPE) == 0 &&
	       fnmatch(endpoint_glob ? endpoint_glob : "*", endpoint, FNM_NOESCAPE) == 0;
}

int cellns_discovery_split(const char *arg, char **ret_proto, char **ret_endpoint)
{
	const char *colon = arg ? strchr(arg, ':') : NULL;
	_cleanup_free_ char *p = NULL, *e = NULL;

	if (!arg) {
		p = strdup("*");
		e = strdup("*");
	} else if (!colon) {
		p = strdup("*");
		e = strdup(arg);
	} else {
		if (colon == arg || !colon[1] || strchr(colon + 1, ':'))
			return -EINVAL;
		p = strndup(arg, (size_t)(colon - arg));
		e = strdup(colon + 1);
	}
	if (!p || !e)
		return -ENOMEM;
	if (!*e)
		return -EINVAL;
	*ret_proto = TAKE_PTR(p);
	*ret_endpoint = TAKE_PTR(e);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

char *cellns_discovery_format(char *const *entries, size_t n)
{
	_cleanup_json_ json_t *l = json_array();

	if (!l)
		return NULL;
	if (n)
		qsort((void *)entries, n, sizeof(*entries), cmp_str);
	for (size_t i = 0; i < n; i++)
		if (json_array_append_new(l, json_string(entries[i])) < 0)
			return NULL;
	return cellns_dumps(l);
}

char *cellns_discovery_state_format(const int *real_ports, const bool *up, size_t n)
{
	_cleanup_json_ json_t *o = json_object();

	if (!o)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		char k[16];

		snprintf(k, sizeof(k), "%d", real_ports[i]);
		if (json_object_set_new(o, k, json_integer(up[i] ? 1 : 0)) < 0)
			return NULL;
	}
	return cellns_dumps(o);
}

/* An ephemeral node of this session holding data: created, or overwritten
 * when this session's; -EBUSY when another session's. */
static int ephemeral_set(struct store *s, const char *dir, const char *path, const char *data)
{
	struct store_stat st;
	int r = create_in(s, dir, path, data, STORE_EPHEMERAL);

	if (r != -EEXIST)
		return r;
	r = store_exists(s, path, &st, NULL, NULL);
	if (r == -ENOENT) /* gone meanwhile: once more */
		return create_in(s, dir, path, data, STORE_EPHEMERAL);
	if (r < 0)
		return r;
	if (st.ephemeral_owner != store_session_id(s))
		return -EBUSY;
	return store_set(s, path, data, strlen(data), -1, NULL);
}

int cellns_discovery_publish(struct store *s, const char *host, const char *text)
{
	_cleanup_free_ char *p = NULL;
	int r = text ? named_path(CELLNS_DISCOVERY, host, &p) : -EINVAL;

	return r < 0 ? r : ephemeral_set(s, cellns_dir(CELLNS_DISCOVERY), p, text);
}

int cellns_discovery_state_publish(struct store *s, const char *host, const char *text)
{
	_cleanup_free_ char *p = NULL;
	int r = text ? named_path(CELLNS_DISCOVERY_STATE, host, &p) : -EINVAL;

	return r < 0 ? r : ephemeral_set(s, cellns_dir(CELLNS_DISCOVERY_STATE), p, text);
}

int cellns_discovery_state_get(struct store *s, const char *host, json_t **ret, store_watch_fn watch,
			       void *userdata)
{
	_cleanup_free_ char *p = NULL, *data = NULL;
	json_t *j;
	int r;

	*ret = NULL;
	r = named_path(CELLNS_DISCOVERY_STATE, host, &p);
	if (r < 0)
		return r;
	r = store_get(s, p, &data, NULL, NULL, watch, userdata);
	if (r < 0)
		return r;
	j = data ? json_loads(data, 0, NULL) : NULL;
	if (!json_is_object(j)) {
		json_decref(j);
		return -EBADMSG;
	}
	*ret = j;
	return 0;
}

int cellns_discovery_state_port(const json_t *state, int real_port)
{
	char k[16];
	json_t *v;

	snprintf(k, sizeof(k), "%d", real_port);
	v = json_object_get(state, k);
	if (!json_is_integer(v))
		return -ENOENT;
	return json_integer_value(v) ? 1 : 0;
}

static int identity_path(const char *group, int identity, char **ret_dir, char **ret_path)
{
	char id[16];

	if (!name_ok(group) || identity < 0)
		return -EINVAL;
	snprintf(id, sizeof(id), "%d", identity);
	*ret_dir = cellns_path(CELLNS_IDENTITY_GROUPS, group);
	*ret_path = *ret_dir ? cellns_path2(CELLNS_IDENTITY_GROUPS, group, id) : NULL;
	return *ret_path ? 0 : -ENOMEM;
}

/* The "app" of an identity presence node (NULL when unreadable). */
static char *identity_holder(struct store *s, const char *path, struct store_stat *st)
{
	_cleanup_free_ char *data = NULL;
	_cleanup_json_ json_t *j = NULL;

	if (store_get(s, path, &data, NULL, st, NULL, NULL) < 0 || !data)
		return NULL;
	j = json_loads(data, 0, NULL);
	return dup_string(json_object_get(j, "app"));
}

int cellns_identity_publish(struct store *s, const char *group, int identity, const char *instance,
			    const char *host)
{
	_cleanup_free_ char *dir = NULL, *p = NULL, *d = NULL, *holder = NULL;
	_cleanup_json_ json_t *j = NULL;
	struct store_stat st;
	int r = instance && host ? identity_path(group, identity, &dir, &p) : -EINVAL;

	if (r < 0)
		return r;
	j = json_pack("{s:s, s:s}", "app", instance, "host", host);
	d = j ? cellns_dumps(j) : NULL;
	if (!d)
		return -ENOMEM;
	r = create_in(s, dir, p, d, STORE_EPHEMERAL);
	if (r != -EEXIST)
		return r;
	holder = identity_holder(s, p, &st);
	if (holder && !strcmp(holder, instance) && st.ephemeral_owner == store_session_id(s))
		return 0;
	return -EBUSY;
}

int cellns_identity_unpublish(struct store *s, const char *group, int identity, const char *instance)
{
	_cleanup_free_ char *dir = NULL, *p = NULL, *holder = NULL;
	struct store_stat st;
	int r = instance ? identity_path(group, identity, &dir, &p) : -EINVAL;

	if (r < 0)
		return r;
	holder = identity_holder(s, p, &st);
	if (!holder || strcmp(holder, instance) || st.ephemeral_owner != store_session_id(s))
		return 0;
	r = store_delete(s, p, st.version);
	return r == -ENOENT || r == -ESTALE ? 0 : r;
}
