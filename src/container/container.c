/* container.c: container_run(), the parent side: cgroups, volume, image,
 * clone into new namespaces, error channel, then forward signals to pid 1. */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "../basic/fileio.h"
#include "../basic/json.h"
#include "../basic/util.h"
#include "container-internal.h"

static void ctx_release(struct container_ctx *c)
{
	free(c->data_dir);
	free(c->services_dir);
	free(c->vol_dir);
	free(c->root_dir);
	free(c->image_rootfs);
	free(c->loop_dev);
	free(c->treadle_bin);
	strv_free(c->cg_procs);
	free(c->mask_file);
	free(c->mask_dir);
	if (c->loop_fd >= 0)
		close(c->loop_fd);
}

/* data/aborted, Treadmill's format: {"why": reason, "payload": msg}. */
static void write_aborted(const char *data_dir, const char *why, const char *msg)
{
	_cleanup_free_ char *path = strdup_printf("%s/aborted", data_dir);
	_cleanup_json_ json_t *o = json_pack("{s:s, s:s?}", "why", why, "payload", msg);
	_cleanup_free_ char *s = o ? json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT) : NULL;

	if (path && s)
		(void)write_file_atomic(path, s, strlen(s), 0644);
}

static int fail(const struct container_ctx *c, const char *why, struct error *err)
{
	if (c->data_dir)
		write_aborted(c->data_dir, why, err->msg ? err->msg : why);
	error_prefix(err, "container %s: %s", c->cfg->instance ? c->cfg->instance : c->cfg->unique_name, why);
	return err->errnum ? -err->errnum : -1;
}

/* The clone'd child: report failures as "<why>\0<message>" on sock. */
_noreturn_ static void child_main(struct container_ctx *c, int sock)
{
	struct error err = ERROR_INIT;
	const char *why = CONTAINER_ABORT_PID1;
	static char *const argv[] = { "s6-svscan", "/services", NULL };
	sigset_t all;
	int r;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) {
		error_sys(&err, errno, "PR_SET_PDEATHSIG");
		goto fail;
	}
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	r = rootfs_setup(c, &err);
	if (r < 0)
		goto fail;
	/* no process in the container may create device nodes, root services
	 * included: CAP_MKNOD leaves the bounding set before s6-svscan */
	if (prctl(PR_CAPBSET_DROP, CAP_MKNOD, 0, 0, 0) < 0) {
		error_sys(&err, errno, "drop CAP_MKNOD");
		goto fail;
	}
	if (c->cfg->net_setup) { /* the parent sets up our network: its go (or our death) */
		char go;
		if (read(sock, &go, 1) != 1)
			_exit(1);
	}
	(void)close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
	clearenv();
	setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1);
	execv("/usr/bin/s6-svscan", argv);
	error_sys(&err, errno, "exec s6-svscan");
fail: {
	size_t wl = strlen(why), ml = err.msg ? strlen(err.msg) : 0;
	_cleanup_free_ char *buf = malloc(wl + 1 + ml + 1);
	if (buf) {
		memcpy(buf, why, wl + 1);
		memcpy(buf + wl + 1, err.msg ? err.msg : "", ml + 1);
		(void)!write(sock, buf, wl + 1 + ml);
	}
	_exit(1);
}
}

static int check_config(const struct container_config *cfg, struct error *err)
{
	if (!cfg->container_dir || !cfg->unique_name || !cfg->node_root)
		return error_set(err, ERR_USAGE, 0, "container: container_dir, unique_name and node_root are required");
	if (strchr(cfg->unique_name, '/') || cfg->unique_name[0] == '.')
		return error_set(err, ERR_USAGE, 0, "container: bad unique name '%s'", cfg->unique_name);
	for (size_t i = 0; i < cfg->n_binds; i++)
		if (!cfg->binds[i].source || !cfg->binds[i].target || cfg->binds[i].target[0] != '/' ||
		    strstr(cfg->binds[i].target, ".."))
			return error_set(err, ERR_USAGE, 0, "container: bind %zu: absolute target without '..' needed", i);
	return 0;
}

