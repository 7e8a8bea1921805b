/* api-routes.c: the REST resources of `treadle api` (Treadmill's §8.2 shapes
 * that treadle has) and the Prometheus metrics of the cell.  Each handler
 * reads or writes the store through cellns/admin/trace/sched, exactly as the
 * CLI does, and answers JSON (docs/API.md). */
#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../admin/admin.h"
#include "../basic/json.h"
#include "../basic/util.h"
#include "../cellns/cellns.h"
#include "../manifest/manifest.h"
#include "../sched/sched-loader.h"
#include "../sched/sched.h"
#include "../store/store.h"
#include "../trace/trace.h"
#include "api-internal.h"

#define COUNT_MAX 1000

void api_reply_error(struct api_reply *rp, unsigned status, const char *fmt, ...)
{
	_cleanup_free_ char *msg = NULL;
	json_t *lines;
	va_list ap;

	va_start(ap, fmt);
	msg = strdup_vprintf(fmt, ap);
	va_end(ap);
	json_decref(rp->json);
	rp->status = status;
	rp->json = json_pack("{s:s}", "message", msg ? msg : "out of memory");
	if (rp->json && msg && strchr(msg, '\n')) {
		lines = json_array();
		for (char *p = msg, *nl; p && *p; p = nl ? nl + 1 : NULL) {
			nl = strchr(p, '\n');
			json_array_append_new(lines, nl ? json_stringn(p, (size_t)(nl - p)) : json_string(p));
		}
		json_object_set_new(rp->json, "errors", lines);
	}
}

const char *api_arg(const struct api_request *rq, const char *name)
{
	return api_mhd.lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, name);
}

/* The HTTP status of a failure of the error convention. */
static unsigned status_of(const struct error *err)
{
	if (err->code == ERR_TEMP)
		return MHD_HTTP_SERVICE_UNAVAILABLE;
	if (err->msg && strstr(err->msg, "no such"))
		return MHD_HTTP_NOT_FOUND;
	return MHD_HTTP_BAD_REQUEST;
}

static void reply_err(struct api_reply *rp, struct error *err)
{
	api_reply_error(rp, status_of(err), "%s", err->msg ? err->msg : "failed");
	error_clear(err);
}

static void reply_store(struct api_reply *rp, const char *what, int r)
{
	api_reply_error(rp, store_error_code(r) == ERR_TEMP ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_INTERNAL_SERVER_ERROR,
			"%s: %s", what, store_strerror(r));
}

