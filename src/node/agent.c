/* agent.c: the node agent's epoll loop (see agent.h, docs/NODE.md).
 *
 * Every input only marks a part of the state "dirty"; after each wake-up the
 * dirty parts are reconciled by listing their directories (or the store node)
 * in full.  That keeps one code path for start-up and steady state, which is
 * what makes the agent restartable at any instruction. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>

#include <jansson.h>

#include "../basic/fileio.h"
#include "../basic/util.h"
#include "../cgroup/cg.h"
#include "../manifest/manifest.h"
#include "../store/store.h"
#include "../supervisor/supervisor.h"
#include "../trace/trace.h"
#include "agent.h"
#include "layout.h"
#include "sproc.h"

extern char **environ;

#define TICK_MS 500
#define MAX_CLEANUPS 8
#define CLEANUP_RETRY_MS 2000
#define SVSCAN_WAIT_MS 5000 /* at start, for the s6-svscan of N/running (started beside us) */
#define RELEASED_REL "data/released" /* a container stopped by N/stop "release" */

/* What N/stop (written by `treadle cell down`) asks for. */
enum drain {
	DRAIN_NONE,
	DRAIN_FINISH,  /* "finish": containers stopped on purpose, their instances finish */
	DRAIN_RELEASE, /* "release": containers stopped, no terminal event: their instances stay scheduled */
};

enum { TAG_STORE = 1, TAG_SIGNAL, TAG_INOTIFY, TAG_TIMER, TAG_MAX_ };

struct cont {
	char *unique;
	char *instance;
	bool running;	    /* linked from running/ */
	bool started;	    /* its services started (data/started) */
	bool published;	    /* /running/<instance> created by this session */
	char **endpoints;   /* /endpoints/... nodes published with it */
	bool timed_out;
	double configured_at; /* realtime, data/app.json mtime */
	int oom_fd;
	bool oom_tried;
	pid_t cleanup_pid;
	uint64_t retry_at; /* monotonic ms */
	int wd_ctl[2];	   /* inotify on its spool dirs (appevents, tombstones) */
	bool d_ctl;
};

struct agent {
	const struct node_agent_options *o;
	struct node_settings ns;
	struct store *store;
	struct cg *cg; /* for OOM notifications; NULL if cgroups are unusable */
	int epfd, sigfd, inofd, tfd, lockfd;
	int wd_cache, wd_tr, wd_ts, wd_ev, wd_cleanup;
	bool d_placement, d_cache, d_tomb, d_cleanup, d_events, d_ctl;
	bool first_placement_sync, ready, placement_ok, presence_ok, stop, expired, blackout_logged;
	int last_list_err; /* last error listing our placements (0: none), to log each outage once */
	bool placement_retry; /* a placement could not be cached (disk full...): sync again on the tick */
	int last_cache_err;
	bool blackedout; /* /blackedout.servers/<host> exists: no presence, but placements still mirrored (removals stop apps) */
	struct cont **conts;
	size_t n_conts;
	unsigned n_cleanups;
	enum drain drain; /* N/stop: stop every container, start none */
	char *p_cache, *p_apps, *p_running, *p_cleanup, *p_tr, *p_ts, *p_ev, *p_archives, *p_ready, *p_stop;
	char *presence_path, *placement_path, *server_path;
	double started_at; /* realtime */
};

#define LOG(fmt, ...) fprintf(stderr, "treadle node: " fmt "\n", ##__VA_ARGS__)

static bool exists(const char *p)
{
	struct stat st;

	return p && lstat(p, &st) == 0;
}

/* ---- container bookkeeping ---- */

static struct cont *cont_find(struct agent *a, const char *unique)
{
	for (size_t i = 0; i < a->n_conts; i++)
		if (!strcmp(a->conts[i]->unique, unique))
			return a->conts[i];
	return NULL;
}

static struct cont *cont_get(struct agent *a, const char *unique)
{
	struct cont *c = cont_find(a, unique), **t;
	_cleanup_free_ char *app = NULL;
	struct stat st;

