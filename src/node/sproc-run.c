/* sproc-run.c: `treadle sproc run`: services, ports, then container_run(). */
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
		const char *val = sproc_jstr(app, keys[i][1]);
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
	/* the placement's identity and the group's size (the cache merged them in) */
	for (size_t i = 0; i < 2; i++) {
		static const char *const ik[][2] = { { "TREADMILL_IDENTITY", "identity" },
						     { "TREADMILL_IDENTITY_COUNT", "identity_count" } };

		v = json_object_get(app, ik[i][1]);
		if (json_is_integer(v) &&
		    ((s = strdup_printf("%s=%lld", ik[i][0], (long long)json_integer_value(v))) == NULL ||
		     strv_push(&l, s) < 0))
			return -ENOMEM;
	}
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
	const char *env = sproc_jstr(app, "environment");
	int lo = env && (!strcmp(env, "prod") || !strcmp(env, "uat")) ? PORTS_PROD_LO : PORTS_NONPROD_LO;
	json_t *eph = json_object_get(app, "ephemeral_ports"), *ep;
	_cleanup_json_ json_t *neweph = json_object();
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
			const char *p = sproc_jstr(ep, "proto");
			int port;

			if (strcmp(p ? p : "tcp", proto))
				continue;
			port = port_take(&fds, t == 0, lo, (int)json_integer_value(json_object_get(ep, "real_port")));
			if (port < 0) {
				r = error_set(err, ERR_TEMP, -port, "no free %s port for endpoint %s: %s", proto,
					      sproc_jstr(ep, "name") ? sproc_jstr(ep, "name") : "?", strerror(-port));
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
	if (json_object_set_new(app, "ephemeral_ports", TAKE_PTR(neweph)) < 0)
		goto oom;
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
		const char *name = sproc_jstr(ep, "name");
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

static int env_extend(char ***env, char *const *more)
{
	for (size_t i = 0; more && more[i]; i++)
		if (strv_extend(env, more[i]) < 0)
			return -ENOMEM;
	return 0;
}

/* The hooks' configure (docs/HOOKS.md): their system services join the
 * manifest's in memory (data/app.json keeps the manifest's own). */
/* Is hook `name` in the node's "a,b" list? */
static bool hook_on(const struct node_settings *ns, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = ns->hooks; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
		if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == 0))
			return true;
	return false;
}

static int sproc_run_hooks(const struct node_settings *ns, const char *cwd, json_t *app, struct sproc_hooks *h,
			   struct error *err)
{
	const char *why = "unknown";
	const json_t *svc;
	size_t i;

	/* credentials asked for on a node that cannot give them: said in the container's log, not silently dropped */
	if (json_array_size(json_object_get(app, "tickets")) > 0 && !hook_on(ns, "tickets"))
		printf("treadle sproc run: %s: warning: the manifest asks for tickets, but this node has no 'tickets' hook "
		       "(cell up --hooks): starting without them\n", sproc_jstr(app, "name"));
	if (json_array_size(json_object_get(app, "keytabs")) > 0 && !hook_on(ns, "krb5keytab"))
		printf("treadle sproc run: %s: warning: the manifest asks for keytabs, but this node has no 'krb5keytab' "
		       "hook (cell up --hooks): starting without them\n", sproc_jstr(app, "name"));

	if (sproc_hooks_configure(ns, cwd, app, h, &why, err) < 0) {
		(void)sproc_flag_aborted(".", why, err->msg);
		return -1;
	}
	json_array_foreach(h->services, i, svc)
		if (json_array_append(json_object_get(app, "services"), (json_t *)svc) < 0)
			return error_sys(err, ENOMEM, "hooks");
	return 0;
}

