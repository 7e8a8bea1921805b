/* cell.c: a server of a cell (single-machine or on ZooKeeper): up / down / status. */
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "../basic/fileio.h"
#include "../basic/json.h"
#include "../basic/util.h"
#include "../cellns/cellns.h"
#include "../cgroup/cg.h"
#include "../container/container.h"
#include "../net/net.h"
#include "../store/store.h"
#include "../supervisor/supervisor.h"
#include "cell.h"

static const char *const services[] = { "master", "node", "running", "api" };

static char *path_join(const char *a, const char *b)
{
	return strdup_printf("%s/%s", a, b);
}

/* Next field of *p separated by any char of seps (runs of them skipped);
 * NULL at the end.  Modifies the string, like strsep without empty fields. */
static char *next_field(char **p, const char *seps)
{
	char *start;

	if (!*p)
		return NULL;
	*p += strspn(*p, seps);
	if (!**p) {
		*p = NULL;
		return NULL;
	}
	start = *p;
	*p += strcspn(*p, seps);
	if (**p)
		*(*p)++ = 0;
	else
		*p = NULL;
	return start;
}

static int pidfd_open(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int min_ms(uint64_t deadline, int cap)
{
	uint64_t now = now_monotonic_ms();

	return now >= deadline ? 0 : deadline - now < (uint64_t)cap ? (int)(deadline - now) : cap;
}

/* Does the s6-svscan of scan dir `dir` run?  (Its control FIFO has a reader;
 * writing nothing only opens it.) */
static bool svscan_running(const char *dir)
{
	return sv_svscan_control(dir, "") == 0;
}

int cell_roles_parse(const char *s, unsigned *ret)
{
	_cleanup_free_ char *copy = strdup(s);
	char *cur = copy, *f;
	unsigned roles = 0, bit;

	if (!copy)
		return -ENOMEM;
	while ((f = next_field(&cur, ","))) {
		if (strcmp(f, "master") == 0)
			bit = CELL_ROLE_MASTER;
		else if (strcmp(f, "node") == 0)
			bit = CELL_ROLE_NODE;
		else
			return -EINVAL;
		if (roles & bit)
			return -EINVAL;
		roles |= bit;
	}
	if (!roles)
		return -EINVAL;
	*ret = roles;
	return 0;
}

static const char *roles_name(unsigned roles)
{
	return roles == CELL_ROLE_MASTER ? "master" : roles == CELL_ROLE_NODE ? "node" : "master,node";
}

static int write_script(const char *path, const char *text)
{
	return write_file_atomic(path, text, strlen(text), 0755);
}

/* Service dir svcdir/name running argv (exec'ed; mkdir_first created
 * before, may be NULL) with its s6-log into logdir/name. */
static int write_service(const char *svcdir, const char *logdir, const char *name, char *const *argv,
			 const char *mkdir_first, struct error *err)
{
	_cleanup_free_ char *dir = path_join(svcdir, name), *logsvc = NULL, *run = NULL, *logrun = NULL;
	_cleanup_free_ char *script = NULL, *logscript = NULL, *qlog = NULL, *ldir = path_join(logdir, name);
	_cleanup_free_ char *cmd = shell_quote_argv(argv), *qmk = mkdir_first ? shell_quote(mkdir_first) : NULL;
	int r;

	if (!dir || !ldir || !cmd || (mkdir_first && !qmk))
		return error_sys(err, ENOMEM, "cell");
	logsvc = path_join(dir, "log");
	run = path_join(dir, "run");
	logrun = logsvc ? path_join(logsvc, "run") : NULL;
	qlog = shell_quote(ldir);
	script = strdup_printf("#!/bin/sh\n# written by treadle cell up\nexec 2>&1\n%s%s%sexec %s\n", qmk ? "mkdir -p " : "",
			       qmk ? qmk : "", qmk ? "\n" : "", cmd);
	logscript = qlog ? strdup_printf("#!/bin/sh\nexec s6-log -b -p T n20 s1000000 %s\n", qlog) : NULL;
	if (!logrun || !script || !logscript)
		return error_sys(err, ENOMEM, "cell");
	if ((r = mkdir_p(logsvc, 0755)) < 0 || (r = mkdir_p(ldir, 0755)) < 0)
		return error_sys(err, -r, "creating %s", logsvc);
	if ((r = write_script(run, script)) < 0 || (r = write_script(logrun, logscript)) < 0)
		return error_sys(err, -r, "writing %s", run);
	return 0;
}

/* The roles of this server are up: its master joined the election (data
 * "<hostname>.<pid>"; on ZooKeeper another server's master may lead) and its
 * node is in /server.presence. */
static void ready_watch(struct store *s, enum store_event ev, const char *path, void *ud)
{
	/* nothing: the wake-up of cell_up's poll is the point */
}

static int store_ready(struct store *s, const char *hostname, unsigned roles)
{
	if (roles & CELL_ROLE_MASTER) {
		_cleanup_strv_free_ char **lock = NULL, **members = NULL;
		bool mine = false;

		/* the list arms the watch; the members' data says whose they are */
		if (cellns_list(s, CELLNS_ELECTION_MASTER, &lock, ready_watch, NULL) < 0 ||
		    cellns_election_members(s, &members) < 0)
			return 0;
		for (char **m = members; *m && !mine; m++)
			mine = startswith(*m, hostname) && (*m)[strlen(hostname)] == '.';
		if (!mine)
			return 0;
	}
	if (roles & CELL_ROLE_NODE) {
		_cleanup_strv_free_ char **pres = NULL;
		bool found = false;

		if (cellns_list(s, CELLNS_SERVER_PRESENCE, &pres, ready_watch, NULL) < 0 ||
		    cellns_presence_find(s, hostname, &found) < 0 || !found)
			return 0;
	}
	return 1;
}

/* `--network`: valid, and no address of this netns but our own bridge's in it. */
static int net_range_check(const char *node_root, const char *range, struct error *err)
{
	char bridge[16], table[32];
	struct net_config cfg;
	_cleanup_free_ char *desc = NULL;
	int r;

	if (!strcmp(range, "none"))
		return 0;
	net_node_names(node_root, bridge, table);
	net_config_init(&cfg, bridge, table, (struct in_addr){ 0 });
	if (net_parse_cidr(range, &cfg.network, &cfg.prefixlen) < 0 || cfg.prefixlen < 8 || cfg.prefixlen > 30)
		return error_set(err, ERR_USAGE, EINVAL, "--network: expected a.b.c.d/n (n 8..30, host bits 0), got '%s'",
				 range);
	r = net_range_conflict(&cfg, &desc, err);
	if (r < 0)
		return r;
	if (r > 0)
		return error_set(err, ERR_PERM, EADDRINUSE,
				 "--network %s overlaps %s (another cell on this machine?): choose another range", range,
				 desc ? desc : "an address here");
	return 0;
}

int cell_up(const struct cell_options *o, struct error *err)
{
	_cleanup_free_ char *root = NULL, *bin = NULL, *svc = NULL, *logd = NULL, *store = NULL, *node = NULL;
	_cleanup_free_ char *url = NULL, *cfg = NULL, *pidfile = NULL, *runningd = NULL, *stopf = NULL;
	char host[HOST_NAME_MAX + 1] = "";
	const char *hostname = o->hostname, *cg = o->cgroup_root ? o->cgroup_root : "treadle";
	unsigned roles = o->roles ? o->roles : CELL_ROLES_ALL;
	_cleanup_json_ json_t *j = NULL;
	pid_t pid;
	int r;

	if (mkdir_p(o->root, 0755) < 0)
		return error_sys(err, errno, "creating %s", o->root);
	root = realpath(o->root, NULL);
	bin = o->treadle_bin ? realpath(o->treadle_bin, NULL) : realpath("/proc/self/exe", NULL);
	if (!root || !bin)
		return error_sys(err, errno, "resolving %s", root ? "the treadle binary" : o->root);
	if (!hostname) {
		if (gethostname(host, sizeof(host) - 1) < 0)
			return error_sys(err, errno, "gethostname");
		hostname = host;
	}
	if (!*hostname || strchr(hostname, '/'))
		return error_set(err, ERR_USAGE, 0, "--hostname: expected a name, got '%s'", hostname);
	if (strchr(cg, '/') || !*cg)
		return error_set(err, ERR_USAGE, 0, "--cgroup-root: expected a name, got '%s'", cg);
	if (o->store_url && !startswith(o->store_url, "zk://") && !startswith(o->store_url, "file://"))
		return error_set(err, ERR_USAGE, 0, "--store: expected zk://HOSTS[/CHROOT] or file://DIR, got '%s'",
				 o->store_url);
	svc = path_join(root, "svc");
	logd = path_join(root, "log");
	store = path_join(root, "store");
	node = path_join(root, "node");
	runningd = node ? path_join(node, "running") : NULL;
	stopf = node ? path_join(node, "stop") : NULL;
	url = o->store_url ? strdup(o->store_url) : strdup_printf("file://%s", store ? store : "");
	pidfile = path_join(root, "cell.pid");
	cfg = path_join(root, "cell.json");
	if (!svc || !logd || !store || !node || !runningd || !stopf || !url || !pidfile || !cfg)
		return error_sys(err, ENOMEM, "cell");
	if (svscan_running(svc))
		return error_set(err, ERR_PERM, 0, "a cell already runs at %s (stop it with 'treadle cell down --root %s')",
				 root, root);

	if ((roles & CELL_ROLE_NODE) && o->net_range && (r = net_range_check(node, o->net_range, err)) < 0)
		return r;

	/* Fresh service dirs each time (a stopped tree's supervise/ state is stale). */
	r = rm_rf(svc);
	if (r < 0)
		return error_sys(err, -r, "removing %s", svc);
	if ((r = mkdir_p(svc, 0755)) < 0 || (r = mkdir_p(logd, 0755)) < 0 ||
	    (!o->store_url && (r = mkdir_p(store, 0700)) < 0) ||
	    ((roles & CELL_ROLE_NODE) && (r = mkdir_p(runningd, 0755)) < 0))
		return error_sys(err, -r, "creating the cell directories under %s", root);
	/* the last cell down's request to the node agent (docs/NODE.md) */
	if (unlink(stopf) < 0 && errno != ENOENT)
		return error_sys(err, errno, "removing %s", stopf);

	if (roles & CELL_ROLE_MASTER) {
		_cleanup_free_ char *metrics = strdup_printf("%s/master-metrics.prom", root); /* read by `treadle api` */
		char *const argv[] = { bin, "master", "--store", url, "--hostname", (char *)hostname, "--metrics", metrics, NULL };

		if (!metrics)
			return error_sys(err, ENOMEM, "cell up");
		if (write_service(svc, logd, "master", argv, NULL, err) < 0)
			return -1;
	}
	if (roles & CELL_ROLE_NODE) {
		char *node_argv[20] = { bin, "node", "--store", url, "--root", node, "--hostname", (char *)hostname,
					"--cgroup-root", (char *)cg };
		size_t k = 10;
		const char *extra[][2] = { { "--network", o->net_range }, { "--hooks", o->hooks },
					   { "--host-keytab", o->krb5_keytab }, { "--tickets-wait", o->tickets_wait } };

		for (size_t i = 0; i < ELEMENTSOF(extra); i++)
			if (extra[i][1]) {
				node_argv[k++] = (char *)extra[i][0];
				node_argv[k++] = (char *)extra[i][1];
			}
		char *const run_argv[] = { "s6-svscan", runningd, NULL };

		if (write_service(svc, logd, "node", node_argv, NULL, err) < 0 ||
		    write_service(svc, logd, "running", run_argv, runningd, err) < 0)
			return -1;
	}

	{
		/* every server serves the REST API on R/api.sock (docs/API.md) */
		char *argv[16] = { bin, "api", "--root", root, "--store", url };
		size_t k = 6;

		if (o->api_listen)
			argv[k++] = "--listen", argv[k++] = (char *)o->api_listen;
		if (o->api_tokens)
			argv[k++] = "--tokens", argv[k++] = (char *)o->api_tokens;
		if (o->api_tls_cert && o->api_tls_key) {
			argv[k++] = "--tls-cert", argv[k++] = (char *)o->api_tls_cert;
			argv[k++] = "--tls-key", argv[k++] = (char *)o->api_tls_key;
		}

		if (write_service(svc, logd, "api", argv, NULL, err) < 0)
			return -1;
	}

	j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "hostname", hostname, "cgroup_root", cg, "treadle", bin, "store",
		      url, "root", root, "roles", roles_name(roles));
	if (j) {
		_cleanup_free_ char *t = json_dumps(j, JSON_SORT_KEYS | JSON_INDENT(2));
		if (!t || (r = write_file_atomic(cfg, t, strlen(t), 0644)) < 0)
			return error_sys(err, t ? -r : ENOMEM, "writing %s", cfg);
	}

	if (!o->daemon) {
		_cleanup_free_ char *p = strdup_printf("%d\n", (int)getpid());

		if (p)
			write_file_atomic(pidfile, p, strlen(p), 0644);
		execlp("s6-svscan", "s6-svscan", svc, (char *)NULL);
		return error_sys(err, errno, "executing s6-svscan");
	}

	pid = fork();
	if (pid < 0)
		return error_sys(err, errno, "fork");
	if (pid == 0) {
		_cleanup_free_ char *lf = path_join(logd, "svscan.log");
		int fd, nul = open("/dev/null", O_RDONLY | O_CLOEXEC);

		setsid();
		fd = lf ? open(lf, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644) : -1;
		if (nul >= 0)
			dup2(nul, 0);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execlp("s6-svscan", "s6-svscan", svc, (char *)NULL);
		_exit(127);
	}
	{
		_cleanup_free_ char *p = strdup_printf("%d\n", (int)pid);

		if (p)
			write_file_atomic(pidfile, p, strlen(p), 0644);
	}

	/* Wait until this server's roles are up: on the store's watches and the
	 * exit of s6-svscan (pidfd); every 250 ms also re-open the store if it
	 * was not there yet, and re-check (a watch cannot be left on a path that
	 * does not exist yet on every backend). */
	{
		_cleanup_store_ struct store *s = NULL;
		_cleanup_close_ int pidfd = pidfd_open(pid);
		int tmo = o->ready_timeout_ms > 0 ? o->ready_timeout_ms : 30000;
		uint64_t deadline = now_monotonic_ms() + (uint64_t)tmo;
		struct error serr = ERROR_INIT;

		for (;;) {
			struct pollfd pfd[2] = { { .fd = pidfd, .events = POLLIN }, { .fd = -1, .events = POLLIN } };
			int st;

			if (!s && store_open(url, NULL, &s, &serr) < 0)
				error_clear(&serr);
			if (s && store_ready(s, hostname, roles))
				return 0;
			if (now_monotonic_ms() > deadline)
				return error_set(err, ERR_TEMP, 0,
						 "the cell at %s is not ready after %d ms (%s%s%s); see the logs in %s",
						 root, tmo, roles & CELL_ROLE_MASTER ? "master in the election" : "",
						 roles == CELL_ROLES_ALL ? ", " : "",
						 roles & CELL_ROLE_NODE ? "node present" : "", logd);
			pfd[1].fd = s ? store_fd(s) : -1;
			if (poll(pfd, 2, min_ms(deadline, 250)) < 0 && errno != EINTR)
				return error_sys(err, errno, "poll");
			if ((pfd[0].revents & POLLIN) || (pidfd < 0 && waitpid(pid, &st, WNOHANG) == pid)) {
				(void)waitpid(pid, &st, 0);
				return error_set(err, ERR_TEMP, 0, "s6-svscan %s exited at start; see %s/svscan.log", svc,
						 logd);
			}
			if (s && (pfd[1].revents & POLLIN))
				(void)store_dispatch(s);
		}
	}
}