	if (c)
		return c;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->unique = strdup(unique);
	c->instance = node_unique_instance(unique);
	c->oom_fd = -1;
	c->wd_ctl[0] = c->wd_ctl[1] = -1;
	c->d_ctl = true;
	a->d_ctl = true;
	t = realloc(a->conts, (a->n_conts + 1) * sizeof(*t));
	if (!c->unique || !c->instance || !t) {
		free(c->unique);
		free(c->instance);
		free(c);
		if (t)
			a->conts = t;
		return NULL;
	}
	a->conts = t;
	a->conts[a->n_conts++] = c;
	app = strdup_printf("%s/%s/data/app.json", a->p_apps, unique);
	c->configured_at = app && stat(app, &st) == 0 ? (double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec * 1e-9
						      : now_realtime();
	/* a container found at start-up gets a full setup window from then:
	 * after a node restart its run starts again when s6 gets to it */
	if (c->configured_at < a->started_at)
		c->configured_at = a->started_at;
	return c;
}

static void cont_close_oom(struct agent *a, struct cont *c)
{
	if (c->oom_fd >= 0) {
		epoll_ctl(a->epfd, EPOLL_CTL_DEL, c->oom_fd, NULL);
		close(c->oom_fd);
		c->oom_fd = -1;
	}
}

static void cont_unwatch(struct agent *a, struct cont *c)
{
	for (int k = 0; k < 2; k++)
		if (c->wd_ctl[k] >= 0) {
			inotify_rm_watch(a->inofd, c->wd_ctl[k]);
			c->wd_ctl[k] = -1;
		}
}

/* Watch the container's spool dirs (once they exist). */
static void cont_watch(struct agent *a, struct cont *c)
{
	static const char *const kinds[] = { "appevents", "tombstones" };

	for (int k = 0; k < 2; k++) {
		_cleanup_free_ char *d = NULL;

		if (c->wd_ctl[k] >= 0)
			continue;
		d = strdup_printf("%s/%s/" SPROC_CTL_REL "/%s", a->p_apps, c->unique, kinds[k]);
		if (!d)
			return;
		c->wd_ctl[k] = inotify_add_watch(a->inofd, d, IN_MOVED_TO | IN_CLOSE_WRITE | IN_ONLYDIR);
		if (c->wd_ctl[k] >= 0)
			c->d_ctl = a->d_ctl = true; /* drain what came before the watch */
	}
}

static void ctl_sync(struct agent *a)
{
	for (size_t i = 0; i < a->n_conts; i++) {
		struct cont *c = a->conts[i];
		int n;

		if (!c->d_ctl)
			continue;
		c->d_ctl = false;
		n = sproc_ctl_drain(a->o->root, c->unique);
		if (n > 0)
			a->d_events = a->d_tomb = true;
	}
}

static void cont_remove(struct agent *a, struct cont *c)
{
	cont_unwatch(a, c);
	for (size_t i = 0; i < a->n_conts; i++)
		if (a->conts[i] == c) {
			a->conts[i] = a->conts[--a->n_conts];
			break;
		}
	cont_close_oom(a, c);
	free(c->unique);
	free(c->instance);
	strv_free(c->endpoints);
	free(c);
}

/* /running/<instance> and the endpoints: published when a container's
 * services start, ephemeral. */
static void running_unpublish(struct agent *a, struct cont *c)
{
	_cleanup_free_ char *p = NULL;

	if (!c->published)
		return;
	p = strdup_printf("/running/%s", c->instance);
	if (p && a->store) {
		(void)store_delete(a->store, p, -1);
		for (char **e = c->endpoints; e && *e; e++)
			(void)store_delete(a->store, *e, -1);
	}
	strv_free(c->endpoints);
	c->endpoints = NULL;
	c->published = false;
}

/* An ephemeral node of this session: created, or already there from it. */
static int ephemeral_put(struct agent *a, const char *path, const char *data, const char *parent)
{
	struct store_stat st;
	int r = store_create(a->store, path, data, strlen(data), STORE_EPHEMERAL, NULL);

	if (r == -ENOENT) {
		(void)store_create_p(a->store, parent);
		r = store_create(a->store, path, data, strlen(data), STORE_EPHEMERAL, NULL);
	}
	if (r == -EEXIST && store_exists(a->store, path, &st, NULL, NULL) == 0 &&
	    st.ephemeral_owner == store_session_id(a->store))
		r = 0;
	return r;
}

/* Treadmill's presence: /endpoints/<proid>/<app>#<n>:<proto>:<name> =
 * "<host>:<real_port>" for every endpoint of the container's app.json (real
 * ports are given by sproc run before the services start). */
static int endpoints_publish(struct agent *a, struct cont *c)
{
	_cleanup_free_ char *f = strdup_printf("%s/%s/data/app.json", a->p_apps, c->unique), *text = NULL;
	_cleanup_strv_free_ char **paths = strv_new();
	const char *proid, *rest;
	json_t *app, *ep;
	size_t i;
	int r = 0;

	if (!f || !paths)
		return -ENOMEM;
	if (read_file(f, &text, NULL) < 0 || !(app = json_loads(text, 0, NULL)))
		return 0; /* nothing to publish */
	proid = json_string_value(json_object_get(app, "proid"));
	rest = strchr(c->instance, '.');
	json_array_foreach(json_object_get(app, "endpoints"), i, ep) {
		const char *name = json_string_value(json_object_get(ep, "name"));
		const char *proto = json_string_value(json_object_get(ep, "proto"));
		json_int_t port = json_integer_value(json_object_get(ep, "real_port"));
		_cleanup_free_ char *dir = NULL, *p = NULL, *v = NULL;

		if (!proid || !rest || !name || port <= 0)
			continue;
		dir = strdup_printf("/endpoints/%s", proid);
		p = strdup_printf("%s/%s:%s:%s", dir ? dir : "", rest + 1, proto ? proto : "tcp", name);
		v = strdup_printf("%s:%lld", a->o->hostname, (long long)port);
		if (!dir || !p || !v) {
			r = -ENOMEM;
			break;
		}
		r = ephemeral_put(a, p, v, dir);
		if (r < 0 || strv_push(&paths, TAKE_PTR(p)) < 0)
			break;
	}
	json_decref(app);
	if (r == 0) {
		strv_free(c->endpoints);
		c->endpoints = TAKE_PTR(paths);
	}
	return r;
}

static void running_publish(struct agent *a, struct cont *c)
{
	_cleanup_free_ char *p = strdup_printf("/running/%s", c->instance);

	if (!p || c->published)
		return;
	/* else: a previous session's node still exists; retried every tick */
	if (endpoints_publish(a, c) < 0 || ephemeral_put(a, p, a->o->hostname, "/running") < 0)
		return;
	c->published = true;
	LOG("%s: running (%s)", c->instance, c->unique);
}

/* ---- store watches ---- */

static void placement_watch(struct store *s, enum store_event ev, const char *path, void *ud)
{
	struct agent *a = ud;

	a->d_placement = true;
}

static void session_watch(struct store *s, enum store_event ev, const char *path, void *ud)
{
	struct agent *a = ud;

	if (store_state(s) == STORE_EXPIRED)
		a->expired = true;
	a->d_placement = true;
}

/* ---- registration ---- */

static int register_server(struct agent *a, struct error *err)
{
	_cleanup_free_ char *data = NULL, *out = NULL, *mem = NULL, *cpu = NULL, *disk = NULL;
	_cleanup_free_ char *meminfo = NULL;
	unsigned long long mem_mb = 0, disk_mb = 0;
	struct statvfs vfs;
	json_t *o = NULL;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int r;

	if (read_file("/proc/meminfo", &meminfo, NULL) == 0) {
		char *m = strstr(meminfo, "MemTotal:");
		if (m)
			mem_mb = strtoull(m + 9, NULL, 10) / 1024;
	}
	if (statvfs(a->o->root, &vfs) == 0)
		disk_mb = (unsigned long long)vfs.f_bavail * vfs.f_frsize / (1024 * 1024);
	mem = strdup_printf("%lluM", mem_mb);
	cpu = strdup_printf("%ld%%", (ncpu > 0 ? ncpu : 1) * 100);
	disk = strdup_printf("%lluM", disk_mb);
	if (!mem || !cpu || !disk)
		return error_sys(err, ENOMEM, "registering");
	(void)store_create_p(a->store, "/servers");
	r = store_get(a->store, a->server_path, &data, NULL, NULL, NULL, NULL);
	if (r == 0 && data && *data)
		o = json_loads(data, 0, NULL);
	if (!json_is_object(o)) {
		json_decref(o);
		o = json_object();
	}
	if (!o)
		return error_sys(err, ENOMEM, "registering");
	json_object_set_new(o, "memory", json_string(mem));
	json_object_set_new(o, "cpu", json_string(cpu));
	json_object_set_new(o, "disk", json_string(disk));
	json_object_set_new(o, "up_since", json_real(now_realtime()));
	out = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT);
	json_decref(o);
	if (!out)
		return error_sys(err, ENOMEM, "registering");
	if (r == -ENOENT)
		r = store_create(a->store, a->server_path, out, strlen(out), STORE_PERSISTENT, NULL);
	else if (r == 0)
		r = store_set(a->store, a->server_path, out, strlen(out), -1, NULL);
	if (r < 0)
		return error_set(err, ERR_TEMP, -r, "writing %s: %s", a->server_path, store_strerror(r));
	(void)store_create_p(a->store, "/server.presence");
	return 0;
}

/* Ephemeral /server.presence/<host> = {"seen": false}; tolerate a previous
 * session's node (it goes when that session ends; retried every tick). */
static void presence_ensure(struct agent *a)
{
	static const char data[] = "{\"seen\":false}";
	_cleanup_free_ char *bpath = strdup_printf("/blackedout.servers/%s", a->o->hostname);
	int r;

	if (bpath && store_exists(a->store, bpath, NULL, NULL, NULL) == 0)
		goto create; /* checked below, with the presence gone */
	r = store_exists(a->store, a->presence_path, NULL, placement_watch, a);
	if (r == 0) {
		a->presence_ok = true;
		return;
	}
create:
	/* A blacked-out server stays away (Treadmill: admin blackout deletes the
	 * presence; init refuses to register); the watch brings it back when the
	 * blackout is cleared. */
	if (bpath && store_exists(a->store, bpath, NULL, placement_watch, a) == 0) {
		if (a->presence_ok || !a->blackout_logged)
			LOG("%s is blacked out: not registering presence", a->o->hostname);
		(void)store_delete(a->store, a->presence_path, -1);
		a->blackout_logged = true;
		a->blackedout = true;
		a->presence_ok = false;
		return;
	}
	a->blackout_logged = false;
	a->blackedout = false;
	r = store_create(a->store, a->presence_path, data, strlen(data), STORE_EPHEMERAL, NULL);
	if (r == 0 || r == -EEXIST) {
		a->presence_ok = true;
		(void)store_exists(a->store, a->presence_path, NULL, placement_watch, a);
		if (r == 0)
			LOG("registered %s", a->o->hostname);
	} else
		a->presence_ok = false;
}

