/* watchdog.c: watchdog leases and the watcher (see watchdog.h).
 *
 * The watcher waits on inotify for N/watchdogs (a lease appears, is renewed
 * or goes) and on a CLOCK_REALTIME timerfd set to the earliest deadline:
 * nothing polls.  A failed lease trips it once: blackout, postmortem, then
 * the containers down, in that order (moving the apps matters most; the
 * bundle shows the node as it stalled). */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "../admin/admin.h"
#include "../basic/fileio.h"
#include "../basic/util.h"
#include "../store/store.h"
#include "../supervisor/supervisor.h"
#include "layout.h"
#include "node-internal.h"
#include "postmortem.h"
#include "watchdog.h"

#define WLOG(fmt, ...) fprintf(stderr, "treadle watchdog: " fmt "\n", ##__VA_ARGS__)

static char *lease_path(const char *root, const char *name)
{
	return strdup_printf("%s/" NODE_DIR_WATCHDOGS "/%s", root, name);
}

int node_lease_renew(const char *root, const char *name, unsigned timeout_s)
{
	_cleanup_free_ char *p = lease_path(root, name), *dir = strdup_printf("%s/" NODE_DIR_WATCHDOGS, root);
	struct timespec ts[2];
	int r;

	if (!p || !dir)
		return -ENOMEM;
	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[0].tv_sec += timeout_s;
	ts[1] = ts[0];
	if (utimensat(AT_FDCWD, p, ts, 0) == 0)
		return 0;
	if (errno != ENOENT)
		return -errno;
	{
		_cleanup_free_ char *text = strdup_printf("pid %d\ntimeout %u\n", (int)getpid(), timeout_s);
		if (!text)
			return -ENOMEM;
		if ((r = mkdir_p(dir, 0755)) < 0)
			return r;
		/* the deadline set before the rename: never seen without one */
		return write_file_atomic_mtime_at(AT_FDCWD, p, text, strlen(text), 0600, &ts[1]);
	}
}

int node_lease_remove(const char *root, const char *name)
{
	_cleanup_free_ char *p = lease_path(root, name);

	if (!p)
		return -ENOMEM;
	return unlink(p) < 0 && errno != ENOENT ? -errno : 0;
}

/* The failed leases of root/watchdogs at time now: NULL-terminated names
 * (empty when none) in *ret; *ret_next = the earliest deadline still ahead
 * (0 when none).  -errno. */
