/* sproc-death.c: a container that died outside its services' restart policy. */
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

/* ---- container deaths outside the policy ---- */

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
	_cleanup_json_ json_t *o = NULL;

	if (!p)
		return -ENOMEM;
	o = json_pack("{s:s, s:i, s:i, s:f}", "service", service, "return_code", e->rc, "signal", e->sig, "timestamp",
		      e->ts);
	js = o ? json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
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
	_cleanup_json_ json_t *app = NULL;
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
	instance = sproc_jstr(app, "name");
	uniqueid = sproc_jstr(app, "uniqueid");
	ev = node_path(root, NODE_DIR_APPEVENTS);
	if (!app || !instance || !uniqueid || !ev)
		return app ? -ENOMEM : SPROC_DEATH_IGNORED;
	json_array_foreach(json_object_get(app, "services"), i, svc) {
		const char *name = sproc_jstr(svc, "name");
		const json_t *rs = json_object_get(svc, "restart");
		long long limit = sproc_jint(rs, "limit", 5), interval = sproc_jint(rs, "interval", 60);
		_cleanup_free_ char *hp = NULL, *hist = NULL, *cp = NULL, *clog = NULL, *merged = NULL, *newlog = NULL;
		_cleanup_strv_free_ char **lines = strv_new();
		int v;

		/* a downed service was not running; a bad name has no files */
		if (!sproc_service_name_ok(name) || json_is_true(json_object_get(svc, "downed")) || limit < 0 || interval < 0)
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
	return r;
}