/* ---- eventmgr: placement -> cache ---- */

static int cache_write(struct agent *a, const char *inst)
{
	_cleanup_free_ char *ppath = strdup_printf("%s/%s", a->placement_path, inst);
	_cleanup_free_ char *spath = strdup_printf("/scheduled/%s", inst);
	_cleanup_free_ char *pdata = NULL, *sdata = NULL, *out = NULL, *file = node_cache_file(a->o->root, inst);
	const char *hash = strrchr(inst, '#');
	struct store_stat pst = {};
	struct timespec placed;
	json_t *m, *p;
	int r;

	if (!ppath || !spath || !file)
		return -ENOMEM;
	if (!hash || strchr(inst, '/') || inst[0] == '.')
		return -EINVAL;
	r = store_get(a->store, ppath, &pdata, NULL, &pst, NULL, NULL);
	if (r < 0)
		return r == -ENOENT ? 0 : r;
	r = store_get(a->store, spath, &sdata, NULL, NULL, NULL, NULL);
	if (r < 0)
		return r == -ENOENT ? 0 : r;
	m = json_loads(sdata ? sdata : "", 0, NULL);
	if (!json_is_object(m)) { /* cannot be configured: end it rather than leave it placed forever */
		json_decref(m);
		LOG("%s: /scheduled data is not a JSON object: aborted", inst);
		(void)sproc_event_post(a->p_ev, inst, "aborted", "invalid_manifest",
				       "invalid manifest: /scheduled data is not a JSON object");
		a->d_events = true;
		return 0;
	}
	json_object_set_new(m, "task", json_string(hash + 1));
	p = pdata && *pdata ? json_loads(pdata, 0, NULL) : NULL;
	if (json_is_object(p))
		json_object_update(m, p);
	json_decref(p);
	out = json_dumps(m, JSON_SORT_KEYS | JSON_COMPACT);
	json_decref(m);
	if (!out)
		return -ENOMEM;
	/* the cache file's mtime is the placement's creation time in the store:
	 * a restarted agent tells a re-placement by comparing the two, exactly
	 * and on the store's clock (never this host's, never file ctimes) */
	placed = (struct timespec){ .tv_sec = pst.ctime_ms / 1000, .tv_nsec = (pst.ctime_ms % 1000) * 1000000 };
	r = write_file_atomic_mtime_at(AT_FDCWD, file, out, strlen(out), 0644, &placed);
	if (r == 0)
		a->d_cache = true;
	return r;
}

