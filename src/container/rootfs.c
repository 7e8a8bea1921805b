/* rootfs.c: the container's root, built as Treadmill's native image does
 * (reference treadmill-architecture.md §1.5), run in the clone'd child. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
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

#define MS_RO_FLAGS (MS_NOSUID | MS_NODEV)

static int do_mount(const char *src, const char *dst, const char *type, unsigned long flags, const char *data,
		    struct error *err)
{
	if (mount(src, dst, type, flags, data) < 0)
		return error_sys(err, errno, "mount %s on %s (%s)", src ? src : "none", dst, type ? type : "bind");
	return 0;
}

/* Bind src on dst; read-only needs a second, remounting mount. */
static int bind_mount(const char *src, const char *dst, bool ro, bool rec, struct error *err)
{
	int r = do_mount(src, dst, NULL, MS_BIND | (rec ? MS_REC : 0), NULL, err);

	if (r < 0 || !ro)
		return r;
	return do_mount(NULL, dst, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL, err);
}

static char *in_root(const struct container_ctx *c, const char *path)
{
	return strdup_printf("%s%s", c->root_dir, path);
}

/* Create the mount point for src at root/<target>: a dir, or an empty file. */
static int make_target(const char *src, const char *dst, struct error *err)
{
	struct stat st;
	_cleanup_free_ char *parent = strdup(dst);
	char *slash;
	int fd;

	if (!parent)
		return error_sys(err, ENOMEM, "mkdir");
	if (access(dst, F_OK) == 0)
		return 0;
	if (stat(src, &st) < 0)
		return error_sys(err, errno, "bind source %s", src);
	if (S_ISDIR(st.st_mode)) {
		if (mkdir_p(dst, 0755) < 0)
			return error_sys(err, errno, "mkdir %s", dst);
		return 0;
	}
	slash = strrchr(parent, '/');
	if (slash && slash != parent) {
		*slash = 0;
		if (mkdir_p(parent, 0755) < 0)
			return error_sys(err, errno, "mkdir %s", parent);
	}
	fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
	if (fd < 0)
		return error_sys(err, errno, "create %s", dst);
	close(fd);
	return 0;
}

static int bind_into(const struct container_ctx *c, const char *src, const char *target, bool ro, struct error *err)
{
	_cleanup_free_ char *dst = in_root(c, target);
	int r;

	if (!dst)
		return error_sys(err, ENOMEM, "bind");
	r = make_target(src, dst, err);
	if (r < 0)
		return r;
	return bind_mount(src, dst, ro, true, err);
}

static const char *const empty_dirs[] = {
	"/bin", "/dev", "/etc", "/home", "/opt", "/proc", "/root", "/run", "/sys", "/tmp", "/usr", "/var",
	"/var/cache", "/var/empty", "/var/lib", "/var/lock", "/var/log", "/var/opt", "/var/spool", "/var/tmp",
	"/services", "/env", "/mnt",
};
static const char *const sticky_dirs[] = {
	"/opt", "/tmp", "/var/cache", "/var/lib", "/var/lock", "/var/log", "/var/opt", "/var/tmp", "/var/spool",
};
/* Host system dirs bound read-only.  Debian 12 has merged /usr: /bin, /lib,
 * /lib64, /sbin are symlinks there and are recreated as symlinks. */
static const char *const host_ro[] = { "/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32" };

static int make_skeleton(const struct container_ctx *c, struct error *err)
{
	for (size_t i = 0; i < ELEMENTSOF(empty_dirs); i++) {
		_cleanup_free_ char *p = in_root(c, empty_dirs[i]);
		struct stat st;
		if (!p)
			return error_sys(err, ENOMEM, "mkdir");
		if (lstat(p, &st) == 0 && S_ISLNK(st.st_mode))
			continue; /* a tar image's /bin -> usr/bin */
		if (mkdir_p(p, 0755) < 0)
			return error_sys(err, errno, "mkdir %s", p);
	}
	for (size_t i = 0; i < ELEMENTSOF(sticky_dirs); i++) {
		_cleanup_free_ char *p = in_root(c, sticky_dirs[i]);
		if (!p)
			return error_sys(err, ENOMEM, "chmod");
		if (chmod(p, 01777) < 0)
			return error_sys(err, errno, "chmod %s", p);
	}
	return 0;
}