/* ------------------------------------------------------------------- down */

static bool path_under(const char *p, const char *root)
{
	size_t n = strlen(root);

	return strncmp(p, root, n) == 0 && (p[n] == '/' || p[n] == 0);
}

/* Pids of processes that belong to the cell: cwd, exe or an argument under R. */
static int cell_pids(const char *root, pid_t **ret, size_t *ret_n)
{
	_cleanup_closedir_ DIR *d = opendir("/proc");
	pid_t *pids = NULL;
	size_t n = 0;
	struct dirent *de;

	if (!d)
		return negerrno();
	while ((de = readdir(d))) {
		_cleanup_free_ char *cwdl = NULL, *cmdp = NULL, *cmd = NULL;
		char buf[PATH_MAX + 1];
		uint64_t v;
		ssize_t l;
		size_t len = 0;
		bool mine = false;

		if (safe_atou64(de->d_name, &v) < 0 || (pid_t)v == getpid())
			continue;
		cwdl = strdup_printf("/proc/%s/cwd", de->d_name);
		cmdp = strdup_printf("/proc/%s/cmdline", de->d_name);
		if (!cwdl || !cmdp)
			break;
		l = readlink(cwdl, buf, sizeof(buf) - 1);
		if (l > 0) {
			buf[l] = 0;
			mine = path_under(buf, root);
		}
		if (!mine && read_file(cmdp, &cmd, &len) >= 0)
			for (size_t i = 0; i < len && !mine; i += strlen(cmd + i) + 1) {
				const char *hit = strstr(cmd + i, root);

				mine = hit && path_under(hit, root) && (hit == cmd + i || hit[-1] == '/' || hit[-1] == '=');
			}
		if (mine) {
			pid_t *t = realloc(pids, (n + 1) * sizeof(*t));
			if (!t)
				break;
			pids = t;
			pids[n++] = (pid_t)v;
		}
	}
	*ret = pids;
	*ret_n = n;
	return 0;
}