static int run(const struct node_settings *ns, struct error *err)
{
	_cleanup_free_ char *cwd = getcwd(NULL, 0), *text = NULL;
	_cleanup_strv_free_ char **env = NULL;
	_cleanup_free_ int *port_fds = NULL; /* held open: they reserve the ports */
	size_t nport_fds = 0;
	struct container_config cfg = { 0 };
	_cleanup_free_ struct container_bind *binds = NULL; /* ours (up to 4), then the hooks' */
	_cleanup_free_ char *ready = NULL, *aliases = NULL, *preload_so = NULL, *preload = NULL;
	bool checks = false;
	struct sproc_net net = { 0 };
	_cleanup_(sproc_hooks_clear) struct sproc_hooks hooks = { 0 };
	const char *unique, *type, *mem, *disk;
	json_error_t jerr;
	_cleanup_json_ json_t *app = NULL;
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
	type = sproc_jstr(app, "type");
	if (type && strcmp(type, "native") && strcmp(type, "tar")) {
		(void)sproc_flag_aborted(".", "invalid_type", type);
		r = error_set(err, ERR_PERM, 0, "unsupported app type '%s'", type);
		goto out;
	}
	/* the VIP first: app.json gains "network" and "vip" (written by ports_allocate) */
	r = sproc_net_prepare(ns, app, unique, &net, err);
	if (r < 0) {
		(void)sproc_flag_aborted(".", "network", err->msg);
		goto out;
	}
	r = ports_allocate(app, &port_fds, &nport_fds, err);
	if (r < 0) {
		(void)sproc_flag_aborted(".", "ports", err->msg);
		goto out;
	}
	r = sproc_net_commit(ns, app, unique, &net, err);
	if (r < 0) {
		(void)sproc_flag_aborted(".", "network", err->msg);
		goto out;
	}
	r = sproc_run_hooks(ns, cwd, app, &hooks, err);
	if (r < 0)
		goto out;
	r = sproc_services_write(ns, cwd, app, err);
	if (r >= 0)
		r = sproc_system_services_write(cwd, app, err);
	if (r < 0) {
		(void)sproc_flag_aborted(".", "unknown", err->msg);
		goto out;
	}
	/* readiness files, host aliases, the bind preload (private network): binds of data/ into the root */
	ready = strdup_printf("%s/" SPROC_READY_REL, cwd);
	aliases = strdup_printf("%s/" SPROC_ALIASES_REL, cwd);
	preload = strdup_printf("%s/" SPROC_PRELOAD_REL, cwd);
	if (!ready || !aliases || !preload) {
		r = error_sys(err, ENOMEM, "sproc run");
		goto out;
	}
	r = sproc_ready_prepare(cwd, app, &checks);
	if (r < 0)
		r = error_sys(err, -r, "%s", ready);
	if (r >= 0)
		r = sproc_aliases_prepare(ns, app, cwd, err);
	if (r < 0) {
		(void)sproc_flag_aborted(".", "unknown", err->msg);
		goto out;
	}
	if (net.on && !net.shared_network) {
		/* without it (e.g. a read-only host /etc) the app runs, its binds to port 0 as the kernel picks */
		if (sproc_preload_prepare(ns, cwd, &preload_so, err) < 0) {
			printf("treadle sproc run: %s: no bind preload: %s\n", unique, err->msg);
			error_clear(err);
		} else if (!preload_so)
			printf("treadle sproc run: %s: no bind preload (no lib/treadle-bind.so beside %s)\n", unique,
			       ns->treadle_bin);
	}
	binds = calloc(4 + hooks.n_binds, sizeof(*binds));
	if (!binds) {
		r = error_sys(err, ENOMEM, "sproc run");
		goto out;
	}
	if (checks)
		binds[cfg.n_binds++] = (struct container_bind){ ready, "/run/tm_ready", false };
	binds[cfg.n_binds++] = (struct container_bind){ aliases, "/run/host-aliases", false };
	if (preload_so) {
		binds[cfg.n_binds++] = (struct container_bind){ preload_so, SPROC_PRELOAD_IN, true };
		binds[cfg.n_binds++] = (struct container_bind){ preload, "/etc/ld.so.preload", true };
	}
	for (size_t i = 0; i < hooks.n_binds; i++)
		binds[cfg.n_binds++] = hooks.binds[i];
	cfg.binds = binds;
	if (container_env(app, ns, &env) < 0 || ports_env(app, &env) < 0 || sproc_net_env(ns, &net, &env) < 0 ||
	    env_extend(&env, hooks.env) < 0 || sproc_ctl_create(cwd) < 0) {
		r = error_sys(err, ENOMEM, "sproc run");
		goto out;
	}
	cfg.container_dir = cwd;
	cfg.instance = sproc_jstr(app, "name");
	cfg.unique_name = unique;
	cfg.uniqueid = sproc_jstr(app, "uniqueid");
	cfg.proid = sproc_jstr(app, "proid");
	cfg.root = all_root(app);
	mem = sproc_jstr(app, "memory");
	if (mem && parse_size(mem, &v) == 0)
		cfg.memory_bytes = v;
	if (json_is_integer(json_object_get(app, "cpu")) && json_integer_value(json_object_get(app, "cpu")) > 0)
		cfg.cpu_percent = (unsigned)json_integer_value(json_object_get(app, "cpu"));
	disk = sproc_jstr(app, "disk");
	if (disk && parse_size(disk, &v) == 0)
		cfg.disk_bytes = v;
	cfg.image = sproc_jstr(app, "image");
	cfg.shared_network = json_is_true(json_object_get(app, "shared_network"));
	if (cfg.shared_network) {
		/* the app binds its ports itself, in the host's network */
		for (size_t i = 0; i < nport_fds; i++)
			close(port_fds[i]);
		nport_fds = 0;
	}
	if (net.on && !net.shared_network) {
		cfg.net_setup = sproc_net_setup;
		cfg.net_ud = &net;
		if (net.mode == NET_PRIVATE)
			cfg.hosts_host_ip = ns->net_external_ip;
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
	return r < 0 ? r : -1;
}

int sproc_run(const char *root, struct error *err)
{
	_cleanup_json_ json_t *owner = NULL;
	struct node_settings ns;

	if (sproc_settings_read(root, &ns, &owner, err) < 0) {
		(void)sproc_flag_aborted(".", "unknown", err->msg);
		return -1;
	}
	return run(&ns, err);
}
