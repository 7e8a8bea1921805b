/* sproc.c: the node's s6-script side (see sproc.h). */
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
#include "layout.h"
#include "sproc.h"

#define SERVICE_LOG_RUN "#!/bin/sh\nexec s6-log -b n20 s1000000 ../data/log\n"
#define CONTAINER_LOG_RUN "#!/bin/sh\nexec s6-log -b n20 s1000000 T ../data/log\n"

static bool path_exists(const char *p)
{
	struct stat st;

	return p && lstat(p, &st) == 0;
}

int sproc_event_post(const char *appevents_dir, const char *instance, const char *type, const char *data,
		     const char *payload)
{
	_cleanup_free_ char *tmp = NULL;
	double ts = now_realtime();
	int r;

	if (strchr(instance, '/') || strchr(type, '/') || (data && strchr(data, '/')))
		return -EINVAL;
	tmp = strdup_printf("%s/.event.%d.%08x", appevents_dir, (int)getpid(), (unsigned)random());
	if (!tmp)
		return -ENOMEM;
	r = sv_write_file(tmp, payload ? payload : "", payload ? strlen(payload) : 0, 0644);
	if (r < 0)
		return r;
	/* two events of the same instance, type and data within one millisecond
	 * would share a name: never replace, move the later one by 1 ms */
	for (int i = 0; i < 1000; i++, ts += 0.001) {
		_cleanup_free_ char *path = strdup_printf("%s/%.3f,%s,%s,%s", appevents_dir, ts, instance, type,
							  data ? data : "");
		if (!path) {
			r = -ENOMEM;
			break;
		}
		if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
			return 0;
		r = negerrno();
		if (r != -EEXIST)
			break;
	}
	unlink(tmp);
	return r;
}

char *sproc_cgroup_path(const char *unique)
{
	return strdup_printf("apps/%s/services", unique);
}

int sproc_container_scripts(const struct node_settings *ns, const char *instance, const char *unique,
			    char **ret_run, char **ret_finish, char **ret_log)
{
	_cleanup_free_ char *bin = shell_quote(ns->treadle_bin), *root = shell_quote(ns->root);
	_cleanup_free_ char *cg = shell_quote(ns->cgroup_root ? ns->cgroup_root : "treadle");
	_cleanup_free_ char *id = shell_quote(unique), *tomb = NULL, *tq = NULL;
	char *run = NULL, *fin = NULL, *log = NULL;

	tomb = strdup_printf("%s/" NODE_DIR_TOMB_RUNNING, ns->root);
	tq = tomb ? shell_quote(tomb) : NULL;
	if (!bin || !root || !cg || !id || !tq)
		return -ENOMEM;
	{
		_cleanup_free_ char *cell = ns->cell && *ns->cell ? shell_quote(ns->cell) : NULL;
		_cleanup_free_ char *extra = strdup_printf(
			"%s%s --setup-timeout %u --pids-max %" PRIu64 " --disk-read-bps %" PRIu64
			" --disk-write-bps %" PRIu64,
			cell ? " --cell " : "", cell ? cell : "", ns->setup_timeout_s, ns->pids_max, ns->disk_read_bps,
			ns->disk_write_bps);
		if (!extra)
			return -ENOMEM;
		run = strdup_printf("#!/bin/sh\nexec 2>&1 </dev/null\nexec %s sproc run --root %s --cgroup-root %s%s\n", bin,
				    root, cg, extra);
	}
	fin = strdup_printf("#!/bin/sh\nexec >>data/finish.log 2>&1 </dev/null\n"
			    "exec %s sproc finish --limit 0 --interval 60 --tombstones %s --id %s -- \"$1\" \"$2\"\n",
			    bin, tq, id);
	log = strdup(CONTAINER_LOG_RUN);
	if (!run || !fin || !log) {
		free(run);
		free(fin);
		free(log);
		return -ENOMEM;
	}
	*ret_run = run;
	*ret_finish = fin;
	*ret_log = log;
	return 0;
}

