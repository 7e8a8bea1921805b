/* api.c: the `treadle api` daemon: one epoll loop around the store's fd, the
 * HTTP daemons (libmicrohttpd in external-epoll mode, a Unix socket and an
 * optional TCP listener) and a signalfd; who may do what (peer credentials,
 * bearer tokens); the event streams (server-sent events for Treadmill's
 * websocket topics, fed by store watches).  docs/API.md. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../basic/dl.h"
#include "../basic/fileio.h"
#include "../basic/json.h"
#include "../basic/util.h"
#include "../cellns/cellns.h"
#include "../node/watchdog.h"
#include "../store/store.h"
#include "../trace/trace.h"
#include "api-internal.h"
#include "api.h"

#define BODY_MAX (1024 * 1024 + 4096)	/* a manifest (MANIFEST_SIZE_MAX) and some */
/* On a node server the API holds a watchdog lease (docs/NODE.md "Watchdogs and postmortem") renewed at
 * each keepalive tick: a stalled API blacks the node out as a stalled agent does. */
#define API_LEASE "api"
#define KEEPALIVE_MS 15000		/* streams: a comment line, and unarmed watches retried */
#define STREAM_BUFFER_MAX (16 * 1024 * 1024) /* a subscriber this far behind is dropped */

/* The stream topics, then the kinds of watched directories that are no topic: /endpoints (its proid
 * directories are added as they come), and those whose change invalidates the cached GET /state/
 * (/scheduled, /running, /placement/<server>; /placement adds its servers). */
enum topic {
	TOPIC_TRACE, TOPIC_ENDPOINTS, TOPIC_RUNNING, TOPIC_SCHEDULED, TOPIC_SERVER_TRACE, TOPIC_IDENTITY_GROUPS,
	_TOPIC_MAX,
	TOPIC_ENDPOINTS_ROOT, TOPIC_IDENTITY_GROUPS_ROOT, TOPIC_CACHE, TOPIC_CACHE_ROOT,
	TOPIC_LOG, /* a subscriber following a log (GET /local-app/...?follow=1): inotify, no store watch */
};
/* Treadmill's websocket topics, "/<name>" in messages; GET /stream/<name>. */
static const char *const topic_names[_TOPIC_MAX] = { "trace",	  "endpoints",	    "running",
						     "scheduled", "server-trace", "identity-groups" };

/* A watched store directory: its children as last listed, a one-shot child watch. */
struct watched {
	struct api *a;
	char *path;
	enum topic topic;
	char *proid;  /* endpoints: the proid directory; identity groups: the group */
	bool listed;  /* listed once: what it holds from then on is news */
	bool armed;   /* a watch is set */
	bool dirty;   /* the watch fired: list again */
	char **known; /* sorted children */
	struct watched *next;
};

/* One stream subscriber (one HTTP response). */
struct sub {
	struct api *a;
	struct MHD_Connection *conn;
	enum topic topic;
	char *filter;
	bool suspended, done;
	char *buf;
	size_t len, off;
	int log_fd, log_wd; /* TOPIC_LOG: the log's `current` (-1: none yet), its directory's inotify watch */
	char *log_dir;
	struct sub *next;
};

struct token {
	char *token;
	enum api_role role;
	char *user;
};

struct listener {
	struct api *a;
	struct MHD_Daemon *d;
	bool tcp;
};

struct api {
	struct api_ctx ctx;
	struct listener unix_l, tcp_l;
	struct token *tokens;
	size_t n_tokens;
	struct watched *watched;
	bool topic_on[_TOPIC_MAX];
	struct sub *subs;
	int ino;     /* inotify: the directories of followed logs */
	int apps_wd; /* and <root>/node/apps: a container removed (its log dir may be on a mount that stays
		      * while we hold its `current` open: no IN_DELETE_SELF then) */
	bool stopping;
	bool cache_armed;
	struct MHD_Response *state_cache; /* GET /state/ as last answered; NULL: to compute */
	char *tls_cert, *tls_key;	  /* PEM texts (MHD keeps pointers to them while it runs) */
};

/* Per request state, MHD's *con_cls. */
struct req {
	struct api_peer peer;
	char *body;
	size_t len;
	bool too_big;
	bool auth_failed;
};

/* ------------------------------------------------------------ helpers */

static enum MHD_Result queue(struct MHD_Connection *c, struct api_reply *rp)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	char *text = rp->text;
	const char *type = rp->content_type;

	if (!text) {
		text = rp->json ? json_dumps(rp->json, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("{}");
		type = "application/json";
	}
	json_decref(rp->json);
	rp->json = NULL;
	rp->text = NULL;
	if (!text)
		return MHD_NO;
	resp = api_mhd.create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(text);
		return MHD_NO;
	}
	api_mhd.add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	ret = api_mhd.queue_response(c, rp->status ? rp->status : MHD_HTTP_OK, resp);
	api_mhd.destroy_response(resp);
	return ret;
}

/* ------------------------------------------------------ who is asking */

static int peer_of_unix(struct MHD_Connection *c, struct api_peer *ret)
{
	const union MHD_ConnectionInfo *ci = api_mhd.get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	struct ucred cred;
	socklen_t l = sizeof(cred);
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (!ci || getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &cred, &l) < 0)
		return -errno;
	if (cred.uid == 0) {
		ret->role = API_ROLE_ROOT;
		ret->user = strdup("root");
		return 0;
	}
	ret->role = API_ROLE_USER;
	if (getpwuid_r(cred.uid, &pw, buf, sizeof(buf), &res) == 0 && res)
		ret->user = strdup(pw.pw_name);
	else {
		ret->role = API_ROLE_READER; /* a uid without a name owns no proid */
		ret->user = strdup_printf("uid %u", (unsigned)cred.uid);
	}
	return 0;
}

/* TCP: "Authorization: Bearer TOKEN"; none: an anonymous reader.  -EACCES for an unknown token. */
static int peer_of_tcp(struct api *a, struct MHD_Connection *c, struct api_peer *ret)
{
	const char *h = api_mhd.lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);

	ret->tcp = true;
	ret->role = API_ROLE_READER;
	if (!h)
		return 0;
	if (strncasecmp(h, "Bearer ", 7) != 0)
		return -EACCES;
	h += 7;
	for (size_t i = 0; i < a->n_tokens; i++)
		if (strcmp(a->tokens[i].token, h) == 0) {
			ret->role = a->tokens[i].role;
			ret->user = a->tokens[i].user ? strdup(a->tokens[i].user) : NULL;
			return 0;
		}
	return -EACCES;
}

