/* volume.c: each container's local disk, a sparse ext4 image
 * <node_root>/volumes/<unique>.img on a loop device (LVM and filesystem
 * quotas are unavailable on these kernels).  The loop device is configured
 * with LO_FLAGS_AUTOCLEAR: it detaches by itself once the container's mount
 * namespace (the only place it is mounted) is gone. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <spawn.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#include "../basic/fileio.h"
#include "../basic/util.h"
#include "container-internal.h"

extern char **environ;

static char *volume_path(const char *node_root, const char *unique)
{
	return strdup_printf("%s/volumes/%s.img", node_root, unique);
}

static int run_mkfs(const char *img, struct error *err)
{
	char *const argv[] = { "mkfs.ext4", "-q", "-F", "-m", "0", "-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard",
			       (char *)img, NULL };
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int r, status;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	r = posix_spawnp(&pid, "mkfs.ext4", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (r != 0)
		return error_sys(err, r, "volume: spawn mkfs.ext4");
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return error_sys(err, errno, "volume: wait mkfs.ext4");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return error_set(err, ERR_TEMP, 0, "volume: mkfs.ext4 %s failed (status %d)", img, status);
	return 0;
}

static int loop_attach(const char *img, char **ret_dev, int *ret_fd, dev_t *ret_devnum, struct error *err)
{
	_cleanup_close_ int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	_cleanup_close_ int backing = open(img, O_RDWR | O_CLOEXEC);

	if (ctl < 0)
		return error_sys(err, errno, "volume: /dev/loop-control");
	if (backing < 0)
		return error_sys(err, errno, "volume: %s", img);
	for (int attempt = 0; attempt < 64; attempt++) {
		struct loop_config lc;
		_cleanup_free_ char *dev = NULL;
		_cleanup_close_ int fd = -1;
		int n = ioctl(ctl, LOOP_CTL_GET_FREE);

		if (n < 0)
			return error_sys(err, errno, "volume: LOOP_CTL_GET_FREE");
		dev = strdup_printf("/dev/loop%d", n);
		if (!dev)
			return error_sys(err, ENOMEM, "volume");
		if (access(dev, F_OK) < 0 && mknod(dev, S_IFBLK | 0660, makedev(7, (unsigned)n)) < 0 && errno != EEXIST)
			return error_sys(err, errno, "volume: mknod %s", dev);
		fd = open(dev, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			return error_sys(err, errno, "volume: %s", dev);
		memset(&lc, 0, sizeof(lc));
		lc.fd = (unsigned)backing;
		lc.info.lo_flags = LO_FLAGS_AUTOCLEAR;
		snprintf((char *)lc.info.lo_file_name, sizeof(lc.info.lo_file_name), "%s", img);
		if (ioctl(fd, LOOP_CONFIGURE, &lc) < 0) {
			if (errno == EBUSY)
				continue; /* another process took it between GET_FREE and CONFIGURE */
			return error_sys(err, errno, "volume: LOOP_CONFIGURE %s", dev);
		}
		*ret_devnum = makedev(7, (unsigned)n);
		*ret_fd = TAKE_FD(fd);
		*ret_dev = TAKE_PTR(dev);
		return 0;
	}
	return error_set(err, ERR_TEMP, EBUSY, "volume: no free loop device");
}

/* Copy the data extents of src into a new sparse file dst of the same size. */
static int sparse_copy(const char *src, const char *dst, uint64_t size)
{
	_cleanup_close_ int in = open(src, O_RDONLY | O_CLOEXEC);
	_cleanup_close_ int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	off_t pos = 0;

	if (in < 0 || out < 0)
		return negerrno();
	if (ftruncate(out, (off_t)size) < 0)
		return negerrno();
	for (;;) {
		off_t data = lseek(in, pos, SEEK_DATA), hole;
		if (data < 0)
			return errno == ENXIO ? 0 : negerrno();
		hole = lseek(in, data, SEEK_HOLE);
		if (hole < 0)
			return negerrno();
		for (off_t o_in = data, o_out = data; o_in < hole;) {
			ssize_t n = copy_file_range(in, &o_in, out, &o_out, (size_t)(hole - o_in), 0);
			if (n < 0)
				return negerrno();
			if (n == 0)
				break;
		}
		pos = hole;
	}
}

/* A fresh ext4 image of `bytes`: mkfs.ext4 runs once per size into
 * volumes/.templates/<bytes>.img; each volume is a sparse copy of it (a few
 * MiB of metadata) instead of a fork+exec of mkfs per container. */
