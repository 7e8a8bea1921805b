/* api-logs.c: GET /local-app/...: this server's containers and their logs, Treadmill's node-local
 * `local-app` resource (reference treadmill-architecture.md §8.2), read from the node agent's directory
 * <root>/node (src/node/layout.h) as `treadle logs` reads it.  docs/API.md "Node-local logs". */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../basic/fileio.h"
#include "../basic/json.h"
#include "../basic/util.h"
#include "../node/layout.h"
#include "api-internal.h"

#define LOG_LIMIT_MAX 1000000 /* lines in one answer */

static bool is_dir(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Containers (unique names) of this node: live ones (apps/) and archived ones (archives/), each sorted. */
static json_t *containers_json(const char *node, const char *instance)
{
	static const char *const dirs[] = { NODE_DIR_APPS, NODE_DIR_ARCHIVES };
	json_t *arr = json_array();

	for (size_t d = 0; arr && d < ELEMENTSOF(dirs); d++) {
		_cleanup_free_ char *dir = node_path(node, dirs[d]);
		_cleanup_strv_free_ char **l = NULL;

		if (!dir || dir_list(dir, 1, &l) < 0)
			continue;
		strv_sort(l);
		for (char **p = l; *p; p++) {
			_cleanup_free_ char *inst = node_unique_instance(*p), *id = NULL;
			const char *uniq = node_unique_id(*p);
			size_t k;
			json_t *v;
			bool dup = false;

			if (!inst || !uniq || (instance && strcmp(inst, instance) != 0))
				continue;
			id = strdup_printf("%s/%s", inst, uniq);
			json_array_foreach(arr, k, v) /* being archived: the live one is what it is */
				if (id && strcmp(json_string_value(json_object_get(v, "_id")), id) == 0)
					dup = true;
			if (!id || dup)
				continue;
			json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s}", "_id", id, "name", inst, "uniq", uniq,
							      "state", d == 0 ? "live" : "archived"));
		}
	}
	return arr;
}

/* The unique name of an instance's container: uniq "running" is the live one, else the newest archive
 * (what `treadle logs` reads); NULL when there is none. */
static char *resolve_unique(const char *node, const char *instance, const char *uniq, bool *ret_live)
{
	_cleanup_free_ char *dir = NULL, *u = NULL;
	const char *rest;
	size_t n = strlen(node);

	if (strcmp(uniq, "running") != 0) {
		_cleanup_free_ char *apps = NULL;

		u = node_unique_name(instance, uniq);
		apps = u ? strdup_printf("%s/%s/%s", node, NODE_DIR_APPS, u) : NULL;
		dir = u ? node_service_log_dir(node, instance, NULL, uniq) : NULL;
		if (!dir)
			return NULL;
		*ret_live = apps && is_dir(apps);
		return TAKE_PTR(u);
	}
	dir = node_service_log_dir(node, instance, NULL, NULL);
	if (!dir || strncmp(dir, node, n) != 0 || dir[n] != '/')
		return NULL;
	rest = dir + n + 1; /* apps/<u>/data/log or archives/<u>/log */
	*ret_live = startswith(rest, NODE_DIR_APPS "/");
	rest = strchr(rest, '/');
	return rest ? strndup(rest + 1, strcspn(rest + 1, "/")) : NULL;
}

/* The services of a container: live apps/<u>/data/services/<s>, archived archives/<u>/services/<s>. */
static json_t *services_json(const char *node, const char *unique, bool live)
{
	_cleanup_free_ char *dir = strdup_printf("%s/%s/%s%s/services", node, live ? NODE_DIR_APPS : NODE_DIR_ARCHIVES,
						 unique, live ? "/data" : "");
	_cleanup_strv_free_ char **l = NULL;
	json_t *arr = json_array();

	if (dir && dir_list(dir, 1, &l) >= 0) {
		strv_sort(l);
		for (char **p = l; *p; p++) {
			_cleanup_free_ char *sub = strdup_printf("%s/%s", dir, *p);

			if (sub && is_dir(sub))
				json_array_append_new(arr, json_string(*p));
		}
	}
	return arr;
}

static bool may_read_logs(const struct api_peer *p, const char *instance, char **ret_why)
{
	size_t n = strcspn(instance, ".");

	if (p->role == API_ROLE_ROOT)
		return true;
	if (p->role == API_ROLE_USER && p->user && strlen(p->user) == n && strncmp(p->user, instance, n) == 0)
		return true;
	*ret_why = strdup_printf("logs: %s %s may not read the logs of proid '%.*s'",
				 p->role == API_ROLE_USER ? "user" : "reader", p->user ? p->user : "(anonymous)", (int)n,
				 instance);
	return false;
}

