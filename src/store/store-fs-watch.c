/* store-fs-watch.c: the embedded store's watches (inotify) and dispatch. */
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>

#include "../basic/fileio.h"
#include "../basic/util.h"
#include "store-fs-internal.h"

/* ---- watches ------------------------------------------------------------- */

static int wd_ref(struct fs_store *fs, int wd)
{
	struct fs_wd *n;

	for (size_t i = 0; i < fs->n_wds; i++)
		if (fs->wds[i].wd == wd) {
			fs->wds[i].refs++;
			return 0;
		}
	n = realloc(fs->wds, (fs->n_wds + 1) * sizeof(*fs->wds));
	if (!n)
		return -ENOMEM;
	fs->wds = n;
	fs->wds[fs->n_wds++] = (struct fs_wd){ wd, 1 };
	return 0;
}

static void wd_unref(struct fs_store *fs, int wd)
{
	for (size_t i = 0; i < fs->n_wds; i++)
		if (fs->wds[i].wd == wd) {
			if (--fs->wds[i].refs == 0) {
				inotify_rm_watch(fs->inotify_fd, wd);
				fs->wds[i] = fs->wds[--fs->n_wds];
			}
			return;
		}
}

static void wd_forget(struct fs_store *fs, int wd)
{
	for (size_t i = 0; i < fs->n_wds; i++)
		if (fs->wds[i].wd == wd) {
			fs->wds[i] = fs->wds[--fs->n_wds];
			return;
		}
}

static void watch_disarm(struct fs_store *fs, struct fs_watch *w)
{
	if (w->wd >= 0)
		wd_unref(fs, w->wd);
	w->wd = -1;
}

/* Watch the node's directory, or its deepest existing ancestor.  Returns 1 if
 * the node's directory is watched (it exists), 0 if an ancestor is, or -errno. */
int store_fs_watch_arm(struct fs_store *fs, struct fs_watch *w)
{
	size_t full = strcmp(w->path, "/") ? strlen(w->path) : 0;
	int r = store_fs_events(fs);

	if (r < 0)
		return r;
	watch_disarm(fs, w);
	for (int tries = 0; tries < 20; tries++) {
		size_t l = full;
		int wd;

		for (;;) {
			_cleanup_free_ char *abs = strdup_printf("%s/tree%.*s", fs->dir, (int)l, w->path);
			if (!abs)
				return -ENOMEM;
			wd = inotify_add_watch(fs->inotify_fd, abs, WATCH_MASK);
			if (wd >= 0)
				break;
			if ((errno != ENOENT && errno != ENOTDIR) || l == 0)
				return negerrno();
			while (l > 0 && w->path[--l] != '/')
				;
		}
		if (wd_ref(fs, wd) < 0) {
			return -ENOMEM;
		}
		w->wd = wd;
		if (l == full) {
			w->at_node = true;
			return 1;
		}
		if (w->kind == W_CHILD) { /* child watches exist only on existing nodes */
			watch_disarm(fs, w);
			return -ENOENT;
		}
		w->at_node = false;
		w->at_len = l;
		{
			/* The next component may have appeared before the watch was set. */
			const char *e = strchrnul(w->path + l + 1, '/');
			_cleanup_free_ char *next = strdup_printf("tree%.*s", (int)(e - w->path), w->path);
			if (!next)
				return -ENOMEM;
			if (!store_fs_is_dir_at(fs->dfd, next))
				return 0;
		}
		watch_disarm(fs, w);
	}
	return -EIO;
}

static void watch_free(struct fs_watch *w)
{
	if (w) {
		free(w->path);
		free(w);
	}
}

void store_fs_watch_remove(struct fs_store *fs, size_t i)
{
	struct fs_watch *w = fs->watches[i];

	watch_disarm(fs, w);
	memmove(&fs->watches[i], &fs->watches[i + 1], (fs->n_watches - i - 1) * sizeof(*fs->watches));
	fs->n_watches--;
	watch_free(w);
}

struct fs_watch *store_fs_watch_find(struct fs_store *fs, int kind, const char *path, store_watch_fn fn, void *ud)
{
	for (size_t i = 0; i < fs->n_watches; i++) {
		struct fs_watch *w = fs->watches[i];
		if (w->kind == kind && w->fn == fn && w->userdata == ud && !strcmp(w->path, path))
			return w;
	}
	return NULL;
}

struct fs_watch *store_fs_watch_new(struct fs_store *fs, int kind, const char *path, store_watch_fn fn, void *ud)
{
	struct fs_watch *w, **n;

	n = realloc(fs->watches, (fs->n_watches + 1) * sizeof(*fs->watches));
	if (!n)
		return NULL;
	fs->watches = n;
	w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	*w = (struct fs_watch){ .kind = kind, .path = strdup(path), .fn = fn, .userdata = ud, .wd = -1 };
	if (!w->path) {
		free(w);
		return NULL;
	}
	fs->watches[fs->n_watches++] = w;
	return w;
}

void store_fs_watch_drop(struct fs_store *fs, struct fs_watch *w)
{
	for (size_t i = 0; i < fs->n_watches; i++)
		if (fs->watches[i] == w) {
			store_fs_watch_remove(fs, i);
			return;
		}
}

static int fire(struct fs_store *fs, size_t i, enum store_event ev)
{
	struct fs_watch *w = fs->watches[i];
	struct fs_fired *n = realloc(fs->fired, (fs->n_fired + 1) * sizeof(*fs->fired));

	if (!n)
		return -ENOMEM;
	fs->fired = n;
	n[fs->n_fired++] = (struct fs_fired){ w->fn, w->userdata, ev, TAKE_PTR(w->path) };
	store_fs_watch_remove(fs, i);
	return 0;
}