static const char *jstr(const json_t *o, const char *k)
{
	const json_t *v = json_object_get(o, k);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

static long long jint(const json_t *o, const char *k, long long dflt)
{
	const json_t *v = json_object_get(o, k);

	return json_is_integer(v) ? json_integer_value(v) : dflt;
}

/* env list "NAME=VALUE" from [{"name","value"}...], appended to *l. */
static int environ_append(char ***l, const json_t *arr)
{
	size_t i;
	const json_t *e;

	if (!json_is_array(arr))
		return 0;
	json_array_foreach(arr, i, e) {
		const char *n = jstr(e, "name"), *v = jstr(e, "value");
		char *s;

		if (!n)
			continue;
		s = strdup_printf("%s=%s", n, v ? v : "");
		if (!s || strv_push(l, s) < 0)
			return -ENOMEM;
	}
	return 0;
}

static bool service_name_ok(const char *s)
{
	if (!s || !*s || strlen(s) > 60 || s[0] == '.')
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' ||
		      *p == '-' || *p == '.'))
			return false;
	return true;
}

static int service_write(const struct node_settings *ns, const char *base, const char *instance,
			 const char *uniqueid, const char *unique, const json_t *svc, struct error *err)
{
	const char *name = jstr(svc, "name"), *cmd = jstr(svc, "command"), *proid = jstr(svc, "proid");
	const json_t *restart = json_object_get(svc, "restart");
	bool root = json_is_true(json_object_get(svc, "root"));
	bool trace = !json_is_false(json_object_get(svc, "trace"));
	long long limit = jint(restart, "limit", 5), interval = jint(restart, "interval", 60);
	_cleanup_free_ char *dir = NULL, *run = NULL, *fin = NULL, *p = NULL, *tomb = NULL, *ev = NULL;
	_cleanup_free_ char *bin = NULL, *qi = NULL, *qu = NULL, *qs = NULL, *qt = NULL, *qe = NULL, *quser = NULL,
			    *qid = NULL, *tid = NULL, *user = NULL, *evargs = NULL;
	_cleanup_strv_free_ char **env = strv_new();
	struct sv_service_spec spec = { .notification_fd = 3, .timeout_finish_ms = 0 };
	int r;

	if (!service_name_ok(name))
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
	const char *instance = jstr(app, "name"), *uniqueid = jstr(app, "uniqueid");
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
		if (strv_extend(&names, jstr(svc, "name")) < 0)
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

int sproc_ctl_create(const char *container_dir)
{
	_cleanup_free_ char *e = strdup_printf("%s/" SPROC_CTL_REL "/appevents", container_dir);
	_cleanup_free_ char *t = strdup_printf("%s/" SPROC_CTL_REL "/tombstones", container_dir);
	int r;

	if (!e || !t)
		return -ENOMEM;
	r = mkdir_p(e, 0755);
	return r < 0 ? r : mkdir_p(t, 0755);
}

static bool ctl_event_ok(const char *name, const char *instance)
{
	static const char *const types[] = { "service_running", "service_exited", "aborted" };
	_cleanup_free_ char *copy = strdup(name);
	char *p, *inst, *type;

	if (!copy || !(p = strchr(copy, ',')))
		return false;
	inst = p + 1;
	if (!(p = strchr(inst, ',')))
		return false;
	*p = 0;
	type = p + 1;
	if (!(p = strchr(type, ',')))
		return false;
	*p = 0;
	if (strcmp(inst, instance))
		return false;
	for (size_t i = 0; i < ELEMENTSOF(types); i++)
		if (!strcmp(type, types[i]))
			return true;
	return false;
}

int sproc_ctl_drain(const char *root, const char *unique)
{
	static const char *const kinds[] = { "appevents", "tombstones" };
	_cleanup_free_ char *inst = node_unique_instance(unique);
	int moved = 0;

	if (!inst)
		return -EINVAL;
	for (size_t k = 0; k < ELEMENTSOF(kinds); k++) {
		_cleanup_free_ char *dir = strdup_printf("%s/" NODE_DIR_APPS "/%s/" SPROC_CTL_REL "/%s", root, unique, kinds[k]);
		_cleanup_free_ char *dest = node_path(root, k == 0 ? NODE_DIR_APPEVENTS : NODE_DIR_TOMB_SERVICES);
		_cleanup_strv_free_ char **l = NULL;

		if (!dir || !dest)
			return -ENOMEM;
		if (dir_list(dir, 1, &l) < 0)
			continue;
		for (char **f = l; *f; f++) {
			_cleanup_free_ char *from = strdup_printf("%s/%s", dir, *f), *to = strdup_printf("%s/%s", dest, *f);
			_cleanup_free_ char *id = NULL;
			struct sv_exit e;
			bool ok;

			if (!from || !to)
				return -ENOMEM;
			if (k == 0)
				ok = ctl_event_ok(*f, inst);
			else
				ok = sv_tombstone_parse(*f, &id, &e) == 0 && startswith(id, unique) &&
				     id[strlen(unique)] == ',' && !strchr(id + strlen(unique) + 1, ',');
			if (ok && rename(from, to) == 0)
				moved++;
			else
				(void)unlink(from);
		}
	}
	return moved;
}

int sproc_flag_aborted(const char *container_dir, const char *why, const char *payload)
{
	_cleanup_free_ char *p = strdup_printf("%s/data/aborted", container_dir), *s = NULL;
	json_t *o;

	if (!p)
		return -ENOMEM;
	if (path_exists(p))
		return 0;
	o = json_pack("{s:s, s:s?}", "why", why, "payload", payload);
	if (!o)
		return -ENOMEM;
	s = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT);
	json_decref(o);
	if (!s)
		return -ENOMEM;
	return sv_write_file(p, s, strlen(s), 0644);
}