static int leases_failed(const char *root, double now, char ***ret, double *ret_next)
{
	_cleanup_free_ char *dir = strdup_printf("%s/" NODE_DIR_WATCHDOGS, root);
	_cleanup_strv_free_ char **l = NULL, **failed = strv_new();
	double next = 0;
	int r;

	if (!dir || !failed)
		return -ENOMEM;
	r = dir_list(dir, 1, &l);
	if (r < 0 && r != -ENOENT)
		return r;
	for (char **e = l; e && *e; e++) {
		_cleanup_free_ char *p = strdup_printf("%s/%s", dir, *e);
		struct stat st;
		double dl;

		if (!p)
			return -ENOMEM;
		if (lstat(p, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		dl = (double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec * 1e-9;
		if (dl <= now) {
			if ((r = strv_extend(&failed, *e)) < 0)
				return r;
		} else if (next == 0 || dl < next)
			next = dl;
	}
	*ret = TAKE_PTR(failed);
	*ret_next = next;
	return 0;
}

struct wd {
	const struct node_watchdog_options *o;
	int epfd, sigfd, inofd, tfd;
	bool tripped;	     /* a lease failed and has not been fresh again since */
	bool blackout_done;  /* this trip's blackout is in the store */
	bool released;	     /* this trip's containers are taken down */
	char *reason;
};

static int blackout(struct wd *w)
{
	struct store *s = NULL;
	struct error err = ERROR_INIT;
	int r;

	r = store_open(w->o->store_url, NULL, &s, &err);
	if (r >= 0)
		r = admin_blackout_server(s, w->o->hostname, true, w->reason, &err);
	if (r < 0)
		WLOG("%s: blackout failed (retrying): %s", w->o->hostname, err.msg ? err.msg : "?");
	else
		WLOG("%s: blacked out: %s", w->o->hostname, w->reason);
	error_clear(&err);
	if (s)
		store_close(s);
	return r;
}

static void postmortem(struct wd *w)
{
	struct node_postmortem_options po = { .root = w->o->root,
					      .hostname = w->o->hostname,
					      .cgroup_root = w->o->cgroup_root,
					      .log_dir = w->o->log_dir,
					      .reason = w->reason };
	struct error err = ERROR_INIT;
	_cleanup_free_ char *path = NULL;

	if (node_postmortem_write(&po, &path, &err) < 0)
		WLOG("postmortem: %s", err.msg ? err.msg : "failed");
	else
		WLOG("postmortem written: %s", path);
	error_clear(&err);
}

/* Treadmill downs every container of a failed node (start_init1): the
 * masters start its instances elsewhere.  Here each container goes down as
 * `cell down` on a ZooKeeper cell takes it ("release", NODE.md): flagged
 * data/released so its exits end nothing, then s6 takes it down.  The agent,
 * when it runs again, cleans them up without a terminal event. */
static void release_containers(struct wd *w)
{
	_cleanup_free_ char *running = strdup_printf("%s/" NODE_DIR_RUNNING, w->o->root);
	_cleanup_strv_free_ char **l = NULL;

	w->released = true;
	if (!running || dir_list(running, 1, &l) < 0)
		return;
	for (char **r = l; *r; r++) {
		_cleanup_free_ char *link = node_running_link(w->o->root, *r), *u = link ? node_link_base(link) : NULL;
		_cleanup_free_ char *cdir = u ? node_app_dir(w->o->root, u) : NULL;
		_cleanup_free_ char *flag = cdir ? strdup_printf("%s/" RELEASED_REL, cdir) : NULL;

		if (!flag || access(cdir, F_OK) < 0)
			continue;
		(void)touch(flag);
		if (sv_control(cdir, "d") == 0)
			WLOG("%s: %s down (released)", *r, u);
	}
}

/* Look at the leases; arm the timer for the next deadline (or the blackout retry). */
static int check(struct wd *w)
{
	_cleanup_strv_free_ char **failed = NULL;
	struct itimerspec its = { 0 };
	double now = now_realtime(), next = 0;
	int r;

	r = leases_failed(w->o->root, now, &failed, &next);
	if (r < 0) {
		WLOG("reading the leases: %s", strerror(-r));
		next = now + 1;
	} else if (failed[0] && !w->tripped) {
		_cleanup_free_ char *names = strdup("");

		for (char **f = failed; names && *f; f++) {
			char *n = strdup_printf("%s%s%s", names, names[0] ? ", " : "", *f);
			free(names);
			names = n;
		}
		free(w->reason);
		w->reason = strdup_printf("watchdogs [%s] failed.", names ? names : "?");
		if (!w->reason)
			return -ENOMEM;
		WLOG("%s: %s", w->o->hostname, w->reason);
		w->tripped = true;
		w->released = false;
		w->blackout_done = blackout(w) >= 0;
		postmortem(w);
		if (w->blackout_done)
			release_containers(w);
	} else if (!failed[0] && w->tripped) {
		w->tripped = false;
		WLOG("%s: every lease is fresh again; the blackout stays until cleared "
		     "(treadle admin blackout clear server %s)", w->o->hostname, w->o->hostname);
	}
	if (w->tripped && !w->blackout_done) {
		w->blackout_done = blackout(w) >= 0;
		if (w->blackout_done && !w->released)
			release_containers(w);
		if (!w->blackout_done && (next == 0 || next > now + 1))
			next = now + 1;
	}
	if (next > 0) {
		its.it_value.tv_sec = (time_t)next;
		its.it_value.tv_nsec = (long)((next - (double)(time_t)next) * 1e9) + 1000000L;
		if (its.it_value.tv_nsec >= 1000000000L) {
			its.it_value.tv_sec++;
			its.it_value.tv_nsec -= 1000000000L;
		}
	}
	if (timerfd_settime(w->tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
		return -errno;
	return 0;
}

int node_watchdog_run(const struct node_watchdog_options *o, struct error *err)
{
	struct wd w = { .o = o, .epfd = -1, .sigfd = -1, .inofd = -1, .tfd = -1 };
	_cleanup_free_ char *dir = strdup_printf("%s/" NODE_DIR_WATCHDOGS, o->root);
	struct epoll_event ev = { .events = EPOLLIN };
	sigset_t mask;
	int r = 0;

	if (!dir)
		return error_sys(err, ENOMEM, "watchdog");
	if ((r = mkdir_p(dir, 0755)) < 0)
		return error_sys(err, -r, "creating %s", dir);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return error_sys(err, errno, "sigprocmask");
	w.epfd = epoll_create1(EPOLL_CLOEXEC);
	w.sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	w.inofd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	w.tfd = timerfd_create(CLOCK_REALTIME, TFD_CLOEXEC | TFD_NONBLOCK);
	if (w.epfd < 0 || w.sigfd < 0 || w.inofd < 0 || w.tfd < 0) {
		r = error_sys(err, errno, "creating loop fds");
		goto out;
	}
	if (inotify_add_watch(w.inofd, dir, IN_CREATE | IN_MOVED_TO | IN_ATTRIB | IN_DELETE | IN_MOVED_FROM) < 0) {
		r = error_sys(err, errno, "inotify on %s", dir);
		goto out;
	}
	ev.data.fd = w.sigfd;
	if (epoll_ctl(w.epfd, EPOLL_CTL_ADD, w.sigfd, &ev) < 0 ||
	    (ev.data.fd = w.inofd, epoll_ctl(w.epfd, EPOLL_CTL_ADD, w.inofd, &ev)) < 0 ||
	    (ev.data.fd = w.tfd, epoll_ctl(w.epfd, EPOLL_CTL_ADD, w.tfd, &ev)) < 0) {
		r = error_sys(err, errno, "epoll");
		goto out;
	}
	WLOG("%s: watching the leases of %s", o->hostname, dir);
	for (bool stop = false; !stop;) {
		struct epoll_event evs[4];
		int n;

		if ((r = check(&w)) < 0) {
			r = error_sys(err, -r, "watchdog");
			goto out;
		}
		n = epoll_wait(w.epfd, evs, ELEMENTSOF(evs), -1);
		if (n < 0 && errno != EINTR) {
			r = error_sys(err, errno, "epoll_wait");
			goto out;
		}
		for (int i = 0; i < n; i++) {
			char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

			if (evs[i].data.fd == w.sigfd) {
				struct signalfd_siginfo si;
				while (read(w.sigfd, &si, sizeof(si)) == sizeof(si))
					if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
						stop = true;
			} else {
				/* drain: the next check() reads the directory whole */
				while (read(evs[i].data.fd, buf, sizeof(buf)) > 0)
					;
			}
		}
	}
	r = 0;
out:
	free(w.reason);
	{
		int fds[] = { w.epfd, w.sigfd, w.inofd, w.tfd };
		for (size_t i = 0; i < ELEMENTSOF(fds); i++)
			if (fds[i] >= 0)
				close(fds[i]);
	}
	return r;
}
