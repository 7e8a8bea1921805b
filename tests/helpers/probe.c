/* probe: run inside a treadle container by the tests; prints one TAP-like
 * line per check ("ok - what" / "not ok - what: why") and exits 1 if any
 * check failed.  Built statically so it runs in any image.
 *
 *   probe check [--hostname H] [--uid N] [--no-caps] [--absent PATH]...
 *               [--env NAME=VALUE]... [--max-procs N] [--seccomp]
 *               [--no-mknod PATH]... [--no-open PATH]... [--can-open PATH]...
 *               [--empty PATH]... [--no-cap N]... [--nodev]
 *   probe alloc MB          touch MB mebibytes, 1 MiB at a time
 *   probe spin SECONDS      busy loop
 *   probe forkbomb N        fork up to N sleeping children; prints how many
 *   probe fill PATH MB      write up to MB MiB to PATH; prints ENOSPC or ok
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <stdarg.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int failed;

static void check(int ok, const char *what, const char *fmt, ...)
{
	va_list ap;

	if (ok) {
		printf("ok - %s\n", what);
	} else {
		failed = 1;
		printf("not ok - %s: ", what);
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
		printf("\n");
	}
	fflush(stdout);
}

static long status_field(const char *name)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	size_t n = strlen(name);
	long v = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, name, n) && line[n] == ':') {
			v = strtol(line + n + 1, NULL, strstr(name, "Cap") ? 16 : 10);
			break;
		}
	fclose(f);
	return v;
}

static int count_procs(void)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (de->d_name[0] >= '1' && de->d_name[0] <= '9')
			n++;
	closedir(d);
	return n;
}

static unsigned long long cap_set(const char *name)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	size_t n = strlen(name);
	unsigned long long v = ~0ULL;

	if (!f)
		return v;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, name, n) && line[n] == ':') {
			v = strtoull(line + n + 1, NULL, 16);
			break;
		}
	fclose(f);
	return v;
}

/* Every mount but the container's /dev and /dev/pts must be nodev. */
static void check_nodev(void)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096], bad[1024] = "";
	int n = 0;

	if (!f) {
		check(0, "every mount but /dev is nodev", "mountinfo: %s", strerror(errno));
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		char mp[1024], opts[1024];
		if (sscanf(line, "%*s %*s %*s %*s %1023s %1023s", mp, opts) != 2)
			continue;
		n++;
		if (!strcmp(mp, "/dev") || !strcmp(mp, "/dev/pts"))
			continue;
		if (!strstr(opts, "nodev") && strlen(bad) + strlen(mp) + 2 < sizeof(bad)) {
			strcat(bad, " ");
			strcat(bad, mp);
		}
	}
	fclose(f);
	check(n > 0 && !bad[0], "every mount but /dev is nodev", "device-capable mounts:%s", bad);
}