/* Append the file's text to *text (rotated files: by path; current: through fd, left at its end). */
static int append_fd(int fd, char **text, size_t *len)
{
	char buf[65536];
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		char *t = realloc(*text, *len + (size_t)n + 1);

		if (!t)
			return -ENOMEM;
		*text = t;
		memcpy(*text + *len, buf, (size_t)n);
		*len += (size_t)n;
		(*text)[*len] = 0;
	}
	return n < 0 ? -errno : 0;
}

/* Lines [start, start+limit) of text, in order asc or desc; tail >= 0: of its last tail lines only. */
static char *select_lines(const char *text, size_t len, long start, long limit, long tail, bool desc)
{
	_cleanup_free_ const char **lines = NULL;
	size_t n = 0, cap = 0, out_len = 0, w0, m;
	char *out;

	for (const char *p = text; p && p < text + len;) {
		const char *nl = memchr(p, '\n', (size_t)(text + len - p));

		if (n + 1 > cap) {
			const char **v = reallocarray(lines, cap ? cap * 2 : 64, sizeof(*v));

			if (!v)
				return NULL;
			lines = v;
			cap = cap ? cap * 2 : 64;
		}
		lines[n++] = p;
		p = nl ? nl + 1 : text + len;
	}
	w0 = tail >= 0 && (size_t)tail < n ? n - (size_t)tail : 0; /* the window: lines[w0 .. n) */
	m = n - w0;
	out = malloc(len + 2);
	if (!out)
		return NULL;
	for (size_t i = (size_t)start, taken = 0; i < m && (limit < 0 || taken < (size_t)limit); i++, taken++) {
		size_t k = desc ? n - 1 - i : w0 + i;
		const char *e = k + 1 < n ? lines[k + 1] : text + len;
		size_t l = (size_t)(e - lines[k]);

		memcpy(out + out_len, lines[k], l);
		out_len += l;
		if (l && out[out_len - 1] != '\n')
			out[out_len++] = '\n';
	}
	out[out_len] = 0;
	return out;
}

static int arg_long(const struct api_request *rq, const char *name, long dflt, long max, long *ret,
		    struct api_reply *rp)
{
	const char *v = api_arg(rq, name);
	int64_t x;

	*ret = dflt;
	if (!v)
		return 0;
	if (safe_atoi64(v, &x) < 0 || x < 0 || x > max) {
		api_reply_error(rp, MHD_HTTP_BAD_REQUEST, "logs: %s: expected a number 0..%ld, got '%s'", name, max, v);
		return -EINVAL;
	}
	*ret = (long)x;
	return 0;
}

