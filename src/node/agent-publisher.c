/* agent-publisher.c: the events publisher: N/appevents -> the store's trace. */
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
#include "node-internal.h"

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
	c = u ? agent_cont_find(a, u) : NULL;
	if (c && c->running && !c->started) {
		c->started = true;
		agent_running_publish(a, c);
	}
}

void agent_publisher_sync(struct agent *a)
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
