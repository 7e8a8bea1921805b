
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <utime.h>

#include "fileio.h"
#include "util.h"

int read_file_at(int dirfd, const char *path, char **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0, cap = 4096;
	ssize_t n;

	fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return negerrno();
	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (len + 1 >= cap) {
			char *t = realloc(buf, cap * 2);
			if (!t)
				return -ENOMEM;
			buf = t;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return negerrno();
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = 0;
	*ret = TAKE_PTR(buf);
	if (ret_len)
		*ret_len = len;
	return 0;
}

int read_file(const char *path, char **ret, size_t *ret_len)
{
	return read_file_at(AT_FDCWD, path, ret, ret_len);
}

int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return negerrno();
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Create name (O_EXCL) and write the iovecs: the open fd, or -errno with the
 * file removed. */
static int write_new_fd(int dirfd, const char *name, const struct iovec *iov, size_t n_iov, mode_t mode)
{
	_cleanup_close_ int fd = -1;
	int r = 0;

	fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return negerrno();
	for (size_t i = 0; i < n_iov && r >= 0; i++)
		if (iov[i].iov_len)
			r = write_all(fd, iov[i].iov_base, iov[i].iov_len);
	if (r < 0) {
		unlinkat(dirfd, name, 0);
		return r;
	}
	return TAKE_FD(fd);
}

int write_file_new_at(int dirfd, const char *name, const struct iovec *iov, size_t n_iov, mode_t mode, bool sync)
{
	_cleanup_close_ int fd = write_new_fd(dirfd, name, iov, n_iov, mode);
	int r;

	if (fd < 0)
		return fd;
	if (sync && fsync(fd) < 0) {
		r = negerrno();
		unlinkat(dirfd, name, 0);
		return r;
	}
	return 0;
}

/* "<dir>/.<base>.tmpXXXXXXXX" for "<dir>/<base>"; *ret_dir = "<dir>/" or "". */
static char *atomic_tmp_name(const char *name, char **ret_dir)
{
	const char *slash = strrchr(name, '/');
	const char *base = slash ? slash + 1 : name;
	_cleanup_free_ char *dir = slash ? strndup(name, (size_t)(slash - name + 1)) : strdup("");
	char *tmp;

	if (!dir)
		return NULL;
	static unsigned counter;

	/* pid + counter: unique among live writers (random() is unseeded, so
	 * every process would draw the same first name) */
	tmp = strdup_printf("%s.%s.tmp%d.%u", dir, base, (int)getpid(),
			    __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED));
	if (tmp && ret_dir)
		*ret_dir = TAKE_PTR(dir);
	return tmp;
}

int write_file_atomic_full_at(int dirfd, const char *name, const char *tmp, const struct iovec *iov, size_t n_iov,
			      mode_t mode, const struct timespec *mtime, unsigned flags)
{
	_cleanup_free_ char *own_tmp = NULL, *dir = NULL;
	_cleanup_close_ int fd = -1, dfd = -1;
	int r;

	if (!tmp) {
		/* a name left by a dead writer whose pid came back: take the next */
		for (int i = 0; i < 8; i++) {
			free(own_tmp);
			free(dir);
			dir = NULL;
			tmp = own_tmp = atomic_tmp_name(name, &dir);
			if (!tmp)
				return -ENOMEM;
			fd = write_new_fd(dirfd, tmp, iov, n_iov, mode);
			if (fd != -EEXIST)
				break;
		}
	} else
		fd = write_new_fd(dirfd, tmp, iov, n_iov, mode);
	if (fd < 0)
		return fd;
	if (fchmod(fd, mode) < 0 ||
	    (mtime && futimens(fd, (const struct timespec[2]){ { .tv_nsec = UTIME_OMIT }, *mtime }) < 0) ||
	    (!(flags & WRITE_ATOMIC_NO_SYNC) && fsync(fd) < 0) || renameat(dirfd, tmp, dirfd, name) < 0) {
		r = negerrno();
		unlinkat(dirfd, tmp, 0);
		return r;
	}
	if (flags & WRITE_ATOMIC_NO_DIR_SYNC)
		return 0;
	if (!dir) {
		const char *slash = strrchr(name, '/');
		dir = slash ? strndup(name, (size_t)(slash - name + 1)) : strdup("");
		if (!dir)
			return -ENOMEM;
	}
	/* a directory we may not read (search-only) is not fsync'd, as before */
	dfd = openat(dirfd, *dir ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0 && fsync(dfd) < 0)
		return negerrno();
	return 0;
}