static void reply_json(struct api_reply *rp, json_t *j)
{
	if (!j) {
		api_reply_error(rp, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
		return;
	}
	rp->status = MHD_HTTP_OK;
	rp->json = j;
}

bool api_match(const char *pattern, const char *name)
{
	_cleanup_free_ char *p = NULL;

	if (!pattern || !*pattern)
		return true;
	if (fnmatch(pattern, name, 0) == 0)
		return true;
	if (strchr(pattern, '#'))
		return false;
	p = strdup_printf("%s#*", pattern);
	return p && fnmatch(p, name, 0) == 0;
}

/* The proid of an app or instance name: what comes before the first '.'. */
static char *proid_of(const char *name)
{
	const char *dot = strchr(name, '.');

	return dot ? strndup(name, (size_t)(dot - name)) : strdup(name);
}

/* May the peer change instances of name's proid?  NULL if so, else why not (static text or owned in *buf). */
static const char *may_change(const struct api_peer *p, const char *verb, const char *name, char **buf)
{
	_cleanup_free_ char *proid = proid_of(name);

	if (p->role == API_ROLE_ROOT)
		return NULL;
	if (p->role == API_ROLE_USER && p->user && proid && strcmp(p->user, proid) == 0)
		return NULL;
	*buf = strdup_printf("%s %s may not %s instances of proid '%s'", p->role == API_ROLE_USER ? "user" : "reader",
			     p->user ? p->user : "(anonymous)", verb, proid ? proid : name);
	return *buf ? *buf : "permission denied";
}

/* ----------------------------------------------------------- instance */

static void instance_list(struct api_ctx *a, const struct api_request *rq, struct api_reply *rp)
{
	_cleanup_strv_free_ char **names = NULL;
	const char *match = api_arg(rq, "match");
	json_t *list = json_array();
	int r;

	r = cellns_list(a->s, CELLNS_SCHEDULED, &names, NULL, NULL);
	if (r < 0 && r != -ENOENT) {
		json_decref(list);
		return reply_store(rp, "instance", r);
	}
	for (size_t i = 0; names && names[i]; i++)
		if (api_match(match, names[i]))
			json_array_append_new(list, json_string(names[i]));
	reply_json(rp, list);
}

static void instance_get(struct api_ctx *a, const char *id, struct api_reply *rp)
{
	json_t *m = NULL;
	int r = cellns_scheduled_get(a->s, id, &m, NULL);

	if (r == -ENOENT || r == -EINVAL)
		return api_reply_error(rp, MHD_HTTP_NOT_FOUND, "%s: no such instance", id);
	if (r < 0)
		return reply_store(rp, "instance", r);
	json_object_set_new(m, "_id", json_string(id));
	reply_json(rp, m);
}

/* POST /instance/<app>?count=N&env=E, body the manifest (YAML or JSON): as `treadle run`. */
static void instance_create(struct api_ctx *a, const struct api_request *rq, const char *app, struct api_reply *rp)
{
	_cleanup_json_ json_t *m = NULL;
	_cleanup_free_ char *data = NULL, *why_buf = NULL;
	const char *count_s = api_arg(rq, "count"), *env = api_arg(rq, "env"), *why;
	struct error err = ERROR_INIT;
	json_t *ids;
	int64_t count = 1;
	int r;

	why = may_change(rq->peer, "create", app, &why_buf);
	if (why)
		return api_reply_error(rp, MHD_HTTP_FORBIDDEN, "run: %s", why);
	if (count_s && (safe_atoi64(count_s, &count) < 0 || count < 1 || count > COUNT_MAX))
		return api_reply_error(rp, MHD_HTTP_BAD_REQUEST, "run: count: expected 1..%d, got '%s'", COUNT_MAX, count_s);
	r = manifest_load(rq->body ? rq->body : "{}", rq->body ? rq->body_len : 2, MANIFEST_AUTO, "the manifest", &m, &err);
	if (r >= 0)
		r = manifest_check_json_size(m, "the manifest", &err);
	if (r >= 0)
		r = manifest_check_appname(app, a->check_user, &err);
	if (r >= 0)
		r = manifest_schedule(m, app, env, &err);
	if (r < 0)
		return reply_err(rp, &err);
	data = manifest_dumps(m);
	ids = json_array();
	if (!data || !ids) {
		json_decref(ids);
		return api_reply_error(rp, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	}
	for (int64_t i = 0; i < count; i++) {
		_cleanup_free_ char *inst = NULL;
		bool posted;

		if (admin_schedule(a->s, app, data, a->host, &inst, &posted, &err) < 0) {
			json_decref(ids);
			error_prefix(&err, "run");
			return reply_err(rp, &err);
		}
		json_array_append_new(ids, json_string(inst));
	}
	rp->status = MHD_HTTP_CREATED;
	rp->json = json_pack("{s:o}", "instances", ids);
}

/* Delete instances after checking every one may be deleted (a denial changes nothing). */
static void instance_delete(struct api_ctx *a, const struct api_request *rq, json_t *ids, struct api_reply *rp)
{
	struct error err = ERROR_INIT;
	json_t *done = json_array(), *errors = json_array(), *v;
	size_t i;

	json_array_foreach(ids, i, v) {
		_cleanup_free_ char *why_buf = NULL;
		const char *why;

		if (!json_is_string(v)) {
			json_decref(done), json_decref(errors);
			return api_reply_error(rp, MHD_HTTP_BAD_REQUEST, "stop: instances[%zu]: expected a string", i);
		}
		why = may_change(rq->peer, "delete", json_string_value(v), &why_buf);
		if (why) {
			json_decref(done), json_decref(errors);
			return api_reply_error(rp, MHD_HTTP_FORBIDDEN, "stop: %s", why);
		}
	}
	json_array_foreach(ids, i, v) {
		bool posted = true;

		if (admin_unschedule(a->s, json_string_value(v), a->host, &posted, &err) < 0) {
			error_prefix(&err, "stop");
			if (json_array_size(ids) == 1) {
				json_decref(done), json_decref(errors);
				return reply_err(rp, &err);
			}
			json_array_append_new(errors, json_pack("{s:s, s:s}", "_id", json_string_value(v), "message", err.msg));
			error_clear(&err);
		} else
			json_array_append(done, v);
	}
	reply_json(rp, json_pack("{s:o, s:o}", "instances", done, "errors", errors));
}

static void route_instance(struct api_ctx *a, const struct api_request *rq, struct api_reply *rp)
{
	const char *m = rq->method;

	if (rq->n_parts == 1 && strcmp(m, "GET") == 0)
		return instance_list(a, rq, rp);
	if (rq->n_parts == 3 && strcmp(rq->parts[1], "_bulk") == 0 && strcmp(rq->parts[2], "delete") == 0 &&
	    strcmp(m, "POST") == 0) {
		_cleanup_json_ json_t *body = rq->body ? json_loadb(rq->body, rq->body_len, 0, NULL) : NULL;
		json_t *ids = json_object_get(body, "instances");

		if (!json_is_array(ids))
			return api_reply_error(rp, MHD_HTTP_BAD_REQUEST, "stop: the body must be {\"instances\": [...]}");
		return instance_delete(a, rq, ids, rp);
	}
	if (rq->n_parts != 2)
		return api_reply_error(rp, MHD_HTTP_NOT_FOUND, "no such resource");
	if (strcmp(m, "GET") == 0)
		return instance_get(a, rq->parts[1], rp);
	if (strcmp(m, "POST") == 0)
		return instance_create(a, rq, rq->parts[1], rp);
	if (strcmp(m, "DELETE") == 0) {
		_cleanup_json_ json_t *ids = json_pack("[s]", rq->parts[1]);

		return instance_delete(a, rq, ids, rp);
	}
	api_reply_error(rp, MHD_HTTP_METHOD_NOT_ALLOWED, "%s: method not allowed", m);
}

/* -------------------------------------------------------------- state */

static void route_state(struct api_ctx *a, const struct api_request *rq, struct api_reply *rp)
{
	const char *match = api_arg(rq, "match"), *fin = api_arg(rq, "finished"), *id = rq->n_parts == 2 ? rq->parts[1] : NULL;
	bool finished = id || (fin && strcmp(fin, "0") != 0 && strcmp(fin, "false") != 0);
	struct cellns_instance *v = NULL;
	json_t *list;
	size_t n = 0;
	int r;

	if (rq->n_parts > 2)
		return api_reply_error(rp, MHD_HTTP_NOT_FOUND, "no such resource");
	r = cellns_instances(a->s, true, finished, &v, &n);
	if (r < 0)
		return reply_store(rp, "state", r);
	list = json_array();
	for (size_t i = 0; i < n && list; i++) {
		if (id ? strcmp(v[i].name, id) != 0 : !api_match(match, v[i].name))
			continue;
		if (id) {
			json_decref(list);
			list = trace_instance_json(&v[i]);
			break;
		}
		json_array_append_new(list, trace_instance_json(&v[i]));
	}
	cellns_instances_free(v, n);
	if (id && json_is_array(list)) {
		json_decref(list);
		return api_reply_error(rp, MHD_HTTP_NOT_FOUND, "%s: no such instance", id);
	}
	reply_json(rp, list);
}

/* ----------------------------------------------------------- endpoint */

static void route_endpoint(struct api_ctx *a, const struct api_request *rq, struct api_reply *rp)
{
	const char *pattern = rq->n_parts > 1 ? rq->parts[1] : "*";
	const char *proto = rq->n_parts > 2 ? rq->parts[2] : "*", *ep = rq->n_parts > 3 ? rq->parts[3] : "*";
	_cleanup_free_ char *pat = strchr(pattern, '#') ? strdup(pattern) : strdup_printf("%s#*", pattern);
	struct cellns_endpoint *eps = NULL;
	_cleanup_json_ json_t *states = json_object();
	json_t *list;
	size_t n = 0;
	int r;

	if (rq->n_parts > 4 || !pat || !states)
		return api_reply_error(rp, MHD_HTTP_NOT_FOUND, "no such resource");
	r = cellns_endpoints_list(a->s, pat, &eps, &n);
	if (r < 0)
		return reply_store(rp, "endpoint", r);
	list = json_array();
	for (size_t i = 0; i < n; i++) {
		const char *colon = strrchr(eps[i].address, ':');
		_cleanup_free_ char *host = colon ? strndup(eps[i].address, (size_t)(colon - eps[i].address)) : NULL;
		int64_t port = 0;

		if (fnmatch(proto, eps[i].proto, 0) != 0 || fnmatch(ep, eps[i].name, 0) != 0)
			continue;
		if (colon)
			safe_atoi64(colon + 1, &port);
		/* Treadmill's state: whether the node found the port up (/discovery.state/<host>) */
		if (host && !json_object_get(states, host)) {
			json_t *st = NULL;

			(void)cellns_discovery_state_get(a->s, host, &st, NULL, NULL);
			json_object_set_new(states, host, st ? st : json_object());
		}
		json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s?, s:I, s:s}", "name", eps[i].instance, "proto",
						      eps[i].proto, "endpoint", eps[i].name, "host", host, "port",
						      (json_int_t)port, "state",
						      host && cellns_discovery_state_port(json_object_get(states, host),
											  (int)port) == 1
							      ? "up"
							      : "down"));
	}
	cellns_endpoints_free(eps, n);
	reply_json(rp, list);
}