static void eventmgr_sync(struct agent *a)
{
	_cleanup_strv_free_ char **children = NULL, **cached = NULL;
	struct store_stat pst;
	int r;

	presence_ensure(a);
	r = store_children(a->store, a->placement_path, &children, placement_watch, a);
	if (r == -ENOENT) {
		(void)store_exists(a->store, a->placement_path, NULL, placement_watch, a);
		a->placement_ok = false;
	} else if (r < 0) {
		if (r != a->last_list_err) /* once per kind of failure, not every tick of an outage */
			LOG("listing %s: %s", a->placement_path, store_strerror(r));
		a->last_list_err = r;
		return; /* keep the current state; retried on the next event or tick */
	} else
		a->placement_ok = true;
	if (a->last_list_err)
		LOG("listing %s: ok again", a->placement_path);
	a->last_list_err = 0;
	a->ready = (a->presence_ok || a->blackedout) && a->placement_ok;
	if (a->ready) {
		if (!exists(a->p_ready))
			(void)write_file_atomic(a->p_ready, "", 0, 0644);
	} else
		(void)unlink(a->p_ready);
	if (!a->placement_ok)
		return;
	if (dir_list(a->p_cache, 1, &cached) < 0)
		return;
	for (char **c = cached; *c; c++)
		if (!strv_contains(children, *c)) {
			_cleanup_free_ char *f = node_cache_file(a->o->root, *c);
			if (f && unlink(f) == 0) {
				a->d_cache = true;
				LOG("%s: placement removed", *c);
			}
		}
	a->placement_retry = false;
	for (char **c = children; *c; c++) {
		if (strv_contains(cached, *c)) {
			/* first sync after a restart: a placement created at another
			 * time than the one the cache file records (its mtime, see
			 * cache_write) means it was re-placed while we were away */
			_cleanup_free_ char *f = node_cache_file(a->o->root, *c);
			_cleanup_free_ char *pp = strdup_printf("%s/%s", a->placement_path, *c);
			struct stat st;

			if (!a->first_placement_sync || !f || !pp || stat(f, &st) < 0)
				continue;
			if (store_exists(a->store, pp, &pst, NULL, NULL) < 0)
				continue;
			if ((int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000 == pst.ctime_ms)
				continue;
		}
		r = cache_write(a, *c);
		if (r < 0 && r != -EINVAL) {
			/* not lost: the placement stays in the store and the tick retries it
			 * (logged once per kind of failure, not every tick of a full disk) */
			if (r != a->last_cache_err)
				LOG("%s: caching placement: %s (will retry)", *c, strerror(-r));
			a->last_cache_err = r;
			a->placement_retry = true;
		}
	}
	if (!a->placement_retry && a->last_cache_err) {
		LOG("caching placements: ok again");
		a->last_cache_err = 0;
	}
	a->first_placement_sync = false;
}

/* ---- appcfgmgr: cache -> containers ---- */

static int symlink_atomic(const char *target, const char *link)
{
	_cleanup_free_ char *tmp = NULL;
	const char *slash = strrchr(link, '/');

	tmp = slash ? strdup_printf("%.*s/.%s.tmp", (int)(slash - link), link, slash + 1) : NULL;
	if (!tmp)
		return -ENOMEM;
	(void)unlink(tmp);
	if (symlink(target, tmp) < 0)
		return negerrno();
	if (rename(tmp, link) < 0) {
		int r = negerrno();
		unlink(tmp);
		return r;
	}
	return 0;
}

static void abort_configure(struct agent *a, const char *inst, const char *why, const char *msg)
{
	_cleanup_free_ char *f = node_cache_file(a->o->root, inst);

	LOG("%s: configure failed: %s", inst, msg);
	(void)sproc_event_post(a->p_ev, inst, "aborted", why, msg);
	a->d_events = true;
	if (f)
		(void)unlink(f);
}

/* Treadmill's configure(): apps/<unique> service dir + data/, configured
 * event, running/<instance> link.  Built under apps/.<unique>.tmp and renamed
 * so a crash never leaves a half-written container. */
static int configure(struct agent *a, const char *inst, const char *unique)
{
	_cleanup_free_ char *cache = node_cache_file(a->o->root, inst), *text = NULL;
	_cleanup_free_ char *tmp = strdup_printf("%s/.%s.tmp", a->p_apps, unique), *dir = node_app_dir(a->o->root, unique);
	_cleanup_free_ char *run = NULL, *fin = NULL, *log = NULL, *p = NULL, *appjson = NULL;
	_cleanup_free_ char *link = node_running_link(a->o->root, inst);
	struct manifest_runtime_ctx ctx = { 0 };
	struct error err = ERROR_INIT;
	struct sv_service_spec spec = { .notification_fd = -1, .timeout_finish_ms = 0 };
	const char *uid = node_unique_id(unique);
	json_t *cached, *app = NULL;
	struct cont *c;
	int r;

	if (!cache || !tmp || !dir || !link || !uid)
		return -ENOMEM;
	r = read_file(cache, &text, NULL);
	if (r < 0)
		return r == -ENOENT ? 0 : r;
	cached = json_loads(text, 0, NULL);
	if (!cached) {
		abort_configure(a, inst, "unknown", "cache file is not valid JSON");
		return 0;
	}
	ctx.instance = inst;
	ctx.uniqueid = uid;
	ctx.cell = a->o->cell ? a->o->cell : "";
	ctx.store_url = a->o->store_url;
	ctx.approot = a->o->root;
	ctx.container_dir = dir;
	ctx.treadle_bin = a->o->treadle_bin;
	ctx.sshd = ""; /* no sshd service: treadle exec gives shell access */
	r = manifest_runtime(cached, &ctx, &app, &err);
	json_decref(cached);
	if (r < 0) {
		abort_configure(a, inst, "unknown", err.msg ? err.msg : "invalid manifest");
		error_clear(&err);
		return 0;
	}
	appjson = manifest_dumps(app);
	json_decref(app);
	if (!appjson)
		return -ENOMEM;
	r = sproc_container_scripts(&a->ns, inst, unique, &run, &fin, &log);
	if (r < 0)
		return r;
	(void)rm_rf(tmp);
	spec.run = run;
	spec.finish = fin;
	spec.log_run = log;
	r = sv_service_write(tmp, &spec);
	if (r < 0)
		goto fail;
	p = strdup_printf("%s/data/log", tmp);
	if (!p || (r = mkdir_p(p, 0755)) < 0)
		goto fail;
	if ((r = sproc_ctl_create(tmp)) < 0)
		goto fail;
	free(p);
	p = strdup_printf("%s/data/manifest.yml", tmp);
	if (!p || (r = sv_write_file(p, text, strlen(text), 0644)) < 0)
		goto fail;
	free(p);
	p = strdup_printf("%s/data/app.json", tmp);
	if (!p || (r = sv_write_file(p, appjson, strlen(appjson), 0644)) < 0)
		goto fail;
	/* at least once: a crash before the rename configures (and posts) again */
	r = sproc_event_post(a->p_ev, inst, "configured", uid, NULL);
	if (r < 0)
		goto fail;
	a->d_events = true;
	if (rename(tmp, dir) < 0) {
		r = negerrno();
		goto fail;
	}
	r = symlink_atomic(dir, link);
	if (r < 0)
		return r; /* apps/<unique> is an orphan now: the next sync links it */
	c = cont_get(a, unique);
	if (c) {
		c->running = true;
		c->configured_at = now_realtime();
		cont_watch(a, c);
	}
	LOG("%s: configured %s", inst, unique);
	return 1;
fail:
	(void)rm_rf(tmp);
	return r < 0 ? r : -ENOMEM;
}

/* Move running/<instance> (pointing to unique) to cleanup/<unique>. */
static int to_cleanup(struct agent *a, const char *inst, const char *unique)
{
	_cleanup_free_ char *link = node_running_link(a->o->root, inst), *cl = node_cleanup_link(a->o->root, unique);
	struct cont *c = cont_find(a, unique);

	if (!link || !cl)
		return -ENOMEM;
	if (rename(link, cl) < 0)
		return negerrno();
	if (c) {
		c->running = false;
		running_unpublish(a, c);
		cont_close_oom(a, c);
	}
	a->d_cleanup = true;
	return 0;
}

static void terminate(struct agent *a, const char *inst, const char *unique)
{
	_cleanup_free_ char *t = strdup_printf("%s/%s/data/terminated", a->p_apps, unique);

	if (t)
		(void)touch(t);
	if (to_cleanup(a, inst, unique) == 0)
		LOG("%s: terminating %s", inst, unique);
}

static char *link_base(const char *link)
{
	char buf[4096];
	ssize_t n = readlink(link, buf, sizeof(buf) - 1);
	char *s;

	if (n <= 0)
		return NULL;
	buf[n] = 0;
	s = strrchr(buf, '/');
	return strdup(s ? s + 1 : buf);
}

/* An archived container that ended with no exitinfo/aborted/oom/terminated. */
static bool archive_unfinished(const char *ar)
{
	static const char *const flags[] = { "exitinfo", "aborted", "oom", "terminated" };

	for (size_t k = 0; k < ELEMENTSOF(flags); k++) {
		_cleanup_free_ char *f = strdup_printf("%s/%s", ar, flags[k]);
		if (!f || exists(f))
			return false;
	}
	return true;
}

/* Rewrite cache/<instance> with the same content: new inode and ctime, so a
 * new unique name (Treadmill's re-placement detection works the same way).
 * The mtime stays the placement's creation time, or the first sync after a
 * restart of the agent would take it for a re-placement and replace the
 * container again. */
static int cache_renew(struct agent *a, const char *inst)
{
	_cleanup_free_ char *f = node_cache_file(a->o->root, inst), *text = NULL;
	struct stat st;
	size_t len;
	int r;

	if (!f)
		return -ENOMEM;
	if (stat(f, &st) < 0)
		return negerrno();
	r = read_file(f, &text, &len);
	if (r < 0)
		return r;
	return write_file_atomic_mtime_at(AT_FDCWD, f, text, len, 0644, &st.st_mtim);
}

static void appcfg_sync(struct agent *a)
{
	_cleanup_strv_free_ char **cached = NULL, **cuniq = strv_new(), **running = NULL, **apps = NULL;
	_cleanup_strv_free_ char **linked = strv_new(), **linked_inst = strv_new();
	bool nudge = false;

	/* Terminations need a placement view synced from the store (placement_ok);
	 * starting anything also needs presence (ready).  A blacked-out node has
	 * no presence: its placements move away and its containers are stopped
	 * (Treadmill stops init1, hence every container). */
	if (!a->placement_ok || !cuniq || !linked || !linked_inst)
		return;
	if (dir_list(a->p_cache, 1, &cached) < 0 || dir_list(a->p_running, 1, &running) < 0 ||
	    dir_list(a->p_apps, 0, &apps) < 0)
		return;
	/* the unique name each cache entry stands for now */
	for (char **c = cached; *c; c++) {
		char *u = NULL;
		if (node_cache_unique_name(a->o->root, *c, &u) < 0)
			u = strdup("");
		if (!u || strv_push(&cuniq, u) < 0)
			return;
	}
	/* running/: dangling links go; links whose cache entry is gone or
	 * names another container are terminated */
	for (char **r = running; *r; r++) {
		_cleanup_free_ char *link = node_running_link(a->o->root, *r), *u = link ? link_base(link) : NULL;
		_cleanup_free_ char *d = u ? node_app_dir(a->o->root, u) : NULL;
		size_t i;
		bool keep = false;

		if (!u || !d || !exists(d)) {
			if (link && unlink(link) == 0)
				nudge = true;
			continue;
		}
		for (i = 0; cached[i]; i++)
			if (!strcmp(cached[i], *r)) {
				keep = !strcmp(cuniq[i], u);
				break;
			}
		if (!keep) {
			terminate(a, *r, u);
			nudge = true;
			continue;
		}
		if (strv_extend(&linked, u) < 0 || strv_extend(&linked_inst, *r) < 0)
			return;
		{
			struct cont *c = cont_get(a, u);
			if (c)
				c->running = true;
		}
	}
	/* apps/: tmp leftovers of a crash go; orphans are re-linked (same
	 * container still wanted and not finished) or cleaned up */
	for (char **p = apps; *p; p++) {
		_cleanup_free_ char *d = NULL, *cl = NULL, *inst = NULL;
		bool reuse = false;

		if ((*p)[0] == '.') {
			d = strdup_printf("%s/%s", a->p_apps, *p);
			if (d)
				(void)rm_rf(d);
			continue;
		}
		if (strv_contains(linked, *p))
			continue;
		cl = node_cleanup_link(a->o->root, *p);
		if (!cl || exists(cl))
			continue;
		inst = node_unique_instance(*p);
		if (inst && !strv_contains(linked_inst, inst)) {
			for (size_t i = 0; cached[i]; i++)
				if (!strcmp(cached[i], inst) && !strcmp(cuniq[i], *p)) {
					static const char *const fin[] = { "exitinfo", "aborted", "oom" };
					reuse = true;
					for (size_t k = 0; k < ELEMENTSOF(fin); k++) {
						_cleanup_free_ char *f = strdup_printf("%s/%s/data/%s", a->p_apps, *p, fin[k]);
						if (!f || exists(f))
							reuse = false;
					}
				}
		}
		d = node_app_dir(a->o->root, *p);
		if (!d)
			return;
		if (reuse && (!a->ready || a->drain))
			continue; /* decided when the node is ready again (never while it stops) */
		if (reuse) {
			_cleanup_free_ char *link = node_running_link(a->o->root, inst);
			if (link && symlink_atomic(d, link) == 0) {
				struct cont *c = cont_get(a, *p);
				if (c) {
					c->running = true;
					c->configured_at = now_realtime(); /* its setup starts now */
				}
				(void)strv_extend(&linked, *p);
				(void)strv_extend(&linked_inst, inst);
				nudge = true;
				LOG("%s: re-linked %s", inst, *p);
			}
		} else if (symlink_atomic(d, cl) == 0) {
			a->d_cleanup = true;
			LOG("%s: orphan, cleaning up", *p);
		}
	}
	/* cache entries without a container: configure (a unique is used once:
	 * not if its container exists, is being cleaned up or was archived) */
	for (size_t i = 0; cached[i]; i++) {
		_cleanup_free_ char *d = NULL, *ar = NULL;
		int r;

		if (!a->ready || a->drain || !*cuniq[i] || strv_contains(linked_inst, cached[i]))
			continue;
		d = node_app_dir(a->o->root, cuniq[i]);
		ar = node_archive_dir(a->o->root, cuniq[i]);
		if (!d || !ar || exists(d))
			continue;
		if (exists(ar)) {
			if (!archive_unfinished(ar))
				continue; /* finished: waiting for the placement to go */
			/* its container went away without the instance finishing (the
			 * node was stopped, or it was killed from outside): start a new
			 * container.  Rewriting the cache file gives it a new unique. */
			if (cache_renew(a, cached[i]) == 0) {
				LOG("%s: %s ended without finishing: starting a new container", cached[i], cuniq[i]);
				a->d_cache = true;
			}
			continue;
		}
		r = configure(a, cached[i], cuniq[i]);
		if (r < 0)
			LOG("%s: configure: %s", cached[i], strerror(-r));
		else if (r > 0)
			nudge = true;
	}
	/* exit histories of instances no longer placed here go with them */
	{
		_cleanup_free_ char *ex = node_path(a->o->root, NODE_DIR_EXITS);
		_cleanup_strv_free_ char **hist = NULL;

		if (ex && dir_list(ex, 1, &hist) == 0)
			for (char **h = hist; *h; h++)
				if (!strv_contains(cached, *h)) {
					_cleanup_free_ char *d = strdup_printf("%s/%s", ex, *h);
					if (d)
						(void)rm_rf(d);
				}
	}
	if (nudge)
		(void)sv_svscan_control(a->p_running, "an");
}

/* ---- monitor: tombstones ---- */

static void monitor_sync(struct agent *a)
{
	_cleanup_strv_free_ char **svc = NULL, **run = NULL;
	bool nudge = false;

	if (dir_list(a->p_ts, 1, &svc) == 0)
		for (char **t = svc; *t; t++) {
			_cleanup_free_ char *path = strdup_printf("%s/%s", a->p_ts, *t), *id = NULL;
			struct sv_exit e;
			char *comma;

			if (!path)
				return;
			if (sv_tombstone_parse(*t, &id, &e) == 0 && (comma = strchr(id, ','))) {
				_cleanup_free_ char *cdir = NULL, *rel = NULL;

				*comma = 0;
				cdir = node_app_dir(a->o->root, id);
				rel = cdir ? strdup_printf("%s/" RELEASED_REL, cdir) : NULL;

				if (rel && exists(rel))
					LOG("%s: service %s exited (rc %d, signal %d): released, not final", id, comma + 1,
					    e.rc, e.sig);
				else if (cdir && exists(cdir)) {
					(void)sproc_exitinfo_write(cdir, comma + 1, &e);
					(void)sv_control(cdir, "d");
					LOG("%s: service %s exited for good (rc %d, signal %d): container down", id,
					    comma + 1, e.rc, e.sig);
				}
			} else
				LOG("ignoring malformed tombstone %s", *t);
			(void)unlink(path);
		}
	if (dir_list(a->p_tr, 1, &run) == 0)
		for (char **t = run; *t; t++) {
			_cleanup_free_ char *path = strdup_printf("%s/%s", a->p_tr, *t), *id = NULL, *inst = NULL;
			struct sv_exit e;

			if (!path)
				return;
			if (sv_tombstone_parse(*t, &id, &e) == 0 && (inst = node_unique_instance(id))) {
				_cleanup_free_ char *link = node_running_link(a->o->root, inst);
				_cleanup_free_ char *u = link ? link_base(link) : NULL;

				if (e.sig == SIGABRT) {
					_cleanup_free_ char *cdir = node_app_dir(a->o->root, id);
					if (cdir && exists(cdir))
						(void)sproc_flag_aborted(cdir, "pid1", NULL);
				}
				_cleanup_free_ char *cd = node_app_dir(a->o->root, id);

				/* only if running/<instance> still names this container, and
				 * it did not come up again since (s6 restarted it, e.g. when
				 * the whole node was stopped and started) */
				if (u && !strcmp(u, id) && cd && sv_is_up(cd) == 1)
					LOG("%s: stale tombstone %s ignored: the container is up", inst, *t);
				else if (u && !strcmp(u, id)) {
					_cleanup_free_ char *fsvc = NULL;
					/* a death outside the policy (sproc run killed...):
					 * traced and counted before the container goes */
					int d = sproc_container_died(a->o->root, id, &e, &fsvc);

					if (d < 0)
						LOG("%s: counting the exit of %s: %s", inst, id, strerror(-d));
					else if (d != SPROC_DEATH_IGNORED)
						a->d_events = true;
					if (to_cleanup(a, inst, id) == 0) {
						nudge = true;
						if (d == SPROC_DEATH_FATAL)
							LOG("%s: container %s exited (rc %d, signal %d): service %s exceeded "
							    "its restart policy",
							    inst, id, e.rc, e.sig, fsvc);
						else
							LOG("%s: container %s exited (rc %d, signal %d)%s", inst, id, e.rc, e.sig,
							    d == SPROC_DEATH_RESTART ? ": counted against the restart policy" : "");
					}
				}
			} else
				LOG("ignoring malformed tombstone %s", *t);
			(void)unlink(path);
		}
	if (nudge)
		(void)sv_svscan_control(a->p_running, "an");
}

/* ---- cleanup: one `treadle sproc cleanup` child per container ---- */

static void cleanup_spawn(struct agent *a, struct cont *c)
{
	const char *cg = a->o->cgroup_root ? a->o->cgroup_root : "treadle";
	char *argv[] = { (char *)"treadle", (char *)"sproc", (char *)"cleanup", (char *)"--root", (char *)a->o->root,
			 (char *)"--cgroup-root", (char *)cg, c->unique, NULL };
	posix_spawnattr_t attr;
	sigset_t empty;
	pid_t pid;
	int r;

	sigemptyset(&empty);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &empty);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
	r = posix_spawn(&pid, a->o->treadle_bin, NULL, &attr, argv, environ);
	posix_spawnattr_destroy(&attr);
	if (r != 0) {
		LOG("%s: spawning cleanup: %s", c->unique, strerror(r));
		c->retry_at = now_monotonic_ms() + CLEANUP_RETRY_MS;
		return;
	}
	c->cleanup_pid = pid;
	a->n_cleanups++;
}

