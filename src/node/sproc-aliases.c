/* sproc-aliases.c: host aliases (docs/CONTAINER.md "Host aliases"; Treadmill's `hostaliases` service,
 * treadmill-architecture.md §6.5).
 *
 * An app names hosts by symlinks /run/host-aliases/<alias> -> <hostname> (a read-write bind of the
 * container dir's data/overlay/run/host-aliases, owned by the proid).  `treadle sproc host-aliases` runs
 * on the host side, a child of the container's `sproc run` (it dies with it), so names resolve with the
 * host's resolver (its /etc/hosts, nsswitch and DNS, which a private network namespace may not reach).
 * It rewrites data/overlay/etc/hosts, which the container sees read-only at /etc/hosts, in place: the bind
 * mount holds the file's inode, so a write-then-rename would never show inside. */
#include <fcntl.h>
#include <netdb.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "../basic/fileio.h"
#include "../basic/json.h"
#include "../basic/util.h"
#include "node-internal.h"

#define HOSTS_REL "data/overlay/etc/hosts"
#define ALIASES_MARK "# treadle host aliases (/run/host-aliases)\n"

int sproc_aliases_prepare(const struct node_settings *ns, const json_t *app, const char *cdir, struct error *err)
{
	_cleanup_free_ char *dir = strdup_printf("%s/" SPROC_ALIASES_REL, cdir);
	const char *proid = sproc_jstr(app, "proid");
	struct passwd *pw;
	pid_t parent = getpid(), pid;
	int r;

	if (!dir)
		return error_sys(err, ENOMEM, "host aliases");
	r = mkdir_p(dir, 0755);
	if (r < 0)
		return error_sys(err, -r, "mkdir %s", dir);
	errno = 0;
	pw = proid ? getpwnam(proid) : NULL;
	if (pw && chown(dir, pw->pw_uid, pw->pw_gid) < 0)
		return error_sys(err, errno, "chown %s", dir);
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return error_sys(err, errno, "fork");
	if (pid == 0) {
		char *argv[] = { (char *)ns->treadle_bin, (char *)"sproc", (char *)"host-aliases", NULL };
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent || chdir(cdir) < 0)
			_exit(111);
		if (fd >= 0 && fd != 0)
			(void)dup2(fd, 0);
		execv(ns->treadle_bin, argv);
		_exit(111);
	}
	return 0;
}

static bool name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 253 || s[0] == '.' || s[0] == '-')
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
		      *p == '.' || *p == '_'))
			return false;
	return true;
}

/* The hostname an alias names: its symlink's target, or the first line of a plain file. */
static char *alias_target(int dfd, const char *name)
{
	char buf[256];
	ssize_t n = readlinkat(dfd, name, buf, sizeof(buf) - 1);

	if (n < 0 && errno == EINVAL) {
		_cleanup_close_ int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	}
	if (n <= 0)
		return NULL;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return name_ok(buf) ? strdup(buf) : NULL;
}

/* "<ip> <fqdn>" of host by the host's resolver; NULL if it does not resolve (now).  A loopback address
 * means the host itself, which from a private network is host_ip. */
static char *resolve(const char *host, const char *host_ip)
{
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM, .ai_flags = AI_CANONNAME }, *ai;
	char ip[INET_ADDRSTRLEN];
	const struct in_addr *a;
	char *out;

	if (getaddrinfo(host, NULL, &hints, &ai) != 0)
		return NULL;
	a = &((const struct sockaddr_in *)ai->ai_addr)->sin_addr;
	if (!inet_ntop(AF_INET, a, ip, sizeof(ip))) {
		freeaddrinfo(ai);
		return NULL;
	}
	out = strdup_printf("%s %s", (ntohl(a->s_addr) >> 24) == 127 && host_ip ? host_ip : ip,
			    ai->ai_canonname && name_ok(ai->ai_canonname) ? ai->ai_canonname : host);
	freeaddrinfo(ai);
	return out;
}