static int cmd_check(int argc, char **argv)
{
	char host[256] = "", comm[64] = "";
	int fd;

	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
		if (!strcmp(a, "--hostname")) {
			gethostname(host, sizeof(host));
			check(!strcmp(host, v), "hostname", "got '%s', want '%s'", host, v);
			i++;
		} else if (!strcmp(a, "--uid")) {
			check((long)getuid() == strtol(v, NULL, 10) && (long)geteuid() == strtol(v, NULL, 10), "runs as the proid",
			      "uid %ld, want %s", (long)getuid(), v);
			i++;
		} else if (!strcmp(a, "--no-caps")) {
			check(status_field("CapEff") == 0 && status_field("CapPrm") == 0 && status_field("CapBnd") == 0,
			      "no capabilities", "CapEff %lx CapBnd %lx", status_field("CapEff"),
			      status_field("CapBnd"));
			check(status_field("NoNewPrivs") == 1, "no_new_privs", "NoNewPrivs %ld",
			      status_field("NoNewPrivs"));
		} else if (!strcmp(a, "--absent")) {
			check(access(v, F_OK) < 0 && errno == ENOENT, "host/other path invisible", "%s is visible", v);
			i++;
		} else if (!strcmp(a, "--env")) {
			const char *eq = strchr(v, '=');
			char name[128];
			const char *got;
			snprintf(name, sizeof(name), "%.*s", eq ? (int)(eq - v) : (int)strlen(v), v);
			got = getenv(name);
			check(got && eq && !strcmp(got, eq + 1), "TREADMILL environment", "%s='%s'", name,
			      got ? got : "(unset)");
			i++;
		} else if (!strcmp(a, "--max-procs")) {
			int n = count_procs();
			FILE *f = fopen("/proc/1/comm", "re");
			if (f) {
				if (!fgets(comm, sizeof(comm), f))
					comm[0] = 0;
				fclose(f);
			}
			comm[strcspn(comm, "\n")] = 0;
			check(n > 0 && n <= (int)strtol(v, NULL, 10), "only the container's processes visible", "%d processes", n);
			check(!strcmp(comm, "s6-svscan"), "pid 1 is s6-svscan", "pid 1 is '%s'", comm);
			i++;
		} else if (!strcmp(a, "--net-lo-only")) {
			DIR *d = opendir("/sys/class/net");
			struct dirent *de;
			int others = 0, lo = 0;
			while (d && (de = readdir(d)))
				if (de->d_name[0] != '.')
					strcmp(de->d_name, "lo") ? others++ : lo++;
			if (d)
				closedir(d);
			check(lo == 1 && others == 0, "network namespace has only lo", "lo %d, others %d", lo, others);
			int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
			struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
			check(s >= 0 && bind(s, (struct sockaddr *)&sa, sizeof(sa)) == 0, "loopback is up", "%s",
			      strerror(errno));
			if (s >= 0)
				close(s);
		} else if (!strcmp(a, "--reaped")) {
			/* an orphan is re-parented to pid 1, which must reap it */
			pid_t c = fork();
			if (c == 0) {
				if (fork() == 0) {
					usleep(100000);
					_exit(0);
				}
				_exit(0);
			}
			waitpid(c, NULL, 0);
			usleep(600000);
			int zombies = 0;
			DIR *d = opendir("/proc");
			struct dirent *de;
			while (d && (de = readdir(d))) {
				char path[300], buf[256];
				if (de->d_name[0] < '1' || de->d_name[0] > '9')
					continue;
				snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
				FILE *f = fopen(path, "re");
				if (!f)
					continue;
				if (fgets(buf, sizeof(buf), f)) {
					char *rp = strrchr(buf, ')');
					if (rp && rp[1] == ' ' && rp[2] == 'Z')
						zombies++;
				}
				fclose(f);
			}
			if (d)
				closedir(d);
			check(zombies == 0, "orphans are reaped by pid 1", "%d zombies", zombies);
		} else if (!strcmp(a, "--no-mknod")) {
			char what[256];
			errno = 0;
			int r = mknod(v, S_IFCHR | 0666, makedev(1, 3));
			int e = errno;
			if (r == 0)
				unlink(v);
			snprintf(what, sizeof(what), "mknod of a device on %s refused", v);
			check(r < 0, what, "mknod %s succeeded", v);
			if (r < 0)
				printf("#   (%s)\n", strerror(e));
			i++;
		} else if (!strcmp(a, "--no-open")) {
			char what[256];
			int r = open(v, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC), e = errno;
			int w = open(v, O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC), ew = errno;
			snprintf(what, sizeof(what), "%s cannot be opened", v);
			check(r < 0 && w < 0, what, "open %s succeeded", r >= 0 ? "for reading" : "for writing");
			if (r < 0 && w < 0)
				printf("#   (%s / %s)\n", strerror(e), strerror(ew));
			if (r >= 0)
				close(r);
			if (w >= 0)
				close(w);
			i++;
		} else if (!strcmp(a, "--can-open")) {
			char what[256];
			fd = open(v, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
			snprintf(what, sizeof(what), "%s can be opened", v);
			check(fd >= 0, what, "%s", strerror(errno));
			if (fd >= 0)
				close(fd);
			i++;
		} else if (!strcmp(a, "--empty")) {
			char what[256], buf[64];
			ssize_t got = -1;
			fd = open(v, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
			if (fd >= 0) {
				got = read(fd, buf, sizeof(buf));
				close(fd);
			}
			snprintf(what, sizeof(what), "%s shows nothing", v);
			check(got <= 0, what, "read %zd bytes", got);
			i++;
		} else if (!strcmp(a, "--no-cap")) {
			char what[64];
			int cap = (int)strtol(v, NULL, 10);
			unsigned long long bit = 1ULL << cap;
			snprintf(what, sizeof(what), "capability %d absent (bounding set too)", cap);
			check(!(cap_set("CapBnd") & bit) && !(cap_set("CapEff") & bit) && !(cap_set("CapPrm") & bit), what,
			      "CapBnd %llx CapEff %llx", cap_set("CapBnd"), cap_set("CapEff"));
			i++;
		} else if (!strcmp(a, "--nodev")) {
			check_nodev();
		} else if (!strcmp(a, "--seccomp")) {
			errno = 0;
			int r = mount("none", "/tmp", "tmpfs", 0, NULL);
			check(r < 0 && errno == EPERM, "mount denied", "mount: %s", r < 0 ? strerror(errno) : "succeeded");
			errno = 0;
			r = (int)syscall(SYS_kexec_load, 0, 0, NULL, 0);
			check(r < 0 && errno == EPERM, "kexec_load denied", "%s", strerror(errno));
			r = unshare(CLONE_NEWNS);
			check(r < 0 && errno == EPERM, "unshare denied", "%s", r < 0 ? strerror(errno) : "succeeded");
			check(status_field("Seccomp") == 2, "seccomp filter active", "Seccomp %ld",
			      status_field("Seccomp"));
		}
	}
	fd = open("/usr/.probe-write", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	check(fd < 0 && (errno == EROFS || errno == EACCES), "/usr read-only", "%s",
	      fd < 0 ? strerror(errno) : "writable");
	if (fd >= 0) {
		close(fd);
		unlink("/usr/.probe-write");
	}
	fd = open("/etc/.probe-write", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	check(fd < 0, "/etc read-only", "%s", fd < 0 ? strerror(errno) : "writable");
	if (getuid() == 0) {
		fd = open("/proc/sys/kernel/hostname", O_WRONLY | O_CLOEXEC);
		check(fd < 0 && errno == EROFS, "/proc/sys read-only for root", "%s", fd < 0 ? strerror(errno) : "writable");
		if (fd >= 0)
			close(fd);
		fd = open("/proc/sysrq-trigger", O_WRONLY | O_CLOEXEC);
		check(fd < 0, "/proc/sysrq-trigger read-only for root", "%s", fd < 0 ? strerror(errno) : "writable");
		if (fd >= 0)
			close(fd);
	}
	char tmpf[64];
	snprintf(tmpf, sizeof(tmpf), "/tmp/.probe-write-%ld", (long)getuid());
	fd = open(tmpf, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	check(fd >= 0, "/tmp writable", "%s", fd < 0 ? strerror(errno) : "");
	if (fd >= 0)
		close(fd);
	return failed;
}

static int cmd_alloc(long mb)
{
	for (long i = 0; i < mb; i++) {
		char *p = malloc(1 << 20);
		if (!p)
			return 2;
		memset(p, (int)i | 1, 1 << 20);
		if (i % 16 == 0) {
			printf("allocated %ld MiB\n", i);
			fflush(stdout);
		}
	}
	printf("allocated all %ld MiB\n", mb);
	return 0;
}

static int cmd_spin(long secs)
{
	struct timespec a, b;
	volatile unsigned long x = 0;

	clock_gettime(CLOCK_MONOTONIC, &a);
	do {
		for (int i = 0; i < 1000000; i++)
			x++;
		clock_gettime(CLOCK_MONOTONIC, &b);
	} while (b.tv_sec - a.tv_sec < secs);
	return 0;
}

static int cmd_forkbomb(long n)
{
	long made = 0;
	int err = 0;

	for (; made < n; made++) {
		pid_t p = fork();
		if (p < 0) {
			err = errno;
			break;
		}
		if (p == 0) {
			pause();
			_exit(0);
		}
	}
	printf("forked %ld (%s)\n", made, err ? strerror(err) : "no failure");
	fflush(stdout);
	signal(SIGTERM, SIG_IGN);
	kill(0, SIGTERM);
	while (wait(NULL) > 0)
		;
	return err == EAGAIN ? 0 : 1;
}

static int cmd_fill(const char *path, long mb)
{
	static char buf[1 << 20];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	long done = 0;

	if (fd < 0) {
		printf("open %s: %s\n", path, strerror(errno));
		return 2;
	}
	memset(buf, 'x', sizeof(buf));
	for (; done < mb; done++) {
		ssize_t w = write(fd, buf, sizeof(buf));
		if (w < (ssize_t)sizeof(buf)) {
			int e = w < 0 ? errno : ENOSPC;
			if (w >= 0 && (w = write(fd, buf, sizeof(buf))) < 0)
				e = errno;
			printf("write failed after %ld MiB: %s\n", done, strerror(e));
			close(fd);
			return e == ENOSPC ? 0 : 1;
		}
	}
	if (fsync(fd) < 0) {
		printf("fsync failed after %ld MiB: %s\n", done, strerror(errno));
		close(fd);
		return errno == ENOSPC ? 0 : 1;
	}
	close(fd);
	printf("wrote %ld MiB without error\n", done);
	return 1;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: probe check|alloc|spin|forkbomb|fill ...\n");
		return 2;
	}
	if (!strcmp(argv[1], "check"))
		return cmd_check(argc, argv);
	if (!strcmp(argv[1], "alloc") && argc > 2)
		return cmd_alloc(strtol(argv[2], NULL, 10));
	if (!strcmp(argv[1], "spin") && argc > 2)
		return cmd_spin(strtol(argv[2], NULL, 10));
	if (!strcmp(argv[1], "forkbomb") && argc > 2)
		return cmd_forkbomb(strtol(argv[2], NULL, 10));
	if (!strcmp(argv[1], "fill") && argc > 3)
		return cmd_fill(argv[2], strtol(argv[3], NULL, 10));
	fprintf(stderr, "probe: bad command\n");
	return 2;
}