static void cleanup_sync(struct agent *a)
{
	_cleanup_strv_free_ char **l = NULL;
	uint64_t now = now_monotonic_ms();

	if (dir_list(a->p_cleanup, 1, &l) < 0)
		return;
	for (char **u = l; *u; u++) {
		struct cont *c;

		if (!node_unique_id(*u)) {
			_cleanup_free_ char *p = strdup_printf("%s/%s", a->p_cleanup, *u);
			if (p)
				(void)unlink(p);
			continue;
		}
		c = cont_get(a, *u);
		if (!c || c->cleanup_pid || now < c->retry_at || a->n_cleanups >= MAX_CLEANUPS)
			continue;
		c->running = false;
		running_unpublish(a, c);
		cont_close_oom(a, c);
		cleanup_spawn(a, c);
	}
}

static void reap(struct agent *a)
{
	int st;
	pid_t pid;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		for (size_t i = 0; i < a->n_conts; i++) {
			struct cont *c = a->conts[i];

			if (c->cleanup_pid != pid)
				continue;
			c->cleanup_pid = 0;
			a->n_cleanups--;
			if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
				LOG("%s: cleaned up", c->unique);
				running_unpublish(a, c);
				cont_remove(a, c);
				a->d_events = true;
				a->d_cache = true; /* a finished unique may leave room for a re-placement */
			} else {
				LOG("%s: cleanup failed (status %d), retrying", c->unique, st);
				c->retry_at = now_monotonic_ms() + CLEANUP_RETRY_MS;
			}
			a->d_cleanup = true;
			break;
		}
	}
}