/* Wait until one of pids exits or the deadline (monotonic ms) passes. */
static void pids_wait(const pid_t *pids, size_t n, uint64_t deadline)
{
	_cleanup_free_ struct pollfd *pfd = calloc(n, sizeof(*pfd));
	size_t k = 0;

	if (!pfd)
		return;
	for (size_t i = 0; i < n; i++) {
		int fd = pidfd_open(pids[i]);

		if (fd < 0) {
			if (errno == ESRCH) /* gone already */
				goto out;
			continue;
		}
		pfd[k++] = (struct pollfd){ .fd = fd, .events = POLLIN };
	}
	/* without any pidfd (a kernel before 5.3) a short pause stands in */
	(void)poll(k ? pfd : NULL, k, k ? min_ms(deadline, INT_MAX) : min_ms(deadline, 100));
out:
	for (size_t i = 0; i < k; i++)
		close(pfd[i].fd);
}

static int count_mounts_under(const char *root, char ***ret)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	char **l = NULL;

	if (!f)
		return negerrno();
	while (getline(&line, &cap, f) > 0) {
		char *cur = line, *tok = next_field(&cur, " ");

		/* fields: id parent maj:min root mountpoint ... */
		for (int i = 0; tok && i < 4; i++)
			tok = next_field(&cur, " ");
		if (tok && path_under(tok, root))
			strv_extend(&l, tok);
	}
	*ret = l;
	return (int)strv_length(l);
}

