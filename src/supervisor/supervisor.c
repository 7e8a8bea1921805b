/* supervisor.c: s6 service dirs, restart policy, tombstones, s6 control. */
#include <fcntl.h>
#include <poll.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include "../basic/fileio.h"
#include "../basic/util.h"
#include "supervisor.h"

int sv_write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	_cleanup_free_ char *tmp = NULL;
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	_cleanup_close_ int fd = -1;
	const char *p = data;
	int r;

	tmp = slash ? strdup_printf("%.*s/.%s.tmp%d.%08x", (int)(slash - path), path, base, (int)getpid(),
				    (unsigned)random())
		    : strdup_printf(".%s.tmp%d.%08x", base, (int)getpid(), (unsigned)random());
	if (!tmp)
		return -ENOMEM;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return negerrno();
	if (fchmod(fd, mode) < 0)
		goto fail;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		p += n;
		len -= (size_t)n;
	}
	if (close(TAKE_FD(fd)) < 0 || rename(tmp, path) < 0)
		goto fail;
	return 0;
fail:
	r = negerrno();
	unlink(tmp);
	return r;
}

char *sv_exit_format(const struct sv_exit *e)
{
	return strdup_printf("%014.3f,%03d,%03d", e->ts, e->rc, e->sig);
}

int sv_exit_parse(const char *line, struct sv_exit *ret)
{
	_cleanup_free_ char *s = strdup(line);
	char *c1, *c2;
	struct sv_exit e;

	if (!s)
		return -ENOMEM;
	c1 = strchr(s, ',');
	if (!c1)
		return -EINVAL;
	*c1++ = 0;
	c2 = strchr(c1, ',');
	if (!c2)
		return -EINVAL;
	*c2++ = 0;
	if (parse_timestamp(s, &e.ts) < 0 || safe_atoi(c1, &e.rc) < 0 || safe_atoi(c2, &e.sig) < 0)
		return -EINVAL;
	*ret = e;
	return 0;
}

int sv_policy_decide(const char *log, const struct sv_exit *now, unsigned limit, unsigned interval,
		     char **ret_log)
{
	_cleanup_strv_free_ char **lines = strv_new();
	_cleanup_free_ char *cur = NULL, *copy = NULL, *out = NULL;
	struct sv_exit oldest;
	size_t n, from, len = 0;
	char *p, *nl;

	*ret_log = NULL;
	if (limit == 0)
		return SV_FATAL;
	if (!lines)
		return -ENOMEM;
	copy = strdup(log ? log : "");
	if (!copy)
		return -ENOMEM;
	for (p = copy; p && *p; p = nl) {
		struct sv_exit e;

		nl = strchr(p, '\n');
		if (nl)
			*nl++ = 0;
		if (sv_exit_parse(p, &e) < 0)
			continue;
		if (strv_extend(&lines, p) < 0)
			return -ENOMEM;
	}
	cur = sv_exit_format(now);
	if (!cur || strv_push(&lines, TAKE_PTR(cur)) < 0)
		return -ENOMEM;
	n = strv_length(lines);
	from = n <= limit ? 0 : n - limit;
	for (size_t i = from; i < n; i++)
		len += strlen(lines[i]) + 1;
	out = malloc(len + 1);
	if (!out)
		return -ENOMEM;
	out[0] = 0;
	for (size_t i = from, off = 0; i < n; i++) {
		size_t l = strlen(lines[i]);
		memcpy(out + off, lines[i], l);
		out[off + l] = '\n';
		off += l + 1;
		out[off] = 0;
	}
	*ret_log = TAKE_PTR(out);
	if (n <= limit)
		return SV_RESTART;
	if (sv_exit_parse(lines[0], &oldest) < 0)
		return SV_RESTART;
	return now->ts - oldest.ts >= (double)interval ? SV_RESTART : SV_FATAL;
}

int sv_policy_apply(const char *exits_log_path, const struct sv_exit *now, unsigned limit, unsigned interval)
{
	_cleanup_free_ char *log = NULL, *newlog = NULL;
	int r, v;

	r = read_file(exits_log_path, &log, NULL);
	if (r < 0 && r != -ENOENT)
		return r;
	v = sv_policy_decide(log, now, limit, interval, &newlog);
	if (v < 0)
		return v;
	if (newlog) {
		_cleanup_free_ char *dir = strdup(exits_log_path);
		char *slash = dir ? strrchr(dir, '/') : NULL;

		if (!dir)
			return -ENOMEM;
		if (slash && slash != dir) {
			*slash = 0;
			(void)mkdir_p(dir, 0755);
		}
		r = sv_write_file(exits_log_path, newlog, strlen(newlog), 0644);
		if (r < 0)
			return r;
	}
	return v;
}