/* ---- events publisher ---- */

static void mark_started(struct agent *a, const char *instance, const char *data)
{
	_cleanup_free_ char *uid = strdup(data ? data : ""), *u = NULL;
	char *dot = uid ? strchr(uid, '.') : NULL;
	struct cont *c;

	if (!dot)
		return;
	*dot = 0;
	u = node_unique_name(instance, uid);
	c = u ? cont_find(a, u) : NULL;
	if (c && c->running && !c->started) {
		c->started = true;
		running_publish(a, c);
	}
}

static void publisher_sync(struct agent *a)
{
	_cleanup_strv_free_ char **l = NULL;

	if (dir_list(a->p_ev, 1, &l) < 0)
		return;
	for (char **f = l; *f; f++) {
		_cleanup_free_ char *path = strdup_printf("%s/%s", a->p_ev, *f), *payload = NULL;
		struct trace_event ev = { 0 };
		int r;

		if (!path)
			return;
		if (read_file(path, &payload, NULL) < 0)
			continue;
		if (trace_parse_file(*f, *payload ? payload : NULL, &ev) < 0) {
			LOG("dropping malformed event file %s", *f);
			(void)unlink(path);
			continue;
		}
		if (ev.type == TRACE_SERVICE_RUNNING)
			mark_started(a, ev.instanceid, ev.data);
		r = trace_publish(a->store, &ev, a->o->hostname);
		trace_event_clear(&ev);
		if (r == -EINVAL || r == -E2BIG) {
			LOG("dropping event %s: %s", *f, store_strerror(r)); /* would never succeed */
		} else if (r < 0) {
			LOG("publishing %s: %s (will retry)", *f, store_strerror(r));
			a->d_events = true; /* retried on the next tick */
			return;
		}
		(void)unlink(path);
	}
}

/* ---- periodic work ---- */

static void oom_arm(struct agent *a, struct cont *c)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int fd;

	_cleanup_free_ char *path = sproc_cgroup_path(c->unique);
	struct error err = ERROR_INIT;

	c->oom_tried = true;
	if (!a->cg || !path)
		return;
	if (cg_oom_fd(a->cg, path, &fd, &err) < 0) {
		LOG("%s: no OOM notification: %s", c->unique, err.msg ? err.msg : "?");
		error_clear(&err);
		return;
	}
	ev.data.ptr = c;
	if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		close(fd);
		return;
	}
	c->oom_fd = fd;
}

static void on_oom(struct agent *a, struct cont *c)
{
	_cleanup_free_ char *cdir = node_app_dir(a->o->root, c->unique), *f = NULL;
	_cleanup_free_ char *path = sproc_cgroup_path(c->unique);
	uint64_t kills = 0;
	char buf[4096];
	ssize_t n = read(c->oom_fd, buf, sizeof(buf));

	(void)n;
	if (!path || cg_oom_check(a->cg, path, &kills) < 0 || kills == 0)
		return; /* not an OOM kill (v2 inotify also fires on other memory.events changes) */
	cont_close_oom(a, c);
	f = cdir ? strdup_printf("%s/data/oom", cdir) : NULL;
	if (!f || !exists(cdir))
		return;
	(void)touch(f);
	(void)sv_control(cdir, "d");
	LOG("%s: out of memory: container down", c->unique);
}

/* ---- stop: `treadle cell down` writes N/stop ("finish" or "release") ---- */

static void drain_check(struct agent *a)
{
	_cleanup_free_ char *text = NULL;
	enum drain d = DRAIN_NONE;

	if (read_file(a->p_stop, &text, NULL) == 0)
		d = startswith(text, "release") ? DRAIN_RELEASE : DRAIN_FINISH;
	if (d == a->drain)
		return;
	a->drain = d;
	a->d_cache = true;
	if (d != DRAIN_NONE)
		LOG("%s: stopping every container (%s), starting none", a->o->hostname,
		    d == DRAIN_FINISH ? "their instances finish" : "their instances stay scheduled");
}

/* Every linked container goes down once, on purpose.  finish: the flag in its
 * services dir makes each service's exit final whatever its restart policy
 * (sproc finish), so the first one becomes its exitinfo and the cleanup posts
 * `finished`.  release: data/released keeps the services' exits out of
 * exitinfo (monitor), so it ends with no terminal event, archived as
 * unfinished: the instance stays in /scheduled; the masters move it once
 * this server's presence is gone, or, if the server is back first, the node
 * starts a new container for it. */