static int bind_host_system(const struct container_ctx *c, struct error *err)
{
	for (size_t i = 0; i < ELEMENTSOF(host_ro); i++) {
		_cleanup_free_ char *dst = in_root(c, host_ro[i]);
		struct stat st, dst_st;
		char link[PATH_MAX];
		ssize_t n;
		int r;

		if (!dst)
			return error_sys(err, ENOMEM, "root");
		if (lstat(host_ro[i], &st) < 0)
			continue;
		if (S_ISLNK(st.st_mode)) {
			n = readlink(host_ro[i], link, sizeof(link) - 1);
			if (n < 0)
				return error_sys(err, errno, "readlink %s", host_ro[i]);
			link[n] = 0;
			if (lstat(dst, &dst_st) == 0) {
				if (S_ISLNK(dst_st.st_mode))
					continue;
				if (S_ISDIR(dst_st.st_mode))
					(void)rmdir(dst); /* our empty skeleton dir; an image's full dir stays and gets the bind */
			}
			if (symlink(link, dst) < 0 && errno != EEXIST)
				return error_sys(err, errno, "symlink %s", dst);
			if (lstat(dst, &dst_st) == 0 && S_ISLNK(dst_st.st_mode))
				continue;
		}
		if (!S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode))
			continue;
		r = make_target(host_ro[i], dst, err);
		if (r >= 0)
			r = bind_mount(host_ro[i], dst, true, true, err);
		if (r < 0)
			return r;
	}
	return 0;
}

struct devnode {
	const char *name;
	mode_t mode;
	unsigned maj, min;
};

static int make_dev(const struct container_ctx *c, struct error *err)
{
	static const struct devnode nodes[] = {
		{ "null", 0666, 1, 3 }, { "zero", 0666, 1, 5 },	 { "full", 0666, 1, 7 },
		{ "tty", 0666, 5, 0 },	{ "random", 0666, 1, 8 }, { "urandom", 0666, 1, 9 },
	};
	static const char *const links[][2] = {
		{ "/proc/self/fd", "fd" }, { "/proc/self/fd/0", "stdin" }, { "/proc/self/fd/1", "stdout" },
		{ "/proc/self/fd/2", "stderr" }, { "pts/ptmx", "ptmx" },
	};
	_cleanup_free_ char *dev = in_root(c, "/dev");
	struct group *tty = getgrnam("tty");
	_cleanup_free_ char *ptsopt =
		strdup_printf("newinstance,ptmxmode=0666,mode=0620,gid=%u", tty ? (unsigned)tty->gr_gid : 5u);
	int r;

	if (!dev || !ptsopt)
		return error_sys(err, ENOMEM, "/dev");
	r = do_mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k", err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < ELEMENTSOF(nodes); i++) {
		_cleanup_free_ char *p = strdup_printf("%s/%s", dev, nodes[i].name);
		if (!p)
			return error_sys(err, ENOMEM, "/dev");
		if (mknod(p, S_IFCHR | nodes[i].mode, makedev(nodes[i].maj, nodes[i].min)) < 0)
			return error_sys(err, errno, "mknod %s", p);
		(void)chmod(p, nodes[i].mode);
	}
	for (size_t i = 0; i < ELEMENTSOF(links); i++) {
		_cleanup_free_ char *p = strdup_printf("%s/%s", dev, links[i][1]);
		if (!p || symlink(links[i][0], p) < 0)
			return error_sys(err, p ? errno : ENOMEM, "symlink /dev/%s", links[i][1]);
	}
	static const char *const subdirs[] = { "pts", "shm", "mqueue" };
	for (size_t i = 0; i < ELEMENTSOF(subdirs); i++) {
		_cleanup_free_ char *p = strdup_printf("%s/%s", dev, subdirs[i]);
		if (!p || mkdir(p, 0755) < 0)
			return error_sys(err, p ? errno : ENOMEM, "mkdir /dev/%s", subdirs[i]);
		if (i == 0)
			r = do_mount("devpts", p, "devpts", MS_NOSUID | MS_NOEXEC, ptsopt, err);
		else if (i == 1)
			r = do_mount("shm", p, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", err);
		else
			r = do_mount("mqueue", p, "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, err);
		if (r < 0)
			return r;
	}
	return 0;
}

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
		return bind_mount(vroot, c->root_dir, false, false, err);
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
 * irq, bus, fs) or hidden behind /dev/null (kcore, keys, timer_list ...), so a
 * root service cannot change kernel settings for the whole machine. */