/* ------------------------------------------------------------- server */

static json_t *server_json(struct api_ctx *a, const char *host, int *ret)
{
	struct cellns_server srv = { 0 };
	enum cellns_server_state st = CELLNS_STATE_UNKNOWN;
	_cleanup_free_ char *reason = NULL;
	bool present = false;
	double since = 0;
	json_t *j;

	*ret = cellns_server_get(a->s, host, &srv);
	if (*ret < 0)
		return NULL;
	j = json_deep_copy(srv.json ? srv.json : json_object());
	cellns_server_clear(&srv);
	if (!j)
		return NULL;
	json_object_set_new(j, "_id", json_string(host));
	if (cellns_server_state_get(a->s, host, &st, &since) >= 0 && cellns_server_state_name(st))
		json_object_set_new(j, "state", json_string(cellns_server_state_name(st)));
	cellns_presence_find(a->s, host, &present);
	json_object_set_new(j, "present", json_boolean(present));
	if (cellns_blackout_server_reason(a->s, host, &reason) >= 0)
		json_object_set_new(j, "blackout", json_string(reason ? reason : ""));
	return j;
}

static void route_server(struct api_ctx *a, const struct api_request *rq, struct api_reply *rp)
{
	_cleanup_strv_free_ char **names = NULL;
	json_t *list, *j;
	int r;

	if (rq->n_parts == 2) {
		j = server_json(a, rq->parts[1], &r);
		if (r == -ENOENT || r == -EINVAL)
			return api_reply_error(rp, MHD_HTTP_NOT_FOUND, "%s: no such server", rq->parts[1]);
		if (r < 0)
			return reply_store(rp, "server", r);
		return reply_json(rp, j);
	}
	if (rq->n_parts != 1)
		return api_reply_error(rp, MHD_HTTP_NOT_FOUND, "no such resource");
	r = cellns_list(a->s, CELLNS_SERVERS, &names, NULL, NULL);
	if (r < 0 && r != -ENOENT)
		return reply_store(rp, "server", r);
	list = json_array();
	for (size_t i = 0; names && names[i]; i++)
		if (api_match(api_arg(rq, "match"), names[i]) && (j = server_json(a, names[i], &r)))
			json_array_append_new(list, j);
	reply_json(rp, list);
}