static int volume_from_template(const char *node_root, const char *img, uint64_t bytes, struct error *err)
{
	_cleanup_free_ char *tdir = strdup_printf("%s/volumes/.templates", node_root);
	_cleanup_free_ char *tpl = strdup_printf("%s/volumes/.templates/%llu.img", node_root, (unsigned long long)bytes);
	_cleanup_free_ char *tmp = strdup_printf("%s.tmp%d", img, (int)getpid());
	int r;

	if (!tdir || !tpl || !tmp)
		return error_sys(err, ENOMEM, "volume");
	if (access(tpl, F_OK) < 0) {
		_cleanup_free_ char *ttmp = strdup_printf("%s.tmp%d", tpl, (int)getpid());
		_cleanup_close_ int fd = -1;
		if (!ttmp)
			return error_sys(err, ENOMEM, "volume");
		if (mkdir_p(tdir, 0700) < 0)
			return error_sys(err, errno, "volume: %s", tdir);
		fd = open(ttmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0 || ftruncate(fd, (off_t)bytes) < 0) {
			r = error_sys(err, errno, "volume: %s", ttmp);
			(void)unlink(ttmp);
			return r;
		}
		close(TAKE_FD(fd));
		r = run_mkfs(ttmp, err);
		if (r >= 0 && rename(ttmp, tpl) < 0)
			r = error_sys(err, errno, "volume: %s", tpl);
		if (r < 0) {
			(void)unlink(ttmp);
			return r;
		}
	}
	(void)unlink(tmp);
	r = sparse_copy(tpl, tmp, bytes);
	if (r >= 0 && rename(tmp, img) < 0)
		r = negerrno();
	if (r < 0) {
		(void)unlink(tmp);
		return error_sys(err, r, "volume: copy %s to %s", tpl, img);
	}
	return 0;
}

bool volume_needs_mkfs(const char *node_root, const char *unique, uint64_t bytes)
{
	_cleanup_free_ char *img = volume_path(node_root, unique);
	_cleanup_free_ char *tpl = NULL;
	struct stat st;

	if (bytes < 8 << 20)
		bytes = 8 << 20; /* as volume_attach */
	if (img && stat(img, &st) == 0 && (uint64_t)st.st_size == bytes)
		return false;
	tpl = strdup_printf("%s/volumes/.templates/%llu.img", node_root, (unsigned long long)bytes);
	return !tpl || access(tpl, F_OK) < 0;
}

int volume_attach(const char *node_root, const char *unique, uint64_t bytes, char **ret_dev, int *ret_fd,
		  dev_t *ret_devnum, struct error *err)
{
	_cleanup_free_ char *dir = strdup_printf("%s/volumes", node_root);
	_cleanup_free_ char *img = volume_path(node_root, unique);
	struct stat st;
	int r;

	if (!dir || !img)
		return error_sys(err, ENOMEM, "volume");
	if (bytes < 8 << 20)
		bytes = 8 << 20; /* ext4's practical minimum with a journal */
	if (mkdir_p(dir, 0700) < 0)
		return error_sys(err, errno, "volume: %s", dir);
	/* a restarted instance re-attaches its volume; a size change starts afresh */
	if (stat(img, &st) < 0 || (uint64_t)st.st_size != bytes) {
		r = volume_from_template(node_root, img, bytes, err);
		if (r < 0)
			return r;
	}
	return loop_attach(img, ret_dev, ret_fd, ret_devnum, err);
}

/* Detach every loop device backed by path (under = false) or by a file under
 * path (under = true); returns how many were detached. */
static int loop_detach_backed(const char *path, bool under)
{
	_cleanup_closedir_ DIR *d = opendir("/sys/block");
	struct dirent *de;
	size_t plen = strlen(path);
	int n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		_cleanup_free_ char *bf = NULL, *text = NULL, *dev = NULL;
		size_t len;

		if (!startswith(de->d_name, "loop"))
			continue;
		bf = strdup_printf("/sys/block/%s/loop/backing_file", de->d_name);
		if (!bf || read_file(bf, &text, &len) < 0)
			continue;
		text[strcspn(text, "\n")] = 0;
		if (endswith(text, " (deleted)"))
			text[strlen(text) - 10] = 0;
		if (under ? strncmp(text, path, plen) != 0 || (text[plen] != '/' && text[plen] != 0)
			  : strcmp(text, path) != 0)
			continue;
		dev = strdup_printf("/dev/%s", de->d_name);
		if (dev) {
			_cleanup_close_ int fd = open(dev, O_RDONLY | O_CLOEXEC);
			if (fd >= 0 && ioctl(fd, LOOP_CLR_FD, 0) == 0) /* busy: the kernel sets autoclear instead */
				n++;
		}
	}
	return n;
}

/* Detach every loop device backed by img (normally none: autoclear). */
static void loop_detach_all(const char *img)
{
	(void)loop_detach_backed(img, false);
}

int container_loops_release(const char *dir)
{
	return loop_detach_backed(dir, true);
}

int volume_release(const char *node_root, const char *unique, struct error *err)
{
	_cleanup_free_ char *img = volume_path(node_root, unique);

	if (!img)
		return error_sys(err, ENOMEM, "volume");
	loop_detach_all(img);
	if (unlink(img) < 0 && errno != ENOENT)
		return error_sys(err, errno, "volume: remove %s", img);
	return 0;
}