/* ---- dispatch ------------------------------------------------------------ */

int store_fs_fd(struct store *s)
{
	int r = store_fs_events(FS(s));

	return r < 0 ? r : FS(s)->epoll_fd;
}

/* Our session is gone from under us: report it once, refuse further calls. */
static void expire(struct fs_store *fs)
{
	struct fs_fired *n;

	if (fs->expired)
		return;
	fs->expired = true;
	if (!fs->base.opts.session_cb)
		return;
	n = realloc(fs->fired, (fs->n_fired + 1) * sizeof(*fs->fired));
	if (!n)
		return;
	fs->fired = n;
	n[fs->n_fired] = (struct fs_fired){ fs->base.opts.session_cb, fs->base.opts.session_userdata,
					     STORE_EVENT_SESSION, strdup("/") };
	if (n[fs->n_fired].path)
		fs->n_fired++;
}

static void handle_event(struct fs_store *fs, const struct inotify_event *e)
{
	const char *name = e->len ? e->name : "";

	if (e->mask & IN_Q_OVERFLOW) {
		/* Events were lost: fire every watch whose node state may have changed. */
		for (size_t i = fs->n_watches; i-- > 0;) {
			struct fs_watch *w = fs->watches[i];
			bool exists = store_fs_node_read(fs, w->path, NULL, NULL, NULL) == 0;
			if (w->kind == W_CHILD)
				fire(fs, i, exists ? STORE_EVENT_CHILD : STORE_EVENT_DELETED);
			else if (!w->at_node)
				exists ? (void)fire(fs, i, STORE_EVENT_CREATED) : (void)0;
			else
				fire(fs, i, exists ? STORE_EVENT_CHANGED : STORE_EVENT_DELETED);
		}
		store_fs_sessions_sweep(fs, false);
		return;
	}
	if (e->wd == fs->sessions_wd) {
		if ((e->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) ||
		    ((e->mask & IN_DELETE) && fs->session_name && !strcmp(name, fs->session_name)))
			expire(fs);
		else if (e->mask & IN_MOVED_TO)
			store_fs_peer_add(fs, name, false);
		else if (e->mask & IN_DELETE) /* closed or reaped: stop watching its owner */
			for (size_t i = 0; i < fs->n_peers; i++)
				if (!strcmp(fs->peers[i].name, name)) {
					store_fs_peer_drop(fs, i);
					break;
				}
		return;
	}
	for (size_t i = fs->n_watches; i-- > 0;) {
		struct fs_watch *w = fs->watches[i];
		bool gone = e->mask & (IN_MOVE_SELF | IN_DELETE_SELF | IN_IGNORED);

		if (i >= fs->n_watches || w->wd != e->wd)
			continue;
		if (w->at_node) {
			if (gone)
				fire(fs, i, STORE_EVENT_DELETED);
			else if (w->kind == W_DATA && (e->mask & IN_MOVED_TO) && !strcmp(name, NODE_FILE))
				fire(fs, i, STORE_EVENT_CHANGED);
			else if (w->kind == W_CHILD && (e->mask & (IN_MOVED_TO | IN_MOVED_FROM)) && name[0] &&
				 name[0] != '.')
				fire(fs, i, STORE_EVENT_CHILD);
		} else {
			const char *next = w->path + w->at_len + 1;
			size_t nl = strcspn(next, "/");
			if (gone || ((e->mask & IN_MOVED_TO) && strlen(name) == nl && !strncmp(name, next, nl))) {
				int r = store_fs_watch_arm(fs, w);
				if (r == 1)
					fire(fs, i, STORE_EVENT_CREATED);
				else if (r < 0)
					store_fs_watch_remove(fs, i); /* cannot watch any more: drop it */
			}
		}
	}
	if (e->mask & IN_IGNORED)
		wd_forget(fs, e->wd);
}

int store_fs_dispatch(struct store *s)
{
	struct fs_store *fs = FS(s);
	struct epoll_event evs[16];
	int n, ran = 0;

	n = store_fs_events(fs);
	if (n < 0)
		return n;
	for (;;) {
		n = epoll_wait(fs->epoll_fd, evs, (int)ELEMENTSOF(evs), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return negerrno();
		if (n == 0)
			break;
		for (int i = 0; i < n; i++) {
			if (evs[i].data.u64 == 0) {
				char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
				ssize_t l;
				while ((l = read(fs->inotify_fd, buf, sizeof(buf))) > 0)
					for (char *p = buf; p < buf + l;) {
						const struct inotify_event *e = (const struct inotify_event *)p;
						handle_event(fs, e);
						p += sizeof(*e) + e->len;
					}
				continue;
			}
			for (size_t j = 0; j < fs->n_peers; j++)
				if ((uint64_t)fs->peers[j].id == evs[i].data.u64) {
					_cleanup_free_ char *name = strdup(fs->peers[j].name);
					store_fs_peer_drop(fs, j);
					if (name)
						store_fs_session_reap(fs, name, false);
					break;
				}
		}
	}
	/* Callbacks last: they may set new watches. */
	while (fs->n_fired) {
		struct fs_fired f = fs->fired[0];
		memmove(&fs->fired[0], &fs->fired[1], (fs->n_fired - 1) * sizeof(*fs->fired));
		fs->n_fired--;
		f.fn(s, f.ev, f.path, f.userdata);
		free(f.path);
		ran++;
	}
	return ran;
}