/* ---- container deaths outside the policy ---- */

char *sproc_exits_history_path(const char *root, const char *instance, const char *service)
{
	return strdup_printf("%s/" NODE_DIR_EXITS "/%s/%s", root, instance, service);
}

/* Add the parsable lines of text to *l, without duplicates. */
static int exit_lines_add(char ***l, const char *text)
{
	_cleanup_free_ char *copy = strdup(text ? text : "");
	char *p, *nl;

	if (!copy)
		return -ENOMEM;
	for (p = copy; *p; p = nl) {
		struct sv_exit e;

		nl = strchr(p, '\n');
		if (nl)
			*nl++ = 0;
		else
			nl = p + strlen(p);
		if (sv_exit_parse(p, &e) < 0 || strv_contains(*l, p))
			continue;
		if (strv_extend(l, p) < 0)
			return -ENOMEM;
	}
	return 0;
}

static char *exit_lines_join(char **l)
{
	size_t len = 1;
	char *out, *o;

	for (char **p = l; *p; p++)
		len += strlen(*p) + 1;
	out = malloc(len);
	if (!out)
		return NULL;
	o = out;
	for (char **p = l; *p; p++) {
		size_t n = strlen(*p);
		memcpy(o, *p, n);
		o[n] = '\n';
		o += n + 1;
	}
	*o = 0;
	return out;
}

int sproc_exitinfo_write(const char *cdir, const char *service, const struct sv_exit *e)
{
	_cleanup_free_ char *p = strdup_printf("%s/data/exitinfo", cdir), *js = NULL;
	_cleanup_close_ int fd = -1;
	json_t *o;

	if (!p)
		return -ENOMEM;
	o = json_pack("{s:s, s:i, s:i, s:f}", "service", service, "return_code", e->rc, "signal", e->sig, "timestamp",
		      e->ts);
	js = o ? json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
	json_decref(o);
	if (!js)
		return -ENOMEM;
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return errno == EEXIST ? 0 : negerrno();
	if (write(fd, js, strlen(js)) != (ssize_t)strlen(js) || fsync(fd) < 0)
		return -EIO;
	return 0;
}

