/* sproc-services.c: a container's service dirs (from app.json), and what their
 * scripts run: `sproc finish` (restart policy) and `sproc service-exec`. */
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
#include "../cgroup/cg.h"
#include "../container/container.h"
#include "../basic/util.h"
#include "../supervisor/supervisor.h"
#include "../trace/trace.h"
#include "node-internal.h"

/* env list "NAME=VALUE" from [{"name","value"}...], appended to *l. */
static int environ_append(char ***l, const json_t *arr)
{
	size_t i;
	const json_t *e;

	if (!json_is_array(arr))
		return 0;
	json_array_foreach(arr, i, e) {
		const char *n = sproc_jstr(e, "name"), *v = sproc_jstr(e, "value");
		char *s;

		if (!n)
			continue;
		s = strdup_printf("%s=%s", n, v ? v : "");
		if (!s || strv_push(l, s) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int service_write(const struct node_settings *ns, const char *base, const char *instance,
			 const char *uniqueid, const char *unique, const json_t *svc, struct error *err)
{
	const char *name = sproc_jstr(svc, "name"), *cmd = sproc_jstr(svc, "command"), *proid = sproc_jstr(svc, "proid");
	const json_t *restart = json_object_get(svc, "restart");
	bool root = json_is_true(json_object_get(svc, "root"));
	bool trace = !json_is_false(json_object_get(svc, "trace"));
	long long limit = sproc_jint(restart, "limit", 5), interval = sproc_jint(restart, "interval", 60);
	_cleanup_free_ char *dir = NULL, *run = NULL, *fin = NULL, *p = NULL, *tomb = NULL, *ev = NULL;
	_cleanup_free_ char *bin = NULL, *qi = NULL, *qu = NULL, *qs = NULL, *qt = NULL, *qe = NULL, *quser = NULL,
			    *qid = NULL, *tid = NULL, *user = NULL, *evargs = NULL;
	_cleanup_strv_free_ char **env = strv_new();
	struct sv_service_spec spec = { .notification_fd = 3, .timeout_finish_ms = 0 };
	int r;

	if (!sproc_service_name_ok(name))
		return error_set(err, ERR_PERM, 0, "invalid service name '%s'", name ? name : "");
	if (!cmd)
		return error_set(err, ERR_PERM, 0, "service %s: no command", name);
	if (limit < 0 || interval < 0)
		return error_set(err, ERR_PERM, 0, "service %s: invalid restart policy", name);
	if (!env || environ_append(&env, json_object_get(svc, "environ")) < 0)
		return error_sys(err, ENOMEM, "service %s", name);
	dir = strdup_printf("%s/%s", base, name);
	/* these scripts run inside the container: /services is data/services */
	tomb = strdup(SPROC_CTL_TOMBSTONES);
	ev = strdup(SPROC_CTL_APPEVENTS);
	tid = strdup_printf("%s,%s", unique, name);
	if (!dir || !tomb || !ev || !tid)
		return error_sys(err, ENOMEM, "service %s", name);
	bin = shell_quote(CONTAINER_TREADLE);
	qi = shell_quote(instance);
	qu = shell_quote(uniqueid);
	qs = shell_quote(name);
	qt = shell_quote(tomb);
	qe = shell_quote(ev);
	qid = shell_quote(tid);
	if (!bin || !qi || !qu || !qs || !qt || !qe || !qid)
		return error_sys(err, ENOMEM, "service %s", name);
	if (!root && proid && strcmp(proid, "root")) {
		quser = shell_quote(proid);
		user = quser ? strdup_printf(" --user %s", quser) : NULL;
	} else
		user = strdup("");
	evargs = trace ? strdup_printf(" --appevents %s --instance %s --uniqueid %s --service %s", qe, qi, qu, qs)
		       : strdup("");
	if (!user || !evargs)
		return error_sys(err, ENOMEM, "service %s", name);
	run = strdup_printf("#!/bin/sh\nexec 2>&1 </dev/null\nexec %s sproc service-exec%s%s\n", bin, evargs, user);
	fin = strdup_printf("#!/bin/sh\nexec >>data/finish.log 2>&1 </dev/null\n"
			    "exec %s sproc finish --limit %lld --interval %lld --tombstones %s --id %s%s -- \"$1\" \"$2\"\n",
			    bin, limit, interval, qt, qid, evargs);
	if (!run || !fin)
		return error_sys(err, ENOMEM, "service %s", name);
	spec.run = run;
	spec.finish = fin;
	spec.log_run = SERVICE_LOG_RUN;
	spec.down = json_is_true(json_object_get(svc, "downed"));
	spec.env = env;
	/* a fresh env/ each time: remove what a previous manifest left */
	p = strdup_printf("%s/env", dir);
	if (!p)
		return error_sys(err, ENOMEM, "service %s", name);
	(void)rm_rf(p);
	r = sv_service_write(dir, &spec);
	if (r < 0)
		return error_sys(err, -r, "writing service %s", name);
	free(p);
	p = strdup_printf("%s/app_start", dir);
	if (!p)
		return error_sys(err, ENOMEM, "service %s", name);
	{
		_cleanup_free_ char *body = strdup_printf("%s\n", cmd);
		if (!body || (r = sv_write_file(p, body, strlen(body), 0755)) < 0)
			return error_sys(err, body ? -r : ENOMEM, "writing %s", p);
	}
	free(p);
	p = strdup_printf("%s/data/log", dir);
	if (!p || (r = mkdir_p(p, 0755)) < 0)
		return error_sys(err, p ? -r : ENOMEM, "service %s: data/log", name);
	free(p);
	p = strdup_printf("%s/data/exits", dir);
	if (!p || (r = mkdir_p(p, 0755)) < 0)
		return error_sys(err, p ? -r : ENOMEM, "service %s: data/exits", name);
	free(p);
	/* Treadmill wipes the exit history whenever the service is (re)created;
	 * treadle starts it from the instance's history on this node instead, so
	 * exits of earlier containers (deaths outside the policy) still count */
	p = strdup_printf("%s/data/exits/log", dir);
	if (!p)
		return error_sys(err, ENOMEM, "service %s", name);
	(void)unlink(p);
	{
		_cleanup_free_ char *hp = sproc_exits_history_path(ns->root, instance, name), *hist = NULL;

		if (!hp)
			return error_sys(err, ENOMEM, "service %s", name);
		if (read_file(hp, &hist, NULL) == 0 && *hist && (r = sv_write_file(p, hist, strlen(hist), 0644)) < 0)
			return error_sys(err, -r, "writing %s", p);
	}
	return 0;
}

int sproc_services_write(const struct node_settings *ns, const char *container_dir, const json_t *app,
			 struct error *err)
{
	const json_t *services = json_object_get(app, "services"), *svc;
	const char *instance = sproc_jstr(app, "name"), *uniqueid = sproc_jstr(app, "uniqueid");
	_cleanup_free_ char *base = NULL, *unique = NULL;
	_cleanup_strv_free_ char **names = strv_new(), **existing = NULL;
	size_t i;
	int r;

	if (!instance || !uniqueid)
		return error_set(err, ERR_PERM, 0, "app.json: missing name or uniqueid");
	if (!json_is_array(services) || json_array_size(services) == 0)
		return error_set(err, ERR_PERM, 0, "app.json: no services");
	unique = node_unique_name(instance, uniqueid);
	base = strdup_printf("%s/data/services", container_dir);
	if (!unique || !base || !names)
		return error_sys(err, ENOMEM, "services");
	r = mkdir_p(base, 0755);
	if (r < 0)
		return error_sys(err, -r, "mkdir %s", base);
	json_array_foreach(services, i, svc) {
		r = service_write(ns, base, instance, uniqueid, unique, svc, err);
		if (r < 0)
			return r;
		if (strv_extend(&names, sproc_jstr(svc, "name")) < 0)
			return error_sys(err, ENOMEM, "services");
	}
	/* stale service dirs from an older manifest */
	if (dir_list(base, 1, &existing) == 0)
		for (char **p = existing; *p; p++)
			if (!strv_contains(names, *p)) {
				_cleanup_free_ char *d = strdup_printf("%s/%s", base, *p);
				if (d)
					(void)rm_rf(d);
			}
	return 0;
}

int sproc_finish(const struct sproc_finish_args *a)
{
	struct sv_exit e = { now_realtime(), a->rc, a->sig };
	_cleanup_free_ char *pg = NULL;
	int v, r, pgid;

	/* leftovers of the dead service (its shell's children) die with it */
	if (read_file("data/pgid", &pg, NULL) == 0) {
		char *nl = strchr(pg, '\n');
		if (nl)
			*nl = 0;
		if (safe_atoi(pg, &pgid) == 0 && pgid > 1 && pgid != getpgrp())
			(void)kill(-pgid, SIGKILL);
		(void)unlink("data/pgid");
	}

	if (a->appevents && a->instance && a->uniqueid && a->service) {
		_cleanup_free_ char *d = strdup_printf("%s.%s.%d.%d", a->uniqueid, a->service, a->rc, a->sig);
		if (d)
			(void)sproc_event_post(a->appevents, a->instance, "service_exited", d, NULL);
	}
	if (a->limit == 0 || path_exists(SPROC_STOPPED_FROM_SERVICE))
		v = SV_FATAL;
	else {
		v = sv_policy_apply("data/exits/log", &e, a->limit, a->interval);
		if (v < 0)
			return v;
	}
	if (v == SV_RESTART)
		return 0;
	r = sv_tombstone_write(a->tombstones, a->id, &e);
	if (r < 0)
		return r;
	return 125;
}

int sproc_service_exec(const struct sproc_exec_args *a, struct error *err)
{
	bool as_root = !a->user || !*a->user || !strcmp(a->user, "root");
	_cleanup_free_ char *cwd = getcwd(NULL, 0);
	/* exec-as changes to the user's home: go back to the service dir */
	char *argv[] = { (char *)"/bin/sh", (char *)"-c", (char *)"cd \"$0\" && exec /bin/sh ./app_start", cwd, NULL };
	struct passwd *pw;
	int r;

	if (!cwd)
		return error_sys(err, errno, "getcwd");
	if (a->appevents && a->instance && a->uniqueid && a->service) {
		_cleanup_free_ char *d = strdup_printf("%s.%s", a->uniqueid, a->service);
		if (d)
			(void)sproc_event_post(a->appevents, a->instance, "service_running", d, NULL);
	}
	/* s6-supervise made us a session (and process group) leader: record
	 * it so finish can kill what the service leaves behind */
	{
		_cleanup_free_ char *pg = strdup_printf("%d\n", (int)getpgrp());
		if (pg)
			(void)sv_write_file("data/pgid", pg, strlen(pg), 0644);
	}
	errno = 0;
	pw = as_root ? getpwuid(0) : getpwnam(a->user);
	if (!pw)
		return error_set(err, ERR_PERM, errno, "no such user '%s'", as_root ? "root" : a->user);
	if (clearenv() != 0)
		return error_sys(err, ENOMEM, "clearenv");
	if (setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1) < 0 ||
	    setenv("HOME", pw->pw_dir, 1) < 0 || setenv("USER", pw->pw_name, 1) < 0 ||
	    setenv("LOGNAME", pw->pw_name, 1) < 0 || setenv("SHELL", pw->pw_shell, 1) < 0)
		return error_sys(err, errno, "setenv");
	/* the container's TREADMILL_* (/env), then the service's own env/ */
	if (access("/env", F_OK) == 0) {
		r = container_load_envdir("/env", err);
		if (r < 0)
			return r;
	}
	r = sv_envdir_apply("env");
	if (r < 0 && r != -ENOENT)
		return error_sys(err, -r, "loading env/");
	/* a->user, not pw->pw_name: getpwnam() reuses its static buffer */
	return container_exec_as(as_root ? NULL : a->user, as_root, argv, err);
}