/* The tokens file: "TOKEN ROLE [USER]" lines (ROLE root|user|reader; user needs USER), '#' comments. */
static int tokens_load(struct api *a, const char *file, struct error *err)
{
	_cleanup_free_ char *text = NULL;
	struct stat st;
	int line = 0;

	int r = read_file(file, &text, NULL);

	if (r < 0)
		return error_sys(err, -r, "%s", file);
	if (stat(file, &st) == 0 && (st.st_mode & 077))
		return error_set(err, ERR_PERM, 0, "%s: readable by others (chmod 600)", file);
	for (char *p = text, *nl; p && *p; p = nl) {
		char *save = NULL, *tok, *role, *user, *extra;

		nl = strchr(p, '\n');
		if (nl)
			*nl++ = 0;
		line++;
		if (strchr(p, '#'))
			*strchr(p, '#') = 0;
		tok = strtok_r(p, " \t", &save);
		if (!tok)
			continue;
		role = strtok_r(NULL, " \t", &save);
		user = role ? strtok_r(NULL, " \t", &save) : NULL;
		extra = user ? strtok_r(NULL, " \t", &save) : NULL;
		struct token t = { .token = tok };
		if (!role || extra)
			return error_set(err, ERR_PERM, 0, "%s:%d: expected TOKEN ROLE [USER]", file, line);
		if (strcmp(role, "root") == 0)
			t.role = API_ROLE_ROOT;
		else if (strcmp(role, "user") == 0 && user)
			t.role = API_ROLE_USER;
		else if (strcmp(role, "reader") == 0)
			t.role = API_ROLE_READER;
		else
			return error_set(err, ERR_PERM, 0, "%s:%d: role: expected root, user USER or reader", file, line);
		struct token *v = realloc(a->tokens, (a->n_tokens + 1) * sizeof(*v));
		if (!v)
			return error_sys(err, ENOMEM, "%s", file);
		a->tokens = v;
		t.token = strdup(tok);
		t.user = user ? strdup(user) : NULL;
		a->tokens[a->n_tokens++] = t;
	}
	return 0;
}

/* ------------------------------------------------------------ streams */

static void sub_wake(struct sub *u)
{
	if (u->suspended) {
		u->suspended = false;
		api_mhd.resume_connection(u->conn);
	}
}

static void sub_append(struct sub *u, const char *text, size_t n)
{
	if (u->done)
		return;
	if (u->len + n > STREAM_BUFFER_MAX) {
		u->done = true; /* too slow: end it */
	} else {
		char *b = realloc(u->buf, u->len + n + 1);

		if (!b) {
			u->done = true;
		} else {
			u->buf = b;
			memcpy(u->buf + u->len, text, n);
			u->len += n;
		}
	}
	sub_wake(u);
}

/* Send msg (with "topic" and "when" added) to u as one event. */
static void sub_send(struct sub *u, json_t *msg)
{
	_cleanup_free_ char *t = NULL, *ev = NULL;

	_cleanup_free_ char *topic = strdup_printf("/%s", topic_names[u->topic]);

	json_object_set_new(msg, "topic", topic ? json_string(topic) : json_null());
	json_object_set_new(msg, "when", json_real(now_realtime()));
	t = json_dumps(msg, JSON_COMPACT);
	ev = t ? strdup_printf("data: %s\n\n", t) : NULL;
	if (ev)
		sub_append(u, ev, strlen(ev));
}

/* To every subscriber of topic whose filter matches name (the event's text made once).  Takes msg. */
static void publish(struct api *a, enum topic t, const char *name, json_t *msg)
{
	_cleanup_free_ char *text = NULL, *ev = NULL, *topic = NULL;
	size_t len = 0;

	if (!msg)
		return;
	for (struct sub *u = a->subs; u; u = u->next) {
		if (u->topic != t || u->done || !api_match(u->filter, name))
			continue;
		if (!ev) {
			topic = strdup_printf("/%s", topic_names[t]);
			json_object_set_new(msg, "topic", topic ? json_string(topic) : json_null());
			json_object_set_new(msg, "when", json_real(now_realtime()));
			text = json_dumps(msg, JSON_COMPACT);
			ev = text ? strdup_printf("data: %s\n\n", text) : NULL;
			if (!ev)
				break;
			len = strlen(ev);
		}
		sub_append(u, ev, len);
	}
	json_decref(msg);
}

static ssize_t sub_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct sub *u = cls;
	size_t n;

	if (u->off < u->len) {
		n = MIN(max, u->len - u->off);
		memcpy(buf, u->buf + u->off, n);
		u->off += n;
		if (u->off == u->len)
			u->off = u->len = 0;
		return (ssize_t)n;
	}
	if (u->done || u->a->stopping)
		return MHD_CONTENT_READER_END_OF_STREAM;
	u->suspended = true;
	api_mhd.suspend_connection(u->conn);
	return 0;
}

static void sub_free(void *cls)
{
	struct sub *u = cls, **p;

	for (p = &u->a->subs; *p; p = &(*p)->next)
		if (*p == u) {
			*p = u->next;
			break;
		}
	if (u->topic == TOPIC_LOG) {
		bool shared = false;

		for (struct sub *o = u->a->subs; o; o = o->next)
			shared |= o->topic == TOPIC_LOG && o->log_wd == u->log_wd;
		if (u->log_wd >= 0 && !shared)
			inotify_rm_watch(u->a->ino, u->log_wd);
		if (u->log_fd >= 0)
			close(u->log_fd);
		free(u->log_dir);
	}
	free(u->filter);
	free(u->buf);
	free(u);
}

/* ---------------------------------------------------- followed logs */

/* What was appended to the followed log since; across s6-log's rotation (`current` renamed to @<tai64n>.s
 * and a new `current`): the old file is drained, then the new one read.  gone: the directory went
 * (the container was cleaned up): the stream ends. */