static void drain_sync(struct agent *a)
{
	_cleanup_strv_free_ char **run = NULL;

	if (a->drain == DRAIN_NONE || dir_list(a->p_running, 1, &run) < 0)
		return;
	for (char **r = run; *r; r++) {
		_cleanup_free_ char *link = node_running_link(a->o->root, *r), *u = link ? link_base(link) : NULL;
		_cleanup_free_ char *cdir = u ? node_app_dir(a->o->root, u) : NULL, *flag = NULL, *svcs = NULL;

		if (!cdir || !exists(cdir))
			continue;
		svcs = strdup_printf("%s/data/services", cdir);
		flag = a->drain == DRAIN_RELEASE ? strdup_printf("%s/" RELEASED_REL, cdir)
						 : strdup_printf("%s/" SPROC_STOPPED_REL, cdir);
		if (!svcs || !flag)
			return;
		if (!exists(flag)) {
			(void)mkdir_p(svcs, 0755);
			(void)touch(flag);
			LOG("%s: stopping %s (%s)", *r, u, a->drain == DRAIN_RELEASE ? "released" : "finishes");
		}
		(void)sv_control(cdir, "d");
	}
}

static void tick(struct agent *a)
{
	double now = now_realtime();
	unsigned timeout = a->o->setup_timeout_s ? a->o->setup_timeout_s : 120;
	bool nudge = false;

	if (!a->presence_ok || !a->placement_ok || a->placement_retry)
		a->d_placement = true;
	drain_check(a);
	drain_sync(a);
	for (size_t i = 0; i < a->n_conts; i++) {
		struct cont *c = a->conts[i];
		_cleanup_free_ char *cdir = NULL, *f = NULL;

		if (!c->running)
			continue;
		if (c->wd_ctl[0] < 0 || c->wd_ctl[1] < 0)
			cont_watch(a, c);
		cdir = node_app_dir(a->o->root, c->unique);
		if (!cdir)
			return;
		if (!c->started) {
			f = strdup_printf("%s/data/container.json", cdir);
			if (f && exists(f))
				c->started = true;
		}
		if (c->started) {
			running_publish(a, c);
			if (c->oom_fd < 0 && !c->oom_tried)
				oom_arm(a, c);
			continue;
		}
		if (!c->timed_out && now - c->configured_at > (double)timeout) {
			/* restarted in place (node stop/start)? count from that run */
			_cleanup_free_ char *rs = strdup_printf("%s/data/run-started", cdir);
			struct stat st;

			if (rs && stat(rs, &st) == 0 &&
			    now - ((double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec * 1e-9) <= (double)timeout)
				continue;
			_cleanup_free_ char *m = strdup_printf("not running after %u s", timeout);
			c->timed_out = true;
			(void)sproc_flag_aborted(cdir, "timeout", m);
			LOG("%s: setup timeout, aborting", c->unique);
			if (to_cleanup(a, c->instance, c->unique) == 0)
				nudge = true;
		}
	}
	if (nudge)
		(void)sv_svscan_control(a->p_running, "an");
	a->d_cleanup = true;
}

/* ---- setup and loop ---- */

static int watch_dir(struct agent *a, const char *path)
{
	return inotify_add_watch(a->inofd, path, IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM | IN_CLOSE_WRITE);
}

static void on_inotify(struct agent *a)
{
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;

	while ((n = read(a->inofd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *e = (struct inotify_event *)p;

			if (!(e->len && e->name[0] == '.' && strcmp(e->name, ".ready"))) {
				if (e->wd == a->wd_cache)
					a->d_cache = true;
				else if (e->wd == a->wd_tr || e->wd == a->wd_ts)
					a->d_tomb = true;
				else if (e->wd == a->wd_ev)
					a->d_events = true;
				else if (e->wd == a->wd_cleanup)
					a->d_cleanup = true;
				else
					for (size_t i = 0; i < a->n_conts; i++) {
						struct cont *c = a->conts[i];
						for (int k = 0; k < 2; k++)
							if (c->wd_ctl[k] == e->wd) {
								if (e->mask & IN_IGNORED)
									c->wd_ctl[k] = -1;
								else
									c->d_ctl = a->d_ctl = true;
							}
					}
			}
			p += sizeof(*e) + e->len;
		}
	}
}

static int store_connect(struct agent *a, struct error *err)
{
	struct store_options so = { .session_cb = session_watch,
				    .session_userdata = a,
				    .session_timeout_ms = NODE_SESSION_TIMEOUT_MS };
	int r;

	r = store_open(a->o->store_url, &so, &a->store, err);
	if (r < 0)
		return r;
	r = register_server(a, err);
	if (r < 0)
		return r;
	presence_ensure(a);
	return 0;
}

static int epoll_add(int epfd, int fd, uint64_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? negerrno() : 0;
}

static void agent_free(struct agent *a)
{
	while (a->n_conts)
		cont_remove(a, a->conts[0]);
	free(a->conts);
	if (a->store)
		store_close(a->store);
	if (a->cg)
		cg_close(a->cg);
	if (a->epfd >= 0)
		close(a->epfd);
	if (a->sigfd >= 0)
		close(a->sigfd);
	if (a->inofd >= 0)
		close(a->inofd);
	if (a->tfd >= 0)
		close(a->tfd);
	if (a->lockfd >= 0)
		close(a->lockfd);
	free(a->p_cache);
	free(a->p_apps);
	free(a->p_running);
	free(a->p_cleanup);
	free(a->p_tr);
	free(a->p_ts);
	free(a->p_ev);
	free(a->p_archives);
	free(a->p_ready);
	free(a->p_stop);
	free(a->presence_path);
	free(a->placement_path);
	free(a->server_path);
}

/* Containers only run if an s6-svscan reads N/running/.s6-svscan/control
 * (the cell's `running` service, started beside the agent: give it a few
 * seconds).  Without one, placements would be accepted and never run. */
static int svscan_wait(struct agent *a, struct error *err)
{
	uint64_t deadline = now_monotonic_ms() + SVSCAN_WAIT_MS;

	while (sv_svscan_control(a->p_running, "") < 0) { /* "": only whether it has a reader */
		if (now_monotonic_ms() > deadline)
			return error_set(err, ERR_TEMP, 0,
					 "node: nothing supervises %s (no s6-svscan reads %s/.s6-svscan/control): run "
					 "the node with `treadle cell up --roles node`",
					 a->p_running, a->p_running);
		usleep(100 * 1000);
	}
	return 0;
}

static int agent_init(struct agent *a, struct error *err)
{
	const char *root = a->o->root;
	struct itimerspec its = { { 0, TICK_MS * 1000000L }, { 0, TICK_MS * 1000000L } };
	sigset_t mask;
	int r;

	r = node_layout_create(root);
	if (r < 0)
		return error_sys(err, -r, "creating the node layout in %s", root);
	/* one agent per node root */
	{
		_cleanup_free_ char *lk = node_path(root, ".agent.lock");
		if (!lk)
			return error_sys(err, ENOMEM, "node agent");
		a->lockfd = open(lk, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (a->lockfd < 0)
			return error_sys(err, errno, "%s", lk);
		if (flock(a->lockfd, LOCK_EX | LOCK_NB) < 0)
			return error_set(err, ERR_TEMP, errno, "another node agent is running on %s", root);
	}
	a->p_cache = node_path(root, NODE_DIR_CACHE);
	a->p_apps = node_path(root, NODE_DIR_APPS);
	a->p_running = node_path(root, NODE_DIR_RUNNING);
	a->p_cleanup = node_path(root, NODE_DIR_CLEANUP);
	a->p_tr = node_path(root, NODE_DIR_TOMB_RUNNING);
	a->p_ts = node_path(root, NODE_DIR_TOMB_SERVICES);
	a->p_ev = node_path(root, NODE_DIR_APPEVENTS);
	a->p_archives = node_path(root, NODE_DIR_ARCHIVES);
	a->p_ready = node_path(root, NODE_READY_FILE);
	a->p_stop = node_path(root, NODE_STOP_FILE);
	a->presence_path = strdup_printf("/server.presence/%s", a->o->hostname);
	a->placement_path = strdup_printf("/placement/%s", a->o->hostname);
	a->server_path = strdup_printf("/servers/%s", a->o->hostname);
	if (!a->p_cache || !a->p_apps || !a->p_running || !a->p_cleanup || !a->p_tr || !a->p_ts || !a->p_ev ||
	    !a->p_archives || !a->p_ready || !a->p_stop || !a->presence_path || !a->placement_path || !a->server_path)
		return error_sys(err, ENOMEM, "node agent");
	r = svscan_wait(a, err);
	if (r < 0)
		return r;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return error_sys(err, errno, "sigprocmask");
	signal(SIGPIPE, SIG_IGN);
	a->epfd = epoll_create1(EPOLL_CLOEXEC);
	a->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	a->inofd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	a->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (a->epfd < 0 || a->sigfd < 0 || a->inofd < 0 || a->tfd < 0)
		return error_sys(err, errno, "creating loop fds");
	if (timerfd_settime(a->tfd, 0, &its, NULL) < 0)
		return error_sys(err, errno, "timerfd");
	a->wd_cache = watch_dir(a, a->p_cache);
	a->wd_tr = watch_dir(a, a->p_tr);
	a->wd_ts = watch_dir(a, a->p_ts);
	a->wd_ev = watch_dir(a, a->p_ev);
	a->wd_cleanup = watch_dir(a, a->p_cleanup);
	if (a->wd_cache < 0 || a->wd_tr < 0 || a->wd_ts < 0 || a->wd_ev < 0 || a->wd_cleanup < 0)
		return error_sys(err, errno, "inotify");
	{
		struct error e2 = ERROR_INIT;
		if (cg_open(NULL, a->ns.cgroup_root, 0, &a->cg, &e2) < 0) {
			LOG("cgroups unusable, no OOM detection: %s", e2.msg ? e2.msg : "?");
			a->cg = NULL;
		}
		error_clear(&e2);
	}
	r = store_connect(a, err);
	if (r < 0)
		return r;
	if ((r = epoll_add(a->epfd, a->sigfd, TAG_SIGNAL)) < 0 || (r = epoll_add(a->epfd, a->inofd, TAG_INOTIFY)) < 0 ||
	    (r = epoll_add(a->epfd, a->tfd, TAG_TIMER)) < 0 || (r = epoll_add(a->epfd, store_fd(a->store), TAG_STORE)) < 0)
		return error_sys(err, -r, "epoll");
	return 0;
}

static int reconnect(struct agent *a, struct error *err)
{
	int r;

	LOG("store session expired: reconnecting");
	(void)epoll_ctl(a->epfd, EPOLL_CTL_DEL, store_fd(a->store), NULL);
	store_close(a->store);
	a->store = NULL;
	for (size_t i = 0; i < a->n_conts; i++)
		a->conts[i]->published = false;
	/* A new session needs the ensemble: keep trying (the containers run on
	 * under s6 meanwhile); only SIGTERM/SIGINT ends the wait. */
	for (unsigned tries = 0;; tries++) {
		struct signalfd_siginfo si;
		struct pollfd pfd = { .fd = a->sigfd, .events = POLLIN };

		error_clear(err);
		store_close(a->store);
		a->store = NULL;
		r = store_connect(a, err);
		if (r >= 0)
			break;
		if (tries == 0)
			LOG("store unreachable (%s): retrying", err->msg ? err->msg : "?");
		if (poll(&pfd, 1, 1000) > 0)
			while (read(a->sigfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
					return r;
				if (si.ssi_signo == SIGCHLD)
					reap(a);
			}
	}
	error_clear(err);
	a->expired = false;
	a->d_placement = a->d_events = true;
	r = epoll_add(a->epfd, store_fd(a->store), TAG_STORE);
	return r < 0 ? error_sys(err, -r, "epoll") : 0;
}

int node_agent_run(const struct node_agent_options *o, struct error *err)
{
	struct agent a = { .o = o, .epfd = -1, .sigfd = -1, .inofd = -1, .tfd = -1, .lockfd = -1 };
	int r;

	a.ns.root = o->root;
	a.ns.treadle_bin = o->treadle_bin;
	a.ns.cgroup_root = o->cgroup_root ? o->cgroup_root : "treadle";
	a.ns.hostname = o->hostname;
	a.ns.cell = o->cell;
	a.ns.store_url = o->store_url;
	a.started_at = now_realtime();
	a.ns.setup_timeout_s = o->setup_timeout_s ? o->setup_timeout_s : 120;
	a.ns.pids_max = o->pids_max ? o->pids_max : NODE_DEFAULT_PIDS_MAX;
	a.ns.disk_read_bps = o->disk_read_bps;
	a.ns.disk_write_bps = o->disk_write_bps;
	r = agent_init(&a, err);
	if (r < 0)
		goto out;
	LOG("%s: node agent started on %s", o->hostname, o->root);
	/* everything is dirty at start: this is the reconciliation */
	a.first_placement_sync = true;
	drain_check(&a);
	a.d_placement = a.d_cache = a.d_tomb = a.d_cleanup = a.d_events = true;
	while (!a.stop) {
		struct epoll_event evs[16];
		int n;

		if (a.expired && (r = reconnect(&a, err)) < 0)
			goto out;
		if (a.d_placement) {
			a.d_placement = false;
			eventmgr_sync(&a);
		}
		if (a.d_ctl) {
			a.d_ctl = false;
			ctl_sync(&a);
		}
		if (a.d_tomb) {
			a.d_tomb = false;
			monitor_sync(&a);
		}
		if (a.d_cache) {
			a.d_cache = false;
			appcfg_sync(&a);
		}
		if (a.d_events) {
			a.d_events = false;
			publisher_sync(&a);
		}
		if (a.d_cleanup) {
			a.d_cleanup = false;
			cleanup_sync(&a);
		}
		if (a.d_placement || a.d_tomb || a.d_cache || a.d_ctl)
			continue;
		n = epoll_wait(a.epfd, evs, ELEMENTSOF(evs), -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = error_sys(err, errno, "epoll_wait");
			goto out;
		}
		for (int i = 0; i < n; i++) {
			uint64_t tag = evs[i].data.u64;

			if (tag == TAG_STORE) {
				r = store_dispatch(a.store);
				if (r == -ESHUTDOWN)
					a.expired = true;
			} else if (tag == TAG_SIGNAL) {
				struct signalfd_siginfo si;
				while (read(a.sigfd, &si, sizeof(si)) == sizeof(si)) {
					if (si.ssi_signo == SIGCHLD)
						reap(&a);
					else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
						a.stop = true;
					else if (si.ssi_signo == SIGHUP)
						a.d_placement = a.d_cache = a.d_tomb = a.d_cleanup = a.d_events = true;
				}
			} else if (tag == TAG_INOTIFY) {
				on_inotify(&a);
			} else if (tag == TAG_TIMER) {
				uint64_t x;
				ssize_t k = read(a.tfd, &x, sizeof(x));
				(void)k;
				tick(&a);
			} else if (tag >= TAG_MAX_) {
				on_oom(&a, evs[i].data.ptr);
			}
		}
	}
	/* what the last cleanups posted goes out before we do */
	if (a.store && !a.expired)
		publisher_sync(&a);
	LOG("%s: node agent stopping", o->hostname);
	r = 0;
out:
	agent_free(&a);
	return r;
}
