/* sproc-check.c: readiness checks (docs/NODE.md "Readiness checks").
 *
 * A service with a `check` in its manifest gets a companion s6 service `check@<service>` in the
 * container's scan dir ('@' is not allowed in a manifest's service name, so it never collides), which runs
 * `treadle sproc check --service <service>` as root inside the container.  Each interval it runs the check
 * (tcp connect, http GET, or a command run through exec-as as the service's user), writes `up`/`down` to
 * /run/tm_ready/<endpoint> (= <container dir>/data/ready/<endpoint>, atomically) for every endpoint the
 * check gates, and after `failures` consecutive failures sends the service SIGTERM through its
 * supervise/control (SIGKILL if the same process is still up at the next threshold): the service's own
 * finish then counts the exit against its restart policy, as any other exit. */
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>

#include "../basic/fileio.h"
#include "../basic/json.h"
#include "../basic/util.h"
#include "../container/container.h"
#include "../supervisor/supervisor.h"
#include "node-internal.h"

#define CHECK_SERVICE_PREFIX "check@"
#define CHECK_READY_DIR "/run/tm_ready" /* inside the container: data/ready */
#define CHECK_APP_JSON "/app.json"

enum check_kind { CHECK_TCP, CHECK_HTTP, CHECK_COMMAND };

struct check {
	enum check_kind kind;
	int port;
	const char *path, *command, *user;
	unsigned interval_s, timeout_s, failures;
	const json_t *endpoints;
};

/* ---- generation, by sproc run (host side) ---- */

int sproc_ready_prepare(const char *cdir, const json_t *app, bool *ret_any)
{
	_cleanup_free_ char *dir = strdup_printf("%s/" SPROC_READY_REL, cdir);
	const json_t *svc, *ep;
	bool any = false;
	size_t i, j;
	int r;

	if (!dir)
		return -ENOMEM;
	(void)rm_rf(dir); /* what an earlier run of this container dir said is not true any more */
	json_array_foreach(json_object_get(app, "services"), i, svc) {
		const json_t *c = json_object_get(svc, "check");

		if (!json_is_object(c))
			continue;
		if (!any && (r = mkdir_p(dir, 0755)) < 0)
			return r;
		any = true;
		json_array_foreach(json_object_get(c, "endpoints"), j, ep) {
			_cleanup_free_ char *p = NULL;

			if (!json_is_string(ep) || strchr(json_string_value(ep), '/'))
				continue;
			p = strdup_printf("%s/%s", dir, json_string_value(ep));
			if (!p)
				return -ENOMEM;
			r = write_file_atomic(p, "down", 4, 0644);
			if (r < 0)
				return r;
		}
	}
	*ret_any = any;
	return 0;
}

/* The system services treadle adds to a container's scan dir beside the manifest's: one `check@<svc>` per
 * service with a check.  Kept in this one function so other generators (hooks) can join it. */
int sproc_system_services_write(const char *cdir, const json_t *app, struct error *err)
{
	const json_t *svc;
	size_t i;
	int r;

	json_array_foreach(json_object_get(app, "services"), i, svc) {
		const char *name = sproc_jstr(svc, "name");
		_cleanup_free_ char *dir = NULL, *qn = NULL, *run = NULL, *bin = shell_quote(CONTAINER_TREADLE);
		struct sv_service_spec spec = { .notification_fd = -1, .timeout_finish_ms = -1 };

		if (!json_is_object(json_object_get(svc, "check")) || !sproc_service_name_ok(name))
			continue;
		dir = strdup_printf("%s/data/services/" CHECK_SERVICE_PREFIX "%s", cdir, name);
		qn = shell_quote(name);
		run = bin && qn ? strdup_printf("#!/bin/sh\nexec 2>&1 </dev/null\nexec %s sproc check --service %s\n", bin, qn)
				: NULL;
		if (!dir || !run)
			return error_sys(err, ENOMEM, "check of service %s", name);
		spec.run = run;
		/* a check that cannot run (exit 100: bad check in app.json) stays down instead of looping */
		spec.finish = "#!/bin/sh\n[ \"$1\" = 100 ] && exit 125\nexit 0\n";
		r = sv_service_write(dir, &spec);
		if (r < 0)
			return error_sys(err, -r, "writing the check service of %s", name);
	}
	return 0;
}

/* ---- the checker, inside the container ---- */

