/* store-zk.c: the ZooKeeper backend, on the multi-threaded C client.
 *
 * URL zk://h1:p1,h2:p2/chroot: the chroot is created if missing and prefixed
 * to every path by this backend (not by the client), so one connection does it.
 *
 * Threads: the client calls watchers on its own completion thread.  Those
 * only append (type, path) or a session state to a queue under a mutex and
 * write the eventfd that store_fd() returns; store_dispatch() on the caller's
 * thread drains the queue and runs callbacks.  Every ZooKeeper watch is
 * registered with the same (watcher, context = this handle), so the client
 * keeps at most one per path and kind and never holds memory we free; the
 * user callbacks are kept here per (kind, path) and fired by the event type
 * following ZooKeeper's rules (created/changed -> data watches, child ->
 * child watches, deleted -> both). */
#include <inttypes.h>
#include <pthread.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <zookeeper/zookeeper.h>

#include "../basic/util.h"
#include "store-internal.h"

enum { W_DATA, W_CHILD };

struct zk_watch {
	int kind;
	char *path; /* store path (without chroot) */
	store_watch_fn fn;
	void *userdata;
};

struct zk_event {
	int type; /* ZOO_*_EVENT */
	int state;
	char *path; /* store path, NULL for session events */
	struct zk_event *next;
};

struct zk_store {
	struct store base;
	zhandle_t *zh;
	char *chroot; /* "" or "/a/b" */
	int efd;
	pthread_mutex_t mutex;
	pthread_cond_t cond;
	struct zk_event *head, *tail;	/* queue, under mutex */
	int zstate;			/* last ZooKeeper state seen, under mutex */
	enum store_state state;		/* as reported, under mutex */
	int64_t session_id;		/* under mutex */
	struct zk_watch *watches;	/* caller's thread only */
	size_t n_watches;
};

static struct zk_store *ZK(struct store *s)
{
	return (struct zk_store *)s;
}

static int zk_err(struct zk_store *zk, int rc)
{
	switch (rc) {
	case ZOK:
		return 0;
	case ZNONODE:
		return -ENOENT;
	case ZNODEEXISTS:
		return -EEXIST;
	case ZBADVERSION:
		return -ESTALE;
	case ZNOTEMPTY:
		return -ENOTEMPTY;
	case ZNOCHILDRENFOREPHEMERALS:
		return -EPERM;
	case ZBADARGUMENTS:
	case ZINVALIDACL:
		return -EINVAL;
	case ZCONNECTIONLOSS:
	case ZOPERATIONTIMEOUT:
	case ZSESSIONMOVED:
		return -ENOTCONN;
	case ZSESSIONEXPIRED:
	case ZCLOSING:
	case ZAUTHFAILED:
		return -ESHUTDOWN;
	case ZINVALIDSTATE: {
		int st = zoo_state(zk->zh);
		return st == ZOO_EXPIRED_SESSION_STATE || st == ZOO_AUTH_FAILED_STATE ? -ESHUTDOWN : -ENOTCONN;
	}
	case ZMARSHALLINGERROR:
		return -E2BIG;
	case ZNOAUTH:
		return -EACCES;
	case ZUNIMPLEMENTED:
		return -EOPNOTSUPP;
	default:
		return -EIO;
	}
}

static char *zpath(struct zk_store *zk, const char *path)
{
	if (!*zk->chroot)
		return strdup(path);
	if (!strcmp(path, "/"))
		return strdup(zk->chroot);
	return strdup_printf("%s%s", zk->chroot, path);
}

/* Store path of a ZooKeeper path, or NULL if outside the chroot. */
static char *spath(struct zk_store *zk, const char *p)
{
	size_t l = strlen(zk->chroot);

	if (!p)
		return NULL;
	if (!l)
		return strdup(p);
	if (strncmp(p, zk->chroot, l))
		return NULL;
	if (p[l] == 0)
		return strdup("/");
	if (p[l] != '/')
		return NULL;
	return strdup(p + l);
}