/* Tombstone file name "<id>,<ts %014.3f>,<rc %03d>,<sig %03d>"; malloc'ed. */
static char *sv_tombstone_name(const char *id, const struct sv_exit *e)
{
	_cleanup_free_ char *x = sv_exit_format(e);

	return x ? strdup_printf("%s,%s", id, x) : NULL;
}

int sv_tombstone_parse(const char *name, char **ret_id, struct sv_exit *ret)
{
	const char *c[3];
	const char *end = name + strlen(name);
	int k = 0;

	/* rsplit(',', 3): the last three commas */
	for (const char *p = end; p > name && k < 3;) {
		p--;
		if (*p == ',')
			c[k++] = p;
	}
	if (k < 3 || c[2] == name)
		return -EINVAL;
	if (sv_exit_parse(c[2] + 1, ret) < 0)
		return -EINVAL;
	*ret_id = strndup(name, (size_t)(c[2] - name));
	return *ret_id ? 0 : -ENOMEM;
}

int sv_tombstone_write(const char *dir, const char *id, const struct sv_exit *e)
{
	_cleanup_free_ char *name = sv_tombstone_name(id, e), *path = NULL;

	if (!name)
		return -ENOMEM;
	if (strchr(name, '/'))
		return -EINVAL;
	path = strdup_printf("%s/%s", dir, name);
	if (!path)
		return -ENOMEM;
	return sv_write_file(path, "", 0, 0644);
}

static int write_at(const char *dir, const char *name, const char *content, mode_t mode)
{
	_cleanup_free_ char *p = strdup_printf("%s/%s", dir, name);

	if (!p)
		return -ENOMEM;
	return sv_write_file(p, content, strlen(content), mode);
}

static int write_int_at(const char *dir, const char *name, int v)
{
	_cleanup_free_ char *s = strdup_printf("%d\n", v);

	return s ? write_at(dir, name, s, 0644) : -ENOMEM;
}