static int check_parse(const json_t *app, const char *service, struct check *ret, struct error *err)
{
	const json_t *svc, *c = NULL, *x;
	struct check k = { .interval_s = 10, .timeout_s = 2, .failures = 3 };
	size_t i;

	json_array_foreach(json_object_get(app, "services"), i, svc)
		if (!strcmp(sproc_jstr(svc, "name") ? sproc_jstr(svc, "name") : "", service)) {
			c = json_object_get(svc, "check");
			k.user = json_is_true(json_object_get(svc, "root")) ? NULL : sproc_jstr(svc, "proid");
			break;
		}
	if (!json_is_object(c))
		return error_set(err, ERR_PERM, 0, "%s: service %s has no check", CHECK_APP_JSON, service);
	if ((x = json_object_get(c, "tcp"))) {
		k.kind = CHECK_TCP;
		k.port = (int)json_integer_value(x);
	} else if ((x = json_object_get(c, "http"))) {
		k.kind = CHECK_HTTP;
		k.port = (int)sproc_jint(x, "port", 0);
		k.path = sproc_jstr(x, "path") ? sproc_jstr(x, "path") : "/";
	} else if ((k.command = sproc_jstr(c, "command")))
		k.kind = CHECK_COMMAND;
	else
		return error_set(err, ERR_PERM, 0, "service %s: check: no tcp, http or command", service);
	if (k.kind != CHECK_COMMAND && (k.port <= 0 || k.port > 65535))
		return error_set(err, ERR_PERM, 0, "service %s: check: bad port", service);
	k.interval_s = (unsigned)sproc_jint(c, "interval", k.interval_s);
	k.timeout_s = (unsigned)sproc_jint(c, "timeout", k.timeout_s);
	k.failures = (unsigned)sproc_jint(c, "failures", k.failures);
	if (!k.interval_s || !k.timeout_s || !k.failures)
		return error_set(err, ERR_PERM, 0, "service %s: check: interval, timeout and failures must be > 0", service);
	k.endpoints = json_object_get(c, "endpoints");
	*ret = k;
	return 0;
}

/* A connected TCP socket to 127.0.0.1:port within deadline (ms, monotonic), or -errno. */
static int tcp_connect(int port, uint64_t deadline)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), e = 0;
	socklen_t el = sizeof(e);
	uint64_t now;
	struct pollfd p;

	if (fd < 0)
		return negerrno();
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	if (errno != EINPROGRESS) {
		e = errno;
		close(fd);
		return -e;
	}
	now = now_monotonic_ms();
	p = (struct pollfd){ .fd = fd, .events = POLLOUT };
	if (now >= deadline || poll(&p, 1, (int)(deadline - now)) <= 0) {
		close(fd);
		return -ETIMEDOUT;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0 || e) {
		close(fd);
		return e ? -e : -EIO;
	}
	return fd;
}

/* GET path: a 2xx or 3xx status line before the deadline passes. */
static bool http_ok(int fd, const char *path, uint64_t deadline)
{
	_cleanup_free_ char *req = strdup_printf("GET %s HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n", path);
	char buf[64];
	size_t have = 0;
	int code;

	if (!req || write_all(fd, req, strlen(req)) < 0)
		return false;
	while (have < sizeof(buf) - 1 && !memchr(buf, '\n', have)) {
		uint64_t now = now_monotonic_ms();
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (now >= deadline || poll(&p, 1, (int)(deadline - now)) <= 0)
			return false;
		n = read(fd, buf + have, sizeof(buf) - 1 - have);
		if (n <= 0)
			break;
		have += (size_t)n;
	}
	buf[have] = 0;
	return sscanf(buf, "HTTP/%*d.%*d %d", &code) == 1 && code >= 200 && code < 400;
}