/* ------------------------------------ allocation, cell, identity-group */

static void route_admin_list(struct api_ctx *a, const struct api_request *rq, const char *what, struct api_reply *rp)
{
	struct error err = ERROR_INIT;
	json_t *j = NULL, *v, *one = NULL;
	size_t i;

	if (admin_list(a->s, what, &j, &err) < 0)
		return reply_err(rp, &err);
	if (rq->n_parts == 1)
		return reply_json(rp, j);
	/* One object: by "_id"/"name" in a list, or a key of an object. */
	if (json_is_object(j))
		one = json_incref(json_object_get(j, rq->parts[1]));
	else
		json_array_foreach(j, i, v) {
			const char *id = json_string_value(json_object_get(v, "name"));

			if (!id)
				id = json_string_value(json_object_get(v, "_id"));
			if (!id && json_is_string(v))
				id = json_string_value(v);
			if (id && (strcmp(id, rq->parts[1]) == 0 || (rq->n_parts == 3 && startswith(id, rq->parts[1]) &&
					id[strlen(rq->parts[1])] == '/' && strcmp(id + strlen(rq->parts[1]) + 1, rq->parts[2]) == 0))) {
				one = json_incref(v);
				break;
			}
		}
	json_decref(j);
	if (!one)
		return api_reply_error(rp, MHD_HTTP_NOT_FOUND, "%s: no such %s", rq->parts[1], rq->parts[0]);
	reply_json(rp, one);
}