/* The table and bridge that N/node.json names, and every VIP record (their
 * conntrack flushed): nothing of the cell's network stays on the machine. */
static void net_teardown(const char *node_root)
{
	_cleanup_free_ char *p = path_join(node_root, "node.json"), *vips = path_join(node_root, "network/vips");
	_cleanup_free_ char *text = NULL;
	_cleanup_json_ json_t *j = NULL;
	const json_t *n;
	struct net_config cfg;
	struct error e = ERROR_INIT;
	char *const none[] = { NULL };

	if (p && read_file(p, &text, NULL) >= 0 && (j = json_loads(text, 0, NULL)) &&
	    (n = json_object_get(j, "network"))) {
		const char *range = json_string_value(json_object_get(n, "range"));
		const char *gw = json_string_value(json_object_get(n, "gateway"));
		const char *ext = json_string_value(json_object_get(n, "external_ip"));

		net_config_init(&cfg, json_string_value(json_object_get(n, "bridge")),
				json_string_value(json_object_get(n, "table")), (struct in_addr){ 0 });
		/* (net_fw_teardown checks the whole configuration) */
		if (!range || !gw || !ext || net_parse_cidr(range, &cfg.network, &cfg.prefixlen) < 0 ||
		    net_parse_ip(gw, &cfg.gateway) < 0 || net_parse_ip(ext, &cfg.external_ip) < 0)
			cfg.table = NULL;
		if (cfg.table)
			(void)net_fw_teardown(&cfg, &e);
		error_clear(&e);
		if (cfg.bridge)
			(void)net_bridge_remove(&cfg, &e);
		error_clear(&e);
	}
	if (vips && access(vips, F_OK) == 0)
		(void)net_vip_reconcile(vips, none, &e);
	error_clear(&e);
}