static void log_pump(struct sub *u, bool gone)
{
	_cleanup_free_ char *cur = strdup_printf("%s/current", u->log_dir);
	struct stat st_fd, st_path;
	char buf[65536];
	ssize_t n;

	for (int pass = 0; pass < 2 && !u->done; pass++) {
		while (u->log_fd >= 0 && (n = read(u->log_fd, buf, sizeof(buf))) > 0)
			sub_append(u, buf, (size_t)n);
		if (!cur || stat(cur, &st_path) < 0 ||
		    (u->log_fd >= 0 && fstat(u->log_fd, &st_fd) == 0 && st_fd.st_ino == st_path.st_ino))
			break;
		if (u->log_fd >= 0)
			close(u->log_fd);
		u->log_fd = open(cur, O_RDONLY | O_CLOEXEC);
	}
	if (gone) {
		u->done = true;
		sub_wake(u);
	}
}

/* A container went from the node (or the keepalive tick): end the follows whose directory is gone. */
static void logs_check_gone(struct api *a)
{
	struct stat st;

	for (struct sub *u = a->subs; u; u = u->next)
		if (u->topic == TOPIC_LOG && !u->done && stat(u->log_dir, &st) < 0)
			log_pump(u, true);
}

static void logs_dispatch(struct api *a)
{
	char evbuf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;

	while ((n = read(a->ino, evbuf, sizeof(evbuf))) > 0)
		for (char *q = evbuf; q < evbuf + n;) {
			struct inotify_event *e = (struct inotify_event *)q;
			bool gone = e->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED);

			if (e->wd == a->apps_wd) {
				logs_check_gone(a);
				q += sizeof(*e) + e->len;
				continue;
			}

			for (struct sub *u = a->subs; u; u = u->next)
				if (u->topic == TOPIC_LOG && u->log_wd == e->wd && !u->done)
					log_pump(u, gone);
			q += sizeof(*e) + e->len;
		}
}

/* GET /local-app/<instance>/<uniq>/{service,sys}/<name>?follow=1: the text so far, then what comes. */
static enum MHD_Result log_start(struct api *a, struct MHD_Connection *c, struct api_reply *rp,
				 struct api_log_follow *f)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	struct sub *u = calloc(1, sizeof(*u));

	if (!u) {
		if (f->fd >= 0)
			close(f->fd);
		free(f->dir);
		free(rp->text);
		return MHD_NO;
	}
	u->a = a;
	u->conn = c;
	u->topic = TOPIC_LOG;
	u->log_fd = f->fd;
	u->log_dir = f->dir;
	u->log_wd = a->ino >= 0 ? inotify_add_watch(a->ino, f->dir, IN_CREATE | IN_MODIFY | IN_MOVED_TO | IN_DELETE_SELF |
								    IN_MOVE_SELF)
				: -1;
	sub_append(u, rp->text, strlen(rp->text));
	free(rp->text);
	rp->text = NULL;
	if (u->log_wd < 0)
		u->done = true; /* cannot follow: what is there, and the end */
	if (a->apps_wd < 0 && a->ino >= 0) {
		_cleanup_free_ char *apps = strdup_printf("%s/node/apps", a->ctx.root);

		a->apps_wd = apps ? inotify_add_watch(a->ino, apps, IN_DELETE | IN_MOVED_FROM) : -1;
	}
	u->next = a->subs;
	a->subs = u;
	log_pump(u, false); /* what came before the watch */
	resp = api_mhd.create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, sub_read, u, sub_free);
	if (!resp) {
		sub_free(u);
		return MHD_NO;
	}
	api_mhd.add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	api_mhd.add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	ret = api_mhd.queue_response(c, MHD_HTTP_OK, resp);
	api_mhd.destroy_response(resp);
	return ret;
}

static void on_child(struct store *s, enum store_event ev, const char *path, void *ud)
{
	struct watched *w = ud;

	w->armed = false;
	w->dirty = true;
}

static struct watched *watched_add(struct api *a, enum topic t, const char *path, const char *proid)
{
	struct watched *w;

	for (w = a->watched; w; w = w->next)
		if (w->topic == t && strcmp(w->path, path) == 0)
			return w;
	w = calloc(1, sizeof(*w));
	if (!w || !(w->path = strdup(path))) {
		free(w);
		return NULL;
	}
	w->a = a;
	w->topic = t;
	w->proid = proid ? strdup(proid) : NULL;
	w->dirty = true;
	w->next = a->watched;
	a->watched = w;
	return w;
}

/* An endpoint node name under /endpoints/<proid>: "<app>#<n>:<proto>:<name>" -> its message. */
static json_t *endpoint_msg(const char *proid, const char *node, const char *address, char **ret_inst)
{
	_cleanup_free_ char *copy = strdup(node), *host = NULL;
	char *proto, *name;
	const char *colon;
	int64_t port = 0;

	if (!copy || !(proto = strchr(copy, ':')) || !(name = strchr(proto + 1, ':')))
		return NULL;
	*proto++ = 0;
	*name++ = 0;
	*ret_inst = strdup_printf("%s.%s", proid, copy);
	if (address && (colon = strrchr(address, ':'))) {
		host = strndup(address, (size_t)(colon - address));
		safe_atoi64(colon + 1, &port);
	}
	return json_pack("{s:s, s:s, s:s, s:s?, s:I, s:b}", "name", *ret_inst ? *ret_inst : "", "proto", proto,
			 "endpoint", name, "host", host, "port", (json_int_t)port, "sow", false);
}

static json_t *trace_msg(const struct trace_event *ev)
{
	return json_pack("{s:{s:f, s:s, s:s, s:s, s:s}}", "event", "timestamp", ev->timestamp, "instanceid",
			 ev->instanceid, "source", ev->source ? ev->source : "", "event_type", trace_type_name(ev->type),
			 "data", ev->data ? ev->data : "");
}

/* /server-trace/<shard>/<server>,<ts>,<source>,<type>,<data> (cellns.c) -> Treadmill's server trace event. */
static json_t *server_trace_msg(const char *node, char **ret_server, double *ret_ts)
{
	_cleanup_free_ char *copy = strdup(node);
	char *f[5], *p = copy;
	double ts = 0;

	for (int i = 0; i < 5; i++) {
		if (!p)
			return NULL;
		f[i] = p;
		p = i < 4 ? strchr(p, ',') : NULL;
		if (p)
			*p++ = 0;
		else if (i < 4)
			return NULL;
	}
	if (safe_atod(f[1], &ts) < 0 || !(*ret_server = strdup(f[0])))
		return NULL;
	*ret_ts = ts;
	return json_pack("{s:{s:f, s:s, s:s, s:s, s:s}}", "event", "timestamp", ts, "servername", f[0], "source", f[2],
			 "event_type", f[3], "data", f[4]);
}