static void queue_push(struct zk_store *zk, int type, int state, const char *path)
{
	struct zk_event *e = calloc(1, sizeof(*e));
	uint64_t one = 1;

	if (!e)
		return;
	e->type = type;
	e->state = state;
	e->path = path ? spath(zk, path) : NULL;
	if (path && !e->path) {
		free(e);
		return;
	}
	if (zk->tail)
		zk->tail->next = e;
	else
		zk->head = e;
	zk->tail = e;
	if (write(zk->efd, &one, sizeof(one)) < 0) {
		/* eventfd counter cannot overflow here; nothing to do */
	}
}

static enum store_state state_of(int zstate)
{
	if (zstate == ZOO_CONNECTED_STATE || zstate == ZOO_READONLY_STATE)
		return STORE_CONNECTED;
	if (zstate == ZOO_EXPIRED_SESSION_STATE || zstate == ZOO_AUTH_FAILED_STATE)
		return STORE_EXPIRED;
	return STORE_CONNECTING;
}

/* Called on the client's threads. */
static void zk_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	struct zk_store *zk = ctx;

	pthread_mutex_lock(&zk->mutex);
	if (type == ZOO_SESSION_EVENT) {
		enum store_state old = zk->state, now = state_of(state);
		zk->zstate = state;
		if (zk->state != STORE_EXPIRED) /* expiry is final */
			zk->state = now;
		if (now == STORE_CONNECTED) {
			const clientid_t *id = zoo_client_id(zh);
			if (id)
				zk->session_id = id->client_id;
		}
		if (zk->state != old)
			queue_push(zk, type, state, NULL);
		pthread_cond_broadcast(&zk->cond);
	} else if (type == ZOO_CREATED_EVENT || type == ZOO_DELETED_EVENT || type == ZOO_CHANGED_EVENT ||
		   type == ZOO_CHILD_EVENT)
		queue_push(zk, type, state, path);
	pthread_mutex_unlock(&zk->mutex);
}

static void zk_close(struct store *s)
{
	struct zk_store *zk = ZK(s);

	if (zk->zh)
		zookeeper_close(zk->zh); /* joins the client's threads: no watcher runs after this */
	while (zk->head) {
		struct zk_event *e = zk->head;
		zk->head = e->next;
		free(e->path);
		free(e);
	}
	for (size_t i = 0; i < zk->n_watches; i++)
		free(zk->watches[i].path);
	free(zk->watches);
	if (zk->efd >= 0)
		close(zk->efd);
	pthread_mutex_destroy(&zk->mutex);
	pthread_cond_destroy(&zk->cond);
	free(zk->chroot);
	free(zk);
}

