/* sproc-cleanup.c: `treadle sproc cleanup`: archive, terminal event, removal. */
#include <inttypes.h>
#include <ctype.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "../basic/fileio.h"
#include "../basic/json.h"
#include "../cgroup/cg.h"
#include "../container/container.h"
#include "../basic/util.h"
#include "../supervisor/supervisor.h"
#include "../trace/trace.h"
#include "node-internal.h"

/* ---- cleanup ---- */

static int sproc_terminal_event(const char *data_dir, char **ret_type, char **ret_data, char **ret_payload)
{
	_cleanup_free_ char *p = NULL, *text = NULL;

	*ret_type = *ret_data = *ret_payload = NULL;
	p = strdup_printf("%s/aborted", data_dir);
	if (!p)
		return -ENOMEM;
	if (read_file(p, &text, NULL) == 0) {
		_cleanup_json_ json_t *o = json_loads(text, 0, NULL);
		const char *why = NULL, *payload = NULL;

		if (o) {
			why = sproc_jstr(o, "why");
			payload = sproc_jstr(o, "payload");
		}
		*ret_type = strdup("aborted");
		*ret_data = strdup(why && *why && !strchr(why, '/') && !strchr(why, ',') ? why : "unknown");
		*ret_payload = payload ? strdup(payload) : NULL;
		return *ret_type && *ret_data ? 0 : -ENOMEM;
	}
	free(p);
	p = strdup_printf("%s/oom", data_dir);
	if (!p)
		return -ENOMEM;
	if (path_exists(p)) {
		*ret_type = strdup("killed");
		*ret_data = strdup("oom");
		return *ret_type && *ret_data ? 0 : -ENOMEM;
	}
	free(p);
	p = strdup_printf("%s/terminated", data_dir);
	if (!p)
		return -ENOMEM;
	if (path_exists(p))
		return 0;
	free(p);
	p = strdup_printf("%s/exitinfo", data_dir);
	if (!p)
		return -ENOMEM;
	if (read_file(p, &text, NULL) == 0) {
		_cleanup_json_ json_t *o = json_loads(text, 0, NULL);
		long long rc = 256, sig = 256;

		if (o) {
			rc = sproc_jint(o, "return_code", 256);
			sig = sproc_jint(o, "signal", 256);
		}
		*ret_type = strdup("finished");
		*ret_data = strdup_printf("%lld.%lld", rc, sig);
		*ret_payload = strdup(text);
		return *ret_type && *ret_data && *ret_payload ? 0 : -ENOMEM;
	}
	return 0;
}

static int copy_file(const char *from, const char *to)
{
	_cleanup_free_ char *buf = NULL;
	size_t len;
	int r = read_file(from, &buf, &len);

	if (r < 0)
		return r;
	return sv_write_file(to, buf, len, 0644);
}