int write_file_atomic_mtime_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
			       const struct timespec *mtime)
{
	struct iovec iov = { (void *)data, len };

	return write_file_atomic_full_at(dirfd, name, NULL, &iov, 1, mode, mtime, 0);
}

int write_file_atomic_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode)
{
	return write_file_atomic_mtime_at(dirfd, name, data, len, mode, NULL);
}

int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	return write_file_atomic_at(AT_FDCWD, path, data, len, mode);
}

int symlink_atomic_at(const char *target, int dirfd, const char *name, const char *tmp)
{
	_cleanup_free_ char *own_tmp = NULL;
	int r;

	if (!tmp) {
		tmp = own_tmp = atomic_tmp_name(name, NULL);
		if (!tmp)
			return -ENOMEM;
	}
	if (symlinkat(target, dirfd, tmp) < 0)
		return negerrno();
	if (renameat(dirfd, tmp, dirfd, name) < 0) {
		r = negerrno();
		unlinkat(dirfd, tmp, 0);
		return r;
	}
	return 0;
}

int dir_fdopen(int fd, DIR **ret)
{
	DIR *d = fdopendir(fd);

	if (!d) {
		int r = negerrno();

		close(fd);
		return r;
	}
	*ret = d;
	return 0;
}

int symlink_atomic(const char *target, const char *link)
{
	return symlink_atomic_at(target, AT_FDCWD, link, NULL);
}

int write_string_file(const char *path, const char *s)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return negerrno();
	if (write(fd, s, strlen(s)) < 0)
		return negerrno();
	return 0;
}

int touch(const char *path)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);

	if (fd < 0)
		return negerrno();
	if (futimens(fd, NULL) < 0)
		return negerrno();
	return 0;
}

int mkdir_p(const char *path, mode_t mode)
{
	_cleanup_free_ char *p = strdup(path);
	char *s;

	if (!p)
		return -ENOMEM;
	for (s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			return negerrno();
		*s = '/';
	}
	if (mkdir(p, mode) < 0 && errno != EEXIST)
		return negerrno();
	return 0;
}

static int rm_rf_at(int dfd, const char *name, dev_t dev)
{
	struct stat st;
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	int fd, r = 0;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : negerrno();
	if (!S_ISDIR(st.st_mode))
		return unlinkat(dfd, name, 0) < 0 && errno != ENOENT ? negerrno() : 0;
	if (st.st_dev != dev)
		return -EXDEV;
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return negerrno();
	r = dir_fdopen(fd, &d);
	if (r < 0)
		return r;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		int q = rm_rf_at(dirfd(d), de->d_name, dev);
		if (q < 0 && !r)
			r = q;
	}
	if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT && !r)
		r = negerrno();
	return r;
}

int rm_rf(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : negerrno();
	return rm_rf_at(AT_FDCWD, path, st.st_dev);
}

int dir_list(const char *path, int skip_dot, char ***ret)
{
	return dir_list_at(AT_FDCWD, path, skip_dot, ret);
}

int dir_list_at(int dirfd, const char *path, int skip_dot, char ***ret)
{
	_cleanup_closedir_ DIR *d = NULL;
	_cleanup_strv_free_ char **l = NULL;
	size_t n = 0, cap = 16;
	struct dirent *de;
	int r, fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return negerrno();
	r = dir_fdopen(fd, &d);
	if (r < 0)
		return r;
	l = calloc(16, sizeof(char *));
	if (!l)
		return -ENOMEM;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (skip_dot && de->d_name[0] == '.')
			continue;
		/* grown here: strv_extend is linear per call (big store directories) */
		if (n + 2 > cap) {
			char **t = reallocarray(l, cap * 2, sizeof(char *));

			if (!t)
				return -ENOMEM;
			l = t;
			cap *= 2;
		}
		l[n] = strdup(de->d_name);
		if (!l[n])
			return -ENOMEM;
		l[++n] = NULL;
	}
	strv_sort(l);
	*ret = TAKE_PTR(l);
	return 0;
}