static int zk_create_chroot(struct zk_store *zk)
{
	_cleanup_free_ char *p = strdup(zk->chroot);

	if (!p)
		return -ENOMEM;
	for (char *c = p + 1;; c++) {
		if (*c == '/' || *c == 0) {
			char save = *c;
			int rc;
			*c = 0;
			rc = zoo_create(zk->zh, p, "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
			if (rc != ZOK && rc != ZNODEEXISTS)
				return zk_err(zk, rc);
			*c = save;
			if (!save)
				break;
		}
	}
	return 0;
}

static int zk_open(const char *where, const struct store_options *opts, struct store **ret, struct error *err)
{
	struct zk_store *zk;
	_cleanup_free_ char *hosts = NULL;
	const char *slash = strchr(where, '/');
	struct timespec deadline;
	int timeout = opts && opts->session_timeout_ms > 0 ? opts->session_timeout_ms : 10000;
	const char *env = getenv("TREADLE_ZK_SESSION_TIMEOUT");
	int r = 0;

	/* operators (and tests) shorten or lengthen every process's session */
	if (env && safe_atoi(env, &r) == 0 && r >= 100 && r <= 600000)
		timeout = r;
	r = 0;

	hosts = slash ? strndup(where, (size_t)(slash - where)) : strdup(where);
	if (!hosts)
		return error_sys(err, ENOMEM, "store");
	if (!*hosts)
		return error_set(err, ERR_PERM, EINVAL, "store: zk:// URL without hosts");
	if (slash && strcmp(slash, "/") && !store_path_valid(slash))
		return error_set(err, ERR_PERM, EINVAL, "store: bad ZooKeeper chroot '%s'", slash);
	zk = store_alloc(sizeof(*zk), &store_backend_zk, opts);
	if (!zk)
		return error_sys(err, ENOMEM, "store");
	zk->efd = -1;
	zk->state = STORE_CONNECTING;
	pthread_mutex_init(&zk->mutex, NULL);
	pthread_cond_init(&zk->cond, NULL);
	zk->chroot = strdup(slash && strcmp(slash, "/") ? slash : "");
	zk->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (!zk->chroot || zk->efd < 0) {
		r = error_sys(err, errno ? errno : ENOMEM, "store");
		goto fail;
	}
	if (!getenv("TREADLE_ZK_DEBUG"))
		zoo_set_debug_level(0); /* library code does not print */
	else
		zoo_set_debug_level(ZOO_LOG_LEVEL_DEBUG);
	pthread_mutex_lock(&zk->mutex);
	zk->zh = zookeeper_init(hosts, zk_watcher, timeout, NULL, zk, 0);
	if (!zk->zh) {
		pthread_mutex_unlock(&zk->mutex);
		r = error_sys(err, errno ? errno : EINVAL, "store: cannot start ZooKeeper client for %s", hosts);
		if (errno == EINVAL)
			err->code = ERR_PERM;
		goto fail;
	}
	/* The client re-resolves the host list every time it polls its socket
	 * (a getaddrinfo per request: a fifth of a leader's CPU loading 100k
	 * apps); once a minute is plenty, and a lost connection still resolves. */
	(void)zoo_set_servers_resolution_delay(zk->zh, 60000);
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += timeout / 1000 + 1;
	while (zk->state != STORE_CONNECTED && zk->state != STORE_EXPIRED)
		if (pthread_cond_timedwait(&zk->cond, &zk->mutex, &deadline) == ETIMEDOUT)
			break;
	if (zk->state != STORE_CONNECTED) {
		pthread_mutex_unlock(&zk->mutex);
		r = error_set(err, ERR_TEMP, ENOTCONN, "store: cannot connect to ZooKeeper at %s", hosts);
		goto fail;
	}
	/* The connection event is ours; nobody needs it dispatched. */
	while (zk->head) {
		struct zk_event *e = zk->head;
		zk->head = e->next;
		free(e->path);
		free(e);
	}
	zk->tail = NULL;
	pthread_mutex_unlock(&zk->mutex);
	if (*zk->chroot && (r = zk_create_chroot(zk)) < 0) {
		error_set(err, r == -ENOTCONN ? ERR_TEMP : ERR_PERM, -r, "store: cannot create chroot %s: %s",
			  zk->chroot, store_strerror(r));
		goto fail;
	}
	*ret = &zk->base;
	return 0;
fail:
	zk_close(&zk->base);
	return r < 0 ? r : -EIO;
}

static int zk_fd(struct store *s)
{
	return ZK(s)->efd;
}

static enum store_state zk_state(struct store *s)
{
	struct zk_store *zk = ZK(s);
	enum store_state st;

	pthread_mutex_lock(&zk->mutex);
	st = zk->state;
	pthread_mutex_unlock(&zk->mutex);
	return st;
}

static int64_t zk_session_id(struct store *s)
{
	struct zk_store *zk = ZK(s);
	int64_t id;

	pthread_mutex_lock(&zk->mutex);
	id = zk->session_id;
	pthread_mutex_unlock(&zk->mutex);
	return id;
}

static int zk_dispatch(struct store *s)
{
	struct zk_store *zk = ZK(s);
	struct zk_event *list;
	uint64_t v;
	int ran = 0;

	if (read(zk->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return negerrno();
	pthread_mutex_lock(&zk->mutex);
	list = zk->head;
	zk->head = zk->tail = NULL;
	pthread_mutex_unlock(&zk->mutex);
	while (list) {
		struct zk_event *e = list;
		list = e->next;
		if (e->type == ZOO_SESSION_EVENT) {
			if (s->opts.session_cb) {
				s->opts.session_cb(s, STORE_EVENT_SESSION, "/", s->opts.session_userdata);
				ran++;
			}
		} else {
			enum store_event ev = e->type == ZOO_CREATED_EVENT   ? STORE_EVENT_CREATED
					      : e->type == ZOO_DELETED_EVENT ? STORE_EVENT_DELETED
					      : e->type == ZOO_CHANGED_EVENT ? STORE_EVENT_CHANGED
									     : STORE_EVENT_CHILD;
			/* Take the matching watches out first: callbacks may add new ones. */
			struct zk_watch *fire = NULL;
			size_t n = 0;
			for (size_t i = 0; i < zk->n_watches;) {
				struct zk_watch *w = &zk->watches[i];
				bool match = !strcmp(w->path, e->path) &&
					     (e->type == ZOO_DELETED_EVENT || (w->kind == W_CHILD) == (e->type == ZOO_CHILD_EVENT));
				if (!match) {
					i++;
					continue;
				}
				struct zk_watch *t = realloc(fire, (n + 1) * sizeof(*fire));
				if (!t) {
					i++;
					continue;
				}
				fire = t;
				fire[n++] = *w;
				zk->watches[i] = zk->watches[--zk->n_watches];
			}
			for (size_t i = 0; i < n; i++) {
				fire[i].fn(s, ev, e->path, fire[i].userdata);
				free(fire[i].path);
				ran++;
			}
			free(fire);
		}
		free(e->path);
		free(e);
	}
	return ran;
}

/* Remember a user watch; returns 1 if added, 0 if the same one is pending. */
static int watch_add(struct zk_store *zk, int kind, const char *path, store_watch_fn fn, void *ud)
{
	struct zk_watch *n;

	for (size_t i = 0; i < zk->n_watches; i++) {
		struct zk_watch *w = &zk->watches[i];
		if (w->kind == kind && w->fn == fn && w->userdata == ud && !strcmp(w->path, path))
			return 0;
	}
	n = realloc(zk->watches, (zk->n_watches + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	zk->watches = n;
	n[zk->n_watches] = (struct zk_watch){ kind, strdup(path), fn, ud };
	if (!n[zk->n_watches].path)
		return -ENOMEM;
	zk->n_watches++;
	return 1;
}

static void watch_undo(struct zk_store *zk, int kind, const char *path, store_watch_fn fn, void *ud)
{
	for (size_t i = 0; i < zk->n_watches; i++) {
		struct zk_watch *w = &zk->watches[i];
		if (w->kind == kind && w->fn == fn && w->userdata == ud && !strcmp(w->path, path)) {
			free(w->path);
			zk->watches[i] = zk->watches[--zk->n_watches];
			return;
		}
	}
}

static void to_stat(const struct Stat *z, struct store_stat *st)
{
	*st = (struct store_stat){
		.version = z->version,
		.cversion = z->cversion,
		.ctime_ms = z->ctime,
		.mtime_ms = z->mtime,
		.ephemeral_owner = z->ephemeralOwner,
		.num_children = z->numChildren,
		.data_length = z->dataLength,
	};
}

static int zk_create(struct store *s, const char *path, const void *data, size_t len, int flags, char **ret_path)
{
	struct zk_store *zk = ZK(s);
	_cleanup_free_ char *zp = zpath(zk, path), *buf = NULL;
	int mode = ((flags & STORE_EPHEMERAL) ? ZOO_EPHEMERAL : 0) | ((flags & STORE_SEQUENTIAL) ? ZOO_SEQUENCE : 0);
	size_t cap;
	int rc;

	if (!zp)
		return -ENOMEM;
	cap = strlen(zp) + 16;
	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	rc = zoo_create(zk->zh, zp, data ? data : "", (int)len, &ZOO_OPEN_ACL_UNSAFE, mode, buf, (int)cap);
	if (rc != ZOK)
		return zk_err(zk, rc);
	if (ret_path) {
		*ret_path = spath(zk, buf);
		if (!*ret_path)
			return -ENOMEM;
	}
	return 0;
}

static int zk_exists(struct store *s, const char *path, struct store_stat *ret_stat, store_watch_fn watch,
		     void *userdata)
{
	struct zk_store *zk = ZK(s);
	_cleanup_free_ char *zp = zpath(zk, path);
	struct Stat z;
	int rc, added = 0;

	if (!zp)
		return -ENOMEM;
	if (watch && (added = watch_add(zk, W_DATA, path, watch, userdata)) < 0)
		return added;
	rc = zoo_wexists(zk->zh, zp, watch ? zk_watcher : NULL, watch ? zk : NULL, &z);
	if (rc != ZOK && rc != ZNONODE && added)
		watch_undo(zk, W_DATA, path, watch, userdata);
	if (rc == ZOK && ret_stat)
		to_stat(&z, ret_stat);
	return zk_err(zk, rc);
}

static int zk_get(struct store *s, const char *path, char **ret_data, size_t *ret_len, struct store_stat *ret_stat,
		  store_watch_fn watch, void *userdata)
{
	struct zk_store *zk = ZK(s);
	_cleanup_free_ char *zp = zpath(zk, path), *buf = NULL;
	size_t cap = 16384;
	struct Stat z;
	int rc, added = 0, blen;

	if (!zp)
		return -ENOMEM;
	if (!ret_data && !ret_len)
		return zk_exists(s, path, ret_stat, watch, userdata);
	if (watch && (added = watch_add(zk, W_DATA, path, watch, userdata)) < 0)
		return added;
	for (int tries = 0; tries < 10; tries++) {
		free(buf);
		buf = malloc(cap + 1);
		if (!buf) {
			rc = ZSYSTEMERROR;
			break;
		}
		blen = (int)cap;
		rc = zoo_wget(zk->zh, zp, watch ? zk_watcher : NULL, watch ? zk : NULL, buf, &blen, &z);
		if (rc == ZNONODE && watch) {
			/* like zoo_wexists: leave a watch for the creation */
			rc = zoo_wexists(zk->zh, zp, zk_watcher, zk, &z);
			if (rc == ZOK)
				continue; /* created meanwhile: read it */
			if (rc == ZNONODE)
				return -ENOENT;
		}
		if (rc != ZOK)
			break;
		if ((size_t)z.dataLength > cap) { /* truncated: read again with room for all of it */
			cap = (size_t)z.dataLength;
			continue;
		}
		if (blen < 0) /* null data */
			blen = 0;
		buf[blen] = 0;
		if (ret_stat)
			to_stat(&z, ret_stat);
		if (ret_len)
			*ret_len = (size_t)blen;
		if (ret_data)
			*ret_data = TAKE_PTR(buf);
		return 0;
	}
	if (added)
		watch_undo(zk, W_DATA, path, watch, userdata);
	return rc == ZOK ? -EIO : zk_err(zk, rc);
}

/* ---- pipelined reads ---- */

#define GET_MANY_WINDOW 2048 /* requests in flight */

struct get_many {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	size_t inflight;
	int error; /* first ZooKeeper error other than ZNONODE */
};

struct get_one {
	struct get_many *m;
	char **data;
	size_t *len;
	struct store_stat *st;
};

static void get_many_done(int rc, const char *value, int value_len, const struct Stat *stat, const void *ud)
{
	struct get_one *o = (struct get_one *)ud;
	struct get_many *m = o->m;

	if (rc == ZOK) {
		size_t n = value_len > 0 ? (size_t)value_len : 0;

		*o->data = malloc(n + 1);
		if (*o->data) {
			if (n)
				memcpy(*o->data, value, n);
			(*o->data)[n] = 0;
			if (o->len)
				*o->len = n;
			if (o->st && stat)
				to_stat(stat, o->st);
		}
	}
	pthread_mutex_lock(&m->lock);
	if (rc == ZOK && !*o->data && !m->error)
		m->error = ZSYSTEMERROR;
	else if (rc != ZOK && rc != ZNONODE && !m->error)
		m->error = rc;
	m->inflight--;
	pthread_cond_signal(&m->cond);
	pthread_mutex_unlock(&m->lock);
}

/* zoo_aget for every path, at most GET_MANY_WINDOW at a time; the client's
 * completion thread fills the results. */
static int zk_get_many(struct store *s, const char *const *paths, size_t n, char **ret_data, size_t *ret_len,
		       struct store_stat *ret_stat)
{
	struct zk_store *zk = ZK(s);
	struct get_many m = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
	_cleanup_free_ struct get_one *ones = calloc(n ? n : 1, sizeof(*ones));
	size_t i;
	int rc = ZOK;

	if (!ones)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		ret_data[i] = NULL;
	for (i = 0; i < n; i++) {
		_cleanup_free_ char *zp = zpath(zk, paths[i]);

		if (!zp) {
			rc = ZSYSTEMERROR;
			break;
		}
		ones[i] = (struct get_one){ &m, &ret_data[i], ret_len ? &ret_len[i] : NULL, ret_stat ? &ret_stat[i] : NULL };
		pthread_mutex_lock(&m.lock);
		while (m.inflight >= GET_MANY_WINDOW)
			pthread_cond_wait(&m.cond, &m.lock);
		m.inflight++;
		pthread_mutex_unlock(&m.lock);
		rc = zoo_aget(zk->zh, zp, 0, get_many_done, &ones[i]);
		if (rc != ZOK) {
			pthread_mutex_lock(&m.lock);
			m.inflight--;
			pthread_mutex_unlock(&m.lock);
			break;
		}
	}
	pthread_mutex_lock(&m.lock);
	while (m.inflight > 0)
		pthread_cond_wait(&m.cond, &m.lock);
	if (rc == ZOK)
		rc = m.error;
	pthread_mutex_unlock(&m.lock);
	pthread_mutex_destroy(&m.lock);
	pthread_cond_destroy(&m.cond);
	if (rc != ZOK) {
		for (i = 0; i < n; i++)
			{ free(ret_data[i]); ret_data[i] = NULL; }
		return zk_err(zk, rc);
	}
	return 0;
}

static int zk_set(struct store *s, const char *path, const void *data, size_t len, int64_t version,
		  struct store_stat *ret_stat)
{
	struct zk_store *zk = ZK(s);
	_cleanup_free_ char *zp = zpath(zk, path);
	struct Stat z;
	int rc;

	if (!zp)
		return -ENOMEM;
	if (version > INT32_MAX)
		return -ESTALE;
	rc = zoo_set2(zk->zh, zp, data ? data : "", (int)len, (int)version, &z);
	if (rc == ZOK && ret_stat)
		to_stat(&z, ret_stat);
	return zk_err(zk, rc);
}

static int zk_delete(struct store *s, const char *path, int64_t version)
{
	struct zk_store *zk = ZK(s);
	_cleanup_free_ char *zp = zpath(zk, path);

	if (!zp)
		return -ENOMEM;
	if (version > INT32_MAX)
		return -ESTALE;
	return zk_err(zk, zoo_delete(zk->zh, zp, (int)version));
}

static int zk_children(struct store *s, const char *path, char ***ret_names, store_watch_fn watch, void *userdata)
{
	struct zk_store *zk = ZK(s);
	_cleanup_free_ char *zp = zpath(zk, path);
	_cleanup_strv_free_ char **l = NULL;
	struct String_vector v = { 0, NULL };
	int rc, r = 0, added = 0;

	if (!zp)
		return -ENOMEM;
	if (watch && (added = watch_add(zk, W_CHILD, path, watch, userdata)) < 0)
		return added;
	rc = zoo_wget_children(zk->zh, zp, watch ? zk_watcher : NULL, watch ? zk : NULL, &v);
	if (rc != ZOK) {
		if (added)
			watch_undo(zk, W_CHILD, path, watch, userdata);
		return zk_err(zk, rc);
	}
	/* sized at once: strv_extend is linear per call, and /scheduled can
	 * have a million children */
	l = calloc((size_t)(v.count > 0 ? v.count : 0) + 1, sizeof(char *));
	if (!l)
		r = -ENOMEM;
	for (int i = 0, k = 0; r >= 0 && i < v.count; i++) {
		/* ZooKeeper's own /zookeeper node is not part of the cell's tree */
		if (!*zk->chroot && !strcmp(path, "/") && !strcmp(v.data[i], "zookeeper"))
			continue;
		if (!(l[k++] = strdup(v.data[i])))
			r = -ENOMEM;
	}
	deallocate_String_vector(&v);
	if (r < 0)
		return r;
	strv_sort(l);
	if (ret_names)
		*ret_names = TAKE_PTR(l);
	return 0;
}

static int zk_multi(struct store *s, const struct store_op *ops, size_t n, size_t *ret_failed_index, char **ret_paths)
{
	struct zk_store *zk = ZK(s);
	zoo_op_t *zops = calloc(n, sizeof(*zops));
	zoo_op_result_t *res = calloc(n, sizeof(*res));
	char **paths = calloc(n, sizeof(*paths)), **bufs = calloc(n, sizeof(*bufs));
	int rc = ZOK, r = -ENOMEM;

	if (!zops || !res || !paths || !bufs)
		goto out;
	for (size_t i = 0; i < n; i++) {
		const struct store_op *o = &ops[i];
		paths[i] = zpath(zk, o->path);
		if (!paths[i])
			goto out;
		if (o->version > INT32_MAX) {
			if (ret_failed_index)
				*ret_failed_index = i;
			r = -ESTALE;
			goto out;
		}
		switch (o->type) {
		case STORE_OP_CREATE: {
			size_t cap = strlen(paths[i]) + 16;
			int mode = ((o->flags & STORE_EPHEMERAL) ? ZOO_EPHEMERAL : 0) |
				   ((o->flags & STORE_SEQUENTIAL) ? ZOO_SEQUENCE : 0);
			bufs[i] = malloc(cap);
			if (!bufs[i])
				goto out;
			zoo_create_op_init(&zops[i], paths[i], o->data ? o->data : "", (int)o->len, &ZOO_OPEN_ACL_UNSAFE,
					   mode, bufs[i], (int)cap);
			break;
		}
		case STORE_OP_DELETE:
			zoo_delete_op_init(&zops[i], paths[i], (int)o->version);
			break;
		case STORE_OP_SET:
			zoo_set_op_init(&zops[i], paths[i], o->data ? o->data : "", (int)o->len, (int)o->version, NULL);
			break;
		case STORE_OP_CHECK:
			zoo_check_op_init(&zops[i], paths[i], (int)o->version);
			break;
		}
	}
	rc = zoo_multi(zk->zh, (int)n, zops, res);
	if (rc != ZOK && rc != ZCONNECTIONLOSS && rc != ZOPERATIONTIMEOUT) {
		if (ret_failed_index)
			*ret_failed_index = 0;
		for (size_t i = 0; i < n; i++)
			if (res[i].err != ZOK && res[i].err != ZRUNTIMEINCONSISTENCY) {
				if (ret_failed_index)
					*ret_failed_index = i;
				rc = res[i].err;
				break;
			}
	}
	r = zk_err(zk, rc);
	for (size_t i = 0; r >= 0 && ret_paths && i < n; i++)
		if (ops[i].type == STORE_OP_CREATE && !(ret_paths[i] = spath(zk, bufs[i])))
			r = -ENOMEM;
out:
	for (size_t i = 0; paths && i < n; i++)
		free(paths[i]);
	for (size_t i = 0; bufs && i < n; i++)
		free(bufs[i]);
	free(paths);
	free(bufs);
	free(zops);
	free(res);
	return r;
}

const struct store_backend store_backend_zk = {
	.name = "zk",
	.open = zk_open,
	.close = zk_close,
	.fd = zk_fd,
	.dispatch = zk_dispatch,
	.state = zk_state,
	.session_id = zk_session_id,
	.create = zk_create,
	.get = zk_get,
	.exists = zk_exists,
	.set = zk_set,
	.delete = zk_delete,
	.children = zk_children,
	.multi = zk_multi,
	.get_many = zk_get_many,
};
