/* exec.c: `treadle exec`: enter a running container's namespaces and root
 * and run a command there through exec-as. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <poll.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <termios.h>

#include "../basic/fileio.h"
#include "../basic/json.h"
#include "../basic/util.h"
#include "container-internal.h"

int container_load_envdir(const char *dir, struct error *err)
{
	_cleanup_strv_free_ char **names = NULL;
	int r = dir_list(dir, 1, &names);

	if (r < 0)
		return error_sys(err, r, "envdir %s", dir);
	for (size_t i = 0; names && names[i]; i++) {
		_cleanup_free_ char *p = strdup_printf("%s/%s", dir, names[i]), *v = NULL;
		size_t len;
		if (!p)
			return error_sys(err, ENOMEM, "envdir");
		if (read_file(p, &v, &len) < 0)
			continue;
		if (len == 0) {
			unsetenv(names[i]);
			continue;
		}
		v[strcspn(v, "\n")] = 0; /* first line only, as s6-envdir */
		for (size_t k = 0; k < len && v[k]; k++)
			;
		if (setenv(names[i], v, 1) < 0)
			return error_sys(err, errno, "envdir %s", p);
	}
	return 0;
}

_noreturn_ static void exec_in_container(const char *user, bool as_root, char *const *argv)
{
	size_t n = strv_length(argv);
	char **a = calloc(n + 9, sizeof(char *));
	size_t k = 0;

	if (!a)
		_exit(111);
	a[k++] = (char *)"treadle";
	a[k++] = (char *)"container";
	a[k++] = (char *)"exec-as";
	a[k++] = (char *)"--envdir";
	a[k++] = (char *)"/env";
	if (user) {
		a[k++] = (char *)"--user";
		a[k++] = (char *)user;
	}
	if (as_root)
		a[k++] = (char *)"--root";
	a[k++] = (char *)"--";
	for (size_t i = 0; i < n; i++)
		a[k++] = argv[i];
	a[k] = NULL;
	if (chdir("/") < 0)
		_exit(111);
	execv(CONTAINER_TREADLE, a);
	_exit(111);
}

/* In the container's mount namespace: a new pty from its devpts. */
static int open_pty(char *slave, size_t len)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	struct winsize ws;

	if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0 || ptsname_r(m, slave, len) != 0) {
		if (m >= 0)
			close(m);
		return -1;
	}
	if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0)
		(void)ioctl(m, TIOCSWINSZ, &ws);
	return m;
}

/* The command's side: new session, the pty slave as controlling terminal and stdio. */
static void attach_pty(const char *slave)
{
	int s;

	if (setsid() < 0 || (s = open(slave, O_RDWR)) < 0 || ioctl(s, TIOCSCTTY, 0) < 0)
		_exit(111);
	if (dup2(s, 0) < 0 || dup2(s, 1) < 0 || dup2(s, 2) < 0)
		_exit(111);
	if (s > 2)
		close(s);
}

/* Copy the host terminal <-> pty master until the command side closes;
 * window size changes (SIGWINCH) are passed on. */
static void relay(int master)
{
	sigset_t mask;
	int sfd;
	bool in_open = true;
	char buf[4096];

	sigemptyset(&mask);
	sigaddset(&mask, SIGWINCH);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	for (;;) {
		struct pollfd p[3] = { { master, POLLIN, 0 }, { in_open ? STDIN_FILENO : -1, POLLIN, 0 }, { sfd, POLLIN, 0 } };
		ssize_t n;

		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[2].revents & POLLIN) {
			struct signalfd_siginfo si;
			struct winsize ws;
			if (read(sfd, &si, sizeof(si)) > 0 && ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0)
				(void)ioctl(master, TIOCSWINSZ, &ws);
		}
		if (p[1].revents & (POLLIN | POLLHUP)) {
			n = read(STDIN_FILENO, buf, sizeof(buf));
			if (n <= 0)
				in_open = false;
			else if (write_all(master, buf, (size_t)n) < 0)
				break;
		}
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			n = read(master, buf, sizeof(buf));
			if (n <= 0) /* EIO: the last slave fd closed */
				break;
			if (write_all(STDOUT_FILENO, buf, (size_t)n) < 0)
				break;
		}
	}
	if (sfd >= 0)
		close(sfd);
}