int cell_down(const char *root_in, int timeout_ms, struct cell_down_report *rep, struct error *err)
{
	_cleanup_free_ char *root = realpath(root_in, NULL), *svc = NULL, *cfg = NULL, *data = NULL;
	_cleanup_free_ char *cg = NULL, *node_root = NULL, *apps = NULL, *running = NULL, *stopf = NULL, *appev = NULL;
	_cleanup_strv_free_ char **mounts = NULL, **conts = NULL;
	_cleanup_json_ json_t *j = NULL;
	bool embedded;
	uint64_t deadline;

	*rep = (struct cell_down_report){ 0 };
	if (timeout_ms <= 0)
		timeout_ms = 30000;
	if (!root)
		return error_set(err, ERR_PERM, errno, "no cell at %s", root_in);
	svc = path_join(root, "svc");
	cfg = path_join(root, "cell.json");
	node_root = path_join(root, "node");
	apps = path_join(root, "node/apps");
	running = path_join(root, "node/running");
	stopf = path_join(root, "node/stop");
	appev = path_join(root, "node/appevents");
	if (!svc || !cfg || !node_root || !apps || !running || !stopf || !appev)
		return error_sys(err, ENOMEM, "cell down");
	if (read_file(cfg, &data, NULL) < 0)
		return error_set(err, ERR_PERM, errno, "no cell at %s (no cell.json)", root);
	j = json_loads(data, 0, NULL);
	cg = strdup(json_string_value(json_object_get(j, "cgroup_root")) ?: "treadle");
	embedded = startswith(json_string_value(json_object_get(j, "store")) ?: "file://", "file://");
	if (!cg)
		return error_sys(err, ENOMEM, "cell down");

	rep->was_running = svscan_running(svc);
	if (rep->was_running && access(node_root, F_OK) == 0) {
		/* 1. Containers down on purpose, master and node still up: the node
		 *    agent (asked through R/node/stop, docs/NODE.md) stops each one
		 *    once and starts none; on the embedded store each instance
		 *    finishes (its exit is its terminal event, whatever its restart
		 *    policy), on ZooKeeper each is released for the masters to place
		 *    elsewhere.  The node cleans them up as usual (logs archived,
		 *    cgroups and volume released).  Wait until apps/ is empty, for at
		 *    most 2/3 of the timeout; if the agent does not act within half
		 *    of that (it is not running), the containers are downed here. */
		const char *mode = embedded ? "finish\n" : "release\n";
		uint64_t start = now_monotonic_ms(), fallback = start + (uint64_t)timeout_ms / 3, next_down = fallback;
		_cleanup_close_ int ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
		int r;

		deadline = start + (uint64_t)timeout_ms * 2 / 3;
		if (ino < 0)
			return error_sys(err, errno, "inotify");
		/* each container cleaned up leaves apps/, each event published leaves appevents/ */
		(void)inotify_add_watch(ino, apps, IN_DELETE | IN_MOVED_FROM | IN_ONLYDIR);
		(void)inotify_add_watch(ino, appev, IN_DELETE | IN_MOVED_FROM | IN_ONLYDIR);
		r = write_file_atomic(stopf, mode, strlen(mode), 0644);
		if (r < 0)
			return error_sys(err, -r, "writing %s", stopf);
		for (;;) {
			_cleanup_strv_free_ char **left = NULL;
			struct pollfd pfd = { .fd = ino, .events = POLLIN };
			char buf[4096];
			uint64_t now = now_monotonic_ms();

			if (now >= next_down) { /* the agent did not act: down them here, every second */
				_cleanup_strv_free_ char **ents = NULL;

				if (dir_list(running, 1, &ents) >= 0)
					for (char **e = ents; *e; e++) {
						_cleanup_free_ char *p = path_join(running, *e);

						if (p)
							(void)sv_control(p, "d");
					}
				next_down = now + 1000;
			}
			if (now > deadline)
				break;
			/* done when every container is cleaned up and its terminal
			 * event published (appevents/ drained) */
			if (dir_list(apps, 1, &left) < 0 || !left[0]) {
				_cleanup_strv_free_ char **evs = NULL;

				if (dir_list(appev, 1, &evs) < 0 || !evs[0])
					break;
			}
			if (poll(&pfd, 1, min_ms(next_down < deadline ? next_down : deadline + 1, 1000)) < 0 &&
			    errno != EINTR)
				break;
			while (read(ino, buf, sizeof(buf)) > 0)
				;
		}
	}
	if (rep->was_running) {
		/* 2. The whole tree: s6-svscan sends SIGTERM to every supervisor
		 *    (master, node agent, the containers' scan directory, loggers). */
		(void)sv_svscan_control(svc, "t");
	}

	/* 3. Wait for every process of the cell to go (on their pidfds), then
	 *    kill what is left. */
	deadline = now_monotonic_ms() + (uint64_t)timeout_ms / 3 + 2000;
	for (;;) {
		_cleanup_free_ pid_t *pids = NULL;
		size_t n = 0;

		cell_pids(root, &pids, &n);
		if (n == 0)
			break;
		if (now_monotonic_ms() > deadline) {
			for (size_t i = 0; i < n; i++)
				if (kill(pids[i], SIGKILL) == 0)
					rep->stray_processes++;
			pids_wait(pids, n, now_monotonic_ms() + 2000); /* one more round, then give up */
			break;
		}
		/* new processes of the cell may start meanwhile: re-list every second */
		pids_wait(pids, n, now_monotonic_ms() + (uint64_t)min_ms(deadline, 1000));
	}

	/* 4. Containers the node did not clean up in time (or a cell that was
	 *    not running): release their host resources (cgroups, loop devices,
	 *    volume images) as the node's cleanup would, and count them. */
	if (dir_list(apps, 1, &conts) >= 0)
		for (char **c = conts; *c; c++) {
			struct error cerr = ERROR_INIT;

			if (container_cleanup(node_root, cg, *c, &cerr) < 0)
				error_clear(&cerr);
			rep->stray_containers++;
		}

	/* 5. Sweep what is still there: mounts under R (deepest first), loop
	 *    devices backed by files under R, the cell's cgroups. */
	if (count_mounts_under(root, &mounts) > 0) {
		for (size_t i = strv_length(mounts); i > 0; i--)
			if (umount2(mounts[i - 1], MNT_DETACH) == 0)
				rep->stray_mounts++;
	}
	rep->stray_loops = container_loops_release(root);
	{
		_cleanup_cg_ struct cg *cgh = NULL;
		struct error cgerr = ERROR_INIT;

		if (cg_open(NULL, cg, 0, &cgh, &cgerr) == 0)
			(void)cg_sweep(cgh, &rep->stray_cgroups, &cgerr);
		error_clear(&cgerr);
	}
	/* 6. The node's network: its nft table, bridge and VIP records (docs/NETWORK.md). */
	net_teardown(node_root);
	{
		_cleanup_free_ char *pidfile = path_join(root, "cell.pid");
		if (pidfile)
			unlink(pidfile);
		(void)unlink(stopf);
	}
	return 0;
}