/* -------------------------------------------------------------- trace */

static json_t *event_json(const struct trace_event *ev)
{
	return json_pack("{s:f, s:s, s:s, s:s, s:s, s:s?}", "timestamp", ev->timestamp, "instanceid", ev->instanceid,
			 "source", ev->source ? ev->source : "", "event_type", trace_type_name(ev->type), "data",
			 ev->data ? ev->data : "", "payload", ev->payload);
}

static void route_trace(struct api_ctx *a, const struct api_request *rq, struct api_reply *rp)
{
	const char *name;
	json_t *list;
	int r;

	if (rq->n_parts != 2)
		return api_reply_error(rp, MHD_HTTP_NOT_FOUND, "no such resource");
	name = rq->parts[1];
	list = json_array();
	if (strchr(name, '#')) {
		struct trace_event *evs = NULL;
		size_t n = 0;
		char shard[5];

		if (trace_shard(name, shard) < 0) {
			json_decref(list);
			return api_reply_error(rp, MHD_HTTP_BAD_REQUEST, "trace: '%s' is not an instance id (<proid>.<app>#<seq>)", name);
		}
		r = trace_read(a->s, name, &evs, &n);
		if (r < 0 && r != -ENOENT) {
			json_decref(list);
			return reply_store(rp, "trace", r);
		}
		for (size_t i = 0; i < n; i++)
			json_array_append_new(list, event_json(&evs[i]));
		trace_events_free(evs, n);
		if (n == 0) {
			json_decref(list);
			return api_reply_error(rp, MHD_HTTP_NOT_FOUND, "trace: %s: no trace", name);
		}
		return reply_json(rp, json_pack("{s:s, s:o}", "name", name, "events", list));
	} else {
		struct cellns_instance *v = NULL;
		_cleanup_free_ char *pat = strdup_printf("%s#*", name);
		size_t n = 0;

		r = cellns_instances(a->s, true, true, &v, &n);
		if (r < 0) {
			json_decref(list);
			return reply_store(rp, "trace", r);
		}
		for (size_t i = 0; i < n; i++)
			if (pat && fnmatch(pat, v[i].name, 0) == 0)
				json_array_append_new(list, json_string(v[i].name));
		cellns_instances_free(v, n);
		return reply_json(rp, json_pack("{s:s, s:o}", "name", name, "instances", list));
	}
}

/* ---------------------------------------------------------- scheduler */

/* The scheduler's dimensions, in the order of its resource vectors. */
static const char *const dim_names[] = { "memory", "cpu", "disk" };
#define N_DIMS 3

static json_t *dims_json(const int64_t *v)
{
	json_t *o = json_object();

	for (int d = 0; d < N_DIMS && o; d++)
		json_object_set_new(o, dim_names[d], json_integer(v[d]));
	return o;
}

static json_t *dims_json_f(const double *v)
{
	json_t *o = json_object();

	for (int d = 0; d < N_DIMS && o; d++)
		json_object_set_new(o, dim_names[d], json_real(v[d]));
	return o;
}

static const char *sched_state_name(enum sched_state st)
{
	return st == SCHED_UP ? "up" : st == SCHED_DOWN ? "down" : "frozen";
}