/* Setup phases, for data/container.json "setup_us" (benchmarks). */
enum { T_START, T_CGROUPS, T_IMAGE, T_VOLUME, T_ATTACH_JOIN, T_CLONE, T_EXEC, T_MAX };

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static int write_state(const struct container_ctx *c, pid_t pid, const uint64_t *t)
{
	const struct container_config *cfg = c->cfg;
	_cleanup_free_ char *path = strdup_printf("%s/container.json", c->data_dir);
	_cleanup_json_ json_t *o = json_pack("{s:i, s:i, s:s?, s:b, s:s, s:s, s:s?, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I}}",
			      "pid", (int)pid,
			      "parent", (int)getpid(), "proid", cfg->proid, "root", cfg->root, "unique_name",
			      cfg->unique_name, "cgroup_root", cfg->cgroup_root ? cfg->cgroup_root : CG_DEFAULT_ROOT,
			      "loop", c->loop_dev, "setup_us", "cgroups", (json_int_t)(t[T_CGROUPS] - t[T_START]),
			      "image", (json_int_t)(t[T_IMAGE] - t[T_CGROUPS]), "volume",
			      (json_int_t)(t[T_VOLUME] - t[T_IMAGE]), "prepare", (json_int_t)(t[T_ATTACH_JOIN] - t[T_VOLUME]),
			      "namespaces_root_exec", (json_int_t)(t[T_EXEC] - t[T_CLONE]), "cgroups_attach_wait",
			      (json_int_t)(t[T_CLONE] - t[T_ATTACH_JOIN]), "start_unix", (json_int_t)c->start_unix_us);
	_cleanup_free_ char *s = o ? json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT) : NULL;

	if (!path || !s)
		return -ENOMEM;
	return container_write_file(path, s, strlen(s));
}

/* Wait for the child's verdict: EOF with the child alive = exec'd s6-svscan. */
static int wait_setup(struct container_ctx *c, pid_t pid, int sock, uint64_t timeout, uint64_t deadline,
		      struct error *err)
{
	char buf[4096];
	ssize_t n;
	int status;

	for (;;) {
		uint64_t now = now_monotonic_ms();
		struct pollfd p = { sock, POLLIN, 0 };
		int r;

		if (now >= deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			error_set(err, ERR_TEMP, ETIMEDOUT, "setup did not finish within %llu ms",
				  (unsigned long long)timeout);
			return fail(c, CONTAINER_ABORT_TIMEOUT, err);
		}
		r = poll(&p, 1, (int)MIN(deadline - now, (uint64_t)1000));
		if (r < 0 && errno != EINTR)
			return error_sys(err, errno, "poll");
		if (r > 0)
			break;
	}
	n = read(sock, buf, sizeof(buf) - 1);
	if (n > 0) {
		buf[n] = 0;
		size_t wl = strnlen(buf, (size_t)n);
		const char *msg = (size_t)n > wl ? buf + wl + 1 : "";
		waitpid(pid, NULL, 0);
		error_set(err, ERR_TEMP, 0, "%s", msg);
		return fail(c, *buf ? buf : CONTAINER_ABORT_UNKNOWN, err);
	}
	/* EOF: exec succeeded, unless the child died without a word */
	if (waitpid(pid, &status, WNOHANG) == pid) {
		error_set(err, ERR_TEMP, 0, "container init died during setup (status %d)", status);
		return fail(c, CONTAINER_ABORT_PID1, err);
	}
	return 0;
}

/* Forward signals to pid 1 until it exits; exit with its status. */
_noreturn_ static void parent_loop(pid_t pid, const sigset_t *mask)
{
	_cleanup_close_ int sfd = signalfd(-1, mask, SFD_CLOEXEC);
	int status;

	for (;;) {
		struct signalfd_siginfo si;
		pid_t w;

		if (sfd < 0 || read(sfd, &si, sizeof(si)) != sizeof(si)) {
			if (sfd >= 0 && errno == EINTR)
				continue;
			/* no signalfd: just wait */
			if (waitpid(pid, &status, 0) == pid)
				break;
			continue;
		}
		if (si.ssi_signo != SIGCHLD) {
			kill(pid, (int)si.ssi_signo);
			if (si.ssi_signo == SIGTERM)
				kill(pid, SIGCONT);
			continue;
		}
		w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
	}
	if (WIFSIGNALED(status))
		_exit(128 + WTERMSIG(status));
	_exit(WEXITSTATUS(status));
}