/* /identity-groups/<group>/<identity> = {"host", "app"} (the node's presence) -> Treadmill's message. */
static json_t *identity_msg(const char *group, const char *identity, const char *data, bool sow)
{
	_cleanup_json_ json_t *d = data ? json_loads(data, 0, NULL) : NULL;
	int64_t id = -1;

	(void)safe_atoi64(identity, &id);
	return json_pack("{s:s, s:I, s:O?, s:O?, s:b}", "identity-group", group, "identity", (json_int_t)id, "host",
			 json_object_get(d, "host"), "app", json_object_get(d, "app"), "sow", sow);
}

/* A child appeared (added) or went in w: tell the subscribers. */
static void watched_change(struct api *a, struct watched *w, const char *name, bool added)
{
	_cleanup_free_ char *path = strdup_printf("%s/%s", w->path, name), *data = NULL, *inst = NULL;
	struct trace_event ev = { 0 };

	if (!path)
		return;
	switch (w->topic) {
	case TOPIC_TRACE:
		if (added && trace_parse_node(name, NULL, &ev) >= 0)
			publish(a, TOPIC_TRACE, ev.instanceid, trace_msg(&ev));
		trace_event_clear(&ev);
		break;
	case TOPIC_RUNNING:
		if (added)
			store_get(a->ctx.s, path, &data, NULL, NULL, NULL, NULL);
		publish(a, TOPIC_RUNNING, name, json_pack("{s:s, s:s?}", "name", name, "host", data));
		break;
	case TOPIC_SCHEDULED: {
		json_t *m = NULL;

		if (added)
			cellns_scheduled_get(a->ctx.s, name, &m, NULL);
		publish(a, TOPIC_SCHEDULED, name, json_pack("{s:s, s:o?}", "name", name, "manifest", m));
		break;
	}
	case TOPIC_ENDPOINTS: {
		json_t *m;

		if (added)
			store_get(a->ctx.s, path, &data, NULL, NULL, NULL, NULL);
		m = endpoint_msg(w->proid, name, data, &inst);
		if (m && inst)
			publish(a, TOPIC_ENDPOINTS, inst, m);
		else
			json_decref(m);
		break;
	}
	case TOPIC_ENDPOINTS_ROOT:
		if (added)
			watched_add(a, TOPIC_ENDPOINTS, path, name);
		break;
	case TOPIC_SERVER_TRACE: {
		double ts;

		if (added) { /* deletions (history moves) are no news */
			json_t *m = server_trace_msg(name, &inst, &ts);

			if (m && inst)
				publish(a, TOPIC_SERVER_TRACE, inst, m);
			else
				json_decref(m);
		}
		break;
	}
	case TOPIC_IDENTITY_GROUPS:
		if (added)
			store_get(a->ctx.s, path, &data, NULL, NULL, NULL, NULL);
		publish(a, TOPIC_IDENTITY_GROUPS, w->proid, identity_msg(w->proid, name, data, false));
		break;
	case TOPIC_IDENTITY_GROUPS_ROOT:
		if (added)
			watched_add(a, TOPIC_IDENTITY_GROUPS, path, name);
		break;
	default:
		break;
	}
}

static void state_cache_drop(struct api *a)
{
	if (a->state_cache)
		api_mhd.destroy_response(a->state_cache); /* in-flight answers keep their reference */
	a->state_cache = NULL;
}

/* List w again (arming its watch), and publish the difference with what it held. */
static void watched_refresh(struct api *a, struct watched *w)
{
	_cleanup_strv_free_ char **now = NULL;
	bool first = !w->listed;
	size_t i = 0, j = 0;
	int r;

	w->dirty = false;
	if (w->topic == TOPIC_CACHE || w->topic == TOPIC_CACHE_ROOT) {
		state_cache_drop(a);
		if (store_children(a->ctx.s, w->path, &now, on_child, w) >= 0)
			w->armed = true;
		for (size_t k = 0; w->topic == TOPIC_CACHE_ROOT && now && now[k]; k++) {
			_cleanup_free_ char *p = strdup_printf("%s/%s", w->path, now[k]);

			if (p)
				watched_add(a, TOPIC_CACHE, p, NULL);
		}
		return;
	}
	r = store_children(a->ctx.s, w->path, &now, on_child, w);
	if (r == -ENOENT) {
		/* not there (yet: a trace shard the master has not made): an exists watch says when it comes;
		 * else (a race) list it again; the keepalive tick retries what could not be armed */
		now = NULL;
		r = store_exists(a->ctx.s, w->path, NULL, on_child, w);
		if (r == -ENOENT)
			w->armed = true;
		else if (r == 0)
			w->dirty = true;
	} else if (r < 0)
		return;
	else
		w->armed = true;
	w->listed = true;
	/* A directory listed for the first time: its children are the snapshot's, not news;
	 * but an endpoints proid directory (an identity group) that appears is news. */
	if (first && w->topic != TOPIC_ENDPOINTS && w->topic != TOPIC_IDENTITY_GROUPS) {
		if (w->topic == TOPIC_ENDPOINTS_ROOT || w->topic == TOPIC_IDENTITY_GROUPS_ROOT)
			for (size_t k = 0; now && now[k]; k++)
				watched_change(a, w, now[k], true);
		strv_free(w->known);
		w->known = TAKE_PTR(now);
		return;
	}
	while ((w->known && w->known[i]) || (now && now[j])) {
		int c = !(w->known && w->known[i]) ? 1 : !(now && now[j]) ? -1 : strcmp(w->known[i], now[j]);

		if (c < 0)
			watched_change(a, w, w->known[i++], false);
		else if (c > 0)
			watched_change(a, w, now[j++], true);
		else
			i++, j++;
	}
	strv_free(w->known);
	w->known = TAKE_PTR(now);
}

