/* cmd-discovery.c: treadle discovery PATTERN [PROTO:ENDPOINT] [--watch] [--check-state] [--json]
 * (Treadmill's `treadmill discovery`): the endpoints of the instances matching PATTERN, one line
 * each "<instance>:<proto>:<endpoint> <host>:<port> [up|down]"; with --watch, then every change
 * (an endpoint that appears or moves prints its line again, one that goes prints
 * "<instance>:<proto>:<endpoint>" alone) until interrupted.  Read from the store (/endpoints, its
 * watches; the state from /discovery.state/<host>, what the node read from the kernel), or from
 * the cell's API with --api (GET /endpoint/..., the stream /stream/endpoints). */
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../basic/json.h"
#include "../basic/util.h"
#include "../cellns/cellns.h"
#include "../store/store.h"
#include "cli.h"

struct disc_opts {
	const char *pattern;
	char *inst_glob, *proid_glob, *proto, *endpoint;
	const char *sep;
	bool watch, check_state, json;
};

/* One line of output.  host NULL: the endpoint went.  state: 1 up, 0 down, -1 not asked. */
static void emit(const struct disc_opts *o, const char *inst, const char *proto, const char *name, const char *host,
		 long long port, int state)
{
	if (o->json) {
		_cleanup_json_ json_t *j = json_pack("{s:s, s:s, s:s, s:s?, s:o}", "name", inst, "proto", proto,
						     "endpoint", name, "host", host, "port",
						     host ? json_integer(port) : json_null());
		_cleanup_free_ char *t = NULL;

		if (j && host && state >= 0)
			json_object_set_new(j, "state", json_string(state ? "up" : "down"));
		t = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
		if (t)
			printf("%s\n", t);
	} else if (!host)
		printf("%s:%s:%s\n", inst, proto, name);
	else if (state >= 0)
		printf("%s:%s:%s%s%s:%lld%s%s\n", inst, proto, name, o->sep, host, port, o->sep, state ? "up" : "down");
	else
		printf("%s:%s:%s%s%s:%lld\n", inst, proto, name, o->sep, host, port);
	fflush(stdout);
}

/* "host:port" -> host (malloc'ed) and port; -EINVAL if not that. */
static int split_address(const char *a, char **ret_host, long long *ret_port)
{
	const char *colon = a ? strrchr(a, ':') : NULL;
	int64_t port;

	if (!colon || colon == a || safe_atoi64(colon + 1, &port) < 0)
		return -EINVAL;
	*ret_host = strndup(a, (size_t)(colon - a));
	*ret_port = port;
	return *ret_host ? 0 : -ENOMEM;
}

/* ------------------------------------------------------------ the store */

struct ep {
	char *path; /* /endpoints/<proid>/<app>#<n>:<proto>:<name> */
	char *key;  /* <instance>:<proto>:<name>, the sort order */
	char *inst, *proto, *name;
	char *host; /* NULL: not known (yet) */
	long long port;
	int state; /* as last printed; -1 none */
	bool seen, stale, printed;
};

struct hoststate {
	char *host;
	json_t *state; /* NULL: no record */
	bool stale;
};

/* A directory whose children are followed: /endpoints itself (dirs[0]), and
 * each /endpoints/<proid> whose proid the pattern can match.  Only a dirty
 * one (new, or its watch fired) is listed again. */
struct wdir {
	char *path;
	bool dirty, armed;
};

struct view {
	struct store *s;
	const struct disc_opts *o;
	struct ep *eps;
	size_t n;
	struct hoststate *hs;
	size_t n_hs;
	struct wdir *dirs;
	size_t n_dirs;
	bool dirty;
};

static int kind_child, kind_ep, kind_state; /* watch userdata: which kind of watch fired */
static struct view *the_view;		    /* the one view of this process (for the callbacks) */

static void on_watch(struct store *s, enum store_event ev, const char *path, void *ud)
{
	struct view *v = the_view;

	if (!v || ev == STORE_EVENT_SESSION)
		return;
	v->dirty = true;
	if (ud == &kind_child) {
		for (size_t i = 0; i < v->n_dirs; i++)
			if (!strcmp(v->dirs[i].path, path))
				v->dirs[i].dirty = true, v->dirs[i].armed = false;
	} else if (ud == &kind_ep) {
		for (size_t i = 0; i < v->n; i++)
			if (!strcmp(v->eps[i].path, path))
				v->eps[i].stale = true;
	} else if (ud == &kind_state) {
		const char *host = strrchr(path, '/');

		for (size_t i = 0; host && i < v->n_hs; i++)
			if (!strcmp(v->hs[i].host, host + 1))
				v->hs[i].stale = true;
	}
}

