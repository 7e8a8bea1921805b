/* store.c: URL dispatch to the store backends and the generic helpers. */
#include <errno.h>
#include <poll.h>
#include <string.h>

#include "../basic/util.h"
#include "store-internal.h"

bool store_path_valid(const char *path)
{
	const char *p;

	if (!path || path[0] != '/')
		return false;
	if (path[1] == 0)
		return true;
	for (p = path; *p; ) {
		/* p points at a '/' */
		const char *c = p + 1, *e = strchrnul(c, '/');
		if (e == c || *c == '.' || e - c > 255)
			return false;
		p = e;
	}
	return true;
}

char *store_path_parent(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash || slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

void *store_alloc(size_t size, const struct store_backend *b, const struct store_options *opts)
{
	struct store *s = calloc(1, size);

	if (!s)
		return NULL;
	s->backend = b;
	if (opts)
		s->opts = *opts;
	return s;
}

char *store_path_child(const char *parent, const char *name)
{
	return strdup_printf("%s/%s", strcmp(parent, "/") ? parent : "", name);
}

/* The backend of url and, in *ret_where, the URL without its scheme; NULL if unknown. */
static const struct store_backend *backend_of(const char *url, const char **ret_where)
{
	if (startswith(url, "file://")) {
		*ret_where = url + strlen("file://");
		return &store_backend_fs;
	}
	if (url[0] == '/') {
		*ret_where = url;
		return &store_backend_fs;
	}
	if (startswith(url, "zk://")) {
		*ret_where = url + strlen("zk://");
		return &store_backend_zk;
	}
	return NULL;
}

int store_open(const char *url, const struct store_options *opts, struct store **ret, struct error *err)
{
	const struct store_backend *b;
	const char *where;

	if (!url || !ret)
		return error_set(err, ERR_PERM, EINVAL, "store: no URL");
	b = backend_of(url, &where);
	if (!b)
		return error_set(err, ERR_PERM, EINVAL, "store: unsupported URL '%s' (file:///dir, /dir or zk://hosts/chroot)",
				 url);
	return b->open(where, opts, ret, err);
}

int store_fsck(const char *url, bool repair, struct store_fsck_result *res, struct error *err)
{
	const struct store_backend *b;
	const char *where;

	if (!url || !res)
		return error_set(err, ERR_PERM, EINVAL, "store fsck: no URL");
	b = backend_of(url, &where);
	if (!b || !b->fsck)
		return error_set(err, ERR_PERM, EINVAL, "store fsck: only the embedded store (file://) is checked, not '%s'",
				 url);
	return b->fsck(where, repair, res, err);
}

void store_close(struct store *s)
{
	if (s)
		s->backend->close(s);
}

int store_fd(struct store *s)
{
	return s ? s->backend->fd(s) : -EINVAL;
}

int store_dispatch(struct store *s)
{
	return s ? s->backend->dispatch(s) : -EINVAL;
}

int store_wait(struct store *s, int timeout_ms)
{
	struct pollfd p;
	int r;

	if (!s)
		return -EINVAL;
	p.fd = store_fd(s);
	if (p.fd < 0)
		return p.fd;
	p.events = POLLIN;
	r = poll(&p, 1, timeout_ms);
	if (r < 0)
		return errno == EINTR ? 0 : negerrno();
	return store_dispatch(s);
}

enum store_state store_state(struct store *s)
{
	return s->backend->state(s);
}

int64_t store_session_id(struct store *s)
{
	return s->backend->session_id(s);
}

int store_create(struct store *s, const char *path, const void *data, size_t len, int flags, char **ret_path)
{
	if (!s || !store_path_valid(path) || !strcmp(path, "/") || (len && !data) ||
	    (flags & ~(STORE_EPHEMERAL | STORE_SEQUENTIAL)))
		return -EINVAL;
	if (len > STORE_MAX_DATA)
		return -E2BIG;
	return s->backend->create(s, path, data, len, flags, ret_path);
}

int store_create_p(struct store *s, const char *path)
{
	_cleanup_free_ char *parent = NULL;
	int r;

	if (!s || !store_path_valid(path))
		return -EINVAL;
	if (!strcmp(path, "/"))
		return 0;
	r = s->backend->create(s, path, NULL, 0, STORE_PERSISTENT, NULL);
	if (r != -ENOENT)
		return r == -EEXIST ? 0 : r;
	parent = store_path_parent(path);
	if (!parent)
		return -ENOMEM;
	r = store_create_p(s, parent);
	if (r < 0)
		return r;
	r = s->backend->create(s, path, NULL, 0, STORE_PERSISTENT, NULL);
	return r == -EEXIST ? 0 : r;
}

int store_get(struct store *s, const char *path, char **ret_data, size_t *ret_len, struct store_stat *ret_stat,
	      store_watch_fn watch, void *userdata)
{
	if (!s || !store_path_valid(path))
		return -EINVAL;
	return s->backend->get(s, path, ret_data, ret_len, ret_stat, watch, userdata);
}

static int get_many(struct store *s, const char *const *paths, size_t n, char **ret_data, size_t *ret_len,
		    struct store_stat *ret_stat)
{
	size_t i;
	int r = 0;

	if (!s || (n && !ret_data))
		return -EINVAL;
	for (i = 0; i < n; i++)
		if (!store_path_valid(paths[i]))
			return -EINVAL;
	if (s->backend->get_many)
		return s->backend->get_many(s, paths, n, ret_data, ret_len, ret_stat);
	for (i = 0; i < n; i++) {
		ret_data[i] = NULL;
		r = s->backend->get(s, paths[i], &ret_data[i], ret_len ? &ret_len[i] : NULL,
				    ret_stat ? &ret_stat[i] : NULL, NULL, NULL);
		if (r == -ENOENT || r == -EIO) /* EIO: a corrupt node, NULL like a missing one (see store.h) */
			r = 0;
		else if (r < 0)
			break;
	}
	if (r < 0)
		for (size_t k = 0; k < i; k++)
			{ free(ret_data[k]); ret_data[k] = NULL; }
	return r;
}

int store_get_many_in(struct store *s, const char *dir, char *const *names, size_t n, char **ret_data,
		      size_t *ret_len, struct store_stat *ret_stat)
{
	char **paths = calloc(n + 1, sizeof(char *));
	int r = paths ? 0 : -ENOMEM;

	for (size_t i = 0; i < n && r == 0; i++)
		if (!(paths[i] = store_path_child(dir, names[i])))
			r = -ENOMEM;
	if (r == 0)
		r = get_many(s, (const char *const *)paths, n, ret_data, ret_len, ret_stat);
	for (size_t i = 0; paths && i < n; i++)
		free(paths[i]);
	free(paths);
	return r;
}

int store_exists(struct store *s, const char *path, struct store_stat *ret_stat, store_watch_fn watch,
		 void *userdata)
{
	if (!s || !store_path_valid(path))
		return -EINVAL;
	return s->backend->exists(s, path, ret_stat, watch, userdata);
}

int store_set(struct store *s, const char *path, const void *data, size_t len, int64_t version,
	      struct store_stat *ret_stat)
{
	if (!s || !store_path_valid(path) || (len && !data) || version < -1)
		return -EINVAL;
	if (len > STORE_MAX_DATA)
		return -E2BIG;
	return s->backend->set(s, path, data, len, version, ret_stat);
}

int store_delete(struct store *s, const char *path, int64_t version)
{
	if (!s || !store_path_valid(path) || !strcmp(path, "/") || version < -1)
		return -EINVAL;
	return s->backend->delete(s, path, version);
}

int store_delete_r(struct store *s, const char *path)
{
	int r;

	if (!s || !store_path_valid(path))
		return -EINVAL;
	/* Children may appear while we delete: retry a few rounds. */
	for (int round = 0; round < 5; round++) {
		_cleanup_strv_free_ char **names = NULL;

		r = s->backend->children(s, path, &names, NULL, NULL);
		if (r == -ENOENT)
			return 0;
		if (r < 0)
			return r;
		for (char **n = names; *n; n++) {
			_cleanup_free_ char *child = store_path_child(path, *n);
			if (!child)
				return -ENOMEM;
			r = store_delete_r(s, child);
			if (r < 0)
				return r;
		}
		if (!strcmp(path, "/"))
			return 0;
		r = s->backend->delete(s, path, -1);
		if (r == 0 || r == -ENOENT)
			return 0;
		if (r != -ENOTEMPTY)
			return r;
	}
	return -ENOTEMPTY;
}

int store_children(struct store *s, const char *path, char ***ret_names, store_watch_fn watch, void *userdata)
{
	if (!s || !store_path_valid(path))
		return -EINVAL;
	return s->backend->children(s, path, ret_names, watch, userdata);
}

int store_multi(struct store *s, const struct store_op *ops, size_t n, size_t *ret_failed_index)
{
	return store_multi_paths(s, ops, n, ret_failed_index, NULL);
}

int store_multi_paths(struct store *s, const struct store_op *ops, size_t n, size_t *ret_failed_index,
		      char ***ret_paths)
{
	_cleanup_strv_free_ char **paths = NULL;
	int r;

	if (!s || (n && !ops))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		const struct store_op *o = &ops[i];
		int bad = !store_path_valid(o->path) || o->version < -1 || (o->len && !o->data) ||
			  (o->type != STORE_OP_CREATE && o->type != STORE_OP_DELETE && o->type != STORE_OP_SET &&
			   o->type != STORE_OP_CHECK) ||
			  ((o->type == STORE_OP_CREATE || o->type == STORE_OP_DELETE) && !strcmp(o->path, "/")) ||
			  (o->type == STORE_OP_CREATE && (o->flags & ~(STORE_EPHEMERAL | STORE_SEQUENTIAL)));
		if (bad || o->len > STORE_MAX_DATA) {
			if (ret_failed_index)
				*ret_failed_index = i;
			return bad ? -EINVAL : -E2BIG;
		}
	}
	if (ret_paths) {
		paths = calloc(n + 1, sizeof(*paths));
		if (!paths)
			return -ENOMEM;
	}
	if (n == 0)
		r = 0;
	else
		r = s->backend->multi(s, ops, n, ret_failed_index, paths);
	if (r >= 0 && ret_paths) {
		/* a NULL-terminated vector: entries of ops that are not creates are "" */
		for (size_t i = 0; i < n; i++)
			if (!paths[i] && !(paths[i] = strdup("")))
				return -ENOMEM;
		*ret_paths = TAKE_PTR(paths);
	}
	return r;
}

const char *store_strerror(int r)
{
	switch (r < 0 ? -r : r) {
	case 0:
		return "ok";
	case ENOENT:
		return "no node";
	case EEXIST:
		return "node exists";
	case ESTALE:
		return "bad version";
	case ENOTEMPTY:
		return "node has children";
	case EPERM:
		return "no children for ephemerals";
	case EINVAL:
		return "bad arguments";
	case ENOTCONN:
		return "connection loss";
	case ESHUTDOWN:
		return "session expired";
	case E2BIG:
		return "data too large";
	case EIO:
		return "I/O error or corrupt store file (see 'treadle store fsck')";
	case EROFS:
		return "read-only store (or file system)";
	case EOVERFLOW:
		return "sequence counter used up";
	default:
		return strerror(r < 0 ? -r : r);
	}
}

int store_error_code(int r)
{
	switch (r < 0 ? -r : r) {
	case ENOTCONN:
	case ESHUTDOWN:
	case EIO:
	case ENOMEM:
	case ENOSPC:
	case EDQUOT:
	case EROFS:
		return ERR_TEMP;
	default:
		return ERR_PERM;
	}
}
