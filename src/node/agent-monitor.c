/* agent-monitor.c: the monitor: container tombstones -> cleanup. */
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

/* ---- monitor: tombstones ---- */

void agent_monitor_sync(struct agent *a)
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
				_cleanup_free_ char *u = link ? node_link_base(link) : NULL;

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
					if (agent_to_cleanup(a, inst, id) == 0) {
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