/* GET /scheduler/servers: each server of the model with its capacity, free and used per dimension. */
static json_t *sched_servers_json(struct sched_cell *c)
{
	json_t *list = json_array();

	for (int s = sched_server_next(c, -1); s >= 0 && list; s = sched_server_next(c, s)) {
		struct sched_node_info ni;
		int64_t used[SCHED_DIMS_MAX] = { 0 };
		const char *parent;

		if (sched_node_info(c, s, &ni) < 0)
			continue;
		for (int d = 0; d < N_DIMS; d++)
			used[d] = ni.capacity[d] - ni.free[d];
		parent = ni.parent >= 0 ? sched_node_name(c, ni.parent) : NULL;
		json_array_append_new(list, json_pack("{s:s, s:s?, s:s?, s:s, s:o, s:o, s:o, s:I}", "name", ni.name,
						      "partition", ni.partition, "parent", parent, "state",
						      sched_state_name(ni.state), "capacity", dims_json(ni.capacity),
						      "free", dims_json(ni.free), "used", dims_json(used), "apps",
						      (json_int_t)ni.napps));
	}
	return list;
}

/* GET /scheduler/allocations: each allocation with its partition, reservation, rank and usage. */
static json_t *sched_allocations_json(struct sched_cell *c)
{
	json_t *list = json_array();

	for (int i = 0; i < sched_alloc_count(c) && list; i++) {
		struct sched_alloc_info ai;
		const char *part;

		if (sched_alloc_info(c, i, &ai) < 0)
			continue;
		part = ai.partition >= 0 ? sched_partition_label(c, ai.partition) : NULL;
		json_array_append_new(list, json_pack("{s:s?, s:s?, s:o, s:o, s:I, s:I, s:f, s:I, s:I}", "name", ai.name,
						      "partition", part, "reserved", dims_json_f(ai.reserved), "used",
						      dims_json(ai.used), "rank", (json_int_t)ai.rank, "rank_adjustment",
						      (json_int_t)ai.rank_adjustment, "max_utilization",
						      isfinite(ai.max_utilization) ? ai.max_utilization : -1.0, "apps",
						      (json_int_t)ai.napps, "placed", (json_int_t)ai.placed));
	}
	return list;
}

/* GET /scheduler/apps?match=PAT: each app (instance) of the model, where it is placed or pending. */
static json_t *sched_apps_json(struct sched_cell *c, const char *match)
{
	json_t *list = json_array();

	for (int app = sched_app_next(c, -1); app >= 0 && list; app = sched_app_next(c, app)) {
		struct sched_app_info ai;
		struct sched_alloc_info al;
		const char *server;

		if (sched_app_info(c, app, &ai) < 0 || !api_match(match, ai.name))
			continue;
		server = ai.server >= 0 ? sched_node_name(c, ai.server) : NULL;
		json_array_append_new(list, json_pack("{s:s, s:s?, s:s?, s:b, s:i, s:b, s:b}", "name", ai.name, "allocation",
						      sched_alloc_info(c, ai.alloc, &al) >= 0 ? al.name : NULL, "server",
						      server, "pending", ai.server < 0, "priority", ai.priority, "evicted",
						      ai.evicted, "blacklisted", ai.blacklisted));
	}
	return list;
}

/* GET /scheduler/partitions: the labels of the partitions. */
static json_t *sched_partitions_json(struct sched_cell *c)
{
	json_t *list = json_array();

	for (int p = 0; p < sched_partition_count(c) && list; p++)
		json_array_append_new(list, json_string(sched_partition_label(c, p) ?: ""));
	return list;
}