/* The command, through exec-as as the service's user (the app cgroup, seccomp), killed at the deadline. */
static bool command_ok(const struct check *k, uint64_t deadline)
{
	char *argv[] = { (char *)"/bin/sh", (char *)"-c", (char *)k->command, NULL };
	struct error err = ERROR_INIT;
	int status = -1, pfd;
	pid_t pid = fork();
	uint64_t now;

	if (pid < 0)
		return false;
	if (pid == 0) {
		(void)setpgid(0, 0);
		if (access("/env", F_OK) == 0)
			(void)container_load_envdir("/env", &err);
		(void)container_exec_as(k->user, !k->user || !strcmp(k->user, "root"), argv, &err);
		_exit(127);
	}
	pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	now = now_monotonic_ms();
	if (pfd >= 0) {
		struct pollfd p = { .fd = pfd, .events = POLLIN };
		if (now >= deadline || poll(&p, 1, (int)(deadline - now)) <= 0)
			(void)kill(-pid, SIGKILL), (void)kill(pid, SIGKILL);
		close(pfd);
	}
	if (waitpid(pid, &status, 0) != pid)
		return false;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static bool check_run(const struct check *k)
{
	uint64_t deadline = now_monotonic_ms() + (uint64_t)k->timeout_s * 1000;
	bool ok;
	int fd;

	if (k->kind == CHECK_COMMAND)
		return command_ok(k, deadline);
	fd = tcp_connect(k->port, deadline);
	if (fd < 0)
		return false;
	ok = k->kind == CHECK_TCP || http_ok(fd, k->path, deadline);
	close(fd);
	return ok;
}

static void ready_write(const struct check *k, bool up)
{
	const json_t *ep;
	size_t i;

	json_array_foreach(k->endpoints, i, ep) {
		_cleanup_free_ char *p = NULL;

		if (!json_is_string(ep) || strchr(json_string_value(ep), '/'))
			continue;
		p = strdup_printf(CHECK_READY_DIR "/%s", json_string_value(ep));
		if (p)
			(void)write_file_atomic(p, up ? "up" : "down", up ? 2 : 4, 0644);
	}
}

int sproc_check(const char *service, struct error *err)
{
	_cleanup_free_ char *text = NULL, *svcdir = strdup_printf("/services/%s", service);
	_cleanup_json_ json_t *app = NULL;
	_cleanup_close_ int tfd = -1;
	struct itimerspec its = { 0 };
	struct check k;
	pid_t seen = 0, killed = 0;
	unsigned fails = 0;
	int state = -1; /* what the files say: -1 unknown, 0 down, 1 up */
	int r;

	if (!svcdir)
		return error_sys(err, ENOMEM, "check");
	if (!sproc_service_name_ok(service))
		return error_set(err, ERR_USAGE, 0, "invalid service name '%s'", service);
	r = read_file(CHECK_APP_JSON, &text, NULL);
	if (r < 0)
		return error_sys(err, -r, "reading " CHECK_APP_JSON);
	app = json_loads(text, 0, NULL);
	if (!app)
		return error_set(err, ERR_PERM, 0, CHECK_APP_JSON ": not JSON");
	r = check_parse(app, service, &k, err);
	if (r < 0)
		return r;
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	if (tfd < 0)
		return error_sys(err, errno, "timerfd");
	its.it_value.tv_sec = its.it_interval.tv_sec = k.interval_s;
	if (timerfd_settime(tfd, 0, &its, NULL) < 0)
		return error_sys(err, errno, "timerfd");
	printf("check of %s: every %us, timeout %us, restart after %u failures\n", service, k.interval_s, k.timeout_s,
	       k.failures);
	fflush(stdout);
	for (;;) {
		struct sv_status st = { 0 };
		uint64_t ticks;
		bool ok;

		if (read(tfd, &ticks, sizeof(ticks)) != sizeof(ticks)) {
			if (errno == EINTR)
				continue;
			return error_sys(err, errno, "timerfd");
		}
		if (sv_status(svcdir, &st) < 0 || !st.up || st.pid <= 0) {
			/* not running: not ready, and nothing to count */
			if (state != 0)
				ready_write(&k, false);
			state = 0;
			fails = 0;
			continue;
		}
		if (st.pid != seen) {
			seen = st.pid;
			fails = 0;
		}
		ok = check_run(&k);
		if (ok != (state == 1)) {
			ready_write(&k, ok);
			printf("check of %s (pid %d): %s\n", service, (int)st.pid, ok ? "up" : "down");
			fflush(stdout);
		}
		state = ok;
		if (ok) {
			fails = 0;
			continue;
		}
		if (++fails < k.failures)
			continue;
		/* a restart as any other exit: the service's finish applies its policy */
		printf("check of %s (pid %d): %u failures, %s\n", service, (int)st.pid, fails,
		       killed == st.pid ? "SIGKILL" : "restarting (SIGTERM)");
		fflush(stdout);
		(void)sv_control(svcdir, killed == st.pid ? "k" : "t");
		killed = st.pid;
		fails = 0;
	}
}
