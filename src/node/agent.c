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
#include "agent-metrics.h"
#include "node-internal.h"
#include "watchdog.h"

/* ---- periodic work ---- */

/* The agent's watchdog lease, renewed a third of its timeout ahead: a loop
 * that stalls (SIGSTOP, a hung store call) lets it fail (docs/NODE.md). */
static void lease_renew(struct agent *a, bool force)
{
	unsigned t = a->o->watchdog_lease_s ? a->o->watchdog_lease_s : NODE_LEASE_DEFAULT_S;
	double now = now_realtime();
	int r;

	if (!force && now < a->lease_next)
		return;
	r = node_lease_renew(a->o->root, NODE_LEASE_AGENT, t);
	if (r < 0)
		LOG("watchdog lease: %s", strerror(-r));
	a->lease_next = now + (double)t / 3;
}


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
	agent_cont_close_oom(a, c);
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
		_cleanup_free_ char *link = node_running_link(a->o->root, *r), *u = link ? node_link_base(link) : NULL;
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

	lease_renew(a, false);
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
			agent_cont_watch(a, c);
		cdir = node_app_dir(a->o->root, c->unique);
		if (!cdir)
			return;
		if (!c->started) {
			f = strdup_printf("%s/data/container.json", cdir);
			if (f && exists(f))
				c->started = true;
		}
		if (c->started) {
			agent_running_publish(a, c);
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
			if (agent_to_cleanup(a, c->instance, c->unique) == 0)
				nudge = true;
		}
	}
	if (nudge)
		(void)sv_svscan_control(a->p_running, "an");
	a->d_cleanup = true;
	agent_discovery_tick(a);
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
	struct store_options so = { .session_cb = agent_session_watch,
				    .session_userdata = a,
				    .session_timeout_ms = NODE_SESSION_TIMEOUT_MS };
	int r;

	r = store_open(a->o->store_url, &so, &a->store, err);
	if (r < 0)
		return r;
	r = agent_register_server(a, err);
	if (r < 0)
		return r;
	agent_presence_ensure(a);
	return 0;
}

static int epoll_add(int epfd, int fd, uint64_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? negerrno() : 0;
}

static void agent_free(struct agent *a)
{
	int *fds[] = { &a->epfd, &a->sigfd, &a->inofd, &a->tfd, &a->lockfd };
	char **paths[] = { &a->p_cache, &a->p_apps,	   &a->p_running,      &a->p_cleanup,	 &a->p_tr,
			   &a->p_ts,	&a->p_ev,	   &a->p_archives,     &a->p_ready,	 &a->p_stop };

	while (a->n_conts)
		agent_cont_remove(a, a->conts[0]);
	agent_vring_free(a);
	free(a->conts);
	free(a->disc_list);
	free(a->disc_state);
	store_close(a->store);
	if (a->cg)
		cg_close(a->cg);
	for (size_t i = 0; i < ELEMENTSOF(fds); i++)
		if (*fds[i] >= 0)
			close(*fds[i]);
	for (size_t i = 0; i < ELEMENTSOF(paths); i++)
		free(*paths[i]);
}

/* Containers only run if an s6-svscan reads N/running/.s6-svscan/control
 * (the cell's `running` service, started beside the agent: give it a few
 * seconds).  Without one, placements would be accepted and never run. */
static int svscan_wait(struct agent *a, struct error *err)
{
	if (sv_svscan_wait(a->p_running, SVSCAN_WAIT_MS) < 0)
		return error_set(err, ERR_TEMP, 0,
				 "node: nothing supervises %s (no s6-svscan reads %s/.s6-svscan/control): run "
				 "the node with `treadle cell up --roles node`",
				 a->p_running, a->p_running);
	return 0;
}