static void ep_clear(struct ep *e)
{
	free(e->path);
	free(e->key);
	free(e->inst);
	free(e->proto);
	free(e->name);
	free(e->host);
}

static void view_free(struct view *v)
{
	for (size_t i = 0; i < v->n; i++)
		ep_clear(&v->eps[i]);
	free(v->eps);
	for (size_t i = 0; i < v->n_hs; i++) {
		free(v->hs[i].host);
		json_decref(v->hs[i].state);
	}
	free(v->hs);
	for (size_t i = 0; i < v->n_dirs; i++)
		free(v->dirs[i].path);
	free(v->dirs);
}

/* Children of d, with a child watch unless one is already set (a missing
 * directory gets a data watch: it fires when the directory is created). */
static int children(struct view *v, struct wdir *d, char ***ret)
{
	bool arm = v->o->watch && !d->armed;
	int r = store_children(v->s, d->path, ret, arm ? on_watch : NULL, &kind_child);

	if (r == -ENOENT && arm && store_exists(v->s, d->path, NULL, on_watch, &kind_child) == 0)
		r = store_children(v->s, d->path, ret, NULL, NULL); /* created meanwhile: the watch fires */
	if (arm && (r == 0 || r == -ENOENT))
		d->armed = true;
	return r;
}

static int dir_add(struct view *v, char *path)
{
	struct wdir *t = reallocarray(v->dirs, v->n_dirs + 1, sizeof(*t));

	if (!t || !path) {
		free(path);
		return -ENOMEM;
	}
	v->dirs = t;
	v->dirs[v->n_dirs++] = (struct wdir){ .path = path, .dirty = true };
	return 0;
}

/* Is ep in directory d? */
static bool in_dir(const struct ep *e, const struct wdir *d)
{
	size_t l = strlen(d->path);

	return !strncmp(e->path, d->path, l) && e->path[l] == '/';
}

static struct ep *ep_find(struct view *v, const char *path)
{
	for (size_t i = 0; i < v->n; i++)
		if (!strcmp(v->eps[i].path, path))
			return &v->eps[i];
	return NULL;
}