/* Copy the regular files of a log dir (current, @*.s, @*.u) into dst. */
static int copy_log_dir(const char *src, const char *dst)
{
	_cleanup_strv_free_ char **l = NULL;
	int r;

	if (dir_list(src, 1, &l) < 0)
		return 0;
	r = mkdir_p(dst, 0755);
	if (r < 0)
		return r;
	for (char **p = l; *p; p++) {
		_cleanup_free_ char *f = strdup_printf("%s/%s", src, *p), *t = strdup_printf("%s/%s", dst, *p);
		struct stat st;

		if (!f || !t)
			return -ENOMEM;
		if (strcmp(*p, "current") && (*p)[0] != '@')
			continue;
		if (stat(f, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		r = copy_file(f, t);
		if (r < 0)
			return r;
	}
	return 0;
}

static int archive(const char *root, const char *unique, const char *cdir)
{
	static const char *const records[] = { "manifest.yml", "app.json", "exitinfo", "aborted", "oom", "terminated" };
	_cleanup_free_ char *adir = node_archive_dir(root, unique), *tmp = NULL, *src = NULL, *dst = NULL;
	_cleanup_free_ char *svcs = NULL;
	_cleanup_strv_free_ char **l = NULL;
	int r;

	tmp = strdup_printf("%s/" NODE_DIR_ARCHIVES "/.%s.tmp", root, unique);
	if (!adir || !tmp)
		return -ENOMEM;
	if (path_exists(adir))
		return 0; /* done by an earlier (interrupted) cleanup */
	(void)rm_rf(tmp);
	r = mkdir_p(tmp, 0755);
	if (r < 0)
		return r;
	for (size_t i = 0; i < ELEMENTSOF(records); i++) {
		_cleanup_free_ char *f = strdup_printf("%s/data/%s", cdir, records[i]);
		_cleanup_free_ char *t = strdup_printf("%s/%s", tmp, records[i]);
		if (!f || !t)
			return -ENOMEM;
		if (path_exists(f) && (r = copy_file(f, t)) < 0)
			return r;
	}
	src = strdup_printf("%s/data/log", cdir);
	dst = strdup_printf("%s/log", tmp);
	if (!src || !dst)
		return -ENOMEM;
	r = copy_log_dir(src, dst);
	if (r < 0)
		return r;
	svcs = strdup_printf("%s/data/services", cdir);
	if (!svcs)
		return -ENOMEM;
	if (dir_list(svcs, 1, &l) == 0)
		for (char **p = l; *p; p++) {
			_cleanup_free_ char *s = strdup_printf("%s/%s/data/log", svcs, *p);
			_cleanup_free_ char *t = strdup_printf("%s/services/%s/log", tmp, *p);
			if (!s || !t)
				return -ENOMEM;
			r = copy_log_dir(s, t);
			if (r < 0)
				return r;
		}
	if (rename(tmp, adir) < 0)
		return negerrno();
	return 0;
}

static int64_t tree_size(const char *path)
{
	_cleanup_strv_free_ char **l = NULL;
	struct stat st;
	int64_t n;

	if (lstat(path, &st) < 0)
		return 0;
	n = (int64_t)st.st_blocks * 512;
	if (!S_ISDIR(st.st_mode) || dir_list(path, 0, &l) < 0)
		return n;
	for (char **p = l; *p; p++) {
		_cleanup_free_ char *c = strdup_printf("%s/%s", path, *p);
		if (c)
			n += tree_size(c);
	}
	return n;
}

/* Delete the oldest archives/<unique> dirs (by mtime) until the total size is
 * at most cap_bytes.  Returns how many were removed, or -errno. */
static int sproc_archives_prune(const char *root, uint64_t cap_bytes)
{
	_cleanup_free_ char *dir = node_path(root, NODE_DIR_ARCHIVES);
	_cleanup_strv_free_ char **l = NULL;
	struct ent {
		char *path;
		int64_t size;
		int64_t mtime;
	} *e = NULL;
	size_t n = 0;
	int64_t total = 0;
	int removed = 0;

	if (!dir)
		return -ENOMEM;
	if (dir_list(dir, 1, &l) < 0)
		return 0;
	n = strv_length(l);
	e = calloc(n ? n : 1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		e[i].path = strdup_printf("%s/%s", dir, l[i]);
		if (!e[i].path || stat(e[i].path, &st) < 0)
			continue;
		e[i].size = tree_size(e[i].path);
		e[i].mtime = (int64_t)st.st_mtim.tv_sec;
		total += e[i].size;
	}
	while (total > (int64_t)cap_bytes) {
		size_t oldest = n;
		for (size_t i = 0; i < n; i++)
			if (e[i].path && e[i].size >= 0 && (oldest == n || e[i].mtime < e[oldest].mtime))
				oldest = i;
		if (oldest == n)
			break;
		(void)rm_rf(e[oldest].path);
		total -= e[oldest].size;
		e[oldest].size = -1;
		removed++;
	}
	for (size_t i = 0; i < n; i++)
		free(e[i].path);
	free(e);
	return removed;
}

/* Wait up to timeout_ms until s6 supervises neither cdir nor cdir/log. */
static int unsupervised_wait(const char *cdir, uint64_t timeout_ms)
{
	_cleanup_free_ char *log = strdup_printf("%s/log", cdir);
	uint64_t deadline = now_monotonic_ms() + timeout_ms, now;
	int r;

	if (!log)
		return -ENOMEM;
	r = sv_wait_unsupervised(cdir, (int)timeout_ms);
	now = now_monotonic_ms();
	if (r >= 0)
		r = sv_wait_unsupervised(log, now < deadline ? (int)(deadline - now) : 0);
	return r;
}

static void mark_oom(const struct node_settings *ns, const char *unique, const char *cdir)
{
	_cleanup_cg_ struct cg *cg = NULL;
	_cleanup_free_ char *path = sproc_cgroup_path(unique), *f = strdup_printf("%s/data/oom", cdir);
	struct error e = ERROR_INIT;
	uint64_t kills = 0;

	if (path && f && cg_open(NULL, ns->cgroup_root, 0, &cg, &e) == 0 && cg_exists(cg, path) &&
	    cg_oom_check(cg, path, &kills) == 0 && kills > 0)
		(void)touch(f);
	error_clear(&e);
}

static int cleanup(const struct node_settings *ns, const char *unique, struct error *err)
{
	_cleanup_free_ char *cdir = node_app_dir(ns->root, unique), *link = node_cleanup_link(ns->root, unique);
	_cleanup_free_ char *data = NULL, *marker = NULL, *inst = NULL, *ev = NULL, *run = NULL;
	_cleanup_close_ int lock_fd = -1;
	int r;

	if (!cdir || !link)
		return error_sys(err, ENOMEM, "cleanup");
	inst = node_unique_instance(unique);
	if (!inst)
		return error_set(err, ERR_PERM, 0, "not a container name: %s", unique);
	if (!path_exists(cdir)) {
		if (unlink(link) < 0 && errno != ENOENT)
			return error_sys(err, errno, "unlink %s", link);
		return 0;
	}
	/* one cleanup per container at a time (a restarted agent may start a
	 * second one while the first is still running) */
	{
		_cleanup_free_ char *lk = strdup_printf("%s/data/.cleanup.lock", cdir), *dd = strdup_printf("%s/data", cdir);
		if (!lk || !dd)
			return error_sys(err, ENOMEM, "cleanup");
		(void)mkdir_p(dd, 0755);
		lock_fd = open(lk, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (lock_fd < 0)
			return error_sys(err, errno, "%s", lk);
		if (flock(lock_fd, LOCK_EX | LOCK_NB) < 0)
			return error_set(err, ERR_TEMP, errno, "cleanup of %s already running", unique);
	}
	/* 1. wait until s6 no longer supervises it (its link left running/) */
	run = node_path(ns->root, NODE_DIR_RUNNING);
	if (run)
		(void)sv_svscan_control(run, "an");
	r = unsupervised_wait(cdir, 2000);
	if (r == -ETIMEDOUT) { /* still there after 2 s: tell supervise to bring it down and exit */
		_cleanup_free_ char *log = strdup_printf("%s/log", cdir);
		(void)sv_control(cdir, "dx");
		if (log)
			(void)sv_control(log, "dx");
		r = unsupervised_wait(cdir, 3000);
	}
	if (r == -ETIMEDOUT) { /* 5 s: whatever is left of the container goes */
		struct error e2 = ERROR_INIT;
		(void)container_cleanup(ns->root, ns->cgroup_root, unique, &e2);
		error_clear(&e2);
		r = unsupervised_wait(cdir, 55000);
	}
	if (r < 0)
		return error_set(err, ERR_TEMP, -r, "%s is still supervised", cdir);
	/* 2. an OOM kill the agent's eventfd has not reported yet (the service can
	 * exit, and its container go down, before the event is read): the
	 * cgroup's own counter decides, before the cgroup goes */
	mark_oom(ns, unique, cdir);
	/* 3. cgroups (kills leftovers), loop device, volume */
	r = container_cleanup(ns->root, ns->cgroup_root, unique, err);
	if (r < 0)
		return error_prefix(err, "cleanup of %s", unique);
	/* 3b. network: firewall elements, veth, VIP (its conntrack flushed), record */
	r = sproc_net_cleanup(ns, cdir, unique, err);
	if (r < 0)
		return error_prefix(err, "cleanup of %s: network", unique);
	/* 4. what its services posted last (their final service_exited events) */
	(void)sproc_ctl_drain(ns->root, unique);
	/* 4b. the hooks' cleanup: credentials go before anything is archived */
	sproc_hooks_cleanup(ns, cdir);
	/* 5. archive logs and records */
	r = archive(ns->root, unique, cdir);
	if (r < 0)
		return error_sys(err, -r, "archiving %s", unique);
	/* 4. terminal event, once */
	data = strdup_printf("%s/data", cdir);
	marker = strdup_printf("%s/data/.event-posted", cdir);
	ev = node_path(ns->root, NODE_DIR_APPEVENTS);
	if (!data || !marker || !ev)
		return error_sys(err, ENOMEM, "cleanup");
	if (!path_exists(marker)) {
		_cleanup_free_ char *type = NULL, *d = NULL, *payload = NULL;

		r = sproc_terminal_event(data, &type, &d, &payload);
		if (r < 0)
			return error_sys(err, -r, "terminal event of %s", unique);
		if (type) {
			r = sproc_event_post(ev, inst, type, d, payload);
			if (r < 0)
				return error_sys(err, -r, "posting %s event", type);
		}
		(void)touch(marker);
	}
	(void)sproc_archives_prune(ns->root, SPROC_ARCHIVES_CAP);
	/* 5. remove */
	r = rm_rf(cdir);
	if (r < 0)
		return error_sys(err, -r, "removing %s", cdir);
	if (unlink(link) < 0 && errno != ENOENT)
		return error_sys(err, errno, "unlink %s", link);
	return 0;
}

int sproc_cleanup(const char *root, const char *cgroup_root, const char *unique, struct error *err)
{
	_cleanup_json_ json_t *owner = NULL;
	struct node_settings ns;

	if (sproc_settings_read(root, &ns, &owner, err) < 0)
		return -1;
	if (cgroup_root)
		ns.cgroup_root = cgroup_root;
	return cleanup(&ns, unique, err);
}
