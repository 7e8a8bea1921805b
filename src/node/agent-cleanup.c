/* agent-cleanup.c: the cleanup watcher: one `treadle sproc cleanup` child per container. */
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

/* ---- cleanup: one `treadle sproc cleanup` child per container ---- */

static void cleanup_spawn(struct agent *a, struct cont *c)
{
	char *argv[] = { (char *)"treadle", (char *)"sproc", (char *)"cleanup", (char *)"--root", (char *)a->o->root,
			 c->unique, NULL };
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

void agent_cleanup_sync(struct agent *a)
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
		c = agent_cont_get(a, *u);
		if (!c || c->cleanup_pid || now < c->retry_at || a->n_cleanups >= MAX_CLEANUPS)
			continue;
		c->running = false;
		agent_running_unpublish(a, c);
		agent_cont_close_oom(a, c);
		cleanup_spawn(a, c);
	}
}

void agent_reap(struct agent *a)
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
				agent_running_unpublish(a, c);
				agent_cont_remove(a, c);
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