static bool env_name_ok(const char *s, size_t len)
{
	if (!len || !((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
		return false;
	for (size_t i = 1; i < len; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return true;
}

/* envdir: one file per variable, first line = value ('\n' in values stored as
 * NUL, as s6-envdir reads them).  Names must match [A-Za-z_][A-Za-z0-9_]*;
 * others are -EINVAL. */
static int sv_envdir_write(const char *dir, char *const *env)
{
	int r = mkdir_p(dir, 0755);

	if (r < 0)
		return r;
	for (char *const *e = env; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		_cleanup_free_ char *name = NULL, *val = NULL;
		size_t vl;

		if (!eq || !env_name_ok(*e, (size_t)(eq - *e)))
			return -EINVAL;
		name = strndup(*e, (size_t)(eq - *e));
		val = strdup(eq + 1);
		if (!name || !val)
			return -ENOMEM;
		vl = strlen(val);
		for (size_t i = 0; i < vl; i++)
			if (val[i] == '\n')
				val[i] = 0;
		{
			_cleanup_free_ char *p = strdup_printf("%s/%s", dir, name);
			_cleanup_free_ char *buf = malloc(vl + 2);

			if (!p || !buf)
				return -ENOMEM;
			memcpy(buf, val, vl);
			buf[vl] = '\n';
			r = sv_write_file(p, buf, vl + 1, 0644);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

int sv_envdir_apply(const char *dir)
{
	_cleanup_strv_free_ char **l = NULL;
	int r = dir_list(dir, 1, &l);

	if (r < 0)
		return r;
	for (char **p = l; *p; p++) {
		_cleanup_free_ char *path = strdup_printf("%s/%s", dir, *p), *v = NULL;
		size_t len;
		char *nl;

		if (!path)
			return -ENOMEM;
		if (!env_name_ok(*p, strlen(*p)))
			continue;
		r = read_file(path, &v, &len);
		if (r < 0)
			return r;
		if (len == 0) {
			unsetenv(*p);
			continue;
		}
		nl = memchr(v, '\n', len);
		if (nl) {
			*nl = 0;
			len = (size_t)(nl - v);
		}
		while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
			v[--len] = 0;
		for (size_t i = 0; i < len; i++)
			if (v[i] == 0)
				v[i] = '\n';
		if (setenv(*p, v, 1) < 0)
			return negerrno();
	}
	return 0;
}

int sv_service_write(const char *dir, const struct sv_service_spec *spec)
{
	_cleanup_free_ char *logdir = NULL, *down = NULL, *envdir = NULL;
	int r;

	r = mkdir_p(dir, 0755);
	if (r < 0)
		return r;
	if ((r = write_at(dir, "type", "longrun\n", 0644)) < 0)
		return r;
	if (spec->run && (r = write_at(dir, "run", spec->run, 0755)) < 0)
		return r;
	if (spec->finish && (r = write_at(dir, "finish", spec->finish, 0755)) < 0)
		return r;
	if (spec->notification_fd >= 0 && (r = write_int_at(dir, "notification-fd", spec->notification_fd)) < 0)
		return r;
	if (spec->timeout_finish_ms >= 0 && (r = write_int_at(dir, "timeout-finish", spec->timeout_finish_ms)) < 0)
		return r;
	down = strdup_printf("%s/down", dir);
	if (!down)
		return -ENOMEM;
	if (spec->down)
		r = sv_write_file(down, "", 0, 0644);
	else
		r = unlink(down) < 0 && errno != ENOENT ? negerrno() : 0;
	if (r < 0)
		return r;
	envdir = spec->env ? strdup_printf("%s/env", dir) : NULL;
	if (spec->env && (!envdir || (r = sv_envdir_write(envdir, spec->env)) < 0))
		return envdir ? r : -ENOMEM;
	logdir = spec->log_run ? strdup_printf("%s/log", dir) : NULL;
	if (spec->log_run && !logdir)
		return -ENOMEM;
	if (logdir && ((r = mkdir_p(logdir, 0755)) < 0 || (r = write_at(logdir, "type", "longrun\n", 0644)) < 0 ||
		       (r = write_at(logdir, "run", spec->log_run, 0755)) < 0))
		return r;
	return 0;
}

static int fifo_write(const char *path, const char *cmds)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	size_t len = strlen(cmds);
	ssize_t n;

	if (fd < 0)
		return negerrno(); /* ENXIO: no reader = not supervised */
	n = write(fd, cmds, len);
	if (n < 0)
		return negerrno();
	return (size_t)n == len ? 0 : -EAGAIN;
}

int sv_control(const char *dir, const char *cmds)
{
	_cleanup_free_ char *p = strdup_printf("%s/supervise/control", dir);

	return p ? fifo_write(p, cmds) : -ENOMEM;
}

int sv_svscan_control(const char *scandir, const char *cmds)
{
	_cleanup_free_ char *p = strdup_printf("%s/.s6-svscan/control", scandir);

	return p ? fifo_write(p, cmds) : -ENOMEM;
}

bool sv_is_supervised(const char *dir)
{
	_cleanup_free_ char *p = strdup_printf("%s/supervise/control", dir);
	_cleanup_close_ int fd = -1;

	if (!p)
		return false;
	fd = open(p, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	return fd >= 0;
}


/* s6 2.11 supervise/status: tain stamp(12) tain readystamp(12) pid(8, BE)
 * wstat(2) flags(1); flags bit0 paused, bit1 finishing, bit2 want up, bit3
 * ready.  The stamps are on skalibs' TAI clock (leap seconds included, per
 * its build): the file's mtime, written with the stamp, gives the time on
 * ours. */
int sv_status(const char *dir, struct sv_status *ret)
{
	_cleanup_free_ char *p = strdup_printf("%s/supervise/status", dir), *buf = NULL;
	const unsigned char *b;
	struct stat st;
	size_t len;
	uint64_t pid = 0;
	int r;

	if (!p)
		return -ENOMEM;
	r = read_file(p, &buf, &len);
	if (r < 0)
		return r;
	if (len < 35)
		return -EBADMSG;
	b = (const unsigned char *)buf;
	for (int i = 0; i < 8; i++)
		pid = (pid << 8) | b[24 + i];
	ret->pid = (pid_t)pid;
	ret->up = pid && !(b[34] & 0x02); /* finishing: the process is gone */
	ret->since = stat(p, &st) == 0 ? (double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec * 1e-9 : 0;
	return 0;
}

int sv_is_up(const char *dir)
{
	struct sv_status st;
	int r = sv_status(dir, &st);

	return r < 0 ? r : st.up;
}

/* A subscription to a service's event fifodir, as s6-ftrig-listen makes it:
 * a FIFO "ftrig1:@<24 hex>:<6 chars>" in dir/event, which s6-supervise
 * writes each event letter to (s u U d D x).  We hold both ends: the read
 * end never sees EOF. */
struct sv_sub {
	char *path;
	int rfd, wfd;
};

static void sub_close(struct sv_sub *s)
{
	if (s->path)
		(void)unlink(s->path);
	free(s->path);
	if (s->rfd >= 0)
		close(s->rfd);
	if (s->wfd >= 0)
		close(s->wfd);
	*s = (struct sv_sub){ .rfd = -1, .wfd = -1 };
}

static int sub_open(const char *dir, struct sv_sub *s)
{
	static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	struct timespec ts;
	char rnd[7];
	uint64_t x;

	*s = (struct sv_sub){ .rfd = -1, .wfd = -1 };
	clock_gettime(CLOCK_REALTIME, &ts);
	x = (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 20) ^ (uint64_t)(uintptr_t)s;
	for (int i = 0; i < 6; i++, x /= sizeof(alnum) - 1)
		rnd[i] = alnum[x % (sizeof(alnum) - 1)];
	rnd[6] = 0;
	s->path = strdup_printf("%s/event/ftrig1:@%016llx%08lx:%s", dir,
				(unsigned long long)((1ULL << 62) + 10 + (uint64_t)ts.tv_sec), (unsigned long)ts.tv_nsec,
				rnd);
	if (!s->path)
		return -ENOMEM;
	if (mkfifo(s->path, 0600) < 0) {
		int r = negerrno();
		free(s->path);
		s->path = NULL;
		return r;
	}
	s->rfd = open(s->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	s->wfd = s->rfd >= 0 ? open(s->path, O_WRONLY | O_NONBLOCK | O_CLOEXEC) : -1;
	if (s->wfd < 0) {
		int r = negerrno();
		sub_close(s);
		return r;
	}
	return 0;
}

static int remaining_ms(uint64_t deadline)
{
	uint64_t now = now_monotonic_ms();

	return now >= deadline ? 0 : (int)(deadline - now);
}

/* A read lock on fd (an open file description lock: it conflicts with the
 * POSIX record lock skalibs' fd_lock takes); wait: block until granted.
 * 0, or -1 with errno (EAGAIN: held by another). */
static int lock_try(int fd, bool wait)
{
	struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET };

	return fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl);
}

int sv_wait_unsupervised(const char *dir, int timeout_ms)
{
	_cleanup_free_ char *lk = strdup_printf("%s/supervise/lock", dir);
	_cleanup_close_ int lfd = -1;
	uint64_t deadline = now_monotonic_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
	struct sv_sub sub;
	int r = 0;

	if (!lk)
		return -ENOMEM;
	/* s6-supervise holds a lock on supervise/lock for its lifetime */
	lfd = open(lk, O_RDONLY | O_CLOEXEC);
	if (lfd < 0)
		return errno == ENOENT ? 0 : negerrno();
	if (sub_open(dir, &sub) < 0)
		sub = (struct sv_sub){ .rfd = -1, .wfd = -1 }; /* no event dir: the timeout decides */
	for (;;) {
		struct pollfd pfd = { .fd = sub.rfd, .events = POLLIN };
		char buf[64];
		ssize_t n;
		bool exiting = false;

		if (lock_try(lfd, false) == 0)
			break;
		if (errno != EAGAIN && errno != EACCES) {
			r = negerrno();
			break;
		}
		if (remaining_ms(deadline) == 0) {
			r = -ETIMEDOUT;
			break;
		}
		if (poll(&pfd, 1, remaining_ms(deadline)) < 0 && errno != EINTR) {
			r = negerrno();
			break;
		}
		while (sub.rfd >= 0 && (n = read(sub.rfd, buf, sizeof(buf))) > 0)
			exiting = exiting || memchr(buf, 'x', (size_t)n);
		/* 'x': s6-supervise exits now; its lock goes with it */
		if (exiting && lock_try(lfd, true) == 0)
			break;
	}
	sub_close(&sub);
	return r;
}

int sv_svscan_wait(const char *scandir, int timeout_ms)
{
	_cleanup_free_ char *ctl = strdup_printf("%s/.s6-svscan", scandir);
	_cleanup_close_ int ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	uint64_t deadline = now_monotonic_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);

	if (!ctl)
		return -ENOMEM;
	if (ifd < 0)
		return negerrno();
	for (;;) {
		struct pollfd pfd = { .fd = ifd, .events = POLLIN };
		char buf[4096];

		/* s6-svscan creates .s6-svscan/, then its control FIFO, then opens it */
		(void)inotify_add_watch(ifd, scandir, IN_CREATE | IN_MOVED_TO | IN_ONLYDIR);
		(void)inotify_add_watch(ifd, ctl, IN_CREATE | IN_OPEN | IN_ONLYDIR);
		if (sv_svscan_control(scandir, "") == 0) /* "": only whether it has a reader */
			return 0;
		/* our own open of the FIFO queued an IN_OPEN: drop it; an open by
		 * s6-svscan in between is caught by the next round (at most 1 s) */
		while (read(ifd, buf, sizeof(buf)) > 0)
			;
		if (remaining_ms(deadline) == 0)
			return -ETIMEDOUT;
		if (poll(&pfd, 1, remaining_ms(deadline) < 1000 ? remaining_ms(deadline) : 1000) < 0 && errno != EINTR)
			return negerrno();
		while (read(ifd, buf, sizeof(buf)) > 0)
			;
	}
}