/* The first subscriber of a topic arms its directories. */
static void topic_arm(struct api *a, enum topic t)
{
	if (a->topic_on[t])
		return;
	a->topic_on[t] = true;
	switch (t) {
	case TOPIC_TRACE:
		for (unsigned k = 0; k < CELLNS_SHARDS / 2; k++) {
			char shard[5];
			_cleanup_free_ char *p = NULL;

			snprintf(shard, sizeof(shard), "%04X", k);
			p = cellns_trace_shard_path(shard);
			if (p)
				watched_add(a, TOPIC_TRACE, p, NULL);
		}
		break;
	case TOPIC_ENDPOINTS:
		watched_add(a, TOPIC_ENDPOINTS_ROOT, cellns_dir(CELLNS_ENDPOINTS), NULL);
		break;
	case TOPIC_RUNNING:
		watched_add(a, TOPIC_RUNNING, cellns_dir(CELLNS_RUNNING), NULL);
		break;
	case TOPIC_SCHEDULED:
		watched_add(a, TOPIC_SCHEDULED, cellns_dir(CELLNS_SCHEDULED), NULL);
		break;
	case TOPIC_SERVER_TRACE:
		for (unsigned k = 0; k < CELLNS_SHARDS / 2; k++) {
			_cleanup_free_ char *p = strdup_printf("%s/%04X", cellns_dir(CELLNS_SERVER_TRACE), k);

			if (p)
				watched_add(a, TOPIC_SERVER_TRACE, p, NULL);
		}
		break;
	case TOPIC_IDENTITY_GROUPS:
		watched_add(a, TOPIC_IDENTITY_GROUPS_ROOT, cellns_dir(CELLNS_IDENTITY_GROUPS), NULL);
		break;
	default:
		break;
	}
}

static void watched_refresh_all(struct api *a)
{
	/* New directories (endpoint proids) are added at the head while refreshing: loop until quiet. */
	for (bool again = true; again;) {
		again = false;
		for (struct watched *w = a->watched; w; w = w->next)
			if (w->dirty) {
				watched_refresh(a, w);
				again = true;
			}
	}
}

/* The state of the world for a new subscriber: what is there now, changed since `since` (0: all). */
static void sub_snapshot(struct api *a, struct sub *u, double since)
{
	_cleanup_strv_free_ char **names = NULL;
	struct store *s = a->ctx.s;
	int64_t since_ms = (int64_t)(since * 1000);
	size_t n;

	switch (u->topic) {
	case TOPIC_TRACE:
		for (struct watched *w = a->watched; w; w = w->next) {
			if (w->topic != TOPIC_TRACE)
				continue;
			for (size_t i = 0; w->known && w->known[i]; i++) {
				struct trace_event ev = { 0 };

				if (trace_parse_node(w->known[i], NULL, &ev) >= 0 && ev.timestamp >= since &&
				    api_match(u->filter, ev.instanceid)) {
					json_t *m = trace_msg(&ev);

					if (m) {
						json_object_set_new(m, "sow", json_true());
						sub_send(u, m);
						json_decref(m);
					}
				}
				trace_event_clear(&ev);
			}
		}
		break;
	case TOPIC_SERVER_TRACE:
		for (struct watched *w = a->watched; w; w = w->next)
			for (size_t i = 0; w->topic == TOPIC_SERVER_TRACE && w->known && w->known[i]; i++) {
				_cleanup_free_ char *server = NULL;
				double ts = 0;
				json_t *m = server_trace_msg(w->known[i], &server, &ts);

				if (m && ts >= since && api_match(u->filter, server)) {
					json_object_set_new(m, "sow", json_true());
					sub_send(u, m);
				}
				json_decref(m);
			}
		break;
	case TOPIC_IDENTITY_GROUPS:
		for (struct watched *w = a->watched; w; w = w->next) {
			if (w->topic != TOPIC_IDENTITY_GROUPS || !api_match(u->filter, w->proid))
				continue;
			for (size_t i = 0; w->known && w->known[i]; i++) {
				_cleanup_free_ char *p = strdup_printf("%s/%s", w->path, w->known[i]), *data = NULL;
				struct store_stat st = { 0 };
				json_t *m;

				if (!p || store_get(s, p, &data, NULL, &st, NULL, NULL) < 0 || st.mtime_ms < since_ms)
					continue;
				m = identity_msg(w->proid, w->known[i], data, true);
				if (m) {
					sub_send(u, m);
					json_decref(m);
				}
			}
		}
		break;
	case TOPIC_RUNNING:
	case TOPIC_SCHEDULED: {
		enum cellns_dir d = u->topic == TOPIC_RUNNING ? CELLNS_RUNNING : CELLNS_SCHEDULED;
		char **data;
		struct store_stat *st;

		if (cellns_list(s, d, &names, NULL, NULL) < 0)
			break;
		n = strv_length(names);
		data = calloc(n + 1, sizeof(*data));
		st = calloc(n + 1, sizeof(*st));
		if (data && st && store_get_many_in(s, cellns_dir(d), names, n, data, NULL, st) >= 0)
			for (size_t i = 0; i < n; i++) {
				json_t *m;

				if (!data[i] || !api_match(u->filter, names[i]) || st[i].mtime_ms < since_ms)
					continue;
				if (d == CELLNS_RUNNING)
					m = json_pack("{s:s, s:s, s:b}", "name", names[i], "host", data[i], "sow", true);
				else
					m = json_pack("{s:s, s:o?, s:b}", "name", names[i], "manifest",
						      json_loads(data[i], 0, NULL), "sow", true);
				if (m) {
					sub_send(u, m);
					json_decref(m);
				}
			}
		for (size_t i = 0; data && i < n; i++)
			free(data[i]);
		free(data);
		free(st);
		break;
	}
	case TOPIC_ENDPOINTS: {
		struct cellns_endpoint *eps = NULL;

		if (cellns_endpoints_list(s, NULL, &eps, &n) < 0)
			break;
		for (size_t i = 0; i < n; i++) {
			const char *colon = strrchr(eps[i].address, ':');
			_cleanup_free_ char *host = colon ? strndup(eps[i].address, (size_t)(colon - eps[i].address)) : NULL;
			int64_t port = 0;
			json_t *m;

			if (!api_match(u->filter, eps[i].instance))
				continue;
			if (colon)
				safe_atoi64(colon + 1, &port);
			m = json_pack("{s:s, s:s, s:s, s:s?, s:I, s:b}", "name", eps[i].instance, "proto", eps[i].proto,
				      "endpoint", eps[i].name, "host", host, "port", (json_int_t)port, "sow", true);
			if (m) {
				sub_send(u, m);
				json_decref(m);
			}
		}
		cellns_endpoints_free(eps, n);
		break;
	}
	default:
		break;
	}
}