/* One log: ?start=&limit=&order=asc|desc&all=1&follow=1. */
static void log_reply(const char *node, const struct api_request *rq, const char *instance, const char *uniq,
		      const char *service, const char *what, struct api_reply *rp, struct api_log_follow *ret_follow)
{
	_cleanup_free_ char *dir = NULL, *cur = NULL, *text = NULL, *why = NULL;
	_cleanup_strv_free_ char **files = NULL;
	const char *order = api_arg(rq, "order"), *all = api_arg(rq, "all"), *follow = api_arg(rq, "follow");
	bool want_all = all && strcmp(all, "0") != 0 && strcmp(all, "false") != 0;
	bool want_follow = follow && strcmp(follow, "0") != 0 && strcmp(follow, "false") != 0;
	size_t len = 0;
	long start, limit, tail;
	int fd;

	if (!may_read_logs(rq->peer, instance, &why))
		return api_reply_error(rp, MHD_HTTP_FORBIDDEN, "%s", why ? why : "logs: denied");
	if (arg_long(rq, "start", 0, LONG_MAX / 2, &start, rp) < 0 ||
	    arg_long(rq, "limit", -1, LOG_LIMIT_MAX, &limit, rp) < 0 ||
	    arg_long(rq, "tail", -1, LOG_LIMIT_MAX, &tail, rp) < 0)
		return;
	if (order && strcmp(order, "asc") != 0 && strcmp(order, "desc") != 0)
		return api_reply_error(rp, MHD_HTTP_BAD_REQUEST, "logs: order: expected asc or desc, got '%s'", order);
	if (want_follow && order && strcmp(order, "desc") == 0)
		return api_reply_error(rp, MHD_HTTP_BAD_REQUEST, "logs: follow: only with order asc");
	dir = node_service_log_dir(node, instance, service, strcmp(uniq, "running") == 0 ? NULL : uniq);
	if (!dir)
		return api_reply_error(rp, MHD_HTTP_NOT_FOUND, "logs: %s/%s: no such %s log on this node (%s)", instance,
				       what, service ? "service" : "sys", node);
	if (want_all && dir_list(dir, 1, &files) >= 0) {
		strv_sort(files); /* @<tai64n>.s: oldest first */
		for (char **f = files; *f; f++) {
			_cleanup_free_ char *p = (*f)[0] == '@' ? strdup_printf("%s/%s", dir, *f) : NULL;
			_cleanup_close_ int rfd = p ? open(p, O_RDONLY | O_CLOEXEC) : -1;

			if (rfd >= 0 && append_fd(rfd, &text, &len) < 0)
				return api_reply_error(rp, MHD_HTTP_INTERNAL_SERVER_ERROR, "logs: %s: %s", p, strerror(errno));
		}
	}
	cur = strdup_printf("%s/current", dir);
	fd = cur ? open(cur, O_RDONLY | O_CLOEXEC) : -1;
	if (fd < 0 && errno != ENOENT)
		return api_reply_error(rp, MHD_HTTP_INTERNAL_SERVER_ERROR, "logs: %s: %s", cur, strerror(errno));
	if (fd >= 0 && append_fd(fd, &text, &len) < 0) {
		close(fd);
		return api_reply_error(rp, MHD_HTTP_INTERNAL_SERVER_ERROR, "logs: %s: %s", cur, strerror(errno));
	}
	rp->status = MHD_HTTP_OK;
	rp->content_type = "text/plain; charset=utf-8";
	rp->text = select_lines(text, len, start, limit, tail, order && strcmp(order, "desc") == 0);
	if (!rp->text) {
		if (fd >= 0)
			close(fd);
		return api_reply_error(rp, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	}
	{
		/* an archived container's log does not grow: nothing to follow */
		_cleanup_free_ char *archives = strdup_printf("%s/" NODE_DIR_ARCHIVES "/", node);

		if (archives && startswith(dir, archives))
			want_follow = false;
	}
	if (want_follow) {
		ret_follow->fd = fd; /* at the end of what was sent; -1: current not there yet */
		ret_follow->dir = TAKE_PTR(dir);
		ret_follow->follow = true;
	} else if (fd >= 0)
		close(fd);
}

void api_local_app(struct api_ctx *a, const struct api_request *rq, struct api_reply *rp,
		   struct api_log_follow *ret_follow)
{
	_cleanup_free_ char *node = strdup_printf("%s/node", a->root ? a->root : "."), *unique = NULL;
	const char *inst = rq->n_parts > 1 ? rq->parts[1] : NULL, *uniq = rq->n_parts > 2 ? rq->parts[2] : NULL;
	bool live = false;

	*ret_follow = (struct api_log_follow){ .fd = -1 };
	if (!node)
		return api_reply_error(rp, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	if (inst && !strchr(inst, '#'))
		return api_reply_error(rp, MHD_HTTP_BAD_REQUEST, "logs: '%s' is not an instance id (<proid>.<app>#<seq>)",
				       inst);
	if (rq->n_parts <= 2) { /* the containers of this node (of one instance) */
		rp->status = MHD_HTTP_OK;
		rp->json = containers_json(node, inst);
		return;
	}
	unique = resolve_unique(node, inst, uniq, &live);
	if (!unique)
		return api_reply_error(rp, MHD_HTTP_NOT_FOUND, "logs: %s: no container of this instance on this node (%s)",
				       inst, node);
	if (rq->n_parts == 3) {
		rp->status = MHD_HTTP_OK;
		rp->json = json_pack("{s:s++, s:s, s:s, s:s, s:o, s:[s]}", "_id", inst, "/", node_unique_id(unique),
				     "name", inst, "uniq", node_unique_id(unique), "state", live ? "live" : "archived",
				     "services", services_json(node, unique, live), "sys", "container");
		return;
	}
	if (rq->n_parts == 5 && strcmp(rq->parts[3], "service") == 0)
		return log_reply(node, rq, inst, node_unique_id(unique), rq->parts[4], rq->parts[4], rp, ret_follow);
	if (rq->n_parts == 5 && strcmp(rq->parts[3], "sys") == 0 && strcmp(rq->parts[4], "container") == 0)
		return log_reply(node, rq, inst, node_unique_id(unique), NULL, "sys/container", rp, ret_follow);
	api_reply_error(rp, MHD_HTTP_NOT_FOUND,
			"logs: no such resource (/local-app/<instance>/<uniq>/service/<service> or .../sys/container)");
}
