/* agent-appcfg.c: the appcfgmgr: N/cache -> containers (configure, terminate). */
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
#include "../basic/json.h"
#include "../basic/util.h"
#include "../cgroup/cg.h"
#include "../manifest/manifest.h"
#include "../store/store.h"
#include "../supervisor/supervisor.h"
#include "../trace/trace.h"
#include "node-internal.h"

/* ---- appcfgmgr: cache -> containers ---- */

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
	_cleanup_json_ json_t *cached = NULL, *app = NULL;
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
	if (r < 0) {
		abort_configure(a, inst, "unknown", err.msg ? err.msg : "invalid manifest");
		error_clear(&err);
		return 0;
	}
	appjson = manifest_dumps(app);
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
	c = agent_cont_get(a, unique);
	if (c) {
		c->running = true;
		c->configured_at = now_realtime();
		agent_cont_watch(a, c);
	}
	LOG("%s: configured %s", inst, unique);
	return 1;
fail:
	(void)rm_rf(tmp);
	return r < 0 ? r : -ENOMEM;
}

/* Move running/<instance> (pointing to unique) to cleanup/<unique>. */
int agent_to_cleanup(struct agent *a, const char *inst, const char *unique)
{
	_cleanup_free_ char *link = node_running_link(a->o->root, inst), *cl = node_cleanup_link(a->o->root, unique);
	struct cont *c = agent_cont_find(a, unique);

	if (!link || !cl)
		return -ENOMEM;
	if (rename(link, cl) < 0)
		return negerrno();
	if (c) {
		c->running = false;
		agent_running_unpublish(a, c);
		agent_cont_close_oom(a, c);
	}
	a->d_cleanup = true;
	return 0;
}

static void terminate(struct agent *a, const char *inst, const char *unique)
{
	_cleanup_free_ char *t = strdup_printf("%s/%s/data/terminated", a->p_apps, unique);

	if (t)
		(void)touch(t);
	if (agent_to_cleanup(a, inst, unique) == 0)
		LOG("%s: terminating %s", inst, unique);
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

void agent_appcfg_sync(struct agent *a)
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
		_cleanup_free_ char *link = node_running_link(a->o->root, *r), *u = link ? node_link_base(link) : NULL;
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
			struct cont *c = agent_cont_get(a, u);
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
				struct cont *c = agent_cont_get(a, *p);
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
