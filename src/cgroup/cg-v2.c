/* cg-v2.c: cgroup v2 (unified) backend.  Tested against a fake cgroupfs tree
 * (tests/unit/test-cgroup-v2.c): this machine's cgroup2 mount has no
 * resource controllers. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/sysmacros.h>

#include "../basic/util.h"
#include "cgroup-internal.h"

/* Enable in the parent's subtree_control the controllers we use that the parent offers. */
static int v2_init_group(struct cg *cg, const struct cg_hier *h, const char *parent_dir, const char *dir,
			 bool existed)
{
	static const char *const wanted[] = { "memory", "cpu", "pids", "io", "cpuset" };
	_cleanup_free_ char *avail = NULL;
	int r;

	r = cg_read_knob(parent_dir, "cgroup.controllers", &avail);
	if (r < 0)
		return r == -ENOENT ? 0 : r;
	for (size_t i = 0; i < ELEMENTSOF(wanted); i++) {
		char buf[32];
		bool found = false;
		_cleanup_free_ char *copy = strdup(avail);

		if (!copy)
			return -ENOMEM;
		for (char *s = copy, *tok; (tok = strsep(&s, " \n"));)
			found |= strcmp(tok, wanted[i]) == 0;
		if (!found)
			continue;
		snprintf(buf, sizeof(buf), "+%s", wanted[i]);
		if (cg->flags & CG_OPEN_FAKE) {
			/* the fake tree records the enabled set and offers it to the child */
			_cleanup_free_ char *cur = NULL, *next = NULL;
			(void)cg_read_knob(parent_dir, "cgroup.subtree_control", &cur);
			next = strdup_printf("%s%s%s", cur && *cur ? cur : "", cur && *cur ? " " : "", wanted[i]);
			if (!next)
				return -ENOMEM;
			if (!cur || !strstr(cur, wanted[i]))
				r = cg_write_knob(cg, parent_dir, "cgroup.subtree_control", next);
			else
				r = 0;
		} else {
			r = cg_write_knob(cg, parent_dir, "cgroup.subtree_control", buf);
		}
		if (r < 0)
			return r;
	}
	if ((cg->flags & CG_OPEN_FAKE) && !existed) {
		_cleanup_free_ char *sc = NULL;
		(void)cg_read_knob(parent_dir, "cgroup.subtree_control", &sc);
		r = cg_write_knob(cg, dir, "cgroup.controllers", sc ? sc : "");
		if (r >= 0)
			r = cg_write_knob(cg, dir, "cgroup.procs", "");
		if (r >= 0)
			r = cg_write_knob(cg, dir, "memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n");
		if (r < 0)
			return r;
	}
	return 0;
}

static int v2_set_limits(struct cg *cg, const struct cg_hier *h, const char *dir, const struct cg_limits *l,
			 struct error *err)
{
	char buf[96];
	int r;

#define KNOB(name, ...)                                                                      \
	do {                                                                                 \
		snprintf(buf, sizeof(buf), __VA_ARGS__);                                     \
		r = cg_write_knob(cg, dir, name, buf);                                       \
		if (r < 0)                                                                   \
			return error_sys(err, r, "cgroups: %s/%s = %s", dir, name, buf);     \
	} while (0)

	if (l->memory_max) {
		KNOB("memory.max", "%llu", (unsigned long long)l->memory_max);
		KNOB("memory.swap.max", "0");
	}
	if (l->memory_soft || l->memory_max)
		KNOB("memory.low", "%llu", (unsigned long long)(l->memory_soft ? l->memory_soft : l->memory_max));
	if (l->cpu_percent) {
		unsigned w = l->cpu_percent > 10000 ? 10000 : l->cpu_percent;
		KNOB("cpu.weight", "%u", w ? w : 1);
		KNOB("cpu.max", "%llu 100000", (unsigned long long)l->cpu_percent * 1000);
	}
	if (l->pids_max)
		KNOB("pids.max", "%llu", (unsigned long long)l->pids_max);
	if (l->io_dev && (l->io_read_bps || l->io_write_bps)) {
		char rb[32] = "max", wb[32] = "max";
		if (l->io_read_bps)
			snprintf(rb, sizeof(rb), "%llu", (unsigned long long)l->io_read_bps);
		if (l->io_write_bps)
			snprintf(wb, sizeof(wb), "%llu", (unsigned long long)l->io_write_bps);
		KNOB("io.max", "%u:%u rbps=%s wbps=%s", major(l->io_dev), minor(l->io_dev), rb, wb);
	}
#undef KNOB
	return 0;
}

static int v2_oom_fd(struct cg *cg, const char *memdir, int *ret_fd, struct error *err)
{
	_cleanup_free_ char *ev = strdup_printf("%s/memory.events", memdir);
	_cleanup_close_ int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);

	if (!ev)
		return error_sys(err, ENOMEM, "cgroups");
	if (fd < 0)
		return error_sys(err, errno, "cgroups: inotify");
	if (inotify_add_watch(fd, ev, IN_MODIFY) < 0)
		return error_sys(err, errno, "cgroups: watch %s", ev);
	*ret_fd = TAKE_FD(fd);
	return 0;
}

static int v2_oom_check(struct cg *cg, const char *memdir, uint64_t *ret)
{
	_cleanup_free_ char *t = NULL;
	int r = cg_read_knob(memdir, "memory.events", &t);

	if (r < 0)
		return r;
	return cg_keyed_get(t, "oom_kill", ret);
}

static int v2_stats(struct cg *cg, const char *dir, struct cg_stats *s)
{
	_cleanup_free_ char *t = NULL;

	if (cg_read_knob(dir, "memory.current", &t) >= 0) {
		t[strcspn(t, "\n")] = 0;
		(void)safe_atou64(t, &s->memory_current);
	}
	free(t), t = NULL;
	if (cg_read_knob(dir, "memory.max", &t) >= 0) {
		t[strcspn(t, "\n")] = 0;
		if (strcmp(t, "max") == 0 || safe_atou64(t, &s->memory_max) < 0)
			s->memory_max = UINT64_MAX;
	}
	free(t), t = NULL;
	if (cg_read_knob(dir, "pids.current", &t) >= 0) {
		t[strcspn(t, "\n")] = 0;
		(void)safe_atou64(t, &s->pids_current);
	}
	free(t), t = NULL;
	if (cg_read_knob(dir, "cpu.stat", &t) >= 0) {
		uint64_t us;
		if (cg_keyed_get(t, "usage_usec", &us) >= 0)
			s->cpu_usage_ns = us * 1000;
	}
	(void)v2_oom_check(cg, dir, &s->oom_kills);
	return 0;
}

static int v2_kill(struct cg *cg, const char *dir)
{
	if (cg->flags & CG_OPEN_FAKE)
		return 0;
	return cg_write_knob(cg, dir, "cgroup.kill", "1");
}

const struct cg_backend cg_backend_v2 = {
	.version = CG_V2,
	.init_group = v2_init_group,
	.set_limits = v2_set_limits,
	.oom_fd = v2_oom_fd,
	.oom_check = v2_oom_check,
	.stats = v2_stats,
	.kill = v2_kill,
};