/* The hosts file as it should be; *ret_unresolved: some alias did not resolve. */
static int hosts_render(const char *host_ip, char **ret, bool *ret_unresolved)
{
	_cleanup_free_ char *cur = NULL, *out = NULL;
	_cleanup_strv_free_ char **names = NULL;
	_cleanup_close_ int dfd = open(SPROC_ALIASES_REL, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	size_t len = 0;
	bool said = false;
	char *mark;
	FILE *f;
	int r;

	*ret_unresolved = false;
	r = read_file(HOSTS_REL, &cur, NULL);
	if (r < 0)
		return r;
	/* the base: what the container started with, up to our part */
	mark = startswith(cur, ALIASES_MARK) ? cur : strstr(cur, "\n" ALIASES_MARK);
	if (mark)
		mark[mark == cur ? 0 : 1] = 0;
	if (dfd < 0 || dir_list(SPROC_ALIASES_REL, 1, &names) < 0)
		names = NULL;
	f = open_memstream(&out, &len);
	if (!f)
		return -ENOMEM;
	fputs(cur, f);
	for (char **n = names; n && *n; n++) {
		_cleanup_free_ char *target = NULL, *line = NULL;

		if ((*n)[0] == '^' || !name_ok(*n) || !(target = alias_target(dfd, *n)))
			continue; /* Treadmill ignores names starting with '^' */
		line = resolve(target, host_ip);
		if (!line) {
			*ret_unresolved = true;
			continue;
		}
		if (!said)
			fputs(ALIASES_MARK, f);
		said = true;
		fprintf(f, "%s %s\n", line, *n);
	}
	if (fclose(f) != 0)
		return -ENOMEM;
	*ret = TAKE_PTR(out);
	return 0;
}

/* Rewrite HOSTS_REL in place (same inode: the container's bind shows it) if it differs. */
static int hosts_update(const char *want)
{
	_cleanup_free_ char *cur = NULL;
	_cleanup_close_ int fd = -1;
	size_t n = strlen(want);

	if (read_file(HOSTS_REL, &cur, NULL) == 0 && !strcmp(cur, want))
		return 0;
	fd = open(HOSTS_REL, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return negerrno();
	if (pwrite(fd, want, n, 0) != (ssize_t)n || ftruncate(fd, (off_t)n) < 0)
		return negerrno();
	return 1;
}

/* Every container has one of these helpers, so it holds no inotify instance: the kernel allows a user
 * 128 by default (fs.inotify.max_user_instances), which a node of 100 containers would otherwise use up,
 * starving the node agent, the API and the store's watches.  It looks once a second instead, at what
 * costs a readdir and a readlink per alias; names are resolved only when that changes (or, while some do
 * not resolve, every SPROC_ALIASES_RETRY_S). */
#define ALIASES_LOOK_MS 1000

/* "<alias>=<target>\n" for every entry of the aliases directory: what the hosts file depends on. */
static char *aliases_signature(void)
{
	_cleanup_strv_free_ char **names = NULL;
	_cleanup_close_ int dfd = open(SPROC_ALIASES_REL, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char *out = NULL;
	size_t len = 0;
	FILE *f;

	if (dfd < 0 || dir_list(SPROC_ALIASES_REL, 1, &names) < 0)
		names = NULL;
	f = open_memstream(&out, &len);
	if (!f)
		return NULL;
	for (char **n = names; n && *n; n++) {
		_cleanup_free_ char *t = alias_target(dfd, *n);

		fprintf(f, "%s=%s\n", *n, t ? t : "");
	}
	if (fclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

static void nap_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	(void)nanosleep(&ts, NULL);
}

int sproc_host_aliases(struct error *err)
{
	_cleanup_free_ char *text = NULL, *seen = NULL;
	_cleanup_json_ json_t *app = NULL;
	const char *host_ip = NULL;
	bool unresolved = false;
	uint64_t retry_at = 0;
	int r;

	/* the container runs (data/container.json) once its hosts file is the one bound at /etc/hosts */
	while (!path_exists("data/container.json"))
		nap_ms(50);
	if (read_file("data/app.json", &text, NULL) == 0 && (app = json_loads(text, 0, NULL))) {
		const json_t *net = json_object_get(app, "network");
		if (json_is_object(net) && !json_is_true(json_object_get(app, "shared_network")) &&
		    !json_is_true(json_object_get(app, "shared_ip")))
			host_ip = sproc_jstr(net, "external_ip");
	}
	for (;; nap_ms(ALIASES_LOOK_MS)) {
		_cleanup_free_ char *want = NULL, *sig = aliases_signature();

		if (sig && seen && strcmp(sig, seen) == 0 && !(unresolved && now_monotonic_ms() >= retry_at))
			continue;
		free(seen);
		seen = TAKE_PTR(sig);
		r = hosts_render(host_ip, &want, &unresolved);
		if (r >= 0)
			r = hosts_update(want);
		if (r < 0)
			return error_sys(err, -r, "%s", HOSTS_REL);
		if (r > 0) {
			printf("host aliases: %s rewritten%s\n", HOSTS_REL, unresolved ? " (some names do not resolve yet)" : "");
			fflush(stdout);
		}
		if (unresolved)
			retry_at = now_monotonic_ms() + SPROC_ALIASES_RETRY_S * 1000;
	}
}