/* GET /stream/<topic>?filter=&since=&snapshot=1: server-sent events. */
static enum MHD_Result stream_start(struct api *a, const struct api_request *rq)
{
	const char *since_s = api_arg(rq, "since"), *snap = api_arg(rq, "snapshot");
	struct api_reply rp = { 0 };
	struct MHD_Response *resp;
	enum MHD_Result ret;
	struct sub *u;
	double since = 0;
	int t;

	for (t = 0; t < _TOPIC_MAX; t++)
		if (strcmp(topic_names[t], rq->parts[1]) == 0)
			break;
	if (t == _TOPIC_MAX || rq->n_parts != 2) {
		api_reply_error(&rp, MHD_HTTP_NOT_FOUND, "stream: no such topic '%s' (trace, server-trace, endpoints, running, scheduled, identity-groups)",
				rq->parts[1]);
		return queue(rq->conn, &rp);
	}
	if (since_s && safe_atod(since_s, &since) < 0) {
		api_reply_error(&rp, MHD_HTTP_BAD_REQUEST, "stream: since: expected a timestamp, got '%s'", since_s);
		return queue(rq->conn, &rp);
	}
	u = calloc(1, sizeof(*u));
	if (!u)
		return MHD_NO;
	u->a = a;
	u->conn = rq->conn;
	u->topic = (enum topic)t;
	u->filter = strdup(api_arg(rq, "filter") ? api_arg(rq, "filter") : "*");
	/* Arm the watches (and list) before the snapshot: nothing falls between the two. */
	topic_arm(a, u->topic);
	watched_refresh_all(a);
	sub_snapshot(a, u, since);
	{
		_cleanup_json_ json_t *end = json_pack("{s:b}", "sow_end", true);

		if (end)
			sub_send(u, end);
	}
	u->done = snap && strcmp(snap, "0") != 0 && strcmp(snap, "false") != 0;
	u->next = a->subs;
	a->subs = u;
	resp = api_mhd.create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, sub_read, u, sub_free);
	if (!resp) {
		sub_free(u);
		return MHD_NO;
	}
	api_mhd.add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
	api_mhd.add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	ret = api_mhd.queue_response(rq->conn, MHD_HTTP_OK, resp);
	api_mhd.destroy_response(resp);
	return ret;
}

/* --------------------------------------------------------------- HTTP */

static char **split_path(const char *url, size_t *ret_n)
{
	_cleanup_free_ char *copy = strdup(url);
	char **v = strv_new(), *save = NULL;

	if (!copy || !v) {
		strv_free(v);
		return NULL;
	}
	for (char *p = strtok_r(copy, "/", &save); p; p = strtok_r(NULL, "/", &save))
		if (strv_extend(&v, p) < 0) {
			strv_free(v);
			return NULL;
		}
	*ret_n = strv_length(v);
	return v;
}

/* GET /state/ (no arguments): the answer is kept until a watch on what it reads fires.  The watches
 * are armed before the first read, so a change after it always drops the copy. */
static enum MHD_Result state_cached(struct api *a, const struct api_request *rq)
{
	struct api_reply rp = { 0 };
	char *text;

	if (!a->cache_armed) {
		a->cache_armed = true;
		watched_add(a, TOPIC_CACHE, cellns_dir(CELLNS_SCHEDULED), NULL);
		watched_add(a, TOPIC_CACHE, cellns_dir(CELLNS_RUNNING), NULL);
		watched_add(a, TOPIC_CACHE_ROOT, cellns_dir(CELLNS_PLACEMENT), NULL);
		watched_refresh_all(a);
	}
	if (!a->state_cache) {
		api_route(&a->ctx, rq, &rp);
		if (rp.status != MHD_HTTP_OK || !rp.json)
			return queue(rq->conn, &rp);
		text = json_dumps(rp.json, JSON_COMPACT);
		json_decref(rp.json);
		if (!text)
			return MHD_NO;
		a->state_cache = api_mhd.create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
		if (!a->state_cache) {
			free(text);
			return MHD_NO;
		}
		api_mhd.add_response_header(a->state_cache, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	}
	return api_mhd.queue_response(rq->conn, MHD_HTTP_OK, a->state_cache);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
			      const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	struct listener *l = cls;
	struct api *a = l->a;
	struct req *q = *con_cls;
	struct api_reply rp = { 0 };
	_cleanup_strv_free_ char **parts = NULL;
	size_t n = 0;

	if (!q) { /* headers in: who is it */
		q = calloc(1, sizeof(*q));
		if (!q)
			return MHD_NO;
		*con_cls = q;
		if (l->tcp ? peer_of_tcp(a, c, &q->peer) < 0 : peer_of_unix(c, &q->peer) < 0)
			q->auth_failed = true;
		return MHD_YES;
	}
	if (*upload_size) {
		if (q->len + *upload_size > BODY_MAX)
			q->too_big = true;
		else {
			char *b = realloc(q->body, q->len + *upload_size + 1);

			if (!b)
				return MHD_NO;
			q->body = b;
			memcpy(q->body + q->len, upload, *upload_size);
			q->len += *upload_size;
			q->body[q->len] = 0;
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (q->auth_failed) {
		api_reply_error(&rp, MHD_HTTP_UNAUTHORIZED, "%s", l->tcp ? "unknown bearer token" : "no peer credentials");
		return queue(c, &rp);
	}
	if (q->too_big) {
		api_reply_error(&rp, MHD_HTTP_CONTENT_TOO_LARGE, "the request body is larger than %d bytes", BODY_MAX);
		return queue(c, &rp);
	}
	parts = split_path(url, &n);
	if (!parts)
		return MHD_NO;
	struct api_request rq = {
		.conn = c, .method = method, .parts = parts, .n_parts = n, .body = q->body, .body_len = q->len,
		.peer = &q->peer,
	};
	if (n >= 1 && strcmp(parts[0], "stream") == 0 && strcmp(method, "GET") == 0 && n >= 2)
		return stream_start(a, &rq);
	if (n == 1 && strcmp(parts[0], "state") == 0 && strcmp(method, "GET") == 0 &&
	    api_mhd.get_connection_values(c, MHD_GET_ARGUMENT_KIND, NULL, NULL) == 0)
		return state_cached(a, &rq);
	if (n >= 1 && strcmp(parts[0], "local-app") == 0 && strcmp(method, "GET") == 0) {
		struct api_log_follow f;

		api_local_app(&a->ctx, &rq, &rp, &f);
		if (f.follow)
			return log_start(a, c, &rp, &f);
		return queue(c, &rp);
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		state_cache_drop(a); /* a write of ours: its watch will say so too, a loop later */
	api_route(&a->ctx, &rq, &rp);
	return queue(c, &rp);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	struct req *q = *con_cls;

	if (!q)
		return;
	free(q->peer.user);
	free(q->body);
	free(q);
	*con_cls = NULL;
}

/* --------------------------------------------------------- listeners */

static int listen_unix(const char *path, struct error *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return error_set(err, ERR_PERM, 0, "%s: socket path too long", path);
	memcpy(sa.sun_path, path, strlen(path) + 1); /* length checked above */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return error_sys(err, errno, "socket");
	{
		/* a socket someone still answers on is another daemon's: refuse
		 * rather than take it over; a dead one's is a previous run's */
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		bool live = probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0;

		if (probe >= 0)
			close(probe);
		if (live) {
			close(fd);
			return error_set(err, ERR_PERM, 0, "%s: another treadle api serves it (give --socket another path)",
					 path);
		}
	}
	(void)unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0666) < 0 || listen(fd, 128) < 0) {
		int e = errno;

		close(fd);
		return error_sys(err, e, "%s", path);
	}
	return fd;
}

static int listen_tcp(const char *hostport, struct error *err)
{
	_cleanup_free_ char *host = NULL;
	const char *colon = strrchr(hostport, ':');
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *res = NULL;
	int fd, r, one = 1;

	if (!colon)
		return error_set(err, ERR_USAGE, 0, "--listen: expected HOST:PORT, got '%s'", hostport);
	host = strndup(hostport, (size_t)(colon - hostport));
	if (host && host[0] == '[' && endswith(host, "]")) {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = 0;
	}
	r = getaddrinfo(host && *host ? host : NULL, colon + 1, &hints, &res);
	if (r != 0)
		return error_set(err, ERR_PERM, 0, "--listen %s: %s", hostport, gai_strerror(r));
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 128) < 0) {
		int e = errno;

		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return error_sys(err, e, "--listen %s", hostport);
	}
	freeaddrinfo(res);
	return fd;
}