static void route_scheduler(struct api_ctx *a, const struct api_request *rq, struct api_reply *rp)
{
	_cleanup_sched_cell_ struct sched_cell *c = NULL;
	_cleanup_free_ char *why = NULL;
	struct error err = ERROR_INIT;
	double now = now_realtime();
	const char *what = rq->n_parts >= 2 ? rq->parts[1] : "";
	int app;

	if (!(rq->n_parts == 3 && strcmp(what, "explain") == 0) &&
	    !(rq->n_parts == 2 && (strcmp(what, "servers") == 0 || strcmp(what, "allocations") == 0 ||
				   strcmp(what, "apps") == 0 || strcmp(what, "partitions") == 0)))
		return api_reply_error(rp, MHD_HTTP_NOT_FOUND, "no such resource");
	if (sched_load_store(a->s, now, &c, NULL, &err) < 0)
		return reply_err(rp, &err);
	if (strcmp(what, "servers") == 0)
		return reply_json(rp, sched_servers_json(c));
	if (strcmp(what, "allocations") == 0)
		return reply_json(rp, sched_allocations_json(c));
	if (strcmp(what, "apps") == 0)
		return reply_json(rp, sched_apps_json(c, api_arg(rq, "match")));
	if (strcmp(what, "partitions") == 0)
		return reply_json(rp, sched_partitions_json(c));
	app = sched_app_find(c, rq->parts[2]);
	if (app < 0)
		return api_reply_error(rp, MHD_HTTP_NOT_FOUND, "scheduler explain: %s: no such instance", rq->parts[2]);
	if (sched_explain(c, app, now, &why) < 0)
		return api_reply_error(rp, MHD_HTTP_INTERNAL_SERVER_ERROR, "scheduler explain: out of memory");
	reply_json(rp, json_pack("{s:s, s:s}", "name", rq->parts[2], "explain", why));
}

/* ------------------------------------------------------------- web UI */