int sproc_container_died(const char *root, const char *unique, const struct sv_exit *e, char **ret_service)
{
	static const char *const flags[] = { "exitinfo", "aborted", "oom", "terminated" };
	_cleanup_free_ char *cdir = node_app_dir(root, unique), *text = NULL, *ev = NULL, *fatal = NULL;
	_cleanup_strv_free_ char **paths = strv_new(), **logs = strv_new(), **counted = strv_new();
	_cleanup_free_ char *line = sv_exit_format(e);
	const char *instance, *uniqueid;
	const json_t *svc;
	json_t *app;
	size_t i;
	int r = 0;

	*ret_service = NULL;
	if (!cdir || !paths || !logs || !counted || !line)
		return -ENOMEM;
	/* a stop that was asked for (s6-svc -d, the node going down) ends with
	 * the container's own status 0; a policy, an abort, an OOM or a
	 * termination has already decided what this exit means */
	if ((e->rc == 0 && e->sig == 0) || !path_exists(cdir))
		return SPROC_DEATH_IGNORED;
	for (i = 0; i < ELEMENTSOF(flags); i++) {
		_cleanup_free_ char *f = strdup_printf("%s/data/%s", cdir, flags[i]);
		if (!f)
			return -ENOMEM;
		if (path_exists(f))
			return SPROC_DEATH_IGNORED;
	}
	{
		_cleanup_free_ char *p = strdup_printf("%s/data/app.json", cdir);
		if (!p)
			return -ENOMEM;
		r = read_file(p, &text, NULL);
		if (r < 0)
			return r == -ENOENT ? SPROC_DEATH_IGNORED : r; /* never configured: nothing ran */
	}
	app = json_loads(text, 0, NULL);
	instance = jstr(app, "name");
	uniqueid = jstr(app, "uniqueid");
	ev = node_path(root, NODE_DIR_APPEVENTS);
	if (!app || !instance || !uniqueid || !ev) {
		json_decref(app);
		return app ? -ENOMEM : SPROC_DEATH_IGNORED;
	}
	json_array_foreach(json_object_get(app, "services"), i, svc) {
		const char *name = jstr(svc, "name");
		const json_t *rs = json_object_get(svc, "restart");
		long long limit = jint(rs, "limit", 5), interval = jint(rs, "interval", 60);
		_cleanup_free_ char *hp = NULL, *hist = NULL, *cp = NULL, *clog = NULL, *merged = NULL, *newlog = NULL;
		_cleanup_strv_free_ char **lines = strv_new();
		int v;

		/* a downed service was not running; a bad name has no files */
		if (!service_name_ok(name) || json_is_true(json_object_get(svc, "downed")) || limit < 0 || interval < 0)
			continue;
		hp = sproc_exits_history_path(root, instance, name);
		cp = strdup_printf("%s/data/services/%s/data/exits/log", cdir, name);
		if (!hp || !cp || !lines) {
			r = -ENOMEM;
			goto out;
		}
		(void)read_file(hp, &hist, NULL);
		/* counted already (the agent died after writing the history) */
		if (hist && exit_lines_add(&lines, hist) == 0 && strv_contains(lines, line))
			continue;
		/* the exits inside this container count too; its log was seeded
		 * from the history, so the union is the instance's history */
		(void)read_file(cp, &clog, NULL);
		if (exit_lines_add(&lines, clog) < 0) {
			r = -ENOMEM;
			goto out;
		}
		strv_sort(lines); /* "%014.3f,...": text order is time order */
		merged = exit_lines_join(lines);
		if (!merged) {
			r = -ENOMEM;
			goto out;
		}
		v = sv_policy_decide(merged, e, (unsigned)limit, (unsigned)interval, &newlog);
		if (v < 0) {
			r = v;
			goto out;
		}
		if (!newlog)
			newlog = strdup_printf("%s\n", line); /* limit 0: the record that it was counted */
		if (!newlog || strv_extend(&paths, hp) < 0 || strv_push(&logs, TAKE_PTR(newlog)) < 0 ||
		    strv_extend(&counted, name) < 0) {
			r = -ENOMEM;
			goto out;
		}
		if (v == SV_FATAL && !fatal && !(fatal = strdup(name))) {
			r = -ENOMEM;
			goto out;
		}
	}
	if (!counted[0]) {
		r = SPROC_DEATH_IGNORED;
		goto out;
	}
	/* 1. the trace: every counted service exited with the container; named
	 * by the exit's time, so posting again after a crash is the same event */
	for (char **n = counted; *n; n++) {
		_cleanup_free_ char *d = strdup_printf("%s.%s.%d.%d", uniqueid, *n, e->rc, e->sig);
		if (!d) {
			r = -ENOMEM;
			goto out;
		}
		r = trace_post_file(ev, e->ts, instance, TRACE_SERVICE_EXITED, d, NULL);
		if (r < 0)
			goto out;
	}
	/* 2. the verdict, before the history that would make it count as done */
	if (fatal) {
		r = sproc_exitinfo_write(cdir, fatal, e);
		if (r < 0)
			goto out;
	}
	/* 3. the history, durable: it must outlive a crash of the node */
	for (i = 0; paths[i]; i++) {
		_cleanup_free_ char *dir = strdup(paths[i]);
		char *slash = dir ? strrchr(dir, '/') : NULL;

		if (!slash) {
			r = -ENOMEM;
			goto out;
		}
		*slash = 0;
		r = mkdir_p(dir, 0755);
		if (r < 0)
			goto out;
		r = write_file_atomic(paths[i], logs[i], strlen(logs[i]), 0644);
		if (r < 0)
			goto out;
	}
	if (fatal) {
		*ret_service = TAKE_PTR(fatal);
		r = SPROC_DEATH_FATAL;
	} else
		r = SPROC_DEATH_RESTART;
out:
	json_decref(app);
	return r;
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

/* ---- run ---- */

/* TREADMILL_* environment of the container (/env), Treadmill's names. */
static int container_env(const json_t *app, const struct node_settings *ns, char ***ret)
{
	static const char *const keys[][2] = {
		{ "TREADMILL_APP", "app" },	  { "TREADMILL_MEMORY", "memory" },   { "TREADMILL_DISK", "disk" },
		{ "TREADMILL_PROID", "proid" },	  { "TREADMILL_ENV", "environment" }, { "TREADMILL_INSTANCEID", "task" },
		{ "TREADMILL_UNIQUEID", "uniqueid" }, { "TREADMILL_IDENTITY_GROUP", "identity_group" },
	};
	_cleanup_strv_free_ char **l = strv_new();
	const json_t *v;
	char *s;

	if (!l)
		return -ENOMEM;
	for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
		const char *val = jstr(app, keys[i][1]);
		if (!val)
			continue;
		s = strdup_printf("%s=%s", keys[i][0], val);
		if (!s || strv_push(&l, s) < 0)
			return -ENOMEM;
	}
	v = json_object_get(app, "cpu");
	if (json_is_integer(v) && ((s = strdup_printf("TREADMILL_CPU=%lld", (long long)json_integer_value(v))) == NULL ||
				   strv_push(&l, s) < 0))
		return -ENOMEM;
	v = json_object_get(app, "identity");
	if (json_is_integer(v) &&
	    ((s = strdup_printf("TREADMILL_IDENTITY=%lld", (long long)json_integer_value(v))) == NULL ||
	     strv_push(&l, s) < 0))
		return -ENOMEM;
	if (ns->cell && *ns->cell && ((s = strdup_printf("TREADMILL_CELL=%s", ns->cell)) == NULL || strv_push(&l, s) < 0))
		return -ENOMEM;
	*ret = TAKE_PTR(l);
	return 0;
}