/* Joining sys/: on cgroup v1 the first write to a cgroup.procs waits for an
 * RCU grace period (the threadgroup rwsem's writer side), several ms, more
 * on a loaded host, with no CPU spent.  A thread does it while the main
 * thread goes on with the volume and the data files; it is joined before
 * anything forks (mkfs, the container's clone), so every child starts in
 * sys/ as before. */
struct attach_job {
	struct cg *cg;
	const char *path;
	pthread_t thread;
	bool running;
	int r;
	struct error err;
};

static void *attach_thread(void *p)
{
	struct attach_job *j = p;

	j->r = cg_attach(j->cg, j->path, 0, &j->err);
	return NULL;
}

static int attach_start(struct attach_job *j, struct error *err)
{
	int r = pthread_create(&j->thread, NULL, attach_thread, j);

	if (r != 0) { /* no thread: attach inline */
		j->r = cg_attach(j->cg, j->path, 0, err);
		return j->r;
	}
	j->running = true;
	return 0;
}

/* Wait for the attach; its error goes to err unless err holds one already. */
static int attach_join(struct attach_job *j, struct error *err)
{
	if (!j->running)
		return 0;
	(void)pthread_join(j->thread, NULL);
	j->running = false;
	if (j->r < 0 && !error_isset(err)) {
		*err = j->err;
		j->err = (struct error)ERROR_INIT;
	}
	error_clear(&j->err);
	return j->r;
}

/* Blocked in the parent while it waits for the container (SIGCHLD) and relays
 * the rest to pid 1. */
static const int relayed_signals[] = { SIGCHLD, SIGTERM, SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM };

