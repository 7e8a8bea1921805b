/* agent-conts.c: the agent's containers: bookkeeping, their /running and
 * /endpoints nodes, the store watches and the server's registration. */
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
#include "../basic/json.h"
#include "../basic/util.h"
#include "../cellns/cellns.h"
#include "../cgroup/cg.h"
#include "../manifest/manifest.h"
#include "../store/store.h"
#include "../supervisor/supervisor.h"
#include "../trace/trace.h"
#include "node-internal.h"

/* ---- container bookkeeping ---- */

struct cont *agent_cont_find(struct agent *a, const char *unique)
{
	for (size_t i = 0; i < a->n_conts; i++)
		if (!strcmp(a->conts[i]->unique, unique))
			return a->conts[i];
	return NULL;
}

struct cont *agent_cont_get(struct agent *a, const char *unique)
{
	struct cont *c = agent_cont_find(a, unique), **t;
	_cleanup_free_ char *app = NULL;
	struct stat st;

	if (c)
		return c;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->unique = strdup(unique);
	c->instance = node_unique_instance(unique);
	c->oom_fd = -1;
	c->wd_ctl[0] = c->wd_ctl[1] = -1;
	c->d_ctl = true;
	a->d_ctl = true;
	t = realloc(a->conts, (a->n_conts + 1) * sizeof(*t));
	if (!c->unique || !c->instance || !t) {
		free(c->unique);
		free(c->instance);
		free(c);
		if (t)
			a->conts = t;
		return NULL;
	}
	a->conts = t;
	a->conts[a->n_conts++] = c;
	app = strdup_printf("%s/%s/data/app.json", a->p_apps, unique);
	c->configured_at = app && stat(app, &st) == 0 ? (double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec * 1e-9
						      : now_realtime();
	/* a container found at start-up gets a full setup window from then:
	 * after a node restart its run starts again when s6 gets to it */
	if (c->configured_at < a->started_at)
		c->configured_at = a->started_at;
	return c;
}

void agent_cont_close_oom(struct agent *a, struct cont *c)
{
	if (c->oom_fd >= 0) {
		epoll_ctl(a->epfd, EPOLL_CTL_DEL, c->oom_fd, NULL);
		close(c->oom_fd);
		c->oom_fd = -1;
	}
}

static void cont_unwatch(struct agent *a, struct cont *c)
{
	for (int k = 0; k < 2; k++)
		if (c->wd_ctl[k] >= 0) {
			inotify_rm_watch(a->inofd, c->wd_ctl[k]);
			c->wd_ctl[k] = -1;
		}
}

/* Watch the container's spool dirs (once they exist). */
void agent_cont_watch(struct agent *a, struct cont *c)
{
	static const char *const kinds[] = { "appevents", "tombstones" };

	for (int k = 0; k < 2; k++) {
		_cleanup_free_ char *d = NULL;

		if (c->wd_ctl[k] >= 0)
			continue;
		d = strdup_printf("%s/%s/" SPROC_CTL_REL "/%s", a->p_apps, c->unique, kinds[k]);
		if (!d)
			return;
		c->wd_ctl[k] = inotify_add_watch(a->inofd, d, IN_MOVED_TO | IN_CLOSE_WRITE | IN_ONLYDIR);
		if (c->wd_ctl[k] >= 0)
			c->d_ctl = a->d_ctl = true; /* drain what came before the watch */
	}
}

void agent_ctl_sync(struct agent *a)
{
	for (size_t i = 0; i < a->n_conts; i++) {
		struct cont *c = a->conts[i];
		int n;

		if (!c->d_ctl)
			continue;
		c->d_ctl = false;
		n = sproc_ctl_drain(a->o->root, c->unique);
		if (n > 0)
			a->d_events = a->d_tomb = true;
	}
}

void agent_cont_remove(struct agent *a, struct cont *c)
{
	cont_unwatch(a, c);
	for (size_t i = 0; i < a->n_conts; i++)
		if (a->conts[i] == c) {
			a->conts[i] = a->conts[--a->n_conts];
			break;
		}
	agent_cont_close_oom(a, c);
	agent_discovery_forget(c);
	free(c->id_group);
	free(c->unique);
	free(c->instance);
	strv_free(c->endpoints);
	free(c);
}

/* /running/<instance> and the endpoints: published when a container's
 * services start, ephemeral. */
void agent_running_unpublish(struct agent *a, struct cont *c)
{
	agent_identity_unpublish(a, c); /* also held by a container not yet fully published */
	if (!c->published)
		return;
	if (a->store) {
		(void)cellns_running_delete(a->store, c->instance);
		for (char **e = c->endpoints; e && *e; e++)
			(void)cellns_endpoint_delete(a->store, *e);
	}
	strv_free(c->endpoints);
	c->endpoints = NULL;
	c->published = false;
	agent_discovery_changed(a);
}

/* Treadmill's presence: /endpoints/<proid>/<app>#<n>:<proto>:<name> =
 * "<host>:<real_port>" for every endpoint of the container's app.json (real
 * ports are given by sproc run before the services start). */
static int endpoints_publish(struct agent *a, struct cont *c)
{
	_cleanup_free_ char *f = strdup_printf("%s/%s/data/app.json", a->p_apps, c->unique), *text = NULL;
	_cleanup_strv_free_ char **paths = strv_new();
	_cleanup_json_ json_t *app = NULL;
	json_t *ep;
	size_t i;
	int r = 0;

	if (!f || !paths)
		return -ENOMEM;
	if (read_file(f, &text, NULL) < 0 || !(app = json_loads(text, 0, NULL)))
		return 0; /* nothing to publish */
	if (!json_string_value(json_object_get(app, "proid")) || !strchr(c->instance, '.'))
		return 0;
	json_array_foreach(json_object_get(app, "endpoints"), i, ep) {
		const char *name = json_string_value(json_object_get(ep, "name"));
		const char *proto = json_string_value(json_object_get(ep, "proto"));
		json_int_t port = json_integer_value(json_object_get(ep, "real_port"));
		_cleanup_free_ char *p = NULL, *v = NULL;

		if (!name || port <= 0)
			continue;
		v = strdup_printf("%s:%lld", a->o->hostname, (long long)port);
		if (!v) {
			r = -ENOMEM;
			break;
		}
		r = cellns_endpoint_publish(a->store, c->instance, proto ? proto : "tcp", name, v, &p);
		if (r < 0 || strv_push(&paths, TAKE_PTR(p)) < 0)
			break;
	}
	if (r == 0) {
		strv_free(c->endpoints);
		c->endpoints = TAKE_PTR(paths);
	}
	return r;
}

void agent_running_publish(struct agent *a, struct cont *c)
{
	if (c->published)
		return;
	/* else: a previous session's node (or the previous holder of its
	 * identity) still exists; retried every tick */
	if (agent_identity_publish(a, c) < 0 || endpoints_publish(a, c) < 0 ||
	    cellns_running_publish(a->store, c->instance, a->o->hostname) < 0)
		return;
	c->published = true;
	agent_discovery_changed(a);
	a->d_vring = true; /* its vring, now that its network is up */
	LOG("%s: running (%s)", c->instance, c->unique);
}

/* ---- store watches ---- */

void agent_placement_watch(struct store *s, enum store_event ev, const char *path, void *ud)
{
	struct agent *a = ud;

	a->d_placement = true;
}

void agent_session_watch(struct store *s, enum store_event ev, const char *path, void *ud)
{
	struct agent *a = ud;

	if (store_state(s) == STORE_EXPIRED)
		a->expired = true;
	a->d_placement = true;
}

/* ---- registration ---- */

int agent_register_server(struct agent *a, struct error *err)
{
	_cleanup_free_ char *mem = NULL, *cpu = NULL, *disk = NULL, *meminfo = NULL;
	unsigned long long mem_mb = 0, disk_mb = 0;
	struct statvfs vfs;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int r;

	if (read_file("/proc/meminfo", &meminfo, NULL) == 0) {
		char *m = strstr(meminfo, "MemTotal:");
		if (m)
			mem_mb = strtoull(m + 9, NULL, 10) / 1024;
	}
	if (statvfs(a->o->root, &vfs) == 0)
		disk_mb = (unsigned long long)vfs.f_bavail * vfs.f_frsize / (1024 * 1024);
	mem = strdup_printf("%lluM", mem_mb);
	cpu = strdup_printf("%ld%%", (ncpu > 0 ? ncpu : 1) * 100);
	disk = strdup_printf("%lluM", disk_mb);
	if (!mem || !cpu || !disk)
		return error_sys(err, ENOMEM, "registering");
	r = cellns_server_register(a->store, a->o->hostname, mem, cpu, disk, now_realtime());
	if (r < 0)
		return error_set(err, ERR_TEMP, -r, "registering server %s: %s", a->o->hostname, store_strerror(r));
	return 0;
}

/* The ephemeral presence of this server; tolerate a previous
 * session's node (it goes when that session ends; retried every tick). */
void agent_presence_ensure(struct agent *a)
{
	const char *host = a->o->hostname;
	int r;

	if (cellns_blackout_server_exists(a->store, host, NULL, NULL) == 0)
		goto create; /* checked below, with the presence gone */
	r = cellns_presence_exists(a->store, host, NULL, agent_placement_watch, a);
	if (r == 0) {
		a->presence_ok = true;
		return;
	}
create:
	/* A blacked-out server stays away (Treadmill: admin blackout deletes the
	 * presence; init refuses to register); the watch brings it back when the
	 * blackout is cleared. */
	if (cellns_blackout_server_exists(a->store, host, agent_placement_watch, a) == 0) {
		if (a->presence_ok || !a->blackout_logged)
			LOG("%s is blacked out: not registering presence", host);
		(void)cellns_presence_delete(a->store, host);
		a->blackout_logged = true;
		a->blackedout = true;
		a->presence_ok = false;
		agent_net_blackout(a, true);
		return;
	}
	a->blackout_logged = false;
	a->blackedout = false;
	agent_net_blackout(a, false);
	r = cellns_presence_create(a->store, host);
	if (r == 0 || r == -EEXIST) {
		a->presence_ok = true;
		(void)cellns_presence_exists(a->store, host, NULL, agent_placement_watch, a);
		if (r == 0)
			LOG("registered %s", host);
	} else
		a->presence_ok = false;
}