/* GET / and /ui/<file>: the web UI, embedded at build time (ui/, build/gen/api-ui-assets.c). */
static void route_ui(const struct api_request *rq, struct api_reply *rp)
{
	const char *file = rq->n_parts == 0 ? "index.html" : rq->n_parts == 2 ? rq->parts[1] : NULL;

	for (size_t i = 0; file && api_ui_assets[i].name; i++)
		if (strcmp(api_ui_assets[i].name, file) == 0) {
			rp->text = strndup((const char *)api_ui_assets[i].data, api_ui_assets[i].len);
			if (!rp->text)
				return api_reply_error(rp, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
			rp->status = MHD_HTTP_OK;
			rp->content_type = endswith(file, ".html") ? "text/html; charset=utf-8"
					 : endswith(file, ".js")   ? "text/javascript; charset=utf-8"
					 : endswith(file, ".css")  ? "text/css; charset=utf-8"
								   : "application/octet-stream";
			return;
		}
	api_reply_error(rp, MHD_HTTP_NOT_FOUND, "no such resource: /ui/%s", file ? file : "");
}

/* ------------------------------------------------------------ metrics */

static void route_metrics(struct api_ctx *a, struct api_reply *rp)
{
	static const char *const srv_states[] = { "up", "down", "frozen", "unknown" };
	_cleanup_strv_free_ char **servers = NULL, **finished = NULL;
	struct cellns_instance *v = NULL;
	size_t n = 0, by_state[4] = { 0 }, srv[4] = { 0 }, present = 0, blacked = 0;
	char *text = NULL;
	size_t len = 0;
	FILE *f;
	int r;

	r = cellns_instances(a->s, true, false, &v, &n);
	if (r < 0)
		return reply_store(rp, "metrics", r);
	for (size_t i = 0; i < n; i++)
		by_state[v[i].state]++;
	cellns_instances_free(v, n);
	r = cellns_list(a->s, CELLNS_SERVERS, &servers, NULL, NULL);
	if (r < 0 && r != -ENOENT)
		return reply_store(rp, "metrics", r);
	r = cellns_list(a->s, CELLNS_FINISHED, &finished, NULL, NULL);
	if (r < 0 && r != -ENOENT)
		return reply_store(rp, "metrics", r);
	for (size_t i = 0; servers && servers[i]; i++) {
		enum cellns_server_state st = CELLNS_STATE_UNKNOWN;
		bool p = false;

		cellns_server_state_get(a->s, servers[i], &st, NULL);
		srv[st == CELLNS_STATE_UNKNOWN ? 3 : (int)st]++;
		if (cellns_presence_find(a->s, servers[i], &p) >= 0 && p)
			present++;
		blacked += cellns_blackout_server_exists(a->s, servers[i], NULL, NULL) == 0;
	}
	f = open_memstream(&text, &len);
	if (!f)
		return api_reply_error(rp, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	fprintf(f, "# HELP treadle_cell_instances Instances of the cell that are scheduled, by state.\n"
		   "# TYPE treadle_cell_instances gauge\n");
	for (int s = CELLNS_INSTANCE_PENDING; s <= CELLNS_INSTANCE_RUNNING; s++)
		fprintf(f, "treadle_cell_instances{state=\"%s\"} %zu\n", cellns_instance_state_name(s), by_state[s]);
	fprintf(f, "# HELP treadle_cell_pending_instances Instances waiting for a placement.\n"
		   "# TYPE treadle_cell_pending_instances gauge\ntreadle_cell_pending_instances %zu\n",
		by_state[CELLNS_INSTANCE_PENDING]);
	fprintf(f, "# HELP treadle_cell_finished_instances Finished instances still recorded in /finished.\n"
		   "# TYPE treadle_cell_finished_instances gauge\ntreadle_cell_finished_instances %zu\n",
		strv_length(finished));
	fprintf(f, "# HELP treadle_cell_servers Servers of the cell, by the master's state.\n"
		   "# TYPE treadle_cell_servers gauge\n");
	for (int s = 0; s < 4; s++)
		fprintf(f, "treadle_cell_servers{state=\"%s\"} %zu\n", srv_states[s], srv[s]);
	fprintf(f, "# HELP treadle_cell_servers_present Servers whose node agent is present.\n"
		   "# TYPE treadle_cell_servers_present gauge\ntreadle_cell_servers_present %zu\n", present);
	fprintf(f, "# HELP treadle_cell_servers_blackedout Servers blacked out.\n"
		   "# TYPE treadle_cell_servers_blackedout gauge\ntreadle_cell_servers_blackedout %zu\n", blacked);
	api_metrics_master(a->s, a->root, a->host, by_state[CELLNS_INSTANCE_SCHEDULED] + by_state[CELLNS_INSTANCE_RUNNING], f);
	if (a->root)
		api_metrics_node(a->s, a->root, f);
	if (fclose(f) != 0 || !text) {
		free(text);
		return api_reply_error(rp, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	}
	rp->status = MHD_HTTP_OK;
	rp->text = text;
	rp->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

/* ------------------------------------------------------------- router */

void api_route(struct api_ctx *a, const struct api_request *rq, struct api_reply *rp)
{
	const char *res = rq->n_parts ? rq->parts[0] : "";
	bool get = strcmp(rq->method, "GET") == 0 || strcmp(rq->method, "HEAD") == 0;

	if (strcmp(res, "instance") == 0)
		return route_instance(a, rq, rp);
	if (!get)
		return api_reply_error(rp, MHD_HTTP_METHOD_NOT_ALLOWED, "%s: method not allowed", rq->method);
	if (rq->n_parts == 0 || (strcmp(res, "ui") == 0 && rq->n_parts == 2))
		return route_ui(rq, rp);
	if (strcmp(res, "state") == 0)
		return route_state(a, rq, rp);
	if (strcmp(res, "endpoint") == 0)
		return route_endpoint(a, rq, rp);
	if (strcmp(res, "server") == 0)
		return route_server(a, rq, rp);
	if (strcmp(res, "allocation") == 0 && rq->n_parts <= 3)
		return route_admin_list(a, rq, "allocations", rp);
	if (strcmp(res, "cell") == 0 && rq->n_parts <= 2)
		return route_admin_list(a, rq, "cell", rp);
	if (strcmp(res, "identity-group") == 0 && rq->n_parts <= 2)
		return route_admin_list(a, rq, "identity-groups", rp);
	if (strcmp(res, "trace") == 0)
		return route_trace(a, rq, rp);
	if (strcmp(res, "scheduler") == 0)
		return route_scheduler(a, rq, rp);
	if (strcmp(res, "metrics") == 0 && rq->n_parts == 1)
		return route_metrics(a, rp);
	if (strcmp(res, "whoami") == 0 && rq->n_parts == 1) { /* the caller's role (the UI asks before reading logs) */
		static const char *const roles[] = { [API_ROLE_READER] = "reader", [API_ROLE_USER] = "user",
						     [API_ROLE_ROOT] = "root" };

		rp->status = MHD_HTTP_OK;
		rp->json = json_pack("{s:s, s:s?}", "role", roles[rq->peer->role], "user", rq->peer->user);
		return;
	}
	api_reply_error(rp, MHD_HTTP_NOT_FOUND, "no such resource: /%s", res);
}