/* ---- ports (Treadmill's runtime allocate_network_ports) ---- */

#define PORTS_PROD_LO 32768 /* prod and uat */
#define PORTS_NONPROD_LO 40960
#define PORTS_N 8192

/* Bind `port` (0.0.0.0, tcp or udp) and keep the socket: it reserves the
 * port for the container's lifetime.  -EADDRINUSE when taken. */
static int port_reserve(bool tcp, int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int one = 1, fd = socket(AF_INET, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return negerrno();
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || (tcp && listen(fd, 0) < 0)) {
		int r = negerrno();
		close(fd);
		return r;
	}
	return fd;
}

/* A free port of the environment's range, from a random start; its socket
 * stays open (*fd) until the container ends. */
static int port_pick(bool tcp, int lo, int prefer, int *fd)
{
	struct timespec ts;
	int start;

	/* a start of its own per container (random() is unseeded here) */
	clock_gettime(CLOCK_REALTIME, &ts);
	start = (int)(((uint64_t)getpid() * 2654435761u ^ (uint64_t)ts.tv_nsec) % PORTS_N);

	if (prefer > 0 && (*fd = port_reserve(tcp, prefer)) >= 0)
		return prefer; /* the same container started again keeps its ports */
	for (int i = 0; i < PORTS_N; i++) {
		int port = lo + (start + i) % PORTS_N;

		*fd = port_reserve(tcp, port);
		if (*fd >= 0)
			return port;
		if (*fd != -EADDRINUSE && *fd != -EACCES)
			return *fd;
	}
	return -EADDRNOTAVAIL;
}

struct port_fds {
	int *v;
	size_t n, cap;
};