/* The TLS certificate and key for the TCP listener: both or neither; the key readable by its owner only. */
static int tls_load(struct api *a, const struct api_options *o, struct error *err)
{
	struct stat st;
	int r;

	if (!o->tls_cert && !o->tls_key)
		return 0;
	if (!o->tls_cert || !o->tls_key)
		return error_set(err, ERR_USAGE, 0, "--tls-cert and --tls-key go together");
	if (!o->listen)
		return error_set(err, ERR_USAGE, 0, "--tls-cert: TLS is for the TCP listener: give --listen HOST:PORT");
	if (api_mhd.is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
		return error_set(err, ERR_PERM, 0, "--tls-cert: this libmicrohttpd is built without TLS");
	r = read_file(o->tls_cert, &a->tls_cert, NULL);
	if (r < 0)
		return error_sys(err, -r, "--tls-cert %s", o->tls_cert);
	if (stat(o->tls_key, &st) == 0 && (st.st_mode & 077))
		return error_set(err, ERR_PERM, 0, "--tls-key %s: readable by others (chmod 600)", o->tls_key);
	r = read_file(o->tls_key, &a->tls_key, NULL);
	if (r < 0)
		return error_sys(err, -r, "--tls-key %s", o->tls_key);
	if (!strstr(a->tls_cert, "-----BEGIN CERTIFICATE-----"))
		return error_set(err, ERR_PERM, 0, "--tls-cert %s: no PEM certificate in it", o->tls_cert);
	if (!strstr(a->tls_key, "PRIVATE KEY-----"))
		return error_set(err, ERR_PERM, 0, "--tls-key %s: no PEM private key in it", o->tls_key);
	return 0;
}

static int daemon_start(struct listener *l, int fd, int ep, struct error *err)
{
	const union MHD_DaemonInfo *di;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = l };
	const char *cert = l->tcp ? l->a->tls_cert : NULL;

	if (cert)
		l->d = api_mhd.start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TLS, 0, NULL, NULL, handle, l,
					MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_NOTIFY_COMPLETED, completed, l,
					MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_HTTPS_MEM_CERT, cert,
					MHD_OPTION_HTTPS_MEM_KEY, l->a->tls_key, MHD_OPTION_END);
	else
		l->d = api_mhd.start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME, 0, NULL, NULL, handle, l,
					MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_NOTIFY_COMPLETED, completed, l,
					MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_END);
	if (!l->d) {
		close(fd);
		return error_set(err, ERR_TEMP, 0, cert ? "cannot start the HTTPS daemon (is the key the certificate's?)"
						  : "cannot start the HTTP daemon");
	}
	di = api_mhd.get_daemon_info(l->d, MHD_DAEMON_INFO_EPOLL_FD);
	if (!di || epoll_ctl(ep, EPOLL_CTL_ADD, di->epoll_fd, &ev) < 0)
		return error_sys(err, errno, "epoll");
	return 0;
}

static void api_free(struct api *a)
{
	for (struct sub *u = a->subs; u; u = u->next)
		if (u->suspended) {
			u->suspended = false;
			api_mhd.resume_connection(u->conn);
		}
	a->stopping = true;
	for (int i = 0; i < 3; i++) { /* let the resumed streams end */
		if (a->unix_l.d)
			api_mhd.run(a->unix_l.d);
		if (a->tcp_l.d)
			api_mhd.run(a->tcp_l.d);
	}
	state_cache_drop(a);
	if (a->unix_l.d)
		api_mhd.stop_daemon(a->unix_l.d);
	if (a->tcp_l.d)
		api_mhd.stop_daemon(a->tcp_l.d);
	while (a->watched) {
		struct watched *w = a->watched;

		a->watched = w->next;
		free(w->path);
		free(w->proid);
		strv_free(w->known);
		free(w);
	}
	for (size_t i = 0; i < a->n_tokens; i++) {
		explicit_bzero(a->tokens[i].token, strlen(a->tokens[i].token));
		free(a->tokens[i].token);
		free(a->tokens[i].user);
	}
	free(a->tokens);
	free(a->tls_cert);
	if (a->tls_key) {
		explicit_bzero(a->tls_key, strlen(a->tls_key));
		free(a->tls_key);
	}
	store_close(a->ctx.s);
	if (a->ino >= 0)
		close(a->ino);
}