static int protect_proc(const char *proc, struct error *err)
{
	static const char *const ro[] = { "sys", "sysrq-trigger", "irq", "bus", "fs" };
	static const char *const masked[] = { "kcore", "keys", "timer_list", "sched_debug", "kallsyms" };
	int r;

	for (size_t i = 0; i < ELEMENTSOF(ro); i++) {
		_cleanup_free_ char *p = strdup_printf("%s/%s", proc, ro[i]);
		if (!p)
			return error_sys(err, ENOMEM, "/proc");
		if (access(p, F_OK) < 0)
			continue;
		r = bind_mount(p, p, true, true, err);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < ELEMENTSOF(masked); i++) {
		_cleanup_free_ char *p = strdup_printf("%s/%s", proc, masked[i]);
		if (!p)
			return error_sys(err, ENOMEM, "/proc");
		if (access(p, F_OK) < 0)
			continue;
		r = do_mount("/dev/null", p, NULL, MS_BIND, NULL, err);
		if (r < 0)
			return r;
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

int rootfs_setup(const struct container_ctx *c, struct error *err)
{
	const struct container_config *cfg = c->cfg;
	const char *hostname = cfg->hostname ? cfg->hostname : cfg->uniqueid ? cfg->uniqueid : cfg->unique_name;
	_cleanup_free_ char *p = NULL;
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
	r = make_skeleton(c, err);
	if (r >= 0)
		r = bind_host_system(c, err);
	if (r < 0)
		return r;

	/* fresh /proc (new pid namespace) and a read-only /sys */
	p = in_root(c, "/proc");
	if (!p)
		return error_sys(err, ENOMEM, "root");
	r = do_mount("proc", p, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, err);
	if (r < 0)
		return r;
	r = protect_proc(p, err);
	if (r < 0)
		return r;
	free(p);
	p = in_root(c, "/sys");
	if (!p)
		return error_sys(err, ENOMEM, "root");
	r = do_mount("sysfs", p, "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, err);
	if (r < 0)
		return r;
	r = make_dev(c, err);
	if (r < 0)
		return r;
	free(p);
	p = in_root(c, "/run");
	if (!p)
		return error_sys(err, ENOMEM, "root");
	r = do_mount("tmpfs", p, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755", err);
	if (r < 0)
		return r;

	/* treadle itself, the app cgroup's procs files, /env, /services, the overlays */
	r = bind_into(c, c->treadle_bin, CONTAINER_TREADLE, true, err);
	if (r < 0)
		return r;
	for (size_t i = 0; c->cg_procs && c->cg_procs[i]; i++) {
		_cleanup_free_ char *t = strdup_printf(CONTAINER_CGROUP_DIR "/%zu", i);
		if (!t)
			return error_sys(err, ENOMEM, "root");
		r = bind_into(c, c->cg_procs[i], t, false, err);
		if (r < 0)
			return r;
	}
	free(p);
	p = strdup_printf("%s/env", c->data_dir);
	if (!p)
		return error_sys(err, ENOMEM, "root");
	r = bind_into(c, p, "/env", true, err);
	if (r >= 0)
		r = bind_into(c, c->services_dir, "/services", false, err);
	if (r < 0)
		return r;
	static const char *const overlays[] = { "/etc/hosts", "/etc/resolv.conf" };
	for (size_t i = 0; i < ELEMENTSOF(overlays); i++) {
		_cleanup_free_ char *src = strdup_printf("%s/overlay%s", c->data_dir, overlays[i]);
		if (!src)
			return error_sys(err, ENOMEM, "root");
		if (access(src, F_OK) < 0)
			continue;
		r = bind_into(c, src, overlays[i], true, err);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < cfg->n_binds; i++) {
		r = bind_into(c, cfg->binds[i].source, cfg->binds[i].target, cfg->binds[i].readonly, err);
		if (r < 0)
			return r;
	}
	free(p);
	p = strdup_printf("%s/app.json", c->data_dir);
	if (p && access(p, F_OK) == 0) {
		_cleanup_free_ char *text = NULL, *dst = in_root(c, "/app.json");
		size_t len;
		if (dst && read_file(p, &text, &len) >= 0)
			(void)container_write_file(dst, text, len);
	}

	/* pivot_root(".", ".") then detach the old root stacked under it */
	if (chdir(c->root_dir) < 0)
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

int rootfs_prepare_data(const struct container_ctx *c, struct error *err)
{
	int r = write_env(c, err);

	if (r >= 0)
		r = write_overlay(c, err);
	return r;
}