/* port_pick, keeping the reserving socket in *l. */
static int port_take(struct port_fds *l, bool tcp, int lo, int prefer)
{
	int port, fd;

	if (l->n == l->cap) {
		int *t = reallocarray(l->v, l->cap * 2 + 4, sizeof(int));

		if (!t)
			return -ENOMEM;
		l->v = t;
		l->cap = l->cap * 2 + 4;
	}
	port = port_pick(tcp, lo, prefer, &fd);
	if (port >= 0)
		l->v[l->n++] = fd;
	return port;
}

/* Give every endpoint a real_port (port 0 means: the same as real_port) and
 * ephemeral_ports their lists, tcp then udp; data/app.json is rewritten.
 * The reserving sockets are returned in *fds (shared_network: closed before
 * the container starts, so the app can bind them). */
static int ports_allocate(json_t *app, int **ret_fds, size_t *ret_n, struct error *err)
{
	const char *env = jstr(app, "environment");
	int lo = env && (!strcmp(env, "prod") || !strcmp(env, "uat")) ? PORTS_PROD_LO : PORTS_NONPROD_LO;
	json_t *eph = json_object_get(app, "ephemeral_ports"), *neweph = json_object(), *ep;
	struct port_fds fds = {};
	_cleanup_free_ char *out = NULL;
	size_t i;
	int r;

	if (!neweph)
		return error_sys(err, ENOMEM, "ports");
	for (int t = 0; t < 2; t++) {
		const char *proto = t == 0 ? "tcp" : "udp";
		json_t *had = json_object_get(eph, proto), *list = json_array();
		size_t k = 0, need = json_is_integer(had) ? (size_t)json_integer_value(had)
						 : json_is_array(had) ? json_array_size(had) : 0;

		if (!list || json_object_set_new(neweph, proto, list) < 0)
			goto oom;
		json_array_foreach(json_object_get(app, "endpoints"), i, ep) {
			const char *p = jstr(ep, "proto");
			int port;

			if (strcmp(p ? p : "tcp", proto))
				continue;
			port = port_take(&fds, t == 0, lo, (int)json_integer_value(json_object_get(ep, "real_port")));
			if (port < 0) {
				r = error_set(err, ERR_TEMP, -port, "no free %s port for endpoint %s: %s", proto,
					      jstr(ep, "name") ? jstr(ep, "name") : "?", strerror(-port));
				goto fail;
			}
			if (json_object_set_new(ep, "real_port", json_integer(port)) < 0 ||
			    (json_integer_value(json_object_get(ep, "port")) == 0 &&
			     json_object_set_new(ep, "port", json_integer(port)) < 0))
				goto oom;
		}
		for (k = 0; k < need; k++) {
			json_t *old = json_is_array(had) ? json_array_get(had, k) : NULL;
			int port = port_take(&fds, t == 0, lo, old ? (int)json_integer_value(old) : 0);

			if (port < 0) {
				r = error_set(err, ERR_TEMP, -port, "no free ephemeral %s port: %s", proto, strerror(-port));
				goto fail;
			}
			if (json_array_append_new(list, json_integer(port)) < 0)
				goto oom;
		}
	}
	if (json_object_set_new(app, "ephemeral_ports", neweph) < 0) {
		neweph = NULL;
		goto oom;
	}
	neweph = NULL;
	out = json_dumps(app, JSON_SORT_KEYS | JSON_INDENT(1));
	if (!out || (r = write_file_atomic("data/app.json", out, strlen(out), 0644)) < 0) {
		r = error_sys(err, out ? -r : ENOMEM, "writing data/app.json");
		goto fail;
	}
	*ret_fds = fds.v;
	*ret_n = fds.n;
	return 0;
oom:
	r = error_sys(err, ENOMEM, "ports");
fail:
	json_decref(neweph);
	for (i = 0; i < fds.n; i++)
		close(fds.v[i]);
	free(fds.v);
	return r;
}