int container_exec(const char *container_dir, const char *user, bool as_root, char *const *argv, struct error *err)
{
	static const char *const nss[] = { "ipc", "uts", "net", "pid", "mnt" };
	_cleanup_free_ char *state = strdup_printf("%s/data/container.json", container_dir);
	_cleanup_free_ char *text = NULL, *comm = NULL, *commp = NULL;
	int fds[ELEMENTSOF(nss)];
	_cleanup_json_ json_t *o = NULL;
	json_error_t je;
	const char *proid = NULL;
	int pid = 0, root = 0, status, r = 0;
	struct termios saved_tio;
	bool use_pty;
	pid_t child;

	for (size_t i = 0; i < ELEMENTSOF(nss); i++)
		fds[i] = -1;
	if (!state)
		return error_sys(err, ENOMEM, "exec");
	r = read_file(state, &text, NULL);
	if (r < 0)
		return error_set(err, ERR_PERM, -r, "exec: %s: no running container there", container_dir);
	o = json_loads(text, 0, &je);
	if (!o || json_unpack(o, "{s:i, s?s, s?b}", "pid", &pid, "proid", &proid, "root", &root) < 0 || pid <= 0)
		return error_set(err, ERR_PERM, 0, "exec: %s: bad container state", state);
	commp = strdup_printf("/proc/%d/comm", pid);
	if (!commp || read_file(commp, &comm, NULL) < 0 || !startswith(comm, "s6-svscan")) {
		r = error_set(err, ERR_PERM, 0, "exec: %s: the container is not running", container_dir);
		goto out;
	}
	if (!user)
		user = as_root ? NULL : proid;
	for (size_t i = 0; i < ELEMENTSOF(nss); i++) {
		_cleanup_free_ char *p = strdup_printf("/proc/%d/ns/%s", pid, nss[i]);
		fds[i] = p ? open(p, O_RDONLY | O_CLOEXEC) : -1;
		if (fds[i] < 0) {
			r = error_sys(err, p ? errno : ENOMEM, "exec: %s", p ? p : "ns");
			goto out;
		}
	}
	use_pty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO) && tcgetattr(STDIN_FILENO, &saved_tio) == 0;
	/* enter the namespaces in a child, so this process stays in its own
	 * (sanitizers' exit-time checks clone helpers and break in a foreign pid
	 * namespace); the child forks the command into the container's pid ns */
	fflush(NULL);
	child = fork();
	if (child < 0) {
		r = error_sys(err, errno, "exec: fork");
		goto out;
	}
	if (child == 0) {
		pid_t cmd;
		int master = -1;
		char slave[64];
		for (size_t i = 0; i < ELEMENTSOF(nss); i++)
			if (setns(fds[i], 0) < 0)
				_exit(111);
		/* a terminal from the container's own devpts: the host's tty fd
		 * never enters the container (TIOCSTI could type into it) */
		if (use_pty && (master = open_pty(slave, sizeof(slave))) < 0)
			_exit(111);
		cmd = fork();
		if (cmd < 0)
			_exit(111);
		if (cmd == 0) {
			if (master >= 0)
				attach_pty(slave);
			exec_in_container(user, as_root, argv);
		}
		signal(SIGINT, SIG_IGN);
		signal(SIGQUIT, SIG_IGN);
		if (master >= 0)
			relay(master);
		while (waitpid(cmd, &status, 0) < 0)
			if (errno != EINTR)
				_exit(111);
		_exit(WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status));
	}
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	if (use_pty) {
		struct termios raw = saved_tio;
		cfmakeraw(&raw);
		(void)tcsetattr(STDIN_FILENO, TCSANOW, &raw);
	}
	while (waitpid(child, &status, 0) < 0)
		if (errno != EINTR) {
			r = error_sys(err, errno, "exec: wait");
			goto out;
		}
	if (use_pty)
		(void)tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
	r = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
out:
	for (size_t i = 0; i < ELEMENTSOF(nss); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return r;
}