/* ----------------------------------------------------------------- status */

/* What `s6-svstat -o up,pid,updownfor` says, from supervise/status. */
static json_t *service_status(const char *dir)
{
	struct sv_status st;

	if (!sv_is_supervised(dir) || sv_status(dir, &st) < 0)
		return json_pack("{s:b}", "up", 0);
	return json_pack("{s:b, s:I, s:I}", "up", st.up, "pid", (json_int_t)(st.up ? st.pid : -1), "seconds",
			 (json_int_t)(st.since > 0 && now_realtime() > st.since ? now_realtime() - st.since : 0));
}

/* 1 if the cell's s6-svscan runs at R, 0 if not. */
static int cell_is_running(const char *root)
{
	_cleanup_free_ char *svc = path_join(root, "svc");

	return svc && svscan_running(svc) ? 1 : 0;
}

int cell_status(const char *root_in, char **ret_json, struct error *err)
{
	_cleanup_free_ char *root = realpath(root_in, NULL), *cfg = NULL, *data = NULL, *url = NULL;
	_cleanup_store_ struct store *s = NULL;
	_cleanup_json_ json_t *j = NULL, *c = NULL;
	json_t *svcs;
	const char *host = NULL;
	bool running;

	if (!root)
		return error_set(err, ERR_PERM, errno, "no cell at %s", root_in);
	cfg = path_join(root, "cell.json");
	if (!cfg)
		return error_sys(err, ENOMEM, "cell status");
	if (read_file(cfg, &data, NULL) >= 0)
		c = json_loads(data, 0, NULL);
	host = json_string_value(json_object_get(c, "hostname"));
	running = cell_is_running(root);
	j = json_pack("{s:s, s:b, s:s?, s:s?, s:s?, s:s?}", "root", root, "running", running, "hostname", host,
		      "cgroup_root", json_string_value(json_object_get(c, "cgroup_root")), "store",
		      json_string_value(json_object_get(c, "store")), "roles",
		      json_string_value(json_object_get(c, "roles")));
	svcs = json_object();
	if (!j || !svcs || json_object_set_new(j, "services", svcs) < 0)
		return error_sys(err, ENOMEM, "cell status");
	for (size_t i = 0; running && i < ELEMENTSOF(services); i++) {
		_cleanup_free_ char *d = strdup_printf("%s/svc/%s", root, services[i]);
		json_t *st = d && access(d, F_OK) == 0 ? service_status(d) : NULL;
		if (st)
			json_object_set_new(svcs, services[i], st);
	}
	url = json_string_value(json_object_get(c, "store")) ? strdup(json_string_value(json_object_get(c, "store")))
							       : strdup_printf("file://%s/store", root);
	/* status only reads: no session file, so it works with the disk full */
	if (url && (!startswith(url, "file://") || access(url + 7, F_OK) == 0) &&
	    store_open(url, &(struct store_options){ .read_only = true }, &s, NULL) >= 0) {
		_cleanup_strv_free_ char **members = NULL, **pres = NULL, **sched = NULL, **run = NULL;
		size_t placed = 0;

		/* members are in sequence order: the first leads */
		if (cellns_election_members(s, &members) >= 0 && members[0])
			json_object_set_new(j, "leader", json_string(members[0]));
		if (cellns_list(s, CELLNS_SERVER_PRESENCE, &pres, NULL, NULL) >= 0) {
			json_t *a = json_array();
			for (char **p = pres; p && *p; p++)
				json_array_append_new(a, json_string(*p));
			json_object_set_new(j, "presence", a);
		}
		(void)cellns_list(s, CELLNS_SCHEDULED, &sched, NULL, NULL);
		(void)cellns_list(s, CELLNS_RUNNING, &run, NULL, NULL);
		(void)cellns_placement_count(s, &placed);
		json_object_set_new(j, "instances",
				    json_pack("{s:I, s:I, s:I}", "scheduled", (json_int_t)strv_length(sched), "placed",
					      (json_int_t)placed, "running", (json_int_t)strv_length(run)));
	}
	*ret_json = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	return *ret_json ? 0 : error_sys(err, ENOMEM, "cell status");
}