static int agent_init(struct agent *a, struct error *err)
{
	static const int sigs[] = { SIGCHLD, SIGTERM, SIGINT, SIGHUP };
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
	if (!a->p_cache || !a->p_apps || !a->p_running || !a->p_cleanup || !a->p_tr || !a->p_ts || !a->p_ev ||
	    !a->p_archives || !a->p_ready || !a->p_stop)
		return error_sys(err, ENOMEM, "node agent");
	lease_renew(a, true);
	r = svscan_wait(a, err);
	if (r < 0)
		return r;
	/* the container network (nothing of it for an agent that cannot run
	 * containers), before the settings that name it */
	r = agent_net_init(a, err);
	if (r < 0)
		return r;
	/* what `treadle sproc run/cleanup` read instead of flags (sproc.h) */
	r = sproc_settings_write(&a->ns);
	if (r < 0)
		return error_sys(err, -r, "writing %s/" NODE_SETTINGS_FILE, root);
	sigemptyset(&mask);
	for (size_t i = 0; i < ELEMENTSOF(sigs); i++)
		sigaddset(&mask, sigs[i]);
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
	agent_discovery_reset(a); /* the session's ephemerals went with it */
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
		lease_renew(a, false); /* waiting on the store is not a stall */
		if (poll(&pfd, 1, 1000) > 0)
			while (read(a->sigfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
					return r;
				if (si.ssi_signo == SIGCHLD)
					agent_reap(a);
			}
	}
	error_clear(err);
	a->expired = false;
	a->d_placement = a->d_events = a->d_vring = true; /* watches are the old session's */
	r = epoll_add(a->epfd, store_fd(a->store), TAG_STORE);
	return r < 0 ? error_sys(err, -r, "epoll") : 0;
}

int node_agent_run(const struct node_agent_options *o, struct error *err)
{
	struct agent a = { .o = o, .epfd = -1, .sigfd = -1, .inofd = -1, .tfd = -1, .lockfd = -1 };
	const struct {
		bool *dirty;
		void (*sync)(struct agent *a);
	} syncs[] = {
		{ &a.d_placement, agent_eventmgr_sync }, { &a.d_ctl, agent_ctl_sync },
		{ &a.d_tomb, agent_monitor_sync },	 { &a.d_cache, agent_appcfg_sync },
		{ &a.d_events, agent_publisher_sync },	 { &a.d_cleanup, agent_cleanup_sync },
		{ &a.d_vring, agent_vring_sync },	 { &a.d_discovery, agent_discovery_sync },
	};
	struct agent_loop_metrics loop_metrics = { 0 };
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
	a.ns.hooks = o->hooks;
	a.ns.krb5_keytab = o->krb5_keytab ? o->krb5_keytab : "/etc/krb5.keytab";
	a.ns.krb5_config = o->krb5_config;
	a.ns.tickets_wait_s = o->tickets_wait_s ? o->tickets_wait_s : 60;
	r = agent_init(&a, err);
	if (r < 0)
		goto out;
	LOG("%s: node agent started on %s", o->hostname, o->root);
	/* everything is dirty at start: this is the reconciliation */
	a.first_placement_sync = true;
	drain_check(&a);
	a.d_placement = a.d_cache = a.d_tomb = a.d_cleanup = a.d_events = a.d_vring = true;
	while (!a.stop) {
		struct epoll_event evs[16];
		int n;

		if (a.expired && (r = reconnect(&a, err)) < 0)
			goto out;
		/* the dirty parts, in pipeline order */
		for (size_t i = 0; i < ELEMENTSOF(syncs); i++)
			if (*syncs[i].dirty) {
				*syncs[i].dirty = false;
				syncs[i].sync(&a);
			}
		if (a.d_placement || a.d_tomb || a.d_cache || a.d_ctl)
			continue;
		agent_loop_done(&loop_metrics, o->root); /* for /metrics (agent-metrics.h) */
		n = epoll_wait(a.epfd, evs, ELEMENTSOF(evs), -1);
		agent_loop_woke(&loop_metrics);
		if (n < 0 && errno != EINTR) {
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
						agent_reap(&a);
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
		agent_publisher_sync(&a);
	LOG("%s: node agent stopping", o->hostname);
	(void)node_lease_remove(o->root, NODE_LEASE_AGENT);
	r = 0;
out:
	agent_free(&a);
	return r;
}