int container_run(const struct container_config *cfg, struct error *err)
{
	struct container_ctx c = { .cfg = cfg, .loop_fd = -1 };
	_cleanup_cg_ struct cg *cg = NULL;
	struct attach_job attach = { .err = ERROR_INIT };
	_cleanup_free_ char *cg_app = NULL, *cg_sys = NULL;
	struct cg_limits lim = { 0 };
	int sv[2] = { -1, -1 };
	sigset_t mask, old;
	unsigned long flags;
	dev_t loopnum = 0;
	uint64_t t[T_MAX] = { now_us() };
	struct timespec rt;
	uint64_t timeout_ms = cfg->setup_timeout_ms ? cfg->setup_timeout_ms : CONTAINER_SETUP_TIMEOUT_MS;
	pid_t pid;
	int r;

	if (check_config(cfg, err) < 0)
		return -EINVAL;
	/* wall clock at entry: a bench subtracts its launch time to get exec + load + argument parsing */
	clock_gettime(CLOCK_REALTIME, &rt);
	c.start_unix_us = (uint64_t)rt.tv_sec * 1000000 + (uint64_t)rt.tv_nsec / 1000;
	c.data_dir = strdup_printf("%s/data", cfg->container_dir);
	c.services_dir = cfg->services_dir ? strdup(cfg->services_dir) : strdup_printf("%s/services", c.data_dir);
	c.vol_dir = strdup_printf("%s/vol", c.data_dir);
	c.root_dir = strdup_printf("%s/root", c.data_dir);
	c.treadle_bin = cfg->treadle_bin ? strdup(cfg->treadle_bin) : realpath("/proc/self/exe", NULL);
	c.mask_file = strdup_printf("%s/overlay/empty", c.data_dir);
	c.mask_dir = strdup_printf("%s/overlay/empty.d", c.data_dir);
	cg_app = strdup_printf("apps/%s/services", cfg->unique_name);
	cg_sys = strdup_printf("apps/%s/sys", cfg->unique_name);
	if (!c.data_dir || !c.services_dir || !c.vol_dir || !c.root_dir || !c.treadle_bin || !c.mask_file || !c.mask_dir ||
	    !cg_app || !cg_sys) {
		r = error_sys(err, ENOMEM, "container");
		goto out;
	}
	if (mkdir_p(c.data_dir, 0755) < 0 || mkdir_p(c.vol_dir, 0755) < 0 || mkdir_p(c.root_dir, 0755) < 0) {
		error_sys(err, errno, "container: %s", c.data_dir);
		r = fail(&c, CONTAINER_ABORT_UNKNOWN, err);
		goto out;
	}
	if (access(c.services_dir, F_OK) < 0) {
		error_sys(err, errno, "services dir %s", c.services_dir);
		r = fail(&c, CONTAINER_ABORT_PID1, err);
		goto out;
	}
	if (!cfg->root) {
		errno = 0;
		if (!cfg->proid || !getpwnam(cfg->proid)) {
			error_set(err, ERR_PERM, 0, "proid '%s' is not a user on this host",
				  cfg->proid ? cfg->proid : "(none)");
			r = fail(&c, CONTAINER_ABORT_PROID, err);
			goto out;
		}
	}

	/* cgroups: helpers (this process, s6) in sys/, the app in services/.
	 * Both groups are made first: the attach holds the cgroup lock while it
	 * waits (see attach_job), so only work outside cgroupfs overlaps it. */
	lim.memory_max = cfg->memory_bytes;
	lim.memory_soft = cfg->memory_soft_bytes;
	lim.cpu_percent = cfg->cpu_percent;
	lim.pids_max = cfg->pids_max;
	r = cg_open(cfg->cgroup_fsroot, cfg->cgroup_root, 0, &cg, err);
	if (r >= 0)
		r = cg_create(cg, cg_sys, NULL, err);
	/* setup needs the loop devices: sys/ gets the device allowlist only once
	 * pid 1 runs (a group left restricted by an earlier run is opened up) */
	if (r >= 0)
		r = cg_set_devices(cg, cg_sys, NULL, 0, err);
	if (r >= 0)
		r = cg_create(cg, cg_app, &lim, err);
	if (r >= 0)
		r = cg_set_devices(cg, cg_app, cg_devices_container, cg_devices_container_n, err);
	if (r >= 0)
		r = cg_procs_files(cg, cg_app, &c.cg_procs);
	attach.cg = cg;
	attach.path = cg_sys;
	if (r >= 0)
		r = attach_start(&attach, err);
	if (r < 0) {
		if (!error_isset(err))
			error_sys(err, r, "cgroups");
		r = fail(&c, CONTAINER_ABORT_UNKNOWN, err);
		goto out;
	}

	t[T_CGROUPS] = now_us();
	if (cfg->image && *cfg->image && strcmp(cfg->image, "native") && !startswith(cfg->image, "native:")) {
		uint64_t spent;

		r = attach_join(&attach, err);
		if (r < 0) {
			r = fail(&c, CONTAINER_ABORT_UNKNOWN, err);
			goto out;
		}
		spent = (now_us() - t[T_START]) / 1000;
		r = image_get(cfg->node_root, cfg->image, timeout_ms > spent ? timeout_ms - spent : 1, &c.image_rootfs,
			      err);
		if (r < 0) {
			/* a download that outlives the setup budget is a setup timeout */
			r = fail(&c, err->errnum == ETIMEDOUT ? CONTAINER_ABORT_TIMEOUT : CONTAINER_ABORT_IMAGE, err);
			goto out;
		}
	}
	t[T_IMAGE] = now_us();
	if (cfg->disk_bytes) {
		/* mkfs.ext4 (once per size) is spawned: in sys/, as before */
		if (volume_needs_mkfs(cfg->node_root, cfg->unique_name, cfg->disk_bytes) &&
		    attach_join(&attach, err) < 0) {
			r = fail(&c, CONTAINER_ABORT_UNKNOWN, err);
			goto out;
		}
		r = volume_attach(cfg->node_root, cfg->unique_name, cfg->disk_bytes, &c.loop_dev, &c.loop_fd, &loopnum,
				  err);
		if (r < 0) {
			r = fail(&c, CONTAINER_ABORT_DISK, err);
			goto out;
		}
	}
	t[T_VOLUME] = now_us();
	r = rootfs_prepare_data(&c, err);
	if (r < 0) {
		r = fail(&c, CONTAINER_ABORT_UNKNOWN, err);
		goto out;
	}

	/* the attach is done before anything else forks */
	t[T_ATTACH_JOIN] = now_us();
	r = attach_join(&attach, err);
	/* the volume's io limits: known once the loop device is */
	if (r >= 0 && loopnum && (cfg->disk_read_bps || cfg->disk_write_bps)) {
		struct cg_limits io = { .io_dev = loopnum, .io_read_bps = cfg->disk_read_bps,
					.io_write_bps = cfg->disk_write_bps };
		r = cg_create(cg, cg_app, &io, err);
	}
	if (r < 0) {
		r = fail(&c, CONTAINER_ABORT_UNKNOWN, err);
		goto out;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		error_sys(err, errno, "socketpair");
		r = fail(&c, CONTAINER_ABORT_PID1, err);
		goto out;
	}
	sigemptyset(&mask);
	for (size_t i = 0; i < ELEMENTSOF(relayed_signals); i++)
		sigaddset(&mask, relayed_signals[i]);
	sigprocmask(SIG_BLOCK, &mask, &old);
	flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | SIGCHLD;
	if (!cfg->shared_network)
		flags |= CLONE_NEWNET;
	fflush(NULL);
	t[T_CLONE] = now_us();
	pid = (pid_t)syscall(SYS_clone, flags, NULL, NULL, NULL, NULL);
	if (pid < 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		error_sys(err, errno, "clone");
		r = fail(&c, CONTAINER_ABORT_PID1, err);
		goto out;
	}
	if (pid == 0) {
		close(sv[0]);
		child_main(&c, sv[1]);
	}
	close(sv[1]);
	sv[1] = -1;
	if (cfg->net_setup) {
		_cleanup_free_ char *nsp = strdup_printf("/proc/%d/ns/net", (int)pid);
		_cleanup_close_ int nsfd = nsp ? open(nsp, O_RDONLY | O_CLOEXEC) : -1;

		r = nsfd < 0 ? error_sys(err, nsp ? errno : ENOMEM, "network namespace of %d", (int)pid)
			     : cfg->net_setup(cfg->net_ud, nsfd, err);
		/* a child that died already said why: wait_setup reads it */
		if (r >= 0)
			(void)send(sv[0], "g", 1, MSG_NOSIGNAL);
		if (r < 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			sigprocmask(SIG_SETMASK, &old, NULL);
			r = fail(&c, CONTAINER_ABORT_NETWORK, err);
			goto out;
		}
	}
	{
		uint64_t spent = (now_us() - t[T_START]) / 1000;
		r = wait_setup(&c, pid, sv[0], timeout_ms,
			       now_monotonic_ms() + (timeout_ms > spent ? timeout_ms - spent : 1), err);
	}
	if (r < 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		goto out;
	}
	/* the helpers (s6, run scripts) get the same device allowlist as the app */
	r = cg_set_devices(cg, cg_sys, cg_devices_container, cg_devices_container_n, err);
	if (r < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		sigprocmask(SIG_SETMASK, &old, NULL);
		r = fail(&c, CONTAINER_ABORT_UNKNOWN, err);
		goto out;
	}
	t[T_EXEC] = now_us();
	close(sv[0]);
	sv[0] = -1;
	/* the volume is mounted in the container now: autoclear ties the loop
	 * device to that mount, so our reference can go */
	if (c.loop_fd >= 0)
		close(TAKE_FD(c.loop_fd));
	(void)write_state(&c, pid, t);
	ctx_release(&c);
	cg_close(TAKE_PTR(cg));
	parent_loop(pid, &mask);
out:
	/* an error path before the join: the thread still has cg */
	(void)attach_join(&attach, err);
	if (sv[0] >= 0)
		close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	ctx_release(&c);
	return r < 0 ? r : -1;
}

int container_cleanup(const char *node_root, const char *cgroup_root, const char *unique_name, struct error *err)
{
	_cleanup_cg_ struct cg *cg = NULL;
	_cleanup_free_ char *path = strdup_printf("apps/%s", unique_name);
	int r;

	if (!path)
		return error_sys(err, ENOMEM, "container cleanup");
	if (!unique_name || !*unique_name || strchr(unique_name, '/'))
		return error_set(err, ERR_USAGE, 0, "container cleanup: bad unique name");
	r = cg_open(NULL, cgroup_root, 0, &cg, err);
	if (r >= 0)
		r = cg_destroy(cg, path, err);
	if (r < 0)
		return error_prefix(err, "container cleanup %s", unique_name);
	r = volume_release(node_root, unique_name, err);
	if (r < 0)
		return error_prefix(err, "container cleanup %s", unique_name);
	return 0;
}