/* TREADMILL_ENDPOINT_<NAME> and TREADMILL_EPHEMERAL_{TCP,UDP}_PORTS. */
static int ports_env(const json_t *app, char ***env)
{
	const json_t *ep;
	size_t i;

	json_array_foreach(json_object_get(app, "endpoints"), i, ep) {
		const char *name = jstr(ep, "name");
		char *s;

		if (!name)
			continue;
		s = strdup_printf("TREADMILL_ENDPOINT_%s=%lld", name,
				  (long long)json_integer_value(json_object_get(ep, "real_port")));
		if (!s)
			return -ENOMEM;
		for (char *c = s + strlen("TREADMILL_ENDPOINT_"); *c != '='; c++)
			*c = (char)(*c == '-' ? '_' : toupper((unsigned char)*c));
		if (strv_push(env, s) < 0)
			return -ENOMEM;
	}
	for (int t = 0; t < 2; t++) {
		const json_t *list = json_object_get(json_object_get(app, "ephemeral_ports"), t == 0 ? "tcp" : "udp");
		_cleanup_free_ char *v = strdup("");
		const json_t *x;
		char *s;

		json_array_foreach(list, i, x) {
			char *nv = v ? strdup_printf("%s%s%lld", v, *v ? " " : "", (long long)json_integer_value(x)) : NULL;
			free(v);
			v = nv;
		}
		s = v ? strdup_printf("TREADMILL_EPHEMERAL_%s_PORTS=%s", t == 0 ? "TCP" : "UDP", v) : NULL;
		if (!s || strv_push(env, s) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* Services may run as root (no proid check) only if every one is root. */
static bool all_root(const json_t *app)
{
	const json_t *svc;
	size_t i;

	json_array_foreach(json_object_get(app, "services"), i, svc)
		if (!json_is_true(json_object_get(svc, "root")))
			return false;
	return true;
}

int sproc_run(const struct node_settings *ns, struct error *err)
{
	_cleanup_free_ char *cwd = getcwd(NULL, 0), *text = NULL;
	_cleanup_strv_free_ char **env = NULL;
	_cleanup_free_ int *port_fds = NULL; /* held open: they reserve the ports */
	size_t nport_fds = 0;
	struct container_config cfg = { 0 };
	const char *unique, *type, *mem, *disk;
	json_error_t jerr;
	json_t *app;
	uint64_t v;
	int r;

	if (!cwd)
		return error_sys(err, errno, "getcwd");
	unique = strrchr(cwd, '/') ? strrchr(cwd, '/') + 1 : cwd;
	(void)unlink("data/container.json"); /* from an earlier run of this container dir */
	(void)touch("data/run-started");      /* the agent's setup timeout counts from here too */
	r = read_file("data/app.json", &text, NULL);
	if (r < 0) {
		_cleanup_free_ char *m = strdup_printf("reading data/app.json: %s", strerror(-r));
		(void)sproc_flag_aborted(".", "unknown", m);
		return error_sys(err, -r, "reading data/app.json");
	}
	app = json_loads(text, 0, &jerr);
	if (!app) {
		(void)sproc_flag_aborted(".", "unknown", jerr.text);
		return error_set(err, ERR_PERM, 0, "data/app.json: %s", jerr.text);
	}
	type = jstr(app, "type");
	if (type && strcmp(type, "native") && strcmp(type, "tar")) {
		(void)sproc_flag_aborted(".", "invalid_type", type);
		r = error_set(err, ERR_PERM, 0, "unsupported app type '%s'", type);
		goto out;
	}
	r = ports_allocate(app, &port_fds, &nport_fds, err);
	if (r < 0) {
		(void)sproc_flag_aborted(".", "ports", err->msg);
		goto out;
	}
	r = sproc_services_write(ns, cwd, app, err);
	if (r < 0) {
		(void)sproc_flag_aborted(".", "unknown", err->msg);
		goto out;
	}
	if (container_env(app, ns, &env) < 0 || ports_env(app, &env) < 0 || sproc_ctl_create(cwd) < 0) {
		r = error_sys(err, ENOMEM, "sproc run");
		goto out;
	}
	cfg.container_dir = cwd;
	cfg.instance = jstr(app, "name");
	cfg.unique_name = unique;
	cfg.uniqueid = jstr(app, "uniqueid");
	cfg.proid = jstr(app, "proid");
	cfg.root = all_root(app);
	mem = jstr(app, "memory");
	if (mem && parse_size(mem, &v) == 0)
		cfg.memory_bytes = v;
	if (json_is_integer(json_object_get(app, "cpu")) && json_integer_value(json_object_get(app, "cpu")) > 0)
		cfg.cpu_percent = (unsigned)json_integer_value(json_object_get(app, "cpu"));
	disk = jstr(app, "disk");
	if (disk && parse_size(disk, &v) == 0)
		cfg.disk_bytes = v;
	cfg.image = jstr(app, "image");
	cfg.shared_network = json_is_true(json_object_get(app, "shared_network"));
	if (cfg.shared_network) {
		/* the app binds its ports itself, in the host's network */
		for (size_t i = 0; i < nport_fds; i++)
			close(port_fds[i]);
		nport_fds = 0;
	}
	cfg.env = env;
	cfg.node_root = ns->root;
	cfg.cgroup_root = ns->cgroup_root;
	cfg.setup_timeout_ms = (uint64_t)ns->setup_timeout_s * 1000;
	cfg.pids_max = ns->pids_max;
	cfg.disk_read_bps = ns->disk_read_bps;
	cfg.disk_write_bps = ns->disk_write_bps;
	printf("treadle sproc run: %s: starting the container\n", unique);
	fflush(stdout);
	r = container_run(&cfg, err); /* returns only on failure; data/aborted is written */
out:
	json_decref(app);
	return r < 0 ? r : -1;
}

/* ---- cleanup ---- */

int sproc_terminal_event(const char *data_dir, char **ret_type, char **ret_data, char **ret_payload)
{
	_cleanup_free_ char *p = NULL, *text = NULL;
	json_t *o;

	*ret_type = *ret_data = *ret_payload = NULL;
	p = strdup_printf("%s/aborted", data_dir);
	if (!p)
		return -ENOMEM;
	if (read_file(p, &text, NULL) == 0) {
		const char *why = NULL, *payload = NULL;

		o = json_loads(text, 0, NULL);
		if (o) {
			why = jstr(o, "why");
			payload = jstr(o, "payload");
		}
		*ret_type = strdup("aborted");
		*ret_data = strdup(why && *why && !strchr(why, '/') && !strchr(why, ',') ? why : "unknown");
		*ret_payload = payload ? strdup(payload) : NULL;
		json_decref(o);
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
		long long rc = 256, sig = 256;

		o = json_loads(text, 0, NULL);
		if (o) {
			rc = jint(o, "return_code", 256);
			sig = jint(o, "signal", 256);
		}
		json_decref(o);
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

int sproc_archives_prune(const char *root, uint64_t cap_bytes)
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

static bool any_supervised(const char *cdir)
{
	_cleanup_free_ char *log = strdup_printf("%s/log", cdir);

	return sv_is_supervised(cdir) || (log && sv_is_supervised(log));
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

int sproc_cleanup(const struct node_settings *ns, const char *unique, struct error *err)
{
	_cleanup_free_ char *cdir = node_app_dir(ns->root, unique), *link = node_cleanup_link(ns->root, unique);
	_cleanup_free_ char *data = NULL, *marker = NULL, *inst = NULL, *ev = NULL, *run = NULL;
	_cleanup_close_ int lock_fd = -1;
	uint64_t deadline;
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
	deadline = now_monotonic_ms() + 60000;
	for (unsigned i = 0; any_supervised(cdir); i++) {
		if (now_monotonic_ms() > deadline)
			return error_set(err, ERR_TEMP, 0, "%s is still supervised", cdir);
		if (i % 20 == 19) { /* still there after 2 s: tell supervise to bring it down and exit */
			_cleanup_free_ char *log = strdup_printf("%s/log", cdir);
			(void)sv_control(cdir, "dx");
			if (log)
				(void)sv_control(log, "dx");
		}
		if (i == 50) { /* 5 s: whatever is left of the container goes */
			struct error e2 = ERROR_INIT;
			(void)container_cleanup(ns->root, ns->cgroup_root, unique, &e2);
			error_clear(&e2);
		}
		usleep(100000);
	}
	/* 2. an OOM kill the agent's eventfd has not reported yet (the service can
	 * exit, and its container go down, before the event is read): the
	 * cgroup's own counter decides, before the cgroup goes */
	mark_oom(ns, unique, cdir);
	/* 3. cgroups (kills leftovers), loop device, volume */
	r = container_cleanup(ns->root, ns->cgroup_root, unique, err);
	if (r < 0)
		return error_prefix(err, "cleanup of %s", unique);
	/* 4. what its services posted last (their final service_exited events) */
	(void)sproc_ctl_drain(ns->root, unique);
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