struct api_mhd api_mhd;

/* Load libmicrohttpd into api_mhd (once); ERR_TEMP "api: cannot load libmicrohttpd.so.12: ..." if it cannot. */
static int api_mhd_load(struct error *err)
{
#define S(f) DL_SYM(struct api_mhd, f, "MHD_" #f)
	static const struct dl_sym syms[] = {
		S(add_response_header), S(create_response_from_buffer), S(create_response_from_callback),
		S(destroy_response), S(get_connection_info), S(get_connection_values), S(get_daemon_info),
		S(get_timeout), S(is_feature_supported), S(lookup_connection_value), S(queue_response),
		S(resume_connection), S(run), S(start_daemon), S(stop_daemon), S(suspend_connection),
	};
#undef S

	if (api_mhd.loaded)
		return 0;
	if (dl_load("libmicrohttpd.so.12", syms, ELEMENTSOF(syms), &api_mhd, err) < 0)
		return error_prefix(err, "api");
	api_mhd.loaded = true;
	return 0;
}

int api_run(const struct api_options *o, struct error *err)
{
	_cleanup_free_ char *sock = o->socket_path ? strdup(o->socket_path) : strdup_printf("%s/api.sock", o->root);
	struct api a = { .ino = -1, .apps_wd = -1 };
	_cleanup_free_ char *node_root = NULL; /* <root>/node on a node server: the API's watchdog lease */
	sigset_t mask;
	int ep = -1, sfd = -1, fd, r = 0;
	struct epoll_event ev;

	if (!sock)
		return error_sys(err, ENOMEM, "api");
	if (api_mhd_load(err) < 0)
		return -1;
	a.unix_l.a = a.tcp_l.a = &a;
	a.tcp_l.tcp = true;
	gethostname(a.ctx.host, sizeof(a.ctx.host) - 1);
	a.ctx.check_user = !startswith(o->store_url, "zk://");
	a.ctx.root = o->root;
	if ((o->tokens_file && tokens_load(&a, o->tokens_file, err) < 0) || tls_load(&a, o, err) < 0) {
		r = -1;
		goto out;
	}
	r = store_open(o->store_url, NULL, &a.ctx.s, err);
	if (r < 0)
		goto out;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (sfd < 0 || ep < 0) {
		r = error_sys(err, errno, "api");
		goto out;
	}
	ev = (struct epoll_event){ .events = EPOLLIN, .data.ptr = &sfd };
	epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
	a.ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	ev = (struct epoll_event){ .events = EPOLLIN, .data.ptr = &a.ino };
	if (a.ino >= 0)
		epoll_ctl(ep, EPOLL_CTL_ADD, a.ino, &ev);
	ev = (struct epoll_event){ .events = EPOLLIN, .data.ptr = &a };
	if (epoll_ctl(ep, EPOLL_CTL_ADD, store_fd(a.ctx.s), &ev) < 0) {
		r = error_sys(err, errno, "api: store fd");
		goto out;
	}
	fd = listen_unix(sock, err);
	if (fd < 0 || daemon_start(&a.unix_l, fd, ep, err) < 0) {
		r = -1;
		goto out;
	}
	if (o->listen) {
		fd = listen_tcp(o->listen, err);
		if (fd < 0 || daemon_start(&a.tcp_l, fd, ep, err) < 0) {
			r = -1;
			goto out;
		}
	}
	uint64_t last_tick = now_monotonic_ms();
	struct stat nst;

	node_root = o->root ? strdup_printf("%s/node", o->root) : NULL;
	if (node_root && (stat(node_root, &nst) < 0 || !S_ISDIR(nst.st_mode))) {
		free(node_root); /* no node role here: nothing to watch over */
		node_root = NULL;
	}
	if (node_root && node_lease_renew(node_root, API_LEASE, NODE_LEASE_DEFAULT_S) < 0)
		fprintf(stderr, "treadle api: watchdog lease: %m\n");
	while (!a.stopping) {
		struct epoll_event evs[8];
		MHD_UNSIGNED_LONG_LONG to;
		int timeout = KEEPALIVE_MS, n;

		if (api_mhd.get_timeout(a.unix_l.d, &to) == MHD_YES)
			timeout = (int)MIN((MHD_UNSIGNED_LONG_LONG)timeout, to);
		if (a.tcp_l.d && api_mhd.get_timeout(a.tcp_l.d, &to) == MHD_YES)
			timeout = (int)MIN((MHD_UNSIGNED_LONG_LONG)timeout, to);
		n = epoll_wait(ep, evs, 8, timeout);
		if (n < 0 && errno != EINTR) {
			r = error_sys(err, errno, "api: epoll_wait");
			break;
		}
		for (int i = 0; i < n; i++)
			if (evs[i].data.ptr == &a.ino)
				logs_dispatch(&a);
			else if (evs[i].data.ptr == &sfd) {
				struct signalfd_siginfo si;

				while (read(sfd, &si, sizeof(si)) == sizeof(si))
					a.stopping = true;
			}
		r = store_dispatch(a.ctx.s);
		if (r == -ESHUTDOWN) {
			r = error_set(err, ERR_TEMP, 0, "api: the store session expired");
			break;
		}
		r = 0;
		if (now_monotonic_ms() - last_tick >= KEEPALIVE_MS) {
			last_tick = now_monotonic_ms();
			for (struct watched *w = a.watched; w; w = w->next)
				if (!w->armed)
					w->dirty = true;
			for (struct sub *u = a.subs; u; u = u->next)
				if (u->topic != TOPIC_LOG) /* a log is plain text */
					sub_append(u, ": keepalive\n\n", strlen(": keepalive\n\n"));
			logs_check_gone(&a);
			if (node_root)
				(void)node_lease_renew(node_root, API_LEASE, NODE_LEASE_DEFAULT_S);
		}
		watched_refresh_all(&a);
		api_mhd.run(a.unix_l.d);
		if (a.tcp_l.d)
			api_mhd.run(a.tcp_l.d);
	}
	if (node_root)
		(void)node_lease_remove(node_root, API_LEASE);
out:
	api_free(&a);
	if (sfd >= 0)
		close(sfd);
	if (ep >= 0)
		close(ep);
	return r < 0 ? r : 0;
}
