/* rootfs.c: the container's root, built as Treadmill's native image does
 * (reference treadmill-architecture.md §1.5), run in the clone'd child. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

#include "../basic/fileio.h"
#include "../basic/util.h"
#include "container-internal.h"

/* Everything below that touches the new root goes through an fd of it:
 * paths inside are resolved with openat2(RESOLVE_IN_ROOT), so a symlink the
 * image (or an earlier run of a root service, on the volume) planted, absolute
 * or with "..", resolves inside the root as it will after pivot_root, never on
 * the host; mounts land on those fds (/proc/self/fd/N, move_mount).  Before
 * this, `opt -> /tmp/victim` in an image made a host directory 1777. */

static int root_open(int rootfd, const char *path, int flags, mode_t mode)
{
	struct open_how how = { .flags = (uint64_t)(flags | O_CLOEXEC),
				.mode = (flags & O_CREAT) ? mode : 0,
				.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
	long fd = syscall(SYS_openat2, rootfd, path, &how, sizeof(how));

	return fd < 0 ? negerrno() : (int)fd;
}

/* mkdir -p inside the root (symlinks followed inside it); returns an O_PATH
 * fd of the directory. */
static int root_mkdir_p(int rootfd, const char *path, mode_t mode)
{
	_cleanup_free_ char *p = strdup(path);
	_cleanup_close_ int cur = -1;

	if (!p)
		return -ENOMEM;
	cur = root_open(rootfd, path, O_PATH | O_DIRECTORY, 0); /* there already: the usual case */
	if (cur != -ENOENT)
		return TAKE_FD(cur);
	cur = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
	if (cur < 0)
		return negerrno();
	for (char *s = p; *s;) {
		char *end, save;
		int next;

		while (*s == '/')
			s++;
		if (!*s)
			break;
		end = strchrnul(s, '/');
		save = *end;
		*end = 0;
		if (mkdirat(cur, s, mode) < 0 && errno != EEXIST)
			return negerrno();
		next = root_open(rootfd, p, O_PATH | O_DIRECTORY, 0);
		*end = save;
		if (next < 0)
			return next;
		close(cur);
		cur = next;
		s = end;
	}
	return TAKE_FD(cur);
}

/* Mount a filesystem on the directory fd (what: its path, for messages). */
static int mount_on(const char *src, int fd, const char *what, const char *type, unsigned long flags,
		    const char *data, struct error *err)
{
	char p[32];

	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	if (mount(src, p, type, flags, data) < 0)
		return error_sys(err, errno, "mount %s on %s (%s)", src, what, type);
	return 0;
}

/* Bind dirfd/src (a host path with AT_FDCWD) on the fd: always nosuid and
 * nodev, read-only if ro, on every submount too (mount_setattr). */
static int bind_on(int dirfd, const char *src, int fd, const char *what, bool ro, bool rec, struct error *err)
{
	struct mount_attr attr = { .attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (ro ? MOUNT_ATTR_RDONLY : 0) };
	_cleanup_close_ int t = open_tree(dirfd, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (rec ? AT_RECURSIVE : 0));

	if (t < 0)
		return error_sys(err, errno, "bind %s on %s", src, what);
	if (mount_setattr(t, "", AT_EMPTY_PATH | (rec ? AT_RECURSIVE : 0), &attr, sizeof(attr)) < 0)
		return error_sys(err, errno, "bind %s on %s: set nosuid,nodev%s", src, what, ro ? ",ro" : "");
	if (move_mount(t, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		return error_sys(err, errno, "bind %s on %s", src, what);
	return 0;
}

/* Bind the host path src on root/<target>, making the mount point inside
 * the root (a dir, or an empty file) when missing. */
static int bind_into(int rootfd, const char *src, const char *target, bool ro, struct error *err)
{
	_cleanup_free_ char *parent = strdup(target);
	_cleanup_close_ int pfd = -1, fd = -1;
	struct stat st;
	char *slash;

	if (!parent)
		return error_sys(err, ENOMEM, "bind");
	if (stat(src, &st) < 0)
		return error_sys(err, errno, "bind source %s", src);
	if (S_ISDIR(st.st_mode)) {
		fd = root_mkdir_p(rootfd, target, 0755);
		if (fd < 0)
			return error_sys(err, -fd, "mount point %s", target);
		return bind_on(AT_FDCWD, src, fd, target, ro, true, err);
	}
	fd = root_open(rootfd, target, O_PATH, 0);
	if (fd == -ENOENT) {
		slash = strrchr(parent, '/');
		if (slash)
			*slash = 0;
		pfd = root_mkdir_p(rootfd, slash ? parent : "/", 0755);
		if (pfd < 0)
			return error_sys(err, -pfd, "mount point %s", target);
		fd = openat(pfd, slash ? slash + 1 : target, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC,
			    0644);
		if (fd >= 0) {
			close(fd);
			fd = root_open(rootfd, target, O_PATH, 0);
		} else
			fd = negerrno();
	}
	if (fd < 0)
		return error_sys(err, -fd, "mount point %s", target);
	return bind_on(AT_FDCWD, src, fd, target, ro, false, err);
}

/* Directories every root gets; sticky ones are 1777.  They live on the
 * volume, so /tmp, /var/tmp, /var/log are private and bounded by `disk`. */
static const struct {
	const char *path;
	bool sticky;
} skeleton[] = {
	{ "bin", false },     { "dev", false },	      { "etc", false },	      { "home", false },
	{ "opt", true },      { "proc", false },      { "root", false },      { "run", false },
	{ "sys", false },     { "tmp", true },	      { "usr", false },	      { "var", false },
	{ "var/cache", true }, { "var/empty", false }, { "var/lib", true },     { "var/lock", true },
	{ "var/log", true },  { "var/opt", true },    { "var/spool", true },   { "var/tmp", true },
	{ "services", false }, { "env", false },      { "mnt", false },
};
/* Host system dirs bound read-only.  Debian 12 has merged /usr: /bin, /lib,
 * /lib64, /sbin are symlinks there and are recreated as symlinks. */
static const char *const host_ro[] = { "usr", "etc", "bin", "sbin", "lib", "lib32", "lib64", "libx32" };

/* mkdir -p following no symlink at all: a component the image made a symlink
 * or a file is the image's own business and the entry is left as it is. */
static int skeleton_dir(int rootfd, const char *path, bool sticky)
{
	_cleanup_free_ char *p = strdup(path);
	_cleanup_close_ int cur = -1;

	if (!p)
		return -ENOMEM;
	cur = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
	if (cur < 0)
		return negerrno();
	for (char *s = p, *tok; (tok = strsep(&s, "/"));) {
		const int fl = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
		int next = openat(cur, tok, fl);

		if (next < 0 && errno == ENOENT) {
			if (mkdirat(cur, tok, 0755) < 0 && errno != EEXIST)
				return negerrno();
			next = openat(cur, tok, fl);
		}
		if (next < 0)
			return errno == ELOOP || errno == ENOTDIR ? 0 : negerrno();
		close(cur);
		cur = next;
	}
	if (sticky && fchmod(cur, 01777) < 0)
		return negerrno();
	return 0;
}

static int make_skeleton(int rootfd, struct error *err)
{
	for (size_t i = 0; i < ELEMENTSOF(skeleton); i++) {
		int r = skeleton_dir(rootfd, skeleton[i].path, skeleton[i].sticky);
		if (r < 0)
			return error_sys(err, r, "mkdir /%s", skeleton[i].path);
	}
	return 0;
}

static int bind_host_system(int rootfd, struct error *err)
{
	for (size_t i = 0; i < ELEMENTSOF(host_ro); i++) {
		_cleanup_free_ char *host = strdup_printf("/%s", host_ro[i]);
		_cleanup_close_ int fd = -1;
		struct stat st, dst_st;
		char link[PATH_MAX];
		ssize_t n;

		if (!host)
			return error_sys(err, ENOMEM, "root");
		if (lstat(host, &st) < 0)
			continue;
		if (S_ISLNK(st.st_mode)) {
			n = readlink(host, link, sizeof(link) - 1);
			if (n < 0)
				return error_sys(err, errno, "readlink %s", host);
			link[n] = 0;
			if (fstatat(rootfd, host_ro[i], &dst_st, AT_SYMLINK_NOFOLLOW) == 0) {
				if (S_ISLNK(dst_st.st_mode))
					continue;
				if (S_ISDIR(dst_st.st_mode)) /* our empty skeleton dir; an image's full dir stays and gets the bind */
					(void)unlinkat(rootfd, host_ro[i], AT_REMOVEDIR);
			}
			if (symlinkat(link, rootfd, host_ro[i]) < 0 && errno != EEXIST)
				return error_sys(err, errno, "symlink %s", host);
			if (fstatat(rootfd, host_ro[i], &dst_st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(dst_st.st_mode))
				continue;
		}
		if (!S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode))
			continue;
		fd = root_mkdir_p(rootfd, host, 0755);
		if (fd < 0)
			return error_sys(err, -fd, "mount point %s", host);
		if (bind_on(AT_FDCWD, host, fd, host, true, true, err) < 0)
			return -1;
	}
	return 0;
}

/* Host secrets that /etc (bound from the host) would show to a root
 * service: each is covered by an empty read-only file or directory. */
static const char *const masked_etc[] = {
	"/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-", "/etc/sudoers", "/etc/sudoers.d",
	"/etc/ssl/private", "/etc/security/opasswd", "/etc/krb5.keytab",
};

static int mask_one(const struct container_ctx *c, int rootfd, const char *path, struct error *err)
{
	_cleanup_close_ int fd = root_open(rootfd, path, O_PATH, 0);
	struct stat st;

	if (fd == -ENOENT)
		return 0;
	if (fd < 0 || fstat(fd, &st) < 0)
		return error_sys(err, fd < 0 ? -fd : errno, "mask %s", path);
	return bind_on(AT_FDCWD, S_ISDIR(st.st_mode) ? c->mask_dir : c->mask_file, fd, path, true, false, err);
}

static int mask_secrets(const struct container_ctx *c, int rootfd, struct error *err)
{
	_cleanup_close_ int sshfd = -1;
	DIR *d;
	struct dirent *de;
	int r = 0;

	for (size_t i = 0; i < ELEMENTSOF(masked_etc); i++) {
		r = mask_one(c, rootfd, masked_etc[i], err);
		if (r < 0)
			return r;
	}
	/* the host's ssh keys (private: every ssh_host_* but *.pub) */
	sshfd = root_open(rootfd, "/etc/ssh", O_RDONLY | O_DIRECTORY, 0);
	if (sshfd < 0)
		return 0;
	d = fdopendir(sshfd);
	if (!d)
		return error_sys(err, errno, "/etc/ssh");
	sshfd = -1; /* the DIR owns it now */
	while (r >= 0 && (de = readdir(d))) {
		_cleanup_free_ char *p = NULL;
		if (!startswith(de->d_name, "ssh_host_") || endswith(de->d_name, ".pub"))
			continue;
		p = strdup_printf("/etc/ssh/%s", de->d_name);
		r = p ? mask_one(c, rootfd, p, err) : error_sys(err, ENOMEM, "mask");
	}
	closedir(d);
	return r < 0 ? r : 0;
}

struct devnode {
	const char *name;
	mode_t mode;
	unsigned maj, min;
};

/* A fresh tmpfs with only the standard nodes (no host /dev): the one mount
 * without nodev.  The device cgroup (cg_devices_container) allows exactly
 * these, plus the ptys. */
static int make_dev(int rootfd, struct error *err)
{
	static const struct devnode nodes[] = {
		{ "null", 0666, 1, 3 }, { "zero", 0666, 1, 5 },	 { "full", 0666, 1, 7 },
		{ "tty", 0666, 5, 0 },	{ "random", 0666, 1, 8 }, { "urandom", 0666, 1, 9 },
	};
	static const char *const links[][2] = {
		{ "/proc/self/fd", "fd" }, { "/proc/self/fd/0", "stdin" }, { "/proc/self/fd/1", "stdout" },
		{ "/proc/self/fd/2", "stderr" }, { "pts/ptmx", "ptmx" },
	};
	static const char *const subdirs[] = { "pts", "shm", "mqueue" };
	_cleanup_close_ int fd = root_mkdir_p(rootfd, "/dev", 0755), devfd = -1;
	struct group *tty = getgrnam("tty");
	_cleanup_free_ char *ptsopt =
		strdup_printf("newinstance,ptmxmode=0666,mode=0620,gid=%u", tty ? (unsigned)tty->gr_gid : 5u);
	int r;

	if (fd < 0)
		return error_sys(err, -fd, "mount point /dev");
	if (!ptsopt)
		return error_sys(err, ENOMEM, "/dev");
	r = mount_on("tmpfs", fd, "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k", err);
	if (r < 0)
		return r;
	devfd = root_open(rootfd, "/dev", O_PATH | O_DIRECTORY, 0);
	if (devfd < 0)
		return error_sys(err, -devfd, "/dev");
	for (size_t i = 0; i < ELEMENTSOF(nodes); i++) {
		if (mknodat(devfd, nodes[i].name, S_IFCHR | nodes[i].mode, makedev(nodes[i].maj, nodes[i].min)) < 0)
			return error_sys(err, errno, "mknod /dev/%s", nodes[i].name);
		(void)fchmodat(devfd, nodes[i].name, nodes[i].mode, 0);
	}
	for (size_t i = 0; i < ELEMENTSOF(links); i++)
		if (symlinkat(links[i][0], devfd, links[i][1]) < 0)
			return error_sys(err, errno, "symlink /dev/%s", links[i][1]);
	for (size_t i = 0; i < ELEMENTSOF(subdirs); i++) {
		_cleanup_close_ int sub = -1;
		if (mkdirat(devfd, subdirs[i], 0755) < 0 ||
		    (sub = openat(devfd, subdirs[i], O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
			return error_sys(err, errno, "mkdir /dev/%s", subdirs[i]);
		if (i == 0)
			r = mount_on("devpts", sub, "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, ptsopt, err);
		else if (i == 1)
			r = mount_on("shm", sub, "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", err);
		else
			r = mount_on("mqueue", sub, "/dev/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, err);
		if (r < 0)
			return r;
	}
	return 0;
}

static int do_mount(const char *src, const char *dst, const char *type, unsigned long flags, const char *data,
		    struct error *err)
{
	if (mount(src, dst, type, flags, data) < 0)
		return error_sys(err, errno, "mount %s on %s (%s)", src ? src : "none", dst, type ? type : "bind");
	return 0;
}

/* data/vol and data/root are the node's own paths (the container sees
 * neither vol/ nor root/ itself), so plain paths are safe here. */
static int mount_volume(const struct container_ctx *c, struct error *err)
{
	_cleanup_free_ char *upper = NULL, *work = NULL, *opts = NULL, *vroot = NULL;
	int r;

	if (c->loop_dev)
		r = do_mount(c->loop_dev, c->vol_dir, "ext4", MS_NOSUID | MS_NODEV, NULL, err);
	else
		r = do_mount("tmpfs", c->vol_dir, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755", err);
	if (r < 0)
		return r;
	if (!c->image_rootfs) {
		vroot = strdup_printf("%s/root", c->vol_dir);
		if (!vroot)
			return error_sys(err, ENOMEM, "root");
		if (mkdir(vroot, 0755) < 0 && errno != EEXIST)
			return error_sys(err, errno, "mkdir %s", vroot);
		return do_mount(vroot, c->root_dir, NULL, MS_BIND, NULL, err);
	}
	/* tar image: the shared unpacked tree is the read-only lower layer,
	 * this container's volume holds the writable upper layer */
	upper = strdup_printf("%s/upper", c->vol_dir);
	work = strdup_printf("%s/work", c->vol_dir);
	opts = strdup_printf("lowerdir=%s,upperdir=%s,workdir=%s", c->image_rootfs, upper, work);
	if (!upper || !work || !opts)
		return error_sys(err, ENOMEM, "overlay");
	if ((mkdir(upper, 0755) < 0 && errno != EEXIST) || (mkdir(work, 0755) < 0 && errno != EEXIST))
		return error_sys(err, errno, "mkdir %s", upper);
	return do_mount("overlay", c->root_dir, "overlay", MS_NOSUID | MS_NODEV, opts, err);
}

/* /proc entries that reach the host kernel: read-only (sys, sysrq-trigger,
 * irq, bus, fs) or hidden behind an empty file (kcore, keys, timer_list ...),
 * so a root service cannot change kernel settings for the whole machine. */
static int protect_proc(const struct container_ctx *c, int procfd, struct error *err)
{
	static const char *const ro[] = { "sys", "sysrq-trigger", "irq", "bus", "fs" };
	static const char *const masked[] = { "kcore", "keys", "timer_list", "sched_debug", "kallsyms" };

	for (size_t i = 0; i < ELEMENTSOF(ro) + ELEMENTSOF(masked); i++) {
		bool is_ro = i < ELEMENTSOF(ro);
		const char *name = is_ro ? ro[i] : masked[i - ELEMENTSOF(ro)];
		_cleanup_close_ int fd = openat(procfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		int r;

		if (fd < 0)
			continue;
		r = is_ro ? bind_on(procfd, name, fd, name, true, true, err)
			  : bind_on(AT_FDCWD, c->mask_file, fd, name, true, false, err);
		if (r < 0)
			return error_prefix(err, "/proc");
	}
	return 0;
}

/* A new network namespace starts with lo down. */
static int loopback_up(struct error *err)
{
	_cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr;

	if (fd < 0)
		return error_sys(err, errno, "loopback: socket");
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		return error_sys(err, errno, "loopback: get flags");
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		return error_sys(err, errno, "loopback: up");
	return 0;
}

/* A fresh filesystem on root/<path> (mount point made inside the root). */
static int mount_fs(int rootfd, const char *path, const char *type, unsigned long flags, const char *data,
		    struct error *err)
{
	_cleanup_close_ int fd = root_mkdir_p(rootfd, path, 0755);

	if (fd < 0)
		return error_sys(err, -fd, "mount point %s", path);
	return mount_on(type, fd, path, type, flags, data, err);
}

/* /app.json: a copy of data/app.json, never written through a symlink. */
static void copy_app_json(const struct container_ctx *c, int rootfd)
{
	_cleanup_free_ char *p = strdup_printf("%s/app.json", c->data_dir), *text = NULL;
	_cleanup_close_ int fd = -1;
	size_t len;

	if (!p || read_file(p, &text, &len) < 0)
		return;
	(void)unlinkat(rootfd, "app.json", 0);
	fd = openat(rootfd, "app.json", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd >= 0)
		(void)!write(fd, text, len);
}

int rootfs_setup(const struct container_ctx *c, struct error *err)
{
	static const char *const overlays[] = { "/etc/hosts", "/etc/resolv.conf" };
	const struct container_config *cfg = c->cfg;
	const char *hostname = cfg->hostname ? cfg->hostname : cfg->uniqueid ? cfg->uniqueid : cfg->unique_name;
	_cleanup_close_ int rootfd = -1, procfd = -1;
	_cleanup_free_ char *env = NULL;
	int r;

	r = do_mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL, err);
	if (r < 0)
		return r;
	if (sethostname(hostname, strnlen(hostname, 64)) < 0)
		return error_sys(err, errno, "sethostname %s", hostname);
	if (!cfg->shared_network) {
		r = loopback_up(err);
		if (r < 0)
			return r;
	}
	r = mount_volume(c, err);
	if (r < 0)
		return r;
	rootfd = open(c->root_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return error_sys(err, errno, "open %s", c->root_dir);
	r = make_skeleton(rootfd, err);
	if (r >= 0)
		r = bind_host_system(rootfd, err);
	if (r < 0)
		return r;

	/* fresh /proc (new pid namespace) and a read-only /sys */
	r = mount_fs(rootfd, "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, err);
	if (r < 0)
		return r;
	procfd = root_open(rootfd, "/proc", O_PATH | O_DIRECTORY, 0);
	if (procfd < 0)
		return error_sys(err, -procfd, "/proc");
	r = protect_proc(c, procfd, err);
	if (r >= 0)
		r = mount_fs(rootfd, "/sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, err);
	if (r >= 0)
		r = make_dev(rootfd, err);
	if (r >= 0)
		r = mount_fs(rootfd, "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755", err);
	if (r < 0)
		return r;

	/* treadle itself, the app cgroup's procs files, /env, /services, the overlays */
	r = bind_into(rootfd, c->treadle_bin, CONTAINER_TREADLE, true, err);
	if (r < 0)
		return r;
	for (size_t i = 0; c->cg_procs && c->cg_procs[i]; i++) {
		_cleanup_free_ char *t = strdup_printf(CONTAINER_CGROUP_DIR "/%zu", i);
		if (!t)
			return error_sys(err, ENOMEM, "root");
		r = bind_into(rootfd, c->cg_procs[i], t, false, err);
		if (r < 0)
			return r;
	}
	env = strdup_printf("%s/env", c->data_dir);
	if (!env)
		return error_sys(err, ENOMEM, "root");
	r = bind_into(rootfd, env, "/env", true, err);
	if (r >= 0)
		r = bind_into(rootfd, c->services_dir, "/services", false, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < ELEMENTSOF(overlays); i++) {
		_cleanup_free_ char *src = strdup_printf("%s/overlay%s", c->data_dir, overlays[i]);
		if (!src)
			return error_sys(err, ENOMEM, "root");
		if (access(src, F_OK) < 0)
			continue;
		r = bind_into(rootfd, src, overlays[i], true, err);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < cfg->n_binds; i++) {
		r = bind_into(rootfd, cfg->binds[i].source, cfg->binds[i].target, cfg->binds[i].readonly, err);
		if (r < 0)
			return r;
	}
	r = mask_secrets(c, rootfd, err);
	if (r < 0)
		return r;
	copy_app_json(c, rootfd);

	/* pivot_root(".", ".") then detach the old root stacked under it */
	if (fchdir(rootfd) < 0)
		return error_sys(err, errno, "chdir %s", c->root_dir);
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return error_sys(err, errno, "pivot_root %s", c->root_dir);
	if (umount2(".", MNT_DETACH) < 0)
		return error_sys(err, errno, "detach the host root");
	if (chdir("/") < 0)
		return error_sys(err, errno, "chdir /");
	return 0;
}

int container_write_file(const char *path, const void *data, size_t len)
{
	_cleanup_free_ char *tmp = strdup_printf("%s.tmpXXXXXX", path);
	_cleanup_close_ int fd = -1;
	int r = 0;

	if (!tmp)
		return -ENOMEM;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return negerrno();
	if (fchmod(fd, 0644) < 0 || (len && write(fd, data, len) != (ssize_t)len))
		r = negerrno();
	if (r >= 0 && rename(tmp, path) < 0)
		r = negerrno();
	if (r < 0)
		(void)unlink(tmp);
	return r;
}

static int write_env(const struct container_ctx *c, struct error *err)
{
	_cleanup_free_ char *dir = strdup_printf("%s/env", c->data_dir);
	int r;

	if (!dir)
		return error_sys(err, ENOMEM, "env");
	if (mkdir_p(dir, 0755) < 0)
		return error_sys(err, errno, "mkdir %s", dir);
	for (char *const *e = c->cfg->env; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		_cleanup_free_ char *name = eq ? strndup(*e, (size_t)(eq - *e)) : NULL;
		_cleanup_free_ char *val = eq ? strdup(eq + 1) : NULL;
		if (!name || !val || !*name || strchr(name, '/') || name[0] == '.')
			return error_set(err, ERR_USAGE, 0, "env: bad entry '%s'", *e);
		/* s6-envdir format: first line is the value; a newline inside is stored as NUL */
		size_t len = strlen(val);
		for (size_t i = 0; i < len; i++)
			if (val[i] == '\n')
				val[i] = 0;
		_cleanup_free_ char *path = strdup_printf("%s/%s", dir, name);
		if (!path)
			return error_sys(err, ENOMEM, "env");
		r = container_write_file(path, val, len);
		if (r < 0)
			return error_sys(err, r, "write %s", path);
	}
	return 0;
}

/* Names that stay on loopback (the machine's, not the host's own). */
static bool loopback_name(const char *n)
{
	return startswith(n, "localhost") || startswith(n, "ip6-");
}

/* The host's hosts file with every other name of a loopback line (127/8, ::1)
 * moved to one "<host_ip> names..." line: inside a private network, loopback
 * is the container's own.  Lines left without a name are dropped. *ret owned. */
static int hosts_for_private(const char *hosts, const char *host_ip, char **ret)
{
	_cleanup_free_ char *out = NULL, *moved = NULL, *copy = strdup(hosts);
	size_t len = 0, mlen = 0;
	FILE *f = open_memstream(&out, &len), *m = open_memstream(&moved, &mlen);
	char *save = NULL;

	if (!f || !m || !copy) {
		if (f)
			fclose(f);
		if (m)
			fclose(m);
		return -ENOMEM;
	}
	for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char buf[1024], *hash, *tok, *s2 = NULL;
		const char *addr;
		bool kept = false;

		snprintf(buf, sizeof(buf), "%s", l);
		if ((hash = strchr(buf, '#')))
			*hash = 0;
		addr = strtok_r(buf, " \t", &s2);
		if (!addr || strlen(l) >= sizeof(buf) || (!startswith(addr, "127.") && strcmp(addr, "::1"))) {
			fprintf(f, "%s\n", l);
			continue;
		}
		while ((tok = strtok_r(NULL, " \t", &s2))) {
			if (loopback_name(tok)) {
				fprintf(f, "%s%s", kept ? " " : addr, kept ? "" : "\t");
				fputs(tok, f);
				kept = true;
			} else
				fprintf(m, " %s", tok);
		}
		if (kept)
			fputc('\n', f);
	}
	fclose(m);
	if (mlen)
		fprintf(f, "%s\t%s\n", host_ip, moved + 1);
	if (fclose(f) != 0)
		return -ENOMEM;
	*ret = TAKE_PTR(out);
	return 0;
}

static int write_overlay(const struct container_ctx *c, struct error *err)
{
	const struct container_config *cfg = c->cfg;
	const char *hostname = cfg->hostname ? cfg->hostname : cfg->uniqueid ? cfg->uniqueid : cfg->unique_name;
	_cleanup_free_ char *dir = strdup_printf("%s/overlay/etc", c->data_dir);
	_cleanup_free_ char *hosts = NULL, *resolv = NULL, *text = NULL, *out = NULL, *path = NULL;
	int r;

	if (!dir)
		return error_sys(err, ENOMEM, "overlay");
	if (mkdir_p(dir, 0755) < 0)
		return error_sys(err, errno, "mkdir %s", dir);
	if (read_file("/etc/hosts", &hosts, NULL) < 0)
		hosts = strdup("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
	if (hosts && cfg->hosts_host_ip) {
		char *h = NULL;

		if (hosts_for_private(hosts, cfg->hosts_host_ip, &h) < 0)
			return error_sys(err, ENOMEM, "overlay");
		free(hosts);
		hosts = h;
	}
	out = hosts ? strdup_printf("%s%s127.0.1.1\t%s\n", hosts, endswith(hosts, "\n") || !*hosts ? "" : "\n",
				    hostname)
		    : NULL;
	path = strdup_printf("%s/hosts", dir);
	if (!out || !path)
		return error_sys(err, ENOMEM, "overlay");
	r = container_write_file(path, out, strlen(out));
	if (r < 0)
		return error_sys(err, r, "write %s", path);
	free(path);
	path = strdup_printf("%s/resolv.conf", dir);
	if (!path)
		return error_sys(err, ENOMEM, "overlay");
	if (read_file("/etc/resolv.conf", &resolv, NULL) < 0)
		resolv = strdup("");
	if (!resolv)
		return error_sys(err, ENOMEM, "overlay");
	r = container_write_file(path, resolv, strlen(resolv));
	if (r < 0)
		return error_sys(err, r, "write %s", path);
	(void)text;
	return 0;
}

/* The empty file and directory that cover host secrets (read-only binds). */
static int write_masks(const struct container_ctx *c, struct error *err)
{
	int fd;

	if (access(c->mask_file, F_OK) < 0) {
		fd = open(c->mask_file, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0444);
		if (fd < 0)
			return error_sys(err, errno, "create %s", c->mask_file);
		close(fd);
	}
	if (mkdir(c->mask_dir, 0555) < 0 && errno != EEXIST)
		return error_sys(err, errno, "mkdir %s", c->mask_dir);
	return 0;
}

int rootfs_prepare_data(const struct container_ctx *c, struct error *err)
{
	int r = write_env(c, err);

	if (r >= 0)
		r = write_overlay(c, err);
	if (r >= 0)
		r = write_masks(c, err);
	return r;
}