/* A new endpoint node in the view (not yet read). */
static int ep_add(struct view *v, const char *proid, const char *node)
{
	_cleanup_free_ char *copy = strdup(node);
	char *proto, *name;
	struct ep *t, *e;

	if (!copy)
		return -ENOMEM;
	name = strrchr(copy, ':');
	if (!name)
		return 0;
	*name++ = 0;
	proto = strrchr(copy, ':');
	if (!proto)
		return 0;
	*proto++ = 0;
	t = reallocarray(v->eps, v->n + 1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	v->eps = t;
	e = &v->eps[v->n];
	*e = (struct ep){ .state = -1, .stale = true, .seen = true };
	e->path = strdup_printf("%s/%s/%s", cellns_dir(CELLNS_ENDPOINTS), proid, node);
	e->inst = strdup_printf("%s.%s", proid, copy);
	e->proto = strdup(proto);
	e->name = strdup(name);
	e->key = e->inst ? strdup_printf("%s:%s:%s", e->inst, proto, name) : NULL;
	if (!e->path || !e->inst || !e->proto || !e->name || !e->key) {
		ep_clear(e);
		return -ENOMEM;
	}
	if (!cellns_discovery_match(v->o->pattern, v->o->proto, v->o->endpoint, e->inst, e->proto, e->name)) {
		ep_clear(e);
		return 0;
	}
	v->n++;
	return 0;
}

/* The state of host:port from /discovery.state/<host> (read once, again when its watch fires). */
static int host_state(struct view *v, const char *host, long long port)
{
	struct hoststate *h = NULL;

	for (size_t i = 0; i < v->n_hs; i++)
		if (!strcmp(v->hs[i].host, host))
			h = &v->hs[i];
	if (!h) {
		struct hoststate *t = reallocarray(v->hs, v->n_hs + 1, sizeof(*t));

		if (!t)
			return 0;
		v->hs = t;
		h = &v->hs[v->n_hs];
		*h = (struct hoststate){ .host = strdup(host), .stale = true };
		if (!h->host)
			return 0;
		v->n_hs++;
	}
	if (h->stale) {
		json_decref(h->state);
		h->state = NULL;
		/* a data watch is left also when the record is missing: it is there once the node scans */
		(void)cellns_discovery_state_get(v->s, host, &h->state, v->o->watch ? on_watch : NULL, &kind_state);
		h->stale = false;
	}
	/* no record, or no entry for the port: down (nothing says it listens) */
	return h->state && cellns_discovery_state_port(h->state, (int)port) == 1;
}

static int cmp_ep(const void *a, const void *b)
{
	return strcmp(((const struct ep *)a)->key, ((const struct ep *)b)->key);
}

/* The children of a dirty proid directory: its endpoints seen again or new. */
static int rescan_dir(struct view *v, size_t k)
{
	_cleanup_strv_free_ char **nodes = NULL;
	const char *proid = strrchr(v->dirs[k].path, '/') + 1;
	int r;

	v->dirs[k].dirty = false;
	for (size_t i = 0; i < v->n; i++)
		if (in_dir(&v->eps[i], &v->dirs[k]))
			v->eps[i].seen = false;
	r = children(v, &v->dirs[k], &nodes);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	for (char **n = nodes; *n; n++) {
		_cleanup_free_ char *path = strdup_printf("%s/%s", v->dirs[k].path, *n);
		struct ep *e;

		if (!path)
			return -ENOMEM;
		e = ep_find(v, path);
		if (e)
			e->seen = true;
		else if ((r = ep_add(v, proid, *n)) < 0)
			return r;
	}
	return 0;
}

/* List what changed (the dirty directories), read what changed, print the differences. */
static int rescan(struct view *v)
{
	size_t k;
	int r;

	if (!v->dirs && (r = dir_add(v, strdup(cellns_dir(CELLNS_ENDPOINTS)))) < 0)
		return r;
	if (v->dirs[0].dirty) {
		_cleanup_strv_free_ char **proids = NULL;

		v->dirs[0].dirty = false;
		r = children(v, &v->dirs[0], &proids);
		if (r < 0 && r != -ENOENT)
			return r;
		for (char **p = proids; p && *p; p++) {
			_cleanup_free_ char *dir = NULL;
			bool known = false;

			if (fnmatch(v->o->proid_glob, *p, FNM_NOESCAPE) != 0)
				continue;
			dir = cellns_path(CELLNS_ENDPOINTS, *p);
			if (!dir)
				return -ENOMEM;
			for (size_t i = 1; i < v->n_dirs; i++)
				known |= !strcmp(v->dirs[i].path, dir);
			if (!known && (r = dir_add(v, TAKE_PTR(dir))) < 0)
				return r;
		}
		/* a proid directory that went: its endpoints went with it */
		for (size_t i = 1; i < v->n_dirs;) {
			if (strv_contains(proids, strrchr(v->dirs[i].path, '/') + 1)) {
				i++;
				continue;
			}
			for (size_t e = 0; e < v->n; e++)
				if (in_dir(&v->eps[e], &v->dirs[i]))
					v->eps[e].seen = false;
			free(v->dirs[i].path);
			v->dirs[i] = v->dirs[--v->n_dirs];
		}
	}
	for (k = 1; k < v->n_dirs; k++)
		if (v->dirs[k].dirty && (r = rescan_dir(v, k)) < 0)
			return r;
	if (v->n > 1) /* an empty list may have no array: qsort(NULL, 0) is undefined */
		qsort(v->eps, v->n, sizeof(*v->eps), cmp_ep);
	for (k = 0; k < v->n;) {
		struct ep *e = &v->eps[k];

		if (e->seen && e->stale) {
			_cleanup_free_ char *data = NULL, *host = NULL;
			long long port = 0;

			e->stale = false;
			r = store_get(v->s, e->path, &data, NULL, NULL, v->o->watch ? on_watch : NULL, &kind_ep);
			if (r < 0 && r != -ENOENT)
				return r;
			if (r == 0 && split_address(data, &host, &port) == 0) {
				if (!e->host || strcmp(e->host, host) || e->port != port) {
					free(e->host);
					e->host = TAKE_PTR(host);
					e->port = port;
					e->printed = false; /* appeared or moved */
				}
			} else
				e->seen = false; /* gone (or not an address) */
		}
		if (!e->seen) {
			if (e->printed && v->o->watch)
				emit(v->o, e->inst, e->proto, e->name, NULL, 0, -1);
			ep_clear(e);
			memmove(e, e + 1, (v->n - k - 1) * sizeof(*e));
			v->n--;
			continue;
		}
		if (e->host) {
			int st = v->o->check_state ? host_state(v, e->host, e->port) : -1;

			if (!e->printed || st != e->state) {
				emit(v->o, e->inst, e->proto, e->name, e->host, e->port, st);
				e->printed = true;
				e->state = st;
			}
		}
		k++;
	}
	return 0;
}

static int discovery_store(struct store *s, const struct disc_opts *o)
{
	struct view v = { .s = s, .o = o };
	int r;

	the_view = &v;
	r = rescan(&v);
	while (r >= 0 && o->watch) {
		r = store_wait(s, 1000);
		if (r < 0)
			break;
		if (store_state(s) == STORE_EXPIRED) {
			r = -ESHUTDOWN;
			break;
		}
		if (v.dirty) {
			v.dirty = false;
			r = rescan(&v);
		}
	}
	the_view = NULL;
	view_free(&v);
	if (r < 0) {
		fprintf(stderr, "treadle: discovery: reading %s: %s\n", cellns_dir(CELLNS_ENDPOINTS), store_strerror(r));
		return store_error_code(r);
	}
	return EXIT_OK;
}

/* -------------------------------------------------------------- the API */

/* "/endpoint/<pattern>/<proto>/<endpoint>", each part percent-encoded. */
static char *api_endpoint_path(const char *pattern, const char *proto, const char *endpoint)
{
	_cleanup_free_ char *a = cli_api_path("endpoint", pattern), *b = cli_api_path("x", proto);
	_cleanup_free_ char *c = cli_api_path("x", endpoint);

	if (!a || !b || !c)
		return NULL;
	return strdup_printf("%s%s%s", a, b + 2, c + 2);
}

/* The API's list: [{name, proto, endpoint, host, port, state}]. */
static int api_list(const char *api, const struct disc_opts *o, const char *pattern, json_t **ret)
{
	_cleanup_free_ char *path = api_endpoint_path(pattern, o->proto, o->endpoint);

	if (!path)
		return -EXIT_TEMP;
	return cli_api_get(api, path, ret);
}

static int api_state(const json_t *e)
{
	const char *st = json_string_value(json_object_get(e, "state"));

	return st && !strcmp(st, "up");
}

static void api_emit(const struct disc_opts *o, const json_t *e, int state)
{
	emit(o, json_string_value(json_object_get(e, "name")), json_string_value(json_object_get(e, "proto")),
	     json_string_value(json_object_get(e, "endpoint")), json_string_value(json_object_get(e, "host")),
	     json_integer_value(json_object_get(e, "port")), state);
}

struct api_watch {
	const char *api;
	const struct disc_opts *o;
	bool snapshot_done;
	int rc;
};

static int on_message(json_t *m, void *ud)
{
	struct api_watch *w = ud;
	const char *inst, *proto, *name;
	int st = -1;

	if (!m)
		return 0;
	if (json_object_get(m, "sow_end")) {
		w->snapshot_done = true;
		return !w->o->watch;
	}
	inst = json_string_value(json_object_get(m, "name"));
	proto = json_string_value(json_object_get(m, "proto"));
	name = json_string_value(json_object_get(m, "endpoint"));
	if (!inst || !proto || !name ||
	    !cellns_discovery_match(w->o->pattern, w->o->proto, w->o->endpoint, inst, proto, name))
		return 0;
	if (json_is_string(json_object_get(m, "host")) && w->o->check_state) {
		/* the state of this one endpoint, as the API reads it (/discovery.state) */
		_cleanup_free_ char *path = api_endpoint_path(inst, proto, name);
		_cleanup_json_ json_t *l = NULL;

		st = 0;
		if (path && cli_api_get(w->api, path, &l) == 0 && json_array_size(l) > 0)
			st = api_state(json_array_get(l, 0));
	}
	if (!json_is_string(json_object_get(m, "host")))
		emit(w->o, inst, proto, name, NULL, 0, -1);
	else
		api_emit(w->o, m, st);
	return 0;
}

static int discovery_api(const char *api, const struct disc_opts *o)
{
	struct error err = ERROR_INIT;
	struct api_watch w = { .api = api, .o = o };

	if (!o->watch) {
		_cleanup_json_ json_t *l = NULL;
		size_t i;
		json_t *e;
		int r = api_list(api, o, o->pattern, &l);

		if (r < 0)
			return -r;
		json_array_foreach(l, i, e) {
			const char *inst = json_string_value(json_object_get(e, "name"));
			const char *proto = json_string_value(json_object_get(e, "proto"));
			const char *name = json_string_value(json_object_get(e, "endpoint"));

			if (inst && proto && name &&
			    cellns_discovery_match(o->pattern, o->proto, o->endpoint, inst, proto, name))
				api_emit(o, e, o->check_state ? api_state(e) : -1);
		}
		return EXIT_OK;
	}
	if (cli_api_stream(api, "endpoints", o->inst_glob, on_message, &w, &err) < 0)
		return error_report(&err);
	return EXIT_OK;
}

/* ------------------------------------------------------------- command */

const struct cli_option discovery_options[] = {
	{ "watch", 'w', NULL, "then print every change (appears, moves, goes) until interrupted" },
	{ "check-state", 'c', NULL, "add whether each endpoint is up (listening, or ready) or down" },
	{ "separator", 's', "SEP", "between the fields of a line (default one space)" },
	{ "json", 'j', NULL, "one JSON object a line: name, proto, endpoint, host, port[, state]" },
	CLI_OPTION_ROOT,
	CLI_OPTION_STORE,
	CLI_OPTION_API,
	CLI_OPTIONS_END,
};

int cmd_discovery(int argc, char **argv)
{
	const char *root = NULL, *store_url = NULL, *api = NULL;
	_cleanup_store_ struct store *s = NULL;
	struct disc_opts o = { .sep = " " };
	struct error err = ERROR_INIT;
	int c, r;

	optind = 0;
	while ((c = cli_getopt(argc, argv, discovery_options, false)) >= 0) {
		switch (c) {
		case 'w': o.watch = true; break;
		case 'c': o.check_state = true; break;
		case 's': o.sep = optarg; break;
		case 'j': o.json = true; break;
		case CLI_OPT_ROOT: root = optarg; break;
		case CLI_OPT_STORE: store_url = optarg; break;
		case CLI_OPT_API: api = optarg; break;
		default: return cli_usage_error("discovery", "bad option");
		}
	}
	if (optind >= argc)
		return cli_usage_error("discovery", "missing PATTERN (<proid>.<app glob>[#<instance>])");
	if (optind + 2 < argc)
		return cli_usage_error("discovery", "unexpected argument '%s'", argv[optind + 2]);
	o.pattern = argv[optind];
	if (!*o.pattern || strchr(o.pattern, '/'))
		return cli_usage_error("discovery", "PATTERN: not an app pattern: '%s'", o.pattern);
	r = cellns_discovery_split(optind + 1 < argc ? argv[optind + 1] : NULL, &o.proto, &o.endpoint);
	if (r == -EINVAL)
		return cli_usage_error("discovery", "PROTO:ENDPOINT: expected [<proto glob>:]<endpoint glob>, got '%s'",
				       argv[optind + 1]);
	o.inst_glob = cellns_discovery_instance_glob(o.pattern);
	o.proid_glob = cellns_discovery_proid_glob(o.pattern);
	if (r < 0 || !o.inst_glob || !o.proid_glob) {
		r = EXIT_TEMP;
		goto out;
	}
	if (cli_api_url(api)) {
		r = discovery_api(cli_api_url(api), &o);
		goto out;
	}
	r = o.watch ? cli_store_open(root, store_url, &s, &err) : cli_store_open_ro(root, store_url, &s, &err);
	r = r < 0 ? error_report(&err) : discovery_store(s, &o);
out:
	free(o.proto);
	free(o.endpoint);
	free(o.inst_glob);
	free(o.proid_glob);
	return r;
}
