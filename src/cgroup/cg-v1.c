/* cg-v1.c: cgroup v1 backend, one hierarchy per controller (cpu and cpuacct
 * separate on this machine; a combined "cpu,cpuacct" mount works the same). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/sysmacros.h>

#include "../basic/util.h"
#include "cgroup-internal.h"

static int v1_init_group(struct cg *cg, const struct cg_hier *h, const char *parent_dir, const char *dir,
			 bool existed)
{
	if (h->has_cpuset) {
		/* a new cpuset group starts empty: tasks cannot join before cpus/mems are set */
		static const char *const knobs[] = { "cpuset.cpus", "cpuset.mems" };
		for (size_t i = 0; i < ELEMENTSOF(knobs); i++) {
			_cleanup_free_ char *v = NULL, *cur = NULL;
			int r;

			/* set already (by whoever created the group) */
			if (cg_read_knob(dir, knobs[i], &cur) == 0 && cur[strspn(cur, " \n")])
				continue;
			r = cg_read_knob(parent_dir, knobs[i], &v);
			if (r < 0)
				return r;
			v[strcspn(v, "\n")] = 0;
			if (!*v)
				continue;
			r = cg_write_knob(cg, dir, knobs[i], v);
			if (r < 0)
				return r;
		}
	}
	if (h->has_memory)
		(void)cg_write_knob(cg, dir, "memory.use_hierarchy", "1");
	return 0;
}

static int write_u64(struct cg *cg, const char *dir, const char *knob, uint64_t v, struct error *err)
{
	char buf[32];
	int r;

	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	r = cg_write_knob(cg, dir, knob, buf);
	if (r < 0)
		return error_sys(err, r, "cgroups: %s/%s = %s", dir, knob, buf);
	return 0;
}

static int v1_set_memory(struct cg *cg, const char *dir, const struct cg_limits *l, struct error *err)
{
	_cleanup_free_ char *memsw = strdup_printf("%s/memory.memsw.limit_in_bytes", dir);
	bool has_memsw = memsw && access(memsw, F_OK) == 0;
	int r;

	if (l->memory_max) {
		/* memsw must stay >= the memory limit: order lower/raise so each write is valid */
		if (has_memsw && cg_write_knob(cg, dir, "memory.memsw.limit_in_bytes", "-1") < 0)
			has_memsw = false;
		r = write_u64(cg, dir, "memory.limit_in_bytes", l->memory_max, err);
		if (r < 0)
			return r;
		if (has_memsw) {
			r = write_u64(cg, dir, "memory.memsw.limit_in_bytes", l->memory_max, err);
			if (r < 0)
				return r;
		}
	}
	if (l->memory_soft || l->memory_max)
		return write_u64(cg, dir, "memory.soft_limit_in_bytes", l->memory_soft ? l->memory_soft : l->memory_max,
				 err);
	return 0;
}

static int v1_set_limits(struct cg *cg, const struct cg_hier *h, const char *dir, const struct cg_limits *l,
			 struct error *err)
{
	int r;

	if (h->has_memory) {
		r = v1_set_memory(cg, dir, l, err);
		if (r < 0)
			return r;
	}
	if (h->has_cpu && l->cpu_percent) {
		uint64_t shares = (uint64_t)l->cpu_percent * 1024 / 100;
		r = write_u64(cg, dir, "cpu.shares", shares < 2 ? 2 : shares, err);
		if (r >= 0)
			r = write_u64(cg, dir, "cpu.cfs_period_us", 100000, err);
		if (r >= 0)
			r = write_u64(cg, dir, "cpu.cfs_quota_us", (uint64_t)l->cpu_percent * 1000, err);
		if (r < 0)
			return r;
	}
	if (h->has_pids && l->pids_max) {
		r = write_u64(cg, dir, "pids.max", l->pids_max, err);
		if (r < 0)
			return r;
	}
	if (h->has_blkio && l->io_dev) {
		static const char *const knobs[2] = { "blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device" };
		uint64_t v[2] = { l->io_read_bps, l->io_write_bps };
		for (int i = 0; i < 2; i++) {
			char buf[64];
			if (!v[i])
				continue;
			snprintf(buf, sizeof(buf), "%u:%u %llu", major(l->io_dev), minor(l->io_dev),
				 (unsigned long long)v[i]);
			r = cg_write_knob(cg, dir, knobs[i], buf);
			if (r < 0)
				return error_sys(err, r, "cgroups: %s/%s = %s", dir, knobs[i], buf);
		}
	}
	return 0;
}

/* devices.deny "a" empties the group's list (and sets deny-by-default); each
 * write to devices.allow then adds one entry.  The kernel parses one rule per
 * write, so the lines go through one fd, one write each. */
static int v1_set_devices(struct cg *cg, const struct cg_hier *h, const char *dir, const struct cg_device *allow,
			  size_t n, struct error *err)
{
	_cleanup_free_ char *rules = NULL, *p = strdup_printf("%s/devices.allow", dir);
	_cleanup_close_ int fd = -1;
	int r;

	if (!p)
		return error_sys(err, ENOMEM, "cgroups");
	if (!allow) {
		r = cg_write_knob(cg, dir, "devices.allow", "a");
		return r < 0 ? error_sys(err, r, "cgroups: %s/devices.allow = a", dir) : 0;
	}
	r = cg_devices_format(allow, n, &rules);
	if (r < 0)
		return error_sys(err, r, "cgroups: device list");
	r = cg_write_knob(cg, dir, "devices.deny", "a");
	if (r < 0)
		return error_sys(err, r, "cgroups: %s/devices.deny = a", dir);
	fd = open(p, O_WRONLY | O_CLOEXEC | ((cg->flags & CG_OPEN_FAKE) ? O_CREAT | O_TRUNC : 0), 0644);
	if (fd < 0)
		return error_sys(err, errno, "cgroups: %s", p);
	for (char *s = rules, *line; (line = strsep(&s, "\n"));) {
		size_t len = strlen(line);
		if (len && write(fd, line, len) != (ssize_t)len)
			return error_sys(err, errno, "cgroups: %s = %s", p, line);
	}
	return 0;
}

static int v1_oom_fd(struct cg *cg, const char *memdir, int *ret_fd, struct error *err)
{
	_cleanup_free_ char *ctl = strdup_printf("%s/memory.oom_control", memdir);
	_cleanup_close_ int efd = -1, cfd = -1;
	char buf[64];
	int r;

	if (!ctl)
		return error_sys(err, ENOMEM, "cgroups");
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (efd < 0)
		return error_sys(err, errno, "cgroups: eventfd");
	cfd = open(ctl, O_RDONLY | O_CLOEXEC);
	if (cfd < 0)
		return error_sys(err, errno, "cgroups: %s", ctl);
	snprintf(buf, sizeof(buf), "%d %d", efd, cfd);
	r = cg_write_knob(cg, memdir, "cgroup.event_control", buf);
	if (r < 0)
		return error_sys(err, r, "cgroups: register OOM eventfd on %s", ctl);
	*ret_fd = TAKE_FD(efd);
	return 0;
}

static int v1_oom_check(struct cg *cg, const char *memdir, uint64_t *ret)
{
	return cg_read_keyed(memdir, "memory.oom_control", "oom_kill", ret);
}

const struct cg_backend cg_backend_v1 = {
	.version = CG_V1,
	.init_group = v1_init_group,
	.set_limits = v1_set_limits,
	.oom_fd = v1_oom_fd,
	.oom_check = v1_oom_check,
	.set_devices = v1_set_devices,
	.kill = NULL,
};
