/* agent-eventmgr.c: the eventmgr: /placement/<host> -> N/cache. */
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
#include "../cellns/cellns.h"
#include "../cgroup/cg.h"
#include "../manifest/manifest.h"
#include "../store/store.h"
#include "../supervisor/supervisor.h"
#include "../trace/trace.h"
#include "node-internal.h"

/* ---- eventmgr: placement -> cache ---- */

static int cache_write(struct agent *a, const char *inst)
{
	_cleanup_free_ char *out = NULL, *file = node_cache_file(a->o->root, inst);
	const char *hash = strrchr(inst, '#');
	struct store_stat pst = {};
	struct timespec placed;
	_cleanup_json_ json_t *m = NULL, *p = NULL;
	int r;

	if (!file)
		return -ENOMEM;
	if (!hash || strchr(inst, '/') || inst[0] == '.')
		return -EINVAL;
	r = cellns_placement_get(a->store, a->o->hostname, inst, NULL, &p, &pst);
	if (r < 0)
		return r == -ENOENT ? 0 : r;
	r = cellns_scheduled_get(a->store, inst, &m, NULL);
	if (r == -ENOENT)
		return 0;
	if (r == -EBADMSG) { /* cannot be configured: end it rather than leave it placed forever */
		LOG("%s: /scheduled data is not a JSON object: aborted", inst);
		(void)sproc_event_post(a->p_ev, inst, "aborted", "invalid_manifest",
				       "invalid manifest: /scheduled data is not a JSON object");
		a->d_events = true;
		return 0;
	}
	if (r < 0)
		return r;
	json_object_set_new(m, "task", json_string(hash + 1));
	if (p)
		json_object_update(m, p);
	out = json_dumps(m, JSON_SORT_KEYS | JSON_COMPACT);
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

void agent_eventmgr_sync(struct agent *a)
{
	_cleanup_strv_free_ char **children = NULL, **cached = NULL;
	struct store_stat pst;
	int r;

	agent_presence_ensure(a);
	r = cellns_placement_list(a->store, a->o->hostname, &children, agent_placement_watch, a);
	if (r == -ENOENT) {
		(void)cellns_server_state_watch(a->store, a->o->hostname, agent_placement_watch, a);
		a->placement_ok = false;
	} else if (r < 0) {
		if (r != a->last_list_err) /* once per kind of failure, not every tick of an outage */
			LOG("listing the placements of %s: %s", a->o->hostname, store_strerror(r));
		a->last_list_err = r;
		return; /* keep the current state; retried on the next event or tick */
	} else
		a->placement_ok = true;
	if (a->last_list_err)
		LOG("listing the placements of %s: ok again", a->o->hostname);
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
			struct stat st;

			if (!a->first_placement_sync || !f || stat(f, &st) < 0)
				continue;
			if (cellns_placement_get(a->store, a->o->hostname, *c, NULL, NULL, &pst) < 0)
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
